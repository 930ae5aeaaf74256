/* pg_writer against the real stack (a fresh migrated database per test):
 * byte-exact storage, attrs, re-sends, forks, gaps, chain breaks, the offset
 * compare-and-set, data errors, partitions on demand (also from two
 * processes at once) and reconnection. */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aggregator/pg_sql.h"
#include "aggregator/pg_writer.h"
#include "common/timeutil.h"
#include "tests/integration/storage_fixtures.h"

static char *ci;
static PGconn *db; /* the test's own queries */

/* The "writer" fixture: a writer of group g1, a batch of topic "audit" and
 * its write stats, on the fresh database. */
static struct pg_writer *w;
static struct batch b;
static struct pg_write_stats st;

static void setup(void)
{
    ci = fx_fresh_migrated("pgw");
    db = test_pg_connect(ci);
}

static void teardown(void)
{
    PQfinish(db);
    test_pg_drop_db(ci);
    free(ci);
}

static void setup_writer(void)
{
    setup();
    char err[512] = "";
    w = pg_writer_new(ci, "g1", NULL, err, sizeof(err));
    ck_assert_msg(w != NULL, "pg_writer_new: %s", err);
    batch_init(&b, "audit");
    memset(&st, 0, sizeof(st));
}

static void teardown_writer(void)
{
    teardown();
}

/* Write b, which must commit. */
static void write_ok(void)
{
    char err[512] = "";
    enum pg_status r = pg_writer_write(w, &b, &st, err, sizeof(err));
    ck_assert_msg(r == PG_OK, "write: %s: %s", pg_status_name(r), err);
}

/* Let b cover Kafka partition 0 from offset expected to next, and write it. */
static void commit_p0(int64_t expected, int64_t next)
{
    batch_advance(&b, 0, expected, next);
    write_ok();
}

/* Write b, which must fail with want; the error text. */
static const char *write_fails(enum pg_status want)
{
    static char err[512];
    err[0] = '\0';
    enum pg_status r = pg_writer_write(w, &b, &st, err, sizeof(err));
    ck_assert_msg(r == want, "write: %s (wanted %s): %s", pg_status_name(r), pg_status_name(want),
                  err);
    return err;
}

static int64_t q(const char *fmt, const char *a)
{
    char sql[512];
    snprintf(sql, sizeof(sql), fmt, a);
    return fx_int(db, sql);
}

static char *qs(const char *fmt, const char *a, int64_t n)
{
    char sql[512];
    snprintf(sql, sizeof(sql), fmt, a, n);
    return test_pg_scalar(db, sql);
}

static int64_t nevents(void)
{
    return fx_int(db, "SELECT count(*) FROM auditrail.events");
}

static int64_t nincidents(const char *kind)
{
    return q("SELECT count(*) FROM auditrail.integrity_incidents WHERE kind = '%s'", kind);
}

struct rec {
    const char *bytes;
    size_t len;
    bool json;
};

/* Lengths from sizeof: the literals hold NUL bytes. */
#define REC(lit, json)                                                                             \
    {                                                                                              \
        lit, sizeof(lit) - 1, json                                                                 \
    }
static const struct rec recs[] = {
    REC("{\"actor\":\"alice\",\"n\":1}", true),
    REC("plain text line", false),
    REC("a\0b", false),                                    /* NUL byte */
    REC("\xff\xfe not utf-8", false),                      /* invalid UTF-8 */
    REC("{\"x\":\"a\\u0000b\"}", false),                   /* jsonb cannot hold \u0000 */
    REC("[1,2]", false),                                   /* JSON, not an object */
    REC("{\"big\":123456789012345678901234567890}", true), /* beyond int64 */
    REC("{\"k\":\"v\"}\r", true),                          /* CRLF file */
    REC("{\"broken\":", false),
    /* Look like objects, refused by jsonb: retried with attrs NULL. */
    REC("{\"a\":1,}", false),
    REC("{not json}", false),
    REC("{\"k\":\"\xff\"}", false),
    REC("  {\"padded\": true} ", true),
};
#define NRECS (sizeof(recs) / sizeof(recs[0]))

/* recs on chain c into b, at offsets first_off.. of partition 0. */
static void build_recs(struct fx_chain *c, int64_t first_off)
{
    for (size_t i = 0; i < NRECS; i++)
        fx_add(&b, c, recs[i].bytes, recs[i].len, FX_T0 + (int64_t)i * 1000, 0,
               first_off + (int64_t)i);
}

