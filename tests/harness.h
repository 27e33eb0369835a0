/* Pieces shared by the multi-process tests: publishing raw batches on the
 * bus as the collector would, finding a function's file offset, reading
 * Prometheus text. */
#ifndef SKYPROF_TEST_HARNESS_H
#define SKYPROF_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire.h"

/* File offset (+4, inside the function) of func in the ELF file at path;
 * 0 when not found. */
uint64_t th_func_offset(const char *path, const char *func);

/* Sum of every sample line of a metric family in exposition text. With a
 * non-NULL label, only lines whose labels contain it (e.g.
 * "instance=\"s1\""). */
double th_metric_sum(const char *text, const char *family, const char *label);

/* A loopback TCP port the kernel just handed out (and that is free again),
 * so tests running at the same time do not clash. */
int th_free_port(void);

/* One pipeline stage as a child process: build/bin/<binary> --config
 * config --instance instance, its output appended to log. Fails the test
 * when it cannot be started. */
pid_t th_stage(const char *config, const char *log, const char *binary,
               const char *instance);

/* Stops the stages in the order given (SIGTERM, 10 s) and asserts each
 * exited 0: a stage that crashes or hangs on shutdown fails the test. */
void th_stop_stages(const pid_t *pids, size_t n);

/* GET path from the API on 127.0.0.1:port: the body (malloc'ed) when the
 * answer is 200, else NULL. */
char *th_get_ok(int port, const char *path);

/* A task set as the policy engine publishes it on ctl.tasks: tasks[0..n)
 * at generation gen, the header's sender and seq set. */
wire_task_set_t th_task_set(const char *sender, uint64_t seq, uint64_t gen,
                            wire_task_t *tasks, uint32_t n);

typedef struct th_pub th_pub_t;

/* A PUB socket connected to the broker's input endpoint. */
th_pub_t *th_pub_new(const char *endpoint);
void th_pub_destroy(th_pub_t **self_p);
/* Raw bytes on a topic (for malformed-input tests). */
void th_pub_send(th_pub_t *self, const char *topic, const void *data,
                 size_t len);
/* One raw batch with a single on-CPU sample for pid: the stack
 * main <- sky_run <- sky_alpha_outer <- sky_alpha_leaf of the cpu_workload
 * test program, count samples. The process name is "pid_<pid>". */
void th_pub_workload_batch(th_pub_t *self, uint32_t pid, uint64_t count);

/* A whole pipeline under the local launcher in a private directory. */
typedef struct {
    char *dir;            /* mkdtemp'ed; removed by th_launch_stop */
    char config[600];
    char log[600];        /* every stage's output */
    int port;             /* the aggregator's API on 127.0.0.1 */
    pid_t launcher;
} th_launch_t;

/* Writes DIR/skyprof.yaml = yaml_body followed by runtime_dir and the
 * aggregator's http_addr and store_path (later keys win), starts the
 * launcher with extra_args (NULL-terminated, may be NULL) and waits for
 * the API to answer. Fails the test if it does not. */
void th_launch_start(th_launch_t *l, const char *yaml_body,
                     const char *const *extra_args);
/* Stops the launcher, asserts it exited 0, removes the directory. */
void th_launch_stop(th_launch_t *l);

/* How many collectors logged to log that they sample: their BPF programs
 * are loaded and attached (the "sampling ..." line, or "profiling.active is
 * false" when they do not sample). */
int th_collectors_ready(const char *log);
/* Waits until th_collectors_ready(log) >= n, instead of guessing how long
 * loading the programs takes (seconds on a loaded machine, sanitizers on);
 * fails the test after timeout_ms. */
void th_wait_collector(const char *log, int n, int timeout_ms);

/* HTTP to the pipeline's API; the body is malloc'ed, NULL on failure. */
char *th_api(const th_launch_t *l, const char *method, const char *path,
             const char *body, int *status);
/* GET path until the body holds needle or timeout_ms passed (windows
 * reach the API a flush or two after the samples); the last body either
 * way, malloc'ed or NULL, and in *found (may be NULL) whether it held
 * needle. */
char *th_api_wait(const th_launch_t *l, const char *path, const char *needle,
                  int timeout_ms, int *found);
/* POST /api/tasks for pid; writes the task id. */
void th_api_create_task(const th_launch_t *l, int pid, const char *target,
                        int duration_s, char *id, size_t len);

#endif
