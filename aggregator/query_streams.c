/* GET /v1/streams, /v1/streams/{id} and /v1/incidents (auditors and
 * admins): stream heads and integrity incidents. A tenant-scoped token sees
 * the streams (and their incidents) that hold at least one event of its
 * tenant; the restriction is a parameter of each statement. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/query_int.h"
#include "aggregator/query_render.h"
#include "aggregator/query_sql.h"
#include "common/jsonw.h"
#include "common/timeutil.h"

#define STREAM_INCIDENTS_MAX "100"

/* The range as timestamptz parameters in PostgreSQL's own form (any year,
 * see query_events_params). */
static void range_params(const struct qreq *q, char from[PG_TIME_TEXT_LEN],
                         char to[PG_TIME_TEXT_LEN], const char **pf, const char **pt)
{
    *pf = *pt = NULL;
    if (q->p.has_from) {
        pg_time_text(q->p.from_us, from);
        *pf = from;
    }
    if (q->p.has_to) {
        pg_time_text(q->p.to_us, to);
        *pt = to;
    }
}

static void next_cursor(struct qreq *q, struct buf *body, const void *pos, size_t len)
{
    BUF_LIT(body, "],\"next_cursor\":");
    if (pos) {
        struct buf c = BUF_INIT;
        qcursor_make(q->api->cursor_key, q->binding.p, pos, len, &c);
        jsonw_cstr(body, c.p);
        buf_release(&c);
    } else {
        BUF_LIT(body, "null");
    }
    buf_addc(body, '}');
}

enum pg_status query_streams_exec(struct qreq *q, struct router_lease *l, struct buf *body,
                                  char *err, size_t errlen)
{
    char from[PG_TIME_TEXT_LEN], to[PG_TIME_TEXT_LEN], after[QP_CURSOR_MAX + 1] = "", lim[24];
    const char *params[6];
    params[0] = q->scope;
    range_params(q, from, to, &params[1], &params[2]);
    params[3] = NULL;
    if (q->has_cur) {
        memcpy(after, q->cur, q->cur_len);
        after[q->cur_len] = '\0';
        params[3] = after;
    }
    snprintf(lim, sizeof(lim), "%u", q->p.limit + 1);
    params[4] = lim;
    params[5] = q->p.counts ? "true" : "false";
    PGresult *res = NULL;
    int n;
    bool more;
    enum pg_status st =
        query_page(l, STMT_Q_STREAMS, 6, params, q->p.limit, &res, &n, &more, err, errlen);
    if (st != PG_OK)
        return st;
    BUF_LIT(body, "{\"streams\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            buf_addc(body, ',');
        render_stream_json(res, i, body);
    }
    const char *last = n > 0 ? PQgetvalue(res, n - 1, 0) : NULL;
    next_cursor(q, body, more ? last : NULL, more ? strlen(last) : 0);
    /* counts off: the column is NULL; render_stream_json shows "rows": null */
    q->rows = (unsigned)n;
    PQclear(res);
    return PG_OK;
}

enum pg_status query_stream_exec(struct qreq *q, struct router_lease *l, struct buf *body,
                                 char *err, size_t errlen)
{
    char from[PG_TIME_TEXT_LEN], to[PG_TIME_TEXT_LEN];
    const char *params[4];
    params[0] = q->scope;
    range_params(q, from, to, &params[1], &params[2]);
    params[3] = q->stream_id;
    PGresult *res = NULL, *inc = NULL;
    enum pg_status st = pg_conn_exec_prepared(l->conn, STMT_Q_STREAM, 4, params, &res, err, errlen);
    if (st != PG_OK)
        return st;
    if (PQntuples(res) == 0) {
        q->status = 404; /* none, or none this token may see: the same answer */
        PQclear(res);
        return PG_OK;
    }
    /* Its incidents: visible since the stream is. */
    const char *ip[7] = {NULL, NULL, NULL, NULL, q->stream_id, NULL, STREAM_INCIDENTS_MAX};
    st = pg_conn_exec_prepared(l->conn, STMT_Q_INCIDENTS, 7, ip, &inc, err, errlen);
    if (st != PG_OK) {
        PQclear(res);
        return st;
    }
    render_stream_json(res, 0, body);
    body->len--; /* reopen the object for its incidents */
    BUF_LIT(body, ",\"incidents\":[");
    for (int i = 0; i < PQntuples(inc); i++) {
        if (i)
            buf_addc(body, ',');
        render_incident_json(inc, i, body);
    }
    BUF_LIT(body, "]}");
    q->rows = 1;
    PQclear(inc);
    PQclear(res);
    return PG_OK;
}

enum pg_status query_incidents_exec(struct qreq *q, struct router_lease *l, struct buf *body,
                                    char *err, size_t errlen)
{
    char from[PG_TIME_TEXT_LEN], to[PG_TIME_TEXT_LEN], after[24], lim[24];
    const char *params[7];
    params[0] = q->scope;
    range_params(q, from, to, &params[1], &params[2]);
    params[3] = q->p.kind;
    params[4] = q->p.stream;
    params[5] = NULL;
    if (q->has_cur && q->cur_len == 8) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = v << 8 | q->cur[i];
        snprintf(after, sizeof(after), "%" PRId64, (int64_t)v);
        params[5] = after;
    }
    snprintf(lim, sizeof(lim), "%u", q->p.limit + 1);
    params[6] = lim;
    PGresult *res = NULL;
    int n;
    bool more;
    enum pg_status st =
        query_page(l, STMT_Q_INCIDENTS, 7, params, q->p.limit, &res, &n, &more, err, errlen);
    if (st != PG_OK)
        return st;
    BUF_LIT(body, "{\"incidents\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            buf_addc(body, ',');
        render_incident_json(res, i, body);
    }
    uint8_t pos[8];
    if (more) {
        uint64_t id = strtoull(PQgetvalue(res, n - 1, 0), NULL, 10);
        for (int i = 0; i < 8; i++)
            pos[i] = (uint8_t)(id >> (56 - 8 * i));
    }
    next_cursor(q, body, more ? pos : NULL, 8);
    q->rows = (unsigned)n;
    PQclear(res);
    return PG_OK;
}
