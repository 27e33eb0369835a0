/* Aggregator core without the bus: windows and history bounds, the views
 * queries build, agg.profile publication, the SQLite store (round trip,
 * corrupt or unusable file), malformed input and task requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregator/core/agg.h"
#include "agg_fixture.h"
#include "testutil.h"
#include "wire.h"

#define T0 1700000000000ull

/* ------------------------------------------------------------ fixture */
/* Feeds the fixture batch through the decoding intake. */
static void
s_feed(agg_t *agg)
{
    wire_sym_batch_t b;
    wire_sym_sample_t samples[3];
    wire_buf_t buf;
    agg_fixture_batch(&b, samples);
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_sym_batch(&b, &buf), 0);
    ck_assert_int_eq(agg_intake(agg, "sym.stacks.07", buf.data,
                                buf.len), 0);
    wire_buf_release(&buf);
}

typedef struct {
    char topic[32];
    void *data;
    size_t len;
} msg_t;

typedef struct {
    msg_t msgs[256];
    size_t n;
} sink_t;

/* Stands for the bus: encodes what the core sends, as bus_send would. */
static int
s_sink(void *arg, msg_id_t id, void *body)
{
    sink_t *s = arg;
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(msg_encode(id, body, "aggregator/test", s->n + 1, &buf),
                     0);
    ck_assert_uint_lt(s->n, 256);
    msg_t *m = &s->msgs[s->n++];
    snprintf(m->topic, sizeof(m->topic), "%s", msg_desc(id)->topic);
    m->data = malloc(buf.len);
    ck_assert_ptr_nonnull(m->data);
    memcpy(m->data, buf.data, buf.len);
    m->len = buf.len;
    wire_buf_release(&buf);
    return 0;
}

static void
s_sink_clear(sink_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->msgs[i].data);
    s->n = 0;
}

static stats_t *s_stats;
static sink_t s_out;

static agg_t *
s_agg(const char *store, uint64_t history_ms, size_t history_max_nodes)
{
    agg_options_t o = {
        .flush_ms = 1000,
        .history_ms = history_ms,
        .max_nodes = 1000,
        .history_max_nodes = history_max_nodes,
        .store_path = store,
        .store_retention_ms = 3600000,
        .stats = s_stats,
        .publish = s_sink,
        .publish_arg = &s_out,
    };
    agg_t *agg = agg_new(&o, T0);
    ck_assert_ptr_nonnull(agg);
    return agg;
}

static void
s_setup(void)
{
    s_stats = stats_new("aggregator", "test");
    memset(&s_out, 0, sizeof(s_out));
}

static void
s_teardown(void)
{
    s_sink_clear(&s_out);
    stats_destroy(&s_stats);
}

static const flame_node_t *
s_child(const flame_node_t *n, const char *name, uint8_t type)
{
    for (const flame_node_t *c = n->first_child; c; c = c->next_sibling)
        if (strcmp(c->name, name) == 0 && c->type == type)
            return c;
    return NULL;
}

static flame_t *
s_query(agg_t *agg, int select, const char *name, uint32_t pid, int kind,
        uint64_t start, uint64_t end, int threads)
{
    agg_query_t q = { .select = select, .name = name, .task_id = name,
                      .pid = pid, .kind = kind, .start_ms = start,
                      .end_ms = end, .threads = threads };
    flame_t *t = agg_query(agg, &q, NULL);
    ck_assert_ptr_nonnull(t);
    return t;
}

