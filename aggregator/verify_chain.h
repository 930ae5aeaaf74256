/* The check of one stream's stored records, in pure C (no database): fed
 * the records in (seq, hash) order, it recomputes each hash and id, checks
 * the genesis, the links and seq continuity, and at the end compares the
 * stream with auditrail.streams, with the records around a time range, and
 * with its signed heads. verify.c feeds it from a cursor.
 *
 * Retention: a stream whose first stored record has seq N > 0 lost its
 * beginning. It is a retention cut (a note, not a problem) when a signed
 * head proves the cut — one at N - 1 equal to the record's prev, or a later
 * one the chain from N reaches — or, without signed heads, when the stream
 * began before the retention horizon; otherwise it is a gap. A signed head
 * whose event_time lies before the horizon may be gone; any other must be
 * present with its hash. */
#ifndef AUDITRAIL_AGGREGATOR_VERIFY_CHAIN_H
#define AUDITRAIL_AGGREGATOR_VERIFY_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/verify.h"

#define VCHAIN_FORKS 4 /* hashes kept at one seq (more forks are reported, not linked) */

/* A run of consecutive records (each linked to the one before), as a scan
 * in physical order finds them: its ends. */
struct vrun {
    int64_t first_seq, last_seq;
    int64_t first_time_us;
    uint64_t rows;
    uint8_t first_prev[CHAIN_HASH_LEN], last_hash[CHAIN_HASH_LEN];
};

/* Where two runs cover the same seqs (forks, or a record stored twice):
 * the caller looks the stored hashes up (vchain_fork). */
struct voverlap {
    int64_t lo, hi;
};

/* One stored record, as read. */
struct vrow {
    int64_t seq;
    const uint8_t *hash, *prev; /* CHAIN_HASH_LEN bytes each (NULL: wrong length) */
    const uint8_t *id;          /* 16 bytes */
    const void *raw;
    size_t raw_len;
    int64_t event_time_us;
};

/* What the database and the signed heads say about the stream beyond its
 * records (verify.c fills it before vchain_end). */
struct vchain_expect {
    bool full; /* every record was read (no time range) */
    /* auditrail.streams' row */
    bool have_state;
    int64_t last_seq;
    uint8_t last_hash[CHAIN_HASH_LEN];
    bool began_before_horizon; /* first_seen < horizon: its start may be cut */
    /* Time range only: the stored hash of the record before the first one
     * read (prev_state 1 found, 0 absent, -1 not looked up), and the
     * stored prev of the record after the last one read. */
    int prev_state;
    uint8_t prev_hash[CHAIN_HASH_LEN];
    int next_state;
    uint8_t next_prev[CHAIN_HASH_LEN];
    int64_t from_us, to_us;
    int64_t horizon_us;
};

struct vchain {
    char stream[65]; /* as stored (cut at 64 characters in messages) */
    bool stream_ok;  /* 32 lower-case hex */
    uint8_t genesis[CHAIN_HASH_LEN];
    const struct verify_stream_heads *heads; /* may be NULL */
    bool head_seen[3], head_ok[3];           /* latest, first_recent, cut_anchor */
    uint8_t head_stored[3][CHAIN_HASH_LEN];  /* a stored hash at a head's seq */
    uint64_t nrows;
    int64_t first_seq, last_seq;
    uint8_t first_prev[CHAIN_HASH_LEN];
    int64_t first_time_us;
    uint8_t last_hashes[VCHAIN_FORKS][CHAIN_HASH_LEN]; /* stored hashes at last_seq */
    int nlast;
    uint64_t problems_before_head; /* problems found before the latest head matched */
    bool latest_head_matched;
    /* scan mode: disjoint runs sorted by first_seq, and overlaps seen */
    struct vrun *runs;
    size_t nruns, capruns;
    struct voverlap *ovl;
    size_t novl, capovl;
    /* the sink */
    verify_emit_fn emit;
    void *ud;
    unsigned max_findings;
    uint64_t findings, problems, notes;
    uint64_t by_kind[VERIFY_KIND_COUNT];
};

/* Start a stream (stream: its id as stored, len bytes). heads may be NULL. */
void vchain_begin(struct vchain *c, const char *stream, size_t len,
                  const struct verify_stream_heads *heads, verify_emit_fn emit, void *ud,
                  unsigned max_findings);
/* The next record, in (seq, hash) order. */
void vchain_row(struct vchain *c, const struct vrow *r);
/* The rows that could be linked need a lookup (verify.c asks for these
 * before vchain_end): the predecessor of the first row, the successor of
 * the last. -1 when none is needed. */
int64_t vchain_need_prev(const struct vchain *c, const struct vchain_expect *e);
int64_t vchain_need_next(const struct vchain *c, const struct vchain_expect *e);
/* End the stream: the checks that need e. */
void vchain_end(struct vchain *c, const struct vchain_expect *e);
/* Free what scan mode allocated. */
void vchain_release(struct vchain *c);

/* Scan mode (records in any order; verify_scan.c): the checks of a record
 * alone (hash, id, genesis) and its signed heads; runs merged as they come
 * (a link checked where two runs meet); forks from the stored hashes of an
 * overlap; then vchain_close_runs reports the gaps between runs and sets
 * the ends for vchain_need_* and vchain_end. */
void vchain_check_fields(struct vchain *c, const struct vrow *r);
void vchain_check_heads(struct vchain *c, int64_t seq, const uint8_t *hash);
/* A broken link inside a run, found by the scan. */
void vchain_report_link(struct vchain *c, const struct vrow *r, const uint8_t expected[32]);
void vchain_add_run(struct vchain *c, const struct vrun *r);
/* Seqs lo..hi hold more than one record (seen by the scan): look up. */
void vchain_note_overlap(struct vchain *c, int64_t lo, int64_t hi);
void vchain_fork(struct vchain *c, int64_t seq, const uint8_t a[CHAIN_HASH_LEN],
                 const uint8_t b[CHAIN_HASH_LEN]);
void vchain_close_runs(struct vchain *c);

#endif
