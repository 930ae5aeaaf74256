/* `auditrail-aggregator [--config FILE] proof …` (aggregator/cmd.h): the
 * signing key (keygen, pubkey), one signing cycle now (sign), and the
 * Merkle proofs an auditor asks for (inclusion, consistency), as JSON on
 * stdout. Exit 0, 1 failed (or a stored root that the stored tree does not
 * give), 2 usage, 4 database unavailable. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/cmd.h"
#include "aggregator/merkle.h"
#include "aggregator/pg_sql.h"
#include "aggregator/proof_key.h"
#include "aggregator/proof_service.h"
#include "aggregator/proof_store.h"
#include "common/prog.h"
#include "common/timeutil.h"

#define PROOF_USAGE_TEXT                                                                           \
    "usage: auditrail-aggregator proof keygen FILE\n"                                              \
    "       auditrail-aggregator --config FILE proof pubkey|sign\n"                                \
    "       auditrail-aggregator --config FILE proof inclusion STREAM [SEQ]\n"                     \
    "       auditrail-aggregator --config FILE proof consistency ROUND1 ROUND2\n"

static int usage(const char *fmt, const char *arg)
{
    return cmd_usage("proof", PROOF_USAGE_TEXT, fmt, arg);
}

static int fail(enum pg_status st, const char *err)
{
    fprintf(stderr, "auditrail-aggregator proof: %s\n", err);
    return st == PG_TRANSIENT ? 4 : 1;
}

int cmd_proof_keygen(int argc, char **argv)
{
    if (argc != 3)
        return usage("%s", "keygen takes one FILE");
    char err[512];
    if (proof_key_generate(argv[2], err, sizeof(err)) != 0) {
        fprintf(stderr, "auditrail-aggregator proof keygen: %s\n", err);
        return 1;
    }
    fprintf(stderr, "wrote a new Ed25519 private key to %s (mode 0600); set proof.key_file\n",
            argv[2]);
    return 0;
}

static int pubkey(const struct aggr_config *cfg)
{
    if (!cfg->proof.key_file)
        return usage("%s", "proof.key_file is not set");
    char err[512];
    struct proof_key *k = proof_key_load(cfg->proof.key_file, false, err, sizeof(err));
    if (!k) {
        fprintf(stderr, "auditrail-aggregator proof pubkey: %s\n", err);
        return 1;
    }
    char *pem = proof_key_public_pem(k);
    fputs(pem, stdout);
    free(pem);
    proof_key_free(k);
    return 0;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("%s\n", s);
    free(s);
    json_decref(j);
}

static json_t *hexj(const uint8_t *p, size_t n)
{
    char s[2 * 64 + 1];
    hex_encode(p, n, s);
    return json_string(s);
}

static json_t *path_json(uint8_t p[][MERKLE_HASH_LEN], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, hexj(p[i], MERKLE_HASH_LEN));
    return a;
}

static int sign(const struct aggr_config *cfg)
{
    if (!cfg->proof.key_file)
        return usage("%s", "proof.key_file is not set");
    char err[512] = "";
    struct proof_signer *s = proof_signer_new(cfg, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "auditrail-aggregator proof sign: %s\n", err);
        return 1;
    }
    struct proof_cycle c;
    enum pg_status st = proof_signer_cycle(s, time_now_us(), &c, err, sizeof(err));
    proof_signer_free(s);
    if (st != PG_OK)
        return fail(st, err);
    json_t *j = json_object();
    json_object_set_new(j, "signed", json_boolean(c.res.signed_round));
    if (c.res.locked_out)
        json_object_set_new(j, "note", json_string("another aggregator is signing a round"));
    if (c.res.signed_round) {
        char *r = proof_round_json(&c.res.round);
        json_object_set_new(j, "round", json_loads(r, 0, NULL));
        free(r);
        json_object_set_new(j, "skipped", json_integer((json_int_t)c.res.skipped));
        json_object_set_new(j, "seconds",
                            json_pack("{s:f, s:f, s:f}", "read", (double)c.res.read_us / 1e6,
                                      "sign", (double)c.res.sign_us / 1e6, "store",
                                      (double)c.res.store_us / 1e6));
    }
    json_object_set_new(j, "republished", json_integer((json_int_t)c.republished));
    if (c.sink_failed)
        json_object_set_new(j, "sink_error", json_string(c.sink_err));
    print_json(j);
    return c.sink_failed ? 1 : 0;
}

/* The latest round, and a check that the stored tree gives its root. */
static enum pg_status tree_round(struct proof_tree_reader *t, uint64_t round, struct proof_round *r,
                                 char *err, size_t errlen)
{
    bool found = false;
    enum pg_status st = round ? proof_store_round(t->c, round, r, &found, err, errlen)
                              : proof_store_last_round(t->c, r, &found, err, errlen);
    if (st != PG_OK)
        return st;
    if (!found) {
        snprintf(err, errlen, "no such round");
        return PG_DATA;
    }
    uint8_t root[MERKLE_HASH_LEN];
    if (merkle_root(proof_store_node, t, r->tree_size, root) != 0) {
        snprintf(err, errlen, "%s", t->err);
        return t->st;
    }
    if (memcmp(root, r->root, MERKLE_HASH_LEN) != 0) {
        snprintf(err, errlen, "round %" PRIu64 ": the stored tree does not give the signed root",
                 r->round);
        return PG_DATA;
    }
    return PG_OK;
}

