/* The agent's main loop and its wiring: discovery (tail_set), reading rounds
 * under the in-flight budget (ship), checks, the checkpoint timer, health,
 * and the order of shutdown.
 *
 * Threads: everything here runs on the main thread; the HTTP server's
 * threads call agent_health_ready (atomics) and read the metrics. */
#include "agent/agent.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_health.h"
#include "agent/agent_metrics.h"
#include "agent/checkpoint.h"
#include "agent/ship.h"
#include "agent/tail_file.h"
#include "agent/tail_set.h"
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
/* A reading round ends after this long (or as soon as inotify has news), so
 * that discovery runs between rounds even while a backlog is read: a file
 * created and rotated away meanwhile must be seen at its globbed name. */
#define READ_SLICE_MS 50

struct agent {
    const struct agent_config *cfg;
    struct metrics *metrics;
    struct agent_metrics am;
    struct agent_health *health;
    struct httpd *httpd;
    struct ship *ship;
    struct tail_watch *watch;
    struct tail_set *files;
    bool first_start;
    int lock_fd;                 /* flock of checkpoint_dir, held while the agent lives */
    struct tail_watch_events ev; /* drained, not yet served (see read_round) */

    size_t rr;          /* round-robin start of the reading rounds */
    bool ckpt_dirty;    /* files closed or forgotten since the last checkpoint */
    uint64_t ckpt_acks; /* ship_progress at the last checkpoint */
    uint64_t next_ckpt_ms, next_rescan_ms;
};

static int save_checkpoint(struct agent *a)
{
    struct checkpoint c = {0};
    uint64_t acks = ship_progress(a->ship);
    tail_set_checkpoint(a->files, &c);
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

static void rescan(struct agent *a, bool initial)
{
    metric_inc(a->am.rescans);
    tail_watch_refresh(a->watch, a->cfg);
    bool from_end = initial && a->first_start && a->cfg->read_from_end;
    unsigned changes = tail_set_rescan(a->files, from_end);
    if (changes & TAIL_SET_FORGOT)
        a->ckpt_dirty = true;
    /* Remember new files at once: if one is rotated outside the globs while
     * the agent is down, the restart still finds it by its inode. */
    if (changes & TAIL_SET_OPENED)
        (void)save_checkpoint(a);
}

static void update_health(struct agent *a, uint64_t now)
{
    uint64_t oldest = tail_set_update_gauges(a->files, now);
    ship_update_metrics(a->ship);
    struct agent_health_in in = {
        .kafka_up_ms = ship_kafka_up_ms(a->ship),
        .fatal = ship_is_fatal(a->ship, NULL, 0),
        .oldest_unacked_ms = oldest,
    };
    in.refused = ship_refused(a->ship, in.refused_why, sizeof(in.refused_why));
    agent_health_update(a->health, &in, now);
}

/* Locks the checkpoint directory and reads the checkpoint into c;
 * a->first_start when there is none. A corrupt checkpoint never stops the
 * start: the previous generation, or none, is used (records are sent again,
 * the aggregator drops them), with an alert. */
static int load_checkpoint(struct agent *a, struct checkpoint *c, char *err, size_t errlen)
{
    const char *dir = a->cfg->file.agent.checkpoint_dir;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "agent.checkpoint_dir %s: %s", dir, strerror(errno));
        return -1;
    }
    a->lock_fd = checkpoint_lock(dir, err, errlen);
    if (a->lock_fd < 0)
        return -1;
    char why[1024];
    int lr = checkpoint_load(c, dir, why, sizeof(why));
    if (lr < 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    a->first_start = lr == CHECKPOINT_NONE;
    if (lr == CHECKPOINT_FALLBACK || lr == CHECKPOINT_LOST) {
        bool lost = lr == CHECKPOINT_LOST;
        metric_inc(a->am.checkpoint_fallbacks);
        log_error("%s: %s", why,
                  lost ? "every file is read again from its start; unfinished files rotated "
                         "outside the globs before the checkpoint was written cannot be found"
                       : "records after its positions are sent again");
        agent_health_alert(a->health, "AuditrailCheckpointCorrupt",
                           lost ? ALERT_CRITICAL : ALERT_WARNING,
                           lost ? "agent checkpoint unreadable: files are read again from "
                                  "their start"
                                : "agent checkpoint unreadable: the previous generation is used",
                           why);
    }
    log_info("checkpoint: %s (%zu streams)",
             a->first_start              ? "none, first start"
             : lr == CHECKPOINT_FALLBACK ? "previous generation loaded"
             : lr == CHECKPOINT_LOST     ? "none readable"
                                         : "loaded",
             c->n);
    return 0;
}

