/* Replay: rewrite auditrail.kafka_offsets for a group and topic. */
#include "aggregator/replay.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQL_REPLAY_DELETE_ALL                                                                      \
    "DELETE FROM auditrail.kafka_offsets WHERE consumer_group = $1 AND topic = $2"
#define SQL_REPLAY_DELETE_ONE                                                                      \
    "DELETE FROM auditrail.kafka_offsets"                                                          \
    " WHERE consumer_group = $1 AND topic = $2 AND partition = $3"
#define SQL_REPLAY_SET_ONE                                                                         \
    "INSERT INTO auditrail.kafka_offsets (consumer_group, topic, partition, next_offset)"          \
    " VALUES ($1, $2, $3, $4)"                                                                     \
    " ON CONFLICT (consumer_group, topic, partition)"                                              \
    " DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()"

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
    PGconn *c = PQconnectdb(conninfo);
    int rc = -1;
    PGresult *res = NULL;
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "replay: connect: %s", PQerrorMessage(c));
        goto out;
    }
    char pbuf[16], obuf[24];
    snprintf(pbuf, sizeof(pbuf), "%d", (int)partition);
    snprintf(obuf, sizeof(obuf), "%lld", (long long)offset);
    const char *params[4] = {group, topic, pbuf, obuf};
    const char *sql = offset >= 0      ? SQL_REPLAY_SET_ONE
                      : partition >= 0 ? SQL_REPLAY_DELETE_ONE
                                       : SQL_REPLAY_DELETE_ALL;
    int nparams = offset >= 0 ? 4 : partition >= 0 ? 3 : 2;
    res = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        snprintf(err, errlen, "replay: %s", PQresultErrorMessage(res));
        goto out;
    }
    *changed = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
    rc = 0;
out:
    PQclear(res);
    PQfinish(c);
    return rc;
}
