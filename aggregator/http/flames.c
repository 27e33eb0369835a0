/* Endpoints that answer with a flame tree: DeepFlow's ProfileTracing
 * (its profiling query API), SkyWalking's analysed tree (EBPFProfilingTree
 * of its GraphQL query protocol), folded stacks, pprof and the SVG flame
 * graph. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/agg.h"
#include "aggregator/http/routes.h"
#include "aggregator/render/render.h"
#include "hash.h"
#include "log.h"

/* ------------------------------------------------------------ node ids */
typedef struct {
    uint64_t a, b;
} path_hash_t;

/* Node ids hash the path from the root (names and types), so the same
 * function under the same callers keeps its id across queries and time
 * ranges; they are printed in the uuid shape DeepFlow uses. */
static path_hash_t
s_child_hash(path_hash_t parent, const flame_node_t *n)
{
    path_hash_t h;
    h.a = hash_mix64(parent.a * 31 + hash_fnv1a(n->name, 0x9e37) + n->type);
    h.b = hash_mix64(parent.b ^ (hash_fnv1a(n->name, 0x7f4a) + 0x51ed * n->type));
    return h;
}

static void
s_uuid(char out[37], path_hash_t h)
{
    snprintf(out, 37, "%08x-%04x-5%03x-%04x-%012llx",
             (unsigned)(h.a >> 32), (unsigned)(h.a >> 16) & 0xffff,
             (unsigned)h.a & 0xfff,
             (unsigned)(0x8000 | ((h.b >> 48) & 0x3fff)),
             (unsigned long long)(h.b & 0xffffffffffffull));
}

/* ----------------------------------------------------- ProfileTracing */
typedef struct {
    agg_buf_t *out;
    path_hash_t *hashes;          /* by depth */
    size_t cap;
    int first;
    int oom;
} trace_ctx_t;

/* Microseconds with total = self + sum(children) kept exact: totals are
 * rounded down and self takes the remainder, never negative because the
 * children's rounded totals cannot exceed the parent's. */
static uint64_t
s_self_us(const flame_node_t *n)
{
    uint64_t total = n->total_ns / 1000, kids = 0;
    for (const flame_node_t *c = n->first_child; c; c = c->next_sibling)
        kids += c->total_ns / 1000;
    return total >= kids ? total - kids : 0;
}

static int
s_trace_node(const flame_node_t *n, int depth, void *arg)
{
    trace_ctx_t *c = arg;
    char id[37], parent[37];
    if ((size_t)depth >= c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        path_hash_t *h = realloc(c->hashes, cap * sizeof(*h));
        if (!h) {
            c->oom = 1;
            return -1;
        }
        c->hashes = h;
        c->cap = cap;
    }
    if (depth == 0) {
        c->hashes[0] = (path_hash_t){ 0, 0 };
        id[0] = '\0';
        snprintf(parent, sizeof(parent), "-1");
    } else {
        c->hashes[depth] = s_child_hash(c->hashes[depth - 1], n);
        s_uuid(id, c->hashes[depth]);
        if (depth == 1)
            parent[0] = '\0';
        else
            s_uuid(parent, c->hashes[depth - 1]);
    }
    agg_buf_puts(c->out, c->first ? "{\"profile_location_str\":"
                                  : ",{\"profile_location_str\":");
    c->first = 0;
    if (depth == 0)
        agg_buf_json_str(c->out, n->name);
    else {
        agg_buf_t label;
        agg_buf_init(&label, 0);
        api_label(&label, n);
        agg_buf_json_str(c->out, label.data ? label.data : "");
        agg_buf_release(&label);
    }
    agg_buf_printf(c->out,
                   ",\"node_id\":\"%s\",\"parent_node_id\":\"%s\","
                   "\"self_value\":%llu,\"total_value\":%llu}",
                   id, parent, (unsigned long long)s_self_us(n),
                   (unsigned long long)(n->total_ns / 1000));
    return c->out->oom ? -1 : 0;
}

