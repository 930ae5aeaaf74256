/* Fuzz the aggregator's whole message path short of PostgreSQL: validation
 * (envelope_decode, the key and the time window), the partition a day gets,
 * the binary COPY encoding of the row, and the DLQ copy of a refusal.
 *
 * Input: one control byte, then the Kafka message value. Control bits 0-1:
 * the key (none, the envelope's own stream, another stream, one byte);
 * bits 2-3: the aggregator's clock (2026-11-29, 1970-01-01, 0000-01-01,
 * 9999-12-31). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aggregator/dlq.h"
#include "aggregator/partitions.h"
#include "aggregator/pg_copy.h"
#include "aggregator/pg_sql.h"
#include "aggregator/validate.h"
#include "common/buf.h"
#include "common/utf8.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DAY_US    INT64_C(86400000000)
#define MAX_BYTES (1 << 20)
#define DLQ_MAX   (64 * 1024)

static const int64_t clocks[4] = {
    INT64_C(1795996800000000),                /* 2026-11-29T00:00:00Z */
    0,                                        /* 1970-01-01 */
    INT64_C(-62167219200000000),              /* 0000-01-01 */
    INT64_C(253402300799000000) - DAY_US / 2, /* 9999-12-31T12:00Z */
};

static void check_text(const char *err, size_t cap, const char *what)
{
    FUZZ_CHECK(memchr(err, '\0', cap) != NULL, "%s: not terminated", what);
    for (const char *p = err; *p; p++)
        FUZZ_CHECK((unsigned char)*p >= 0x20, "%s: control byte in \"%s\"", what, err);
}

/* The row's COPY tuple, read back field by field: the count matches the
 * column list, lengths stay inside, text columns are UTF-8 without NUL
 * (PostgreSQL would refuse them: 22021), the buffer ends with the trailer. */
