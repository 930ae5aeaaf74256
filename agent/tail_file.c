/* One file's state machine: open/verify/resume, read + frame + chain,
 * truncation, rotation, deletion, drain-then-close, rewind. */
#include "agent/tail_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/framer.h"
#include "agent/stream_id.h"
#include "agent/tail_guard.h"
#include "agent/tail_scan.h"
#include "common/hashchain.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

/* Backoff after a failed delivery: 100 ms doubling to 5 s. */
#define REWIND_BASE_MS 100
#define REWIND_MAX_MS  5000
#define EMIT_RETRY_MS  1000 /* after the sink could not take a record (TAIL_EMIT_BACKOFF) */

struct tail_file {
    const struct tail_ctx *ctx;
    enum tail_state state;
    char *path;      /* current name (the rotated name once known) */
    char *live_path; /* the name it was found under; elsewhere = rotated away */
    size_t input;    /* index into cfg->inputs */
    int fd;
    uint64_t dev, ino, btime;
    uint64_t size;        /* last fstat */
    uint64_t closed_size; /* KNOWN: size when it was closed; reopened only if it changes */
    bool start_at_end;    /* read_from: end applies (found at the very first start) */

    /* identity */
    uint64_t generation;
    bool have_id;
    uint8_t fp[STREAM_FP_LEN];
    uint64_t fp_len;
    char stream[2 * STREAM_ID_LEN + 1];

    /* chain position of the next record to produce */
    uint64_t next_seq;
    uint8_t prev[CHAIN_HASH_LEN];
    struct ack_tracker tr; /* tr.acked = the checkpoint; tr.owner = this file */
    bool done;             /* finished and fully acknowledged (checkpoint flag) */

    struct framer *fr;
    bool gone;     /* rotated away or deleted: drain, finish, close */
    bool deleted;  /* link count 0 */
    bool at_eof;   /* the last read returned 0 bytes */
    bool finished; /* framer_finish ran (final unterminated line emitted) */
    uint64_t last_data_ms;
    uint64_t resume_ms;      /* no reading before this (backoff after a failed delivery) */
    unsigned failures;       /* consecutive failed deliveries, for the backoff */
    bool open_warned;        /* an open refusal or error was logged (once per file) */
    bool wait_ack;           /* a TAIL_EMIT_WAIT_ACK record is in flight: read nothing more */
    uint64_t retry_since_ms; /* first attempt of the oldest record re-sent after a failure */
};

void tail_ctx_init(struct tail_ctx *ctx, const struct agent_config *cfg, struct agent_metrics *m,
                   const struct tail_sink *sink)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->cfg = cfg;
    ctx->m = m;
    ctx->sink = *sink;
    ctx->buf_len = (size_t)cfg->file.agent.read_buffer_bytes;
    ctx->buf = xmalloc(ctx->buf_len);
}

void tail_ctx_release(struct tail_ctx *ctx)
{
    free(ctx->buf);
    ctx->buf = NULL;
}

/* Birth time (statx) of the file at dirfd/path, or of fd itself when path
 * is "" (AT_EMPTY_PATH), in ns; 0 when the filesystem has none. */
static uint64_t file_btime(int dirfd, const char *path)
{
    struct statx stx;
    int rc = statx(dirfd, path, *path ? 0 : AT_EMPTY_PATH, STATX_BTIME, &stx);
    if (rc < 0 || !(stx.stx_mask & STATX_BTIME))
        return 0;
    return (uint64_t)stx.stx_btime.tv_sec * 1000000000ull + stx.stx_btime.tv_nsec;
}

struct tail_file *tail_file_new(const struct tail_ctx *ctx, const char *path, size_t input,
                                const struct stat *st, bool from_end)
{
    struct tail_file *tf = xcalloc(1, sizeof(*tf));
    tf->ctx = ctx;
    tf->state = TAIL_WAITING;
    tf->path = xstrdup(path);
    tf->live_path = xstrdup(path);
    tf->input = input;
    tf->fd = -1;
    tf->dev = (uint64_t)st->st_dev;
    tf->ino = (uint64_t)st->st_ino;
    tf->btime = file_btime(AT_FDCWD, path);
    tf->size = (uint64_t)st->st_size;
    tf->start_at_end = from_end;
    return tf;
}

