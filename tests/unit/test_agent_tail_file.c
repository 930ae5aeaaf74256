/* One file's state machine without Kafka (a fake sink): stream identity
 * rules (resume from a checkpoint keeps the id and the chain, a reused inode
 * or a truncation gets a new id), rewind after a failed delivery re-reads
 * identical records, rotation drains then finishes the last line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_config.h"
#include "agent/agent_metrics.h"
#include "agent/tail_file.h"
#include "common/hashchain.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

struct got {
    uint64_t seq;
    uint8_t hash[CHAIN_HASH_LEN];
    char stream[33];
    char *data;
    size_t len;
    struct ack_msg *msg;
};

struct fixture {
    char *dir, *path;
    struct agent_config cfg;
    struct metrics *reg;
    struct agent_metrics m;
    struct tail_ctx ctx;
    struct got v[256];
    size_t n;
    unsigned refuse;             /* refuse this many records next ... */
    enum tail_emit_rc refuse_rc; /* ... with this (PAUSE_BEFORE or BACKOFF) */
    unsigned refused;
    size_t pause_after;   /* answer TAIL_EMIT_PAUSE_AFTER when n reaches this (0: never) */
    size_t fit;           /* the sink's fit: keep at most this many bytes (0: all) */
    const char *wait_ack; /* answer TAIL_EMIT_WAIT_ACK for records starting with this */
    uint64_t truncated[256];
};

static size_t fit(void *ud, const struct record_in *r)
{
    struct fixture *f = ud;
    return f->fit && r->len > f->fit ? f->fit : r->len;
}

static enum tail_emit_rc sink(void *ud, const struct record_in *r, struct ack_msg *msg)
{
    struct fixture *f = ud;
    if (f->refuse > 0) { /* not produced: tail_file keeps no trace of it */
        f->refuse--;
        f->refused++;
        return f->refuse_rc;
    }
    ck_assert_uint_lt(f->n, 256);
    struct got *g = &f->v[f->n++];
    g->seq = r->seq;
    memcpy(g->hash, r->hash, CHAIN_HASH_LEN);
    memcpy(g->stream, r->stream_hex, 33);
    g->data = xstrndup((const char *)r->data, r->len);
    g->len = r->len;
    g->msg = msg;
    msg->bytes = 1;
    f->truncated[f->n - 1] = r->truncated;
    if (f->wait_ack && r->len >= strlen(f->wait_ack) &&
        !memcmp(r->data, f->wait_ack, strlen(f->wait_ack)))
        return TAIL_EMIT_WAIT_ACK;
    return f->n == f->pause_after ? TAIL_EMIT_PAUSE_AFTER : TAIL_EMIT_OK;
}

static void setup(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->dir = test_tmpdir("tailfile");
    f->path = xasprintf("%s/a.log", f->dir);
    char *yaml = xasprintf("agent:\n  source_name: t/p/c\n  checkpoint_dir: %s\n"
                           "  rotate_wait_ms: 0\n  inputs:\n    - path: %s/*.log\n"
                           "kafka:\n  brokers: x:1\n",
                           f->dir, f->dir);
    char err[256];
    ck_assert_msg(agent_config_load_string(&f->cfg, yaml, err, sizeof(err)) == 0, "%s", err);
    free(yaml);
    f->reg = metrics_new();
    agent_metrics_init(&f->m, f->reg);
    struct tail_sink sk = {sink, fit, f};
    tail_ctx_init(&f->ctx, &f->cfg, &f->m, &sk);
    f->ctx.buf_len = 7; /* tiny reads: records span reads */
}

/* Deliver every message received so far (ok), as librdkafka would. */
static void ack_all(struct fixture *f)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i].msg) {
            tail_file_delivered(f->v[i].msg, true, NULL, true, time_mono_ms());
            f->v[i].msg = NULL;
        }
}

static void clear(struct fixture *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i].data);
    f->n = 0;
}

static void teardown(struct fixture *f)
{
    ack_all(f);
    clear(f);
    tail_ctx_release(&f->ctx);
    metrics_free(f->reg);
    agent_config_release(&f->cfg);
    test_rmtree(f->dir);
    free(f->dir);
    free(f->path);
}

/* The acknowledged prefix, as the checkpoint would store it. */
static struct checkpoint_entry position(const struct tail_file *tf)
{
    struct checkpoint_entry e;
    ck_assert(tail_file_checkpoint(tf, &e));
    return e;
}