START_TEST(stores_batch_byte_exact)
{
    struct fx_chain c;
    fx_chain_init(&c, 1);
    build_recs(&c, 0);
    commit_p0(-1, NRECS);
    ck_assert_uint_eq(st.inserted, NRECS);
    ck_assert_uint_eq(st.dup_stream + st.dup_pk + st.forks + st.gaps + st.chain_breaks, 0);
    ck_assert_uint_eq(st.partitions_created, 1);
    for (size_t i = 0; i < NRECS; i++)
        ck_assert_int_eq(st.committed[i], 1);
    ck_assert_int_eq(nevents(), (int64_t)NRECS);

    for (size_t i = 0; i < NRECS; i++) {
        char hex[128];
        hex_encode((const uint8_t *)recs[i].bytes, recs[i].len, hex);
        char *v = qs("SELECT encode(raw, 'hex') FROM auditrail.events WHERE stream_id = '%s' "
                     "AND seq = %" PRId64,
                     c.stream, (int64_t)i);
        ck_assert_msg(v && strcmp(v, hex) == 0, "raw of seq %zu: %s != %s", i, v, hex);
        free(v);
        v = qs("SELECT attrs IS NOT NULL FROM auditrail.events WHERE stream_id = '%s' AND seq = "
               "%" PRId64,
               c.stream, (int64_t)i);
        ck_assert_msg(strcmp(v, recs[i].json ? "t" : "f") == 0, "attrs of seq %zu: %s", i, v);
        free(v);
        const struct envelope *e = &b.rows[i].env;
        v = qs("SELECT id::text || ' ' || (extract(epoch FROM event_time) * 1000000)::bigint || "
               "' ' || encode(hash, 'hex') || ' ' || encode(prev_hash, 'hex') FROM "
               "auditrail.events WHERE stream_id = '%s' AND seq = %" PRId64,
               c.stream, (int64_t)i);
        char want[256], h[65], p[65];
        hex_encode(e->hash, 32, h);
        hex_encode(e->prev, 32, p);
        snprintf(want, sizeof(want), "%s %" PRId64 " %s %s", e->id, e->time_us, h, p);
        ck_assert_str_eq(v, want);
        free(v);
    }
    char *v = qs("SELECT attrs->>'actor' FROM auditrail.events WHERE stream_id = '%s' AND seq = "
                 "%" PRId64,
                 c.stream, 0);
    ck_assert_str_eq(v, "alice");
    free(v);
    v = qs("SELECT actor || '/' || tenant || '/' || format || '/' || (source->>'name') FROM "
           "auditrail.events WHERE stream_id = '%s' AND seq = %" PRId64,
           c.stream, 1);
    ck_assert_str_eq(v, "user1/t1/raw/ns/pod/app");
    free(v);

    char h[65];
    hex_encode(c.prev, 32, h);
    v = qs("SELECT last_seq || ' ' || encode(last_hash, 'hex') || ' ' || gaps || chain_breaks "
           "|| forks FROM auditrail.streams WHERE stream_id = '%s' AND %" PRId64 " = 0",
           c.stream, 0);
    char want[128];
    snprintf(want, sizeof(want), "%zu %s 000", NRECS - 1, h);
    ck_assert_str_eq(v, want);
    free(v);

    int64_t off = 0;
    char err[256];
    ck_assert_int_eq(pg_writer_load_offset(w, "audit", 0, &off, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(off, (int64_t)NRECS);
    ck_assert_int_eq(pg_writer_load_offset(w, "audit", 1, &off, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(off, -1);
    ck_assert_int_eq(pg_writer_load_offset(w, "other", 0, &off, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(off, -1);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.integrity_incidents"), 0);

    /* The same records again (a replay at later offsets): all re-sends. */
    batch_clear(&b);
    fx_chain_init(&c, 1);
    build_recs(&c, NRECS);
    commit_p0(NRECS, 2 * NRECS);
    ck_assert_uint_eq(st.dup_stream, NRECS);
    ck_assert_uint_eq(st.inserted, 0);
    ck_assert_uint_eq(st.forks + st.gaps + st.chain_breaks, 0);
    for (size_t i = 0; i < NRECS; i++)
        ck_assert_int_eq(st.committed[i], 1);
    ck_assert_int_eq(nevents(), (int64_t)NRECS);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.integrity_incidents"), 0);
    ck_assert_int_eq(pg_writer_load_offset(w, "audit", 0, &off, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(off, 2 * (int64_t)NRECS);
}
END_TEST

START_TEST(many_json_lookalikes)
{
    /* More refused lookalikes than the retry budget: the writer switches to
     * validating every record itself, and still stores everything. */
    struct fx_chain c;
    fx_chain_init(&c, 15);
    for (int i = 0; i < 20; i++) {
        char line[64];
        if (i % 2)
            snprintf(line, sizeof(line), "{\"n\":%d}", i);
        else
            snprintf(line, sizeof(line), "{broken %d}", i);
        fx_add_str(&b, &c, line, FX_T0, 0, i);
    }
    /* A cut record keeps only its beginning: never attrs. */
    fx_add_str(&b, &c, "{\"cut\":\"here\"}", FX_T0, 0, 20);
    b.rows[20].env.truncated_bytes = 1000;
    commit_p0(-1, 21);
    ck_assert_uint_eq(st.inserted, 21);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.events WHERE attrs IS NOT NULL"),
                     10);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.events WHERE attrs IS NOT NULL "
                                "AND (attrs->>'n')::int % 2 = 1"),
                     10);
    ck_assert_int_eq(fx_int(db, "SELECT truncated_bytes FROM auditrail.events WHERE seq = 20"),
                     1000);
}
END_TEST

START_TEST(resend_with_new_time_is_duplicate)
{
    struct fx_chain c, c2;
    fx_chain_init(&c, 2);
    c2 = c;
    fx_add_str(&b, &c, "no timestamp here", FX_T0, 0, 0);
    commit_p0(-1, 1);
    ck_assert_uint_eq(st.inserted, 1);

    /* Same stream/seq/hash, new read time two days later. */
    batch_clear(&b);
    fx_add_str(&b, &c2, "no timestamp here", FX_T0 + 2 * FX_DAY_US, 0, 1);
    commit_p0(1, 2);
    ck_assert_uint_eq(st.dup_stream, 1);
    ck_assert_uint_eq(st.inserted, 0);
    ck_assert_uint_eq(st.forks, 0);
    ck_assert_int_eq(st.committed[0], 1);
    ck_assert_int_eq(nevents(), 1);

    /* And twice within one batch: stored once. */
    batch_clear(&b);
    struct fx_chain c3 = c;
    fx_add_str(&b, &c, "second", FX_T0, 0, 2);
    fx_add_str(&b, &c3, "second", FX_T0 + 5, 0, 3);
    commit_p0(2, 4);
    ck_assert_uint_eq(st.inserted, 1);
    ck_assert_uint_eq(st.dup_stream, 1);
    ck_assert_int_eq(nevents(), 2);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.integrity_incidents"), 0);
}
END_TEST

START_TEST(fork_is_stored_and_recorded)
{
    struct fx_chain c;
    fx_chain_init(&c, 3);
    fx_add_str(&b, &c, "r0", FX_T0, 0, 0);
    struct fx_chain at1 = c;
    fx_add_str(&b, &c, "r1", FX_T0, 0, 1);
    fx_add_str(&b, &c, "r2", FX_T0, 0, 2);
    commit_p0(-1, 3);

    /* A different record 1 on the same chain position: a fork. */
    batch_clear(&b);
    struct fx_chain f = at1;
    fx_add_str(&b, &f, "r1 rewritten", FX_T0, 0, 3);
    commit_p0(3, 4);
    ck_assert_uint_eq(st.forks, 1);
    ck_assert_uint_eq(st.inserted, 1);
    ck_assert_uint_eq(st.dup_stream, 0);
    ck_assert_uint_eq(st.chain_breaks, 0); /* its prev is the stored hash of 0 */
    ck_assert_int_eq(
        q("SELECT count(*) FROM auditrail.events WHERE stream_id = '%s' AND seq = 1", c.stream), 2);
    ck_assert_int_eq(nincidents("fork"), 1);
    char h[65];
    hex_encode(b.rows[0].env.hash, 32, h);
    char *v = qs("SELECT actual || ' ' || seq FROM auditrail.integrity_incidents WHERE stream_id "
                 "= '%s' AND kind = 'fork' AND %" PRId64 " = 0",
                 c.stream, 0);
    char want[100];
    snprintf(want, sizeof(want), "%s 1", h);
    ck_assert_str_eq(v, want);
    free(v);
    ck_assert_int_eq(q("SELECT forks FROM auditrail.streams WHERE stream_id = '%s'", c.stream), 1);
    /* last_seq stays 2: the fork is below it. */
    ck_assert_int_eq(q("SELECT last_seq FROM auditrail.streams WHERE stream_id = '%s'", c.stream),
                     2);

    /* The fork re-sent: a duplicate now, no second incident. */
    batch_clear(&b);
    f = at1;
    fx_add_str(&b, &f, "r1 rewritten", FX_T0, 0, 4);
    commit_p0(4, 5);
    ck_assert_uint_eq(st.dup_stream, 1);
    ck_assert_uint_eq(st.forks, 0);
    ck_assert_int_eq(nincidents("fork"), 1);

    /* Within one batch: two different records at a new seq. */
    batch_clear(&b);
    struct fx_chain g = c;
    fx_add_str(&b, &c, "r3", FX_T0, 0, 5);
    fx_add_str(&b, &g, "r3 other", FX_T0, 0, 6);
    commit_p0(5, 7);
    ck_assert_uint_eq(st.forks, 1);
    ck_assert_uint_eq(st.inserted, 2);
    ck_assert_int_eq(nincidents("fork"), 2);
    ck_assert_int_eq(nincidents("chain_break"), 0);
    ck_assert_int_eq(nincidents("gap"), 0);
    /* last_hash follows the first record seen at the new last seq. */
    char lh[65];
    hex_encode(b.rows[0].env.hash, 32, lh);
    v = qs("SELECT encode(last_hash, 'hex') FROM auditrail.streams WHERE stream_id = '%s' AND "
           "%" PRId64 " = 0",
           c.stream, 0);
    ck_assert_str_eq(v, lh);
    free(v);
}
END_TEST

START_TEST(fork_resent_on_another_day_is_duplicate)
{
    struct fx_chain c;
    fx_chain_init(&c, 14);
    fx_add_str(&b, &c, "x0", FX_T0, 0, 0);
    struct fx_chain at1 = c;
    fx_add_str(&b, &c, "x1", FX_T0, 0, 1);
    commit_p0(-1, 2);
    /* Fork Y of seq 1, stored three days later. */
    batch_clear(&b);
    struct fx_chain y = at1;
    fx_add_str(&b, &y, "y1", FX_T0 + 3 * FX_DAY_US, 0, 2);
    commit_p0(2, 3);
    ck_assert_uint_eq(st.forks, 1);
    /* Y re-sent with the day of X: the day lookup sees only X, the wide
     * lookup finds Y. A re-send, not a second fork. */
    batch_clear(&b);
    y = at1;
    fx_add_str(&b, &y, "y1", FX_T0 + 7, 0, 3);
    commit_p0(3, 4);
    ck_assert_uint_eq(st.dup_stream, 1);
    ck_assert_uint_eq(st.forks, 0);
    ck_assert_uint_eq(st.inserted, 0);
    ck_assert_int_eq(nincidents("fork"), 1);
    ck_assert_int_eq(nevents(), 3);
}
END_TEST

START_TEST(gap_recorded_and_late_fill_accepted)
{
    struct batch all;
    batch_init(&all, "scratch");
    struct fx_chain c;
    fx_chain_init(&c, 4);
    for (int i = 0; i < 7; i++) {
        char line[16];
        snprintf(line, sizeof(line), "rec %d", i);
        fx_add_str(&all, &c, line, FX_T0, 0, i);
    }
    /* Move records 0, 1, 5, 6 into the batch: 2..4 are missing. */
    int take[] = {0, 1, 5, 6};
    for (int i = 0; i < 4; i++) {
        struct envelope e = all.rows[take[i]].env;
        memset(&all.rows[take[i]].env, 0, sizeof(e));
        batch_add(&b, &e, 0, i);
    }
    commit_p0(-1, 4);
    ck_assert_uint_eq(st.gaps, 1);
    ck_assert_uint_eq(st.inserted, 4);
    ck_assert_uint_eq(st.chain_breaks, 0);
    char *v = qs("SELECT expected || '-' || actual || ' ' || (evidence->>'missing_to') FROM "
                 "auditrail.integrity_incidents WHERE stream_id = '%s' AND kind = 'gap' AND "
                 "%" PRId64 " = 0",
                 c.stream, 0);
    ck_assert_str_eq(v, "2-5 4");
    free(v);
    ck_assert_int_eq(q("SELECT gaps FROM auditrail.streams WHERE stream_id = '%s'", c.stream), 1);

    /* The late records arrive: stored, no new incident, last_seq stays 6. */
    batch_clear(&b);
    for (int i = 2; i <= 4; i++) {
        struct envelope e = all.rows[i].env;
        memset(&all.rows[i].env, 0, sizeof(e));
        batch_add(&b, &e, 0, 4 + i);
    }
    commit_p0(4, 9);
    ck_assert_uint_eq(st.inserted, 3);
    ck_assert_uint_eq(st.gaps + st.chain_breaks + st.forks + st.dup_stream, 0);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.integrity_incidents"), 1);
    ck_assert_int_eq(q("SELECT last_seq FROM auditrail.streams WHERE stream_id = '%s'", c.stream),
                     6);

    /* A new stream that starts at seq 3 has a gap from 0. */
    batch_clear(&b);
    struct fx_chain d;
    fx_chain_init(&d, 5);
    d.seq = 3;
    fx_add_str(&b, &d, "late start", FX_T0, 0, 9);
    commit_p0(9, 10);
    ck_assert_uint_eq(st.gaps, 1);
    /* its prev is genesis, which is not what seq 3 needs, but seq 2 is
     * unknown: no chain check. */
    ck_assert_uint_eq(st.chain_breaks, 0);
    v = qs("SELECT expected || '-' || actual FROM auditrail.integrity_incidents WHERE stream_id "
           "= '%s' AND kind = 'gap' AND %" PRId64 " = 0",
           d.stream, 0);
    ck_assert_str_eq(v, "0-3");
    free(v);
    batch_release(&all);
}
END_TEST

START_TEST(chain_breaks_recorded)
{

    /* seq 0 whose prev is not SHA-256("auditrail:v1:" || stream). */
    struct fx_chain a;
    fx_chain_init(&a, 6);
    memset(a.prev, 0x11, 32);
    fx_add_str(&b, &a, "bad genesis", FX_T0, 0, 0);
    /* seq 1 of another stream whose prev is not the hash of its seq 0. */
    struct fx_chain c;
    fx_chain_init(&c, 7);
    fx_add_str(&b, &c, "c0", FX_T0, 0, 1);
    uint8_t h0[32];
    memcpy(h0, c.prev, 32);
    memset(c.prev, 0x22, 32);
    fx_add_str(&b, &c, "c1", FX_T0, 0, 2);
    commit_p0(-1, 3);
    ck_assert_uint_eq(st.chain_breaks, 2);
    ck_assert_uint_eq(st.inserted, 3);
    ck_assert_int_eq(nincidents("chain_break"), 2);
    uint8_t gen[32];
    chain_genesis(a.stream, gen);
    char gx[65];
    hex_encode(gen, 32, gx);
    char *v = qs("SELECT expected || ' ' || actual FROM auditrail.integrity_incidents WHERE "
                 "stream_id = '%s' AND seq = %" PRId64,
                 a.stream, 0);
    char want[160];
    snprintf(want, sizeof(want), "%s %s", gx,
             "1111111111111111111111111111111111111111111111111111111111111111");
    ck_assert_str_eq(v, want);
    free(v);
    hex_encode(h0, 32, gx);
    v = qs("SELECT expected || ' ' || (evidence->>'expected_from') FROM "
           "auditrail.integrity_incidents WHERE stream_id = '%s' AND seq = %" PRId64,
           c.stream, 1);
    snprintf(want, sizeof(want), "%s batch", gx);
    ck_assert_str_eq(v, want);
    free(v);

    /* Across batches: seq 2's prev must be the stored last_hash. */
    batch_clear(&b);
    uint8_t last[32];
    memcpy(last, c.prev, 32);
    memset(c.prev, 0x33, 32);
    fx_add_str(&b, &c, "c2", FX_T0, 0, 3);
    commit_p0(3, 4);
    ck_assert_uint_eq(st.chain_breaks, 1);
    hex_encode(last, 32, gx);
    v = qs("SELECT expected || ' ' || (evidence->>'expected_from') FROM "
           "auditrail.integrity_incidents WHERE stream_id = '%s' AND seq = %" PRId64,
           c.stream, 2);
    snprintf(want, sizeof(want), "%s last_hash", gx);
    ck_assert_str_eq(v, want);
    free(v);
    ck_assert_int_eq(
        q("SELECT chain_breaks FROM auditrail.streams WHERE stream_id = '%s'", c.stream), 2);
    /* A correct continuation is not an incident. */
    batch_clear(&b);
    fx_add_str(&b, &c, "c3", FX_T0, 0, 4);
    commit_p0(4, 5);
    ck_assert_uint_eq(st.chain_breaks, 0);
}
END_TEST

START_TEST(offset_cas_conflict_commits_nothing)
{
    struct fx_chain c;
    fx_chain_init(&c, 8);
    fx_add_str(&b, &c, "first", FX_T0, 0, 0);
    commit_p0(-1, 5);

    /* Someone else already created the row (expected -1 loses). */
    batch_clear(&b);
    struct fx_chain d;
    fx_chain_init(&d, 9);
    fx_add_str(&b, &d, "other stream", FX_T0 + 10 * FX_DAY_US, 0, 5);
    batch_advance(&b, 0, -1, 10);
    const char *err = write_fails(PG_CONFLICT);
    ck_assert_msg(strstr(err, "compare-and-set") != NULL, "%s", err);
    ck_assert_int_eq(st.committed[0], 0);

    /* Stale expected offset, with a first partition that would have moved. */
    batch_clear(&b);
    fx_add_str(&b, &d, "other stream", FX_T0 + 10 * FX_DAY_US, 1, 0);
    batch_advance(&b, 1, -1, 1);
    batch_advance(&b, 0, 3, 10);
    write_fails(PG_CONFLICT);

    ck_assert_int_eq(nevents(), 1);
    ck_assert_int_eq(q("SELECT count(*) FROM auditrail.streams WHERE stream_id = '%s'", d.stream),
                     0);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM pg_inherits WHERE inhparent = "
                                "'auditrail.events'::regclass"),
                     1); /* the partition created in the lost transaction is gone too */
    int64_t off = 0;
    char e2[256];
    ck_assert_int_eq(pg_writer_load_offset(w, "audit", 0, &off, e2, sizeof(e2)), PG_OK);
    ck_assert_int_eq(off, 5);
    ck_assert_int_eq(pg_writer_load_offset(w, "audit", 1, &off, e2, sizeof(e2)), PG_OK);
    ck_assert_int_eq(off, -1);

    /* The writer is usable afterwards, and an offset-only batch works. */
    batch_clear(&b);
    commit_p0(5, 9);
    ck_assert_int_eq(pg_writer_load_offset(w, "audit", 0, &off, e2, sizeof(e2)), PG_OK);
    ck_assert_int_eq(off, 9);
}
END_TEST

struct race {
    struct pg_writer *w;
    struct batch *b;
    enum pg_status r;
    char err[512];
};

static void *race_write(void *arg)
{
    struct race *x = arg;
    struct pg_write_stats rst = {0};
    x->r = pg_writer_write(x->w, x->b, &rst, x->err, sizeof(x->err));
    pg_write_stats_release(&rst);
    return NULL;
}

static bool writer_waits(void *ud)
{
    (void)ud;
    return fx_int(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                      "'auditrail-aggregator' AND wait_event_type = 'Lock' AND datname = "
                      "current_database()") == 1;
}

START_TEST(offset_race_with_open_transaction)
{
    struct fx_chain c;
    fx_chain_init(&c, 16);
    fx_add_str(&b, &c, "owned", FX_T0, 0, 0);
    commit_p0(-1, 1);

    /* Another consumer (raw connection) is moving the partition's offset. */
    PGconn *other = test_pg_connect(ci);
    test_pg_exec(other, "BEGIN");
    test_pg_exec(other, "UPDATE auditrail.kafka_offsets SET next_offset = 50 WHERE partition = 0");
    batch_clear(&b);
    fx_add_str(&b, &c, "late writer", FX_T0, 0, 1);
    batch_advance(&b, 0, 1, 2);
    struct race x = {w, &b, PG_OK, ""};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, race_write, &x), 0);
    /* Our writer blocks on the offset row... */
    ck_assert(test_wait_until(writer_waits, NULL, 10000));
    /* ...and loses once the other commits. */
    test_pg_exec(other, "COMMIT");
    pthread_join(th, NULL);
    ck_assert_msg(x.r == PG_CONFLICT, "%s: %s", pg_status_name(x.r), x.err);
    ck_assert_int_eq(nevents(), 1);
    int64_t off = 0;
    char err[256];
    ck_assert_int_eq(pg_writer_load_offset(w, "audit", 0, &off, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(off, 50);
    PQfinish(other);
}
END_TEST

START_TEST(bad_row_is_data_error)
{
    struct fx_chain c;
    fx_chain_init(&c, 10);
    for (int i = 0; i < 4; i++)
        fx_add_str(&b, &c, "ok", FX_T0, 0, i);
    free(b.rows[2].env.fields.actor);
    b.rows[2].env.fields.actor = xstrdup("bad \xff utf-8"); /* text must be UTF-8 */
    batch_advance(&b, 0, -1, 4);
    write_fails(PG_DATA);
    ck_assert_int_eq(st.bad_row, 2);
    ck_assert_int_eq(nevents(), 0);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.kafka_offsets"), 0);
}
END_TEST

/* A CHECK constraint an operator added refuses a row (23514, like "no
 * partition for row", which is transient): the row is a data error, named,
 * not a batch retried forever. */
START_TEST(check_constraint_is_data_error)
{
    test_pg_exec(db, "ALTER TABLE auditrail.events ADD CONSTRAINT no_forbidden"
                     " CHECK (position('FORBIDDEN' IN coalesce(actor, '')) = 0)");
    struct fx_chain c;
    fx_chain_init(&c, 11);
    for (int i = 0; i < 4; i++)
        fx_add_str(&b, &c, "ok", FX_T0, 0, i);
    free(b.rows[1].env.fields.actor);
    b.rows[1].env.fields.actor = xstrdup("FORBIDDEN-SECRET");
    batch_advance(&b, 0, -1, 4);
    const char *e = write_fails(PG_DATA);
    ck_assert_int_eq(st.bad_row, 1);
    ck_assert_msg(strstr(e, "[23514]") && !strstr(e, "SECRET"), "%s", e);
    ck_assert_int_eq(nevents(), 0);
}
END_TEST

START_TEST(partitions_on_demand)
{
    struct fx_chain c;
    fx_chain_init(&c, 11);
    for (int i = 0; i < 40; i++)
        fx_add_str(&b, &c, "daily", FX_T0 - 20 * FX_DAY_US + i * FX_DAY_US + 3600000000LL, 0, i);
    commit_p0(-1, 40);
    ck_assert_uint_eq(st.partitions_created, 40);
    ck_assert_uint_eq(st.inserted, 40);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM pg_inherits WHERE inhparent = "
                                "'auditrail.events'::regclass"),
                     40);
    /* 2026-11-26 - 20 days = 2026-11-06: row 0 lives in events_p20261106. */
    char *v =
        qs("SELECT c.relname::text FROM auditrail.events e JOIN pg_class c ON c.oid = e.tableoid "
           "WHERE e.stream_id = '%s' AND e.seq = %" PRId64,
           c.stream, 0);
    ck_assert_str_eq(v, "events_p20261106");
    free(v);
    v = qs("SELECT c.relname::text FROM auditrail.events e JOIN pg_class c ON c.oid = e.tableoid "
           "WHERE e.stream_id = '%s' AND e.seq = %" PRId64,
           c.stream, 39);
    ck_assert_str_eq(v, "events_p20261215");
    free(v);
    batch_clear(&b);
    fx_add_str(&b, &c, "again", FX_T0, 0, 40);
    commit_p0(40, 41);
    ck_assert_uint_eq(st.partitions_created, 0);

    /* A partition dropped behind the writer's back: re-created on retry. */
    test_pg_exec(db, "DROP TABLE auditrail.events_p20261126");
    batch_clear(&b);
    fx_add_str(&b, &c, "after drop", FX_T0 + 5, 0, 41);
    batch_advance(&b, 0, 41, 42);
    char err[512];
    enum pg_status r = pg_writer_write(w, &b, &st, err, sizeof(err));
    if (r != PG_OK) {
        ck_assert_msg(r == PG_TRANSIENT, "%s: %s", pg_status_name(r), err);
        write_ok();
    }
    ck_assert_int_eq(
        q("SELECT count(*) FROM auditrail.events_p20261126 WHERE stream_id = '%s'", c.stream), 1);
}
END_TEST

/* Child: one writer, its own stream and Kafka partition, the same 40 days. */
static int child_write(int n)
{
    char err[512];
    struct pg_writer *cw = pg_writer_new(ci, "g1", NULL, err, sizeof(err));
    if (!cw)
        return 2;
    struct batch cb;
    batch_init(&cb, "audit");
    struct fx_chain c;
    fx_chain_init(&c, 100 + (unsigned)n);
    for (int i = 0; i < 40; i++)
        fx_add_str(&cb, &c, "concurrent", FX_T0 + i * FX_DAY_US, n, i);
    batch_advance(&cb, n, -1, 40);
    struct pg_write_stats cst = {0};
    enum pg_status r = pg_writer_write(cw, &cb, &cst, err, sizeof(err));
    if (r != PG_OK)
        fprintf(stderr, "child %d: %s: %s\n", n, pg_status_name(r), err);
    int rc = r == PG_OK && cst.inserted == 40 ? 0 : 1;
    pg_write_stats_release(&cst);
    batch_release(&cb);
    pg_writer_free(cw);
    return rc;
}

START_TEST(partitions_concurrent_creators)
{
    enum { N = 3 };
    pid_t pid[N];
    for (int i = 0; i < N; i++) {
        pid[i] = fork();
        ck_assert_int_ge(pid[i], 0);
        if (pid[i] == 0)
            _exit(child_write(i));
    }
    for (int i = 0; i < N; i++) {
        int status = 0;
        ck_assert_int_eq(waitpid(pid[i], &status, 0), pid[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed (%d)", i,
                      status);
    }
    ck_assert_int_eq(nevents(), 40 * N);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM pg_inherits WHERE inhparent = "
                                "'auditrail.events'::regclass"),
                     40);
}
END_TEST

