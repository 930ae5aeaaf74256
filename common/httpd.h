/* Embedded HTTP server (libmicrohttpd, its own thread pool over epoll) for
 * /healthz, /readyz, /metrics and the application's routes: a synchronous
 * handler (answers at once) and an asynchronous one (the query API), which
 * may answer later from another thread (the connection is suspended
 * meanwhile, so no HTTP thread waits) and may stream its body. Handlers run
 * on libmicrohttpd's threads: what they touch must be thread-safe (metrics
 * are; a ready callback reads atomics). TLS when a certificate is given. */
#ifndef AUDITRAIL_HTTPD_H
#define AUDITRAIL_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

#include <sys/types.h>

struct metrics;
struct httpd;
struct httpd_request;
struct httpd_stream;

struct httpd_response {
    int status; /* default 200 */
    char *body; /* heap, freed by the server; NULL = empty */
    size_t body_len;
    const char *content_type; /* static string; default application/json */
    char *headers[8][2];      /* extra headers, heap strings, freed by the server */
    int nheaders;
    /* A streamed body (chunked) instead of body: the server takes the
     * reference given with it (httpd_stream_new). */
    struct httpd_stream *stream;
};

/* Return true when ready; else false and a short reason (shown by /readyz). */
typedef bool (*httpd_ready_fn)(void *ud, char *reason, size_t len);
/* Application routes: return true when handled (resp filled), false for 404. */
typedef bool (*httpd_handler_fn)(void *ud, const struct httpd_request *req,
                                 struct httpd_response *resp);

/* What an asynchronous handler did with a request. */
enum httpd_route {
    HTTPD_NOT_MINE = 0, /* not its route: the synchronous handler, then 404 */
    HTTPD_ANSWERED,     /* resp is filled: sent now */
    HTTPD_LATER,        /* the handler keeps req and calls httpd_complete once */
};
typedef enum httpd_route (*httpd_async_fn)(void *ud, struct httpd_request *req,
                                           struct httpd_response *resp);

struct httpd_conf {
    const char *listen;      /* "host:port"; port 0 = pick a free one */
    struct metrics *metrics; /* for /metrics; may be NULL */
    httpd_ready_fn ready;    /* NULL = always ready */
    void *ready_ud;
    httpd_handler_fn handler; /* NULL = none */
    void *handler_ud;
    httpd_async_fn async; /* tried before handler; NULL = none */
    void *async_ud;
    unsigned threads;                       /* thread pool size; 0 = 2 */
    unsigned conn_limit;                    /* 0 = from the fd limit (raised at start) */
    unsigned conn_timeout_s;                /* idle connection timeout; 0 = 30 */
    size_t max_url;                         /* longer request targets get 414; 0 = 8192 */
    const char *tls_cert_pem, *tls_key_pem; /* both NULL = plain HTTP */
};

/* Start serving. Returns NULL with a message in err (e.g. bad listen
 * address, port in use). */
struct httpd *httpd_start(const struct httpd_conf *conf, char *err, size_t errlen);
/* The port actually bound (useful with port 0). */
unsigned httpd_port(const struct httpd *h);
void httpd_stop(struct httpd *h); /* NULL-safe; waits for handlers to finish */

const char *httpd_request_method(const struct httpd_request *r);
const char *httpd_request_path(const struct httpd_request *r);
/* Query-string argument (the first of that name) or NULL. */
const char *httpd_request_arg(const struct httpd_request *r, const char *name);
/* Every query-string argument in order, repeated names included (FHIR's
 * date=ge…&date=lt…): fn returns false to stop. value may be NULL ("?a"). */
void httpd_request_args(const struct httpd_request *r,
                        bool (*fn)(void *ud, const char *name, const char *value), void *ud);
/* True when the raw request target encodes a NUL byte (%00), which the
 * decoded arguments cannot show. */
bool httpd_request_has_nul(const struct httpd_request *r);
/* The client's address ("127.0.0.1", "::1"). */
void httpd_request_client(const struct httpd_request *r, char *out, size_t len);
/* Answer a request an asynchronous handler kept (any thread, exactly
 * once): resp's contents are taken over. */
void httpd_complete(struct httpd_request *r, struct httpd_response *resp);

/* A streamed response body: a producer (any thread) writes, the server
 * sends. on_drain(ud, gone) runs on a server thread, without locks, each
 * time the bytes waiting fall to low_water or below after a write, and once
 * with gone = true when the client went away or the response ended: then
 * the producer stops writing and releases its reference. */
struct httpd_stream *httpd_stream_new(size_t low_water, void (*on_drain)(void *ud, bool gone),
                                      void *ud);
/* Queue bytes: 0, or -1 when the client is gone. */
int httpd_stream_write(struct httpd_stream *s, const void *data, size_t len);
/* No more bytes; ok false ends the response without its final chunk, so
 * the client sees an incomplete transfer. */
void httpd_stream_close(struct httpd_stream *s, bool ok);
/* Bytes written and not yet sent. */
size_t httpd_stream_pending(struct httpd_stream *s);
/* Drop the producer's reference (the stream is freed with the last). */
void httpd_stream_release(struct httpd_stream *s);
/* Request header (case-insensitive name) or NULL. */
const char *httpd_request_header(const struct httpd_request *r, const char *name);
/* Add a response header (both strings copied). */
void httpd_response_header(struct httpd_response *resp, const char *name, const char *value);

#endif
