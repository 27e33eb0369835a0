/* The policy stage's HTTP monitors, through the broker: a process whose
 * service has an HTTP_ERROR_RATE policy gets a NETWORK capture task of the
 * policy engine's own in ctl.tasks before anything fired; net.report's
 * per-URI figures for it become rover_con_p_http_error_rate meters
 * (metric.continuous, uri label) and, past the threshold, a trigger.report
 * for a NETWORK task whose cause names the URI; a malformed net.report is
 * survived; the capture task goes when the process does. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "bus.h"
#include "log.h"
#include "monitors.h"
#include "stats.h"
#include "harness.h"
#include "testutil.h"
#include "wire.h"

typedef struct {
    bus_t *bus;
    arena_t *arena;
    uint32_t pid;
    int capture_seen;          /* ctl.tasks: the capture task names pid */
    int capture_gone;          /* ...a later set without it */
    int meter_seen;            /* metric.continuous: error rate of /err */
    double meter_value;
    int trigger_seen;          /* trigger.report NETWORK, cause /err */
    char cause_path[64];
    uint8_t trigger_target;
} rx_t;

static void
s_on_tasks(rx_t *rx, const wire_task_set_t *set)
{
    int has = 0;
    for (uint32_t i = 0; i < set->ntasks; i++) {
        const wire_task_t *t = &set->tasks[i];
        if (strcmp(t->task_id, "policy-http-capture"))
            continue;
        ck_assert_uint_eq(t->target, WIRE_TARGET_NETWORK);
        ck_assert_uint_eq(t->source, WIRE_SRC_POLICY);
        ck_assert_str_eq(t->extension_json, "");
        for (uint32_t p = 0; p < t->npids; p++) {
            has |= t->pids[p] == rx->pid;
        }
    }
    if (has)
        rx->capture_seen = 1;
    else if (rx->capture_seen)
        rx->capture_gone = 1;
}

static void
s_drain(rx_t *rx)
{
    const char *topic;
    const void *data;
    size_t len;
    char err[128];
    while (bus_recv(rx->bus, &topic, &data, &len) == 1) {
        arena_reset(rx->arena);
        if (!strcmp(topic, TOPIC_CTL_TASKS)) {
            wire_task_set_t set;
            if (!wire_decode_task_set(data, len, rx->arena, &set, err,
                                      sizeof err))
                s_on_tasks(rx, &set);

        } else if (!strcmp(topic, TOPIC_METERS)) {
            wire_meters_t m;
            if (wire_decode_meters(data, len, rx->arena, &m, err, sizeof err))
                continue;
            for (uint32_t i = 0; i < m.nmeters; i++)
                if (m.meters[i].pid == rx->pid &&
                    !strcmp(m.meters[i].name, "rover_con_p_http_error_rate") &&
                    !strcmp(m.meters[i].uri, "/err")) {
                    rx->meter_seen = 1;
                    rx->meter_value = m.meters[i].value;
                }
        } else if (!strcmp(topic, TOPIC_TRIGGER)) {
            wire_trigger_t t;
            if (wire_decode_trigger(data, len, rx->arena, &t, err,
                                    sizeof err) || t.pid != rx->pid)
                continue;
            rx->trigger_seen = 1;
            rx->trigger_target = t.target;
            for (uint32_t c = 0; c < t.ncauses; c++)
                if (t.causes[c].type == MONITOR_HTTP_ERROR_RATE)
                    snprintf(rx->cause_path, sizeof rx->cause_path, "%s",
                             t.causes[c].uri_path);
        }
    }
}

static int
s_capture_seen(void *arg)
{
    rx_t *rx = arg;
    s_drain(rx);
    return rx->capture_seen;
}

static int
s_capture_gone(void *arg)
{
    rx_t *rx = arg;
    s_drain(rx);
    return rx->capture_gone;
}

/* One net.report as the network room sends it: /err half failing. */
static void
s_publish_report(bus_t *bus, uint32_t pid)
{
    wire_net_http_t rows[] = {
        { pid, "/err", 10, 5, 200 },
        { pid, "/ok", 10, 0, 100 },
        { pid + 1000000u, "/err", 10, 10, 0 },   /* another process */
    };
    wire_net_report_t r = { .ts_ms = now_wall_ms(), .nhttp = 3,
                            .http = rows };
    bus_send(bus, MSG_NET_REPORT, &r);
}

static int
s_fired(void *arg)
{
    rx_t *rx = arg;
    s_drain(rx);
    return rx->meter_seen && rx->trigger_seen;
}

