/* The aggregator's network room: net.events batches built from real
 * HTTP/1.1 exchanges (keep-alive, chunked, pipelined, a 500, a slow one,
 * payloads captured only in part, TLS-flagged connections) go through the
 * codec and the room; the report must hold the reference agent's meters
 * with exact values, labels and histogram counts, the sampled requests the
 * rules and trace headers call for, and the per-URI rows. Bounds and
 * refusals are counted: LRU evictions, malformed batches, random bytes on
 * a connection, processes in no task. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/net/net.h"
#include "arena.h"
#include "stats.h"
#include "testutil.h"
#include "wire.h"

#define PID 100
#define OTHER_PID 200
#define MS 1000000ull

static stats_t *s_stats;
static net_t *s_net;
static arena_t *s_arena;

/* ------------------------------------------------------- building events */

typedef struct {
    wire_net_event_t ev[64];
    uint32_t n;
} s_batch_t;

static wire_net_event_t *s_ev(s_batch_t *b, uint8_t kind, uint64_t conn,
                              uint64_t ts)
{
    ck_assert_uint_lt(b->n, 64);
    wire_net_event_t *e = &b->ev[b->n++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->pid = PID;
    e->tid = PID;
    e->conn_id = conn;
    e->ts_ns = ts;
    return e;
}

static void s_addr(wire_net_event_t *e, uint8_t role, uint8_t a, uint16_t port)
{
    e->proto = WIRE_NET_TCP;
    e->role = role;
    e->local_addr[10] = e->local_addr[11] = 0xff;
    e->local_addr[12] = 10;
    e->local_addr[15] = 1;
    e->local_port = role == WIRE_NET_ROLE_SERVER ? 8080 : 40000;
    e->remote_addr[10] = e->remote_addr[11] = 0xff;
    e->remote_addr[12] = 10;
    e->remote_addr[15] = a;
    e->remote_port = port;
}

static void s_open(s_batch_t *b, uint64_t conn, uint8_t role, uint8_t a,
                   uint16_t port, uint64_t ts, uint64_t dur)
{
    wire_net_event_t *e = s_ev(b, WIRE_NET_OPEN, conn, ts);
    s_addr(e, role, a, port);
    e->dur_ns = dur;
}

/* A read or write of text; captured: how much of it the capture kept
 * (-1: all), bytes: what the syscall moved (0: the text's length). */
static wire_net_event_t *s_data(s_batch_t *b, uint64_t conn, uint8_t dir,
                                const char *text, long captured,
                                uint64_t bytes, uint64_t ts, uint64_t dur)
{
    wire_net_event_t *e = s_ev(b, WIRE_NET_DATA, conn, ts);
    size_t len = strlen(text);
    e->dir = dir;
    e->bytes = bytes ? bytes : len;
    e->ncaptured = captured < 0 ? (uint32_t)len : (uint32_t)captured;
    e->payload = (const uint8_t *)text;
    e->dur_ns = dur;
    return e;
}

static void s_close(s_batch_t *b, uint64_t conn, uint8_t role, uint8_t a,
                    uint16_t port, uint64_t ts, uint64_t dur)
{
    wire_net_event_t *e = s_ev(b, WIRE_NET_CLOSE, conn, ts);
    s_addr(e, role, a, port);
    e->dur_ns = dur;
}

/* Through the bus codec, as the stage receives it. */
static int s_send(s_batch_t *b)
{
    wire_net_batch_t m = {.nevents = b->n, .events = b->ev, .node = "n1"};
    wire_net_batch_t got;
    wire_buf_t buf;
    char err[256];
    wire_header_set(&m.hdr, "collector/test", 1);
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_net_batch(&m, &buf), 0);
    ck_assert_msg(wire_decode_net_batch(buf.data, buf.len, s_arena, &got, err,
                                        sizeof err) == 0, "%s", err);
    wire_buf_release(&buf);
    int rc = net_on_batch(s_net, &got);
    b->n = 0;
    return rc;
}

/* The task set: the policy engine's capture task for the HTTP monitors
 * (no rules) first, then the NETWORK task with json, and an ON_CPU task. */
static void s_tasks(const char *json, uint32_t npids, const uint32_t *pids)
{
    wire_task_t capture = {.task_id = "policy-http-capture",
                           .target = WIRE_TARGET_NETWORK, .npids = npids,
                           .pids = pids, .extension_json = ""};
    wire_task_t t = {.task_id = "net-1", .target = WIRE_TARGET_NETWORK,
                     .npids = npids, .pids = pids,
                     .extension_json = json};
    wire_task_t cpu = {.task_id = "cpu-1", .target = WIRE_TARGET_ON_CPU,
                       .npids = 1, .pids = (const uint32_t[]){OTHER_PID},
                       .extension_json = ""};
    wire_task_t all[3] = {capture, t, cpu};
    wire_task_set_t set = {.generation = 1, .ntasks = 3, .tasks = all};
    ck_assert_int_eq(net_on_tasks(s_net, &set), 0);
}

static double s_counter(const char *name, const char *labels)
{
    return stats_value(stats_counter(s_stats, name, labels, ""));
}

