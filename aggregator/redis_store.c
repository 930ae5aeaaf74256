/* Redis side of the aggregator (aggregator/redis_store.h): the shared dedupe
 * window and the maintenance lease with a fencing token. One blocking hiredis
 * connection with connect and command timeouts; after a failure the store
 * stays "down" for a short, growing backoff during which every call fails at
 * once, so a dead Redis never stalls the pipeline. */
#include "aggregator/redis_store.h"

#include <hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/log.h"
#include "common/redact.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define DEDUPE_PREFIX  "auditrail:dedupe:"
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct redis_store {
    char *host;
    int port;
    int db;
    char *user, *pass; /* NULL when absent */
    char *prefix;      /* dedupe key prefix: DEDUPE_PREFIX [ns ":"] */
    uint64_t ttl_s;
    unsigned timeout_ms;
    redisContext *ctx;
    uint64_t retry_at_ms; /* monotonic; no attempt before this after a failure */
    unsigned backoff_ms;
};

/* Take the lease when free (and draw a new token), renew it when `holder`
 * has it (same token), else -1. KEYS: lease, token counter. ARGV: holder,
 * ttl ms. */
static const char lease_lua[] = "local cur = redis.call('GET', KEYS[1])\n"
                                "if not cur then\n"
                                "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                                "  return redis.call('INCR', KEYS[2])\n"
                                "elseif cur == ARGV[1] then\n"
                                "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                                "  return tonumber(redis.call('GET', KEYS[2]) or '0')\n"
                                "end\n"
                                "return -1\n";

static const char release_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                  "  return redis.call('DEL', KEYS[1])\n"
                                  "end\n"
                                  "return 0\n";

static char *dup_decoded(const char *s, size_t n)
{
    return n ? xstrndup(s, n) : NULL;
}

struct redis_store *redis_store_new(const char *url, uint64_t ttl_s, unsigned timeout_ms, char *err,
                                    size_t errlen)
{
    static const char scheme[] = "redis://";
    if (!url || strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        char shown[256];
        redact_url(url ? url : "", shown, sizeof(shown));
        snprintf(err, errlen, "redis url must start with redis:// (got '%s')", shown);
        return NULL;
    }
    const char *p = url + sizeof(scheme) - 1;
    const char *slash = strchr(p, '/');
    const char *end = slash ? slash : p + strlen(p);
    const char *at = memrchr(p, '@', (size_t)(end - p));
    char *user = NULL, *pass = NULL;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            user = dup_decoded(p, (size_t)(colon - p));
            pass = dup_decoded(colon + 1, (size_t)(at - colon - 1));
        } else {
            pass = dup_decoded(p, (size_t)(at - p)); /* redis://secret@host */
        }
        p = at + 1;
    }
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *hend = colon ? colon : end;
    long port = 6379, db = 0;
    if (colon) {
        char *e;
        port = strtol(colon + 1, &e, 10);
        if (e != end || port <= 0 || port > 65535)
            goto bad;
    }
    if (slash && slash[1]) {
        char *e;
        db = strtol(slash + 1, &e, 10);
        if (*e || db < 0)
            goto bad;
    }
    if (hend == p)
        goto bad;
    struct redis_store *r = xcalloc(1, sizeof(*r));
    r->host = xstrndup(p, (size_t)(hend - p));
    r->port = (int)port;
    r->db = (int)db;
    r->user = user;
    r->pass = pass;
    r->ttl_s = ttl_s ? ttl_s : 86400;
    r->timeout_ms = timeout_ms ? timeout_ms : 200;
    r->prefix = xstrdup(DEDUPE_PREFIX);
    return r;
bad:
    snprintf(err, errlen, "malformed redis url (want redis://[user:pass@]host[:port][/db])");
    free(user);
    free(pass);
    return NULL;
}

void redis_store_free(struct redis_store *r)
{
    if (!r)
        return;
    if (r->ctx)
        redisFree(r->ctx);
    free(r->host);
    free(r->prefix);
    free(r->user);
    free(r->pass);
    free(r);
}

static void mark_down(struct redis_store *r, const char *why)
{
    if (r->ctx) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (r->backoff_ms > BACKOFF_MAX_MS)
        r->backoff_ms = BACKOFF_MAX_MS;
    r->retry_at_ms = time_mono_ms() + r->backoff_ms;
    log_debug("redis: %s:%d unavailable (%s); next try in %u ms", r->host, r->port, why,
              r->backoff_ms);
}

/* A reply that is not an error; frees and returns NULL otherwise. */
static redisReply *checked(struct redis_store *r, void *rep)
{
    redisReply *x = rep;
    if (!x) {
        mark_down(r, r->ctx && r->ctx->errstr[0] ? r->ctx->errstr : "no reply");
        return NULL;
    }
    if (x->type == REDIS_REPLY_ERROR) {
        log_warn("redis: %s", x->str);
        freeReplyObject(x);
        return NULL;
    }
    return x;
}

