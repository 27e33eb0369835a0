/* skyprof-collector as a process on the bus (root): the real broker and
 * collector binaries run; the test plays the policy-engine (publishes
 * ctl.tasks, including a malformed one) and a downstream stage (reads
 * raw.stacks.*, proc.events and the collector's stats). */
#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "arena.h"
#include "bus.h"
#include "log.h"
#include "stats.h"
#include "testutil.h"
#include "wire.h"

typedef struct {
    uint32_t pid;
    uint64_t samples, tasked, batches;
    int saw_exec;
    double invalid_sets, batches_published;
    int bad_messages;
} seen_t;

static double s_metric(const wire_stats_t *st, const char *suffix)
{
    size_t n = strlen(suffix);
    for (uint32_t i = 0; i < st->nmetrics; i++) {
        size_t l = strlen(st->metrics[i].name);
        if (l >= n && strcmp(st->metrics[i].name + l - n, suffix) == 0)
            return st->metrics[i].value;
    }
    return -1;
}

static void s_receive(bus_t *bus, arena_t *arena, seen_t *seen)
{
    const char *topic;
    const void *data;
    size_t len;
    char err[256];

    while (bus_recv(bus, &topic, &data, &len) == 1) {
        arena_reset(arena);
        if (strncmp(topic, TOPIC_RAW_STACKS, strlen(TOPIC_RAW_STACKS)) == 0) {
            wire_raw_batch_t b;
            if (wire_decode_raw_batch(data, len, arena, &b, err,
                                      sizeof(err)) != 0) {
                seen->bad_messages++;
                continue;
            }
            seen->batches++;
            for (uint32_t i = 0; i < b.nsamples; i++) {
                const wire_raw_sample_t *s = &b.samples[i];
                if (s->pid != seen->pid)
                    continue;
                seen->samples += s->count;
                for (uint32_t t = 0; t < s->ntasks; t++)
                    if (strcmp(b.task_ids[s->tasks[t]], "bus-task") == 0)
                        seen->tasked += s->count;
            }
        } else if (strcmp(topic, TOPIC_PROC_EVENTS) == 0) {
            wire_proc_events_t ev;
            if (wire_decode_proc_events(data, len, arena, &ev, err,
                                        sizeof(err)) != 0) {
                seen->bad_messages++;
                continue;
            }
            for (uint32_t i = 0; i < ev.nevents; i++)
                if (ev.events[i].pid == seen->pid &&
                    ev.events[i].type == WIRE_PROC_EXEC &&
                    strcmp(ev.events[i].comm, "cpu_workload") == 0)
                    seen->saw_exec = 1;
        } else if (strcmp(topic, "stats.collector") == 0) {
            wire_stats_t st;
            if (wire_decode_stats(data, len, arena, &st, err,
                                  sizeof(err)) != 0) {
                seen->bad_messages++;
                continue;
            }
            seen->invalid_sets = s_metric(&st, "task_sets_invalid");
            seen->batches_published = s_metric(&st, "batches_published");
        }
    }
}

static void s_publish_tasks(bus_t *bus, uint32_t pid, uint64_t seq)
{
    uint32_t pids[1] = { pid };
    wire_task_t task = { .task_id = "bus-task", .target = WIRE_TARGET_ON_CPU,
                         .source = WIRE_SRC_LOCAL, .duration_ms = 60000,
                         .npids = 1, .pids = pids, .extension_json = "" };
    wire_task_set_t set = { .generation = 1, .ntasks = 1, .tasks = &task };
    wire_buf_t buf;

    wire_header_set(&set.hdr, "policy/test", seq);
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_task_set(&set, &buf), 0);
    bus_publish(bus, TOPIC_CTL_TASKS, buf.data, buf.len);
    wire_buf_release(&buf);
}

