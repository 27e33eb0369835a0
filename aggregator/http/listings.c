/* Listing and control endpoints: processes, tasks (list and create), the
 * internal parts replicas ask each other for, /metrics and /healthz. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/agg.h"
#include "aggregator/http/routes.h"
#include "aggregator/replica/replica.h"
#include "names.h"

#define API_MAX_TASK_S (24u * 3600u)

void
api_processes(api_request_t *req, api_reply_t *r)
{
    uint64_t start_ms, end_ms;
    agg_query_t pods = { 0 };
    if (api_parse_range(req, r, &start_ms, &end_ms) ||
        api_parse_pod_filters(req, r, &pods))
        return;
    agg_prows_t rows;
    agg_prows_init(&rows);
    if (api_process_rows(req, start_ms, end_ms, &rows, r) == 0) {
        agg_prows_keep_pod(&rows, pods.ns, pods.pod, pods.container);
        agg_buf_t out;
        agg_buf_init(&out, AGG_API_MAX_REPLY);
        agg_prows_json(&rows, r->partial[0] ? r->partial : NULL, &out);
        agg_buf_puts(&out, "\n");
        api_reply_buf(r, &out, "application/json");
    }
    agg_prows_release(&rows);
}

static const char *
s_arg(void *req, const char *name)
{
    return api_arg(req, name);
}

void
api_internal_flame(api_request_t *req, api_reply_t *r)
{
    agg_query_t q;
    char err[256];
    unsigned char *blob = NULL;
    size_t len = 0;
    if (agg_fanout_parse_query(s_arg, req, &q, err, sizeof(err))) {
        api_reply_error(r, 400, "%s", err);
        return;
    }
    flame_t *tree = agg_query(req->agg, &q, NULL);
    if (!tree || flame_blob_encode(tree, &blob, &len))
        api_reply_error(r, 500, "out of memory");
    else
        api_reply_take(r, blob, len, "application/octet-stream");
    flame_destroy(&tree);
}

void
api_internal_processes(api_request_t *req, api_reply_t *r)
{
    uint64_t range[2];
    const char *names[2] = { "start_ms", "end_ms" };
    for (int i = 0; i < 2; i++) {
        const char *v = api_arg(req, names[i]);
        char *end;
        if (!v || !*v || *v == '-') {
            api_reply_error(r, 400, "%s is required", names[i]);
            return;
        }
        range[i] = strtoull(v, &end, 10);
        if (*end) {
            api_reply_error(r, 400, "%s must be an integer", names[i]);
            return;
        }
    }
    agg_prows_t rows;
    agg_prows_init(&rows);
    agg_buf_t out;
    agg_buf_init(&out, AGG_API_MAX_REPLY);
    if (agg_process_rows(req->agg, range[0], range[1], &rows))
        out.oom = 1;
    else
        agg_prows_text(&rows, &out);
    api_reply_buf(r, &out, "text/plain; charset=utf-8");
    agg_prows_release(&rows);
}

void
api_tasks_get(api_request_t *req, api_reply_t *r)
{
    agg_buf_t out;
    agg_buf_init(&out, AGG_API_MAX_REPLY);
    agg_tasks_json_all(req->agg, &out);
    agg_buf_puts(&out, "\n");
    api_reply_buf(r, &out, "application/json");
}

/* The processes of a task request: "pids" (a list) or "pid". */
static int
s_task_pids(const json_value_t *obj, uint32_t *pids, uint32_t *n)
{
    const json_value_t *list = api_body_get(obj, "pids");
    int64_t pid;
    *n = 0;
    if (!list) {
        if (json_int(api_body_get(obj, "pid"), &pid) || pid <= 0
            || pid > UINT32_MAX)
            return -1;
        pids[(*n)++] = (uint32_t)pid;
        return 0;
    }
    if (list->type != JSON_ARRAY || !list->n
        || list->n > AGG_REQUEST_MAX_PIDS)
        return -1;
    for (size_t i = 0; i < list->n; i++) {
        if (json_int(list->items[i], &pid) || pid <= 0 || pid > UINT32_MAX)
            return -1;
        pids[(*n)++] = (uint32_t)pid;
    }
    return 0;
}

void
api_tasks_post(api_request_t *req, api_reply_t *r)
{
    arena_t *arena = NULL;
    char err[256], id[64];
    int64_t duration, start = 0;
    uint32_t pids[AGG_REQUEST_MAX_PIDS];
    agg_task_spec_t spec = { .pids = pids, .target = WIRE_TARGET_ON_CPU };

    const json_value_t *obj = api_body_object(req, &arena, r);
    if (!obj)
        goto cleanup;
    const json_value_t *t = api_body_get(obj, "target");
    const json_value_t *s = api_body_get(obj, "start");
    const json_value_t *ext = api_body_get(obj, "extension_config");
    if (s_task_pids(obj, pids, &spec.npids)) {
        api_reply_error(r, 400, "pid must be a positive integer (or pids a "
                        "list of 1..%d of them)", AGG_REQUEST_MAX_PIDS);
        goto cleanup;
    }
    if (json_int(api_body_get(obj, "duration"), &duration)
        || duration <= 0 || duration > API_MAX_TASK_S) {
        api_reply_error(r, 400, "duration must be seconds in 1..%u",
                        API_MAX_TASK_S);
        goto cleanup;
    }
    if (t && (t->type != JSON_STRING
              || (spec.target = names_target_parse(t->str, NAMES_EXACT)) < 0)) {
        api_reply_error(r, 400, "target must be ON_CPU, OFF_CPU or NETWORK");
        goto cleanup;
    }
    if (s && s->type != JSON_NULL && (json_int(s, &start) || start < 0)) {
        api_reply_error(r, 400, "start must be unix milliseconds");
        goto cleanup;
    }
    /* the OAP's ExtensionConfigJSON, as the string it sends */
    if (ext && ext->type != JSON_NULL && ext->type != JSON_STRING) {
        api_reply_error(r, 400, "extension_config must be a string (the "
                        "ExtensionConfigJSON document)");
        goto cleanup;
    }
    spec.duration_ms = (uint64_t)duration * 1000;
    spec.start_ms = (uint64_t)start;
    spec.extension_json = ext && ext->type == JSON_STRING ? ext->str : NULL;
    if (agg_request_tasks(req->agg, &spec, id, sizeof(id), err, sizeof(err))) {
        api_reply_error(r, 503, "%s", err);
        goto cleanup;
    }
    agg_buf_t out;
    agg_buf_init(&out, 0);
    agg_buf_puts(&out, "{\"task_id\":");
    agg_buf_json_str(&out, id);
    agg_buf_puts(&out, "}\n");
    api_reply_buf(r, &out, "application/json");
cleanup:
    arena_destroy(&arena);
}

void
api_metrics(api_request_t *req, api_reply_t *r)
{
    size_t len = 0;
    char *text = agg_metrics_text(req->agg, &len);
    api_reply_take(r, text, len, "text/plain; version=0.0.4");
}

void
api_healthz(api_request_t *req, api_reply_t *r)
{
    (void)req;
    api_reply_text(r, "ok\n", "text/plain");
}
