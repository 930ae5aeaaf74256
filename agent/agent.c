/* The agent's main loop: discovery, reading under the in-flight budget,
 * delivery reports -> acknowledged prefixes -> checkpoint, health.
 *
 * Threads: everything here runs on the main thread except ready_cb and
 * livez_cb, which run on libmicrohttpd's threads and read only the atomics
 * below. */
#include "agent/agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <malloc.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/ack_tracker.h"
#include "agent/agent_health.h"
#include "agent/agent_metrics.h"
#include "agent/checkpoint.h"
#include "agent/producer.h"
#include "agent/record.h"
#include "agent/tail_file.h"
#include "agent/tail_scan.h"
#include "agent/tail_watch.h"
#include "common/alert.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/procmetrics.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define LOOP_TICK_MS 100           /* timers (flush, rotate_wait, checks) resolution */
#define READ_BUDGET  (1024 * 1024) /* bytes per file per round, for fairness */

enum ready_state {
    READY_OK = 0,
    READY_STARTING,
    READY_FATAL,
    READY_KAFKA_DOWN,
    READY_ACK_STALLED,
};

struct agent {
    const struct agent_config *cfg;
    struct metrics *metrics;
    struct agent_metrics am;
    struct httpd *httpd;
    struct producer *prod;
    struct tail_watch *watch;
    struct tail_ctx ctx;
    struct record_ctx rctx;
    struct tail_file *files;
    bool first_start;
    bool stopping;

    uint64_t inflight_bytes, inflight_records;
    bool paused;
    size_t rr; /* round-robin start of the reading rounds */
    bool ckpt_dirty;
    uint64_t next_ckpt_ms, next_rescan_ms, start_ms;

    _Atomic int ready;
    _Atomic uint64_t heartbeat_ms;
    struct alerter *alerts;
    int alerted; /* the ready state last alerted on (main thread) */
};

/* Readiness and liveness (agent_health.h): Kafka's health is in the metrics
 * and alerts, not in /readyz; /livez fails when the loop stops turning. */
static bool ready_cb(void *ud, char *reason, size_t len)
{
    struct agent *a = ud;
    int st = atomic_load(&a->ready);
    return agent_health_ready(st == READY_STARTING, st == READY_FATAL,
                              atomic_load(&a->heartbeat_ms), time_mono_ms(), reason, len);
}

static bool livez_cb(void *ud, const struct httpd_request *req, struct httpd_response *resp)
{
    struct agent *a = ud;
    if (strcmp(httpd_request_path(req), "/livez") != 0)
        return false;
    char reason[128];
    if (agent_health_live(atomic_load(&a->heartbeat_ms), time_mono_ms(), reason, sizeof(reason))) {
        resp->body = xstrdup("{\"live\":true}");
    } else {
        resp->status = 503;
        resp->body = xasprintf("{\"live\":false,\"reason\":\"%s\"}", reason);
    }
    resp->body_len = strlen(resp->body);
    return true;
}

static struct tail_file *tail_of(struct ack_tracker *tr)
{
    return (struct tail_file *)((char *)tr - offsetof(struct tail_file, tr));
}

/* Delivery report (main thread, from producer_poll). */
static void on_delivery(void *ud, void *opaque, bool ok, const char *err)
{
    struct agent *a = ud;
    struct ack_msg *m = opaque;
    a->inflight_bytes -= m->bytes;
    a->inflight_records--;
    struct ack_tracker *tr;
    enum ack_result res = ack_tracker_delivered(m, ok, &tr);
    if (ok) {
        metric_inc(a->am.records_acked);
        if (tr)
            tail_file_delivered(tail_of(tr));
        if (res == ACK_ADVANCED)
            a->ckpt_dirty = true;
        return;
    }
    metric_inc(a->am.delivery_errors);
    if (res == ACK_REWIND) {
        struct tail_file *tf = tail_of(tr);
        log_warn("stream %s: delivery failed: %s", tf->stream, err ? err : "?");
        if (!a->stopping)
            tail_file_rewind(tf, &a->ctx, time_mono_ms());
    }
}