/* ---------------------------------------------------- reading the report */

static const char *s_label(const wire_net_meter_t *m, const char *key)
{
    for (uint32_t i = 0; i < m->nlabels; i++)
        if (strcmp(m->labels[i].key, key) == 0)
            return m->labels[i].value;
    return NULL;
}

/* The meter called name (with label code when given); NULL when none. */
static const wire_net_meter_t *s_find(const wire_net_report_t *r,
                                      const char *name, const char *code)
{
    const wire_net_meter_t *found = NULL;
    for (uint32_t i = 0; i < r->nmeters; i++) {
        const wire_net_meter_t *m = &r->meters[i];
        if (strcmp(m->name, name) != 0)
            continue;
        const char *c = s_label(m, "code");
        if (code && (!c || strcmp(c, code) != 0))
            continue;
        ck_assert_msg(!found, "%s twice", name);
        found = m;
    }
    return found;
}

static double s_value(const wire_net_report_t *r, const char *name,
                      const char *code)
{
    const wire_net_meter_t *m = s_find(r, name, code);
    ck_assert_msg(m != NULL, "no meter %s", name);
    ck_assert_uint_eq(m->nbuckets, 0);
    return m->value;
}

/* The histogram's counts: bucket index -> count for the non-zero ones. */
static void s_hist(const wire_net_report_t *r, const char *name,
                   uint32_t nbuckets, double bound, uint64_t count)
{
    const wire_net_meter_t *m = s_find(r, name, NULL);
    ck_assert_msg(m != NULL, "no histogram %s", name);
    ck_assert_uint_eq(m->nbuckets, nbuckets);
    uint64_t total = 0;
    int seen = 0;
    for (uint32_t i = 0; i < m->nbuckets; i++) {
        total += m->counts[i];
        if (m->bounds[i] == bound) {
            ck_assert_uint_eq(m->counts[i], count);
            seen = 1;
        }
    }
    ck_assert_msg(seen, "%s: no bucket %g", name, bound);
    ck_assert_uint_ge(total, count);
}

static const wire_net_http_t *s_row(const wire_net_report_t *r,
                                    const char *uri)
{
    for (uint32_t i = 0; i < r->nhttp; i++)
        if (strcmp(r->http[i].uri, uri) == 0)
            return &r->http[i];
    return NULL;
}

/* --------------------------------------------------------------- fixture */

static void setup(void)
{
    s_stats = stats_new("aggregator", "test");
    s_arena = arena_new(16u << 20);
    net_options_t o = {.stats = s_stats, .max_conns = 4,
                       .max_endpoints = 8};
    s_net = net_new(&o);
    ck_assert_ptr_nonnull(s_net);
    s_tasks("", 1, (const uint32_t[]){PID});
}

static void teardown(void)
{
    net_destroy(&s_net);
    arena_destroy(&s_arena);
    stats_destroy(&s_stats);
}

/* ------------------------------------------------------------------ tests */