START_TEST(reconnects_after_connection_loss)
{
    struct fx_chain c;
    fx_chain_init(&c, 12);
    fx_add_str(&b, &c, "before", FX_T0, 0, 0);
    commit_p0(-1, 1);
    test_pg_exec(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                     "application_name = 'auditrail-aggregator' AND datname = current_database()");
    batch_clear(&b);
    fx_add_str(&b, &c, "after", FX_T0, 0, 1);
    batch_advance(&b, 0, 1, 2);
    /* The call that meets the dead link reports it; the next reconnects. */
    write_fails(PG_TRANSIENT);
    write_ok();
    ck_assert_uint_eq(st.inserted, 1);
    ck_assert_int_eq(nevents(), 2);
    char err[256];
    ck_assert_int_eq(pg_writer_ping(w, err, sizeof(err)), PG_OK);
}
END_TEST

START_TEST(primary_key_guard_when_streams_disagree)
{
    struct fx_chain c, again;
    fx_chain_init(&c, 13);
    again = c;
    for (int i = 0; i < 3; i++)
        fx_add_str(&b, &c, "pk guarded", FX_T0 + i, 0, i);
    commit_p0(-1, 3);
    /* Lose the stream's state: the (stream, seq) rule no longer sees the
     * rows, so only the primary key catches the re-send. */
    test_pg_exec(db, "DELETE FROM auditrail.streams");
    batch_clear(&b);
    for (int i = 0; i < 4; i++)
        fx_add_str(&b, &again, "pk guarded", FX_T0 + i, 0, 3 + i);
    commit_p0(3, 7);
    ck_assert_uint_eq(st.dup_pk, 3);
    ck_assert_uint_eq(st.inserted, 1);
    ck_assert_uint_eq(st.dup_stream, 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(st.committed[i], 1);
    ck_assert_int_eq(nevents(), 4);
    ck_assert_int_eq(q("SELECT last_seq FROM auditrail.streams WHERE stream_id = '%s'", c.stream),
                     3);
}
END_TEST

START_TEST(new_fails_cleanly)
{
    char err[512] = "";
    ck_assert_ptr_null(
        pg_writer_new("host=127.0.0.1 port=1 connect_timeout=2", "g", NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "connect") != NULL, "%s", err);
    /* A database without the schema: statements cannot be prepared. */
    char *bare = test_pg_fresh_db("pgw_bare");
    err[0] = '\0';
    ck_assert_ptr_null(pg_writer_new(bare, "g", NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "auditrail") != NULL, "%s", err);
    test_pg_drop_db(bare);
    free(bare);
}
END_TEST

/* ---- issue 9: hostile sizes, lock budget, new streams, COMMIT ---- */

/* n random hex characters (incompressible enough that a btree cannot fit
 * it by compressing), heap. */
static char *random_hex(size_t n)
{
    char *s = xmalloc(n + 1);
    FILE *f = fopen("/dev/urandom", "r");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < n; i++)
        s[i] = "0123456789abcdef"[fgetc(f) & 15];
    fclose(f);
    s[n] = '\0';
    return s;
}

