/* The control socket of kafka-mock: parses one command per line and applies
 * it to the librdkafka mock cluster. One thread (the caller's) polls the
 * listening socket and every client, so commands are applied in arrival order
 * and no locking is needed around the cluster handle. */
#include "tools/kafka-mock/control.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"

#define CONTROL_MAX_ARGS   8
#define CONTROL_LINE_MAX   1024
#define CONTROL_MAX_CLIENT 64

struct control_client {
    int fd;
    size_t used;
    char buf[CONTROL_LINE_MAX];
};

struct control_server {
    int listen_fd;
    char *path;
    const struct control_target *target;
    struct control_client *clients[CONTROL_MAX_CLIENT];
};

static int reply_set(char *reply, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int reply_set(char *reply, size_t len, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reply, len, fmt, ap);
    va_end(ap);
    return rc;
}

/* Strict integer parse: the whole token must be a number within [lo, hi]. */
static bool parse_int(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int broker_updown(const struct control_target *t, int32_t id, bool up, char *reply,
                         size_t len)
{
    rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(t->cluster, id)
                                 : rd_kafka_mock_broker_set_down(t->cluster, id);
    if (err)
        return reply_set(reply, len, -1, "error: broker %d: %s", (int)id, rd_kafka_err2str(err));
    return 0;
}

static int cmd_broker(const struct control_target *t, int argc, char **argv, char *reply,
                      size_t len)
{
    long id, ms;
    if (argc == 3 && (strcmp(argv[1], "down") == 0 || strcmp(argv[1], "up") == 0)) {
        if (!parse_int(argv[2], 1, t->broker_cnt, &id))
            return reply_set(reply, len, -1, "error: broker id must be 1..%d", t->broker_cnt);
        if (broker_updown(t, (int32_t)id, argv[1][0] == 'u', reply, len))
            return -1;
        return reply_set(reply, len, 0, "ok");
    }
    if (argc == 4 && strcmp(argv[1], "rtt") == 0) {
        if (!parse_int(argv[2], 1, t->broker_cnt, &id) || !parse_int(argv[3], 0, INT_MAX, &ms))
            return reply_set(reply, len, -1, "error: usage: broker rtt ID MS");
        rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_rtt(t->cluster, (int32_t)id, (int)ms);
        if (err)
            return reply_set(reply, len, -1, "error: %s", rd_kafka_err2str(err));
        return reply_set(reply, len, 0, "ok");
    }
    return reply_set(reply, len, -1, "error: usage: broker down|up ID | broker rtt ID MS");
}

static int cmd_brokers(const struct control_target *t, int argc, char **argv, char *reply,
                       size_t len)
{
    if (argc != 2 || (strcmp(argv[1], "down") != 0 && strcmp(argv[1], "up") != 0))
        return reply_set(reply, len, -1, "error: usage: brokers down|up");
    /* One call per broker: whether -1 means "all" differs between librdkafka
     * versions. */
    for (int id = 1; id <= t->broker_cnt; id++)
        if (broker_updown(t, id, argv[1][0] == 'u', reply, len))
            return -1;
    return reply_set(reply, len, 0, "ok");
}

static int cmd_topic(const struct control_target *t, int argc, char **argv, char *reply, size_t len)
{
    long parts, repl = t->broker_cnt < 3 ? t->broker_cnt : 3, code;
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "create") == 0) {
        if (!parse_int(argv[3], 1, 100000, &parts) ||
            (argc == 5 && !parse_int(argv[4], 1, t->broker_cnt, &repl)))
            return reply_set(reply, len, -1,
                             "error: usage: topic create NAME PARTITIONS [REPLICATION<=%d]",
                             t->broker_cnt);
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(t->cluster, argv[2], (int)parts, (int)repl);
        if (err)
            return reply_set(reply, len, -1, "error: %s", rd_kafka_err2str(err));
        return reply_set(reply, len, 0, "ok");
    }
    if (argc == 4 && strcmp(argv[1], "error") == 0) {
        if (!parse_int(argv[3], INT_MIN, INT_MAX, &code))
            return reply_set(reply, len, -1, "error: usage: topic error NAME ERR_CODE");
        rd_kafka_mock_topic_set_error(t->cluster, argv[2], (rd_kafka_resp_err_t)code);
        return reply_set(reply, len, 0, "ok");
    }
    return reply_set(reply, len, -1,
                     "error: usage: topic create NAME PARTITIONS [REPLICATION] | topic error "
                     "NAME ERR_CODE");
}

