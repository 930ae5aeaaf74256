/* auditrail-aggregator: consume audit envelopes from Kafka and store each
 * record exactly once in PostgreSQL (DESIGN.md §4–6); `migrate` applies the
 * schema and exits, `replay` moves the stored offsets back.
 * Exit status: 0 clean stop, 1 fatal error, 2 bad usage or configuration. */
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
#include "common/prog.h"

/* Migrations at start: PostgreSQL may still be starting (a pod restarting
 * next to its database), so an unreachable server is retried this many times
 * with backoff from 200 ms to 5 s (+100 ms): at most about 42 s in all. */
#define MIGRATE_RETRIES 12

enum aggr_command { CMD_RUN, CMD_MIGRATE, CMD_REPLAY };

struct aggr_cmd {
    enum aggr_command kind;
    const char *role; /* all|consumer|query */
    bool run_consumer, run_query;
    int32_t replay_partition; /* -1 = every partition */
    int64_t replay_offset;    /* -1 = from the beginning */
};

static const char *role_opt = "all";

static int load(void *cfg, const char *path, char *err, size_t errlen)
{
    return aggr_config_load_file(cfg, path, err, errlen);
}

/* The aggregator's metric families (--metrics-reference); consumer_lag is
 * registered per partition as they are assigned: shown for partition 0. */
static void register_metrics(struct metrics *m)
{
    struct aggr_metrics am;
    aggr_metrics_init(&am, m);
    aggr_metrics_lag(&am, 0);
}

static const struct prog_option aggr_options[] = {
    {"role", 0, &role_opt},
    {NULL, 0, NULL},
};

static const struct prog aggr_prog = {
    .name = "auditrail-aggregator",
    .usage = "auditrail-aggregator --config FILE [--check-config] [--role all|consumer|query]\n"
             "       auditrail-aggregator --config FILE migrate\n"
             "       auditrail-aggregator --config FILE replay [PARTITION [OFFSET]]\n"
             "       auditrail-aggregator --config-reference | --metrics-reference | --version",
    .options = aggr_options,
    .config_keys = aggr_config_keys,
    .load = load,
    .register_metrics = register_metrics,
};

/* The subcommand (none, migrate, replay [P [OFFSET]]) and --role. -1 when
 * valid, else the exit status of a usage error. */
static int parse_command(const struct prog_args *a, struct aggr_cmd *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->role = role_opt;
    cmd->replay_partition = -1;
    cmd->replay_offset = -1;
    if (a->argc > 0 && strcmp(a->argv[0], "migrate") == 0 && a->argc == 1) {
        cmd->kind = CMD_MIGRATE;
    } else if (a->argc > 0 && strcmp(a->argv[0], "replay") == 0 && a->argc <= 3) {
        cmd->kind = CMD_REPLAY;
        char *end = NULL;
        if (a->argc > 1) {
            long p = strtol(a->argv[1], &end, 10);
            if (*end || p < 0 || p > INT32_MAX)
                return prog_usage_error(&aggr_prog, "replay: bad partition \"%s\"", a->argv[1]);
            cmd->replay_partition = (int32_t)p;
        }
        if (a->argc > 2) {
            long long o = strtoll(a->argv[2], &end, 10);
            if (*end || o < 0)
                return prog_usage_error(&aggr_prog, "replay: bad offset \"%s\"", a->argv[2]);
            cmd->replay_offset = o;
        }
    } else if (a->argc > 0) {
        return prog_usage_error(&aggr_prog, "unknown command \"%s\"", a->argv[0]);
    }
    cmd->run_consumer = !strcmp(cmd->role, "all") || !strcmp(cmd->role, "consumer");
    cmd->run_query = !strcmp(cmd->role, "all") || !strcmp(cmd->role, "query");
    if (!cmd->run_consumer && !cmd->run_query)
        return prog_usage_error(&aggr_prog, "--role must be all, consumer or query");
    return -1;
}

static void sleep_ms(uint64_t ms, volatile sig_atomic_t *stop)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && !*stop)
        ;
}

/* Apply migrations, retrying an unreachable server when `retry`. */
static int run_migrations(const struct aggr_config *cfg, bool retry, volatile sig_atomic_t *stop)
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
        if (!retry || attempt >= MIGRATE_RETRIES || *stop) {
            log_error("migrations failed: %s", err);
            return -1;
        }
        log_warn("migrations failed (retrying): %s", err);
        sleep_ms(backoff_next(&b) + 100, stop);
    }
}

