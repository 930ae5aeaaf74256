/* The one redaction of secrets in what we print: URLs (user info, secret
 * query parameters) and libpq connection strings (key=value and URI forms). */
#ifndef AUDITRAIL_REDACT_H
#define AUDITRAIL_REDACT_H

#include <stdbool.h>
#include <stddef.h>

/* What replaces every secret. */
#define REDACT_MASK "***"

/* Is a parameter of this name a secret (password, sslpassword, token,
 * api_key, X-Amz-Signature, sig, …)? Case-insensitive; over-inclusive on
 * purpose: hiding a harmless value costs less than showing a password. */
bool redact_is_secret_name(const char *name, size_t n);

/* Copy the URL in to out with its secrets masked: the user info (everything
 * between "://" and the last '@'; a "user:password" keeps its user), and the
 * value of every query or fragment parameter whose name is a secret
 * (redact_is_secret_name). Text without "://" only has its parameters
 * masked. Like snprintf: out (outlen bytes, NUL-terminated when outlen > 0)
 * receives a prefix of the result, and the return value is the full
 * result's length, so a return >= outlen means it was cut — a cut result is
 * still free of secrets. */
size_t redact_url(const char *in, char *out, size_t outlen);

/* Copy the libpq connection string in to out with every secret value masked:
 * in key=value form (quoted values and backslash escapes as libpq reads
 * them), the value of each key that is a secret (password, sslpassword, …);
 * in URI form (postgresql:// or postgres://), the password of the user info
 * and secret query parameters. What cannot be parsed (an unterminated quote)
 * is masked from there to the end. Return value and out as redact_url. */
size_t redact_conninfo(const char *in, char *out, size_t outlen);

/* Heap copies (xmalloc; the caller frees) of the same, never cut. */
char *redact_url_dup(const char *in);
char *redact_conninfo_dup(const char *in);

#endif
