/* The whole pipeline as separate processes under the local launcher:
 * a raw batch published on the bus (as the collector would) comes out of
 * the aggregator's HTTP API symbolized; then a stage is SIGKILLed, the
 * launcher restarts it, and batches flow again.
 *
 * The collector is left out (--without collector) so the test controls
 * exactly what enters the pipeline; the BPF path has its own tests. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "testutil.h"
#include "wire.h"

typedef struct {
    char *dir;
    char config[512];
    char log[512];
    int port;
    pid_t launcher;
    th_pub_t *pub;
    char in_endpoint[600];
} pipeline_t;

static pipeline_t P;

static void s_start(void)
{
    P.dir = tu_mkdtemp();
    ck_assert_ptr_nonnull(P.dir);
    P.port = th_free_port();
    snprintf(P.config, sizeof P.config, "%s/skyprof.yaml", P.dir);
    snprintf(P.log, sizeof P.log, "%s/pipeline.log", P.dir);
    FILE *f = fopen(P.config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "runtime_dir: %s/run\n"
            "log:\n  level: debug\n"
            "bus:\n  stats_interval: 500ms\n"
            "profiling:\n  flush_interval: 1s\n"
            "aggregator:\n  http_addr: 127.0.0.1:%d\n"
            "  store_path: %s/history.db\n",
            P.dir, P.port, P.dir);
    fclose(f);
    char *argv[] = {(char *)tu_build_path("bin/skyprof"), "--config", P.config,
                    "--without", "collector", "--bin-dir",
                    (char *)tu_build_path("bin"), NULL};
    P.launcher = tu_spawn(argv, P.log);
    ck_assert_int_gt(P.launcher, 0);

    snprintf(P.in_endpoint, sizeof P.in_endpoint, "ipc://%s/run/bus-in", P.dir);
    P.pub = th_pub_new(P.in_endpoint);
}

static void s_stop(void)
{
    th_pub_destroy(&P.pub);
    if (P.launcher > 0) {
        int status = tu_stop(P.launcher, 15000);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "launcher did not exit cleanly (status %d)", status);
    }
    tu_rmtree(P.dir);
    free(P.dir);
    memset(&P, 0, sizeof P);
}

static void s_publish_batch(uint32_t pid, uint64_t count)
{
    th_pub_workload_batch(P.pub, pid, count);
}

typedef struct {
    uint32_t pid;
    const char *want;
    char *body;
} folded_probe_t;

static int s_folded_has(void *arg)
{
    folded_probe_t *p = arg;
    char path[256];
    snprintf(path, sizeof path, "/api/folded?pid=%u&event=on-cpu", p->pid);
    int status = 0;
    free(p->body);
    p->body = tu_http("GET", "127.0.0.1", P.port, path, NULL, &status, NULL);
    return p->body && status == 200 && strstr(p->body, p->want) != NULL;
}

typedef struct {
    const char *stage;
    pid_t pid;
    unsigned restarts;
} status_line_t;

static int s_read_status(const char *stage, status_line_t *out)
{
    char path[600];
    snprintf(path, sizeof path, "%s/run/launcher.status", P.dir);
    char *text = tu_read_file(path, NULL);
    if (!text)
        return 0;
    int found = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char name[32];
        int pid;
        unsigned restarts;
        if (sscanf(line, "%31s %d %u", name, &pid, &restarts) == 3 &&
            strcmp(name, stage) == 0) {
            out->pid = pid;
            out->restarts = restarts;
            found = pid > 0;
        }
    }
    free(text);
    return found;
}

static int s_all_started(void *arg)
{
    static const char *stages[] = {"broker", "symbolizer", "aggregator",
                                   "policy"};
    status_line_t st;
    for (size_t i = 0; i < 4; i++)
        if (!s_read_status(stages[i], &st))
            return 0;
    return 1;
}

static int s_restarted(void *arg)
{
    status_line_t st;
    return s_read_status("symbolizer", &st) && st.restarts >= 1 &&
           kill(st.pid, 0) == 0;
}

/* Keeps publishing until the stack shows up: PUB/SUB joins take a moment
 * and early batches may go nowhere, which is how PUB/SUB behaves. */
static int s_publish_until_seen(uint32_t pid, const char *want, int timeout_ms)
{
    folded_probe_t probe = {.pid = pid, .want = want};
    uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;
    int ok = 0;
    while (!ok && tu_now_ms() < deadline) {
        s_publish_batch(pid, 3);
        ok = tu_wait_until(s_folded_has, &probe, 1500);
    }
    if (!ok)
        fprintf(stderr, "last body for pid %u: %s\n", pid,
                probe.body ? probe.body : "(no answer)");
    free(probe.body);
    return ok;
}

