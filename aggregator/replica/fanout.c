/* Query fan-out across aggregator replicas (see replica.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/agg.h"
#include "aggregator/replica/http_get.h"
#include "aggregator/replica/replica.h"
#include "log.h"

struct agg_fanout {
    agg_t *agg;
    agg_replicas_t *replicas;
    uint64_t timeout_ms;
    size_t max_reply;
    char *auth_token;
    stats_metric_t *m_requests, *m_errors, *m_partial;
    log_ratelimit_t rl;
};

typedef struct {
    agg_fanout_t *f;
    agg_replica_t peer;
    const char *path;
    int status;
    char *body;
    size_t len;
    int ok;
    char err[256];
} call_t;

agg_fanout_t *
agg_fanout_new(agg_t *agg, agg_replicas_t *replicas, uint64_t timeout_ms,
               size_t max_reply, const char *auth_token)
{
    agg_fanout_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->auth_token = strdup(auth_token ? auth_token : "");
    if (!self->auth_token) {
        free(self);
        return NULL;
    }
    self->agg = agg;
    self->replicas = replicas;
    self->timeout_ms = timeout_ms ? timeout_ms : 2000;
    self->max_reply = max_reply;
    self->rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);
    stats_t *st = agg_stats(agg);
    self->m_requests = stats_counter(st, "fanout_requests", NULL,
                                     "query parts asked of peer replicas");
    self->m_errors = stats_counter(st, "fanout_errors", NULL,
                                   "peer replicas that did not answer a "
                                   "query part in time or correctly");
    self->m_partial = stats_counter(st, "fanout_partial", NULL,
                                    "queries answered without some "
                                    "replica's part");
    return self;
}

void
agg_fanout_destroy(agg_fanout_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->auth_token);
    free(*self_p);
    *self_p = NULL;
}

static void *
s_call(void *arg)
{
    call_t *c = arg;
    c->ok = agg_http_get(c->peer.addr, c->path, c->f->auth_token,
                         c->f->timeout_ms, c->f->max_reply, &c->status, &c->body, &c->len,
                         c->err, sizeof(c->err)) == 0;
    if (c->ok && c->status != 200) {
        snprintf(c->err, sizeof(c->err), "HTTP %d", c->status);
        c->ok = 0;
    }
    return NULL;
}

/* Asks every live peer for path in parallel. *calls (caller frees with
 * s_calls_free) gets one entry per peer. */
static size_t
s_ask_all(agg_fanout_t *self, const char *path, call_t **calls)
{
    agg_replica_t peers[AGG_REPLICAS_MAX];
    pthread_t tids[AGG_REPLICAS_MAX];
    int started[AGG_REPLICAS_MAX];
    size_t n = agg_replicas_live(self->replicas, peers, AGG_REPLICAS_MAX);
    *calls = NULL;
    if (!n)
        return 0;
    call_t *c = calloc(n, sizeof(*c));
    if (!c) {
        *calls = NULL;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        c[i].f = self;
        c[i].peer = peers[i];
        c[i].path = path;
        stats_inc(self->m_requests);
        started[i] = pthread_create(&tids[i], NULL, s_call, &c[i]) == 0;
        if (!started[i])
            s_call(&c[i]);   /* no thread: ask in turn */
    }
    for (size_t i = 0; i < n; i++)
        if (started[i])
            pthread_join(tids[i], NULL);
    *calls = c;
    return n;
}

static void
s_calls_free(call_t *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++)
        free(c[i].body);
    free(c);
}

static void
s_note_failure(agg_fanout_t *self, const call_t *c, char *partial,
               size_t plen)
{
    size_t used = strlen(partial);
    stats_inc(self->m_errors);
    log_warn_rl(&self->rl, "fan-out: aggregator %s (%s): %s",
                c->peer.instance, c->peer.addr, c->err);
    if (used < plen)
        snprintf(partial + used, plen - used, "%saggregator %s did not "
                 "answer (%s)", used ? "; " : "", c->peer.instance, c->err);
}

/* The part could not even be asked for: every live peer is missing. */
static void
s_note_not_asked(agg_fanout_t *self, const char *why, char *partial,
                 size_t plen)
{
    agg_replica_t peers[AGG_REPLICAS_MAX];
    size_t n = agg_replicas_live(self->replicas, peers, AGG_REPLICAS_MAX);
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(partial);
        stats_inc(self->m_errors);
        if (used < plen)
            snprintf(partial + used, plen - used, "%saggregator %s was not "
                     "asked (%s)", used ? "; " : "", peers[i].instance, why);
    }
}

/* Replicas that left during the range took their history with them. */
static void
s_note_departed(agg_fanout_t *self, uint64_t start_ms, char *partial,
                size_t plen)
{
    char text[512];
    if (!agg_replicas_departed(self->replicas, start_ms, text, sizeof(text)))
        return;
    size_t used = strlen(partial);
    if (used < plen)
        snprintf(partial + used, plen - used, "%s%s", used ? "; " : "",
                 text);
}

