/* auditrail export: GET /v1/events/export streamed as NDJSON to standard
 * output or to -o FILE, in constant memory (libcurl's write callback goes
 * straight to the file descriptor). A file is written as FILE.part and
 * renamed only once the server has ended the export properly, so FILE is
 * whole or absent; progress on stderr when it is a terminal. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_params.h"
#include "cli/cli_text.h"
#include "common/io.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define PROGRESS_EVERY_MS 250

struct export_sink {
    int fd;
    const char *name; /* for messages */
    unsigned long long bytes, events;
    bool progress;
    uint64_t shown_ms;
};

static int sink_write(void *ud, const char *p, size_t n)
{
    struct export_sink *s = ud;
    if (io_write_all(s->fd, p, n) != 0) {
        if (errno != EPIPE)
            fprintf(stderr, "auditrail: %s: %s\n", s->name, strerror(errno));
        return -1;
    }
    s->bytes += n;
    for (const char *q = p; (q = memchr(q, '\n', n - (size_t)(q - p))) != NULL; q++)
        s->events++;
    return 0;
}

static void show_progress(struct export_sink *s, bool last)
{
    fprintf(stderr, "\rexport: %llu events, %.1f MiB%s", s->events,
            (double)s->bytes / (1024.0 * 1024.0), last ? "" : " ");
}

static void sink_tick(void *ud)
{
    struct export_sink *s = ud;
    uint64_t now = time_mono_ms();
    if (!s->progress || now - s->shown_ms < PROGRESS_EVERY_MS)
        return;
    s->shown_ms = now;
    show_progress(s, false);
}

int cli_export(struct cli_ctx *c)
{
    const struct cli_opts *o = c->o;
    char err[256];
    struct buf qs = BUF_INIT;
    struct cli_reply r = {.status = -1};
    bool to_file = o->output && strcmp(o->output, "-") != 0;
    char *part = to_file ? xasprintf("%s.part", o->output) : NULL;
    struct export_sink s = {.fd = to_file ? -1 : STDOUT_FILENO, .name = "standard output"};
    bool created = false;
    int ex;
    if (cli_params_build(o, c->now_us, true, &qs, err, sizeof(err)) != 0) {
        fprintf(stderr, "auditrail: %s\n", err);
        ex = CLI_USAGE;
        goto out;
    }
    if (to_file) {
        /* 0600: an export is audit data; O_NOFOLLOW: a planted link is
         * not followed. */
        s.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        s.name = part;
        if (s.fd < 0) {
            fprintf(stderr, "auditrail: %s: %s\n", part, strerror(errno));
            ex = CLI_NOT_FOUND;
            goto out;
        }
        created = true;
    }
    s.progress = isatty(STDERR_FILENO);
    struct cli_request rq = {.path = "/v1/events/export",
                             .query = buf_cstr(&qs),
                             .sink = sink_write,
                             .tick = sink_tick,
                             .ud = &s,
                             .stream = true};
    cli_http_get(&c->conn, &rq, &r);
    if (s.progress && s.bytes) {
        show_progress(&s, true);
        fputc('\n', stderr);
    }
    ex = cli_reply_status(&c->conn, &r);
    if (ex == CLI_OK && to_file) {
        /* on disk before it has its name */
        int e = fsync(s.fd) == 0 ? 0 : errno;
        if (close(s.fd) != 0 && !e)
            e = errno;
        s.fd = -1;
        if (e) {
            fprintf(stderr, "auditrail: %s: %s\n", part, strerror(e));
            ex = CLI_NOT_FOUND;
        } else if (rename(part, o->output) != 0) {
            fprintf(stderr, "auditrail: %s: %s\n", o->output, strerror(errno));
            ex = CLI_NOT_FOUND;
        }
    }
out:
    if (to_file && s.fd >= 0)
        close(s.fd);
    if (created && ex != CLI_OK)
        unlink(part); /* never a part left to be taken for the whole */
    cli_reply_release(&r);
    buf_release(&qs);
    free(part);
    return ex;
}