/* The string tags of tag_filter, and where each goes in the query. */
enum { TAG_NODE, TAG_NAMESPACE, TAG_POD, TAG_CONTAINER, TAG_STRINGS };
typedef char tag_bufs_t[TAG_STRINGS][WIRE_MAX_NODE + 1];

/* tag_filter: conditions joined by AND; pid, node, namespace, pod and
 * container are understood, with the value quoted or not: "pid='123'",
 * "pid=123 AND node='n1'", "namespace='shop' AND pod='web-1'". String
 * values are copied into bufs, which the query then points to. */
static int
s_tag_filter(const char *f, agg_query_t *q, tag_bufs_t bufs, char *err,
             size_t errlen)
{
    static const char *const names[TAG_STRINGS] = { "node", "namespace",
                                                    "pod", "container" };
    const char **dest[TAG_STRINGS] = { &q->node, &q->ns, &q->pod,
                                       &q->container };
    char buf[256];
    if (!f || !*f)
        return 0;
    if (strlen(f) >= sizeof(buf)) {
        snprintf(err, errlen, "tag_filter too long");
        return -1;
    }
    snprintf(buf, sizeof(buf), "%s", f);
    char *save = NULL;
    for (char *cond = strtok_r(buf, "&", &save); cond;
         cond = strtok_r(NULL, "&", &save)) {
        /* strtok on "&" then split " AND " by hand: DeepFlow joins
         * conditions with the SQL keyword. */
        char *p = cond;
        while (p && *p) {
            char *and = strstr(p, " AND ");
            if (!and)
                and = strstr(p, " and ");
            if (and)
                *and = '\0';
            while (*p == ' ')
                p++;
            char *eq = strchr(p, '=');
            if (!eq) {
                snprintf(err, errlen, "tag_filter: expected tag=value in "
                         "'%s'", p);
                return -1;
            }
            char *key_end = eq;
            while (key_end > p && key_end[-1] == ' ')
                key_end--;
            *key_end = '\0';
            char *val = eq + 1;
            while (*val == ' ')
                val++;
            size_t vlen = strlen(val);
            while (vlen && val[vlen - 1] == ' ')
                val[--vlen] = '\0';
            if (vlen >= 2 && (val[0] == '\'' || val[0] == '"')
                && val[vlen - 1] == val[0]) {
                val[vlen - 1] = '\0';
                val++;
            }
            int tag = -1;
            for (int t = 0; t < TAG_STRINGS; t++)
                if (strcmp(p, names[t]) == 0)
                    tag = t;
            if (tag >= 0) {
                size_t max = tag == TAG_NODE ? WIRE_MAX_NODE
                                             : AGG_MAX_POD_FILTER;
                if (strlen(val) > max || (tag != TAG_NODE && !*val)) {
                    snprintf(err, errlen, "tag_filter: %s must be 1 to %zu "
                             "bytes", names[tag], max);
                    return -1;
                }
                snprintf(bufs[tag], sizeof(bufs[tag]), "%s", val);
                *dest[tag] = bufs[tag];
                p = and ? and + 5 : NULL;
                continue;
            }
            if (strcmp(p, "pid") != 0) {
                snprintf(err, errlen, "tag_filter: unsupported tag '%s' "
                         "(supported: pid, node, namespace, pod, container)",
                         p);
                return -1;
            }
            char *end;
            unsigned long pid = strtoul(val, &end, 10);
            if (!*val || *end || pid == 0 || pid > UINT32_MAX) {
                snprintf(err, errlen, "tag_filter: pid must be a positive "
                         "integer");
                return -1;
            }
            q->pid = (uint32_t)pid;
            q->has_pid = 1;
            p = and ? and + 5 : NULL;
        }
    }
    return 0;
}

