/* The CLI's libcurl client (cli/cli_http.h): one easy handle per request
 * (a CLI makes a few), http and https only, no redirects followed (a
 * bearer token must not travel to another host). */
#include "cli/cli_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_json.h"
#include "cli/cli_text.h"
#include "common/io.h"
#include "common/xmalloc.h"

#define ERROR_BODY_MAX (64 * 1024) /* of an error answer kept beside a sink */

/* ---- where and who */

/* A token is one header value: printable ASCII without spaces, so that a
 * file with a stray line or a pasted control character can never add a
 * header of its own. */
static bool token_ok(const char *t, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (t[i] < 0x21 || t[i] > 0x7e)
            return false;
    return true;
}

static int read_token_file(const char *path, struct buf *out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    int rc = -1;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "token file %s: not a regular file", path);
        goto out;
    }
    if (io_read_all(fd, CLI_TOKEN_MAX, out) != 0) {
        snprintf(err, errlen, "token file %s: %s", path,
                 errno == EFBIG ? "larger than a token" : strerror(errno));
        goto out;
    }
    while (out->len && strchr(" \t\r\n", out->p[out->len - 1])) /* a trailing newline */
        out->p[--out->len] = '\0';
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* The URL without user info, for messages (a password in --url is not
 * repeated on a terminal or in a CI log). */
static char *url_shown(const char *url)
{
    CURLU *u = curl_url();
    char *s = NULL, *out;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
        curl_url_set(u, CURLUPART_USER, NULL, 0);
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
        curl_url_set(u, CURLUPART_QUERY, NULL, 0);
        curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
        curl_url_get(u, CURLUPART_URL, &s, 0);
    }
    out = xstrdup(s ? s : "(the --url)");
    curl_free(s);
    curl_url_cleanup(u);
    size_t n = strlen(out);
    if (n > 1 && out[n - 1] == '/')
        out[n - 1] = '\0';
    return out;
}

int cli_conn_init(struct cli_conn *c, const struct cli_opts *o, char *err, size_t errlen)
{
    struct buf tok = BUF_INIT;
    int rc = -1;
    memset(c, 0, sizeof(*c));
    const char *url = o->url ? o->url : getenv("AUDITRAIL_URL");
    if (!url || !*url)
        url = CLI_DEFAULT_URL;
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
        snprintf(err, errlen, "--url must start with http:// or https://");
        goto out;
    }
    c->base = xstrdup(url);
    for (size_t n = strlen(c->base); n > 8 && c->base[n - 1] == '/'; n--)
        c->base[n - 1] = '\0';
    c->shown = url_shown(c->base);
    if (o->token && o->token_file) {
        snprintf(err, errlen, "--token and --token-file: give one");
        goto out;
    }
    const char *file = o->token_file;
    if (o->token) {
        buf_adds(&tok, o->token);
    } else if (!file && getenv("AUDITRAIL_TOKEN") && *getenv("AUDITRAIL_TOKEN")) {
        buf_adds(&tok, getenv("AUDITRAIL_TOKEN"));
    } else if (!file) {
        file = getenv("AUDITRAIL_TOKEN_FILE");
        if (file && !*file)
            file = NULL;
    }
    if (file && read_token_file(file, &tok, err, errlen) != 0)
        goto out;
    if ((o->token || file || tok.len) && !token_ok(tok.p, tok.len)) {
        snprintf(err, errlen, "the token is empty or holds spaces or control characters");
        goto out;
    }
    if (tok.len)
        c->auth = xasprintf("Authorization: Bearer %s", tok.p);
    c->cacert = o->cacert ? xstrdup(o->cacert) : NULL;
    c->timeout_ms = o->timeout_ms >= 0 ? o->timeout_ms : CLI_DEFAULT_TIMEOUT;
    rc = 0;
out:
    /* The secret's copies: wiped before the memory goes back. */
    if (tok.p)
        explicit_bzero(tok.p, tok.cap);
    buf_release(&tok);
    if (rc != 0)
        cli_conn_release(c);
    return rc;
}

void cli_conn_release(struct cli_conn *c)
{
    if (c->auth)
        explicit_bzero(c->auth, strlen(c->auth));
    free(c->auth);
    free(c->base);
    free(c->shown);
    free(c->cacert);
    memset(c, 0, sizeof(*c));
}

