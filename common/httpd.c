/* Embedded HTTP server on libmicrohttpd: a thread pool over epoll serving
 * /healthz, /readyz, /metrics and the application's routes. We bind the
 * listen socket ourselves so start-up errors (bad address, port in use) can
 * be reported precisely; libmicrohttpd then owns and closes it. */
#include "common/httpd.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/xmalloc.h"

#define HTTPD_CONN_TIMEOUT_S 30 /* idle keep-alive connections are closed after this */
#define HTTPD_CONN_LIMIT_MAX 16384
#define HTTPD_WANT_NOFILE    65536

struct httpd {
    struct MHD_Daemon *mhd;
    struct httpd_conf conf;
    unsigned port;
};

struct httpd_request {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
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

static void response_release(struct httpd_response *resp)
{
    free(resp->body);
    resp->body = NULL;
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
static enum MHD_Result send_response(struct MHD_Connection *conn, struct httpd_response *resp)
{
    struct MHD_Response *r;
    if (resp->body && resp->body_len > 0) {
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    static int first_call_marker;
    struct httpd *h = cls;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        /* First call: headers only. Answer once the (discarded) body is in. */
        *con_cls = &first_call_marker;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* no route takes a body */
        return MHD_YES;
    }

    struct httpd_response resp = {.status = 200};
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
    if (h->conf.handler) {
        struct httpd_request req = {.conn = conn, .method = method, .path = url};
        if (h->conf.handler(h->conf.handler_ud, &req, &resp))
            return send_response(conn, &resp);
        response_release(&resp); /* a handler that declined may have filled some */
        resp = (struct httpd_response){.status = 200};
    }
    response_json(&resp, 404, json_pack("{s:s}", "error", "not found"));
    return send_response(conn, &resp);
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
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    /* The logger must be the first option to catch every message. */
    h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
                              on_mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                              MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
                              connection_limit(), MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)HTTPD_CONN_TIMEOUT_S, MHD_OPTION_END);
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