struct tail_file *tail_file_new_rotated(const struct tail_ctx *ctx, const char *path,
                                        const char *live_path, size_t input, const struct stat *st)
{
    struct tail_file *tf = tail_file_new(ctx, path, input, st, false);
    free(tf->live_path);
    tf->live_path = xstrdup(live_path);
    return tf;
}

struct tail_file *tail_file_from_checkpoint(const struct tail_ctx *ctx,
                                            const struct checkpoint_entry *e)
{
    struct tail_file *tf = xcalloc(1, sizeof(*tf));
    tf->ctx = ctx;
    tf->state = TAIL_KNOWN;
    tf->path = xstrdup(e->path);
    tf->live_path = xstrdup(e->live_path ? e->live_path : e->path);
    tf->fd = -1;
    tf->dev = e->dev;
    tf->ino = e->ino;
    tf->btime = e->btime;
    tf->generation = e->generation;
    tf->have_id = e->fp_len > 0;
    memcpy(tf->fp, e->fp, STREAM_FP_LEN);
    tf->fp_len = e->fp_len;
    memcpy(tf->stream, e->stream, sizeof(tf->stream));
    struct ack_pos pos = {.offset = e->offset, .seq = e->seq};
    memcpy(pos.prev, e->prev, CHAIN_HASH_LEN);
    ack_tracker_init(&tf->tr, &pos, tf);
    tf->next_seq = e->seq;
    memcpy(tf->prev, e->prev, CHAIN_HASH_LEN);
    tf->done = e->done;
    tf->size = e->offset;
    tf->closed_size = e->offset;
    return tf;
}

static void close_file(struct tail_file *tf)
{
    if (tf->fd >= 0)
        close(tf->fd);
    tf->fd = -1;
    framer_free(tf->fr);
    tf->fr = NULL;
}

void tail_file_free(struct tail_file *tf)
{
    if (!tf)
        return;
    ack_tracker_orphan_all(&tf->tr);
    close_file(tf);
    free(tf->path);
    free(tf->live_path);
    free(tf);
}

bool tail_file_is(const struct tail_file *tf, uint64_t dev, uint64_t ino)
{
    return tf->dev == dev && tf->ino == ino;
}

void tail_file_identity(const struct tail_file *tf, uint64_t *dev, uint64_t *ino, uint64_t *btime)
{
    *dev = tf->dev;
    *ino = tf->ino;
    *btime = tf->btime;
}

bool tail_file_unfinished(const struct tail_file *tf)
{
    return tf->state == TAIL_WAITING || (tf->state == TAIL_KNOWN && !tf->done);
}

enum tail_state tail_file_state(const struct tail_file *tf)
{
    return tf->state;
}

const char *tail_file_path(const struct tail_file *tf)
{
    return tf->path;
}

const char *tail_file_live_path(const struct tail_file *tf)
{
    return tf->live_path;
}

void tail_file_found(struct tail_file *tf, const char *path, size_t input, const struct stat *st)
{
    if (strcmp(tf->path, path) != 0) {
        free(tf->path);
        tf->path = xstrdup(path);
    }
    if (tf->state == TAIL_KNOWN) {
        tf->input = input;
        tf->size = (uint64_t)st->st_size;
    }
}

