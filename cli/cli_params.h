/* A verb's options as the API's query string: the filters given, --from
 * and --to resolved once (relative times count from one "now", so every
 * page of --all asks the same question), the defaults of the event verbs
 * (the last 24 hours). Pure. */
#ifndef AUDITRAIL_CLI_PARAMS_H
#define AUDITRAIL_CLI_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct cli_opts;

#define CLI_DEFAULT_SPAN_US (INT64_C(86400) * 1000000) /* --from when not given: --to - 24h */

/* Append to qs the filters o holds (tenant, actor, action, resource,
 * outcome, source, stream, kind, from, to, min_lsn, counts; not limit or
 * cursor). With default_range, a missing --to is now_us and a missing
 * --from is --to minus CLI_DEFAULT_SPAN_US. Returns 0, or -1 with a
 * message in err (a bad time, --from not before --to, a stream id that is
 * not 32 hex characters). */
int cli_params_build(const struct cli_opts *o, int64_t now_us, bool default_range, struct buf *qs,
                     char *err, size_t errlen) __attribute__((warn_unused_result));

/* Is s a stream id (32 hex characters, either case)? Lower-cased into
 * out[33] when it is. */
bool cli_stream_id(const char *s, char out[33]);

#endif