/* A 3 KB resource (a signed URL) made the server refuse the row (54000:
 * index row size exceeds the btree maximum), and the record went to the
 * DLQ leaving a gap in its stream. Now the indexed column holds its first
 * 512 bytes, fields_cut says so, raw and attrs keep it whole. */
START_TEST(long_fields_are_cut_not_refused)
{
    struct fx_chain c;
    fx_chain_init(&c, 30);
    char *url = random_hex(3000);
    char *line = xasprintf("{\"resource\":\"https://x/%s\",\"actor\":\"a\"}", url);
    fx_add_str(&b, &c, "before", FX_T0, 0, 0);
    fx_add_str(&b, &c, line, FX_T0 + 1, 0, 1);
    b.rows[1].env.fields.resource = xasprintf("https://x/%s", url);
    /* 2-byte characters across the cut */
    free(b.rows[1].env.fields.actor);
    struct buf u = BUF_INIT;
    buf_add(&u, "x", 1);
    for (int i = 0; i < 700; i++)
        buf_add(&u, "\xc3\xa9", 2);
    b.rows[1].env.fields.actor = xstrdup(buf_cstr(&u));
    buf_release(&u);
    fx_add_str(&b, &c, "after", FX_T0 + 2, 0, 2);
    commit_p0(-1, 3);
    ck_assert_uint_eq(st.inserted, 3);
    ck_assert_uint_eq(st.fields_cut, 1);
    ck_assert_int_eq(nevents(), 3);
    char *v = qs("SELECT octet_length(resource) || ' ' || octet_length(actor) || ' ' ||"
                 " array_to_string(fields_cut, ',') FROM auditrail.events WHERE stream_id = '%s'"
                 " AND seq = %" PRId64,
                 c.stream, 1);
    ck_assert_str_eq(v, "512 511 actor,resource");
    free(v);
    /* The whole value: in attrs (the record is JSON) and in raw. */
    char *sql = xasprintf("SELECT (attrs->>'resource') = 'https://x/%s' AND"
                          " position(convert_to('%s', 'UTF8') IN raw) > 0"
                          " FROM auditrail.events WHERE seq = 1",
                          url, url);
    v = test_pg_scalar(db, sql);
    ck_assert_str_eq(v, "t");
    free(v);
    free(sql);
    /* The stream has no gap; the others have no cut. */
    ck_assert_int_eq(q("SELECT last_seq FROM auditrail.streams WHERE stream_id = '%s'", c.stream),
                     2);
    ck_assert_int_eq(nincidents("gap"), 0);
    ck_assert_int_eq(
        fx_int(db, "SELECT count(*) FROM auditrail.events WHERE fields_cut IS NOT NULL"), 1);
    free(line);
    free(url);
}
END_TEST

