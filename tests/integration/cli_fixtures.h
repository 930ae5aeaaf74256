/* Running the auditrail CLI from an integration suite: one invocation
 * against an API on a local port, its exit status, stdout and stderr, and
 * the check every run gets: no token, nor a good part of one, printed. */
#ifndef AUDITRAIL_TESTS_CLI_FIXTURES_H
#define AUDITRAIL_TESTS_CLI_FIXTURES_H

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "tests/support/proc.h"
#include "tests/support/testutil.h"

struct cfx_run {
    int status;
    struct buf out, err; /* NUL-terminated */
};

/* auditrail --url http://127.0.0.1:port ARGS (shell words from fmt), with
 * none of the tokens (NULL-terminated list of "atr_…") in its output. */
static inline struct cfx_run cfx_vrun(unsigned port, const char *const *tokens, const char *fmt,
                                      va_list ap)
{
    char *args;
    ck_assert_int_ge(vasprintf(&args, fmt, ap), 0);
    char *bin = test_bin("auditrail");
    char *cmd = xasprintf("'%s' --url http://127.0.0.1:%u %s", bin, port, args);
    struct cfx_run r = {0, BUF_INIT, BUF_INIT};
    r.status = proc_run_sh(cmd, &r.out, &r.err);
    buf_cstr(&r.out);
    buf_cstr(&r.err);
    for (size_t i = 0; tokens[i]; i++) {
        char part[17];
        snprintf(part, sizeof(part), "%s", tokens[i] + 4); /* 16 characters after "atr_" */
        ck_assert_msg(!strstr(r.out.p, part) && !strstr(r.err.p, part),
                      "a token shows in the output: %s", r.err.p);
    }
    free(cmd);
    free(bin);
    free(args);
    return r;
}

static inline void cfx_run_free(struct cfx_run *r)
{
    buf_release(&r->out);
    buf_release(&r->err);
}

static inline size_t cfx_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

#endif
