/* Checkpoint file: jansson for the JSON, POSIX for the atomic replace. */
#include "agent/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/io.h"
#include "common/xmalloc.h"

#define CHECKPOINT_FILE    "checkpoint.json"
#define CHECKPOINT_PREV    CHECKPOINT_FILE ".1"
#define CHECKPOINT_CORRUPT CHECKPOINT_FILE ".corrupt"
#define CHECKPOINT_LOCK    "lock"
#define CHECKPOINT_VERSION 1

void checkpoint_add(struct checkpoint *c, const struct checkpoint_entry *e)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    c->v[c->n] = *e;
    c->v[c->n].path = xstrdup(e->path ? e->path : "");
    c->v[c->n].live_path = xstrdup(e->live_path ? e->live_path : c->v[c->n].path);
    c->n++;
}

void checkpoint_release(struct checkpoint *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].path);
        free(c->v[i].live_path);
    }
    free(c->v);
    memset(c, 0, sizeof(*c));
}

/* uint64 as a decimal string: JSON numbers lose precision above 2^53. */
static json_t *u64_json(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return json_string(buf);
}

/* File names are bytes: a name that is not UTF-8 (which a JSON string
 * cannot hold) is stored as "<key>_hex" instead, so one odd name never makes
 * the checkpoint unreadable. */
static void set_path(json_t *o, const char *key, const char *p)
{
    json_t *v = json_string(p);
    if (v) {
        json_object_set_new(o, key, v);
        return;
    }
    size_t n = strlen(p);
    char *hex = xmalloc(2 * n + 1);
    hex_encode((const uint8_t *)p, n, hex);
    char *k = xasprintf("%s_hex", key);
    json_object_set_new(o, k, json_string(hex));
    free(k);
    free(hex);
}

/* The name under key (or key_hex), heap; NULL if absent or malformed. */
static char *get_path(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    char *k = xasprintf("%s_hex", key);
    v = json_object_get(o, k);
    free(k);
    if (!json_is_string(v))
        return NULL;
    size_t hl = strlen(json_string_value(v));
    if (hl % 2)
        return NULL;
    char *out = xcalloc(1, hl / 2 + 1);
    if (hex_decode(json_string_value(v), hl / 2, (uint8_t *)out) < 0 || strlen(out) != hl / 2) {
        free(out);
        return NULL;
    }
    return out;
}

char *checkpoint_to_json(const struct checkpoint *c)
{
    json_t *root = json_object();
    json_t *arr = json_array();
    json_object_set_new(root, "version", json_integer(CHECKPOINT_VERSION));
    for (size_t i = 0; i < c->n; i++) {
        const struct checkpoint_entry *e = &c->v[i];
        char fp[2 * STREAM_FP_LEN + 1], prev[2 * CHAIN_HASH_LEN + 1];
        hex_encode(e->fp, STREAM_FP_LEN, fp);
        hex_encode(e->prev, CHAIN_HASH_LEN, prev);
        json_t *o = json_object();
        set_path(o, "path", e->path);
        set_path(o, "live_path", e->live_path ? e->live_path : e->path);
        json_object_set_new(o, "dev", u64_json(e->dev));
        json_object_set_new(o, "ino", u64_json(e->ino));
        json_object_set_new(o, "btime", u64_json(e->btime));
        json_object_set_new(o, "fp", json_string(fp));
        json_object_set_new(o, "fp_len", u64_json(e->fp_len));
        json_object_set_new(o, "generation", u64_json(e->generation));
        json_object_set_new(o, "stream", json_string(e->stream));
        json_object_set_new(o, "offset", u64_json(e->offset));
        json_object_set_new(o, "seq", u64_json(e->seq));
        json_object_set_new(o, "prev", json_string(prev));
        json_object_set_new(o, "done", json_boolean(e->done));
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "streams", arr);
    json_object_set_new(root, "scanned_at_ns", u64_json(c->scanned_at_ns));
    char *s = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    char *out = xstrdup(s);
    free(s);
    return out;
}

static int get_u64(json_t *o, const char *k, uint64_t *out)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-')
        return -1;
    *out = x;
    return 0;
}