static int
s_json_time(const json_value_t *f, uint64_t *out, const char *name,
            char *err, size_t errlen)
{
    if (f->type == JSON_NUMBER && f->number >= 0 && f->number < 1e11) {
        *out = (uint64_t)f->number;
        return 0;
    }
    if (f->type == JSON_STRING) {
        char *end;
        unsigned long long v = strtoull(f->str, &end, 10);
        if (*f->str && !*end && v < 100000000000ull) {
            *out = v;
            return 0;
        }
    }
    snprintf(err, errlen, "%s must be unix seconds", name);
    return -1;
}

void
api_profile_tracing(api_request_t *req, api_reply_t *r)
{
    arena_t *arena = NULL;
    char err[256];
    tag_bufs_t tags;
    agg_query_t q;
    flame_t *tree = NULL;
    trace_ctx_t ctx;
    agg_buf_t out;

    memset(&q, 0, sizeof(q));
    memset(&ctx, 0, sizeof(ctx));
    agg_buf_init(&out, AGG_API_MAX_REPLY);
    const json_value_t *obj = api_body_object(req, &arena, r);
    if (!obj)
        goto cleanup;
    const json_value_t *app = api_body_get(obj, "app_service");
    const json_value_t *event = api_body_get(obj, "profile_event_type");
    const json_value_t *lang = api_body_get(obj, "profile_language_type");
    const json_value_t *ts = api_body_get(obj, "time_start");
    const json_value_t *te = api_body_get(obj, "time_end");
    const json_value_t *tag = api_body_get(obj, "tag_filter");

    if (!app || app->type != JSON_STRING || !*app->str) {
        api_reply_error(r, 400, "app_service (a process name or \"Total\") "
                        "is required");
        goto cleanup;
    }
    if (lang && lang->type == JSON_STRING && *lang->str
        && strcmp(lang->str, "eBPF") != 0) {
        api_reply_error(r, 400, "profile_language_type: only eBPF profiles "
                        "are kept here");
        goto cleanup;
    }
    q.kind = WIRE_KIND_ON_CPU;
    if (event && event->type != JSON_NULL) {
        if (event->type != JSON_STRING
            || (strcmp(event->str, "on-cpu") && strcmp(event->str,
                                                        "off-cpu"))) {
            api_reply_error(r, 400, "profile_event_type must be on-cpu or "
                            "off-cpu");
            goto cleanup;
        }
        q.kind = strcmp(event->str, "off-cpu") == 0 ? WIRE_KIND_OFF_CPU
                                                    : WIRE_KIND_ON_CPU;
    }
    uint64_t now_s = now_wall_ms() / 1000;
    uint64_t end_s = now_s, start_s;
    if (te && s_json_time(te, &end_s, "time_end", err, sizeof(err))) {
        api_reply_error(r, 400, "%s", err);
        goto cleanup;
    }
    start_s = end_s > AGG_DEFAULT_RANGE_S ? end_s - AGG_DEFAULT_RANGE_S : 0;
    if (ts && s_json_time(ts, &start_s, "time_start", err, sizeof(err))) {
        api_reply_error(r, 400, "%s", err);
        goto cleanup;
    }
    if (start_s > end_s) {
        api_reply_error(r, 400, "time_start is after time_end");
        goto cleanup;
    }
    q.start_ms = start_s * 1000;
    q.end_ms = end_s * 1000 + 999;
    if (tag && tag->type != JSON_NULL) {
        if (tag->type != JSON_STRING
            || s_tag_filter(tag->str, &q, tags, err, sizeof(err))) {
            api_reply_error(r, 400, "%s", tag->type == JSON_STRING
                                              ? err
                                              : "tag_filter must be a string");
            goto cleanup;
        }
    }
    q.threads = 1;
    if (strcmp(app->str, "Total") == 0)
        q.select = AGG_SEL_TOTAL;
    else {
        q.select = AGG_SEL_NAME;
        q.name = app->str;
    }
    tree = api_query(req, &q, r);
    if (!tree)
        goto cleanup;
    ctx.out = &out;
    ctx.first = 1;
    /* DESCRIPTION says what a partial answer lacks. */
    agg_buf_puts(&out, "{\"OPT_STATUS\":\"SUCCESS\",\"DESCRIPTION\":");
    if (r->partial[0]) {
        agg_buf_t d;
        agg_buf_init(&d, 0);
        agg_buf_printf(&d, "partial: %s", r->partial);
        agg_buf_json_str(&out, d.data ? d.data : "partial");
        agg_buf_release(&d);
    } else {
        agg_buf_puts(&out, "\"\"");
    }
    agg_buf_puts(&out, ",\"result\":[");
    flame_visit(tree, s_trace_node, &ctx);
    agg_buf_puts(&out, "],\"debug\":null}\n");
    if (ctx.oom)
        out.oom = 1;
    api_reply_buf(r, &out, "application/json");
cleanup:
    arena_destroy(&arena);
    agg_buf_release(&out);
    free(ctx.hashes);
    flame_destroy(&tree);
}

