/* auditrail: the operator CLI. A libcurl client of the programs' HTTP side
 * (health, readiness, metrics), and a front door to the aggregator's
 * one-shot commands (migrate). The query API verbs join when it lands. */
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/prog.h"
#include "common/xmalloc.h"

#define DEFAULT_URL "http://127.0.0.1:9200"

static size_t buf_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    buf_add(ud, ptr, size * nmemb);
    return size * nmemb;
}

/* GET base+path; returns the HTTP status, or -1 with a message on stderr
 * when the server could not be reached. Body in *out (heap). */
static long http_get(const char *base, const char *path, struct buf *out)
{
    char *url = xasprintf("%s%s", base, path);
    CURL *c = curl_easy_init();
    long status = -1;
    if (!c) {
        fprintf(stderr, "auditrail: curl init failed\n");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        fprintf(stderr, "auditrail: GET %s: %s\n", url, curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
out:
    curl_easy_cleanup(c);
    free(url);
    return status;
}

static int cmd_health(const char *url)
{
    struct buf h = BUF_INIT, r = BUF_INIT;
    long hs = http_get(url, "/healthz", &h);
    long rs = hs < 0 ? -1 : http_get(url, "/readyz", &r);
    int rc = 2;
    if (hs >= 0 && rs >= 0) {
        printf("healthz %ld %s\n", hs, buf_cstr(&h));
        printf("readyz  %ld %s\n", rs, buf_cstr(&r));
        rc = (hs == 200 && rs == 200) ? 0 : 1;
    }
    buf_release(&h);
    buf_release(&r);
    return rc;
}

static int cmd_metrics(const char *url, const char *prefix)
{
    struct buf m = BUF_INIT;
    long st = http_get(url, "/metrics", &m);
    int rc = 2;
    if (st == 200) {
        size_t plen = prefix ? strlen(prefix) : 0;
        char *text = (char *)buf_cstr(&m);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            if (!prefix || strncmp(line, prefix, plen) == 0)
                puts(line);
        }
        rc = 0;
    } else if (st >= 0) {
        fprintf(stderr, "auditrail: /metrics answered %ld\n", st);
    }
    buf_release(&m);
    return rc;
}

/* Run the aggregator binary that sits beside this one. */
static int cmd_migrate(const char *config)
{
    if (!config) {
        fprintf(stderr, "auditrail migrate: --config FILE is required\n");
        return 2;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *dir = NULL;
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        dir = xasprintf("%s/auditrail-aggregator", exe);
    } else {
        dir = xstrdup("auditrail-aggregator");
    }
    execl(dir, dir, "--config", config, "migrate", (char *)NULL);
    fprintf(stderr, "auditrail migrate: cannot run %s: %s\n", dir, strerror(errno));
    free(dir);
    return 2;
}

static const char *url_opt = NULL;

static const struct prog_option cli_options[] = {
    {"url", 'u', &url_opt},
    {NULL, 0, NULL},
};

static const struct prog cli_prog = {
    .name = "auditrail",
    .usage =
        "auditrail [--url URL] COMMAND\n"
        "  health                 GET /healthz and /readyz; exit 0 when ready,\n"
        "                         1 when not ready, 2 when unreachable\n"
        "  metrics [PREFIX]       print /metrics, optionally only lines starting with PREFIX\n"
        "  migrate --config FILE  apply PostgreSQL migrations (runs auditrail-aggregator)\n"
        "  --url URL              the agent's or aggregator's http.listen address\n"
        "                         (default " DEFAULT_URL ", the aggregator's; or $AUDITRAIL_URL)\n"
        "  --version              print the version",
    .options = cli_options,
};

int main(int argc, char **argv)
{
    struct prog_args args;
    int rc = prog_parse(&cli_prog, argc, argv, &args);
    if (rc >= 0)
        return rc;
    const char *url = url_opt ? url_opt : getenv("AUDITRAIL_URL");
    if (!url || !*url)
        url = DEFAULT_URL;
    if (args.argc == 0)
        return prog_usage_error(&cli_prog, "a command is required");
    const char *cmd = args.argv[0];
    if (strcmp(cmd, "migrate") == 0)
        return cmd_migrate(args.config);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (strcmp(cmd, "health") == 0) {
        rc = cmd_health(url);
    } else if (strcmp(cmd, "metrics") == 0) {
        rc = cmd_metrics(url, args.argc > 1 ? args.argv[1] : NULL);
    } else {
        rc = prog_usage_error(&cli_prog, "unknown command '%s'", cmd);
    }
    curl_global_cleanup();
    return rc;
}
