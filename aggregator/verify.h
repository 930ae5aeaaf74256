/* Verify: recompute the hash chains stored in PostgreSQL (DESIGN.md §2) and
 * report what does not hold, with its evidence — for the aggregator's
 * `verify` subcommand and the query API's GET /v1/streams/{id}/verify.
 * Streams are verified in parallel over a small pool of connections, each
 * reading through a binary server-side cursor (bounded memory). */
#ifndef AUDITRAIL_AGGREGATOR_VERIFY_H
#define AUDITRAIL_AGGREGATOR_VERIFY_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/hashchain.h"

#define VERIFY_UNBOUNDED_FROM INT64_MIN
#define VERIFY_UNBOUNDED_TO   INT64_MAX

/* What was found. The first group are problems (verify fails); the last
 * is a note. */
enum verify_kind {
    VERIFY_HASH_MISMATCH,   /* stored hash != SHA-256(prev || seq || raw) */
    VERIFY_ID_MISMATCH,     /* id != hash[0..16) */
    VERIFY_BAD_GENESIS,     /* seq 0's prev != SHA-256("auditrail:v1:" || stream) */
    VERIFY_BROKEN_LINK,     /* prev != the stored (or signed) hash of seq - 1 */
    VERIFY_GAP,             /* records seq..seq_end are missing */
    VERIFY_FORK,            /* two records share one seq */
    VERIFY_TAIL_MISSING,    /* auditrail.streams records a last seq beyond the last record */
    VERIFY_HEAD_MISMATCH,   /* auditrail.streams disagrees with the stored records */
    VERIFY_BAD_STREAM,      /* a stream id that is not 32 lower-case hex characters */
    VERIFY_SIGNED_MISSING,  /* a signed head's record is not in the database */
    VERIFY_SIGNED_MISMATCH, /* a signed head's record has another hash */
    VERIFY_BAD_SIGNATURE,   /* a signed head or round whose signature does not verify */
    VERIFY_RETENTION_CUT,   /* note: the stream's beginning was dropped by retention */
    VERIFY_KIND_COUNT
};

/* "hash_mismatch", "id_mismatch", "bad_genesis", "broken_link", "gap",
 * "fork", "tail_missing", "head_mismatch", "bad_stream", "signed_head_missing",
 * "signed_head_mismatch", "bad_signature", "retention_cut". */
const char *verify_kind_name(enum verify_kind k);
/* Everything but VERIFY_RETENTION_CUT. */
bool verify_kind_is_problem(enum verify_kind k);

/* One finding, valid during the callback only. */
struct verify_finding {
    enum verify_kind kind;
    const char *stream;
    int64_t seq, seq_end; /* seq_end: the last missing seq of a gap, else seq */
    /* Hashes as lower-case hex, "" when not applicable: `stored` is what the
     * database holds, `computed` what it should be (recomputed, the other
     * fork, the predecessor's hash, the signed hash). */
    char stored[2 * CHAIN_HASH_LEN + 1], computed[2 * CHAIN_HASH_LEN + 1];
    int64_t event_time_us; /* of the record concerned; INT64_MIN when unknown */
    const char *detail;    /* a short sentence */
};

/* The signed heads verify checks one stream against (--against; built by
 * proof_heads.c): its latest signed head, the earliest one not older than
 * the retention horizon (guards the front), and the latest one older than
 * the horizon (the anchor at a retention cut). */
struct verify_head {
    bool set;
    int64_t seq;
    uint8_t hash[CHAIN_HASH_LEN];
    int64_t event_time_us;
};
struct verify_stream_heads {
    struct verify_head latest, first_recent, cut_anchor;
};

/* The signed heads by stream: lookup (NULL when the stream has none) and
 * the list of every stream that has one (so that a stream missing from the
 * database entirely is still checked). Read-only once built: shared by the
 * workers. */
struct verify_heads {
    const struct verify_stream_heads *(*lookup)(const void *ud, const char *stream);
    size_t (*streams)(const void *ud, const char *const **ids); /* sorted ids */
    const void *ud;
};

struct verify_opts {
    const char *stream;     /* NULL: every stream */
    const char *tenant;     /* NULL: any; else every stream holding records of it */
    int64_t from_us, to_us; /* event_time range [from, to); VERIFY_UNBOUNDED_* */
    unsigned workers;       /* connections in parallel (0: 4) */
    unsigned fetch_rows;    /* rows per FETCH (0: 2000): memory ~ this × record size */
    /* Records with an event_time before this may have been dropped by
     * retention (INT64_MIN: nothing was): see verify_chain.h. */
    int64_t horizon_us;
    const struct verify_heads *heads;  /* NULL: no signed heads */
    unsigned max_findings;             /* per stream (0: 100); the rest are only counted */
    const volatile sig_atomic_t *stop; /* non-zero: stop early (NULL: never) */
};

struct verify_report {
    uint64_t streams, records, bytes; /* bytes: of raw */
    uint64_t problems, notes;         /* findings, including those not emitted */
    uint64_t by_kind[VERIFY_KIND_COUNT];
    uint64_t elapsed_us;
};

/* Exit statuses of `auditrail-aggregator verify` (documented in README). */
enum verify_status {
    VERIFY_INTACT = 0,      /* every record of the range verifies */
    VERIFY_PROBLEMS = 1,    /* findings that are problems */
    VERIFY_USAGE = 2,       /* bad arguments or an unreadable heads file */
    VERIFY_UNAVAILABLE = 4, /* PostgreSQL (or the proof topic) unreachable */
};

/* Called for every finding (up to max_findings per stream), from one
 * thread at a time. */
typedef void (*verify_emit_fn)(void *ud, const struct verify_finding *f);

/* Verify o's range on the database at conninfo. Fills *rep; returns
 * VERIFY_INTACT, VERIFY_PROBLEMS, or VERIFY_UNAVAILABLE with err set (a
 * connection or statement failed: what was reported so far is partial). */
enum verify_status verify_run(const char *conninfo, const struct verify_opts *o,
                              verify_emit_fn emit, void *ud, struct verify_report *rep, char *err,
                              size_t errlen);

/* JSON (verify_json.c; jansson, owned by the caller): a finding; the
 * summary's fields (status, streams, records, bytes, problems, notes,
 * by_kind, seconds, error when err is not empty). */
json_t *verify_finding_json(const struct verify_finding *f);
json_t *verify_summary_json(const struct verify_report *r, enum verify_status st, const char *err);
const char *verify_status_name(enum verify_status st);

struct pg_connection;
/* The same on one borrowed connection (opened, idle; e.g. the query API's
 * pool), without threads; o->workers is ignored. The connection is left
 * idle. */
enum verify_status verify_run_on(struct pg_connection *c, const struct verify_opts *o,
                                 verify_emit_fn emit, void *ud, struct verify_report *rep,
                                 char *err, size_t errlen);

#endif
