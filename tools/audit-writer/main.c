/* audit-writer: writes realistic audit records into log files, with rotation,
 * for `make run`, end-to-end tests and benchmarks. Every record carries a
 * unique token ("n":N or n=N) so a checker can find each one downstream. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/io.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "tools/audit-writer/gen.h"

static volatile sig_atomic_t g_stop; /* set by SIGTERM/SIGINT */

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

enum rotate_style { ROT_RENAME, ROT_COPYTRUNCATE, ROT_RENAME_NOMATCH };

struct wfile {
    char *path; /* DIR/NAME.log */
    enum gen_format fmt;
    struct gen_rng rng;
    int fd;
    uint64_t gen_records, gen_bytes; /* current generation */
    /* records/bytes per finished generation, index = generation number */
    uint64_t *gen_rec_hist, *gen_byte_hist;
    size_t ngens; /* finished generations */
    uint64_t total;
};

struct opts {
    const char *dir, *manifest;
    unsigned files;
    int format; /* gen_format, or -1 for mixed */
    uint64_t count, rate, rotate_every;
    enum rotate_style style;
    uint64_t seed;
    struct gen_opts gen;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: audit-writer --dir DIR [options]\n"
            "  --files N              files to write (default 1): app-0.log, app-1.log...\n"
            "  --format F             json|kv|k8s-audit|auditd|fhir|mixed (default json);\n"
            "                         mixed: file i uses format i %% 5 and is named FORMAT-i.log\n"
            "  --count N              records per file (default 0 = until SIGTERM)\n"
            "  --rate N               records/s over all files (default 0 = as fast as possible)\n"
            "  --rotate-every N       rotate a file after N records (default 0 = never)\n"
            "  --rotate-style S       rename|copytruncate|rename-nomatch (default rename)\n"
            "  --seed S               content seed (default 1)\n"
            "  --line-bytes N         pad records to about N bytes (default 0 = natural)\n"
            "  --no-timestamp-ratio [R] json: share of records without a time key\n"
            "                         (default 0; the option alone means 0.1)\n"
            "  --manifest FILE        at exit, write records and bytes per file generation\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-')
        return -1;
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {{"dir", required_argument, NULL, 'd'},
                                       {"files", required_argument, NULL, 'f'},
                                       {"format", required_argument, NULL, 'F'},
                                       {"count", required_argument, NULL, 'c'},
                                       {"rate", required_argument, NULL, 'r'},
                                       {"rotate-every", required_argument, NULL, 'R'},
                                       {"rotate-style", required_argument, NULL, 'S'},
                                       {"seed", required_argument, NULL, 's'},
                                       {"line-bytes", required_argument, NULL, 'l'},
                                       {"no-timestamp-ratio", optional_argument, NULL, 'N'},
                                       {"manifest", required_argument, NULL, 'm'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof(*o));
    o->files = 1;
    o->seed = 1;
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->dir = optarg;
            break;
        case 'm':
            o->manifest = optarg;
            break;
        case 'f':
            if (parse_u64(optarg, &v) < 0 || v == 0 || v > 10000)
                goto bad;
            o->files = (unsigned)v;
            break;
        case 'F':
            if (strcmp(optarg, "mixed") == 0) {
                o->format = -1;
            } else {
                enum gen_format f;
                if (gen_format_parse(optarg, &f) < 0)
                    goto bad;
                o->format = (int)f;
            }
            break;
        case 'c':
            if (parse_u64(optarg, &o->count) < 0)
                goto bad;
            break;
        case 'r':
            if (parse_u64(optarg, &o->rate) < 0)
                goto bad;
            break;
        case 'R':
            if (parse_u64(optarg, &o->rotate_every) < 0)
                goto bad;
            break;
        case 'S':
            if (strcmp(optarg, "rename") == 0)
                o->style = ROT_RENAME;
            else if (strcmp(optarg, "copytruncate") == 0)
                o->style = ROT_COPYTRUNCATE;
            else if (strcmp(optarg, "rename-nomatch") == 0)
                o->style = ROT_RENAME_NOMATCH;
            else
                goto bad;
            break;
        case 's':
            if (parse_u64(optarg, &o->seed) < 0)
                goto bad;
            break;
        case 'l':
            if (parse_u64(optarg, &v) < 0 || v > 64 * 1024 * 1024)
                goto bad;
            o->gen.line_bytes = (size_t)v;
            break;
        case 'N': {
            /* "--no-timestamp-ratio" alone means 0.1; the ratio may follow
             * as "=R" or as the next argument when that is a number. */
            if (!optarg && optind < argc && argv[optind][0] >= '0' && argv[optind][0] <= '9')
                optarg = argv[optind++];
            if (!optarg) {
                o->gen.no_ts_ratio = 0.1;
                break;
            }
            char *end;
            o->gen.no_ts_ratio = strtod(optarg, &end);
            if (end == optarg || *end || o->gen.no_ts_ratio < 0 || o->gen.no_ts_ratio > 1)
                goto bad;
            break;
        }
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (!o->dir || optind != argc) {
        usage(stderr);
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "audit-writer: bad value for option: %s\n", optarg);
    return -1;
}

static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        fprintf(stderr, "audit-writer: open %s: %s\n", path, strerror(errno));
    return fd;
}

