/* Fuzz envelope_decode (the aggregator's first look at a Kafka message):
 * arbitrary bytes must be refused with a reason or accepted, exactly as
 * jansson alone decides (envelope_decode_jansson); what is accepted
 * must verify, re-encode, decode again to the same envelope, and re-encode to
 * the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/envelope.h"
#include "common/envelope_int.h"
#include "fuzz/envelope_cmp.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct envelope a, b;
    char err[256], err2[256];
    char *enc1 = NULL, *enc2 = NULL;
    size_t len1 = 0, len2 = 0;
    enum envelope_err rc2;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(err, 0x55, sizeof err);

    /* Not NUL-terminated on purpose: the decoder gets (buf, len). */
    enum envelope_err rc = envelope_decode((const char *)data, size, &a, err, sizeof err);
    /* The single pass decides exactly as jansson alone would. */
    rc2 = envelope_decode_jansson((const char *)data, size, &b, err2, sizeof err2);
    FUZZ_CHECK(rc == rc2, "decode %s, jansson alone %s", envelope_strerror(rc),
               envelope_strerror(rc2));
    FUZZ_CHECK(rc == ENVELOPE_OK || strcmp(err, err2) == 0, "details differ: %s vs %s", err, err2);
    if (rc == ENVELOPE_OK)
        fuzz_envelope_same(&a, &b);
    envelope_release(&b);
    memset(&b, 0, sizeof b);
    if (rc != ENVELOPE_OK) {
        FUZZ_CHECK(rc > ENVELOPE_OK && rc < ENVELOPE_ERR_COUNT, "decode returned %d", (int)rc);
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL, "error detail not terminated");
        for (const char *p = err; *p; p++)
            FUZZ_CHECK(*p >= 0x20 && *p < 0x7f, "error detail not printable ASCII");
        goto out;
    }
    fuzz_envelope_decoded_ok(&a);

    enc1 = envelope_encode(&a, &len1);
    FUZZ_CHECK(enc1 != NULL, "decoded envelope does not encode");
    FUZZ_CHECK(strlen(enc1) == len1, "encode length %zu != strlen %zu", len1, strlen(enc1));
    rc = envelope_decode(enc1, len1, &b, err2, sizeof err2);
    if (rc != ENVELOPE_OK)
        fuzz_fail("re-encoded envelope does not decode: %s: %s\n%s", envelope_strerror(rc), err2,
                  enc1);
    fuzz_envelope_decoded_ok(&b);
    fuzz_envelope_same(&a, &b);

    enc2 = envelope_encode(&b, &len2);
    FUZZ_CHECK(enc2 != NULL, "second encode failed");
    FUZZ_CHECK(len1 == len2 && memcmp(enc1, enc2, len1) == 0, "encoding is not stable:\n%s\n%s",
               enc1, enc2);
out:
    free(enc1);
    free(enc2);
    envelope_release(&a);
    envelope_release(&b);
    return 0;
}
