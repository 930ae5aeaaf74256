/* Contiguous-ack tracking: a FIFO of in-flight records per stream; the head
 * is always the oldest unacknowledged one. */
#include "agent/ack_tracker.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

void ack_tracker_init(struct ack_tracker *tr, const struct ack_pos *start, void *owner)
{
    memset(tr, 0, sizeof(*tr));
    tr->acked = *start;
    tr->owner = owner;
}

struct ack_msg *ack_msg_new(uint64_t seq, uint64_t end_offset, const uint8_t hash[CHAIN_HASH_LEN],
                            size_t bytes, uint64_t enq_ms)
{
    struct ack_msg *m = xcalloc(1, sizeof(*m));
    m->seq = seq;
    m->end_offset = end_offset;
    memcpy(m->hash, hash, CHAIN_HASH_LEN);
    m->bytes = bytes;
    m->enq_ms = enq_ms;
    return m;
}

void ack_tracker_push(struct ack_tracker *tr, struct ack_msg *m)
{
    m->tr = tr;
    m->next = NULL;
    if (tr->tail)
        tr->tail->next = m;
    else
        tr->head = m;
    tr->tail = m;
    tr->n++;
}

/* Detach everything; messages still awaiting a report become orphans, those
 * already reported (acked out of order) and `skip` are freed now. */
static void orphan_all(struct ack_tracker *tr, struct ack_msg *skip)
{
    struct ack_msg *m = tr->head;
    while (m) {
        struct ack_msg *next = m->next;
        m->next = NULL;
        if (m->acked || m == skip) {
            free(m);
        } else {
            m->tr = NULL;
        }
        m = next;
    }
    tr->head = tr->tail = NULL;
    tr->n = 0;
}

void ack_tracker_orphan_all(struct ack_tracker *tr)
{
    orphan_all(tr, NULL);
}

enum ack_result ack_tracker_delivered(struct ack_msg *m, bool ok, void **owner_out)
{
    struct ack_tracker *tr = m->tr;
    if (owner_out)
        *owner_out = tr ? tr->owner : NULL;
    if (!tr) {
        free(m);
        return ACK_NONE;
    }
    if (!ok) {
        orphan_all(tr, m);
        return ACK_REWIND;
    }
    m->acked = true;
    enum ack_result res = ACK_NONE;
    while (tr->head && tr->head->acked) {
        struct ack_msg *h = tr->head;
        tr->acked.offset = h->end_offset;
        tr->acked.seq = h->seq + 1;
        memcpy(tr->acked.prev, h->hash, CHAIN_HASH_LEN);
        tr->head = h->next;
        if (!tr->head)
            tr->tail = NULL;
        tr->n--;
        free(h);
        res = ACK_ADVANCED;
    }
    return res;
}

uint64_t ack_tracker_oldest_ms(const struct ack_tracker *tr)
{
    return tr->head ? tr->head->enq_ms : 0;
}