static struct tail_file *open_new(struct fixture *f)
{
    struct stat st;
    ck_assert_int_eq(stat(f->path, &st), 0);
    struct tail_file *tf = tail_file_new(&f->ctx, f->path, 0, &st, false);
    ck_assert_int_eq(tail_file_open(tf), 0);
    return tf;
}

/* setup, then a.log holding `text`, opened as a new file. */
static struct tail_file *start(struct fixture *f, const char *text)
{
    setup(f);
    test_write_file(f->path, text, strlen(text), false);
    return open_new(f);
}

START_TEST(test_resume_keeps_id_and_chain)
{
    struct fixture f;
    struct tail_file *tf = start(&f, "one\ntwo\n");
    tail_file_read(tf, 1 << 20, time_mono_ms());
    ck_assert_uint_eq(f.n, 2);
    char id[33];
    memcpy(id, f.v[0].stream, 33);
    uint8_t last[CHAIN_HASH_LEN];
    memcpy(last, f.v[1].hash, CHAIN_HASH_LEN);
    /* genesis: prev of seq 0 */
    uint8_t gen[CHAIN_HASH_LEN], h0[CHAIN_HASH_LEN];
    chain_genesis(id, gen);
    chain_next(gen, 0, "one", 3, h0);
    ck_assert_int_eq(memcmp(h0, f.v[0].hash, CHAIN_HASH_LEN), 0);
    ack_all(&f);
    struct checkpoint_entry e;
    ck_assert(tail_file_checkpoint(tf, &e));
    ck_assert_uint_eq(e.offset, 8);
    ck_assert_uint_eq(e.seq, 2);
    struct checkpoint c = {0};
    checkpoint_add(&c, &e);
    tail_file_free(tf);
    clear(&f);

    test_write_file(f.path, "three\n", 6, true);
    tf = tail_file_from_checkpoint(&f.ctx, &c.v[0]);
    ck_assert_int_eq(tail_file_open(tf), 0);
    tail_file_read(tf, 1 << 20, time_mono_ms());
    ck_assert_uint_eq(f.n, 1);
    ck_assert_str_eq(f.v[0].stream, id);
    ck_assert_uint_eq(f.v[0].seq, 2);
    uint8_t h2[CHAIN_HASH_LEN];
    chain_next(last, 2, "three", 5, h2);
    ck_assert_int_eq(memcmp(h2, f.v[0].hash, CHAIN_HASH_LEN), 0);
    tail_file_free(tf);
    checkpoint_release(&c);
    teardown(&f);
}
END_TEST

START_TEST(test_reused_inode_is_a_new_stream)
{
    struct fixture f;
    struct tail_file *tf = start(&f, "first file\nline\n");
    tail_file_read(tf, 1 << 20, time_mono_ms());
    ack_all(&f);
    char id[33];
    memcpy(id, f.v[0].stream, 33);
    struct checkpoint_entry e;
    ck_assert(tail_file_checkpoint(tf, &e));
    struct checkpoint c = {0};
    checkpoint_add(&c, &e);
    tail_file_free(tf);
    clear(&f);
    /* same inode (rewritten in place), other first line, longer than the offset */
    test_write_file(f.path, "another file\nx\ny\n", 17, false);
    tf = tail_file_from_checkpoint(&f.ctx, &c.v[0]);
    ck_assert_int_eq(tail_file_open(tf), 0);
    tail_file_read(tf, 1 << 20, time_mono_ms());
    ck_assert_uint_eq(f.n, 3);
    ck_assert_str_ne(f.v[0].stream, id);
    ck_assert_uint_eq(f.v[0].seq, 0);
    ck_assert_str_eq(f.v[0].data, "another file");
    ck_assert_uint_eq(position(tf).generation, 1);
    ck_assert_int_eq(metric_value(f.m.inode_reuses), 1);
    tail_file_free(tf);
    checkpoint_release(&c);
    teardown(&f);
}
END_TEST

START_TEST(test_truncation_new_generation)
{
    struct fixture f;
    struct tail_file *tf = start(&f, "aaaa\nbbbb\ncccc\n");
    tail_file_read(tf, 1 << 20, time_mono_ms());
    ck_assert_uint_eq(f.n, 3);
    char id[33];
    memcpy(id, f.v[0].stream, 33);
    ack_all(&f);
    clear(&f);
    ck_assert_int_eq(truncate(f.path, 0), 0);
    test_write_file(f.path, "aaaa\n", 5, true); /* same first line, shorter */
    tail_file_check(tf, time_mono_ms());
    ck_assert_int_eq(metric_value(f.m.file_truncations), 1);
    tail_file_read(tf, 1 << 20, time_mono_ms());
    ck_assert_uint_eq(f.n, 1);
    ck_assert_uint_eq(f.v[0].seq, 0);
    ck_assert_str_ne(f.v[0].stream, id); /* generation 1 */
    tail_file_free(tf);
    teardown(&f);
}
END_TEST

