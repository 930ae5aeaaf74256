/* What a test wrote into log files, as the records an agent must ship
 * (DESIGN.md §2): per file, its records in file order. And the one check
 * that shipped or stored streams are those files: each stream's records are
 * exactly one file's records in order, and each file is exactly one stream,
 * so a lost, duplicated, reordered or misplaced record fails. Split here
 * without product code. */
#ifndef AUDITRAIL_TEST_EXPECT_H
#define AUDITRAIL_TEST_EXPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct expect_file {
    char *name;      /* the path, or a label */
    size_t first, n; /* its records: rec[first .. first + n) */
};

struct expect {
    uint8_t **rec; /* heap copies */
    size_t *len;
    size_t n, cap;
    struct expect_file *file;
    size_t nfiles, capfiles;
};

/* The records of data (one file's bytes): split at '\n', empty lines
 * skipped, a last line without '\n' included only when final (a live file's
 * partial line waits for its newline), each cut to max_record bytes (0 = no
 * cut) as the agent cuts long records. Appended to x as one file. */
void expect_add_bytes(struct expect *x, const char *name, const void *data, size_t len, bool final,
                      size_t max_record);
/* The same for a file on disk; ck_abort when it cannot be read. */
void expect_add_file(struct expect *x, const char *path, bool final, size_t max_record);
/* Every regular file directly under dir (final: every line counts). */
void expect_add_dir(struct expect *x, const char *dir, size_t max_record);
void expect_release(struct expect *x);

/* One shipped or stored record. */
struct expect_got {
    const char *stream;
    const uint8_t *p;
    size_t len;
};

/* got: records sorted by stream, then seq (gaps are checked elsewhere).
 * Match every stream to a file with the same records in the same order,
 * each file to one stream (files without records need none). Returns how
 * many streams and files found no partner, and describes the first ones in
 * why. match (may be NULL; n entries) receives for each record the index in
 * x->file of the file its stream matched, -1 when none. */
size_t expect_match(const struct expect *x, const struct expect_got *got, size_t n, int *match,
                    char *why, size_t whylen);

/* The first bytes of a record, printable (others as '.'), for messages. */
const char *expect_preview(const uint8_t *p, size_t len, char out[64]);

#endif
