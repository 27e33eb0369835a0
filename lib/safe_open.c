/* Confined, type-checked opens; see safe_open.h. */
#include "safe_open.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "log.h"

/* Directories held open at once by the walk (one per path level): deeper
 * paths are refused rather than costing more descriptors. */
#define SAFE_OPEN_MAX_DEPTH 64

static _Atomic uint64_t s_not_regular;
static _Atomic uint64_t s_links;
static _Atomic uint64_t s_bad_path;
static _Atomic uint64_t s_too_large;
static _Atomic int s_mode = SAFE_OPEN_AUTO;
static _Atomic int s_openat2_state;   /* 0 unknown, 1 usable, -1 not */

void
safe_open_set_mode(enum safe_open_mode mode)
{
    atomic_store(&s_mode, (int)mode);
}

void
safe_open_get_stats(safe_open_stats_t *out)
{
    out->not_regular = atomic_load_explicit(&s_not_regular,
                                            memory_order_relaxed);
    out->links = atomic_load_explicit(&s_links, memory_order_relaxed);
    out->bad_path = atomic_load_explicit(&s_bad_path, memory_order_relaxed);
    out->too_large = atomic_load_explicit(&s_too_large, memory_order_relaxed);
}

/* Counts and logs a refusal; returns -1 with errno = err. */
static int
s_refuse(_Atomic uint64_t *counter, int err, const char *path,
         const char *why)
{
    static __thread log_ratelimit_t rl = LOG_RATELIMIT_INIT(5, 10000);
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    log_warn_rl(&rl, "refused to open %s: %s", path, why);
    errno = err;
    return -1;
}

/* Paths come from /proc/PID/maps or are built by us: always absolute and
 * canonical. A ".." in one is somebody trying to climb. */
static bool
s_path_acceptable(const char *path)
{
    if (!path || path[0] != '/' || strnlen(path, PATH_MAX) >= PATH_MAX)
        return false;
    for (const char *p = path; *p;) {
        p += strspn(p, "/");
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += len;
    }
    return true;
}

/* Whether openat2 with our resolve flags works here, probed once on a
 * path that must resolve: a kernel before 5.6 answers ENOSYS, and an older
 * container runtime's seccomp profile EPERM. Either way the walk is used. */
static bool
s_have_openat2(void)
{
    int state = atomic_load(&s_openat2_state);
    if (state == 0) {
        struct open_how how = {
            .flags = O_PATH | O_CLOEXEC,
            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        long fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));
        state = fd >= 0 ? 1 : -1;
        if (fd >= 0)
            close((int)fd);
        else
            log_info("openat2 unusable here (%s): files of other processes "
                     "are resolved by a user-space walk", strerror(errno));
        atomic_store(&s_openat2_state, state);
    }
    return state == 1;
}

/* The kernel's confined resolution to an O_PATH fd. EAGAIN means a rename
 * raced with a ".." (the kernel refuses to guess): try again a little. */
static int
s_resolve_kernel(int root_fd, const char *path)
{
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    long fd = -1;
    for (int tries = 0; tries < 3; tries++) {
        fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
        if (fd >= 0 || errno != EAGAIN)
            break;
    }
    return (int)fd;
}

/* The same resolution in user space: each component opened O_PATH |
 * O_NOFOLLOW under the directory before it; a symlink's text is spliced in
 * front of the rest of the path, an absolute one restarting at the root,
 * and ".." pops back to a directory already walked (never above the root,
 * and never through a directory renamed away meanwhile). Symlinks on
 * procfs are refused: they are (or may be) magic links. *magic is set when
 * that is why -1 is returned. */
static int
s_resolve_walk(int root_fd, const char *path, bool *magic)
{
    int dirs[SAFE_OPEN_MAX_DEPTH];
    int depth = 0, links = 0, result = -1;
    char work[2 * PATH_MAX], next[2 * PATH_MAX], target[PATH_MAX];
    char comp[NAME_MAX + 1];
    dirs[0] = openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirs[0] < 0)
        return -1;
    snprintf(work, sizeof(work), "%s", path);
    const char *p = work;
    for (;;) {
        p += strspn(p, "/");
        if (!*p) {               /* ends on a directory: caller refuses */
            result = dirs[depth];
            dirs[depth--] = -1;
            break;
        }
        size_t len = strcspn(p, "/");
        if (len > NAME_MAX) {
            errno = ENAMETOOLONG;
            break;
        }
        memcpy(comp, p, len);
        comp[len] = '\0';
        p += len;
        bool last = p[strspn(p, "/")] == '\0';
        if (strcmp(comp, ".") == 0)
            continue;
        if (strcmp(comp, "..") == 0) {
            if (depth > 0)
                close(dirs[depth--]);
            continue;
        }
        int fd = openat(dirs[depth], comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0)
            break;
        if (fstat(fd, &st) < 0) {
            close(fd);
            break;
        }
        if (S_ISLNK(st.st_mode)) {
            struct statfs sfs;
            ssize_t n = -1;
            if (++links > SAFE_OPEN_MAX_LINKS) {
                errno = ELOOP;
            } else if (fstatfs(fd, &sfs) == 0 &&
                       sfs.f_type == PROC_SUPER_MAGIC) {
                *magic = true;
                errno = ELOOP;
            } else {
                n = readlinkat(fd, "", target, sizeof(target) - 1);
                if (n == 0 || n >= (ssize_t)sizeof(target) - 1) {
                    n = -1;
                    errno = ENAMETOOLONG;
                }
            }
            close(fd);
            if (n < 0)
                break;
            target[n] = '\0';
            int m = snprintf(next, sizeof(next), "%s/%s", target, p);
            if (m < 0 || (size_t)m >= sizeof(next)) {
                errno = ENAMETOOLONG;
                break;
            }
            if (target[0] == '/')
                while (depth > 0)
                    close(dirs[depth--]);
            memcpy(work, next, (size_t)m + 1);
            p = work;
            continue;
        }
        if (last) {
            result = fd;
            break;
        }
        if (!S_ISDIR(st.st_mode) || depth + 1 >= SAFE_OPEN_MAX_DEPTH) {
            close(fd);
            errno = S_ISDIR(st.st_mode) ? ENAMETOOLONG : ENOTDIR;
            break;
        }
        dirs[++depth] = fd;
    }
    int saved = errno;
    for (int i = 0; i <= depth; i++)
        if (dirs[i] >= 0)
            close(dirs[i]);
    errno = saved;
    return result;
}