static int get_hex(json_t *o, const char *k, uint8_t *out, size_t n)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v) || strlen(json_string_value(v)) != 2 * n)
        return -1;
    return hex_decode(json_string_value(v), n, out);
}

int checkpoint_from_json(struct checkpoint *c, const char *text, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    int rc = -1;
    if (!root) {
        snprintf(err, errlen, "checkpoint: invalid JSON at line %d: %s", jerr.line, jerr.text);
        return -1;
    }
    json_t *ver = json_object_get(root, "version");
    json_t *arr = json_object_get(root, "streams");
    if (!json_is_integer(ver) || json_integer_value(ver) != CHECKPOINT_VERSION ||
        !json_is_array(arr)) {
        snprintf(err, errlen, "checkpoint: unsupported version or no streams array");
        goto out;
    }
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        struct checkpoint_entry e;
        memset(&e, 0, sizeof(e));
        char *path = get_path(o, "path"), *live = get_path(o, "live_path");
        json_t *stream = json_object_get(o, "stream");
        json_t *done = json_object_get(o, "done");
        if (!path || !json_is_string(stream) || get_u64(o, "dev", &e.dev) ||
            get_u64(o, "ino", &e.ino) || get_u64(o, "btime", &e.btime) ||
            get_hex(o, "fp", e.fp, STREAM_FP_LEN) || get_u64(o, "fp_len", &e.fp_len) ||
            e.fp_len > STREAM_FP_CAP || get_u64(o, "generation", &e.generation) ||
            get_u64(o, "offset", &e.offset) || get_u64(o, "seq", &e.seq) ||
            get_hex(o, "prev", e.prev, CHAIN_HASH_LEN)) {
            snprintf(err, errlen, "checkpoint: stream entry %zu is malformed", i);
            free(path);
            free(live);
            goto out;
        }
        /* A file opened before its first record has no id yet (fp_len 0). */
        size_t slen = strlen(json_string_value(stream));
        if (e.fp_len == 0 ? slen != 0 : slen != 2 * STREAM_ID_LEN) {
            snprintf(err, errlen, "checkpoint: stream entry %zu has a bad stream id", i);
            free(path);
            free(live);
            goto out;
        }
        memcpy(e.stream, json_string_value(stream), slen + 1); /* "" before the first record */
        e.done = json_is_true(done);
        e.path = path;
        e.live_path = live;
        checkpoint_add(c, &e);
        free(path);
        free(live);
    }
    /* Absent from files written before it existed: 0, unknown. */
    if (json_object_get(root, "scanned_at_ns") &&
        get_u64(root, "scanned_at_ns", &c->scanned_at_ns)) {
        snprintf(err, errlen, "checkpoint: scanned_at_ns is malformed");
        goto out;
    }
    rc = 1;
out:
    json_decref(root);
    return rc;
}

/* One generation: 1 read, 0 absent, -1 corrupt (parse error), -2 unreadable;
 * err says why. */
static int load_file(struct checkpoint *c, const char *path, char *err, size_t errlen)
{
    int rc = -2;
    struct buf text = BUF_INIT;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            rc = 0;
        else
            snprintf(err, errlen, "checkpoint: open %s: %s", path, strerror(errno));
        goto out;
    }
    if (io_read_all(fd, SIZE_MAX, &text) < 0) {
        snprintf(err, errlen, "checkpoint: read %s: %s", path, strerror(errno));
        goto out;
    }
    char why[256];
    if (checkpoint_from_json(c, buf_cstr(&text), why, sizeof(why)) < 0) {
        checkpoint_release(c);
        snprintf(err, errlen, "%s is corrupt (%s)", path, why);
        rc = -1;
        goto out;
    }
    rc = 1;
out:
    if (fd >= 0)
        close(fd);
    buf_release(&text);
    return rc;
}

