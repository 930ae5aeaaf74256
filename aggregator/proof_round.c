/* The signing round (aggregator/proof_round.h). Reads the changed heads,
 * signs in C, and stores everything with array parameters (unnest): one
 * statement per table whatever the number of streams. */
#include "aggregator/proof_round.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/merkle.h"
#include "aggregator/pg_sql.h"
#include "aggregator/proof_sql.h"
#include "common/buf.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

/* The tree nodes a round creates, as array literals. */
struct nodes {
    struct buf level, idx, hash;
    size_t n;
};

static void emit_node(void *ud, unsigned level, uint64_t idx, const uint8_t h[MERKLE_HASH_LEN])
{
    struct nodes *t = ud;
    char hex[2 * MERKLE_HASH_LEN + 1];
    hex_encode(h, MERKLE_HASH_LEN, hex);
    pg_array_i64(&t->level, level);
    pg_array_i64(&t->idx, (int64_t)idx);
    pg_array_str(&t->hash, hex);
    t->n++;
}

/* The frontier of the tree of `size` leaves, in one query. */
static enum pg_status load_frontier(struct pg_connection *c, uint64_t size,
                                    struct merkle_frontier *f, char *err, size_t errlen)
{
    uint64_t idx[MERKLE_MAX_PROOF];
    memset(f, 0, sizeof(*f));
    f->size = size;
    f->n = merkle_frontier_nodes(size, f->level, idx);
    if (f->n == 0)
        return PG_OK;
    struct buf lv = BUF_INIT, ix = BUF_INIT;
    pg_array_begin(&lv);
    pg_array_begin(&ix);
    for (unsigned i = 0; i < f->n; i++) {
        pg_array_i64(&lv, f->level[i]);
        pg_array_i64(&ix, (int64_t)idx[i]);
    }
    const char *p[] = {pg_array_end(&lv), pg_array_end(&ix)};
    PGresult *res = NULL;
    enum pg_status st = pg_conn_exec(c, SQL_P_NODES, 2, p, &res, err, errlen);
    buf_release(&lv);
    buf_release(&ix);
    if (st != PG_OK)
        return st;
    unsigned found = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        unsigned level = (unsigned)atoi(PQgetvalue(res, r, 0));
        uint64_t x = strtoull(PQgetvalue(res, r, 1), NULL, 10);
        for (unsigned i = 0; i < f->n; i++)
            if (f->level[i] == level && idx[i] == x &&
                hex_decode(PQgetvalue(res, r, 2), MERKLE_HASH_LEN, f->hash[i]) == 0)
                found++;
    }
    PQclear(res);
    if (found != f->n) {
        snprintf(err, errlen, "auditrail.chain_tree lacks nodes of the tree of %" PRIu64 " leaves",
                 size);
        return PG_DATA;
    }
    return PG_OK;
}

/* The changed heads, not yet signed (round and leaves set). */
static enum pg_status read_changed(struct pg_connection *c, struct proof_round_result *res,
                                   char *err, size_t errlen)
{
    PGresult *r = NULL;
    enum pg_status st = pg_conn_exec(c, SQL_P_CHANGED, 0, NULL, &r, err, errlen);
    if (st != PG_OK)
        return st;
    size_t n = (size_t)PQntuples(r);
    res->heads = xcalloc(n ? n : 1, sizeof(*res->heads));
    for (size_t i = 0; i < n; i++) {
        int row = (int)i;
        const char *id = PQgetvalue(r, row, 0);
        struct proof_head *h = &res->heads[res->nheads];
        uint8_t sid[16];
        if (PQgetisnull(r, row, 2) || strlen(id) != CHAIN_STREAM_HEX_LEN ||
            hex_decode(id, 16, sid) != 0 ||
            hex_decode(PQgetvalue(r, row, 2), CHAIN_HASH_LEN, h->hash) != 0) {
            res->skipped++;
            continue;
        }
        hex_encode(sid, 16, h->stream);
        h->seq = strtoll(PQgetvalue(r, row, 1), NULL, 10);
        h->event_time_us = strtoll(PQgetvalue(r, row, 3), NULL, 10);
        res->nheads++;
    }
    PQclear(r);
    return PG_OK;
}

