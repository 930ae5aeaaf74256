/* Every SQL statement of the read path (router health checks, the query
 * API, tokens), as named constants (STYLE.md habit 8). Every value a
 * request brings, the caller's tenant scope included, is a parameter:
 * nothing here is ever completed with text. The optional filters are
 * `$n IS NULL OR column = $n`, folded away by the custom plans the pool's
 * sessions ask for (plan_cache_mode = force_custom_plan). */
#ifndef AUDITRAIL_AGGREGATOR_QUERY_SQL_H
#define AUDITRAIL_AGGREGATOR_QUERY_SQL_H

/* ---- router health check (router.c), on any host: in recovery?, the
 * host's position (replay LSN on a standby, current LSN on the primary),
 * receive LSN, replay paused?, WAL receiver streaming? (a role without
 * pg_read_all_stats sees the receiver's row without its status: then only
 * its presence counts), ms since the last replayed transaction (-1: none). */
#define SQL_R_HEALTH                                                                               \
    "SELECT pg_is_in_recovery(),"                                                                  \
    " (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"                                \
    "  ELSE pg_current_wal_lsn() END)::text,"                                                      \
    " coalesce(pg_last_wal_receive_lsn(), '0/0'::pg_lsn)::text,"                                   \
    " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,"                \
    " EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status IS NULL OR status = 'streaming'),"   \
    " coalesce((extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())"           \
    "  * 1000)::bigint, -1)"
#define SQL_R_HEALTH_TIMEOUT "SET statement_timeout = 2000"
/* Has this host replayed (or, the primary, written) $1? */
#define STMT_R_LSN_REACHED "r_lsn_reached"
#define SQL_R_LSN_REACHED                                                                          \
    "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"                          \
    " ELSE pg_current_wal_lsn() END) >= $1::pg_lsn"

/* ---- events (query_events.c, query_export.c, query_fhir.c) ----
 * $1 from (inclusive), $2 to (exclusive), $3 tenant (the token's scope, or
 * an admin's tenant=), $4 actor, $5 action, $6 resource, $7 outcome, $8
 * source name, $9 stream, $10/$11 the keyset position (event_time, id) of
 * a cursor, $12 limit (NULL: no limit, the export). Times go in as RFC 3339
 * text (exact, and constants for plan-time partition pruning) and come out
 * as µs since the epoch. */
#define SQL_Q_EVENT_COLS                                                                           \
    "(extract(epoch FROM event_time) * 1000000)::bigint, id, stream_id, seq, time_source,"         \
    " (extract(epoch FROM read_time) * 1000000)::bigint, tenant, actor, action, resource,"         \
    " outcome, source, attrs, raw, hash, prev_hash, format"
#define SQL_Q_EVENTS_BODY                                                                          \
    "SELECT " SQL_Q_EVENT_COLS " FROM auditrail.events"                                            \
    " WHERE event_time >= $1::timestamptz"                                                         \
    " AND event_time < $2::timestamptz"                                                            \
    " AND ($3::text IS NULL OR tenant = $3::text)"                                                 \
    " AND ($4::text IS NULL OR actor = $4::text)"                                                  \
    " AND ($5::text IS NULL OR action = $5::text)"                                                 \
    " AND ($6::text IS NULL OR resource = $6::text)"                                               \
    " AND ($7::text IS NULL OR outcome = $7::text)"                                                \
    " AND ($8::text IS NULL OR source->>'name' = $8::text)"                                        \
    " AND ($9::text IS NULL OR stream_id = $9::text)"                                              \
    " AND ($10::timestamptz IS NULL OR (event_time, id) >"                                         \
    "  ($10::timestamptz, $11::uuid))"                                                             \
    " ORDER BY event_time, id LIMIT $12::bigint"
#define STMT_Q_EVENTS        "q_events"
#define SQL_Q_EVENTS         SQL_Q_EVENTS_BODY
#define SQL_Q_EVENTS_NPARAMS 12
/* The export: a server-side cursor in a read-only REPEATABLE READ
 * transaction (one snapshot however long it runs), fetched in chunks. */
#define SQL_Q_EXPORT_BEGIN     "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
#define SQL_Q_EXPORT_DECLARE   "DECLARE auditrail_export NO SCROLL CURSOR FOR " SQL_Q_EVENTS_BODY
#define SQL_Q_EXPORT_FETCH_FMT "FETCH %u FROM auditrail_export"

/* ---- streams and incidents (query_streams.c) ----
 * Tenant-scoped callers ($1) see a stream when it holds at least one event
 * of their tenant (within $2..$3 when given). $4 keyset (stream id after),
 * $5 limit, $6 with row counts. */
#define SQL_Q_STREAM_COLS                                                                          \
    "s.stream_id, s.last_seq, encode(s.last_hash, 'hex'),"                                         \
    " (extract(epoch FROM s.first_seen) * 1000000)::bigint,"                                       \
    " (extract(epoch FROM s.last_seen) * 1000000)::bigint, s.source, s.gaps, s.chain_breaks,"      \
    " s.forks"
