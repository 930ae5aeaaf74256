/* Linked into every fuzz target: a regexec that honours REG_STARTEND under
 * ASan.
 *
 * Why: the ASan interceptor of regexec (clang 14 and gcc 12 alike) checks
 * strlen(string) + 1 bytes even with REG_STARTEND, so the framer's correct
 * use of a non-NUL-terminated line (agent/framer.c, line_starts_record) is
 * reported as a heap-buffer-overflow. glibc itself reads only
 * [rm_so, rm_eo) then. This definition takes precedence over the runtime's
 * weak interceptor, checks exactly the bytes glibc reads, and calls glibc. */
#include <dlfcn.h>
#include <regex.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*regexec_fn)(const regex_t *, const char *, size_t, regmatch_t *, int);

int regexec(const regex_t *re, const char *s, size_t nmatch, regmatch_t *m, int eflags)
{
    static regexec_fn real;
    if (!real) {
        real = (regexec_fn)dlvsym(RTLD_NEXT, "regexec", "GLIBC_2.3.4");
        if (!real)
            real = (regexec_fn)dlsym(RTLD_NEXT, "regexec");
        if (!real)
            abort();
    }
    size_t len = (eflags & REG_STARTEND) ? (size_t)m[0].rm_eo : strlen(s) + 1;
    void *bad = __asan_region_is_poisoned((void *)s, len);
    if (bad) {
        fprintf(stderr, "FUZZ INVARIANT: regexec reads %zu bytes at %p, poisoned from %p\n", len,
                (const void *)s, bad);
        __sanitizer_print_stack_trace();
        abort();
    }
    return real(re, s, nmatch, m, eflags);
}
