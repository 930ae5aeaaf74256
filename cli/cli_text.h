/* Text from the API shown on a terminal: a record's content is hostile
 * input, so nothing of it may reach the terminal as a control: C0 and C1
 * controls, DEL, bidirectional overrides and invisible format characters
 * are escaped ("\x1b", "\u202e"), and so are bytes that are not UTF-8; a
 * backslash becomes "\\" so an escape is never ambiguous. Table cells are
 * cut to a width in terminal columns with an ellipsis. Pure. */
#ifndef AUDITRAIL_CLI_TEXT_H
#define AUDITRAIL_CLI_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* Append s[0, n) to out, escaped as above. */
void cli_text_escape(struct buf *out, const char *s, size_t n);

/* Terminal columns that cli_text_escape(s, n) takes (approximate for
 * East Asian wide and combining characters, exact for ASCII). */
size_t cli_text_width(const char *s, size_t n);

/* Append s[0, n) escaped as one table cell of `width` columns: when it is
 * wider, cut on a character boundary and ended with "…" (one column);
 * padded with spaces to width when pad. width 0 = no limit. */
void cli_text_cell(struct buf *out, const char *s, size_t n, size_t width, bool pad);

#endif
