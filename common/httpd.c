/* Embedded HTTP server on libmicrohttpd: a thread pool over epoll serving
 * /healthz, /readyz, /metrics and the application's routes. We bind the
 * listen socket ourselves so start-up errors (bad address, port in use) can
 * be reported precisely; libmicrohttpd then owns and closes it. A request
 * answered later is suspended (MHD_suspend_connection) until
 * httpd_complete resumes it; a streamed body suspends its connection while
 * the producer has nothing queued. */
#include "common/httpd.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/xmalloc.h"

#define HTTPD_CONN_TIMEOUT_S 30 /* idle keep-alive connections are closed after this */
#define HTTPD_MAX_URL        8192
#define HTTPD_CONN_MEMORY    (64 * 1024) /* per connection: request line and headers */
#define HTTPD_STREAM_BLOCK   (64 * 1024)
#define HTTPD_CONN_LIMIT_MAX 16384
#define HTTPD_WANT_NOFILE    65536

struct httpd {
    struct MHD_Daemon *mhd;
    struct httpd_conf conf;
    unsigned port;
};

enum req_state { REQ_NEW, REQ_HEADERS, REQ_LATER, REQ_DONE };

/* One request, from the request line (URI log callback) to its end
 * (completion callback). mu orders the handler's return against
 * httpd_complete from another thread. */
struct httpd_request {
    struct httpd *h;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    size_t uri_len;
    bool nul, body;
    enum req_state state;
    pthread_mutex_t mu;
    bool suspended, completed;
    struct httpd_response resp; /* httpd_complete's */
};

struct httpd_stream {
    pthread_mutex_t mu;
    struct buf data;
    size_t off; /* sent up to here */
    size_t low_water;
    bool armed, closed, ok, gone, suspended;
    int refs;
    struct MHD_Connection *conn; /* set once the response is queued */
    void (*on_drain)(void *ud, bool gone);
    void *ud;
};

static const char *const JSON_TYPE = "application/json";
static const char *const METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/* ---- request accessors */
const char *httpd_request_method(const struct httpd_request *r)
{
    return r->method;
}

const char *httpd_request_path(const struct httpd_request *r)
{
    return r->path;
}

const char *httpd_request_arg(const struct httpd_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *httpd_request_header(const struct httpd_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

struct args_walk {
    bool (*fn)(void *ud, const char *name, const char *value);
    void *ud;
};

static enum MHD_Result arg_visit(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    struct args_walk *w = cls;
    return w->fn(w->ud, key, value) ? MHD_YES : MHD_NO;
}

void httpd_request_args(const struct httpd_request *r,
                        bool (*fn)(void *ud, const char *name, const char *value), void *ud)
{
    struct args_walk w = {fn, ud};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, arg_visit, &w);
}

bool httpd_request_has_nul(const struct httpd_request *r)
{
    return r->nul;
}

void httpd_request_client(const struct httpd_request *r, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, len, "unknown");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len);
}

void httpd_response_header(struct httpd_response *resp, const char *name, const char *value)
{
    int max = (int)(sizeof(resp->headers) / sizeof(resp->headers[0]));
    if (resp->nheaders >= max) {
        log_error("httpd: more than %d response headers; '%s' dropped", max, name);
        return;
    }
    resp->headers[resp->nheaders][0] = xstrdup(name);
    resp->headers[resp->nheaders][1] = xstrdup(value);
    resp->nheaders++;
}

static void stream_unref(struct httpd_stream *s);

static void response_release(struct httpd_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    if (resp->stream) {
        stream_unref(resp->stream);
        resp->stream = NULL;
    }
    for (int i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i][0]);
        free(resp->headers[i][1]);
    }
    resp->nheaders = 0;
}

/* Body as JSON: {"key": value...} built with jansson so strings are escaped. */
static void response_json(struct httpd_response *resp, int status, json_t *obj)
{
    resp->status = status;
    resp->body = json_dumps(obj, JSON_COMPACT);
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    resp->content_type = JSON_TYPE;
    json_decref(obj);
}

