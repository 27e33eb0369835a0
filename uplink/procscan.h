/* Reading processes from /proc: what a finder needs to match one. */
#ifndef SKYPROF_UPLINK_PROCSCAN_H
#define SKYPROF_UPLINK_PROCSCAN_H

#include <stddef.h>
#include <stdint.h>

#include "procfacts.h"

/* Longest command line kept (longer ones are cut, as ps does). */
#define PROCSCAN_MAX_CMDLINE PROCFACTS_CMDLINE_MAX

typedef struct {
    uint32_t pid;
    char exe[PROCFACTS_EXE_MAX]; /* "" when unreadable (another user's);
                                  without " (deleted)" */
    char cmdline[PROCSCAN_MAX_CMDLINE]; /* arguments joined by spaces */
    char comm[32];
} procscan_info_t;

/* 0 and info filled, -1 when the process is gone or a kernel thread
 * (empty command line). */
int procscan_read(const char *proc_root, uint32_t pid, procscan_info_t *info);

/* Calls fn for each pid of proc_root; stops early when fn returns
 * non-zero. Returns the number of pids visited. (procfacts_each_pid under
 * the name uplink.c knows.) */
static inline size_t
procscan_each(const char *proc_root, int (*fn)(void *arg, uint32_t pid),
              void *arg)
{
    return procfacts_each_pid(proc_root, fn, arg);
}

#endif
