/* Signed layouts and JSON lines of the chain heads (aggregator/proof_format.h). */
#include "aggregator/proof_format.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"

static uint8_t *put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    return p + 8;
}

void proof_head_message(const struct proof_head *h, uint8_t out[PROOF_HEAD_MSG_LEN])
{
    uint8_t *p = out;
    memcpy(p, PROOF_HEAD_DOMAIN, 17);
    p = put64(p + 17, h->round);
    if (hex_decode(h->stream, 16, p) != 0)
        memset(p, 0, 16); /* callers pass validated ids */
    p = put64(p + 16, (uint64_t)h->seq);
    memcpy(p, h->hash, CHAIN_HASH_LEN);
    p = put64(p + CHAIN_HASH_LEN, (uint64_t)h->event_time_us);
    put64(p, (uint64_t)h->signed_at_us);
}

void proof_round_message(const struct proof_round *r, uint8_t out[PROOF_ROUND_MSG_LEN])
{
    uint8_t *p = out;
    memcpy(p, PROOF_ROUND_DOMAIN, 18);
    p = put64(p + 18, r->round);
    p = put64(p, r->tree_size);
    memcpy(p, r->root, CHAIN_HASH_LEN);
    put64(p + CHAIN_HASH_LEN, (uint64_t)r->signed_at_us);
}

static json_t *hexj(const uint8_t *p, size_t n)
{
    char s[2 * 128 + 1];
    hex_encode(p, n, s);
    return json_string(s);
}

static json_t *timej(int64_t us)
{
    char t[TIME_RFC3339_LEN];
    time_format_us(us, t);
    return json_string(t);
}

static char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!s)
        abort();
    return s;
}

char *proof_head_json(const struct proof_head *h)
{
    uint8_t msg[PROOF_HEAD_MSG_LEN];
    proof_head_message(h, msg);
    json_t *j = json_object();
    json_object_set_new(j, "type", json_string("head"));
    json_object_set_new(j, "round", json_integer((json_int_t)h->round));
    json_object_set_new(j, "leaf", json_integer((json_int_t)h->leaf_index));
    json_object_set_new(j, "stream", json_string(h->stream));
    json_object_set_new(j, "seq", json_integer(h->seq));
    json_object_set_new(j, "hash", hexj(h->hash, CHAIN_HASH_LEN));
    json_object_set_new(j, "event_time", timej(h->event_time_us));
    json_object_set_new(j, "event_time_us", json_integer(h->event_time_us));
    json_object_set_new(j, "signed_at", timej(h->signed_at_us));
    json_object_set_new(j, "signed_at_us", json_integer(h->signed_at_us));
    json_object_set_new(j, "message", hexj(msg, sizeof(msg)));
    json_object_set_new(j, "signature", hexj(h->sig, PROOF_SIG_LEN));
    return dump(j);
}

char *proof_round_json(const struct proof_round *r)
{
    uint8_t msg[PROOF_ROUND_MSG_LEN];
    proof_round_message(r, msg);
    json_t *j = json_object();
    json_object_set_new(j, "type", json_string("round"));
    json_object_set_new(j, "round", json_integer((json_int_t)r->round));
    json_object_set_new(j, "tree_size", json_integer((json_int_t)r->tree_size));
    json_object_set_new(j, "heads", json_integer((json_int_t)r->heads));
    json_object_set_new(j, "root", hexj(r->root, CHAIN_HASH_LEN));
    json_object_set_new(j, "signed_at", timej(r->signed_at_us));
    json_object_set_new(j, "signed_at_us", json_integer(r->signed_at_us));
    json_object_set_new(j, "key_id", json_string(r->key_id));
    json_object_set_new(j, "message", hexj(msg, sizeof(msg)));
    json_object_set_new(j, "signature", hexj(r->sig, PROOF_SIG_LEN));
    return dump(j);
}