/* Every transaction of the writer records, at its COMMIT (deferred
 * triggers on the offsets and streams rows it writes), how many locks it
 * holds and which event partitions among them. Test-only objects in the
 * test's database. */
static void record_locks(void)
{
    test_pg_exec(db, "CREATE TABLE public.tx_locks (n int, parts text[]);"
                     "CREATE FUNCTION public.tx_locks_f() RETURNS trigger LANGUAGE plpgsql AS $$"
                     " BEGIN INSERT INTO public.tx_locks"
                     "  SELECT count(*), array_agg(DISTINCT c.relname::text ORDER BY"
                     "   c.relname::text) FILTER (WHERE c.relkind = 'r' AND"
                     "   c.relname::text LIKE 'events_p%')"
                     "  FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation"
                     "  WHERE l.pid = pg_backend_pid();"
                     " RETURN NULL; END $$;"
                     "CREATE CONSTRAINT TRIGGER tx_locks_s AFTER INSERT OR UPDATE ON"
                     " auditrail.streams DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
                     " EXECUTE FUNCTION public.tx_locks_f();"
                     "CREATE CONSTRAINT TRIGGER tx_locks_o AFTER INSERT OR UPDATE ON"
                     " auditrail.kafka_offsets DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
                     " EXECUTE FUNCTION public.tx_locks_f()");
}