/* ---------------------------------------------------------------- tests */
START_TEST(test_total_view_layers)
{
    agg_t *agg = s_agg(NULL, 3600000, 0);
    s_feed(agg);
    /* Nothing is visible before the window closes. */
    flame_t *t = s_query(agg, AGG_SEL_TOTAL, NULL, 0, WIRE_KIND_ON_CPU, 0,
                         UINT64_MAX, 1);
    ck_assert_uint_eq(flame_root(t)->total_count, 0);
    flame_destroy(&t);
    ck_assert_int_eq(agg_flush(agg, T0 + 1000), 0);

    t = s_query(agg, AGG_SEL_TOTAL, NULL, 0, WIRE_KIND_ON_CPU, T0, T0 + 1000,
                1);
    const flame_node_t *root = flame_root(t);
    ck_assert_str_eq(root->name, "Total");
    ck_assert_uint_eq(root->total_count, 5);
    ck_assert_uint_eq(root->total_ns, 50000000);
    const flame_node_t *app = s_child(root, "app", FLAME_PROCESS);
    const flame_node_t *db = s_child(root, "db", FLAME_PROCESS);
    ck_assert_ptr_nonnull(app);
    ck_assert_ptr_nonnull(db);
    ck_assert_uint_eq(app->total_ns, 30000000);
    const flame_node_t *thr = s_child(app, "worker", FLAME_THREAD);
    ck_assert_ptr_nonnull(thr);
    /* Frames root first: the reverse of the leaf-first wire order. */
    const flame_node_t *n = s_child(thr, "main", FLAME_USER);
    ck_assert_ptr_nonnull(n);
    n = s_child(n, "libc_read", FLAME_LIB);
    ck_assert_ptr_nonnull(n);
    n = s_child(n, "u_leaf", FLAME_USER);
    ck_assert_ptr_nonnull(n);
    n = s_child(n, "k_sys", FLAME_KERNEL);
    ck_assert_ptr_nonnull(n);
    n = s_child(n, "k_leaf", FLAME_KERNEL);
    ck_assert_ptr_nonnull(n);
    ck_assert_uint_eq(n->self_count, 3);
    ck_assert_ptr_null(n->first_child);
    flame_destroy(&t);

    /* Off-CPU is a separate tree. */
    t = s_query(agg, AGG_SEL_TOTAL, NULL, 0, WIRE_KIND_OFF_CPU, T0, T0 + 1000,
                1);
    ck_assert_uint_eq(flame_root(t)->total_ns, 4000000);
    ck_assert_uint_eq(flame_root(t)->total_count, 4);
    flame_destroy(&t);
    agg_destroy(&agg);
    ck_assert_ptr_null(agg);
}
END_TEST

START_TEST(test_process_and_task_views)
{
    agg_t *agg = s_agg(NULL, 3600000, 0);
    s_feed(agg);
    agg_flush(agg, T0 + 1000);
    s_feed(agg);
    agg_flush(agg, T0 + 2000);

    /* Merged over both windows. */
    flame_t *t = s_query(agg, AGG_SEL_NAME, "app", 0, WIRE_KIND_ON_CPU, T0,
                         T0 + 2000, 1);
    ck_assert_str_eq(flame_root_name(t), "app");
    ck_assert_uint_eq(flame_root(t)->total_count, 6);
    ck_assert_ptr_nonnull(s_child(flame_root(t), "worker", FLAME_THREAD));
    flame_destroy(&t);

    /* By pid, thread layer merged away. */
    t = s_query(agg, AGG_SEL_PID, NULL, 200, WIRE_KIND_ON_CPU, T0, T0 + 2000,
                0);
    ck_assert_str_eq(flame_root_name(t), "db");
    ck_assert_uint_eq(flame_root(t)->total_ns, 40000000);
    ck_assert_ptr_nonnull(s_child(flame_root(t), "main", FLAME_USER));
    flame_destroy(&t);

    /* Only the second window. */
    t = s_query(agg, AGG_SEL_PID, NULL, 100, WIRE_KIND_OFF_CPU, T0 + 1500,
                T0 + 2000, 0);
    ck_assert_uint_eq(flame_root(t)->total_count, 4);
    flame_destroy(&t);

    /* Task tree: root is the task id, frames only. */
    t = s_query(agg, AGG_SEL_TASK, "t1", 0, WIRE_KIND_ON_CPU, T0, T0 + 2000,
                0);
    ck_assert_str_eq(flame_root_name(t), "t1");
    ck_assert_uint_eq(flame_root(t)->total_count, 6);
    ck_assert_ptr_nonnull(s_child(flame_root(t), "main", FLAME_USER));
    flame_destroy(&t);
    t = s_query(agg, AGG_SEL_TASK, "nope", 0, WIRE_KIND_ON_CPU, T0, T0 + 2000,
                0);
    ck_assert_uint_eq(flame_node_count(t), 1);
    flame_destroy(&t);

    /* Name with a pid filter that does not match. */
    agg_query_t q = { .select = AGG_SEL_NAME, .name = "app", .pid = 200,
                      .has_pid = 1, .kind = WIRE_KIND_ON_CPU, .start_ms = T0,
                      .end_ms = T0 + 2000, .threads = 1 };
    t = agg_query(agg, &q, NULL);
    ck_assert_uint_eq(flame_root(t)->total_count, 0);
    flame_destroy(&t);
    agg_destroy(&agg);
}
END_TEST

