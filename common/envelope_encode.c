/* The agent's envelope encoder (DESIGN.md §3): compact JSON written directly
 * on the hot path, byte for byte what jansson's json_dumps would give. */
#include "common/envelope.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/buf.h"
#include "common/envelope_int.h"
#include "common/jsonw.h"
#include "common/timeutil.h"
#include "common/utf8.h"
#include "common/xmalloc.h"

/* The JSON is written directly rather than built as a jansson tree and
 * dumped: measured by bench/agent, the tree cost ~15 us per record, ten times
 * the agent's budget. The bytes are exactly what json_dumps(JSON_COMPACT)
 * gives for the same values (tests/unit/test_envelope.c compares them). */

/* Last time the cache may format: time_format_us clamps beyond it, and a
 * clamped second must not be given another fraction. */
#define TIME_CACHE_MAX_US (253402300800LL * 1000000 - 1) /* 9999-12-31T23:59:59.999999Z */

/* A timestamp as time_format_us writes it. With a cache, the
 * "YYYY-MM-DDTHH:MM:SS" part of each timestamp (slot) is formatted once per
 * second; only the fraction is written each time. */
static void jb_time(struct buf *b, int64_t us, struct envelope_time_cache *tc, int slot)
{
    char ts[TIME_RFC3339_LEN + 1];
    ts[0] = '"';
    if (!tc || us < 0 || us > TIME_CACHE_MAX_US) {
        time_format_us(us, ts + 1);
    } else {
        int64_t sec = us / 1000000;
        if (!tc->slot[slot].valid || tc->slot[slot].sec != sec) {
            time_format_us(sec * 1000000, tc->slot[slot].text);
            tc->slot[slot].sec = sec;
            tc->slot[slot].valid = true;
        }
        int frac = (int)(us % 1000000);
        memcpy(ts + 1, tc->slot[slot].text, 20); /* "YYYY-MM-DDTHH:MM:SS." */
        for (int i = 26; i >= 21; i--, frac /= 10)
            ts[i] = (char)('0' + frac % 10);
        ts[27] = 'Z';
    }
    ts[TIME_RFC3339_LEN] = '"'; /* over the NUL */
    buf_add(b, ts, TIME_RFC3339_LEN + 1);
}

char *envelope_encode(const struct envelope *e, size_t *len)
{
    return envelope_encode_tc(e, len, NULL);
}

bool envelope_encode_buf(const struct envelope *e, struct buf *b, struct envelope_time_cache *tc)
{
    buf_reset(b);
    if (e->seq > ENVELOPE_MAX_INT || e->offset > ENVELOPE_MAX_INT ||
        e->truncated_bytes > ENVELOPE_MAX_INT || !e->source.name || !e->format)
        return false;

    /* Metadata rarely needs more than 900 bytes; the line at most doubles
     * unless it holds \u00XX escapes (jsonw_str grows then). */
    buf_reserve(b, 900 + 2 * e->line_len);
    BUF_LIT(b, "{\"v\":1,\"id\":");
    jsonw_cstr(b, e->id);
    BUF_LIT(b, ",\"stream\":");
    jsonw_cstr(b, e->stream);
    BUF_LIT(b, ",\"seq\":");
    jsonw_u64(b, e->seq);
    BUF_LIT(b, ",\"offset\":");
    jsonw_u64(b, e->offset);
    BUF_LIT(b, ",\"hash\":");
    jsonw_hex(b, e->hash, CHAIN_HASH_LEN);
    BUF_LIT(b, ",\"prev\":");
    jsonw_hex(b, e->prev, CHAIN_HASH_LEN);
    BUF_LIT(b, ",\"time\":");
    jb_time(b, e->time_us, tc, 0);
    if (e->time_source == TIME_SOURCE_PAYLOAD)
        BUF_LIT(b, ",\"time_source\":\"payload\"");
    else
        BUF_LIT(b, ",\"time_source\":\"read\"");
    BUF_LIT(b, ",\"read_time\":");
    jb_time(b, e->read_time_us, tc, 1);

    BUF_LIT(b, ",\"source\":{");
    bool first = true;
    for (size_t i = 0; i < ENVELOPE_SOURCE_KEYS; i++) {
        const char *v = *envelope_source_slot((struct envelope_source *)&e->source, i);
        if (!v)
            continue;
        jsonw_key(b, envelope_source_keys[i], first);
        jsonw_cstr(b, v);
        first = false;
    }
    BUF_LIT(b, "},\"format\":");
    jsonw_cstr(b, e->format);
    BUF_LIT(b, ",\"fields\":{");
    for (size_t i = 0; i < ENVELOPE_FIELD_KEYS; i++) {
        const char *v = *envelope_field_slot((struct envelope_fields *)&e->fields, i);
        jsonw_key(b, envelope_field_keys[i], i == 0);
        if (v)
            jsonw_cstr(b, v);
        else
            BUF_LIT(b, "null");
    }
    BUF_LIT(b, "}");

    /* NUL bytes are valid UTF-8 and written as \u0000. */
    const uint8_t *line = e->line ? e->line : (const uint8_t *)"";
    BUF_LIT(b, ",\"line\":");
    if (!jsonw_str(b, line, e->line_len)) {
        b->len -= sizeof(",\"line\":") - 1;
        BUF_LIT(b, ",\"line_b64\":");
        jsonw_b64(b, line, e->line_len);
    }
    if (e->truncated_bytes) {
        BUF_LIT(b, ",\"truncated_bytes\":");
        jsonw_u64(b, e->truncated_bytes);
    }
    BUF_LIT(b, "}");
    return true;
}

char *envelope_encode_tc(const struct envelope *e, size_t *len, struct envelope_time_cache *tc)
{
    struct buf b = BUF_INIT;
    if (!envelope_encode_buf(e, &b, tc)) {
        buf_release(&b);
        return NULL;
    }
    if (len)
        *len = b.len;
    /* Give back the worst-case reservation's slack. */
    if (b.cap > b.len + 64)
        b.p = xrealloc(b.p, b.len + 1);
    return b.p;
}
