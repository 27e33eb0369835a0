/* The aggregator's HTTP API on a loopback test port, fed with synthetic
 * symbolized batches through the in-process API (no bus). JSON answers
 * are checked by python3's json module (an independent parser): node
 * totals equal self plus children, Total -> [p] -> [t] layering, values in
 * microseconds. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aggregator/core/agg.h"
#include "aggregator/http/api.h"
#include "aggregator/http/routes.h"
#include "log.h"
#include "agg_fixture.h"
#include "testutil.h"
#include "wire.h"

/* Ingests the shared fixture batch directly, without the codec. */
static void
s_feed(agg_t *agg)
{
    wire_sym_batch_t b;
    wire_sym_sample_t samples[AGG_FIXTURE_SAMPLES];
    agg_fixture_batch(&b, samples);
    ck_assert_int_eq(agg_ingest_sym(agg, &b), 0);
}

typedef struct {
    char topic[32];
    char *data;
    size_t len;
    int n;
} last_msg_t;

static int
s_capture(void *arg, msg_id_t id, void *body)
{
    last_msg_t *m = arg;
    wire_buf_t buf;
    if (id != MSG_TASK_REQUEST)
        return 0;
    /* Encoded as bus_send would. */
    wire_buf_init(&buf);
    ck_assert_int_eq(msg_encode(id, body, "aggregator/test", m->n + 1, &buf),
                     0);
    free(m->data);
    m->data = malloc(buf.len);
    memcpy(m->data, buf.data, buf.len);
    m->len = buf.len;
    wire_buf_release(&buf);
    snprintf(m->topic, sizeof(m->topic), "%s", msg_desc(id)->topic);
    m->n++;
    return 0;
}

static stats_t *s_stats;
static agg_t *s_agg;
static agg_api_t *s_api;
static net_t *s_net;
static int s_port;
static last_msg_t s_msg;
static uint64_t s_t0;
static char s_range[128];        /* "start=..&end=.." covering the data */
static char s_range_json[128];   /* "time_start":..,"time_end":.. */

static void
s_setup(void)
{
    char err[256];
    memset(&s_msg, 0, sizeof(s_msg));
    s_stats = stats_new("aggregator", "test");
    /* Data windows sit a little in the past, so every range below covers
     * them whatever second the test runs in. */
    s_t0 = now_wall_ms() - 3000;
    agg_options_t o = { .flush_ms = 1000,
                        .history_ms = 3600000, .max_nodes = 10000,
                        .stats = s_stats, .publish = s_capture,
                        .publish_arg = &s_msg };
    s_agg = agg_new(&o, s_t0);
    ck_assert_ptr_nonnull(s_agg);
    agg_api_options_t ao = { .addr = "127.0.0.1:0" };
    s_api = agg_api_new(s_agg, &ao, err, sizeof(err));
    ck_assert_msg(s_api != NULL, "%s", err);
    s_port = agg_api_port(s_api);
    ck_assert_int_gt(s_port, 0);
    net_options_t no = { .stats = s_stats, .max_conns = 16,
                         .max_endpoints = 16 };
    s_net = net_new(&no);
    ck_assert_ptr_nonnull(s_net);
    agg_api_set_net(s_api, s_net);
    s_feed(s_agg);
    ck_assert_int_eq(agg_flush(s_agg, s_t0 + 1000), 0);
    uint64_t start = s_t0 / 1000 - 5, end = s_t0 / 1000 + 5;
    snprintf(s_range, sizeof(s_range), "start=%llu&end=%llu",
             (unsigned long long)start, (unsigned long long)end);
    snprintf(s_range_json, sizeof(s_range_json),
             "\"time_start\":%llu,\"time_end\":%llu",
             (unsigned long long)start, (unsigned long long)end);
}

static void
s_teardown(void)
{
    agg_api_destroy(&s_api);
    net_destroy(&s_net);
    agg_destroy(&s_agg);
    stats_destroy(&s_stats);
    free(s_msg.data);
}

static char *
s_req(const char *method, const char *path, const char *body, int *status)
{
    size_t len = 0;
    char *out = tu_http(method, "127.0.0.1", s_port, path, body, status,
                        &len);
    ck_assert_msg(out != NULL, "no answer for %s %s", method, path);
    return out;
}

static char *
s_get(const char *fmt, const char *arg, int *status)
{
    char path[512];
    snprintf(path, sizeof(path), fmt, arg, s_range);
    return s_req("GET", path, NULL, status);
}

/* Runs a python3 check over a JSON document; returns its one-line
 * verdict (malloc'ed), which starts with "OK" on success. */
static char *
s_python(const char *script, const char *json)
{
    char dir_tpl[] = "/tmp/skyprof-api-XXXXXX";
    char *dir = mkdtemp(dir_tpl);
    ck_assert_ptr_nonnull(dir);
    char jpath[256], spath[256], cmd[640];
    snprintf(jpath, sizeof(jpath), "%s/doc.json", dir);
    snprintf(spath, sizeof(spath), "%s/check.py", dir);
    FILE *f = fopen(jpath, "w");
    fputs(json, f);
    fclose(f);
    f = fopen(spath, "w");
    fputs(script, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "python3 %s %s 2>&1", spath, jpath);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[4096] = "";
    size_t n = fread(line, 1, sizeof(line) - 1, p);
    line[n] = '\0';
    pclose(p);
    unlink(jpath);
    unlink(spath);
    rmdir(dir);
    return strdup(line);
}