START_TEST(test_history_bounds)
{
    agg_t *agg = s_agg(NULL, 3000, 0);
    uint64_t now = T0;
    for (int i = 0; i < 10; i++) {
        s_feed(agg);
        now += 1000;
        ck_assert_int_eq(agg_flush(agg, now), 0);
        /* Windows that ended more than history_ms ago are gone. */
        ck_assert_uint_le(agg_history_len(agg), 4);
    }
    ck_assert_uint_ge(agg_history_len(agg), 3);
    flame_t *t = s_query(agg, AGG_SEL_TOTAL, NULL, 0, WIRE_KIND_ON_CPU, T0,
                         T0 + 3000, 1);
    ck_assert_uint_eq(flame_root(t)->total_count, 0);
    flame_destroy(&t);
    t = s_query(agg, AGG_SEL_TOTAL, NULL, 0, WIRE_KIND_ON_CPU, now - 1000,
                now, 1);
    ck_assert_uint_eq(flame_root(t)->total_count, 5);
    flame_destroy(&t);
    agg_destroy(&agg);

    /* The node budget evicts the oldest windows early. */
    agg = s_agg(NULL, 3600000, 30);
    for (int i = 0; i < 5; i++) {
        s_feed(agg);
        agg_flush(agg, T0 + 1000 * (uint64_t)(i + 1));
    }
    ck_assert_uint_eq(agg_history_len(agg), 1);
    agg_destroy(&agg);
}
END_TEST

START_TEST(test_publish_profiles)
{
    agg_t *agg = s_agg(NULL, 3600000, 0);
    /* Task metadata from ctl.tasks: the OAP process id of pid 100. */
    uint32_t pids[] = { 100 };
    const char *pids_oap[] = { "oap-proc-100" };
    wire_task_t task = { .task_id = "t1", .target = WIRE_TARGET_ON_CPU,
                         .trigger = WIRE_TRIGGER_FIXED_TIME,
                         .source = WIRE_SRC_OAP, .start_ms = T0 - 5000,
                         .duration_ms = 60000, .npids = 1, .pids = pids,
                         .process_ids = pids_oap, .extension_json = "" };
    wire_task_set_t set = { .generation = 1, .ntasks = 1, .tasks = &task };
    wire_header_set(&set.hdr, "policy/test", 1);
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_task_set(&set, &buf), 0);
    ck_assert_int_eq(agg_intake(agg, "ctl.tasks", buf.data, buf.len),
                     0);
    wire_buf_release(&buf);

    s_feed(agg);
    s_feed(agg);
    agg_flush(agg, T0 + 1000);
    ck_assert_uint_eq(s_out.n, 1);
    ck_assert_str_eq(s_out.msgs[0].topic, "agg.profile");

    arena_t *arena = arena_new(0);
    wire_profile_batch_t pb;
    char err[256];
    ck_assert_msg(wire_decode_profile_batch(s_out.msgs[0].data,
                                            s_out.msgs[0].len, arena, &pb,
                                            err, sizeof(err)) == 0, "%s", err);
    /* (t1, 100) on-CPU and (t1, 100) off-CPU; pid 200 has no task. */
    ck_assert_uint_eq(pb.nprofiles, 2);
    uint64_t on = 0, off = 0;
    for (uint32_t i = 0; i < pb.nprofiles; i++) {
        const wire_task_profile_t *p = &pb.profiles[i];
        ck_assert_str_eq(p->task_id, "t1");
        ck_assert_uint_eq(p->pid, 100);
        ck_assert_str_eq(p->process_id, "oap-proc-100");
        ck_assert_uint_eq(p->start_ms, T0 - 5000);
        ck_assert_uint_eq(p->window_start_ms, T0);
        ck_assert_uint_eq(p->window_end_ms, T0 + 1000);
        ck_assert_uint_eq(p->nstacks, 1);
        const wire_prof_stack_t *s = &p->stacks[0];
        if (s->nk == 2) {
            /* Stack A: kernel and user parts, each leaf first. */
            ck_assert_str_eq(s->kframes[0], "k_leaf");
            ck_assert_str_eq(s->kframes[1], "k_sys");
            ck_assert_uint_eq(s->nu, 3);
            ck_assert_str_eq(s->uframes[0], "u_leaf");
            ck_assert_str_eq(s->uframes[1], "libc_read");
            ck_assert_str_eq(s->uframes[2], "main");
            on += s->count;
            ck_assert_uint_eq(s->duration_ns, 60000000);
        } else {
            ck_assert_uint_eq(s->nk, 1);
            ck_assert_str_eq(s->kframes[0], "k_sys");
            ck_assert_uint_eq(s->nu, 1);
            off += s->count;
            ck_assert_uint_eq(s->duration_ns, 8000000);
        }
    }
    /* What went in (twice the fixture) is what comes out. */
    ck_assert_uint_eq(on, 6);
    ck_assert_uint_eq(off, 8);
    s_sink_clear(&s_out);

    /* An empty window publishes nothing. */
    agg_flush(agg, T0 + 2000);
    ck_assert_uint_eq(s_out.n, 0);
    arena_destroy(&arena);
    agg_destroy(&agg);
}
END_TEST

