/* The contiguous-acknowledged-prefix tracker of one stream (DESIGN.md §4).
 * Every produced record is pushed in seq order; delivery reports (in any
 * order) mark it done; the stream's checkpoint is the end of the longest
 * prefix of acknowledged records. A failed delivery never advances it: it
 * orphans every record still in flight and asks the caller to re-read from
 * the prefix.
 *
 * Ownership: a struct ack_msg is heap-allocated by ack_msg_new, handed to
 * librdkafka as the message opaque and freed exactly once, by
 * ack_tracker_delivered, whatever happened to its tracker meanwhile (an
 * orphaned message has tr == NULL). A tracker carries an opaque owner (the
 * stream it belongs to), so a delivery report finds its stream through the
 * message alone. Single-threaded (the main loop). */
#ifndef AUDITRAIL_AGENT_ACK_TRACKER_H
#define AUDITRAIL_AGENT_ACK_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/hashchain.h"

struct ack_tracker;
struct metric;

struct ack_msg {
    struct ack_msg *next;
    struct ack_tracker *tr; /* NULL once orphaned */
    uint64_t seq;
    uint64_t end_offset; /* file offset just past the record */
    uint8_t hash[CHAIN_HASH_LEN];
    size_t bytes;    /* message size, for the in-flight budget */
    uint64_t enq_ms; /* monotonic time it was produced */
    bool acked;
    /* Set when its stream was dropped because the file's content is gone
     * (truncated): if its delivery fails it cannot be read again, and the
     * owner of the delivery report counts it here. */
    struct metric *lost_if_failed;
};

/* The acknowledged prefix: where a restart (or a rewind) resumes. */
struct ack_pos {
    uint64_t offset;
    uint64_t seq;
    uint8_t prev[CHAIN_HASH_LEN];
};

struct ack_tracker {
    struct ack_msg *head, *tail; /* in flight, in seq order */
    size_t n;
    struct ack_pos acked;
    void *owner; /* given to ack_tracker_init, returned by ack_tracker_delivered */
};

enum ack_result {
    ACK_NONE = 0, /* nothing changed for the prefix (or the message was orphaned) */
    ACK_ADVANCED, /* tr->acked moved forward */
    ACK_REWIND,   /* delivery failed: re-read from tr->acked */
};

/* Start with an empty flight at position `start`; `owner` (not owned) is
 * what ack_tracker_delivered reports for this tracker's messages. */
void ack_tracker_init(struct ack_tracker *tr, const struct ack_pos *start, void *owner);

struct ack_msg *ack_msg_new(uint64_t seq, uint64_t end_offset, const uint8_t hash[CHAIN_HASH_LEN],
                            size_t bytes, uint64_t enq_ms);

/* Append m (seq must be the next after the last pushed). */
void ack_tracker_push(struct ack_tracker *tr, struct ack_msg *m);

/* A delivery report for m (ok or failed). Frees m (and any acknowledged
 * messages it unblocks). On failure of a live message every other message in
 * flight is orphaned and the tracker is empty, positioned at tr->acked.
 * *owner_out (if not NULL) receives the owner of m's tracker, NULL if m was
 * orphaned. */
enum ack_result ack_tracker_delivered(struct ack_msg *m, bool ok, void **owner_out);

/* Orphan every message in flight (the stream is dropped or rewound): they
 * are freed when their delivery reports arrive. Leaves the tracker empty. */
void ack_tracker_orphan_all(struct ack_tracker *tr);

/* Monotonic ms the oldest unacknowledged message was produced; 0 if none. */
uint64_t ack_tracker_oldest_ms(const struct ack_tracker *tr);

#endif
