/* Files as expected records, and the stream-to-file match. */
#include "tests/support/expect.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/xmalloc.h"
#include "tests/support/testutil.h"

static void push_record(struct expect *x, const uint8_t *p, size_t len, size_t max_record)
{
    if (max_record && len > max_record)
        len = max_record;
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 1024;
        x->rec = xrealloc(x->rec, x->cap * sizeof(*x->rec));
        x->len = xrealloc(x->len, x->cap * sizeof(*x->len));
    }
    x->rec[x->n] = xmemdup(p, len ? len : 1);
    x->len[x->n] = len;
    x->n++;
}

void expect_add_bytes(struct expect *x, const char *name, const void *data, size_t len, bool final,
                      size_t max_record)
{
    if (x->nfiles == x->capfiles) {
        x->capfiles = x->capfiles ? 2 * x->capfiles : 16;
        x->file = xrealloc(x->file, x->capfiles * sizeof(*x->file));
    }
    struct expect_file *f = &x->file[x->nfiles++];
    f->name = xstrdup(name);
    f->first = x->n;
    const uint8_t *p = data;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '\n')
            continue;
        if (i > start)
            push_record(x, p + start, i - start, max_record);
        start = i + 1;
    }
    if (final && len > start)
        push_record(x, p + start, len - start, max_record);
    f->n = x->n - f->first;
}

void expect_add_file(struct expect *x, const char *path, bool final, size_t max_record)
{
    size_t len;
    uint8_t *data = test_read_file(path, &len);
    ck_assert_msg(data != NULL, "read %s: %s", path, strerror(errno));
    expect_add_bytes(x, path, data, len, final, max_record);
    free(data);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void expect_add_dir(struct expect *x, const char *dir, size_t max_record)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "opendir %s: %s", dir, strerror(errno));
    char **paths = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *path = xasprintf("%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            paths = xrealloc(paths, (n + 1) * sizeof(*paths));
            paths[n++] = path;
        } else {
            free(path);
        }
    }
    closedir(d);
    if (n > 1)
        qsort(paths, n, sizeof(*paths), cmp_name); /* a stable order for messages */
    for (size_t i = 0; i < n; i++) {
        expect_add_file(x, paths[i], true, max_record);
        free(paths[i]);
    }
    free(paths);
}

void expect_release(struct expect *x)
{
    for (size_t i = 0; i < x->n; i++)
        free(x->rec[i]);
    for (size_t i = 0; i < x->nfiles; i++)
        free(x->file[i].name);
    free(x->rec);
    free(x->len);
    free(x->file);
    memset(x, 0, sizeof(*x));
}

/* A digest of a sequence of records: equal digests, equal sequences. */
struct seq_digest {
    uint8_t d[SHA256_DIGEST_LENGTH];
    size_t idx; /* file index, or the first got record of a stream */
    bool used;
};

static EVP_MD_CTX *digest_new(void)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    ck_assert_ptr_nonnull(c);
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    return c;
}

static void digest_add(EVP_MD_CTX *c, const uint8_t *p, size_t len)
{
    uint64_t l = len;
    EVP_DigestUpdate(c, &l, sizeof(l));
    EVP_DigestUpdate(c, p, len);
}

static void digest_end(EVP_MD_CTX *c, uint8_t out[SHA256_DIGEST_LENGTH])
{
    EVP_DigestFinal_ex(c, out, NULL);
    EVP_MD_CTX_free(c);
}

static int cmp_digest(const void *a, const void *b)
{
    return memcmp(((const struct seq_digest *)a)->d, ((const struct seq_digest *)b)->d,
                  SHA256_DIGEST_LENGTH);
}

static void say(char *why, size_t whylen, const char *fmt, ...)
{
    size_t used = strlen(why);
    if (used + 64 > whylen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why + used, whylen - used, fmt, ap);
    va_end(ap);
}

