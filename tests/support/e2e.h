/* The independent end-to-end checker: what a writer put in log files
 * (tests/support/expect.h) against what landed in auditrail.events. It uses
 * no product code: the files are split here, PostgreSQL's own sha256()
 * verifies the hash chains and its JSON and timestamp parsers the columns,
 * so a bug in the agent's framing, hashing or parsing cannot hide. */
#ifndef AUDITRAIL_TEST_E2E_H
#define AUDITRAIL_TEST_E2E_H

#include <stdbool.h>
#include <stddef.h>

#include "tests/support/expect.h"

struct e2e_check_opts {
    /* Every row's source.name must be this (NULL: not checked). */
    const char *source_name;
    /* Rows of the audit-writer's json files (json-N.log): format json, the
     * tenant, actor, action, resource and outcome columns equal to the
     * record's own keys, event_time its "ts" (time_source payload) or, when
     * it has none, the read time (time_source read). */
    bool json_columns;
};

struct e2e_report {
    size_t expected, rows, missing, unexpected, duplicate_rows;
    size_t streams, streams_bad_seq, bad_hash, bad_link, bad_id, bad_genesis;
    size_t streams_not_files; /* streams that are no file, files that are no stream */
    size_t bad_source;        /* rows whose source names another file or source */
    size_t json_rows, bad_columns;
    char problem[2048]; /* the first few problems, human readable */
};

/* Compare auditrail.events on conninfo with exp. True when all is exact:
 * every record stored once and byte-identical; each stream's records one
 * file's records in file order with seq 0..n-1, each file one stream, its
 * source naming that file; hashes, links, ids and genesis correct; and what
 * opts asks for. */
bool e2e_check(const char *conninfo, const struct expect *exp, const struct e2e_check_opts *opts,
               struct e2e_report *r);

#endif
