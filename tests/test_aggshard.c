/* Two aggregator replicas with sharding share the pid buckets: both count
 * part of the batches, a query to either one fans out and answers the
 * whole, every sample exactly once, also while a replica joins under
 * traffic; when one leaves cleanly the other takes every bucket through
 * the exact hand-over, new data stays exact, and the history the leaver
 * held is reported gone. Malformed control messages are counted and
 * ignored. The network room's view fans out the same way: each replica
 * analyses its buckets' processes, either answers for all. Real processes:
 * broker, symbolizer, two aggregators. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "harness.h"
#include "testutil.h"
#include "wire.h"

typedef struct {
    char *dir;
    char config[512];
    char log[512];
    int port[2];
    pid_t broker, sym, agg[2];
    th_pub_t *pub;
    pthread_mutex_t pub_lock;
} run_t;

static run_t R;

static pid_t s_stage(const char *binary, const char *instance, int port)
{
    char addr[64];
    if (port) {
        snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
        setenv("SKYPROF_AGGREGATOR_HTTP_ADDR", addr, 1);
    }
    pid_t pid = th_stage(R.config, R.log, binary, instance);
    unsetenv("SKYPROF_AGGREGATOR_HTTP_ADDR");
    return pid;
}

/* Replicas share a bearer token: the test's requests carry it and so must
 * the replicas' fan-out to each other (fanout_errors stays 0). */
#define AGGSHARD_TOKEN "aggshard-test-token-0123"

static char *s_get(int replica, const char *path)
{
    int status = 0;
    char *b = tu_http_with("GET", "127.0.0.1", R.port[replica], path,
                           "Authorization: Bearer " AGGSHARD_TOKEN "\r\n",
                           NULL, &status, NULL);
    if (b && status != 200) {
        free(b);
        return NULL;
    }
    return b;
}

/* A replica's own counter (its /metrics, its instance label). */
static double s_metric(int replica, const char *family)
{
    char *m = s_get(replica, "/metrics");
    if (!m)
        return -1;
    char label[32], name[128];
    snprintf(label, sizeof label, "instance=\"a%d\"", replica + 1);
    snprintf(name, sizeof name, "skyprof_aggregator_%s", family);
    double v = th_metric_sum(m, name, label);
    free(m);
    return v;
}

/* Samples of pid in a /api/processes body, 0 when absent. */
static long s_samples_in(const char *body, uint32_t pid)
{
    char needle[64];
    snprintf(needle, sizeof needle, "{\"pid\":%u,", pid);
    const char *p = strstr(body, needle);
    if (!p)
        return 0;
    const char *sm = strstr(p, "\"samples\":");
    const char *end = strchr(p, '}');
    return sm && end && sm < end ? strtol(sm + 10, NULL, 10) : 0;
}

typedef struct {
    uint32_t first, n;
    long want;       /* per pid */
    int replica;
    const char *query; /* "" or "?local=1" */
} range_t;

/* Sum of samples over the range's pids, -1 when a pid has more than
 * want; *complete = every pid has want. */
static long s_sum(const range_t *r, int *complete)
{
    char path[64];
    snprintf(path, sizeof path, "/api/processes%s", r->query);
    char *body = s_get(r->replica, path);
    if (!body)
        return -2;
    long sum = 0;
    int all = 1, over = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        long s = s_samples_in(body, r->first + i);
        sum += s;
        all &= s == r->want;
        over |= s > r->want;
    }
    free(body);
    if (complete)
        *complete = all;
    return over ? -1 : sum;
}

static int s_complete(void *arg)
{
    int all = 0;
    return s_sum(arg, &all) >= 0 && all;
}

/* Every sample line of the folded Total view that belongs to one of the
 * range's processes (named pid_<pid>). */
static long s_folded_total(int replica, const range_t *r)
{
    char *body = s_get(replica, "/api/folded");
    if (!body)
        return -1;
    long sum = 0;
    for (char *line = body; line && *line;) {
        char *eol = strchr(line, '\n');
        unsigned pid;
        if (sscanf(line, "[p] pid_%u;", &pid) == 1 && pid >= r->first
            && pid < r->first + r->n) {
            char *sp = eol ? eol : line + strlen(line);
            while (sp > line && sp[-1] != ' ')
                sp--;
            if (strstr(line, "sky_alpha_leaf"))
                sum += strtol(sp, NULL, 10);
        }
        line = eol ? eol + 1 : NULL;
    }
    free(body);
    return sum;
}

typedef struct {
    uint32_t first, n;
    int rounds;
    int pause_ms;
} sender_t;