/* Validates a ProfileTracing answer and prints facts the C side checks. */
static const char s_check_tracing[] =
    "import json, sys\n"
    "d = json.load(open(sys.argv[1]))\n"
    "assert d['OPT_STATUS'] == 'SUCCESS', d\n"
    "assert d['DESCRIPTION'] == '' and d['debug'] is None\n"
    "r = d['result']\n"
    "root = r[0]\n"
    "assert root['node_id'] == '' and root['parent_node_id'] == '-1'\n"
    "ids = {n['node_id']: n for n in r}\n"
    "assert len(ids) == len(r), 'duplicate node ids'\n"
    "kids = {}\n"
    "for n in r[1:]:\n"
    "    assert n['parent_node_id'] in ids, n\n"
    "    assert len(n['node_id']) == 36 and n['node_id'].count('-') == 4\n"
    "    kids.setdefault(n['parent_node_id'], []).append(n)\n"
    "for n in r:\n"
    "    s = sum(k['total_value'] for k in kids.get(n['node_id'], []))\n"
    "    assert n['total_value'] == n['self_value'] + s, n\n"
    "    assert n['self_value'] >= 0\n"
    "def depth(n):\n"
    "    d = 0\n"
    "    while n['parent_node_id'] != '-1':\n"
    "        n = ids[n['parent_node_id']]; d += 1\n"
    "    return d\n"
    "layers = {}\n"
    "for n in r[1:]:\n"
    "    layers.setdefault(depth(n), set()).add(n['profile_location_str'])\n"
    "def byname(name):\n"
    "    return [n for n in r if n['profile_location_str'] == name]\n"
    "out = ['OK', root['profile_location_str'], str(root['total_value'])]\n"
    "for k in sorted(layers):\n"
    "    out.append('L%d=%s' % (k, ','.join(sorted(layers[k]))))\n"
    "for name in ('[p] app', '[p] db', '[t] worker', '[l] libc_read'):\n"
    "    m = byname(name)\n"
    "    if m: out.append('%s:%d' % (name, m[0]['total_value']))\n"
    "print(' '.join(out))\n";

START_TEST(test_profile_tracing_total)
{
    if (!tu_require_tool("profile_tracing_total", "python3"))
        return;
    char body[512];
    int status = 0;
    snprintf(body, sizeof(body),
             "{\"app_service\":\"Total\",\"profile_language_type\":\"eBPF\","
             "\"profile_event_type\":\"on-cpu\",\"tag_filter\":\"\",%s,}",
             s_range_json);
    char *resp = s_req("POST", "/v1/profile/ProfileTracing", body, &status);
    ck_assert_int_eq(status, 200);
    char *verdict = s_python(s_check_tracing, resp);
    /* 50 ms in microseconds, then [p] / [t] / frames layers. */
    ck_assert_msg(strncmp(verdict, "OK Total 50000 ", 15) == 0, "%s",
                  verdict);
    ck_assert_msg(strstr(verdict, " L1=[p] app,[p] db ") != NULL, "%s",
                  verdict);
    ck_assert_msg(strstr(verdict, " L2=[t] db,[t] worker ") != NULL, "%s",
                  verdict);
    ck_assert_msg(strstr(verdict, " L3=main ") != NULL, "%s", verdict);
    ck_assert_msg(strstr(verdict, "[p] app:30000") != NULL, "%s", verdict);
    ck_assert_msg(strstr(verdict, "[p] db:20000") != NULL, "%s", verdict);
    free(verdict);
    free(resp);

    /* tag_filter pid keeps one process. */
    snprintf(body, sizeof(body),
             "{\"app_service\":\"Total\",\"tag_filter\":\"pid='200'\",%s}",
             s_range_json);
    resp = s_req("POST", "/v1/profile/ProfileTracing", body, &status);
    ck_assert_int_eq(status, 200);
    verdict = s_python(s_check_tracing, resp);
    ck_assert_msg(strncmp(verdict, "OK Total 20000 L1=[p] db ", 25) == 0,
                  "%s", verdict);
    free(verdict);
    free(resp);
}
END_TEST

/* Kubernetes discovery: a window where pid 100 runs in pod shop/web-1
 * (container "app"): tag_filter and namespace= / pod= / container= keep
 * its samples, Total shows [ns] -> [pod] -> [c] above [p], and
 * /api/processes names the pod. */