static int inclusion(struct pg_connection *c, const char *stream, int64_t seq)
{
    char err[512];
    struct proof_tree_reader t = {.c = c};
    struct proof_round r;
    enum pg_status st = tree_round(&t, 0, &r, err, sizeof(err));
    uint64_t leaf = 0, hround = 0;
    bool found = false;
    if (st == PG_OK)
        st = proof_store_head_at(c, stream, seq, &leaf, &hround, &found, err, sizeof(err));
    if (st == PG_OK && !found) {
        snprintf(err, sizeof(err), "no signed head of stream %s at or below that seq", stream);
        st = PG_DATA;
    }
    struct proof_head *heads = NULL;
    size_t n = 0;
    if (st == PG_OK)
        st = proof_store_heads(c, hround, &heads, &n, err, sizeof(err));
    if (st != PG_OK) {
        free(heads);
        return fail(st, err);
    }
    const struct proof_head *h = NULL;
    for (size_t i = 0; i < n; i++)
        if (heads[i].leaf_index == leaf)
            h = &heads[i];
    uint8_t path[MERKLE_MAX_PROOF][MERKLE_HASH_LEN], lh[MERKLE_HASH_LEN], msg[PROOF_HEAD_MSG_LEN];
    size_t len = 0;
    if (!h || merkle_inclusion_proof(proof_store_node, &t, leaf, r.tree_size, path, &len) != 0) {
        free(heads);
        return fail(t.st ? t.st : PG_DATA, h ? t.err : "the head's row is missing");
    }
    proof_head_message(h, msg);
    merkle_leaf_hash(msg, sizeof(msg), lh);
    char *hj = proof_head_json(h);
    json_t *j = json_object();
    json_object_set_new(j, "head", json_loads(hj, 0, NULL));
    json_object_set_new(j, "leaf", json_integer((json_int_t)leaf));
    json_object_set_new(j, "leaf_hash", hexj(lh, MERKLE_HASH_LEN));
    json_object_set_new(j, "round", json_integer((json_int_t)r.round));
    json_object_set_new(j, "tree_size", json_integer((json_int_t)r.tree_size));
    json_object_set_new(j, "root", hexj(r.root, MERKLE_HASH_LEN));
    json_object_set_new(j, "path", path_json(path, len));
    print_json(j);
    free(hj);
    free(heads);
    return 0;
}