#define SQL_Q_STREAM_VISIBLE                                                                       \
    " (($1::text IS NULL AND $2::timestamptz IS NULL AND $3::timestamptz IS NULL) OR EXISTS "      \
    "(SELECT 1"                                                                                    \
    " FROM auditrail.events e WHERE e.stream_id = s.stream_id"                                     \
    " AND ($1::text IS NULL OR e.tenant = $1::text)"                                               \
    " AND ($2::timestamptz IS NULL OR e.event_time >= $2::timestamptz)"                            \
    " AND ($3::timestamptz IS NULL OR e.event_time < $3::timestamptz)))"
#define SQL_Q_STREAM_COUNT                                                                         \
    " (SELECT count(*) FROM auditrail.events e WHERE e.stream_id = s.stream_id"                    \
    " AND ($1::text IS NULL OR e.tenant = $1::text)"                                               \
    " AND ($2::timestamptz IS NULL OR e.event_time >= $2::timestamptz)"                            \
    " AND ($3::timestamptz IS NULL OR e.event_time < $3::timestamptz))"
#define STMT_Q_STREAMS "q_streams"
#define SQL_Q_STREAMS                                                                              \
    "SELECT " SQL_Q_STREAM_COLS ", CASE WHEN $6::bool THEN" SQL_Q_STREAM_COUNT " END"              \
    " FROM auditrail.streams s WHERE" SQL_Q_STREAM_VISIBLE                                         \
    " AND ($4::text IS NULL OR s.stream_id > $4::text) ORDER BY s.stream_id LIMIT $5::bigint"
/* One stream: $4 its id; its row count always. */
#define STMT_Q_STREAM "q_stream"
#define SQL_Q_STREAM                                                                               \
    "SELECT " SQL_Q_STREAM_COLS "," SQL_Q_STREAM_COUNT " FROM auditrail.streams s"                 \
    " WHERE s.stream_id = $4::text AND" SQL_Q_STREAM_VISIBLE
/* Incidents: $1 tenant scope (visible when their stream holds an event of
 * the tenant), $2/$3 detected_at range, $4 kind, $5 stream, $6 keyset (id
 * after), $7 limit. */
#define STMT_Q_INCIDENTS "q_incidents"
#define SQL_Q_INCIDENTS                                                                            \
    "SELECT i.id, (extract(epoch FROM i.detected_at) * 1000000)::bigint, i.kind, i.stream_id,"     \
    " i.seq, i.expected, i.actual, i.evidence FROM auditrail.integrity_incidents i"                \
    " WHERE ($2::timestamptz IS NULL OR i.detected_at >= $2::timestamptz)"                         \
    " AND ($3::timestamptz IS NULL OR i.detected_at < $3::timestamptz)"                            \
    " AND ($4::text IS NULL OR i.kind = $4::text) AND ($5::text IS NULL OR i.stream_id = "         \
    "$5::text)"                                                                                    \
    " AND ($6::bigint IS NULL OR i.id > $6::bigint)"                                               \
    " AND ($1::text IS NULL OR EXISTS (SELECT 1 FROM auditrail.events e"                           \
    "  WHERE e.stream_id = i.stream_id AND e.tenant = $1::text))"                                  \
    " ORDER BY i.id LIMIT $7::bigint"

/* ---- tokens (tokens.c, token_cmd.c) ---- */
#define STMT_Q_TOKEN "q_token"
#define SQL_Q_TOKEN                                                                                \
    "SELECT name, tenant, role, expires IS NOT NULL AND expires <= now(), revoked IS NOT NULL"     \
    " FROM auditrail.api_tokens WHERE token_sha256 = decode($1, 'hex')"
#define SQL_T_CREATE                                                                               \
    "INSERT INTO auditrail.api_tokens (token_sha256, tenant, role, name, expires)"                 \
    " VALUES (decode($1, 'hex'), $2, $3, $4,"                                                      \
    " CASE WHEN $5::int IS NULL THEN NULL ELSE now() + $5::int * interval '1 day' END)"
#define SQL_T_REVOKE                                                                               \
    "UPDATE auditrail.api_tokens SET revoked = now() WHERE name = $1 AND revoked IS NULL"
#define SQL_T_LIST                                                                                 \
    "SELECT name, coalesce(tenant, '*'), role, to_char(created AT TIME ZONE 'UTC',"                \
    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), coalesce(to_char(expires AT TIME ZONE 'UTC',"             \
    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'), CASE WHEN revoked IS NOT NULL THEN 'revoked'"       \
    " WHEN expires IS NOT NULL AND expires <= now() THEN 'expired' ELSE 'active' END,"             \
    " left(encode(token_sha256, 'hex'), 8) FROM auditrail.api_tokens ORDER BY created, name"

#endif
