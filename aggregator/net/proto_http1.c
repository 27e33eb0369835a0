/* HTTP/1.x in the protocol table: lib/http1 parses and pairs a
 * connection's two streams; this module turns each exchange into the
 * reference agent's http1_* meters of the connection's traffic, a
 * (pid, URI) row, and, when the process's task has sampling rules and the
 * request carries a trace context, a sampled request with its head and
 * body (up to NET_SAMPLE_MAX, cut to the rule's sizes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/net/net_int.h"
#include "http1.h"

#define S_MAX_CODES 32

/* What a pipelined request and its response carry for sampling. */
typedef struct {
    net_trace_t trace;
    uint8_t *buf[2];           /* 0: request, 1: response */
    uint32_t len[2], cap[2];
    int keep[2];               /* still collecting */
} s_msg_t;

typedef struct {
    net_t *room;
    net_conn_t *conn;
    http1_conn_t *h;
    s_msg_t *ring;             /* only when the process samples */
    unsigned depth;
    uint64_t head, tail;       /* as lib/http1's pending ring */
} s_st_t;

typedef struct {
    uint64_t requests;
    struct { int code; uint64_t n; } codes[S_MAX_CODES];
    size_t ncodes;
    uint64_t n;
    double req_sum, resp_sum, dur_sum;
    uint64_t req_h[NET_SIZE_BUCKETS], resp_h[NET_SIZE_BUCKETS];
    uint64_t dur_h[NET_DUR_BUCKETS];
} s_meters_t;

/* --------------------------------------------------------- sample data */

static void s_msg_reset(s_msg_t *m)
{
    for (int k = 0; k < 2; k++) {
        free(m->buf[k]);
        m->buf[k] = NULL;
        m->len[k] = m->cap[k] = 0;
        m->keep[k] = 0;
    }
    memset(&m->trace, 0, sizeof m->trace);
}

static void s_append(s_msg_t *m, int k, const void *data, size_t len)
{
    if (!m->keep[k] || !len)
        return;
    size_t room = NET_SAMPLE_MAX - m->len[k];
    if (len > room)
        len = room;
    if (m->len[k] + len > m->cap[k]) {
        uint32_t cap = m->cap[k] ? m->cap[k] * 2 : 512;
        while (cap < m->len[k] + len)
            cap *= 2;
        if (cap > NET_SAMPLE_MAX)
            cap = NET_SAMPLE_MAX;
        uint8_t *b = realloc(m->buf[k], cap);
        if (!b) {
            m->keep[k] = 0;
            return;
        }
        m->buf[k] = b;
        m->cap[k] = cap;
    }
    memcpy(m->buf[k] + m->len[k], data, len);
    m->len[k] += (uint32_t)len;
}

static s_msg_t *s_msg(s_st_t *st, uint64_t seq)
{
    if (!st->ring || seq < st->head || seq >= st->tail)
        return NULL;
    return &st->ring[seq % st->depth];
}

/* Parts of each message: its head rebuilt with CRLFs, its body bytes. */
static void s_part(int request, http1_part_t part, const char *data,
                   size_t len, void *arg)
{
    s_st_t *st = arg;
    if (!st->ring)
        return;
    if (request && part == HTTP1_PART_START) {
        /* lib/http1 pushed a pending request: so do we */
        s_msg_t *m = &st->ring[st->tail++ % st->depth];
        s_msg_reset(m);
        m->keep[0] = 1;
    }
    s_msg_t *m = s_msg(st, request ? st->tail - 1 : st->head);
    if (!m)
        return;
    int k = request ? 0 : 1;
    if (!request && part == HTTP1_PART_START && !m->len[1])
        m->keep[1] = net_trace_valid(&m->trace);
    if (request && part == HTTP1_PART_FIELD)
        net_trace_field(&m->trace, data, len);
    if (part == HTTP1_PART_BODY) {
        s_append(m, k, data, len);
        return;
    }
    s_append(m, k, data, len);
    s_append(m, k, "\r\n", 2);
    if (request && part == HTTP1_PART_HEAD_END && !net_trace_valid(&m->trace)) {
        /* not sampled whatever happens: stop holding its bytes */
        free(m->buf[0]);
        m->buf[0] = NULL;
        m->len[0] = m->cap[0] = 0;
        m->keep[0] = 0;
    }
}

static uint8_t *s_cut(const uint8_t *b, uint32_t len, uint32_t max,
                      uint32_t *out_len)
{
    uint32_t n = len < max ? len : max;
    uint8_t *copy = n ? malloc(n) : NULL;
    *out_len = copy ? n : 0;
    if (copy)
        memcpy(copy, b, n);
    return copy;
}