/* The sink of tail_file: one record -> one Kafka message. */
static enum tail_emit_rc on_emit(void *ud, struct tail_file *tf, const struct tail_record *r)
{
    struct agent *a = ud;
    const struct agent_input *in = &a->cfg->inputs[tf->input];
    struct record_in ri = {
        .kind = in->kind,
        .map = &in->map,
        .stream_hex = tf->stream,
        .path = tf->path,
        .seq = r->seq,
        .offset = r->fr->offset,
        .truncated = r->fr->truncated,
        .prev = r->prev,
        .hash = r->hash,
        .data = r->fr->data,
        .len = r->fr->len,
        .read_time_us = r->read_time_us,
    };
    size_t len = 0;
    bool parse_failed = false;
    char *payload = record_encode(&a->rctx, &ri, &len, &parse_failed);
    if (!payload) {
        log_error("stream %s: cannot encode record seq %llu", tf->stream,
                  (unsigned long long)r->seq);
        tf->resume_ms = time_mono_ms() + 1000;
        return TAIL_EMIT_PAUSE_BEFORE;
    }
    if (parse_failed)
        metric_inc(a->am.parse_errors[in->kind]);
    /* Count what the message holds in memory, not just its length. */
    r->msg->bytes = malloc_usable_size(payload);
    enum producer_send_rc rc =
        producer_send(a->prod, tf->stream, CHAIN_STREAM_HEX_LEN, payload, len, r->msg);
    if (rc != PRODUCER_OK) {
        free(payload);
        a->paused = true;
        if (rc == PRODUCER_ERROR)
            tf->resume_ms = time_mono_ms() + 1000;
        return TAIL_EMIT_PAUSE_BEFORE;
    }
    a->inflight_bytes += r->msg->bytes;
    a->inflight_records++;
    metric_inc(a->am.records_produced);
    metric_inc(a->am.produced_by_format[in->kind]);
    if (a->inflight_bytes >= (uint64_t)a->cfg->file.agent.max_inflight_bytes ||
        a->inflight_records >= (uint64_t)a->cfg->file.agent.max_inflight_records) {
        a->paused = true;
        return TAIL_EMIT_PAUSE_AFTER;
    }
    return TAIL_EMIT_OK;
}

static struct tail_file *find_file(struct agent *a, uint64_t dev, uint64_t ino)
{
    for (struct tail_file *tf = a->files; tf; tf = tf->next)
        if (tf->dev == dev && tf->ino == ino)
            return tf;
    return NULL;
}

static void add_file(struct agent *a, struct tail_file *tf)
{
    struct tail_file **pp = &a->files;
    while (*pp)
        pp = &(*pp)->next;
    *pp = tf;
}

static size_t count_open(const struct agent *a)
{
    size_t n = 0;
    for (const struct tail_file *tf = a->files; tf; tf = tf->next)
        n += tf->state == TAIL_OPEN;
    return n;
}

struct scan_state {
    struct agent *a;
    bool initial;
};

static void on_found(void *ud, const char *path, size_t input, const struct stat *st)
{
    struct scan_state *ss = ud;
    struct agent *a = ss->a;
    struct tail_file *tf = find_file(a, (uint64_t)st->st_dev, (uint64_t)st->st_ino);
    if (tf) {
        if (tf->seen)
            return; /* matched by an earlier input or another link */
        tf->seen = true;
        if (strcmp(tf->path, path) != 0) {
            free(tf->path);
            tf->path = xstrdup(path);
        }
        if (tf->state == TAIL_KNOWN) {
            tf->input = input;
            tf->size = (uint64_t)st->st_size;
        }
        return;
    }
    tf = tail_file_new(path, input, st, tail_file_btime(AT_FDCWD, path, -1));
    tf->seen = true;
    tf->start_at_end = ss->initial && a->first_start && a->cfg->read_from_end;
    add_file(a, tf);
}

/* After a restart: a checkpointed file not found by the globs may have been
 * rotated to a name outside them; look for its inode in its directory. */