START_TEST(test_rewind_rereads_identical_records)
{
    struct fixture f;
    struct tail_file *tf = start(&f, "r0\nr1\nr2\nr3\n");
    uint64_t now = time_mono_ms();
    tail_file_read(tf, 1 << 20, now);
    ck_assert_uint_eq(f.n, 4);
    struct got first[4];
    memcpy(first, f.v, sizeof(first));
    ck_assert_int_eq(tail_file_delivered(f.v[0].msg, true, NULL, true, now), ACK_ADVANCED);
    ck_assert_int_eq(tail_file_delivered(f.v[1].msg, false, "broker down", true, now), ACK_REWIND);
    ck_assert_int_eq(metric_value(f.m.records_rewound), 1);
    /* r2, r3 are orphans: their reports come later */
    struct ack_msg *o2 = f.v[2].msg, *o3 = f.v[3].msg;
    f.v[0].msg = f.v[1].msg = f.v[2].msg = f.v[3].msg = NULL;
    ck_assert_uint_eq(position(tf).offset, 3);
    ck_assert_uint_eq(position(tf).seq, 1);
    ck_assert(!tail_file_read(tf, 1 << 20, now + 99)); /* first backoff: 100 ms */
    ck_assert_uint_eq(f.n, 4);
    tail_file_read(tf, 1 << 20, now + 100);
    ck_assert_uint_eq(f.n, 7);
    for (int i = 1; i < 4; i++) {
        ck_assert_uint_eq(f.v[3 + i].seq, first[i].seq);
        ck_assert_int_eq(memcmp(f.v[3 + i].hash, first[i].hash, CHAIN_HASH_LEN), 0);
    }
    ck_assert_int_eq(tail_file_delivered(o2, true, NULL, true, now), ACK_NONE);
    ck_assert_int_eq(tail_file_delivered(o3, false, "late", true, now), ACK_NONE);
    ck_assert_int_eq(metric_value(f.m.records_rewound), 1); /* orphans changed nothing */
    ck_assert_uint_eq(position(tf).seq, 1);
    ack_all(&f);
    ck_assert_uint_eq(position(tf).seq, 4);
    ck_assert_uint_eq(position(tf).offset, 12);
    for (int i = 0; i < 4; i++)
        free(first[i].data);
    for (size_t i = 4; i < f.n; i++)
        free(f.v[i].data);
    f.n = 0;
    tail_file_free(tf);
    teardown(&f);
}
END_TEST

/* Stopping: a failed delivery keeps the prefix where it was (the restart
 * resumes there) and the stream is not re-read. */
START_TEST(test_failure_while_stopping_does_not_rewind)
{
    struct fixture f;
    struct tail_file *tf = start(&f, "s0\ns1\n");
    uint64_t now = time_mono_ms();
    tail_file_read(tf, 1 << 20, now);
    ck_assert_uint_eq(f.n, 2);
    ck_assert_int_eq(tail_file_delivered(f.v[0].msg, false, "purged", false, now), ACK_REWIND);
    ck_assert_int_eq(tail_file_delivered(f.v[1].msg, true, NULL, false, now), ACK_NONE);
    f.v[0].msg = f.v[1].msg = NULL;
    ck_assert_int_eq(metric_value(f.m.records_rewound), 0);
    ck_assert_uint_eq(position(tf).offset, 0);
    ck_assert_uint_eq(position(tf).seq, 0);
    tail_file_read(tf, 1 << 20, now + 60000);
    ck_assert_uint_eq(f.n, 2); /* nothing re-read */
    tail_file_free(tf);
    teardown(&f);
}
END_TEST

/* A sink that is full (producer queue) makes the file stop before the
 * record and take it again on the next read; one whose budget ran out with a
 * record makes it stop after it; one that cannot take a record (encoding or
 * producing failed) makes the file retry that record only after 1 s. */