static const char s_req_a[] = "GET /a?x=1 HTTP/1.1\r\nHost: s\r\n\r\n";
static const char s_resp_a[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
static const char s_req_b[] = "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
static const char s_resp_b[] = "HTTP/1.1 500 Internal Server Error\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n"
                               "4\r\nfail\r\n0\r\n\r\n";

/* A server with a keep-alive connection: a fast 200 and a slow chunked
 * 500; exact L4 and HTTP meters, labels, buckets and per-URI rows. */
START_TEST(server_keepalive_meters)
{
    s_batch_t b = {.n = 0};
    uint64_t t0 = 5000 * MS;
    s_open(&b, 1, WIRE_NET_ROLE_SERVER, 7, 5555, t0, 30000);
    s_data(&b, 1, WIRE_NET_IN, s_req_a, -1, 0, t0 + 1 * MS, 2000);
    s_data(&b, 1, WIRE_NET_OUT, s_resp_a, -1, 0, t0 + 13 * MS, 4000)->rtt_us = 120;
    s_data(&b, 1, WIRE_NET_IN, s_req_b, -1, 0, t0 + 20 * MS, 6000);
    s_data(&b, 1, WIRE_NET_OUT, s_resp_b, -1, 0, t0 + 170 * MS, 8000)->rtt_us = 700;
    ck_assert_int_eq(s_send(&b), 0);
    ck_assert_int_eq(net_flush(s_net, 1700000000000ull), 0);
    const wire_net_report_t *r = net_last_report(s_net);

    /* layer 4, named for the server side */
    ck_assert_double_eq(s_value(r, "server_read_counts_counter", NULL), 2);
    ck_assert_double_eq(s_value(r, "server_read_bytes_counter", NULL),
                        strlen(s_req_a) + strlen(s_req_b));
    ck_assert_double_eq(s_value(r, "server_read_exe_time_counter", NULL), 4000);
    ck_assert_double_eq(s_value(r, "server_write_counts_counter", NULL), 2);
    ck_assert_double_eq(s_value(r, "server_write_bytes_counter", NULL),
                        strlen(s_resp_a) + strlen(s_resp_b));
    ck_assert_double_eq(s_value(r, "server_write_exe_time_counter", NULL), 6000);
    ck_assert_double_eq(s_value(r, "server_write_rtt_counts_counter", NULL), 2);
    ck_assert_double_eq(s_value(r, "server_write_rtt_exe_time_counter", NULL),
                        410);
    ck_assert_ptr_null(s_find(r, "server_write_rtt_bytes_counter", NULL));
    ck_assert_double_eq(s_value(r, "server_connect_counts_counter", NULL), 1);
    ck_assert_double_eq(s_value(r, "server_connect_exe_time_counter", NULL),
                        30000);
    /* counted before its protocol was known, it followed the connection */
    ck_assert_str_eq(s_label(s_find(r, "server_connect_counts_counter", NULL),
                             "protocol"), "http");
    ck_assert_ptr_null(s_find(r, "server_close_counts_counter", NULL));
    ck_assert_ptr_null(s_find(r, "client_read_counts_counter", NULL));
    /* ns buckets: 2000 and 6000 ns fall in [0, 10us); RTT in us */
    s_hist(r, "server_read_exe_time_histogram", 34, 0, 2);
    s_hist(r, "server_write_rtt_histogram", 34, 100, 1);
    s_hist(r, "server_write_rtt_histogram", 34, 500, 1);
    s_hist(r, "server_connect_exe_time_histogram", 34, 10000, 1);

    /* HTTP/1.x: 12 ms and 150 ms */
    ck_assert_double_eq(s_value(r, "http1_request_counter", NULL), 2);
    ck_assert_double_eq(s_value(r, "http1_response_status_counter", "200"), 1);
    ck_assert_double_eq(s_value(r, "http1_response_status_counter", "500"), 1);
    ck_assert_double_eq(s_value(r, "http1_server_duration_avg", NULL), 81);
    s_hist(r, "http1_server_duration_histogram", 45, 10, 1);
    s_hist(r, "http1_server_duration_histogram", 45, 150, 1);
    ck_assert_double_eq(s_value(r, "http1_request_package_size_avg", NULL),
                        (strlen(s_req_a) + strlen(s_req_b)) / 2.0);
    ck_assert_double_eq(s_value(r, "http1_response_package_size_avg", NULL),
                        (strlen(s_resp_a) + strlen(s_resp_b)) / 2.0);
    s_hist(r, "http1_request_package_size_histogram", 25, 256, 2);
    ck_assert_ptr_null(s_find(r, "http1_client_duration_avg", NULL));

    /* the labels and the peer of every meter of this traffic */
    const wire_net_meter_t *m = s_find(r, "http1_response_status_counter",
                                       "500");
    ck_assert_str_eq(s_label(m, "side"), "server");
    ck_assert_str_eq(s_label(m, "protocol"), "http");
    ck_assert_str_eq(s_label(m, "is_ssl"), "false");
    ck_assert_uint_eq(m->pid, PID);
    ck_assert_uint_eq(m->role, WIRE_NET_ROLE_SERVER);
    ck_assert_uint_eq(m->peer_pid, 0);
    ck_assert_str_eq(m->peer_address, "10.0.0.7:5555");

    /* per-URI rows for the monitors, the query stripped */
    ck_assert_uint_eq(r->nhttp, 2);
    ck_assert_uint_eq(s_row(r, "/a")->requests, 1);
    ck_assert_uint_eq(s_row(r, "/a")->errors, 0);
    ck_assert_uint_eq(s_row(r, "/b")->errors, 1);
    ck_assert_double_eq_tol(s_row(r, "/b")->duration_ms_sum, 150, 1e-9);
    ck_assert_uint_eq(r->nsamples, 0);

    /* what the report holds encodes */
    wire_buf_t buf;
    wire_buf_init(&buf);
    wire_net_report_t copy = *r;
    wire_header_set(&copy.hdr, "aggregator/test", 1);
    ck_assert_int_eq(wire_encode_net_report(&copy, &buf), 0);
    wire_buf_release(&buf);

    /* the next interval starts empty */
    ck_assert_int_eq(net_flush(s_net, 1700000002000ull), 0);
    ck_assert_uint_eq(net_last_report(s_net)->nmeters, 0);
    ck_assert_uint_eq(net_last_report(s_net)->nhttp, 0);
}
END_TEST

/* A client pipelining two requests in one write; the second response's
 * body mostly not captured (bytes > ncaptured): both exchanges paired,
 * sizes the syscalls' byte counts; a close counts. */
START_TEST(client_pipelined_partial_capture)
{
    s_batch_t b = {.n = 0};
    static const char reqs[] = "GET /p1 HTTP/1.1\r\n\r\nGET /p2 HTTP/1.1\r\n\r\n";
    static const char r1[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    static const char r2[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 10000\r\n\r\n"
                             "0123456789";
    size_t r2_head = strlen(r2) - 10;
    uint64_t t0 = 9000 * MS;
    s_open(&b, 2, WIRE_NET_ROLE_CLIENT, 9, 80, t0, 1000);
    s_data(&b, 2, WIRE_NET_OUT, reqs, -1, 0, t0 + 1 * MS, 100);
    s_data(&b, 2, WIRE_NET_IN, r1, -1, 0, t0 + 3 * MS, 100);
    /* 10000 body bytes moved, the capture kept the head and 10 of them */
    s_data(&b, 2, WIRE_NET_IN, r2, -1, r2_head + 10000, t0 + 4 * MS, 100);
    s_close(&b, 2, WIRE_NET_ROLE_CLIENT, 9, 80, t0 + 5 * MS, 700);
    ck_assert_int_eq(s_send(&b), 0);
    ck_assert_int_eq(net_flush(s_net, 1700000000000ull), 0);
    const wire_net_report_t *r = net_last_report(s_net);
    ck_assert_double_eq(s_value(r, "http1_request_counter", NULL), 2);
    ck_assert_double_eq(s_value(r, "http1_response_status_counter", "404"), 1);
    ck_assert_double_eq(s_value(r, "http1_response_package_size_avg", NULL),
                        (strlen(r1) + r2_head + 10000) / 2.0);
    s_hist(r, "http1_response_package_size_histogram", 25, 8192, 1);
    ck_assert_double_eq(s_value(r, "client_close_counts_counter", NULL), 1);
    ck_assert_double_eq(s_value(r, "client_close_exe_time_counter", NULL), 700);
    ck_assert_double_eq(s_value(r, "client_read_bytes_counter", NULL),
                        strlen(r1) + r2_head + 10000);
    ck_assert_str_eq(s_find(r, "http1_request_counter", NULL)->peer_address,
                     "10.0.0.9:80");
    ck_assert_ptr_nonnull(s_find(r, "http1_client_duration_histogram", NULL));
    ck_assert_double_eq(s_counter("net_connections", NULL), 0);
}
END_TEST

static const char s_rules[] =
    "{\"networkSamplings\":["
    "{\"uriRegex\":\"^/slow\",\"MINDURATION\":100,"
    " \"settings\":{\"requireCompleteRequest\":true,\"maxRequestSize\":40,"
    "  \"RequireCompleteResponse\":true}},"
    "{\"when5xx\":true,\"When4xx\":true,\"minDuration\":1000}]}";

/* One exchange on its own connection, with extra request headers. */
static void s_exchange(uint64_t conn, const char *method_uri,
                       const char *headers, int status, uint64_t dur_ms)
{
    static char req[512], resp[256];
    s_batch_t b = {.n = 0};
    uint64_t t0 = (1000 + conn * 1000) * MS;
    snprintf(req, sizeof req, "%s HTTP/1.1\r\nHost: h\r\n%s\r\n", method_uri,
             headers);
    snprintf(resp, sizeof resp, "HTTP/1.1 %d X\r\nContent-Length: 4\r\n\r\n"
             "body", status);
    s_open(&b, conn, WIRE_NET_ROLE_SERVER, 3, 4000, t0, 0);
    s_data(&b, conn, WIRE_NET_IN, req, -1, 0, t0, 0);
    s_data(&b, conn, WIRE_NET_OUT, resp, -1, 0, t0 + dur_ms * MS, 0);
    s_close(&b, conn, WIRE_NET_ROLE_SERVER, 3, 4000, t0 + dur_ms * MS, 0);
    ck_assert_int_eq(s_send(&b), 0);
}

static const wire_net_sample_t *s_sample(const wire_net_report_t *r,
                                         const char *uri)
{
    for (uint32_t i = 0; i < r->nsamples; i++)
        if (strcmp(r->samples[i].uri, uri) == 0)
            return &r->samples[i];
    return NULL;
}

/* Rules by URI and reason, trace contexts of the three providers (and
 * none), bodies cut at the rule's sizes, rules kept when a re-sent task
 * has an empty ExtensionConfigJSON. */
START_TEST(sampled_requests_by_rule_and_trace)
{
    s_tasks(s_rules, 1, (const uint32_t[]){PID});
    /* sw8: trace id "t1" and segment "s1" in base64 */
    s_exchange(1, "GET /slow/x", "sw8: 1-dDE=-czE=-3-c3Zj-aW5z-L2E=-aDo4MA==\r\n",
               200, 150);
    s_exchange(2, "GET /slow/y", "", 200, 300);                /* no trace */
    s_exchange(3, "GET /api/z", "b3: abc123-def456-1\r\n", 503, 5);
    s_exchange(4, "GET /api/w",
               "traceparent: 00-0af7651916cd43dd8448eb211c80319c-"
               "b7ad6b7169203331-01\r\n", 404, 5);
    s_exchange(5, "GET /api/v", "X-B3-TraceId: 77\r\nx-b3-spanid: 88\r\n",
               200, 5);                                         /* fast */
    s_exchange(6, "GET /slow/q", "sw8: 1-dDE=-czE=-3-c3Zj-aW5z-L2E=-aDo4MA==\r\n",
               200, 20);                                        /* fast */
    ck_assert_int_eq(net_flush(s_net, 1700000000000ull), 0);
    const wire_net_report_t *r = net_last_report(s_net);
    ck_assert_uint_eq(r->nsamples, 3);

    const wire_net_sample_t *s = s_sample(r, "/slow/x");
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->reason, "slow");
    ck_assert_str_eq(s->trace_provider, "skywalking");
    ck_assert_str_eq(s->trace_id, "t1");
    ck_assert_str_eq(s->segment_id, "s1");
    ck_assert_str_eq(s->span_id, "3");
    ck_assert_uint_eq(s->status, 200);
    ck_assert_uint_eq(s->role, WIRE_NET_ROLE_SERVER);
    ck_assert_uint_eq(s->end_ms - s->start_ms, 150);
    ck_assert_uint_eq(s->req_len, 40);   /* maxRequestSize */
    ck_assert_mem_eq(s->req, "GET /slow/x HTTP/1.1\r\nHost: h\r\nsw8: 1-dD", 40);
    ck_assert_uint_eq(s->resp_len, strlen("HTTP/1.1 200 X\r\nContent-Length: 4"
                                          "\r\n\r\nbody"));
    ck_assert_mem_eq(s->resp + s->resp_len - 8, "\r\n\r\nbody", 8);

    s = s_sample(r, "/api/z");
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->reason, "status_5xx");
    ck_assert_str_eq(s->trace_provider, "zipkin");
    ck_assert_str_eq(s->trace_id, "abc123");
    ck_assert_str_eq(s->span_id, "def456");
    ck_assert_uint_eq(s->req_len, 0);    /* the default rule wants none */

    s = s_sample(r, "/api/w");
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->reason, "status_4xx");
    ck_assert_str_eq(s->trace_provider, "w3c");
    ck_assert_str_eq(s->trace_id, "0af7651916cd43dd8448eb211c80319c");
    ck_assert_str_eq(s->span_id, "b7ad6b7169203331");
    ck_assert_ptr_null(s_sample(r, "/slow/y"));
    ck_assert_ptr_null(s_sample(r, "/api/v"));

    /* re-sent with an empty and a null ExtensionConfigJSON: rules stay */
    s_tasks("", 1, (const uint32_t[]){PID});
    s_tasks("null", 1, (const uint32_t[]){PID});
    s_exchange(7, "GET /api/u", "X-B3-TraceId: 77\r\nx-b3-spanid: 88\r\n",
               502, 5);
    ck_assert_int_eq(net_flush(s_net, 1700000002000ull), 0);
    r = net_last_report(s_net);
    ck_assert_uint_eq(r->nsamples, 1);
    ck_assert_str_eq(r->samples[0].trace_id, "77");
    ck_assert_str_eq(r->samples[0].span_id, "88");

    /* a broken document keeps them too, and is counted */
    wire_task_t t = {.task_id = "net-1", .target = WIRE_TARGET_NETWORK,
                     .npids = 1, .pids = (const uint32_t[]){PID},
                     .extension_json = "{\"networkSamplings\":[{\"uriRegex\":\"(\"}]}"};
    wire_task_set_t set = {.ntasks = 1, .tasks = &t};
    ck_assert_int_eq(net_on_tasks(s_net, &set), 0);
    ck_assert_double_eq(s_counter("net_rules_refused", NULL), 1);
    s_exchange(8, "GET /api/t", "b3: 1-2\r\n", 500, 5);
    ck_assert_int_eq(net_flush(s_net, 1700000004000ull), 0);
    ck_assert_uint_eq(net_last_report(s_net)->nsamples, 1);
}
END_TEST

