/* Planted secrets and the search for them (tests/support/secrets.h). */
#include "tests/support/secrets.h"

#include <check.h>
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "tests/support/kafka.h"
#include "tests/support/testutil.h"

#define REDIS_USER "auditrail-planted"

static const char *const planted[] = {SECRET_PG, SECRET_REDIS, SECRET_ALERTS, SECRET_ALERT_TOKEN,
                                      SECRET_SASL};

char *secrets_conninfo(const char *conninfo)
{
    return xasprintf("%s password=%s", conninfo, SECRET_PG);
}

char *secrets_redis_url(void)
{
    const char *port = test_stack("STACK_REDIS_PORT");
    redisContext *c = redisConnect("127.0.0.1", atoi(port));
    ck_assert_msg(c && !c->err, "redis: %s", c ? c->errstr : "no context");
    redisReply *x = redisCommand(c, "ACL SETUSER %s on >%s ~* &* +@all", REDIS_USER, SECRET_REDIS);
    ck_assert_msg(x && x->type == REDIS_REPLY_STATUS, "ACL SETUSER: %s",
                  x && x->str ? x->str : "no reply");
    freeReplyObject(x);
    redisFree(c);
    return xasprintf("redis://%s:%s@127.0.0.1:%s/0", REDIS_USER, SECRET_REDIS, port);
}

char *secrets_alerts_url(unsigned port)
{
    return xasprintf("http://alertuser:%s@127.0.0.1:%u/api/v2/alerts?token=%s", SECRET_ALERTS, port,
                     SECRET_ALERT_TOKEN);
}

const char *secrets_kafka_properties(void)
{
    return "    sasl.username: \"sasluser\"\n"
           "    sasl.password: \"" SECRET_SASL "\"\n";
}

/* The first planted string in text[0, len), or NULL. */
static const char *find(const char *text, size_t len, bool marker, const char **at)
{
    for (size_t i = 0; i < sizeof(planted) / sizeof(planted[0]); i++)
        if ((*at = memmem(text, len, planted[i], strlen(planted[i]))) != NULL)
            return planted[i];
    if (marker && (*at = memmem(text, len, SECRET_MARKER, strlen(SECRET_MARKER))) != NULL)
        return SECRET_MARKER;
    return NULL;
}

/* Fail with the line around a hit. */
static void assert_clean(const char *what, const char *text, size_t len, bool marker)
{
    const char *at;
    const char *s = find(text, len, marker, &at);
    if (!s)
        return;
    const char *ls = at, *le = at;
    while (ls > text && ls[-1] != '\n')
        ls--;
    while (le < text + len && *le != '\n')
        le++;
    ck_abort_msg("%s shows %s: %.*s", what, s, (int)(le - ls > 600 ? 600 : le - ls), ls);
}

void secrets_assert_file_clean(const char *path, bool marker)
{
    size_t len = 0;
    uint8_t *data = test_read_file(path, &len);
    assert_clean(path, (const char *)data, len, marker);
    free(data);
}

void secrets_assert_dlq_clean(const char *brokers, const char *topic)
{
    struct tk_msgs m = {0};
    tk_read_topic(brokers, topic, &m);
    for (size_t i = 0; i < m.n; i++) {
        const char *name;
        const void *val;
        size_t size;
        for (size_t k = 0;
             m.v[i].headers && rd_kafka_header_get_all(m.v[i].headers, k, &name, &val, &size) == 0;
             k++) {
            char what[256];
            snprintf(what, sizeof(what), "DLQ %s message %zu header %s", topic, i, name);
            assert_clean(what, val, size, true);
        }
    }
    tk_msgs_release(&m);
}

void secrets_assert_webhook_clean(struct webhook *w)
{
    char *b = webhook_bodies(w);
    assert_clean("an alert body", b, strlen(b), true);
    free(b);
}
