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
/* The scan strategy (verify_scan.c): one snapshot for every worker; the
 * partitions (quoted names, bounds in µs; a partition without bounds, e.g.
 * a default one, comes with NULLs and is always read) in time order. */
#define SQL_V_EXPORT   "SELECT pg_export_snapshot()"
#define SQL_V_SNAP_FMT "SET TRANSACTION SNAPSHOT '%s'"
#define SQL_V_PARTITIONS                                                                           \
    "SELECT c.oid::regclass::text,"                                                                \
    " (extract(epoch FROM b.m[1]::timestamptz) * 1000000)::bigint,"                                \
    " (extract(epoch FROM b.m[2]::timestamptz) * 1000000)::bigint"                                 \
    " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,"                                   \
    " LATERAL (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid),"                            \
    "   'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') AS m) b"                                  \
    " WHERE i.inhparent = 'auditrail.events'::regclass ORDER BY 2 NULLS FIRST"
#define SQL_V_SCAN_FMT                                                                             \
    "DECLARE verify_rows BINARY NO SCROLL CURSOR FOR"                                              \
    " SELECT stream_id, seq, hash, prev_hash, raw, id, event_time FROM %s"
#define SQL_V_SCAN_RANGE " WHERE event_time >= $1::timestamptz AND event_time < $2::timestamptz"
/* The stored hashes where runs overlap (forks). */
#define SQL_V_SEQS                                                                                 \
    "SELECT seq, encode(hash, 'hex') FROM auditrail.events"                                        \
    " WHERE stream_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq, hash"
/* Around a time range: the stored hash and prev of given (stream, seq). */
#define SQL_V_LOOKUP                                                                               \
    "SELECT l.stream_id, l.seq, encode(e.hash, 'hex'), encode(e.prev_hash, 'hex')"                 \
    " FROM unnest($1::text[], $2::bigint[]) AS l(stream_id, seq)"                                  \
    " JOIN auditrail.events e ON e.stream_id = l.stream_id AND e.seq = l.seq"

/* ---- signed chain heads (proof_round.c, proof_store.c) ---- */
/* One signer per round: a transaction-scoped advisory lock ("auditrail
 * proof" as a key). */
#define PROOF_LOCK_KEY "6120433012395339376"
#define SQL_P_TRY_LOCK "SELECT pg_try_advisory_xact_lock($1::bigint)"
#define SQL_P_LAST     "SELECT round, tree_size FROM auditrail.chain_rounds ORDER BY round DESC LIMIT 1"
/* The streams whose head changed since the last round, with the head's
 * record (its hash must be the stream's last_hash: a stream whose last
 * record is not stored comes back with NULLs and is not signed). */
#define SQL_P_CHANGED                                                                              \
    "SELECT s.stream_id, s.last_seq, encode(e.hash, 'hex'),"                                       \
    " (extract(epoch FROM e.event_time) * 1000000)::bigint"                                        \
    " FROM auditrail.streams s"                                                                    \
    " LEFT JOIN auditrail.chain_heads_latest h ON h.stream_id = s.stream_id"                       \
    " LEFT JOIN LATERAL (SELECT x.hash, x.event_time FROM auditrail.events x"                      \
    "   WHERE x.stream_id = s.stream_id AND x.seq = s.last_seq AND x.hash = s.last_hash"           \
    "   LIMIT 1) e ON true"                                                                        \
    " WHERE h.stream_id IS NULL OR h.seq <> s.last_seq OR h.hash <> s.last_hash"                   \
    " ORDER BY s.stream_id"
#define SQL_P_NODES                                                                                \
    "SELECT n.level, n.idx, encode(n.hash, 'hex') FROM auditrail.chain_tree n"                     \
    " JOIN unnest($1::smallint[], $2::bigint[]) AS q(level, idx)"                                  \
    " ON n.level = q.level AND n.idx = q.idx"
/* µs since the epoch as timestamptz, exactly. */
#define SQL_P_TS(n) "('epoch'::timestamptz + $" #n "::bigint * interval '1 microsecond')"
#define SQL_P_ROUND_INSERT                                                                         \
    "INSERT INTO auditrail.chain_rounds (round, signed_at, tree_size, root_hash, signature,"       \
    " key_id, heads) VALUES ($1, " SQL_P_TS(2) ", $3, decode($4, 'hex'), decode($5, 'hex'),"       \
                                               " $6, $7)"
#define SQL_P_HEADS_INSERT                                                                         \
    "INSERT INTO auditrail.chain_heads (leaf, round, stream_id, seq, hash, event_time,"            \
    " signed_at, signature)"                                                                       \
    " SELECT u.leaf, $1, u.stream_id, u.seq, decode(u.hash, 'hex'),"                               \
    " 'epoch'::timestamptz + u.t * interval '1 microsecond', " SQL_P_TS(                           \
        2) ","                                                                                     \
           " decode(u.sig, 'hex')"                                                                 \
           " FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::bigint[],"        \
           " $8::text[]) AS u(leaf, stream_id, seq, hash, t, sig)"
#define SQL_P_LATEST_UPSERT                                                                        \
    "INSERT INTO auditrail.chain_heads_latest (stream_id, round, seq, hash)"                       \
    " SELECT u.stream_id, $1, u.seq, decode(u.hash, 'hex')"                                        \
    " FROM unnest($2::text[], $3::bigint[], $4::text[]) AS u(stream_id, seq, hash)"                \
    " ON CONFLICT (stream_id) DO UPDATE SET round = EXCLUDED.round, seq = EXCLUDED.seq,"           \
    " hash = EXCLUDED.hash"
#define SQL_P_TREE_INSERT                                                                          \
    "INSERT INTO auditrail.chain_tree (level, idx, hash)"                                          \
    " SELECT u.level, u.idx, decode(u.hash, 'hex')"                                                \
    " FROM unnest($1::smallint[], $2::bigint[], $3::text[]) AS u(level, idx, hash)"
/* Publishing and reading back. */
#define SQL_P_UNPUBLISHED                                                                          \
    "SELECT round FROM auditrail.chain_rounds WHERE published_at IS NULL ORDER BY round"
#define SQL_P_ROUND_GET                                                                            \
    "SELECT round, (extract(epoch FROM signed_at) * 1000000)::bigint, tree_size,"                  \
    " encode(root_hash, 'hex'), encode(signature, 'hex'), key_id, heads"                           \
    " FROM auditrail.chain_rounds WHERE round = $1"
#define SQL_P_HEADS_GET                                                                            \
    "SELECT leaf, stream_id, seq, encode(hash, 'hex'),"                                            \
    " (extract(epoch FROM event_time) * 1000000)::bigint,"                                         \
    " (extract(epoch FROM signed_at) * 1000000)::bigint, encode(signature, 'hex')"                 \
    " FROM auditrail.chain_heads WHERE round = $1 ORDER BY leaf"
#define SQL_P_PUBLISHED "UPDATE auditrail.chain_rounds SET published_at = now() WHERE round = $1"
#define SQL_P_HEAD_AT                                                                              \
    "SELECT leaf, round FROM auditrail.chain_heads WHERE stream_id = $1 AND seq <= $2"             \
    " ORDER BY seq DESC, leaf DESC LIMIT 1"

#endif
