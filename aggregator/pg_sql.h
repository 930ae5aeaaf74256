/* Every SQL statement of the aggregator, as named constants (STYLE.md
 * habit 8). The writer's statements with parameters are prepared once per
 * connection under the STMT_ names next to them. Partition DDL is the only
 * SQL with identifiers built at run time (the *_FMT formats), and only from
 * our own date formatting (partitions.c). */
#ifndef AUDITRAIL_AGGREGATOR_PG_SQL_H
#define AUDITRAIL_AGGREGATOR_PG_SQL_H

/* ---- any connection (pg_conn.c and its users) ---- */
#define SQL_BEGIN    "BEGIN"
#define SQL_COMMIT   "COMMIT"
#define SQL_ROLLBACK "ROLLBACK"
#define SQL_PING     "SELECT 1"
/* Every connection's limits (pg_conn.c), in ms: statement_timeout,
 * lock_timeout, idle_in_transaction_session_timeout (0 = the server's). */
#define SQL_SESSION_LIMITS                                                                         \
    "SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false),"    \
    " set_config('idle_in_transaction_session_timeout', $3, false)"
/* Session setting of the tools' connections: NOTICEs of IF NOT EXISTS DDL
 * are noise in their output. */
#define SQL_QUIET "SET client_min_messages = warning"

/* ---- migrations (migrate.c) ---- */
#define SQL_MIGRATE_LOCK   "SELECT pg_advisory_lock($1::bigint)"
#define SQL_MIGRATE_UNLOCK "SELECT pg_advisory_unlock($1::bigint)"
#define SQL_MIGRATE_BOOTSTRAP                                                                      \
    "CREATE SCHEMA IF NOT EXISTS auditrail;"                                                       \
    "CREATE TABLE IF NOT EXISTS auditrail.schema_migrations ("                                     \
    " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"                    \
    " applied_at timestamptz NOT NULL DEFAULT now())"
#define SQL_MIGRATE_LIST "SELECT version, name, checksum FROM auditrail.schema_migrations"
#define SQL_MIGRATE_RECORD                                                                         \
    "INSERT INTO auditrail.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"

/* ---- partitions (partitions.c) ---- */
#define SQL_PART_XACT_LOCK "SELECT pg_advisory_xact_lock($1::bigint)"
/* Bounds of the attached partitions as µs since the epoch; rows whose bound
 * is not FROM (…) TO (…) (MINVALUE, a default partition) come back NULL. */
#define SQL_PART_LIST                                                                              \
    "SELECT c.relname,"                                                                            \
    " (extract(epoch FROM m[1]::timestamptz) * 1000000)::bigint,"                                  \
    " (extract(epoch FROM m[2]::timestamptz) * 1000000)::bigint"                                   \
    " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,"                                   \
    " LATERAL (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid),"                            \
    "   'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') AS m) b"                                  \
    " WHERE i.inhparent = 'auditrail.events'::regclass"
#define SQL_PART_LOCK_TIMEOUT "SET LOCAL lock_timeout = '5s'"
/* The writer notes its writes to partitions of past days ($1 text[] of
 * names), at most once a minute per partition: a fresh note is only read,
 * so writers do not queue on its row lock. */
#define SQL_PART_NOTE_WRITES                                                                       \
    "WITH d AS (SELECT DISTINCT unnest($1::text[]) AS partition),"                                 \
    " stale AS (SELECT d.partition FROM d LEFT JOIN auditrail.partition_writes w USING "           \
    "(partition)"                                                                                  \
    "   WHERE w.last_write IS NULL OR w.last_write < now() - interval '60 seconds')"               \
    " INSERT INTO auditrail.partition_writes (partition, last_write)"                              \
    " SELECT partition, now() FROM stale"                                                          \
    " ON CONFLICT (partition) DO UPDATE SET last_write = excluded.last_write"
/* Seconds since the last noted write of partition $1 if within $2 seconds. */
#define SQL_PART_RECENT_WRITE                                                                      \
    "SELECT extract(epoch FROM now() - last_write)::bigint FROM auditrail.partition_writes"        \
    " WHERE partition = $1 AND last_write > now() - $2::bigint * interval '1 second'"
#define SQL_PART_FORGET_WRITES "DELETE FROM auditrail.partition_writes WHERE partition = $1"
/* DDL formats: %s are a partition name (events_pYYYYMMDD, from
 * part_day_name) and bounds ('YYYY-MM-DD 00:00:00+00'), never input. */
#define SQL_PART_CREATE_FMT                                                                        \
    "CREATE TABLE IF NOT EXISTS auditrail.\"%s\" PARTITION OF auditrail.events"                    \
    " FOR VALUES FROM ('%s') TO ('%s')"
#define SQL_PART_DETACH_FMT "ALTER TABLE auditrail.events DETACH PARTITION auditrail.\"%s\""
#define SQL_PART_KEEP_FMT   "ALTER TABLE auditrail.\"%s\" RENAME TO \"%s_detached\""
#define SQL_PART_DROP_FMT   "DROP TABLE auditrail.\"%s\""