/* Only the 10 slowest of a reason per traffic per report. */
START_TEST(sampled_top_ten_per_reason)
{
    s_tasks("{\"networkSamplings\":[{\"minDuration\":1}]}", 1,
            (const uint32_t[]){PID});
    /* one connection, one traffic: 14 slow requests, 10..23 ms */
    s_batch_t b = {.n = 0};
    uint64_t t = 100 * MS;
    s_open(&b, 1, WIRE_NET_ROLE_SERVER, 3, 4000, t, 0);
    for (int i = 0; i < 14; i++) {
        s_data(&b, 1, WIRE_NET_IN, "GET /t HTTP/1.1\r\nsw8: 1-dDE=-czE=-3-c3Zj-aW5z-L2E=-aDo4MA==\r\n\r\n",
               -1, 0, t, 0);
        t += (uint64_t)(10 + i) * MS;
        s_data(&b, 1, WIRE_NET_OUT, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
               -1, 0, t, 0);
    }
    ck_assert_int_eq(s_send(&b), 0);
    ck_assert_int_eq(net_flush(s_net, 1700000000000ull), 0);
    const wire_net_report_t *r = net_last_report(s_net);
    ck_assert_uint_eq(r->nsamples, 10);
    for (uint32_t i = 0; i < r->nsamples; i++)
        ck_assert_uint_ge(r->samples[i].end_ms - r->samples[i].start_ms, 14);
}
END_TEST