static void *s_sender(void *arg)
{
    const sender_t *s = arg;
    for (int r = 0; r < s->rounds; r++) {
        pthread_mutex_lock(&R.pub_lock);
        for (uint32_t i = 0; i < s->n; i++)
            th_pub_workload_batch(R.pub, s->first + i, 1);
        pthread_mutex_unlock(&R.pub_lock);
        if (s->pause_ms)
            usleep((useconds_t)s->pause_ms * 1000);
    }
    return NULL;
}

static int s_owns_all(void *arg)
{
    int r = *(int *)arg;
    return s_metric(r, "handover_buckets_counting") == WIRE_BUCKETS &&
           s_metric(r, "handover_buckets_waiting") == 0;
}

static int s_split(void *arg)
{
    (void)arg;
    double a = s_metric(0, "handover_buckets_counting");
    double b = s_metric(1, "handover_buckets_counting");
    return a > 0 && b > 0 && a + b == WIRE_BUCKETS &&
           s_metric(0, "handover_buckets_waiting") == 0 &&
           s_metric(1, "handover_buckets_waiting") == 0;
}

static int s_invalid_counted(void *arg)
{
    return s_metric(0, "bus_invalid_total") >= *(double *)arg;
}

static void s_start(void)
{
    R.dir = tu_mkdtemp();
    pthread_mutex_init(&R.pub_lock, NULL);
    snprintf(R.config, sizeof R.config, "%s/skyprof.yaml", R.dir);
    snprintf(R.log, sizeof R.log, "%s/run.log", R.dir);
    FILE *f = fopen(R.config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "runtime_dir: %s/run\nbus:\n  stats_interval: 300ms\n"
            "profiling:\n  flush_interval: 1s\n"
            "aggregator:\n  sharding: true\n  store_path: \"\"\n"
            "  auth_token: " AGGSHARD_TOKEN "\n",
            R.dir);
    fclose(f);
    R.port[0] = th_free_port();
    R.port[1] = th_free_port();
    R.broker = s_stage("skyprof-broker", "b", 0);
    R.sym = s_stage("skyprof-symbolizer", "s", 0);
    R.agg[0] = s_stage("skyprof-aggregator", "a1", R.port[0]);
    char ep[600];
    snprintf(ep, sizeof ep, "ipc://%s/run/bus-in", R.dir);
    R.pub = th_pub_new(ep);
}

