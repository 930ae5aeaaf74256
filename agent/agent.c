/* The agent's main loop: discovery, reading under the in-flight budget,
 * delivery reports -> acknowledged prefixes -> checkpoint, health.
 *
 * Threads: everything here runs on the main thread except ready_cb, which
 * runs on libmicrohttpd's threads and reads only the atomics below. */
#include "agent/agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/ack_tracker.h"
#include "agent/agent_metrics.h"
#include "agent/checkpoint.h"
#include "agent/ship.h"
#include "agent/tail_file.h"
#include "agent/tail_scan.h"
#include "agent/tail_watch.h"
#include "common/alert.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define LOOP_TICK_MS  100           /* timers (flush, rotate_wait, checks) resolution */
#define READ_BUDGET   (1024 * 1024) /* bytes per file per round, for fairness */
#define LOOP_STALL_MS 30000         /* /readyz fails when the loop stops turning */

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
    struct ship *ship;
    struct tail_watch *watch;
    struct tail_ctx ctx;
    struct tail_file *files;
    bool first_start;

    size_t rr;          /* round-robin start of the reading rounds */
    bool ckpt_dirty;    /* files closed or forgotten since the last checkpoint */
    uint64_t ckpt_acks; /* ship_progress at the last checkpoint */
    uint64_t next_ckpt_ms, next_rescan_ms, start_ms;

    _Atomic int ready;
    _Atomic uint64_t heartbeat_ms;
    struct alerter *alerts;
    int alerted; /* the ready state last alerted on (main thread) */
};

static bool ready_cb(void *ud, char *reason, size_t len)
{
    struct agent *a = ud;
    int st = atomic_load(&a->ready);
    uint64_t hb = atomic_load(&a->heartbeat_ms);
    if (time_mono_ms() - hb > LOOP_STALL_MS) {
        snprintf(reason, len, "main loop stalled");
        return false;
    }
    switch (st) {
    case READY_OK:
        return true;
    case READY_STARTING:
        snprintf(reason, len, "starting");
        return false;
    case READY_FATAL:
        snprintf(reason, len, "fatal Kafka producer error");
        return false;
    case READY_KAFKA_DOWN:
        snprintf(reason, len, "Kafka unreachable");
        return false;
    default:
        snprintf(reason, len, "records not acknowledged by Kafka");
        return false;
    }
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
    tf = tail_file_new(&a->ctx, path, input, st,
                       ss->initial && a->first_start && a->cfg->read_from_end);
    tf->seen = true;
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
            if (tail_file_open(tf) == 0) {
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
    uint64_t acks = ship_progress(a->ship);
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
    a->ckpt_acks = acks;
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
    uint64_t deleted_bytes = 0, oldest = 0, buffered = 0;
    for (struct tail_file *tf = a->files; tf; tf = tf->next) {
        open_n += tf->state == TAIL_OPEN;
        waiting += tf->state == TAIL_WAITING;
        streams += tf->have_id;
        if (tf->state == TAIL_OPEN) {
            if (tf->deleted)
                deleted_bytes += tf->size;
            buffered += framer_buffered_bytes(tf->fr);
        }
        uint64_t o = ack_tracker_oldest_ms(&tf->tr);
        if (o && (!oldest || o < oldest))
            oldest = o;
    }
    metric_set(a->am.open_files, (double)open_n);
    metric_set(a->am.files_waiting, (double)waiting);
    metric_set(a->am.streams, (double)streams);
    metric_set(a->am.deleted_open_bytes, (double)deleted_bytes);
    metric_set(a->am.buffered_bytes, (double)buffered);
    ship_update_gauges(a->ship);
    double age = oldest ? (double)(now - oldest) / 1000.0 : 0;
    metric_set(a->am.oldest_unacked_age, age);

    uint64_t up = ship_kafka_up_ms(a->ship);
    uint64_t unready = (uint64_t)a->cfg->file.agent.kafka_unready_ms;
    bool kafka_up = up && now - up < 3000; /* statistics arrive every second */
    metric_set(a->am.kafka_up, kafka_up ? 1 : 0);
    int st = READY_OK;
    if (ship_is_fatal(a->ship, NULL, 0))
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
    tail_ctx_init(&a->ctx, cfg, &a->am, ship_send, NULL);
    for (size_t i = 0; i < c.n; i++)
        add_file(a, tail_file_from_checkpoint(&a->ctx, &c.v[i]));
    log_info("checkpoint: %s (%zu streams)", a->first_start ? "none, first start" : "loaded", c.n);
    checkpoint_release(&c);

    a->ship = ship_new(cfg, &a->am, err, errlen);
    if (!a->ship)
        goto fail;
    a->ctx.emit_ud = a->ship;
    a->watch = tail_watch_new();

    if (cfg->file.http.listen && *cfg->file.http.listen) {
        struct httpd_conf hc = {
            .listen = cfg->file.http.listen,
            .metrics = a->metrics,
            .ready = ready_cb,
            .ready_ud = a,
        };
        a->httpd = httpd_start(&hc, err, errlen);
        if (!a->httpd)
            goto fail;
        log_info("http: /healthz /readyz /metrics on port %u", httpd_port(a->httpd));
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
    httpd_stop(a->httpd);  /* first: its threads read a->metrics and a->ready */
    ship_abandon(a->ship); /* no delivery report may outlive the files */
    while (a->files) {
        struct tail_file *tf = a->files;
        a->files = tf->next;
        tail_file_free(tf);
    }
    ship_free(a->ship);
    tail_watch_free(a->watch);
    tail_ctx_release(&a->ctx);
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
            if (ship_paused(a->ship))
                return false;
            if (tail_file_read(tf, READ_BUDGET, now))
                more = true;
            ship_poll(a->ship, 0); /* serve reports between files: keeps memory low */
        }
    }
    return more && !ship_paused(a->ship);
}

static void check_files(struct agent *a, uint64_t now)
{
    bool closed = false;
    for (struct tail_file *tf = a->files; tf; tf = tf->next)
        if (tail_file_check(tf, now)) {
            closed = true;
            a->ckpt_dirty = true;
        }
    if (closed)
        a->next_rescan_ms = now; /* a slot is free for a waiting file */
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
            {.fd = ship_wake_fd(a->ship), .events = POLLIN},
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
            ship_clear_wake(a->ship);
        ship_poll(a->ship, 0);

        char fmsg[256];
        if (ship_is_fatal(a->ship, fmsg, sizeof(fmsg))) {
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
        ship_update_pause(a->ship);
        more = read_round(a, now);
        check_files(a, now);
        if (now >= a->next_ckpt_ms) {
            if (a->ckpt_dirty || ship_progress(a->ship) != a->ckpt_acks)
                (void)save_checkpoint(a);
            a->next_ckpt_ms = now + (uint64_t)s->checkpoint_interval_ms;
        }
        update_gauges(a, now);
    }
    if (status == 0)
        ship_drain(a->ship, s->shutdown_timeout_ms);
    else
        ship_stop(a->ship);
    if (save_checkpoint(a) < 0 && status == 0)
        status = 1;
    log_info("stopped (exit %d)", status);
    return status;
}
