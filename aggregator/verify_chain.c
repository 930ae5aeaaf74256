/* The per-stream check of verify (aggregator/verify_chain.h): recompute,
 * link, count; then compare with the stream's state, neighbours and signed
 * heads. Findings compare stored values with stored values (a link is the
 * stored prev against the stored hash before it), so one altered field is
 * reported where it was altered, not again at every later record. */
#include "aggregator/verify_chain.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

#define HEAD_LATEST 0
#define HEAD_RECENT 1
#define HEAD_ANCHOR 2

static const char *const kind_names[VERIFY_KIND_COUNT] = {
    "hash_mismatch",
    "id_mismatch",
    "bad_genesis",
    "broken_link",
    "gap",
    "fork",
    "tail_missing",
    "head_mismatch",
    "bad_stream",
    "signed_head_missing",
    "signed_head_mismatch",
    "bad_signature",
    "retention_cut",
};

const char *verify_kind_name(enum verify_kind k)
{
    return (unsigned)k < VERIFY_KIND_COUNT ? kind_names[k] : "unknown";
}

bool verify_kind_is_problem(enum verify_kind k)
{
    return k != VERIFY_RETENTION_CUT;
}

static const struct verify_head *head_at(const struct vchain *c, int i)
{
    if (!c->heads)
        return NULL;
    const struct verify_head *h = i == HEAD_LATEST   ? &c->heads->latest
                                  : i == HEAD_RECENT ? &c->heads->first_recent
                                                     : &c->heads->cut_anchor;
    return h->set ? h : NULL;
}

/* Count a finding and hand it on unless the stream has reported enough. */
static void report(struct vchain *c, enum verify_kind kind, int64_t seq, int64_t seq_end,
                   const uint8_t *stored, size_t slen, const uint8_t *computed, size_t clen,
                   int64_t t_us, const char *detail)
{
    c->by_kind[kind]++;
    if (verify_kind_is_problem(kind))
        c->problems++;
    else
        c->notes++;
    if (c->findings++ >= c->max_findings || !c->emit)
        return;
    struct verify_finding f = {.kind = kind,
                               .stream = c->stream,
                               .seq = seq,
                               .seq_end = seq_end,
                               .event_time_us = t_us,
                               .detail = detail};
    if (stored)
        hex_encode(stored, slen, f.stored);
    if (computed)
        hex_encode(computed, clen, f.computed);
    c->emit(c->ud, &f);
}

