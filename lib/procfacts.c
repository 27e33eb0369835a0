/* /proc readers: see procfacts.h. */
#include "procfacts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup_id.h"

/* A stat line is under 1 KiB whatever comm holds (16 bytes; a kernel
 * thread's name in parentheses at most 64). */
#define STAT_MAX 1024
/* status and cgroup grow with namespaces and hierarchies: a nested
 * container's cgroup file can pass 4 KiB. */
#define STATUS_MAX 4096
#define CGROUP_MAX 8192
#define D_DELETED " (deleted)"

static const char *s_root(const char *root)
{
    return root && *root ? root : "/proc";
}

/* root/<pid>/<name>, or root/<name> for pid 0; -1 when it does not fit. */
static int s_path(char *path, size_t size, const char *root, uint32_t pid,
                  const char *name)
{
    int n = pid ? snprintf(path, size, "%s/%u/%s", s_root(root), pid, name)
                : snprintf(path, size, "%s/%s", s_root(root), name);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static ssize_t s_read_file(const char *path, char *buf, size_t size)
{
    ssize_t total = -1;
    int fd = -1;
    if (size == 0)
        goto cleanup;
    buf[0] = '\0';
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto cleanup;
    total = 0;
    while ((size_t)total < size - 1) {
        ssize_t n = read(fd, buf + total, size - 1 - (size_t)total);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            total = -1;   /* ESRCH: the process went away mid-read */
            goto cleanup;
        }
        if (n == 0)
            break;
        total += n;
    }
cleanup:
    if (size)
        buf[total > 0 ? total : 0] = '\0';
    if (fd >= 0)
        close(fd);
    return total;
}

ssize_t procfacts_read(const char *root, uint32_t pid, const char *name,
                       char *buf, size_t size)
{
    char path[512];
    if (s_path(path, sizeof path, root, pid, name) != 0) {
        if (size)
            buf[0] = '\0';
        return -1;
    }
    return s_read_file(path, buf, size);
}

int procfacts_comm(const char *root, uint32_t pid, char *out, size_t size)
{
    ssize_t n = procfacts_read(root, pid, "comm", out, size);
    if (n <= 0) {
        if (size)
            out[0] = '\0';
        return -1;
    }
    out[strcspn(out, "\n")] = '\0';
    return 0;
}

int procfacts_cmdline(const char *root, uint32_t pid, char *out,
                      size_t size)
{
    ssize_t n = procfacts_read(root, pid, "cmdline", out, size);
    if (n <= 0)
        return -1;
    /* Arguments are NUL separated; the last one's NUL stays the end. */
    while (n > 0 && out[n - 1] == '\0')
        n--;
    for (ssize_t i = 0; i < n; i++)
        if (out[i] == '\0' || out[i] == '\n')
            out[i] = ' ';
    out[n] = '\0';
    return n > 0 ? 0 : -1;
}

int procfacts_exe(const char *root, uint32_t pid, char *out, size_t size)
{
    char path[512];
    ssize_t n = -1;
    if (size == 0)
        return -1;
    if (s_path(path, sizeof path, root, pid, "exe") == 0)
        n = readlink(path, out, size - 1);
    out[n > 0 ? n : 0] = '\0';
    return n > 0 ? 0 : -1;
}

int procfacts_exe_undelete(char *exe)
{
    size_t len = strlen(exe), slen = strlen(D_DELETED);
    if (len < slen || strcmp(exe + len - slen, D_DELETED) != 0)
        return 0;
    exe[len - slen] = '\0';
    return 1;
}

int procfacts_stat(const char *root, uint32_t pid, procfacts_stat_t *out)
{
    int rc = -1;
    char buf[STAT_MAX];
    memset(out, 0, sizeof *out);
    if (procfacts_read(root, pid, "stat", buf, sizeof buf) <= 0)
        goto cleanup;
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2])
        goto cleanup;
    out->state = p[2];
    p += 3;
    /* Fields 4 (ppid) to 22 (starttime), counted from 1 as proc(5) does. */
    unsigned long long f[23] = { 0 };
    int field = 4;
    for (; field <= 22; field++) {
        char *end;
        errno = 0;
        f[field] = strtoull(p, &end, 10);
        if (end == p || errno)
            goto cleanup;
        p = end;
    }
    out->ppid = (uint32_t)f[4];
    out->utime = f[14];
    out->stime = f[15];
    out->num_threads = (long)f[20];
    out->start_ticks = f[22];
    rc = 0;
cleanup:
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

int procfacts_status(const char *root, uint32_t pid, uint32_t *nspid,
                     uint32_t *tgid)
{
    char buf[STATUS_MAX];
    if (nspid)
        *nspid = 0;
    if (tgid)
        *tgid = 0;
    if (procfacts_read(root, pid, "status", buf, sizeof buf) <= 0)
        return -1;
    for (char *line = buf; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (tgid && strncmp(line, "Tgid:", 5) == 0) {
            *tgid = (uint32_t)strtoul(line + 5, NULL, 10);
        } else if (nspid && strncmp(line, "NSpid:", 6) == 0) {
            /* Outermost first; the last value is the pid inside the
             * process's own namespace. */
            char *p = line + 6;
            for (;;) {
                char *end;
                unsigned long v = strtoul(p, &end, 10);
                if (end == p)
                    break;
                *nspid = (uint32_t)v;
                p = end;
            }
        }
        line = next;
    }
    return 0;
}

int procfacts_container_id(const char *root, uint32_t pid, char *out,
                           size_t size)
{
    char buf[CGROUP_MAX];
    if (size)
        out[0] = '\0';
    if (procfacts_read(root, pid, "cgroup", buf, sizeof buf) <= 0)
        return -1;
    cgroup_container_id(buf, out, size);
    return 0;
}

int procfacts_alive(const char *root, uint32_t pid)
{
    char path[512];
    struct stat st;
    int n = snprintf(path, sizeof path, "%s/%u", s_root(root), pid);
    return n > 0 && (size_t)n < sizeof path && pid && stat(path, &st) == 0;
}

size_t procfacts_each_pid(const char *root,
                          int (*fn)(void *arg, uint32_t pid), void *arg)
{
    size_t visited = 0;
    DIR *dir = opendir(s_root(root));
    if (!dir)
        goto cleanup;
    struct dirent *de;
    while ((de = readdir(dir))) {
        char *end;
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        unsigned long pid = strtoul(de->d_name, &end, 10);
        if (*end || pid == 0 || pid > UINT32_MAX)
            continue;
        visited++;
        if (fn(arg, (uint32_t)pid))
            break;
    }
cleanup:
    if (dir)
        closedir(dir);
    return visited;
}

int procfacts_loadavg(const char *root, double *load1)
{
    char buf[128], *end;
    *load1 = 0;
    if (procfacts_read(root, 0, "loadavg", buf, sizeof buf) <= 0)
        return -1;
    double v = strtod(buf, &end);
    if (end == buf)
        return -1;
    *load1 = v;
    return 0;
}
