/* The readable output of the list verbs: fixed-width tables of events,
 * streams, incidents and verify's findings, and one stream's details, every value escaped and
 * cut by cli_text (a record cannot move the cursor or break the columns).
 * Pure: rows are appended to a buf. */
#ifndef AUDITRAIL_CLI_TABLE_H
#define AUDITRAIL_CLI_TABLE_H

#include <jansson.h>

#include "common/buf.h"

enum cli_table_kind {
    CLI_TABLE_EVENTS,
    CLI_TABLE_STREAMS,
    CLI_TABLE_INCIDENTS,
    CLI_TABLE_FINDINGS, /* verify's FINDING objects */
};

/* The title line, ended with '\n'. */
void cli_table_header(struct buf *out, enum cli_table_kind k);
/* One row for an item of the API's array (an EVENT, STREAM, INCIDENT or
 * verify FINDING object of README "Query API"), ended with '\n'. Missing or null values
 * show as "-". */
void cli_table_row(struct buf *out, enum cli_table_kind k, json_t *item);
/* GET /v1/streams/{id}'s answer: one "label  value" line per field, then
 * its incidents as a table. */
void cli_table_stream(struct buf *out, json_t *stream);

#endif
