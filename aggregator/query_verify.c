/* GET /v1/streams/{id}/verify (auditors and admins): verify.c's checks of
 * one stream on a pooled read connection — its findings with their evidence
 * and the summary, as `auditrail-aggregator verify --stream ID --json`
 * prints them. A tenant-scoped token may verify the streams it may see. */
#include <jansson.h>
#include <stdlib.h>

#include "aggregator/partitions.h"
#include "aggregator/query_int.h"
#include "aggregator/query_sql.h"
#include "aggregator/verify.h"
#include "common/timeutil.h"

/* Findings shown; the rest are counted in the summary. */
#define VERIFY_API_FINDINGS 100

static void add_finding(void *ud, const struct verify_finding *f)
{
    json_array_append_new(ud, verify_finding_json(f));
}

enum pg_status query_verify_exec(struct qreq *q, struct router_lease *l, struct buf *body,
                                 char *err, size_t errlen)
{
    /* Visible to this token (404 otherwise, as /v1/streams/{id}). */
    const char *params[4] = {q->scope, NULL, NULL, q->stream_id};
    PGresult *res = NULL;
    enum pg_status st = pg_conn_exec_prepared(l->conn, STMT_Q_STREAM, 4, params, &res, err, errlen);
    if (st != PG_OK)
        return st;
    bool seen = PQntuples(res) > 0;
    PQclear(res);
    if (!seen) {
        q->status = 404;
        return PG_OK;
    }
    int64_t retention = q->api->cfg->partitions.retention_days;
    struct verify_opts o = {.stream = q->stream_id,
                            .from_us = VERIFY_UNBOUNDED_FROM,
                            .to_us = VERIFY_UNBOUNDED_TO,
                            .horizon_us = part_day_floor(time_now_us()) - retention * PART_DAY_US,
                            .max_findings = VERIFY_API_FINDINGS};
    if (q->p.has_from) /* a range of event_time, its edges linked as the CLI's */
        o.from_us = q->p.from_us;
    if (q->p.has_to)
        o.to_us = q->p.to_us;
    json_t *findings = json_array();
    struct verify_report rep;
    enum verify_status vs = verify_run_on(l->conn, &o, add_finding, findings, &rep, err, errlen);
    if (vs == VERIFY_UNAVAILABLE) {
        json_decref(findings);
        return PG_TRANSIENT;
    }
    json_t *j = json_pack("{s:s, s:o, s:o}", "stream", q->stream_id, "findings", findings,
                          "summary", verify_summary_json(&rep, vs, NULL));
    char *s = json_dumps(j, JSON_COMPACT);
    buf_adds(body, s);
    free(s);
    json_decref(j);
    q->rows = (unsigned)rep.records;
    return PG_OK;
}