/* max_conns 4: six connections, the two least recently used go. */
START_TEST(lru_bound_counts_evictions)
{
    s_batch_t b = {.n = 0};
    for (uint64_t c = 1; c <= 4; c++)
        s_open(&b, c, WIRE_NET_ROLE_CLIENT, 9, 80, c * MS, 10);
    /* 1 is used again: 2 and 3 are the oldest now */
    s_data(&b, 1, WIRE_NET_OUT, "x", -1, 0, 5 * MS, 10);
    s_open(&b, 5, WIRE_NET_ROLE_CLIENT, 9, 80, 6 * MS, 10);
    s_open(&b, 6, WIRE_NET_ROLE_CLIENT, 9, 80, 7 * MS, 10);
    ck_assert_int_eq(s_send(&b), 0);
    ck_assert_double_eq(s_counter("net_conn_evictions", NULL), 2);
    ck_assert_double_eq(s_counter("net_connections", NULL), 4);
    /* an event of an evicted connection starts a new one: 4 evicted */
    s_data(&b, 1, WIRE_NET_OUT, "y", -1, 0, 8 * MS, 10);
    s_data(&b, 2, WIRE_NET_OUT, "y", -1, 0, 9 * MS, 10);
    ck_assert_int_eq(s_send(&b), 0);
    ck_assert_double_eq(s_counter("net_conn_evictions", NULL), 3);
    ck_assert_uint_gt(net_memory(s_net), 0);
    /* the process leaves every task: its connections end with it */
    s_tasks("", 1, (const uint32_t[]){OTHER_PID});
    ck_assert_double_eq(s_counter("net_conn_evictions", NULL), 3);
    s_data(&b, 1, WIRE_NET_OUT, "z", -1, 0, 10 * MS, 10);
    ck_assert_int_eq(s_send(&b), 0);
    ck_assert_double_eq(s_counter("net_connections", NULL), 0);
    ck_assert_double_eq(s_counter("net_events_untraced", NULL), 1);
}
END_TEST