START_TEST(test_sink_refusals_resume_at_the_right_record)
{
    struct fixture f;
    struct tail_file *tf = start(&f, "q0\nq1\nq2\nq3\n");
    uint64_t now = time_mono_ms();
    f.refuse = 1;
    f.refuse_rc = TAIL_EMIT_PAUSE_BEFORE;
    ck_assert(!tail_file_read(tf, 1 << 20, now));
    ck_assert_uint_eq(f.refused, 1);
    ck_assert_uint_eq(f.n, 0);
    f.pause_after = 1;
    ck_assert(!tail_file_read(tf, 1 << 20, now)); /* no backoff after a full queue */
    ck_assert_uint_eq(f.n, 1);
    ck_assert_str_eq(f.v[0].data, "q0");
    f.pause_after = 0;
    f.refuse = 1;
    f.refuse_rc = TAIL_EMIT_BACKOFF;
    ck_assert(!tail_file_read(tf, 1 << 20, now));
    ck_assert_uint_eq(f.refused, 2);
    ck_assert(!tail_file_read(tf, 1 << 20, now)); /* backing off */
    ck_assert_uint_eq(f.refused, 2);
    ck_assert_uint_eq(f.n, 1);
    tail_file_read(tf, 1 << 20, time_mono_ms() + 1000);
    ck_assert_uint_eq(f.n, 4);
    for (size_t i = 0; i < 4; i++)
        ck_assert_uint_eq(f.v[i].seq, i);
    ck_assert_str_eq(f.v[1].data, "q1");
    ck_assert_str_eq(f.v[3].data, "q3");
    ck_assert_int_eq(metric_value(f.m.records_read), 4);
    ack_all(&f);
    ck_assert_uint_eq(position(tf).offset, 12);
    tail_file_free(tf);
    teardown(&f);
}
END_TEST

START_TEST(test_rotation_drains_and_finishes_last_line)
{
    struct fixture f;
    struct tail_file *tf = start(&f, "a\nb\npartial");
    tail_file_read(tf, 1 << 20, time_mono_ms());
    ck_assert_uint_eq(f.n, 2);
    tail_file_check(tf, time_mono_ms());
    ck_assert_uint_eq(f.n, 2); /* live: the partial line waits */
    char *rot = xasprintf("%s/a.log.1", f.dir);
    ck_assert_int_eq(rename(f.path, rot), 0);
    test_write_file(rot, " line\n", 6, true); /* written after the rename */
    test_write_file(rot, "last", 4, true);
    tail_file_check(tf, time_mono_ms()); /* notices the rotation */
    ck_assert_int_eq(metric_value(f.m.rotations), 1);
    ck_assert_str_eq(tail_file_path(tf), rot);
    tail_file_read(tf, 1 << 20, time_mono_ms());
    ck_assert_uint_eq(f.n, 3);
    ck_assert_str_eq(f.v[2].data, "partial line");
    ck_assert_int_eq(tail_file_check(tf, time_mono_ms() + 1), 0); /* not acked yet */
    ck_assert_uint_eq(f.n, 4);
    ck_assert_str_eq(f.v[3].data, "last");
    ack_all(&f);
    ck_assert_int_eq(tail_file_check(tf, time_mono_ms() + 1), 1); /* closed */
    ck_assert_int_eq(tail_file_state(tf), TAIL_KNOWN);
    ck_assert_uint_eq(position(tf).offset, 21);
    ck_assert(position(tf).done);
    free(rot);
    tail_file_free(tf);
    teardown(&f);
}
END_TEST

/* A record longer than the sink's message limit is cut before it is hashed
 * (the hash covers the bytes kept, truncated_bytes counts the rest), and a
 * re-read after a failed delivery cuts it the same way. */
START_TEST(test_cut_to_fit_before_hashing)
{
    struct fixture f;
    struct tail_file *tf = start(&f, "short\nthis record is longer than the limit\nnext\n");
    f.fit = 10;
    uint64_t now = time_mono_ms();
    tail_file_read(tf, 1 << 20, now);
    ck_assert_uint_eq(f.n, 3);
    ck_assert_str_eq(f.v[1].data, "this recor");
    ck_assert_uint_eq(f.truncated[1], 26);
    ck_assert_uint_eq(f.truncated[2], 0);
    uint8_t h0[CHAIN_HASH_LEN], h1[CHAIN_HASH_LEN], gen[CHAIN_HASH_LEN];
    chain_genesis(f.v[0].stream, gen);
    chain_next(gen, 0, "short", 5, h0);
    chain_next(h0, 1, "this recor", 10, h1);
    ck_assert_int_eq(memcmp(h1, f.v[1].hash, CHAIN_HASH_LEN), 0);
    ck_assert_int_eq(metric_value(f.m.truncated_bytes), 26);
    ck_assert_int_eq(tail_file_delivered(f.v[0].msg, false, "down", true, now), ACK_REWIND);
    f.v[0].msg = NULL;
    tail_file_read(tf, 1 << 20, now + 100);
    ck_assert_uint_eq(f.n, 6);
    ck_assert_int_eq(memcmp(f.v[4].hash, h1, CHAIN_HASH_LEN), 0);
    ack_all(&f);
    ck_assert_uint_eq(position(tf).offset, 48); /* past the whole line */
    tail_file_free(tf);
    teardown(&f);
}
END_TEST