/* ---- writer (pg_writer.c) ---- */
#define SQL_W_SESSION "SET TIME ZONE 'UTC'"
/* The columns the writer sends, in COPY order (events minus ingested_at). */
#define SQL_W_COPY_COLS                                                                            \
    "event_time, id, stream_id, seq, file_offset, hash, prev_hash, read_time, time_source,"        \
    " tenant, actor, action, resource, outcome, format, source, raw, truncated_bytes, attrs,"      \
    " fields_cut"
/* Common path: the rows to store go straight into events (inside a
 * savepoint). COPY has no ON CONFLICT: if a primary key already exists (only
 * when streams and events disagree), roll back to the savepoint and take the
 * staging path, whose INSERT … ON CONFLICT DO NOTHING is the last guard. */
#define SQL_W_SAVEPOINT          "SAVEPOINT direct_copy"
#define SQL_W_SAVEPOINT_RELEASE  "RELEASE SAVEPOINT direct_copy"
#define SQL_W_SAVEPOINT_ROLLBACK "ROLLBACK TO SAVEPOINT direct_copy"
#define SQL_W_EVENTS_COPY        "COPY auditrail.events (" SQL_W_COPY_COLS ") FROM STDIN (FORMAT binary)"
#define SQL_W_STAGE_CREATE                                                                         \
    "CREATE TEMP TABLE IF NOT EXISTS auditrail_stage ("                                            \
    " event_time timestamptz NOT NULL, id uuid NOT NULL,"                                          \
    " stream_id text NOT NULL, seq bigint NOT NULL, file_offset bigint NOT NULL,"                  \
    " hash bytea NOT NULL, prev_hash bytea NOT NULL, read_time timestamptz NOT NULL,"              \
    " time_source text NOT NULL, tenant text, actor text, action text, resource text,"             \
    " outcome text, format text NOT NULL, source jsonb NOT NULL, raw bytea NOT NULL,"              \
    " truncated_bytes bigint NOT NULL, attrs jsonb, fields_cut text[]) ON COMMIT DELETE ROWS"
#define SQL_W_STAGE_COPY "COPY auditrail_stage (" SQL_W_COPY_COLS ") FROM STDIN (FORMAT binary)"

#define STMT_W_OFFSET_LOAD "w_offset_load"
#define SQL_W_OFFSET_LOAD                                                                          \
    "SELECT next_offset FROM auditrail.kafka_offsets"                                              \
    " WHERE consumer_group = $1 AND topic = $2 AND partition = $3"
#define STMT_W_OFFSET_CAS "w_offset_cas"
#define SQL_W_OFFSET_CAS                                                                           \
    "UPDATE auditrail.kafka_offsets SET next_offset = $4, updated_at = now()"                      \
    " WHERE consumer_group = $1 AND topic = $2 AND partition = $3 AND next_offset = $5"
#define STMT_W_OFFSET_INIT "w_offset_init"
#define SQL_W_OFFSET_INIT                                                                          \
    "INSERT INTO auditrail.kafka_offsets (consumer_group, topic, partition, next_offset)"          \
    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"

/* Lock the batch's streams. A new stream has no row to lock, so one is
 * inserted first (last_seq -1: nothing stored yet; its source comes with
 * the upsert); a writer racing us for the same new stream waits on that
 * uncommitted row, then finds ours. Both in stream order, so writers never
 * deadlock on each other. $1 ids. */
#define STMT_W_STREAMS_NEW "w_streams_new"
#define SQL_W_STREAMS_NEW                                                                          \
    "INSERT INTO auditrail.streams (stream_id, last_seq, last_hash)"                               \
    " SELECT u.stream_id, -1, '\\x'::bytea FROM unnest($1::text[]) AS u(stream_id)"                \
    " ORDER BY u.stream_id ON CONFLICT (stream_id) DO NOTHING"
/* The state and the event_time range (µs since the epoch, NULL unknown). */
#define STMT_W_STREAMS_LOCK "w_streams_lock"
#define SQL_W_STREAMS_LOCK                                                                         \
    "SELECT stream_id, last_seq, last_hash,"                                                       \
    " (extract(epoch FROM min_event_time) * 1000000)::bigint,"                                     \
    " (extract(epoch FROM max_event_time) * 1000000)::bigint"                                      \
    " FROM auditrail.streams WHERE stream_id = ANY($1::text[]) ORDER BY stream_id FOR UPDATE"
/* A new stream's row that stored nothing in the end (every row a re-send
 * of rows stored without a streams row): not left behind. */
#define STMT_W_STREAMS_UNUSED "w_streams_unused"
#define SQL_W_STREAMS_UNUSED                                                                       \
    "DELETE FROM auditrail.streams WHERE stream_id = ANY($1::text[]) AND last_seq < 0"
/* Stored hashes of (stream, seq) pairs ($1, $2) within [$3, $4): re-sends,
 * gap fills, and the predecessor of a row below the stream's last_seq.
 * Sent unprepared, so it is planned with its bounds: the planner keeps only
 * the partitions of that range, and the transaction locks only those (a
 * join on the bounds would be pruned at run time, after every partition and
 * index of auditrail.events was locked). The writer asks first for the
 * rows' own days, then within each stream's event_time range. */