/* A backfill: one stream, 400 rows, each on another day. In one
 * transaction that created and locked 400 partitions with their indexes
 * (over 4000 locks, where PostgreSQL's default lock table has room for 64
 * per connection); the resulting 53200 was retried forever. Now it is
 * written in runs of at most max_days days, each within a small lock
 * budget, and commits whole with its chain intact. */
START_TEST(backfill_400_days_bounded_locks)
{
    record_locks();
    struct fx_chain c;
    fx_chain_init(&c, 31);
    enum { DAYS = 400 };
    for (int i = 0; i < DAYS; i++)
        fx_add_str(&b, &c, "backfilled", FX_T0 - (int64_t)(DAYS - i) * FX_DAY_US, 0, i);
    commit_p0(-1, DAYS);
    /* Per partition created and written: the table, its 7 indexes, its
     * TOAST table and index, the parent's (about 14, measured); plus what
     * any transaction holds. 400 days in one transaction held over 5,000
     * locks, when PostgreSQL's default lock table holds 64 per connection. */
    int64_t peak = fx_int(db, "SELECT max(n) FROM public.tx_locks");
    ck_assert_msg(peak > 0 && peak <= 16 * PG_WRITER_MAX_DAYS + 32,
                  "a transaction held %" PRId64 " locks", peak);
    ck_assert_uint_eq(st.inserted, DAYS);
    ck_assert_uint_eq(st.partitions_created, DAYS);
    ck_assert_uint_eq(st.transactions, (DAYS + PG_WRITER_MAX_DAYS - 1) / PG_WRITER_MAX_DAYS);
    ck_assert_int_eq(nevents(), DAYS);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.integrity_incidents"), 0);
    ck_assert_int_eq(q("SELECT last_seq FROM auditrail.streams WHERE stream_id = '%s'", c.stream),
                     DAYS - 1);
    ck_assert_int_eq(fx_int(db, "SELECT next_offset FROM auditrail.kafka_offsets"), DAYS);
    ck_assert_int_le(fx_int(db, "SELECT max(cardinality(parts)) FROM public.tx_locks"),
                     PG_WRITER_MAX_DAYS);
}
END_TEST

