/* The HTML page, exercised in a real browser: a small libmicrohttpd server
 * of the test's own serves api_page_index_html, canned JSON for
 * /api/processes and /api/tasks and a real SVG for /api/flamegraph.svg;
 * headless chromium loads it, and the DOM it dumps must hold the process
 * rows the page's script built (sorted by CPU, names inserted as text), the
 * task list, the network card (GET /api/network) and the links; a second page submits the task form and the
 * server checks the POSTed JSON; a screenshot must be a real 1280x800 PNG. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <microhttpd.h>

#include "aggregator/http/api.h"
#include "aggregator/render/render.h"
#include "testutil.h"

/* The processes, deliberately in no useful order, one with a name that
 * would be markup if the page used innerHTML. Off-CPU time ranks them the
 * other way round. */
#define S_PROCESS_LIST                                                       \
    "[{\"pid\":101,\"name\":\"idle-daemon\",\"cmdline\":\"/usr/sbin/idled -f\","  \
    "\"cpu_us\":1500,\"samples\":2,\"off_cpu_us\":50000000,\"alive\":false},"   \
    "{\"pid\":4242,\"name\":\"hot<script>boom()</script>&co\","                 \
    "\"cmdline\":\"/opt/hot/bin/hot --serve --port 8080\","                     \
    "\"cpu_us\":987654321,\"samples\":98765,\"off_cpu_us\":1000,"             \
    "\"alive\":true},"                                                         \
    "{\"pid\":777,\"name\":\"warm-worker\",\"cmdline\":\"python3 worker.py\","   \
    "\"cpu_us\":2500000,\"samples\":250,\"off_cpu_us\":3000000,\"alive\":true}]"

/* The aggregator wraps the list in an object; a bare array (the shape
 * first specified) must work too. */
static const char s_processes_wrapped[] = "{\"processes\":" S_PROCESS_LIST "}";
static const char s_processes_array[] = S_PROCESS_LIST;

static const char s_tasks_json[] =
    "{\"tasks\":[{\"task_id\":\"local-task-7f3a\",\"target\":\"ON_CPU\","
    "\"trigger\":\"FIXED_TIME\",\"source\":\"API\",\"state\":\"running\","
    "\"start_ms\":1700000000000,\"duration_ms\":60000,"
    "\"update_ms\":1700000000000,\"pids\":[4242]}]}";

/* The network room's view: an edge, an endpoint with errors, a sample; a
 * URI that would be markup. */
static const char s_network_json[] =
    "{\"connections\":3,\"traced_processes\":1,\"edges\":[{\"pid\":4242,"
    "\"side\":\"server\",\"peer_pid\":0,\"peer\":\"10.0.0.7:5555\","
    "\"protocol\":\"http\",\"is_ssl\":true,\"connections\":3,"
    "\"bytes_out\":2097152,\"bytes_in\":2048,\"rtt_us_avg\":410.0,"
    "\"requests\":20,\"errors\":5,\"requests_last_interval\":4}],"
    "\"endpoints\":[{\"pid\":4242,\"uri\":\"/b<i>x</i>\",\"requests\":20,"
    "\"errors\":5,\"error_rate\":0.25,\"avg_ms\":81.0,\"p50_ms\":15,"
    "\"p99_ms\":170}],\"samples\":[{\"pid\":4242,\"side\":\"server\","
    "\"method\":\"POST\",\"uri\":\"/b\",\"status\":503,"
    "\"reason\":\"status_5xx\",\"duration_ms\":150,\"start_ms\":1,"
    "\"trace_provider\":\"zipkin\",\"trace_id\":\"abc123\","
    "\"peer\":\"10.0.0.7:5555\"}]}";

/* Fills and submits the real task form once the page has loaded. */
static const char s_submit_script[] =
    "<script>window.addEventListener('load', function () {\n"
    "  document.getElementById('t-pid').value = '4242';\n"
    "  document.getElementById('t-target').value = 'OFF_CPU';\n"
    "  document.getElementById('t-duration').value = '30';\n"
    "  document.getElementById('taskform').requestSubmit();\n"
    "});</script>\n";