START_TEST(test_publish_splits_large_windows)
{
    agg_options_t o = { .flush_ms = 1000,
                        .history_ms = 60000, .max_nodes = 100000,
                        .stats = s_stats, .publish = s_sink,
                        .publish_arg = &s_out };
    agg_t *agg = agg_new(&o, T0);
    ck_assert_ptr_nonnull(agg);
    enum { N = 10000 };
    static const uint32_t task0[] = { 0 };
    static const char *const task_ids[] = { "t1" };
    wire_frame_t *frames = calloc(N + 1, sizeof(*frames));
    char (*names)[16] = calloc(N, 16);
    wire_sym_sample_t *samples = calloc(N, sizeof(*samples));
    uint32_t (*stacks)[2] = calloc(N, sizeof(*stacks));
    for (int i = 0; i < N; i++) {
        snprintf(names[i], 16, "fn%d", i);
        frames[i] = (wire_frame_t){ names[i], WIRE_FRAME_USER };
    }
    frames[N] = (wire_frame_t){ "main", WIRE_FRAME_USER };
    uint64_t in = 0;
    for (int i = 0; i < N; i++) {
        stacks[i][0] = (uint32_t)i;
        stacks[i][1] = N;
        samples[i] = (wire_sym_sample_t){ .pid = 7, .tid = 7,
            .kind = WIRE_KIND_ON_CPU, .count = (uint64_t)(i % 3 + 1),
            .weight_ns = 1000, .comm = "big", .nframes = 2,
            .frames = stacks[i], .ntasks = 1, .tasks = task0 };
        in += samples[i].count;
    }
    wire_sym_batch_t b = { .nframes = N + 1, .frames = frames,
                           .ntask_ids = 1, .task_ids = task_ids,
                           .nsamples = N, .samples = samples };
    ck_assert_int_eq(agg_ingest_sym(agg, &b), 0);
    agg_flush(agg, T0 + 1000);
    ck_assert_uint_ge(s_out.n, 3);
    uint64_t out = 0, nstacks = 0;
    arena_t *arena = arena_new(0);
    char err[256];
    for (size_t m = 0; m < s_out.n; m++) {
        wire_profile_batch_t pb;
        arena_reset(arena);
        ck_assert_msg(wire_decode_profile_batch(s_out.msgs[m].data,
                                                s_out.msgs[m].len, arena, &pb,
                                                err, sizeof(err)) == 0,
                      "%s", err);
        for (uint32_t i = 0; i < pb.nprofiles; i++) {
            ck_assert_uint_le(pb.profiles[i].nstacks, AGG_PUBLISH_STACKS);
            for (uint32_t k = 0; k < pb.profiles[i].nstacks; k++) {
                out += pb.profiles[i].stacks[k].count;
                nstacks++;
            }
        }
    }
    ck_assert_uint_eq(nstacks, N);
    ck_assert_uint_eq(out, in);
    arena_destroy(&arena);
    free(frames);
    free(names);
    free(samples);
    free(stacks);
    agg_destroy(&agg);
}
END_TEST