START_TEST(http_policy_captures_measures_and_fires)
{
    const char *policy_bin = tu_build_path("bin/skyprof-policy");
    char broker_bin[512];
    snprintf(broker_bin, sizeof broker_bin, "%s",
             tu_build_path("bin/skyprof-broker"));
    struct stat st;
    if (stat(policy_bin, &st) || stat(broker_bin, &st)) {
        tu_skip("test_policy_http", "policy or broker not built");
        return;
    }
    char policy[512];
    snprintf(policy, sizeof policy, "%s", policy_bin);
    char *dir = tu_mkdtemp();
    ck_assert_ptr_nonnull(dir);
    /* By its real path, so its name (comm, the service a process without
     * an uplink entity has) is this binary's, as the test's own. */
    char self_exe[512];
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    ck_assert_int_gt(n, 0);
    self_exe[n] = '\0';
    char *wargv[] = { self_exe, "--idle", NULL };
    pid_t wl = tu_spawn(wargv, NULL);
    ck_assert_int_gt(wl, 0);
    char path[64], comm[64] = "";
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)wl);
    for (int i = 0; i < 200; i++) {
        size_t len = 0;
        char *text = tu_read_file(path, &len);
        int ready = text && memmem(text, len, "--idle", 6) != NULL;
        free(text);
        if (ready)
            break;
        usleep(20000);
    }
    snprintf(path, sizeof path, "/proc/%d/comm", (int)wl);
    char *text = tu_read_file(path, NULL);
    snprintf(comm, sizeof comm, "%s", text ? text : "");
    free(text);
    comm[strcspn(comm, "\n")] = '\0';
    ck_assert_msg(strstr(comm, "test_policy") == comm, "comm '%s'", comm);

    char cfg[600], log[600], in[600], out[600];
    int port = th_free_port();
    snprintf(cfg, sizeof cfg, "%s/skyprof.yaml", dir);
    snprintf(log, sizeof log, "%s/stages.log", dir);
    snprintf(in, sizeof in, "ipc://%s/bus-in", dir);
    snprintf(out, sizeof out, "ipc://%s/bus-out", dir);
    FILE *f = fopen(cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "runtime_dir: %s\n"
            "core:\n  backend:\n    addr: 127.0.0.1:9\n"
            "profiling:\n  continuous:\n    fetch_interval: 200ms\n"
            "    check_interval: 500ms\n"
            "policy:\n  republish_interval: 300ms\n"
            "  http_addr: 127.0.0.1:%d\n"
            "  continuous_policies: '[{\"ServiceName\":\"%s\",\"UUID\":\"u\","
            "\"Profiling\":{\"NETWORK\":{\"HTTP_ERROR_RATE\":{\"Threshold\":"
            "\"10\",\"Period\":5,\"Count\":2,\"URIList\":[\"/err\"]}}}}]'\n",
            dir, port, comm);
    fclose(f);
    char *bargv[] = { broker_bin, "--config", cfg, NULL };
    char *pargv[] = { policy, "--config", cfg, NULL };
    pid_t broker = tu_spawn(bargv, log);
    pid_t stage = tu_spawn(pargv, log);
    ck_assert_int_gt(broker, 0);
    ck_assert_int_gt(stage, 0);

    void *ctx = zmq_ctx_new();
    stats_t *stats = stats_new("test", "t");
    bus_options_t bo = { in, out, 1000, 1000, "aggregator/test", NULL };
    rx_t rx = { 0 };
    rx.pid = (uint32_t)wl;
    rx.bus = bus_new(ctx, &bo, stats);
    rx.arena = arena_new(0);
    ck_assert_ptr_nonnull(rx.bus);
    bus_subscribe(rx.bus, TOPIC_CTL_TASKS);
    bus_subscribe(rx.bus, TOPIC_METERS);
    bus_subscribe(rx.bus, TOPIC_TRIGGER);

    /* Capture is asked for before any HTTP figure exists. */
    int ok = tu_wait_until(s_capture_seen, &rx, 15000);
    if (!ok) {
        char *logs = tu_read_file(log, NULL);
        fprintf(stderr, "--- stage logs ---\n%s\n", logs ? logs : "");
        free(logs);
    }
    ck_assert_msg(ok, "no capture task for pid %d in ctl.tasks", (int)wl);

    /* A malformed net.report first: survived. */
    bus_publish(rx.bus, TOPIC_NET_REPORT, "\xc1", 1);
    for (int i = 0; i < 40 && !s_fired(&rx); i++) {
        s_publish_report(rx.bus, rx.pid);
        tu_wait_until(s_fired, &rx, 400);
    }
    ck_assert(rx.meter_seen);
    ck_assert(rx.meter_value == 50);
    ck_assert(rx.trigger_seen);
    ck_assert_uint_eq(rx.trigger_target, WIRE_TARGET_NETWORK);
    ck_assert_str_eq(rx.cause_path, "/err");
    ck_assert_int_eq(kill(stage, 0), 0);
    /* The value is on /metrics too, per URI. */
    int status = 0;
    char *metrics = tu_http("GET", "127.0.0.1", port, "/metrics", NULL,
                            &status, NULL);
    ck_assert_ptr_nonnull(metrics);
    char label[64];
    snprintf(label, sizeof label, "pid=\"%d\",uri=\"/err\"", (int)wl);
    ck_assert_msg(th_metric_sum(metrics,
                                "skyprof_policy_rover_con_p_http_error_rate",
                                label) == 50, "%s", metrics);
    free(metrics);

    /* The process goes: so does its capture. */
    kill(wl, SIGKILL);
    waitpid(wl, NULL, 0);
    ck_assert(tu_wait_until(s_capture_gone, &rx, 15000));

    ck_assert_int_eq(tu_stop(stage, 10000), 0);
    tu_stop(broker, 5000);
    arena_destroy(&rx.arena);
    bus_destroy(&rx.bus);
    stats_destroy(&stats);
    zmq_ctx_term(ctx);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

int
main(int argc, char **argv)
{
    /* Workload mode: the process the policy watches. */
    if (argc == 2 && !strcmp(argv[1], "--idle")) {
        for (;;)
            pause();
    }
    Suite *s = suite_create("policy_http");
    TCase *tc = tcase_create("stage");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, http_policy_captures_measures_and_fires);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