/* Queue resp on the connection and release what it owns. */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max);
static void stream_free(void *cls);

static enum MHD_Result send_response(struct MHD_Connection *conn, struct httpd_response *resp)
{
    struct MHD_Response *r;
    if (resp->stream) {
        struct httpd_stream *st = resp->stream;
        resp->stream = NULL;
        pthread_mutex_lock(&st->mu);
        st->conn = conn;
        pthread_mutex_unlock(&st->mu);
        /* stream_free runs when the response is destroyed, even if it
         * could not be created: the stream's server reference goes there. */
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTPD_STREAM_BLOCK, stream_read, st,
                                              stream_free);
    } else if (resp->body && resp->body_len > 0) {
        /* jansson and xmalloc both allocate with malloc, so free() is right. */
        r = MHD_create_response_from_buffer(resp->body_len, resp->body, MHD_RESPMEM_MUST_FREE);
        if (r)
            resp->body = NULL;
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!r) {
        response_release(resp);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type : JSON_TYPE);
    for (int i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->headers[i][0], resp->headers[i][1]);
    int status = resp->status;
    if (status < 100 || status > 599)
        status = status == 0 ? 200 : 500;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    response_release(resp);
    return ret;
}

static bool route_builtin(struct httpd *h, const char *path, struct httpd_response *resp)
{
    if (strcmp(path, "/healthz") == 0) {
        response_json(resp, 200, json_pack("{s:s}", "status", "ok"));
        return true;
    }
    if (strcmp(path, "/readyz") == 0) {
        char reason[256] = "";
        bool ready = h->conf.ready ? h->conf.ready(h->conf.ready_ud, reason, sizeof(reason)) : true;
        reason[sizeof(reason) - 1] = '\0';
        if (ready)
            response_json(resp, 200, json_pack("{s:b}", "ready", 1));
        else
            response_json(
                resp, 503,
                json_pack("{s:b,s:s}", "ready", 0, "reason", reason[0] ? reason : "not ready"));
        return true;
    }
    if (strcmp(path, "/metrics") == 0) {
        resp->status = 200;
        resp->content_type = METRICS_TYPE;
        if (h->conf.metrics) {
            resp->body = metrics_render(h->conf.metrics);
            resp->body_len = strlen(resp->body);
        }
        return true;
    }
    return false;
}

static bool is_builtin(const char *path)
{
    return strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
           strcmp(path, "/metrics") == 0;
}

static enum MHD_Result error_response(struct MHD_Connection *conn, int status, const char *msg,
                                      const char *code)
{
    struct httpd_response resp = {.status = status};
    response_json(&resp, status, json_pack("{s:s,s:s}", "error", msg, "code", code));
    return send_response(conn, &resp);
}

/* Route a fully received request: built-in, asynchronous, synchronous,
 * 404. */
static enum MHD_Result route(struct httpd *h, struct httpd_request *req)
{
    struct MHD_Connection *conn = req->conn;
    struct httpd_response resp = {.status = 200};
    const char *url = req->path, *method = req->method;
    bool get =
        strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (is_builtin(url)) {
        if (!get) {
            response_json(&resp, 405, json_pack("{s:s}", "error", "method not allowed"));
            httpd_response_header(&resp, "Allow", "GET, HEAD");
            return send_response(conn, &resp);
        }
        route_builtin(h, url, &resp);
        httpd_response_header(&resp, "Cache-Control", "no-store");
        return send_response(conn, &resp);
    }
    if (h->conf.async) {
        pthread_mutex_lock(&req->mu);
        enum httpd_route rt = h->conf.async(h->conf.async_ud, req, &resp);
        if (rt == HTTPD_LATER) {
            req->state = REQ_LATER;
            if (!req->completed) {
                req->suspended = true;
                MHD_suspend_connection(conn);
                pthread_mutex_unlock(&req->mu);
                return MHD_YES;
            }
            /* completed before we could suspend: answer now */
            resp = req->resp;
            req->resp = (struct httpd_response){0};
            req->state = REQ_DONE;
            pthread_mutex_unlock(&req->mu);
            return send_response(conn, &resp);
        }
        pthread_mutex_unlock(&req->mu);
        if (rt == HTTPD_ANSWERED)
            return send_response(conn, &resp);
        response_release(&resp);
        resp = (struct httpd_response){.status = 200};
    }
    if (h->conf.handler) {
        if (h->conf.handler(h->conf.handler_ud, req, &resp))
            return send_response(conn, &resp);
        response_release(&resp); /* a handler that declined may have filled some */
        resp = (struct httpd_response){.status = 200};
    }
    response_json(&resp, 404, json_pack("{s:s}", "error", "not found"));
    return send_response(conn, &resp);
}

