/* One aggregator fed by several nodes: the same pid on two nodes is two
 * processes. Batches go through the codec and agg_intake (as from the
 * bus), then the core's queries, the store and the HTTP API must keep
 * them apart: process rows per (pid, node), per-node folded stacks, a
 * Total view with a node layer, and a pid without node= refused. With a
 * single node nothing shows a node layer. End to end: two collector-less
 * publishers (raw batches naming their node) through a real broker,
 * symbolizer and aggregator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aggregator/core/agg.h"
#include "aggregator/http/api.h"
#include "aggregator/replica/replica.h"
#include "arena.h"
#include "harness.h"
#include "testutil.h"
#include "wire.h"

#define PID 100

static stats_t *s_stats;
static wire_buf_t s_buf;

static void
s_setup(void)
{
    s_stats = stats_new("aggregator", "test");
    wire_buf_init(&s_buf);
}

static void
s_teardown(void)
{
    wire_buf_release(&s_buf);
    stats_destroy(&s_stats);
}

/* One on-CPU stack main <- leaf of pid PID ("app") from node, count
 * samples of 10 ms, through the wire codec and agg_intake. */
static void
s_feed_node(agg_t *agg, const char *node, const char *leaf, uint64_t count,
            uint64_t seq)
{
    wire_frame_t frames[2] = { { leaf, WIRE_FRAME_USER },
                               { "main", WIRE_FRAME_USER } };
    uint32_t fidx[2] = { 0, 1 };
    wire_proc_t proc = { .pid = PID, .name = "app", .container_id = "" };
    wire_sym_sample_t sample = { .pid = PID, .tid = PID, .count = count,
                                 .weight_ns = count * 10000000ull,
                                 .comm = "app", .nframes = 2,
                                 .frames = fidx };
    wire_sym_batch_t b = { .nframes = 2, .frames = frames, .nprocs = 1,
                           .procs = &proc, .nsamples = 1,
                           .samples = &sample, .origin_sender = "",
                           .node = node };
    char topic[32];
    wire_header_set(&b.hdr, "symbolizer/test", seq);
    wire_sharded_topic(topic, sizeof(topic), TOPIC_SYM_STACKS, PID);
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_sym_batch(&b, &s_buf), 0);
    ck_assert_int_eq(agg_intake(agg, topic, s_buf.data, s_buf.len), 0);

    /* Each node's process has its own command line. */
    char cmdline[64];
    snprintf(cmdline, sizeof(cmdline), "app --on %s", node ? node : "");
    wire_proc_event_t ev = { .type = WIRE_PROC_EXEC, .pid = PID,
                             .ppid = 1, .comm = "app", .exe = "/bin/app",
                             .cmdline = cmdline, .container_id = "" };
    wire_proc_events_t events = { .nevents = 1, .events = &ev,
                                  .node = node };
    wire_header_set(&events.hdr, "collector/test", seq);
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_proc_events(&events, &s_buf), 0);
    ck_assert_int_eq(agg_intake(agg, TOPIC_PROC_EVENTS, s_buf.data,
                                s_buf.len), 0);
}

static agg_t *
s_agg(const char *store, uint64_t t0)
{
    agg_options_t o = { .flush_ms = 1000,
                        .history_ms = 3600000, .max_nodes = 10000,
                        .store_path = store, .store_retention_ms = 3600000,
                        .stats = s_stats };
    agg_t *agg = agg_new(&o, t0);
    ck_assert_ptr_nonnull(agg);
    return agg;
}

/* The first node named name under n (depth first), or NULL. */
static const flame_node_t *
s_find(const flame_node_t *n, const char *name)
{
    if (strcmp(n->name, name) == 0)
        return n;
    for (const flame_node_t *c = n->first_child; c; c = c->next_sibling) {
        const flame_node_t *f = s_find(c, name);
        if (f)
            return f;
    }
    return NULL;
}

static const agg_prow_t *
s_row(const agg_prows_t *rows, const char *node)
{
    for (size_t i = 0; i < rows->n; i++)
        if (rows->rows[i].pid == PID && strcmp(rows->rows[i].node, node) == 0)
            return &rows->rows[i];
    return NULL;
}

/* What the two-node data must look like, from memory or from the store
 * (which keeps the windows, not the command lines of proc.events). */