/* Switches the range to 1 h and the event to off-CPU, as a user would. */
/* A NETWORK task of two processes with sampling rules. */
static const char s_submit_net_script[] =
    "<script>window.addEventListener('load', function () {\n"
    "  document.getElementById('t-pid').value = '7, 8';\n"
    "  document.getElementById('t-target').value = 'NETWORK';\n"
    "  document.getElementById('t-duration').value = '30';\n"
    "  document.getElementById('t-rules').value = '{\"networkSamplings\":[]}';\n"
    "  document.getElementById('taskform').requestSubmit();\n"
    "});</script>\n";

static const char s_controls_script[] =
    "<script>window.addEventListener('load', function () {\n"
    "  document.querySelector('[data-range=\"3600\"]').click();\n"
    "  document.querySelector('[data-event=\"off-cpu\"]').click();\n"
    "});</script>\n";

typedef struct {
    pthread_mutex_t lock;
    char *svg;
    char *submit_page;
    char *submit_net_page;
    char *controls_page;
    int plain_arrays; /* serve the bare-array shape of /api/processes */
    int processes_hits, tasks_get_hits, tasks_post_hits, svg_hits;
    int network_hits;
    long long last_start, last_end;
    char last_event[32];
    /* /api/processes asked for off-CPU over an hour: the clicks' requests
     * may arrive in either order, so "last" cannot tell */
    int off_cpu_hour_hits;
    char svg_query[256];
    char posted[1024];
} s_server_t;

typedef struct {
    char body[4096];
    size_t len;
    int overflow;
} s_request_t;

static struct MHD_Daemon *s_daemon;
static s_server_t s_srv;
static uint16_t s_port;
static char *s_tmp;

static enum MHD_Result
s_reply(struct MHD_Connection *conn, unsigned status, const char *type,
        const char *body)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static long long
s_arg_ll(struct MHD_Connection *conn, const char *key)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                                key);
    return v ? strtoll(v, NULL, 10) : -1;
}

