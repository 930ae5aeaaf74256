/* The batch container of aggregator/batch.h: decoded envelopes plus, per
 * Kafka partition, the offset range they cover. Owned by the consumer thread. */
#include "aggregator/batch.h"

#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
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
    if (b->n == 0)
        b->first_ms = time_mono_ms();
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
        if (b->n == 0 && b->noffsets == 1)
            b->first_ms = time_mono_ms();
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
    b->first_ms = 0;
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
