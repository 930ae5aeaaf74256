/* `auditrail-aggregator --config FILE verify …` (aggregator/cmd.h): run
 * verify.c over a range and print its findings, as text or JSON lines, on
 * stdout; the summary last. Exit 0 intact, 1 problems, 2 usage, 4 database
 * unavailable. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/cmd.h"
#include "aggregator/partitions.h"
#include "aggregator/proof_heads.h"
#include "aggregator/proof_key.h"
#include "aggregator/verify.h"
#include "common/prog.h"
#include "common/timeutil.h"

#define VERIFY_USAGE_TEXT                                                                          \
    "usage: auditrail-aggregator --config FILE verify [--stream ID] [--from TIME] [--to TIME]\n"   \
    "         [--tenant T] [--against FILE|kafka[:TOPIC] [--pubkey FILE]...] [--workers N] "       \
    "[--json]\n"                                                                                   \
    "TIME: RFC 3339 (2026-11-26T00:00:00Z) or relative (-24h, -30m, -7d, now)\n"

struct out {
    bool json;
    FILE *f;
};

static int usage(const char *fmt, const char *arg)
{
    return cmd_usage("verify", VERIFY_USAGE_TEXT, fmt, arg);
}

static void print_finding(void *ud, const struct verify_finding *f)
{
    struct out *o = ud;
    char t[TIME_RFC3339_LEN] = "";
    if (f->event_time_us != INT64_MIN)
        time_format_us(f->event_time_us, t);
    bool problem = verify_kind_is_problem(f->kind);
    if (o->json) {
        json_t *j = verify_finding_json(f);
        char *s = json_dumps(j, JSON_COMPACT);
        fprintf(o->f, "%s\n", s);
        free(s);
        json_decref(j);
        return;
    }
    fprintf(o->f, "%-7s %-20s stream %s seq %" PRId64, problem ? "problem" : "note",
            verify_kind_name(f->kind), f->stream, f->seq);
    if (f->seq_end != f->seq)
        fprintf(o->f, "..%" PRId64, f->seq_end);
    if (f->stored[0])
        fprintf(o->f, " stored %s", f->stored);
    if (f->computed[0])
        fprintf(o->f, " %s %s",
                f->kind == VERIFY_HASH_MISMATCH || f->kind == VERIFY_ID_MISMATCH ? "computed"
                                                                                 : "expected",
                f->computed);
    if (t[0])
        fprintf(o->f, " time %s", t);
    fprintf(o->f, ": %s\n", f->detail);
}

static void print_summary(const struct out *o, const struct verify_report *r, enum verify_status st,
                          const char *err)
{
    double s = (double)r->elapsed_us / 1e6;
    if (o->json) {
        json_t *j = json_pack("{s:o}", "summary", verify_summary_json(r, st, err));
        char *txt = json_dumps(j, JSON_COMPACT);
        fprintf(o->f, "%s\n", txt);
        free(txt);
        json_decref(j);
        return;
    }
    fprintf(o->f, "verify: %" PRIu64 " streams, %" PRIu64 " records, %.1f MB in %.2f s", r->streams,
            r->records, (double)r->bytes / 1e6, s);
    if (st == VERIFY_UNAVAILABLE) {
        fprintf(o->f, ": UNAVAILABLE (%s)\n", err);
        return;
    }
    if (r->notes)
        fprintf(o->f, ", %" PRIu64 " notes", r->notes);
    if (!r->problems) {
        fprintf(o->f, ": INTACT\n");
        return;
    }
    fprintf(o->f, ": %" PRIu64 " PROBLEMS (", r->problems);
    const char *sep = "";
    for (int k = 0; k < VERIFY_KIND_COUNT; k++)
        if (r->by_kind[k] && verify_kind_is_problem((enum verify_kind)k)) {
            fprintf(o->f, "%s%s %" PRIu64, sep, verify_kind_name((enum verify_kind)k),
                    r->by_kind[k]);
            sep = ", ";
        }
    fprintf(o->f, ")\n");
}

/* At most this many --pubkey (the keys of successive rotations). */
#define MAX_PUBKEYS 8

/* --against: the signed heads, checked with the --pubkey keys or with the
 * public half of proof.key_file. VERIFY_INTACT when loaded, else the exit
 * status. */
