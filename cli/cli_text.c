/* Escaping and cutting of text for the terminal (cli/cli_text.h). Each
 * input character becomes one "piece" (its bytes or its escape) with a
 * width in columns; a cell takes whole pieces only. */
#include "cli/cli_text.h"

#include <stdint.h>
#include <stdio.h>

#include "common/utf8.h"

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026, one column */

struct piece {
    char text[12]; /* an escape, or NULL text[0] = the input bytes as they are */
    size_t in_len; /* input bytes it stands for */
    size_t width;  /* columns */
};

static uint32_t decode(const uint8_t *s, size_t n)
{
    if (n == 1)
        return s[0];
    if (n == 2)
        return (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
    if (n == 3)
        return (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
    return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
           (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

/* Characters that reorder, hide or control text: escaped even though they
 * are printable Unicode ("Trojan Source", CVE-2021-42574). */
static bool is_format_control(uint32_t c)
{
    return (c >= 0x80 && c <= 0x9f) ||     /* C1 controls, CSI (U+009B) included */
           c == 0x061c ||                  /* Arabic letter mark */
           (c >= 0x200b && c <= 0x200f) || /* zero-width, LRM, RLM */
           (c >= 0x2028 && c <= 0x202e) || /* separators, embeddings, overrides */
           (c >= 0x2060 && c <= 0x206f) || /* word joiner, isolates, deprecated formats */
           c == 0xfeff ||                  /* zero-width no-break space */
           (c >= 0xfff9 && c <= 0xfffb) || /* interlinear annotations */
           (c >= 0xe0000 && c <= 0xe007f); /* tags: invisible text */
}

/* Columns of a printable code point: 0 for combining marks, 2 for East
 * Asian wide and fullwidth forms and most emoji, else 1. A short table in
 * the spirit of Markus Kuhn's wcwidth: no locale needed. */
static size_t cp_width(uint32_t c)
{
    static const uint32_t zero[][2] = {
        {0x0300, 0x036f}, {0x0483, 0x0489}, {0x0591, 0x05bd}, {0x0610, 0x061a}, {0x064b, 0x065f},
        {0x1ab0, 0x1aff}, {0x1dc0, 0x1dff}, {0x20d0, 0x20ff}, {0xfe00, 0xfe0f}, {0xfe20, 0xfe2f},
    };
    static const uint32_t wide[][2] = {
        {0x1100, 0x115f},   {0x2e80, 0x303e},   {0x3041, 0x33ff},   {0x3400, 0x4dbf},
        {0x4e00, 0x9fff},   {0xa000, 0xa4cf},   {0xac00, 0xd7a3},   {0xf900, 0xfaff},
        {0xfe30, 0xfe4f},   {0xff00, 0xff60},   {0xffe0, 0xffe6},   {0x1f300, 0x1f64f},
        {0x1f900, 0x1f9ff}, {0x20000, 0x2fffd}, {0x30000, 0x3fffd},
    };
    for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
        if (c >= zero[i][0] && c <= zero[i][1])
            return 0;
    for (size_t i = 0; i < sizeof(wide) / sizeof(wide[0]); i++)
        if (c >= wide[i][0] && c <= wide[i][1])
            return 2;
    return 1;
}

/* The piece at s[0, n) (n >= 1). */
static void next_piece(const char *s, size_t n, struct piece *p)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t len = utf8_seq_len(u, n);
    p->text[0] = '\0';
    if (len == 0) { /* not UTF-8: the byte, in hex */
        snprintf(p->text, sizeof(p->text), "\\x%02x", u[0]);
        p->in_len = 1;
        p->width = 4;
        return;
    }
    p->in_len = len;
    uint32_t c = decode(u, len);
    if (c == '\\') {
        snprintf(p->text, sizeof(p->text), "\\\\");
    } else if (c == '\n') {
        snprintf(p->text, sizeof(p->text), "\\n");
    } else if (c == '\r') {
        snprintf(p->text, sizeof(p->text), "\\r");
    } else if (c == '\t') {
        snprintf(p->text, sizeof(p->text), "\\t");
    } else if (c < 0x20 || c == 0x7f) {
        snprintf(p->text, sizeof(p->text), "\\x%02x", c);
    } else if (is_format_control(c)) {
        snprintf(p->text, sizeof(p->text), c > 0xffff ? "\\U%08x" : "\\u%04x", c);
    } else {
        p->width = cp_width(c);
        return;
    }
    p->width = strlen(p->text);
}

static void put_piece(struct buf *out, const char *s, const struct piece *p)
{
    if (p->text[0])
        buf_adds(out, p->text);
    else
        buf_add(out, s, p->in_len);
}

void cli_text_escape(struct buf *out, const char *s, size_t n)
{
    struct piece p;
    for (size_t i = 0; i < n; i += p.in_len) {
        next_piece(s + i, n - i, &p);
        put_piece(out, s + i, &p);
    }
}

size_t cli_text_width(const char *s, size_t n)
{
    struct piece p;
    size_t w = 0;
    for (size_t i = 0; i < n; i += p.in_len) {
        next_piece(s + i, n - i, &p);
        w += p.width;
    }
    return w;
}

void cli_text_cell(struct buf *out, const char *s, size_t n, size_t width, bool pad)
{
    size_t total = cli_text_width(s, n);
    size_t used = 0;
    if (width == 0 || total <= width) {
        cli_text_escape(out, s, n);
        used = total;
    } else {
        struct piece p;
        for (size_t i = 0; i < n; i += p.in_len) {
            next_piece(s + i, n - i, &p);
            if (used + p.width > width - 1)
                break;
            put_piece(out, s + i, &p);
            used += p.width;
        }
        BUF_LIT(out, ELLIPSIS);
        used++;
    }
    for (; pad && used < width; used++)
        buf_addc(out, ' ');
}
