/* Agent test harness: the agent's environment and process, its topic read
 * back and verified with OpenSSL and jansson only. */
#include "tests/support/agent_harness.h"

#include <check.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/xmalloc.h"
#include "tests/support/chain.h"
#include "tests/support/configs.h"
#include "tests/support/kafka.h"
#include "tests/support/probe.h"
#include "tests/support/testutil.h"

#define STOP_TIMEOUT_MS 30000
#define WAIT_MS         30000

void ah_env_init(struct ah_env *e, const char *name, const struct ah_opts *o)
{
    memset(e, 0, sizeof(*e));
    e->dir = test_tmpdir(name);
    e->logs = xasprintf("%s/logs", e->dir);
    ck_assert_int_eq(mkdir(e->logs, 0755), 0);
    e->log = xasprintf("%s/agent.log", e->dir);
    int partitions = o->partitions ? o->partitions : 4;
    if (o->private_mock) {
        e->mock = test_kafka_mock_start(3);
        e->brokers = xstrdup(e->mock->bootstraps);
        e->topic = xasprintf("%s.%d", name, (int)getpid());
        char *cmd = xasprintf("topic create %s %d", e->topic, partitions);
        char reply[256];
        ck_assert_msg(test_kafka_mock_ctl(e->mock, cmd, reply, sizeof(reply)) == 0, "%s", reply);
        free(cmd);
    } else if (o->brokers) {
        e->brokers = xstrdup(o->brokers);
        e->topic = xasprintf("%s.%d", name, (int)getpid());
    } else {
        e->brokers = xstrdup(test_stack("STACK_KAFKA_BROKERS"));
        e->topic = o->topic ? xstrdup(o->topic) : test_kafka_topic(name, partitions);
    }
    e->port = probe_free_port();
    char *inputs = xasprintf(o->inputs, e->logs);
    char *source = xasprintf("test/%s", e->topic);
    char *ckpt = xasprintf("%s/ckpt", e->dir);
    char *path = xasprintf("%s/agent.yaml", e->dir);
    struct configs_agent c = {
        .source_name = source,
        .checkpoint_dir = ckpt,
        .brokers = e->brokers,
        .topic = e->topic,
        .http_port = e->port,
        .agent_extra = o->agent_extra,
        .inputs = inputs,
        .kafka_properties = o->kafka_properties,
        .alerts_url = o->alerts_url,
    };
    e->config = configs_write_agent(path, &c);
    free(path);
    free(ckpt);
    free(source);
    free(inputs);
}

void ah_env_release(struct ah_env *e)
{
    proc_free(e->agent);
    test_kafka_mock_stop(e->mock);
    if (!getenv("AUDITRAIL_KEEP_TMP"))
        test_rmtree(e->dir);
    free(e->dir);
    free(e->logs);
    free(e->config);
    free(e->log);
    free(e->topic);
    free(e->brokers);
    memset(e, 0, sizeof(*e));
}

char *ah_path(const struct ah_env *e, const char *name)
{
    return xasprintf("%s/%s", e->logs, name);
}

void ah_start(struct ah_env *e)
{
    if (e->agent)
        proc_restart(e->agent);
    else
        e->agent = proc_spawn_program("auditrail-agent", e->config, e->log);
}

void ah_stop(struct ah_env *e)
{
    /* A clean stop is asked of a running agent: one just restarted may not
     * have reached its signal handlers yet (SIGTERM's default action would
     * end it with 143). It answers HTTP only after installing them. */
    ck_assert_msg(probe_wait_status(e->port, "/healthz", 200, STOP_TIMEOUT_MS),
                  "agent does not answer /healthz before its stop (log %s)", e->log);
    int rc = proc_stop(e->agent, STOP_TIMEOUT_MS);
    ck_assert_msg(rc == 0, "agent exited %d on SIGTERM (log %s)", rc, e->log);
}

void ah_kill(struct ah_env *e)
{
    int rc = proc_kill(e->agent, SIGKILL);
    ck_assert_msg(rc == 128 + SIGKILL, "agent ended with %d before it was killed (log %s)", rc,
                  e->log);
}

void ah_wait_acked(struct ah_env *e, double n)
{
    ck_assert_msg(probe_wait_metric(e->port, "auditrail_agent_records_acked_total", n, WAIT_MS),
                  "the agent did not acknowledge %.0f records (log %s)", n, e->log);
}

/* --- parsing ------------------------------------------------------------ */

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Exactly 2n lower-case hex digits. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (!s || strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int h = nibble(s[2 * i]), l = nibble(s[2 * i + 1]);
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
    size_t pad = (n >= 1 && s[n - 1] == '=') + (n >= 2 && s[n - 2] == '=');
    *len = (size_t)r - pad;
    return out;
}

/* RFC 3339 ("2026-11-26T19:50:45.123456Z", or an offset) to µs; -1 when
 * it does not parse. */