int checkpoint_load(struct checkpoint *c, const char *dir, char *err, size_t errlen)
{
    char *path = xasprintf("%s/%s", dir, CHECKPOINT_FILE);
    char *prev = xasprintf("%s/%s", dir, CHECKPOINT_PREV);
    char *aside = xasprintf("%s/%s", dir, CHECKPOINT_CORRUPT);
    char why[768] = "";
    int rc = load_file(c, path, why, sizeof(why));
    uint64_t written_ns = 0;
    if (rc == 1 || rc == -2) {
        if (rc == -2)
            snprintf(err, errlen, "%s", why);
        goto out;
    }
    if (rc == -1) {
        /* Kept for a post-mortem, and out of the way: the next save must not
         * make it the previous generation. */
        struct stat st;
        if (stat(path, &st) == 0)
            written_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + st.st_mtim.tv_nsec;
        if (rename(path, aside) == 0)
            snprintf(why + strlen(why), sizeof(why) - strlen(why), "; moved to %s", aside);
    } else {
        snprintf(why, sizeof(why), "%s is missing", path);
    }
    char pwhy[512] = "";
    int prc = load_file(c, prev, pwhy, sizeof(pwhy));
    if (prc == 1) {
        snprintf(err, errlen, "checkpoint: %s; using the previous generation %s", why, prev);
        rc = CHECKPOINT_FALLBACK;
    } else if (rc == 0 && prc == 0) {
        rc = CHECKPOINT_NONE;
    } else if (prc == -2) {
        snprintf(err, errlen, "%s", pwhy);
        rc = -1;
    } else {
        snprintf(err, errlen, "checkpoint: %s; %s", why,
                 prc == 0 ? "there is no previous generation" : pwhy);
        c->scanned_at_ns = written_ns;
        rc = CHECKPOINT_LOST;
    }
out:
    free(aside);
    free(prev);
    free(path);
    return rc;
}

int checkpoint_save(const struct checkpoint *c, const char *dir, char *err, size_t errlen)
{
    char *path = xasprintf("%s/%s", dir, CHECKPOINT_FILE);
    char *tmp = xasprintf("%s/%s.tmp", dir, CHECKPOINT_FILE);
    char *prev = xasprintf("%s/%s", dir, CHECKPOINT_PREV);
    char *text = checkpoint_to_json(c);
    int rc = -1, fd = -1, dfd = -1;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "checkpoint: create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (io_write_all(fd, text, strlen(text)) < 0 || io_write_all(fd, "\n", 1) < 0 ||
        fsync(fd) < 0) {
        snprintf(err, errlen, "checkpoint: write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        snprintf(err, errlen, "checkpoint: close %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    /* The generation being replaced stays as the previous one. A hard link
     * keeps checkpoint.json in place all along; without hard links a crash
     * between the two renames leaves only the previous generation. */
    if ((unlink(prev) < 0 && errno != ENOENT) ||
        (link(path, prev) < 0 && errno != ENOENT && rename(path, prev) < 0 && errno != ENOENT)) {
        snprintf(err, errlen, "checkpoint: keep %s as %s: %s", path, prev, strerror(errno));
        goto out;
    }
    if (rename(tmp, path) < 0) {
        snprintf(err, errlen, "checkpoint: rename to %s: %s", path, strerror(errno));
        goto out;
    }
    /* The rename is durable only once the directory entry is. */
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0) {
        snprintf(err, errlen, "checkpoint: fsync dir %s: %s", dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    if (dfd >= 0)
        close(dfd);
    free(text);
    free(prev);
    free(tmp);
    free(path);
    return rc;
}

int checkpoint_lock(const char *dir, char *err, size_t errlen)
{
    char *path = xasprintf("%s/%s", dir, CHECKPOINT_LOCK);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "agent.checkpoint_dir: cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            snprintf(err, errlen,
                     "agent.checkpoint_dir %s is in use by another auditrail-agent (pid %s): two "
                     "agents must never share a checkpoint",
                     dir, pid[0] ? pid : "unknown");
        else
            snprintf(err, errlen, "agent.checkpoint_dir: lock %s: %s", path, strerror(e));
        close(fd);
        fd = -1;
        goto out;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The lock holds without the pid; it only makes the message nicer. */
    }
out:
    free(path);
    return fd;
}
