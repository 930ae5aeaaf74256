/* Message validation for the aggregator: cheap checks first (presence, size)
 * so a huge or empty message never reaches the JSON parser. */
#include "aggregator/validate.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/timeutil.h"

#define DAY_US INT64_C(86400000000)

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

int64_t validate_max_age_us(int64_t retention_days, int64_t maintenance_interval_s)
{
    if (retention_days <= 0)
        return 0;
    int64_t age = retention_days * DAY_US - maintenance_interval_s * 1000000 - DAY_US;
    /* A retention shorter than the margin accepts nothing old at all: the
     * partition of now itself may be the next one dropped. */
    return age > 1 ? age : 1;
}

enum validate_reason validate_accept(const struct envelope *env, const void *key, size_t keylen,
                                     const struct validate_window *w, int64_t now_us, bool *keyless,
                                     char *err, size_t errlen)
{
    *keyless = !key || keylen == 0;
    /* The key routes a stream to one partition (its order, its offsets):
     * a record under another stream's key is not what the agent sent. */
    if (!*keyless && (keylen != strlen(env->stream) || memcmp(key, env->stream, keylen) != 0)) {
        snprintf(err, errlen, "schema: key does not match stream");
        return VALIDATE_SCHEMA;
    }
    char t[TIME_RFC3339_LEN], bound[TIME_RFC3339_LEN];
    time_format_us(env->time_us, t);
    if (env->time_us > now_us && env->time_us - now_us > w->max_future_us) {
        time_format_us(now_us + w->max_future_us, bound);
        snprintf(err, errlen,
                 "time: %s is after the acceptance window's end %s (now + ingest.max_future_s "
                 "%" PRId64 " s)",
                 t, bound, w->max_future_us / 1000000);
        return VALIDATE_TIME;
    }
    if (w->max_age_us > 0 && env->time_us < now_us - w->max_age_us) {
        time_format_us(now_us - w->max_age_us, bound);
        snprintf(err, errlen,
                 "time: %s is before the retention horizon %s (partitions.retention_days less one "
                 "maintenance interval and a day)",
                 t, bound);
        return VALIDATE_TIME;
    }
    return VALIDATE_OK;
}
