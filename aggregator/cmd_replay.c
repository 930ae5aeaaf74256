/* `auditrail-aggregator --config FILE replay --from TIME …` and
 * `replay --from-offset P:O[,P:O…]` (aggregator/cmd.h): parse, run
 * replay_run.c with progress on stderr, print the report on stdout (a
 * table, or one JSON object with --json). Exit 0 done, 1 failed, 2 usage,
 * 4 Kafka or PostgreSQL unavailable. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/cmd.h"
#include "aggregator/replay_run.h"
#include "common/prog.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define REPLAY_USAGE_TEXT                                                                          \
    "usage: auditrail-aggregator --config FILE replay [PARTITION [OFFSET]]   (moves the group's "  \
    "stored offsets)\n"                                                                            \
    "       auditrail-aggregator --config FILE replay --from TIME [--to TIME] [--partitions "      \
    "LIST] [--dry-run] [--json]\n"                                                                 \
    "       auditrail-aggregator --config FILE replay --from-offset P:O[,P:O...] [--to TIME] "     \
    "[--dry-run] [--json]\n"                                                                       \
    "TIME: RFC 3339 or relative (-24h, -30m, -7d); LIST: 0,3,5\n"

static int usage(const char *fmt, const char *arg)
{
    return cmd_usage("replay", REPLAY_USAGE_TEXT, fmt, arg);
}

/* "0,3,5" (also "all" for --partitions: NULL list). */
static int parse_partitions(const char *s, int32_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    for (const char *p = s; *p;) {
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX || (*end && *end != ','))
            return -1;
        *out = xrealloc(*out, (*n + 1) * sizeof(**out));
        (*out)[(*n)++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    return *n ? 0 : -1;
}

/* "P:O[,P:O...]"; O may be "beginning" (0: the low watermark). */
static int parse_offsets(const char *s, struct replay_from_offset **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    for (const char *p = s; *p;) {
        char *end = NULL;
        long part = strtol(p, &end, 10);
        if (end == p || part < 0 || part > INT32_MAX || *end != ':')
            return -1;
        p = end + 1;
        long long off;
        if (strncmp(p, "beginning", 9) == 0) {
            off = 0;
            end = (char *)p + 9;
        } else {
            off = strtoll(p, &end, 10);
            if (end == p || off < 0)
                return -1;
        }
        if (*end && *end != ',')
            return -1;
        for (size_t i = 0; i < *n; i++)
            if ((*out)[i].partition == (int32_t)part)
                return -1; /* twice */
        *out = xrealloc(*out, (*n + 1) * sizeof(**out));
        (*out)[(*n)++] = (struct replay_from_offset){(int32_t)part, off};
        p = *end ? end + 1 : end;
    }
    return *n ? 0 : -1;
}

static json_t *counts_json(const struct replay_counts *c)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "read", (json_int_t)c->read,
                     "outside", (json_int_t)c->outside, "inserted", (json_int_t)c->inserted,
                     "resends", (json_int_t)c->resends, "forks", (json_int_t)c->forks, "gaps",
                     (json_int_t)c->gaps, "chain_breaks", (json_int_t)c->chain_breaks, "dlq",
                     (json_int_t)c->dlq);
}

