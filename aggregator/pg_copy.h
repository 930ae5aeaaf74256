/* The binary COPY encoding of auditrail.events rows (COPY … FROM STDIN
 * (FORMAT binary)): the header, one tuple per envelope in the column order
 * of SQL_W_COPY_COLS (pg_sql.h), the trailer. Pure encoding into a
 * common/buf; sending is pg_conn's. */
#ifndef AUDITRAIL_AGGREGATOR_PG_COPY_H
#define AUDITRAIL_AGGREGATOR_PG_COPY_H

#include "common/buf.h"
#include "common/envelope.h"

/* How a row's attrs (jsonb) column is filled. A cut record (truncated_bytes
 * > 0) is never stored as attrs: it is not the JSON it started as. */
enum pg_copy_attrs {
    PG_COPY_ATTRS_NULL = 0,
    /* The record when it looks like one JSON object ('{' … '}', no NUL, no
     * \u0000): cheap; the server's jsonb parser is the real validator, and a
     * row it refuses is sent again with PG_COPY_ATTRS_NULL. */
    PG_COPY_ATTRS_CHEAP,
    /* The record when jansson parses it as an object jsonb can hold (~µs). */
    PG_COPY_ATTRS_STRICT,
};

/* The JSON text of a source (the events.source and streams.source jsonb),
 * cached for consecutive rows with an equal source: rows of one stream share
 * it, and serializing it is a good part of the encoding cost. Zero-initialize;
 * pg_copy_src_release frees it. */
struct pg_copy_src {
    const struct envelope_source *src;
    char *json;
};
/* The JSON of s (compact, sorted keys, absent members omitted); valid until
 * the next call or the release. */
const char *pg_copy_src_json(struct pg_copy_src *sc, const struct envelope_source *s);
void pg_copy_src_release(struct pg_copy_src *sc);

/* The signature, flags and header extension that start the data. */
void pg_copy_header(struct buf *out);
/* The indexed text columns (tenant, actor, action, resource, outcome) hold
 * at most this many bytes: a btree entry must fit in a third of a page
 * (2704 bytes), and a longer value (a signed URL, a token) would make the
 * server refuse the row (54000). A longer value is cut on a UTF-8 boundary
 * and its column named in fields_cut; the full value stays in raw (and in
 * attrs when the record is JSON). */
#define PG_COPY_FIELD_MAX 512
/* fields_cut bits, in column order. */
enum {
    PG_COPY_CUT_TENANT = 1,
    PG_COPY_CUT_ACTOR = 2,
    PG_COPY_CUT_ACTION = 4,
    PG_COPY_CUT_RESOURCE = 8,
    PG_COPY_CUT_OUTCOME = 16
};
/* How many bytes of s (valid UTF-8) an indexed column keeps: all of them up
 * to PG_COPY_FIELD_MAX, else the longest prefix within it that ends on a
 * character boundary. */
size_t pg_copy_field_len(const char *s, size_t len);

/* One tuple for e. sc caches the source JSON across rows. Returns the
 * fields cut (PG_COPY_CUT_* bits; 0 for none). */
unsigned pg_copy_row(struct buf *out, const struct envelope *e, struct pg_copy_src *sc,
                     enum pg_copy_attrs attrs);
/* The end-of-data marker. */
void pg_copy_trailer(struct buf *out);

#endif