START_TEST(replicas_split_fan_out_and_hand_over)
{
    s_start();
    int a1 = 0;
    ck_assert_msg(tu_wait_until(s_owns_all, &a1, 20000),
                  "a1 alone never counted every bucket; see %s", R.log);
    sleep(1); /* subscriptions reach the broker and our PUB socket */

    /* a2 joins while data flows: a1 hands buckets over under traffic. */
    sender_t c1 = {.first = 5100000, .n = 200, .rounds = 20, .pause_ms = 200};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, s_sender, &c1), 0);
    R.agg[1] = s_stage("skyprof-aggregator", "a2", R.port[1]);
    pthread_join(t, NULL);
    ck_assert_msg(tu_wait_until(s_split, NULL, 20000),
                  "the replicas never split the buckets; see %s", R.log);

    range_t all1 = {c1.first, c1.n, c1.rounds, 0, ""};
    ck_assert_msg(tu_wait_until(s_complete, &all1, 20000),
                  "not every sample reached the fanned-out answer; see %s",
                  R.log);
    sleep(2); /* anything counted twice would show by now */
    long want = (long)c1.n * c1.rounds;
    for (int r = 0; r < 2; r++) {
        int complete = 0;
        range_t q = {c1.first, c1.n, c1.rounds, r, ""};
        ck_assert_int_eq(s_sum(&q, &complete), want);
        ck_assert(complete);
        ck_assert_int_eq(s_folded_total(r, &all1), want);
    }
    /* Each replica's own part: both took some, together all. */
    range_t l1 = {c1.first, c1.n, c1.rounds, 0, "?local=1"};
    range_t l2 = {c1.first, c1.n, c1.rounds, 1, "?local=1"};
    long part1 = s_sum(&l1, NULL), part2 = s_sum(&l2, NULL);
    double in1 = s_metric(0, "batches_in"), in2 = s_metric(1, "batches_in");
    fprintf(stderr, "parts: a1 %ld, a2 %ld samples; batches a1 %.0f a2 %.0f; "
            "a1 released %.0f, a2 applied %.0f, parked %.0f\n", part1, part2,
            in1, in2, s_metric(0, "releases_sent"),
            s_metric(1, "releases_applied"), s_metric(1, "batches_parked"));
    ck_assert_int_gt(part1, 0);
    ck_assert_int_gt(part2, 0);
    ck_assert_int_eq(part1 + part2, want);
    ck_assert_double_gt(in1, 0);
    ck_assert_double_gt(in2, 0);
    ck_assert_double_eq(in1 + in2, (double)want);
    ck_assert_double_gt(s_metric(0, "releases_sent"), 0);
    ck_assert_double_gt(s_metric(1, "releases_applied"), 0);
    ck_assert_double_eq(s_metric(0, "fanout_errors"), 0);
    int unauth = 0;
    free(tu_http("GET", "127.0.0.1", R.port[1], "/api/processes", NULL,
                 &unauth, NULL));
    ck_assert_int_eq(unauth, 401);

    /* a2 leaves cleanly while a trickle of data flows. */
    double applied_before = s_metric(0, "releases_applied");
    double timeouts_before = s_metric(0, "handover_timeouts");
    sender_t mid = {.first = 5200000, .n = 100, .rounds = 15, .pause_ms = 200};
    ck_assert_int_eq(pthread_create(&t, NULL, s_sender, &mid), 0);
    usleep(500 * 1000);
    int st = tu_stop(R.agg[1], 10000);
    R.agg[1] = 0;
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pthread_join(t, NULL);
    ck_assert_msg(tu_wait_until(s_owns_all, &a1, 15000),
                  "a1 did not take every bucket; see %s", R.log);
    /* The exact path, not the timeout: a2 released what it counted. */
    ck_assert_double_gt(s_metric(0, "releases_applied"), applied_before);
    ck_assert_double_eq(s_metric(0, "handover_timeouts"), timeouts_before);
    /* What a2 counted of the trickle left with it; nothing is doubled. */
    range_t qm = {mid.first, mid.n, mid.rounds, 0, ""};
    ck_assert_int_ge(s_sum(&qm, NULL), 0);

    /* New data after the stop: exact, all on a1. */
    sender_t c2 = {.first = 5300000, .n = 200, .rounds = 3, .pause_ms = 0};
    s_sender(&c2);
    range_t all2 = {c2.first, c2.n, c2.rounds, 0, ""};
    ck_assert_msg(tu_wait_until(s_complete, &all2, 20000),
                  "data lost after the hand-over; see %s", R.log);
    sleep(2);
    int complete = 0;
    ck_assert_int_eq(s_sum(&all2, &complete), (long)c2.n * c2.rounds);
    ck_assert(complete);

    /* a2's history is gone, and the answer says so. */
    ck_assert_int_eq(s_sum(&all1, NULL), part1);
    char *body = s_get(0, "/api/processes");
    ck_assert_ptr_nonnull(body);
    ck_assert_msg(strstr(body, "\"partial\":\"aggregator a2 left"),
                  "no partial note: %.300s", body);
    free(body);

    /* Malformed control messages are counted and ignored. */
    double bad_before = s_metric(0, "bus_invalid_total");
    pthread_mutex_lock(&R.pub_lock);
    th_pub_send(R.pub, TOPIC_AGG_RELEASE, "\x93\x01\x02", 3);
    th_pub_send(R.pub, TOPIC_AGG_PEER, "garbage", 7);
    th_pub_send(R.pub, "ctl.hello.aggregator", "\xc1", 1);
    pthread_mutex_unlock(&R.pub_lock);
    double bad_want = bad_before + 3;
    ck_assert_msg(tu_wait_until(s_invalid_counted, &bad_want, 10000),
                  "malformed control messages not counted");
    /* A well-formed release for a bucket a1 counts is ignored too. */
    double ignored_before = s_metric(0, "releases_ignored");
    wire_agg_mark_t mark = {"collector/test", 1u << 30};
    wire_agg_release_t rel = {.instance = "intruder", .bucket = 3,
                             .nmarks = 1, .marks = &mark};
    wire_header_set(&rel.hdr, "aggregator/intruder", 1);
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_agg_release(&rel, &buf), 0);
    pthread_mutex_lock(&R.pub_lock);
    th_pub_send(R.pub, TOPIC_AGG_RELEASE, buf.data, buf.len);
    pthread_mutex_unlock(&R.pub_lock);
    wire_buf_release(&buf);
    sender_t c3 = {.first = 5400000, .n = 100, .rounds = 2, .pause_ms = 0};
    s_sender(&c3);
    range_t all3 = {c3.first, c3.n, c3.rounds, 0, ""};
    ck_assert_msg(tu_wait_until(s_complete, &all3, 20000),
                  "a1 stopped counting after bad control messages; see %s",
                  R.log);
    ck_assert_double_gt(s_metric(0, "releases_ignored"), ignored_before);

    th_pub_destroy(&R.pub);
    pid_t *pids[] = {&R.agg[0], &R.sym, &R.broker};
    for (size_t i = 0; i < 3; i++) {
        st = tu_stop(*pids[i], 10000);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    tu_rmtree(R.dir);
    free(R.dir);
}
END_TEST

/* ------------------------------------------------ the network room */
#define NET_PIDS 40
#define NET_PID0 6100000u

/* A NETWORK task naming every pid, and one HTTP exchange per pid on its
 * bucket's net.events topic (URI /p<pid>). */