static int run_replay(const struct aggr_config *cfg, const struct aggr_cmd *cmd)
{
    char err[1024];
    size_t changed = 0;
    if (replay_set_offsets(cfg->postgres.primary, cfg->kafka.group, cfg->kafka.topic,
                           cmd->replay_partition, cmd->replay_offset, &changed, err,
                           sizeof(err)) != 0) {
        log_error("%s", err);
        return 1;
    }
    log_info("replay: group %s topic %s: %zu stored offset(s) %s; running aggregators "
             "follow at their next commit",
             cfg->kafka.group, cfg->kafka.topic, changed,
             cmd->replay_offset < 0 ? "removed (from the beginning)" : "set");
    return 0;
}

/* The alerter with the aggregator's identity and breaker settings. */
static struct alerter *start_alerter(const struct aggr_config *cfg, struct metrics *reg,
                                     const struct breaker_conf *bc, const char *instance)
{
    struct alerter_conf acf = cfg->alerts; /* shallow: alerter_new copies what it keeps */
    acf.component = "aggregator";
    acf.instance = instance;
    acf.breaker = bc;
    char err[512];
    struct alerter *al = alerter_new(&acf, reg, err, sizeof(err));
    if (!al)
        log_error("alerts: %s", err);
    return al;
}

/* The long-running service: consumer (unless --role query), health and
 * metrics, until a signal or a fatal error. */
static int run_service(const struct aggr_config *cfg, const struct aggr_cmd *cmd,
                       volatile sig_atomic_t *stop)
{
    int rc = 1;
    char err[1024], instance[256] = "";
    struct metrics *reg = metrics_new();
    procmetrics_register(reg, "aggregator");
    struct aggr_metrics am;
    struct aggregator *a = NULL;
    struct httpd *h = NULL;
    aggr_metrics_init(&am, reg);
    gethostname(instance, sizeof(instance) - 1);
    struct breaker_conf bc;
    aggr_config_breaker(cfg, &bc);
    struct alerter *al = start_alerter(cfg, reg, &bc, instance);
    if (!al)
        goto out;
    if (cmd->run_consumer) {
        if (run_migrations(cfg, true, stop) != 0)
            goto out;
        a = aggregator_new(cfg, &am, err, sizeof(err));
        if (!a) {
            log_error("cannot start: %s", err);
            goto out;
        }
        aggregator_set_alerter(a, al);
    }
    struct httpd_conf hc = {.listen = cfg->http.listen,
                            .metrics = reg,
                            .ready = a ? aggregator_ready : NULL,
                            .ready_ud = a};
    h = httpd_start(&hc, err, sizeof(err));
    if (!h) {
        log_error("http.listen %s: %s", cfg->http.listen, err);
        goto out;
    }
    log_info("serving /healthz /readyz /metrics on %s (port %u), role %s", cfg->http.listen,
             httpd_port(h), cmd->role);
    if (cmd->run_query)
        log_info("the query API is not implemented yet: role query serves health and metrics "
                 "only");
    if (a) {
        rc = aggregator_run(a, stop);
    } else {
        while (!*stop)
            sleep_ms(200, stop);
        rc = 0;
    }
    log_info("stopped (exit %d)", rc);
out:
    httpd_stop(h);
    aggregator_free(a);
    alerter_free(al);
    metrics_free(reg);
    return rc;
}

int main(int argc, char **argv)
{
    struct prog_args args;
    struct aggr_cmd cmd;
    int rc = prog_parse(&aggr_prog, argc, argv, &args);
    if (rc >= 0)
        return rc;
    if ((rc = parse_command(&args, &cmd)) >= 0)
        return rc;
    struct aggr_config cfg = {0};
    if ((rc = prog_load_config(&aggr_prog, &args, &cfg)) >= 0) {
        aggr_config_free(&cfg);
        return rc;
    }
    enum log_level lvl = LOG_INFO;
    (void)log_level_parse(cfg.log.level, &lvl); /* checked by the loader */
    log_init("aggregator", lvl);
    volatile sig_atomic_t *stop = prog_signals();
    switch (cmd.kind) {
    case CMD_MIGRATE:
        rc = run_migrations(&cfg, false, stop) == 0 ? 0 : 1;
        break;
    case CMD_REPLAY:
        rc = run_replay(&cfg, &cmd);
        break;
    case CMD_RUN:
        rc = run_service(&cfg, &cmd, stop);
        break;
    }
    aggr_config_free(&cfg);
    return rc;
}
