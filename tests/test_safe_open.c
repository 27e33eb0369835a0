/* lib/safe_open: a temporary directory stands in for a container's root
 * (its fd is the root); what a hostile container plants there -- an
 * absolute symlink to a host file, a ".." climbing out, a FIFO, a magic
 * link, a symlink loop -- must never open a host file or block, and each
 * refusal is counted. Every test runs twice: with the kernel's openat2 and
 * with the user-space walk used where openat2 is missing. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safe_open.h"
#include "testutil.h"

static const enum safe_open_mode s_modes[] = { SAFE_OPEN_AUTO,
                                               SAFE_OPEN_WALK };

typedef struct {
    char *base;          /* temp dir holding both */
    char root[512];      /* the "container" root */
    char host[512];      /* a host file outside the root */
    int root_fd;
} fixture_t;

static void
s_link(const char *target, const char *root, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s%s", root, name);
    ck_assert_msg(symlink(target, path) == 0, "symlink %s: %s", path,
                  strerror(errno));
}

static void
s_setup(fixture_t *fx, int mode_index)
{
    safe_open_set_mode(s_modes[mode_index]);
    fx->base = tu_mkdtemp();
    snprintf(fx->root, sizeof(fx->root), "%s/root", fx->base);
    snprintf(fx->host, sizeof(fx->host), "%s/host-secret", fx->base);
    char path[PATH_MAX];
    ck_assert_int_eq(mkdir(fx->root, 0755), 0);
    snprintf(path, sizeof(path), "%s/etc", fx->root);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/etc/data", fx->root);
    tu_write_file(path, "inside");
    tu_write_file(fx->host, "host");
    fx->root_fd = open(fx->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(fx->root_fd, 0);
}

static void
s_teardown(fixture_t *fx)
{
    close(fx->root_fd);
    tu_rmtree(fx->base);
    free(fx->base);
    safe_open_set_mode(SAFE_OPEN_AUTO);
}

/* Opens path in the root and returns its content (static buffer), or NULL
 * with errno. */
static const char *
s_read_in(fixture_t *fx, const char *path, uint64_t max)
{
    static char buf[64];
    struct stat st;
    int fd = safe_open_in(fx->root_fd, path, max, &st);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    ck_assert_int_ge(n, 0);
    ck_assert_int_eq(st.st_size, n);   /* the real size comes back */
    buf[n] = '\0';
    return buf;
}

static uint64_t
s_refusals(void)
{
    safe_open_stats_t st;
    safe_open_get_stats(&st);
    return st.not_regular + st.links + st.bad_path + st.too_large;
}

START_TEST(test_plain_files_and_inner_links)
{
    fixture_t fx;
    s_setup(&fx, _i);
    const char *got = s_read_in(&fx, "/etc/data", 0);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, "inside");
    /* Links that stay inside work as the process sees them, absolute
     * ones too (they mean the container's "/"). */
    s_link("/etc/data", fx.root, "/abs");
    s_link("etc/data", fx.root, "/rel");
    s_link("/etc", fx.root, "/etcdir");
    ck_assert_str_eq(s_read_in(&fx, "/abs", 0), "inside");
    ck_assert_str_eq(s_read_in(&fx, "/rel", 0), "inside");
    ck_assert_str_eq(s_read_in(&fx, "/etcdir/data", 0), "inside");
    ck_assert_str_eq(s_read_in(&fx, "//etc/./data", 0), "inside");
    ck_assert_ptr_null(s_read_in(&fx, "/etc/missing", 0));
    ck_assert_int_eq(errno, ENOENT);
    s_teardown(&fx);
}
END_TEST

START_TEST(test_absolute_symlink_to_host_file)
{
    fixture_t fx;
    s_setup(&fx, _i);
    /* Resolved against the container's root, the host path names nothing
     * there: the host file is not reached. */
    s_link(fx.host, fx.root, "/evil");
    ck_assert_ptr_null(s_read_in(&fx, "/evil", 0));
    ck_assert_int_eq(errno, ENOENT);
    /* ...and when the container has a file at that path, that one is
     * what opens (what the process itself would see). */
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s%s' && rmdir '%s%s' && "
             "echo -n decoy > '%s%s'", fx.root, fx.host, fx.root, fx.host,
             fx.root, fx.host);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_str_eq(s_read_in(&fx, "/evil", 0), "decoy");
    s_teardown(&fx);
}
END_TEST

START_TEST(test_dotdot_escape)
{
    fixture_t fx;
    s_setup(&fx, _i);
    uint64_t before = s_refusals();
    safe_open_stats_t st0, st1;
    safe_open_get_stats(&st0);
    /* A path climbing by itself is refused outright and counted. */
    ck_assert_ptr_null(s_read_in(&fx, "/../host-secret", 0));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(s_read_in(&fx, "/etc/../../host-secret", 0));
    ck_assert_ptr_null(s_read_in(&fx, "etc/data", 0));
    safe_open_get_stats(&st1);
    ck_assert_uint_eq(st1.bad_path - st0.bad_path, 3);
    ck_assert_uint_eq(s_refusals() - before, 3);
    /* A symlink climbing out stops at the root, as ".." at "/" does. */
    s_link("../../../../../../../../host-secret", fx.root, "/climb");
    ck_assert_ptr_null(s_read_in(&fx, "/climb", 0));
    ck_assert_int_eq(errno, ENOENT);
    s_link("../../../../etc/data", fx.root, "/etc/up");
    ck_assert_str_eq(s_read_in(&fx, "/etc/up", 0), "inside");
    s_teardown(&fx);
}
END_TEST

