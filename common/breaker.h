/* The one circuit breaker (DESIGN.md §6): closed / open / half-open.
 *  - closed: calls pass; outcomes go into a count-based sliding window of the
 *    last `window` calls. It trips (-> open) when `consecutive_failures` fail in
 *    a row, or when the window holds >= min_calls outcomes and the failure rate
 *    is >= failure_rate_pct.
 *  - open: calls are refused until the open wait has passed; the wait is full
 *    jitter backoff from open_base_ms doubling per consecutive trip to
 *    open_max_ms, with a floor: uniform[max(1, open_base_ms/2), ceiling]
 *    (ceiling = min(open_max_ms, open_base_ms << (trip - 1))), so a trip always
 *    pauses. After it, the next breaker_allow() moves to half-open and
 *    admits exactly one probe. Outcomes reported while open are ignored.
 *  - half-open: further calls are refused while the probe is out; its success
 *    closes the breaker (window and consecutive-trip count reset, so the next
 *    wait starts from open_base_ms again; `trips` stays a lifetime total), its
 *    failure re-opens it with a longer wait.
 * consecutive_failures 0 disables that trip; failure_rate_pct 0 (or > 100)
 * disables the rate trip; window is clamped to [1, 1024], min_calls to >= 1.
 * on_change runs once per transition, after the state has changed.
 * Pure logic with an injectable clock and random source; not thread-safe. */
#ifndef AUDITRAIL_BREAKER_H
#define AUDITRAIL_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/backoff.h"

enum breaker_state { BREAKER_CLOSED = 0, BREAKER_OPEN = 1, BREAKER_HALF_OPEN = 2 };

struct breaker_conf {
    unsigned window;               /* default 20, at most 1024 */
    unsigned min_calls;            /* default 5 */
    unsigned failure_rate_pct;     /* default 50 */
    unsigned consecutive_failures; /* default 3 */
    uint64_t open_base_ms;         /* default 500 */
    uint64_t open_max_ms;          /* default 30000 */
};

typedef uint64_t (*breaker_clock_fn)(void *ud); /* monotonic ms */
struct breaker;
typedef void (*breaker_change_fn)(void *ud, const struct breaker *b, enum breaker_state from,
                                  enum breaker_state to);

struct breaker {
    char name[32];
    struct breaker_conf conf;
    enum breaker_state state;
    breaker_clock_fn clock;
    void *clock_ud;
    struct backoff open_backoff;
    breaker_change_fn on_change;
    void *change_ud;
    uint8_t outcomes[1024]; /* ring: 1 = failure */
    unsigned ring_pos, ring_count, ring_failures;
    unsigned consecutive;
    uint64_t open_until_ms;
    bool probe_out;
    uint64_t trips; /* times it went to open */
};

/* Fill conf with the defaults above. */
void breaker_conf_default(struct breaker_conf *c);
/* clock NULL = monotonic clock; rand NULL = default random source;
 * on_change may be NULL. */
void breaker_init(struct breaker *b, const char *name, const struct breaker_conf *conf,
                  breaker_clock_fn clock, void *clock_ud, rand_u64_fn rand, void *rand_ud,
                  breaker_change_fn on_change, void *change_ud);
/* May a call go ahead now? In half-open, true exactly once per probe. */
bool breaker_allow(struct breaker *b);
void breaker_success(struct breaker *b);
void breaker_failure(struct breaker *b);
enum breaker_state breaker_state(const struct breaker *b);
const char *breaker_state_name(enum breaker_state s);
/* Milliseconds until an open breaker admits a probe (0 when not open). */
uint64_t breaker_wait_ms(const struct breaker *b);

#endif