static int64_t parse_time(const char *s)
{
    struct tm tm = {0};
    int n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t us = 0, scale = 100000;
    const char *p = s + n;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            us += (*p - '0') * scale;
    int64_t off = 0;
    if (*p == '+' || *p == '-') {
        int h, m;
        if (sscanf(p + 1, "%2d:%2d", &h, &m) != 2)
            return -1;
        off = (*p == '-' ? -1 : 1) * (h * 3600 + m * 60);
    } else if (*p != 'Z') {
        return -1;
    }
    return ((int64_t)timegm(&tm) - off) * 1000000 + us;
}

static char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

/* One envelope (DESIGN.md §3) into m; false when it is not one. */
static bool parse_msg(const struct tk_msg *km, struct ah_msg *m)
{
    memset(m, 0, sizeof(*m));
    json_t *o = km->val ? json_loadb(km->val, km->len, JSON_ALLOW_NUL, NULL) : NULL;
    if (!o)
        return false;
    m->key = xstrndup(km->key ? km->key : "", km->keylen);
    m->stream = jstr(o, "stream");
    m->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
    m->offset = (uint64_t)json_integer_value(json_object_get(o, "offset"));
    m->truncated = (uint64_t)json_integer_value(json_object_get(o, "truncated_bytes"));
    json_t *id = json_object_get(o, "id");
    snprintf(m->id, sizeof(m->id), "%s", json_is_string(id) ? json_string_value(id) : "");
    bool ok = m->stream && unhex(json_string_value(json_object_get(o, "hash")), m->hash, 32) == 0 &&
              unhex(json_string_value(json_object_get(o, "prev")), m->prev, 32) == 0;
    json_t *line = json_object_get(o, "line"), *b64 = json_object_get(o, "line_b64");
    if (json_is_string(line)) {
        m->line_len = json_string_length(line);
        m->line = xmemdup(json_string_value(line), m->line_len + 1);
    } else if (json_is_string(b64)) {
        m->line = b64_decode(json_string_value(b64), &m->line_len);
    }
    ok = ok && m->line;
    char *t = jstr(o, "time"), *rt = jstr(o, "read_time");
    m->time_us = parse_time(t);
    m->read_time_us = parse_time(rt);
    ok = ok && m->time_us >= 0 && m->read_time_us >= 0;
    free(t);
    free(rt);
    json_t *src = json_object_get(o, "source");
    m->path = jstr(src, "path");
    m->source_name = jstr(src, "name");
    m->format = jstr(o, "format");
    m->time_source = jstr(o, "time_source");
    json_decref(o);
    return ok;
}

static void msg_release(struct ah_msg *m)
{
    free(m->key);
    free(m->stream);
    free(m->line);
    free(m->path);
    free(m->source_name);
    free(m->format);
    free(m->time_source);
}

void ah_msgs_release(struct ah_msgs *m)
{
    for (size_t i = 0; i < m->n; i++)
        msg_release(&m->v[i]);
    free(m->v);
    memset(m, 0, sizeof(*m));
}

static void parse_all(const struct tk_msgs *km, const char *topic, struct ah_msgs *out)
{
    for (size_t i = 0; i < km->n; i++) {
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 1024;
            out->v = xrealloc(out->v, out->cap * sizeof(*out->v));
        }
        struct ah_msg *m = &out->v[out->n];
        bool ok = parse_msg(&km->v[i], m);
        out->n++; /* released with the rest, parsed or not */
        ck_assert_msg(ok, "message %s [%d] at %lld is not an envelope", topic,
                      (int)km->v[i].partition, (long long)km->v[i].offset);
    }
}

/* --- verification --------------------------------------------------------- */

/* key, hash and id of one message; false with a reason. */
static bool verify_one(const struct ah_msg *x, char *err, size_t errlen)
{
    if (strcmp(x->key, x->stream) != 0 || strlen(x->stream) != 32) {
        snprintf(err, errlen, "key %s, stream %s", x->key, x->stream);
        return false;
    }
    uint8_t h[32];
    char id[37];
    tchain_hash(x->prev, x->seq, x->line, x->line_len, h);
    tchain_uuid(h, id);
    if (memcmp(h, x->hash, 32) != 0 || strcmp(id, x->id) != 0) {
        snprintf(err, errlen, "stream %s seq %llu: hash or id mismatch", x->stream,
                 (unsigned long long)x->seq);
        return false;
    }
    return true;
}