void cli_qs_add(struct buf *qs, const char *name, const char *value)
{
    if (!value)
        return;
    if (qs->len)
        buf_addc(qs, '&');
    buf_adds(qs, name);
    buf_addc(qs, '=');
    /* everything but RFC 3986's unreserved characters, percent-encoded */
    char *e = curl_easy_escape(NULL, value, 0);
    if (!e)
        abort(); /* out of memory, as xmalloc would */
    buf_adds(qs, e);
    curl_free(e);
}

/* ---- one request */

struct xfer {
    CURL *h;
    const struct cli_conn *c;
    const struct cli_request *rq;
    struct cli_reply *r;
};

static void header_value(const char *line, size_t n, size_t name_len, char *out, size_t cap)
{
    const char *v = line + name_len + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t len = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
    memcpy(out, v, len);
    out[len] = '\0';
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    static const struct {
        const char *name;
        size_t off, cap;
    } wanted[] = {
        {"X-Auditrail-Served-By", offsetof(struct cli_reply, served_by), 128},
        {"X-Auditrail-Replica-Lag-Ms", offsetof(struct cli_reply, lag_ms), 24},
        {"X-Auditrail-Cache", offsetof(struct cli_reply, cache), 16},
        {"Retry-After", offsetof(struct cli_reply, retry_after), 16},
    };
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        size_t nl = strlen(wanted[i].name);
        if (n > nl && p[nl] == ':' && strncasecmp(p, wanted[i].name, nl) == 0)
            header_value(p, n, nl, (char *)x->r + wanted[i].off, wanted[i].cap);
    }
    return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    if (x->rq->sink && status >= 200 && status < 300) {
        if (x->rq->sink(x->rq->ud, p, n) != 0) {
            x->r->sink_stopped = true;
            return 0; /* CURLE_WRITE_ERROR */
        }
        return n;
    }
    if (x->rq->sink && x->r->body.len + n > ERROR_BODY_MAX)
        return n; /* an error text beyond any reason: keep its start */
    buf_add(&x->r->body, p, n);
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct xfer *x = ud;
    (void)dt, (void)dn, (void)ut, (void)un;
    if (x->c->stop && *x->c->stop) {
        x->r->interrupted = true;
        return 1;
    }
    if (x->rq->tick)
        x->rq->tick(x->rq->ud);
    return 0;
}

