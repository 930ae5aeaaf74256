/* One record -> one envelope: the parser gives time and fields, the agent
 * decides time once so re-sends land on the same partition key. */
#include "agent/record.h"

#include <string.h>

#include "common/envelope.h"

int record_decide_time(const struct record_ctx *c, bool have_time, int64_t payload_us,
                       int64_t read_us, int64_t *out_us)
{
    if (have_time && payload_us >= read_us - c->max_past_us &&
        payload_us <= read_us + c->max_future_us) {
        *out_us = payload_us;
        return TIME_SOURCE_PAYLOAD;
    }
    *out_us = read_us;
    return TIME_SOURCE_READ;
}

/* A buffer grown past this by a long record is given back after it: the
 * usual record needs a few kB, and RSS is budgeted. */
#define RECORD_BUF_KEEP (256 * 1024)

const char *record_encode(struct record_ctx *c, const struct record_in *r, size_t *len,
                          bool *parse_failed)
{
    struct parsed_record pr;
    if (!format_prep_matches(&c->prep, r->kind, r->map))
        format_prep_init(&c->prep, r->kind, r->map);
    *parse_failed = format_parse_prepared(&c->prep, r->data, r->len, &pr) < 0;
    struct envelope e;
    memset(&e, 0, sizeof(e));
    e.v = 1;
    chain_id(r->hash, e.id);
    memcpy(e.stream, r->stream_hex, CHAIN_STREAM_HEX_LEN);
    e.stream[CHAIN_STREAM_HEX_LEN] = '\0';
    e.seq = r->seq;
    e.offset = r->offset;
    memcpy(e.hash, r->hash, CHAIN_HASH_LEN);
    memcpy(e.prev, r->prev, CHAIN_HASH_LEN);
    e.time_source = (enum time_source)record_decide_time(c, pr.have_time, pr.time_us,
                                                         r->read_time_us, &e.time_us);
    e.read_time_us = r->read_time_us;
    /* envelope_encode only reads these; the casts drop const for its struct. */
    e.source.name = (char *)c->source_name;
    e.source.host = (char *)c->host;
    e.source.namespace_ = (char *)c->namespace_;
    e.source.pod = (char *)c->pod;
    e.source.container = (char *)c->container;
    e.source.path = (char *)r->path;
    e.format = (char *)format_kind_name(pr.format);
    e.fields.tenant = pr.tenant;
    e.fields.actor = pr.actor;
    e.fields.action = pr.action;
    e.fields.resource = pr.resource;
    e.fields.outcome = pr.outcome;
    e.line = (uint8_t *)r->data;
    e.line_len = r->len;
    e.truncated_bytes = r->truncated;
    if (c->out.cap > RECORD_BUF_KEEP)
        buf_release(&c->out);
    bool ok = envelope_encode_buf(&e, &c->out, &c->tcache);
    parsed_record_release(&pr);
    *len = c->out.len;
    return ok ? c->out.p : NULL;
}

void record_ctx_release(struct record_ctx *c)
{
    buf_release(&c->out);
}
