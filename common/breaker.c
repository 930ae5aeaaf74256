/* The circuit breaker state machine (see breaker.h for the semantics).
 * Pure logic: time and randomness come from injectable functions. */
#include "common/breaker.h"

#include <stdio.h>
#include <string.h>

#include "common/timeutil.h"

#define BREAKER_RING_MAX (sizeof(((struct breaker *)0)->outcomes))

static uint64_t breaker_mono_ms(void *ud)
{
    (void)ud;
    return time_mono_ms();
}

void breaker_conf_default(struct breaker_conf *c)
{
    c->window = 20;
    c->min_calls = 5;
    c->failure_rate_pct = 50;
    c->consecutive_failures = 3;
    c->open_base_ms = 500;
    c->open_max_ms = 30000;
}

static void window_reset(struct breaker *b)
{
    b->ring_pos = 0;
    b->ring_count = 0;
    b->ring_failures = 0;
    b->consecutive = 0;
}

void breaker_init(struct breaker *b, const char *name, const struct breaker_conf *conf,
                  breaker_clock_fn clock, void *clock_ud, rand_u64_fn rand, void *rand_ud,
                  breaker_change_fn on_change, void *change_ud)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->name, sizeof(b->name), "%s", name ? name : "");
    if (conf)
        b->conf = *conf;
    else
        breaker_conf_default(&b->conf);
    if (b->conf.window == 0)
        b->conf.window = 1;
    if (b->conf.window > BREAKER_RING_MAX)
        b->conf.window = BREAKER_RING_MAX;
    if (b->conf.min_calls == 0)
        b->conf.min_calls = 1;
    if (b->conf.open_max_ms < b->conf.open_base_ms)
        b->conf.open_max_ms = b->conf.open_base_ms;
    b->state = BREAKER_CLOSED;
    b->clock = clock ? clock : breaker_mono_ms;
    b->clock_ud = clock_ud;
    backoff_init(&b->open_backoff, b->conf.open_base_ms, b->conf.open_max_ms, rand, rand_ud);
    b->on_change = on_change;
    b->change_ud = change_ud;
}

static void set_state(struct breaker *b, enum breaker_state to)
{
    enum breaker_state from = b->state;
    if (from == to)
        return;
    b->state = to;
    if (b->on_change)
        b->on_change(b->change_ud, b, from, to);
}

/* The open wait: uniform in [floor, ceiling] where the ceiling doubles per
 * consecutive trip and floor = max(1, open_base_ms / 2). Pure full jitter
 * could draw 0 ms and probe at once, which would make the breaker useless;
 * the floor keeps the jitter wide (probes of many instances spread out)
 * while guaranteeing a real pause. */
static uint64_t open_wait(struct breaker *b)
{
    struct backoff *bo = &b->open_backoff;
    uint64_t ceiling = backoff_ceiling(bo);
    uint64_t r = bo->rand(bo->rand_ud);
    if (bo->attempt < 64)
        bo->attempt++;
    if (ceiling == 0)
        return 0;
    uint64_t floor = b->conf.open_base_ms / 2;
    if (floor == 0)
        floor = 1;
    if (floor > ceiling)
        floor = ceiling;
    uint64_t span = ceiling - floor;
    return floor + (span == UINT64_MAX ? r : r % (span + 1));
}

static void trip(struct breaker *b)
{
    uint64_t now = b->clock(b->clock_ud);
    uint64_t wait = open_wait(b);
    b->open_until_ms = (now > UINT64_MAX - wait) ? UINT64_MAX : now + wait;
    b->probe_out = false;
    b->trips++;
    window_reset(b);
    set_state(b, BREAKER_OPEN);
}

bool breaker_allow(struct breaker *b)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        return true;
    case BREAKER_OPEN:
        if (b->clock(b->clock_ud) < b->open_until_ms)
            return false;
        b->probe_out = true;
        set_state(b, BREAKER_HALF_OPEN);
        return true;
    case BREAKER_HALF_OPEN:
        if (b->probe_out)
            return false;
        b->probe_out = true;
        return true;
    }
    return false;
}

static void record(struct breaker *b, uint8_t failed)
{
    unsigned w = b->conf.window;
    if (b->ring_count == w)
        b->ring_failures -= b->outcomes[b->ring_pos];
    else
        b->ring_count++;
    b->outcomes[b->ring_pos] = failed;
    b->ring_failures += failed;
    b->ring_pos = (b->ring_pos + 1) % w;
}

void breaker_success(struct breaker *b)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        record(b, 0);
        b->consecutive = 0;
        break;
    case BREAKER_HALF_OPEN:
        /* The probe went through: the dependency is back. */
        b->probe_out = false;
        window_reset(b);
        backoff_reset(&b->open_backoff);
        set_state(b, BREAKER_CLOSED);
        break;
    case BREAKER_OPEN:
        /* A call admitted before the trip finished late: it says nothing
         * about whether the wait should end early. */
        break;
    }
}

void breaker_failure(struct breaker *b)
{
    switch (b->state) {
    case BREAKER_CLOSED: {
        record(b, 1);
        b->consecutive++;
        const struct breaker_conf *c = &b->conf;
        bool by_consecutive =
            c->consecutive_failures > 0 && b->consecutive >= c->consecutive_failures;
        bool by_rate =
            c->failure_rate_pct > 0 && c->failure_rate_pct <= 100 &&
            b->ring_count >= c->min_calls &&
            (uint64_t)b->ring_failures * 100 >= (uint64_t)c->failure_rate_pct * b->ring_count;
        if (by_consecutive || by_rate)
            trip(b);
        break;
    }
    case BREAKER_HALF_OPEN:
        trip(b); /* the probe failed: open again, with a longer ceiling */
        break;
    case BREAKER_OPEN:
        break;
    }
}

enum breaker_state breaker_state(const struct breaker *b)
{
    return b->state;
}

const char *breaker_state_name(enum breaker_state s)
{
    switch (s) {
    case BREAKER_CLOSED:
        return "closed";
    case BREAKER_OPEN:
        return "open";
    case BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}

uint64_t breaker_wait_ms(const struct breaker *b)
{
    if (b->state != BREAKER_OPEN)
        return 0;
    uint64_t now = b->clock(b->clock_ud);
    return now < b->open_until_ms ? b->open_until_ms - now : 0;
}
