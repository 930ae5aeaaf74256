/* replay_seek (aggregator/replay_seek.h): the broker's answer, else a lower
 * bound by binary search over fetched message timestamps. */
#include "aggregator/replay_seek.h"

#include <stddef.h>

int replay_seek_time(const struct replay_lookup *l, int32_t partition, int64_t lo, int64_t hi,
                     int64_t ts_ms, int64_t *off, bool *searched, char *err, size_t errlen)
{
    *searched = false;
    int64_t direct = -1;
    if (l->offset_for_time(l->ud, partition, ts_ms, &direct, err, errlen) != 0)
        return -1;
    if (direct >= 0) {
        *off = direct < lo ? lo : direct > hi ? hi : direct;
        return 0;
    }
    /* Invariant: every message below lo is older than ts_ms; the answer is
     * at or below hi. Offsets may hold no message (compaction, transaction
     * markers): a probe reads the first message at or after mid. */
    *searched = true;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2, ts = 0, at = 0;
        int r = l->message_at(l->ud, partition, mid, hi, &ts, &at, err, errlen);
        if (r < 0)
            return -1;
        if (r == 1 || ts >= ts_ms)
            hi = mid; /* nothing in [mid, at) older than ts_ms either */
        else
            lo = at + 1;
    }
    *off = lo;
    return 0;
}
