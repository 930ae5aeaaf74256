/* End-to-end harness: processes, HTTP probes and the independent checker. */
#include "tests/support/e2e.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "tests/support/testutil.h"

static char **strv_dup(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **out = xcalloc(n + 1, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void proc_start(struct e2e_proc *p)
{
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Die with the test process, whatever kills it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            close(devnull);
        }
        for (size_t i = 0; p->env[i]; i++)
            putenv(p->env[i]);
        execv(p->argv[0], p->argv);
        fprintf(stderr, "exec %s: %s\n", p->argv[0], strerror(errno));
        _exit(127);
    }
    p->pid = pid;
    p->starts++;
}

struct e2e_proc *e2e_spawn(const char *name, const char *const *argv, const char *const *env,
                           const char *log)
{
    struct e2e_proc *p = xcalloc(1, sizeof(*p));
    p->name = xstrdup(name);
    p->argv = strv_dup(argv);
    p->env = strv_dup(env);
    p->log = xstrdup(log);
    proc_start(p);
    return p;
}

void e2e_restart(struct e2e_proc *p)
{
    ck_assert_msg(p->pid == 0, "%s is still running", p->name);
    proc_start(p);
}

int e2e_kill(struct e2e_proc *p, int sig)
{
    if (p->pid == 0)
        return -1;
    kill(p->pid, sig);
    int st = 0;
    while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
        ;
    p->pid = 0;
    return st;
}

bool e2e_alive(struct e2e_proc *p, int *status)
{
    if (p->pid == 0)
        return false;
    int st = 0;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == 0)
        return true;
    if (status)
        *status = st;
    p->pid = 0;
    return false;
}

static int exit_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

int e2e_stop(struct e2e_proc *p, unsigned timeout_ms)
{
    if (p->pid == 0)
        return -1;
    kill(p->pid, SIGTERM);
    uint64_t deadline = test_now_ms() + timeout_ms;
    int st = 0;
    while (test_now_ms() < deadline) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            return exit_code(st);
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return exit_code(e2e_kill(p, SIGKILL));
}

void e2e_proc_free(struct e2e_proc *p)
{
    if (!p)
        return;
    if (p->pid)
        e2e_stop(p, 10000);
    free(p->name);
    strv_free(p->argv);
    strv_free(p->env);
    free(p->log);
    free(p);
}

unsigned e2e_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

struct body {
    char *data;
    size_t len;
};

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct body *b = ud;
    size_t n = size * nmemb;
    b->data = xrealloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

long e2e_http_get(unsigned port, const char *path, char **body)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    struct body b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (body)
        *body = b.data;
    else
        free(b.data);
    return status;
}

double e2e_metric(unsigned port, const char *name)
{
    char *text = NULL;
    if (e2e_http_get(port, "/metrics", &text) != 200) {
        free(text);
        return -1;
    }
    double sum = 0;
    size_t nlen = strlen(name);
    bool with_labels = strchr(name, '{') != NULL;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || strncmp(line, name, nlen) != 0)
            continue;
        char next = line[nlen];
        if (with_labels ? next != ' ' : (next != ' ' && next != '{'))
            continue;
        char *sp = strrchr(line, ' ');
        if (sp)
            sum += strtod(sp + 1, NULL);
    }
    free(text);
    return sum;
}

struct ready_arg {
    unsigned port;
};

static bool ready_cond(void *ud)
{
    struct ready_arg *a = ud;
    return e2e_http_get(a->port, "/readyz", NULL) == 200;
}

bool e2e_wait_ready(unsigned port, unsigned timeout_ms)
{
    struct ready_arg a = {port};
    return test_wait_until(ready_cond, &a, timeout_ms);
}

struct metric_arg {
    unsigned port;
    const char *name;
    double at_least;
};

static bool metric_cond(void *ud)
{
    struct metric_arg *m = ud;
    return e2e_metric(m->port, m->name) >= m->at_least;
}

bool e2e_wait_metric(unsigned port, const char *name, double at_least, unsigned timeout_ms)
{
    struct metric_arg m = {port, name, at_least};
    return test_wait_until(metric_cond, &m, timeout_ms);
}

static void records_push(struct e2e_records *r, const uint8_t *p, size_t len, size_t cap)
{
    if (cap && len > cap)
        len = cap;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->rec = xrealloc(r->rec, r->cap * sizeof(*r->rec));
        r->len = xrealloc(r->len, r->cap * sizeof(*r->len));
    }
    r->rec[r->n] = xmemdup(p, len ? len : 1);
    r->len[r->n] = len;
    r->n++;
}