static bool stream_hex_ok(const char *s, size_t len)
{
    if (len != CHAIN_STREAM_HEX_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

void vchain_begin(struct vchain *c, const char *stream, size_t len,
                  const struct verify_stream_heads *heads, verify_emit_fn emit, void *ud,
                  unsigned max_findings)
{
    memset(c, 0, sizeof(*c));
    size_t n = len < sizeof(c->stream) - 1 ? len : sizeof(c->stream) - 1;
    memcpy(c->stream, stream, n);
    c->stream[n] = '\0';
    c->heads = heads;
    c->emit = emit;
    c->ud = ud;
    c->max_findings = max_findings;
    c->stream_ok = stream_hex_ok(stream, len);
    if (c->stream_ok)
        chain_genesis(stream, c->genesis);
    else
        report(c, VERIFY_BAD_STREAM, -1, -1, NULL, 0, NULL, 0, INT64_MIN,
               "the stream id is not 32 lower-case hex characters: its genesis cannot be checked");
}

static bool in_last(const struct vchain *c, const uint8_t *h)
{
    for (int i = 0; i < c->nlast; i++)
        if (memcmp(c->last_hashes[i], h, CHAIN_HASH_LEN) == 0)
            return true;
    return false;
}

/* The row's own fields: hash recomputed, id, genesis. */
void vchain_check_fields(struct vchain *c, const struct vrow *r)
{
    if (!r->hash || !r->prev) {
        report(c, VERIFY_HASH_MISMATCH, r->seq, r->seq, NULL, 0, NULL, 0, r->event_time_us,
               "hash or prev is not 32 bytes");
        return;
    }
    uint8_t h[CHAIN_HASH_LEN];
    chain_next(r->prev, (uint64_t)r->seq, r->raw, r->raw_len, h);
    if (memcmp(h, r->hash, CHAIN_HASH_LEN) != 0)
        report(c, VERIFY_HASH_MISMATCH, r->seq, r->seq, r->hash, CHAIN_HASH_LEN, h, CHAIN_HASH_LEN,
               r->event_time_us, "the stored hash is not SHA-256(prev || seq || raw)");
    if (!r->id || memcmp(r->id, r->hash, 16) != 0)
        report(c, VERIFY_ID_MISMATCH, r->seq, r->seq, r->id, r->id ? 16 : 0, r->hash, 16,
               r->event_time_us, "the id is not the first 16 bytes of the hash");
    if (r->seq == 0 && c->stream_ok && memcmp(r->prev, c->genesis, CHAIN_HASH_LEN) != 0)
        report(c, VERIFY_BAD_GENESIS, 0, 0, r->prev, CHAIN_HASH_LEN, c->genesis, CHAIN_HASH_LEN,
               r->event_time_us, "seq 0's prev is not the stream's genesis value");
}

/* Signed heads at this seq: seen, and matched by some record there. */
void vchain_check_heads(struct vchain *c, int64_t seq, const uint8_t *hash)
{
    for (int i = 0; i < 3; i++) {
        const struct verify_head *h = head_at(c, i);
        if (!h || h->seq != seq)
            continue;
        if (!c->head_seen[i] && hash)
            memcpy(c->head_stored[i], hash, CHAIN_HASH_LEN);
        c->head_seen[i] = true;
        if (hash && memcmp(hash, h->hash, CHAIN_HASH_LEN) == 0) {
            c->head_ok[i] = true;
            if (i == HEAD_LATEST) {
                c->latest_head_matched = true;
                c->problems_before_head = c->problems;
            }
        }
    }
}

void vchain_row(struct vchain *c, const struct vrow *r)
{
    vchain_check_fields(c, r);
    static const uint8_t zero[CHAIN_HASH_LEN];
    const uint8_t *hash = r->hash ? r->hash : zero;
    if (c->nrows == 0) {
        c->first_seq = r->seq;
        c->first_time_us = r->event_time_us;
        memcpy(c->first_prev, r->prev ? r->prev : zero, CHAIN_HASH_LEN);
        c->last_seq = r->seq;
        memcpy(c->last_hashes[0], hash, CHAIN_HASH_LEN);
        c->nlast = 1;
    } else if (r->seq == c->last_seq) {
        report(c, VERIFY_FORK, r->seq, r->seq, hash, CHAIN_HASH_LEN, c->last_hashes[0],
               CHAIN_HASH_LEN, r->event_time_us, "two records with the same seq");
        if (c->nlast < VCHAIN_FORKS && !in_last(c, hash))
            memcpy(c->last_hashes[c->nlast++], hash, CHAIN_HASH_LEN);
    } else {
        if (r->seq == c->last_seq + 1) {
            if (r->prev && !in_last(c, r->prev))
                report(c, VERIFY_BROKEN_LINK, r->seq, r->seq, r->prev, CHAIN_HASH_LEN,
                       c->last_hashes[0], CHAIN_HASH_LEN, r->event_time_us,
                       "prev is not the stored hash of the record before");
        } else {
            report(c, VERIFY_GAP, c->last_seq + 1, r->seq - 1, NULL, 0, NULL, 0, r->event_time_us,
                   "records missing between two stored ones");
        }
        c->last_seq = r->seq;
        memcpy(c->last_hashes[0], hash, CHAIN_HASH_LEN);
        c->nlast = 1;
    }
    c->nrows++;
    vchain_check_heads(c, r->seq, r->hash);
}

int64_t vchain_need_prev(const struct vchain *c, const struct vchain_expect *e)
{
    return !e->full && c->nrows > 0 && c->first_seq > 0 ? c->first_seq - 1 : -1;
}

int64_t vchain_need_next(const struct vchain *c, const struct vchain_expect *e)
{
    return !e->full && c->nrows > 0 && e->have_state && c->last_seq < e->last_seq ? c->last_seq + 1
                                                                                  : -1;
}

/* The first stored record is not seq 0 (or, in a time range, its
 * predecessor is not stored): a retention cut or missing records. */
static void check_missing_start(struct vchain *c, const struct vchain_expect *e)
{
    const struct verify_head *a = head_at(c, HEAD_ANCHOR);
    if (a && a->seq == c->first_seq - 1) {
        if (memcmp(a->hash, c->first_prev, CHAIN_HASH_LEN) != 0)
            report(c, VERIFY_BROKEN_LINK, c->first_seq, c->first_seq, c->first_prev, CHAIN_HASH_LEN,
                   a->hash, CHAIN_HASH_LEN, c->first_time_us,
                   "prev differs from the signed head at the retention cut");
        else
            report(c, VERIFY_RETENTION_CUT, 0, c->first_seq - 1, NULL, 0, a->hash, CHAIN_HASH_LEN,
                   c->first_time_us,
                   "records before the cut were dropped by retention; the first stored record "
                   "links to the signed head at the cut");
        return;
    }
    if (c->latest_head_matched && c->problems_before_head == 0) {
        report(c, VERIFY_RETENTION_CUT, 0, c->first_seq - 1, NULL, 0, NULL, 0, c->first_time_us,
               "records before the cut were dropped by retention; the chain from the cut "
               "reaches the latest signed head");
        return;
    }
    if (e->began_before_horizon) {
        report(c, VERIFY_RETENTION_CUT, 0, c->first_seq - 1, NULL, 0, NULL, 0, c->first_time_us,
               "the stream began before the retention horizon; the cut is not proven by a "
               "signed head");
        return;
    }
    if (e->full)
        report(c, VERIFY_GAP, 0, c->first_seq - 1, NULL, 0, NULL, 0, c->first_time_us,
               "the stream's first records are missing");
    else
        report(c, VERIFY_GAP, c->first_seq - 1, c->first_seq - 1, NULL, 0, NULL, 0,
               c->first_time_us, "the record before the range is missing");
}

static void check_state(struct vchain *c, const struct vchain_expect *e)
{
    if (!e->have_state) {
        report(c, VERIFY_HEAD_MISMATCH, c->last_seq, c->last_seq, NULL, 0, NULL, 0, INT64_MIN,
               "the stream has records but no row in auditrail.streams");
    } else if (e->last_seq > c->last_seq) {
        report(c, VERIFY_TAIL_MISSING, c->last_seq + 1, e->last_seq, NULL, 0, e->last_hash,
               CHAIN_HASH_LEN, INT64_MIN,
               "auditrail.streams records later records than are stored");
    } else if (e->last_seq < c->last_seq) {
        report(c, VERIFY_HEAD_MISMATCH, e->last_seq + 1, c->last_seq, NULL, 0, e->last_hash,
               CHAIN_HASH_LEN, INT64_MIN, "records stored beyond auditrail.streams.last_seq");
    } else if (!in_last(c, e->last_hash)) {
        report(c, VERIFY_HEAD_MISMATCH, c->last_seq, c->last_seq, e->last_hash, CHAIN_HASH_LEN,
               c->last_hashes[0], CHAIN_HASH_LEN, INT64_MIN,
               "auditrail.streams.last_hash differs from the last record's hash");
    }
}

static void check_signed(struct vchain *c, const struct vchain_expect *e)
{
    for (int i = 0; i < 3; i++) {
        const struct verify_head *h = head_at(c, i);
        if (!h)
            continue;
        bool dup = false; /* the same head twice (e.g. latest == first_recent) */
        for (int j = 0; j < i; j++)
            if (head_at(c, j) && head_at(c, j)->seq == h->seq)
                dup = true;
        if (dup)
            continue;
        if (c->head_seen[i]) {
            if (!c->head_ok[i])
                report(c, VERIFY_SIGNED_MISMATCH, h->seq, h->seq, c->head_stored[i], CHAIN_HASH_LEN,
                       h->hash, CHAIN_HASH_LEN, h->event_time_us,
                       "the stored record at a signed head has another hash");
            continue;
        }
        if (h->event_time_us < e->horizon_us)
            continue; /* may have been dropped by retention */
        if (!e->full && (h->event_time_us < e->from_us || h->event_time_us >= e->to_us))
            continue; /* outside the range verified */
        report(c, VERIFY_SIGNED_MISSING, h->seq, h->seq, NULL, 0, h->hash, CHAIN_HASH_LEN,
               h->event_time_us, "the record of a signed head is not stored");
    }
}

void vchain_end(struct vchain *c, const struct vchain_expect *e)
{
    if (c->nrows == 0) {
        if (e->full && e->have_state && !e->began_before_horizon)
            report(c, VERIFY_TAIL_MISSING, 0, e->last_seq, NULL, 0, e->last_hash, CHAIN_HASH_LEN,
                   INT64_MIN, "no record of the stream is stored");
        check_signed(c, e);
        return;
    }
    if (c->first_seq > 0) {
        if (e->full || e->prev_state == 0) {
            check_missing_start(c, e);
        } else if (e->prev_state == 1 && memcmp(e->prev_hash, c->first_prev, CHAIN_HASH_LEN)) {
            report(c, VERIFY_BROKEN_LINK, c->first_seq, c->first_seq, c->first_prev, CHAIN_HASH_LEN,
                   e->prev_hash, CHAIN_HASH_LEN, c->first_time_us,
                   "prev is not the stored hash of the record before the range");
        }
    }
    if (e->full) {
        check_state(c, e);
    } else if (e->next_state == 1 && !in_last(c, e->next_prev)) {
        report(c, VERIFY_BROKEN_LINK, c->last_seq + 1, c->last_seq + 1, e->next_prev,
               CHAIN_HASH_LEN, c->last_hashes[0], CHAIN_HASH_LEN, INT64_MIN,
               "the record after the range does not link to the range's last record");
    } else if (e->next_state == 0) {
        report(c, VERIFY_GAP, c->last_seq + 1, c->last_seq + 1, NULL, 0, NULL, 0, INT64_MIN,
               "the record after the range is missing");
    }
    check_signed(c, e);
}

void vchain_release(struct vchain *c)
{
    free(c->runs);
    free(c->ovl);
    c->runs = NULL;
    c->ovl = NULL;
    c->nruns = c->capruns = c->novl = c->capovl = 0;
}

void vchain_report_link(struct vchain *c, const struct vrow *r, const uint8_t expected[32])
{
    report(c, VERIFY_BROKEN_LINK, r->seq, r->seq, r->prev, CHAIN_HASH_LEN, expected, CHAIN_HASH_LEN,
           r->event_time_us, "prev is not the stored hash of the record before");
}

void vchain_note_overlap(struct vchain *c, int64_t lo, int64_t hi)
{
    if (c->novl == c->capovl) {
        c->capovl = c->capovl ? 2 * c->capovl : 4;
        c->ovl = xrealloc(c->ovl, c->capovl * sizeof(*c->ovl));
    }
    c->ovl[c->novl++] = (struct voverlap){lo, hi};
}

/* Join b into a (a before b, adjacent or overlapping). */
static void join(struct vchain *c, struct vrun *a, const struct vrun *b)
{
    if (b->first_seq <= a->last_seq) {
        vchain_note_overlap(c, b->first_seq, b->last_seq < a->last_seq ? b->last_seq : a->last_seq);
    } else if (memcmp(b->first_prev, a->last_hash, CHAIN_HASH_LEN) != 0) {
        /* b starts right after a: the link between them */
        report(c, VERIFY_BROKEN_LINK, b->first_seq, b->first_seq, b->first_prev, CHAIN_HASH_LEN,
               a->last_hash, CHAIN_HASH_LEN, b->first_time_us,
               "prev is not the stored hash of the record before");
    }
    if (b->last_seq > a->last_seq) {
        a->last_seq = b->last_seq;
        memcpy(a->last_hash, b->last_hash, CHAIN_HASH_LEN);
    }
    a->rows += b->rows;
}

void vchain_add_run(struct vchain *c, const struct vrun *r)
{
    /* Insert in order of first_seq, then join with the neighbours it
     * touches: runs stay disjoint and not adjacent. */
    size_t i = c->nruns;
    while (i > 0 && c->runs[i - 1].first_seq > r->first_seq)
        i--;
    if (c->nruns == c->capruns) {
        c->capruns = c->capruns ? 2 * c->capruns : 4;
        c->runs = xrealloc(c->runs, c->capruns * sizeof(*c->runs));
    }
    memmove(c->runs + i + 1, c->runs + i, (c->nruns - i) * sizeof(*c->runs));
    c->runs[i] = *r;
    c->nruns++;
    if (i > 0 && c->runs[i].first_seq <= c->runs[i - 1].last_seq + 1)
        i--; /* the new run joins the one before */
    while (i + 1 < c->nruns && c->runs[i + 1].first_seq <= c->runs[i].last_seq + 1) {
        join(c, &c->runs[i], &c->runs[i + 1]);
        memmove(c->runs + i + 1, c->runs + i + 2, (c->nruns - i - 2) * sizeof(*c->runs));
        c->nruns--;
    }
}

void vchain_fork(struct vchain *c, int64_t seq, const uint8_t a[CHAIN_HASH_LEN],
                 const uint8_t b[CHAIN_HASH_LEN])
{
    report(c, VERIFY_FORK, seq, seq, b, CHAIN_HASH_LEN, a, CHAIN_HASH_LEN, INT64_MIN,
           memcmp(a, b, CHAIN_HASH_LEN) ? "two records with the same seq"
                                        : "the same record stored twice");
}

void vchain_close_runs(struct vchain *c)
{
    if (c->nruns == 0)
        return;
    for (size_t i = 1; i < c->nruns; i++)
        report(c, VERIFY_GAP, c->runs[i - 1].last_seq + 1, c->runs[i].first_seq - 1, NULL, 0, NULL,
               0, c->runs[i].first_time_us, "records missing between two stored ones");
    const struct vrun *f = &c->runs[0], *l = &c->runs[c->nruns - 1];
    c->first_seq = f->first_seq;
    c->first_time_us = f->first_time_us;
    memcpy(c->first_prev, f->first_prev, CHAIN_HASH_LEN);
    c->last_seq = l->last_seq;
    memcpy(c->last_hashes[0], l->last_hash, CHAIN_HASH_LEN);
    c->nlast = 1;
    c->nrows = 0;
    for (size_t i = 0; i < c->nruns; i++)
        c->nrows += c->runs[i].rows;
    /* The latest head matched with no problem before it (retention cuts). */
    if (c->head_ok[HEAD_LATEST]) {
        c->latest_head_matched = true;
        c->problems_before_head = c->problems;
    }
}
