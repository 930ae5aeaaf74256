/* Message validation for the aggregator: cheap checks first (presence, size)
 * so a huge or empty message never reaches the JSON parser. */
#include "aggregator/validate.h"

#include <stdio.h>
#include <string.h>

static const char *const reason_names[VALIDATE_REASON_COUNT] = {
    [VALIDATE_OK] = "ok",
    [VALIDATE_NULL] = "null",
    [VALIDATE_OVERSIZE] = "oversize",
    [VALIDATE_DECODE] = "decode",
    [VALIDATE_VERSION] = "version",
    [VALIDATE_SCHEMA] = "schema",
    [VALIDATE_TIME] = "time",
    [VALIDATE_INTEGRITY] = "integrity",
    [VALIDATE_STORAGE] = "storage",
};

const char *validate_reason_name(enum validate_reason r)
{
    if ((unsigned)r >= VALIDATE_REASON_COUNT)
        return "unknown";
    return reason_names[r];
}

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

enum validate_reason validate_classify(const char *e)
{
    if (!e)
        return VALIDATE_SCHEMA;
    if (starts(e, "not JSON") || starts(e, "not an object"))
        return VALIDATE_DECODE;
    if (starts(e, "unsupported version") || strcmp(e, "missing field: v") == 0 ||
        strcmp(e, "bad field: v") == 0)
        return VALIDATE_VERSION;
    if (strcmp(e, "hash mismatch") == 0 || strcmp(e, "id mismatch") == 0)
        return VALIDATE_INTEGRITY;
    if (strcmp(e, "bad field: time") == 0 || strcmp(e, "bad field: read_time") == 0)
        return VALIDATE_TIME;
    return VALIDATE_SCHEMA;
}

enum validate_reason validate_message(const void *value, size_t len, size_t max_bytes,
                                      struct envelope *out, char *err, size_t errlen)
{
    char detail[256];
    enum validate_reason r;

    if (!value) {
        snprintf(err, errlen, "null: message has no value");
        return VALIDATE_NULL;
    }
    if (len > max_bytes) {
        snprintf(err, errlen, "oversize: %zu bytes > %zu", len, max_bytes);
        return VALIDATE_OVERSIZE;
    }
    detail[0] = '\0';
    if (envelope_decode(value, len, out, detail, sizeof(detail)) == 0)
        return VALIDATE_OK;
    envelope_release(out);
    r = validate_classify(detail);
    snprintf(err, errlen, "%s: %s", validate_reason_name(r), detail);
    return r;
}
