/* Fuzz envelope_encode from the agent's side: build an envelope from the
 * input (any record bytes, any strings, any integers in range, a correct hash
 * chain), encode it, and require that it decodes to the same envelope. Strings
 * that are not valid UTF-8 are replaced by U+FFFD, so those are only required
 * to decode, not to compare equal; the record itself is always byte-exact. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/envelope.h"
#include "common/hashchain.h"
#include "fuzz/envelope_cmp.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999Z: what RFC 3339 can say. */
#define MIN_US (-62135596800LL * 1000000)
#define MAX_US (253402300800LL * 1000000 - 1)

static int64_t pick_time(uint64_t r)
{
    uint64_t span = (uint64_t)(MAX_US - MIN_US) + 1;
    return MIN_US + (int64_t)(r % span);
}

/* A string of the input (cut at its first NUL: a C string cannot carry one),
 * or NULL; *utf8 is cleared when it is not valid UTF-8. */
static char *pick_str(struct fuzz_in *in, bool *utf8)
{
    size_t n;
    uint8_t sel = fuzz_u8(in);
    if (sel & 1)
        return NULL;
    const uint8_t *p = fuzz_bytes(in, 255, &n);
    const uint8_t *nul = memchr(p, 0, n);
    if (nul)
        n = (size_t)(nul - p);
    if (!fuzz_valid_utf8(p, n))
        *utf8 = false;
    return fuzz_strndup(p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *formats[] = {"json", "kv", "k8s-audit", "auditd", "fhir", "raw"};
    struct fuzz_in in = {data, size};
    struct envelope e, d;
    char err[256];
    char *enc = NULL;
    size_t len = 0;
    bool utf8 = true;
    memset(&e, 0, sizeof e);
    memset(&d, 0, sizeof d);

    uint8_t stream[16];
    for (size_t i = 0; i < sizeof stream; i++)
        stream[i] = fuzz_u8(&in);
    hex_encode(stream, sizeof stream, e.stream);
    e.v = 1;
    e.seq = fuzz_u64(&in) % (ENVELOPE_MAX_INT + 1);
    e.offset = fuzz_u64(&in) % (ENVELOPE_MAX_INT + 1);
    uint8_t tsel = fuzz_u8(&in);
    e.truncated_bytes = (tsel & 1) ? fuzz_u64(&in) % (ENVELOPE_MAX_INT + 1) : 0;
    e.time_source = (tsel & 2) ? TIME_SOURCE_READ : TIME_SOURCE_PAYLOAD;
    e.time_us = pick_time(fuzz_u64(&in));
    e.read_time_us = (tsel & 4) ? e.time_us : pick_time(fuzz_u64(&in));
    e.format = fuzz_strndup((const uint8_t *)formats[tsel % 6], strlen(formats[tsel % 6]));

    bool name_utf8 = true;
    e.source.name = pick_str(&in, &name_utf8);
    if (!e.source.name)
        e.source.name = fuzz_strndup((const uint8_t *)"ns/pod/app", 10);
    utf8 = name_utf8;
    e.source.host = pick_str(&in, &utf8);
    e.source.namespace_ = pick_str(&in, &utf8);
    e.source.pod = pick_str(&in, &utf8);
    e.source.container = pick_str(&in, &utf8);
    e.source.path = pick_str(&in, &utf8);
    e.fields.tenant = pick_str(&in, &utf8);
    e.fields.actor = pick_str(&in, &utf8);
    e.fields.action = pick_str(&in, &utf8);
    e.fields.resource = pick_str(&in, &utf8);
    e.fields.outcome = pick_str(&in, &utf8);

    /* The record: the rest of the input, byte-exact whatever it holds. */
    size_t n;
    const uint8_t *rec = fuzz_rest(&in, &n);
    e.line = (uint8_t *)fuzz_strndup(rec, n);
    e.line_len = n;

    /* A correct chain: prev as for some earlier record, hash and id from it. */
    chain_genesis(e.stream, e.prev);
    if (e.seq)
        chain_next(e.prev, e.seq - 1, "x", 1, e.prev);
    chain_next(e.prev, e.seq, e.line, e.line_len, e.hash);
    chain_id(e.hash, e.id);

    enc = envelope_encode(&e, &len);
    FUZZ_CHECK(enc != NULL, "valid envelope does not encode");
    FUZZ_CHECK(strlen(enc) == len, "encoded length %zu != strlen %zu", len, strlen(enc));
    enum envelope_err rc = envelope_decode(enc, len, &d, err, sizeof err);
    if (rc != ENVELOPE_OK)
        fuzz_fail("encoded envelope does not decode: %s: %s\n%s", envelope_strerror(rc), err, enc);
    fuzz_envelope_decoded_ok(&d);
    if (utf8) {
        fuzz_envelope_same(&e, &d);
    } else {
        /* Only the strings may differ; the record, chain and numbers not. */
        FUZZ_CHECK(d.line_len == e.line_len && memcmp(d.line, e.line, e.line_len) == 0,
                   "record not byte-exact");
        FUZZ_CHECK(d.seq == e.seq && d.offset == e.offset && d.time_us == e.time_us &&
                       d.read_time_us == e.read_time_us && d.truncated_bytes == e.truncated_bytes,
                   "numbers differ");
    }
    free(enc);
    envelope_release(&e);
    envelope_release(&d);
    return 0;
}
