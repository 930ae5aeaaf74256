/* API bearer tokens (DESIGN.md §7): the secret's format, its SHA-256 (the
 * only thing stored, in auditrail.api_tokens), roles, the lookup on a read
 * connection, and a short-lived in-process cache of lookups (revocation
 * takes effect within its TTL). */
#ifndef AUDITRAIL_AGGREGATOR_TOKENS_H
#define AUDITRAIL_AGGREGATOR_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/pg_conn.h"

#define TOKEN_PREFIX     "atr_"
#define TOKEN_SECRET_LEN 47 /* "atr_" + 32 random bytes in unpadded base64url */
#define TOKEN_HASH_HEX   65 /* 64 hex characters and a NUL */
#define TOKEN_NAME_MAX   128
#define TOKEN_TENANT_MAX 256

enum token_role { ROLE_READER = 0, ROLE_AUDITOR, ROLE_ADMIN };

struct token_info {
    char name[TOKEN_NAME_MAX];
    char tenant[TOKEN_TENANT_MAX]; /* "" for an admin (every tenant) */
    enum token_role role;
};

enum token_state { TOKEN_VALID, TOKEN_UNKNOWN, TOKEN_EXPIRED, TOKEN_REVOKED };

/* "reader", "auditor", "admin". */
const char *token_role_name(enum token_role r);
/* 0, or -1 for another name. */
int token_role_parse(const char *s, enum token_role *out);
/* A new secret: TOKEN_PREFIX + 32 bytes from the kernel's CSPRNG. */
void token_generate(char out[TOKEN_SECRET_LEN + 1]);
/* Does s look like a secret this program made? (anything else is refused
 * without a database lookup) */
bool token_well_formed(const char *s);
/* Lower-case hex SHA-256 of the secret. */
void token_hash_hex(const char *secret, char out[TOKEN_HASH_HEX]);

/* Look a hash up on c (STMT_Q_TOKEN prepared). PG_OK with *state (and *out
 * when VALID), or the failure. */
enum pg_status token_lookup(struct pg_connection *c, const char *hash_hex, enum token_state *state,
                            struct token_info *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Lookups remembered (unknown tokens too, so that junk does not reach the
 * database each time); bounded to max entries. After ttl_ms one caller is
 * told to refresh while the others keep the answer; after 2 x ttl_ms it is
 * gone: a revocation takes effect within 2 x ttl_ms. Thread-safe. */
struct token_cache;
struct token_cache *token_cache_new(uint64_t ttl_ms, size_t max);
void token_cache_free(struct token_cache *c);
/* true with *state (and *out) when remembered; *refresh: this caller
 * should look the token up again (and put the answer). */
bool token_cache_get(struct token_cache *c, const char *hash_hex, enum token_state *state,
                     struct token_info *out, bool *refresh, uint64_t now_ms);
void token_cache_put(struct token_cache *c, const char *hash_hex, enum token_state state,
                     const struct token_info *info, uint64_t now_ms);

#endif
