/* Two symbolizer replicas with sharding share the pid buckets: both take
 * work, every batch is counted exactly once, and when one leaves the other
 * takes its buckets and nothing is lost or doubled. Real processes: broker,
 * two symbolizers, aggregator. */
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
    pid_t broker, sym1, sym2, agg;
    th_pub_t *pub;
} shard_run_t;

static shard_run_t S;

static char *s_metrics(void)
{
    int status = 0;
    return tu_http("GET", "127.0.0.1", S.port, "/metrics", NULL, &status, NULL);
}

static int s_split_ready(void *arg)
{
    char *m = s_metrics();
    if (!m)
        return 0;
    double a = th_metric_sum(m, "skyprof_symbolizer_shard_buckets_owned",
                             "instance=\"s1\"");
    double b = th_metric_sum(m, "skyprof_symbolizer_shard_buckets_owned",
                             "instance=\"s2\"");
    free(m);
    return a > 0 && b > 0 && a + b == WIRE_BUCKETS;
}

static int s_s1_owns_all(void *arg)
{
    char *m = s_metrics();
    if (!m)
        return 0;
    double a = th_metric_sum(m, "skyprof_symbolizer_shard_buckets_owned",
                             "instance=\"s1\"");
    free(m);
    return a == WIRE_BUCKETS;
}

/* Samples the aggregator holds for pid (from /api/processes). */
static long s_samples_of(uint32_t pid)
{
    int status = 0;
    char *body = tu_http("GET", "127.0.0.1", S.port, "/api/processes", NULL,
                         &status, NULL);
    if (!body)
        return -1;
    char needle[64];
    snprintf(needle, sizeof needle, "{\"pid\":%u,", pid);
    long samples = 0;
    char *p = strstr(body, needle);
    if (p) {
        char *sm = strstr(p, "\"samples\":");
        char *end = strchr(p, '}');
        if (sm && end && sm < end)
            samples = strtol(sm + 10, NULL, 10);
    }
    free(body);
    return samples;
}

typedef struct {
    uint32_t first;
    uint32_t n;
    long want;
} batch_check_t;

static int s_all_counted(void *arg)
{
    batch_check_t *c = arg;
    for (uint32_t i = 0; i < c->n; i++)
        if (s_samples_of(c->first + i) < c->want)
            return 0;
    return 1;
}

/* Sends `rounds` batches of 1 sample for each of n pids. */
static void s_send(uint32_t first, uint32_t n, int rounds)
{
    for (int r = 0; r < rounds; r++)
        for (uint32_t i = 0; i < n; i++)
            th_pub_workload_batch(S.pub, first + i, 1);
}

START_TEST(replicas_share_buckets_exactly_once)
{
    S.dir = tu_mkdtemp();
    S.port = th_free_port(); /* other tests may run at the same time */
    snprintf(S.config, sizeof S.config, "%s/skyprof.yaml", S.dir);
    snprintf(S.log, sizeof S.log, "%s/run.log", S.dir);
    FILE *f = fopen(S.config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "runtime_dir: %s/run\nbus:\n  stats_interval: 300ms\n"
            "profiling:\n  flush_interval: 1s\n"
            "symbolizer:\n  sharding: true\n"
            "aggregator:\n  http_addr: 127.0.0.1:%d\n  store_path: \"\"\n",
            S.dir, S.port);
    fclose(f);
    S.broker = th_stage(S.config, S.log, "skyprof-broker", "b");
    S.agg = th_stage(S.config, S.log, "skyprof-aggregator", "a");
    S.sym1 = th_stage(S.config, S.log, "skyprof-symbolizer", "s1");
    S.sym2 = th_stage(S.config, S.log, "skyprof-symbolizer", "s2");
    char ep[600];
    snprintf(ep, sizeof ep, "ipc://%s/run/bus-in", S.dir);
    S.pub = th_pub_new(ep);
    ck_assert_msg(tu_wait_until(s_split_ready, NULL, 20000),
                  "replicas never split the buckets; see %s", S.log);
    sleep(1); /* subscriptions reach the broker and our PUB socket */

    /* 200 processes spread over every bucket, 5 batches each. */
    batch_check_t c1 = {.first = 4100000, .n = 200, .want = 5};
    s_send(c1.first, c1.n, 5);
    ck_assert_msg(tu_wait_until(s_all_counted, &c1, 20000),
                  "not every pid arrived; see %s", S.log);
    sleep(2); /* anything doubled would show up by now */
    for (uint32_t i = 0; i < c1.n; i++)
        ck_assert_int_eq(s_samples_of(c1.first + i), 5);
    char *m = s_metrics();
    ck_assert_ptr_nonnull(m);
    double in1 = th_metric_sum(m, "skyprof_symbolizer_batches_in", "instance=\"s1\"");
    double in2 = th_metric_sum(m, "skyprof_symbolizer_batches_in", "instance=\"s2\"");
    fprintf(stderr, "batches: s1 %.0f, s2 %.0f\n", in1, in2);
    ck_assert_double_gt(in1, 100);
    ck_assert_double_gt(in2, 100);
    ck_assert_double_eq(in1 + in2, 1000);
    free(m);

    /* s2 leaves cleanly: s1 takes every bucket, and new data still arrives
     * exactly once. */
    int st = tu_stop(S.sym2, 10000);
    S.sym2 = 0;
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_msg(tu_wait_until(s_s1_owns_all, NULL, 15000),
                  "s1 did not take over; see %s", S.log);
    sleep(1);
    batch_check_t c2 = {.first = 4200000, .n = 200, .want = 3};
    s_send(c2.first, c2.n, 3);
    ck_assert_msg(tu_wait_until(s_all_counted, &c2, 20000),
                  "data lost after the hand-over; see %s", S.log);
    sleep(2);
    for (uint32_t i = 0; i < c2.n; i++)
        ck_assert_int_eq(s_samples_of(c2.first + i), 3);

    th_pub_destroy(&S.pub);
    pid_t *pids[] = {&S.sym1, &S.agg, &S.broker};
    for (size_t i = 0; i < 3; i++) {
        st = tu_stop(*pids[i], 10000);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    tu_rmtree(S.dir);
    free(S.dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sharding");
    TCase *tc = tcase_create("replicas");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, replicas_share_buckets_exactly_once);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
