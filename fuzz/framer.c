/* Fuzz the agent's line framer: random file contents fed in random chunks,
 * with the emit callback stopping at random records (then resuming at that
 * record's end, as after a checkpoint) and random restarts at
 * framer_resume_offset. Invariants: every record is the exact slice of the
 * file it claims, records are in order and do not overlap, only '\n' lies
 * between them, a record never holds '\n' unless multiline, at most
 * max_record bytes are kept, every non-'\n' byte is in exactly one record
 * (bytes conserved), memory stays bounded, and chunking, stops and restarts
 * give exactly the records of feeding the file in one piece.
 *
 * Input: byte 0 picks max_record, byte 1 the mode (multiline, its start
 * pattern, random flushes), byte 2 seeds the chunking; the rest is the file. */
#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/framer.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const patterns[4] = {
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}", /* pgaudit / log4j timestamps */
    "^<",                          /* ATNA XML messages */
    "^[^[:space:]]",               /* stack traces: indented lines continue */
    "^(BEGIN|[a-z]+=)",
};

struct rec {
    uint64_t offset, end, truncated;
    size_t len; /* the bytes are checked against the file as they arrive */
};

struct run {
    const uint8_t *file;
    size_t size;
    size_t max;
    const regex_t *start; /* NULL: one record per line */
    uint32_t rng;
    bool random_stops;
    struct rec *v;
    size_t n, cap;
    uint64_t last_end;
};

static uint32_t rnd(struct run *r)
{
    /* xorshift32: deterministic from the input's seed byte */
    uint32_t x = r->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return r->rng = x;
}

static bool only_newlines(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != '\n')
            return false;
    return true;
}

/* Multiline: no complete line inside the kept bytes after the first may
 * match the start pattern (it would have begun a new record). */
static void check_no_inner_start(const struct run *run, const struct framer_record *fr)
{
    const uint8_t *p = fr->data, *e = fr->data + fr->len;
    const uint8_t *nl = memchr(p, '\n', fr->len);
    while (nl) {
        const uint8_t *ls = nl + 1;
        const uint8_t *next = memchr(ls, '\n', (size_t)(e - ls));
        if (!next)
            break; /* the last kept line may be cut: not comparable */
        if (next > ls) {
            regmatch_t m[1] = {{0, (regoff_t)(next - ls)}};
            FUZZ_CHECK(regexec(run->start, (const char *)ls, 1, m, REG_STARTEND) != 0,
                       "record at %llu holds a start line at %llu", (unsigned long long)fr->offset,
                       (unsigned long long)(fr->offset + (uint64_t)(ls - p)));
        }
        nl = next;
    }
}

static int on_record(void *ud, const struct framer_record *fr)
{
    struct run *run = ud;
    uint64_t ce = fr->offset + fr->len + fr->truncated; /* end of the content */
    FUZZ_CHECK(fr->len >= 1, "empty record at %llu", (unsigned long long)fr->offset);
    FUZZ_CHECK(fr->len <= run->max, "record keeps %zu > max %zu", fr->len, run->max);
    FUZZ_CHECK(fr->offset >= run->last_end, "record at %llu overlaps the previous (end %llu)",
               (unsigned long long)fr->offset, (unsigned long long)run->last_end);
    FUZZ_CHECK(ce <= fr->end && fr->end <= run->size, "record bounds %llu+%zu+%llu end %llu",
               (unsigned long long)fr->offset, fr->len, (unsigned long long)fr->truncated,
               (unsigned long long)fr->end);
    FUZZ_CHECK(memcmp(fr->data, run->file + fr->offset, fr->len) == 0,
               "record at %llu is not the file's bytes", (unsigned long long)fr->offset);
    FUZZ_CHECK(only_newlines(run->file + run->last_end, (size_t)(fr->offset - run->last_end)),
               "bytes lost before the record at %llu", (unsigned long long)fr->offset);
    FUZZ_CHECK(only_newlines(run->file + ce, (size_t)(fr->end - ce)),
               "bytes lost after the record at %llu", (unsigned long long)fr->offset);
    FUZZ_CHECK(fr->offset == 0 || run->file[fr->offset - 1] == '\n',
               "record at %llu does not start a line", (unsigned long long)fr->offset);
    FUZZ_CHECK(run->file[fr->offset] != '\n', "record starts with an empty line");
    if (fr->len + fr->truncated > 0)
        FUZZ_CHECK(run->file[ce - 1] != '\n', "record content ends with '\\n'");
    if (!run->start) {
        FUZZ_CHECK(memchr(run->file + fr->offset, '\n', (size_t)(ce - fr->offset)) == NULL,
                   "single-line record at %llu holds '\\n'", (unsigned long long)fr->offset);
        FUZZ_CHECK(fr->end - ce == 1 || (fr->end == ce && fr->end == run->size),
                   "line record at %llu: end %llu, content end %llu",
                   (unsigned long long)fr->offset, (unsigned long long)fr->end,
                   (unsigned long long)ce);
    } else {
        check_no_inner_start(run, fr);
        FUZZ_CHECK(fr->end == ce || run->file[ce] == '\n', "multiline end");
    }

    if (run->n == run->cap) {
        run->cap = run->cap ? 2 * run->cap : 16;
        run->v = realloc(run->v, run->cap * sizeof(*run->v));
        if (!run->v)
            abort();
    }
    struct rec *r = &run->v[run->n++];
    r->offset = fr->offset;
    r->end = fr->end;
    r->truncated = fr->truncated;
    r->len = fr->len;
    run->last_end = fr->end;
    return run->random_stops && rnd(run) % 8 == 0;
}

