/* HTTP server and routing for the aggregator API (see api.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "aggregator/http/guard.h"
#include "aggregator/http/request.h"
#include "aggregator/render/render.h"
#include "aggregator/replica/replica.h"
#include "log.h"

/* A query that fans out holds its thread while peers answer; peers'
 * internal requests need free threads of their own. */
#define API_THREADS 4

enum route {
    R_TRACING, R_TREE, R_FOLDED, R_PPROF, R_SVG, R_PROCESSES, R_TASKS,
    R_INDEX, R_METRICS, R_HEALTHZ, R_INT_FLAME, R_INT_PROCS, R_OTHER,
    R_COUNT
};

static const char *s_paths[R_COUNT] = {
    "/v1/profile/ProfileTracing", "/api/tree", "/api/folded", "/api/pprof",
    "/api/flamegraph.svg", "/api/processes", "/api/tasks", "/", "/metrics",
    "/healthz", AGG_FANOUT_PATH_FLAME, AGG_FANOUT_PATH_PROCS, "other",
};

struct agg_api {
    agg_t *agg;
    struct MHD_Daemon *daemon;
    uint16_t port;
    agg_fanout_t *fanout;
    api_guard_t *guard;
    stats_metric_t *m_requests[R_COUNT];
    stats_metric_t *m_errors, *m_refused;
};

struct api_request {
    agg_api_t *api;
    struct MHD_Connection *conn;
    char *body;
    size_t len;
    int too_large;
};

/* -------------------------------------------------------------- helpers */
const char *
api_arg(api_request_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

void
api_reply_error(api_reply_t *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    agg_buf_t b;
    agg_buf_init(&b, 0);
    agg_buf_puts(&b, "{\"OPT_STATUS\":\"FAILED\",\"DESCRIPTION\":");
    agg_buf_json_str(&b, msg);
    agg_buf_puts(&b, ",\"result\":null,\"debug\":null}\n");
    free(r->body);
    r->body = agg_buf_take(&b, &r->len);
    r->status = status;
    r->content_type = "application/json";
    r->disposition = NULL;
}

void
api_reply_buf(api_reply_t *r, agg_buf_t *b, const char *content_type)
{
    if (b->oom) {
        agg_buf_release(b);
        api_reply_error(r, 500, "response too large or out of memory; "
                        "narrow the time range");
        return;
    }
    free(r->body);
    r->body = agg_buf_take(b, &r->len);
    r->status = r->body ? 200 : 500;
    r->content_type = content_type;
}

static int
s_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno)
        return -1;
    *out = v;
    return 0;
}

int
api_parse_range(api_request_t *req, api_reply_t *r, uint64_t *start_ms,
                uint64_t *end_ms)
{
    uint64_t now_s = now_wall_ms() / 1000, start, end;
    const char *s = api_arg(req, "start"), *e = api_arg(req, "end");
    if (e && s_parse_u64(e, &end)) {
        api_reply_error(r, 400, "end must be unix seconds");
        return -1;
    }
    if (!e)
        end = now_s;
    if (s && s_parse_u64(s, &start)) {
        api_reply_error(r, 400, "start must be unix seconds");
        return -1;
    }
    if (!s)
        start = end > AGG_DEFAULT_RANGE_S ? end - AGG_DEFAULT_RANGE_S : 0;
    if (start > end || end > UINT64_MAX / 1000 - 1) {
        api_reply_error(r, 400, "start must not be after end");
        return -1;
    }
    *start_ms = start * 1000;
    *end_ms = end * 1000 + 999;
    return 0;
}

