/* The exact bytes of each element of one array in a JSON object: what
 * --json --all writes as NDJSON, so that every line is the API's own text
 * (a re-encoding would change numbers such as 0.1 or 1e400 in attrs). */
#ifndef AUDITRAIL_CLI_JSON_H
#define AUDITRAIL_CLI_JSON_H

#include <stddef.h>

typedef void (*cli_json_item_fn)(void *ud, const char *p, size_t n);

/* Call fn for each element of the array that is the value of the
 * top-level key `key` of the JSON object text[0, len), with the element's
 * bytes. text must be valid JSON (parsed already); a key spelled with
 * escapes does not match. Returns the number of elements, or -1 when text
 * is not an object holding `key` as an array. */
long cli_json_each(const char *text, size_t len, const char *key, cli_json_item_fn fn, void *ud);

/* Append to out a copy of the JSON text t[0, len) in which every number
 * outside a string is a string of its own digits (1e400 -> "1e400"), so a
 * parser that cannot hold a number still reads the rest; for display
 * only. t must be valid JSON. */
struct buf;
void cli_json_quote_numbers(const char *t, size_t len, struct buf *out);

#endif
