/* auditrail-agent: tail audit logs, hash-chain them, ship them to Kafka.
 *   auditrail-agent --config FILE [--check-config]
 * Exit status: 0 clean stop, 1 runtime error, 2 bad usage/configuration,
 * 3 fatal Kafka producer error. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/agent_config.h"
#include "common/log.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: auditrail-agent --config FILE [--check-config] [--config-reference]\n");
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    bool check = false, reference = false;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"config-reference", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            config = optarg;
            break;
        case 'C':
            check = true;
            break;
        case 'R':
            reference = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (reference) {
        cfg_print_reference(agent_conf_keys, stdout);
        return 0;
    }
    if (!config) {
        usage(stderr);
        return 2;
    }
    log_init("agent", LOG_INFO);
    struct agent_config cfg;
    char err[1024];
    if (agent_config_load(&cfg, config, err, sizeof(err)) < 0) {
        fprintf(stderr, "auditrail-agent: %s\n", err);
        agent_config_release(&cfg);
        return 2;
    }
    if (check) {
        printf("%s: ok\n", config);
        agent_config_release(&cfg);
        return 0;
    }
    enum log_level lvl = LOG_INFO;
    if (cfg.file.log.level && log_level_parse(cfg.file.log.level, &lvl) < 0) {
        fprintf(stderr, "auditrail-agent: log.level: unknown level \"%s\"\n", cfg.file.log.level);
        agent_config_release(&cfg);
        return 2;
    }
    log_init("agent", lvl);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: poll(2) returns EINTR at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status;
    struct agent *a = agent_new(&cfg, err, sizeof(err));
    if (!a) {
        log_error("%s", err);
        status = 2;
    } else {
        status = agent_run(a, &g_stop);
        agent_free(a);
    }
    agent_config_release(&cfg);
    return status;
}
