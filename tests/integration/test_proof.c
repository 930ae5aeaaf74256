/* Signed chain heads on the real stack: `proof keygen` writes a 0600 key,
 * `proof pubkey` its public half; `proof sign` signs the changed streams'
 * heads and the Merkle root, stores them and appends them to the proof
 * file and topic. The test checks, independently of the product code, the
 * byte layouts of the signed messages (rebuilt here from the JSON fields),
 * every signature with the `openssl pkeyutl -verify -rawin` command line,
 * the key id with `openssl pkey`, and the Merkle root (RFC 6962, computed
 * here with SHA256()). `proof inclusion`/`consistency` give proofs that
 * verify. `verify --against` (file or topic) detects what a database
 * administrator who recomputes the chain can hide from a plain verify: a
 * rewritten tail, a deleted tail, a dropped partition; a forged head line
 * is a bad signature; a retention cut anchored by a signed head is a note.
 * Only one signer signs a round (advisory lock). The aggregator signs on its
 * own every proof.interval_s and alerts when a sink fails. */
#include <inttypes.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aggregator/merkle.h"
#include "aggregator/partitions.h"
#include "aggregator/pg_writer.h"
#include "common/timeutil.h"
#include "tests/integration/storage_fixtures.h"
#include "tests/support/kafka.h"
#include "tests/support/probe.h"
#include "tests/support/proc.h"
#include "tests/support/webhook.h"

#define NSTREAMS 3
#define NRECS    40 /* per stream: 20 on day 0, 20 on day 1 */
/* Day 0 is five days ago, day 1 four: with retention_days 4 the horizon is
 * day 1's start, so day 0 may be dropped by retention and day 1 may not. */
#define RETENTION_DAYS 4

static char *ci, *dir, *cfg, *key, *pub, *heads_file, *topic;
static int64_t t0_us; /* day 0 */
static PGconn *db;
static struct fx_chain chains[NSTREAMS];
static struct pg_writer *w;

static int64_t rec_time(int seq)
{
    return t0_us + (seq < NRECS / 2 ? 0 : FX_DAY_US) + (int64_t)seq * 1000000;
}

/* DROP TABLE of day d's partition (0 or 1). */
static void drop_day(int d)
{
    char name[PART_NAME_LEN], sql[128];
    part_day_name(t0_us + d * FX_DAY_US, name);
    snprintf(sql, sizeof(sql), "DROP TABLE auditrail.%s", name);
    test_pg_exec(db, sql);
}

/* Records from..to-1 of every stream, written by the pg_writer. */
static void fill(int from, int to)
{
    struct batch b;
    batch_init(&b, "audit");
    for (int i = from; i < to; i++)
        for (int s = 0; s < NSTREAMS; s++) {
            char line[64];
            snprintf(line, sizeof(line), "{\"actor\":\"u%d\",\"n\":%d}", s, i);
            fx_add_str(&b, &chains[s], line, rec_time(i), 0, (int64_t)b.n);
        }
    struct pg_write_stats st = {0};
    char err[512];
    ck_assert_msg(pg_writer_write(w, &b, &st, err, sizeof(err)) == PG_OK, "write: %s", err);
    pg_write_stats_release(&st);
    batch_release(&b);
}

/* Run the aggregator binary with args (config first unless with_cfg is
 * false); stdout into *out (heap, may be NULL). Returns the exit status. */