START_TEST(test_collector_on_the_bus)
{
    char *dir = tu_mkdtemp();
    char cfg[512], log_path[512], in[600], out[600];
    char broker[1024], collector[1024], workload[1024];

    snprintf(cfg, sizeof(cfg), "%s/sk.yaml", dir);
    snprintf(log_path, sizeof(log_path), "%s/stages.log", dir);
    FILE *f = fopen(cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "runtime_dir: %s/run\n"
            "bus:\n  stats_interval: 300ms\n"
            "profiling:\n  task:\n    on_cpu:\n      dump_period: 10ms\n"
            "collector:\n  host_wide: false\n  drain_interval: 100ms\n",
            dir);
    fclose(f);
    snprintf(broker, sizeof(broker), "%s", tu_build_path("bin/skyprof-broker"));
    snprintf(collector, sizeof(collector), "%s",
             tu_build_path("bin/skyprof-collector"));
    snprintf(workload, sizeof(workload), "%s",
             tu_build_path("tests/progs/cpu_workload"));
    char *broker_argv[] = { broker, "--config", cfg, NULL };
    char *collector_argv[] = { collector, "--config", cfg, NULL };
    char *workload_argv[] = { workload, "6", NULL };
    pid_t broker_pid = tu_spawn(broker_argv, log_path);
    usleep(200000);
    pid_t collector_pid = tu_spawn(collector_argv, log_path);
    ck_assert_int_gt(broker_pid, 0);
    ck_assert_int_gt(collector_pid, 0);

    void *ctx = zmq_ctx_new();
    stats_t *stats = stats_new("test", "t");
    snprintf(in, sizeof(in), "ipc://%s/run/bus-in", dir);
    snprintf(out, sizeof(out), "ipc://%s/run/bus-out", dir);
    bus_options_t bo = { .in_endpoint = in, .out_endpoint = out,
                         .send_hwm = 1000, .recv_hwm = 10000,
                         .sender = "policy/test" };
    bus_t *bus = bus_new(ctx, &bo, stats);
    ck_assert_ptr_nonnull(bus);
    ck_assert_int_eq(bus_subscribe(bus, TOPIC_RAW_STACKS), 0);
    ck_assert_int_eq(bus_subscribe(bus, TOPIC_PROC_EVENTS), 0);
    ck_assert_int_eq(bus_subscribe(bus, "stats.collector"), 0);
    arena_t *arena = arena_new(0);
    /* Let the collector load before the workload starts. */
    usleep(1500000);
    pid_t wl = tu_spawn(workload_argv, NULL);
    ck_assert_int_gt(wl, 0);
    seen_t seen = { .pid = (uint32_t)wl, .invalid_sets = -1 };
    uint64_t seq = 1;
    uint64_t end = tu_now_ms() + 5000;
    int sent_garbage = 0;
    while (tu_now_ms() < end) {
        /* Desired state, republished like the policy-engine does. */
        s_publish_tasks(bus, (uint32_t)wl, seq++);
        if (!sent_garbage++) {
            static const char garbage[] = "\x93\x01\xa1x";
            bus_publish(bus, TOPIC_CTL_TASKS, garbage, sizeof(garbage) - 1);
        }
        for (int i = 0; i < 5; i++) {
            zmq_pollitem_t item = { bus_sub_socket(bus), 0, ZMQ_POLLIN, 0 };
            zmq_poll(&item, 1, 60);
            s_receive(bus, arena, &seen);
        }
    }
    /* A malformed payload sent before the subscription settled may have
     * been lost; send another one now that samples flow. */
    static const char garbage2[] = "not msgpack at all";
    bus_publish(bus, TOPIC_CTL_TASKS, garbage2, sizeof(garbage2) - 1);
    end = tu_now_ms() + 1500;
    while (tu_now_ms() < end) {
        zmq_pollitem_t item = { bus_sub_socket(bus), 0, ZMQ_POLLIN, 0 };
        zmq_poll(&item, 1, 60);
        s_receive(bus, arena, &seen);
    }
    tu_stop(wl, 1000);
    int status = tu_stop(collector_pid, 5000);
    tu_stop(broker_pid, 2000);

    printf("on the bus: %" PRIu64 " batches, %" PRIu64 " samples of pid %u, "
           "%" PRIu64 " counted for bus-task; invalid task sets %.0f; "
           "collector exit status %d\n", seen.batches, seen.samples, seen.pid,
           seen.tasked, seen.invalid_sets, status);
    fflush(stdout);
    if (seen.samples == 0) {
        char *text = tu_read_file(log_path, NULL);
        fprintf(stderr, "stage log:\n%s\n", text ? text : "(none)");
        free(text);
    }
    /* host_wide is off: the workload is only sampled because the task set
     * put it in the pid map, and its samples name the task. */
    ck_assert_uint_gt(seen.samples, 50);
    ck_assert_uint_ge(seen.tasked * 10, seen.samples * 9);
    ck_assert(seen.saw_exec);
    ck_assert_int_eq(seen.bad_messages, 0);
    ck_assert_double_ge(seen.invalid_sets, 1);
    ck_assert_double_gt(seen.batches_published, 0);
    /* SIGTERM is a clean shutdown. */
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);

    arena_destroy(&arena);
    bus_destroy(&bus);
    stats_destroy(&stats);
    zmq_ctx_term(ctx);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("collector_bus");
    TCase *tc = tcase_create("bus");

    log_init("test", LOG_LVL_WARN);
    tcase_set_timeout(tc, 120);
    if (tu_require_bpf("collector_bus"))
        tcase_add_test(tc, test_collector_on_the_bus);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