static int cmp_msg(const void *a, const void *b)
{
    const struct ah_msg *x = a, *y = b;
    int c = strcmp(x->stream, y->stream);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool same_record(const struct ah_msg *a, const struct ah_msg *b)
{
    return strcmp(a->id, b->id) == 0 && a->line_len == b->line_len &&
           memcmp(a->line, b->line, a->line_len) == 0 && a->offset == b->offset;
}

/* Sort, drop exact re-sends; false on a fork (a different re-send). */
static bool dedupe(struct ah_msgs *m, char *err, size_t errlen)
{
    if (m->n > 1)
        qsort(m->v, m->n, sizeof(*m->v), cmp_msg);
    size_t w = 0;
    for (size_t i = 0; i < m->n; i++) {
        struct ah_msg *x = &m->v[i];
        if (w > 0 && cmp_msg(&m->v[w - 1], x) == 0) {
            if (!same_record(&m->v[w - 1], x)) {
                snprintf(err, errlen, "stream %s seq %llu: a re-send differs (fork)", x->stream,
                         (unsigned long long)x->seq);
                return false;
            }
            m->dups++;
            msg_release(x);
            continue;
        }
        m->v[w++] = *x;
    }
    m->n = w;
    return true;
}

/* seq 0..n-1 per stream, genesis, and every prev the previous hash. */
static bool verify_links(const struct ah_msgs *m, size_t *streams, char *err, size_t errlen)
{
    *streams = 0;
    for (size_t i = 0; i < m->n; i++) {
        const struct ah_msg *x = &m->v[i];
        bool first = i == 0 || strcmp(m->v[i - 1].stream, x->stream) != 0;
        uint8_t want[32];
        if (first) {
            (*streams)++;
            if (x->seq != 0) {
                snprintf(err, errlen, "stream %s starts at seq %llu", x->stream,
                         (unsigned long long)x->seq);
                return false;
            }
            tchain_genesis(x->stream, want);
        } else {
            if (x->seq != m->v[i - 1].seq + 1) {
                snprintf(err, errlen, "stream %s: gap before seq %llu", x->stream,
                         (unsigned long long)x->seq);
                return false;
            }
            memcpy(want, m->v[i - 1].hash, 32);
        }
        if (memcmp(want, x->prev, 32) != 0) {
            snprintf(err, errlen, "stream %s seq %llu: prev does not chain", x->stream,
                     (unsigned long long)x->seq);
            return false;
        }
    }
    return true;
}

static void check_count(const char *what, long want, size_t got, const char *topic)
{
    if (want != AH_ANY)
        ck_assert_msg((size_t)want == got, "%s: %zu %s, expected %ld", topic, got, what, want);
}

void ah_collect(const struct ah_env *e, struct ah_want want, struct ah_msgs *out)
{
    struct tk_msgs km = {0};
    tk_read_topic(e->brokers, e->topic, &km);
    parse_all(&km, e->topic, out);
    tk_msgs_release(&km);
    char err[256];
    for (size_t i = 0; i < out->n; i++)
        ck_assert_msg(verify_one(&out->v[i], err, sizeof(err)), "%s: %s", e->topic, err);
    ck_assert_msg(dedupe(out, err, sizeof(err)), "%s: %s", e->topic, err);
    size_t streams;
    ck_assert_msg(verify_links(out, &streams, err, sizeof(err)), "%s: %s", e->topic, err);
    check_count("records", want.records, out->n, e->topic);
    check_count("streams", want.streams, streams, e->topic);
    check_count("re-sends", want.dups, out->dups, e->topic);
}

static int cmp_key(const void *a, const void *b)
{
    return cmp_msg(*(const struct ah_msg *const *)a, *(const struct ah_msg *const *)b);
}

static size_t count_distinct(const struct ah_msgs *m)
{
    const struct ah_msg **p = xcalloc(m->n + 1, sizeof(*p));
    for (size_t i = 0; i < m->n; i++)
        p[i] = &m->v[i];
    qsort(p, m->n, sizeof(*p), cmp_key);
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += i == 0 || cmp_msg(p[i - 1], p[i]) != 0;
    free(p);
    return n;
}

bool ah_wait_distinct(const struct ah_env *e, size_t distinct, unsigned timeout_ms)
{
    uint64_t deadline = test_now_ms() + timeout_ms;
    struct tk_reader *r = tk_reader_new(e->brokers, e->topic);
    struct ah_msgs m = {0};
    bool ok = false;
    while (!ok && test_now_ms() < deadline) {
        struct tk_msgs km = {0};
        tk_reader_read(r, &km, timeout_ms);
        parse_all(&km, e->topic, &m);
        tk_msgs_release(&km);
        ok = count_distinct(&m) >= distinct;
        if (!ok) {
            struct timespec ts = {0, 200 * 1000000L}; /* let more arrive */
            nanosleep(&ts, NULL);
        }
    }
    ah_msgs_release(&m);
    tk_reader_free(r);
    return ok;
}

void ah_assert_files(const struct ah_msgs *m, const struct expect *x)
{
    struct expect_got *got = xcalloc(m->n + 1, sizeof(*got));
    for (size_t i = 0; i < m->n; i++)
        got[i] = (struct expect_got){m->v[i].stream, m->v[i].line, m->v[i].line_len};
    char why[1024];
    size_t bad = expect_match(x, got, m->n, NULL, why, sizeof(why));
    free(got);
    ck_assert_msg(bad == 0, "%zu streams or files without a partner: %s", bad, why);
}

const struct ah_msg *ah_first_of(const struct ah_msgs *m, const char *path)
{
    for (size_t i = 0; i < m->n; i++) {
        if (!m->v[i].path || strcmp(m->v[i].path, path) != 0)
            continue;
        size_t k = i;
        while (k > 0 && strcmp(m->v[k - 1].stream, m->v[i].stream) == 0)
            k--;
        return &m->v[k];
    }
    return NULL;
}
