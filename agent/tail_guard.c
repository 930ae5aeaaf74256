/* The file rules: openat2(2) resolves the name relative to its directory
 * (RESOLVE_NO_SYMLINKS, or RESOLVE_BENEATH when links are followed) into an
 * O_PATH descriptor, which is checked (fstat, fstatfs) and then reopened for
 * reading through /proc/self/fd, so the file checked is the file read. */
#include "agent/tail_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "common/xmalloc.h"

#ifndef CONFIGFS_MAGIC
#define CONFIGFS_MAGIC 0x62656570
#endif

const char *tail_guard_reason(enum tail_guard_verdict v)
{
    static const char *const names[] = {"ok",        "symlink", "escapes", "not_regular",
                                        "pseudo_fs", "gone",    "error"};
    return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "error";
}

const char *tail_guard_explain(enum tail_guard_verdict v)
{
    switch (v) {
    case TAIL_GUARD_SYMLINK:
        return "a symbolic link (agent.follow_symlinks is false)";
    case TAIL_GUARD_ESCAPES:
        return "a symbolic link whose target is outside its directory, or a loop";
    case TAIL_GUARD_NOT_REGULAR:
        return "not a regular file (FIFO, socket, device or directory)";
    case TAIL_GUARD_PSEUDO_FS:
        return "on a kernel pseudo-filesystem (/proc, /sys, ...)";
    default:
        return tail_guard_reason(v);
    }
}

static bool pseudo_fs(long type)
{
    static const long types[] = {PROC_SUPER_MAGIC,   SYSFS_MAGIC,         DEBUGFS_MAGIC,
                                 TRACEFS_MAGIC,      SECURITYFS_MAGIC,    SELINUX_MAGIC,
                                 CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, BPF_FS_MAGIC,
                                 DEVPTS_SUPER_MAGIC, EFIVARFS_MAGIC,      CONFIGFS_MAGIC};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (type == types[i])
            return true;
    return false;
}

/* Without openat2 (Linux < 5.6): O_NOFOLLOW, or the target's real path
 * compared with the directory's. */
static int resolve_fallback(int dfd, const char *name, bool follow)
{
    int fd = openat(dfd, name, O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
    if (fd < 0 || !follow)
        return fd;
    char link[64], dir[4096], target[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", dfd);
    ssize_t dn = readlink(link, dir, sizeof(dir) - 1);
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t tn = readlink(link, target, sizeof(target) - 1);
    if (dn <= 0 || tn <= dn || memcmp(dir, target, (size_t)dn) != 0 ||
        (target[dn] != '/' && strcmp(dir, "/") != 0)) {
        close(fd);
        errno = EXDEV;
        return -1;
    }
    return fd;
}

static enum tail_guard_verdict from_errno(int e, bool follow)
{
    if (e == ENOENT || e == ENOTDIR)
        return TAIL_GUARD_GONE;
    if (e == ELOOP)
        return follow ? TAIL_GUARD_ESCAPES : TAIL_GUARD_SYMLINK;
    if (e == EXDEV)
        return TAIL_GUARD_ESCAPES;
    return TAIL_GUARD_ERROR;
}

/* An O_PATH descriptor of path that passed the rules, or -1 with *v. */
static int resolve(const char *path, bool follow, struct stat *st, enum tail_guard_verdict *v)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    char *dir = slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : xstrdup(".");
    int fd = -1;
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (dfd < 0) {
        *v = from_errno(errno, follow);
        return -1;
    }
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = follow ? RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS : RESOLVE_NO_SYMLINKS,
    };
    fd = (int)syscall(SYS_openat2, dfd, name, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS)
        fd = resolve_fallback(dfd, name, follow);
    int e = errno;
    close(dfd);
    if (fd < 0) {
        *v = from_errno(e, follow);
        errno = e;
        return -1;
    }
    struct statfs sfs;
    if (fstat(fd, st) < 0 || fstatfs(fd, &sfs) < 0) {
        e = errno;
        close(fd);
        *v = TAIL_GUARD_ERROR;
        errno = e;
        return -1;
    }
    *v = S_ISLNK(st->st_mode)          ? TAIL_GUARD_SYMLINK
         : !S_ISREG(st->st_mode)       ? TAIL_GUARD_NOT_REGULAR
         : pseudo_fs((long)sfs.f_type) ? TAIL_GUARD_PSEUDO_FS
                                       : TAIL_GUARD_OK;
    if (*v != TAIL_GUARD_OK) {
        close(fd);
        return -1;
    }
    return fd;
}

enum tail_guard_verdict tail_guard_stat(const char *path, bool follow, struct stat *st)
{
    enum tail_guard_verdict v;
    int fd = resolve(path, follow, st, &v);
    if (fd >= 0)
        close(fd);
    return v;
}

int tail_guard_open(const char *path, bool follow, struct stat *st, enum tail_guard_verdict *v)
{
    int pfd = resolve(path, follow, st, v);
    if (pfd < 0)
        return -1;
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", pfd);
    int fd = open(link, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno == ENOENT) /* no /proc: open the name, then compare */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW));
    int e = errno;
    close(pfd);
    struct stat got;
    if (fd >= 0 && (fstat(fd, &got) < 0 || got.st_dev != st->st_dev || got.st_ino != st->st_ino)) {
        close(fd);
        fd = -1;
        e = ENOENT; /* swapped meanwhile: as if gone, the next scan sorts it */
    }
    if (fd < 0) {
        *v = from_errno(e, follow);
        errno = e;
    }
    return fd;
}