/* Every node of a as path=values lines, sorted, joined. */
static int
s_line(const flame_node_t *n, int depth, void *arg)
{
    char ***lines = arg;
    (void)depth;
    char path[1024] = "";
    size_t off = 0;
    const flame_node_t *chain[64];
    size_t k = 0;
    for (const flame_node_t *p = n; p && k < 64; p = p->parent)
        chain[k++] = p;
    while (k-- > 0 && off < sizeof(path))
        off += (size_t)snprintf(path + off, sizeof(path) - off, "%u:%s/",
                                chain[k]->type, chain[k]->name);
    size_t count = 0;
    while ((*lines)[count])
        count++;
    *lines = realloc(*lines, (count + 2) * sizeof(char *));
    ck_assert_int_gt(asprintf(&(*lines)[count], "%s=%llu/%llu/%llu/%llu",
                              path, (unsigned long long)n->self_ns,
                              (unsigned long long)n->self_count,
                              (unsigned long long)n->total_ns,
                              (unsigned long long)n->total_count), 0);
    (*lines)[count + 1] = NULL;
    return 0;
}

static int
s_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *
s_canon(const flame_t *t)
{
    char **lines = calloc(1, sizeof(char *));
    flame_visit(t, s_line, &lines);
    size_t n = 0, total = 1;
    while (lines[n])
        total += strlen(lines[n++]) + 1;
    qsort(lines, n, sizeof(char *), s_cmp);
    char *out = calloc(1, total);
    for (size_t i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
        free(lines[i]);
    }
    free(lines);
    return out;
}

START_TEST(test_store_roundtrip)
{
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof(path), "%s/sub/dir/history.db", dir);
    agg_t *agg = s_agg(path, 3600000, 0);
    ck_assert_int_eq(agg_store_active(agg), 1);
    s_feed(agg);
    agg_flush(agg, T0 + 1000);
    s_feed(agg);
    s_feed(agg);
    agg_flush(agg, T0 + 2000);
    char *before[4];
    int kinds[2] = { WIRE_KIND_ON_CPU, WIRE_KIND_OFF_CPU };
    for (int k = 0; k < 2; k++) {
        flame_t *t = s_query(agg, AGG_SEL_TOTAL, NULL, 0, kinds[k], T0,
                             T0 + 2000, 1);
        before[k] = s_canon(t);
        flame_destroy(&t);
        t = s_query(agg, AGG_SEL_TASK, "t1", 0, kinds[k], T0, T0 + 2000, 0);
        before[2 + k] = s_canon(t);
        flame_destroy(&t);
    }
    agg_destroy(&agg);

    /* A restart reads the same history back. */
    agg = s_agg(path, 3600000, 0);
    ck_assert_int_eq(agg_store_active(agg), 1);
    ck_assert_uint_eq(agg_history_len(agg), 2);
    for (int k = 0; k < 2; k++) {
        flame_t *t = s_query(agg, AGG_SEL_TOTAL, NULL, 0, kinds[k], T0,
                             T0 + 2000, 1);
        char *after = s_canon(t);
        ck_assert_str_eq(after, before[k]);
        free(after);
        flame_destroy(&t);
        t = s_query(agg, AGG_SEL_TASK, "t1", 0, kinds[k], T0, T0 + 2000, 0);
        after = s_canon(t);
        ck_assert_str_eq(after, before[2 + k]);
        free(after);
        flame_destroy(&t);
    }
    /* Process names come back too. */
    flame_t *t = s_query(agg, AGG_SEL_PID, NULL, 200, WIRE_KIND_ON_CPU, T0,
                         T0 + 2000, 0);
    ck_assert_str_eq(flame_root_name(t), "db");
    ck_assert_uint_eq(flame_root(t)->total_count, 6);
    flame_destroy(&t);
    for (int i = 0; i < 4; i++)
        free(before[i]);
    agg_destroy(&agg);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* Kubernetes discovery: k8s.containers names the pod of pid 100's
 * container; the Total view gets [ns] -> [pod] -> [c] layers above its
 * [p] layer, queries filter by namespace / pod / container, process rows
 * carry the pod, and the store keeps it across a restart. */
