/* GET /v1/events (and its FHIR form): one page of events in (event_time,
 * id) order, a keyset cursor to the next page. One row more than the limit
 * is fetched, so next_cursor is null exactly when nothing follows. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/query_int.h"
#include "aggregator/query_render.h"
#include "aggregator/query_sql.h"
#include "common/hashchain.h"
#include "common/jsonw.h"
#include "common/timeutil.h"

/* A cursor position: event_time µs (8 bytes, big-endian) and the id's 16
 * bytes. */
#define POS_LEN 24

static void pos_encode(int64_t t, const char *uuid, uint8_t out[POS_LEN])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)t >> (56 - 8 * i));
    char hex[33];
    size_t k = 0;
    for (const char *c = uuid; *c && k < 32; c++)
        if (*c != '-')
            hex[k++] = *c;
    hex[k] = '\0';
    if (k != 32 || hex_decode(hex, 16, out + 8) != 0)
        memset(out + 8, 0, 16);
}

static void pos_decode(const uint8_t in[POS_LEN], int64_t *t, char uuid[37])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | in[i];
    *t = (int64_t)v;
    char hex[33];
    hex_encode(in + 8, 16, hex);
    snprintf(uuid, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

void query_events_params(const struct qreq *q, long limit, char vals[5][PG_TIME_TEXT_LEN],
                         const char *params[12])
{
    const struct qparams *p = &q->p;
    /* PostgreSQL's own form: RFC 3339 text stops at years 0000-9999, and a
     * year-0000 bound (which the API's RFC 3339 parser accepts) is no
     * timestamp PostgreSQL knows (22008, a 500 for a valid request). */
    pg_time_text(p->from_us, vals[0]);
    pg_time_text(p->to_us, vals[1]);
    params[0] = vals[0];
    params[1] = vals[1];
    params[2] = q->scope; /* the tenant restriction: a parameter */
    params[3] = p->actor;
    params[4] = p->action;
    params[5] = p->resource;
    params[6] = p->outcome;
    params[7] = p->source;
    params[8] = p->stream;
    params[9] = params[10] = NULL;
    if (q->has_cur && q->cur_len == POS_LEN) {
        int64_t ct;
        pos_decode(q->cur, &ct, vals[3]);
        pg_time_text(ct, vals[2]);
        params[9] = vals[2];
        params[10] = vals[3];
    }
    params[11] = NULL;
    if (limit >= 0) {
        snprintf(vals[4], 40, "%ld", limit);
        params[11] = vals[4];
    }
}

enum pg_status query_events_exec(struct qreq *q, struct router_lease *l, struct buf *body,
                                 char *err, size_t errlen)
{
    char vals[5][PG_TIME_TEXT_LEN];
    const char *params[SQL_Q_EVENTS_NPARAMS];
    query_events_params(q, (long)q->p.limit + 1, vals, params);
    PGresult *res = NULL;
    int n;
    bool more;
    enum pg_status st = query_page(l, STMT_Q_EVENTS, SQL_Q_EVENTS_NPARAMS, params, q->p.limit, &res,
                                   &n, &more, err, errlen);
    if (st != PG_OK)
        return st;
    struct buf cursor = BUF_INIT;
    if (more) {
        uint8_t pos[POS_LEN];
        pos_encode(render_event_time(res, n - 1), render_event_id(res, n - 1), pos);
        qcursor_make(q->api->cursor_key, q->binding.p, pos, sizeof(pos), &cursor);
    }
    if (q->fhir) {
        BUF_LIT(body, "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"link\":[");
        BUF_LIT(body, "{\"relation\":\"self\",\"url\":");
        struct buf u = BUF_INIT;
        query_fhir_link(q, q->p.cursor, &u);
        jsonw_cstr(body, u.p ? u.p : "");
        buf_addc(body, '}');
        if (more) {
            buf_reset(&u);
            query_fhir_link(q, cursor.p, &u);
            BUF_LIT(body, ",{\"relation\":\"next\",\"url\":");
            jsonw_cstr(body, u.p);
            buf_addc(body, '}');
        }
        buf_release(&u);
        BUF_LIT(body, "],\"entry\":[");
        for (int i = 0; i < n; i++) {
            if (i)
                buf_addc(body, ',');
            BUF_LIT(body, "{\"fullUrl\":\"urn:uuid:");
            buf_adds(body, render_event_id(res, i));
            BUF_LIT(body, "\",\"resource\":");
            render_event_fhir(res, i, body);
            BUF_LIT(body, ",\"search\":{\"mode\":\"match\"}}");
        }
        BUF_LIT(body, "]}");
    } else {
        BUF_LIT(body, "{\"events\":[");
        for (int i = 0; i < n; i++) {
            if (i)
                buf_addc(body, ',');
            render_event_json(res, i, body);
        }
        BUF_LIT(body, "],\"next_cursor\":");
        if (more)
            jsonw_cstr(body, cursor.p);
        else
            BUF_LIT(body, "null");
        buf_addc(body, '}');
    }
    q->rows = (unsigned)n;
    buf_release(&cursor);
    PQclear(res);
    return PG_OK;
}
