/* Binary COPY encoding of auditrail.events rows (aggregator/pg_copy.h):
 * big-endian fields, timestamps as µs since 2000-01-01, jsonb as version 1
 * + text, the id as 16 uuid bytes. */
#include "aggregator/pg_copy.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hashchain.h"

#define PG_EPOCH_OFFSET_US INT64_C(946684800000000) /* 2000-01-01 - 1970-01-01 */

static void put_i16(struct buf *b, int16_t v)
{
    uint16_t n = htons((uint16_t)v);
    buf_add(b, &n, 2);
}

static void put_i32(struct buf *b, int32_t v)
{
    uint32_t n = htonl((uint32_t)v);
    buf_add(b, &n, 4);
}

static void put_i64(struct buf *b, int64_t v)
{
    uint64_t u = (uint64_t)v;
    uint8_t o[8];
    for (int i = 7; i >= 0; i--) {
        o[i] = (uint8_t)u;
        u >>= 8;
    }
    buf_add(b, o, 8);
}

static void fld_null(struct buf *b)
{
    put_i32(b, -1);
}

static void fld_bytes(struct buf *b, const void *d, size_t n)
{
    put_i32(b, (int32_t)n);
    buf_add(b, d, n);
}

static void fld_text(struct buf *b, const char *s)
{
    if (!s)
        fld_null(b);
    else
        fld_bytes(b, s, strlen(s));
}

static void fld_i64(struct buf *b, int64_t v)
{
    put_i32(b, 8);
    put_i64(b, v);
}

static void fld_time(struct buf *b, int64_t unix_us)
{
    fld_i64(b, unix_us - PG_EPOCH_OFFSET_US);
}

/* jsonb binary: a version byte (1) then the JSON text. */
static void fld_jsonb(struct buf *b, const void *text, size_t n)
{
    put_i32(b, (int32_t)(n + 1));
    uint8_t ver = 1;
    buf_add(b, &ver, 1);
    buf_add(b, text, n);
}

static void uuid_bytes(const struct envelope *e, uint8_t out[16])
{
    /* 8-4-4-4-12; envelope_decode validated it. Fall back to the contract
     * (the first 16 bytes of the hash) if it is somehow malformed. */
    static const int pos[5][2] = {{0, 4}, {9, 2}, {14, 2}, {19, 2}, {24, 6}};
    size_t o = 0;
    for (int i = 0; i < 5; i++) {
        if (hex_decode(e->id + pos[i][0], (size_t)pos[i][1], out + o) < 0) {
            memcpy(out, e->hash, 16);
            return;
        }
        o += (size_t)pos[i][1];
    }
}

/* Strict check: the record is a JSON object jsonb can hold (valid UTF-8, no
 * \u0000, numbers in range), by parsing it with jansson (~µs per record). */
static bool line_is_json_object(const uint8_t *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == len || line[i] != '{')
        return false;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)line, len, JSON_DECODE_INT_AS_REAL, &jerr);
    bool ok = j && json_is_object(j);
    json_decref(j);
    return ok;
}

/* Cheap check: it looks like one JSON object jsonb could hold ('{' … '}', no
 * NUL byte, no \u0000). PostgreSQL's jsonb parser is the real validator: a
 * row it refuses is sent again with attrs NULL (pg_writer.c). */