static void print_json(const struct replay_report *r, int status, const char *err)
{
    json_t *parts = json_array();
    for (size_t i = 0; i < r->nparts; i++) {
        const struct replay_part_report *p = &r->parts[i];
        json_t *j = counts_json(&p->n);
        json_object_set_new(j, "partition", json_integer(p->partition));
        json_object_set_new(j, "start", json_integer(p->start));
        json_object_set_new(j, "end", json_integer(p->end));
        json_object_set_new(j, "reached", json_integer(p->reached));
        json_object_set_new(j, "searched", json_boolean(p->searched));
        json_array_append_new(parts, j);
    }
    json_t *j = json_pack("{s:b, s:s, s:o, s:o, s:f}", "dry_run", r->dry_run, "status",
                          status == 0 ? "done" : "failed", "partitions", parts, "total",
                          counts_json(&r->total), "seconds", (double)r->elapsed_us / 1e6);
    if (err && *err)
        json_object_set_new(j, "error", json_string(err));
    char *s = json_dumps(j, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(j);
}

static void print_row(const char *name, int64_t start, int64_t end, const struct replay_counts *c)
{
    char range[48] = "";
    if (start >= 0)
        snprintf(range, sizeof(range), "%" PRId64 "..%" PRId64, start, end);
    printf("%-9s %-21s %9" PRIu64 " %8" PRIu64 " %9" PRIu64 " %8" PRIu64 " %6" PRIu64 " %6" PRIu64
           " %7" PRIu64 " %6" PRIu64 "\n",
           name, range, c->read, c->outside, c->inserted, c->resends, c->forks, c->gaps,
           c->chain_breaks, c->dlq);
}

static void print_table(const struct replay_report *r, int status, const char *err)
{
    printf("replay%s %s in %.2f s%s%s\n", r->dry_run ? " (dry run: nothing written)" : "",
           status == 0 ? "done" : "FAILED", (double)r->elapsed_us / 1e6, err && *err ? ": " : "",
           err ? err : "");
    printf("%-9s %-21s %9s %8s %9s %8s %6s %6s %7s %6s\n", "partition", "offsets", "read",
           "outside", r->dry_run ? "would-ins" : "inserted", "re-sends", "forks", "gaps", "breaks",
           "dlq");
    for (size_t i = 0; i < r->nparts; i++) {
        char name[16];
        snprintf(name, sizeof(name), "%d", (int)r->parts[i].partition);
        print_row(name, r->parts[i].start, r->parts[i].end, &r->parts[i].n);
    }
    print_row("total", -1, -1, &r->total);
}

int cmd_replay(const struct aggr_config *cfg, int argc, char **argv,
               const volatile sig_atomic_t *stop)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"partitions", required_argument, NULL, 'p'},
        {"from-offset", required_argument, NULL, 'o'},
        {"dry-run", no_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    struct replay_opts ro = {.from_ms = REPLAY_TIME_ANY_FROM,
                             .to_ms = REPLAY_TIME_ANY_TO,
                             .progress = stderr,
                             .stop = stop};
    int32_t *parts = NULL;
    struct replay_from_offset *offs = NULL;
    bool json = false, have_from = false;
    int64_t now = time_now_us(), t;
    int rc = PROG_EXIT_USAGE, ch;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
        case 't':
            if (cmd_parse_time(optarg, now, &t) != 0) {
                rc = usage("bad time \"%s\"", optarg);
                goto out;
            }
            /* Kafka timestamps are milliseconds: round the start down and
             * the end up, so that [from, to) holds what the µs range does. */
            if (ch == 'f') {
                ro.from_ms = t >= 0 ? t / 1000 : -((-t + 999) / 1000);
                have_from = true;
            } else {
                ro.to_ms = t >= 0 ? (t + 999) / 1000 : -(-t / 1000);
            }
            break;
        case 'p':
            free(parts);
            if (parse_partitions(optarg, &parts, &ro.npartitions) != 0) {
                rc = usage("bad partition list \"%s\"", optarg);
                goto out;
            }
            ro.partitions = parts;
            break;
        case 'o':
            free(offs);
            if (parse_offsets(optarg, &offs, &ro.noffsets) != 0) {
                rc = usage("bad --from-offset \"%s\" (P:O[,P:O...], each partition once)", optarg);
                goto out;
            }
            ro.offsets = offs;
            break;
        case 'n':
            ro.dry_run = true;
            break;
        case 'j':
            json = true;
            break;
        default:
            rc = usage("unknown option or missing argument: %s", argv[optind - 1]);
            goto out;
        }
    }
    if (optind < argc) {
        rc = usage("unexpected argument \"%s\"", argv[optind]);
        goto out;
    }
    if (have_from == (ro.noffsets > 0)) {
        rc = usage("%s", "give either --from TIME or --from-offset P:O");
        goto out;
    }
    if (ro.noffsets && ro.partitions) {
        rc = usage("%s", "--partitions does not go with --from-offset (it names them)");
        goto out;
    }
    if (ro.from_ms != REPLAY_TIME_ANY_FROM && ro.to_ms != REPLAY_TIME_ANY_TO &&
        ro.from_ms >= ro.to_ms) {
        rc = usage("%s", "--from must be before --to");
        goto out;
    }
    struct replay_report rep;
    char err[1024] = "";
    rc = (int)replay_run(cfg, &ro, &rep, err, sizeof(err));
    if (json)
        print_json(&rep, rc, err);
    else
        print_table(&rep, rc, err);
    fflush(stdout);
    replay_report_release(&rep);
out:
    free(parts);
    free(offs);
    return rc;
}