static int cmd_errors(const struct control_target *t, int argc, char **argv, char *reply,
                      size_t len)
{
    long api, code, cnt = 1;
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "push") == 0) {
        if (!parse_int(argv[2], 0, 1000, &api) || !parse_int(argv[3], INT_MIN, INT_MAX, &code) ||
            (argc == 5 && !parse_int(argv[4], 1, 10000, &cnt)))
            return reply_set(reply, len, -1, "error: usage: errors push API_KEY ERR_CODE [COUNT]");
        rd_kafka_resp_err_t *errs = xcalloc((size_t)cnt, sizeof(*errs));
        for (long i = 0; i < cnt; i++)
            errs[i] = (rd_kafka_resp_err_t)code;
        rd_kafka_mock_push_request_errors_array(t->cluster, (int16_t)api, (size_t)cnt, errs);
        free(errs);
        return reply_set(reply, len, 0, "ok");
    }
    if (argc == 3 && strcmp(argv[1], "clear") == 0) {
        if (!parse_int(argv[2], 0, 1000, &api))
            return reply_set(reply, len, -1, "error: usage: errors clear API_KEY");
        rd_kafka_mock_clear_request_errors(t->cluster, (int16_t)api);
        return reply_set(reply, len, 0, "ok");
    }
    return reply_set(reply, len, -1,
                     "error: usage: errors push API_KEY ERR_CODE [COUNT] | errors clear API_KEY");
}

static int cmd_leader(const struct control_target *t, int argc, char **argv, char *reply,
                      size_t len)
{
    long part, id;
    /* -1 makes the partition leaderless, as librdkafka allows. */
    if (argc != 4 || !parse_int(argv[2], 0, INT32_MAX, &part) ||
        !parse_int(argv[3], -1, t->broker_cnt, &id) || id == 0)
        return reply_set(reply, len, -1, "error: usage: leader NAME PARTITION BROKER_ID|-1");
    rd_kafka_resp_err_t err =
        rd_kafka_mock_partition_set_leader(t->cluster, argv[1], (int32_t)part, (int32_t)id);
    if (err)
        return reply_set(reply, len, -1, "error: %s", rd_kafka_err2str(err));
    return reply_set(reply, len, 0, "ok");
}

/* Kafka moves a group's coordinator when its broker fails; the mock does not,
 * so a test that takes a broker down moves it, as the cluster would. */
static int cmd_coordinator(const struct control_target *t, int argc, char **argv, char *reply,
                           size_t len)
{
    long id;
    if (argc != 4 || strcmp(argv[1], "group") != 0 || !parse_int(argv[3], 1, t->broker_cnt, &id))
        return reply_set(reply, len, -1, "error: usage: coordinator group NAME BROKER_ID");
    rd_kafka_resp_err_t err =
        rd_kafka_mock_coordinator_set(t->cluster, "group", argv[2], (int32_t)id);
    if (err)
        return reply_set(reply, len, -1, "error: %s", rd_kafka_err2str(err));
    return reply_set(reply, len, 0, "ok");
}

int control_exec(const struct control_target *t, const char *line, char *reply, size_t len)
{
    char copy[CONTROL_LINE_MAX];
    char *argv[CONTROL_MAX_ARGS + 1];
    int argc = 0;
    char *save = NULL;

    if (strlen(line) >= sizeof(copy))
        return reply_set(reply, len, -1, "error: line too long");
    snprintf(copy, sizeof(copy), "%s", line);
    for (char *tok = strtok_r(copy, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save)) {
        if (argc == CONTROL_MAX_ARGS)
            return reply_set(reply, len, -1, "error: too many arguments");
        argv[argc++] = tok;
    }
    if (argc == 0)
        return reply_set(reply, len, -1, "error: empty command");

    const char *cmd = argv[0];
    if (strcmp(cmd, "ping") == 0 && argc == 1)
        return reply_set(reply, len, 0, "ok pong");
    if (strcmp(cmd, "bootstrap") == 0 && argc == 1)
        return reply_set(reply, len, 0, "ok %s", t->bootstraps);
    if (strcmp(cmd, "broker") == 0)
        return cmd_broker(t, argc, argv, reply, len);
    if (strcmp(cmd, "brokers") == 0)
        return cmd_brokers(t, argc, argv, reply, len);
    if (strcmp(cmd, "topic") == 0)
        return cmd_topic(t, argc, argv, reply, len);
    if (strcmp(cmd, "errors") == 0)
        return cmd_errors(t, argc, argv, reply, len);
    if (strcmp(cmd, "leader") == 0)
        return cmd_leader(t, argc, argv, reply, len);
    if (strcmp(cmd, "coordinator") == 0)
        return cmd_coordinator(t, argc, argv, reply, len);
    return reply_set(reply, len, -1, "error: unknown command '%s'", cmd);
}

struct control_server *control_server_new(const char *path, const struct control_target *t)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_error("control socket path too long (max %zu): %s", sizeof(sa.sun_path) - 1, path);
        return NULL;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error("control socket: %s", strerror(errno));
        return NULL;
    }
    /* A socket file left by a killed mock would make bind fail. */
    if (unlink(path) < 0 && errno != ENOENT) {
        log_error("control socket %s: unlink: %s", path, strerror(errno));
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
        log_error("control socket %s: %s", path, strerror(errno));
        goto fail;
    }
    struct control_server *srv = xcalloc(1, sizeof(*srv));
    srv->listen_fd = fd;
    srv->path = xstrdup(path);
    srv->target = t;
    return srv;
fail:
    close(fd);
    return NULL;
}