static enum pg_status store(struct pg_connection *c, const struct proof_round_result *res,
                            struct nodes *t, char *err, size_t errlen)
{
    const struct proof_round *rd = &res->round;
    char round[24], at[24], size[24], heads[24], root[2 * CHAIN_HASH_LEN + 1],
        sig[2 * PROOF_SIG_LEN + 1];
    snprintf(round, sizeof(round), "%" PRIu64, rd->round);
    snprintf(at, sizeof(at), "%" PRId64, rd->signed_at_us);
    snprintf(size, sizeof(size), "%" PRIu64, rd->tree_size);
    snprintf(heads, sizeof(heads), "%" PRIu64, rd->heads);
    hex_encode(rd->root, CHAIN_HASH_LEN, root);
    hex_encode(rd->sig, PROOF_SIG_LEN, sig);
    const char *pr[] = {round, at, size, root, sig, rd->key_id, heads};
    enum pg_status st = pg_conn_exec(c, SQL_P_ROUND_INSERT, 7, pr, NULL, err, errlen);
    if (st != PG_OK)
        return st;
    struct buf a[6] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
    for (int i = 0; i < 6; i++)
        pg_array_begin(&a[i]);
    for (size_t i = 0; i < res->nheads; i++) {
        const struct proof_head *h = &res->heads[i];
        char hh[2 * CHAIN_HASH_LEN + 1], hs[2 * PROOF_SIG_LEN + 1];
        hex_encode(h->hash, CHAIN_HASH_LEN, hh);
        hex_encode(h->sig, PROOF_SIG_LEN, hs);
        pg_array_i64(&a[0], (int64_t)h->leaf_index);
        pg_array_str(&a[1], h->stream);
        pg_array_i64(&a[2], h->seq);
        pg_array_str(&a[3], hh);
        pg_array_i64(&a[4], h->event_time_us);
        pg_array_str(&a[5], hs);
    }
    const char *ph[8] = {round, at};
    for (int i = 0; i < 6; i++)
        ph[2 + i] = pg_array_end(&a[i]);
    st = pg_conn_exec(c, SQL_P_HEADS_INSERT, 8, ph, NULL, err, errlen);
    if (st == PG_OK) {
        const char *pl[] = {round, ph[3], ph[4], ph[5]};
        st = pg_conn_exec(c, SQL_P_LATEST_UPSERT, 4, pl, NULL, err, errlen);
    }
    if (st == PG_OK) {
        const char *pt[] = {pg_array_end(&t->level), pg_array_end(&t->idx), pg_array_end(&t->hash)};
        st = pg_conn_exec(c, SQL_P_TREE_INSERT, 3, pt, NULL, err, errlen);
    }
    for (int i = 0; i < 6; i++)
        buf_release(&a[i]);
    return st;
}

/* Sign every head and the new root (leaves from `size`). */
static int sign_all(const struct proof_key *k, struct proof_round_result *res,
                    struct merkle_frontier *f, struct nodes *t, char *err, size_t errlen)
{
    for (size_t i = 0; i < res->nheads; i++) {
        struct proof_head *h = &res->heads[i];
        h->round = res->round.round;
        h->signed_at_us = res->round.signed_at_us;
        h->leaf_index = f->size;
        uint8_t msg[PROOF_HEAD_MSG_LEN], leaf[MERKLE_HASH_LEN];
        proof_head_message(h, msg);
        if (proof_key_sign(k, msg, sizeof(msg), h->sig) != 0) {
            snprintf(err, errlen, "signing a head failed (OpenSSL)");
            return -1;
        }
        merkle_leaf_hash(msg, sizeof(msg), leaf);
        merkle_frontier_append(f, leaf, emit_node, t);
    }
    res->round.tree_size = f->size;
    res->round.heads = res->nheads;
    merkle_frontier_root(f, res->round.root);
    proof_key_id(k, res->round.key_id);
    uint8_t msg[PROOF_ROUND_MSG_LEN];
    proof_round_message(&res->round, msg);
    if (proof_key_sign(k, msg, sizeof(msg), res->round.sig) != 0) {
        snprintf(err, errlen, "signing the round failed (OpenSSL)");
        return -1;
    }
    return 0;
}

enum pg_status proof_round_sign(struct pg_connection *c, const struct proof_key *k, int64_t now_us,
                                struct proof_round_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    struct nodes t = {BUF_INIT, BUF_INIT, BUF_INIT, 0};
    pg_array_begin(&t.level);
    pg_array_begin(&t.idx);
    pg_array_begin(&t.hash);
    PGresult *r = NULL;
    uint64_t t0 = time_mono_us();
    enum pg_status st = pg_conn_exec(c, SQL_BEGIN, 0, NULL, NULL, err, errlen);
    const char *key[] = {PROOF_LOCK_KEY};
    if (st == PG_OK)
        st = pg_conn_exec(c, SQL_P_TRY_LOCK, 1, key, &r, err, errlen);
    if (st != PG_OK)
        goto out;
    res->locked_out = strcmp(PQgetvalue(r, 0, 0), "t") != 0;
    PQclear(r);
    r = NULL;
    if (res->locked_out)
        goto out;
    if ((st = pg_conn_exec(c, SQL_P_LAST, 0, NULL, &r, err, errlen)) != PG_OK)
        goto out;
    uint64_t last = 0, size = 0;
    if (PQntuples(r) == 1) {
        last = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        size = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    }
    PQclear(r);
    r = NULL;
    if ((st = read_changed(c, res, err, errlen)) != PG_OK || res->nheads == 0)
        goto out;
    struct merkle_frontier f;
    if ((st = load_frontier(c, size, &f, err, errlen)) != PG_OK)
        goto out;
    res->read_us = time_mono_us() - t0;
    res->round.round = last + 1;
    res->round.signed_at_us = now_us;
    uint64_t t1 = time_mono_us();
    if (sign_all(k, res, &f, &t, err, errlen) != 0) {
        st = PG_FATAL;
        goto out;
    }
    res->sign_us = time_mono_us() - t1;
    uint64_t t2 = time_mono_us();
    if ((st = store(c, res, &t, err, errlen)) != PG_OK ||
        (st = pg_conn_commit(c, err, errlen)) != PG_OK) /* ROLLBACK is no commit */
        goto out;
    res->store_us = time_mono_us() - t2;
    res->signed_round = true;
out:
    PQclear(r);
    if (!res->signed_round)
        pg_conn_rollback(c);
    buf_release(&t.level);
    buf_release(&t.idx);
    buf_release(&t.hash);
    return st;
}

void proof_round_result_release(struct proof_round_result *res)
{
    if (!res)
        return;
    free(res->heads);
    res->heads = NULL;
    res->nheads = 0;
}
