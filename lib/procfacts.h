/* Facts about a process from /proc/PID: comm, command line, executable,
 * stat fields, status ids, container, and the pids there are; plus the
 * system load. One reader for every stage that reads /proc: the
 * collector (process table, proc.events, from which the uplink learns its
 * processes) and the policy engine (continuous-profiling monitors).
 *
 * root is the proc mount to read ("/proc" when NULL; tests and a host
 * /proc mounted elsewhere pass another). Every read is bounded by the
 * caller's buffer and never blocks on anything but procfs; a process that
 * vanishes while it is read (normal: processes exit) gives -1 or an empty
 * value, never a crash or a partial struct. */
#ifndef SKYPROF_PROCFACTS_H
#define SKYPROF_PROCFACTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest command line kept (longer ones are cut, as ps does). */
#define PROCFACTS_CMDLINE_MAX 4096
/* A readlink of /proc/PID/exe. */
#define PROCFACTS_EXE_MAX 4096

/* Reads root/<pid>/<name> (up to size-1 bytes, NUL terminated). Returns
 * the byte count or -1 (buf then ""). */
ssize_t procfacts_read(const char *root, uint32_t pid, const char *name,
                       char *buf, size_t size);

/* comm without its newline; -1 and "" when gone. */
int procfacts_comm(const char *root, uint32_t pid, char *out, size_t size);
/* Arguments joined by spaces, cut to size-1; -1 when gone or empty (a
 * kernel thread has no command line). */
int procfacts_cmdline(const char *root, uint32_t pid, char *out,
                      size_t size);
/* readlink of root/<pid>/exe, with the kernel's " (deleted)" suffix when
 * the file was replaced; -1 and "" when unknown (another user's process
 * without the privilege, a kernel thread, gone). */
int procfacts_exe(const char *root, uint32_t pid, char *out, size_t size);
/* Removes the " (deleted)" suffix of an exe link; 1 when it was there. */
int procfacts_exe_undelete(char *exe);

/* The fields of root/<pid>/stat skyprof uses. */
typedef struct {
    char state;                 /* R, S, D, Z, ... */
    uint32_t ppid;
    uint64_t utime, stime;      /* clock ticks */
    long num_threads;
    uint64_t start_ticks;       /* since boot: (pid, start) names a
                                   process across pid reuse */
} procfacts_stat_t;
/* 0 and *out, or -1 when gone or malformed. comm may hold spaces and
 * parentheses: fields are counted after its last ')'. */
int procfacts_stat(const char *root, uint32_t pid, procfacts_stat_t *out);

/* From root/<pid>/status: the innermost namespace pid (the last NSpid
 * value; the pid itself on the host) and the thread group id. Either
 * pointer may be NULL. -1 when gone. */
int procfacts_status(const char *root, uint32_t pid, uint32_t *nspid,
                     uint32_t *tgid);

/* The container id from root/<pid>/cgroup (lib/cgroup_id.h), "" on the
 * host; -1 when gone. */
int procfacts_container_id(const char *root, uint32_t pid, char *out,
                           size_t size);

/* 1 when root/<pid> is there (the process runs, or is a zombie not yet
 * reaped), else 0. */
int procfacts_alive(const char *root, uint32_t pid);

/* Calls fn for every pid directory of root, in readdir order; stops when
 * fn returns non-zero. Returns the number of pids visited. */
size_t procfacts_each_pid(const char *root,
                          int (*fn)(void *arg, uint32_t pid), void *arg);

/* The 1-minute load average from root/loadavg; -1 when unreadable. */
int procfacts_loadavg(const char *root, double *load1);

#endif