START_TEST(test_pod_filters)
{
    if (!tu_require_tool("pod_filters", "python3"))
        return;
    static const char *cid =
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    wire_k8s_container_t row = { cid, "shop", "web-1", "app", "10.1.0.7",
                                 "web" };
    wire_k8s_containers_t m = { .node = "", .ncontainers = 1,
                                .containers = &row };
    agg_ingest_k8s(s_agg, &m);
    wire_sym_batch_t b;
    wire_sym_sample_t samples[AGG_FIXTURE_SAMPLES];
    agg_fixture_batch(&b, samples);
    wire_proc_t procs[2] = { { 100, 7, "app", cid }, { 200, 200, "db", "" } };
    b.procs = procs;
    ck_assert_int_eq(agg_ingest_sym(s_agg, &b), 0);
    ck_assert_int_eq(agg_flush(s_agg, s_t0 + 2000), 0);

    char body[512];
    int status = 0;
    snprintf(body, sizeof(body),
             "{\"app_service\":\"Total\",\"tag_filter\":\"namespace='shop' "
             "AND pod='web-1' AND container=app\",%s}", s_range_json);
    char *resp = s_req("POST", "/v1/profile/ProfileTracing", body, &status);
    ck_assert_int_eq(status, 200);
    char *verdict = s_python(s_check_tracing, resp);
    ck_assert_msg(strncmp(verdict, "OK Total 30000 L1=[ns] shop "
                                   "L2=[pod] web-1 L3=[c] app L4=[p] app ",
                          60) == 0, "%s", verdict);
    free(verdict);
    free(resp);
    /* Unfiltered: the pod's process under its layers, db as before. */
    snprintf(body, sizeof(body), "{\"app_service\":\"Total\",%s}",
             s_range_json);
    resp = s_req("POST", "/v1/profile/ProfileTracing", body, &status);
    verdict = s_python(s_check_tracing, resp);
    ck_assert_msg(strstr(verdict, " L1=[ns] shop,[p] app,[p] db ") != NULL,
                  "%s", verdict);
    free(verdict);
    free(resp);

    /* The same filters as query parameters, on the other endpoints. */
    resp = s_get("/api/folded?app_service=Total&namespace=%s&%s", "shop",
                 &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp, "[ns] shop;[pod] web-1;[c] app;"
                                       "[p] app;"));
    ck_assert_ptr_null(strstr(resp, "[p] db"));
    free(resp);
    resp = s_get("/api/folded?app_service=Total&pod=%s&%s", "nope", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_null(strstr(resp, "[p]"));
    free(resp);
    resp = s_get("/api/flamegraph.svg?app_service=app&container=%s&%s", "app",
                 &status);
    ck_assert_int_eq(status, 200);
    free(resp);
    resp = s_get("/api/folded?app_service=Total&namespace=%s&%s", "",
                 &status);
    ck_assert_int_eq(status, 400);
    free(resp);
    resp = s_get("/api/folded?task_id=t1&pod=%s&%s", "web-1", &status);
    ck_assert_int_eq(status, 400);
    free(resp);
    resp = s_get("/api/processes?x=%s&%s", "1", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp, "\"namespace\":\"shop\",\"pod\":"
                                       "\"web-1\",\"container\":\"app\""));
    free(resp);
    /* The same filters on the process list: the pod's process only. */
    resp = s_get("/api/processes?namespace=%s&%s", "shop", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp, "\"pid\":100,"));
    ck_assert_ptr_null(strstr(resp, "\"pid\":200,"));
    free(resp);
    resp = s_get("/api/processes?container=%s&%s", "other", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp, "{\"processes\":[]}"));
    free(resp);
    resp = s_get("/api/processes?pod=%s&%s", "", &status);
    ck_assert_int_eq(status, 400);
    free(resp);
}
END_TEST

START_TEST(test_profile_tracing_process)
{
    if (!tu_require_tool("profile_tracing_process", "python3"))
        return;
    char body[512];
    int status = 0;
    snprintf(body, sizeof(body),
             "{\"app_service\":\"app\",\"profile_event_type\":\"on-cpu\",%s}",
             s_range_json);
    char *resp = s_req("POST", "/v1/profile/ProfileTracing", body, &status);
    ck_assert_int_eq(status, 200);
    char *verdict = s_python(s_check_tracing, resp);
    ck_assert_msg(strncmp(verdict, "OK app 30000 L1=[t] worker L2=main "
                          "L3=[l] libc_read L4=u_leaf L5=[k] k_sys "
                          "L6=[k] k_leaf", 71) == 0, "%s", verdict);
    free(verdict);
    free(resp);

    snprintf(body, sizeof(body),
             "{\"app_service\":\"app\",\"profile_event_type\":\"off-cpu\",%s}",
             s_range_json);
    resp = s_req("POST", "/v1/profile/ProfileTracing", body, &status);
    ck_assert_int_eq(status, 200);
    verdict = s_python(s_check_tracing, resp);
    ck_assert_msg(strncmp(verdict, "OK app 4000 ", 12) == 0, "%s", verdict);
    free(verdict);
    free(resp);

    /* A name nobody has: just the root. */
    snprintf(body, sizeof(body), "{\"app_service\":\"ghost\",%s}",
             s_range_json);
    resp = s_req("POST", "/v1/profile/ProfileTracing", body, &status);
    ck_assert_int_eq(status, 200);
    verdict = s_python(s_check_tracing, resp);
    ck_assert_msg(strcmp(verdict, "OK ghost 0\n") == 0, "%s", verdict);
    free(verdict);
    free(resp);
}
END_TEST

static void
s_expect_400(const char *method, const char *path, const char *body,
             int want)
{
    int status = 0;
    char *resp = s_req(method, path, body, &status);
    ck_assert_msg(status == want, "%s %s -> %d (%s)", method, path, status,
                  resp);
    if (strstr(path, "ProfileTracing"))
        ck_assert_msg(strstr(resp, "\"OPT_STATUS\":\"FAILED\"") != NULL
                          && strstr(resp, "\"DESCRIPTION\":\"\"") == NULL,
                      "%s", resp);
    free(resp);
}