/* The runs of a split batch check the offsets before the last one moves
 * them: a batch whose partition another consumer owns stores nothing. */
START_TEST(split_batch_checks_offsets_first)
{
    struct fx_chain c;
    fx_chain_init(&c, 32);
    fx_add_str(&b, &c, "first", FX_T0, 0, 0);
    commit_p0(-1, 1);
    test_pg_exec(db, "UPDATE auditrail.kafka_offsets SET next_offset = 9"); /* someone else */
    batch_clear(&b);
    for (int i = 0; i < 40; i++)
        fx_add_str(&b, &c, "spread", FX_T0 + (int64_t)(i + 1) * FX_DAY_US, 0, i + 1);
    batch_advance(&b, 0, 1, 41);
    write_fails(PG_CONFLICT);
    ck_assert_int_eq(nevents(), 1);
}
END_TEST

/* The wide lookup (a re-send whose time changed) reads only its stream's
 * partitions: before, it had no event_time predicate and locked every
 * partition of auditrail.events and their indexes (about 2,200 × 8
 * relations at six years of retention, beyond the lock table). */
START_TEST(lookup_prunes_partitions)
{
    struct fx_chain other, c;
    fx_chain_init(&other, 33);
    fx_chain_init(&c, 34);
    for (int i = 0; i < 30; i++) /* 30 partitions */
        fx_add_str(&b, &other, "other", FX_T0 + (int64_t)i * FX_DAY_US, 0, i);
    struct fx_chain c0 = c;
    fx_add_str(&b, &c, "read-time record", FX_T0 + 10 * FX_DAY_US, 0, 30);
    fx_add_str(&b, &c, "next", FX_T0 + 11 * FX_DAY_US, 0, 31);
    commit_p0(-1, 32);
    char *v = qs("SELECT (extract(epoch FROM min_event_time) * 1000000)::bigint || ' ' ||"
                 " (extract(epoch FROM max_event_time) * 1000000)::bigint FROM auditrail.streams"
                 " WHERE stream_id = '%s' AND %" PRId64 " = 0",
                 c.stream, 0);
    char want[64];
    snprintf(want, sizeof(want), "%" PRId64 " %" PRId64, FX_T0 + 10 * FX_DAY_US,
             FX_T0 + 11 * FX_DAY_US);
    ck_assert_str_eq(v, want);
    free(v);

    record_locks();
    /* The agent re-sends seq 0 with a new read time, 20 days later. */
    batch_clear(&b);
    fx_add_str(&b, &c0, "read-time record", FX_T0 + 25 * FX_DAY_US, 0, 32);
    commit_p0(32, 33);
    ck_assert_uint_eq(st.dup_stream, 1);
    ck_assert_uint_eq(st.inserted, 0);
    v = test_pg_scalar(db, "SELECT array_to_string(max(parts), ',') FROM public.tx_locks");
    ck_assert_str_eq(v, "events_p20261206,events_p20261207,events_p20261221");
    free(v);

    /* The plan of the lookup over the stream's range names only its days. */
    const char *p[] = {"{" /* ids */, "{0}", "2026-12-06T00:00:00Z", "2026-12-07T00:00:00.000001Z"};
    char ids[64];
    snprintf(ids, sizeof(ids), "{%s}", c.stream);
    p[0] = ids;
    PGresult *r =
        PQexecParams(db, "EXPLAIN (COSTS OFF) " SQL_W_LOOKUP_RANGE, 4, NULL, p, NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    struct buf plan = BUF_INIT;
    for (int i = 0; i < PQntuples(r); i++)
        buf_addf(&plan, "%s\n", PQgetvalue(r, i, 0));
    PQclear(r);
    ck_assert_msg(strstr(buf_cstr(&plan), "events_p20261206") &&
                      strstr(buf_cstr(&plan), "events_p20261207"),
                  "%s", buf_cstr(&plan));
    const char *q1 = buf_cstr(&plan);
    int nparts = 0;
    for (const char *x = q1; (x = strstr(x, "events_p")) != NULL; x += 8)
        if (strncmp(x + 8, "20261206", 8) != 0 && strncmp(x + 8, "20261207", 8) != 0)
            nparts++;
    ck_assert_msg(nparts == 0, "the plan reads other partitions:\n%s", q1);
    buf_release(&plan);
}
END_TEST

/* Child of the race below: write the stream's first 10 records with time
 * base_us through its own writer and Kafka partition. */
static int child_race(int part, int64_t base_us)
{
    char err[512];
    struct pg_writer *cw = pg_writer_new(ci, "g1", NULL, err, sizeof(err));
    if (!cw)
        return 2;
    struct batch cb;
    batch_init(&cb, "audit");
    struct fx_chain c;
    fx_chain_init(&c, 35);
    for (int i = 0; i < 10; i++)
        fx_add_str(&cb, &c, "raced", base_us + i, part, i);
    batch_advance(&cb, part, -1, 10);
    struct pg_write_stats cst = {0};
    enum pg_status r = pg_writer_write(cw, &cb, &cst, err, sizeof(err));
    if (r != PG_OK)
        fprintf(stderr, "race %d: %s: %s\n", part, pg_status_name(r), err);
    pg_write_stats_release(&cst);
    batch_release(&cb);
    pg_writer_free(cw);
    return r == PG_OK ? 0 : 1;
}

/* One new stream arriving through two Kafka partitions (a re-send with a
 * new read time, so another primary key): two writers at once. New streams
 * were not locked, so both found no stored state and both stored every
 * record. Now the second waits for the first's new streams row and drops
 * its records as re-sends. Both are held at their COPY by a lock on the
 * partition until both are in. */
START_TEST(new_stream_two_writers)
{
    struct fx_chain c;
    fx_chain_init(&c, 36);
    fx_add_str(&b, &c, "partition exists", FX_T0, 0, 0); /* another stream, same day */
    commit_p0(-1, 1);
    PGconn *lock = test_pg_connect(ci);
    test_pg_exec(lock, "BEGIN; LOCK TABLE auditrail.events_p20261126 IN SHARE MODE");
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        pid[i] = fork();
        ck_assert_int_ge(pid[i], 0);
        if (pid[i] == 0)
            _exit(child_race(1 + i, FX_T0 + 1000 + i * 1000000));
    }
    /* Both writers blocked: one at its COPY (the lock), the other at the
     * first's uncommitted streams row (or, before, at its COPY too). */
    uint64_t end = time_mono_ms() + 30000;
    while (fx_int(db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                      " AND application_name = 'auditrail-aggregator'") < 2 &&
           time_mono_ms() < end)
        ;
    test_pg_exec(lock, "COMMIT");
    PQfinish(lock);
    for (int i = 0; i < 2; i++) {
        int status = 0;
        ck_assert_int_eq(waitpid(pid[i], &status, 0), pid[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed", i);
    }
    struct fx_chain raced;
    fx_chain_init(&raced, 35);
    ck_assert_int_eq(
        q("SELECT count(*) FROM auditrail.events WHERE stream_id = '%s'", raced.stream), 10);
    ck_assert_int_eq(
        q("SELECT last_seq FROM auditrail.streams WHERE stream_id = '%s'", raced.stream), 9);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.integrity_incidents"), 0);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.streams WHERE last_seq < 0"), 0);
}
END_TEST

