/* Replay: rewrite auditrail.kafka_offsets for a group and topic. */
#include "aggregator/replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/pg_conn.h"
#include "aggregator/pg_sql.h"

static const struct pg_conn_opts replay_conn_opts = {.application_name = "auditrail-replay"};

int replay_set_offsets(const char *conninfo, const char *group, const char *topic,
                       int32_t partition, int64_t offset, size_t *changed, char *err, size_t errlen)
{
    *changed = 0;
    if (offset < -1) {
        snprintf(err, errlen, "replay: offset must be >= 0 (or -1 for the beginning)");
        return -1;
    }
    if (offset >= 0 && partition < 0) {
        snprintf(err, errlen, "replay: a specific offset needs a specific partition");
        return -1;
    }
    struct pg_connection *c = pg_conn_new(conninfo, &replay_conn_opts);
    int rc = -1;
    PGresult *res = NULL;
    char e2[512];
    if (pg_conn_open(c, NULL, e2, sizeof(e2)) != PG_OK)
        goto fail;
    char pbuf[16], obuf[24];
    snprintf(pbuf, sizeof(pbuf), "%d", (int)partition);
    snprintf(obuf, sizeof(obuf), "%lld", (long long)offset);
    const char *params[4] = {group, topic, pbuf, obuf};
    const char *sql = offset >= 0      ? SQL_REPLAY_SET_ONE
                      : partition >= 0 ? SQL_REPLAY_DELETE_ONE
                                       : SQL_REPLAY_DELETE_ALL;
    int nparams = offset >= 0 ? 4 : partition >= 0 ? 3 : 2;
    if (pg_conn_exec(c, sql, nparams, params, &res, e2, sizeof(e2)) != PG_OK)
        goto fail;
    *changed = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
    rc = 0;
    goto out;
fail:
    snprintf(err, errlen, "replay: %s", e2);
out:
    PQclear(res);
    pg_conn_free(c);
    return rc;
}