START_TEST(batch_flows_end_to_end_and_survives_a_sigkill)
{
    s_start();
    ck_assert_msg(tu_wait_until(s_all_started, NULL, 20000),
                  "stages did not all start; see %s", P.log);
    /* Local mode (no OAP address): the launcher leaves the uplink out. */
    status_line_t uplink;
    ck_assert_msg(!s_read_status("uplink", &uplink),
                  "the uplink runs without an OAP; see %s", P.log);

    /* 1. A batch goes collector-topic -> symbolizer -> aggregator -> API. */
    uint32_t pid1 = 3999001;
    ck_assert_msg(s_publish_until_seen(pid1,
                                       "main;sky_run;sky_alpha_outer;sky_alpha_leaf",
                                       30000),
                  "symbolized stack never reached the API; see %s", P.log);

    /* 2. SIGKILL the symbolizer: the launcher restarts it. */
    status_line_t before;
    ck_assert(s_read_status("symbolizer", &before));
    ck_assert_int_eq(kill(before.pid, SIGKILL), 0);
    ck_assert_msg(tu_wait_until(s_restarted, NULL, 15000),
                  "launcher did not restart the symbolizer; see %s", P.log);
    status_line_t after;
    ck_assert(s_read_status("symbolizer", &after));
    ck_assert_int_ne(after.pid, before.pid);

    /* 3. Messages flow again through the new symbolizer. */
    uint32_t pid2 = 3999002;
    ck_assert_msg(s_publish_until_seen(pid2, "sky_alpha_leaf", 30000),
                  "no flow after the restart; see %s", P.log);

    /* 4. Every stage's counters reach the aggregator's /metrics. */
    int status = 0;
    char *metrics = tu_http("GET", "127.0.0.1", P.port, "/metrics", NULL,
                            &status, NULL);
    ck_assert_ptr_nonnull(metrics);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(metrics, "skyprof_symbolizer_"));
    ck_assert_ptr_nonnull(strstr(metrics, "skyprof_broker_forwarded_total"));
    ck_assert_ptr_nonnull(strstr(metrics, "skyprof_policy_"));
    free(metrics);
    s_stop();
}
END_TEST

START_TEST(malformed_bus_messages_are_counted_not_fatal)
{
    s_start();
    ck_assert_msg(tu_wait_until(s_all_started, NULL, 20000),
                  "stages did not all start; see %s", P.log);
    /* Once a batch has flowed, our PUB socket knows the subscriptions (a
     * PUB drops what no subscriber asked for, so earlier junk would go
     * nowhere). */
    ck_assert_msg(s_publish_until_seen(3999004, "sky_alpha_leaf", 30000),
                  "pipeline not flowing; see %s", P.log);
    /* Garbage on every topic a stage validates. */
    static const char *topics[] = {"raw.stacks.00", "sym.stacks.00",
                                   "ctl.tasks", "task.request", "proc.events",
                                   "agg.profile", "stats.x"};
    static const unsigned char junk[][6] = {
        {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00},  /* huge array */
        {0x94, 0x02, 0xa1, 'x', 0x01, 0x01},    /* wrong version */
        {0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1},  /* never-used type */
    };
    for (int round = 0; round < 20; round++)
        for (size_t t = 0; t < sizeof topics / sizeof topics[0]; t++)
            for (size_t j = 0; j < 3; j++) {
                th_pub_send(P.pub, topics[t], junk[j], sizeof junk[j]);
            }
    /* The pipeline still works afterwards... */
    ck_assert_msg(s_publish_until_seen(3999003, "sky_alpha_leaf", 30000),
                  "pipeline broken by malformed input; see %s", P.log);
    /* ...nothing restarted... */
    static const char *stages[] = {"symbolizer", "aggregator", "policy"};
    for (size_t i = 0; i < 3; i++) {
        status_line_t st;
        ck_assert(s_read_status(stages[i], &st));
        ck_assert_msg(st.restarts == 0, "%s restarted", stages[i]);
    }
    /* ...and the drops were counted. */
    int status = 0;
    char *metrics = NULL;
    int counted = 0;
    for (int i = 0; i < 40 && !counted; i++) {
        free(metrics);
        metrics = tu_http("GET", "127.0.0.1", P.port, "/metrics", NULL, &status,
                          NULL);
        counted = metrics &&
                  th_metric_sum(metrics, "skyprof_symbolizer_bus_invalid_total", NULL) >= 3 &&
                  th_metric_sum(metrics, "skyprof_policy_bus_invalid_total", NULL) >= 6 &&
                  th_metric_sum(metrics, "skyprof_aggregator_bus_invalid_total", NULL) >= 3;
        if (!counted)
            usleep(250000);
    }
    if (!counted && metrics)
        fprintf(stderr, "symbolizer %.0f policy %.0f aggregator %.0f\n%s\n",
                th_metric_sum(metrics, "skyprof_symbolizer_bus_invalid_total", NULL),
                th_metric_sum(metrics, "skyprof_policy_bus_invalid_total", NULL),
                th_metric_sum(metrics, "skyprof_aggregator_bus_invalid_total", NULL),
                metrics);
    ck_assert_msg(counted, "invalid counters missing from /metrics");
    free(metrics);
    s_stop();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("processes");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, batch_flows_end_to_end_and_survives_a_sigkill);
    tcase_add_test(tc, malformed_bus_messages_are_counted_not_fatal);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