static const char *s_pod_cid =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void
s_feed_pod_batch(agg_t *agg)
{
    wire_k8s_container_t row = { s_pod_cid, "shop", "web-1", "app",
                                 "10.1.0.7", "web" };
    wire_k8s_containers_t m = { .node = "", .ncontainers = 1,
                                .containers = &row };
    wire_header_set(&m.hdr, "uplink/test", 1);
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_k8s_containers(&m, &buf), 0);
    ck_assert_int_eq(agg_intake(agg, TOPIC_K8S_CONTAINERS, buf.data,
                                buf.len), 0);
    /* Malformed tables are refused and counted, not applied. */
    ck_assert_int_eq(agg_intake(agg, TOPIC_K8S_CONTAINERS, buf.data,
                                buf.len - 3), -1);
    wire_buf_reset(&buf);
    wire_sym_batch_t b;
    wire_sym_sample_t samples[3];
    agg_fixture_batch(&b, samples);
    wire_proc_t procs[2] = { { 100, 7, "app", s_pod_cid },
                             { 200, 200, "db", "" } };
    b.procs = procs;
    ck_assert_int_eq(wire_encode_sym_batch(&b, &buf), 0);
    ck_assert_int_eq(agg_intake(agg, "sym.stacks.07", buf.data,
                                buf.len), 0);
    wire_buf_release(&buf);
}

static void
s_assert_pod_layers(agg_t *agg)
{
    flame_t *t = s_query(agg, AGG_SEL_TOTAL, NULL, 0, WIRE_KIND_ON_CPU, T0,
                         T0 + 1000, 1);
    const flame_node_t *root = flame_root(t);
    const flame_node_t *ns = s_child(root, "shop", FLAME_NAMESPACE);
    ck_assert_ptr_nonnull(ns);
    const flame_node_t *pod = s_child(ns, "web-1", FLAME_POD);
    ck_assert_ptr_nonnull(pod);
    const flame_node_t *c = s_child(pod, "app", FLAME_CONTAINER);
    ck_assert_ptr_nonnull(c);
    const flame_node_t *p = s_child(c, "app", FLAME_PROCESS);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(p->total_count, 3);
    ck_assert_ptr_nonnull(s_child(p, "worker", FLAME_THREAD));
    /* The host process keeps today's layers. */
    ck_assert_ptr_nonnull(s_child(root, "db", FLAME_PROCESS));
    ck_assert_ptr_null(s_child(root, "app", FLAME_PROCESS));
    flame_destroy(&t);
}

