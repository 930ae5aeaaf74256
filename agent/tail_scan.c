/* Glob discovery with glob(3); every name is checked by tail_guard_stat. */
#include "agent/tail_scan.h"

#include <fnmatch.h>
#include <glob.h>
#include <libgen.h>
#include <stdlib.h>

#include "common/xmalloc.h"

size_t tail_scan_run(const struct agent_config *cfg, const struct tail_scan_cb *cb)
{
    bool follow = cfg->file.agent.follow_symlinks;
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_inputs; i++) {
        glob_t g;
        int rc = glob(cfg->inputs[i].conf->path, 0, NULL, &g);
        for (size_t k = 0; rc == 0 && k < g.gl_pathc; k++) {
            struct stat st;
            enum tail_guard_verdict v = tail_guard_stat(g.gl_pathv[k], follow, &st);
            if (v == TAIL_GUARD_OK) {
                cb->found(cb->ud, g.gl_pathv[k], i, &st);
                n++;
            } else if (v == TAIL_GUARD_NOT_REGULAR && S_ISDIR(st.st_mode)) {
                continue; /* a directory is not a log file: nothing to say */
            } else if (v < TAIL_GUARD_GONE) {
                cb->refused(cb->ud, g.gl_pathv[k], i, v);
            }
        }
        if (rc != GLOB_NOSPACE)
            globfree(&g);
    }
    return n;
}

int tail_scan_match(const struct agent_config *cfg, const char *path)
{
    for (size_t i = 0; i < cfg->n_inputs; i++)
        if (fnmatch(cfg->inputs[i].conf->path, path, FNM_PATHNAME) == 0)
            return (int)i;
    return -1;
}

void tail_scan_dirs(const struct agent_config *cfg, void (*fn)(void *ud, const char *dir), void *ud)
{
    for (size_t i = 0; i < cfg->n_inputs; i++) {
        char *copy = xstrdup(cfg->inputs[i].conf->path);
        glob_t g;
        /* The directory part may itself hold wildcards. */
        if (glob(dirname(copy), GLOB_ONLYDIR, NULL, &g) == 0) {
            for (size_t k = 0; k < g.gl_pathc; k++)
                fn(ud, g.gl_pathv[k]);
            globfree(&g);
        }
        free(copy);
    }
}
