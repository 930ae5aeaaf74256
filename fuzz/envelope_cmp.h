/* Field-by-field comparison of two decoded envelopes, shared by the envelope
 * fuzz targets. */
#ifndef AUDITRAIL_FUZZ_ENVELOPE_CMP_H
#define AUDITRAIL_FUZZ_ENVELOPE_CMP_H

#include "common/envelope.h"
#include "fuzz/fuzz_util.h"

/* Abort with the first field that differs. */
static inline void fuzz_envelope_same(const struct envelope *a, const struct envelope *b)
{
    FUZZ_CHECK(a->v == b->v, "v differs");
    FUZZ_CHECK(strcmp(a->id, b->id) == 0, "id differs: %s vs %s", a->id, b->id);
    FUZZ_CHECK(strcmp(a->stream, b->stream) == 0, "stream differs");
    FUZZ_CHECK(a->seq == b->seq, "seq differs");
    FUZZ_CHECK(a->offset == b->offset, "offset differs");
    FUZZ_CHECK(memcmp(a->hash, b->hash, sizeof a->hash) == 0, "hash differs");
    FUZZ_CHECK(memcmp(a->prev, b->prev, sizeof a->prev) == 0, "prev differs");
    FUZZ_CHECK(a->time_us == b->time_us, "time differs: %lld vs %lld", (long long)a->time_us,
               (long long)b->time_us);
    FUZZ_CHECK(a->time_source == b->time_source, "time_source differs");
    FUZZ_CHECK(a->read_time_us == b->read_time_us, "read_time differs: %lld vs %lld",
               (long long)a->read_time_us, (long long)b->read_time_us);
    FUZZ_CHECK(fuzz_streq(a->source.name, b->source.name), "source.name differs");
    FUZZ_CHECK(fuzz_streq(a->source.host, b->source.host), "source.host differs");
    FUZZ_CHECK(fuzz_streq(a->source.namespace_, b->source.namespace_), "source.namespace differs");
    FUZZ_CHECK(fuzz_streq(a->source.pod, b->source.pod), "source.pod differs");
    FUZZ_CHECK(fuzz_streq(a->source.container, b->source.container), "source.container differs");
    FUZZ_CHECK(fuzz_streq(a->source.path, b->source.path), "source.path differs");
    FUZZ_CHECK(fuzz_streq(a->format, b->format), "format differs");
    FUZZ_CHECK(fuzz_streq(a->fields.tenant, b->fields.tenant), "fields.tenant differs");
    FUZZ_CHECK(fuzz_streq(a->fields.actor, b->fields.actor), "fields.actor differs");
    FUZZ_CHECK(fuzz_streq(a->fields.action, b->fields.action), "fields.action differs");
    FUZZ_CHECK(fuzz_streq(a->fields.resource, b->fields.resource), "fields.resource differs");
    FUZZ_CHECK(fuzz_streq(a->fields.outcome, b->fields.outcome), "fields.outcome differs");
    FUZZ_CHECK(a->line_len == b->line_len, "line_len differs: %zu vs %zu", a->line_len,
               b->line_len);
    FUZZ_CHECK(a->line_len == 0 || memcmp(a->line, b->line, a->line_len) == 0, "line differs");
    FUZZ_CHECK(a->truncated_bytes == b->truncated_bytes, "truncated_bytes differs");
}

/* What envelope_decode promises on success. */
static inline void fuzz_envelope_decoded_ok(const struct envelope *e)
{
    FUZZ_CHECK(e->line != NULL, "decoded line is NULL");
    FUZZ_CHECK(e->line[e->line_len] == '\0', "decoded line not NUL-terminated");
    FUZZ_CHECK(e->v == 1, "decoded v=%d", e->v);
    FUZZ_CHECK(e->source.name != NULL && e->format != NULL, "decoded without source.name/format");
    FUZZ_CHECK(e->seq <= ENVELOPE_MAX_INT && e->offset <= ENVELOPE_MAX_INT &&
                   e->truncated_bytes <= ENVELOPE_MAX_INT,
               "decoded integer above ENVELOPE_MAX_INT");
    FUZZ_CHECK(strlen(e->id) == CHAIN_UUID_LEN, "decoded id length");
    FUZZ_CHECK(strlen(e->stream) == CHAIN_STREAM_HEX_LEN, "decoded stream length");
    enum envelope_err v = envelope_verify(e);
    FUZZ_CHECK(v == ENVELOPE_OK, "decoded but does not verify: %s", envelope_strerror(v));
}

#endif
