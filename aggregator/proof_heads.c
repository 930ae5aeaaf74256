/* Signed heads for verify --against (aggregator/proof_heads.h). */
#include "aggregator/proof_heads.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/proof_format.h"
#include "aggregator/replay_source.h"
#include "common/htab.h"
#include "common/xmalloc.h"

#define SLOT_LATEST 0
#define SLOT_RECENT 1
#define SLOT_ANCHOR 2
#define IDLE_MS     10000
#define BAD_KEPT    100 /* bad signatures reported one by one (all are counted) */

struct entry {
    char id[CHAIN_STREAM_HEX_LEN + 1];
    bool set[3];
    struct proof_head h[3];
    struct verify_stream_heads view;
};

struct proof_heads {
    const struct proof_key *const *pubs;
    size_t npubs;
    int64_t horizon_us;
    struct htab byid; /* 16-byte stream id -> entry index */
    struct entry *e;
    size_t n, cap;
    const char **ids; /* streams with a valid head, sorted, after finish */
    size_t n_ids;
    struct proof_heads_stats st;
    struct verify_heads view;
    struct proof_head bad[BAD_KEPT];
    size_t nbad;
};

static const struct verify_stream_heads *lookup(const void *ud, const char *stream)
{
    const struct proof_heads *h = ud;
    uint8_t key[16];
    if (strlen(stream) != CHAIN_STREAM_HEX_LEN || hex_decode(stream, 16, key) != 0)
        return NULL;
    size_t *v = htab_find(&h->byid, key);
    return v ? &h->e[*v].view : NULL;
}

static size_t streams(const void *ud, const char *const **ids)
{
    const struct proof_heads *h = ud;
    *ids = h->ids;
    return h->n_ids;
}

/* Signed by one of the keys. */
static bool signed_by_any(const struct proof_heads *h, const uint8_t *msg, size_t len,
                          const uint8_t *sig)
{
    for (size_t i = 0; i < h->npubs; i++)
        if (proof_key_verify(h->pubs[i], msg, len, sig))
            return true;
    return false;
}

struct proof_heads *proof_heads_new(const struct proof_key *const *pubs, size_t npubs,
                                    int64_t horizon_us)
{
    struct proof_heads *h = xcalloc(1, sizeof(*h));
    h->pubs = pubs;
    h->npubs = npubs;
    h->horizon_us = horizon_us;
    htab_init(&h->byid, 16, 0);
    h->view = (struct verify_heads){.lookup = lookup, .streams = streams, .ud = h};
    return h;
}

void proof_heads_free(struct proof_heads *h)
{
    if (!h)
        return;
    htab_release(&h->byid);
    free(h->e);
    free(h->ids);
    free(h);
}

/* Is a better than the slot's current head b? */
static bool better(int slot, const struct proof_head *a, const struct proof_head *b)
{
    if (slot == SLOT_RECENT) /* the earliest */
        return a->seq < b->seq || (a->seq == b->seq && a->round > b->round);
    return a->seq > b->seq || (a->seq == b->seq && a->round > b->round);
}

static void keep(struct proof_heads *h, const struct proof_head *x)
{
    uint8_t key[16];
    if (hex_decode(x->stream, 16, key) != 0)
        return;
    bool added = false;
    size_t *v = htab_put(&h->byid, key, &added);
    if (added) {
        if (h->n == h->cap) {
            h->cap = h->cap ? 2 * h->cap : 64;
            h->e = xrealloc(h->e, h->cap * sizeof(*h->e));
        }
        memset(&h->e[h->n], 0, sizeof(h->e[h->n]));
        memcpy(h->e[h->n].id, x->stream, sizeof(h->e[h->n].id));
        *v = h->n++;
    }
    struct entry *e = &h->e[*v];
    int slots[2] = {SLOT_LATEST, x->event_time_us < h->horizon_us ? SLOT_ANCHOR : SLOT_RECENT};
    int checked = 0; /* 1 valid, -1 not: verified once, when it would be kept */
    for (int i = 0; i < 2; i++) {
        int s = slots[i];
        if (e->set[s] && !better(s, x, &e->h[s]))
            continue;
        if (!checked) {
            uint8_t msg[PROOF_HEAD_MSG_LEN];
            proof_head_message(x, msg);
            checked = signed_by_any(h, msg, sizeof(msg), x->sig) ? 1 : -1;
            if (checked < 0) {
                h->st.bad_signatures++;
                if (h->nbad < BAD_KEPT)
                    h->bad[h->nbad++] = *x;
            }
        }
        if (checked > 0) {
            e->h[s] = *x;
            e->set[s] = true;
        }
    }
}