START_TEST(test_bad_requests)
{
    const char *tr = "/v1/profile/ProfileTracing";
    s_expect_400("POST", tr, "", 400);
    s_expect_400("POST", tr, "not json", 400);
    s_expect_400("POST", tr, "{\"app_service\":", 400);
    s_expect_400("POST", tr, "[1,2]", 400);
    s_expect_400("POST", tr, "{\"profile_event_type\":\"on-cpu\"}", 400);
    s_expect_400("POST", tr, "{\"app_service\":7}", 400);
    s_expect_400("POST", tr, "{\"app_service\":\"app\","
                 "\"profile_event_type\":\"mem\"}", 400);
    s_expect_400("POST", tr, "{\"app_service\":\"app\",\"time_start\":20,"
                 "\"time_end\":10}", 400);
    s_expect_400("POST", tr, "{\"app_service\":\"app\",\"time_start\":-5}",
                 400);
    s_expect_400("POST", tr, "{\"app_service\":\"app\","
                 "\"tag_filter\":\"pod_ns='x'\"}", 400);
    s_expect_400("POST", tr, "{\"app_service\":\"app\","
                 "\"tag_filter\":\"pid='abc'\"}", 400);
    s_expect_400("GET", tr, NULL, 405);
    char *big = malloc(70000);
    memset(big, ' ', 69999);
    big[0] = '{';
    big[69998] = '}';
    big[69999] = '\0';
    s_expect_400("POST", tr, big, 413);
    free(big);

    s_expect_400("GET", "/api/tree", NULL, 400);
    s_expect_400("GET", "/api/tree?pid=0", NULL, 400);
    s_expect_400("GET", "/api/folded?event=bogus", NULL, 400);
    s_expect_400("GET", "/api/folded?pid=12x", NULL, 400);
    s_expect_400("GET", "/api/folded?start=9&end=3", NULL, 400);
    s_expect_400("GET", "/api/folded?unit=parsecs", NULL, 400);
    s_expect_400("GET", "/api/folded?task_id=t1&pid=3", NULL, 400);
    s_expect_400("GET", "/api/processes?start=yesterday", NULL, 400);
    s_expect_400("POST", "/api/tasks", "{\"pid\":0,\"duration\":5}", 400);
    s_expect_400("POST", "/api/tasks", "{\"pid\":5}", 400);
    s_expect_400("POST", "/api/tasks", "{\"pid\":5,\"duration\":5,"
                 "\"target\":\"GPU\"}", 400);
    s_expect_400("POST", "/api/tasks", "{\"pid\":\"5\",\"duration\":5}", 400);
    s_expect_400("DELETE", "/api/tasks", NULL, 405);
    s_expect_400("GET", "/nope", NULL, 404);

    /* Bodies: one object of at most 32 members, integers where integers
     * are asked for, a repeated member's last value counts. */
    char many[1024] = "{";
    for (int i = 0; i < 33; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many),
                 "\"f%d\":%d,", i, i);
    snprintf(many + strlen(many), sizeof(many) - strlen(many),
             "\"pid\":5,\"duration\":5}");
    s_expect_400("POST", "/api/tasks", many, 400);
    s_expect_400("POST", "/api/tasks", "{\"pid\":5,\"duration\":5,"
                 "\"start\":1e3}", 400);
    s_expect_400("POST", "/api/tasks", "{\"pid\":5,\"duration\":2.5}", 400);
    s_expect_400("POST", "/api/tasks", "{\"pid\":5,\"duration\":5}}", 400);
    s_expect_400("POST", "/api/tasks", "{\"pid\":0,\"duration\":5,"
                 "\"pid\":7}", 200);
    s_expect_400("POST", "/api/tasks", "{\"pid\":7,\"duration\":5,"
                 "\"pid\":0}", 400);
}
END_TEST

static const char s_check_tree[] =
    "import json, sys\n"
    "d = json.load(open(sys.argv[1]))\n"
    "assert d['tip'] == ''\n"
    "els = d['trees'][0]['elements']\n"
    "ids = {e['id'] for e in els}\n"
    "assert len(ids) == len(els)\n"
    "by = {}\n"
    "for e in els:\n"
    "    assert e['parentId'] in ids or e['parentId'] == '0', e\n"
    "    assert e['stackType'] in ('KERNEL_SPACE', 'USER_SPACE')\n"
    "    by[e['symbol']] = e\n"
    "print('OK', len(els), by['main']['dumpCount'], by['k_sys']['stackType'],"
    " by['u_leaf']['stackType'], by['main']['parentId'])\n";

