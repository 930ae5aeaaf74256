/* The API's audit log file (aggregator/query_audit.h). */
#include "aggregator/query_audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

struct query_audit {
    pthread_mutex_t mu;
    char *path;
    int fd;
    dev_t dev;
    ino_t ino;
    uint64_t checked_ms;
    bool failing;
};

static int open_file(struct query_audit *a)
{
    int fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    if (a->fd >= 0)
        close(a->fd);
    a->fd = fd;
    a->dev = st.st_dev;
    a->ino = st.st_ino;
    return 0;
}

struct query_audit *query_audit_open(const char *path, char *err, size_t errlen)
{
    struct query_audit *a = xcalloc(1, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    a->path = xstrdup(path);
    a->fd = -1;
    if (open_file(a) != 0) {
        snprintf(err, errlen, "query.audit_log %s: %s", path, strerror(errno));
        query_audit_close(a);
        return NULL;
    }
    return a;
}

void query_audit_close(struct query_audit *a)
{
    if (!a)
        return;
    if (a->fd >= 0)
        close(a->fd);
    pthread_mutex_destroy(&a->mu);
    free(a->path);
    free(a);
}

/* Rotated away (renamed or deleted)? Reopen at the path. mu held. */
static void follow_rotation(struct query_audit *a)
{
    uint64_t now = time_mono_ms();
    if (now - a->checked_ms < 1000)
        return;
    a->checked_ms = now;
    struct stat st;
    if (stat(a->path, &st) != 0 || st.st_dev != a->dev || st.st_ino != a->ino)
        (void)open_file(a);
}

int query_audit_write(struct query_audit *a, const char *line, size_t len)
{
    struct iovec iov[2] = {{(void *)line, len}, {(void *)"\n", 1}};
    pthread_mutex_lock(&a->mu);
    follow_rotation(a);
    ssize_t n = writev(a->fd, iov, 2);
    int rc = n == (ssize_t)(len + 1) ? 0 : -1;
    if (rc != 0 && !a->failing)
        log_error("query.audit_log %s: write failed: %s (API requests are not being audited)",
                  a->path, n < 0 ? strerror(errno) : "short write");
    else if (rc == 0 && a->failing)
        log_info("query.audit_log %s: writing again", a->path);
    a->failing = rc != 0;
    pthread_mutex_unlock(&a->mu);
    return rc;
}
