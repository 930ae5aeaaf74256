/* The batch of aggregator/batch.h: decoded envelopes plus, per Kafka
 * partition, the offset range they cover, and the rules on batches. */
#include "aggregator/batch.h"

#include <stdlib.h>
#include <string.h>

#include "common/hashchain.h"
#include "common/htab.h"
#include "common/xmalloc.h"

void batch_init(struct batch *b, const char *topic)
{
    memset(b, 0, sizeof(*b));
    b->topic = xstrdup(topic ? topic : "");
}

void batch_add(struct batch *b, struct envelope *env, int32_t partition, int64_t offset)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 256;
        b->rows = xrealloc(b->rows, b->cap * sizeof(*b->rows));
    }
    struct batch_row *r = &b->rows[b->n++];
    r->env = *env;
    r->kafka_partition = partition;
    r->kafka_offset = offset;
    b->bytes += env->line_len;
    memset(env, 0, sizeof(*env));
}

struct batch_offset *batch_offset_find(struct batch *b, int32_t partition)
{
    /* A batch spans a handful of partitions: a linear scan beats a map. */
    for (size_t i = 0; i < b->noffsets; i++)
        if (b->offsets[i].partition == partition)
            return &b->offsets[i];
    return NULL;
}

void batch_advance(struct batch *b, int32_t partition, int64_t expected_offset, int64_t next_offset)
{
    struct batch_offset *o = batch_offset_find(b, partition);
    if (!o) {
        if (b->noffsets == b->offcap) {
            b->offcap = b->offcap ? b->offcap * 2 : 8;
            b->offsets = xrealloc(b->offsets, b->offcap * sizeof(*b->offsets));
        }
        o = &b->offsets[b->noffsets++];
        o->partition = partition;
        o->expected_offset = expected_offset; /* kept after the first call */
        o->next_offset = next_offset;
        return;
    }
    if (next_offset > o->next_offset)
        o->next_offset = next_offset;
}

void batch_clear(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        envelope_release(&b->rows[i].env);
    b->n = 0;
    b->noffsets = 0;
    b->bytes = 0;
}

void batch_release(struct batch *b)
{
    if (!b)
        return;
    batch_clear(b);
    free(b->rows);
    free(b->offsets);
    free(b->topic);
    memset(b, 0, sizeof(*b));
}

size_t batch_remove(struct batch *b, const uint8_t *drop)
{
    size_t w = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (drop[i]) {
            b->bytes -= b->rows[i].env.line_len;
            envelope_release(&b->rows[i].env);
            continue;
        }
        if (w != i)
            b->rows[w] = b->rows[i];
        w++;
    }
    size_t removed = b->n - w;
    /* Slots past w were moved or released: zero them so nothing frees twice. */
    if (removed)
        memset(&b->rows[w], 0, removed * sizeof(*b->rows));
    b->n = w;
    return removed;
}

void batch_split(struct batch *b, size_t k, struct batch *lo, struct batch *hi)
{
    batch_init(lo, b->topic);
    batch_init(hi, b->topic);
    for (size_t i = 0; i < b->n; i++) {
        struct batch_row *r = &b->rows[i];
        int32_t p = r->kafka_partition;
        int64_t off = r->kafka_offset;
        if (i < k) {
            const struct batch_offset *o = batch_offset_find(b, p);
            batch_add(lo, &r->env, p, off);
            batch_advance(lo, p, o ? o->expected_offset : -1, off + 1);
        } else {
            batch_add(hi, &r->env, p, off);
        }
    }
    for (size_t i = 0; i < b->noffsets; i++) {
        const struct batch_offset *o = &b->offsets[i];
        const struct batch_offset *lo_o = batch_offset_find(lo, o->partition);
        batch_advance(hi, o->partition, lo_o ? lo_o->next_offset : o->expected_offset,
                      o->next_offset);
    }
}

void batch_unsplit(struct batch *b, struct batch *lo, struct batch *hi)
{
    for (size_t i = 0; i < lo->n; i++) {
        b->rows[i].env = lo->rows[i].env;
        memset(&lo->rows[i].env, 0, sizeof(lo->rows[i].env));
    }
    for (size_t i = 0; i < hi->n; i++) {
        b->rows[lo->n + i].env = hi->rows[i].env;
        memset(&hi->rows[i].env, 0, sizeof(hi->rows[i].env));
    }
    batch_release(lo);
    batch_release(hi);
}

