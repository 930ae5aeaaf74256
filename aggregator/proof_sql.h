/* The SQL of verify (verify.c) and of the signed chain heads (proof_*.c),
 * as named constants (STYLE.md habit 8). Statements with variable filters
 * are assembled from the fragments below, never from input: values travel
 * as parameters. */
#ifndef AUDITRAIL_AGGREGATOR_PROOF_SQL_H
#define AUDITRAIL_AGGREGATOR_PROOF_SQL_H

/* ---- verify ---- */
/* One snapshot per chunk of streams: the cursor, the streams' rows and the
 * lookups around a time range agree with each other. */
#define SQL_V_BEGIN "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
#define SQL_V_CURSOR                                                                               \
    "DECLARE verify_rows BINARY NO SCROLL CURSOR FOR"                                              \
    " SELECT stream_id, seq, hash, prev_hash, raw, id, event_time FROM auditrail.events"
#define SQL_V_CURSOR_ORDER " ORDER BY stream_id, seq, hash"
#define SQL_V_FETCH_FMT    "FETCH %u FROM verify_rows"
#define SQL_V_CLOSE        "CLOSE verify_rows"
#define SQL_V_STREAMS                                                                              \
    "SELECT stream_id, last_seq, encode(last_hash, 'hex'),"                                        \
    " (extract(epoch FROM first_seen) * 1000000)::bigint FROM auditrail.streams"
/* Filters (AND-ed; %d is the parameter's number). */
#define SQL_V_WHERE_LO_FMT   "stream_id >= $%d"
#define SQL_V_WHERE_HI_FMT   "stream_id < $%d"
#define SQL_V_WHERE_IDS_FMT  "stream_id = ANY($%d::text[])"
#define SQL_V_WHERE_FROM_FMT "event_time >= $%d::timestamptz"
#define SQL_V_WHERE_TO_FMT   "event_time < $%d::timestamptz"
/* The streams to verify: all, or those holding a tenant's records. */
#define SQL_V_STREAM_IDS "SELECT stream_id FROM auditrail.streams ORDER BY stream_id"
#define SQL_V_TENANT_IDS                                                                           \
    "SELECT DISTINCT stream_id FROM auditrail.events WHERE tenant = $1"                            \
    " AND event_time >= $2::timestamptz AND event_time < $3::timestamptz ORDER BY stream_id"
/* Around a time range: the stored hash and prev of given (stream, seq). */
#define SQL_V_LOOKUP                                                                               \
    "SELECT l.stream_id, l.seq, encode(e.hash, 'hex'), encode(e.prev_hash, 'hex')"                 \
    " FROM unnest($1::text[], $2::bigint[]) AS l(stream_id, seq)"                                  \
    " JOIN auditrail.events e ON e.stream_id = l.stream_id AND e.seq = l.seq"

#endif
