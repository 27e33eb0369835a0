/* /proc reading: see procscan.h. */
#include "procscan.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t
s_read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got + 1 < size) {
        ssize_t n = read(fd, buf + got, size - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

int
procscan_read(const char *proc_root, uint32_t pid, procscan_info_t *info)
{
    char path[256];
    memset(info, 0, sizeof *info);
    info->pid = pid;
    snprintf(path, sizeof path, "%s/%u/cmdline", proc_root, pid);
    ssize_t n = s_read_small(path, info->cmdline, sizeof info->cmdline);
    if (n <= 0)
        return -1;
    /* Arguments are NUL separated: join with spaces, drop the last NUL. */
    while (n > 0 && info->cmdline[n - 1] == '\0')
        n--;
    for (ssize_t i = 0; i < n; i++)
        if (info->cmdline[i] == '\0' || info->cmdline[i] == '\n')
            info->cmdline[i] = ' ';
    info->cmdline[n] = '\0';
    if (n == 0)
        return -1;
    snprintf(path, sizeof path, "%s/%u/comm", proc_root, pid);
    if (s_read_small(path, info->comm, sizeof info->comm) > 0)
        info->comm[strcspn(info->comm, "\n")] = '\0';
    snprintf(path, sizeof path, "%s/%u/exe", proc_root, pid);
    ssize_t l = readlink(path, info->exe, sizeof info->exe - 1);
    if (l > 0) {
        info->exe[l] = '\0';
        /* An executable replaced on disk shows as "path (deleted)". */
        char *del = strstr(info->exe, " (deleted)");
        if (del && del[10] == '\0')
            *del = '\0';
    } else {
        info->exe[0] = '\0';
    }
    return 0;
}

size_t
procscan_each(const char *proc_root, int (*fn)(void *arg, uint32_t pid),
              void *arg)
{
    size_t visited = 0;
    DIR *dir = opendir(proc_root);
    if (!dir)
        return 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        char *end;
        unsigned long pid = strtoul(de->d_name, &end, 10);
        if (*end || pid == 0 || pid > UINT32_MAX)
            continue;
        visited++;
        if (fn(arg, (uint32_t)pid))
            break;
    }
    closedir(dir);
    return visited;
}