int
api_parse_pod_filters(api_request_t *req, api_reply_t *r, agg_query_t *q)
{
    const char *keys[3] = { "namespace", "pod", "container" };
    const char **vals[3] = { &q->ns, &q->pod, &q->container };
    for (int k = 0; k < 3; k++) {
        const char *v = api_arg(req, keys[k]);
        if (!v)
            continue;
        if (!*v || strlen(v) > AGG_MAX_POD_FILTER) {
            api_reply_error(r, 400, "%s must be 1 to %d bytes", keys[k],
                            AGG_MAX_POD_FILTER);
            return -1;
        }
        *vals[k] = v;
    }
    return 0;
}

int
api_parse_query(api_request_t *req, api_reply_t *r, agg_query_t *q)
{
    memset(q, 0, sizeof(*q));
    if (api_parse_range(req, r, &q->start_ms, &q->end_ms))
        return -1;
    const char *event = api_arg(req, "event");
    if (!event || strcmp(event, "on-cpu") == 0)
        q->kind = WIRE_KIND_ON_CPU;
    else if (strcmp(event, "off-cpu") == 0)
        q->kind = WIRE_KIND_OFF_CPU;
    else {
        api_reply_error(r, 400, "event must be on-cpu or off-cpu");
        return -1;
    }
    const char *app = api_arg(req, "app_service");
    const char *pid = api_arg(req, "pid");
    const char *task = api_arg(req, "task_id");
    const char *node = api_arg(req, "node");
    q->threads = 1;
    if (node) {
        /* Pids are per node; node= picks one (or, without pid, narrows
         * the Total and app_service views to that node). */
        if (strlen(node) > WIRE_MAX_NODE) {
            api_reply_error(r, 400, "node is longer than %d bytes",
                            WIRE_MAX_NODE);
            return -1;
        }
        if (task) {
            api_reply_error(r, 400, "node cannot be combined with task_id");
            return -1;
        }
        q->node = node;
    }
    if (api_parse_pod_filters(req, r, q))
        return -1;
    if (task && (q->ns || q->pod || q->container)) {
        api_reply_error(r, 400, "namespace, pod and container cannot be "
                        "combined with task_id");
        return -1;
    }
    if (pid) {
        uint64_t v;
        if (s_parse_u64(pid, &v) || v == 0 || v > UINT32_MAX) {
            api_reply_error(r, 400, "pid must be a positive integer");
            return -1;
        }
        q->pid = (uint32_t)v;
        q->has_pid = 1;
    }
    if (task) {
        if (!*task || app || pid) {
            api_reply_error(r, 400, "task_id must be non-empty and not "
                            "combined with app_service or pid");
            return -1;
        }
        q->select = AGG_SEL_TASK;
        q->task_id = task;
    } else if (app && *app && strcmp(app, "Total") != 0) {
        q->select = AGG_SEL_NAME;
        q->name = app;
    } else if (app && !*app) {
        api_reply_error(r, 400, "app_service must not be empty");
        return -1;
    } else if (pid && !app) {
        q->select = AGG_SEL_PID;
    } else {
        q->select = AGG_SEL_TOTAL;
    }
    return 0;
}

void
api_label(agg_buf_t *b, const flame_node_t *n)
{
    static const char *prefix[] = {
        [FLAME_KERNEL] = "[k] ", [FLAME_LIB] = "[l] ",
        [FLAME_PROCESS] = "[p] ", [FLAME_THREAD] = "[t] ",
        [FLAME_NODE] = "[n] ", [FLAME_NAMESPACE] = "[ns] ",
        [FLAME_POD] = "[pod] ", [FLAME_CONTAINER] = "[c] ",
    };
    if (n->type < sizeof(prefix) / sizeof(prefix[0]) && prefix[n->type])
        agg_buf_puts(b, prefix[n->type]);
    agg_buf_puts(b, n->name);
}

static int
s_local_only(api_request_t *req)
{
    const char *l = api_arg(req, "local");
    return !req->api->fanout || (l && strcmp(l, "1") == 0);
}

/* A pid without node= must name one process: when the range holds that
 * pid on several nodes the request is refused with the nodes listed,
 * rather than answering with unrelated processes merged. 0 when the
 * pid is unambiguous (or absent), -1 after filling a 400 (or 500). */