static int start_http(struct agent *a, char *err, size_t errlen)
{
    const char *listen = a->cfg->file.http.listen;
    if (!listen || !*listen)
        return 0;
    struct httpd_conf hc = {
        .listen = listen,
        .metrics = a->metrics,
        .ready = agent_health_ready,
        .ready_ud = a->health,
        .handler = agent_health_routes,
        .handler_ud = a->health,
    };
    a->httpd = httpd_start(&hc, err, errlen);
    if (!a->httpd)
        return -1;
    log_info("http: /healthz /livez /readyz /metrics on port %u", httpd_port(a->httpd));
    return 0;
}

struct agent *agent_new(const struct agent_config *cfg, char *err, size_t errlen)
{
    struct agent *a = xcalloc(1, sizeof(*a));
    struct checkpoint c = {0};
    a->cfg = cfg;
    a->lock_fd = -1;
    a->metrics = metrics_new();
    procmetrics_register(a->metrics, "agent");
    agent_metrics_init(&a->am, a->metrics);
    a->health = agent_health_new(cfg, a->metrics, &a->am, err, errlen);
    if (!a->health)
        goto fail;
    metric_set(a->am.open_files_max, (double)cfg->file.agent.max_open_files);
    if (load_checkpoint(a, &c, err, errlen) < 0)
        goto fail;
    a->ship = ship_new(cfg, &a->am, err, errlen);
    if (!a->ship)
        goto fail;
    struct tail_sink sink = {ship_send, ship_fit, a->ship};
    a->files = tail_set_new(cfg, &a->am, &sink);
    tail_set_load(a->files, &c);
    checkpoint_release(&c);
    a->watch = tail_watch_new();
    if (start_http(a, err, errlen) < 0)
        goto fail;
    return a;
fail:
    checkpoint_release(&c);
    agent_free(a);
    return NULL;
}

void agent_free(struct agent *a)
{
    if (!a)
        return;
    httpd_stop(a->httpd);  /* first: its threads read the metrics and the health */
    ship_abandon(a->ship); /* no delivery report may outlive the files */
    tail_set_free(a->files);
    ship_free(a->ship);
    tail_watch_free(a->watch);
    tail_watch_events_release(&a->ev);
    agent_health_free(a->health); /* flushes pending alerts within alerts.timeout_ms */
    metrics_free(a->metrics);
    if (a->lock_fd >= 0)
        close(a->lock_fd); /* last: the checkpoint is final */
    free(a);
}

/* Has inotify reported a new, renamed or deleted file (or lost events)
 * since the last discovery? Writes alone do not count: they are what a
 * backlog is made of. */
static bool discovery_news(struct agent *a)
{
    if (tail_watch_pending(a->watch))
        tail_watch_drain(a->watch, &a->ev);
    return a->ev.files_changed || a->ev.n_moves > 0 || a->ev.overflow;
}

/* One reading round over the open files, starting one file further each
 * round so that under backpressure no file starves the others, and cut
 * short after READ_SLICE_MS or when inotify has news (the next round starts
 * after the last file read). Returns true if any file may have more to read
 * right away. */
static bool read_round(struct agent *a, uint64_t now)
{
    size_t n = tail_set_count(a->files);
    if (n == 0)
        return false;
    size_t first = a->rr++ % n;
    bool more = false;
    for (size_t k = 0; k < n; k++) {
        struct tail_file *tf = tail_set_file(a->files, (first + k) % n);
        if (!tail_file_readable(tf, now))
            continue;
        if (ship_paused(a->ship))
            return false;
        if (tail_file_read(tf, READ_BUDGET, now))
            more = true;
        ship_poll(a->ship, 0); /* serve reports between files: keeps memory low */
        if (k + 1 < n && (time_mono_ms() - now >= READ_SLICE_MS || discovery_news(a))) {
            a->rr = first + k + 1;
            return !ship_paused(a->ship);
        }
    }
    return more && !ship_paused(a->ship);
}

/* Follow what inotify reports (renames first: a file renamed away from a
 * globbed name unseen is picked up at its new name; after an overflow, the
 * sweep looks for such files), then rescan when something changed or the
 * interval is up. */
static void discover(struct agent *a, uint64_t now)
{
    struct tail_watch_events ev = a->ev;
    memset(&a->ev, 0, sizeof(a->ev));
    tail_watch_drain(a->watch, &ev);
    if (ev.overflow) {
        metric_inc(a->am.inotify_overflows);
        log_warn("inotify queue overflow: rescanning, and sweeping for files rotated away unseen");
        (void)tail_set_sweep(a->files, tail_set_last_scan_ns(a->files));
    }
    if (ev.n_moves > 0)
        (void)tail_set_follow_moves(a->files, ev.moves, ev.n_moves);
    if (ev.files_changed || ev.overflow || now >= a->next_rescan_ms) {
        rescan(a, false);
        a->next_rescan_ms = now + (uint64_t)a->cfg->file.agent.rescan_interval_ms;
    }
    tail_watch_events_release(&ev);
}