/* A COMMIT that fails (a deferred constraint trigger, test-only) is not a
 * commit: nothing stored, nothing marked committed, the offset unmoved. */
START_TEST(failed_commit_is_not_committed)
{
    test_pg_exec(db, "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
                     " BEGIN RAISE EXCEPTION 'refused at commit'"
                     " USING ERRCODE = 'serialization_failure'; END $$;"
                     "CREATE CONSTRAINT TRIGGER refuse_t AFTER INSERT OR UPDATE ON"
                     " auditrail.streams DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
                     " EXECUTE FUNCTION public.refuse()");
    struct fx_chain c;
    fx_chain_init(&c, 37);
    for (int i = 0; i < 3; i++)
        fx_add_str(&b, &c, "x", FX_T0, 0, i);
    batch_advance(&b, 0, -1, 3);
    const char *e = write_fails(PG_TRANSIENT);
    ck_assert_msg(strstr(e, "COMMIT") && strstr(e, "[40001]"), "%s", e);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(st.committed[i], 0);
    ck_assert_uint_eq(st.inserted, 0);
    ck_assert_int_eq(nevents(), 0);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.kafka_offsets"), 0);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.streams"), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pg_writer");
    TCase *tc = tcase_create("writer");
    tcase_add_checked_fixture(tc, setup_writer, teardown_writer);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stores_batch_byte_exact);
    tcase_add_test(tc, many_json_lookalikes);
    tcase_add_test(tc, resend_with_new_time_is_duplicate);
    tcase_add_test(tc, fork_is_stored_and_recorded);
    tcase_add_test(tc, fork_resent_on_another_day_is_duplicate);
    tcase_add_test(tc, gap_recorded_and_late_fill_accepted);
    tcase_add_test(tc, chain_breaks_recorded);
    tcase_add_test(tc, offset_cas_conflict_commits_nothing);
    tcase_add_test(tc, offset_race_with_open_transaction);
    tcase_add_test(tc, bad_row_is_data_error);
    tcase_add_test(tc, check_constraint_is_data_error);
    tcase_add_test(tc, partitions_on_demand);
    tcase_add_test(tc, reconnects_after_connection_loss);
    tcase_add_test(tc, primary_key_guard_when_streams_disagree);
    tcase_add_test(tc, long_fields_are_cut_not_refused);
    tcase_add_test(tc, backfill_400_days_bounded_locks);
    tcase_add_test(tc, split_batch_checks_offsets_first);
    tcase_add_test(tc, lookup_prunes_partitions);
    tcase_add_test(tc, new_stream_two_writers);
    tcase_add_test(tc, failed_commit_is_not_committed);
    suite_add_tcase(s, tc);
    /* Their own writers, or none. */
    TCase *own = tcase_create("own writers");
    tcase_add_checked_fixture(own, setup, teardown);
    tcase_set_timeout(own, 120);
    tcase_add_test(own, partitions_concurrent_creators);
    tcase_add_test(own, new_fails_cleanly);
    suite_add_tcase(s, own);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