static bool find_renamed(struct agent *a, struct tail_file *tf)
{
    char *copy = xstrdup(tf->path);
    char *dir = xstrdup(dirname(copy));
    bool found = false;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode) &&
            (uint64_t)st.st_dev == tf->dev && (uint64_t)st.st_ino == tf->ino) {
            free(tf->path);
            tf->path = xasprintf("%s/%s", dir, de->d_name);
            tf->size = (uint64_t)st.st_size;
            found = true;
            break;
        }
    }
    if (d)
        closedir(d);
    free(dir);
    free(copy);
    if (found) {
        int in = tail_scan_match(a->cfg, tf->live_path);
        tf->input = in >= 0 ? (size_t)in : 0;
    }
    return found;
}

static int save_checkpoint(struct agent *a);

static void rescan(struct agent *a, bool initial)
{
    metric_inc(a->am.rescans);
    tail_watch_refresh(a->watch, a->cfg);
    for (struct tail_file *tf = a->files; tf; tf = tf->next)
        tf->seen = false;
    struct scan_state ss = {a, initial};
    tail_scan_run(a->cfg, on_found, &ss);

    size_t open_n = count_open(a), opened = 0;
    size_t max_open = (size_t)a->cfg->file.agent.max_open_files;
    for (struct tail_file **pp = &a->files; *pp;) {
        struct tail_file *tf = *pp;
        bool drop = false;
        if (!tf->seen && tf->state == TAIL_WAITING) {
            drop = true; /* vanished before we opened it */
        } else if (!tf->seen && tf->state == TAIL_KNOWN) {
            if (initial && !tf->done && find_renamed(a, tf)) {
                tf->seen = true; /* opened below, drained, closed */
            } else {
                if (!tf->done)
                    log_warn("stream %s: %s is gone before its records from offset %llu were "
                             "acknowledged",
                             tf->stream, tf->path, (unsigned long long)tf->tr.acked.offset);
                drop = true;
                a->ckpt_dirty = true;
            }
        }
        if (drop) {
            *pp = tf->next;
            tail_file_free(tf);
            continue;
        }
        bool want =
            tf->state == TAIL_WAITING || (tf->state == TAIL_KNOWN && tf->seen &&
                                          (tf->size != tf->closed_size || (initial && !tf->done)));
        if (want && open_n < max_open) {
            bool from_end = tf->state == TAIL_WAITING && tf->start_at_end;
            if (tail_file_open(tf, &a->ctx, from_end) == 0) {
                open_n++;
                opened++;
            } else if (tf->state == TAIL_WAITING) {
                *pp = tf->next;
                tail_file_free(tf);
                continue;
            }
        }
        pp = &tf->next;
    }
    /* Remember new files at once: if one is rotated outside the globs while
     * the agent is down, the restart still finds it by its inode. */
    if (opened)
        (void)save_checkpoint(a);
}

static int save_checkpoint(struct agent *a)
{
    struct checkpoint c = {0};
    for (struct tail_file *tf = a->files; tf; tf = tf->next) {
        struct checkpoint_entry e;
        if (tail_file_checkpoint(tf, &e))
            checkpoint_add(&c, &e);
    }
    char err[512];
    int rc = checkpoint_save(&c, a->cfg->file.agent.checkpoint_dir, err, sizeof(err));
    checkpoint_release(&c);
    if (rc < 0) {
        metric_inc(a->am.checkpoint_errors);
        log_error("%s", err);
        return -1;
    }
    metric_inc(a->am.checkpoint_writes);
    a->ckpt_dirty = false;
    return 0;
}

/* Alerts follow the ready state: Kafka unreachable fires (and resolves when
 * a broker is back), a fatal producer error fires once before the exit. */