/* One turn of the loop: wait for inotify, delivery reports or the tick, then
 * serve everything that is due. Returns 0 to go on, else the exit status. */
static int turn(struct agent *a, bool *more)
{
    const struct agent_section *s = &a->cfg->file.agent;
    struct pollfd pfd[2] = {
        {.fd = tail_watch_fd(a->watch), .events = POLLIN},
        {.fd = ship_wake_fd(a->ship), .events = POLLIN},
    };
    if (poll(pfd, 2, *more ? 0 : LOOP_TICK_MS) < 0 && errno != EINTR) {
        log_error("poll: %s", strerror(errno));
        return 1;
    }
    uint64_t now = time_mono_ms();
    if (pfd[1].revents & POLLIN)
        ship_clear_wake(a->ship);
    ship_poll(a->ship, 0);

    char fmsg[256];
    if (ship_is_fatal(a->ship, fmsg, sizeof(fmsg))) {
        update_health(a, now);
        log_error("stopping after a fatal Kafka producer error (%s); the checkpoint keeps "
                  "only acknowledged records, a restart re-sends the rest",
                  fmsg);
        return 3;
    }
    discover(a, now);
    ship_update_pause(a->ship);
    *more = read_round(a, now);
    if (tail_set_check(a->files, now)) {
        a->ckpt_dirty = true;
        a->next_rescan_ms = now; /* a slot is free for a waiting file */
    }
    if (now >= a->next_ckpt_ms) {
        if (a->ckpt_dirty || ship_progress(a->ship) != a->ckpt_acks)
            (void)save_checkpoint(a);
        a->next_ckpt_ms = now + (uint64_t)s->checkpoint_interval_ms;
    }
    update_health(a, now);
    return 0;
}

/* Stopping (SIGTERM): in Kubernetes the pod's emptyDir with whatever was
 * not read goes with it, so keep reading every file to its end and
 * shipping it, for at most drain_timeout_s, before the last
 * acknowledgements are awaited. Returns 0, or the exit status of a fatal
 * error meanwhile. */
static int drain(struct agent *a)
{
    const struct agent_section *s = &a->cfg->file.agent;
    if (s->drain_timeout_s <= 0)
        return 0;
    uint64_t start = time_mono_ms(), deadline = start + (uint64_t)s->drain_timeout_s * 1000;
    log_info("stopping: reading every file to its end and shipping it (at most %llds)",
             (long long)s->drain_timeout_s);
    tail_set_drain_mode(a->files);
    bool more = true;
    int status = 0;
    while (status == 0 && !tail_set_drained(a->files) && time_mono_ms() < deadline)
        status = turn(a, &more);
    if (status == 0 && tail_set_drained(a->files))
        log_info("stopping: every file shipped and acknowledged in %llu ms",
                 (unsigned long long)(time_mono_ms() - start));
    else if (status == 0)
        log_warn("stopping: drain_timeout_s (%llds) is up before every file was shipped",
                 (long long)s->drain_timeout_s);
    return status;
}

/* Everything past the acknowledged prefixes at exit: logged per file and,
 * after a stop (the pod and its log volume may be going away), counted as
 * lost. */
static void report_unshipped(struct agent *a, bool count)
{
    uint64_t n = tail_set_report_unshipped(a->files);
    if (n == 0)
        return;
    if (count)
        metric_add(a->am.records_lost, (double)n);
    log_error("exiting with %llu record%s not shipped: a restart on the same files sends them, "
              "but they are lost if the log volume goes away (Kubernetes deletes an emptyDir "
              "with its pod)",
              (unsigned long long)n, n == 1 ? "" : "s");
}

int agent_run(struct agent *a, volatile sig_atomic_t *stop)
{
    const struct agent_section *s = &a->cfg->file.agent;
    uint64_t now = time_mono_ms();
    /* Files born and rotated away while the agent was not running. */
    if (!a->first_start && tail_set_loaded_scan_ns(a->files) > 0)
        (void)tail_set_sweep(a->files, tail_set_loaded_scan_ns(a->files));
    rescan(a, true);
    a->next_rescan_ms = now + (uint64_t)s->rescan_interval_ms;
    a->next_ckpt_ms = now + (uint64_t)s->checkpoint_interval_ms;
    a->ckpt_dirty = true;
    int status = 0;
    bool more = true;
    while (!*stop && status == 0)
        status = turn(a, &more);
    if (status == 0)
        status = drain(a);
    if (status == 0)
        ship_drain(a->ship, s->shutdown_timeout_ms);
    else
        ship_stop(a->ship);
    report_unshipped(a, status == 0);
    if (save_checkpoint(a) < 0 && status == 0)
        status = 1;
    log_info("stopped (exit %d)", status);
    return status;
}