static int
s_pid_unambiguous(api_request_t *req, const agg_query_t *q, api_reply_t *r)
{
    agg_prows_t rows;
    agg_buf_t nodes;
    size_t matches = 0;
    int rc = -1;

    agg_prows_init(&rows);
    agg_buf_init(&nodes, 4096);
    if (q->node || (q->select != AGG_SEL_PID && !q->has_pid)) {
        rc = 0;
        goto cleanup;
    }
    if (api_process_rows(req, q->start_ms, q->end_ms, &rows, r))
        goto cleanup;
    /* Merged rows are one per (pid, node). */
    for (size_t i = 0; i < rows.n; i++) {
        if (rows.rows[i].pid != q->pid)
            continue;
        agg_buf_printf(&nodes, "%s\"%s\"", matches ? ", " : "",
                       *rows.rows[i].node ? rows.rows[i].node : "");
        matches++;
    }
    if (matches > 1) {
        api_reply_error(r, 400, "pid %u is on %zu nodes (%s): add node= "
                        "to pick one", q->pid, matches,
                        nodes.data ? nodes.data : "");
        goto cleanup;
    }
    r->partial[0] = '\0';
    rc = 0;
cleanup:
    agg_buf_release(&nodes);
    agg_prows_release(&rows);
    return rc;
}

flame_t *
api_query(api_request_t *req, const agg_query_t *q, api_reply_t *r)
{
    flame_t *tree;
    if (s_pid_unambiguous(req, q, r))
        return NULL;
    r->partial[0] = '\0';
    if (s_local_only(req))
        tree = agg_query(req->api->agg, q, NULL);
    else
        tree = agg_fanout_query(req->api->fanout, q, r->partial,
                                sizeof(r->partial));
    if (!tree)
        api_reply_error(r, 500, "out of memory");
    return tree;
}

int
api_process_rows(api_request_t *req, uint64_t start_ms, uint64_t end_ms,
                 agg_prows_t *rows, api_reply_t *r)
{
    int rc;
    r->partial[0] = '\0';
    if (s_local_only(req)) {
        rc = agg_process_rows(req->api->agg, start_ms, end_ms, rows);
        if (rc == 0)
            rc = agg_prows_merge(rows);
    } else {
        rc = agg_fanout_processes(req->api->fanout, start_ms, end_ms, rows,
                                  r->partial, sizeof(r->partial));
    }
    if (rc)
        api_reply_error(r, 500, "out of memory");
    return rc;
}

void
agg_api_set_fanout(agg_api_t *self, agg_fanout_t *fanout)
{
    self->fanout = fanout;
}

/* --------------------------------------------------------------- routes */
static enum route
s_route(const char *url)
{
    for (int i = 0; i < R_OTHER; i++)
        if (strcmp(url, s_paths[i]) == 0)
            return (enum route)i;
    if (strcmp(url, "/index.html") == 0)
        return R_INDEX;
    return R_OTHER;
}

static void
s_static(api_reply_t *r, const char *text, const char *content_type)
{
    r->body = strdup(text);
    r->len = r->body ? strlen(r->body) : 0;
    r->status = r->body ? 200 : 500;
    r->content_type = content_type;
}