#define SQL_W_LOOKUP_RANGE                                                                         \
    "SELECT e.stream_id, e.seq, e.hash FROM auditrail.events e"                                    \
    " WHERE (e.stream_id, e.seq) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))"              \
    " AND e.event_time >= $3::timestamptz AND e.event_time < $4::timestamptz"
/* Across all partitions: only for a stream whose range is unknown (stored
 * before migration 002). */
#define SQL_W_LOOKUP_ALL                                                                           \
    "SELECT e.stream_id, e.seq, e.hash FROM auditrail.events e"                                    \
    " WHERE (e.stream_id, e.seq) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))"
/* Staging path: insert what was staged; (event_time, id) conflicts are
 * skipped and counted as dup_pk. */
#define STMT_W_INSERT "w_insert"
#define SQL_W_INSERT                                                                               \
    "INSERT INTO auditrail.events (" SQL_W_COPY_COLS ") SELECT " SQL_W_COPY_COLS                   \
    " FROM auditrail_stage ON CONFLICT DO NOTHING"
/* One row per stream touched: $1 ids, $2 new last_seq (already the max with
 * the stored one), $3 last_hash hex, $4..$6 counter increments, $7 source
 * JSON (kept from the stream's first sight), $8 and $9 the event_time range
 * of the rows stored (a stream whose range is unknown keeps it unknown). */
#define STMT_W_STREAMS_UPSERT "w_streams_upsert"
#define SQL_W_STREAMS_UPSERT                                                                       \
    "INSERT INTO auditrail.streams AS s (stream_id, last_seq, last_hash, source, gaps,"            \
    " chain_breaks, forks, min_event_time, max_event_time)"                                        \
    " SELECT u.stream_id, u.last_seq, decode(u.last_hash, 'hex'),"                                 \
    " u.source::jsonb, u.gaps, u.breaks, u.forks, u.min_t, u.max_t"                                \
    " FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[],"               \
    " $6::bigint[], $7::text[], $8::timestamptz[], $9::timestamptz[])"                             \
    " AS u(stream_id, last_seq, last_hash, gaps, breaks, forks, source, min_t, max_t)"             \
    " ON CONFLICT (stream_id) DO UPDATE SET last_seq = GREATEST(s.last_seq, EXCLUDED.last_seq),"   \
    " last_hash = CASE WHEN EXCLUDED.last_seq >= s.last_seq THEN EXCLUDED.last_hash"               \
    " ELSE s.last_hash END, last_seen = now(),"                                                    \
    " gaps = s.gaps + EXCLUDED.gaps, chain_breaks = s.chain_breaks + EXCLUDED.chain_breaks,"       \
    " forks = s.forks + EXCLUDED.forks,"                                                           \
    " source = CASE WHEN s.last_seq < 0 THEN EXCLUDED.source ELSE s.source END,"                   \
    " min_event_time = CASE WHEN s.last_seq >= 0 AND s.min_event_time IS NULL THEN NULL"           \
    " ELSE LEAST(s.min_event_time, EXCLUDED.min_event_time) END,"                                  \
    " max_event_time = CASE WHEN s.last_seq >= 0 AND s.max_event_time IS NULL THEN NULL"           \
    " ELSE GREATEST(s.max_event_time, EXCLUDED.max_event_time) END"
#define STMT_W_INCIDENT "w_incident"
#define SQL_W_INCIDENT                                                                             \
    "INSERT INTO auditrail.integrity_incidents (kind, stream_id, seq, expected, actual, evidence)" \
    " VALUES ($1, $2, $3, $4, $5, $6::jsonb)"

/* After a commit: where the primary's WAL is (read-your-writes, /v1/status). */
#define SQL_W_WAL_LSN "SELECT pg_current_wal_lsn()::text"

/* ---- maintenance (maintenance.c) ---- */
#define SQL_M_TRY_LOCK "SELECT pg_try_advisory_lock($1::bigint)"
#define SQL_M_UNLOCK   "SELECT pg_advisory_unlock($1::bigint)"
/* Fencing: record our token unless a higher one is stored; 0 rows = stale. */
#define SQL_M_FENCE                                                                                \
    "INSERT INTO auditrail.maintenance_lease AS l (name, token, holder, expires_at)"               \
    " VALUES ($1, $2, $3, now() + ($4::bigint * interval '1 millisecond'))"                        \
    " ON CONFLICT (name) DO UPDATE SET token = EXCLUDED.token, holder = EXCLUDED.holder,"          \
    " expires_at = EXCLUDED.expires_at WHERE l.token <= EXCLUDED.token RETURNING token"
/* Advisory path: serialize with Redis holders on the lease row, no token. */
#define SQL_M_FENCE_ADVISORY                                                                       \
    "SELECT token FROM auditrail.maintenance_lease WHERE name = $1 FOR UPDATE"

/* ---- the database's identity (aggregator.c: Redis namespaces) ---- */
#define SQL_DB_IDENTITY                                                                            \
    "SELECT current_database(), system_identifier::text FROM pg_control_system()"

/* ---- replay (replay.c) ---- */
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

#endif