void proof_heads_add(struct proof_heads *h, const char *line, size_t len)
{
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len == 0)
        return;
    h->st.lines++;
    struct proof_head x;
    struct proof_round r;
    char err[128];
    switch (proof_json_parse(line, len, &x, &r, err, sizeof(err))) {
    case PROOF_HEAD:
        h->st.heads++;
        keep(h, &x);
        break;
    case PROOF_ROUND: {
        h->st.rounds++;
        uint8_t msg[PROOF_ROUND_MSG_LEN];
        proof_round_message(&r, msg);
        if (!signed_by_any(h, msg, sizeof(msg), r.sig))
            h->st.bad_signatures++;
        else if (r.round > h->st.last_round) {
            h->st.last_round = r.round;
            h->st.last_tree_size = r.tree_size;
        }
        break;
    }
    case PROOF_BAD:
        h->st.bad_lines++;
        break;
    }
}

int proof_heads_load_file(struct proof_heads *h, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0)
        proof_heads_add(h, line, (size_t)n);
    int rc = ferror(f) ? -1 : 0;
    if (rc)
        snprintf(err, errlen, "%s: read error", path);
    free(line);
    fclose(f);
    return rc;
}

int proof_heads_load_kafka(struct proof_heads *h, const struct kafka_conf *k, const char *topic,
                           char *err, size_t errlen)
{
    struct kafka_conf kc = *k; /* shallow: only the topic differs */
    kc.topic = (char *)topic;
    struct replay_source *src = replay_source_new(&kc, err, errlen);
    if (!src)
        return -1;
    int32_t *parts = NULL;
    size_t np = 0;
    int rc = replay_source_partitions(src, &parts, &np, err, errlen);
    for (size_t i = 0; rc == 0 && i < np; i++) {
        int64_t lo, hi;
        if ((rc = replay_source_watermarks(src, parts[i], &lo, &hi, err, errlen)) != 0 || lo >= hi)
            continue;
        if ((rc = replay_source_start(src, parts[i], lo, err, errlen)) != 0)
            break;
        for (int64_t at = lo; at < hi;) {
            rd_kafka_message_t *m = replay_source_poll(src, IDLE_MS);
            if (!m) {
                snprintf(err, errlen, "%s[%d]: nothing read after offset %" PRId64, topic,
                         (int)parts[i], at);
                rc = -1;
                break;
            }
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                at = hi;
            } else if (!m->err) {
                if (m->offset < hi && m->payload)
                    proof_heads_add(h, m->payload, m->len);
                at = m->offset + 1;
            }
            rd_kafka_message_destroy(m);
        }
    }
    free(parts);
    replay_source_free(src);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void to_view(const struct proof_head *x, struct verify_head *v)
{
    v->set = true;
    v->seq = x->seq;
    memcpy(v->hash, x->hash, CHAIN_HASH_LEN);
    v->event_time_us = x->event_time_us;
}

void proof_heads_finish(struct proof_heads *h, verify_emit_fn emit, void *ud)
{
    for (size_t i = 0; emit && i < h->nbad; i++) {
        struct verify_finding f = {.kind = VERIFY_BAD_SIGNATURE,
                                   .stream = h->bad[i].stream,
                                   .seq = h->bad[i].seq,
                                   .seq_end = h->bad[i].seq,
                                   .event_time_us = h->bad[i].event_time_us,
                                   .detail = "a signed head whose signature does not verify with "
                                             "the public keys (ignored)"};
        hex_encode(h->bad[i].hash, CHAIN_HASH_LEN, f.computed);
        emit(ud, &f);
    }
    h->ids = xcalloc(h->n ? h->n : 1, sizeof(*h->ids));
    size_t k = 0;
    for (size_t i = 0; i < h->n; i++) {
        struct entry *e = &h->e[i];
        struct verify_head *slots[3] = {&e->view.latest, &e->view.first_recent,
                                        &e->view.cut_anchor};
        for (int s = 0; s < 3; s++)
            if (e->set[s])
                to_view(&e->h[s], slots[s]);
        if (e->set[SLOT_LATEST])
            h->ids[k++] = e->id;
    }
    h->st.streams = k;
    h->n_ids = k;
    qsort(h->ids, k, sizeof(*h->ids), cmp_str);
}

const struct verify_heads *proof_heads_view(const struct proof_heads *h)
{
    return &h->view;
}

const struct proof_heads_stats *proof_heads_stats(const struct proof_heads *h)
{
    return &h->st;
}
