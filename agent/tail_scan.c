/* Glob discovery with glob(3); stat(2) follows symlinks. */
#include "agent/tail_scan.h"

#include <fnmatch.h>
#include <glob.h>
#include <sys/stat.h>

size_t tail_scan_run(const struct agent_config *cfg, tail_scan_fn found, void *ud)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_inputs; i++) {
        glob_t g;
        int rc = glob(cfg->inputs[i].conf->path, 0, NULL, &g);
        if (rc == 0) {
            for (size_t k = 0; k < g.gl_pathc; k++) {
                struct stat st;
                if (stat(g.gl_pathv[k], &st) == 0 && S_ISREG(st.st_mode)) {
                    found(ud, g.gl_pathv[k], i, &st);
                    n++;
                }
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
