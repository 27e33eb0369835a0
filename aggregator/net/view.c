/* The local view of the network room (GET /api/network): processes and
 * their peers as edges with bytes, RTT and request rates; the endpoint
 * table per process with requests, error rate and avg/p50/p99 latency;
 * the latest sampled requests. What a user without an OAP looks at.
 * Replicas' views merge into one (net_view_merge). */
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/agg.h"
#include "aggregator/net/room.h"
#include "json.h"

#define S_VIEW_LIMIT (64u << 20)

void net_view_keep(net_t *self, const net_sample_t *s)
{
    net_sample_t *v = &self->view[self->view_next];
    *v = *s;
    v->req = v->resp = NULL;
    self->view_next = (self->view_next + 1) % NET_VIEW_SAMPLES;
    if (self->nview < NET_VIEW_SAMPLES)
        self->nview++;
}

static void s_edges(net_t *self, uint32_t pid, agg_buf_t *b)
{
    size_t cur = 0;
    int first = 1;
    net_traffic_t *t;
    agg_buf_puts(b, "\"edges\":[");
    while ((t = net_traffics_next(self->traffics, &cur))) {
        if (pid && t->pid != pid)
            continue;
        /* a key a connection left (its protocol or TLS found) holds nothing */
        if (!t->nconns && !t->bytes_out && !t->bytes_in && !t->requests)
            continue;
        agg_buf_printf(b, "%s{\"pid\":%u,\"side\":\"%s\",\"peer_pid\":%u,"
                          "\"peer\":",
                       first ? "" : ",", t->pid, net_role_name(t->role),
                       t->peer_pid);
        agg_buf_json_str(b, t->peer);
        agg_buf_printf(b, ",\"protocol\":\"%s\",\"is_ssl\":%s,"
                          "\"connections\":%u,\"bytes_out\":%llu,"
                          "\"bytes_in\":%llu,\"rtt_us_avg\":%.1f,"
                          "\"requests\":%llu,\"errors\":%llu,"
                          "\"requests_last_interval\":%llu}",
                       t->proto ? t->proto->name : "unknown",
                       t->is_ssl ? "true" : "false", t->nconns,
                       (unsigned long long)t->bytes_out,
                       (unsigned long long)t->bytes_in,
                       t->rtt_n ? (double)t->rtt_us_sum / (double)t->rtt_n
                                : 0.0,
                       (unsigned long long)t->requests,
                       (unsigned long long)t->errors,
                       (unsigned long long)t->requests_last);
        first = 0;
    }
    agg_buf_puts(b, "]");
}

static void s_endpoints(net_t *self, uint32_t pid, agg_buf_t *b)
{
    size_t cur = 0;
    int first = 1;
    net_endpoint_t *e;
    agg_buf_puts(b, ",\"endpoints\":[");
    while ((e = net_endpoints_next(self->endpoints, &cur))) {
        if (pid && e->pid != pid)
            continue;
        double n = (double)e->total_requests;
        agg_buf_printf(b, "%s{\"pid\":%u,\"uri\":", first ? "" : ",",
                       e->pid);
        agg_buf_json_str(b, e->uri);
        agg_buf_printf(b, ",\"requests\":%llu,\"errors\":%llu,"
                          "\"error_rate\":%.4f,\"avg_ms\":%.3f,"
                          "\"p50_ms\":%g,\"p99_ms\":%g}",
                       (unsigned long long)e->total_requests,
                       (unsigned long long)e->total_errors,
                       n ? (double)e->total_errors / n : 0.0,
                       n ? e->total_dur_ms_sum / n : 0.0,
                       net_endpoint_quantile(e, 0.5),
                       net_endpoint_quantile(e, 0.99));
        first = 0;
    }
    agg_buf_puts(b, "]");
}

static void s_samples(net_t *self, uint32_t pid, agg_buf_t *b)
{
    int first = 1;
    agg_buf_puts(b, ",\"samples\":[");
    /* newest first */
    for (size_t k = 0; k < self->nview; k++) {
        size_t i = (self->view_next + NET_VIEW_SAMPLES - 1 - k) %
                   NET_VIEW_SAMPLES;
        const net_sample_t *s = &self->view[i];
        if (pid && s->pid != pid)
            continue;
        agg_buf_printf(b, "%s{\"pid\":%u,\"side\":\"%s\",\"method\":",
                       first ? "" : ",", s->pid, net_role_name(s->role));
        agg_buf_json_str(b, s->method);
        agg_buf_puts(b, ",\"uri\":");
        agg_buf_json_str(b, s->uri);
        agg_buf_printf(b, ",\"status\":%u,\"reason\":\"%s\","
                          "\"duration_ms\":%.0f,\"start_ms\":%llu,"
                          "\"trace_provider\":\"%s\",\"trace_id\":",
                       s->status, net_reason_name(s->reason), s->dur_ms,
                       (unsigned long long)s->start_ms,
                       s->trace.provider ? s->trace.provider : "");
        agg_buf_json_str(b, s->trace.trace_id);
        agg_buf_puts(b, ",\"peer\":");
        agg_buf_json_str(b, s->peer);
        agg_buf_puts(b, "}");
        first = 0;
    }
    agg_buf_puts(b, "]");
}

