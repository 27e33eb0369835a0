/* Continuous profiling end to end, local mode, real BPF: a CPU burner of
 * ours crosses a PROCESS_CPU policy and an on-CPU task for it starts within
 * Period + check interval, its profile holds the burner's function, the
 * silence keeps it to one trigger, and a sleeping process under a policy of
 * its own never fires. The meters reach /metrics. An HTTP_AVG_RESPONSE_TIME
 * policy on our HTTP server (tests/progs/httpload) has its traffic
 * captured before anything fired, and its slow endpoint starts a NETWORK
 * task. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "testutil.h"

static th_launch_t L;

static char *s_get(const char *path)
{
    int status = 0;
    char *b = th_api(&L, "GET", path, NULL, &status);
    if (b && status != 200) {
        free(b);
        return NULL;
    }
    return b;
}

typedef struct {
    char needle[64];
} task_probe_t;

static int s_task_listed(void *arg)
{
    task_probe_t *p = arg;
    char *b = s_get("/api/tasks");
    int found = b && strstr(b, p->needle);
    free(b);
    return found;
}

static int s_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)); p++)
        n++;
    return n;
}

START_TEST(cpu_policy_triggers_one_task_with_the_burner)
{
    th_launch_start(&L,
        "bus:\n  stats_interval: 500ms\n"
        "profiling:\n  flush_interval: 1s\n"
        "  continuous:\n    fetch_interval: 1s\n    check_interval: 1s\n"
        "    trigger:\n      execute_duration: 6s\n      silence_duration: 10m\n"
        "policy:\n  continuous_policies: '["
        "{\"ServiceName\":\"cpu_workload\",\"UUID\":\"u1\",\"Profiling\":"
        "{\"ON_CPU\":{\"PROCESS_CPU\":{\"Threshold\":\"20\",\"Period\":3,\"Count\":2}}}},"
        "{\"ServiceName\":\"sleep\",\"UUID\":\"u2\",\"Profiling\":"
        "{\"ON_CPU\":{\"PROCESS_CPU\":{\"Threshold\":\"20\",\"Period\":3,\"Count\":2}}}}]'\n",
        NULL);
    th_wait_collector(L.log, 1, 20000);

    char *sl_argv[] = {"/bin/sleep", "14", NULL};
    pid_t sleeper = tu_spawn(sl_argv, NULL);
    char *wl_argv[] = {(char *)tu_build_path("tests/progs/cpu_workload"), "14",
                       NULL};
    pid_t wl = tu_spawn(wl_argv, NULL);
    ck_assert_int_gt(wl, 0);
    uint64_t started = tu_now_ms();

    /* Period 3 s, Count 2, check every 1 s, CPU needs two readings:
     * within ~6 s, with margin for a loaded machine. */
    task_probe_t probe;
    snprintf(probe.needle, sizeof probe.needle, "continuous-%d-0-", (int)wl);
    ck_assert_msg(tu_wait_until(s_task_listed, &probe, 12000),
                  "no continuous task for the burner; see %s", L.log);
    fprintf(stderr, "continuous task after %llu ms\n",
            (unsigned long long)(tu_now_ms() - started));

    /* Its profile holds the burner's function. */
    char *tasks = s_get("/api/tasks");
    ck_assert_ptr_nonnull(tasks);
    char *id = strstr(tasks, probe.needle);
    ck_assert_ptr_nonnull(id);
    char task_id[96];
    sscanf(id, "%95[^\"]", task_id);
    free(tasks);
    char path[256];
    snprintf(path, sizeof path, "/api/folded?task_id=%s", task_id);
    char *folded = NULL;
    for (int i = 0; i < 40 && !(folded && strstr(folded, "sky_alpha_leaf")); i++) {
        free(folded);
        usleep(250000);
        folded = s_get(path);
    }
    ck_assert_msg(folded && strstr(folded, "sky_alpha_leaf"),
                  "task %s has no burner frames: %s", task_id,
                  folded ? folded : "(none)");
    free(folded);

    /* The meters are on /metrics, the burner's above the threshold. */
    char *metrics = s_get("/metrics");
    ck_assert_ptr_nonnull(metrics);
    char label[64];
    snprintf(label, sizeof label, "pid=\"%d\"", (int)wl);
    double cpu = th_metric_sum(metrics, "skyprof_policy_rover_con_p_process_cpu",
                               label);
    ck_assert_double_gt(cpu, 20);
    ck_assert_ptr_nonnull(strstr(metrics, "skyprof_policy_rover_con_p_process_thread_count{"));
    ck_assert_ptr_nonnull(strstr(metrics, "skyprof_policy_rover_con_p_system_load{"));
    free(metrics);

    int st;
    waitpid(wl, &st, 0);
    waitpid(sleeper, &st, 0);
    /* Silence: one trigger for the burner over its whole run; the sleeper,
     * under its own policy, never. */
    tasks = s_get("/api/tasks");
    ck_assert_ptr_nonnull(tasks);
    ck_assert_int_le(s_count(tasks, probe.needle), 1);
    char sleeper_needle[64];
    snprintf(sleeper_needle, sizeof sleeper_needle, "continuous-%d-", (int)sleeper);
    ck_assert_ptr_null(strstr(tasks, sleeper_needle));
    free(tasks);
    char *log = tu_read_file(L.log, NULL);
    ck_assert_ptr_nonnull(log);
    char logneedle[64];
    snprintf(logneedle, sizeof logneedle, "pid %d (PROCESS_CPU", (int)wl);
    ck_assert_int_eq(s_count(log, logneedle), 1);
    free(log);

    th_launch_stop(&L);
}
END_TEST