const char *expect_preview(const uint8_t *p, size_t len, char out[64])
{
    size_t j = 0;
    for (size_t i = 0; i < len && j < 60; i++)
        out[j++] = (p[i] >= 32 && p[i] < 127) ? (char)p[i] : '.';
    out[j] = '\0';
    return out;
}

/* Why the stream starting at got[first] (count records) is not a file. */
static void explain_stream(const struct expect *x, const struct expect_got *got, size_t first,
                           size_t count, char *why, size_t whylen)
{
    char a[64], b[64];
    const struct expect_got *g = &got[first];
    for (size_t f = 0; f < x->nfiles; f++) {
        const struct expect_file *file = &x->file[f];
        for (size_t k = 0; k < file->n; k++) {
            size_t r = file->first + k;
            if (x->len[r] != g->len || memcmp(x->rec[r], g->p, g->len) != 0)
                continue;
            /* Its first record is record k of this file: find where they part. */
            size_t i = 0;
            while (i < count && k + i < file->n && x->len[file->first + k + i] == g[i].len &&
                   memcmp(x->rec[file->first + k + i], g[i].p, g[i].len) == 0)
                i++;
            if (k > 0)
                say(why, whylen, "stream %s starts at record %zu of %s; ", g->stream, k,
                    file->name);
            else if (i < count && k + i < file->n)
                say(why, whylen,
                    "stream %s differs from %s at record %zu: \"%s\" instead of "
                    "\"%s\"; ",
                    g->stream, file->name, i, expect_preview(g[i].p, g[i].len, a),
                    expect_preview(x->rec[file->first + i], x->len[file->first + i], b));
            else
                say(why, whylen, "stream %s has %zu records, %s has %zu; ", g->stream, count,
                    file->name, file->n);
            return;
        }
    }
    say(why, whylen, "stream %s begins with \"%s\", the start of no record written; ", g->stream,
        expect_preview(g->p, g->len, a));
}

size_t expect_match(const struct expect *x, const struct expect_got *got, size_t n, int *match,
                    char *why, size_t whylen)
{
    if (whylen)
        why[0] = '\0';
    struct seq_digest *files = xcalloc(x->nfiles + 1, sizeof(*files));
    size_t nf = 0;
    for (size_t f = 0; f < x->nfiles; f++) {
        if (x->file[f].n == 0)
            continue;
        EVP_MD_CTX *c = digest_new();
        for (size_t k = 0; k < x->file[f].n; k++)
            digest_add(c, x->rec[x->file[f].first + k], x->len[x->file[f].first + k]);
        digest_end(c, files[nf].d);
        files[nf++].idx = f;
    }
    qsort(files, nf, sizeof(*files), cmp_digest);
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        size_t end = i;
        EVP_MD_CTX *c = digest_new();
        while (end < n && strcmp(got[end].stream, got[i].stream) == 0) {
            digest_add(c, got[end].p, got[end].len);
            end++;
        }
        struct seq_digest key;
        digest_end(c, key.d);
        struct seq_digest *hit = bsearch(&key, files, nf, sizeof(*files), cmp_digest);
        /* Identical files: take the first of them not matched yet. */
        while (hit && hit > files && cmp_digest(hit - 1, &key) == 0)
            hit--;
        while (hit && hit < files + nf && cmp_digest(hit, &key) == 0 && hit->used)
            hit++;
        if (hit && (hit == files + nf || cmp_digest(hit, &key) != 0))
            hit = NULL;
        if (hit)
            hit->used = true;
        else if (++bad <= 3)
            explain_stream(x, got, i, end - i, why, whylen);
        for (size_t k = i; match && k < end; k++)
            match[k] = hit ? (int)hit->idx : -1;
        i = end;
    }
    for (size_t f = 0; f < nf; f++) {
        if (files[f].used)
            continue;
        if (++bad <= 6)
            say(why, whylen, "%s (%zu records) is no stream; ", x->file[files[f].idx].name,
                x->file[files[f].idx].n);
    }
    free(files);
    return bad;
}
