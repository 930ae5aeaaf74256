/* Agent test harness: process control, topic consumption, independent chain
 * verification (OpenSSL + jansson only). */
#include "tests/support/agent_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/xmalloc.h"
#include "tests/support/e2e.h"
#include "tests/support/testutil.h"

char *ah_write_config(const char *dir, const char *brokers, const char *topic, int http_port,
                      const char *agent_extra, const char *inputs, const char *kafka_extra)
{
    char *path = xasprintf("%s/agent.yaml", dir);
    char *yaml = xasprintf("agent:\n"
                           "  source_name: test/%s\n"
                           "  checkpoint_dir: %s/ckpt\n"
                           "%s"
                           "  inputs:\n"
                           "%s"
                           "kafka:\n"
                           "  brokers: %s\n"
                           "  topic: %s\n"
                           "%s"
                           "http:\n"
                           "  listen: 127.0.0.1:%d\n",
                           topic, dir, agent_extra ? agent_extra : "", inputs, brokers, topic,
                           kafka_extra ? kafka_extra : "", http_port);
    test_write_file(path, yaml, strlen(yaml), false);
    free(yaml);
    return path;
}

int ah_free_port(void)
{
    return (int)e2e_free_port();
}

pid_t ah_agent_start(const char *config, const char *log)
{
    char *bin = test_bin("auditrail-agent");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(bin, bin, "--config", config, (char *)NULL);
        _exit(127);
    }
    free(bin);
    return pid;
}

int ah_agent_stop(pid_t pid, int sig, unsigned timeout_ms)
{
    kill(pid, sig);
    uint64_t deadline = test_now_ms() + timeout_ms;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (test_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

/* HTTP: the e2e harness's client (tests/support/e2e.c) serves both. */
int ah_http_get(int port, const char *path, char **body)
{
    char *b = NULL;
    long st = e2e_http_get((unsigned)port, path, &b);
    if (body)
        *body = b ? b : xstrdup("");
    else
        free(b);
    return (int)st;
}

double ah_metric(int port, const char *name)
{
    return e2e_metric((unsigned)port, name);
}

/* --- consuming --- */

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (!s || strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int h = hex_nibble(s[2 * i]), l = hex_nibble(s[2 * i + 1]);
        if (h < 0 || l < 0)
            return -1;
        out[i] = (uint8_t)(h << 4 | l);
    }
    return 0;
}

static uint8_t *b64_decode(const char *s, size_t *len)
{
    size_t n = strlen(s);
    uint8_t *out = xmalloc(n / 4 * 3 + 4);
    int r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (r < 0) {
        free(out);
        return NULL;
    }
    size_t pad = 0;
    if (n >= 1 && s[n - 1] == '=')
        pad++;
    if (n >= 2 && s[n - 2] == '=')
        pad++;
    *len = (size_t)r - pad;
    return out;
}

static char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

static int parse_msg(const rd_kafka_message_t *km, struct ah_msg *m)
{
    memset(m, 0, sizeof(*m));
    json_error_t je;
    json_t *o = json_loadb(km->payload, km->len, JSON_ALLOW_NUL, &je);
    if (!o)
        return -1;
    m->key = km->key ? xstrndup(km->key, km->key_len) : xstrdup("");
    m->stream = jstr(o, "stream");
    m->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
    m->offset = (uint64_t)json_integer_value(json_object_get(o, "offset"));
    m->truncated = (uint64_t)json_integer_value(json_object_get(o, "truncated_bytes"));
    json_t *id = json_object_get(o, "id");
    snprintf(m->id, sizeof(m->id), "%s", json_is_string(id) ? json_string_value(id) : "");
    int rc = 0;
    json_t *h = json_object_get(o, "hash"), *p = json_object_get(o, "prev");
    if (unhex(json_string_value(h), m->hash, 32) || unhex(json_string_value(p), m->prev, 32))
        rc = -1;
    json_t *line = json_object_get(o, "line");
    json_t *b64 = json_object_get(o, "line_b64");
    if (json_is_string(line)) {
        m->line_len = json_string_length(line);
        m->line = xmemdup(json_string_value(line), m->line_len + 1);
    } else if (json_is_string(b64)) {
        m->line = b64_decode(json_string_value(b64), &m->line_len);
        if (!m->line)
            rc = -1;
    } else {
        rc = -1;
    }
    json_t *src = json_object_get(o, "source");
    m->path = src ? jstr(src, "path") : NULL;
    m->format = jstr(o, "format");
    m->time_source = jstr(o, "time_source");
    if (!m->stream)
        rc = -1;
    json_decref(o);
    return rc;
}

static void msg_release(struct ah_msg *m)
{
    free(m->key);
    free(m->stream);
    free(m->line);
    free(m->path);
    free(m->format);
    free(m->time_source);
}

void ah_msgs_free(struct ah_msgs *m)
{
    for (size_t i = 0; i < m->n; i++)
        msg_release(&m->v[i]);
    free(m->v);
    memset(m, 0, sizeof(*m));
}

/* A small open-addressing set of ids, to know when `want` distinct records
 * have arrived. */
struct idset {
    char (*slot)[37];
    size_t cap, n;
};

static bool idset_add(struct idset *s, const char *id)
{
    if ((s->n + 1) * 2 > s->cap) {
        struct idset bigger = {xcalloc(s->cap ? s->cap * 2 : 1024, 37), s->cap ? s->cap * 2 : 1024,
                               0};
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i][0])
                idset_add(&bigger, s->slot[i]);
        free(s->slot);
        *s = bigger;
    }
    uint64_t h = 1469598103934665603ull;
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    for (size_t i = h % s->cap;; i = (i + 1) % s->cap) {
        if (!s->slot[i][0]) {
            snprintf(s->slot[i], 37, "%s", id);
            s->n++;
            return true;
        }
        if (!strcmp(s->slot[i], id))
            return false;
    }
}

