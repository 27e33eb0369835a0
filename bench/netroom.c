/* Network room benchmark (bench/netroom.sh): HTTP/1.1 requests per second
 * one core of the aggregator's network room takes, fed as the collector
 * sends them (net.events batches: a read of the request, a write of the
 * response, keep-alive connections), against lib/http1 alone on the same
 * bytes (the parser, the floor of the room's work) and a memchr scan of
 * them (touching the bytes). CPU time of this thread; best of 3 runs.
 *
 *   netroom CONNS REQUESTS_PER_CONN SAMPLING(0|1) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/net/net.h"
#include "http1.h"
#include "stats.h"
#include "wire.h"

#define PID 4242
#define BATCH 4096

static const char s_req[] =
    "GET /api/items/42?verbose=1 HTTP/1.1\r\nHost: shop.local\r\n"
    "User-Agent: bench/1.0\r\nAccept: */*\r\n"
    "sw8: 1-dDE=-czE=-3-c3Zj-aW5z-L2E=-aDo4MA==\r\n\r\n";
static const char s_resp[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    "Content-Length: 47\r\n\r\n{\"id\":42,\"name\":\"thing\",\"price\":12.5,\"ok\":true}";

static double s_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_event(wire_net_event_t *e, uint64_t conn, uint64_t ts, int in)
{
    memset(e, 0, sizeof *e);
    e->kind = WIRE_NET_DATA;
    e->pid = e->tid = PID;
    e->conn_id = conn;
    e->ts_ns = ts;
    e->proto = WIRE_NET_TCP;
    e->role = WIRE_NET_ROLE_SERVER;
    e->remote_addr[10] = e->remote_addr[11] = 0xff;
    e->remote_addr[12] = 10;
    e->remote_addr[15] = (uint8_t)(conn % 250 + 1);
    e->remote_port = (uint16_t)(30000 + conn % 20000);
    e->dir = in ? WIRE_NET_IN : WIRE_NET_OUT;
    const char *p = in ? s_req : s_resp;
    e->bytes = e->ncaptured = (uint32_t)strlen(p);
    e->payload = (const uint8_t *)p;
    e->dur_ns = 3000;
    e->rtt_us = in ? 0 : 80;
}

static size_t s_mem_per_conn;

static double s_room(unsigned conns, unsigned per, int sampling)
{
    stats_t *st = stats_new("aggregator", "bench");
    net_options_t o = {.stats = st, .max_conns = 65536, .max_endpoints = 4096};
    net_t *net = net_new(&o);
    static const uint32_t pids[] = {PID};
    wire_task_t t = {.task_id = "b", .target = WIRE_TARGET_NETWORK, .npids = 1,
                     .pids = pids,
                     .extension_json = sampling
                         ? "{\"networkSamplings\":[{\"minDuration\":0,"
                           "\"settings\":{\"requireCompleteRequest\":true,"
                           "\"requireCompleteResponse\":true}}]}"
                         : ""};
    wire_task_set_t set = {.ntasks = 1, .tasks = &t};
    net_on_tasks(net, &set);
    static wire_net_event_t ev[BATCH];
    wire_net_batch_t b = {.events = ev, .node = "bench"};
    wire_header_set(&b.hdr, "collector/bench", 1);
    uint64_t ts = 1000000000ull, now_ms = 1700000000000ull, done = 0;
    double t0 = s_cpu_s();
    for (unsigned r = 0; r < per; r++) {
        for (unsigned c = 0; c < conns; c++) {
            s_event(&ev[b.nevents++], c + 1, ts += 1000, 1);
            s_event(&ev[b.nevents++], c + 1, ts += 200000, 0);
            if (b.nevents == BATCH) {
                net_on_batch(net, &b);
                b.nevents = 0;
            }
            if (++done % 200000 == 0)
                net_flush(net, now_ms += 2000);
        }
    }
    if (b.nevents)
        net_on_batch(net, &b);
    net_flush(net, now_ms + 2000);
    double secs = s_cpu_s() - t0;
    s_mem_per_conn = net_memory(net) / conns;
    net_destroy(&net);
    stats_destroy(&st);
    return (double)done / secs;
}

static void s_count(const http1_exchange_t *ex, void *arg)
{
    (void)ex;
    ++*(uint64_t *)arg;
}

static double s_parser(unsigned conns, unsigned per)
{
    http1_conn_t **h = calloc(conns, sizeof *h);
    uint64_t n = 0, ts = 0;
    for (unsigned c = 0; c < conns; c++) {
        h[c] = http1_conn_new(NULL);
        http1_conn_set_handler(h[c], s_count, &n);
    }
    double t0 = s_cpu_s();
    for (unsigned r = 0; r < per; r++)
        for (unsigned c = 0; c < conns; c++) {
            http1_conn_feed(h[c], HTTP1_DIR_IN, s_req, strlen(s_req), ts++);
            http1_conn_feed(h[c], HTTP1_DIR_OUT, s_resp, strlen(s_resp), ts++);
        }
    double secs = s_cpu_s() - t0;
    for (unsigned c = 0; c < conns; c++)
        http1_conn_destroy(&h[c]);
    free(h);
    if (n != (uint64_t)conns * per)
        fprintf(stderr, "netroom: parser paired %llu of %llu\n",
                (unsigned long long)n, (unsigned long long)conns * per);
    return (double)n / secs;
}

static double s_scan(unsigned conns, unsigned per)
{
    volatile size_t sink = 0;
    /* through volatile pointers: the compiler cannot fold the scan */
    const char *volatile req = s_req, *volatile resp = s_resp;
    size_t lreq = strlen(s_req), lresp = strlen(s_resp);
    double t0 = s_cpu_s();
    for (unsigned long i = 0; i < (unsigned long)conns * per; i++) {
        const char *a = memchr(req, 0x7f, lreq);
        const char *b = memchr(resp, 0x7f, lresp);
        sink += (size_t)(a != NULL) + (size_t)(b != NULL) + i;
    }
    (void)sink;
    return (double)conns * per / (s_cpu_s() - t0);
}

static double s_best(double (*fn)(unsigned, unsigned, int), unsigned c,
                     unsigned p, int s)
{
    double best = 0;
    for (int i = 0; i < 3; i++) {
        double v = fn(c, p, s);
        if (v > best)
            best = v;
    }
    return best;
}

static double s_parser3(unsigned c, unsigned p, int s)
{
    (void)s;
    return s_parser(c, p);
}

static double s_scan3(unsigned c, unsigned p, int s)
{
    (void)s;
    return s_scan(c, p);
}

int main(int argc, char **argv)
{
    unsigned conns = argc > 1 ? (unsigned)atoi(argv[1]) : 1000;
    unsigned per = argc > 2 ? (unsigned)atoi(argv[2]) : 200;
    int sampling = argc > 3 ? atoi(argv[3]) : 0;
    double room = s_best(s_room, conns, per, sampling);
    double parser = s_best(s_parser3, conns, per, 0);
    double scan = s_best(s_scan3, conns, per, 0);
    printf("requests: %u connections x %u keep-alive requests, %zu + %zu "
           "bytes each%s\n", conns, per, strlen(s_req), strlen(s_resp),
           sampling ? ", sampling rules on (every request traced)" : "");
    printf("network room  %12.0f req/s  %8.0f ns/req  (%zu bytes per open "
           "HTTP connection)\n", room, 1e9 / room, s_mem_per_conn);
    printf("lib/http1     %12.0f req/s  %8.0f ns/req  (the room costs %.2fx)\n",
           parser, 1e9 / parser, parser / room);
    printf("memchr scan   %12.0f req/s  %8.0f ns/req\n", scan, 1e9 / scan);
    return 0;
}