START_TEST(test_tree_folded_and_renderers)
{
    if (!tu_require_tool("tree", "python3"))
        return;
    int status = 0;
    char *resp = s_get("/api/tree?task_id=%s&%s", "t1", &status);
    ck_assert_int_eq(status, 200);
    char *verdict = s_python(s_check_tree, resp);
    ck_assert_msg(strcmp(verdict, "OK 5 3 KERNEL_SPACE USER_SPACE 0\n") == 0,
                  "%s", verdict);
    free(verdict);
    free(resp);
    /* By pid: no thread layer in SkyWalking's shape. */
    resp = s_get("/api/tree?pid=%s&%s", "100", &status);
    ck_assert_int_eq(status, 200);
    verdict = s_python(s_check_tree, resp);
    ck_assert_msg(strcmp(verdict, "OK 5 3 KERNEL_SPACE USER_SPACE 0\n") == 0,
                  "%s", verdict);
    ck_assert_ptr_null(strstr(resp, "worker"));
    free(verdict);
    free(resp);

    resp = s_get("/api/folded?app_service=%s&%s", "app", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(resp, "[t] worker;main;[l] libc_read;u_leaf;[k] k_sys;"
                           "[k] k_leaf 3\n");
    free(resp);
    resp = s_get("/api/folded?pid=%s&event=off-cpu&unit=us&%s", "100",
                 &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(resp, "[t] worker;main;[k] k_sys 4000\n");
    free(resp);
    resp = s_get("/api/folded?%s&%s", "unit=count", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp, "[p] db;[t] db;main;u_leaf 2\n"));
    free(resp);

    size_t len = 0;
    char path[256];
    snprintf(path, sizeof(path), "/api/pprof?app_service=app&%s", s_range);
    resp = tu_http("GET", "127.0.0.1", s_port, path, NULL, &status, &len);
    ck_assert_int_eq(status, 200);
    ck_assert_uint_gt(len, 20);
    ck_assert_int_eq((unsigned char)resp[0], 0x1f);
    ck_assert_int_eq((unsigned char)resp[1], 0x8b);
    free(resp);
    resp = s_get("/api/flamegraph.svg?app_service=%s&%s", "app", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp, "<svg"));
    ck_assert_ptr_nonnull(strstr(resp, "libc_read"));
    free(resp);
    resp = s_req("GET", "/", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp, "<html"));
    free(resp);
    resp = s_req("GET", "/healthz", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(resp, "ok\n");
    free(resp);
}
END_TEST

static const char s_check_procs[] =
    "import json, sys\n"
    "d = json.load(open(sys.argv[1]))\n"
    "p = {x['pid']: x for x in d['processes']}\n"
    "a = p[100]; b = p[200]\n"
    "print('OK', len(p), a['name'], a['samples'], a['cpu_us'], b['name'],"
    " b['cpu_us'], a['alive'])\n";

START_TEST(test_processes_and_tasks)
{
    if (!tu_require_tool("processes", "python3"))
        return;
    int status = 0;
    char *resp = s_get("/api/processes?%s%s", "", &status);
    ck_assert_int_eq(status, 200);
    char *verdict = s_python(s_check_procs, resp);
    ck_assert_msg(strcmp(verdict, "OK 2 app 3 30000 db 20000 True\n") == 0,
                  "%s", verdict);
    free(verdict);
    free(resp);

    resp = s_req("POST", "/api/tasks", "{\"pid\":321,\"target\":\"OFF_CPU\","
                 "\"duration\":60}", &status);
    ck_assert_int_eq(status, 200);
    char id[64] = "";
    ck_assert_int_eq(sscanf(resp, "{\"task_id\":\"%63[^\"]\"}", id), 1);
    free(resp);
    /* The request is published from the loop thread's pump. */
    ck_assert_int_eq(agg_pump(s_agg), 0);
    ck_assert_int_eq(s_msg.n, 1);
    arena_t *arena = arena_new(0);
    wire_task_set_t set;
    char err[256];
    ck_assert_int_eq(wire_decode_task_set(s_msg.data, s_msg.len, arena, &set,
                                          err, sizeof(err)), 0);
    ck_assert_str_eq(set.tasks[0].task_id, id);
    ck_assert_uint_eq(set.tasks[0].pids[0], 321);
    ck_assert_uint_eq(set.tasks[0].target, WIRE_TARGET_OFF_CPU);
    ck_assert_uint_eq(set.tasks[0].duration_ms, 60000);

    /* A NETWORK task of two processes with its sampling rules. */
    resp = s_req("POST", "/api/tasks", "{\"pids\":[7,8],\"target\":\"NETWORK\","
                 "\"duration\":600,\"extension_config\":"
                 "\"{\\\"networkSamplings\\\":[{\\\"when5xx\\\":true}]}\"}",
                 &status);
    ck_assert_int_eq(status, 200);
    free(resp);
    ck_assert_int_eq(agg_pump(s_agg), 0);
    ck_assert_int_eq(wire_decode_task_set(s_msg.data, s_msg.len, arena, &set,
                                          err, sizeof(err)), 0);
    ck_assert_uint_eq(set.tasks[0].target, WIRE_TARGET_NETWORK);
    ck_assert_uint_eq(set.tasks[0].npids, 2);
    ck_assert_uint_eq(set.tasks[0].pids[1], 8);
    ck_assert_str_eq(set.tasks[0].extension_json,
                     "{\"networkSamplings\":[{\"when5xx\":true}]}");
    s_expect_400("POST", "/api/tasks", "{\"pids\":[],\"duration\":5}", 400);
    s_expect_400("POST", "/api/tasks", "{\"pids\":[1,0],\"duration\":5}", 400);
    s_expect_400("POST", "/api/tasks", "{\"pid\":1,\"duration\":5,"
                 "\"extension_config\":{}}", 400);
    arena_destroy(&arena);

    resp = s_req("GET", "/api/tasks", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp, id));
    ck_assert_ptr_nonnull(strstr(resp, "\"state\":\"requested\""));
    free(resp);
}
END_TEST

