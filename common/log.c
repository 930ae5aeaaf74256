/* JSON-lines logger on stderr. Each line is built whole and written with one
 * write(2) so lines from several threads never interleave. */
#include "common/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static char log_component[32] = "auditrail";
static enum log_level log_min = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *component, enum log_level min_level)
{
    snprintf(log_component, sizeof(log_component), "%s", component);
    log_min = min_level;
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* A message longer than the line allows is cut where a UTF-8 sequence
 * starts, never inside one (a torn sequence would make the whole message
 * invalid), and ends with "…" so a reader knows. msg holds n bytes. */
static void log_cut(char *msg, size_t n)
{
    static const char mark[] = "\xe2\x80\xa6"; /* U+2026 */
    size_t end = n - (sizeof(mark) - 1);
    /* A continuation byte at end means end tears a sequence: back up to
     * its lead byte (a sequence has at most three continuation bytes). */
    for (int i = 0; i < 3 && end > 0 && ((unsigned char)msg[end] & 0xC0) == 0x80; i++)
        end--;
    memcpy(msg + end, mark, sizeof(mark));
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char msg[LOG_MSG_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int full = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (full >= (int)sizeof(msg))
        log_cut(msg, sizeof(msg) - 1);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tsbuf[64];
    size_t tn = strftime(tsbuf, sizeof(tsbuf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(tsbuf + tn, sizeof(tsbuf) - tn, ".%03dZ", (int)(ts.tv_nsec / 1000000));

    json_t *o = json_object();
    json_object_set_new(o, "ts", json_string(tsbuf));
    json_object_set_new(o, "level", json_string(level_names[level]));
    json_object_set_new(o, "component", json_string(log_component));
    /* A message may carry bytes from a file; never let them break the line. */
    json_t *m = json_string(msg);
    if (!m)
        m = json_string("(log message was not valid UTF-8)");
    json_object_set_new(o, "msg", m);
    char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!line)
        return;
    size_t n = strlen(line);
    line[n] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n + 1);
    (void)w;
    free(line);
}
