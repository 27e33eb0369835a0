/* Reading processes from /proc: what a finder needs to match one. */
#ifndef SKYPROF_UPLINK_PROCSCAN_H
#define SKYPROF_UPLINK_PROCSCAN_H

#include <stddef.h>
#include <stdint.h>

/* Longest command line kept (longer ones are cut, as ps does). */
#define PROCSCAN_MAX_CMDLINE 4096

typedef struct {
    uint32_t pid;
    char exe[4096];            /* "" when unreadable (another user's) */
    char cmdline[PROCSCAN_MAX_CMDLINE]; /* arguments joined by spaces */
    char comm[32];
} procscan_info_t;

/* 0 and info filled, -1 when the process is gone or a kernel thread
 * (empty command line). */
int procscan_read(const char *proc_root, uint32_t pid, procscan_info_t *info);

/* Calls fn for each numeric entry of proc_root; stops early when fn
 * returns non-zero. Returns the number of pids visited. */
size_t procscan_each(const char *proc_root,
                     int (*fn)(void *arg, uint32_t pid), void *arg);

#endif