static void run_free(struct run *run)
{
    free(run->v);
    run->v = NULL;
    run->n = run->cap = 0;
}

/* Feed the whole file; chunked = random chunk sizes, stops and restarts;
 * flushes = random framer_flush calls between chunks (changes the records). */
static void frame(struct run *run, bool chunked, bool flushes)
{
    struct framer *f = framer_new(run->max, run->start);
    uint64_t pos = 0;
    int restarts = 0;
    run->random_stops = chunked;
    run->last_end = 0;
    for (;;) {
        int rc;
        if (pos < run->size) {
            size_t n = run->size - (size_t)pos;
            if (chunked) {
                uint32_t x = rnd(run);
                size_t c = (x & 3) == 0 ? 1 + (x >> 8) % 4 : 1 + (x >> 8) % (2 * run->max + 8);
                if (c < n)
                    n = c;
            }
            rc = framer_feed(f, run->file + pos, n, on_record, run);
            if (!rc) {
                pos += n;
                FUZZ_CHECK(framer_position(f) == pos, "position %llu, fed %llu",
                           (unsigned long long)framer_position(f), (unsigned long long)pos);
            }
        } else {
            rc = framer_finish(f, on_record, run);
            if (!rc) {
                FUZZ_CHECK(!framer_pending(f), "pending after finish");
                break;
            }
        }
        if (rc) {
            /* The caller's contract after a stop: reset where to resume. */
            pos = run->last_end;
            framer_reset(f, pos);
            continue;
        }
        uint64_t resume = framer_resume_offset(f);
        FUZZ_CHECK(resume <= pos && resume >= run->last_end, "resume offset %llu (pos %llu)",
                   (unsigned long long)resume, (unsigned long long)pos);
        FUZZ_CHECK(framer_pending(f) ==
                       (resume < pos && !only_newlines(run->file + resume, (size_t)(pos - resume))),
                   "pending disagrees with the resume offset");
        FUZZ_CHECK(framer_buffered_bytes(f) <= 2 * run->max, "%zu bytes buffered, max %zu",
                   framer_buffered_bytes(f), run->max);
        if (chunked) {
            uint32_t x = rnd(run);
            if (x % 16 == 0 && restarts < 8) {
                /* A restart from the checkpoint: re-read what was buffered. */
                restarts++;
                framer_free(f);
                f = framer_new(run->max, run->start);
                framer_reset(f, resume);
                pos = resume;
            } else if (flushes && x % 5 == 0) {
                if (framer_flush(f, on_record, run)) {
                    pos = run->last_end;
                    framer_reset(f, pos);
                }
            }
        }
    }
    /* Bytes conserved: after the last record only empty lines remain. */
    FUZZ_CHECK(only_newlines(run->file + run->last_end, run->size - (size_t)run->last_end),
               "bytes after the last record (end %llu of %zu) were never emitted",
               (unsigned long long)run->last_end, run->size);
    framer_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t b0 = data[0], b1 = data[1], b2 = data[2];
    regex_t re;
    bool multiline = b1 & 1, flushes = (b1 & 0x10) != 0;
    if (multiline && regcomp(&re, patterns[(b1 >> 1) & 3], REG_EXTENDED | REG_NOSUB) != 0)
        abort();

    struct run whole = {.file = data + 3, .size = size - 3, .start = multiline ? &re : NULL};
    whole.max = b0 >= 0xf0 ? 4096 : 1 + b0 % 64;
    struct run chunked = whole;
    chunked.rng = 0x9e3779b9u ^ b2 ^ (uint32_t)b0 << 8;

    frame(&whole, false, false);
    frame(&chunked, true, multiline && flushes);
    if (!(multiline && flushes)) {
        FUZZ_CHECK(whole.n == chunked.n, "%zu records in one piece, %zu chunked", whole.n,
                   chunked.n);
        for (size_t i = 0; i < whole.n; i++) {
            const struct rec *a = &whole.v[i], *b = &chunked.v[i];
            FUZZ_CHECK(a->offset == b->offset && a->end == b->end && a->len == b->len &&
                           a->truncated == b->truncated,
                       "record %zu differs when chunked: %llu-%llu/%zu+%llu vs %llu-%llu/%zu+%llu",
                       i, (unsigned long long)a->offset, (unsigned long long)a->end, a->len,
                       (unsigned long long)a->truncated, (unsigned long long)b->offset,
                       (unsigned long long)b->end, b->len, (unsigned long long)b->truncated);
        }
    }
    run_free(&whole);
    run_free(&chunked);
    if (multiline)
        regfree(&re);
    return 0;
}
