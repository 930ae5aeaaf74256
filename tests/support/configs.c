/* Test configurations of auditrail-agent and auditrail-aggregator. */
#include "tests/support/configs.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

/* Consumer-group timeouts short enough for kafka-mock's rebalances to
 * finish within seconds, and metadata refreshed quickly after faults. */
static const char KAFKA_GROUP_PROPERTIES[] = "    session.timeout.ms: \"6000\"\n"
                                             "    heartbeat.interval.ms: \"500\"\n"
                                             "    max.poll.interval.ms: \"10000\"\n"
                                             "    topic.metadata.refresh.interval.ms: \"1000\"\n";

/* A YAML double-quoted scalar: conninfos and URLs carry quotes and colons. */
static void add_quoted(struct buf *b, const char *s)
{
    buf_addc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_addc(b, '\\');
        buf_addc(b, *s);
    }
    buf_addc(b, '"');
}

static void add_key(struct buf *b, const char *indent_key, const char *value)
{
    buf_adds(b, indent_key);
    add_quoted(b, value);
    buf_addc(b, '\n');
}

static void add_common(struct buf *b, const char *alerts_url, unsigned http_port)
{
    if (alerts_url) {
        BUF_LIT(b, "alerts:\n");
        add_key(b, "  url: ", alerts_url);
        BUF_LIT(b, "  min_interval_ms: 1000\n");
    }
    buf_addf(b, "http:\n  listen: 127.0.0.1:%u\n", http_port);
}

static char *write_out(const char *path, struct buf *b)
{
    test_write_file(path, b->p, b->len, false);
    buf_release(b);
    return xstrdup(path);
}

char *configs_write_agent(const char *path, const struct configs_agent *c)
{
    struct buf b = BUF_INIT;
    BUF_LIT(&b, "agent:\n");
    add_key(&b, "  source_name: ", c->source_name);
    add_key(&b, "  checkpoint_dir: ", c->checkpoint_dir);
    buf_adds(&b, c->agent_extra ? c->agent_extra : "");
    BUF_LIT(&b, "  inputs:\n");
    buf_adds(&b, c->inputs);
    BUF_LIT(&b, "kafka:\n");
    add_key(&b, "  brokers: ", c->brokers);
    add_key(&b, "  topic: ", c->topic);
    if (c->kafka_properties) {
        BUF_LIT(&b, "  properties:\n");
        buf_adds(&b, c->kafka_properties);
    }
    add_common(&b, c->alerts_url, c->http_port);
    return write_out(path, &b);
}

char *configs_write_aggregator(const char *path, const struct configs_aggregator *c)
{
    struct buf b = BUF_INIT;
    BUF_LIT(&b, "kafka:\n");
    add_key(&b, "  brokers: ", c->brokers);
    add_key(&b, "  topic: ", c->topic);
    add_key(&b, "  group: ", c->group);
    add_key(&b, "  dlq_topic: ", c->dlq_topic);
    buf_adds(&b, c->kafka_extra ? c->kafka_extra : "");
    BUF_LIT(&b, "  properties:\n");
    BUF_LIT(&b, KAFKA_GROUP_PROPERTIES);
    buf_adds(&b, c->kafka_properties ? c->kafka_properties : "");
    BUF_LIT(&b, "postgres:\n");
    add_key(&b, "  primary: ", c->postgres);
    if (c->redis_url) {
        BUF_LIT(&b, "redis:\n");
        add_key(&b, "  url: ", c->redis_url);
        BUF_LIT(&b, "  timeout_ms: 200\n");
    }
    buf_addf(&b, "batch:\n  max_ms: %d\n", c->batch_max_ms > 0 ? c->batch_max_ms : 100);
    if (c->batch_max_events > 0)
        buf_addf(&b, "  max_events: %d\n", c->batch_max_events);
    buf_adds(&b, c->batch_extra ? c->batch_extra : "");
    /* Breakers probe often: a healed dependency is used again quickly. */
    BUF_LIT(&b, "breaker:\n  open_base_ms: 100\n  open_max_ms: 1000\n");
    add_common(&b, c->alerts_url, c->http_port);
    buf_adds(&b, c->extra ? c->extra : "");
    return write_out(path, &b);
}