START_TEST(test_metrics)
{
    /* Another stage's counters arrive on stats.<stage>. */
    wire_metric_t m[2] = {
        { "skyprof_collector_samples", "", WIRE_METRIC_COUNTER, 1234 },
        { "skyprof_collector_ring_fill", "cpu=\"0\"", WIRE_METRIC_GAUGE,
          0.5 },
    };
    wire_stats_t st = { .stage = "collector", .instance = "c1",
                        .nmetrics = 2, .metrics = m };
    wire_header_set(&st.hdr, "collector/c1", 1);
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_stats(&st, &buf), 0);
    ck_assert_int_eq(agg_intake(s_agg, "stats.collector", buf.data,
                                buf.len), 0);
    wire_buf_release(&buf);

    int status = 0;
    char *warm = s_req("GET", "/healthz", NULL, &status);
    free(warm);
    char *resp = s_req("GET", "/metrics", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp, "skyprof_aggregator_batches_in"));
    ck_assert_ptr_nonnull(strstr(resp, "skyprof_aggregator_windows"));
    ck_assert_ptr_nonnull(strstr(resp, "path=\"/healthz\""));
    ck_assert_ptr_nonnull(strstr(resp, "# TYPE skyprof_collector_samples "
                                       "counter\n"));
    ck_assert_ptr_nonnull(strstr(resp, "skyprof_collector_samples{stage="
                                       "\"collector\",instance=\"c1\"} "
                                       "1234\n"));
    ck_assert_ptr_nonnull(strstr(resp, "skyprof_collector_ring_fill{stage="
                                       "\"collector\",instance=\"c1\","
                                       "cpu=\"0\"} 0.5\n"));
    free(resp);
}
END_TEST

/* The network room's view: a JSON document, a bad pid refused. */
START_TEST(test_network_view)
{
    int status = 0;
    char *resp = s_req("GET", "/api/network?pid=100", NULL, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp, "\"edges\":[]"));
    ck_assert_ptr_nonnull(strstr(resp, "\"endpoints\":[]"));
    free(resp);
    resp = s_req("GET", "/api/network?pid=x", NULL, &status);
    ck_assert_int_eq(status, 400);
    free(resp);
}
END_TEST

/* The route table is what the server answers: every row is served (its
 * handler may refuse the arguments with 400, never 404), has its own
 * request counter, and a method it does not take is 405; a path outside
 * the table is 404 whatever the method. */
START_TEST(test_every_route_answers)
{
    int status = 0;
    ck_assert_uint_gt(api_nroutes, 10);
    for (size_t i = 0; i < api_nroutes; i++) {
        const api_route_t *rt = &api_routes[i];
        ck_assert_ptr_nonnull(rt->handler);
        ck_assert_msg(rt->help && rt->help[0], "%s has no help", rt->path);
        char *resp = s_req(rt->method, rt->path,
                           strcmp(rt->method, "POST") == 0 ? "{}" : NULL,
                           &status);
        ck_assert_msg(status != 404 && status != 405 && status < 500,
                      "%s %s answered %d", rt->method, rt->path, status);
        free(resp);
        resp = s_req("PUT", rt->path, "{}", &status);
        ck_assert_msg(status == 405, "PUT %s answered %d", rt->path, status);
        free(resp);
    }
    const char *unknown[] = { "/nope", "/api", "/api/tree/x", "/metrics/",
                              "/API/TREE", "/v1/profile" };
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        char *resp = s_req("GET", unknown[i], NULL, &status);
        ck_assert_msg(status == 404, "GET %s answered %d", unknown[i],
                      status);
        free(resp);
        resp = s_req("POST", unknown[i], "{}", &status);
        ck_assert_msg(status == 404, "POST %s answered %d", unknown[i],
                      status);
        free(resp);
    }
    char *metrics = s_req("GET", "/metrics", NULL, &status);
    ck_assert_int_eq(status, 200);
    for (size_t i = 0; i < api_nroutes; i++) {
        char label[128];
        snprintf(label, sizeof(label), ",path=\"%s\"} ",
                 api_routes[i].path);
        ck_assert_msg(strstr(metrics, label), "no counter %s", label);
    }
    ck_assert_ptr_nonnull(strstr(metrics, ",path=\"other\"} "));
    free(metrics);
}
END_TEST

/* --help lists every row of the table. */
START_TEST(test_help_lists_every_route)
{
    char *help = agg_api_help();
    ck_assert_ptr_nonnull(help);
    for (size_t i = 0; i < api_nroutes; i++) {
        char line[256];
        snprintf(line, sizeof(line), "  %s %s", api_routes[i].method,
                 api_routes[i].path);
        ck_assert_msg(strstr(help, line), "--help lacks %s", line);
        ck_assert_ptr_nonnull(strstr(help, api_routes[i].help));
    }
    free(help);
}
END_TEST