static void alert_on_change(struct agent *a, int st)
{
    if (st == a->alerted || st == READY_STARTING)
        return;
    if (a->alerted == READY_KAFKA_DOWN)
        alerter_resolve(a->alerts, "AuditrailKafkaUnavailable", NULL);
    if (st == READY_KAFKA_DOWN)
        alerter_fire(a->alerts, "AuditrailKafkaUnavailable", ALERT_CRITICAL,
                     "no Kafka broker reachable: reading paused, checkpoint frozen",
                     "the log files buffer the records until a broker is back", NULL);
    else if (st == READY_ACK_STALLED)
        alerter_fire(a->alerts, "AuditrailKafkaUnavailable", ALERT_CRITICAL,
                     "records wait for Kafka acknowledgements longer than kafka_unready_ms", NULL,
                     NULL);
    else if (st == READY_FATAL)
        alerter_fire(a->alerts, "AuditrailFatal", ALERT_CRITICAL,
                     "fatal Kafka producer error: the agent exits and restarts from its checkpoint",
                     NULL, NULL);
    a->alerted = st;
}

static void update_gauges(struct agent *a, uint64_t now)
{
    size_t open_n = 0, waiting = 0, streams = 0;
    uint64_t deleted_bytes = 0, oldest = 0, buffered = 0, backlog = 0;
    for (struct tail_file *tf = a->files; tf; tf = tf->next) {
        open_n += tf->state == TAIL_OPEN;
        waiting += tf->state == TAIL_WAITING;
        streams += tf->have_id;
        if (tf->state == TAIL_OPEN) {
            if (tf->deleted)
                deleted_bytes += tf->size;
            buffered += framer_buffered_bytes(tf->fr);
            if (tf->size > tf->tr.acked.offset)
                backlog += tf->size - tf->tr.acked.offset;
        }
        uint64_t o = ack_tracker_oldest_ms(&tf->tr);
        if (o && (!oldest || o < oldest))
            oldest = o;
    }
    metric_set(a->am.open_files, (double)open_n);
    metric_set(a->am.files_waiting, (double)waiting);
    metric_set(a->am.streams, (double)streams);
    metric_set(a->am.deleted_open_bytes, (double)deleted_bytes);
    metric_set(a->am.backlog_bytes, (double)backlog);
    metric_set(a->am.buffered_bytes, (double)buffered);
    metric_set(a->am.unacked_bytes, (double)a->inflight_bytes);
    metric_set(a->am.unacked_records, (double)a->inflight_records);
    metric_set(a->am.backpressure_paused, a->paused ? 1 : 0);
    double age = oldest ? (double)(now - oldest) / 1000.0 : 0;
    metric_set(a->am.oldest_unacked_age, age);

    uint64_t up = producer_last_up_ms(a->prod);
    uint64_t unready = (uint64_t)a->cfg->file.agent.kafka_unready_ms;
    bool kafka_up = up && now - up < 3000; /* statistics arrive every second */
    metric_set(a->am.kafka_up, kafka_up ? 1 : 0);
    int st = READY_OK;
    if (producer_is_fatal(a->prod, NULL, 0))
        st = READY_FATAL;
    else if (now - (up ? up : a->start_ms) > unready)
        st = READY_KAFKA_DOWN;
    else if (oldest && now - oldest > unready)
        st = READY_ACK_STALLED;
    metric_set(a->am.kafka_fatal, st == READY_FATAL ? 1 : 0);
    atomic_store(&a->ready, st);
    atomic_store(&a->heartbeat_ms, now);
    alert_on_change(a, st);
}

struct agent *agent_new(const struct agent_config *cfg, char *err, size_t errlen)
{
    struct agent *a = xcalloc(1, sizeof(*a));
    const struct agent_section *s = &cfg->file.agent;
    a->cfg = cfg;
    a->start_ms = time_mono_ms();
    atomic_store(&a->ready, READY_STARTING);
    atomic_store(&a->heartbeat_ms, a->start_ms);
    a->metrics = metrics_new();
    procmetrics_register(a->metrics, "agent");
    agent_metrics_init(&a->am, a->metrics);
    a->alerted = READY_STARTING;
    struct alerter_conf ac = cfg->file.alerts;
    ac.component = "agent";
    ac.instance = s->source_name;
    a->alerts = alerter_new(&ac, a->metrics, err, errlen);
    if (!a->alerts)
        goto fail;
    metric_set(a->am.open_files_max, (double)s->max_open_files);