char *net_view_json(net_t *self, uint32_t pid, size_t *len)
{
    agg_buf_t b;
    agg_buf_init(&b, S_VIEW_LIMIT);
    pthread_mutex_lock(&self->lock);
    agg_buf_printf(&b, "{\"connections\":%zu,\"traced_processes\":%zu,",
                   net_conns_count(self->conns), hashmap_size(self->pids));
    s_edges(self, pid, &b);
    s_endpoints(self, pid, &b);
    s_samples(self, pid, &b);
    pthread_mutex_unlock(&self->lock);
    agg_buf_puts(&b, "}");
    return agg_buf_take(&b, len);
}

/* ---------------------------------------------------- replicas' views */

#define S_MERGE_ARENA (64u << 20)

static void s_write(agg_buf_t *b, const json_value_t *v)
{
    switch (v->type) {
    case JSON_NULL:
        agg_buf_puts(b, "null");
        break;
    case JSON_BOOL:
        agg_buf_puts(b, v->boolean ? "true" : "false");
        break;
    case JSON_NUMBER:
        if (v->is_int)
            agg_buf_printf(b, "%.0f", v->number);
        else
            agg_buf_printf(b, "%.17g", v->number);
        break;
    case JSON_STRING:
        agg_buf_json_str(b, v->str);
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        agg_buf_puts(b, v->type == JSON_ARRAY ? "[" : "{");
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                agg_buf_puts(b, ",");
            if (v->type == JSON_OBJECT) {
                agg_buf_json_str(b, v->keys[i]);
                agg_buf_puts(b, ":");
            }
            s_write(b, v->items[i]);
        }
        agg_buf_puts(b, v->type == JSON_ARRAY ? "]" : "}");
        break;
    }
}

static const char *const s_lists[] = {"edges", "endpoints", "samples"};

/* A view document: two counts and three lists of objects. */
static int s_view_ok(const json_value_t *d)
{
    int64_t n;
    if (!d || d->type != JSON_OBJECT ||
        json_int(json_get(d, "connections"), &n) || n < 0 ||
        json_int(json_get(d, "traced_processes"), &n) || n < 0)
        return 0;
    for (size_t k = 0; k < 3; k++) {
        const json_value_t *l = json_get(d, s_lists[k]);
        if (!l || l->type != JSON_ARRAY)
            return 0;
        for (size_t i = 0; i < l->n; i++)
            if (l->items[i]->type != JSON_OBJECT)
                return 0;
    }
    return 1;
}

char *net_view_merge(const char *const *docs, const size_t *lens, size_t n,
                     size_t *len, long *bad)
{
    char *out = NULL, err[128];
    agg_buf_t b;
    arena_t *arena = arena_new(S_MERGE_ARENA);
    json_value_t **views = calloc(n ? n : 1, sizeof *views);
    *bad = -1;
    agg_buf_init(&b, S_VIEW_LIMIT);
    if (!arena || !views)
        goto cleanup;
    int64_t conns = 0, procs = 0, x;
    for (size_t i = 0; i < n; i++) {
        views[i] = json_parse(docs[i], lens[i], arena, err, sizeof err);
        if (!s_view_ok(views[i])) {
            *bad = (long)i;
            goto cleanup;
        }
        (void)json_int(json_get(views[i], "connections"), &x);
        conns += x;
        (void)json_int(json_get(views[i], "traced_processes"), &x);
        procs += x;
    }
    agg_buf_printf(&b, "{\"connections\":%lld,\"traced_processes\":%lld",
                   (long long)conns, (long long)procs);
    for (size_t k = 0; k < 3; k++) {
        int first = 1;
        agg_buf_printf(&b, ",\"%s\":[", s_lists[k]);
        for (size_t i = 0; i < n; i++) {
            const json_value_t *l = json_get(views[i], s_lists[k]);
            for (size_t j = 0; j < l->n; j++) {
                agg_buf_puts(&b, first ? "" : ",");
                s_write(&b, l->items[j]);
                first = 0;
            }
        }
        agg_buf_puts(&b, "]");
    }
    agg_buf_puts(&b, "}");
    out = agg_buf_take(&b, len);
cleanup:
    if (!out)
        agg_buf_release(&b);
    free(views);
    arena_destroy(&arena);
    return out;
}