/* ------------------------------------------------------ analysed tree */
typedef struct {
    agg_buf_t *out;
    int first;
} tree_ctx_t;

static int
s_tree_node(const flame_node_t *n, int depth, void *arg)
{
    tree_ctx_t *c = arg;
    if (depth == 0)
        return 0;
    agg_buf_printf(c->out, "%s{\"id\":\"%u\",\"parentId\":\"%u\",\"symbol\":",
                   c->first ? "" : ",", n->id, n->parent->id);
    c->first = 0;
    agg_buf_json_str(c->out, n->name);
    agg_buf_printf(c->out, ",\"stackType\":\"%s\",\"dumpCount\":%llu}",
                   n->type == FLAME_KERNEL ? "KERNEL_SPACE" : "USER_SPACE",
                   (unsigned long long)n->total_count);
    return c->out->oom ? -1 : 0;
}

/* threads: keep the [t] layer of process views (1) or merge it (0). */
static flame_t *
s_query(api_request_t *req, api_reply_t *r, agg_query_t *q, int threads)
{
    if (api_parse_query(req, r, q))
        return NULL;
    q->threads = threads;
    return api_query(req, q, r);
}

void
api_tree(api_request_t *req, api_reply_t *r)
{
    agg_query_t q;
    agg_buf_t out;
    agg_buf_init(&out, AGG_API_MAX_REPLY);
    if (!api_arg(req, "task_id") && !api_arg(req, "pid")) {
        api_reply_error(r, 400, "task_id or pid is required");
        goto cleanup;
    }
    /* SkyWalking's tree holds stack frames only: the thread layer of
     * process views is merged away. */
    flame_t *tree = s_query(req, r, &q, 0);
    if (!tree)
        goto cleanup;
    tree_ctx_t ctx = { &out, 1 };
    /* SkyWalking shows "tip" to the user: what a partial answer lacks. */
    agg_buf_puts(&out, "{\"tip\":");
    agg_buf_json_str(&out, r->partial);
    agg_buf_puts(&out, ",\"trees\":[{\"elements\":[");
    flame_visit(tree, s_tree_node, &ctx);
    agg_buf_puts(&out, "]}]}\n");
    flame_destroy(&tree);
    api_reply_buf(r, &out, "application/json");
cleanup:
    agg_buf_release(&out);
}

/* -------------------------------------------------------------- folded */
enum unit { UNIT_COUNT, UNIT_NS, UNIT_US };

typedef struct {
    agg_buf_t *out;
    int unit;
    const flame_node_t **path;
    size_t cap;
    int oom;
} folded_ctx_t;

static void
s_folded_label(agg_buf_t *b, const flame_node_t *n)
{
    /* ';' separates frames and a trailing number ends the line, so both
     * are kept out of names. */
    agg_buf_t label;
    agg_buf_init(&label, 0);
    api_label(&label, n);
    for (char *p = label.data; p && *p; p++)
        if (*p == ';' || *p == '\n' || *p == '\r')
            *p = ':';
    if (label.data)
        agg_buf_puts(b, label.data);
    agg_buf_release(&label);
}