static int s_file_has(void *arg)
{
    const char *const *pf = arg;
    char *text = tu_read_file(pf[0], NULL);
    int found = text && strstr(text, pf[1]);
    free(text);
    return found;
}

START_TEST(http_policy_starts_a_network_task)
{
    th_launch_start(&L,
        "profiling:\n  flush_interval: 1s\n"
        "  task:\n    network:\n      report_interval: 1s\n"
        "  continuous:\n    fetch_interval: 1s\n    check_interval: 1s\n"
        "    trigger:\n      execute_duration: 30s\n      silence_duration: 10m\n"
        "policy:\n  continuous_policies: '["
        "{\"ServiceName\":\"httpload\",\"UUID\":\"h1\",\"Profiling\":"
        "{\"NETWORK\":{\"HTTP_AVG_RESPONSE_TIME\":{\"Threshold\":\"200\","
        "\"Period\":4,\"Count\":2,\"URIRegex\":\"^/slow\"}}}}]'\n",
        NULL);
    char slog[700];
    snprintf(slog, sizeof slog, "%s/server.log", L.dir);
    char *srv_argv[] = {(char *)tu_build_path("tests/progs/httpload"),
                        "server", "0", NULL};
    pid_t srv = tu_spawn(srv_argv, slog);
    ck_assert_int_gt(srv, 0);
    const char *pf[] = {slog, "port "};
    ck_assert(tu_wait_until(s_file_has, pf, 10000));
    char *text = tu_read_file(slog, NULL);
    char port[16];
    snprintf(port, sizeof port, "%d", atoi(strstr(text, "port ") + 5));
    free(text);

    /* Slow requests (300 ms) until the policy fires. */
    task_probe_t probe;
    snprintf(probe.needle, sizeof probe.needle, "continuous-%d-2-", (int)srv);
    char *cl_argv[] = {(char *)tu_build_path("tests/progs/httpload"),
                       "client", port, "--rounds", "3", "/slow?ms=300",
                       "/ok", NULL};
    int fired = 0;
    for (int i = 0; i < 40 && !fired; i++) {
        pid_t cl = tu_spawn(cl_argv, NULL);
        int st;
        waitpid(cl, &st, 0);
        fired = s_task_listed(&probe);
    }
    ck_assert_msg(fired, "no NETWORK task for the server; see %s", L.log);

    /* The monitor's value, for the regex's URIs only (the fast /ok
     * requests are not in it). */
    char *metrics = s_get("/metrics");
    ck_assert_ptr_nonnull(metrics);
    char label[96];
    snprintf(label, sizeof label, "pid=\"%d\",uri=\"^/slow\"", (int)srv);
    double avg = th_metric_sum(
        metrics, "skyprof_policy_rover_con_p_http_avg_response_time", label);
    ck_assert_msg(avg >= 290 && avg < 1000, "avg %.1f ms", avg);
    free(metrics);
    /* The capture task of the policy engine was there first. */
    char *tasks = s_get("/api/tasks");
    ck_assert_ptr_nonnull(tasks);
    ck_assert_ptr_nonnull(strstr(tasks, "policy-http-capture"));
    free(tasks);
    kill(srv, SIGTERM);
    waitpid(srv, NULL, 0);
    th_launch_stop(&L);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("continuous_e2e");
    TCase *tc = tcase_create("bpf");
    tcase_set_timeout(tc, 180);
    if (tu_require_bpf("continuous end to end"))
    {
        tcase_add_test(tc, cpu_policy_triggers_one_task_with_the_burner);
        tcase_add_test(tc, http_policy_starts_a_network_task);
    }
    suite_add_tcase(s, tc);
    return tu_run(s);
}