void httpd_complete(struct httpd_request *r, struct httpd_response *resp)
{
    pthread_mutex_lock(&r->mu);
    r->resp = *resp;
    *resp = (struct httpd_response){0};
    r->completed = true;
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    }
    pthread_mutex_unlock(&r->mu);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct httpd *h = cls;
    struct httpd_request *req = *con_cls; /* made by on_uri */
    (void)version;
    (void)upload_data;
    if (!req)
        return MHD_NO;
    if (req->state == REQ_NEW) {
        /* Headers are in: refuse what is too large before reading more. */
        req->state = REQ_HEADERS;
        req->conn = conn;
        req->method = method;
        req->path = url;
        if (req->uri_len > (h->conf.max_url ? h->conf.max_url : HTTPD_MAX_URL))
            return error_response(conn, 414, "request target too long", "uri_too_long");
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strspn(cl, "0") != strlen(cl) && !is_builtin(url) && h->conf.async)
            return error_response(conn, 413, "request bodies are not accepted", "too_large");
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        req->body = true;
        *upload_data_size = 0; /* no route takes a body */
        return MHD_YES;
    }
    if (req->state == REQ_LATER) {
        /* resumed by httpd_complete */
        pthread_mutex_lock(&req->mu);
        struct httpd_response resp = req->resp;
        req->resp = (struct httpd_response){0};
        req->state = REQ_DONE;
        pthread_mutex_unlock(&req->mu);
        return send_response(conn, &resp);
    }
    if (req->state == REQ_DONE)
        return MHD_YES;
    if (req->body && h->conf.async && !is_builtin(url))
        return error_response(conn, 413, "request bodies are not accepted", "too_large");
    return route(h, req);
}

/* The request line has been read: make the request's state. The raw target
 * tells its length and whether it encodes a NUL. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct httpd_request *req = xcalloc(1, sizeof(*req));
    req->h = cls;
    req->conn = conn;
    req->uri_len = strlen(uri);
    req->nul = strstr(uri, "%00") != NULL;
    pthread_mutex_init(&req->mu, NULL);
    return req;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct httpd_request *req = *con_cls;
    if (!req)
        return;
    response_release(&req->resp);
    pthread_mutex_destroy(&req->mu);
    free(req);
    *con_cls = NULL;
}

/* ---- streamed bodies */
struct httpd_stream *httpd_stream_new(size_t low_water, void (*on_drain)(void *ud, bool gone),
                                      void *ud)
{
    struct httpd_stream *s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->low_water = low_water;
    s->on_drain = on_drain;
    s->ud = ud;
    s->refs = 2; /* the producer's, and the one the response takes */
    return s;
}

