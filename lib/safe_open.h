/* Opening files that other processes control (binaries, debug files and
 * perf maps inside a container's root) without being led out of that root
 * or blocked.
 *
 * A path is resolved relative to a root directory as the process itself
 * would see it: absolute symlinks and ".." stop at the root instead of
 * reaching the host's files, and magic links (/proc/PID/{root,exe,fd/N})
 * are refused, since they jump anywhere. The kernel does this with
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS); where it lacks
 * openat2 (before 5.6, or a seccomp profile refusing it) an equivalent
 * walk is used (one component at a time, O_NOFOLLOW,
 * symlinks resolved by us inside the root, at most SAFE_OPEN_MAX_LINKS).
 * Only regular files are opened, and only after their type is known, so a
 * FIFO or a device node planted where a binary is expected never blocks us
 * or sees an open().
 *
 * Refusals (as opposed to a file that is simply not there, which is
 * normal for a process that exited) are counted process-wide and logged
 * (rate limited). Thread-safe. */
#ifndef SKYPROF_SAFE_OPEN_H
#define SKYPROF_SAFE_OPEN_H

#include <stdint.h>
#include <sys/stat.h>

/* Symlinks followed in one resolution, as the kernel's own bound. */
#define SAFE_OPEN_MAX_LINKS 40

typedef struct {
    uint64_t not_regular;   /* FIFO, device, socket, directory */
    uint64_t links;         /* a magic link, or too many symlinks */
    uint64_t bad_path;      /* not absolute, or a ".." component */
    uint64_t too_large;     /* larger than the caller's bound */
} safe_open_stats_t;

/* How paths are resolved: the kernel's openat2 when it has it (default,
 * probed once), or always the user-space walk (tests use this to cover
 * kernels without openat2). */
enum safe_open_mode { SAFE_OPEN_AUTO = 0, SAFE_OPEN_WALK = 1 };
void safe_open_set_mode(enum safe_open_mode mode);

/* An O_PATH directory fd for the root of process pid (/proc/PID/root), or
 * of the host ("/") when pid is 0. -1 with errno. */
int safe_open_root(uint32_t pid);

/* Opens path (absolute, as seen from root_fd) for reading. Returns a
 * blocking O_CLOEXEC fd and fills *st (optional) from it, so st_size is the
 * real size of what was opened. Refused (-1, counted, logged): paths with
 * ".." components or not absolute (EINVAL), a magic link or more than
 * SAFE_OPEN_MAX_LINKS symlinks on the way (ELOOP), anything but a regular
 * file (EINVAL), a file larger than max_size when max_size is not 0
 * (EFBIG). Other failures (ENOENT, EACCES...) just return -1. */
int safe_open_in(int root_fd, const char *path, uint64_t max_size,
                 struct stat *st);

/* The same in the root of process pid (0: the host). */
int safe_open_pid(uint32_t pid, const char *path, uint64_t max_size,
                  struct stat *st);

/* A host path of our own choosing (a relative one from the current
 * directory), with the same rules: no magic links, regular files only. */
int safe_open_host(const char *path, uint64_t max_size, struct stat *st);

/* A /proc link the kernel resolves to one exact file (/proc/PID/exe,
 * /proc/PID/map_files/A-B): followed as is, since it names the mapped
 * inode itself whatever the container did to its paths, but still only a
 * regular file within max_size is opened. */
int safe_open_proc_link(const char *proc_path, uint64_t max_size,
                        struct stat *st);

void safe_open_get_stats(safe_open_stats_t *out);

#endif