static int
s_has_data(const flame_t *t)
{
    const flame_node_t *r = flame_root((flame_t *)t);
    return r->total_count || r->total_ns;
}

flame_t *
agg_fanout_query(agg_fanout_t *self, const agg_query_t *q, char *partial,
                 size_t plen)
{
    char path[4096];
    call_t *calls = NULL;
    size_t n = 0;
    flame_t *local = NULL, *out = NULL;
    flame_t **parts = NULL;
    size_t max_nodes = agg_max_nodes(self->agg);
    flame_blob_limits_t lim = {
        .max_raw = max_nodes < FLAME_BLOB_MAX_RAW / FLAME_BLOB_NODE_BYTES
                       ? max_nodes * FLAME_BLOB_NODE_BYTES
                       : FLAME_BLOB_MAX_RAW,
        .max_nodes = max_nodes };

    /* Parts keep the Total view's node layer: whether it stays depends
     * on how many nodes the merged answer holds, not any one part. */
    agg_query_t part_q = *q;
    part_q.keep_nodes = 1;

    partial[0] = '\0';
    local = agg_query(self->agg, &part_q, NULL);
    if (!local)
        goto cleanup;
    if (agg_fanout_flame_path(&part_q, path, sizeof(path)) == 0)
        n = s_ask_all(self, path, &calls);
    else
        s_note_not_asked(self, "view name too long to ask for", partial,
                         plen);
    parts = calloc(n + 1, sizeof(*parts));
    if (!parts)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        char err[200];
        if (!calls[i].ok) {
            s_note_failure(self, &calls[i], partial, plen);
            continue;
        }
        parts[i] = flame_blob_decode_bounded(calls[i].body, calls[i].len,
                                             &lim, err, sizeof(err));
        if (!parts[i]) {
            snprintf(calls[i].err, sizeof(calls[i].err), "bad part: %.200s", err);
            s_note_failure(self, &calls[i], partial, plen);
        }
    }
    s_note_departed(self, q->start_ms, partial, plen);
    if (partial[0])
        stats_inc(self->m_partial);
    if (!n) {
        out = local;
        local = NULL;
        goto cleanup;
    }
    /* The root is named after the view (a pid's process name): take it
     * from the first replica that holds data. */
    const char *root = flame_root_name(local);
    if (!s_has_data(local))
        for (size_t i = 0; i < n; i++)
            if (parts[i] && s_has_data(parts[i])) {
                root = flame_root_name(parts[i]);
                break;
            }
    out = flame_new(root, agg_max_nodes(self->agg));
    if (!out || flame_merge(out, local))
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (parts[i] && flame_merge(out, parts[i]))
            goto fail;
    if (q->select == AGG_SEL_TOTAL && !q->keep_nodes)
        out = agg_collapse_nodes(out, agg_max_nodes(self->agg));
    goto cleanup;
fail:
    flame_destroy(&out);
cleanup:
    for (size_t i = 0; parts && i < n; i++)
        flame_destroy(&parts[i]);
    free(parts);
    flame_destroy(&local);
    s_calls_free(calls, n);
    return out;
}

int
agg_fanout_processes(agg_fanout_t *self, uint64_t start_ms, uint64_t end_ms,
                     agg_prows_t *rows, char *partial, size_t plen)
{
    char path[256];
    call_t *calls = NULL;
    size_t n = 0;
    partial[0] = '\0';
    if (agg_process_rows(self->agg, start_ms, end_ms, rows))
        return -1;
    snprintf(path, sizeof(path), "%s?start_ms=%llu&end_ms=%llu",
             AGG_FANOUT_PATH_PROCS, (unsigned long long)start_ms,
             (unsigned long long)end_ms);
    n = s_ask_all(self, path, &calls);
    for (size_t i = 0; i < n; i++) {
        if (calls[i].ok) {
            size_t before = rows->n;
            if (agg_prows_parse(rows, calls[i].body, calls[i].len,
                                AGG_FANOUT_MAX_ROWS) == 0)
                continue;
            /* Drop what a bad part added. */
            agg_prows_truncate(rows, before);
            snprintf(calls[i].err, sizeof(calls[i].err), "bad part");
        }
        s_note_failure(self, &calls[i], partial, plen);
    }
    s_note_departed(self, start_ms, partial, plen);
    if (partial[0])
        stats_inc(self->m_partial);
    s_calls_free(calls, n);
    return agg_prows_merge(rows);
}

void
agg_fanout_each(agg_fanout_t *self, const char *path, agg_fanout_part_fn fn,
                void *arg, char *partial, size_t plen)
{
    call_t *calls = NULL;
    partial[0] = '\0';
    size_t n = s_ask_all(self, path, &calls);
    for (size_t i = 0; i < n; i++) {
        if (calls[i].ok && fn(arg, calls[i].body, calls[i].len) == 0)
            continue;
        if (calls[i].ok)
            snprintf(calls[i].err, sizeof(calls[i].err), "bad part");
        s_note_failure(self, &calls[i], partial, plen);
    }
    if (partial[0])
        stats_inc(self->m_partial);
    s_calls_free(calls, n);
}

