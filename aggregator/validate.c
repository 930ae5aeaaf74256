/* Message validation for the aggregator: cheap checks first (presence, size)
 * so a huge or empty message never reaches the JSON parser. */
#include "aggregator/validate.h"

#include <stdio.h>

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

enum validate_reason validate_classify(enum envelope_err e)
{
    switch (e) {
    case ENVELOPE_OK:
        return VALIDATE_OK;
    case ENVELOPE_ERR_NOT_JSON:
    case ENVELOPE_ERR_NOT_OBJECT:
        return VALIDATE_DECODE;
    case ENVELOPE_ERR_NO_VERSION:
    case ENVELOPE_ERR_BAD_VERSION:
    case ENVELOPE_ERR_UNSUPPORTED_VERSION:
        return VALIDATE_VERSION;
    case ENVELOPE_ERR_BAD_TIME:
        return VALIDATE_TIME;
    case ENVELOPE_ERR_HASH_MISMATCH:
    case ENVELOPE_ERR_ID_MISMATCH:
        return VALIDATE_INTEGRITY;
    case ENVELOPE_ERR_MISSING_FIELD:
    case ENVELOPE_ERR_BAD_FIELD:
    case ENVELOPE_ERR_UNKNOWN_FIELD:
    case ENVELOPE_ERR_LINE_TWICE:
    case ENVELOPE_ERR_COUNT:
        break;
    }
    return VALIDATE_SCHEMA;
}

enum validate_reason validate_message(const void *value, size_t len, size_t max_bytes,
                                      struct envelope *out, char *err, size_t errlen)
{
    char detail[128], text[256];
    enum validate_reason r;

    if (!value) {
        snprintf(err, errlen, "null: message has no value");
        return VALIDATE_NULL;
    }
    if (len > max_bytes) {
        snprintf(err, errlen, "oversize: %zu bytes > %zu", len, max_bytes);
        return VALIDATE_OVERSIZE;
    }
    enum envelope_err e = envelope_decode(value, len, out, detail, sizeof(detail));
    if (e == ENVELOPE_OK)
        return VALIDATE_OK;
    envelope_release(out);
    r = validate_classify(e);
    envelope_error_text(e, detail, text, sizeof(text));
    snprintf(err, errlen, "%s: %s", validate_reason_name(r), text);
    return r;
}
