/* Independent hash chain and envelope builder for tests (OpenSSL, jansson). */
#include "tests/support/chain.h"

#include <check.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xmalloc.h"

void tchain_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void tchain_genesis(const char *stream_hex, uint8_t out[TCHAIN_HASH_LEN])
{
    char *g = xasprintf("auditrail:v1:%s", stream_hex);
    SHA256((const uint8_t *)g, strlen(g), out);
    free(g);
}

void tchain_hash(const uint8_t prev[TCHAIN_HASH_LEN], uint64_t seq, const void *rec, size_t len,
                 uint8_t out[TCHAIN_HASH_LEN])
{
    uint8_t be[8];
    for (int i = 7; i >= 0; i--, seq >>= 8)
        be[i] = (uint8_t)seq;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, prev, TCHAIN_HASH_LEN);
    EVP_DigestUpdate(ctx, be, sizeof(be));
    EVP_DigestUpdate(ctx, rec, len);
    EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
}

void tchain_uuid(const uint8_t hash[TCHAIN_HASH_LEN], char out[37])
{
    char hex[33];
    tchain_hex(hash, 16, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

void tchain_init(struct tchain *c, const char *name)
{
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)name, strlen(name), h);
    tchain_hex(h, 16, c->stream);
    c->seq = 0;
    tchain_genesis(c->stream, c->prev);
}

/* RFC 3339 in UTC with microseconds, as DESIGN.md §3 shows. */
static void format_time(int64_t us, char out[32])
{
    time_t sec = (time_t)(us / 1000000);
    long frac = (long)(us % 1000000);
    if (frac < 0) {
        frac += 1000000;
        sec--;
    }
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%06ldZ", frac);
}

/* "line" when the record is UTF-8 (jansson checks), else "line_b64". */
static void set_line(json_t *o, const uint8_t *line, size_t len)
{
    json_t *s = json_stringn((const char *)line, len);
    if (s) {
        json_object_set_new(o, "line", s);
        return;
    }
    char *b64 = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, line, (int)len);
    json_object_set_new(o, "line_b64", json_string(b64));
    free(b64);
}

static char *envelope_json(const struct trec *r, size_t *len)
{
    char hash[65], prev[65], t[32];
    tchain_hex(r->hash, TCHAIN_HASH_LEN, hash);
    tchain_hex(r->prev, TCHAIN_HASH_LEN, prev);
    format_time(r->time_us, t);
    /* Keys in the order of DESIGN.md §3 (jansson keeps insertion order). */
    json_t *o = json_object();
    json_object_set_new(o, "v", json_integer(1));
    json_object_set_new(o, "id", json_string(r->id));
    json_object_set_new(o, "stream", json_string(r->stream));
    json_object_set_new(o, "seq", json_integer((json_int_t)r->seq));
    json_object_set_new(o, "offset", json_integer((json_int_t)r->seq * 100));
    json_object_set_new(o, "hash", json_string(hash));
    json_object_set_new(o, "prev", json_string(prev));
    json_object_set_new(o, "time", json_string(t));
    json_object_set_new(o, "time_source", json_string("read"));
    json_object_set_new(o, "read_time", json_string(t));
    json_object_set_new(o, "source", json_pack("{s:s, s:s}", "name", "test", "host", "testhost"));
    json_object_set_new(o, "format", json_string("raw"));
    json_object_set_new(
        o, "fields",
        json_pack("{s:n, s:n, s:n, s:n, s:n}", "tenant", "actor", "action", "resource", "outcome"));
    set_line(o, r->line, r->len);
    char *j = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    ck_assert_ptr_nonnull(j);
    *len = strlen(j);
    return j;
}

void tchain_next(struct tchain *c, const void *line, size_t len, int64_t time_us, struct trec *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->stream, c->stream, sizeof(out->stream));
    out->seq = c->seq;
    memcpy(out->prev, c->prev, TCHAIN_HASH_LEN);
    out->line = xmalloc(len + 1);
    memcpy(out->line, line, len);
    out->line[len] = '\0';
    out->len = len;
    out->time_us = time_us;
    tchain_hash(c->prev, c->seq, line, len, out->hash);
    tchain_uuid(out->hash, out->id);
    out->json = envelope_json(out, &out->json_len);
    memcpy(c->prev, out->hash, TCHAIN_HASH_LEN);
    c->seq++;
}

void trec_release(struct trec *r)
{
    free(r->line);
    free(r->json);
    memset(r, 0, sizeof(*r));
}

void trecs_push(struct trecs *s, struct trec *r)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = *r;
    memset(r, 0, sizeof(*r));
}

void trecs_make(struct trecs *s, const char *tag, int nstreams, int n, int64_t t0_us, size_t pad)
{
    struct tchain *c = xcalloc((size_t)nstreams, sizeof(*c));
    for (int j = 0; j < nstreams; j++) {
        char *name = xasprintf("%s-%d", tag, j);
        tchain_init(&c[j], name);
        free(name);
    }
    char *padding = xmalloc(pad + 1);
    memset(padding, 'x', pad);
    padding[pad] = '\0';
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < nstreams; j++) {
            char *line = pad ? xasprintf("{\"actor\":\"u%d\",\"action\":\"read\",\"n\":%d,"
                                         "\"pad\":\"%s\"}",
                                         j, i, padding)
                             : xasprintf("{\"actor\":\"u%d\",\"action\":\"read\",\"n\":%d}", j, i);
            struct trec r;
            tchain_next(&c[j], line, strlen(line), t0_us + (int64_t)i * 1000, &r);
            r.index = j;
            trecs_push(s, &r);
            free(line);
        }
    }
    free(padding);
    free(c);
}

void trecs_release(struct trecs *s)
{
    for (size_t i = 0; i < s->n; i++)
        trec_release(&s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}