static void client_close(struct control_server *srv, int i)
{
    close(srv->clients[i]->fd);
    free(srv->clients[i]);
    srv->clients[i] = NULL;
}

static void server_accept(struct control_server *srv)
{
    int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (int i = 0; i < CONTROL_MAX_CLIENT; i++) {
        if (!srv->clients[i]) {
            srv->clients[i] = xcalloc(1, sizeof(*srv->clients[i]));
            srv->clients[i]->fd = fd;
            return;
        }
    }
    static const char busy[] = "error: too many control clients\n";
    (void)!write(fd, busy, sizeof(busy) - 1);
    close(fd);
}

/* Write the whole reply; the clients are small and read promptly, so a
 * blocking write is fine. Returns -1 when the client is gone. */
static int client_reply(int fd, const char *reply)
{
    char out[CONTROL_LINE_MAX + 2];
    int n = snprintf(out, sizeof(out), "%s\n", reply);
    const char *p = out;
    size_t left = (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1;
    while (left > 0) {
        ssize_t w = send(fd, p, left, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    return 0;
}

/* Read what is available and answer every complete line. */
static void client_readable(struct control_server *srv, int i)
{
    struct control_client *c = srv->clients[i];
    ssize_t r = read(c->fd, c->buf + c->used, sizeof(c->buf) - 1 - c->used);
    if (r <= 0) {
        if (r < 0 && errno == EINTR)
            return;
        client_close(srv, i);
        return;
    }
    c->used += (size_t)r;
    c->buf[c->used] = '\0';

    char *start = c->buf;
    char *nl;
    while ((nl = strchr(start, '\n'))) {
        *nl = '\0';
        char reply[CONTROL_LINE_MAX];
        int rc = control_exec(srv->target, start, reply, sizeof(reply));
        log_info("control: '%s' -> %s", start, rc == 0 ? "ok" : reply);
        if (client_reply(c->fd, reply) < 0) {
            client_close(srv, i);
            return;
        }
        start = nl + 1;
    }
    c->used = strlen(start);
    memmove(c->buf, start, c->used + 1);
    if (c->used == sizeof(c->buf) - 1) {
        (void)client_reply(c->fd, "error: line too long");
        client_close(srv, i);
    }
}

int control_server_run(struct control_server *srv, int stop_fd)
{
    for (;;) {
        struct pollfd pfd[CONTROL_MAX_CLIENT + 2];
        int idx[CONTROL_MAX_CLIENT + 2];
        nfds_t n = 0;
        pfd[n] = (struct pollfd){.fd = stop_fd, .events = POLLIN};
        idx[n++] = -2;
        pfd[n] = (struct pollfd){.fd = srv->listen_fd, .events = POLLIN};
        idx[n++] = -1;
        for (int i = 0; i < CONTROL_MAX_CLIENT; i++) {
            if (srv->clients[i]) {
                pfd[n] = (struct pollfd){.fd = srv->clients[i]->fd, .events = POLLIN};
                idx[n++] = i;
            }
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("control: poll: %s", strerror(errno));
            return -1;
        }
        if (pfd[0].revents)
            return 0;
        for (nfds_t k = 1; k < n; k++) {
            if (!pfd[k].revents)
                continue;
            if (idx[k] == -1)
                server_accept(srv);
            else if (srv->clients[idx[k]])
                client_readable(srv, idx[k]);
        }
    }
}

void control_server_free(struct control_server *srv)
{
    if (!srv)
        return;
    for (int i = 0; i < CONTROL_MAX_CLIENT; i++)
        if (srv->clients[i])
            client_close(srv, i);
    close(srv->listen_fd);
    unlink(srv->path);
    free(srv->path);
    free(srv);
}

int control_send(const char *path, const char *command, char *reply, size_t len, int timeout_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int rc = -1;
    size_t used = 0;
    int fd = -1;

    if (strlen(path) >= sizeof(sa.sun_path))
        return reply_set(reply, len, -1, "control socket path too long");
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        reply_set(reply, len, -1, "connect %s: %s", path, strerror(errno));
        goto out;
    }
    char line[CONTROL_LINE_MAX];
    snprintf(line, sizeof(line), "%s", command);
    line[strcspn(line, "\n")] = '\0';
    if (client_reply(fd, line) < 0) {
        reply_set(reply, len, -1, "send: %s", strerror(errno));
        goto out;
    }
    char buf[CONTROL_LINE_MAX];
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            reply_set(reply, len, -1, "no reply within %d ms", timeout_ms);
            goto out;
        }
        ssize_t r = read(fd, buf + used, sizeof(buf) - 1 - used);
        if (r <= 0) {
            reply_set(reply, len, -1, "connection closed without a reply");
            goto out;
        }
        used += (size_t)r;
        buf[used] = '\0';
        char *nl = strchr(buf, '\n');
        if (nl || used == sizeof(buf) - 1) {
            if (nl)
                *nl = '\0';
            break;
        }
    }
    snprintf(reply, len, "%s", buf);
    rc = strncmp(buf, "ok", 2) == 0 ? 0 : 1;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}