static int consistency(struct pg_connection *c, uint64_t r1, uint64_t r2)
{
    char err[512];
    struct proof_tree_reader t = {.c = c};
    struct proof_round a, b;
    enum pg_status st = tree_round(&t, r1, &a, err, sizeof(err));
    if (st == PG_OK)
        st = tree_round(&t, r2, &b, err, sizeof(err));
    if (st != PG_OK)
        return fail(st, err);
    uint8_t p[MERKLE_MAX_PROOF][MERKLE_HASH_LEN];
    size_t len = 0;
    if (a.tree_size == 0 || a.tree_size > b.tree_size)
        return usage("%s", "ROUND1 must be an earlier round than ROUND2");
    if (merkle_consistency_proof(proof_store_node, &t, a.tree_size, b.tree_size, p, &len) != 0)
        return fail(t.st, t.err);
    json_t *j = json_object();
    json_object_set_new(j, "round1", json_integer((json_int_t)a.round));
    json_object_set_new(j, "tree_size1", json_integer((json_int_t)a.tree_size));
    json_object_set_new(j, "root1", hexj(a.root, MERKLE_HASH_LEN));
    json_object_set_new(j, "round2", json_integer((json_int_t)b.round));
    json_object_set_new(j, "tree_size2", json_integer((json_int_t)b.tree_size));
    json_object_set_new(j, "root2", hexj(b.root, MERKLE_HASH_LEN));
    json_object_set_new(j, "proof", path_json(p, len));
    print_json(j);
    return 0;
}

static int with_conn(const struct aggr_config *cfg, int argc, char **argv)
{
    static const char *const session[] = {SQL_QUIET, NULL};
    static const struct pg_conn_opts opts = {.application_name = "auditrail-proof",
                                             .session = session};
    char *end = NULL;
    int64_t seq = INT64_MAX;
    uint64_t r1 = 0, r2 = 0;
    bool incl = strcmp(argv[1], "inclusion") == 0;
    if (incl) {
        if (argc < 3 || argc > 4 || strlen(argv[2]) != 32)
            return usage("%s", "inclusion takes a STREAM id (32 hex) and an optional SEQ");
        if (argc == 4 && ((seq = strtoll(argv[3], &end, 10)) < 0 || *end))
            return usage("bad SEQ \"%s\"", argv[3]);
    } else {
        if (argc != 4)
            return usage("%s", "consistency takes ROUND1 ROUND2");
        r1 = strtoull(argv[2], &end, 10);
        if (*end || r1 == 0)
            return usage("bad ROUND1 \"%s\"", argv[2]);
        r2 = strtoull(argv[3], &end, 10);
        if (*end || r2 == 0)
            return usage("bad ROUND2 \"%s\"", argv[3]);
    }
    struct pg_connection *c = pg_conn_new(cfg->postgres.primary, &opts);
    char err[512];
    enum pg_status st = pg_conn_open(c, NULL, err, sizeof(err));
    int rc = st != PG_OK ? fail(st, err)
             : incl      ? inclusion(c, argv[2], seq)
                         : consistency(c, r1, r2);
    pg_conn_free(c);
    return rc;
}

int cmd_proof(const struct aggr_config *cfg, int argc, char **argv)
{
    if (argc < 2)
        return usage("%s", "a verb is needed");
    const char *verb = argv[1];
    if (strcmp(verb, "keygen") == 0)
        return cmd_proof_keygen(argc, argv);
    if (strcmp(verb, "pubkey") == 0 && argc == 2)
        return pubkey(cfg);
    if (strcmp(verb, "sign") == 0 && argc == 2)
        return sign(cfg);
    if (strcmp(verb, "inclusion") == 0 || strcmp(verb, "consistency") == 0)
        return with_conn(cfg, argc, argv);
    return usage("unknown verb or arguments \"%s\"", verb);
}
