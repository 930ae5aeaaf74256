/* An active replay: read ranges of the topic with a consumer of its own
 * (never the group: the group's stored offsets are not touched) and run
 * every message through the aggregator's own path — validate (DLQ), the
 * batch and LRU dedupe layers, and the pg_writer's transaction (chain check,
 * re-sends, forks, incidents) — in batches without Kafka offsets, so the
 * live consumers' offset compare-and-set is unaffected. Safe while they run:
 * the per-stream rule and the primary key decide what is stored, whoever
 * comes first. Partitions are read one after the other; each one's range
 * ends at its high watermark taken at the start. */
#ifndef AUDITRAIL_AGGREGATOR_REPLAY_RUN_H
#define AUDITRAIL_AGGREGATOR_REPLAY_RUN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "aggregator/aggr_config.h"

#define REPLAY_TIME_ANY_FROM INT64_MIN
#define REPLAY_TIME_ANY_TO   INT64_MAX

struct replay_from_offset {
    int32_t partition;
    int64_t offset;
};

struct replay_opts {
    /* Message timestamps (ms) [from, to): the start of each partition is
     * the first message at or after from_ms; messages outside are skipped
     * (counted). REPLAY_TIME_ANY_*: unbounded. */
    int64_t from_ms, to_ms;
    const int32_t *partitions; /* only these (NULL: every partition) */
    size_t npartitions;
    /* --from-offset: exactly these partitions, from these offsets (a start
     * below the low watermark starts there). Excludes partitions. */
    const struct replay_from_offset *offsets;
    size_t noffsets;
    bool dry_run;   /* classify and report; every transaction rolled back, no DLQ copy */
    FILE *progress; /* a line per second (NULL: none) */
    const volatile sig_atomic_t *stop; /* non-zero: stop after the batch in hand */
};

struct replay_counts {
    uint64_t read;                      /* messages read in the range */
    uint64_t outside;                   /* skipped: timestamp outside [from, to) */
    uint64_t inserted;                  /* rows stored (dry run: that would be) */
    uint64_t resends;                   /* already stored (or twice in the range): dropped */
    uint64_t forks, gaps, chain_breaks; /* incidents (gaps and chain breaks: not in a dry run) */
    uint64_t dlq;                       /* invalid or refused by PostgreSQL */
};

struct replay_part_report {
    int32_t partition;
    int64_t start, end; /* offsets read: [start, end) */
    int64_t reached;    /* next offset after the last message read */
    bool searched;      /* the start was found by searching timestamps */
    struct replay_counts n;
};

struct replay_report {
    bool dry_run;
    struct replay_part_report *parts; /* heap */
    size_t nparts;
    struct replay_counts total;
    uint64_t elapsed_us;
};

enum replay_status {
    REPLAY_OK = 0,
    REPLAY_FAILED = 1,      /* stopped by an error or a signal; err says which */
    REPLAY_UNAVAILABLE = 4, /* Kafka or PostgreSQL unreachable */
};

/* Run the replay of cfg's topic into cfg's database. The report holds what
 * was done, also after a failure. */
enum replay_status replay_run(const struct aggr_config *cfg, const struct replay_opts *o,
                              struct replay_report *rep, char *err, size_t errlen);
void replay_report_release(struct replay_report *r);

#endif