static int ncols(void)
{
    int n = 1;
    for (const char *p = SQL_W_COPY_COLS; *p; p++)
        n += *p == ',';
    return n;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void check_copy(const struct buf *b)
{
    const unsigned char *p = (const unsigned char *)b->p, *end = p + b->len;
    FUZZ_CHECK(b->len >= 19 + 2 + 2, "COPY data too short");
    FUZZ_CHECK(memcmp(p, "PGCOPY\n\377\r\n\0", 11) == 0, "COPY signature");
    p += 11 + 4;
    p += 4 + be32(p);
    FUZZ_CHECK(p + 2 <= end, "COPY header overruns");
    int nf = (int16_t)(p[0] << 8 | p[1]);
    FUZZ_CHECK(nf == ncols(), "COPY tuple has %d fields, the column list %d", nf, ncols());
    p += 2;
    for (int i = 0; i < nf; i++) {
        FUZZ_CHECK(p + 4 <= end, "COPY field %d length overruns", i);
        int32_t len = (int32_t)be32(p);
        p += 4;
        if (len == -1)
            continue;
        FUZZ_CHECK(len >= 0 && p + len <= end, "COPY field %d (%d bytes) overruns", i, len);
        /* stream_id, time_source, tenant … outcome, format: text */
        if (i == 2 || (i >= 8 && i <= 14)) {
            FUZZ_CHECK(!memchr(p, 0, (size_t)len), "COPY text field %d holds NUL", i);
            FUZZ_CHECK(utf8_valid(p, (size_t)len), "COPY text field %d is not UTF-8", i);
        }
        p += len;
    }
    FUZZ_CHECK(p + 2 == end && p[0] == 0xff && p[1] == 0xff, "COPY trailer");
}

/* Any decoded time (years 0000-9999 with any offset, window or not): its
 * day gets a plain identifier that reads back. */
static void day_name(const struct envelope *e)
{
    char name[PART_NAME_LEN];
    int64_t day = part_day_floor(e->time_us), back = 0;
    part_day_name(day, name);
    FUZZ_CHECK(strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(name),
               "partition name %s is not a plain identifier", name);
    FUZZ_CHECK(part_name_day(name, &back) == 0 && back == day,
               "partition name %s does not "
               "read back",
               name);
}

/* An accepted record: its row encodes. */
static void accepted(const struct envelope *e)
{
    struct buf b = BUF_INIT;
    struct pg_copy_src sc = {0};
    pg_copy_header(&b);
    pg_copy_row(&b, e, &sc, PG_COPY_ATTRS_STRICT);
    pg_copy_trailer(&b);
    check_copy(&b);
    pg_copy_src_release(&sc);
    buf_release(&b);
}

/* A refusal: its reason is printable, never quotes the record (the marker
 * of the seed corpus; an unknown field's name is the one thing shown), and
 * its DLQ copy fits the producer's limit. */
static void refused(enum validate_reason vr, const char *err, const void *key, size_t keylen,
                    const uint8_t *value, size_t len)
{
    FUZZ_CHECK(vr > VALIDATE_OK && vr < VALIDATE_REASON_COUNT, "reason %d", (int)vr);
    const char *name = validate_reason_name(vr);
    FUZZ_CHECK(strncmp(err, name, strlen(name)) == 0 && err[strlen(name)] == ':',
               "\"%s\" does not start with its class %s", err, name);
    if (!strstr(err, "unknown field"))
        FUZZ_CHECK(!strstr(err, "MARKER"), "the reason quotes the record: %s", err);
    rd_kafka_headers_t *h = dlq_headers_build(NULL, name, err, "audit.events", 0, 1);
    struct dlq_fit f;
    dlq_fit_copy(DLQ_MAX, keylen, value, len, h, &f);
    FUZZ_CHECK(DLQ_FRAMING_BYTES + f.keylen + dlq_headers_size(f.hdrs) + f.len <= DLQ_MAX,
               "DLQ copy over its limit");
    FUZZ_CHECK(f.cut == (DLQ_FRAMING_BYTES + keylen + dlq_headers_size(h) + len > DLQ_MAX),
               "DLQ copy cut without need, or not cut");
    rd_kafka_headers_destroy(f.hdrs);
    rd_kafka_headers_destroy(h);
    (void)key;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned ctl = data[0];
    const uint8_t *value = data + 1;
    size_t len = size - 1;
    int64_t now = clocks[(ctl >> 2) & 3];
    const struct validate_window w = {DAY_US, validate_max_age_us(2190, 300)};

    struct envelope e;
    memset(&e, 0, sizeof e);
    char err[512];
    memset(err, 0x55, sizeof err);
    enum validate_reason vr = validate_message(value, len, MAX_BYTES, &e, err, sizeof err);
    const char *key = NULL;
    size_t keylen = 0;
    static const char other[] = "0123456789abcdef0123456789abcdef";
    if (vr == VALIDATE_OK) {
        day_name(&e);
        switch (ctl & 3) {
        case 1:
            key = e.stream;
            keylen = strlen(e.stream);
            break;
        case 2:
            key = other;
            keylen = 32;
            break;
        case 3:
            key = "k";
            keylen = 1;
            break;
        }
        bool keyless = false;
        vr = validate_accept(&e, key, keylen, &w, now, &keyless, err, sizeof err);
        FUZZ_CHECK(keyless == (keylen == 0), "keyless %d with a %zu-byte key", keyless, keylen);
        bool in = e.time_us <= now + w.max_future_us && e.time_us >= now - w.max_age_us;
        bool key_ok = keylen == 0 || (keylen == strlen(e.stream) && !memcmp(key, e.stream, keylen));
        FUZZ_CHECK((vr == VALIDATE_OK) == (in && key_ok), "accepted %d, window %d, key %d",
                   vr == VALIDATE_OK, in, key_ok);
        if (vr == VALIDATE_OK)
            accepted(&e);
    }
    if (vr != VALIDATE_OK) {
        check_text(err, sizeof err, "reason");
        refused(vr, err, key, keylen, value, len);
    }
    envelope_release(&e);
    return 0;
}