    if (mkdir(s->checkpoint_dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "agent.checkpoint_dir %s: %s", s->checkpoint_dir, strerror(errno));
        goto fail;
    }
    struct checkpoint c = {0};
    int lr = checkpoint_load(&c, s->checkpoint_dir, err, errlen);
    if (lr < 0) {
        checkpoint_release(&c);
        goto fail;
    }
    a->first_start = lr == 0;
    for (size_t i = 0; i < c.n; i++)
        add_file(a, tail_file_from_checkpoint(&c.v[i]));
    log_info("checkpoint: %s (%zu streams)", a->first_start ? "none, first start" : "loaded", c.n);
    checkpoint_release(&c);

    a->ctx.cfg = cfg;
    a->ctx.source_name = s->source_name;
    a->ctx.m = &a->am;
    a->ctx.emit = on_emit;
    a->ctx.emit_ud = a;
    a->ctx.buf_len = (size_t)s->read_buffer_bytes;
    a->ctx.buf = xmalloc(a->ctx.buf_len);

    a->rctx.source_name = s->source_name;
    a->rctx.host = s->source.host;
    a->rctx.namespace_ = s->source.namespace_;
    a->rctx.pod = s->source.pod;
    a->rctx.container = s->source.container;
    a->rctx.max_past_us = s->max_past_s * 1000000;
    a->rctx.max_future_us = s->max_future_s * 1000000;

    struct producer_opts po = {
        .max_inflight_bytes = (size_t)s->max_inflight_bytes,
        .max_inflight_records = (size_t)s->max_inflight_records,
        .max_record_bytes = (size_t)s->max_record_bytes,
        .dr = on_delivery,
        .ud = a,
    };
    a->prod = producer_new(&cfg->file.kafka, &po, err, errlen);
    if (!a->prod)
        goto fail;
    a->watch = tail_watch_new();

    if (cfg->file.http.listen && *cfg->file.http.listen) {
        struct httpd_conf hc = {
            .listen = cfg->file.http.listen,
            .metrics = a->metrics,
            .ready = ready_cb,
            .ready_ud = a,
            .handler = livez_cb,
            .handler_ud = a,
        };
        a->httpd = httpd_start(&hc, err, errlen);
        if (!a->httpd)
            goto fail;
        log_info("http: /healthz /livez /readyz /metrics on port %u", httpd_port(a->httpd));
    }
    return a;
fail:
    agent_free(a);
    return NULL;
}

void agent_free(struct agent *a)
{
    if (!a)
        return;
    httpd_stop(a->httpd); /* first: its threads read a->metrics and a->ready */
    if (a->prod) {
        /* Remaining messages come back as failed reports that free their
         * trackers' entries; nothing here is acknowledged any more. */
        a->stopping = true;
        producer_purge(a->prod);
        uint64_t until = time_mono_ms() + 1000;
        do
            producer_poll(a->prod, 10);
        while (a->inflight_records > 0 && time_mono_ms() < until);
    }
    while (a->files) {
        struct tail_file *tf = a->files;
        a->files = tf->next;
        tail_file_free(tf);
    }
    producer_free(a->prod);
    tail_watch_free(a->watch);
    free(a->ctx.buf);
    alerter_free(a->alerts); /* flushes pending alerts within alerts.timeout_ms */
    metrics_free(a->metrics);
    free(a);
}

/* One reading round over the open files, starting one file further each
 * round so that under backpressure no file starves the others. Returns true
 * if any file may have more to read right away. */
static bool read_round(struct agent *a, uint64_t now)
{
    size_t n = 0;
    for (struct tail_file *tf = a->files; tf; tf = tf->next)
        n++;
    if (n == 0)
        return false;
    size_t first = a->rr++ % n;
    bool more = false;
    for (size_t pass = 0; pass < 2; pass++) {
        size_t i = 0;
        for (struct tail_file *tf = a->files; tf; tf = tf->next, i++) {
            if ((pass == 0) != (i >= first))
                continue;
            if (tf->state != TAIL_OPEN || now < tf->resume_ms)
                continue;
            if (a->paused)
                return false;
            if (tail_file_read(tf, &a->ctx, READ_BUDGET, now) == 0 && !tf->at_eof)
                more = true;
            producer_poll(a->prod, 0); /* serve reports between files: keeps memory low */
        }
    }
    return more && !a->paused;
}

