/* The aggregator's one-shot commands from the CLI (migrate, replay, proof):
 * auditrail-aggregator --config FILE COMMAND ARGS… run in place of this
 * process (execv, no shell), so its output and exit status are the CLI's. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/xmalloc.h"

#define AGGREGATOR "auditrail-aggregator"

static char *executable_in(const char *dir, size_t n)
{
    /* an empty PATH element is the current directory, as for a shell */
    char *p = n ? xasprintf("%.*s/" AGGREGATOR, (int)n, dir) : xstrdup("./" AGGREGATOR);
    if (access(p, X_OK) == 0)
        return p;
    free(p);
    return NULL;
}

char *cli_aggregator_path(const char *self, const char *path)
{
    /* beside this binary first: an installation's programs go together */
    const char *slash = self ? strrchr(self, '/') : NULL;
    char *p = slash ? executable_in(self, (size_t)(slash - self)) : NULL;
    for (const char *d = path; !p && d;) {
        const char *colon = strchr(d, ':');
        size_t n = colon ? (size_t)(colon - d) : strlen(d);
        p = executable_in(d, n);
        d = colon ? colon + 1 : NULL;
    }
    return p;
}

/* proof keygen writes a new key file and reads no configuration. */
static bool needs_config(const char *const *args)
{
    return !(strcmp(args[0], "proof") == 0 && args[1] && strcmp(args[1], "keygen") == 0);
}

int cli_aggregator_exec(const char *config, const char *const *args)
{
    if (!config && needs_config(args)) {
        fprintf(stderr,
                "auditrail %s: --config FILE (the aggregator's) or $AUDITRAIL_CONFIG is required\n",
                args[0]);
        return CLI_USAGE;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = '\0';
    char *bin = cli_aggregator_path(n > 0 ? self : NULL, getenv("PATH"));
    if (!bin) {
        fprintf(stderr, "auditrail %s: no " AGGREGATOR " beside this program or on PATH\n",
                args[0]);
        return CLI_UNAVAILABLE;
    }
    size_t nargs = 0;
    while (args[nargs])
        nargs++;
    const char **argv = xcalloc(nargs + 4, sizeof(char *));
    size_t k = 0;
    argv[k++] = bin;
    if (config) {
        argv[k++] = "--config";
        argv[k++] = config;
    }
    for (size_t i = 0; i < nargs; i++)
        argv[k++] = args[i];
    fflush(NULL);
    execv(bin, (char *const *)argv);
    fprintf(stderr, "auditrail %s: cannot run %s: %s\n", args[0], bin, strerror(errno));
    free(argv);
    free(bin);
    return CLI_UNAVAILABLE;
}
