/* Ed25519 keys with OpenSSL's EVP interface (aggregator/proof_key.h). */
#include "aggregator/proof_key.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hashchain.h"
#include "common/xmalloc.h"

struct proof_key {
    EVP_PKEY *pkey;
    bool has_private;
};

/* OpenSSL's last error as text (its queue emptied). */
static void ssl_err(char *err, size_t errlen, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    snprintf(err, errlen, "%s %s: %s", what, path, buf[0] ? buf : "not a key");
}

struct proof_key *proof_key_load(const char *path, bool public_only, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *pk = public_only ? PEM_read_PUBKEY(f, NULL, NULL, NULL)
                               : PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!pk) {
        ssl_err(err, errlen, public_only ? "public key" : "private key", path);
        return NULL;
    }
    if (EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519) {
        snprintf(err, errlen, "%s: not an Ed25519 key", path);
        EVP_PKEY_free(pk);
        return NULL;
    }
    struct proof_key *k = xcalloc(1, sizeof(*k));
    k->pkey = pk;
    k->has_private = !public_only;
    return k;
}

void proof_key_free(struct proof_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

int proof_key_generate(const char *path, char *err, size_t errlen)
{
    EVP_PKEY *pk = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pk) != 1) {
        EVP_PKEY_CTX_free(ctx);
        ssl_err(err, errlen, "generating a key for", path);
        return -1;
    }
    EVP_PKEY_CTX_free(ctx);
    int rc = -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    if (PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) != 1) {
        ssl_err(err, errlen, "writing", path);
        fclose(f);
        unlink(path);
        goto out;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        fclose(f);
        unlink(path);
        goto out;
    }
    if (fclose(f) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(path);
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(pk);
    return rc;
}

char *proof_key_public_pem(const struct proof_key *k)
{
    char *p = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&p, &n);
    if (!f || PEM_write_PUBKEY(f, k->pkey) != 1)
        abort(); /* memory: the xmalloc policy */
    fclose(f);
    return p;
}

void proof_key_id(const struct proof_key *k, char out[PROOF_KEY_ID_LEN + 1])
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k->pkey, &der);
    uint8_t h[32];
    unsigned hl = 0;
    if (n <= 0 || EVP_Digest(der, (size_t)n, h, &hl, EVP_sha256(), NULL) != 1)
        abort();
    OPENSSL_free(der);
    hex_encode(h, sizeof(h), out);
}

int proof_key_sign(const struct proof_key *k, const void *msg, size_t len,
                   uint8_t sig[PROOF_SIG_LEN])
{
    if (!k->has_private)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sl = PROOF_SIG_LEN;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
             EVP_DigestSign(ctx, sig, &sl, msg, len) == 1 && sl == PROOF_SIG_LEN;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok ? 0 : -1;
}

bool proof_key_verify(const struct proof_key *k, const void *msg, size_t len,
                      const uint8_t sig[PROOF_SIG_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
              EVP_DigestVerify(ctx, sig, PROOF_SIG_LEN, msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}