/* A malformed event refuses its whole batch; random bytes on a traced
 * connection are counted and analysed no further; events of processes in
 * no NETWORK task are counted and skipped. */
START_TEST(refusals_are_counted)
{
    s_batch_t b = {.n = 0};
    s_open(&b, 1, WIRE_NET_ROLE_CLIENT, 9, 80, MS, 10);
    wire_net_event_t *e = s_data(&b, 1, WIRE_NET_OUT, "GET / HTTP/1.1\r\n\r\n",
                                 -1, 0, 2 * MS, 10);
    wire_net_batch_t bad = {.nevents = b.n, .events = b.ev, .node = "n1"};
    wire_header_set(&bad.hdr, "collector/test", 1);
    e->pid = 0;
    ck_assert_int_eq(net_on_batch(s_net, &bad), -1);
    e->pid = PID;
    e->ncaptured = 100;          /* more than the syscall moved */
    ck_assert_int_eq(net_on_batch(s_net, &bad), -1);
    ck_assert_double_eq(s_counter("net_batches_rejected", NULL), 2);
    ck_assert_double_eq(s_counter("net_events", NULL), 0);
    b.n = 0;

    static const char noise[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
                                "\x8a\x11\x00\x7f binary \xff\xfe\r\n";
    s_open(&b, 3, WIRE_NET_ROLE_CLIENT, 9, 443, MS, 10);
    s_data(&b, 3, WIRE_NET_OUT, noise, -1, 0, 2 * MS, 10);
    s_data(&b, 3, WIRE_NET_IN, "GET / HTTP/1.1\r\n\r\n", -1, 0, 3 * MS, 10);
    s_ev(&b, WIRE_NET_DATA, 9, 4 * MS)->pid = OTHER_PID;
    ck_assert_int_eq(s_send(&b), 0);
    ck_assert_double_eq(s_counter("net_streams_unknown", NULL), 1);
    ck_assert_double_eq(s_counter("net_events_untraced", NULL), 1);
    ck_assert_int_eq(net_flush(s_net, 1700000000000ull), 0);
    const wire_net_report_t *r = net_last_report(s_net);
    ck_assert_ptr_null(s_find(r, "http1_request_counter", NULL));
    const wire_net_meter_t *m = s_find(r, "client_write_counts_counter", NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(s_label(m, "protocol"), "unknown");
}
END_TEST

/* A TLS connection as the collector reports it: the handshake and every
 * ciphertext syscall with is_ssl 0 (the first with bytes it kept), the
 * plaintext of SSL_write/SSL_read with is_ssl 1, the close with is_ssl 1.
 * Layer 4 counts the ciphertext only, HTTP reads the plaintext only, and
 * the connection is one traffic with is_ssl true (its handshake moved
 * there); a peer process on this host replaces the address. */
START_TEST(tls_flag_and_local_peer)
{
    static const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    s_batch_t b = {.n = 0};
    s_open(&b, 1, WIRE_NET_ROLE_CLIENT, 9, 443, MS, 5000);
    b.ev[0].peer_pid = OTHER_PID;
    s_data(&b, 1, WIRE_NET_OUT, hello, -1, 517, 2 * MS, 10);   /* hello */
    s_data(&b, 1, WIRE_NET_IN, "", 0, 4000, 3 * MS, 10);       /* server */
    s_data(&b, 1, WIRE_NET_OUT, "GET /tls HTTP/1.1\r\n\r\n", -1, 0, 4 * MS,
           900)->is_ssl = 1;
    s_data(&b, 1, WIRE_NET_OUT, "", 0, 60, 4 * MS, 20)->rtt_us = 90;
    s_data(&b, 1, WIRE_NET_IN, "", 0, 50, 6 * MS, 30);
    s_data(&b, 1, WIRE_NET_IN, "HTTP/1.1 204 No Content\r\n\r\n", -1, 0,
           6 * MS, 800)->is_ssl = 1;
    ck_assert_int_eq(s_send(&b), 0);
    s_close(&b, 1, WIRE_NET_ROLE_CLIENT, 9, 443, 7 * MS, 3000);
    b.ev[0].is_ssl = 1;
    ck_assert_int_eq(s_send(&b), 0);
    ck_assert_int_eq(net_flush(s_net, 1700000000000ull), 0);
    const wire_net_report_t *r = net_last_report(s_net);
    for (uint32_t i = 0; i < r->nmeters; i++)
        ck_assert_msg(strcmp(s_label(&r->meters[i], "is_ssl"), "true") == 0,
                      "%s outside the TLS traffic", r->meters[i].name);
    const wire_net_meter_t *m = s_find(r, "http1_request_counter", NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_double_eq(m->value, 1);
    ck_assert_uint_eq(m->peer_pid, OTHER_PID);
    ck_assert_str_eq(m->peer_address, "");
    ck_assert_double_eq(s_value(r, "http1_client_duration_avg", NULL), 2);
    /* layer 4: the ciphertext (hello 517 + 60 out, 4000 + 50 in) */
    ck_assert_double_eq(s_value(r, "client_write_counts_counter", NULL), 2);
    ck_assert_double_eq(s_value(r, "client_write_bytes_counter", NULL), 577);
    ck_assert_double_eq(s_value(r, "client_read_bytes_counter", NULL), 4050);
    ck_assert_double_eq(s_value(r, "client_write_rtt_exe_time_counter", NULL),
                        90);
    ck_assert_double_eq(s_value(r, "client_connect_counts_counter", NULL), 1);
    ck_assert_double_eq(s_value(r, "client_close_exe_time_counter", NULL),
                        3000);
    s_hist(r, "client_connect_exe_time_histogram", 34, 0, 1);
    s_hist(r, "client_read_exe_time_histogram", 34, 0, 2);
    ck_assert_double_eq(s_counter("net_streams_unknown", NULL), 1);
}
END_TEST

/* The local view: edges with bytes and requests, endpoint rows with
 * error rate and quantiles, samples newest first. */
START_TEST(local_view_json)
{
    s_batch_t b = {.n = 0};
    uint64_t t0 = 5000 * MS;
    s_open(&b, 1, WIRE_NET_ROLE_SERVER, 7, 5555, t0, 30000);
    s_data(&b, 1, WIRE_NET_IN, s_req_a, -1, 0, t0 + 1 * MS, 2000);
    s_data(&b, 1, WIRE_NET_OUT, s_resp_a, -1, 0, t0 + 13 * MS, 4000);
    s_data(&b, 1, WIRE_NET_IN, s_req_b, -1, 0, t0 + 20 * MS, 6000);
    s_data(&b, 1, WIRE_NET_OUT, s_resp_b, -1, 0, t0 + 170 * MS, 8000);
    ck_assert_int_eq(s_send(&b), 0);
    ck_assert_int_eq(net_flush(s_net, 1700000000000ull), 0);
    size_t len = 0;
    char *j = net_view_json(s_net, PID, &len);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(strlen(j), len);
    ck_assert_ptr_nonnull(strstr(j, "\"peer\":\"10.0.0.7:5555\",\"protocol\":\"http\""));
    ck_assert_ptr_nonnull(strstr(j, "\"requests\":2,\"errors\":1,\"requests_last_interval\":2"));
    ck_assert_ptr_nonnull(strstr(j, "\"uri\":\"/b\",\"requests\":1,\"errors\":1,"
                                    "\"error_rate\":1.0000,\"avg_ms\":150.000,"
                                    "\"p50_ms\":170,\"p99_ms\":170"));
    free(j);
    j = net_view_json(s_net, 4242, &len);
    ck_assert_str_eq(j, "{\"connections\":1,\"traced_processes\":1,"
                        "\"edges\":[],\"endpoints\":[],\"samples\":[]}");
    free(j);
}
END_TEST

/* Short connections one after the other (connect, request, response,
 * close): nothing stays behind but the one traffic and endpoint they
 * share, so memory after 20,000 is what it was after 100. */
START_TEST(short_connections_flat_memory)
{
    size_t after_100 = 0;
    for (uint64_t c = 1; c <= 20000; c++) {
        s_batch_t b = {.n = 0};
        uint64_t t0 = c * 10 * MS;
        s_open(&b, c, WIRE_NET_ROLE_SERVER, 7, 5555, t0, 1000);
        s_data(&b, c, WIRE_NET_IN, s_req_a, -1, 0, t0 + MS, 100);
        s_data(&b, c, WIRE_NET_OUT, s_resp_a, -1, 0, t0 + 2 * MS, 100);
        s_close(&b, c, WIRE_NET_ROLE_SERVER, 7, 5555, t0 + 3 * MS, 100);
        ck_assert_int_eq(s_send(&b), 0);
        arena_reset(s_arena);
        if (c % 1000 == 0)
            ck_assert_int_eq(net_flush(s_net, 1700000000000ull + c), 0);
        if (c == 100) {
            ck_assert_int_eq(net_flush(s_net, 1700000000000ull), 0);
            after_100 = net_memory(s_net);
        }
    }
    ck_assert_int_eq(net_flush(s_net, 1700000100000ull), 0);
    ck_assert_double_eq(s_counter("net_connections", NULL), 0);
    ck_assert_double_eq(s_counter("net_conn_evictions", NULL), 0);
    ck_assert_uint_le(net_memory(s_net), after_100);
}
END_TEST

/* A server's clients from one address on ephemeral ports are one traffic
 * (the reference folds the port), named by the first connection; a
 * client's servers stay apart by port. */
START_TEST(server_folds_client_ports)
{
    s_batch_t b = {.n = 0};
    s_open(&b, 1, WIRE_NET_ROLE_SERVER, 7, 40001, MS, 1000);
    s_open(&b, 2, WIRE_NET_ROLE_SERVER, 7, 40002, 2 * MS, 1000);
    s_open(&b, 3, WIRE_NET_ROLE_CLIENT, 9, 80, 3 * MS, 1000);
    s_open(&b, 4, WIRE_NET_ROLE_CLIENT, 9, 81, 4 * MS, 1000);
    ck_assert_int_eq(s_send(&b), 0);
    ck_assert_int_eq(net_flush(s_net, 1700000000000ull), 0);
    const wire_net_report_t *r = net_last_report(s_net);
    const wire_net_meter_t *m = s_find(r, "server_connect_counts_counter",
                                       NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_double_eq(m->value, 2);
    ck_assert_str_eq(m->peer_address, "10.0.0.7:40001");
    int clients = 0;
    for (uint32_t i = 0; i < r->nmeters; i++)
        clients += strcmp(r->meters[i].name, "client_connect_counts_counter") == 0;
    ck_assert_int_eq(clients, 2);
}
END_TEST

/* Replicas' views merge: counts add up, rows follow each other; a
 * document that is no view is named. */
START_TEST(views_of_replicas_merge)
{
    static const char a[] =
        "{\"connections\":2,\"traced_processes\":1,\"edges\":[{\"pid\":1,"
        "\"peer\":\"x\\\"y\",\"is_ssl\":false,\"rtt_us_avg\":12.5}],"
        "\"endpoints\":[],\"samples\":[{\"pid\":1}]}";
    static const char b[] =
        "{\"connections\":3,\"traced_processes\":2,\"edges\":[{\"pid\":2}],"
        "\"endpoints\":[{\"pid\":2,\"uri\":\"/u\",\"requests\":7}],"
        "\"samples\":[]}";
    const char *docs[3] = {a, b, "{\"connections\":1}"};
    size_t lens[3] = {strlen(a), strlen(b), strlen(docs[2])};
    size_t len = 0;
    long bad = 0;
    char *m = net_view_merge(docs, lens, 2, &len, &bad);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m, "{\"connections\":5,\"traced_processes\":3,"
                        "\"edges\":[{\"pid\":1,\"peer\":\"x\\\"y\","
                        "\"is_ssl\":false,\"rtt_us_avg\":12.5},{\"pid\":2}],"
                        "\"endpoints\":[{\"pid\":2,\"uri\":\"/u\","
                        "\"requests\":7}],\"samples\":[{\"pid\":1}]}");
    ck_assert_uint_eq(len, strlen(m));
    free(m);
    ck_assert_ptr_null(net_view_merge(docs, lens, 3, &len, &bad));
    ck_assert_int_eq(bad, 2);
    /* the room's own view is a view */
    char *own = net_view_json(s_net, 0, &len);
    docs[0] = own;
    lens[0] = len;
    m = net_view_merge(docs, lens, 1, &len, &bad);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m, own);
    free(m);
    free(own);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("room");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, server_keepalive_meters);
    tcase_add_test(tc, client_pipelined_partial_capture);
    tcase_add_test(tc, sampled_requests_by_rule_and_trace);
    tcase_add_test(tc, sampled_top_ten_per_reason);
    tcase_add_test(tc, lru_bound_counts_evictions);
    tcase_add_test(tc, refusals_are_counted);
    tcase_add_test(tc, tls_flag_and_local_peer);
    tcase_add_test(tc, local_view_json);
    tcase_add_test(tc, short_connections_flat_memory);
    tcase_add_test(tc, server_folds_client_ports);
    tcase_add_test(tc, views_of_replicas_merge);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
