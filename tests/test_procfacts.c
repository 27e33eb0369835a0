/* lib/procfacts: the facts of this very process from /proc, a pid that
 * has exited, and a fake proc root with awkward contents (comm holding
 * ") (", truncated stat, NUL-separated and oversized command lines). */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procfacts.h"
#include "testutil.h"

static uint32_t s_me(void)
{
    return (uint32_t)getpid();
}

START_TEST(test_self)
{
    char buf[PROCFACTS_EXE_MAX], self_exe[PATH_MAX];
    ck_assert_int_eq(procfacts_comm(NULL, s_me(), buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "test_procfacts");
    ck_assert_int_eq(procfacts_cmdline("/proc", s_me(), buf, sizeof buf), 0);
    ck_assert_ptr_nonnull(strstr(buf, "test_procfacts"));
    ck_assert_int_eq(procfacts_exe(NULL, s_me(), buf, sizeof buf), 0);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    ck_assert_int_gt(n, 0);
    self_exe[n] = '\0';
    ck_assert_str_eq(buf, self_exe);

    procfacts_stat_t st;
    ck_assert_int_eq(procfacts_stat(NULL, s_me(), &st), 0);
    ck_assert_uint_eq(st.ppid, (uint32_t)getppid());
    ck_assert_int_eq(st.state, 'R');
    ck_assert_int_ge(st.num_threads, 1);
    ck_assert_uint_gt(st.start_ticks, 0);

    uint32_t nspid = 0, tgid = 0;
    ck_assert_int_eq(procfacts_status(NULL, s_me(), &nspid, &tgid), 0);
    ck_assert_uint_eq(tgid, s_me());
    ck_assert_uint_gt(nspid, 0);
    ck_assert_int_eq(procfacts_status(NULL, s_me(), NULL, NULL), 0);

    char id[128];
    ck_assert_int_eq(procfacts_container_id(NULL, s_me(), id, sizeof id), 0);

    ck_assert_int_eq(procfacts_alive(NULL, s_me()), 1);
    ck_assert_int_eq(procfacts_alive(NULL, 0), 0);

    double load = -1;
    ck_assert_int_eq(procfacts_loadavg(NULL, &load), 0);
    ck_assert(load >= 0);

    /* a read bounded by the caller's buffer */
    char small[4];
    ck_assert_int_eq(procfacts_read(NULL, s_me(), "comm", small, sizeof small),
                     3);
    ck_assert_str_eq(small, "tes");
    ck_assert_int_eq(procfacts_cmdline(NULL, s_me(), small, sizeof small), 0);
    ck_assert_uint_eq(strlen(small), 3);
}
END_TEST

static int s_find(void *arg, uint32_t pid)
{
    uint32_t *want = arg;
    if (pid == want[0])
        want[1] = 1;
    return 0;
}

static int s_stop_at_first(void *arg, uint32_t pid)
{
    (*(size_t *)arg)++;
    return 1;
}

START_TEST(test_each_pid)
{
    uint32_t want[2] = { s_me(), 0 };
    size_t n = procfacts_each_pid(NULL, s_find, want);
    ck_assert_uint_gt(n, 1);
    ck_assert_uint_eq(want[1], 1);
    size_t calls = 0;
    ck_assert_uint_eq(procfacts_each_pid(NULL, s_stop_at_first, &calls), 1);
    ck_assert_uint_eq(calls, 1);
    ck_assert_uint_eq(procfacts_each_pid("/nonexistent", s_find, want), 0);
}
END_TEST

START_TEST(test_vanished)
{
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    uint32_t pid = (uint32_t)child;
    char buf[64] = "x";
    procfacts_stat_t st = { .ppid = 9 };
    uint32_t nspid = 9, tgid = 9;
    ck_assert_int_eq(procfacts_read(NULL, pid, "comm", buf, sizeof buf), -1);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(procfacts_comm(NULL, pid, buf, sizeof buf), -1);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(procfacts_cmdline(NULL, pid, buf, sizeof buf), -1);
    ck_assert_int_eq(procfacts_exe(NULL, pid, buf, sizeof buf), -1);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(procfacts_stat(NULL, pid, &st), -1);
    ck_assert_uint_eq(st.ppid, 0);
    ck_assert_int_eq(procfacts_status(NULL, pid, &nspid, &tgid), -1);
    ck_assert_uint_eq(nspid, 0);
    ck_assert_uint_eq(tgid, 0);
    ck_assert_int_eq(procfacts_container_id(NULL, pid, buf, sizeof buf), -1);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(procfacts_alive(NULL, pid), 0);
    /* a pid that never existed, and a zero-sized buffer */
    ck_assert_int_eq(procfacts_read(NULL, 0x7ffffff0u, "stat", buf, 0), -1);
}
END_TEST

static char *s_root;

static void s_put(const char *rel, const char *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", s_root, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0755);
    *slash = '/';
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void s_setup(void)
{
    s_root = tu_mkdtemp();
}

static void s_teardown(void)
{
    tu_rmtree(s_root);
    free(s_root);
}

START_TEST(test_fake_root)
{
    /* comm with ") (" and spaces: fields count after the last ')' */
    const char *stat = "42 (evil) (x y) S 7 42 42 0 -1 4194560 100 0 0 0 "
                       "123 45 0 0 20 -5 3 0 987654 1000 200 "
                       "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1\n";
    s_put("42/stat", stat, strlen(stat));
    s_put("42/comm", "evil) (x y\n", 11);
    s_put("42/cmdline", "/bin/app\0--flag\0two words\0", 26);
    s_put("42/status", "Name:\tapp\nTgid:\t42\nNSpid:\t42\t7\t3\n", 32);
    s_put("loadavg", "2.50 1.00 0.50 3/900 1234\n", 26);
    s_put("43/stat", "43 (cut) S 1 2 3\n", 17);   /* truncated */
    s_put("43/cmdline", "", 0);                   /* kernel thread */
    s_put("44/stat", "44 no parenthesis S 1\n", 22);
    s_put("self/comm", "x\n", 2);                 /* not a pid */
    s_put("0123/comm", "x\n", 2);                 /* not a pid either */

    procfacts_stat_t st;
    ck_assert_int_eq(procfacts_stat(s_root, 42, &st), 0);
    ck_assert_int_eq(st.state, 'S');
    ck_assert_uint_eq(st.ppid, 7);
    ck_assert_uint_eq(st.utime, 123);
    ck_assert_uint_eq(st.stime, 45);
    ck_assert_int_eq(st.num_threads, 3);
    ck_assert_uint_eq(st.start_ticks, 987654);
    ck_assert_int_eq(procfacts_stat(s_root, 43, &st), -1);
    ck_assert_int_eq(procfacts_stat(s_root, 44, &st), -1);

    char buf[64];
    ck_assert_int_eq(procfacts_comm(s_root, 42, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "evil) (x y");
    ck_assert_int_eq(procfacts_cmdline(s_root, 42, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "/bin/app --flag two words");
    ck_assert_int_eq(procfacts_cmdline(s_root, 43, buf, sizeof buf), -1);
    uint32_t nspid, tgid;
    ck_assert_int_eq(procfacts_status(s_root, 42, &nspid, &tgid), 0);
    ck_assert_uint_eq(nspid, 3);
    ck_assert_uint_eq(tgid, 42);
    double load;
    ck_assert_int_eq(procfacts_loadavg(s_root, &load), 0);
    ck_assert(load == 2.5);

    uint32_t want[2] = { 42, 0 };
    ck_assert_uint_eq(procfacts_each_pid(s_root, s_find, want), 3);
    ck_assert_uint_eq(want[1], 1);

    /* a root too long for any path fails cleanly */
    char longroot[600];
    memset(longroot, 'r', sizeof longroot - 1);
    longroot[sizeof longroot - 1] = '\0';
    ck_assert_int_eq(procfacts_comm(longroot, 1, buf, sizeof buf), -1);
    ck_assert_int_eq(procfacts_exe(longroot, 1, buf, sizeof buf), -1);
}
END_TEST

START_TEST(test_exe_undelete)
{
    char exe[64] = "/usr/bin/app (deleted)";
    ck_assert_int_eq(procfacts_exe_undelete(exe), 1);
    ck_assert_str_eq(exe, "/usr/bin/app");
    ck_assert_int_eq(procfacts_exe_undelete(exe), 0);
    ck_assert_str_eq(exe, "/usr/bin/app");
    char mid[64] = "/x (deleted)/y";
    ck_assert_int_eq(procfacts_exe_undelete(mid), 0);
    char only[64] = " (deleted)";
    ck_assert_int_eq(procfacts_exe_undelete(only), 1);
    ck_assert_str_eq(only, "");
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("procfacts");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_self);
    tcase_add_test(tc, test_each_pid);
    tcase_add_test(tc, test_vanished);
    tcase_add_test(tc, test_exe_undelete);
    suite_add_tcase(s, tc);
    TCase *fake = tcase_create("fake_root");
    tcase_add_checked_fixture(fake, s_setup, s_teardown);
    tcase_add_test(fake, test_fake_root);
    suite_add_tcase(s, fake);
    return tu_run(s);
}