START_TEST(test_pod_layers_and_filters)
{
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof(path), "%s/history.db", dir);
    agg_t *agg = s_agg(path, 3600000, 0);
    s_feed_pod_batch(agg);
    ck_assert_int_eq(agg_flush(agg, T0 + 1000), 0);
    s_assert_pod_layers(agg);

    struct { const char *ns, *pod, *container; uint64_t count; } f[] = {
        { "shop", NULL, NULL, 3 }, { NULL, "web-1", NULL, 3 },
        { NULL, NULL, "app", 3 }, { "shop", "web-1", "app", 3 },
        { "other", NULL, NULL, 0 }, { "shop", "web-2", NULL, 0 },
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        agg_query_t q = { .select = AGG_SEL_TOTAL, .kind = WIRE_KIND_ON_CPU,
                          .start_ms = T0, .end_ms = T0 + 1000, .threads = 1,
                          .ns = f[i].ns, .pod = f[i].pod,
                          .container = f[i].container };
        flame_t *t = agg_query(agg, &q, NULL);
        ck_assert_ptr_nonnull(t);
        ck_assert_msg(flame_root(t)->total_count == f[i].count,
                      "filter %zu: %llu samples", i,
                      (unsigned long long)flame_root(t)->total_count);
        flame_destroy(&t);
    }

    agg_prows_t rows;
    agg_prows_init(&rows);
    ck_assert_int_eq(agg_process_rows(agg, T0, T0 + 1000, &rows), 0);
    ck_assert_uint_eq(rows.n, 2);
    ck_assert_uint_eq(rows.rows[0].pid, 100);
    ck_assert_str_eq(rows.rows[0].ns, "shop");
    ck_assert_str_eq(rows.rows[0].pod, "web-1");
    ck_assert_str_eq(rows.rows[0].container, "app");
    ck_assert_str_eq(rows.rows[1].pod, "");
    /* Through the replicas' text form and back. */
    agg_buf_t text;
    agg_buf_init(&text, 1 << 20);
    agg_prows_text(&rows, &text);
    agg_prows_t back;
    agg_prows_init(&back);
    ck_assert_int_eq(agg_prows_parse(&back, text.data, text.len, 16), 0);
    ck_assert_str_eq(back.rows[0].container, "app");
    ck_assert_str_eq(back.rows[1].ns, "");
    agg_buf_t json;
    agg_buf_init(&json, 1 << 20);
    agg_prows_json(&back, NULL, &json);
    ck_assert_ptr_nonnull(strstr(json.data, "\"namespace\":\"shop\","
                                            "\"pod\":\"web-1\","
                                            "\"container\":\"app\""));
    agg_buf_release(&json);
    agg_buf_release(&text);
    agg_prows_release(&back);
    agg_prows_release(&rows);

    /* The store keeps the pod of each process. */
    agg_destroy(&agg);
    agg = s_agg(path, 3600000, 0);
    ck_assert_uint_eq(agg_history_len(agg), 1);
    s_assert_pod_layers(agg);
    agg_destroy(&agg);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_store_corrupt_is_memory_only)
{
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof(path), "%s/history.db", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 4096; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    agg_t *agg = s_agg(path, 3600000, 0);
    ck_assert_int_eq(agg_store_active(agg), 0);
    /* Still a working aggregator. */
    s_feed(agg);
    ck_assert_int_eq(agg_flush(agg, T0 + 1000), 0);
    flame_t *t = s_query(agg, AGG_SEL_TOTAL, NULL, 0, WIRE_KIND_ON_CPU, T0,
                         T0 + 1000, 1);
    ck_assert_uint_eq(flame_root(t)->total_count, 5);
    flame_destroy(&t);
    agg_destroy(&agg);

    /* A path that cannot be created: same outcome. */
    agg = s_agg("/proc/self/no/such/history.db", 3600000, 0);
    ck_assert_int_eq(agg_store_active(agg), 0);
    agg_destroy(&agg);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_store_retention)
{
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof(path), "%s/history.db", dir);
    agg_options_t o = { .flush_ms = 1000,
                        .history_ms = 3600000, .max_nodes = 1000,
                        .store_path = path, .store_retention_ms = 2500,
                        .stats = s_stats };
    agg_t *agg = agg_new(&o, T0);
    for (int i = 1; i <= 6; i++) {
        s_feed(agg);
        agg_flush(agg, T0 + 1000 * (uint64_t)i);
    }
    agg_destroy(&agg);
    /* Reopened with a long memory history: only the retained windows
     * (ended within 2.5 s of the last flush) came from the store. */
    agg = agg_new(&o, T0 + 6000);
    ck_assert_ptr_nonnull(agg);
    ck_assert_uint_eq(agg_history_len(agg), 3);
    agg_destroy(&agg);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_malformed_input)
{
    agg_t *agg = s_agg(NULL, 3600000, 0);
    stats_metric_t *invalid = stats_counter(s_stats, "invalid_messages", NULL,
                                            NULL);
    stats_metric_t *rejected = stats_counter(s_stats, "samples_rejected",
                                             NULL, NULL);
    const char junk[] = "\x93\x01\xa3not a batch";
    ck_assert_int_eq(agg_intake(agg, "sym.stacks.01", junk,
                                sizeof(junk)), -1);
    ck_assert_int_eq(agg_intake(agg, "proc.events", junk, 3), -1);
    ck_assert_int_eq(agg_intake(agg, "ctl.tasks", "", 0), -1);
    ck_assert_int_eq(agg_intake(agg, "stats.collector", junk, 5), -1);
    ck_assert_uint_eq((uint64_t)stats_value(invalid), 4);

    /* Samples pointing outside the batch are dropped one by one. */
    wire_sym_batch_t b;
    wire_sym_sample_t samples[3];
    agg_fixture_batch(&b, samples);
    uint32_t bad_frames[] = { 0, 99 };
    uint32_t bad_task[] = { 5 };
    samples[0].frames = bad_frames;
    samples[0].nframes = 2;
    samples[0].nkernel = 1;
    samples[2].tasks = bad_task;
    ck_assert_int_eq(agg_ingest_sym(agg, &b), 0);
    ck_assert_uint_eq((uint64_t)stats_value(rejected), 2);
    agg_flush(agg, T0 + 1000);
    flame_t *t = s_query(agg, AGG_SEL_TOTAL, NULL, 0, WIRE_KIND_ON_CPU, T0,
                         T0 + 1000, 1);
    ck_assert_uint_eq(flame_root(t)->total_count, 2);
    flame_destroy(&t);
    agg_destroy(&agg);
}
END_TEST

