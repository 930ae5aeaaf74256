/* The integrity classification of aggregator/chain_check.h. Rows are
 * visited sorted by (stream, seq, batch order), one group per (stream, seq);
 * stored hashes are kept sorted by (stream, seq) and found by binary search.
 * Within a group the first row with a new hash is stored, later equal ones
 * are re-sends, later different ones forks; a row's prev must be one of the
 * known hashes of seq - 1: genesis for seq 0, else the stored rows of seq - 1,
 * the stream's last_hash, and the hashes of the batch's own seq - 1 group. */
#include "aggregator/chain_check.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/htab.h"
#include "common/xmalloc.h"

typedef uint8_t hash_t[CHAIN_HASH_LEN];

struct stored_hash {
    size_t stream;
    int64_t seq;
    hash_t hash;
};

struct chain_check {
    const struct batch *b;
    struct chain_stream *st;
    size_t nst;
    struct htab index; /* stream id -> index in st */
    size_t *row_st;    /* row -> stream index */
    size_t *order;     /* rows sorted by (stream, seq, row) */
    struct stored_hash *sh;
    size_t nsh, shcap;
    bool sh_sorted;
    struct chain_lookup *lookups;
    size_t nlookups;
    uint8_t *status; /* enum chain_row per row */
    struct chain_incident *inc;
    size_t ninc, inccap;
    struct chain_stats stats;
};

static int cmp_order(const void *a, const void *b, void *ud)
{
    const struct chain_check *cc = ud;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (cc->row_st[x] != cc->row_st[y])
        return cc->row_st[x] < cc->row_st[y] ? -1 : 1;
    uint64_t sx = cc->b->rows[x].env.seq, sy = cc->b->rows[y].env.seq;
    if (sx != sy)
        return sx < sy ? -1 : 1;
    return (x > y) - (x < y);
}

struct chain_check *chain_check_new(const struct batch *b)
{
    struct chain_check *cc = xcalloc(1, sizeof(*cc));
    size_t n = b->n ? b->n : 1;
    cc->b = b;
    cc->st = xcalloc(n, sizeof(*cc->st));
    cc->row_st = xmalloc(n * sizeof(*cc->row_st));
    cc->order = xmalloc(n * sizeof(*cc->order));
    cc->status = xcalloc(n, 1);
    htab_init(&cc->index, CHAIN_STREAM_HEX_LEN, b->n);
    for (size_t i = 0; i < b->n; i++) {
        const char *id = b->rows[i].env.stream;
        bool added;
        size_t *k = htab_put(&cc->index, id, &added);
        if (added) {
            struct chain_stream *s = &cc->st[cc->nst];
            s->id = id;
            s->last_seq = -1;
            s->new_seq = -1;
            *k = cc->nst++;
        }
        cc->row_st[i] = *k;
        cc->order[i] = i;
    }
    qsort_r(cc->order, b->n, sizeof(*cc->order), cmp_order, cc);
    return cc;
}

void chain_check_free(struct chain_check *cc)
{
    if (!cc)
        return;
    htab_release(&cc->index);
    free(cc->st);
    free(cc->row_st);
    free(cc->order);
    free(cc->sh);
    free(cc->lookups);
    free(cc->status);
    for (size_t i = 0; i < cc->ninc; i++)
        free(cc->inc[i].evidence);
    free(cc->inc);
    free(cc);
}

size_t chain_check_nstreams(const struct chain_check *cc)
{
    return cc->nst;
}

struct chain_stream *chain_check_stream(struct chain_check *cc, size_t i)
{
    return &cc->st[i];
}

ssize_t chain_check_find(const struct chain_check *cc, const char *stream_id)
{
    if (strlen(stream_id) != CHAIN_STREAM_HEX_LEN)
        return -1;
    const size_t *k = htab_find(&cc->index, stream_id);
    return k ? (ssize_t)*k : -1;
}

void chain_check_set_state(struct chain_check *cc, size_t stream, int64_t last_seq,
                           const uint8_t *last_hash)
{
    struct chain_stream *s = &cc->st[stream];
    s->exists = true;
    s->last_seq = s->new_seq = last_seq;
    if (last_hash)
        memcpy(s->last_hash, last_hash, CHAIN_HASH_LEN);
    memcpy(s->new_hash, s->last_hash, CHAIN_HASH_LEN);
}

/* ---- stored hashes ---- */

