/* The per-batch integrity classification of DESIGN.md §4 (pure C, no
 * server): given a batch, the locked state of its streams (auditrail.streams)
 * and the stored hashes of some (stream, seq), decide for every row whether
 * it is a re-send (same stream, seq and hash as a stored or earlier row:
 * dropped) or stored; find forks (same (stream, seq), another hash), seq
 * gaps and chain breaks (prev is not a known hash of seq - 1); compute each
 * stream's new last_seq/last_hash. The writer (pg_writer.c) feeds it from
 * PostgreSQL and stores what it decides.
 *
 * Use, in this order: chain_check_new; chain_check_set_state for each
 * stream that has a streams row; chain_check_lookups (which (stream, seq)
 * need stored hashes) and chain_check_add_stored for every stored row found
 * (chain_check_resolved tells whether a narrow lookup settled a pair);
 * chain_check_run; then read the status, streams, incidents and stats;
 * chain_check_free. One thread at a time; the batch must not change between
 * new and free. Stream ids are CHAIN_STREAM_HEX_LEN hex characters (what
 * envelope_decode accepts). */
#ifndef AUDITRAIL_AGGREGATOR_CHAIN_CHECK_H
#define AUDITRAIL_AGGREGATOR_CHAIN_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aggregator/batch.h"
#include "common/hashchain.h"

/* One stream with rows in the batch. */
struct chain_stream {
    const char *id; /* points into the batch */
    /* Input (chain_check_set_state); a stream without it is new. */
    bool exists;      /* has a streams row */
    int64_t last_seq; /* -1 when new */
    uint8_t last_hash[CHAIN_HASH_LEN];
    /* Output (chain_check_run). */
    bool touched;    /* some row is stored: the streams row is written */
    int64_t new_seq; /* last_seq after the batch (never lower) */
    uint8_t new_hash[CHAIN_HASH_LEN];
    const struct envelope_source *src; /* source of its first stored row */
    bool timed;                        /* = touched: the range below is set */
    int64_t min_time_us, max_time_us;  /* event_time range of its stored rows */
    int64_t gaps, breaks, forks;       /* incidents found in this batch */
};

/* chain_check_status values, per row of the batch. */
enum chain_row { CHAIN_ROW_STORE = 0, CHAIN_ROW_RESEND = 1 };

struct chain_incident {
    const char *kind; /* "fork", "gap" or "chain_break" (static) */
    size_t stream;    /* index of its chain_stream */
    int64_t seq;
    char expected[72], actual[72]; /* hashes in hex, or seq numbers (gap) */
    char *evidence;                /* JSON object: id, topic, Kafka partition and offset, and the
                                      kind's details; owned by the chain_check */
};

struct chain_stats {
    size_t resends, forks, gaps, chain_breaks;
};

/* A (stream, seq) whose stored hashes the classification needs: the seq of
 * a group of rows at or below the stream's last_seq (re-send or fork?), or
 * (pred) the predecessor of such a group (its chain check). */
struct chain_lookup {
    size_t stream;
    int64_t seq;
    size_t row; /* a row of the group: its time says where to look first */
    bool pred;
    size_t gi, ge; /* private: the group's range in the sorted rows */
};

struct chain_check;

/* Index b's streams and sort its rows by (stream, seq, batch order).
 * Never fails (allocation failure aborts). b is borrowed. */
struct chain_check *chain_check_new(const struct batch *b);
void chain_check_free(struct chain_check *cc); /* NULL-safe */

size_t chain_check_nstreams(const struct chain_check *cc);
/* Stream i (0 <= i < nstreams), in order of first appearance in the batch. */
struct chain_stream *chain_check_stream(struct chain_check *cc, size_t i);
/* The index of stream_id, or -1 when no row of the batch has it. */
ssize_t chain_check_find(const struct chain_check *cc, const char *stream_id);
/* The stream's stored state: it exists with last_seq and last_hash (NULL:
 * unknown, all zeroes). */
void chain_check_set_state(struct chain_check *cc, size_t stream, int64_t last_seq,
                           const uint8_t *last_hash);

/* The pairs to look up (after every set_state); *out stays valid until
 * the chain_check is freed. Returns their number. */
size_t chain_check_lookups(struct chain_check *cc, const struct chain_lookup **out);
/* A stored row of (stream, seq) has hash. Duplicates are harmless. */
void chain_check_add_stored(struct chain_check *cc, size_t stream, int64_t seq,
                            const uint8_t hash[CHAIN_HASH_LEN]);
/* Whether the stored hashes added so far settle l: every hash the group
 * needs (its rows' hashes, or their prevs for a pred pair) is there.
 * Otherwise a wider lookup may find more (a re-send whose time changed, an
 * older fork in another partition). */
bool chain_check_resolved(struct chain_check *cc, const struct chain_lookup *l);

/* Classify every row and compute the streams' new state. Once. */
void chain_check_run(struct chain_check *cc);
/* Per row of the batch: an enum chain_row. */
const uint8_t *chain_check_status(const struct chain_check *cc);
const struct chain_stats *chain_check_stats(const struct chain_check *cc);
/* The incidents found, in the order found; returns their number. */
size_t chain_check_incidents(const struct chain_check *cc, const struct chain_incident **out);

#endif
