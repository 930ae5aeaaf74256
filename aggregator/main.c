/* auditrail-aggregator: consume audit envelopes from Kafka and store each
 * record exactly once in PostgreSQL (DESIGN.md §4–6) and serve the query API
 * (§7; --role picks either or both); `migrate` applies the schema and
 * exits, `replay` moves the stored offsets back (or reads the topic again),
 * `verify` checks the stored chains, `proof` manages signed chain heads
 * (aggregator/cmd.h), `token` manages API tokens.
 * Exit status: 0 clean stop, 1 fatal error, 2 bad usage or configuration
 * (verify: 1 problems found, 4 database unavailable). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/aggr_config.h"
#include "aggregator/aggr_metrics.h"
#include "aggregator/aggregator.h"
#include "aggregator/cmd.h"
#include "aggregator/migrate.h"
#include "aggregator/proof_service.h"
#include "aggregator/query_api.h"
#include "aggregator/replay.h"
#include "aggregator/token_cmd.h"
#include "common/alert.h"
#include "common/buf.h"
#include "common/backoff.h"
#include "common/httpd.h"
#include "common/io.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/procmetrics.h"
#include "common/prog.h"

/* Migrations at start: PostgreSQL may still be starting (a pod restarting
 * next to its database), so an unreachable server is retried this many times
 * with backoff from 200 ms to 5 s (+100 ms): at most about 42 s in all. */
#define MIGRATE_RETRIES 12

enum aggr_command {
    CMD_RUN,
    CMD_MIGRATE,
    CMD_REPLAY,
    CMD_REPLAY_ACTIVE,
    CMD_VERIFY,
    CMD_PROOF,
    CMD_TOKEN
};

struct aggr_cmd {
    enum aggr_command kind;
    const char *role; /* all|consumer|query */
    bool run_consumer, run_query;
    int32_t replay_partition; /* -1 = every partition */
    int64_t replay_offset;    /* -1 = from the beginning */
    int argc;                 /* the subcommand's words (verify, replay --…, proof) */
    char **argv;
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
    struct proof_metrics pm;
    aggr_metrics_init(&am, m);
    aggr_metrics_lag(&am, 0);
    proof_metrics_init(&pm, m);
    query_api_register_metrics(m);
}

static const struct prog_option aggr_options[] = {
    {"role", 0, &role_opt},
    {NULL, 0, NULL},
};

/* Subcommands with options of their own (token create --tenant, replay
 * --from, verify --stream, …) */
static const char *const own_option_commands[] = {"token", "replay", "verify", "proof", NULL};

static const struct prog aggr_prog = {
    .name = "auditrail-aggregator",
    .usage = "auditrail-aggregator --config FILE [--check-config] [--role all|consumer|query]\n"
             "       auditrail-aggregator --config FILE migrate\n"
             "       auditrail-aggregator --config FILE replay [PARTITION [OFFSET]]\n"
             "       auditrail-aggregator --config FILE replay --from TIME [--to TIME] "
             "[--partitions LIST] [--dry-run] [--json]\n"
             "       auditrail-aggregator --config FILE replay --from-offset P:O[,P:O...] "
             "[--to TIME] [--dry-run] [--json]\n"
             "       auditrail-aggregator --config FILE verify [--stream ID] [--from TIME] "
             "[--to TIME] [--tenant T]\n"
             "         [--against FILE|kafka[:TOPIC] [--pubkey FILE]...] [--workers N] [--json]\n"
             "       auditrail-aggregator proof keygen FILE\n"
             "       auditrail-aggregator --config FILE proof pubkey|sign\n"
             "       auditrail-aggregator --config FILE proof inclusion STREAM [SEQ] | "
             "consistency ROUND1 ROUND2\n"
             "       auditrail-aggregator --config FILE token create [--tenant T] --role "
             "reader|auditor|admin [--name N] [--expires-days D]\n"
             "       auditrail-aggregator --config FILE token revoke NAME | token list\n"
             "       auditrail-aggregator --config-reference | --metrics-reference | --version",
    .options = aggr_options,
    .config_keys = aggr_config_keys,
    .load = load,
    .register_metrics = register_metrics,
    .own_option_commands = own_option_commands,
};