/* ------------------------------------------------- request admission */

/* A raw request's status on the shared server (s_port). */
static int
s_status(const char *fmt, ...)
{
    char req[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(req, sizeof(req), fmt, ap);
    va_end(ap);
    ck_assert(n > 0 && (size_t)n < sizeof(req));
    int status = 0;
    char *resp = tu_http_raw("127.0.0.1", s_port, req, (size_t)n, &status,
                             NULL);
    ck_assert_msg(resp != NULL, "no answer to %s", req);
    free(resp);
    return status;
}

START_TEST(test_host_must_name_this_server)
{
    const char *get = "GET /api/tasks HTTP/1.1\r\nHost: %s\r\n"
                      "Connection: close\r\n\r\n";
    /* DNS rebinding: a name the attacker points at 127.0.0.1. */
    ck_assert_int_eq(s_status(get, "evil.example"), 403);
    ck_assert_int_eq(s_status(get, "evil.example:8080"), 403);
    ck_assert_int_eq(s_status(get, "127.0.0.1.evil.example"), 403);
    ck_assert_int_eq(s_status(get, "a b"), 400);
    ck_assert_int_eq(s_status("GET /api/tasks HTTP/1.0\r\n\r\n"), 400);
    /* IP literals (the listen address among them) and localhost. */
    ck_assert_int_eq(s_status(get, "127.0.0.1"), 200);
    ck_assert_int_eq(s_status(get, "127.0.0.1:1"), 200);
    ck_assert_int_eq(s_status(get, "[::1]:8080"), 200);
    ck_assert_int_eq(s_status(get, "LOCALHOST:8080"), 200);
    ck_assert_double_eq(stats_value(stats_counter(s_stats, "http_refused",
                                                  NULL, "")), 5);

    /* Names are allowed by configuration, the advertised one included. */
    char err[256];
    agg_api_options_t ao = { .addr = "127.0.0.1:0",
                             .advertise_addr = "agg-0.agg:8080",
                             .allowed_hosts = " profiler.example.com , x.y" };
    agg_api_t *named = agg_api_new(s_agg, &ao, err, sizeof(err));
    ck_assert_msg(named != NULL, "%s", err);
    int port = agg_api_port(named);
    static const char *const ok[] = { "profiler.example.com",
                                      "Profiler.Example.Com.:80", "x.y",
                                      "agg-0.agg:8080" };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char req[256];
        int n = snprintf(req, sizeof(req), get, ok[i]), status = 0;
        char *resp = tu_http_raw("127.0.0.1", port, req, (size_t)n, &status,
                                 NULL);
        ck_assert_ptr_nonnull(resp);
        ck_assert_msg(status == 200, "Host %s: %d", ok[i], status);
        free(resp);
    }
    agg_api_destroy(&named);
    ao.allowed_hosts = "bad host";
    ck_assert_ptr_null(agg_api_new(s_agg, &ao, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "bad host"));
}
END_TEST

START_TEST(test_state_changes_need_json_and_same_origin)
{
    const char *body = "{\"pid\":321,\"target\":\"ON_CPU\",\"duration\":60}";
    const char *post = "POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                       "Connection: close\r\n%sContent-Length: %zu\r\n\r\n%s";
    /* What a cross-site page can send without a preflight. */
    ck_assert_int_eq(s_status(post, s_port, "Content-Type: text/plain\r\n"
                              "Origin: http://evil.example\r\n",
                              strlen(body), body), 403);
    ck_assert_int_eq(s_status(post, s_port, "Content-Type: text/plain\r\n",
                              strlen(body), body), 415);
    ck_assert_int_eq(s_status(post, s_port, "Content-Type: application/"
                              "x-www-form-urlencoded\r\n", strlen(body),
                              body), 415);
    ck_assert_int_eq(s_status(post, s_port, "", strlen(body), body), 415);
    /* JSON, but from another origin. */
    ck_assert_int_eq(s_status(post, s_port, "Content-Type: application/json"
                              "\r\nOrigin: http://evil.example\r\n",
                              strlen(body), body), 403);
    ck_assert_int_eq(s_status(post, s_port, "Content-Type: application/json"
                              "\r\nOrigin: null\r\n", strlen(body), body),
                     403);
    ck_assert_int_eq(s_status(post, s_port, "Content-Type: application/json"
                              "\r\nSec-Fetch-Site: cross-site\r\n",
                              strlen(body), body), 403);
    ck_assert_int_eq(s_status("DELETE /api/tasks HTTP/1.0\r\nHost: 127.0.0.1"
                              "\r\n\r\n"), 415);
    ck_assert_int_eq(agg_pump(s_agg), 0);
    ck_assert_int_eq(s_msg.n, 0);

    /* What the page's own script sends (same origin), and a tool. */
    char origin[160];
    snprintf(origin, sizeof(origin), "Content-Type: application/json; "
             "charset=utf-8\r\nOrigin: http://127.0.0.1:%d\r\n"
             "Sec-Fetch-Site: same-origin\r\n", s_port);
    ck_assert_int_eq(s_status(post, s_port, origin, strlen(body), body), 200);
    ck_assert_int_eq(s_status(post, s_port, "Content-Type: application/json"
                              "\r\n", strlen(body), body), 200);
    ck_assert_int_eq(agg_pump(s_agg), 0);
    ck_assert_int_eq(s_msg.n, 2);
}
END_TEST

