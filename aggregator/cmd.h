/* The aggregator's operator subcommands beyond the service: `verify`,
 * `replay` by time or offsets, and `proof` (signed chain heads). Each takes
 * the loaded configuration and its own arguments (after the subcommand's
 * name) and returns the process's exit status; usage errors are
 * PROG_EXIT_USAGE with a message on stderr. */
#ifndef AUDITRAIL_AGGREGATOR_CMD_H
#define AUDITRAIL_AGGREGATOR_CMD_H

#include <signal.h>
#include <stdint.h>

#include "aggregator/aggr_config.h"

/* verify [--stream ID] [--from TIME] [--to TIME] [--tenant T]
 *        [--against FILE|kafka[:TOPIC]] [--pubkey FILE] [--workers N] [--json] */
int cmd_verify(const struct aggr_config *cfg, int argc, char **argv,
               const volatile sig_atomic_t *stop);

/* replay --from TIME [--to TIME] [--partitions LIST] [--dry-run] [--json]
 * replay --from-offset P:O[,P:O...] [--to TIME] [--dry-run] [--json] */
int cmd_replay(const struct aggr_config *cfg, int argc, char **argv,
               const volatile sig_atomic_t *stop);

/* proof pubkey | sign | inclusion STREAM [SEQ] | consistency ROUND1 ROUND2
 * (argv[0] "proof"); proof keygen FILE needs no configuration: */
int cmd_proof(const struct aggr_config *cfg, int argc, char **argv);
int cmd_proof_keygen(int argc, char **argv);

/* A usage error of a subcommand: "auditrail-aggregator VERB: " fmt (with
 * arg), then its usage text, on stderr; returns PROG_EXIT_USAGE. */
int cmd_usage(const char *verb, const char *usage, const char *fmt, const char *arg);

/* A time argument: RFC 3339, or relative to now_us: "-24h", "-90m", "-7d",
 * "-30s" (also "now"). 0, or -1 when it is neither. */
int cmd_parse_time(const char *s, int64_t now_us, int64_t *out_us);

#endif