static enum MHD_Result
s_handler(void *cls, struct MHD_Connection *conn, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    s_request_t *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (req->len + n >= sizeof(req->body))
            req->overflow = 1;
        else {
            memcpy(req->body + req->len, upload_data, n);
            req->len += n;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    int is_get = strcmp(method, "GET") == 0;
    pthread_mutex_lock(&s_srv.lock);
    enum MHD_Result rc;
    if (is_get && strcmp(url, "/") == 0) {
        rc = s_reply(conn, 200, "text/html; charset=utf-8",
                     api_page_index_html);
    } else if (is_get && strcmp(url, "/submit") == 0) {
        rc = s_reply(conn, 200, "text/html; charset=utf-8", s_srv.submit_page);
    } else if (is_get && strcmp(url, "/submitnet") == 0) {
        rc = s_reply(conn, 200, "text/html; charset=utf-8",
                     s_srv.submit_net_page);
    } else if (is_get && strcmp(url, "/controls") == 0) {
        rc = s_reply(conn, 200, "text/html; charset=utf-8",
                     s_srv.controls_page);
    } else if (is_get && strcmp(url, "/api/processes") == 0) {
        s_srv.processes_hits++;
        s_srv.last_start = s_arg_ll(conn, "start");
        s_srv.last_end = s_arg_ll(conn, "end");
        const char *ev = MHD_lookup_connection_value(
            conn, MHD_GET_ARGUMENT_KIND, "event");
        snprintf(s_srv.last_event, sizeof(s_srv.last_event), "%s",
                 ev ? ev : "");
        s_srv.off_cpu_hour_hits += ev && strcmp(ev, "off-cpu") == 0 &&
                                   s_srv.last_end - s_srv.last_start == 3600;
        rc = s_reply(conn, 200, "application/json",
                     s_srv.plain_arrays ? s_processes_array
                                        : s_processes_wrapped);
    } else if (is_get && strcmp(url, "/api/network") == 0) {
        s_srv.network_hits++;
        rc = s_reply(conn, 200, "application/json", s_network_json);
    } else if (is_get && strcmp(url, "/api/tasks") == 0) {
        s_srv.tasks_get_hits++;
        rc = s_reply(conn, 200, "application/json", s_tasks_json);
    } else if (strcmp(method, "POST") == 0 && strcmp(url, "/api/tasks") == 0) {
        s_srv.tasks_post_hits++;
        snprintf(s_srv.posted, sizeof(s_srv.posted), "%.*s", (int)req->len,
                 req->body);
        rc = s_reply(conn, 200, "application/json",
                     "{\"task_id\":\"local-task-new\"}");
    } else if (is_get && strcmp(url, "/api/flamegraph.svg") == 0) {
        s_srv.svg_hits++;
        const char *svc = MHD_lookup_connection_value(
            conn, MHD_GET_ARGUMENT_KIND, "app_service");
        const char *pid = MHD_lookup_connection_value(
            conn, MHD_GET_ARGUMENT_KIND, "pid");
        snprintf(s_srv.svg_query, sizeof(s_srv.svg_query), "app_service=%s pid=%s",
                 svc ? svc : "", pid ? pid : "");
        rc = s_reply(conn, 200, "image/svg+xml", s_srv.svg);
    } else {
        rc = s_reply(conn, 404, "text/plain", "not found");
    }
    pthread_mutex_unlock(&s_srv.lock);
    return rc;
}

static void
s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
            enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

/* A host-wide tree like the aggregator serves, for the embedded view. */
static char *
s_sample_svg(void)
{
    flame_t *tree = flame_new("Total", 1000);
    ck_assert_ptr_nonnull(tree);
    const char *a[] = { "[p] hot", "[t] hot-io", "main", "serve",
                        "handle_request", "parse_json" };
    const char *b[] = { "[p] hot", "[t] hot-io", "main", "serve", "write",
                        "ksys_write", "vfs_write" };
    const char *c[] = { "[p] warm-worker", "[t] python3", "PyEval_EvalFrame",
                        "compute" };
    const uint8_t ta[] = { FLAME_PROCESS, FLAME_THREAD, FLAME_USER,
                           FLAME_USER, FLAME_USER, FLAME_LIB };
    const uint8_t tb[] = { FLAME_PROCESS, FLAME_THREAD, FLAME_USER,
                           FLAME_USER, FLAME_LIB, FLAME_KERNEL, FLAME_KERNEL };
    const uint8_t tc[] = { FLAME_PROCESS, FLAME_THREAD, FLAME_LIB, FLAME_JIT };
    ck_assert_ptr_nonnull(flame_add(tree, a, ta, 6, 600000000, 60));
    ck_assert_ptr_nonnull(flame_add(tree, b, tb, 7, 300000000, 30));
    ck_assert_ptr_nonnull(flame_add(tree, c, tc, 4, 250000000, 25));
    char *svg = render_flame_svg(tree, "on-CPU: Total", 1, NULL);
    ck_assert_ptr_nonnull(svg);
    flame_destroy(&tree);
    return svg;
}

/* The page with a test script inserted before </body>. */
static char *
s_page_with(const char *script)
{
    const char *body_end = strstr(api_page_index_html, "</body>");
    ck_assert_ptr_nonnull(body_end);
    size_t head = (size_t)(body_end - api_page_index_html);
    size_t total = strlen(api_page_index_html) + strlen(script) + 1;
    char *page = malloc(total);
    ck_assert_ptr_nonnull(page);
    memcpy(page, api_page_index_html, head);
    strcpy(page + head, script);
    strcat(page, body_end);
    return page;
}

static void
setup(void)
{
    memset(&s_srv, 0, sizeof(s_srv));
    pthread_mutex_init(&s_srv.lock, NULL);
    s_srv.svg = s_sample_svg();

    s_srv.submit_page = s_page_with(s_submit_script);
    s_srv.submit_net_page = s_page_with(s_submit_net_script);
    s_srv.controls_page = s_page_with(s_controls_script);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0; /* any free port */
    s_daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        s_handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, NULL, MHD_OPTION_END);
    ck_assert_ptr_nonnull(s_daemon);
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(s_daemon, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(info);
    s_port = info->port;
    ck_assert_uint_ne(s_port, 0);
    s_tmp = tu_mkdtemp();
    ck_assert_ptr_nonnull(s_tmp);
}

static void
teardown(void)
{
    if (s_daemon)
        MHD_stop_daemon(s_daemon);
    s_daemon = NULL;
    free(s_srv.svg);
    free(s_srv.submit_page);
    free(s_srv.submit_net_page);
    free(s_srv.controls_page);
    pthread_mutex_destroy(&s_srv.lock);
    if (s_tmp)
        tu_rmtree(s_tmp);
    free(s_tmp);
    s_tmp = NULL;
}

/* Runs headless chromium on url with the extra flags; its stdout goes to
 * out_path (the dumped DOM), its logs next to it. Returns the exit status
 * or -1. A generous safety limit only guards against a hang. */
static int
s_chromium(const char *url, const char *extra1, const char *extra2,
           const char *out_path)
{
    char profile[512], log_path[512];
    snprintf(profile, sizeof(profile), "--user-data-dir=%s/profile-%d",
             s_tmp, (int)getpid());
    snprintf(log_path, sizeof(log_path), "%s/chromium.log", s_tmp);
    char *argv[] = {
        "chromium", "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", profile,
        "--virtual-time-budget=3000", (char *)extra1, (char *)extra2,
        (char *)url, NULL,
    };
    /* drop the NULL holes left by absent extras */
    size_t n = 0;
    for (size_t i = 0; i < sizeof(argv) / sizeof(argv[0]) - 1; i++)
        if (argv[i])
            argv[n++] = argv[i];
    argv[n] = NULL;

    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        int out = open(out_path ? out_path : "/dev/null",
                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (out >= 0)
            dup2(out, 1);
        if (err >= 0)
            dup2(err, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status = -1;
    for (int waited_ms = 0; waited_ms < 120000; waited_ms += 50) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (r < 0)
            return -1;
        usleep(50000);
    }
    kill(-pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static char *
s_dump_dom(const char *path)
{
    char url[128], out[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", s_port, path);
    snprintf(out, sizeof(out), "%s/dom.html", s_tmp);
    int rc = s_chromium(url, "--dump-dom", NULL, out);
    ck_assert_msg(rc == 0, "chromium exited with %d", rc);
    size_t len = 0;
    char *dom = tu_read_file(out, &len);
    ck_assert_ptr_nonnull(dom);
    ck_assert_uint_gt(len, 1000);
    return dom;
}

START_TEST(page_renders_process_table_and_tasks)
{
    char *dom = s_dump_dom("/");

    /* rows exist, one per process, sorted by CPU (hot, warm, idle) */
    const char *hot = strstr(dom, "data-pid=\"4242\"");
    const char *warm = strstr(dom, "data-pid=\"777\"");
    const char *idle = strstr(dom, "data-pid=\"101\"");
    ck_assert_msg(hot && warm && idle, "process rows missing from DOM");
    ck_assert_msg(hot < warm, "rows not sorted by CPU");
    ck_assert_msg(warm < idle, "rows not sorted by CPU");
    ck_assert_ptr_nonnull(strstr(dom, "warm-worker"));
    ck_assert_ptr_nonnull(strstr(dom, "python3 worker.py"));
    ck_assert_ptr_nonnull(strstr(dom, "987.65 s"));   /* cpu_us formatted */
    ck_assert_ptr_nonnull(strstr(dom, "2.50 s"));
    ck_assert_ptr_nonnull(strstr(dom, "(3)"));        /* process count */

    /* the hostile name stayed text */
    ck_assert_ptr_nonnull(strstr(dom, "hot&lt;script&gt;boom()&lt;/script&gt;&amp;co"));
    ck_assert_ptr_null(strstr(dom, "<script>boom()"));

    /* links: per process, host-wide, exports */
    ck_assert_ptr_nonnull(strstr(dom, "/api/flamegraph.svg?pid=4242&amp;start="));
    ck_assert_ptr_nonnull(strstr(dom, "/api/flamegraph.svg?app_service=Total&amp;start="));
    ck_assert_ptr_nonnull(strstr(dom, "/api/folded?app_service=Total&amp;start="));
    ck_assert_ptr_nonnull(strstr(dom, "/api/pprof?app_service=Total&amp;start="));
    ck_assert_ptr_nonnull(strstr(dom, "href=\"/metrics\""));
    ck_assert_ptr_nonnull(strstr(dom, "<iframe id=\"view\" name=\"view\" title=\"flame graph\" "
                                      "src=\"/api/flamegraph.svg?app_service=Total&amp;start="));

    /* the task list */
    ck_assert_ptr_nonnull(strstr(dom, "local-task-7f3a"));
    ck_assert_ptr_nonnull(strstr(dom, "ON_CPU</td>"));
    ck_assert_ptr_nonnull(strstr(dom, "4242</td><td>ON_CPU"));
    ck_assert_ptr_nonnull(strstr(dom, "60 s</td>"));
    ck_assert_ptr_nonnull(strstr(dom, "running (API)</td>"));

    /* the network card: edge, endpoint (markup kept as text), sample */
    ck_assert_ptr_nonnull(strstr(dom, "(3 connections, 1 processes traced)"));
    ck_assert_ptr_nonnull(strstr(dom, "10.0.0.7:5555</td><td>http (TLS)</td>"
                                      "<td class=\"num\">2.0 MB</td>"
                                      "<td class=\"num\">2.0 KB</td>"));
    ck_assert_ptr_nonnull(strstr(dom, "/b&lt;i&gt;x&lt;/i&gt;</td>"
                                      "<td class=\"num\">20</td>"
                                      "<td class=\"num\">25.0%</td>"
                                      "<td class=\"num\">81.0 ms</td>"));
    ck_assert_ptr_nonnull(strstr(dom, "POST /b</td><td class=\"num\">503</td>"
                                      "<td>status_5xx</td>"));
    ck_assert_ptr_nonnull(strstr(dom, "zipkin abc123"));
    ck_assert_ptr_nonnull(strstr(dom, "<option value=\"NETWORK\">"));

    /* what the page asked the API for: the default range is 5 minutes */
    pthread_mutex_lock(&s_srv.lock);
    ck_assert_int_ge(s_srv.processes_hits, 1);
    ck_assert_int_ge(s_srv.tasks_get_hits, 1);
    ck_assert_int_ge(s_srv.network_hits, 1);
    ck_assert_int_gt(s_srv.last_start, 1600000000LL);
    ck_assert_int_eq(s_srv.last_end - s_srv.last_start, 300);
    ck_assert_str_eq(s_srv.last_event, "on-cpu");
    ck_assert_int_ge(s_srv.svg_hits, 1);
    ck_assert_str_eq(s_srv.svg_query, "app_service=Total pid=");
    ck_assert_int_eq(s_srv.tasks_post_hits, 0);
    pthread_mutex_unlock(&s_srv.lock);
    free(dom);
}
END_TEST

START_TEST(page_task_form_posts_json)
{
    char *dom = s_dump_dom("/submit");
    pthread_mutex_lock(&s_srv.lock);
    ck_assert_int_eq(s_srv.tasks_post_hits, 1);
    ck_assert_str_eq(s_srv.posted,
                     "{\"pid\":4242,\"target\":\"OFF_CPU\",\"duration\":30}");
    /* listed before and again after the task was created */
    ck_assert_int_ge(s_srv.tasks_get_hits, 2);
    pthread_mutex_unlock(&s_srv.lock);
    ck_assert_ptr_nonnull(strstr(dom, "started task local-task-new"));
    free(dom);

    /* several pids and NETWORK sampling rules */
    dom = s_dump_dom("/submitnet");
    pthread_mutex_lock(&s_srv.lock);
    ck_assert_int_eq(s_srv.tasks_post_hits, 2);
    ck_assert_str_eq(s_srv.posted,
                     "{\"pids\":[7,8],\"target\":\"NETWORK\",\"duration\":30,"
                     "\"extension_config\":\"{\\\"networkSamplings\\\":[]}\"}");
    pthread_mutex_unlock(&s_srv.lock);
    free(dom);
}
END_TEST

START_TEST(page_range_and_event_controls)
{
    pthread_mutex_lock(&s_srv.lock);
    s_srv.plain_arrays = 1;
    pthread_mutex_unlock(&s_srv.lock);
    char *dom = s_dump_dom("/controls");
    pthread_mutex_lock(&s_srv.lock);
    ck_assert_int_ge(s_srv.processes_hits, 2);
    ck_assert_int_ge(s_srv.off_cpu_hour_hits, 1);
    pthread_mutex_unlock(&s_srv.lock);
    ck_assert_ptr_nonnull(strstr(dom, "&amp;event=off-cpu"));
    ck_assert_ptr_null(strstr(dom, "&amp;event=on-cpu"));
    ck_assert_ptr_nonnull(strstr(dom, "data-event=\"off-cpu\" class=\"on\""));
    ck_assert_ptr_nonnull(strstr(dom, "data-range=\"3600\" class=\"on\""));
    /* off-CPU: the table ranks and shows blocked time */
    const char *idle = strstr(dom, "data-pid=\"101\"");
    const char *warm = strstr(dom, "data-pid=\"777\"");
    const char *hot = strstr(dom, "data-pid=\"4242\"");
    ck_assert_msg(hot && warm && idle, "process rows missing from DOM");
    ck_assert_msg(idle < warm && warm < hot, "rows not sorted by off-CPU");
    ck_assert_ptr_nonnull(strstr(dom, ">Off-CPU</th>"));
    ck_assert_ptr_nonnull(strstr(dom, "50.00 s"));
    free(dom);
}
END_TEST

static uint32_t
s_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8
        | p[3];
}

START_TEST(page_screenshot)
{
    char url[128], shot[512], flag[600];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", s_port);
    snprintf(shot, sizeof(shot), "%s/page.png", s_tmp);
    snprintf(flag, sizeof(flag), "--screenshot=%s", shot);
    int rc = s_chromium(url, flag, "--window-size=1280,800", NULL);
    ck_assert_msg(rc == 0, "chromium exited with %d", rc);
    size_t len = 0;
    unsigned char *png = (unsigned char *)tu_read_file(shot, &len);
    ck_assert_ptr_nonnull(png);
    /* PNG signature, then IHDR with the window size */
    ck_assert_uint_gt(len, 33);
    ck_assert_int_eq(memcmp(png, "\x89PNG\r\n\x1a\n", 8), 0);
    ck_assert_int_eq(memcmp(png + 12, "IHDR", 4), 0);
    ck_assert_uint_eq(s_be32(png + 16), 1280);
    ck_assert_uint_eq(s_be32(png + 20), 800);
    /* a blank page compresses to a few KB; tables, text and a flame
     * graph do not */
    ck_assert_uint_gt(len, 30000);

    /* keep a copy next to the build for people to look at */
    FILE *f = fopen(tu_build_path("test-page-screenshot.png"), "wb");
    if (f) {
        fwrite(png, 1, len, f);
        fclose(f);
    }
    free(png);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("page");
    TCase *tc = tcase_create("chromium");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    if (tu_require_tool("page_renders_process_table_and_tasks", "chromium"))
        tcase_add_test(tc, page_renders_process_table_and_tasks);
    if (tu_require_tool("page_task_form_posts_json", "chromium"))
        tcase_add_test(tc, page_task_form_posts_json);
    if (tu_require_tool("page_range_and_event_controls", "chromium"))
        tcase_add_test(tc, page_range_and_event_controls);
    if (tu_require_tool("page_screenshot", "chromium"))
        tcase_add_test(tc, page_screenshot);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