START_TEST(test_bearer_token)
{
    char err[256];
    agg_api_options_t ao = { .addr = "127.0.0.1:0",
                             .auth_token = "s3cret-token-0123456789" };
    agg_api_t *api = agg_api_new(s_agg, &ao, err, sizeof(err));
    ck_assert_msg(api != NULL, "%s", err);
    int port = agg_api_port(api);
    static const struct {
        const char *path, *headers;
        int status;
    } cases[] = {
        { "/api/tasks", NULL, 401 },
        { "/api/tasks", "Authorization: Bearer s3cret-token-012345678\r\n",
          401 },
        { "/api/tasks", "Authorization: Basic s3cret-token-0123456789\r\n",
          401 },
        { "/metrics", NULL, 401 },
        { "/api/tasks", "Authorization: Bearer s3cret-token-0123456789\r\n",
          200 },
        /* The page keeps the token in a SameSite cookie for its links. */
        { "/api/tasks", "Cookie: a=b; skyprof_token=s3cret-token-0123456789"
          "\r\n", 200 },
        /* The page shell and the probe need none. */
        { "/", NULL, 200 },
        { "/healthz", NULL, 200 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status = 0;
        char *r = tu_http_with("GET", "127.0.0.1", port, cases[i].path,
                               cases[i].headers, NULL, &status, NULL);
        ck_assert_ptr_nonnull(r);
        ck_assert_msg(status == cases[i].status, "case %zu: %s got %d", i,
                      cases[i].path, status);
        /* The page carries the script that takes the token in. */
        if (strcmp(cases[i].path, "/") == 0)
            ck_assert_ptr_nonnull(strstr(r, "skyprof_token"));
        free(r);
    }
    agg_api_destroy(&api);

    ao.auth_token = "short";
    ck_assert_ptr_null(agg_api_new(s_agg, &ao, err, sizeof(err)));
    ao.auth_token = "has;semicolon-and-more-chars";
    ck_assert_ptr_null(agg_api_new(s_agg, &ao, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "token"));
}
END_TEST

START_TEST(test_size_limits)
{
    /* A body announced over the limit is refused before it is sent. */
    ck_assert_int_eq(s_status("POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Content-Type: application/json\r\n"
                              "Content-Length: 10000000000\r\n\r\n"), 413);
    /* A head over AGG_API_MAX_HEAD. */
    size_t pad = AGG_API_MAX_HEAD + 1024;
    char *req = malloc(pad + 128);
    ck_assert_ptr_nonnull(req);
    int n = snprintf(req, 128, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "X-Pad: ");
    memset(req + n, 'a', pad);
    memcpy(req + n + pad, "\r\n\r\n", 5);
    int status = 0;
    char *resp = tu_http_raw("127.0.0.1", s_port, req, strlen(req), &status,
                             NULL);
    free(req);
    ck_assert_ptr_nonnull(resp);
    ck_assert_int_eq(status, 431);
    free(resp);
    /* The server still answers. */
    ck_assert_int_eq(s_status("GET /healthz HTTP/1.0\r\nHost: 127.0.0.1"
                              "\r\n\r\n"), 200);
}
END_TEST

/* A socket connected to the test server from src (a loopback address),
 * sending nothing. */
static int
s_idle_from(const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    inet_pton(AF_INET, src, &sa.sin_addr);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    sa.sin_port = htons((uint16_t)s_port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

START_TEST(test_idle_clients_do_not_silence_the_api)
{
    /* More idle connections from one address than the old total limit
     * (64): the per-address limit keeps room for everyone else. */
    int idle[96];
    for (size_t i = 0; i < 96; i++)
        idle[i] = s_idle_from("127.0.0.2");
    uint64_t t0 = tu_now_ms();
    ck_assert_int_eq(s_status("GET /api/tasks HTTP/1.0\r\nHost: 127.0.0.1"
                              "\r\n\r\n"), 200);
    uint64_t took = tu_now_ms() - t0;
    /* Generous: the old server waited for its 30 s idle timeout. */
    ck_assert_msg(took < 5000, "answered after %llu ms",
                  (unsigned long long)took);
    for (size_t i = 0; i < 96; i++)
        close(idle[i]);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_profile_tracing_total);
    tcase_add_test(tc, test_profile_tracing_process);
    tcase_add_test(tc, test_pod_filters);
    tcase_add_test(tc, test_bad_requests);
    tcase_add_test(tc, test_tree_folded_and_renderers);
    tcase_add_test(tc, test_processes_and_tasks);
    tcase_add_test(tc, test_metrics);
    tcase_add_test(tc, test_every_route_answers);
    tcase_add_test(tc, test_network_view);
    tcase_add_test(tc, test_help_lists_every_route);
    tcase_add_test(tc, test_host_must_name_this_server);
    tcase_add_test(tc, test_state_changes_need_json_and_same_origin);
    tcase_add_test(tc, test_bearer_token);
    tcase_add_test(tc, test_size_limits);
    tcase_add_test(tc, test_idle_clients_do_not_silence_the_api);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
