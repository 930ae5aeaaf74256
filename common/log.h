/* Structured logging: one JSON object per line on stderr, safe from any thread.
 * {"ts":"…","level":"info","component":"agent","msg":"…"} */
#ifndef AUDITRAIL_LOG_H
#define AUDITRAIL_LOG_H

/* Longest message text, in bytes; a longer one is cut on a UTF-8 boundary
 * and ends with "…". */
#define LOG_MSG_MAX 2047

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Set the component name (e.g. "agent") and the minimum level. The string is
 * copied. Not thread-safe: call once at start. */
void log_init(const char *component, enum log_level min_level);
/* Parse "debug|info|warn|error"; returns -1 for anything else. */
int log_level_parse(const char *s, enum log_level *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