static void s_sample(s_st_t *st, s_msg_t *m, const http1_exchange_t *ex,
                     double dur_ms_whole)
{
    net_conn_t *c = st->conn;
    if (!m || !c->traffic || !net_trace_valid(&m->trace))
        return;
    const net_rule_t *r = net_rule_for(st->room, c->pid, ex->uri);
    int reason = net_rule_reason(r, ex->status, dur_ms_whole);
    if (reason < 0)
        return;
    net_sample_t *s = calloc(1, sizeof *s);
    if (!s)
        return;
    s->pid = c->pid;
    s->peer_pid = c->peer_pid;
    s->role = c->role;
    s->is_ssl = c->is_ssl;
    snprintf(s->peer, sizeof s->peer, "%s", c->peer);
    snprintf(s->method, sizeof s->method, "%s", ex->method);
    snprintf(s->uri, sizeof s->uri, "%s", ex->uri);
    s->status = (uint32_t)ex->status;
    s->reason = (net_reason_t)reason;
    s->dur_ms = dur_ms_whole;
    s->start_ms = net_conn_wall_ms(c, ex->start_ns);
    s->end_ms = net_conn_wall_ms(c, ex->end_ns);
    s->trace = m->trace;
    if (r->want_req)
        s->req = s_cut(m->buf[0], m->len[0], r->max_req, &s->req_len);
    if (r->want_resp)
        s->resp = s_cut(m->buf[1], m->len[1], r->max_resp, &s->resp_len);
    net_traffic_offer(c->traffic, s);
}

/* ------------------------------------------------------------ exchanges */

static void s_meters_add(s_meters_t *mt, const http1_exchange_t *ex,
                         double dur_ms_whole)
{
    mt->requests++;
    size_t i = 0;
    while (i < mt->ncodes && mt->codes[i].code != ex->status)
        i++;
    if (i == mt->ncodes && mt->ncodes < S_MAX_CODES)
        mt->codes[mt->ncodes++].code = ex->status;
    if (i < mt->ncodes)
        mt->codes[i].n++;
    mt->n++;
    mt->req_sum += (double)ex->req_bytes;
    mt->resp_sum += (double)ex->resp_bytes;
    mt->dur_sum += dur_ms_whole;
    mt->req_h[net_bucket(net_size_bounds, NET_SIZE_BUCKETS,
                         (double)ex->req_bytes)]++;
    mt->resp_h[net_bucket(net_size_bounds, NET_SIZE_BUCKETS,
                          (double)ex->resp_bytes)]++;
    mt->dur_h[net_bucket(net_dur_bounds_ms, NET_DUR_BUCKETS, dur_ms_whole)]++;
}

static void s_exchange(const http1_exchange_t *ex, void *arg)
{
    s_st_t *st = arg;
    net_conn_t *c = st->conn;
    net_traffic_t *t = c->traffic;
    uint64_t dur_ns = ex->end_ns - ex->start_ns;
    /* the reference's meters and rules use whole milliseconds */
    double whole_ms = (double)(dur_ns / 1000000u);
    if (t && t->proto == &net_proto_http1 && t->l7) {
        s_meters_add(t->l7, ex, whole_ms);
        t->requests++;
        t->errors += ex->status >= 500;
    }
    net_endpoint_record(st->room, c->pid, ex->uri, ex->status,
                        (double)dur_ns / 1e6);
    s_msg_t *m = s_msg(st, st->head);
    s_sample(st, m, ex, whole_ms);
    if (m)
        s_msg_reset(m);
    if (st->ring && st->head < st->tail)
        st->head++;
}

/* ------------------------------------------------------------ interface */

static net_detect_t s_detect(const uint8_t *buf, size_t len, uint8_t dir)
{
    (void)dir;
    switch (http1_detect(buf, len)) {
    case HTTP1_DETECT_REQUEST:
        return NET_DETECT_YES;
    case HTTP1_DETECT_RESPONSE:  /* mid-stream: wait for a request */
    case HTTP1_DETECT_MORE:
        return NET_DETECT_MORE;
    default:
        return NET_DETECT_NO;
    }
}

static void s_close(void *arg);

static void *s_open(net_t *room, net_conn_t *conn)
{
    s_st_t *st = calloc(1, sizeof *st);
    if (!st)
        goto fail;
    st->room = room;
    st->conn = conn;
    http1_limits_t lim;
    http1_limits_default(&lim);
    /* a connection's memory is fixed by these: lines of 4 KiB (cookies
     * included) and 8 pipelined requests keep one near 13 KiB */
    lim.max_line = 4096;
    lim.max_pipeline = 8;
    st->depth = lim.max_pipeline;
    st->h = http1_conn_new(&lim);
    if (!st->h)
        goto fail;
    http1_conn_set_handler(st->h, s_exchange, st);
    if (net_sampling_on(room, conn->pid)) {
        st->ring = calloc(st->depth, sizeof *st->ring);
        if (!st->ring)
            goto fail;
        http1_conn_set_part_handler(st->h, s_part, st);
    }
    return st;
fail:
    s_close(st);
    return NULL;
}

