/* The decoded envelope as its checks read it (common/envelope_decode.c),
 * whichever reader filled it: jansson's document, or the single pass of
 * common/envelope_scan.c. Internal to those two files. */
#ifndef AUDITRAIL_ENVELOPE_VIEW_H
#define AUDITRAIL_ENVELOPE_VIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "common/envelope_int.h"

/* One member's value as the checks need it, whichever parser read it:
 * absent, null, a string (bytes and length, NUL possible inside), an
 * integer, an object, or anything else (array, real, boolean). */
enum jv_type { JV_ABSENT = 0, JV_NULL, JV_STRING, JV_INT, JV_OBJECT, JV_OTHER };

struct jv {
    enum jv_type t;
    const char *s;
    size_t n;
    long long i;
};

/* The top-level members, in envelope_top_keys order. */
enum {
    K_V,
    K_ID,
    K_STREAM,
    K_SEQ,
    K_OFFSET,
    K_HASH,
    K_PREV,
    K_TIME,
    K_TIME_SOURCE,
    K_READ_TIME,
    K_SOURCE,
    K_FORMAT,
    K_FIELDS,
    K_LINE,
    K_LINE_B64,
    K_TRUNCATED,
    K_COUNT
};

/* A decoded document as the checks read it. */
struct view {
    struct jv top[K_COUNT];
    struct jv source[ENVELOPE_SOURCE_KEYS];
    struct jv fields[ENVELOPE_FIELD_KEYS];
    /* The first unknown key (document order) of the root, source and
     * fields objects; NULL: none. */
    const char *unknown[3];
    size_t unknown_len[3];
};

extern const char *const envelope_top_keys[K_COUNT];

/* The index of key[0, keylen) in list[0, n), or -1. */
int envelope_key_index(const char *key, size_t keylen, const char *const *list, size_t n);

/* Read buf[0, len) in one pass into *v (scratch: len + 1 bytes, referenced
 * by v): true; false when it is outside the subset the single pass reads
 * (jansson decides those), v then undefined. */
bool envelope_scan(const char *buf, size_t len, struct view *v, char *scratch);

#endif