int cli_http_get(const struct cli_conn *c, const struct cli_request *rq, struct cli_reply *r)
{
    memset(r, 0, sizeof(*r));
    r->status = -1;
    char *url = rq->query && *rq->query ? xasprintf("%s%s?%s", c->base, rq->path, rq->query)
                                        : xasprintf("%s%s", c->base, rq->path);
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hl = NULL;
    struct xfer x = {curl_easy_init(), c, rq, r};
    if (!x.h) {
        r->curl_rc = CURLE_FAILED_INIT;
        snprintf(r->curl_err, sizeof(r->curl_err), "libcurl could not start");
        goto out;
    }
    if (c->auth && !rq->no_token)
        hl = curl_slist_append(hl, c->auth);
    hl = curl_slist_append(hl, "Accept: application/json, application/x-ndjson");
    curl_easy_setopt(x.h, CURLOPT_URL, url);
    curl_easy_setopt(x.h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(x.h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(x.h, CURLOPT_USERAGENT, "auditrail-cli");
    curl_easy_setopt(x.h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x.h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(x.h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x.h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(x.h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(x.h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(x.h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(x.h, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(x.h, CURLOPT_NOPROGRESS, 0L);
    if (c->cacert)
        curl_easy_setopt(x.h, CURLOPT_CAINFO, c->cacert);
    if (c->timeout_ms > 0) {
        curl_easy_setopt(x.h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
        if (rq->stream) { /* an export may run for hours; silence may not */
            curl_easy_setopt(x.h, CURLOPT_LOW_SPEED_LIMIT, 1L);
            curl_easy_setopt(x.h, CURLOPT_LOW_SPEED_TIME, (c->timeout_ms + 999) / 1000);
        } else {
            curl_easy_setopt(x.h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
        }
    }
    CURLcode rc = curl_easy_perform(x.h);
    r->curl_rc = (int)rc;
    if (rc != CURLE_OK)
        snprintf(r->curl_err, sizeof(r->curl_err), "%s",
                 errbuf[0] ? errbuf : curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, &status);
    r->status = status > 0 ? status : -1;
out:
    curl_slist_free_all(hl);
    curl_easy_cleanup(x.h);
    free(url);
    buf_cstr(&r->body);
    return r->curl_rc == CURLE_OK ? 0 : -1;
}

void cli_reply_release(struct cli_reply *r)
{
    buf_release(&r->body);
}

json_t *cli_reply_json(const struct cli_reply *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body.p ? r->body.p : "", r->body.len, JSON_ALLOW_NUL, &e);
    if (!j && json_error_code(&e) == json_error_numeric_overflow) {
        /* valid JSON that jansson cannot hold (1e400, a 30-digit integer in
         * a record's attrs): read with its numbers as text */
        struct buf q = BUF_INIT;
        cli_json_quote_numbers(r->body.p, r->body.len, &q);
        j = json_loadb(buf_cstr(&q), q.len, JSON_ALLOW_NUL, NULL);
        buf_release(&q);
    }
    return j;
}

/* ---- what it means */

static void say(struct buf *line)
{
    buf_addc(line, '\n');
    fputs(buf_cstr(line), stderr);
}

int cli_reply_status(const struct cli_conn *c, const struct cli_reply *r)
{
    struct buf line = BUF_INIT;
    int ex;
    if (r->interrupted) {
        BUF_LIT(&line, "auditrail: interrupted");
        ex = CLI_INTERRUPTED;
        goto out;
    }
    if (r->sink_stopped) {
        ex = CLI_NOT_FOUND;
        goto out;
    }
    if (r->curl_rc != CURLE_OK && (r->status < 200 || r->status >= 300 || r->status == -1)) {
        if (r->status == -1) {
            BUF_LIT(&line, "auditrail: ");
            cli_text_escape(&line, c->shown, strlen(c->shown));
            BUF_LIT(&line, " unavailable: ");
            cli_text_escape(&line, r->curl_err, strlen(r->curl_err));
            ex = CLI_UNAVAILABLE;
            goto out;
        }
        /* an error status whose body was cut: the status still speaks */
    } else if (r->curl_rc != CURLE_OK) {
        /* 2xx, then the transfer broke: never take a part for the whole */
        BUF_LIT(&line, "auditrail: the answer was cut short (");
        cli_text_escape(&line, r->curl_err, strlen(r->curl_err));
        BUF_LIT(&line, "); what was written is incomplete");
        ex = CLI_UNAVAILABLE;
        goto out;
    }
    if (r->status >= 200 && r->status < 300) {
        ex = CLI_OK;
        goto out;
    }
    ex = r->status == 400 || r->status == 405 || r->status == 413 || r->status == 414 ? CLI_USAGE
         : r->status == 401 || r->status == 403                                       ? CLI_AUTH
         : r->status == 404 ? CLI_NOT_FOUND
                            : CLI_UNAVAILABLE;
    json_t *j = json_loadb(r->body.p ? r->body.p : "", r->body.len, JSON_ALLOW_NUL, NULL);
    const char *msg = json_string_value(json_object_get(j, "error"));
    const char *code = json_string_value(json_object_get(j, "code"));
    BUF_LIT(&line, "auditrail: ");
    if (msg)
        cli_text_escape(&line, msg, json_string_length(json_object_get(j, "error")));
    else
        BUF_LIT(&line, "the API answered");
    buf_addf(&line, " (HTTP %ld", r->status);
    if (code) {
        buf_addc(&line, ' ');
        cli_text_escape(&line, code, strlen(code));
    }
    buf_addc(&line, ')');
    json_decref(j);
    if (r->status == 401 && !c->auth)
        BUF_LIT(&line, "; no token given: --token-file FILE, $AUDITRAIL_TOKEN or --token");
    if (r->status == 503 && r->retry_after[0]) {
        BUF_LIT(&line, "; retry after ");
        cli_text_escape(&line, r->retry_after, strlen(r->retry_after));
        BUF_LIT(&line, " s");
    }
out:
    if (line.len)
        say(&line);
    buf_release(&line);
    return ex;
}
