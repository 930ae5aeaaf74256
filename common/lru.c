/* O(1) LRU map: an open-addressing hash table (linear probing, backward-shift
 * deletion, SipHash-2-4 with a per-instance random key) over a doubly linked
 * recency list. One allocation per entry holds the key bytes. */
#include "common/lru.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/siphash.h"
#include "common/xmalloc.h"

struct lru_entry {
    struct lru_entry *prev, *next; /* prev = more recently used */
    uint64_t hash;
    uint64_t expires_ms; /* UINT64_MAX = never */
    size_t bytes;        /* what the entry counts against max_bytes */
    void *value;
    size_t klen;
    unsigned char key[];
};

struct lru_slot {
    uint64_t hash; /* cached so probes rarely touch the entry */
    struct lru_entry *e;
};

struct lru {
    size_t capacity, size;
    size_t max_bytes, bytes; /* max_bytes 0 = no byte bound */
    uint64_t ttl_ms, evictions;
    lru_free_fn free_value;
    struct lru_entry *head, *tail; /* head = most recently used */
    struct lru_slot *slots;
    size_t mask;     /* nslots - 1; nslots is a power of two */
    uint64_t k0, k1; /* SipHash key */
};

/* ---- recency list */
static void list_unlink(struct lru *l, struct lru_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_front(struct lru *l, struct lru_entry *e)
{
    e->prev = NULL;
    e->next = l->head;
    if (l->head)
        l->head->prev = e;
    l->head = e;
    if (!l->tail)
        l->tail = e;
}

/* ---- table */
static size_t find_slot(const struct lru *l, const void *key, size_t klen, uint64_t h)
{
    size_t i = (size_t)h & l->mask;
    for (;;) {
        const struct lru_slot *s = &l->slots[i];
        if (!s->e)
            return SIZE_MAX;
        if (s->hash == h && s->e->klen == klen && memcmp(s->e->key, key, klen) == 0)
            return i;
        i = (i + 1) & l->mask;
    }
}

static void insert_slot(struct lru_slot *slots, size_t mask, uint64_t h, struct lru_entry *e)
{
    size_t i = (size_t)h & mask;
    while (slots[i].e)
        i = (i + 1) & mask;
    slots[i].hash = h;
    slots[i].e = e;
}

/* Backward-shift deletion keeps probe chains intact without tombstones, so
 * lookups never slow down as entries come and go. */
static void delete_slot(struct lru *l, size_t i)
{
    size_t j = i;
    for (;;) {
        j = (j + 1) & l->mask;
        if (!l->slots[j].e)
            break;
        size_t home = (size_t)l->slots[j].hash & l->mask;
        /* Move j into the hole at i unless its home lies cyclically in (i, j]. */
        bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        l->slots[i] = l->slots[j];
        i = j;
    }
    l->slots[i].e = NULL;
    l->slots[i].hash = 0;
}

static void grow(struct lru *l)
{
    size_t n = (l->mask + 1) * 2;
    struct lru_slot *slots = xcalloc(n, sizeof(*slots));
    for (size_t i = 0; i <= l->mask; i++)
        if (l->slots[i].e)
            insert_slot(slots, n - 1, l->slots[i].hash, l->slots[i].e);
    free(l->slots);
    l->slots = slots;
    l->mask = n - 1;
}

struct lru *lru_new(size_t capacity, uint64_t ttl_ms, lru_free_fn free_value)
{
    assert(capacity >= 1);
    struct lru *l = xcalloc(1, sizeof(*l));
    l->capacity = capacity ? capacity : 1;
    l->ttl_ms = ttl_ms;
    l->free_value = free_value;
    /* Start small and grow: a 1M-entry window should not cost its full
     * table before it holds anything. */
    l->mask = 15;
    l->slots = xcalloc(l->mask + 1, sizeof(*l->slots));
    uint64_t k[2];
    siphash_key(k);
    l->k0 = k[0];
    l->k1 = k[1];
    return l;
}

static void entry_free(struct lru *l, struct lru_entry *e)
{
    if (l->free_value && e->value)
        l->free_value(e->value);
    free(e);
}

void lru_free(struct lru *l)
{
    if (!l)
        return;
    struct lru_entry *e = l->head;
    while (e) {
        struct lru_entry *next = e->next;
        entry_free(l, e);
        e = next;
    }
    free(l->slots);
    free(l);
}

/* expires_ms UINT64_MAX = no TTL (or one past the end of the clock). */
static bool expired(const struct lru_entry *e, uint64_t now_ms)
{
    return e->expires_ms != UINT64_MAX && now_ms >= e->expires_ms;
}

/* Unlink the entry in slot i from table and list, and free it. */
static void drop(struct lru *l, size_t i)
{
    struct lru_entry *e = l->slots[i].e;
    delete_slot(l, i);
    list_unlink(l, e);
    l->size--;
    l->bytes -= e->bytes;
    entry_free(l, e);
}

/* The live entry for key (now most recently used), or NULL; an expired one
 * is removed on the way. */
static struct lru_entry *lookup(struct lru *l, const void *key, size_t klen, uint64_t now_ms)
{
    uint64_t h = siphash24(l->k0, l->k1, key, klen);
    size_t i = find_slot(l, key, klen, h);
    if (i == SIZE_MAX)
        return NULL;
    struct lru_entry *e = l->slots[i].e;
    if (expired(e, now_ms)) {
        drop(l, i);
        return NULL;
    }
    if (l->head != e) {
        list_unlink(l, e);
        list_push_front(l, e);
    }
    return e;
}

void *lru_get(struct lru *l, const void *key, size_t klen, uint64_t now_ms)
{
    struct lru_entry *e = lookup(l, key, klen, now_ms);
    return e ? e->value : NULL;
}

bool lru_contains(struct lru *l, const void *key, size_t klen, uint64_t now_ms)
{
    return lookup(l, key, klen, now_ms) != NULL;
}

static uint64_t expiry(uint64_t ttl_ms, uint64_t now_ms)
{
    if (ttl_ms == 0 || now_ms > UINT64_MAX - ttl_ms)
        return UINT64_MAX;
    return now_ms + ttl_ms;
}

/* Drop the least recently used entry (counted as an eviction unless its
 * TTL had run out anyway). */
static void evict_tail(struct lru *l, uint64_t now_ms)
{
    struct lru_entry *victim = l->tail;
    if (!expired(victim, now_ms))
        l->evictions++;
    size_t vi = find_slot(l, victim->key, victim->klen, victim->hash);
    assert(vi != SIZE_MAX);
    drop(l, vi);
}

/* Evict from the tail until one more entry of `bytes` fits. */
static void make_room(struct lru *l, size_t bytes, uint64_t now_ms)
{
    while (l->size > 0 &&
           (l->size >= l->capacity || (l->max_bytes && l->bytes + bytes > l->max_bytes)))
        evict_tail(l, now_ms);
}

void lru_put_sized(struct lru *l, const void *key, size_t klen, void *value, size_t bytes,
                   uint64_t ttl_ms, uint64_t now_ms)
{
    uint64_t h = siphash24(l->k0, l->k1, key, klen);
    size_t i = find_slot(l, key, klen, h);
    if (i != SIZE_MAX) /* replaced: as if removed, then inserted */
        drop(l, i);
    if (l->max_bytes && bytes > l->max_bytes) {
        /* Larger than the whole bound: never stored. */
        if (l->free_value && value)
            l->free_value(value);
        return;
    }
    make_room(l, bytes, now_ms);
    /* Keep the load factor at most 1/2: short probe chains at ~1M entries. */
    if ((l->size + 1) * 2 > l->mask + 1)
        grow(l);
    struct lru_entry *e = xmalloc(sizeof(*e) + klen);
    memcpy(e->key, key, klen);
    e->klen = klen;
    e->hash = h;
    e->value = value;
    e->bytes = bytes;
    e->expires_ms = expiry(ttl_ms, now_ms);
    insert_slot(l->slots, l->mask, h, e);
    list_push_front(l, e);
    l->size++;
    l->bytes += bytes;
}

void lru_put(struct lru *l, const void *key, size_t klen, void *value, uint64_t now_ms)
{
    uint64_t h = siphash24(l->k0, l->k1, key, klen);
    size_t i = find_slot(l, key, klen, h);
    if (i != SIZE_MAX) {
        struct lru_entry *e = l->slots[i].e;
        if (l->free_value && e->value && e->value != value)
            l->free_value(e->value);
        e->value = value;
        e->expires_ms = expiry(l->ttl_ms, now_ms);
        if (l->head != e) {
            list_unlink(l, e);
            list_push_front(l, e);
        }
        return;
    }
    lru_put_sized(l, key, klen, value, 0, l->ttl_ms, now_ms);
}

bool lru_remove(struct lru *l, const void *key, size_t klen)
{
    uint64_t h = siphash24(l->k0, l->k1, key, klen);
    size_t i = find_slot(l, key, klen, h);
    if (i == SIZE_MAX)
        return false;
    drop(l, i);
    return true;
}

size_t lru_size(const struct lru *l)
{
    return l->size;
}

uint64_t lru_evictions(const struct lru *l)
{
    return l->evictions;
}

void lru_set_max_bytes(struct lru *l, size_t max_bytes)
{
    l->max_bytes = max_bytes;
}

size_t lru_bytes(const struct lru *l)
{
    return l->bytes;
}