size_t ah_consume(const char *brokers, const char *topic, size_t want, unsigned timeout_ms,
                  struct ah_msgs *out)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err));
    rd_kafka_conf_set(c, "group.id", "ah-unused", err, sizeof(err));
    rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err));
    rd_kafka_conf_set(c, "log_level", "3", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    ck_assert_msg(rk != NULL, "consumer: %s", err);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    ck_assert_int_eq(rd_kafka_metadata(rk, 0, rkt, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(md->topic_cnt, 1);
    int parts = md->topics[0].partition_cnt;
    ck_assert_int_gt(parts, 0);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    struct idset ids = {0};
    for (size_t i = 0; i < out->n; i++)
        idset_add(&ids, out->v[i].id);
    uint64_t deadline = test_now_ms() + timeout_ms;
    size_t got = 0;
    while (ids.n < want && test_now_ms() < deadline) {
        rd_kafka_message_t *km = rd_kafka_consumer_poll(rk, 100);
        if (!km)
            continue;
        if (!km->err) {
            if (out->n == out->cap) {
                out->cap = out->cap ? 2 * out->cap : 1024;
                out->v = xrealloc(out->v, out->cap * sizeof(*out->v));
            }
            struct ah_msg *m = &out->v[out->n];
            if (parse_msg(km, m) == 0) {
                out->n++;
                got++;
                idset_add(&ids, m->id);
            } else {
                msg_release(m);
                ck_abort_msg("unparseable message at %s [%d] offset %lld", topic, km->partition,
                             (long long)km->offset);
            }
        }
        rd_kafka_message_destroy(km);
    }
    free(ids.slot);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return got;
}

static int cmp_msg(const void *a, const void *b)
{
    const struct ah_msg *x = a, *y = b;
    int c = strcmp(x->stream, y->stream);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

int ah_verify_chains(struct ah_msgs *m, size_t *dups, char *err, size_t errlen)
{
    *dups = 0;
    for (size_t i = 0; i < m->n; i++) {
        struct ah_msg *x = &m->v[i];
        if (strcmp(x->key, x->stream) != 0 || strlen(x->stream) != 32) {
            snprintf(err, errlen, "message %zu: key %s != stream %s", i, x->key, x->stream);
            return -1;
        }
        uint8_t h[32], seqb[8];
        be64(seqb, x->seq);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        EVP_DigestUpdate(ctx, x->prev, 32);
        EVP_DigestUpdate(ctx, seqb, 8);
        EVP_DigestUpdate(ctx, x->line, x->line_len);
        EVP_DigestFinal_ex(ctx, h, NULL);
        EVP_MD_CTX_free(ctx);
        if (memcmp(h, x->hash, 32) != 0) {
            snprintf(err, errlen, "stream %s seq %llu: hash mismatch", x->stream,
                     (unsigned long long)x->seq);
            return -1;
        }
        char id[37];
        snprintf(id, sizeof(id),
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", h[0], h[1],
                 h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13], h[14],
                 h[15]);
        if (strcmp(id, x->id) != 0) {
            snprintf(err, errlen, "stream %s seq %llu: id %s, expected %s", x->stream,
                     (unsigned long long)x->seq, x->id, id);
            return -1;
        }
    }
    qsort(m->v, m->n, sizeof(*m->v), cmp_msg);
    size_t w = 0;
    for (size_t i = 0; i < m->n; i++) {
        struct ah_msg *x = &m->v[i];
        if (w > 0) {
            struct ah_msg *last = &m->v[w - 1];
            if (!strcmp(last->stream, x->stream) && last->seq == x->seq) {
                if (strcmp(last->id, x->id) || last->line_len != x->line_len ||
                    memcmp(last->line, x->line, x->line_len) || last->offset != x->offset) {
                    snprintf(err, errlen, "stream %s seq %llu: a re-send differs (fork)", x->stream,
                             (unsigned long long)x->seq);
                    return -1;
                }
                (*dups)++;
                msg_release(x);
                continue;
            }
        }
        m->v[w++] = *x;
    }
    m->n = w;
    for (size_t i = 0; i < m->n; i++) {
        struct ah_msg *x = &m->v[i];
        bool first = i == 0 || strcmp(m->v[i - 1].stream, x->stream) != 0;
        uint8_t want[32];
        if (first) {
            if (x->seq != 0) {
                snprintf(err, errlen, "stream %s starts at seq %llu", x->stream,
                         (unsigned long long)x->seq);
                return -1;
            }
            char *g = xasprintf("auditrail:v1:%s", x->stream);
            SHA256((const uint8_t *)g, strlen(g), want);
            free(g);
        } else {
            if (x->seq != m->v[i - 1].seq + 1) {
                snprintf(err, errlen, "stream %s: gap before seq %llu", x->stream,
                         (unsigned long long)x->seq);
                return -1;
            }
            memcpy(want, m->v[i - 1].hash, 32);
        }
        if (memcmp(want, x->prev, 32) != 0) {
            snprintf(err, errlen, "stream %s seq %llu: prev does not chain", x->stream,
                     (unsigned long long)x->seq);
            return -1;
        }
    }
    return 0;
}

uint8_t **ah_split_lines(const uint8_t *data, size_t len, bool final, size_t **lens, size_t *n)
{
    size_t cap = 64;
    uint8_t **v = xmalloc(cap * sizeof(*v));
    *lens = xmalloc(cap * sizeof(**lens));
    *n = 0;
    size_t i = 0;
    while (i < len) {
        const uint8_t *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len;
        if (!nl && !final)
            break;
        if (end > i) {
            if (*n == cap) {
                cap *= 2;
                v = xrealloc(v, cap * sizeof(*v));
                *lens = xrealloc(*lens, cap * sizeof(**lens));
            }
            v[*n] = xmemdup(data + i, end - i);
            (*lens)[*n] = end - i;
            (*n)++;
        }
        i = end + 1;
    }
    return v;
}

void ah_lines_free(uint8_t **lines, size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    free(lens);
}

uint8_t *ah_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    uint8_t *buf = xmalloc(cap);
    for (;;) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        cap *= 2;
        buf = xrealloc(buf, cap);
    }
    fclose(f);
    *len = n;
    return buf;
}