static void
s_check_two_nodes(agg_t *agg, uint64_t t0, int with_cmdline)
{
    agg_prows_t rows;
    agg_prows_init(&rows);
    ck_assert_int_eq(agg_process_rows(agg, t0, t0 + 5000, &rows), 0);
    ck_assert_int_eq(agg_prows_merge(&rows), 0);
    ck_assert_uint_eq(rows.n, 2);
    const agg_prow_t *a = s_row(&rows, "node-a"), *b = s_row(&rows, "node-b");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(a->samples, 3);
    ck_assert_uint_eq(b->samples, 2);
    ck_assert_uint_eq(a->cpu_ns, 30000000ull);
    ck_assert_uint_eq(b->cpu_ns, 20000000ull);
    if (with_cmdline) {
        ck_assert_str_eq(a->cmdline, "app --on node-a");
        ck_assert_str_eq(b->cmdline, "app --on node-b");
    }
    agg_prows_release(&rows);

    /* One pid, one node: only that node's stack. */
    agg_query_t q = { .select = AGG_SEL_PID, .pid = PID, .node = "node-a",
                      .start_ms = t0, .end_ms = t0 + 5000, .threads = 1 };
    flame_t *t = agg_query(agg, &q, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(flame_root_name(t), "app");
    ck_assert_uint_eq(flame_root(t)->total_count, 3);
    ck_assert_ptr_nonnull(s_find(flame_root(t), "alpha_leaf"));
    ck_assert_ptr_null(s_find(flame_root(t), "beta_leaf"));
    flame_destroy(&t);
    q.node = "node-b";
    t = agg_query(agg, &q, NULL);
    ck_assert_uint_eq(flame_root(t)->total_count, 2);
    ck_assert_ptr_nonnull(s_find(flame_root(t), "beta_leaf"));
    ck_assert_ptr_null(s_find(flame_root(t), "alpha_leaf"));
    flame_destroy(&t);

    /* Total -> [n] node -> [p] app, each with its own stack. */
    agg_query_t tq = { .select = AGG_SEL_TOTAL, .start_ms = t0,
                       .end_ms = t0 + 5000, .threads = 1 };
    t = agg_query(agg, &tq, NULL);
    ck_assert_ptr_nonnull(t);
    const flame_node_t *root = flame_root(t);
    ck_assert_uint_eq(root->nchildren, 2);
    ck_assert_uint_eq(root->total_count, 5);
    const char *nodes[2] = { "node-a", "node-b" };
    const char *leaves[2] = { "alpha_leaf", "beta_leaf" };
    uint64_t counts[2] = { 3, 2 };
    for (int i = 0; i < 2; i++) {
        const flame_node_t *n = flame_find_child(t, root, nodes[i],
                                                 FLAME_NODE);
        ck_assert_msg(n != NULL, "no node layer for %s", nodes[i]);
        ck_assert_uint_eq(n->total_count, counts[i]);
        const flame_node_t *p = flame_find_child(t, n, "app", FLAME_PROCESS);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(p->total_count, counts[i]);
        ck_assert_ptr_nonnull(s_find(p, leaves[i]));
        ck_assert_ptr_null(s_find(p, leaves[1 - i]));
    }
    flame_destroy(&t);
}

START_TEST(test_same_pid_two_nodes_stay_apart)
{
    const uint64_t t0 = 1700000000000ull;
    char *dir = tu_mkdtemp();
    char store[512];
    snprintf(store, sizeof(store), "%s/history.db", dir);
    agg_t *agg = s_agg(store, t0);
    s_feed_node(agg, "node-a", "alpha_leaf", 3, 1);
    s_feed_node(agg, "node-b", "beta_leaf", 2, 2);
    ck_assert_int_eq(agg_flush(agg, t0 + 1000), 0);
    s_check_two_nodes(agg, t0, 1);

    /* The name view is per name: it spans nodes. */
    agg_query_t q = { .select = AGG_SEL_NAME, .name = "app", .start_ms = t0,
                      .end_ms = t0 + 5000 };
    flame_t *t = agg_query(agg, &q, NULL);
    ck_assert_uint_eq(flame_root(t)->total_count, 5);
    flame_destroy(&t);
    agg_destroy(&agg);

    /* Reloaded from the store: still two processes on their nodes. */
    agg = s_agg(store, t0 + 1000);
    ck_assert_uint_eq(agg_history_len(agg), 1);
    s_check_two_nodes(agg, t0, 0);
    agg_destroy(&agg);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_single_node_looks_as_before)
{
    const uint64_t t0 = 1700000000000ull;
    agg_t *agg = s_agg(NULL, t0);
    s_feed_node(agg, "node-a", "alpha_leaf", 3, 1);
    s_feed_node(agg, "node-a", "alpha_leaf", 1, 2);
    ck_assert_int_eq(agg_flush(agg, t0 + 1000), 0);
    agg_query_t tq = { .select = AGG_SEL_TOTAL, .start_ms = t0,
                       .end_ms = t0 + 5000, .threads = 1 };
    flame_t *t = agg_query(agg, &tq, NULL);
    const flame_node_t *root = flame_root(t);
    ck_assert_str_eq(flame_root_name(t), "Total");
    ck_assert_uint_eq(root->nchildren, 1);
    ck_assert_uint_eq(root->first_child->type, FLAME_PROCESS);
    ck_assert_str_eq(root->first_child->name, "app");
    ck_assert_uint_eq(root->total_count, 4);
    flame_destroy(&t);

    /* Kept for replicas, the layer is there until merged answers drop it. */
    tq.keep_nodes = 1;
    t = agg_query(agg, &tq, NULL);
    root = flame_root(t);
    ck_assert_uint_eq(root->first_child->type, FLAME_NODE);
    ck_assert_str_eq(root->first_child->name, "node-a");
    t = agg_collapse_nodes(t, 10000);
    ck_assert_uint_eq(flame_root(t)->first_child->type, FLAME_PROCESS);
    ck_assert_uint_eq(flame_root(t)->total_count, 4);
    flame_destroy(&t);

    /* A pid alone names the one process. */
    agg_query_t q = { .select = AGG_SEL_PID, .pid = PID, .start_ms = t0,
                      .end_ms = t0 + 5000 };
    t = agg_query(agg, &q, NULL);
    ck_assert_uint_eq(flame_root(t)->total_count, 4);
    flame_destroy(&t);
    agg_destroy(&agg);
}
END_TEST

/* ----------------------------------------------------------------- HTTP */
static char *
s_http(int port, const char *path, int *status)
{
    size_t len = 0;
    char *out = tu_http("GET", "127.0.0.1", port, path, NULL, status, &len);
    ck_assert_msg(out != NULL, "no answer for %s", path);
    return out;
}

/* The JSON object of /api/processes holding "node":"<node>". */
static char *
s_process_json(const char *body, const char *node)
{
    char key[64];
    snprintf(key, sizeof(key), "\"node\":\"%s\"", node);
    const char *at = strstr(body, key);
    if (!at)
        return NULL;
    const char *start = at, *end = strchr(at, '}');
    while (start > body && *start != '{')
        start--;
    return end ? strndup(start, (size_t)(end - start + 1)) : NULL;
}

START_TEST(test_api_two_nodes)
{
    char err[256], path[512], range[96];
    int status = 0;
    uint64_t t0 = tu_now_ms() - 3000;
    agg_t *agg = s_agg(NULL, t0);
    agg_api_options_t ao = { .addr = "127.0.0.1:0" };
    agg_api_t *api = agg_api_new(agg, &ao, err, sizeof(err));
    ck_assert_msg(api != NULL, "%s", err);
    int port = agg_api_port(api);
    s_feed_node(agg, "node-a", "alpha_leaf", 3, 1);
    s_feed_node(agg, "node-b", "beta_leaf", 2, 2);
    ck_assert_int_eq(agg_flush(agg, t0 + 1000), 0);
    snprintf(range, sizeof(range), "start=%llu&end=%llu",
             (unsigned long long)(t0 / 1000 - 5),
             (unsigned long long)(t0 / 1000 + 5));

    snprintf(path, sizeof(path), "/api/processes?%s", range);
    char *body = s_http(port, path, &status);
    ck_assert_int_eq(status, 200);
    char *a = s_process_json(body, "node-a"), *b = s_process_json(body,
                                                                  "node-b");
    ck_assert_msg(a && b, "processes: %s", body);
    ck_assert_ptr_nonnull(strstr(a, "\"pid\":100"));
    ck_assert_ptr_nonnull(strstr(a, "\"samples\":3"));
    ck_assert_ptr_nonnull(strstr(b, "\"pid\":100"));
    ck_assert_ptr_nonnull(strstr(b, "\"samples\":2"));
    free(a);
    free(b);
    free(body);

    /* Folded stacks of each node's pid 100. */
    snprintf(path, sizeof(path), "/api/folded?pid=100&node=node-a&%s", range);
    body = s_http(port, path, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_msg(strstr(body, "main;alpha_leaf 3"), "%s", body);
    ck_assert_ptr_null(strstr(body, "beta_leaf"));
    free(body);
    snprintf(path, sizeof(path), "/api/folded?pid=100&node=node-b&%s", range);
    body = s_http(port, path, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_msg(strstr(body, "main;beta_leaf 2"), "%s", body);
    ck_assert_ptr_null(strstr(body, "alpha_leaf"));
    free(body);

    /* The pid alone is ambiguous: 400 naming both nodes. */
    snprintf(path, sizeof(path), "/api/folded?pid=100&%s", range);
    body = s_http(port, path, &status);
    ck_assert_int_eq(status, 400);
    ck_assert_msg(strstr(body, "node-a") && strstr(body, "node-b")
                  && strstr(body, "node="), "%s", body);
    free(body);

    /* Total: one line per node's stack under its node layer. */
    snprintf(path, sizeof(path), "/api/folded?%s", range);
    body = s_http(port, path, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_msg(strstr(body, "[n] node-a;[p] app;[t] app;main;alpha_leaf 3")
                  && strstr(body, "[n] node-b;[p] app;[t] app;main;"
                                  "beta_leaf 2"), "%s", body);
    free(body);

    /* node= alone narrows the Total view to that node. */
    snprintf(path, sizeof(path), "/api/folded?node=node-b&%s", range);
    body = s_http(port, path, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_msg(strstr(body, "[p] app;[t] app;main;beta_leaf 2"), "%s",
                  body);
    ck_assert_ptr_null(strstr(body, "alpha_leaf"));
    ck_assert_ptr_null(strstr(body, "[n] "));
    free(body);

    /* ProfileTracing: the node as a tag; the pid alone is ambiguous. */
    char json[512];
    size_t len = 0;
    snprintf(json, sizeof(json), "{\"app_service\":\"Total\","
             "\"time_start\":%llu,\"time_end\":%llu,"
             "\"tag_filter\":\"pid='100' AND node='node-b'\"}",
             (unsigned long long)(t0 / 1000 - 5),
             (unsigned long long)(t0 / 1000 + 5));
    body = tu_http("POST", "127.0.0.1", port, "/v1/profile/ProfileTracing",
                   json, &status, &len);
    ck_assert_int_eq(status, 200);
    ck_assert_msg(strstr(body, "beta_leaf") && !strstr(body, "alpha_leaf"),
                  "%s", body);
    free(body);
    snprintf(json, sizeof(json), "{\"app_service\":\"Total\","
             "\"time_start\":%llu,\"time_end\":%llu,"
             "\"tag_filter\":\"pid=100\"}",
             (unsigned long long)(t0 / 1000 - 5),
             (unsigned long long)(t0 / 1000 + 5));
    body = tu_http("POST", "127.0.0.1", port, "/v1/profile/ProfileTracing",
                   json, &status, &len);
    ck_assert_int_eq(status, 400);
    ck_assert_msg(strstr(body, "node-a") && strstr(body, "node-b"), "%s",
                  body);
    free(body);

    agg_api_destroy(&api);
    agg_destroy(&agg);
}
END_TEST

/* ---------------------------------------------------- replica requests */
typedef struct {
    char keys[16][32];
    char vals[16][600];
    int n;
} qs_t;

static int
s_hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                                 : -1;
}

/* Splits and URL-decodes the query string of path. */
static void
s_qs_parse(qs_t *qs, const char *path)
{
    memset(qs, 0, sizeof(*qs));
    const char *p = strchr(path, '?');
    ck_assert_ptr_nonnull(p);
    for (p++; *p && qs->n < 16; qs->n++) {
        size_t k = 0, v = 0;
        while (*p && *p != '=' && k < 31)
            qs->keys[qs->n][k++] = *p++;
        ck_assert_int_eq(*p, '=');
        for (p++; *p && *p != '&' && v < 599; p++) {
            if (*p == '%' && s_hex(p[1]) >= 0 && s_hex(p[2]) >= 0) {
                qs->vals[qs->n][v++] = (char)(s_hex(p[1]) * 16 + s_hex(p[2]));
                p += 2;
            } else {
                qs->vals[qs->n][v++] = *p;
            }
        }
        if (*p == '&')
            p++;
    }
}

static const char *
s_qs_arg(void *arg, const char *name)
{
    qs_t *qs = arg;
    for (int i = 0; i < qs->n; i++)
        if (strcmp(qs->keys[i], name) == 0)
            return qs->vals[i];
    return NULL;
}

START_TEST(test_fanout_request_carries_node)
{
    char path[2048], err[256];
    qs_t qs;
    agg_query_t q = { .select = AGG_SEL_PID, .pid = PID, .has_pid = 1,
                      .node = "node a&b", .start_ms = 1, .end_ms = 2,
                      .threads = 1 }, back;
    ck_assert_int_eq(agg_fanout_flame_path(&q, path, sizeof(path)), 0);
    s_qs_parse(&qs, path);
    ck_assert_int_eq(agg_fanout_parse_query(s_qs_arg, &qs, &back, err,
                                            sizeof(err)), 0);
    ck_assert_ptr_nonnull(back.node);
    ck_assert_str_eq(back.node, "node a&b");
    ck_assert_uint_eq(back.pid, PID);
    ck_assert_int_eq(back.keep_nodes, 0);

    /* Any node: no node= at all; the Total part keeps its node layer. */
    agg_query_t t = { .select = AGG_SEL_TOTAL, .keep_nodes = 1,
                      .start_ms = 1, .end_ms = 2 };
    ck_assert_int_eq(agg_fanout_flame_path(&t, path, sizeof(path)), 0);
    ck_assert_ptr_null(strstr(path, "node="));
    s_qs_parse(&qs, path);
    ck_assert_int_eq(agg_fanout_parse_query(s_qs_arg, &qs, &back, err,
                                            sizeof(err)), 0);
    ck_assert_ptr_null(back.node);
    ck_assert_int_eq(back.keep_nodes, 1);
}
END_TEST

/* ------------------------------------------------------------ end to end */
typedef struct {
    char *dir;
    char config[512], log[512];
    int port;
} e2e_t;

static pid_t
s_stage(const e2e_t *e, const char *binary, const char *instance)
{
    char exe[256];
    snprintf(exe, sizeof(exe), "bin/%s", binary);
    char *argv[] = { (char *)tu_build_path(exe), "--config",
                     (char *)e->config, "--instance", (char *)instance,
                     NULL };
    pid_t pid = tu_spawn(argv, e->log);
    ck_assert_int_gt(pid, 0);
    return pid;
}

static char *
s_e2e_get(const e2e_t *e, const char *path, int *status)
{
    return tu_http("GET", "127.0.0.1", e->port, path, NULL, status, NULL);
}

/* The symbolizer's counters reached the aggregator: it is on the bus. */
static int
s_symbolizer_heard(void *arg)
{
    int status = 0;
    char *m = s_e2e_get(arg, "/metrics", &status);
    int ok = m && strstr(m, "skyprof_symbolizer_") != NULL;
    free(m);
    return ok;
}

static int
s_both_nodes_listed(void *arg)
{
    int status = 0;
    char *body = s_e2e_get(arg, "/api/processes", &status);
    int ok = body && strstr(body, "\"node\":\"node-a\"")
             && strstr(body, "\"node\":\"node-b\"");
    free(body);
    return ok;
}

/* A raw batch as node's collector would send it: pid's stack
 * main <- sky_run <- sky_alpha_outer <- sky_alpha_leaf of cpu_workload. */
static void
s_publish_raw(th_pub_t *pub, const char *node, uint32_t pid, uint64_t count,
              uint64_t seq)
{
    static const char *funcs[4] = { "sky_alpha_leaf", "sky_alpha_outer",
                                    "sky_run", "main" };
    char exe[4096];
    struct stat st;
    ck_assert_ptr_nonnull(realpath(tu_build_path("tests/progs/cpu_workload"),
                                   exe));
    ck_assert_int_eq(stat(exe, &st), 0);
    wire_uframe_t uf[4];
    for (int i = 0; i < 4; i++) {
        uf[i] = (wire_uframe_t){ 1, th_func_offset(exe, funcs[i]) };
        ck_assert_uint_ne(uf[i].offset, 0);
    }
    wire_object_t obj = { .id = 1, .type = WIRE_OBJ_EXE, .dev = st.st_dev,
                          .ino = st.st_ino, .path = exe };
    wire_proc_t proc = { .pid = pid, .name = "work", .container_id = "" };
    wire_raw_sample_t s = { .pid = pid, .tid = pid, .ts_ns = 1,
                            .count = count, .weight_ns = count * 9000000,
                            .comm = "work", .nu = 4, .uframes = uf };
    wire_raw_batch_t b = { .nobjects = 1, .objects = &obj, .nprocs = 1,
                           .procs = &proc, .nsamples = 1, .samples = &s,
                           .node = node };
    char topic[32], sender[64];
    wire_sharded_topic(topic, sizeof(topic), TOPIC_RAW_STACKS, pid);
    snprintf(sender, sizeof(sender), "collector/%s", node);
    wire_header_set(&b.hdr, sender, seq);
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_raw_batch(&b, &s_buf), 0);
    th_pub_send(pub, topic, s_buf.data, s_buf.len);
}

START_TEST(test_e2e_two_publishers_through_symbolizer)
{
    e2e_t e = { .dir = tu_mkdtemp() };
    ck_assert_ptr_nonnull(e.dir);
    e.port = 20000 + (int)((getpid() + 4711) % 20000);
    snprintf(e.config, sizeof(e.config), "%s/skyprof.yaml", e.dir);
    snprintf(e.log, sizeof(e.log), "%s/run.log", e.dir);
    FILE *f = fopen(e.config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "runtime_dir: %s/run\nbus:\n  stats_interval: 300ms\n"
            "profiling:\n  flush_interval: 1s\n"
            "aggregator:\n  http_addr: 127.0.0.1:%d\n  store_path: \"\"\n",
            e.dir, e.port);
    fclose(f);
    pid_t broker = s_stage(&e, "skyprof-broker", "b");
    pid_t agg = s_stage(&e, "skyprof-aggregator", "a");
    pid_t sym = s_stage(&e, "skyprof-symbolizer", "s");
    char ep[600];
    snprintf(ep, sizeof(ep), "ipc://%s/run/bus-in", e.dir);
    th_pub_t *pub = th_pub_new(ep);
    ck_assert_msg(tu_wait_until(s_symbolizer_heard, &e, 20000),
                  "the symbolizer never reached the aggregator; see %s",
                  e.log);
    sleep(1); /* subscriptions reach the broker and our PUB socket */

    const uint32_t pid = 4300007;
    s_publish_raw(pub, "node-a", pid, 3, 1);
    s_publish_raw(pub, "node-b", pid, 2, 1);
    ck_assert_msg(tu_wait_until(s_both_nodes_listed, &e, 20000),
                  "both nodes' pid never listed; see %s", e.log);

    int status = 0;
    char path[256];
    snprintf(path, sizeof(path), "/api/folded?pid=%u&node=node-a", pid);
    char *body = s_e2e_get(&e, path, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_msg(body && strstr(body, "sky_alpha_leaf 3\n"), "%s", body);
    free(body);
    snprintf(path, sizeof(path), "/api/folded?pid=%u&node=node-b", pid);
    body = s_e2e_get(&e, path, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_msg(body && strstr(body, "sky_alpha_leaf 2\n"), "%s", body);
    free(body);
    snprintf(path, sizeof(path), "/api/folded?pid=%u", pid);
    body = s_e2e_get(&e, path, &status);
    ck_assert_int_eq(status, 400);
    free(body);
    body = s_e2e_get(&e, "/api/folded", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_msg(body && strstr(body, "[n] node-a;[p] work;")
                  && strstr(body, "[n] node-b;[p] work;"), "%s", body);
    free(body);

    th_pub_destroy(&pub);
    pid_t pids[] = { sym, agg, broker };
    th_stop_stages(pids, 3);
    tu_rmtree(e.dir);
    free(e.dir);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("nodes");
    TCase *tc = tcase_create("nodes");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_same_pid_two_nodes_stay_apart);
    tcase_add_test(tc, test_single_node_looks_as_before);
    tcase_add_test(tc, test_api_two_nodes);
    tcase_add_test(tc, test_fanout_request_carries_node);
    suite_add_tcase(s, tc);
    TCase *e2e = tcase_create("e2e");
    tcase_add_checked_fixture(e2e, s_setup, s_teardown);
    tcase_set_timeout(e2e, 120);
    tcase_add_test(e2e, test_e2e_two_publishers_through_symbolizer);
    suite_add_tcase(s, e2e);
    return tu_run(s);
}