/* Connected context, or NULL (fails at once while backing off). */
static redisContext *conn(struct redis_store *r)
{
    if (r->ctx)
        return r->ctx;
    if (r->retry_at_ms && time_mono_ms() < r->retry_at_ms)
        return NULL;
    struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
    r->ctx = redisConnectWithTimeout(r->host, r->port, tv);
    if (!r->ctx || r->ctx->err) {
        mark_down(r, r->ctx ? r->ctx->errstr : "out of memory");
        return NULL;
    }
    redisSetTimeout(r->ctx, tv);
    if (r->pass) {
        redisReply *x = checked(r, r->user ? redisCommand(r->ctx, "AUTH %s %s", r->user, r->pass)
                                           : redisCommand(r->ctx, "AUTH %s", r->pass));
        if (!x) {
            mark_down(r, "AUTH failed");
            return NULL;
        }
        freeReplyObject(x);
    }
    if (r->db) {
        redisReply *x = checked(r, redisCommand(r->ctx, "SELECT %d", r->db));
        if (!x) {
            mark_down(r, "SELECT failed");
            return NULL;
        }
        freeReplyObject(x);
    }
    r->backoff_ms = 0;
    r->retry_at_ms = 0;
    return r->ctx;
}

void redis_store_set_namespace(struct redis_store *r, const char *ns)
{
    free(r->prefix);
    r->prefix = ns && *ns ? xasprintf(DEDUPE_PREFIX "%s:", ns) : xstrdup(DEDUPE_PREFIX);
}

int redis_store_seen(struct redis_store *r, const char *const *ids, size_t n, uint8_t *seen)
{
    if (n == 0)
        return 0;
    if (!conn(r))
        return -1;
    const char **argv = xmalloc((n + 1) * sizeof(*argv));
    size_t *lens = xmalloc((n + 1) * sizeof(*lens));
    char **keys = xmalloc(n * sizeof(*keys));
    argv[0] = "MGET";
    lens[0] = 4;
    for (size_t i = 0; i < n; i++) {
        keys[i] = xasprintf("%s%s", r->prefix, ids[i]);
        argv[i + 1] = keys[i];
        lens[i + 1] = strlen(keys[i]);
    }
    int rc = -1;
    redisReply *x = checked(r, redisCommandArgv(r->ctx, (int)n + 1, argv, lens));
    if (x && x->type == REDIS_REPLY_ARRAY && x->elements == n) {
        for (size_t i = 0; i < n; i++)
            seen[i] = x->element[i]->type != REDIS_REPLY_NIL;
        rc = 0;
    }
    freeReplyObject(x);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(argv);
    free(lens);
    return rc;
}

int redis_store_mark(struct redis_store *r, const char *const *ids, size_t n)
{
    if (n == 0)
        return 0;
    if (!conn(r))
        return -1;
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%" PRIu64, r->ttl_s);
    /* Pipelined SET key 1 EX ttl: one round trip for the whole batch. */
    for (size_t i = 0; i < n; i++) {
        char *key = xasprintf("%s%s", r->prefix, ids[i]);
        const char *argv[] = {"SET", key, "1", "EX", ttl};
        int ok = redisAppendCommandArgv(r->ctx, 5, argv, NULL);
        free(key);
        if (ok != REDIS_OK) {
            mark_down(r, "append failed");
            return -1;
        }
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        void *rep = NULL;
        if (redisGetReply(r->ctx, &rep) != REDIS_OK) {
            mark_down(r, r->ctx->errstr);
            return -1; /* the context is gone: unread replies with it */
        }
        redisReply *x = rep;
        if (x->type == REDIS_REPLY_ERROR) {
            log_warn("redis: SET: %s", x->str);
            rc = -1;
        }
        freeReplyObject(x);
    }
    return rc;
}

int redis_store_lease(struct redis_store *r, const char *name, const char *token_key,
                      const char *holder, uint64_t ttl_ms, int64_t *token, bool *unreachable)
{
    *unreachable = false;
    if (!conn(r)) {
        *unreachable = true;
        return -1;
    }
    char *tkey = token_key ? xstrdup(token_key) : xasprintf("%s:token", name);
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%" PRIu64, ttl_ms ? ttl_ms : 1);
    const char *argv[] = {"EVAL", lease_lua, "2", name, tkey, holder, ttl};
    redisReply *x = checked(r, redisCommandArgv(r->ctx, 7, argv, NULL));
    free(tkey);
    int rc = -1;
    if (!x) {
        /* Connection lost, or an error reply (a read-only replica, no
         * scripting, ACL): either way Redis cannot arbitrate, so callers
         * fall back to the advisory lock. */
        *unreachable = true;
    } else if (x->type == REDIS_REPLY_INTEGER && x->integer > 0) {
        *token = x->integer;
        rc = 0;
    }
    freeReplyObject(x);
    return rc;
}

void redis_store_lease_release(struct redis_store *r, const char *name, const char *holder)
{
    if (!conn(r))
        return;
    const char *argv[] = {"EVAL", release_lua, "1", name, holder};
    freeReplyObject(checked(r, redisCommandArgv(r->ctx, 5, argv, NULL)));
}
