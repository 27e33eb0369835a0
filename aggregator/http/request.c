/* Requests and replies shared by every endpoint (see request.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "aggregator/http/request.h"
#include "log.h"

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
api_reply_take(api_reply_t *r, void *body, size_t len,
               const char *content_type)
{
    if (!body) {
        api_reply_error(r, 500, "out of memory");
        return;
    }
    free(r->body);
    r->body = body;
    r->len = len;
    r->status = 200;
    r->content_type = content_type;
}

void
api_reply_text(api_reply_t *r, const char *text, const char *content_type)
{
    api_reply_take(r, strdup(text), strlen(text), content_type);
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
    size_t len = 0;
    char *body = agg_buf_take(b, &len);
    api_reply_take(r, body, len, content_type);
}

int
api_parse_u64(const char *s, uint64_t *out)
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
    if (e && api_parse_u64(e, &end)) {
        api_reply_error(r, 400, "end must be unix seconds");
        return -1;
    }
    if (!e)
        end = now_s;
    if (s && api_parse_u64(s, &start)) {
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
        if (api_parse_u64(pid, &v) || v == 0 || v > UINT32_MAX) {
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
    if (!req->fanout)
        tree = agg_query(req->agg, q, NULL);
    else
        tree = agg_fanout_query(req->fanout, q, r->partial,
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
    if (!req->fanout) {
        rc = agg_process_rows(req->agg, start_ms, end_ms, rows);
        if (rc == 0)
            rc = agg_prows_merge(rows);
    } else {
        rc = agg_fanout_processes(req->fanout, start_ms, end_ms, rows,
                                  r->partial, sizeof(r->partial));
    }
    if (rc)
        api_reply_error(r, 500, "out of memory");
    return rc;
}
