/* The query API's parameters: parsed and checked from the query string
 * (every value bounded, valid UTF-8, known names only, times RFC 3339 with
 * from < to), normalized into one canonical string (the cache key and what
 * a cursor is bound to), and the opaque cursors: a keyset position
 * authenticated with HMAC-SHA256 under the server's key, bound to the
 * endpoint, the caller's tenant scope and the normalized filters. Pure: no
 * I/O, no threads. */
#ifndef AUDITRAIL_AGGREGATOR_QUERY_PARAMS_H
#define AUDITRAIL_AGGREGATOR_QUERY_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define QP_VALUE_MAX  1024 /* bytes of one parameter value */
#define QP_LIMIT_MAX  1000
#define QP_LIMIT_DEF  100
#define QP_CURSOR_MAX 64 /* bytes of a keyset position */
#define QP_KEY_LEN    32

/* Which filters an endpoint takes. */
enum qp_kind { QP_EVENTS, QP_STREAMS, QP_STREAM, QP_INCIDENTS };

struct qparams {
    /* filters: heap copies, NULL when not given */
    char *tenant, *actor, *action, *resource, *outcome, *source, *stream, *kind;
    bool has_from, has_to;
    int64_t from_us, to_us; /* [from, to) */
    unsigned limit;
    bool counts;
    uint64_t min_lsn; /* 0 = none */
    char *cursor;     /* as given; opened with qcursor_open */
};

/* A refusal: HTTP status (400), a stable code and a message (never echoing
 * a value). */
struct qp_error {
    int status;
    char code[32];
    char msg[200];
};

void qparams_release(struct qparams *p);

/* Take one name=value (value NULL for "?name"). 0, or -1 with *e filled. */
int qparams_take(struct qparams *p, enum qp_kind kind, const char *name, const char *value,
                 struct qp_error *e);
/* After the last take: required ones present, from < to, defaults. 0 or -1. */
int qparams_finish(struct qparams *p, enum qp_kind kind, bool require_range, struct qp_error *e);
/* Time range within max_days. 0 or -1. */
int qparams_check_span(const struct qparams *p, int64_t max_days, struct qp_error *e);

/* The canonical form of the filters (not limit, cursor or min_lsn) for an
 * endpoint name and a tenant scope ("" = every tenant), appended to out:
 * every value length-prefixed, so no two different queries share it. */
void qparams_normalize(const struct qparams *p, const char *endpoint, const char *scope,
                       struct buf *out);

/* A cursor for position pos[0, len) (len <= QP_CURSOR_MAX) bound to
 * binding (a normalized string): unpadded base64url, appended to out. */
void qcursor_make(const uint8_t key[QP_KEY_LEN], const char *binding, const void *pos, size_t len,
                  struct buf *out);
/* Open text: 0 with the position in pos (*len), or -1 when malformed,
 * forged, or bound to other filters or another scope. */
int qcursor_open(const uint8_t key[QP_KEY_LEN], const char *binding, const char *text,
                 uint8_t pos[QP_CURSOR_MAX], size_t *len);

/* Is s 32 lower-case hex characters (a stream id)? */
bool qp_stream_id_ok(const char *s);

#endif