static int
s_folded_node(const flame_node_t *n, int depth, void *arg)
{
    folded_ctx_t *c = arg;
    if ((size_t)depth >= c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        const flame_node_t **p = realloc(c->path, cap * sizeof(*p));
        if (!p) {
            c->oom = 1;
            return -1;
        }
        c->path = p;
        c->cap = cap;
    }
    c->path[depth] = n;
    uint64_t v = c->unit == UNIT_COUNT ? n->self_count
                 : c->unit == UNIT_NS  ? n->self_ns
                                       : n->self_ns / 1000;
    if (depth == 0 || v == 0)
        return 0;
    for (int i = 1; i <= depth; i++) {
        if (i > 1)
            agg_buf_append(c->out, ";", 1);
        s_folded_label(c->out, c->path[i]);
    }
    agg_buf_printf(c->out, " %llu\n", (unsigned long long)v);
    return c->out->oom ? -1 : 0;
}

void
api_folded(api_request_t *req, api_reply_t *r)
{
    agg_query_t q;
    agg_buf_t out;
    folded_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    agg_buf_init(&out, AGG_API_MAX_REPLY);
    flame_t *tree = s_query(req, r, &q, 1);
    if (!tree)
        goto cleanup;
    const char *unit = api_arg(req, "unit");
    /* Off-CPU stacks are read in time, on-CPU ones in samples, as the
     * usual flame graph tools expect. */
    ctx.unit = q.kind == WIRE_KIND_OFF_CPU ? UNIT_US : UNIT_COUNT;
    if (unit) {
        if (strcmp(unit, "count") == 0)
            ctx.unit = UNIT_COUNT;
        else if (strcmp(unit, "ns") == 0)
            ctx.unit = UNIT_NS;
        else if (strcmp(unit, "us") == 0)
            ctx.unit = UNIT_US;
        else {
            api_reply_error(r, 400, "unit must be count, ns or us");
            goto cleanup;
        }
    }
    ctx.out = &out;
    flame_visit(tree, s_folded_node, &ctx);
    if (ctx.oom)
        out.oom = 1;
    api_reply_buf(r, &out, "text/plain; charset=utf-8");
cleanup:
    flame_destroy(&tree);
    free(ctx.path);
    agg_buf_release(&out);
}

/* --------------------------------------------------------- pprof / svg */
void
api_pprof(api_request_t *req, api_reply_t *r)
{
    agg_query_t q;
    unsigned char *data = NULL;
    size_t len = 0;
    flame_t *tree = s_query(req, r, &q, 1);
    if (!tree)
        return;
    const flame_node_t *root = flame_root(tree);
    uint64_t period = root->total_count ? root->total_ns / root->total_count
                                        : 0;
    if (render_pprof(tree, q.kind == WIRE_KIND_OFF_CPU, period,
                     q.start_ms * 1000000ull,
                     (q.end_ms - q.start_ms) * 1000000ull, &data, &len)) {
        api_reply_error(r, 500, "cannot render the profile");
    } else {
        api_reply_take(r, data, len, "application/octet-stream");
        r->disposition = "attachment; filename=\"profile.pb.gz\"";
    }
    flame_destroy(&tree);
}

void
api_svg(api_request_t *req, api_reply_t *r)
{
    agg_query_t q;
    char title[256];
    size_t len = 0;
    flame_t *tree = s_query(req, r, &q, 1);
    if (!tree)
        return;
    snprintf(title, sizeof(title), "%s %s", flame_root_name(tree),
             q.kind == WIRE_KIND_OFF_CPU ? "off-CPU" : "on-CPU");
    char *svg = render_flame_svg(tree, title, q.kind == WIRE_KIND_OFF_CPU,
                                 &len);
    if (!svg)
        api_reply_error(r, 500, "cannot render the flame graph");
    else
        api_reply_take(r, svg, len, "image/svg+xml");
    flame_destroy(&tree);
}
