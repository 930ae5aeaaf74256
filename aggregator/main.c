/* auditrail-aggregator: consume audit envelopes from Kafka and store each
 * record exactly once in PostgreSQL (DESIGN.md §4–6); `migrate` applies the
 * schema and exits. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/aggr_config.h"
#include "aggregator/aggr_metrics.h"
#include "aggregator/aggregator.h"
#include "aggregator/migrate.h"
#include "aggregator/replay.h"
#include "common/alert.h"
#include "common/backoff.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/procmetrics.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: auditrail-aggregator --config FILE [--check-config] "
               "[--role all|consumer|query]\n"
               "       auditrail-aggregator --config FILE migrate\n"
               "       auditrail-aggregator --config FILE replay [PARTITION [OFFSET]]\n"
               "       auditrail-aggregator --config-reference\n");
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && !stop_flag)
        ;
}

/* Apply migrations; PostgreSQL may still be starting (a pod restart next to
 * its database), so unreachable is retried for a while before giving up. */
static int run_migrations(const struct aggr_config *cfg, bool retry)
{
    struct backoff b;
    backoff_init(&b, 200, 5000, NULL, NULL);
    for (int attempt = 0;; attempt++) {
        struct migrate_report rep = {0};
        char err[512];
        if (migrate_run(cfg->postgres.primary, &rep, err, sizeof(err)) == 0) {
            log_info("migrations: %d applied, %d already applied, schema version %d", rep.applied,
                     rep.already, rep.current_version);
            return 0;
        }
        if (!retry || attempt >= 12 || stop_flag) {
            log_error("migrations failed: %s", err);
            return -1;
        }
        log_warn("migrations failed (retrying): %s", err);
        sleep_ms(backoff_next(&b) + 100);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 'k'},
        {"role", required_argument, NULL, 'r'},   {"config-reference", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *role = "all";
    bool check = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'r':
            role = optarg;
            break;
        case 'R':
            cfg_print_reference(aggr_config_keys, stdout);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    bool migrate_only = false, replay = false;
    int32_t replay_partition = -1;
    int64_t replay_offset = -1;
    if (optind < argc) {
        if (strcmp(argv[optind], "migrate") == 0 && optind + 1 == argc) {
            migrate_only = true;
        } else if (strcmp(argv[optind], "replay") == 0 && argc - optind <= 3) {
            replay = true;
            char *end = NULL;
            if (optind + 1 < argc) {
                long p = strtol(argv[optind + 1], &end, 10);
                if (*end || p < 0 || p > INT32_MAX) {
                    fprintf(stderr, "auditrail-aggregator: replay: bad partition \"%s\"\n",
                            argv[optind + 1]);
                    return 2;
                }
                replay_partition = (int32_t)p;
            }
            if (optind + 2 < argc) {
                long long o = strtoll(argv[optind + 2], &end, 10);
                if (*end || o < 0) {
                    fprintf(stderr, "auditrail-aggregator: replay: bad offset \"%s\"\n",
                            argv[optind + 2]);
                    return 2;
                }
                replay_offset = o;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    bool run_consumer = strcmp(role, "all") == 0 || strcmp(role, "consumer") == 0;
    bool run_query = strcmp(role, "all") == 0 || strcmp(role, "query") == 0;
    if (!run_consumer && !run_query) {
        fprintf(stderr, "auditrail-aggregator: --role must be all, consumer or query\n");
        return 2;
    }

    struct aggr_config cfg = {0};
    char err[1024];
    if (aggr_config_load_file(&cfg, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "auditrail-aggregator: %s\n", err);
        aggr_config_free(&cfg);
        return 2;
    }
    enum log_level lvl = LOG_INFO;
    if (log_level_parse(cfg.log.level, &lvl) != 0) {
        fprintf(stderr, "auditrail-aggregator: log.level: expected debug, info, warn or error\n");
        aggr_config_free(&cfg);
        return 2;
    }
    if (check) {
        printf("%s: configuration ok\n", path);
        aggr_config_free(&cfg);
        return 0;
    }
    log_init("aggregator", lvl);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    struct metrics *reg = NULL;
    struct httpd *h = NULL;
    struct aggregator *a = NULL;
    struct alerter *al = NULL;
    struct aggr_metrics am;

    if (migrate_only) {
        rc = run_migrations(&cfg, false) == 0 ? 0 : 1;
        goto out;
    }
    if (replay) {
        size_t changed = 0;
        if (replay_set_offsets(cfg.postgres.primary, cfg.kafka.group, cfg.kafka.topic,
                               replay_partition, replay_offset, &changed, err, sizeof(err)) != 0) {
            log_error("%s", err);
            goto out;
        }
        log_info("replay: group %s topic %s: %zu stored offset(s) %s; running aggregators "
                 "follow at their next commit",
                 cfg.kafka.group, cfg.kafka.topic, changed,
                 replay_offset < 0 ? "removed (from the beginning)" : "set");
        rc = 0;
        goto out;
    }
    reg = metrics_new();
    procmetrics_register(reg, "aggregator");
    aggr_metrics_init(&am, reg);
    char instance[256] = "";
    gethostname(instance, sizeof(instance) - 1);
    struct breaker_conf abc;
    aggr_config_breaker(&cfg, &abc);
    struct alerter_conf acf = cfg.alerts; /* shallow: alerter_new copies what it keeps */
    acf.component = "aggregator";
    acf.instance = instance;
    acf.breaker = &abc;
    al = alerter_new(&acf, reg, err, sizeof(err));
    if (!al) {
        log_error("alerts: %s", err);
        goto out;
    }
    if (run_consumer) {
        if (run_migrations(&cfg, true) != 0)
            goto out;
        a = aggregator_new(&cfg, &am, err, sizeof(err));
        if (!a) {
            log_error("cannot start: %s", err);
            goto out;
        }
        aggregator_set_alerter(a, al);
    }
    struct httpd_conf hc = {
        .listen = cfg.http.listen,
        .metrics = reg,
        .ready = a ? aggregator_ready : NULL,
        .ready_ud = a,
    };
    h = httpd_start(&hc, err, sizeof(err));
    if (!h) {
        log_error("http.listen %s: %s", cfg.http.listen, err);
        goto out;
    }
    log_info("serving /healthz /readyz /metrics on %s (port %u), role %s", cfg.http.listen,
             httpd_port(h), role);
    if (run_query)
        log_info("the query API is not implemented yet: role query serves health and metrics "
                 "only");
    if (a) {
        rc = aggregator_run(a, &stop_flag);
    } else {
        while (!stop_flag)
            sleep_ms(200);
        rc = 0;
    }
    log_info("stopped (exit %d)", rc);
out:
    httpd_stop(h);
    aggregator_free(a);
    alerter_free(al);
    metrics_free(reg);
    aggr_config_free(&cfg);
    return rc;
}