START_TEST(test_task_request_published)
{
    agg_t *agg = s_agg(NULL, 3600000, 0);
    char id[64], err[128];
    ck_assert_int_eq(agg_request_task(agg, 0, WIRE_TARGET_ON_CPU, 1000, 0, id,
                                      sizeof(id), err, sizeof(err)), -1);
    ck_assert_int_eq(agg_request_task(agg, 4242, WIRE_TARGET_OFF_CPU, 30000,
                                      T0 + 5, id, sizeof(id), err,
                                      sizeof(err)), 0);
    ck_assert_uint_gt(strlen(id), 4);
    ck_assert_uint_eq(s_out.n, 0);
    ck_assert_int_eq(agg_pump(agg), 0);
    ck_assert_uint_eq(s_out.n, 1);
    ck_assert_str_eq(s_out.msgs[0].topic, "task.request");
    arena_t *arena = arena_new(0);
    wire_task_set_t set;
    ck_assert_int_eq(wire_decode_task_set(s_out.msgs[0].data,
                                          s_out.msgs[0].len, arena, &set, err,
                                          sizeof(err)), 0);
    ck_assert_uint_eq(set.ntasks, 1);
    ck_assert_str_eq(set.tasks[0].task_id, id);
    ck_assert_uint_eq(set.tasks[0].source, WIRE_SRC_API);
    ck_assert_uint_eq(set.tasks[0].target, WIRE_TARGET_OFF_CPU);
    ck_assert_uint_eq(set.tasks[0].duration_ms, 30000);
    ck_assert_uint_eq(set.tasks[0].start_ms, T0 + 5);
    ck_assert_uint_eq(set.tasks[0].npids, 1);
    ck_assert_uint_eq(set.tasks[0].pids[0], 4242);
    /* Nothing left to send. */
    ck_assert_int_eq(agg_pump(agg), 0);
    ck_assert_uint_eq(s_out.n, 1);

    /* A NETWORK task of three processes with its sampling rules. */
    static const uint32_t pids[] = {10, 20, 30};
    static const char rules[] = "{\"networkSamplings\":[{\"when5xx\":true}]}";
    agg_task_spec_t spec = {.pids = pids, .npids = 3,
                            .target = WIRE_TARGET_NETWORK,
                            .duration_ms = 600000, .extension_json = rules};
    ck_assert_int_eq(agg_request_tasks(agg, &spec, id, sizeof(id), err,
                                       sizeof(err)), 0);
    ck_assert_int_eq(agg_pump(agg), 0);
    ck_assert_uint_eq(s_out.n, 2);
    ck_assert_int_eq(wire_decode_task_set(s_out.msgs[1].data,
                                          s_out.msgs[1].len, arena, &set, err,
                                          sizeof(err)), 0);
    ck_assert_uint_eq(set.tasks[0].target, WIRE_TARGET_NETWORK);
    ck_assert_uint_eq(set.tasks[0].npids, 3);
    ck_assert_uint_eq(set.tasks[0].pids[2], 30);
    ck_assert_str_eq(set.tasks[0].extension_json, rules);
    spec.pids = (const uint32_t[]){10, 0};
    spec.npids = 2;
    ck_assert_int_eq(agg_request_tasks(agg, &spec, id, sizeof(id), err,
                                       sizeof(err)), -1);
    spec.npids = 0;
    ck_assert_int_eq(agg_request_tasks(agg, &spec, id, sizeof(id), err,
                                       sizeof(err)), -1);
    /* a request still queued when the aggregator goes is freed with it */
    spec.pids = pids;
    spec.npids = 1;
    ck_assert_int_eq(agg_request_tasks(agg, &spec, id, sizeof(id), err,
                                       sizeof(err)), 0);
    arena_destroy(&arena);
    agg_destroy(&agg);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("aggregator");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_total_view_layers);
    tcase_add_test(tc, test_process_and_task_views);
    tcase_add_test(tc, test_pod_layers_and_filters);
    tcase_add_test(tc, test_history_bounds);
    tcase_add_test(tc, test_publish_profiles);
    tcase_add_test(tc, test_publish_splits_large_windows);
    tcase_add_test(tc, test_store_roundtrip);
    tcase_add_test(tc, test_store_corrupt_is_memory_only);
    tcase_add_test(tc, test_store_retention);
    tcase_add_test(tc, test_malformed_input);
    tcase_add_test(tc, test_task_request_published);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
