/* API bearer tokens (aggregator/tokens.h): generation with getrandom(2),
 * SHA-256 through OpenSSL, the lookup statement, and the lookup cache (an
 * LRU under a mutex). */
#include "aggregator/tokens.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "aggregator/query_sql.h"
#include "common/hashchain.h"
#include "common/lru.h"
#include "common/xmalloc.h"

static const char *const role_names[] = {"reader", "auditor", "admin"};

const char *token_role_name(enum token_role r)
{
    return (unsigned)r < 3 ? role_names[r] : "?";
}

int token_role_parse(const char *s, enum token_role *out)
{
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, role_names[i]) == 0) {
            *out = (enum token_role)i;
            return 0;
        }
    return -1;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void token_generate(char out[TOKEN_SECRET_LEN + 1])
{
    uint8_t raw[33] = {0}; /* 32 random bytes; the 33rd pads the last group */
    size_t got = 0;
    while (got < 32) {
        ssize_t n = getrandom(raw + got, 32 - got, 0);
        if (n < 0)
            abort(); /* no randomness: never hand out a guessable token */
        got += (size_t)n;
    }
    char *o = out;
    memcpy(o, TOKEN_PREFIX, strlen(TOKEN_PREFIX));
    o += strlen(TOKEN_PREFIX);
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        *o++ = b64url[(v >> 18) & 63];
        *o++ = b64url[(v >> 12) & 63];
        *o++ = b64url[(v >> 6) & 63];
        *o++ = b64url[v & 63];
    }
    /* 33 bytes made 44 characters; 32 bytes are 43 (no padding) */
    out[TOKEN_SECRET_LEN] = '\0';
}

bool token_well_formed(const char *s)
{
    size_t plen = strlen(TOKEN_PREFIX);
    if (!s || strlen(s) != TOKEN_SECRET_LEN || strncmp(s, TOKEN_PREFIX, plen) != 0)
        return false;
    return strspn(s + plen, b64url) == TOKEN_SECRET_LEN - plen;
}

void token_hash_hex(const char *secret, char out[TOKEN_HASH_HEX])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    EVP_Digest(secret, strlen(secret), md, &mdlen, EVP_sha256(), NULL);
    hex_encode(md, sizeof(md), out);
}

enum pg_status token_lookup(struct pg_connection *c, const char *hash_hex, enum token_state *state,
                            struct token_info *out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    const char *params[] = {hash_hex};
    enum pg_status st = pg_conn_exec_prepared(c, STMT_Q_TOKEN, 1, params, &res, err, errlen);
    if (st != PG_OK)
        return st;
    if (PQntuples(res) == 0) {
        *state = TOKEN_UNKNOWN;
    } else if (PQgetvalue(res, 0, 4)[0] == 't') {
        *state = TOKEN_REVOKED;
    } else if (PQgetvalue(res, 0, 3)[0] == 't') {
        *state = TOKEN_EXPIRED;
    } else {
        *state = TOKEN_VALID;
        memset(out, 0, sizeof(*out));
        snprintf(out->name, sizeof(out->name), "%s", PQgetvalue(res, 0, 0));
        if (!PQgetisnull(res, 0, 1))
            snprintf(out->tenant, sizeof(out->tenant), "%s", PQgetvalue(res, 0, 1));
        if (token_role_parse(PQgetvalue(res, 0, 2), &out->role) != 0)
            *state = TOKEN_UNKNOWN; /* the CHECK constraint makes this impossible */
    }
    PQclear(res);
    return PG_OK;
}

struct cached {
    enum token_state state;
    struct token_info info;
    uint64_t fetched_ms;
    bool refreshing;
};

struct token_cache {
    pthread_mutex_t mu;
    struct lru *lru;
    uint64_t ttl_ms;
};

struct token_cache *token_cache_new(uint64_t ttl_ms, size_t max)
{
    struct token_cache *c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    c->lru = lru_new(max ? max : 1, 0, free);
    c->ttl_ms = ttl_ms;
    return c;
}

void token_cache_free(struct token_cache *c)
{
    if (!c)
        return;
    lru_free(c->lru);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

bool token_cache_get(struct token_cache *c, const char *hash_hex, enum token_state *state,
                     struct token_info *out, bool *refresh, uint64_t now_ms)
{
    *refresh = false;
    if (c->ttl_ms == 0)
        return false;
    pthread_mutex_lock(&c->mu);
    struct cached *e = lru_get(c->lru, hash_hex, strlen(hash_hex), now_ms);
    if (e) {
        *state = e->state;
        *out = e->info;
        /* Past the TTL, one caller refreshes while the others keep the
         * answer (until 2 x TTL, when the entry is gone): a busy token does
         * not send every request of a second to the database at once. */
        if (now_ms - e->fetched_ms >= c->ttl_ms && !e->refreshing)
            *refresh = e->refreshing = true;
    }
    pthread_mutex_unlock(&c->mu);
    return e != NULL;
}

void token_cache_put(struct token_cache *c, const char *hash_hex, enum token_state state,
                     const struct token_info *info, uint64_t now_ms)
{
    if (c->ttl_ms == 0)
        return;
    struct cached *e = xcalloc(1, sizeof(*e));
    e->state = state;
    e->fetched_ms = now_ms;
    if (info)
        e->info = *info;
    pthread_mutex_lock(&c->mu);
    lru_put_sized(c->lru, hash_hex, strlen(hash_hex), e, 0, 2 * c->ttl_ms, now_ms);
    pthread_mutex_unlock(&c->mu);
}
