/* On-CPU profiling end to end with real BPF: the launcher starts every
 * stage, a workload of ours with known call paths and CPU shares runs, a
 * local fixed-time task is created through the HTTP API, and the flame
 * graph the API returns must show the workload's paths in their shares,
 * kernel frames under the syscall path, and a process that lived 40 ms. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "testutil.h"

static th_launch_t R;

static const char *s_yaml =
    "profiling:\n  flush_interval: 1s\n"
    "collector:\n  host_wide: true\n  host_period: 20ms\n"
    "  drain_interval: 100ms\n";

static char *s_get(const char *path, int *status)
{
    return th_api(&R, "GET", path, NULL, status);
}

/* Shares of a folded-stacks text: the sum of the counts of lines matching
 * each needle, and the total. */
typedef struct {
    double alpha, beta, kernel_under_user, total;
    int lines;
} shares_t;

static shares_t s_shares(const char *folded)
{
    shares_t s = {0};
    char *copy = strdup(folded);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        char *sp = strrchr(line, ' ');
        if (!sp)
            continue;
        double v = strtod(sp + 1, NULL);
        *sp = '\0';
        s.total += v;
        s.lines++;
        if (strstr(line, "sky_alpha_outer;sky_alpha_leaf"))
            s.alpha += v;
        if (strstr(line, "sky_beta_outer;[l] skylib_beta_leaf") ||
            strstr(line, "sky_beta_outer;skylib_beta_leaf"))
            s.beta += v;
        /* a kernel frame below user frames of the workload */
        char *k = strstr(line, "[k] ");
        char *m = strstr(line, "main;sky_run");
        if (k && m && m < k)
            s.kernel_under_user += v;
    }
    free(copy);
    return s;
}

START_TEST(workload_paths_and_shares_through_a_task)
{
    char *wl_argv[] = {(char *)tu_build_path("tests/progs/cpu_workload"), "6",
                       NULL};
    pid_t wl = tu_spawn(wl_argv, NULL);
    ck_assert_int_gt(wl, 0);
    char task_id[128], *resp;
    int status = 0;
    th_api_create_task(&R, (int)wl, "ON_CPU", 30, task_id, sizeof task_id);

    int wst;
    ck_assert_int_eq(waitpid(wl, &wst, 0), wl);
    ck_assert(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);

    /* The task's profile holds the known paths in their shares. */
    char path[256];
    snprintf(path, sizeof path, "/api/folded?task_id=%s", task_id);
    int found = 0;
    char *body = th_api_wait(&R, path, "sky_alpha_leaf", 15000, &found);
    ck_assert_msg(found, "task %s has no workload frames: %s (log %s)",
                  task_id, body ? body : "", R.log);
    free(body);
    sleep(2); /* the last flush windows */
    body = th_api_wait(&R, path, "sky_alpha_leaf", 0, &found);
    ck_assert(found);
    shares_t s = s_shares(body);
    fprintf(stderr, "task %s: %.0f samples, alpha %.2f beta %.2f kernel %.2f\n",
            task_id, s.total, s.alpha / s.total, s.beta / s.total,
            s.kernel_under_user / s.total);
    /* ~4 s of task sampling at 9 ms on a busy CPU would be ~440 samples;
     * the bound only rules out a broken sampler, not a slow machine. */
    ck_assert_double_gt(s.total, 50);
    ck_assert_double_ge(s.alpha / s.total, 0.45);
    ck_assert_double_le(s.alpha / s.total, 0.75);
    ck_assert_double_ge(s.beta / s.total, 0.18);
    ck_assert_double_le(s.beta / s.total, 0.42);
    ck_assert_double_gt(s.kernel_under_user, 0);
    free(body);

    /* The same process in the DeepFlow view, and the host-wide Total. */
    resp = th_api(&R, "POST", "/v1/profile/ProfileTracing",
                   "{\"app_service\":\"cpu_workload\",\"profile_language_type\":"
                   "\"eBPF\",\"profile_event_type\":\"on-cpu\",\"time_start\":0,"
                   "\"time_end\":4102444800}",
                   &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp, "\"OPT_STATUS\":\"SUCCESS\""));
    ck_assert_ptr_nonnull(strstr(resp, "sky_alpha_leaf"));
    ck_assert_ptr_nonnull(strstr(resp, "[l] skylib_beta_leaf"));
    free(resp);
    resp = th_api(&R, "POST", "/v1/profile/ProfileTracing",
                   "{\"app_service\":\"Total\",\"profile_event_type\":\"on-cpu\","
                   "\"time_start\":0,\"time_end\":4102444800}",
                   &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp, "\"[p] cpu_workload\""));
    ck_assert_ptr_nonnull(strstr(resp, "\"[t] cpu_workload\""));
    free(resp);
}
END_TEST

