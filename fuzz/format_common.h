/* The body of the format_* fuzz targets: one target per format kind, each
 * defining FUZZ_KIND and the field map it also tries (FUZZ_MAP_*), so that
 * every kind keeps its own corpus. For the JSON kinds it is also a
 * differential target: the fast path (format_json.c) must agree with the
 * jansson implementation (format_json_jansson.c) on everything, error text
 * included, whenever it does not decline. */
#ifndef AUDITRAIL_FUZZ_FORMAT_COMMON_H
#define AUDITRAIL_FUZZ_FORMAT_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/format.h"
#include "agent/format_json_int.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What format_parse promises, whatever the input. */
static inline void fuzz_format_check(enum format_kind kind, int rc, const struct parsed_record *r)
{
    const char *f[5] = {r->tenant, r->actor, r->action, r->resource, r->outcome};
    FUZZ_CHECK(rc == 0 || rc == -1, "format_parse returned %d", rc);
    FUZZ_CHECK(memchr(r->err, '\0', sizeof r->err) != NULL, "err not NUL-terminated");
    if (rc == -1) {
        FUZZ_CHECK(kind != FORMAT_RAW, "raw failed");
        FUZZ_CHECK(r->format == FORMAT_RAW, "failed parse keeps format %d", (int)r->format);
        FUZZ_CHECK(!r->have_time, "failed parse has a time");
        for (int i = 0; i < 5; i++)
            FUZZ_CHECK(f[i] == NULL, "failed parse keeps field %d", i);
        FUZZ_CHECK(r->err[0] != '\0', "failed parse without a reason");
        return;
    }
    FUZZ_CHECK(r->format == kind, "format %d, expected %d", (int)r->format, (int)kind);
    FUZZ_CHECK(r->err[0] == '\0', "success with err \"%s\"", r->err);
    /* Fields go into JSON and PostgreSQL text: valid UTF-8, no NUL (the
     * parsers promise this in format_int.h). */
    for (int i = 0; i < 5; i++)
        if (f[i])
            FUZZ_CHECK(fuzz_valid_utf8((const uint8_t *)f[i], strlen(f[i])),
                       "field %d is not valid UTF-8", i);
}

/* Same outcome for two parses. */
static inline bool fuzz_parsed_same(int rc1, const struct parsed_record *a, int rc2,
                                    const struct parsed_record *b)
{
    return rc1 == rc2 && a->format == b->format && a->have_time == b->have_time &&
           (!a->have_time || a->time_us == b->time_us) && fuzz_streq(a->tenant, b->tenant) &&
           fuzz_streq(a->actor, b->actor) && fuzz_streq(a->action, b->action) &&
           fuzz_streq(a->resource, b->resource) && fuzz_streq(a->outcome, b->outcome);
}

static inline bool fuzz_json_kind(enum format_kind kind)
{
    return kind == FORMAT_JSON || kind == FORMAT_K8S_AUDIT || kind == FORMAT_FHIR;
}

/* Fast path against jansson on rec[0, len) (no trailing '\r'); `pub` is
 * what format_parse gave (rc_pub), which must be jansson's answer too. */
static inline void fuzz_json_diff(enum format_kind kind, const struct field_map *map,
                                  const uint8_t *rec, size_t len, int rc_pub,
                                  const struct parsed_record *pub)
{
    struct parsed_record f, j;
    memset(&f, 0, sizeof f);
    memset(&j, 0, sizeof j);
    f.format = j.format = kind;
    int rf = fmt_json_parse_fast(kind, map, rec, len, &f);
    int rj = fmt_json_parse_jansson(kind, map, rec, len, &j);
    FUZZ_CHECK(fuzz_parsed_same(rc_pub, pub, rj, &j) && strcmp(pub->err, j.err) == 0,
               "format_parse differs from jansson (rc %d/%d, err \"%s\"/\"%s\")", rc_pub, rj,
               pub->err, j.err);
    if (rf == FMT_JSON_DECLINED) {
        FUZZ_CHECK(f.format == kind && !f.have_time && !f.tenant && !f.actor && !f.action &&
                       !f.resource && !f.outcome && !f.err[0],
                   "a declined parse left output behind");
    } else {
        FUZZ_CHECK(fuzz_parsed_same(rf, &f, rj, &j) && strcmp(f.err, j.err) == 0,
                   "fast path differs from jansson (rc %d/%d, err \"%s\"/\"%s\")", rf, rj, f.err,
                   j.err);
    }
    parsed_record_release(&f);
    parsed_record_release(&j);
}

static inline void fuzz_format_one(enum format_kind kind, const struct field_map *map,
                                   const uint8_t *data, size_t size)
{
    struct parsed_record a, b;
    /* "out need not be initialised": give it garbage. */
    memset(&a, 0xa5, sizeof a);
    memset(&b, 0x5a, sizeof b);

    /* An exact-size heap copy so ASan sees any read past the record. */
    uint8_t *rec = malloc(size + 1);
    if (!rec)
        abort();
    if (size)
        memcpy(rec, data, size);
    int rc = format_parse(kind, map, rec, size, &a);
    fuzz_format_check(kind, rc, &a);
    if (fuzz_json_kind(kind)) {
        size_t len = size;
        while (len && rec[len - 1] == '\r')
            len--;
        fuzz_json_diff(kind, map, rec, len, rc, &a);
    }

    /* A '\r' before the '\n' stays in the record but parsers ignore it. */
    if (!(size && data[size - 1] == '\r')) {
        rec[size] = '\r';
        int rc2 = format_parse(kind, map, rec, size + 1, &b);
        fuzz_format_check(kind, rc2, &b);
        FUZZ_CHECK(fuzz_parsed_same(rc, &a, rc2, &b), "a trailing CR changes the result");
        parsed_record_release(&b);
    }
    parsed_record_release(&a);
    free(rec);
}

#ifdef FUZZ_KIND
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The format's defaults, then a map with the overrides an operator might
     * configure for it. */
    static const struct field_map custom = {FUZZ_MAP_TIME,   FUZZ_MAP_TENANT,   FUZZ_MAP_ACTOR,
                                            FUZZ_MAP_ACTION, FUZZ_MAP_RESOURCE, FUZZ_MAP_OUTCOME};
    fuzz_format_one(FUZZ_KIND, NULL, data, size);
    fuzz_format_one(FUZZ_KIND, &custom, data, size);
    /* JSON kinds: paths to containers, indexes with leading zeros, empty
     * and trailing components (the record itself is path ""). */
    static const struct field_map odd = {"ts.", "", "agent.00.who", "a..b", "objectRef", "user"};
    if (fuzz_json_kind(FUZZ_KIND))
        fuzz_format_one(FUZZ_KIND, &odd, data, size);
    return 0;
}
#endif

#endif