static int cmp_sh(const void *a, const void *b)
{
    const struct stored_hash *x = a, *y = b;
    if (x->stream != y->stream)
        return x->stream < y->stream ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

void chain_check_add_stored(struct chain_check *cc, size_t stream, int64_t seq,
                            const uint8_t hash[CHAIN_HASH_LEN])
{
    if (cc->nsh == cc->shcap) {
        cc->shcap = cc->shcap ? cc->shcap * 2 : 64;
        cc->sh = xrealloc(cc->sh, cc->shcap * sizeof(*cc->sh));
    }
    struct stored_hash *x = &cc->sh[cc->nsh++];
    x->stream = stream;
    x->seq = seq;
    memcpy(x->hash, hash, CHAIN_HASH_LEN);
    cc->sh_sorted = false;
}

/* Range [*lo, *hi) of the stored hashes of (stream, seq). */
static void sh_range(struct chain_check *cc, size_t stream, int64_t seq, size_t *lo, size_t *hi)
{
    if (!cc->sh_sorted) {
        if (cc->nsh > 1)
            qsort(cc->sh, cc->nsh, sizeof(*cc->sh), cmp_sh);
        cc->sh_sorted = true;
    }
    struct stored_hash key = {.stream = stream, .seq = seq};
    size_t l = 0, h = cc->nsh;
    while (l < h) {
        size_t m = l + (h - l) / 2;
        if (cmp_sh(&cc->sh[m], &key) < 0)
            l = m + 1;
        else
            h = m;
    }
    *lo = l;
    while (l < cc->nsh && cmp_sh(&cc->sh[l], &key) == 0)
        l++;
    *hi = l;
}

static bool hash_in(const uint8_t *h, const hash_t *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(h, set[i], CHAIN_HASH_LEN) == 0)
            return true;
    return false;
}

/* ---- lookups ---- */

/* End of the (stream, seq) group starting at gi in the sorted rows. */
static size_t group_end(const struct chain_check *cc, size_t gi)
{
    size_t r0 = cc->order[gi], ge = gi;
    while (ge < cc->b->n && cc->row_st[cc->order[ge]] == cc->row_st[r0] &&
           cc->b->rows[cc->order[ge]].env.seq == cc->b->rows[r0].env.seq)
        ge++;
    return ge;
}

size_t chain_check_lookups(struct chain_check *cc, const struct chain_lookup **out)
{
    size_t cap = 0;
    cc->nlookups = 0;
    for (size_t gi = 0, ge; gi < cc->b->n; gi = ge) {
        ge = group_end(cc, gi);
        size_t r = cc->order[gi];
        size_t sidx = cc->row_st[r];
        const struct chain_stream *s = &cc->st[sidx];
        int64_t seq = (int64_t)cc->b->rows[r].env.seq;
        for (int pred = 0; pred < 2; pred++) {
            bool need = pred ? seq > 0 && seq - 1 < s->last_seq : seq <= s->last_seq;
            if (!need)
                continue;
            if (cc->nlookups == cap) {
                cap = cap ? cap * 2 : 16;
                cc->lookups = xrealloc(cc->lookups, cap * sizeof(*cc->lookups));
            }
            cc->lookups[cc->nlookups++] =
                (struct chain_lookup){sidx, pred ? seq - 1 : seq, r, pred, gi, ge};
        }
    }
    *out = cc->lookups;
    return cc->nlookups;
}