static void stream_unref(struct httpd_stream *s)
{
    pthread_mutex_lock(&s->mu);
    int left = --s->refs;
    pthread_mutex_unlock(&s->mu);
    if (left > 0)
        return;
    buf_release(&s->data);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void httpd_stream_release(struct httpd_stream *s)
{
    if (s)
        stream_unref(s);
}

/* With s->mu held: resume the connection if the reader suspended it. */
static void stream_wake(struct httpd_stream *s)
{
    if (s->suspended && s->conn) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

int httpd_stream_write(struct httpd_stream *s, const void *data, size_t len)
{
    pthread_mutex_lock(&s->mu);
    int rc = -1;
    if (!s->gone && !s->closed) {
        if (s->off) { /* drop what was sent: memory stays pending + len */
            memmove(s->data.p, s->data.p + s->off, s->data.len - s->off);
            s->data.len -= s->off;
            s->off = 0;
        }
        buf_add(&s->data, data, len);
        s->armed = true;
        stream_wake(s);
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void httpd_stream_close(struct httpd_stream *s, bool ok)
{
    pthread_mutex_lock(&s->mu);
    if (!s->closed) {
        s->closed = true;
        s->ok = ok;
    }
    stream_wake(s);
    pthread_mutex_unlock(&s->mu);
}

size_t httpd_stream_pending(struct httpd_stream *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->data.len - s->off;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    struct httpd_stream *s = cls;
    ssize_t n = 0;
    bool drain = false;
    pthread_mutex_lock(&s->mu);
    size_t avail = s->data.len - s->off;
    if (avail > 0) {
        size_t k = avail < max ? avail : max;
        memcpy(out, s->data.p + s->off, k);
        s->off += k;
        if (s->off == s->data.len) {
            buf_reset(&s->data);
            s->off = 0;
        }
        n = (ssize_t)k;
    } else if (s->closed) {
        n = s->ok ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    } else {
        /* Nothing yet: leave the event loop until the producer writes
         * (suspending from the reader is what libmicrohttpd allows). */
        s->suspended = true;
        MHD_suspend_connection(s->conn);
    }
    if (s->armed && !s->closed && s->data.len - s->off <= s->low_water) {
        s->armed = false;
        drain = true;
    }
    pthread_mutex_unlock(&s->mu);
    if (drain && s->on_drain)
        s->on_drain(s->ud, false);
    return n;
}

static void stream_free(void *cls)
{
    struct httpd_stream *s = cls;
    pthread_mutex_lock(&s->mu);
    s->gone = true;
    s->conn = NULL;
    s->suspended = false;
    pthread_mutex_unlock(&s->mu);
    if (s->on_drain)
        s->on_drain(s->ud, true);
    stream_unref(s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_warn("httpd: %s", msg);
}

/* ---- listen address */
static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Split "host:port" / "[v6]:port" / ":port" into host (NULL = any) and port. */
static int parse_listen(const char *listen, char *host, size_t hostlen, unsigned *port, char *err,
                        size_t errlen)
{
    const char *colon;
    const char *h = listen;
    size_t hlen;
    if (!listen || !*listen) {
        set_err(err, errlen, "listen address is empty (want host:port)");
        return -1;
    }
    if (listen[0] == '[') {
        const char *rb = strchr(listen, ']');
        if (!rb || rb[1] != ':') {
            set_err(err, errlen, "bad listen address '%s' (want [v6addr]:port)", listen);
            return -1;
        }
        h = listen + 1;
        hlen = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || memchr(listen, ':', (size_t)(colon - listen))) {
            set_err(err, errlen, "bad listen address '%s' (want host:port or [v6]:port)", listen);
            return -1;
        }
        hlen = (size_t)(colon - listen);
    }
    const char *p = colon + 1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(p, &end, 10);
    if (!*p || *end || errno || v > 65535 || *p == '-' || *p == '+') {
        set_err(err, errlen, "bad port in listen address '%s'", listen);
        return -1;
    }
    if (hlen >= hostlen) {
        set_err(err, errlen, "host too long in listen address '%s'", listen);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (unsigned)v;
    return 0;
}

static bool looks_numeric(const char *host)
{
    return strspn(host, "0123456789.:abcdefABCDEF") == strlen(host) &&
           strspn(host, "0123456789.") > 0;
}

static bool listen_ok(int fd)
{
    return listen(fd, 1024) == 0;
}

/* Bind and listen; returns the socket or -1 with err set. */
static int bind_listen(const char *addr, unsigned *port_out, char *err, size_t errlen)
{
    char host[256];
    unsigned port;
    int fd = -1;
    struct addrinfo *res = NULL;
    if (parse_listen(addr, host, sizeof(host), &port, err, errlen) < 0)
        goto out;
    bool any = host[0] == '\0' || strcmp(host, "*") == 0;
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST};
    int rc = getaddrinfo(any ? NULL : host, service, &hints, &res);
    if (rc == EAI_NONAME && !any && !looks_numeric(host)) {
        /* A name such as "localhost": let the resolver have it. */
        hints.ai_flags &= ~AI_NUMERICHOST;
        rc = getaddrinfo(host, service, &hints, &res);
    }
    if (rc != 0) {
        set_err(err, errlen, "listen address '%s': %s", addr, gai_strerror(rc));
        res = NULL;
        goto out;
    }
    int last_errno = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        /* SO_REUSEADDR (not SO_REUSEPORT): quick restarts, yet a port held
         * by another process is still an error. */
        int on = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen_ok(fd))
            break;
        last_errno = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        set_err(err, errlen, "listen on '%s': %s", addr, strerror(last_errno));
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
out:
    if (res)
        freeaddrinfo(res);
    return fd;
}

/* 1000 concurrent clients need as many descriptors: raise the soft limit
 * toward the hard one (the process only ever gains by it), and size the
 * connection limit from what we got. */
static unsigned connection_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1000;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < HTTPD_WANT_NOFILE) {
        rlim_t want = HTTPD_WANT_NOFILE;
        if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
            want = rl.rlim_max;
        if (want > rl.rlim_cur) {
            struct rlimit nrl = {.rlim_cur = want, .rlim_max = rl.rlim_max};
            if (setrlimit(RLIMIT_NOFILE, &nrl) == 0)
                rl.rlim_cur = want;
        }
    }
    rlim_t lim = rl.rlim_cur == RLIM_INFINITY ? HTTPD_CONN_LIMIT_MAX : rl.rlim_cur;
    /* Leave room for the program's own files, database and Kafka sockets. */
    lim = lim > 256 ? lim - 128 : lim / 2;
    if (lim > HTTPD_CONN_LIMIT_MAX)
        lim = HTTPD_CONN_LIMIT_MAX;
    return (unsigned)lim;
}

struct httpd *httpd_start(const struct httpd_conf *conf, char *err, size_t errlen)
{
    struct httpd *h = NULL;
    unsigned port = 0;
    int fd = bind_listen(conf->listen, &port, err, errlen);
    if (fd < 0)
        return NULL;
    h = xcalloc(1, sizeof(*h));
    h->conf = *conf;
    h->conf.listen = NULL; /* not ours to keep */
    h->port = port;
    unsigned threads = conf->threads ? conf->threads : 2;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    bool tls = conf->tls_cert_pem && conf->tls_key_pem;
    if (tls)
        flags |= MHD_USE_TLS;
    unsigned limit = connection_limit();
    if (conf->conn_limit && conf->conn_limit < limit)
        limit = conf->conn_limit;
    unsigned timeout = conf->conn_timeout_s ? conf->conn_timeout_s : HTTPD_CONN_TIMEOUT_S;
    /* The logger must be the first option to catch every message. The TLS
     * options come last: without TLS they are not passed at all. */
    h->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT, timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTPD_CONN_MEMORY, MHD_OPTION_URI_LOG_CALLBACK,
        on_uri, h, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, conf->tls_key_pem,
        MHD_OPTION_HTTPS_MEM_CERT, conf->tls_cert_pem, MHD_OPTION_END);
    if (!h->mhd) {
        set_err(err, errlen, "listen on '%s': libmicrohttpd failed to start", conf->listen);
        /* libmicrohttpd may or may not have closed the socket on its way out. */
        if (fcntl(fd, F_GETFD) != -1)
            close(fd);
        free(h);
        return NULL;
    }
    return h;
}

unsigned httpd_port(const struct httpd *h)
{
    return h->port;
}

void httpd_stop(struct httpd *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->mhd); /* joins the pool: no handler runs after this */
    free(h);
}