/* After a TAIL_EMIT_WAIT_ACK record nothing more of the stream is produced
 * until it is acknowledged: if the broker refuses it as too large, it is cut
 * shorter and hashed again, and no record has been chained to the old hash. */
START_TEST(test_wait_ack_record_is_produced_alone)
{
    struct fixture f;
    struct tail_file *tf = start(&f, "a\nBIG record here\nb\nc\n");
    f.wait_ack = "BIG";
    uint64_t now = time_mono_ms();
    tail_file_read(tf, 1 << 20, now);
    ck_assert_uint_eq(f.n, 2);
    ck_assert(!tail_file_readable(tf, now));
    ck_assert(!tail_file_read(tf, 1 << 20, now));
    tail_file_check(tf, now);
    ck_assert_uint_eq(f.n, 2);
    /* refused as too large: the sink now cuts it */
    ck_assert_int_eq(tail_file_delivered(f.v[0].msg, true, NULL, true, now), ACK_ADVANCED);
    ck_assert_int_eq(tail_file_delivered(f.v[1].msg, false, "MSG_SIZE_TOO_LARGE", true, now),
                     ACK_REWIND);
    f.v[0].msg = f.v[1].msg = NULL;
    f.fit = 6;
    tail_file_read(tf, 1 << 20, now + 100);
    ck_assert_uint_eq(f.n, 3); /* the cut record, alone again */
    ck_assert_str_eq(f.v[2].data, "BIG re");
    ck_assert_uint_eq(f.v[2].seq, 1);
    ck_assert_int_ne(memcmp(f.v[2].hash, f.v[1].hash, CHAIN_HASH_LEN), 0);
    ck_assert_int_eq(tail_file_delivered(f.v[2].msg, true, NULL, true, now), ACK_ADVANCED);
    f.v[2].msg = NULL;
    ck_assert(tail_file_readable(tf, now + 100));
    tail_file_read(tf, 1 << 20, now + 100);
    ck_assert_uint_eq(f.n, 5);
    ck_assert_str_eq(f.v[3].data, "b");
    uint8_t hb[CHAIN_HASH_LEN];
    chain_next(f.v[2].hash, 2, "b", 1, hb); /* chained to the cut record */
    ck_assert_int_eq(memcmp(hb, f.v[3].hash, CHAIN_HASH_LEN), 0);
    ack_all(&f);
    tail_file_free(tf);
    teardown(&f);
}
END_TEST

/* Regression (issue 9 item 10): the age readiness and alerts watch counts
 * from a record's first attempt. A stream that keeps failing re-sends its
 * records with new enqueue times and, between attempts, has nothing in
 * flight: the age read 0 or restarted at every re-send, so no alert fired. */
START_TEST(test_unacked_age_counts_from_the_first_attempt)
{
    struct fixture f;
    struct tail_file *tf = start(&f, "x0\nx1\n");
    uint64_t t0 = time_mono_ms();
    tail_file_read(tf, 1 << 20, t0);
    ck_assert_uint_eq(f.n, 2);
    struct tail_stats st = {0};
    tail_file_add_stats(tf, &st);
    uint64_t first = st.oldest_unacked_ms;
    ck_assert_uint_gt(first, 0);
    ck_assert_int_eq(tail_file_delivered(f.v[0].msg, false, "refused", true, t0), ACK_REWIND);
    ck_assert_int_eq(tail_file_delivered(f.v[1].msg, false, "refused", true, t0), ACK_NONE);
    f.v[0].msg = f.v[1].msg = NULL;
    memset(&st, 0, sizeof(st));
    tail_file_add_stats(tf, &st); /* backing off, nothing in flight */
    ck_assert_uint_eq(st.oldest_unacked_ms, first);
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL); /* the re-send must get a later enqueue time */
    tail_file_read(tf, 1 << 20, time_mono_ms() + 1000);
    ck_assert_uint_eq(f.n, 4);
    memset(&st, 0, sizeof(st));
    tail_file_add_stats(tf, &st);
    ck_assert_uint_eq(st.oldest_unacked_ms, first);
    ack_all(&f);
    memset(&st, 0, sizeof(st));
    tail_file_add_stats(tf, &st);
    ck_assert_uint_eq(st.oldest_unacked_ms, 0);
    tail_file_free(tf);
    teardown(&f);
}
END_TEST

