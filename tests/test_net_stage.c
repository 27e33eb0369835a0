/* The network room inside the real stage: a broker and skyprof-aggregator
 * as processes; a NETWORK task on ctl.tasks and an HTTP/1.1 exchange on
 * net.events.BB (published as the collector does) show up in
 * GET /api/network, net.report is published every report interval
 * (net_reports on /metrics), and a malformed payload on net.events is
 * counted as invalid, not taken. The same with aggregator.sharding: the
 * replica takes net.events.BB through its shard (shard_add_prefix). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "testutil.h"
#include "wire.h"

#define PID 4242
#define MS 1000000ull

static char *s_dir, s_config[512], s_log[512];
static int s_port;

static int s_api_up(void *arg)
{
    (void)arg;
    char *b = th_get_ok(s_port, "/healthz");
    free(b);
    return b != NULL;
}

static void s_publish_tasks(th_pub_t *pub)
{
    static const uint32_t pids[] = {PID};
    wire_task_t t = {.task_id = "net-stage", .target = WIRE_TARGET_NETWORK,
                     .duration_ms = 600000, .npids = 1, .pids = pids,
                     .extension_json = ""};
    wire_task_set_t set = {.generation = 1, .ntasks = 1, .tasks = &t};
    wire_buf_t buf;
    wire_buf_init(&buf);
    wire_header_set(&set.hdr, "policy/test", 1);
    ck_assert_int_eq(wire_encode_task_set(&set, &buf), 0);
    th_pub_send(pub, TOPIC_CTL_TASKS, buf.data, buf.len);
    wire_buf_release(&buf);
}

static void s_publish_exchange(th_pub_t *pub, uint64_t seq)
{
    static const char req[] = "GET /stage?q=1 HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char resp[] = "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n";
    wire_net_event_t ev[3];
    memset(ev, 0, sizeof ev);
    for (int i = 0; i < 3; i++) {
        ev[i].pid = ev[i].tid = PID;
        ev[i].conn_id = 77 + seq;
        ev[i].role = WIRE_NET_ROLE_SERVER;
        ev[i].remote_addr[10] = ev[i].remote_addr[11] = 0xff;
        ev[i].remote_addr[12] = 127;
        ev[i].remote_addr[15] = 1;
        ev[i].remote_port = 50000;
        ev[i].ts_ns = (1000 + seq * 100 + (uint64_t)i * 10) * MS;
    }
    ev[0].kind = WIRE_NET_OPEN;
    ev[0].dur_ns = 20000;
    ev[1].kind = WIRE_NET_DATA;
    ev[1].dir = WIRE_NET_IN;
    ev[1].bytes = ev[1].ncaptured = sizeof req - 1;
    ev[1].payload = (const uint8_t *)req;
    ev[2].kind = WIRE_NET_DATA;
    ev[2].dir = WIRE_NET_OUT;
    ev[2].bytes = ev[2].ncaptured = sizeof resp - 1;
    ev[2].payload = (const uint8_t *)resp;
    wire_net_batch_t b = {.nevents = 3, .events = ev, .node = "stage-test"};
    wire_buf_t buf;
    char topic[32];
    wire_buf_init(&buf);
    wire_header_set(&b.hdr, "collector/test", seq);
    ck_assert_int_eq(wire_encode_net_batch(&b, &buf), 0);
    wire_sharded_topic(topic, sizeof topic, TOPIC_NET_EVENTS,
                       wire_pid_bucket(PID));
    th_pub_send(pub, topic, buf.data, buf.len);
    wire_buf_release(&buf);
}

static int s_view_has_endpoint(void *arg)
{
    th_pub_t *pub = arg;
    static uint64_t seq;
    /* subscriptions take a moment to reach the broker: send again */
    s_publish_tasks(pub);
    s_publish_exchange(pub, ++seq);
    usleep(200000);
    char *b = th_get_ok(s_port, "/api/network?pid=4242");
    int ok = b && strstr(b, "\"uri\":\"/stage\"") &&
             strstr(b, "\"peer\":\"127.0.0.1:50000\"");
    free(b);
    return ok;
}

