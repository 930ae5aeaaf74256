/* The `query` section's keys (aggregator/query_config.h), kept beside the
 * read path rather than in aggr_config.c's table of the ingest side. */
#include "aggregator/query_config.h"

#include <stddef.h>
#include <string.h>

#define QS(name, field, def, help)                                                                 \
    {                                                                                              \
        name, CFG_STR, offsetof(struct aggr_query_conf, field), def, help, false, NULL, 0, 0, 0    \
    }
#define QI(name, field, def, lo, hi, help)                                                         \
    {                                                                                              \
        name, CFG_INT, offsetof(struct aggr_query_conf, field), def, help, false, NULL, 0, lo, hi  \
    }

const struct cfg_key aggr_query_keys[] = {
    QS("listen", listen, "",
       "host:port of the query API; empty = served on http.listen beside /healthz"),
    QS("tls_cert", tls_cert, "", "PEM certificate file: the API listener speaks HTTPS"),
    QS("tls_key", tls_key, "", "PEM private key file of tls_cert"),
    QS("public_url", public_url, "",
       "base URL of FHIR Bundle links (e.g. https://audit.example); empty = from the Host "
       "header"),
    {"replica_only", CFG_BOOL, offsetof(struct aggr_query_conf, replica_only), "false",
     "never read from the primary: no eligible replica = 503 with Retry-After", false, NULL, 0, 0,
     0},
    QI("pool_size", pool_size, "8", 1, 1024, "PostgreSQL connections per host for reads"),
    QI("timeout_ms", timeout_ms, "10000", 100, 3600000,
       "statement_timeout of every read query (an export: of each FETCH)"),
    QI("acquire_timeout_ms", acquire_timeout_ms, "100", 0, 60000,
       "longest wait for a free pooled connection before 503"),
    QI("workers", workers, "16", 1, 1024, "threads running database work for requests"),
    QI("queue_max", queue_max, "1024", 1, 1000000,
       "requests waiting for a worker; more = 503 at once"),
    QI("min_lsn_wait_ms", min_lsn_wait_ms, "1000", 0, 60000,
       "how long a min_lsn request waits for a host that replayed it"),
    QI("max_range_days", max_range_days, "31", 1, 36500,
       "widest from..to of /v1/events (export by auditors and admins is not limited)"),
    QS("cursor_key", cursor_key, "",
       "secret HMAC key of pagination cursors (${VAR} from a Secret); empty = random per "
       "process"),
    QI("cache_bytes", cache_bytes, "64MiB", 0, (int64_t)64 << 30,
       "result cache size; 0 = no cache"),
    QI("cache_ttl_s", cache_ttl_s, "1", 0, 86400,
       "cache lifetime of results whose range reaches past the replay horizon"),
    QI("cache_ttl_immutable_s", cache_ttl_immutable_s, "300", 0, 86400,
       "cache lifetime of results whose range ends before the serving host's horizon"),
    QI("cache_immutable_margin_s", cache_immutable_margin_s, "60", 0, 86400,
       "safety margin below the replay horizon for a range to count as immutable"),
    QI("token_cache_s", token_cache_s, "5", 0, 3600,
       "how long a token lookup is remembered (revocation takes effect within this)"),
    QS("audit_log", audit_log, "",
       "file receiving one JSON line per API request (ship it with an agent); empty = none"),
    QI("max_connections", max_connections, "4096", 16, 65536,
       "concurrent HTTP connections of the API listener"),
    QI("connection_timeout_s", connection_timeout_s, "60", 1, 3600,
       "an idle HTTP connection is closed after this"),
    QI("threads", threads, "4", 1, 256, "HTTP threads (libmicrohttpd's pool over epoll)"),
    QI("export_chunk_bytes", export_chunk_bytes, "1MiB", 4096, 256 * 1024 * 1024,
       "NDJSON bytes an export prepares ahead of the client (its memory bound)"),
    CFG_END,
};

int aggr_query_conf_check(struct cfg_check *chk, const struct aggr_query_conf *q)
{
    bool cert = q->tls_cert && *q->tls_cert, key = q->tls_key && *q->tls_key;
    if (cert != key)
        return cfg_check_fail(chk, cert ? "query.tls_key" : "query.tls_cert",
                              "query.tls_cert and query.tls_key go together");
    if (cert && !(q->listen && *q->listen))
        return cfg_check_fail(chk, "query.tls_cert",
                              "TLS needs the API on its own listener: set query.listen");
    if (q->cursor_key && *q->cursor_key && strlen(q->cursor_key) < 16)
        return cfg_check_fail(chk, "query.cursor_key", "must be at least 16 characters");
    return 0;
}