START_TEST(short_lived_process_is_symbolized)
{
    /* Host-wide sampling at 20 ms sees a 40 ms process a couple of times;
     * run it a few times so the test does not depend on luck. */
    for (int i = 0; i < 15; i++) {
        char *argv[] = {(char *)tu_build_path("tests/progs/short_lived"), NULL};
        pid_t pid = tu_spawn(argv, NULL);
        ck_assert_int_gt(pid, 0);
        int st;
        waitpid(pid, &st, 0);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    int found = 0;
    char *body = th_api_wait(&R, "/api/folded?app_service=short_lived",
                             "sky_short_lived_spin", 15000, &found);
    ck_assert_msg(found, "short_lived never symbolized: %s (log %s)",
                  body ? body : "(none)", R.log);
    /* No unresolved frame of its own executable. */
    ck_assert_ptr_null(strstr(body, "short_lived+0x"));
    free(body);
}
END_TEST

/* pid of a stage from the launcher's status file, 0 if absent. */
static pid_t s_stage_pid(const char *stage, unsigned *restarts)
{
    char path[600];
    snprintf(path, sizeof path, "%s/run/launcher.status", R.dir);
    char *text = tu_read_file(path, NULL);
    pid_t found = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line;
         line = strtok(NULL, "\n")) {
        char name[32];
        int pid;
        unsigned r;
        if (sscanf(line, "%31s %d %u", name, &pid, &r) == 3 &&
            strcmp(name, stage) == 0) {
            found = pid;
            if (restarts)
                *restarts = r;
        }
    }
    free(text);
    return found;
}

static double s_task_samples(const char *task_id)
{
    char path[256];
    snprintf(path, sizeof path, "/api/folded?task_id=%s", task_id);
    int status = 0;
    char *b = s_get(path, &status);
    double total = b ? s_shares(b).total : 0;
    free(b);
    return total;
}

/* The task's samples exceed want: polled with a deadline where a fixed
 * sleep was, so a count reached early ends the wait early and the bound
 * is the same. */
typedef struct {
    const char *task_id;
    double want, got;
} s_samples_t;

static int s_samples_over(void *arg)
{
    s_samples_t *w = arg;
    w->got = s_task_samples(w->task_id);
    return w->got > w->want;
}

START_TEST(collector_killed_mid_task_converges)
{
    char *wl_argv[] = {(char *)tu_build_path("tests/progs/cpu_workload"), "16",
                       NULL};
    pid_t wl = tu_spawn(wl_argv, NULL);
    char task_id[128];
    th_api_create_task(&R, (int)wl, "ON_CPU", 60, task_id, sizeof task_id);
    /* The task is sampled: its first samples reached the aggregator. */
    s_samples_t w = {task_id, 0, 0};
    tu_wait_until(s_samples_over, &w, 4000);
    double before = w.got;
    ck_assert_double_gt(before, 0);

    /* Kill the collector outright; the launcher restarts it, and the new
     * one must pick the task up again from the republished desired set. */
    unsigned restarts = 0;
    pid_t col = s_stage_pid("collector", &restarts);
    ck_assert_int_gt(col, 0);
    ck_assert_int_eq(kill(col, SIGKILL), 0);
    pid_t col2 = 0;
    for (int i = 0; i < 100 && (col2 == 0 || col2 == col); i++) {
        usleep(100000);
        col2 = s_stage_pid("collector", &restarts);
    }
    ck_assert_msg(col2 > 0 && col2 != col, "collector not restarted; %s", R.log);
    w.want = before + 100;
    tu_wait_until(s_samples_over, &w, 6000);
    double after = w.got;
    fprintf(stderr, "task samples: %.0f before the kill, %.0f after\n", before,
            after);
    /* At 9 ms a busy process gives ~100 samples/s: the task kept being
     * sampled at its rate, not just host-wide, after the restart. */
    ck_assert_double_gt(after, before + 100);
    kill(wl, SIGTERM);
    waitpid(wl, NULL, 0);
}
END_TEST

/* One pipeline for the three cases (each asks about its own task or
 * process, so they do not see each other's data), started and stopped in
 * the test runner's process: a start, the collector's load and a stop per
 * case took ~4 s each. The collector-killing case comes last. */
static void s_pipeline_up(void)
{
    th_launch_start(&R, s_yaml, NULL);
    th_wait_collector(R.log, 1, 20000);
}

static void s_pipeline_down(void)
{
    th_launch_stop(&R);
}

int main(void)
{
    Suite *s = suite_create("oncpu");
    TCase *tc = tcase_create("bpf");
    tcase_set_timeout(tc, 180);
    if (tu_require_bpf("oncpu end to end")) {
        tcase_add_unchecked_fixture(tc, s_pipeline_up, s_pipeline_down);
        tcase_add_test(tc, workload_paths_and_shares_through_a_task);
        tcase_add_test(tc, short_lived_process_is_symbolized);
        tcase_add_test(tc, collector_killed_mid_task_converges);
    }
    suite_add_tcase(s, tc);
    return tu_run(s);
}