/* ------------------------------------------------------ query encoding */
static void
s_urlenc(char *out, size_t len, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (; s && *s && k + 4 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'
            || c == '~') {
            out[k++] = (char)c;
        } else {
            out[k++] = '%';
            out[k++] = hex[c >> 4];
            out[k++] = hex[c & 15];
        }
    }
    out[k] = '\0';
}

int
agg_fanout_flame_path(const agg_query_t *q, char *out, size_t len)
{
    char name[3 * AGG_FANOUT_MAX_NAME + 8] = "";
    char task[3 * AGG_FANOUT_MAX_NAME + 8] = "";
    char node[3 * WIRE_MAX_NODE + 8] = "";
    if ((q->name && strlen(q->name) > AGG_FANOUT_MAX_NAME)
        || (q->task_id && strlen(q->task_id) > AGG_FANOUT_MAX_NAME)
        || (q->node && strlen(q->node) > WIRE_MAX_NODE))
        return -1;
    s_urlenc(name, sizeof(name), q->name);
    s_urlenc(task, sizeof(task), q->task_id);
    s_urlenc(node, sizeof(node), q->node);
    /* node= only when filtering: an absent node means any node, while
     * node= (empty) selects the processes of senders that named none. */
    int n = snprintf(out, len, "%s?sel=%d&kind=%d&start_ms=%llu&end_ms=%llu"
                     "&threads=%d&pid=%u&has_pid=%d&name=%s&task=%s"
                     "&nodes=%d%s%s",
                     AGG_FANOUT_PATH_FLAME, q->select, q->kind,
                     (unsigned long long)q->start_ms,
                     (unsigned long long)q->end_ms, q->threads ? 1 : 0,
                     q->pid, q->has_pid ? 1 : 0, name, task,
                     q->keep_nodes ? 1 : 0, q->node ? "&node=" : "", node);
    if (n <= 0 || (size_t)n >= len)
        return -1;
    /* The pod filters, only when set (absent = any). */
    const char *keys[3] = { "namespace", "pod", "container" };
    const char *vals[3] = { q->ns, q->pod, q->container };
    for (int k = 0; k < 3; k++) {
        char enc[3 * AGG_MAX_POD_FILTER + 1];
        if (!vals[k])
            continue;
        if (strlen(vals[k]) > AGG_MAX_POD_FILTER)
            return -1;
        s_urlenc(enc, sizeof(enc), vals[k]);
        int m = snprintf(out + n, len - (size_t)n, "&%s=%s", keys[k], enc);
        if (m <= 0 || (size_t)m >= len - (size_t)n)
            return -1;
        n += m;
    }
    return 0;
}

static int
s_num(const char *(*arg)(void *, const char *), void *ctx, const char *name,
      uint64_t max, uint64_t *out)
{
    const char *v = arg(ctx, name);
    char *end;
    if (!v || !*v || *v == '-' || *v == '+')
        return -1;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end || errno || x > max)
        return -1;
    *out = x;
    return 0;
}

int
agg_fanout_parse_query(const char *(*arg)(void *, const char *), void *ctx,
                       agg_query_t *q, char *err, size_t errlen)
{
    uint64_t sel, kind, start, end, threads, pid, has_pid;
    memset(q, 0, sizeof(*q));
    if (s_num(arg, ctx, "sel", AGG_SEL_TASK, &sel)
        || s_num(arg, ctx, "kind", WIRE_KIND_OFF_CPU, &kind)
        || s_num(arg, ctx, "start_ms", UINT64_MAX, &start)
        || s_num(arg, ctx, "end_ms", UINT64_MAX, &end)
        || s_num(arg, ctx, "threads", 1, &threads)
        || s_num(arg, ctx, "pid", UINT32_MAX, &pid)
        || s_num(arg, ctx, "has_pid", 1, &has_pid) || start > end) {
        snprintf(err, errlen, "sel, kind, start_ms, end_ms, threads, pid and "
                 "has_pid must be integers in range");
        return -1;
    }
    q->select = (int)sel;
    q->kind = (int)kind;
    q->start_ms = start;
    q->end_ms = end;
    q->threads = (int)threads;
    q->pid = (uint32_t)pid;
    q->has_pid = (int)has_pid;
    q->name = arg(ctx, "name");
    q->task_id = arg(ctx, "task");
    q->node = arg(ctx, "node");
    q->ns = arg(ctx, "namespace");
    q->pod = arg(ctx, "pod");
    q->container = arg(ctx, "container");
    /* Absent in requests from replicas older than node names. */
    const char *nodes = arg(ctx, "nodes");
    q->keep_nodes = nodes && strcmp(nodes, "1") == 0;
    if ((q->select == AGG_SEL_NAME && (!q->name || !*q->name))
        || (q->select == AGG_SEL_TASK && (!q->task_id || !*q->task_id))
        || (q->select == AGG_SEL_PID && !q->pid)) {
        snprintf(err, errlen, "the view needs its name, task or pid");
        return -1;
    }
    return 0;
}
