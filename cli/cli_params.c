/* Filters and time range of a verb as a query string (cli/cli_params.h). */
#include "cli/cli_params.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_http.h"
#include "cli/cli_opts.h"
#include "cli/cli_time.h"
#include "common/timeutil.h"

bool cli_stream_id(const char *s, char out[33])
{
    if (strlen(s) != 32 || strspn(s, "0123456789abcdefABCDEF") != 32)
        return false;
    for (int i = 0; i < 32; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[32] = '\0';
    return true;
}

static int time_opt(const char *name, const char *v, int64_t now_us, int64_t *out, char *err,
                    size_t errlen)
{
    if (cli_time_parse(v, now_us, out) == 0)
        return 0;
    snprintf(err, errlen,
             "--%s: not a time: RFC 3339 (2026-11-26T19:50:45Z), a date (2026-11-26), now, "
             "or relative (-30m, -24h, -7d)",
             name);
    return -1;
}

int cli_params_build(const struct cli_opts *o, int64_t now_us, bool default_range, struct buf *qs,
                     char *err, size_t errlen)
{
    int64_t from = 0, to = 0;
    bool has_from = o->from || default_range, has_to = o->to || default_range;
    if (o->to && time_opt("to", o->to, now_us, &to, err, errlen) != 0)
        return -1;
    if (!o->to)
        to = now_us;
    if (o->from && time_opt("from", o->from, now_us, &from, err, errlen) != 0)
        return -1;
    if (!o->from)
        from = to - CLI_DEFAULT_SPAN_US;
    if (has_from && has_to && from >= to) {
        snprintf(err, errlen, "--from must be before --to (the range is [from, to))");
        return -1;
    }
    char sid[33];
    if (o->stream && !cli_stream_id(o->stream, sid)) {
        snprintf(err, errlen, "--stream takes a stream id: 32 hex characters");
        return -1;
    }
    cli_qs_add(qs, "tenant", o->tenant);
    cli_qs_add(qs, "actor", o->actor);
    cli_qs_add(qs, "action", o->action);
    cli_qs_add(qs, "resource", o->resource);
    cli_qs_add(qs, "outcome", o->outcome);
    cli_qs_add(qs, "source", o->source);
    cli_qs_add(qs, "stream", o->stream ? sid : NULL);
    cli_qs_add(qs, "kind", o->kind);
    char t[TIME_RFC3339_LEN];
    if (has_from) {
        time_format_us(from, t);
        cli_qs_add(qs, "from", t);
    }
    if (has_to) {
        time_format_us(to, t);
        cli_qs_add(qs, "to", t);
    }
    cli_qs_add(qs, "min_lsn", o->min_lsn);
    cli_qs_add(qs, "counts", o->counts ? "true" : NULL);
    return 0;
}