static int load_heads(const struct aggr_config *cfg, const char *src, const char *const *pubkeys,
                      size_t npub, int64_t horizon_us, struct out *out, struct proof_key **keys,
                      struct proof_heads **heads)
{
    char err[512];
    if (npub == 0 && !cfg->proof.key_file)
        return usage("%s", "--against needs --pubkey FILE (or proof.key_file)");
    for (size_t i = 0; i < (npub ? npub : 1); i++) {
        keys[i] = npub ? proof_key_load(pubkeys[i], true, err, sizeof(err))
                       : proof_key_load(cfg->proof.key_file, false, err, sizeof(err));
        if (!keys[i])
            return usage("%s", err);
    }
    *heads = proof_heads_new((const struct proof_key *const *)keys, npub ? npub : 1, horizon_us);
    int rc;
    if (strcmp(src, "kafka") == 0 || strncmp(src, "kafka:", 6) == 0) {
        const char *topic = src[5] == ':' ? src + 6 : cfg->proof.topic;
        if (!topic || !*topic)
            return usage("%s", "--against kafka: no proof topic");
        if ((rc = proof_heads_load_kafka(*heads, &cfg->kafka, topic, err, sizeof(err))) != 0) {
            fprintf(stderr, "auditrail-aggregator verify: %s\n", err);
            return VERIFY_UNAVAILABLE;
        }
    } else if (proof_heads_load_file(*heads, src, err, sizeof(err)) != 0) {
        return usage("%s", err);
    }
    proof_heads_finish(*heads, print_finding, out);
    const struct proof_heads_stats *st = proof_heads_stats(*heads);
    fprintf(stderr,
            "verify: against %s: %" PRIu64 " lines, %" PRIu64 " heads, %" PRIu64
            " rounds (last %" PRIu64 ", tree size %" PRIu64 "), %" PRIu64 " streams, %" PRIu64
            " bad signatures, %" PRIu64 " unreadable lines\n",
            src, st->lines, st->heads, st->rounds, st->last_round, st->last_tree_size, st->streams,
            st->bad_signatures, st->bad_lines);
    if (st->streams == 0)
        fprintf(stderr, "verify: warning: no valid signed head in %s\n", src);
    return VERIFY_INTACT;
}

int cmd_verify(const struct aggr_config *cfg, int argc, char **argv,
               const volatile sig_atomic_t *stop)
{
    static const struct option opts[] = {
        {"stream", required_argument, NULL, 's'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"tenant", required_argument, NULL, 'T'},
        {"workers", required_argument, NULL, 'w'},
        {"json", no_argument, NULL, 'j'},
        {"against", required_argument, NULL, 'a'},
        {"pubkey", required_argument, NULL, 'k'},
        {NULL, 0, NULL, 0},
    };
    struct verify_opts vo = {
        .from_us = VERIFY_UNBOUNDED_FROM, .to_us = VERIFY_UNBOUNDED_TO, .stop = stop};
    struct out out = {.f = stdout};
    const char *against = NULL, *pubkeys[MAX_PUBKEYS];
    size_t npub = 0;
    int64_t now = time_now_us();
    int ch;
    optind = 0; /* a fresh scan (glibc) */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            vo.stream = optarg;
            break;
        case 'T':
            vo.tenant = optarg;
            break;
        case 'f':
            if (cmd_parse_time(optarg, now, &vo.from_us) != 0)
                return usage("bad time \"%s\"", optarg);
            break;
        case 't':
            if (cmd_parse_time(optarg, now, &vo.to_us) != 0)
                return usage("bad time \"%s\"", optarg);
            break;
        case 'w': {
            char *end = NULL;
            long w = strtol(optarg, &end, 10);
            if (*end || w < 1 || w > 64)
                return usage("--workers must be 1..64, not \"%s\"", optarg);
            vo.workers = (unsigned)w;
            break;
        }
        case 'j':
            out.json = true;
            break;
        case 'a':
            against = optarg;
            break;
        case 'k':
            if (npub == MAX_PUBKEYS)
                return usage("at most %s --pubkey", "8");
            pubkeys[npub++] = optarg;
            break;
        default:
            return usage("unknown option or missing argument: %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage("unexpected argument \"%s\"", argv[optind]);
    if (vo.from_us >= vo.to_us)
        return usage("%s", "--from must be before --to");
    if (vo.stream && vo.tenant)
        return usage("%s", "--stream and --tenant exclude each other");
    if (npub && !against)
        return usage("%s", "--pubkey goes with --against");
    vo.horizon_us = part_day_floor(now) - (int64_t)cfg->partitions.retention_days * PART_DAY_US;

    struct proof_key *keys[MAX_PUBKEYS] = {NULL};
    struct proof_heads *heads = NULL;
    int rc = VERIFY_INTACT;
    if (against &&
        (rc = load_heads(cfg, against, pubkeys, npub, vo.horizon_us, &out, keys, &heads)) != 0)
        goto out;
    vo.heads = heads ? proof_heads_view(heads) : NULL;
    struct verify_report rep;
    char err[512] = "";
    enum verify_status st =
        verify_run(cfg->postgres.primary, &vo, print_finding, &out, &rep, err, sizeof(err));
    uint64_t bad = heads ? proof_heads_stats(heads)->bad_signatures : 0;
    if (bad) { /* reported (one by one) while loading; counted here */
        rep.problems += bad;
        rep.by_kind[VERIFY_BAD_SIGNATURE] += bad;
        if (st == VERIFY_INTACT)
            st = VERIFY_PROBLEMS;
    }
    print_summary(&out, &rep, st, err);
    rc = (int)st;
out:
    fflush(out.f);
    proof_heads_free(heads);
    for (size_t i = 0; i < MAX_PUBKEYS; i++)
        proof_key_free(keys[i]);
    return rc;
}