static size_t uf_root(size_t *parent, size_t i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

/* The index of partition p in b->offsets, or b->noffsets. */
static size_t offset_index(const struct batch *b, int32_t p)
{
    size_t i = 0;
    while (i < b->noffsets && b->offsets[i].partition != p)
        i++;
    return i;
}

size_t batch_split_parts(struct batch *b, size_t max, struct batch *subs)
{
    size_t np = b->noffsets;
    if (max <= 1 || np <= 1)
        return 1;
    /* Partitions linked by a stream they share in b form one group. */
    size_t *parent = xmalloc(np * sizeof(*parent));
    size_t *row_of = xmalloc((b->n ? b->n : 1) * sizeof(*row_of));
    for (size_t i = 0; i < np; i++)
        parent[i] = i;
    struct htab streams;
    htab_init(&streams, CHAIN_STREAM_HEX_LEN, 64);
    size_t k = 1;
    for (size_t i = 0; i < b->n; i++) {
        size_t pi = offset_index(b, b->rows[i].kafka_partition);
        row_of[i] = pi;
        if (pi == np)
            goto one; /* a row outside the offsets (never built so): no cut */
        bool added;
        size_t *first = htab_put(&streams, b->rows[i].env.stream, &added);
        if (added)
            *first = pi;
        else
            parent[uf_root(parent, pi)] = uf_root(parent, *first);
    }
    /* Rows per group, then the largest groups first onto the lightest sub
     * (offset-only partitions weigh one row). */
    size_t *weight = xcalloc(np, sizeof(*weight)), *order = xmalloc(np * sizeof(*order));
    size_t *sub_of = xmalloc(np * sizeof(*sub_of)), ngroups = 0;
    for (size_t i = 0; i < b->n; i++)
        weight[uf_root(parent, row_of[i])]++;
    for (size_t i = 0; i < np; i++)
        if (uf_root(parent, i) == i) {
            weight[i]++;
            order[ngroups++] = i;
        }
    for (size_t i = 1; i < ngroups; i++) /* insertion sort: a few dozen groups */
        for (size_t j = i; j > 0 && weight[order[j]] > weight[order[j - 1]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    k = ngroups < max ? ngroups : max;
    if (k > 1) {
        size_t load[k];
        memset(load, 0, sizeof(load));
        for (size_t g = 0; g < ngroups; g++) {
            size_t best = 0;
            for (size_t s = 1; s < k; s++)
                if (load[s] < load[best])
                    best = s;
            sub_of[order[g]] = best;
            load[best] += weight[order[g]];
        }
        for (size_t s = 0; s < k; s++)
            batch_init(&subs[s], b->topic);
        for (size_t i = 0; i < np; i++) {
            const struct batch_offset *o = &b->offsets[i];
            batch_advance(&subs[sub_of[uf_root(parent, i)]], o->partition, o->expected_offset,
                          o->next_offset);
        }
        for (size_t i = 0; i < b->n; i++) {
            struct batch_row *r = &b->rows[i];
            batch_add(&subs[sub_of[uf_root(parent, row_of[i])]], &r->env, r->kafka_partition,
                      r->kafka_offset);
        }
    }
    free(weight);
    free(order);
    free(sub_of);
one:
    htab_release(&streams);
    free(row_of);
    free(parent);
    return k > 1 ? k : 1;
}

void batch_merge(struct batch *dst, struct batch *src)
{
    for (size_t i = 0; i < src->n; i++) {
        struct batch_row *r = &src->rows[i];
        batch_add(dst, &r->env, r->kafka_partition, r->kafka_offset);
    }
    for (size_t i = 0; i < src->noffsets; i++) {
        const struct batch_offset *o = &src->offsets[i];
        if (!batch_offset_find(dst, o->partition))
            batch_advance(dst, o->partition, o->expected_offset, o->next_offset);
    }
    batch_release(src);
}

bool batch_due(const struct aggr_batch_conf *bc, size_t msgs, size_t bytes, uint64_t start_ms,
               uint64_t now_ms)
{
    if (msgs == 0 && bytes == 0)
        return false;
    return msgs >= (size_t)bc->max_events || bytes >= (size_t)bc->max_bytes ||
           now_ms >= start_ms + (uint64_t)bc->max_ms;
}
