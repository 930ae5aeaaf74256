/* Rows of the read path's results as JSON: an event as the API's object
 * (line when the record is valid UTF-8, else line_b64), an event as a FHIR
 * R4 AuditEvent (records parsed from FHIR input come back as themselves),
 * a stream and an incident. Columns are those of query_sql.h. */
#ifndef AUDITRAIL_AGGREGATOR_QUERY_RENDER_H
#define AUDITRAIL_AGGREGATOR_QUERY_RENDER_H

#include <libpq-fe.h>
#include <stdint.h>

#include "common/buf.h"

/* Keyset columns of an events row: event_time µs and id (uuid text). */
int64_t render_event_time(const PGresult *res, int row);
const char *render_event_id(const PGresult *res, int row);

void render_event_json(const PGresult *res, int row, struct buf *out);
void render_event_fhir(const PGresult *res, int row, struct buf *out);
/* A streams row (SQL_Q_STREAM_COLS, then the optional count column). */
void render_stream_json(const PGresult *res, int row, struct buf *out);
void render_incident_json(const PGresult *res, int row, struct buf *out);

/* A µs timestamp as a JSON string "2026-11-26T19:50:45.123456Z". */
void render_time(struct buf *out, int64_t us);

#endif
