/* A hash table from fixed-length byte keys to a size_t value (an index into
 * the caller's array, a count…): open addressing with linear probing,
 * SipHash-2-4 under a random key per table, backward-shift deletion, and an
 * O(1) clear (a generation stamp), for per-batch sets that are reset often.
 *
 * Ownership: keys are copied into the table on insertion; the caller's key
 * may be freed or changed afterwards. A value pointer returned by htab_find
 * or htab_put stays valid until the next htab_put, htab_del, htab_clear or
 * htab_release on the same table. Not thread-safe: one owner. Allocation
 * failure aborts (xmalloc). */
#ifndef AUDITRAIL_HTAB_H
#define AUDITRAIL_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct htab { /* fields are private to htab.c */
    unsigned char *slots;
    size_t key_len, slot_size, mask, count;
    uint32_t gen; /* a slot is in use when its stamp equals this */
    uint64_t k0, k1;
};

/* An empty table for keys of key_len (>= 1) bytes, sized so that `expected`
 * entries fit without growing (0: a small default). */
void htab_init(struct htab *t, size_t key_len, size_t expected);
/* Free the memory; the table must be initialized again to be used. NULL-safe. */
void htab_release(struct htab *t);

/* The value of key, or NULL when absent. */
size_t *htab_find(const struct htab *t, const void *key);
/* The value of key, inserting it with value 0 when absent; *added (may be
 * NULL) tells which. */
size_t *htab_put(struct htab *t, const void *key, bool *added);
/* Remove key; true when it was there. */
bool htab_del(struct htab *t, const void *key);
/* Forget every entry in O(1) (the memory is kept). */
void htab_clear(struct htab *t);

static inline size_t htab_count(const struct htab *t)
{
    return t->count;
}

#endif
