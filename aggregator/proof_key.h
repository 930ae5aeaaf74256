/* The Ed25519 key that signs chain heads (OpenSSL EVP): load a private key
 * from PEM (proof.key_file) or a public key (an auditor's copy), generate
 * one into a new 0600 file, export the public key as PEM, its id, sign and
 * verify. A key is read-only once loaded: any thread may sign with it. */
#ifndef AUDITRAIL_AGGREGATOR_PROOF_KEY_H
#define AUDITRAIL_AGGREGATOR_PROOF_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROOF_SIG_LEN    64
#define PROOF_KEY_ID_LEN 64 /* hex of SHA-256 of the public key's DER (SubjectPublicKeyInfo) */

struct proof_key;

/* A private key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` or
 * proof_key_generate writes) or, when public_only, a public key PEM. NULL
 * with err when the file cannot be read or is not an Ed25519 key. */
struct proof_key *proof_key_load(const char *path, bool public_only, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void proof_key_free(struct proof_key *k); /* NULL-safe */

/* Create a new private key in path, which must not exist (mode 0600).
 * 0, or -1 with err. */
int proof_key_generate(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The public key as PEM (heap, caller frees). */
char *proof_key_public_pem(const struct proof_key *k);
/* SHA-256 of the public key's DER encoding, hex (65 bytes with the NUL). */
void proof_key_id(const struct proof_key *k, char out[PROOF_KEY_ID_LEN + 1]);

/* Ed25519 signature of msg (a private key). 0, or -1 (OpenSSL refused). */
int proof_key_sign(const struct proof_key *k, const void *msg, size_t len,
                   uint8_t sig[PROOF_SIG_LEN]) __attribute__((warn_unused_result));
/* Whether sig is k's signature of msg. */
bool proof_key_verify(const struct proof_key *k, const void *msg, size_t len,
                      const uint8_t sig[PROOF_SIG_LEN]);

#endif