static int run(bool with_cfg, const char *args, char **out)
{
    char *bin = test_bin("auditrail-aggregator");
    char *cmd = xasprintf("%s %s%s %s 2>>%s/stderr.log", bin, with_cfg ? "--config " : "",
                          with_cfg ? cfg : "", args, dir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    struct buf b = BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        buf_add(&b, chunk, n);
    int st = pclose(p);
    free(cmd);
    free(bin);
    if (out)
        *out = buf_detach(&b, NULL);
    else
        buf_release(&b);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = NULL;
    ck_assert_int_ge(vasprintf(&cmd, fmt, ap), 0);
    va_end(ap);
    int st = system(cmd);
    free(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* proof_extra: more keys of the proof section; extra: more sections. */
static void write_config(const char *proof_extra, const char *extra)
{
    char *yaml = xasprintf("kafka:\n  brokers: \"%s\"\n  topic: %s.events\n  dlq_topic: %s.dlq\n"
                           "postgres: {primary: \"%s\"}\n"
                           "partitions: {retention_days: %d}\n"
                           "log: {level: warn}\n"
                           "proof:\n  key_file: %s\n  topic: %s\n  file: %s\n%s%s",
                           test_stack("STACK_KAFKA_BROKERS"), topic, topic, ci, RETENTION_DAYS, key,
                           topic, heads_file, proof_extra ? proof_extra : "", extra ? extra : "");
    test_write_file(cfg, yaml, strlen(yaml), false);
    free(yaml);
}

static void setup(void)
{
    ci = fx_fresh_migrated("proof");
    db = test_pg_connect(ci);
    dir = test_tmpdir("proof");
    cfg = xasprintf("%s/aggregator.yaml", dir);
    key = xasprintf("%s/signing.pem", dir);
    pub = xasprintf("%s/public.pem", dir);
    heads_file = xasprintf("%s/heads.jsonl", dir);
    topic = test_kafka_topic("proof", 2);
    char err[512];
    w = pg_writer_new(ci, "g1", NULL, err, sizeof(err));
    ck_assert_msg(w != NULL, "%s", err);
    for (int s = 0; s < NSTREAMS; s++)
        fx_chain_init(&chains[s], 100u + (unsigned)s);
    t0_us = part_day_floor(time_now_us()) - (RETENTION_DAYS + 1) * FX_DAY_US;
    write_config(NULL, NULL);
    ck_assert_int_eq(run(false, "proof keygen", NULL), 2);
    char *a = xasprintf("proof keygen %s", key);
    ck_assert_int_eq(run(false, a, NULL), 0);
    free(a);
    a = xasprintf("proof pubkey >%s", pub);
    ck_assert_int_eq(run(true, a, NULL), 0);
    free(a);
}

static void teardown(void)
{
    pg_writer_free(w);
    PQfinish(db);
    test_pg_drop_db(ci);
    test_rmtree(dir);
    free(ci);
    free(dir);
    free(cfg);
    free(key);
    free(pub);
    free(heads_file);
    free(topic);
}

static void unhex(const char *h, uint8_t *out, size_t n)
{
    ck_assert_uint_eq(strlen(h), 2 * n);
    ck_assert_int_eq(hex_decode(h, n, out), 0);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static json_int_t ji(json_t *o, const char *k)
{
    ck_assert_msg(json_is_integer(json_object_get(o, k)), "no %s", k);
    return json_integer_value(json_object_get(o, k));
}

static const char *js(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    ck_assert_msg(v != NULL, "no %s", k);
    return v;
}

/* The signed bytes of a line, rebuilt here from its fields (README's
 * layout); asserted equal to its "message". Returns the length. */
static size_t rebuild(json_t *o, uint8_t *m)
{
    size_t n = 0;
    if (strcmp(js(o, "type"), "head") == 0) {
        memcpy(m, "auditrail:head:v1", 17);
        put64(m + 17, (uint64_t)ji(o, "round"));
        unhex(js(o, "stream"), m + 25, 16);
        put64(m + 41, (uint64_t)ji(o, "seq"));
        unhex(js(o, "hash"), m + 49, 32);
        put64(m + 81, (uint64_t)ji(o, "event_time_us"));
        put64(m + 89, (uint64_t)ji(o, "signed_at_us"));
        n = 97;
    } else {
        memcpy(m, "auditrail:round:v1", 18);
        put64(m + 18, (uint64_t)ji(o, "round"));
        put64(m + 26, (uint64_t)ji(o, "tree_size"));
        unhex(js(o, "root"), m + 34, 32);
        put64(m + 66, (uint64_t)ji(o, "signed_at_us"));
        n = 74;
    }
    uint8_t stated[128];
    unhex(js(o, "message"), stated, n);
    ck_assert_msg(memcmp(stated, m, n) == 0, "message differs from its fields");
    return n;
}

/* openssl pkeyutl -verify -rawin on (msg, sig): its exit status. */
static int openssl_verify(const uint8_t *msg, size_t n, const char *sig_hex)
{
    uint8_t sig[64];
    unhex(sig_hex, sig, 64);
    char *mf = xasprintf("%s/msg.bin", dir), *sf = xasprintf("%s/sig.bin", dir);
    test_write_file(mf, msg, n, false);
    test_write_file(sf, sig, 64, false);
    int st =
        sh("openssl pkeyutl -verify -pubin -inkey %s -rawin -in %s -sigfile %s >/dev/null 2>&1",
           pub, mf, sf);
    free(mf);
    free(sf);
    return st;
}

/* Every line of the heads file. */
static json_t *read_lines(void)
{
    FILE *f = fopen(heads_file, "r");
    ck_assert_ptr_nonnull(f);
    json_t *a = json_array();
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        json_t *o = json_loads(line, 0, NULL);
        ck_assert_ptr_nonnull(o);
        json_array_append_new(a, o);
    }
    fclose(f);
    return a;
}

/* RFC 6962 MTH over leaf hashes l[0..n), written out for the test. */
static void mth(uint8_t (*l)[32], size_t n, uint8_t out[32])
{
    if (n == 1) {
        memcpy(out, l[0], 32);
        return;
    }
    size_t k = 1;
    while (k * 2 < n)
        k *= 2;
    uint8_t buf[65];
    buf[0] = 1;
    mth(l, k, buf + 1);
    mth(l + k, n - k, buf + 33);
    SHA256(buf, 65, out);
}

static json_t *sign(void)
{
    char *out = NULL;
    ck_assert_int_eq(run(true, "proof sign", &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_msg(j != NULL, "proof sign printed: %s", out);
    free(out);
    return j;
}

START_TEST(signatures_checked_with_openssl)
{
    struct stat sb;
    ck_assert_int_eq(stat(key, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    char *a = xasprintf("proof keygen %s", key);
    ck_assert_int_eq(run(false, a, NULL), 1); /* never overwritten */
    free(a);
    ck_assert_int_eq(sh("openssl pkey -pubin -in %s -noout", pub), 0);

    fill(0, NRECS);
    json_t *r = sign();
    ck_assert(json_is_true(json_object_get(r, "signed")));
    json_t *round = json_object_get(r, "round");
    ck_assert_int_eq(ji(round, "round"), 1);
    ck_assert_int_eq(ji(round, "heads"), NSTREAMS);
    ck_assert_int_eq(ji(round, "tree_size"), NSTREAMS);
    json_decref(r);
    r = sign(); /* nothing changed */
    ck_assert(json_is_false(json_object_get(r, "signed")));
    json_decref(r);
    fill(NRECS, NRECS + 1); /* one more record per stream */
    r = sign();
    ck_assert_int_eq(ji(json_object_get(r, "round"), "tree_size"), 2 * NSTREAMS);
    json_decref(r);

    /* Every line: layout rebuilt here, signature checked by openssl. */
    json_t *lines = read_lines();
    ck_assert_int_eq(json_array_size(lines), 2 * NSTREAMS + 2);
    uint8_t leaves[2 * NSTREAMS][32];
    size_t nleaves = 0, i;
    json_t *o;
    char kid[80] = "";
    char *cmd = xasprintf("openssl pkey -pubin -in %s -outform DER | sha256sum", pub);
    FILE *p = popen(cmd, "r");
    ck_assert(fgets(kid, sizeof(kid), p) != NULL);
    pclose(p);
    free(cmd);
    kid[64] = '\0';
    json_array_foreach(lines, i, o)
    {
        uint8_t m[128];
        size_t n = rebuild(o, m);
        ck_assert_msg(openssl_verify(m, n, js(o, "signature")) == 0, "line %zu refused by openssl",
                      i);
        m[n - 1] ^= 1;
        ck_assert_int_ne(openssl_verify(m, n, js(o, "signature")), 0);
        m[n - 1] ^= 1;
        if (strcmp(js(o, "type"), "head") == 0) {
            ck_assert_int_eq(ji(o, "leaf"), (json_int_t)nleaves);
            uint8_t buf[1 + 97];
            buf[0] = 0;
            memcpy(buf + 1, m, 97);
            SHA256(buf, sizeof(buf), leaves[nleaves++]);
            /* The head is the stream's last record as stored. */
            char q[256];
            snprintf(q, sizeof(q),
                     "SELECT encode(hash, 'hex') FROM auditrail.events WHERE stream_id = '%s'"
                     " AND seq = %lld",
                     js(o, "stream"), (long long)ji(o, "seq"));
            char *h = test_pg_scalar(db, q);
            ck_assert_str_eq(h, js(o, "hash"));
            free(h);
        } else {
            uint8_t root[32];
            ck_assert_int_eq(ji(o, "tree_size"), (json_int_t)nleaves);
            mth(leaves, nleaves, root);
            char hex[65];
            hex_encode(root, 32, hex);
            ck_assert_str_eq(js(o, "root"), hex);
            ck_assert_str_eq(js(o, "key_id"), kid);
        }
    }
    json_decref(lines);

    /* The same lines in the proof topic: heads keyed by stream, rounds by
     * "round:N". */
    struct tk_msgs msgs = {0};
    tk_read_topic(test_stack("STACK_KAFKA_BROKERS"), topic, &msgs);
    size_t n = msgs.n;
    ck_assert_uint_eq(n, 2 * NSTREAMS + 2);
    int rounds = 0;
    for (size_t k = 0; k < n; k++) {
        json_t *x = json_loadb(msgs.v[k].val, msgs.v[k].len, 0, NULL);
        ck_assert_ptr_nonnull(x);
        if (strcmp(js(x, "type"), "round") == 0) {
            char want[32];
            snprintf(want, sizeof(want), "round:%lld", (long long)ji(x, "round"));
            ck_assert_uint_eq(msgs.v[k].keylen, strlen(want));
            ck_assert(memcmp(msgs.v[k].key, want, strlen(want)) == 0);
            rounds++;
        } else {
            ck_assert_uint_eq(msgs.v[k].keylen, 32);
            ck_assert(memcmp(msgs.v[k].key, js(x, "stream"), 32) == 0);
        }
        json_decref(x);
    }
    ck_assert_int_eq(rounds, 2);
    tk_msgs_release(&msgs);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.chain_heads"), 2 * NSTREAMS);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.chain_rounds"
                                " WHERE published_at IS NOT NULL"),
                     2);
}
END_TEST

START_TEST(inclusion_and_consistency_proofs)
{
    fill(0, 10);
    json_decref(sign());
    fill(10, 12);
    json_decref(sign());
    fill(12, 13);
    json_decref(sign());
    /* Roots as the sink has them. */
    json_t *lines = read_lines(), *o;
    uint8_t roots[4][32];
    uint64_t sizes[4] = {0};
    size_t i;
    json_array_foreach(lines, i, o)
    {
        if (strcmp(js(o, "type"), "round") == 0) {
            json_int_t r = ji(o, "round");
            unhex(js(o, "root"), roots[r], 32);
            sizes[r] = (uint64_t)ji(o, "tree_size");
        }
    }
    json_decref(lines);
    ck_assert_uint_eq(sizes[3], 3 * NSTREAMS);

    char args[128], *out = NULL;
    /* No head at or below seq 5 (round 1 signed seq 9). */
    snprintf(args, sizeof(args), "proof inclusion %s 5", chains[1].stream);
    ck_assert_int_eq(run(true, args, NULL), 1);
    /* Round 1's head of stream 1, in the latest tree. */
    snprintf(args, sizeof(args), "proof inclusion %s 10", chains[1].stream);
    ck_assert_int_eq(run(true, args, &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    ck_assert_ptr_nonnull(j);
    json_t *head = json_object_get(j, "head");
    ck_assert_int_eq(ji(head, "seq"), 9);
    uint8_t m[128], leaf[32], path[MERKLE_MAX_PROOF][32];
    size_t n = rebuild(head, m), len = json_array_size(json_object_get(j, "path"));
    merkle_leaf_hash(m, n, leaf);
    for (size_t k = 0; k < len; k++)
        unhex(json_string_value(json_array_get(json_object_get(j, "path"), k)), path[k], 32);
    ck_assert_int_eq(ji(j, "tree_size"), (json_int_t)sizes[3]);
    ck_assert(
        merkle_verify_inclusion(leaf, (uint64_t)ji(j, "leaf"), sizes[3], path, len, roots[3]));
    json_decref(j);

    ck_assert_int_eq(run(true, "proof consistency 1 3", &out), 0);
    j = json_loads(out, 0, NULL);
    free(out);
    len = json_array_size(json_object_get(j, "proof"));
    for (size_t k = 0; k < len; k++)
        unhex(json_string_value(json_array_get(json_object_get(j, "proof"), k)), path[k], 32);
    ck_assert(merkle_verify_consistency(sizes[1], sizes[3], roots[1], roots[3], path, len));
    ck_assert(!merkle_verify_consistency(sizes[1], sizes[3], roots[2], roots[3], path, len));
    json_decref(j);
    ck_assert_int_eq(run(true, "proof consistency 3 1", NULL), 2);
    ck_assert_int_eq(run(true, "proof consistency 1 9", NULL), 1);
}
END_TEST

/* verify --against (the heads file, or the topic): status and findings. */
static int against(const char *src, const char *extra, json_t **findings)
{
    char *args =
        xasprintf("verify --json --against %s --pubkey %s %s", src, pub, extra ? extra : "");
    char *out = NULL;
    int st = run(true, args, &out);
    free(args);
    *findings = json_array();
    char *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(l, 0, NULL);
        ck_assert_msg(o != NULL, "not JSON: %s", l);
        if (json_object_get(o, "summary"))
            json_decref(o);
        else
            json_array_append_new(*findings, o);
    }
    free(out);
    return st;
}

static size_t count_kind(json_t *f, const char *kind, int stream)
{
    size_t n = 0, i;
    json_t *o;
    json_array_foreach(f, i, o)
    {
        if (!strcmp(js(o, "kind"), kind) &&
            (stream < 0 || !strcmp(js(o, "stream"), chains[stream].stream)))
            n++;
    }
    return n;
}

static int plain_verify(void)
{
    return run(true, "verify >/dev/null", NULL);
}

/* Rewrite stream s from seq `from` on with new record bytes and a
 * recomputed chain, and its auditrail.streams row: what a DBA with time and
 * the published algorithm can do. */
static void rewrite_tail(int s, int from)
{
    char q[256];
    snprintf(q, sizeof(q),
             "SELECT encode(prev_hash, 'hex') FROM auditrail.events WHERE stream_id = '%s'"
             " AND seq = %d",
             chains[s].stream, from);
    char *ph = test_pg_scalar(db, q);
    uint8_t prev[32];
    unhex(ph, prev, 32);
    free(ph);
    snprintf(q, sizeof(q), "SELECT max(seq) FROM auditrail.events WHERE stream_id = '%s'",
             chains[s].stream);
    int64_t last = fx_int(db, q);
    for (int64_t seq = from; seq <= last; seq++) {
        char raw[64], hh[65], pp[65], sql[768];
        snprintf(raw, sizeof(raw), "{\"actor\":\"mallory\",\"n\":%lld}", (long long)seq);
        uint8_t buf[32 + 8 + 64], h[32];
        memcpy(buf, prev, 32);
        put64(buf + 32, (uint64_t)seq);
        memcpy(buf + 40, raw, strlen(raw));
        SHA256(buf, 40 + strlen(raw), h);
        hex_encode(h, 32, hh);
        hex_encode(prev, 32, pp);
        snprintf(sql, sizeof(sql),
                 "UPDATE auditrail.events SET raw = convert_to('%s', 'UTF8'),"
                 " hash = decode('%s', 'hex'), prev_hash = decode('%s', 'hex'),"
                 " id = substr('%s', 1, 32)::uuid WHERE stream_id = '%s' AND seq = %lld",
                 raw, hh, pp, hh, chains[s].stream, (long long)seq);
        test_pg_exec(db, sql);
        memcpy(prev, h, 32);
    }
    char hh[65], sql[256];
    hex_encode(prev, 32, hh);
    snprintf(sql, sizeof(sql),
             "UPDATE auditrail.streams SET last_hash = decode('%s', 'hex') WHERE stream_id = '%s'",
             hh, chains[s].stream);
    test_pg_exec(db, sql);
}

START_TEST(against_detects_what_a_recomputed_chain_hides)
{
    fill(0, NRECS);
    json_decref(sign());
    json_t *f;
    ck_assert_int_eq(against(heads_file, NULL, &f), 0);
    ck_assert_int_eq(json_array_size(f), 0);
    json_decref(f);

    /* A rewritten tail with recomputed hashes: a plain verify sees an
     * intact chain; the signed head does not match. */
    rewrite_tail(1, 30);
    ck_assert_int_eq(plain_verify(), 0);
    ck_assert_int_eq(against(heads_file, NULL, &f), 1);
    ck_assert_uint_eq(count_kind(f, "signed_head_mismatch", 1), 1);
    ck_assert_uint_eq(json_array_size(f), 1);
    json_decref(f);
    /* The proof topic tells the same. */
    ck_assert_int_eq(against("kafka", NULL, &f), 1);
    ck_assert_uint_eq(count_kind(f, "signed_head_mismatch", 1), 1);
    json_decref(f);

    /* A deleted tail, the state row moved back. */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "DELETE FROM auditrail.events WHERE stream_id = '%s' AND seq >= 35;"
             "UPDATE auditrail.streams s SET last_seq = 34, last_hash = e.hash"
             " FROM auditrail.events e WHERE e.stream_id = s.stream_id AND e.seq = 34"
             " AND s.stream_id = '%s'",
             chains[2].stream, chains[2].stream);
    test_pg_exec(db, sql);
    ck_assert_int_eq(against(heads_file, NULL, &f), 1);
    ck_assert_uint_eq(count_kind(f, "signed_head_missing", 2), 1);
    json_decref(f);

    /* A dropped partition (day 1), every state row moved back. */
    drop_day(1);
    test_pg_exec(db, "UPDATE auditrail.streams s SET last_seq = e.seq, last_hash = e.hash"
                     " FROM (SELECT DISTINCT ON (stream_id) stream_id, seq, hash"
                     "  FROM auditrail.events ORDER BY stream_id, seq DESC) e"
                     " WHERE e.stream_id = s.stream_id");
    ck_assert_int_eq(plain_verify(), 0);
    ck_assert_int_eq(against(heads_file, NULL, &f), 1);
    for (int s = 0; s < NSTREAMS; s++)
        ck_assert_uint_eq(count_kind(f, "signed_head_missing", s), 1);
    json_decref(f);
}
END_TEST

START_TEST(forged_head_is_a_bad_signature)
{
    fill(0, 5);
    json_decref(sign());
    json_t *lines = read_lines();
    json_t *h = json_deep_copy(json_array_get(lines, 0));
    json_decref(lines);
    /* A head claiming a later seq, signed by nobody. */
    json_object_set_new(h, "seq", json_integer(1000));
    json_object_del(h, "message");
    char *s = json_dumps(h, JSON_COMPACT);
    char *line = xasprintf("%s\n", s);
    test_write_file(heads_file, line, strlen(line), true);
    free(line);
    free(s);
    json_decref(h);
    json_t *f;
    ck_assert_int_eq(against(heads_file, NULL, &f), 1);
    ck_assert_uint_eq(count_kind(f, "bad_signature", 0), 1);
    ck_assert_uint_eq(json_array_size(f), 1); /* the real head still checks out */
    json_decref(f);
    /* Checked with another key, no head verifies. */
    char *other = xasprintf("%s/other.pem", dir), *cmd = xasprintf("proof keygen %s", other);
    ck_assert_int_eq(run(false, cmd, NULL), 0);
    char *args = xasprintf("verify --against %s --pubkey %s >/dev/null", heads_file, other);
    ck_assert_int_eq(run(true, args, NULL), 2); /* a private key is not a public PEM */
    ck_assert_int_eq(sh("openssl pkey -in %s -pubout -out %s.pub", other, other), 0);
    free(args);
    args = xasprintf("verify --json --against %s --pubkey %s.pub", heads_file, other);
    char *out = NULL;
    ck_assert_int_eq(run(true, args, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "\"bad_signature\""));
    free(out);
    free(args);
    free(cmd);
    free(other);
}
END_TEST

/* A key rotated between two rounds: the heads file holds signatures of both
 * keys; verify --against takes every key's public half (--pubkey twice) and
 * finds the database intact, while either key alone leaves the other's
 * heads as bad signatures. */
START_TEST(rotated_key_both_public_keys)
{
    fill(0, 5);
    json_decref(sign());
    char *old_pub = xasprintf("%s/old.pub", dir), *new_key = xasprintf("%s/signing2.pem", dir);
    ck_assert_int_eq(sh("cp %s %s", pub, old_pub), 0);
    char *cmd = xasprintf("proof keygen %s", new_key);
    ck_assert_int_eq(run(false, cmd, NULL), 0);
    free(cmd);
    free(key);
    key = new_key; /* the rotation: proof.key_file names the new key */
    write_config(NULL, NULL);
    ck_assert_int_eq(sh("openssl pkey -in %s -pubout -out %s", key, pub), 0);
    fill(5, 10);
    json_decref(sign());

    json_t *f;
    char *extra = xasprintf("--pubkey %s", old_pub);
    ck_assert_int_eq(against(heads_file, extra, &f), 0);
    ck_assert_uint_eq(json_array_size(f), 0);
    json_decref(f);
    /* the new key alone: round 1 (its heads and root) no longer verifies */
    ck_assert_int_eq(against(heads_file, NULL, &f), 1);
    for (int s = 0; s < NSTREAMS; s++)
        ck_assert_uint_eq(count_kind(f, "bad_signature", s), 1);
    json_decref(f);
    /* the old key alone: round 2's heads are the bad ones */
    char *args = xasprintf("verify --json --against %s --pubkey %s", heads_file, old_pub);
    char *out = NULL;
    ck_assert_int_eq(run(true, args, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "\"bad_signature\""));
    free(out);
    free(args);
    /* more keys than verify takes is a usage error */
    struct buf many = BUF_INIT;
    for (int i = 0; i < 9; i++)
        buf_addf(&many, " --pubkey %s", pub);
    args = xasprintf("verify --against %s%.*s", heads_file, (int)many.len, many.p);
    ck_assert_int_eq(run(true, args, NULL), 2);
    free(args);
    buf_release(&many);
    free(extra);
    free(old_pub);
}
END_TEST

START_TEST(retention_cut_anchored_by_a_signed_head)
{
    /* Day 0 is older than the retention horizon, day 1 is not. */
    fill(0, NRECS / 2);
    json_decref(sign());
    fill(NRECS / 2, NRECS);
    json_decref(sign());
    drop_day(0);
    json_t *f;
    ck_assert_int_eq(against(heads_file, NULL, &f), 0);
    for (int s = 0; s < NSTREAMS; s++)
        ck_assert_uint_eq(count_kind(f, "retention_cut", s), 1);
    json_decref(f);
    /* Without the signed heads, the missing start is a gap. */
    ck_assert_int_eq(plain_verify(), 1);
    /* The first kept record altered at the cut: its prev no longer is the
     * signed head at seq 19. */
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE auditrail.events SET prev_hash = sha256('x'::bytea) WHERE stream_id = '%s'"
             " AND seq = %d",
             chains[0].stream, NRECS / 2);
    test_pg_exec(db, sql);
    ck_assert_int_eq(against(heads_file, NULL, &f), 1);
    ck_assert_uint_ge(count_kind(f, "broken_link", 0), 1);
    json_decref(f);
}
END_TEST

START_TEST(one_signer_per_round)
{
    fill(0, 3);
    test_pg_exec(db, "BEGIN; SELECT pg_advisory_xact_lock(6120433012395339376)");
    json_t *r = sign();
    ck_assert(json_is_false(json_object_get(r, "signed")));
    ck_assert_ptr_nonnull(json_object_get(r, "note"));
    json_decref(r);
    test_pg_exec(db, "COMMIT");
    r = sign();
    ck_assert(json_is_true(json_object_get(r, "signed")));
    json_decref(r);
}
END_TEST

START_TEST(aggregator_signs_on_its_own_and_alerts_on_sink_failure)
{
    fill(0, 4);
    struct webhook *hook = webhook_start();
    unsigned port = probe_free_port();
    /* The file sink is a directory: it fails; the topic works. */
    char *extra = xasprintf("http: {listen: \"127.0.0.1:%u\"}\n"
                            "alerts: {url: \"http://127.0.0.1:%u/api/v2/alerts\"}\n",
                            port, webhook_port(hook));
    free(heads_file);
    heads_file = xstrdup(dir);
    write_config("  interval_s: 1\n", extra);
    free(extra);
    char *create = xasprintf("topic create %s.events 1", topic);
    ck_assert_int_eq(test_kafka_ctl(create, NULL, 0), 0);
    free(create);
    char *log = xasprintf("%s/aggregator.log", dir);
    struct proc *a = proc_spawn_program("auditrail-aggregator", cfg, log);
    ck_assert(probe_wait_metric(port, "auditrail_aggregator_proof_rounds_total", 1, 30000));
    ck_assert(probe_wait_metric(
        port, "auditrail_aggregator_proof_sink_failures_total{sink=\"file\"}", 1, 30000));
    ck_assert(webhook_wait(hook, "AuditrailProofSinkFailed", 30000));
    ck_assert_double_eq(probe_metric_value(port, "auditrail_aggregator_proof_heads_signed_total"),
                        NSTREAMS);
    ck_assert_double_gt(
        probe_metric_value(port, "auditrail_aggregator_proof_last_round_timestamp_seconds"), 0);
    ck_assert_int_eq(proc_stop(a, 15000), 0);
    proc_free(a);
    /* The round is stored, not published everywhere: it stays to be
     * published again (published_at NULL) until every sink took it. */
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.chain_rounds"
                                " WHERE published_at IS NULL"),
                     1);
    webhook_stop(hook);
    free(log);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proof");
    TCase *tc = tcase_create("proof");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, signatures_checked_with_openssl);
    tcase_add_test(tc, inclusion_and_consistency_proofs);
    tcase_add_test(tc, against_detects_what_a_recomputed_chain_hides);
    tcase_add_test(tc, forged_head_is_a_bad_signature);
    tcase_add_test(tc, rotated_key_both_public_keys);
    tcase_add_test(tc, retention_cut_anchored_by_a_signed_head);
    tcase_add_test(tc, one_signer_per_round);
    tcase_add_test(tc, aggregator_signs_on_its_own_and_alerts_on_sink_failure);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
