/* /proc readers; see procinfo.h. */
#include "collector/procinfo.h"
#include "cgroup_id.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ssize_t procinfo_read(uint32_t pid, const char *name, char *buf, size_t size)
{
    char path[64];
    ssize_t total = -1;
    int fd = -1;

    if (size == 0)
        goto cleanup;
    buf[0] = '\0';
    snprintf(path, sizeof(path), "/proc/%u/%s", pid, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto cleanup;
    total = 0;
    while ((size_t)total < size - 1) {
        ssize_t n = read(fd, buf + total, size - 1 - (size_t)total);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            total = -1;
            goto cleanup;
        }
        if (n == 0)
            break;
        total += n;
    }
    buf[total] = '\0';
cleanup:
    if (fd >= 0)
        close(fd);
    return total;
}

int procinfo_comm(uint32_t pid, char *out, size_t size)
{
    ssize_t n = procinfo_read(pid, "comm", out, size);

    if (n <= 0) {
        if (size)
            out[0] = '\0';
        return -1;
    }
    if (out[n - 1] == '\n')
        out[n - 1] = '\0';
    return 0;
}

int procinfo_cmdline(uint32_t pid, char *out, size_t size)
{
    ssize_t n = procinfo_read(pid, "cmdline", out, size);

    if (n <= 0)
        return -1;
    /* Arguments are NUL separated; the last one's NUL stays the end. */
    while (n > 0 && out[n - 1] == '\0')
        n--;
    for (ssize_t i = 0; i < n; i++)
        if (out[i] == '\0' || out[i] == '\n')
            out[i] = ' ';
    out[n] = '\0';
    return 0;
}

int procinfo_exe(uint32_t pid, char *out, size_t size)
{
    char path[64];

    if (size == 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%u/exe", pid);
    ssize_t n = readlink(path, out, size - 1);
    if (n < 0) {
        out[0] = '\0';
        return -1;
    }
    out[n] = '\0';
    return 0;
}

int procinfo_stat(uint32_t pid, uint64_t *start_ticks, uint32_t *ppid)
{
    char buf[1024];
    ssize_t n = procinfo_read(pid, "stat", buf, sizeof(buf));

    if (n <= 0)
        return -1;
    /* comm may hold spaces and parentheses: fields restart after the
     * last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    /* After ')': state(3) ppid(4) ... starttime(22): 20 fields on. */
    unsigned long long fields[20] = { 0 };
    char state;
    int got = sscanf(p,
                     " %c %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu"
                     " %llu %llu %llu %llu %llu %llu %llu %llu",
                     &state, &fields[0], &fields[1], &fields[2], &fields[3],
                     &fields[4], &fields[5], &fields[6], &fields[7],
                     &fields[8], &fields[9], &fields[10], &fields[11],
                     &fields[12], &fields[13], &fields[14], &fields[15],
                     &fields[16], &fields[17]);
    if (got != 19)
        return -1;
    if (ppid)
        *ppid = (uint32_t)fields[0];
    if (start_ticks)
        *start_ticks = fields[17];
    return 0;
}

int procinfo_status(uint32_t pid, uint32_t *nspid, uint32_t *tgid)
{
    char buf[4096];
    ssize_t n = procinfo_read(pid, "status", buf, sizeof(buf));

    if (n <= 0)
        return -1;
    if (nspid)
        *nspid = 0;
    if (tgid)
        *tgid = 0;
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

int procinfo_container_id(uint32_t pid, char *out, size_t size)
{
    char buf[4096];

    if (size)
        out[0] = '\0';
    if (procinfo_read(pid, "cgroup", buf, sizeof(buf)) <= 0)
        return -1;
    cgroup_container_id(buf, out, size);
    return 0;
}