static void
s_dispatch(agg_api_t *self, enum route route, const char *method,
           api_request_t *req, api_reply_t *r)
{
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int post = strcmp(method, "POST") == 0;

    if (req->too_large) {
        api_reply_error(r, 413, "request body over %u bytes",
                        AGG_API_MAX_BODY);
        return;
    }
    switch (route) {
    case R_TRACING:
        if (post)
            api_profile_tracing(self->agg, req, req->body, req->len, r);
        else
            api_reply_error(r, 405, "use POST with a JSON body");
        return;
    case R_TASKS:
        if (post)
            api_tasks_post(self->agg, req->body, req->len, r);
        else if (get)
            api_tasks_get(self->agg, r);
        else
            api_reply_error(r, 405, "use GET or POST");
        return;
    default:
        break;
    }
    if (!get) {
        api_reply_error(r, route == R_OTHER ? 404 : 405, "%s",
                        route == R_OTHER ? "no such endpoint"
                                         : "use GET");
        return;
    }
    switch (route) {
    case R_TREE:      api_tree(self->agg, req, r); break;
    case R_FOLDED:    api_folded(self->agg, req, r); break;
    case R_PPROF:     api_pprof(self->agg, req, r); break;
    case R_SVG:       api_svg(self->agg, req, r); break;
    case R_PROCESSES: api_processes(self->agg, req, r); break;
    case R_INT_FLAME: api_internal_flame(self->agg, req, r); break;
    case R_INT_PROCS: api_internal_processes(self->agg, req, r); break;
    case R_INDEX:
        s_static(r, api_page_index_html, "text/html; charset=utf-8");
        break;
    case R_HEALTHZ:
        s_static(r, "ok\n", "text/plain");
        break;
    case R_METRICS:
        r->body = agg_metrics_text(self->agg, &r->len);
        r->status = r->body ? 200 : 500;
        r->content_type = "text/plain; version=0.0.4";
        break;
    default:
        api_reply_error(r, 404, "no such endpoint");
        break;
    }
}

/* Queues r (its body is handed over) with the common headers. */
static enum MHD_Result
s_send(agg_api_t *self, struct MHD_Connection *conn, api_reply_t *r)
{
    if (!r->body)
        api_reply_error(r, 500, "out of memory");
    if (r->status >= 400)
        stats_inc(self->m_errors);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->body ? r->len : 0, r->body ? r->body : (void *)"",
        r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", r->content_type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate",
                                "Bearer realm=\"skyprof\"");
    if (r->disposition)
        MHD_add_response_header(resp, "Content-Disposition", r->disposition);
    if (r->partial[0]) {
        /* Header values end at a line break: keep them out. */
        for (char *c = r->partial; *c; c++)
            if (*c == '\r' || *c == '\n')
                *c = ' ';
        MHD_add_response_header(resp, "X-Skyprof-Partial", r->partial);
    }
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static const char *
s_header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* Runs when the request head is complete, before any body is read: a
 * refused request (api_guard.h), or one announcing a body over the
 * limit, is answered at once and its body never read. 0 when the
 * request may go on, else -1 with the refusal in r. */
static int
s_admit(agg_api_t *self, struct MHD_Connection *conn, const char *url,
        const char *method, api_reply_t *r)
{
    enum route route = s_route(url);
    api_guard_request_t g = {
        .method = method,
        .host = s_header(conn, MHD_HTTP_HEADER_HOST),
        .origin = s_header(conn, "Origin"),
        .sec_fetch_site = s_header(conn, "Sec-Fetch-Site"),
        .content_type = s_header(conn, MHD_HTTP_HEADER_CONTENT_TYPE),
        .authorization = s_header(conn, MHD_HTTP_HEADER_AUTHORIZATION),
        .cookie_token = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND,
                                                    API_GUARD_COOKIE),
        .open_route = route == R_INDEX || route == R_HEALTHZ,
    };
    char why[384];
    int status = api_guard_check(self->guard, &g, why, sizeof(why));
    if (status) {
        stats_inc(self->m_refused);
        api_reply_error(r, status, "%s", why);
        return -1;
    }
    const char *cl = s_header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t announced;
    if (cl && s_parse_u64(cl, &announced) == 0
        && announced > AGG_API_MAX_BODY) {
        api_reply_error(r, 413, "request body over %u bytes",
                        AGG_API_MAX_BODY);
        return -1;
    }
    return 0;
}

