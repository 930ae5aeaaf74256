/* Test webhook receiver: libmicrohttpd, one internal thread, bodies kept. */
#include "tests/support/webhook.h"

#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "tests/support/testutil.h"

struct webhook {
    struct MHD_Daemon *d;
    unsigned port;
    pthread_mutex_t mu;
    char **bodies;
    size_t n, cap;
    int fail;
};

struct upload {
    char *data;
    size_t len;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **ctx)
{
    struct webhook *w = cls;
    (void)url;
    (void)version;
    struct upload *u = *ctx;
    if (!u) {
        *ctx = xcalloc(1, sizeof(*u));
        return MHD_YES;
    }
    if (*upload_size) {
        u->data = xrealloc(u->data, u->len + *upload_size + 1);
        memcpy(u->data + u->len, upload_data, *upload_size);
        u->len += *upload_size;
        u->data[u->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    unsigned status = 200;
    pthread_mutex_lock(&w->mu);
    if (w->fail) {
        status = 500;
    } else if (strcmp(method, "POST") == 0) {
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 16;
            w->bodies = xrealloc(w->bodies, w->cap * sizeof(*w->bodies));
        }
        w->bodies[w->n++] = u->data ? u->data : xstrdup("");
        u->data = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **ctx,
                    enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)conn;
    (void)code;
    struct upload *u = *ctx;
    if (u) {
        free(u->data);
        free(u);
        *ctx = NULL;
    }
}

struct webhook *webhook_start(void)
{
    struct webhook *w = xcalloc(1, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    w->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
                            on_request, w, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, w, MHD_OPTION_END);
    ck_assert_msg(w->d != NULL, "webhook: MHD_start_daemon failed");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_BIND_PORT);
    w->port = info->port;
    return w;
}

unsigned webhook_port(const struct webhook *w)
{
    return w->port;
}

char *webhook_bodies(struct webhook *w)
{
    pthread_mutex_lock(&w->mu);
    size_t len = 1;
    for (size_t i = 0; i < w->n; i++)
        len += strlen(w->bodies[i]) + 1;
    char *out = xmalloc(len), *p = out;
    for (size_t i = 0; i < w->n; i++) {
        size_t n = strlen(w->bodies[i]);
        memcpy(p, w->bodies[i], n);
        p += n;
        *p++ = '\n';
    }
    *p = '\0';
    pthread_mutex_unlock(&w->mu);
    return out;
}

size_t webhook_posts(struct webhook *w)
{
    pthread_mutex_lock(&w->mu);
    size_t n = w->n;
    pthread_mutex_unlock(&w->mu);
    return n;
}

size_t webhook_count(struct webhook *w, const char *alertname)
{
    size_t count = 0;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->n; i++) {
        json_t *arr = json_loads(w->bodies[i], 0, NULL);
        size_t k;
        json_t *al;
        json_array_foreach(arr, k, al)
        {
            const char *name =
                json_string_value(json_object_get(json_object_get(al, "labels"), "alertname"));
            if (!alertname || (name && strcmp(name, alertname) == 0))
                count++;
        }
        json_decref(arr);
    }
    pthread_mutex_unlock(&w->mu);
    return count;
}

struct hook_wait {
    struct webhook *w;
    const char *name;
};

static bool hook_got(void *ud)
{
    struct hook_wait *h = ud;
    return webhook_count(h->w, h->name) > 0;
}

bool webhook_wait(struct webhook *w, const char *alertname, unsigned timeout_ms)
{
    struct hook_wait h = {w, alertname};
    return test_wait_until(hook_got, &h, timeout_ms);
}

void webhook_fail(struct webhook *w, int fail)
{
    pthread_mutex_lock(&w->mu);
    w->fail = fail;
    pthread_mutex_unlock(&w->mu);
}

void webhook_stop(struct webhook *w)
{
    if (!w)
        return;
    MHD_stop_daemon(w->d);
    for (size_t i = 0; i < w->n; i++)
        free(w->bodies[i]);
    free(w->bodies);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