bool chain_check_resolved(struct chain_check *cc, const struct chain_lookup *l)
{
    size_t lo, hi;
    sh_range(cc, l->stream, l->seq, &lo, &hi);
    if (lo == hi)
        return false;
    for (size_t k = l->gi; k < l->ge; k++) {
        const struct envelope *e = &cc->b->rows[cc->order[k]].env;
        const uint8_t *want = l->pred ? e->prev : e->hash;
        bool found = false;
        for (size_t j = lo; j < hi && !found; j++)
            found = memcmp(cc->sh[j].hash, want, CHAIN_HASH_LEN) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* ---- classification ---- */

static void add_incident(struct chain_check *cc, const char *kind, size_t row, const char *expected,
                         const char *actual, const char *extra)
{
    if (cc->ninc == cc->inccap) {
        cc->inccap = cc->inccap ? cc->inccap * 2 : 8;
        cc->inc = xrealloc(cc->inc, cc->inccap * sizeof(*cc->inc));
    }
    const struct batch_row *r = &cc->b->rows[row];
    struct chain_incident *in = &cc->inc[cc->ninc++];
    in->kind = kind;
    in->stream = cc->row_st[row];
    in->seq = (int64_t)r->env.seq;
    snprintf(in->expected, sizeof(in->expected), "%s", expected);
    snprintf(in->actual, sizeof(in->actual), "%s", actual);
    /* Only hex, numbers and our own words go in: no escaping needed except
     * the topic, which json_dumps handles. */
    json_t *ev = json_pack("{s:s, s:s, s:i, s:I}", "id", r->env.id, "topic",
                           cc->b->topic ? cc->b->topic : "", "kafka_partition",
                           (int)r->kafka_partition, "kafka_offset", (json_int_t)r->kafka_offset);
    if (extra) {
        json_t *x = json_loads(extra, 0, NULL);
        if (x)
            json_object_update(ev, x);
        json_decref(x);
    }
    in->evidence = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(ev);
}

/* State carried from one (stream, seq) group to the next. */
struct walk {
    hash_t *prev_set, *cur_set, *kept, *known; /* scratch, n + 1 (known: nsh + n + 1) */
    size_t nprev;                              /* distinct hashes of the previous group */
    size_t prev_sidx;                          /* its stream (SIZE_MAX: none yet) */
    int64_t prev_seq;                          /* its seq */
    int64_t expect_next;                       /* the stream's next seq without a gap */
};

/* Chain check of stored row r (stream sidx, seq): its prev must be a known
 * hash of seq - 1, when any is known. */
static void check_chain(struct chain_check *cc, struct walk *w, size_t sidx, int64_t seq, size_t r)
{
    struct chain_stream *s = &cc->st[sidx];
    const struct envelope *e = &cc->b->rows[r].env;
    size_t nknown = 0;
    const char *from = NULL;
    if (seq == 0) {
        chain_genesis(s->id, w->known[0]);
        nknown = 1;
        from = "genesis";
    } else {
        size_t plo = 0, phi = 0;
        if (seq - 1 < s->last_seq)
            sh_range(cc, sidx, seq - 1, &plo, &phi);
        bool batch_prev = w->prev_sidx == sidx && w->prev_seq == seq - 1 && w->nprev > 0;
        bool last = s->exists && seq - 1 == s->last_seq;
        for (size_t j = plo; j < phi; j++)
            memcpy(w->known[nknown++], cc->sh[j].hash, CHAIN_HASH_LEN);
        if (last)
            memcpy(w->known[nknown++], s->last_hash, CHAIN_HASH_LEN);
        for (size_t j = 0; batch_prev && j < w->nprev; j++)
            memcpy(w->known[nknown++], w->prev_set[j], CHAIN_HASH_LEN);
        from = phi > plo ? "stored" : last ? "last_hash" : "batch";
    }
    if (nknown == 0 || hash_in(e->prev, w->known, nknown))
        return;
    char exp[72], act[72], extra[64];
    hex_encode(w->known[0], CHAIN_HASH_LEN, exp);
    hex_encode(e->prev, CHAIN_HASH_LEN, act);
    snprintf(extra, sizeof(extra), "{\"expected_from\":\"%s\"}", from);
    add_incident(cc, "chain_break", r, exp, act, extra);
    cc->stats.chain_breaks++;
    s->breaks++;
}

/* A stored group at a seq above last_seq: a gap when it is not the next
 * one; the stream's head moves to it. first: its first stored row. */
static void advance_head(struct chain_check *cc, struct walk *w, size_t sidx, int64_t seq,
                         size_t first)
{
    struct chain_stream *s = &cc->st[sidx];
    if (seq != w->expect_next) {
        char exp[32], act[32], extra[96];
        snprintf(exp, sizeof(exp), "%" PRId64, w->expect_next);
        snprintf(act, sizeof(act), "%" PRId64, seq);
        snprintf(extra, sizeof(extra), "{\"missing_from\":%" PRId64 ",\"missing_to\":%" PRId64 "}",
                 w->expect_next, seq - 1);
        add_incident(cc, "gap", first, exp, act, extra);
        cc->stats.gaps++;
        s->gaps++;
    }
    w->expect_next = seq + 1;
    if (seq > s->new_seq) {
        s->new_seq = seq;
        memcpy(s->new_hash, cc->b->rows[first].env.hash, CHAIN_HASH_LEN);
    }
}

/* The rows [gi, ge) of one (stream, seq): re-sends, forks, chain checks. */
static void classify_group(struct chain_check *cc, struct walk *w, size_t gi, size_t ge)
{
    size_t sidx = cc->row_st[cc->order[gi]];
    struct chain_stream *s = &cc->st[sidx];
    int64_t seq = (int64_t)cc->b->rows[cc->order[gi]].env.seq;
    size_t slo = 0, shi = 0, nkept = 0, ncur = 0, first = SIZE_MAX;
    if (seq <= s->last_seq)
        sh_range(cc, sidx, seq, &slo, &shi);
    for (size_t k = gi; k < ge; k++) {
        size_t r = cc->order[k];
        const struct envelope *e = &cc->b->rows[r].env;
        if (!hash_in(e->hash, w->cur_set, ncur))
            memcpy(w->cur_set[ncur++], e->hash, CHAIN_HASH_LEN);
        bool stored_same = false;
        for (size_t j = slo; j < shi; j++)
            stored_same |= memcmp(cc->sh[j].hash, e->hash, CHAIN_HASH_LEN) == 0;
        if (stored_same || hash_in(e->hash, w->kept, nkept)) {
            cc->status[r] = CHAIN_ROW_RESEND; /* same stream, seq and hash */
            cc->stats.resends++;
            continue;
        }
        cc->status[r] = CHAIN_ROW_STORE;
        if (shi > slo || nkept > 0) {
            char exp[72], act[72];
            hex_encode(shi > slo ? cc->sh[slo].hash : w->kept[0], CHAIN_HASH_LEN, exp);
            hex_encode(e->hash, CHAIN_HASH_LEN, act);
            add_incident(cc, "fork", r, exp, act,
                         shi > slo ? "{\"other\":\"stored\"}" : "{\"other\":\"batch\"}");
            cc->stats.forks++;
            s->forks++;
        }
        memcpy(w->kept[nkept++], e->hash, CHAIN_HASH_LEN);
        if (first == SIZE_MAX)
            first = r;
        if (!s->src)
            s->src = &e->source;
        if (!s->timed || e->time_us < s->min_time_us)
            s->min_time_us = e->time_us;
        if (!s->timed || e->time_us > s->max_time_us)
            s->max_time_us = e->time_us;
        s->timed = true;
        check_chain(cc, w, sidx, seq, r);
    }
    if (first != SIZE_MAX) {
        s->touched = true;
        if (seq > s->last_seq)
            advance_head(cc, w, sidx, seq, first);
    }
    /* The group's distinct hashes are the known predecessors of the next. */
    memcpy(w->prev_set, w->cur_set, ncur * CHAIN_HASH_LEN);
    w->nprev = ncur;
}

void chain_check_run(struct chain_check *cc)
{
    size_t n = cc->b->n;
    struct walk w = {
        .prev_set = xmalloc((n + 1) * CHAIN_HASH_LEN),
        .cur_set = xmalloc((n + 1) * CHAIN_HASH_LEN),
        .kept = xmalloc((n + 1) * CHAIN_HASH_LEN),
        .known = xmalloc((cc->nsh + n + 2) * CHAIN_HASH_LEN),
        .prev_sidx = SIZE_MAX,
        .prev_seq = -2,
    };
    for (size_t gi = 0, ge; gi < n; gi = ge) {
        ge = group_end(cc, gi);
        size_t sidx = cc->row_st[cc->order[gi]];
        if (sidx != w.prev_sidx) {
            w.nprev = 0;
            w.prev_seq = -2;
            w.expect_next = cc->st[sidx].last_seq + 1;
        }
        classify_group(cc, &w, gi, ge);
        w.prev_sidx = sidx;
        w.prev_seq = (int64_t)cc->b->rows[cc->order[gi]].env.seq;
    }
    free(w.prev_set);
    free(w.cur_set);
    free(w.kept);
    free(w.known);
}

const uint8_t *chain_check_status(const struct chain_check *cc)
{
    return cc->status;
}

const struct chain_stats *chain_check_stats(const struct chain_check *cc)
{
    return &cc->stats;
}

size_t chain_check_incidents(const struct chain_check *cc, const struct chain_incident **out)
{
    *out = cc->inc;
    return cc->ninc;
}