static enum MHD_Result
s_handler(void *cls, struct MHD_Connection *conn, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **con_cls)
{
    agg_api_t *self = cls;
    api_request_t *req = *con_cls;
    (void)version;

    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        req->conn = conn;
        req->api = self;
        *con_cls = req;
        api_reply_t r = { 500, "text/plain", NULL, NULL, 0, "" };
        if (s_admit(self, conn, url, method, &r))
            return s_send(self, conn, &r);
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* Bodies are bounded: past the limit the rest is discarded and
         * the request answered with 413 once complete. */
        if (!req->too_large) {
            if (req->len + *upload_data_size > AGG_API_MAX_BODY) {
                req->too_large = 1;
                free(req->body);
                req->body = NULL;
                req->len = 0;
            } else {
                char *grown = realloc(req->body,
                                      req->len + *upload_data_size + 1);
                if (!grown)
                    return MHD_NO;
                memcpy(grown + req->len, upload_data, *upload_data_size);
                req->len += *upload_data_size;
                grown[req->len] = '\0';
                req->body = grown;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    enum route route = s_route(url);
    stats_inc(self->m_requests[route]);
    api_reply_t r = { 500, "text/plain", NULL, NULL, 0, "" };
    s_dispatch(self, route, method, req, &r);
    return s_send(self, conn, &r);
}

static void
s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
            enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    api_request_t *req = *con_cls;
    if (req) {
        free(req->body);
        free(req);
        *con_cls = NULL;
    }
}

/* Splits "host:port" / "[v6]:port" / ":port" and resolves it. */
static int
s_resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen,
          char *err, size_t errlen)
{
    char host[256], port[16];
    const char *colon;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "bad address '%s'", addr);
            return -1;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(close - addr - 1),
                 addr + 1);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon) {
            snprintf(err, errlen, "address '%s' has no port", addr);
            return -1;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    }
    snprintf(port, sizeof(port), "%s", colon + 1);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
    if (rc || !res) {
        snprintf(err, errlen, "cannot resolve '%s': %s", addr,
                 gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

agg_api_t *
agg_api_new(agg_t *agg, const agg_api_options_t *opts, char *err,
            size_t errlen)
{
    const char *addr = opts->addr;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    agg_api_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->agg = agg;
    for (int i = 0; i < R_COUNT; i++) {
        char labels[96];
        snprintf(labels, sizeof(labels), "path=\"%s\"", s_paths[i]);
        self->m_requests[i] = stats_counter(agg_stats(agg), "http_requests",
                                            labels, "HTTP requests by path");
    }
    self->m_errors = stats_counter(agg_stats(agg), "http_errors", NULL,
                                   "HTTP requests answered with 4xx/5xx");
    self->m_refused = stats_counter(agg_stats(agg), "http_refused", NULL,
                                    "HTTP requests refused for their Host, "
                                    "token, Origin or Content-Type");
    if (s_resolve(addr, &ss, &sslen, err, errlen))
        goto fail;
    self->guard = api_guard_new(addr, opts->advertise_addr,
                                opts->allowed_hosts, opts->auth_token, err,
                                errlen);
    if (!self->guard)
        goto fail;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, s_handler, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)API_THREADS,
        MHD_OPTION_CONNECTION_LIMIT, AGG_API_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, AGG_API_CONNECTIONS_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, AGG_API_IDLE_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)AGG_API_MAX_HEAD,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_END);
    if (!self->daemon) {
        snprintf(err, errlen, "cannot listen on %s (address in use or not "
                 "permitted?)", addr);
        goto fail;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : 0;
    return self;
fail:
    agg_api_destroy(&self);
    return NULL;
}

void
agg_api_destroy(agg_api_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->daemon)
        MHD_stop_daemon((*self_p)->daemon);
    api_guard_destroy(&(*self_p)->guard);
    free(*self_p);
    *self_p = NULL;
}

uint16_t
agg_api_port(const agg_api_t *self)
{
    return self->port;
}