/* Path of generation g (0 = oldest) of file f once `done` generations have
 * been rotated away; generation `done` is the live file. */
static char *gen_path(const struct wfile *f, const struct opts *o, size_t g, size_t done)
{
    if (g == done)
        return xstrdup(f->path);
    if (o->style == ROT_RENAME_NOMATCH)
        return xasprintf("%s-%06zu.old", f->path, g + 1);
    return xasprintf("%s.%zu", f->path, done - g);
}

/* Shift x.log.k -> x.log.k+1 for every kept generation (newest last). */
static int shift_numbered(const struct wfile *f)
{
    for (size_t k = f->ngens; k >= 1; k--) {
        char *from = xasprintf("%s.%zu", f->path, k), *to = xasprintf("%s.%zu", f->path, k + 1);
        int rc = rename(from, to);
        if (rc < 0)
            fprintf(stderr, "audit-writer: rename %s: %s\n", from, strerror(errno));
        free(from);
        free(to);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
    char buf[65536];
    if (in < 0)
        goto out;
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        goto out;
    for (;;) {
        ssize_t r = read(in, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto out;
        if (r == 0)
            break;
        if (io_write_all(out, buf, (size_t)r) < 0)
            goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        fprintf(stderr, "audit-writer: copy %s -> %s: %s\n", from, to, strerror(errno));
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* Rotate f. Single-threaded: nothing is written to f while this runs, so
 * even copytruncate loses no line here (unlike logrotate in real life). */
static int rotate(struct wfile *f, const struct opts *o)
{
    int rc = -1;
    char *to = NULL;
    if (o->style == ROT_RENAME_NOMATCH) {
        to = xasprintf("%s-%06zu.old", f->path, f->ngens + 1);
    } else {
        if (shift_numbered(f) < 0)
            goto out;
        to = xasprintf("%s.1", f->path);
    }
    if (o->style == ROT_COPYTRUNCATE) {
        if (copy_file(f->path, to) < 0)
            goto out;
        if (ftruncate(f->fd, 0) < 0) {
            fprintf(stderr, "audit-writer: truncate %s: %s\n", f->path, strerror(errno));
            goto out;
        }
    } else {
        if (rename(f->path, to) < 0) {
            fprintf(stderr, "audit-writer: rename %s: %s\n", f->path, strerror(errno));
            goto out;
        }
        close(f->fd);
        f->fd = open_log(f->path);
        if (f->fd < 0)
            goto out;
    }
    f->gen_rec_hist = xrealloc(f->gen_rec_hist, (f->ngens + 1) * sizeof(uint64_t));
    f->gen_byte_hist = xrealloc(f->gen_byte_hist, (f->ngens + 1) * sizeof(uint64_t));
    f->gen_rec_hist[f->ngens] = f->gen_records;
    f->gen_byte_hist[f->ngens] = f->gen_bytes;
    f->ngens++;
    f->gen_records = f->gen_bytes = 0;
    rc = 0;
out:
    free(to);
    return rc;
}

/* Manifest: one line per file generation, "path\tformat\trecords\tbytes",
 * then "total\t-\tRECORDS\tBYTES". Written to FILE.tmp then renamed, so a
 * reader never sees half of it. */
static int write_manifest(const struct opts *o, struct wfile *fs)
{
    char *tmp = xasprintf("%s.tmp", o->manifest);
    FILE *m = fopen(tmp, "w");
    int rc = -1;
    if (!m) {
        fprintf(stderr, "audit-writer: %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    uint64_t tr = 0, tb = 0;
    fprintf(m, "# path\tformat\trecords\tbytes\n");
    for (unsigned i = 0; i < o->files; i++) {
        struct wfile *f = &fs[i];
        for (size_t g = 0; g <= f->ngens; g++) {
            uint64_t r = g < f->ngens ? f->gen_rec_hist[g] : f->gen_records;
            uint64_t b = g < f->ngens ? f->gen_byte_hist[g] : f->gen_bytes;
            char *p = gen_path(f, o, g, f->ngens);
            fprintf(m, "%s\t%s\t%llu\t%llu\n", p, gen_format_name(f->fmt), (unsigned long long)r,
                    (unsigned long long)b);
            free(p);
            tr += r;
            tb += b;
        }
    }
    fprintf(m, "total\t-\t%llu\t%llu\n", (unsigned long long)tr, (unsigned long long)tb);
    if (fclose(m) != 0 || rename(tmp, o->manifest) < 0) {
        fprintf(stderr, "audit-writer: %s: %s\n", o->manifest, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(tmp);
    return rc;
}

/* Sleep until record k (0-based, over all files) is due at `rate` per second. */
static void pace(uint64_t start_us, uint64_t k, uint64_t rate)
{
    uint64_t due = start_us + (uint64_t)((double)k * 1e6 / (double)rate);
    uint64_t now = time_mono_us();
    if (due > now + 200) {
        struct timespec ts = {(time_t)((due - now) / 1000000),
                              (long)((due - now) % 1000000) * 1000};
        nanosleep(&ts, NULL); /* EINTR (signal) just ends the wait early */
    }
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) < 0)
        return 2;
    if (mkdir(o.dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "audit-writer: mkdir %s: %s\n", o.dir, strerror(errno));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int rc = 1;
    uint64_t start = time_mono_us(), k = 0, n = 1;
    struct wfile *fs = xcalloc(o.files, sizeof(*fs));
    for (unsigned i = 0; i < o.files; i++)
        fs[i].fd = -1;
    struct buf buf = BUF_INIT;
    for (unsigned i = 0; i < o.files; i++) {
        fs[i].fmt = o.format < 0 ? (enum gen_format)(i % GEN_NFORMATS) : (enum gen_format)o.format;
        fs[i].path = o.format < 0 ? xasprintf("%s/%s-%u.log", o.dir, gen_format_name(fs[i].fmt), i)
                                  : xasprintf("%s/app-%u.log", o.dir, i);
        gen_rng_seed(&fs[i].rng, o.seed * 1000003u + i);
        fs[i].fd = open_log(fs[i].path);
        if (fs[i].fd < 0)
            goto out;
    }
    start = time_mono_us();
    /* Round-robin over the files, one whole record per write(). */
    while (!g_stop) {
        struct wfile *f = &fs[k % o.files];
        if (o.count && f->total >= o.count)
            break;
        if (o.rate)
            pace(start, k, o.rate);
        if (g_stop)
            break;
        if (o.rotate_every && f->gen_records >= o.rotate_every && rotate(f, &o) < 0)
            goto out;
        gen_record(f->fmt, &f->rng, n, time_now_us(), &o.gen, &buf);
        if (io_write_all(f->fd, buf.p, buf.len) < 0) {
            fprintf(stderr, "audit-writer: write %s: %s\n", f->path, strerror(errno));
            goto out;
        }
        f->gen_records++;
        f->gen_bytes += buf.len;
        f->total++;
        n++;
        k++;
    }
    rc = 0;
out:
    if (o.manifest && write_manifest(&o, fs) < 0)
        rc = 1;
    fprintf(stderr, "audit-writer: %llu records written to %u file(s)%s\n",
            (unsigned long long)(n - 1), o.files, g_stop ? " (stopped by signal)" : "");
    for (unsigned i = 0; i < o.files; i++) {
        if (fs[i].fd >= 0)
            close(fs[i].fd);
        free(fs[i].path);
        free(fs[i].gen_rec_hist);
        free(fs[i].gen_byte_hist);
    }
    free(fs);
    buf_release(&buf);
    return rc;
}