static void collect_file(const char *path, size_t cap, struct e2e_records *out)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    struct stat st;
    ck_assert_int_eq(fstat(fileno(f), &st), 0);
    size_t size = (size_t)st.st_size;
    uint8_t *buf = xmalloc(size + 1);
    size_t got = fread(buf, 1, size, f);
    fclose(f);
    size_t start = 0;
    for (size_t i = 0; i < got; i++) {
        if (buf[i] != '\n')
            continue;
        if (i > start)
            records_push(out, buf + start, i - start, cap);
        start = i + 1;
    }
    if (got > start)
        records_push(out, buf + start, got - start, cap);
    free(buf);
}

void e2e_collect_records(const char *dir, size_t max_record_bytes, struct e2e_records *out)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "opendir %s: %s", dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d))) {
        char *path = xasprintf("%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
            collect_file(path, max_record_bytes, out);
        free(path);
    }
    closedir(d);
}

void e2e_records_release(struct e2e_records *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->rec[i]);
    free(r->rec);
    free(r->len);
    memset(r, 0, sizeof(*r));
}

struct blob {
    const uint8_t *p;
    size_t len;
};

static int blob_cmp(const void *a, const void *b)
{
    const struct blob *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

static void problem(struct e2e_report *r, const char *fmt, ...)
{
    size_t used = strlen(r->problem);
    if (used > sizeof(r->problem) - 64)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->problem + used, sizeof(r->problem) - used, fmt, ap);
    va_end(ap);
    used = strlen(r->problem);
    if (used < sizeof(r->problem) - 2)
        strcat(r->problem, "; ");
}

/* Printable prefix of a record for messages. */
static void preview(const uint8_t *p, size_t len, char *out, size_t outlen)
{
    size_t j = 0;
    for (size_t i = 0; i < len && j + 5 < outlen && i < 60; i++)
        out[j++] = (p[i] >= 32 && p[i] < 127) ? (char)p[i] : '.';
    out[j] = '\0';
}

static PGresult *must_query(PGconn *c, const char *sql, int binary)
{
    PGresult *res = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, binary);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    return res;
}

static const char CHAIN_SQL[] =
    "WITH e AS (SELECT stream_id, seq, id, hash, prev_hash, raw,"
    "                  lag(hash) OVER w AS prior_hash, lag(seq) OVER w AS prior_seq"
    "             FROM auditrail.events WINDOW w AS (PARTITION BY stream_id ORDER BY seq))"
    " SELECT count(*) FILTER (WHERE hash IS DISTINCT FROM sha256(prev_hash || int8send(seq) || "
    "raw)),"
    "        count(*) FILTER (WHERE prior_hash IS NOT NULL AND prior_seq = seq - 1"
    "                           AND prev_hash IS DISTINCT FROM prior_hash),"
    "        count(*) FILTER (WHERE replace(id::text, '-', '')"
    "                           IS DISTINCT FROM encode(substring(hash from 1 for 16), 'hex')),"
    "        count(*) FILTER (WHERE seq = 0 AND prev_hash IS DISTINCT FROM"
    "                           sha256(convert_to('auditrail:v1:' || stream_id, 'UTF8')))"
    "   FROM e";

static const char SEQ_SQL[] = "SELECT stream_id, count(*), count(DISTINCT seq), min(seq), max(seq)"
                              "  FROM auditrail.events GROUP BY stream_id";