static void check_files(struct agent *a, uint64_t now)
{
    bool closed = false;
    for (struct tail_file *tf = a->files; tf; tf = tf->next)
        if (tail_file_check(tf, &a->ctx, now)) {
            closed = true;
            a->ckpt_dirty = true;
        }
    if (closed)
        a->next_rescan_ms = now; /* a slot is free for a waiting file */
}

static void shutdown_drain(struct agent *a)
{
    uint64_t deadline = time_mono_ms() + (uint64_t)a->cfg->file.agent.shutdown_timeout_ms;
    log_info("stopping: waiting up to %lld ms for %llu outstanding deliveries",
             (long long)a->cfg->file.agent.shutdown_timeout_ms,
             (unsigned long long)a->inflight_records);
    while (a->inflight_records > 0 && time_mono_ms() < deadline &&
           !producer_is_fatal(a->prod, NULL, 0))
        producer_poll(a->prod, 50);
    a->stopping = true;
    if (a->inflight_records > 0) {
        log_warn("stopping with %llu deliveries outstanding: they will be re-sent after the "
                 "restart",
                 (unsigned long long)a->inflight_records);
        producer_purge(a->prod);
        producer_poll(a->prod, 100);
    }
}

int agent_run(struct agent *a, volatile sig_atomic_t *stop)
{
    int status = 0;
    uint64_t now = time_mono_ms();
    const struct agent_section *s = &a->cfg->file.agent;
    rescan(a, true);
    a->next_rescan_ms = now + (uint64_t)s->rescan_interval_ms;
    a->next_ckpt_ms = now + (uint64_t)s->checkpoint_interval_ms;
    a->ckpt_dirty = true;
    bool more = true;
    while (!*stop) {
        struct pollfd pfd[2] = {
            {.fd = tail_watch_fd(a->watch), .events = POLLIN},
            {.fd = producer_wake_fd(a->prod), .events = POLLIN},
        };
        int timeout = more ? 0 : LOOP_TICK_MS;
        if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            status = 1;
            break;
        }
        now = time_mono_ms();
        struct tail_watch_events ev = {0};
        tail_watch_drain(a->watch, &ev);
        if (ev.overflow) {
            metric_inc(a->am.inotify_overflows);
            log_warn("inotify queue overflow: rescanning");
        }
        if (pfd[1].revents & POLLIN)
            producer_clear_wake(a->prod);
        producer_poll(a->prod, 0);

        char fmsg[256];
        if (producer_is_fatal(a->prod, fmsg, sizeof(fmsg))) {
            update_gauges(a, now);
            log_error("stopping after a fatal Kafka producer error (%s); the checkpoint keeps "
                      "only acknowledged records, a restart re-sends the rest",
                      fmsg);
            status = 3;
            break;
        }
        if (ev.files_changed || ev.overflow || now >= a->next_rescan_ms) {
            rescan(a, false);
            a->next_rescan_ms = now + (uint64_t)s->rescan_interval_ms;
        }
        if (a->paused && a->inflight_bytes < (uint64_t)s->max_inflight_bytes &&
            a->inflight_records < (uint64_t)s->max_inflight_records)
            a->paused = false;
        more = read_round(a, now);
        check_files(a, now);
        if (now >= a->next_ckpt_ms) {
            if (a->ckpt_dirty)
                (void)save_checkpoint(a);
            a->next_ckpt_ms = now + (uint64_t)s->checkpoint_interval_ms;
        }
        update_gauges(a, now);
    }
    if (status == 0)
        shutdown_drain(a);
    else
        a->stopping = true;
    if (save_checkpoint(a) < 0 && status == 0)
        status = 1;
    log_info("stopped (exit %d)", status);
    return status;
}
