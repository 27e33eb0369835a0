/* Small readers of /proc/PID files. Every function tolerates a process
 * that vanishes while it is being read: it then fails or returns an empty
 * value, never blocks and never allocates beyond a fixed bound. */
#ifndef SKYPROF_COLLECTOR_PROCINFO_H
#define SKYPROF_COLLECTOR_PROCINFO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROCINFO_CMDLINE_MAX 4096
#define PROCINFO_CONTAINER_ID_MAX 72

/* Reads /proc/<pid>/<name> (up to size-1 bytes, NUL terminated).
 * Returns the byte count or -1. */
ssize_t procinfo_read(uint32_t pid, const char *name, char *buf,
                      size_t size);

/* comm without the trailing newline; "" when gone. */
int procinfo_comm(uint32_t pid, char *out, size_t size);
/* Arguments joined by spaces, truncated to size-1. */
int procinfo_cmdline(uint32_t pid, char *out, size_t size);
/* readlink of /proc/<pid>/exe (" (deleted)" kept), "" when unknown. */
int procinfo_exe(uint32_t pid, char *out, size_t size);

/* Start time in clock ticks since boot (field 22 of stat) and the parent
 * pid. The pair (pid, start) names a process across pid reuse. */
int procinfo_stat(uint32_t pid, uint64_t *start_ticks, uint32_t *ppid);

/* The innermost namespace pid from the NSpid line of status (the pid itself
 * on the host), and the thread group id (Tgid). */
int procinfo_status(uint32_t pid, uint32_t *nspid, uint32_t *tgid);

/* The container id found in /proc/<pid>/cgroup (docker, containerd, CRI-O,
 * podman/libpod: lib/cgroup_id.h), "" when none. */
int procinfo_container_id(uint32_t pid, char *out, size_t size);

#endif
