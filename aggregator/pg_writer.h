/* The PostgreSQL writer: the transaction script of one batch — compare-and-set
 * of auditrail.kafka_offsets, partitions, the streams' state and stored
 * hashes for chain_check, COPY of what it keeps (pg_copy), auditrail.streams
 * and integrity incidents, COMMIT (DESIGN.md §4–5). One pg_conn connection;
 * the writer belongs to one thread at a time (writer.h says which). */
#ifndef AUDITRAIL_AGGREGATOR_PG_WRITER_H
#define AUDITRAIL_AGGREGATOR_PG_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aggregator/batch.h"
#include "aggregator/pg_conn.h"

struct pg_writer;

struct pg_write_stats {
    size_t inserted;     /* rows newly stored */
    size_t fields_cut;   /* of them, rows with an indexed field cut (pg_copy.h) */
    size_t transactions; /* transactions it took (more when its rows span more days than
                            max_days) */
    size_t dup_stream;   /* exact re-sends caught by the (stream, seq, hash) rule */
    size_t dup_pk;       /* caught by ON CONFLICT (event_time, id) DO NOTHING */
    size_t forks;        /* same (stream, seq), different hash: stored + incident */
    size_t gaps;         /* seq gaps recorded as incidents */
    size_t chain_breaks; /* prev != stored hash of seq-1: recorded as incidents */
    size_t partitions_created;
    /* Per row of the batch: 1 when it was stored or was a duplicate of a
     * stored row (so its id may be marked in the dedupe caches after the
     * commit). Heap, batch->n entries, owned by the stats; NULL before the
     * first write. */
    uint8_t *committed;
    ssize_t bad_row; /* PG_DATA: index of an offending row when known, else -1 */
};

/* Days (hence partitions) one transaction writes at most, by default. */
#define PG_WRITER_MAX_DAYS 8

struct pg_writer_opts {
    struct pg_limits limits; /* of its connection */
    /* A batch whose rows fall on more UTC days is written in several
     * transactions, each a run of consecutive rows on at most this many
     * days: this bounds the partitions one transaction creates and the
     * locks it takes (a backfill of 400 days would otherwise exhaust the
     * server's lock table, 53200). */
    int max_days;
};
#define PG_WRITER_OPTS_DEFAULT                                                                     \
    {                                                                                              \
        .limits = PG_LIMITS_DEFAULT, .max_days = PG_WRITER_MAX_DAYS                                \
    }

/* Connect to conninfo (libpq). `group` is the consumer group stored with the
 * offsets; opts (NULL: PG_WRITER_OPTS_DEFAULT) bound its work. Returns
 * NULL with a message in err when the first connect fails (the caller
 * decides whether that is fatal), or when the statements cannot be prepared
 * (schema not migrated, privileges). The conninfo may set connect_timeout
 * (default here 5 s), application_name (default "auditrail-aggregator") and
 * the other libpq keywords of pg_limits. */
struct pg_writer *pg_writer_new(const char *conninfo, const char *group,
                                const struct pg_writer_opts *opts, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void pg_writer_free(struct pg_writer *w); /* NULL-safe */

/* The stored next offset for (group, topic, partition): 0 with *out set
 * (-1 when there is no row: start from the beginning), or the failure's
 * class with err. */
enum pg_status pg_writer_load_offset(struct pg_writer *w, const char *topic, int32_t partition,
                                     int64_t *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Write the batch: in one transaction, or, when its rows fall on more than
 * max_days days, in several, each holding a run of consecutive rows (so
 * each stream's rows keep their order), the last one carrying the offsets
 * (the earlier ones check, without moving them, that the offsets are still
 * ours). On PG_OK everything is committed and stats are filled. On any
 * other result the last transaction is not committed; earlier ones may be,
 * and their rows are found again as re-sends when the batch is written
 * again (the per-stream rule); stats hold bad_row only. */
enum pg_status pg_writer_write(struct pg_writer *w, const struct batch *b,
                               struct pg_write_stats *stats, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Free stats->committed (a zeroed struct needs no init). NULL-safe. */
void pg_write_stats_release(struct pg_write_stats *s);

/* Dry run (replay --dry-run): pg_writer_write does all its work and
 * reports what it would have stored, then rolls back instead of
 * committing (stats->committed marks what would have been). */
void pg_writer_set_dry_run(struct pg_writer *w, bool on);

/* Cheap liveness probe (SELECT 1, reconnecting if needed). */
enum pg_status pg_writer_ping(struct pg_writer *w, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* How long the call in progress on w (write, ping, offset load) has been
 * running, in ms; 0 when none. Any thread (an atomic). */
uint64_t pg_writer_busy_ms(const struct pg_writer *w);
/* The primary's WAL position now (text "X/Y"): asked right after a commit,
 * an upper bound of that commit's LSN, which a reader gives as min_lsn to
 * read its writes (/v1/status). */
enum pg_status pg_writer_wal_lsn(struct pg_writer *w, char *out, size_t len, char *err,
                                 size_t errlen) __attribute__((warn_unused_result));

#endif
