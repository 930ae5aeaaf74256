/* Line framing and multiline joining (DESIGN.md §2). Complete lines inside
 * the caller's buffer are emitted without copying; only a line spanning two
 * reads (or a multiline record) is copied, and never more than
 * max_record_bytes of it. */
#include "agent/framer.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

/* Buffers above this are given back after use so that one long line does not
 * pin memory for the life of the file. */
#define FRAMER_KEEP_CAP (64 * 1024)

struct buf {
    uint8_t *p;
    size_t len, cap;
};

struct framer {
    size_t max;
    const regex_t *start;
    uint64_t pos; /* offset of the next byte fed */

    /* the current partial line */
    bool in_line;
    uint64_t line_off;
    uint64_t line_full; /* bytes seen so far (kept + cut) */
    struct buf line;    /* the kept bytes, only when the line spans feeds */

    /* multiline: the record held until the next start line */
    bool have_rec;
    uint64_t rec_off;
    uint64_t rec_full; /* slice length up to the end of its last line's content */
    uint64_t rec_end;  /* just past the last line's '\n' */
    struct buf rec;
};

static void buf_append(struct buf *b, const uint8_t *p, size_t n, size_t max)
{
    if (b->len >= max)
        return;
    if (n > max - b->len)
        n = max - b->len;
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        if (cap > max)
            cap = max;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void buf_fill(struct buf *b, uint8_t c, uint64_t n, size_t max)
{
    uint8_t chunk[64];
    memset(chunk, c, sizeof(chunk));
    while (n > 0 && b->len < max) {
        size_t k = n > sizeof(chunk) ? sizeof(chunk) : (size_t)n;
        buf_append(b, chunk, k, max);
        n -= k;
    }
}

static void buf_clear(struct buf *b)
{
    b->len = 0;
    if (b->cap > FRAMER_KEEP_CAP) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
}

struct framer *framer_new(size_t max_record, const regex_t *start)
{
    struct framer *f = xcalloc(1, sizeof(*f));
    f->max = max_record ? max_record : 1;
    f->start = start;
    return f;
}

void framer_free(struct framer *f)
{
    if (!f)
        return;
    free(f->line.p);
    free(f->rec.p);
    free(f);
}

void framer_reset(struct framer *f, uint64_t offset)
{
    f->pos = offset;
    f->in_line = false;
    f->line_full = 0;
    buf_clear(&f->line);
    f->have_rec = false;
    buf_clear(&f->rec);
}

static bool line_starts_record(const struct framer *f, const uint8_t *data, size_t kept)
{
    regmatch_t m[1];
    m[0].rm_so = 0;
    m[0].rm_eo = (regoff_t)kept;
    /* REG_STARTEND: the line may hold NUL bytes and is not NUL-terminated. */
    return regexec(f->start, (const char *)data, 1, m, REG_STARTEND) == 0;
}

static int emit_rec(struct framer *f, framer_emit_fn emit, void *ud)
{
    struct framer_record r = {
        .data = f->rec.p,
        .len = f->rec.len,
        .truncated = f->rec_full - f->rec.len,
        .offset = f->rec_off,
        .end = f->rec_end,
    };
    f->have_rec = false;
    int rc = emit(ud, &r);
    buf_clear(&f->rec);
    return rc;
}

/* One complete line: content [off, off + full), of which `kept` bytes are in
 * data; `end` is past its '\n' (== off + full for a final unterminated line). */
static int on_line(struct framer *f, const uint8_t *data, size_t kept, uint64_t full, uint64_t off,
                   uint64_t end, framer_emit_fn emit, void *ud)
{
    if (full == 0)
        return 0; /* an empty line is not a record; inside a record it is the gap below */
    if (!f->start) {
        struct framer_record r = {data, kept, full - kept, off, end};
        return emit(ud, &r);
    }
    if (f->have_rec && !line_starts_record(f, data, kept)) {
        /* Continuation: the bytes between the record's content and this line
         * are its '\n' and any empty lines, all '\n'. */
        uint64_t gap = off - (f->rec_off + f->rec_full);
        buf_fill(&f->rec, '\n', gap, f->max);
        buf_append(&f->rec, data, kept, f->max);
        f->rec_full = off + full - f->rec_off;
        f->rec_end = end;
        return 0;
    }
    if (f->have_rec) {
        int rc = emit_rec(f, emit, ud);
        if (rc)
            return rc;
    }
    f->have_rec = true;
    f->rec_off = off;
    f->rec_full = full;
    f->rec_end = end;
    f->rec.len = 0;
    buf_append(&f->rec, data, kept, f->max);
    return 0;
}

int framer_feed(struct framer *f, const uint8_t *buf, size_t len, framer_emit_fn emit, void *ud)
{
    const uint8_t *p = buf, *e = buf + len;
    uint64_t base = f->pos;
    int rc = 0;
    while (p < e) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(e - p));
        const uint8_t *seg_end = nl ? nl : e;
        size_t seg = (size_t)(seg_end - p);
        if (!f->in_line) {
            f->in_line = true;
            f->line_off = base + (uint64_t)(p - buf);
            f->line_full = 0;
            f->line.len = 0;
        }
        if (!nl) {
            /* A partial line: keep what fits, count the rest. */
            buf_append(&f->line, p, seg, f->max);
            f->line_full += seg;
            p = e;
            break;
        }
        const uint8_t *data;
        size_t kept;
        uint64_t full = f->line_full + seg;
        if (f->line_full == 0) {
            data = p; /* the whole line is in this buffer: no copy */
            kept = seg < f->max ? seg : f->max;
        } else {
            buf_append(&f->line, p, seg, f->max);
            data = f->line.p;
            kept = f->line.len;
        }
        uint64_t end = base + (uint64_t)(nl - buf) + 1;
        p = nl + 1;
        f->in_line = false;
        rc = on_line(f, data, kept, full, f->line_off, end, emit, ud);
        f->line_full = 0;
        buf_clear(&f->line);
        if (rc)
            break;
    }
    f->pos = base + (uint64_t)(p - buf);
    return rc;
}

int framer_flush(struct framer *f, framer_emit_fn emit, void *ud)
{
    if (!f->have_rec)
        return 0;
    return emit_rec(f, emit, ud);
}

int framer_finish(struct framer *f, framer_emit_fn emit, void *ud)
{
    if (f->in_line) {
        f->in_line = false;
        int rc = on_line(f, f->line.p, f->line.len, f->line_full, f->line_off,
                         f->line_off + f->line_full, emit, ud);
        f->line_full = 0;
        buf_clear(&f->line);
        if (rc)
            return rc;
    }
    return framer_flush(f, emit, ud);
}

bool framer_pending(const struct framer *f)
{
    return f->have_rec || (f->in_line && f->line_full > 0);
}

bool framer_holds_record(const struct framer *f)
{
    return f->have_rec;
}

uint64_t framer_position(const struct framer *f)
{
    return f->pos;
}

uint64_t framer_resume_offset(const struct framer *f)
{
    if (f->have_rec)
        return f->rec_off;
    if (f->in_line)
        return f->line_off;
    return f->pos;
}

size_t framer_buffered_bytes(const struct framer *f)
{
    return f->line.cap + f->rec.cap;
}
