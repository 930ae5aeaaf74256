/* Offset resets (aggregator/offset_reset.h): the kind of a moved log and
 * the position to read it from again. */
#include "aggregator/offset_reset.h"

static const char *const kind_names[] = {
    [OFFSET_RESET_LOG_END] = "log_end",
    [OFFSET_RESET_LOG_START] = "log_start",
    [OFFSET_RESET_BACKWARDS] = "backwards",
};

const char *offset_reset_kind_name(enum offset_reset_kind k)
{
    return (unsigned)k < OFFSET_RESET_KIND_COUNT ? kind_names[k] : "none";
}

enum offset_reset_kind offset_reset_classify(int64_t at, int64_t lo, int64_t hi, bool backwards,
                                             int64_t *restart, int64_t *skipped)
{
    *skipped = 0;
    *restart = lo;
    if (backwards)
        return OFFSET_RESET_BACKWARDS;
    if (at > hi)
        return OFFSET_RESET_LOG_END;
    if (at < lo) {
        *skipped = lo - at;
        return OFFSET_RESET_LOG_START;
    }
    *restart = at;
    return OFFSET_RESET_NONE;
}