bool tail_file_find_renamed(struct tail_file *tf)
{
    struct stat st;
    if (lstat(tf->path, &st) == 0 && S_ISREG(st.st_mode) &&
        tail_file_is(tf, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
        return true; /* still at its current name (one outside the globs) */
    char *copy = xstrdup(tf->path);
    char *dir = xstrdup(dirname(copy));
    bool found = false;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            !tail_file_is(tf, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
            continue;
        char *path = xasprintf("%s/%s", dir, de->d_name);
        int in = tail_scan_match(tf->ctx->cfg, tf->live_path);
        tail_file_found(tf, path, in >= 0 ? (size_t)in : tf->input, &st);
        free(path);
        found = true;
        break;
    }
    if (d)
        closedir(d);
    free(dir);
    free(copy);
    return found;
}

bool tail_file_wants_open(const struct tail_file *tf)
{
    if (tf->state == TAIL_WAITING)
        return true;
    return tf->state == TAIL_KNOWN && (tf->size != tf->closed_size || !tf->done);
}

/* Forget the current stream and start a new one at `offset` (a new file, a
 * reused inode, a truncation). Whatever is in flight of the old stream is
 * orphaned: its file content is gone, it cannot be re-read anyway. */
static void new_stream(struct tail_file *tf, uint64_t offset, uint64_t generation)
{
    ack_tracker_orphan_all(&tf->tr);
    struct ack_pos pos = {.offset = offset, .seq = 0};
    ack_tracker_init(&tf->tr, &pos, tf);
    tf->generation = generation;
    tf->have_id = false;
    tf->fp_len = 0;
    memset(tf->fp, 0, sizeof(tf->fp));
    tf->stream[0] = '\0';
    tf->next_seq = 0;
    memset(tf->prev, 0, sizeof(tf->prev));
    tf->finished = false;
    tf->done = false;
    tf->at_eof = false;
    if (tf->fr)
        framer_reset(tf->fr, offset);
}

/* The stream id needs the fingerprint, known once the first record is (or
 * at once when starting mid-file). Returns 1 when the id is known, 0 when the
 * head is not long enough yet, -1 on a read error (logged). */
static int ensure_id(struct tail_file *tf, bool final)
{
    if (tf->have_id)
        return 1;
    size_t len = 0;
    int r = stream_fp_read(tf->fd, final, tf->fp, &len);
    if (r < 0) {
        log_error("read %s: %s", tf->path, strerror(errno));
        return -1;
    }
    if (r == 0)
        return 0;
    tf->fp_len = len;
    stream_id_compute(tf->ctx->cfg->file.agent.source_name, tf->dev, tf->ino, tf->btime, tf->fp,
                      tf->fp_len, tf->generation, tf->stream);
    if (tf->next_seq == 0) {
        chain_genesis(tf->stream, tf->prev);
        if (tf->tr.acked.seq == 0)
            memcpy(tf->tr.acked.prev, tf->prev, CHAIN_HASH_LEN);
    }
    tf->have_id = true;
    log_info("stream %s: %s (dev %llu inode %llu generation %llu) from offset %llu", tf->stream,
             tf->path, (unsigned long long)tf->dev, (unsigned long long)tf->ino,
             (unsigned long long)tf->generation, (unsigned long long)tf->tr.acked.offset);
    return 1;
}

int tail_file_open(struct tail_file *tf)
{
    const struct tail_ctx *ctx = tf->ctx;
    bool from_end = tf->state == TAIL_WAITING && tf->start_at_end;
    struct stat st;
    enum tail_guard_verdict v;
    int fd = tail_guard_open(tf->path, ctx->cfg->file.agent.follow_symlinks, &st, &v);
    if (fd < 0) {
        if (v != TAIL_GUARD_GONE && !tf->open_warned) {
            tf->open_warned = true;
            if (v == TAIL_GUARD_ERROR)
                log_warn("open %s: %s", tf->path, strerror(errno));
            else
                log_warn("not reading %s: %s", tf->path, tail_guard_explain(v));
        }
        return -1;
    }
    uint64_t btime = file_btime(fd, "");
    if ((uint64_t)st.st_dev != tf->dev || (uint64_t)st.st_ino != tf->ino) {
        /* The name moved on between the scan and now (renamed, replaced):
         * this file is elsewhere, the next scan looks for it by its inode
         * and finds the newcomer at the name. */
        close(fd);
        return -1;
    }
    const struct agent_input *in = &ctx->cfg->inputs[tf->input];
    tf->fd = fd;
    tf->size = (uint64_t)st.st_size;
    tf->fr = framer_new((size_t)ctx->cfg->file.agent.max_record_bytes,
                        in->has_start ? &in->start : NULL);
    tf->gone = tf->deleted = tf->at_eof = tf->finished = false;
    tf->last_data_ms = time_mono_ms();
    if (tf->state == TAIL_KNOWN) {
        int same = tf->btime != btime ? 0
                   : tf->have_id      ? stream_fp_verify(fd, tf->fp, tf->fp_len)
                                      : 1;
        if (same == 1 && tf->tr.acked.offset <= tf->size) {
            framer_reset(tf->fr, tf->tr.acked.offset);
            tf->next_seq = tf->tr.acked.seq;
            memcpy(tf->prev, tf->tr.acked.prev, CHAIN_HASH_LEN);
            tf->done = false;
            log_info("stream %s: resuming %s at offset %llu seq %llu", tf->stream, tf->path,
                     (unsigned long long)tf->tr.acked.offset, (unsigned long long)tf->tr.acked.seq);
        } else {
            /* Same device and inode, other content: a reused inode, or the
             * file was truncated while we were not looking. */
            log_warn("stream %s: %s (inode %llu) no longer holds the checkpointed file "
                     "(%s); starting a new stream",
                     tf->stream, tf->path, (unsigned long long)tf->ino,
                     same == 1 ? "shorter than the checkpoint" : "fingerprint differs");
            metric_inc(same == 1 ? ctx->m->file_truncations : ctx->m->inode_reuses);
            if (!tf->done) {
                /* What the old content held past the checkpoint is gone. */
                metric_inc(ctx->m->files_lost);
                log_error("stream %s: if its file held anything past offset %llu, that is lost",
                          tf->stream, (unsigned long long)tf->tr.acked.offset);
            }
            tf->btime = btime;
            new_stream(tf, 0, tf->generation + 1);
        }
    } else {
        tf->btime = btime; /* from the descriptor: the scanner's look may be stale */
        new_stream(tf, from_end ? tf->size : 0, 0);
        if (from_end && tf->size > 0)
            (void)ensure_id(tf, false); /* so the checkpoint remembers the position */
    }
    tf->state = TAIL_OPEN;
    return 0;
}

struct emit_state {
    struct tail_file *tf;
    uint64_t resume;
    bool final;
    int64_t now_us;  /* wall clock of the read */
    uint64_t now_ms; /* monotonic clock of the read */
    uint64_t read;   /* records emitted, counted once at the end */
};

static void emit_state_init(struct emit_state *es, struct tail_file *tf)
{
    es->tf = tf;
    es->resume = 0;
    es->final = false;
    es->now_us = time_now_us();
    es->now_ms = time_mono_ms();
    es->read = 0;
}

/* The records_read counter: one atomic add per read, not per record. */
static void emit_state_done(const struct emit_state *es)
{
    if (es->read)
        metric_add(es->tf->ctx->m->records_read, (double)es->read);
}

/* One framed record -> the sink, with its place in the file's hash chain. */
static int on_record(void *ud, const struct framer_record *r)
{
    struct emit_state *es = ud;
    struct tail_file *tf = es->tf;
    const struct tail_ctx *ctx = tf->ctx;
    int id = ensure_id(tf, es->final);
    if (id == 0 && !es->final)
        id = ensure_id(tf, true); /* a framed record needs its id now: take the head there is */
    if (id <= 0) {
        es->resume = r->offset; /* cannot read the file head now: try again later */
        return 1;
    }
    const struct agent_input *in = &ctx->cfg->inputs[tf->input];
    uint8_t hash[CHAIN_HASH_LEN] = {0};
    struct record_in rec = {
        .kind = in->kind,
        .map = &in->map,
        .stream_hex = tf->stream,
        .path = tf->path,
        .seq = tf->next_seq,
        .offset = r->offset,
        .truncated = r->truncated,
        .prev = tf->prev,
        .hash = hash,
        .data = r->data,
        .len = r->len,
        .read_time_us = es->now_us,
    };
    /* The cut is decided before the hash: the hash covers the bytes kept. */
    if (ctx->sink.fit) {
        size_t keep = ctx->sink.fit(ctx->sink.ud, &rec);
        if (keep < rec.len) {
            rec.truncated += rec.len - keep;
            rec.len = keep;
        }
    }
    chain_next(tf->prev, tf->next_seq, r->data, rec.len, hash);
    struct ack_msg *msg = ack_msg_new(tf->next_seq, r->end, hash, 0, es->now_ms);
    enum tail_emit_rc rc = ctx->sink.emit(ctx->sink.ud, &rec, msg);
    if (rc == TAIL_EMIT_PAUSE_BEFORE || rc == TAIL_EMIT_BACKOFF) {
        free(msg);
        if (rc == TAIL_EMIT_BACKOFF)
            tf->resume_ms = time_mono_ms() + EMIT_RETRY_MS;
        es->resume = r->offset;
        return 1;
    }
    ack_tracker_push(&tf->tr, msg);
    tf->next_seq++;
    memcpy(tf->prev, hash, CHAIN_HASH_LEN);
    es->read++;
    if (rec.truncated) {
        metric_inc(ctx->m->records_truncated);
        metric_add(ctx->m->truncated_bytes, (double)rec.truncated);
    }
    if (rc == TAIL_EMIT_WAIT_ACK)
        tf->wait_ack = true;
    if (rc == TAIL_EMIT_PAUSE_AFTER || rc == TAIL_EMIT_WAIT_ACK) {
        es->resume = r->end;
        return 1;
    }
    return 0;
}

/* The sink stopped: drop what the framer holds and continue from `resume`
 * next time (records are deterministic, re-reading gives the same ones). */
static void paused_at(struct tail_file *tf, uint64_t resume)
{
    framer_reset(tf->fr, resume);
    tf->at_eof = false;
}

bool tail_file_readable(const struct tail_file *tf, uint64_t now_ms)
{
    return tf->state == TAIL_OPEN && now_ms >= tf->resume_ms && !(tf->wait_ack && tf->tr.n > 0);
}

static bool read_some(struct tail_file *tf, size_t budget, uint64_t now_ms, struct emit_state *es)
{
    const struct tail_ctx *ctx = tf->ctx;
    size_t total = 0;
    while (total < budget) {
        uint64_t pos = framer_position(tf->fr);
        ssize_t n = pread(tf->fd, ctx->buf, ctx->buf_len, (off_t)pos);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("read %s: %s", tf->path, strerror(errno));
            tf->resume_ms = now_ms + REWIND_MAX_MS;
            return !tf->at_eof;
        }
        if (n == 0) {
            tf->at_eof = true;
            break;
        }
        tf->at_eof = false;
        tf->last_data_ms = now_ms;
        if (total > 0) { /* a clock reading per read, not per record */
            es->now_us = time_now_us();
            es->now_ms = time_mono_ms();
        }
        if (pos + (uint64_t)n > tf->size)
            tf->size = pos + (uint64_t)n;
        metric_add(ctx->m->bytes_read, (double)n);
        total += (size_t)n;
        if (framer_feed(tf->fr, ctx->buf, (size_t)n, on_record, es)) {
            paused_at(tf, es->resume);
            return false;
        }
    }
    return !tf->at_eof;
}

bool tail_file_read(struct tail_file *tf, size_t budget, uint64_t now_ms)
{
    if (!tail_file_readable(tf, now_ms))
        return false;
    tf->wait_ack = false;
    struct emit_state es;
    emit_state_init(&es, tf);
    bool more = read_some(tf, budget, now_ms, &es);
    emit_state_done(&es);
    return more;
}

static void truncated(struct tail_file *tf, const char *why)
{
    log_warn("stream %s: %s was truncated (%s): new stream generation %llu",
             tf->have_id ? tf->stream : "(unnamed)", tf->path, why,
             (unsigned long long)tf->generation + 1);
    metric_inc(tf->ctx->m->file_truncations);
    /* Its records in flight cannot be read again: a failed delivery of one
     * of them is a lost record. */
    for (struct ack_msg *m = tf->tr.head; m; m = m->next)
        m->lost_if_failed = tf->ctx->m->records_lost;
    if (tf->tr.n > 0)
        log_warn("stream %s: %zu records were in flight when it was truncated; any whose "
                 "delivery fails now is lost (records_lost_total)",
                 tf->stream, tf->tr.n);
    new_stream(tf, 0, tf->generation + 1);
    tf->last_data_ms = time_mono_ms();
}

/* The rotated name, from the open descriptor (it may lie outside the globs). */
static void learn_name(struct tail_file *tf)
{
    char link[64], name[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", tf->fd);
    ssize_t n = readlink(link, name, sizeof(name) - 1);
    if (n <= 0)
        return;
    name[n] = '\0';
    if (tf->deleted || strstr(name, " (deleted)"))
        return;
    free(tf->path);
    tf->path = xstrdup(name);
}

/* What happened to the open file since the last look: deleted (no links),
 * truncated (shorter than the read position, or other first bytes: a new
 * generation starts), rotated away (its live name holds another inode).
 * Returns false after a truncation (the file starts over). */
static bool follow_file(struct tail_file *tf)
{
    struct agent_metrics *m = tf->ctx->m;
    struct stat st;
    if (fstat(tf->fd, &st) == 0) {
        tf->size = (uint64_t)st.st_size;
        if (st.st_nlink == 0 && !tf->deleted) {
            tf->deleted = tf->gone = true;
            metric_inc(m->files_deleted);
            log_info("%s was deleted: draining it", tf->path);
        }
    }
    if (tf->size < framer_position(tf->fr)) {
        truncated(tf, "size below the read position");
        return false;
    }
    if (tf->have_id && tf->fp_len > 0 && stream_fp_verify(tf->fd, tf->fp, tf->fp_len) == 0) {
        truncated(tf, "its first bytes changed");
        return false;
    }
    if (!tf->gone) {
        struct stat ls;
        int rc = tf->ctx->cfg->file.agent.follow_symlinks ? stat(tf->live_path, &ls)
                                                          : lstat(tf->live_path, &ls);
        if (rc < 0 || (uint64_t)ls.st_dev != tf->dev || (uint64_t)ls.st_ino != tf->ino) {
            tf->gone = true;
            metric_inc(m->rotations);
            learn_name(tf);
            log_info("%s was rotated away (now %s): draining it", tf->live_path, tf->path);
        }
    }
    return true;
}

/* A gone file read to its end and quiet for rotate_wait_ms: emit its last
 * unterminated line, then close it once everything is acknowledged.
 * Returns 1 when it was closed. */
static bool finish_gone(struct tail_file *tf, struct emit_state *es, uint64_t now_ms)
{
    if (!tf->finished && tail_file_readable(tf, now_ms)) {
        es->final = true;
        if (framer_finish(tf->fr, on_record, es)) {
            paused_at(tf, es->resume);
            return false;
        }
        tf->finished = true;
    }
    if (!tf->finished || tf->tr.n > 0)
        return false;
    log_info("stream %s: %s drained and acknowledged up to offset %llu: closed",
             tf->have_id ? tf->stream : "(no records)", tf->path,
             (unsigned long long)tf->tr.acked.offset);
    close_file(tf);
    tf->state = TAIL_KNOWN;
    tf->done = true;
    tf->closed_size = tf->size; /* trailing empty lines are not records */
    return true;
}

static bool check_open(struct tail_file *tf, uint64_t now_ms, struct emit_state *es)
{
    const struct agent_input *in = &tf->ctx->cfg->inputs[tf->input];
    bool quiet_eof = tf->size == framer_position(tf->fr) && tf->at_eof;
    /* Stopping, nothing waits for quiet: the pod is going away. */
    uint64_t flush_ms = tf->ctx->draining ? 0 : (uint64_t)in->conf->multiline.flush_ms;
    uint64_t rotate_wait_ms =
        tf->ctx->draining ? 0 : (uint64_t)tf->ctx->cfg->file.agent.rotate_wait_ms;
    if (in->has_start && quiet_eof && framer_pending(tf->fr) &&
        now_ms - tf->last_data_ms >= flush_ms && tail_file_readable(tf, now_ms)) {
        if (framer_flush(tf->fr, on_record, es)) {
            paused_at(tf, es->resume);
            return false;
        }
    }
    if (tf->gone && quiet_eof && now_ms - tf->last_data_ms >= rotate_wait_ms)
        return finish_gone(tf, es, now_ms);
    return false;
}

bool tail_file_check(struct tail_file *tf, uint64_t now_ms)
{
    if (tf->state != TAIL_OPEN || !follow_file(tf))
        return false;
    struct emit_state es;
    emit_state_init(&es, tf);
    bool closed = check_open(tf, now_ms, &es);
    emit_state_done(&es);
    return closed;
}

bool tail_file_drained(const struct tail_file *tf)
{
    switch (tf->state) {
    case TAIL_WAITING:
        return tf->size == 0;
    case TAIL_KNOWN:
        return tf->done || tf->size <= tf->tr.acked.offset;
    case TAIL_OPEN:
        break;
    }
    return tf->tr.n == 0 && tf->at_eof && framer_position(tf->fr) >= tf->size &&
           !framer_holds_record(tf->fr) && (!tf->gone || tf->finished);
}

static int count_record(void *ud, const struct framer_record *r)
{
    struct tail_unshipped *u = ud;
    u->records++;
    return 0;
}

void tail_file_unshipped(const struct tail_file *tf, struct tail_unshipped *u)
{
    memset(u, 0, sizeof(*u));
    if (tf->state == TAIL_KNOWN && tf->done)
        return;
    uint64_t from =
        tf->state == TAIL_WAITING ? (tf->start_at_end ? tf->size : 0) : tf->tr.acked.offset;
    int fd = tf->fd;
    if (fd < 0) {
        struct stat st;
        enum tail_guard_verdict v;
        fd = tail_guard_open(tf->path, tf->ctx->cfg->file.agent.follow_symlinks, &st, &v);
        if (fd < 0 || !tail_file_is(tf, (uint64_t)st.st_dev, (uint64_t)st.st_ino)) {
            if (fd >= 0)
                close(fd);
            return;
        }
    }
    const struct agent_input *in = &tf->ctx->cfg->inputs[tf->input];
    struct framer *fr = framer_new((size_t)tf->ctx->cfg->file.agent.max_record_bytes,
                                   in->has_start ? &in->start : NULL);
    framer_reset(fr, from);
    uint8_t buf[65536];
    for (uint64_t pos = from;;) {
        ssize_t n = pread(fd, buf, sizeof(buf), (off_t)pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        (void)framer_feed(fr, buf, (size_t)n, count_record, u);
        pos += (uint64_t)n;
        u->bytes += (uint64_t)n;
    }
    uint64_t complete = u->records;
    u->partial = framer_pending(fr) && !framer_holds_record(fr);
    (void)framer_finish(fr, count_record, u);
    u->partial = u->partial && u->records > complete;
    framer_free(fr);
    if (fd != tf->fd)
        close(fd);
}

/* A delivery of this stream failed: go back to the acknowledged prefix and
 * read again (the same records, ids and hashes) after a backoff. */
static void rewind_stream(struct tail_file *tf, const char *err, uint64_t now_ms)
{
    tf->next_seq = tf->tr.acked.seq;
    memcpy(tf->prev, tf->tr.acked.prev, CHAIN_HASH_LEN);
    framer_reset(tf->fr, tf->tr.acked.offset);
    tf->finished = false;
    tf->at_eof = false;
    unsigned shift = tf->failures < 6 ? tf->failures : 6;
    uint64_t delay = (uint64_t)REWIND_BASE_MS << shift;
    tf->resume_ms = now_ms + (delay < REWIND_MAX_MS ? delay : REWIND_MAX_MS);
    tf->failures++;
    metric_inc(tf->ctx->m->records_rewound);
    log_warn("stream %s: delivery failed (%s): re-reading %s from offset %llu seq %llu", tf->stream,
             err, tf->path, (unsigned long long)tf->tr.acked.offset,
             (unsigned long long)tf->tr.acked.seq);
}

enum ack_result tail_file_delivered(struct ack_msg *msg, bool ok, const char *err, bool may_rewind,
                                    uint64_t now_ms)
{
    void *owner;
    /* The first attempt of the oldest record in flight: a re-send must not
     * make a wedged stream look young (readiness and alerts watch it). */
    uint64_t oldest = msg->tr ? ack_tracker_oldest_ms(msg->tr) : 0;
    struct metric *lost = msg->lost_if_failed;
    enum ack_result res = ack_tracker_delivered(msg, ok, &owner);
    struct tail_file *tf = owner;
    if (!tf) {
        /* orphaned: its stream was rewound meanwhile (it is read again), or
         * its file's content is gone */
        if (!ok && lost) {
            metric_inc(lost);
            log_error("a record of a truncated file failed delivery (%s): it cannot be read "
                      "again and is lost",
                      err ? err : "?");
        }
        return res;
    }
    if (ok) {
        tf->failures = 0;
        if (res == ACK_ADVANCED)
            tf->retry_since_ms = 0;
        return res;
    }
    if (oldest && (!tf->retry_since_ms || oldest < tf->retry_since_ms))
        tf->retry_since_ms = oldest;
    if (!err)
        err = "?";
    if (may_rewind && tf->state == TAIL_OPEN)
        rewind_stream(tf, err, now_ms);
    else
        log_warn("stream %s: delivery failed (%s); not re-read now: the next start resumes "
                 "from offset %llu",
                 tf->stream, err, (unsigned long long)tf->tr.acked.offset);
    return res;
}

bool tail_file_checkpoint(const struct tail_file *tf, struct checkpoint_entry *e)
{
    memset(e, 0, sizeof(*e));
    e->path = tf->path;
    e->live_path = tf->live_path;
    e->dev = tf->dev;
    e->ino = tf->ino;
    e->btime = tf->btime;
    e->generation = tf->generation;
    if (tf->have_id) {
        memcpy(e->fp, tf->fp, STREAM_FP_LEN);
        e->fp_len = tf->fp_len;
        memcpy(e->stream, tf->stream, sizeof(e->stream));
    }
    /* A waiting file is remembered from where it will start, so that a
     * restart still finds it if it is rotated away meanwhile. */
    e->offset = tf->state == TAIL_WAITING ? (tf->start_at_end ? tf->size : 0) : tf->tr.acked.offset;
    e->seq = tf->tr.acked.seq;
    memcpy(e->prev, tf->tr.acked.prev, CHAIN_HASH_LEN);
    e->done = tf->state == TAIL_KNOWN && tf->done;
    return true;
}

void tail_file_add_stats(const struct tail_file *tf, struct tail_stats *s)
{
    s->open += tf->state == TAIL_OPEN;
    s->waiting += tf->state == TAIL_WAITING;
    s->streams += tf->have_id;
    if (tf->state == TAIL_OPEN) {
        if (tf->deleted)
            s->deleted_bytes += tf->size;
        s->buffered_bytes += framer_buffered_bytes(tf->fr);
        if (tf->size > tf->tr.acked.offset)
            s->backlog_bytes += tf->size - tf->tr.acked.offset;
    }
    uint64_t o = ack_tracker_oldest_ms(&tf->tr);
    if (tf->retry_since_ms && (!o || tf->retry_since_ms < o))
        o = tf->retry_since_ms;
    if (o && (!s->oldest_unacked_ms || o < s->oldest_unacked_ms))
        s->oldest_unacked_ms = o;
}
