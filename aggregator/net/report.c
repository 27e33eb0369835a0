/* Builds net.report's meters and samples in an arena: the labels every
 * meter carries (side, protocol, is_ssl; code for status counters), the
 * process and peer fields the uplink turns into the reference's
 * {client|server}_process_id and peer labels. */
#include <stdio.h>
#include <string.h>

#include "aggregator/net/net_int.h"

#define S_GROW 256

void net_rb_init(net_report_builder_t *b, arena_t *arena)
{
    memset(b, 0, sizeof *b);
    b->arena = arena;
}

static wire_net_meter_t *s_meter(net_report_builder_t *b)
{
    if (b->failed || b->nmeters >= WIRE_MAX_NET_METERS) {
        b->failed = 1;
        return NULL;
    }
    if (b->nmeters == b->cap) {
        /* doubling: the arena keeps what it outgrew, so grow seldom */
        uint32_t cap = b->cap ? 2 * b->cap : S_GROW;
        wire_net_meter_t *m = arena_alloc(b->arena, cap * sizeof *m);
        if (!m) {
            b->failed = 1;
            return NULL;
        }
        if (b->nmeters)
            memcpy(m, b->meters, b->nmeters * sizeof *m);
        b->meters = m;
        b->cap = cap;
    }
    wire_net_meter_t *m = &b->meters[b->nmeters++];
    memset(m, 0, sizeof *m);
    return m;
}

static int s_labels(net_report_builder_t *b, const net_traffic_t *t,
                    wire_net_meter_t *m, const char *code)
{
    wire_label_t *l = arena_alloc(b->arena, 4 * sizeof *l);
    if (!l)
        return -1;
    l[0] = (wire_label_t){"side", net_role_name(t->role)};
    l[1] = (wire_label_t){"protocol", t->proto ? t->proto->name : "unknown"};
    l[2] = (wire_label_t){"is_ssl", t->is_ssl ? "true" : "false"};
    m->nlabels = 3;
    if (code)
        l[m->nlabels++] = (wire_label_t){"code", code};
    m->labels = l;
    m->pid = t->pid;
    /* the reference's default side for an unknown role is the client */
    m->role = t->role == WIRE_NET_ROLE_SERVER ? WIRE_NET_ROLE_SERVER
                                              : WIRE_NET_ROLE_CLIENT;
    m->peer_pid = t->peer_pid;
    m->peer_address = t->peer_pid ? "" : t->peer;
    return 0;
}

void net_rb_value(net_report_builder_t *b, const net_traffic_t *t,
                  const char *name, double value, const char *code_label)
{
    wire_net_meter_t *m = s_meter(b);
    if (!m)
        return;
    const char *code = code_label ? arena_strdup(b->arena, code_label) : NULL;
    if (!name || (code_label && !code) || s_labels(b, t, m, code) != 0) {
        b->failed = 1;
        return;
    }
    m->name = name;
    m->value = value;
}

void net_rb_hist(net_report_builder_t *b, const net_traffic_t *t,
                 const char *name, const double *bounds,
                 const uint64_t *counts, size_t n)
{
    int any = 0;
    for (size_t i = 0; i < n; i++)
        any |= counts[i] != 0;
    if (!any)
        return;
    wire_net_meter_t *m = s_meter(b);
    if (!m)
        return;
    uint64_t *c = arena_alloc(b->arena, n * sizeof *c);
    if (!name || !c || s_labels(b, t, m, NULL) != 0) {
        b->failed = 1;
        return;
    }
    memcpy(c, counts, n * sizeof *c);
    m->name = name;
    m->nbuckets = (uint32_t)n;
    m->bounds = bounds;        /* static tables */
    m->counts = c;
}

const char *net_rb_name(net_report_builder_t *b, const char *fmt,
                        const char *a, const char *c)
{
    char buf[128];
    snprintf(buf, sizeof buf, fmt, a, c);
    const char *s = arena_strdup(b->arena, buf);
    if (!s)
        b->failed = 1;
    return s;
}

void net_rb_sample(net_report_builder_t *b, const net_sample_t *s)
{
    if (b->failed || b->nsamples >= WIRE_MAX_NET_SAMPLES)
        return;
    if (b->nsamples == b->scap) {
        uint32_t cap = b->scap ? 2 * b->scap : 64;
        wire_net_sample_t *n = arena_alloc(b->arena, cap * sizeof *n);
        if (!n) {
            b->failed = 1;
            return;
        }
        if (b->nsamples)
            memcpy(n, b->samples, b->nsamples * sizeof *n);
        b->samples = n;
        b->scap = cap;
    }
    /* the sample outlives the report's publication: point at it */
    b->samples[b->nsamples++] = (wire_net_sample_t){
        .pid = s->pid, .role = s->role, .peer_pid = s->peer_pid,
        .peer_address = s->peer_pid ? "" : s->peer, .is_ssl = s->is_ssl,
        .method = s->method, .uri = s->uri, .status = s->status,
        .reason = net_reason_name(s->reason), .start_ms = s->start_ms,
        .end_ms = s->end_ms, .trace_provider = s->trace.provider,
        .trace_id = s->trace.trace_id, .segment_id = s->trace.segment_id,
        .span_id = s->trace.span_id, .req_len = s->req_len, .req = s->req,
        .resp_len = s->resp_len, .resp = s->resp};
}
