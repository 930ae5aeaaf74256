/* auditrail-agent: tail audit logs, hash-chain them, ship them to Kafka.
 *   auditrail-agent --config FILE [--check-config]
 * Exit status: 0 clean stop, 1 runtime error, 2 bad usage/configuration,
 * 3 fatal Kafka producer error. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/agent.h"
#include "agent/agent_config.h"
#include "agent/agent_metrics.h"
#include "common/log.h"
#include "common/prog.h"

static int load(void *cfg, const char *path, char *err, size_t errlen)
{
    return agent_config_load(cfg, path, err, errlen);
}

/* The agent's metric families (--metrics-reference). */
static void register_metrics(struct metrics *m)
{
    struct agent_metrics am;
    agent_metrics_init(&am, m);
}

static const struct prog agent_prog = {
    .name = "auditrail-agent",
    .usage = "auditrail-agent --config FILE [--check-config]\n"
             "       auditrail-agent --config-reference | --metrics-reference | --version",
    .config_keys = agent_conf_keys,
    .load = load,
    .register_metrics = register_metrics,
};

/* librdkafka allocates every message (about 1 KB here) and frees them in
 * bursts as the reports arrive, and its batch buffers are larger than
 * glibc's initial mmap threshold. With the defaults glibc gives freed
 * memory back and faults it in again (a quarter of the agent's page faults
 * and 12 % of the broker thread's CPU on 200k JSON records). Fixed
 * thresholds keep it; the peak is the same, since the in-flight budget
 * bounds what is live. GLIBC_TUNABLES, when set, is left to decide. */
static void tune_malloc(void)
{
    if (getenv("GLIBC_TUNABLES"))
        return;
    (void)mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    (void)mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
}

int main(int argc, char **argv)
{
    tune_malloc();
    /* First: a SIGTERM while the configuration loads (a pod deleted as it
     * starts, a test stopping an agent it just restarted) must stop the
     * agent cleanly, not by the default action (exit 143). */
    volatile sig_atomic_t *stop = prog_signals();
    struct prog_args args;
    int status = prog_parse(&agent_prog, argc, argv, &args);
    if (status >= 0)
        return status;
    if (args.argc > 0)
        return prog_usage_error(&agent_prog, "unexpected argument \"%s\"", args.argv[0]);
    log_init("agent", LOG_INFO);
    struct agent_config cfg = {0};
    status = prog_load_config(&agent_prog, &args, &cfg);
    if (status >= 0) {
        agent_config_release(&cfg);
        return status;
    }
    enum log_level lvl = LOG_INFO;
    if (cfg.file.log.level)
        (void)log_level_parse(cfg.file.log.level, &lvl); /* checked by the loader */
    log_init("agent", lvl);

    char err[1024];
    struct agent *a = agent_new(&cfg, err, sizeof(err));
    if (!a) {
        log_error("%s", err);
        status = 2;
    } else {
        status = agent_run(a, stop);
        agent_free(a);
    }
    agent_config_release(&cfg);
    return status;
}