static bool line_maybe_json_object(const uint8_t *line, size_t len)
{
    size_t i = 0, j = len;
    while (i < j && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    while (j > i && (line[j - 1] == ' ' || line[j - 1] == '\t' || line[j - 1] == '\r'))
        j--;
    if (j - i < 2 || line[i] != '{' || line[j - 1] != '}')
        return false;
    return !memchr(line, 0, len) && !memmem(line, len, "\\u0000", 6);
}

static char *source_json(const struct envelope_source *s)
{
    json_t *o = json_object();
    const char *k[] = {"name", "host", "namespace", "pod", "container", "path"};
    const char *v[] = {s->name, s->host, s->namespace_, s->pod, s->container, s->path};
    for (int i = 0; i < 6; i++)
        if (v[i])
            json_object_set_new(o, k[i], json_string(v[i]));
    char *txt = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return txt;
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool source_eq(const struct envelope_source *a, const struct envelope_source *b)
{
    return str_eq(a->name, b->name) && str_eq(a->host, b->host) &&
           str_eq(a->namespace_, b->namespace_) && str_eq(a->pod, b->pod) &&
           str_eq(a->container, b->container) && str_eq(a->path, b->path);
}

const char *pg_copy_src_json(struct pg_copy_src *sc, const struct envelope_source *s)
{
    if (!sc->json || !source_eq(sc->src, s)) {
        free(sc->json);
        sc->json = source_json(s);
    }
    sc->src = s;
    return sc->json;
}

void pg_copy_src_release(struct pg_copy_src *sc)
{
    free(sc->json);
    sc->json = NULL;
    sc->src = NULL;
}

void pg_copy_header(struct buf *b)
{
    static const char sig[] = "PGCOPY\n\377\r\n\0";
    buf_add(b, sig, 11);
    put_i32(b, 0); /* flags */
    put_i32(b, 0); /* header extension length */
}

void pg_copy_trailer(struct buf *b)
{
    put_i16(b, -1);
}

size_t pg_copy_field_len(const char *s, size_t len)
{
    if (len <= PG_COPY_FIELD_MAX)
        return len;
    size_t n = PG_COPY_FIELD_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--; /* s[n] continues a character: cut before the character */
    return n;
}

#define TEXT_OID 25 /* pg_type oid of text: the element type of fields_cut */

/* fields_cut text[]: the names of the cut columns, or NULL. Binary array:
 * dimensions, has-nulls flag, element type, then size and lower bound per
 * dimension, then the elements. */
static void fld_cut(struct buf *b, unsigned cut)
{
    static const char *const names[] = {"tenant", "actor", "action", "resource", "outcome"};
    if (!cut) {
        fld_null(b);
        return;
    }
    int n = 0;
    size_t bytes = 0;
    for (int i = 0; i < 5; i++)
        if (cut & (1u << i)) {
            n++;
            bytes += 4 + strlen(names[i]);
        }
    put_i32(b, (int32_t)(20 + bytes));
    put_i32(b, 1); /* one dimension */
    put_i32(b, 0); /* no NULL element */
    put_i32(b, TEXT_OID);
    put_i32(b, n);
    put_i32(b, 1); /* lower bound */
    for (int i = 0; i < 5; i++)
        if (cut & (1u << i))
            fld_bytes(b, names[i], strlen(names[i]));
}

/* An indexed text column, cut to PG_COPY_FIELD_MAX; sets bit when cut. */
static void fld_indexed(struct buf *b, const char *s, unsigned bit, unsigned *cut)
{
    if (!s) {
        fld_null(b);
        return;
    }
    size_t len = strlen(s), keep = pg_copy_field_len(s, len);
    if (keep < len)
        *cut |= bit;
    fld_bytes(b, s, keep);
}

/* One row in the column order of SQL_W_COPY_COLS (events without
 * ingested_at). */
unsigned pg_copy_row(struct buf *b, const struct envelope *e, struct pg_copy_src *sc,
                     enum pg_copy_attrs attrs)
{
    uint8_t uuid[16];
    unsigned cut = 0;
    uuid_bytes(e, uuid);
    put_i16(b, 20);
    fld_time(b, e->time_us);
    fld_bytes(b, uuid, 16);
    fld_text(b, e->stream);
    fld_i64(b, (int64_t)e->seq);
    fld_i64(b, (int64_t)e->offset);
    fld_bytes(b, e->hash, CHAIN_HASH_LEN);
    fld_bytes(b, e->prev, CHAIN_HASH_LEN);
    fld_time(b, e->read_time_us);
    fld_text(b, e->time_source == TIME_SOURCE_PAYLOAD ? "payload" : "read");
    fld_indexed(b, e->fields.tenant, PG_COPY_CUT_TENANT, &cut);
    fld_indexed(b, e->fields.actor, PG_COPY_CUT_ACTOR, &cut);
    fld_indexed(b, e->fields.action, PG_COPY_CUT_ACTION, &cut);
    fld_indexed(b, e->fields.resource, PG_COPY_CUT_RESOURCE, &cut);
    fld_indexed(b, e->fields.outcome, PG_COPY_CUT_OUTCOME, &cut);
    fld_text(b, e->format ? e->format : "raw");
    const char *src = pg_copy_src_json(sc, &e->source);
    fld_jsonb(b, src, strlen(src));
    fld_bytes(b, e->line ? (const void *)e->line : "", e->line_len);
    fld_i64(b, (int64_t)e->truncated_bytes);
    /* A cut record is not the JSON it started as. */
    bool json = attrs != PG_COPY_ATTRS_NULL && e->truncated_bytes == 0 &&
                (attrs == PG_COPY_ATTRS_STRICT ? line_is_json_object(e->line, e->line_len)
                                               : line_maybe_json_object(e->line, e->line_len));
    if (json)
        fld_jsonb(b, e->line, e->line_len);
    else
        fld_null(b);
    fld_cut(b, cut);
    return cut;
}