static int s_feed(void *arg, uint8_t dir, const uint8_t *buf, size_t len,
                  uint64_t ts_ns)
{
    s_st_t *st = arg;
    return http1_conn_feed(st->h, dir == WIRE_NET_IN ? HTTP1_DIR_IN
                                                     : HTTP1_DIR_OUT,
                           buf, len, ts_ns);
}

static int s_skip(void *arg, uint8_t dir, uint64_t n, uint64_t ts_ns)
{
    s_st_t *st = arg;
    return http1_conn_skip(st->h, dir == WIRE_NET_IN ? HTTP1_DIR_IN
                                                     : HTTP1_DIR_OUT,
                           n, ts_ns);
}

static void s_count(stats_t *stats, const char *what, const char *labels,
                    uint64_t n)
{
    if (n)
        stats_add(stats_counter(stats, what, labels,
                                "HTTP/1.x streams of the network room: "
                                "why analyses stopped, what was cut"), n);
}

static void s_close(void *arg)
{
    s_st_t *st = arg;
    if (!st)
        return;
    if (st->h) {
        http1_conn_close(st->h);
        const http1_stats_t *hs = http1_conn_stats(st->h);
        stats_t *stats = net_stats(st->room);
        for (int e = 0; e < HTTP1_ERR_COUNT; e++) {
            char labels[64];
            snprintf(labels, sizeof labels, "reason=\"%s\"",
                     http1_err_name((http1_err_t)e));
            s_count(stats, "net_http1_stopped", labels, hs->errors[e]);
        }
        s_count(stats, "net_http1_unanswered", NULL, hs->unanswered);
        s_count(stats, "net_http1_truncated", NULL, hs->truncated);
        s_count(stats, "net_http1_upgrades", NULL, hs->upgrades);
        http1_conn_destroy(&st->h);
    }
    if (st->ring) {
        for (unsigned i = 0; i < st->depth; i++)
            s_msg_reset(&st->ring[i]);
        free(st->ring);
    }
    free(st);
}

static size_t s_memory(const void *arg)
{
    const s_st_t *st = arg;
    size_t n = sizeof *st + http1_conn_memory(st->h);
    if (st->ring)
        for (unsigned i = 0; i < st->depth; i++)
            n += sizeof *st->ring + st->ring[i].cap[0] + st->ring[i].cap[1];
    return n;
}

static void *s_meters_new(void)
{
    return calloc(1, sizeof(s_meters_t));
}

static void s_meters_free(void *m)
{
    free(m);
}

static int s_meters_empty(const void *arg)
{
    const s_meters_t *mt = arg;
    return mt->requests == 0;
}

static int s_meters_report(void *arg, const net_traffic_t *t,
                           net_report_builder_t *b)
{
    s_meters_t *mt = arg;
    const char *role = net_role_name(t->role);
    if (!mt->requests)
        return 0;
    if (mt->dur_sum != 0)
        net_rb_value(b, t, net_rb_name(b, "http1_%s_duration_avg%s", role, ""),
                     mt->dur_sum / (double)mt->n, NULL);
    net_rb_hist(b, t, net_rb_name(b, "http1_%s_duration_histogram%s", role, ""),
                net_dur_bounds_ms, mt->dur_h, NET_DUR_BUCKETS);
    net_rb_value(b, t, "http1_request_counter", (double)mt->requests, NULL);
    for (size_t i = 0; i < mt->ncodes; i++) {
        char code[16];
        snprintf(code, sizeof code, "%d", mt->codes[i].code);
        net_rb_value(b, t, "http1_response_status_counter",
                     (double)mt->codes[i].n, code);
    }
    if (mt->req_sum != 0)
        net_rb_value(b, t, "http1_request_package_size_avg",
                     mt->req_sum / (double)mt->n, NULL);
    if (mt->resp_sum != 0)
        net_rb_value(b, t, "http1_response_package_size_avg",
                     mt->resp_sum / (double)mt->n, NULL);
    net_rb_hist(b, t, "http1_request_package_size_histogram",
                net_size_bounds, mt->req_h, NET_SIZE_BUCKETS);
    net_rb_hist(b, t, "http1_response_package_size_histogram",
                net_size_bounds, mt->resp_h, NET_SIZE_BUCKETS);
    memset(mt, 0, sizeof *mt);
    return b->failed ? -1 : 0;
}

const net_protocol_t net_proto_http1 = {
    .name = "http",
    .detect = s_detect,
    .open = s_open,
    .feed = s_feed,
    .skip = s_skip,
    .close = s_close,
    .memory = s_memory,
    .meters_new = s_meters_new,
    .meters_free = s_meters_free,
    .meters_report = s_meters_report,
    .meters_empty = s_meters_empty,
};
