/* The log of the log (DESIGN.md §7): one JSON line per API request appended
 * to query.audit_log, a plain file an agent ships like any application's
 * audit log. Lines are written whole (one write(2) under a mutex, O_APPEND);
 * the file is reopened when it was renamed or deleted (rotation by rename),
 * checked at most once a second. Thread-safe. */
#ifndef AUDITRAIL_AGGREGATOR_QUERY_AUDIT_H
#define AUDITRAIL_AGGREGATOR_QUERY_AUDIT_H

#include <stddef.h>
#include <stdint.h>

struct query_audit;

/* Open (create, 0640) path for appending. NULL with err set on failure. */
struct query_audit *query_audit_open(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void query_audit_close(struct query_audit *a); /* NULL-safe */
/* Append line[0, len) and a newline: 0, or -1 (the caller counts it; the
 * first failure in a row is logged here). */
int query_audit_write(struct query_audit *a, const char *line, size_t len);

#endif