static void s_net_send(void)
{
    static uint32_t pids[NET_PIDS];
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    for (uint32_t i = 0; i < NET_PIDS; i++)
        pids[i] = NET_PID0 + i * 7919u;
    wire_task_t t = {.task_id = "net-shard", .target = WIRE_TARGET_NETWORK,
                     .duration_ms = 600000, .npids = NET_PIDS, .pids = pids,
                     .extension_json = ""};
    wire_task_set_t set = {.generation = 1, .ntasks = 1, .tasks = &t};
    wire_buf_t buf;
    wire_buf_init(&buf);
    wire_header_set(&set.hdr, "policy/test", 1);
    ck_assert_int_eq(wire_encode_task_set(&set, &buf), 0);
    pthread_mutex_lock(&R.pub_lock);
    th_pub_send(R.pub, TOPIC_CTL_TASKS, buf.data, buf.len);
    for (uint32_t i = 0; i < NET_PIDS; i++) {
        char req[64], topic[32];
        snprintf(req, sizeof req, "GET /p%u HTTP/1.1\r\n\r\n", pids[i]);
        wire_net_event_t ev[2];
        memset(ev, 0, sizeof ev);
        for (int k = 0; k < 2; k++) {
            ev[k].kind = WIRE_NET_DATA;
            ev[k].pid = ev[k].tid = pids[i];
            ev[k].conn_id = 1;
            ev[k].role = WIRE_NET_ROLE_SERVER;
            ev[k].remote_port = 9;
            ev[k].remote_addr[10] = ev[k].remote_addr[11] = 0xff;
            ev[k].ts_ns = 1000000ull * (10 + (uint64_t)k);
        }
        ev[0].dir = WIRE_NET_IN;
        ev[0].bytes = ev[0].ncaptured = (uint32_t)strlen(req);
        ev[0].payload = (const uint8_t *)req;
        ev[1].dir = WIRE_NET_OUT;
        ev[1].bytes = ev[1].ncaptured = sizeof resp - 1;
        ev[1].payload = (const uint8_t *)resp;
        wire_net_batch_t b = {.nevents = 2, .events = ev, .node = "n"};
        wire_header_set(&b.hdr, "collector/test", i + 1);
        wire_buf_reset(&buf);
        ck_assert_int_eq(wire_encode_net_batch(&b, &buf), 0);
        wire_sharded_topic(topic, sizeof topic, TOPIC_NET_EVENTS,
                           wire_pid_bucket(pids[i]));
        th_pub_send(R.pub, topic, buf.data, buf.len);
    }
    pthread_mutex_unlock(&R.pub_lock);
    wire_buf_release(&buf);
}

static int s_count_uris(const char *body)
{
    int n = 0;
    for (const char *p = body; p && (p = strstr(p, "\"uri\":\"/p")); p++)
        n++;
    return n;
}

static int s_net_whole(void *arg)
{
    (void)arg;
    s_net_send();
    usleep(300000);
    char *b = s_get(0, "/api/network");
    int n = b ? s_count_uris(b) : 0;
    free(b);
    return n == NET_PIDS;
}

START_TEST(network_view_fans_out)
{
    s_start();
    R.agg[1] = s_stage("skyprof-aggregator", "a2", R.port[1]);
    ck_assert_msg(tu_wait_until(s_split, NULL, 30000),
                  "the replicas never split the buckets; see %s", R.log);
    sleep(1);
    ck_assert_msg(tu_wait_until(s_net_whole, NULL, 20000),
                  "the fanned-out view never held every pid; see %s", R.log);
    /* each replica analysed its own buckets' processes */
    char *l1 = s_get(0, "/api/network?local=1");
    char *l2 = s_get(1, "/api/network?local=1");
    ck_assert_ptr_nonnull(l1);
    ck_assert_ptr_nonnull(l2);
    int n1 = s_count_uris(l1), n2 = s_count_uris(l2);
    fprintf(stderr, "network rows: a1 %d, a2 %d\n", n1, n2);
    ck_assert_int_gt(n1, 0);
    ck_assert_int_gt(n2, 0);
    ck_assert_int_eq(n1 + n2, NET_PIDS);
    free(l1);
    free(l2);
    char *whole = s_get(1, "/api/network");
    ck_assert_ptr_nonnull(whole);
    ck_assert_int_eq(s_count_uris(whole), NET_PIDS);
    free(whole);

    th_pub_destroy(&R.pub);
    pid_t pids[] = {R.agg[1], R.agg[0], R.sym, R.broker};
    th_stop_stages(pids, 4);
    tu_rmtree(R.dir);
    free(R.dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("aggshard");
    TCase *tc = tcase_create("replicas");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, replicas_split_fan_out_and_hand_over);
    tcase_add_test(tc, network_view_fans_out);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
