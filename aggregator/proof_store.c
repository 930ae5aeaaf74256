/* auditrail.chain_* read back (aggregator/proof_store.h). */
#include "aggregator/proof_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/proof_sql.h"
#include "common/xmalloc.h"

static enum pg_status malformed(const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: a stored value is malformed", what);
    return PG_DATA;
}

static void round_from(PGresult *res, struct proof_round *r)
{
    memset(r, 0, sizeof(*r));
    r->round = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    r->signed_at_us = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    r->tree_size = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
    snprintf(r->key_id, sizeof(r->key_id), "%s", PQgetvalue(res, 0, 5));
    r->heads = strtoull(PQgetvalue(res, 0, 6), NULL, 10);
}

enum pg_status proof_store_round(struct pg_connection *c, uint64_t round, struct proof_round *r,
                                 bool *found, char *err, size_t errlen)
{
    char rb[24];
    snprintf(rb, sizeof(rb), "%" PRIu64, round);
    const char *p[] = {rb};
    PGresult *res = NULL;
    enum pg_status st = pg_conn_exec(c, SQL_P_ROUND_GET, 1, p, &res, err, errlen);
    if (st != PG_OK)
        return st;
    *found = PQntuples(res) == 1;
    if (*found) {
        round_from(res, r);
        if (hex_decode(PQgetvalue(res, 0, 3), CHAIN_HASH_LEN, r->root) != 0 ||
            strlen(PQgetvalue(res, 0, 4)) != 2 * PROOF_SIG_LEN ||
            hex_decode(PQgetvalue(res, 0, 4), PROOF_SIG_LEN, r->sig) != 0)
            st = malformed("chain_rounds", err, errlen);
    }
    PQclear(res);
    return st;
}

enum pg_status proof_store_last_round(struct pg_connection *c, struct proof_round *r, bool *found,
                                      char *err, size_t errlen)
{
    PGresult *res = NULL;
    enum pg_status st = pg_conn_exec(c, SQL_P_LAST, 0, NULL, &res, err, errlen);
    if (st != PG_OK)
        return st;
    *found = PQntuples(res) == 1;
    uint64_t round = *found ? strtoull(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return *found ? proof_store_round(c, round, r, found, err, errlen) : PG_OK;
}

enum pg_status proof_store_heads(struct pg_connection *c, uint64_t round, struct proof_head **h,
                                 size_t *n, char *err, size_t errlen)
{
    char rb[24];
    snprintf(rb, sizeof(rb), "%" PRIu64, round);
    const char *p[] = {rb};
    PGresult *res = NULL;
    *h = NULL;
    *n = 0;
    enum pg_status st = pg_conn_exec(c, SQL_P_HEADS_GET, 1, p, &res, err, errlen);
    if (st != PG_OK)
        return st;
    size_t k = (size_t)PQntuples(res);
    *h = xcalloc(k ? k : 1, sizeof(**h));
    for (size_t i = 0; i < k && st == PG_OK; i++) {
        struct proof_head *x = &(*h)[i];
        int r = (int)i;
        x->round = round;
        x->leaf_index = strtoull(PQgetvalue(res, r, 0), NULL, 10);
        snprintf(x->stream, sizeof(x->stream), "%s", PQgetvalue(res, r, 1));
        x->seq = strtoll(PQgetvalue(res, r, 2), NULL, 10);
        x->event_time_us = strtoll(PQgetvalue(res, r, 4), NULL, 10);
        x->signed_at_us = strtoll(PQgetvalue(res, r, 5), NULL, 10);
        if (strlen(PQgetvalue(res, r, 3)) != 2 * CHAIN_HASH_LEN ||
            hex_decode(PQgetvalue(res, r, 3), CHAIN_HASH_LEN, x->hash) != 0 ||
            strlen(PQgetvalue(res, r, 6)) != 2 * PROOF_SIG_LEN ||
            hex_decode(PQgetvalue(res, r, 6), PROOF_SIG_LEN, x->sig) != 0)
            st = malformed("chain_heads", err, errlen);
    }
    *n = k;
    PQclear(res);
    return st;
}

enum pg_status proof_store_unpublished(struct pg_connection *c, uint64_t **rounds, size_t *n,
                                       char *err, size_t errlen)
{
    PGresult *res = NULL;
    *rounds = NULL;
    *n = 0;
    enum pg_status st = pg_conn_exec(c, SQL_P_UNPUBLISHED, 0, NULL, &res, err, errlen);
    if (st != PG_OK)
        return st;
    *n = (size_t)PQntuples(res);
    *rounds = xcalloc(*n ? *n : 1, sizeof(**rounds));
    for (size_t i = 0; i < *n; i++)
        (*rounds)[i] = strtoull(PQgetvalue(res, (int)i, 0), NULL, 10);
    PQclear(res);
    return PG_OK;
}

enum pg_status proof_store_mark_published(struct pg_connection *c, uint64_t round, char *err,
                                          size_t errlen)
{
    char rb[24];
    snprintf(rb, sizeof(rb), "%" PRIu64, round);
    const char *p[] = {rb};
    return pg_conn_exec(c, SQL_P_PUBLISHED, 1, p, NULL, err, errlen);
}

enum pg_status proof_store_head_at(struct pg_connection *c, const char *stream, int64_t seq,
                                   uint64_t *leaf, uint64_t *round, bool *found, char *err,
                                   size_t errlen)
{
    char sb[24];
    snprintf(sb, sizeof(sb), "%" PRId64, seq);
    const char *p[] = {stream, sb};
    PGresult *res = NULL;
    enum pg_status st = pg_conn_exec(c, SQL_P_HEAD_AT, 2, p, &res, err, errlen);
    if (st != PG_OK)
        return st;
    *found = PQntuples(res) == 1;
    if (*found) {
        *leaf = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        *round = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    return PG_OK;
}

int proof_store_node(void *ud, unsigned level, uint64_t idx, uint8_t out[MERKLE_HASH_LEN])
{
    struct proof_tree_reader *t = ud;
    char lb[8], ib[24];
    snprintf(lb, sizeof(lb), "{%u}", level);
    snprintf(ib, sizeof(ib), "{%" PRIu64 "}", idx);
    const char *p[] = {lb, ib};
    PGresult *res = NULL;
    t->st = pg_conn_exec(t->c, SQL_P_NODES, 2, p, &res, t->err, sizeof(t->err));
    if (t->st != PG_OK)
        return -1;
    int rc = -1;
    if (PQntuples(res) == 1 && hex_decode(PQgetvalue(res, 0, 2), MERKLE_HASH_LEN, out) == 0)
        rc = 0;
    else
        snprintf(t->err, sizeof(t->err), "chain_tree: node (%u, %" PRIu64 ") is missing", level,
                 idx);
    if (rc)
        t->st = PG_DATA;
    PQclear(res);
    return rc;
}