static int s_reported(void *arg)
{
    (void)arg;
    char *m = th_get_ok(s_port, "/metrics");
    double n = m ? th_metric_sum(m, "skyprof_aggregator_net_reports", NULL)
                 : 0;
    free(m);
    return n > 0;
}

static int s_invalid_reached(void *arg)
{
    char *m = th_get_ok(s_port, "/metrics");
    double n = m ? th_metric_sum(m, "skyprof_aggregator_invalid_messages",
                                 NULL) : 0;
    free(m);
    return n >= *(double *)arg;
}

/* sharding: the replica takes net.events.BB through its shard (one
 * replica owns every bucket once it has announced itself). */
static void s_run(int sharding)
{
    s_dir = tu_mkdtemp();
    s_port = th_free_port();
    snprintf(s_config, sizeof s_config, "%s/skyprof.yaml", s_dir);
    snprintf(s_log, sizeof s_log, "%s/run.log", s_dir);
    FILE *f = fopen(s_config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "runtime_dir: %s/run\nbus:\n  stats_interval: 300ms\n"
            "profiling:\n  task:\n    network:\n      report_interval: 300ms\n"
            "aggregator:\n  http_addr: 127.0.0.1:%d\n  store_path: \"\"\n"
            "  sharding: %s\n",
            s_dir, s_port, sharding ? "true" : "false");
    fclose(f);
    pid_t broker = th_stage(s_config, s_log, "skyprof-broker", "b");
    pid_t agg = th_stage(s_config, s_log, "skyprof-aggregator", "a");
    char ep[600];
    snprintf(ep, sizeof ep, "ipc://%s/run/bus-in", s_dir);
    th_pub_t *pub = th_pub_new(ep);
    ck_assert_ptr_nonnull(pub);
    ck_assert_msg(tu_wait_until(s_api_up, NULL, 15000),
                  "the API never answered; see %s", s_log);
    ck_assert_msg(tu_wait_until(s_view_has_endpoint, pub, 20000),
                  "the exchange never reached the view; see %s", s_log);
    char *b = th_get_ok(s_port, "/api/network?pid=4242");
    ck_assert_ptr_nonnull(strstr(b, "\"protocol\":\"http\""));
    ck_assert_ptr_nonnull(strstr(b, "\"error_rate\":1.0000"));
    free(b);
    ck_assert_msg(tu_wait_until(s_reported, NULL, 10000),
                  "no net.report published; see %s", s_log);

    /* garbage on the topic: refused by the codec, counted */
    char topic[32];
    wire_sharded_topic(topic, sizeof topic, TOPIC_NET_EVENTS,
                       wire_pid_bucket(PID));
    char *m = th_get_ok(s_port, "/metrics");
    ck_assert_ptr_nonnull(m);
    double invalid = th_metric_sum(m, "skyprof_aggregator_invalid_messages",
                                   NULL);
    free(m);
    th_pub_send(pub, topic, "\x93\x01\x02", 3);
    /* counted: polled for up to the second this slept */
    double want = invalid + 1;
    tu_wait_until(s_invalid_reached, &want, 1000);
    m = th_get_ok(s_port, "/metrics");
    ck_assert_ptr_nonnull(m);
    ck_assert_double_eq(th_metric_sum(m, "skyprof_aggregator_invalid_messages",
                                      NULL), invalid + 1);
    ck_assert_double_gt(th_metric_sum(m, "skyprof_aggregator_net_events",
                                      NULL), 0);
    ck_assert_double_eq(th_metric_sum(m, "skyprof_aggregator_net_batches_rejected",
                                      NULL), 0);
    free(m);

    th_pub_destroy(&pub);
    pid_t pids[] = {agg, broker};
    th_stop_stages(pids, 2);
    tu_rmtree(s_dir);
    free(s_dir);
}

START_TEST(stage_analyses_and_reports)
{
    s_run(0);
}
END_TEST

START_TEST(sharded_replica_takes_its_buckets)
{
    s_run(1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("net_stage");
    TCase *tc = tcase_create("stage");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stage_analyses_and_reports);
    tcase_add_test(tc, sharded_replica_takes_its_buckets);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