/* Draining (stopping): a live file is drained once read to its end and
 * acknowledged, its unterminated last line left; what is past the
 * acknowledged prefix is counted as the framer cuts it. */
START_TEST(test_drained_and_unshipped)
{
    struct fixture f;
    struct tail_file *tf = start(&f, "d0\n\nd1\nd2\npart");
    f.ctx.draining = true;
    struct tail_unshipped u;
    tail_file_unshipped(tf, &u);
    ck_assert_uint_eq(u.records, 4);
    ck_assert_uint_eq(u.bytes, 14);
    ck_assert(u.partial);
    ck_assert(!tail_file_drained(tf));
    tail_file_read(tf, 1 << 20, time_mono_ms());
    ck_assert_uint_eq(f.n, 3);
    ck_assert(!tail_file_drained(tf)); /* in flight */
    ack_all(&f);
    tail_file_check(tf, time_mono_ms());
    ck_assert(tail_file_drained(tf));
    tail_file_unshipped(tf, &u);
    ck_assert_uint_eq(u.records, 1);
    ck_assert_uint_eq(u.bytes, 4);
    ck_assert(u.partial);
    tail_file_free(tf);
    teardown(&f);
}
END_TEST

/* Records in flight when their file is truncated cannot be read again: a
 * failed delivery of one of them counts in records_lost_total; an orphan of
 * a rewind (read again) does not. */
START_TEST(test_truncation_counts_failed_records_as_lost)
{
    struct fixture f;
    struct tail_file *tf = start(&f, "t0\nt1\nt2\n");
    uint64_t now = time_mono_ms();
    tail_file_read(tf, 1 << 20, now);
    ck_assert_uint_eq(f.n, 3);
    ck_assert_int_eq(tail_file_delivered(f.v[0].msg, false, "down", true, now), ACK_REWIND);
    ck_assert_int_eq(tail_file_delivered(f.v[1].msg, false, "down", true, now), ACK_NONE);
    ck_assert_int_eq(tail_file_delivered(f.v[2].msg, false, "down", true, now), ACK_NONE);
    f.v[0].msg = f.v[1].msg = f.v[2].msg = NULL;
    ck_assert_int_eq(metric_value(f.m.records_lost), 0); /* read again */
    tail_file_read(tf, 1 << 20, now + 100);
    ck_assert_uint_eq(f.n, 6);
    ck_assert_int_eq(truncate(f.path, 0), 0);
    tail_file_check(tf, now + 100);
    ck_assert_int_eq(metric_value(f.m.file_truncations), 1);
    ck_assert_int_eq(tail_file_delivered(f.v[3].msg, true, NULL, true, now), ACK_NONE);
    ck_assert_int_eq(tail_file_delivered(f.v[4].msg, false, "down", true, now), ACK_NONE);
    ck_assert_int_eq(tail_file_delivered(f.v[5].msg, false, "down", true, now), ACK_NONE);
    f.v[3].msg = f.v[4].msg = f.v[5].msg = NULL;
    ck_assert_int_eq(metric_value(f.m.records_lost), 2);
    tail_file_free(tf);
    teardown(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("agent_tail_file");
    TCase *tc = tcase_create("tail_file");
    tcase_add_test(tc, test_resume_keeps_id_and_chain);
    tcase_add_test(tc, test_reused_inode_is_a_new_stream);
    tcase_add_test(tc, test_truncation_new_generation);
    tcase_add_test(tc, test_rewind_rereads_identical_records);
    tcase_add_test(tc, test_failure_while_stopping_does_not_rewind);
    tcase_add_test(tc, test_sink_refusals_resume_at_the_right_record);
    tcase_add_test(tc, test_rotation_drains_and_finishes_last_line);
    tcase_add_test(tc, test_cut_to_fit_before_hashing);
    tcase_add_test(tc, test_wait_ack_record_is_produced_alone);
    tcase_add_test(tc, test_unacked_age_counts_from_the_first_attempt);
    tcase_add_test(tc, test_drained_and_unshipped);
    tcase_add_test(tc, test_truncation_counts_failed_records_as_lost);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