/* The subcommand (none, migrate, replay [P [OFFSET]]) and --role. -1 when
 * valid, else the exit status of a usage error. */
static int parse_command(const struct prog_args *a, struct aggr_cmd *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->role = role_opt;
    cmd->replay_partition = -1;
    cmd->replay_offset = -1;
    cmd->argc = a->argc;
    cmd->argv = a->argv;
    if (a->argc > 0 && strcmp(a->argv[0], "migrate") == 0 && a->argc == 1) {
        cmd->kind = CMD_MIGRATE;
    } else if (a->argc > 1 && strcmp(a->argv[0], "replay") == 0 && a->argv[1][0] == '-') {
        cmd->kind = CMD_REPLAY_ACTIVE; /* replay --from …, --from-offset … */
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
    } else if (a->argc > 0 && strcmp(a->argv[0], "verify") == 0) {
        cmd->kind = CMD_VERIFY;
    } else if (a->argc > 0 && strcmp(a->argv[0], "proof") == 0) {
        cmd->kind = CMD_PROOF;
    } else if (a->argc > 0 && strcmp(a->argv[0], "token") == 0) {
        cmd->kind = CMD_TOKEN;
        return -1;
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

/* A PEM file's text (heap), or NULL after logging why. */
static char *read_pem(const char *key, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct buf b = BUF_INIT;
    if (fd < 0 || io_read_all(fd, 1 << 20, &b) != 0) {
        log_error("%s %s: cannot read it", key, path);
        if (fd >= 0)
            close(fd);
        buf_release(&b);
        return NULL;
    }
    close(fd);
    return buf_detach(&b, NULL);
}

/* The query API's own listener (query.listen set), TLS when configured. */
static struct httpd *start_query_listener(const struct aggr_config *cfg, struct query_api *api,
                                          struct metrics *reg)
{
    const struct aggr_query_conf *q = &cfg->query;
    char err[512], *cert = NULL, *key = NULL;
    struct httpd *h = NULL;
    if (q->tls_cert && *q->tls_cert) {
        cert = read_pem("query.tls_cert", q->tls_cert);
        key = read_pem("query.tls_key", q->tls_key);
        if (!cert || !key)
            goto out;
    }
    struct httpd_conf hc = {.listen = q->listen,
                            .metrics = reg,
                            .async = query_api_route,
                            .async_ud = api,
                            .threads = (unsigned)q->threads,
                            .conn_limit = (unsigned)q->max_connections,
                            .conn_timeout_s = (unsigned)q->connection_timeout_s,
                            .tls_cert_pem = cert,
                            .tls_key_pem = key};
    h = httpd_start(&hc, err, sizeof(err));
    if (!h)
        log_error("query.listen %s: %s", q->listen, err);
    else
        log_info("serving the query API on %s (port %u%s)", q->listen, httpd_port(h),
                 cert ? ", TLS" : "");
out:
    free(cert);
    free(key);
    return h;
}

/* The long-running service: consumer (unless --role query), the query API
 * (unless --role consumer), health and metrics, until a signal or a fatal
 * error. */
static int run_service(const struct aggr_config *cfg, const struct aggr_cmd *cmd,
                       volatile sig_atomic_t *stop)
{
    int rc = 1;
    char err[1024], instance[256] = "";
    struct metrics *reg = metrics_new();
    procmetrics_register(reg, "aggregator");
    struct aggr_metrics am;
    struct proof_metrics pm;
    struct aggregator *a = NULL;
    struct proof_service *ps = NULL;
    struct query_api *api = NULL;
    struct httpd *h = NULL, *hq = NULL;
    aggr_metrics_init(&am, reg);
    proof_metrics_init(&pm, reg);
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
        /* Signed chain heads: the writers sign (one of them per round). */
        if (cfg->proof.key_file && !(ps = proof_service_start(cfg, &pm, al, err, sizeof(err)))) {
            log_error("cannot start signing chain heads: %s", err);
            goto out;
        }
    }
    if (cmd->run_query) {
        api = query_api_new(cfg, reg, err, sizeof(err));
        if (!api) {
            log_error("cannot start the query API: %s", err);
            goto out;
        }
        if (a)
            query_api_set_ingest(api, aggregator_last_commit, a);
    }
    /* The query API on http.listen unless query.listen names its own;
     * /v1/status there too when the consumer runs here. */
    bool shared = api && (!cfg->query.listen || !*cfg->query.listen);
    struct query_status status = {.ingest = a ? aggregator_last_commit : NULL, .ud = a};
    struct httpd_conf hc = {.listen = cfg->http.listen,
                            .metrics = reg,
                            .ready = a ? aggregator_ready : NULL,
                            .ready_ud = a,
                            .async = shared ? query_api_route : NULL,
                            .async_ud = api,
                            .handler = a && !shared ? query_status_route : NULL,
                            .handler_ud = &status};
    if (shared) {
        hc.threads = (unsigned)cfg->query.threads;
        hc.conn_limit = (unsigned)cfg->query.max_connections;
        hc.conn_timeout_s = (unsigned)cfg->query.connection_timeout_s;
    }
    h = httpd_start(&hc, err, sizeof(err));
    if (!h) {
        log_error("http.listen %s: %s", cfg->http.listen, err);
        goto out;
    }
    log_info("serving /healthz /readyz /metrics%s on %s (port %u), role %s",
             shared ? " and the query API"
             : a    ? " /v1/status"
                    : "",
             cfg->http.listen, httpd_port(h), cmd->role);
    if (api && !shared && !(hq = start_query_listener(cfg, api, reg)))
        goto out;
    if (a) {
        rc = aggregator_run(a, stop);
    } else {
        while (!*stop)
            sleep_ms(200, stop);
        rc = 0;
    }
    log_info("stopped (exit %d)", rc);
out:
    /* Answer what is in progress before the listeners stop (a suspended
     * request must not be dropped by libmicrohttpd). */
    query_api_quiesce(api, 10000);
    httpd_stop(hq);
    httpd_stop(h);
    proof_service_stop(ps);
    query_api_free(api);
    aggregator_free(a);
    alerter_free(al);
    metrics_free(reg);
    return rc;
}

int main(int argc, char **argv)
{
    /* First: a SIGTERM while the configuration loads (a pod deleted as it
     * starts) must stop the program cleanly, not by the default action. */
    volatile sig_atomic_t *stop = prog_signals();
    struct prog_args args;
    struct aggr_cmd cmd;
    int rc = prog_parse(&aggr_prog, argc, argv, &args);
    if (rc >= 0)
        return rc;
    if ((rc = parse_command(&args, &cmd)) >= 0)
        return rc;
    if (cmd.kind == CMD_PROOF && cmd.argc > 1 && strcmp(cmd.argv[1], "keygen") == 0)
        return cmd_proof_keygen(cmd.argc, cmd.argv); /* before any configuration exists */
    struct aggr_config cfg = {0};
    if ((rc = prog_load_config(&aggr_prog, &args, &cfg)) >= 0) {
        aggr_config_free(&cfg);
        return rc;
    }
    enum log_level lvl = LOG_INFO;
    (void)log_level_parse(cfg.log.level, &lvl); /* checked by the loader */
    log_init("aggregator", lvl);
    switch (cmd.kind) {
    case CMD_MIGRATE:
        rc = run_migrations(&cfg, false, stop) == 0 ? 0 : 1;
        break;
    case CMD_REPLAY:
        rc = run_replay(&cfg, &cmd);
        break;
    case CMD_REPLAY_ACTIVE:
        rc = cmd_replay(&cfg, cmd.argc, cmd.argv, stop);
        break;
    case CMD_VERIFY:
        rc = cmd_verify(&cfg, cmd.argc, cmd.argv, stop);
        break;
    case CMD_PROOF:
        rc = cmd_proof(&cfg, cmd.argc, cmd.argv);
        break;
    case CMD_TOKEN:
        rc = token_cmd_run(&cfg, args.argc, args.argv);
        break;
    case CMD_RUN:
        rc = run_service(&cfg, &cmd, stop);
        break;
    }
    aggr_config_free(&cfg);
    return rc;
}