bool e2e_check(const char *conninfo, const struct e2e_records *exp, struct e2e_report *r)
{
    memset(r, 0, sizeof(*r));
    r->expected = exp->n;
    PGconn *c = PQconnectdb(conninfo);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));

    /* 1. Every record exactly once, byte-identical: sort both sides, walk. */
    PGresult *res = must_query(c, "SELECT raw FROM auditrail.events", 1);
    size_t nrows = (size_t)PQntuples(res);
    r->rows = nrows;
    struct blob *got = xcalloc(nrows + 1, sizeof(*got));
    for (size_t i = 0; i < nrows; i++) {
        got[i].p = (const uint8_t *)PQgetvalue(res, (int)i, 0);
        got[i].len = (size_t)PQgetlength(res, (int)i, 0);
    }
    struct blob *want = xcalloc(exp->n + 1, sizeof(*want));
    for (size_t i = 0; i < exp->n; i++) {
        want[i].p = exp->rec[i];
        want[i].len = exp->len[i];
    }
    qsort(got, nrows, sizeof(*got), blob_cmp);
    qsort(want, exp->n, sizeof(*want), blob_cmp);
    size_t i = 0, j = 0;
    char pv[80];
    while (i < exp->n || j < nrows) {
        int cmp = i >= exp->n ? 1 : j >= nrows ? -1 : blob_cmp(&want[i], &got[j]);
        if (cmp == 0) {
            /* Count extra copies of the same bytes on the stored side. */
            size_t k = j + 1;
            while (k < nrows && blob_cmp(&got[k], &got[j]) == 0)
                k++;
            size_t w = i + 1;
            while (w < exp->n && blob_cmp(&want[w], &want[i]) == 0)
                w++;
            if (k - j > w - i) {
                r->duplicate_rows += (k - j) - (w - i);
                preview(got[j].p, got[j].len, pv, sizeof(pv));
                problem(r, "stored %zu times: \"%s\"", k - j, pv);
            } else if (k - j < w - i) {
                r->missing += (w - i) - (k - j);
            }
            i = w;
            j = k;
        } else if (cmp < 0) {
            r->missing++;
            preview(want[i].p, want[i].len, pv, sizeof(pv));
            problem(r, "missing: \"%s\" (%zu bytes)", pv, want[i].len);
            i++;
        } else {
            r->unexpected++;
            preview(got[j].p, got[j].len, pv, sizeof(pv));
            problem(r, "not written by the writer: \"%s\" (%zu bytes)", pv, got[j].len);
            j++;
        }
    }
    free(got);
    free(want);
    PQclear(res);

    /* 2. Per stream: seq 0..n-1, each once. */
    res = must_query(c, SEQ_SQL, 0);
    r->streams = (size_t)PQntuples(res);
    for (int k = 0; k < PQntuples(res); k++) {
        long long cnt = atoll(PQgetvalue(res, k, 1)), distinct = atoll(PQgetvalue(res, k, 2));
        long long mn = atoll(PQgetvalue(res, k, 3)), mx = atoll(PQgetvalue(res, k, 4));
        if (cnt != distinct || mn != 0 || mx != cnt - 1) {
            r->streams_bad_seq++;
            problem(r, "stream %s: %lld rows, %lld distinct seq, min %lld, max %lld",
                    PQgetvalue(res, k, 0), cnt, distinct, mn, mx);
        }
    }
    PQclear(res);

    /* 3. Hashes, links, ids and genesis, computed by PostgreSQL. */
    res = must_query(c, CHAIN_SQL, 0);
    r->bad_hash = (size_t)atoll(PQgetvalue(res, 0, 0));
    r->bad_link = (size_t)atoll(PQgetvalue(res, 0, 1));
    r->bad_id = (size_t)atoll(PQgetvalue(res, 0, 2));
    r->bad_genesis = (size_t)atoll(PQgetvalue(res, 0, 3));
    PQclear(res);
    if (r->bad_hash || r->bad_link || r->bad_id || r->bad_genesis)
        problem(r, "chain: %zu bad hashes, %zu bad links, %zu bad ids, %zu bad genesis",
                r->bad_hash, r->bad_link, r->bad_id, r->bad_genesis);
    PQfinish(c);
    return r->missing == 0 && r->unexpected == 0 && r->duplicate_rows == 0 &&
           r->streams_bad_seq == 0 && r->bad_hash == 0 && r->bad_link == 0 && r->bad_id == 0 &&
           r->bad_genesis == 0 && r->rows == r->expected;
}

long long e2e_row_count(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    long long n = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *res = PQexec(c, "SELECT count(*) FROM auditrail.events");
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
            n = atoll(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    PQfinish(c);
    return n;
}

struct rows_arg {
    const char *conninfo;
    long long n;
};

static bool rows_cond(void *ud)
{
    struct rows_arg *a = ud;
    long long n = e2e_row_count(a->conninfo);
    if (n < a->n) {
        struct timespec ts = {0, 200 * 1000 * 1000}; /* don't hammer PostgreSQL */
        nanosleep(&ts, NULL);
    }
    return n >= a->n;
}

bool e2e_wait_rows(const char *conninfo, long long n, unsigned timeout_ms)
{
    struct rows_arg a = {conninfo, n};
    return test_wait_until(rows_cond, &a, timeout_ms);
}