START_TEST(test_fifo_and_other_types)
{
    fixture_t fx;
    s_setup(&fx, _i);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/fifo", fx.root);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    s_link("/fifo", fx.root, "/to-fifo");
    safe_open_stats_t st0, st1;
    safe_open_get_stats(&st0);
    /* Would block for ever in a plain open(O_RDONLY): no writer. */
    ck_assert_ptr_null(s_read_in(&fx, "/fifo", 0));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(s_read_in(&fx, "/to-fifo", 0));
    ck_assert_ptr_null(s_read_in(&fx, "/etc", 0));       /* a directory */
    ck_assert_ptr_null(s_read_in(&fx, "/", 0));
    safe_open_get_stats(&st1);
    ck_assert_uint_eq(st1.not_regular - st0.not_regular, 4);
    s_teardown(&fx);
}
END_TEST

START_TEST(test_magic_links_and_loops)
{
    fixture_t fx;
    s_setup(&fx, _i);
    safe_open_stats_t st0, st1;
    safe_open_get_stats(&st0);
    /* From the host root, /proc/self/root and /proc/self/fd/N are magic
     * links: refused, even though the files behind them are regular. */
    int host = safe_open_root(0);
    ck_assert_int_ge(host, 0);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "/proc/self/root%s", fx.host);
    ck_assert_int_eq(safe_open_in(host, path, 0, NULL), -1);
    ck_assert_int_eq(errno, ELOOP);
    int fd = open(fx.host, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ck_assert_int_eq(safe_open_in(host, path, 0, NULL), -1);
    ck_assert_int_eq(errno, ELOOP);
    close(fd);
    /* The same host file by its plain path opens fine. */
    fd = safe_open_in(host, fx.host, 0, NULL);
    ck_assert_int_ge(fd, 0);
    close(fd);
    close(host);
    /* A symlink loop inside the container. */
    s_link("/b", fx.root, "/a");
    s_link("/a", fx.root, "/b");
    ck_assert_ptr_null(s_read_in(&fx, "/a", 0));
    ck_assert_int_eq(errno, ELOOP);
    safe_open_get_stats(&st1);
    ck_assert_uint_eq(st1.links - st0.links, 3);
    s_teardown(&fx);
}
END_TEST

START_TEST(test_size_bound)
{
    fixture_t fx;
    s_setup(&fx, _i);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/sparse", fx.root);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)8 << 30), 0);   /* 8 GiB, sparse */
    close(fd);
    safe_open_stats_t st0, st1;
    safe_open_get_stats(&st0);
    ck_assert_ptr_null(s_read_in(&fx, "/sparse", 1 << 20));
    ck_assert_int_eq(errno, EFBIG);
    ck_assert_str_eq(s_read_in(&fx, "/etc/data", 6), "inside");  /* at it */
    safe_open_get_stats(&st1);
    ck_assert_uint_eq(st1.too_large - st0.too_large, 1);
    struct stat st;
    fd = safe_open_in(fx.root_fd, "/sparse", 0, &st);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(st.st_size, (off_t)8 << 30);
    close(fd);
    s_teardown(&fx);
}
END_TEST

START_TEST(test_process_root_and_proc_links)
{
    /* A real process root: /proc/self/root is the host's "/" here. */
    fixture_t fx;
    s_setup(&fx, _i);
    struct stat st;
    int fd = safe_open_pid((uint32_t)getpid(), fx.host, 0, &st);
    ck_assert_int_ge(fd, 0);
    close(fd);
    /* The kernel's own links to one file are followed, type-checked. */
    fd = safe_open_proc_link("/proc/self/exe", 0, &st);
    ck_assert_int_ge(fd, 0);
    ck_assert(S_ISREG(st.st_mode));
    close(fd);
    ck_assert_int_eq(safe_open_proc_link("/proc/self/cwd", 0, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(safe_open_pid(0x7ffffff0u, "/etc/hostname", 0, NULL),
                     -1);
    /* Our own relative host paths resolve from the current directory. */
    ck_assert_int_eq(chdir(fx.base), 0);
    fd = safe_open_host("host-secret", 0, &st);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(st.st_size, 4);
    close(fd);
    ck_assert_int_eq(safe_open_host("root/../host-secret", 0, NULL), -1);
    s_teardown(&fx);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("safe_open");
    TCase *tc = tcase_create("core");
    int n = (int)(sizeof(s_modes) / sizeof(s_modes[0]));
    tcase_add_loop_test(tc, test_plain_files_and_inner_links, 0, n);
    tcase_add_loop_test(tc, test_absolute_symlink_to_host_file, 0, n);
    tcase_add_loop_test(tc, test_dotdot_escape, 0, n);
    tcase_add_loop_test(tc, test_fifo_and_other_types, 0, n);
    tcase_add_loop_test(tc, test_magic_links_and_loops, 0, n);
    tcase_add_loop_test(tc, test_size_bound, 0, n);
    tcase_add_loop_test(tc, test_process_root_and_proc_links, 0, n);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