/* Field readers: 0, or -1 with err naming the field. */
static int get_int(json_t *o, const char *k, int64_t min, int64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v) || json_integer_value(v) < min) {
        snprintf(err, errlen, "bad or missing \"%s\"", k);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int get_hex(json_t *o, const char *k, uint8_t *out, size_t n, char *err, size_t errlen)
{
    const char *s = json_string_value(json_object_get(o, k));
    if (!s || strlen(s) != 2 * n || hex_decode(s, n, out) != 0) {
        snprintf(err, errlen, "bad or missing \"%s\"", k);
        return -1;
    }
    return 0;
}

/* "message", when present, must be what the fields say. */
static int check_message(json_t *o, const uint8_t *msg, size_t n, char *err, size_t errlen)
{
    if (!json_object_get(o, "message"))
        return 0;
    uint8_t m[PROOF_HEAD_MSG_LEN > PROOF_ROUND_MSG_LEN ? PROOF_HEAD_MSG_LEN : PROOF_ROUND_MSG_LEN];
    if (get_hex(o, "message", m, n, err, errlen) != 0)
        return -1;
    if (memcmp(m, msg, n) != 0) {
        snprintf(err, errlen, "\"message\" disagrees with the fields");
        return -1;
    }
    return 0;
}

static enum proof_kind parse_head(json_t *o, struct proof_head *h, char *err, size_t errlen)
{
    memset(h, 0, sizeof(*h));
    int64_t round, leaf;
    const char *stream = json_string_value(json_object_get(o, "stream"));
    uint8_t sid[16];
    if (!stream || strlen(stream) != CHAIN_STREAM_HEX_LEN || hex_decode(stream, 16, sid) != 0) {
        snprintf(err, errlen, "bad or missing \"stream\"");
        return PROOF_BAD;
    }
    hex_encode(sid, 16, h->stream); /* lower case */
    if (get_int(o, "round", 1, &round, err, errlen) || get_int(o, "leaf", 0, &leaf, err, errlen) ||
        get_int(o, "seq", 0, &h->seq, err, errlen) ||
        get_int(o, "event_time_us", INT64_MIN, &h->event_time_us, err, errlen) ||
        get_int(o, "signed_at_us", INT64_MIN, &h->signed_at_us, err, errlen) ||
        get_hex(o, "hash", h->hash, CHAIN_HASH_LEN, err, errlen) ||
        get_hex(o, "signature", h->sig, PROOF_SIG_LEN, err, errlen))
        return PROOF_BAD;
    h->round = (uint64_t)round;
    h->leaf_index = (uint64_t)leaf;
    uint8_t msg[PROOF_HEAD_MSG_LEN];
    proof_head_message(h, msg);
    return check_message(o, msg, sizeof(msg), err, errlen) ? PROOF_BAD : PROOF_HEAD;
}

static enum proof_kind parse_round(json_t *o, struct proof_round *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    int64_t round, size, heads = 0;
    const char *kid = json_string_value(json_object_get(o, "key_id"));
    if (get_int(o, "round", 1, &round, err, errlen) ||
        get_int(o, "tree_size", 0, &size, err, errlen) ||
        get_int(o, "signed_at_us", INT64_MIN, &r->signed_at_us, err, errlen) ||
        get_hex(o, "root", r->root, CHAIN_HASH_LEN, err, errlen) ||
        get_hex(o, "signature", r->sig, PROOF_SIG_LEN, err, errlen))
        return PROOF_BAD;
    if (json_object_get(o, "heads") && get_int(o, "heads", 0, &heads, err, errlen))
        return PROOF_BAD;
    r->round = (uint64_t)round;
    r->tree_size = (uint64_t)size;
    r->heads = (uint64_t)heads;
    snprintf(r->key_id, sizeof(r->key_id), "%s", kid ? kid : "");
    uint8_t msg[PROOF_ROUND_MSG_LEN];
    proof_round_message(r, msg);
    return check_message(o, msg, sizeof(msg), err, errlen) ? PROOF_BAD : PROOF_ROUND;
}

enum proof_kind proof_json_parse(const char *line, size_t len, struct proof_head *h,
                                 struct proof_round *r, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "not a JSON object");
        json_decref(o);
        return PROOF_BAD;
    }
    const char *type = json_string_value(json_object_get(o, "type"));
    enum proof_kind k = PROOF_BAD;
    if (type && strcmp(type, "head") == 0)
        k = parse_head(o, h, err, errlen);
    else if (type && strcmp(type, "round") == 0)
        k = parse_round(o, r, err, errlen);
    else
        snprintf(err, errlen, "\"type\" is neither head nor round");
    json_decref(o);
    return k;
}
