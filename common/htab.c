/* The fixed-key hash table of common/htab.h. A slot is the generation stamp,
 * the value and the key bytes; the table doubles when half full, so probe
 * runs stay short and clearing never needs to touch the slots (only a
 * wrapped stamp does). */
#include "common/htab.h"

#include <stdlib.h>
#include <string.h>

#include "common/siphash.h"
#include "common/xmalloc.h"

#define SLOT_VALUE 8  /* offset of the size_t value */
#define SLOT_KEY   16 /* offset of the key bytes */

static unsigned char *slot_at(const struct htab *t, size_t i)
{
    return t->slots + i * t->slot_size;
}

static uint32_t slot_gen(const unsigned char *s)
{
    uint32_t g;
    memcpy(&g, s, sizeof(g));
    return g;
}

static void slot_set_gen(unsigned char *s, uint32_t g)
{
    memcpy(s, &g, sizeof(g));
}

static size_t *slot_value(unsigned char *s)
{
    return (size_t *)(void *)(s + SLOT_VALUE);
}

static size_t home(const struct htab *t, const void *key)
{
    return (size_t)siphash24(t->k0, t->k1, key, t->key_len) & t->mask;
}

static void alloc_slots(struct htab *t, size_t nslots)
{
    t->slots = xcalloc(nslots, t->slot_size);
    t->mask = nslots - 1;
}

void htab_init(struct htab *t, size_t key_len, size_t expected)
{
    memset(t, 0, sizeof(*t));
    t->key_len = key_len ? key_len : 1;
    t->slot_size = (SLOT_KEY + t->key_len + 7) & ~(size_t)7;
    size_t n = 16;
    while (n < 2 * expected)
        n *= 2;
    alloc_slots(t, n);
    t->gen = 1;
    uint64_t k[2];
    siphash_key(k);
    t->k0 = k[0];
    t->k1 = k[1];
}

void htab_release(struct htab *t)
{
    if (!t)
        return;
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* The slot holding key, or the empty slot where it would go. */
static size_t probe(const struct htab *t, const void *key)
{
    size_t i = home(t, key);
    for (;;) {
        const unsigned char *s = slot_at(t, i);
        if (slot_gen(s) != t->gen || memcmp(s + SLOT_KEY, key, t->key_len) == 0)
            return i;
        i = (i + 1) & t->mask;
    }
}

size_t *htab_find(const struct htab *t, const void *key)
{
    unsigned char *s = slot_at(t, probe(t, key));
    return slot_gen(s) == t->gen ? slot_value(s) : NULL;
}

static void grow(struct htab *t)
{
    unsigned char *old = t->slots;
    size_t oldn = t->mask + 1;
    alloc_slots(t, 2 * oldn);
    for (size_t i = 0; i < oldn; i++) {
        unsigned char *s = old + i * t->slot_size;
        if (slot_gen(s) == t->gen)
            memcpy(slot_at(t, probe(t, s + SLOT_KEY)), s, t->slot_size);
    }
    free(old);
}

size_t *htab_put(struct htab *t, const void *key, bool *added)
{
    if (2 * (t->count + 1) > t->mask + 1)
        grow(t);
    unsigned char *s = slot_at(t, probe(t, key));
    bool fresh = slot_gen(s) != t->gen;
    if (fresh) {
        slot_set_gen(s, t->gen);
        memcpy(s + SLOT_KEY, key, t->key_len);
        *slot_value(s) = 0;
        t->count++;
    }
    if (added)
        *added = fresh;
    return slot_value(s);
}

bool htab_del(struct htab *t, const void *key)
{
    size_t i = probe(t, key);
    if (slot_gen(slot_at(t, i)) != t->gen)
        return false;
    /* Backward shift: move later members of the run into the hole when
     * their home is not between the hole and themselves (cyclically). */
    for (size_t j = (i + 1) & t->mask;; j = (j + 1) & t->mask) {
        unsigned char *s = slot_at(t, j);
        if (slot_gen(s) != t->gen)
            break;
        size_t h = home(t, s + SLOT_KEY);
        if (((j - h) & t->mask) >= ((j - i) & t->mask)) {
            memcpy(slot_at(t, i), s, t->slot_size);
            i = j;
        }
    }
    slot_set_gen(slot_at(t, i), 0);
    t->count--;
    return true;
}

void htab_clear(struct htab *t)
{
    t->count = 0;
    if (++t->gen == 0) { /* wrapped: old stamps could match again */
        memset(t->slots, 0, (t->mask + 1) * t->slot_size);
        t->gen = 1;
    }
}