/* Checks what an O_PATH fd names, then opens exactly that inode for
 * reading through /proc/self/fd (never open()ing a FIFO or a device).
 * Consumes path_fd. */
static int
s_open_checked(int path_fd, const char *path, uint64_t max_size,
               struct stat *out)
{
    int fd = -1, saved;
    struct stat st, opened;
    char self_fd[64];
    if (fstat(path_fd, &st) < 0)
        goto cleanup;
    if (!S_ISREG(st.st_mode)) {
        s_refuse(&s_not_regular, EINVAL, path, "not a regular file");
        goto cleanup;
    }
    if (max_size && (uint64_t)st.st_size > max_size) {
        char why[96];
        snprintf(why, sizeof(why), "%lld bytes, more than the bound of %llu",
                 (long long)st.st_size, (unsigned long long)max_size);
        s_refuse(&s_too_large, EFBIG, path, why);
        goto cleanup;
    }
    snprintf(self_fd, sizeof(self_fd), "/proc/self/fd/%d", path_fd);
    fd = open(self_fd, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        goto cleanup;
    if (fstat(fd, &opened) < 0 || opened.st_ino != st.st_ino ||
        opened.st_dev != st.st_dev) {
        close(fd);
        fd = -1;
        errno = ESTALE;
        goto cleanup;
    }
    /* Regular files ignore O_NONBLOCK for reads, but callers may hand the
     * fd to code (stdio, libelf) that should see an ordinary fd. */
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    if (out)
        *out = opened;
cleanup:
    saved = errno;
    close(path_fd);
    errno = saved;
    return fd;
}

int
safe_open_root(uint32_t pid)
{
    char path[32] = "/";
    if (pid)
        snprintf(path, sizeof(path), "/proc/%u/root", pid);
    return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

int
safe_open_in(int root_fd, const char *path, uint64_t max_size,
             struct stat *st)
{
    int path_fd = -1;
    bool magic = false;
    if (!s_path_acceptable(path))
        return s_refuse(&s_bad_path, EINVAL, path ? path : "(null)",
                        "not an absolute path without \"..\"");
    if (atomic_load(&s_mode) == SAFE_OPEN_AUTO && s_have_openat2())
        path_fd = s_resolve_kernel(root_fd, path);
    else
        path_fd = s_resolve_walk(root_fd, path, &magic);
    if (path_fd < 0) {
        if (errno == ELOOP)
            return s_refuse(&s_links, ELOOP, path,
                            magic ? "a magic link on the way"
                                  : "a magic link or too many symlinks");
        if (errno == EXDEV)
            return s_refuse(&s_bad_path, EXDEV, path,
                            "resolution would leave the root");
        return -1;
    }
    return s_open_checked(path_fd, path, max_size, st);
}

int
safe_open_pid(uint32_t pid, const char *path, uint64_t max_size,
              struct stat *st)
{
    int root_fd = safe_open_root(pid);
    if (root_fd < 0)
        return -1;
    int fd = safe_open_in(root_fd, path, max_size, st);
    int saved = errno;
    close(root_fd);
    errno = saved;
    return fd;
}

int
safe_open_host(const char *path, uint64_t max_size, struct stat *st)
{
    char abs[PATH_MAX];
    if (path && path[0] != '/') {
        size_t len;
        if (!getcwd(abs, sizeof(abs)))
            return -1;
        len = strlen(abs);
        if (snprintf(abs + len, sizeof(abs) - len, "/%s", path) >=
            (int)(sizeof(abs) - len)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        path = abs;
    }
    return safe_open_pid(0, path, max_size, st);
}

int
safe_open_proc_link(const char *proc_path, uint64_t max_size,
                    struct stat *st)
{
    int path_fd = open(proc_path, O_PATH | O_CLOEXEC);
    if (path_fd < 0)
        return -1;
    return s_open_checked(path_fd, proc_path, max_size, st);
}
