/* Embedded HTTP server (libmicrohttpd, its own thread pool) for /healthz,
 * /readyz, /metrics and an optional application handler (the query API).
 * Handlers run on libmicrohttpd's threads: what they touch must be
 * thread-safe (metrics are; a ready callback reads atomics). */
#ifndef AUDITRAIL_HTTPD_H
#define AUDITRAIL_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

struct metrics;
struct httpd;
struct httpd_request;

struct httpd_response {
    int status; /* default 200 */
    char *body; /* heap, freed by the server; NULL = empty */
    size_t body_len;
    const char *content_type; /* static string; default application/json */
    char *headers[8][2];      /* extra headers, heap strings, freed by the server */
    int nheaders;
};

/* Return true when ready; else false and a short reason (shown by /readyz). */
typedef bool (*httpd_ready_fn)(void *ud, char *reason, size_t len);
/* Application routes: return true when handled (resp filled), false for 404. */
typedef bool (*httpd_handler_fn)(void *ud, const struct httpd_request *req,
                                 struct httpd_response *resp);

struct httpd_conf {
    const char *listen;      /* "host:port"; port 0 = pick a free one */
    struct metrics *metrics; /* for /metrics; may be NULL */
    httpd_ready_fn ready;    /* NULL = always ready */
    void *ready_ud;
    httpd_handler_fn handler; /* NULL = none */
    void *handler_ud;
    unsigned threads; /* thread pool size; 0 = 2 */
};

/* Start serving. Returns NULL with a message in err (e.g. bad listen
 * address, port in use). */
struct httpd *httpd_start(const struct httpd_conf *conf, char *err, size_t errlen);
/* The port actually bound (useful with port 0). */
unsigned httpd_port(const struct httpd *h);
void httpd_stop(struct httpd *h); /* NULL-safe; waits for handlers to finish */

const char *httpd_request_method(const struct httpd_request *r);
const char *httpd_request_path(const struct httpd_request *r);
/* Query-string argument or NULL. */
const char *httpd_request_arg(const struct httpd_request *r, const char *name);
/* Request header (case-insensitive name) or NULL. */
const char *httpd_request_header(const struct httpd_request *r, const char *name);
/* Add a response header (both strings copied). */
void httpd_response_header(struct httpd_response *resp, const char *name, const char *value);

#endif
