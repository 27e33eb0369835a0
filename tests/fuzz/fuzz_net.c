/* The aggregator's network room (aggregator/net) fed socket events as the
 * collector would send them, with arbitrary captured bytes, split and
 * skipped anywhere, on a few connections of a traced process with sampling
 * rules. Byte 0: the task's rules (one of a few documents, including a
 * broken one and an empty one). Then records: a header byte (bits 0-2 the
 * event kind, modulo 5; bit 3 the direction; bits 4-5 the connection;
 * bit 6 TLS; bit 7 flush after it), a length byte, a byte of uncaptured
 * bytes (times 64) and that many payload bytes.
 *
 * Promises checked: a batch of well-formed events is always taken; every
 * report the room builds encodes (net.report's bounds hold) and holds no
 * wrapped-around figure (connections' figures move between traffics when
 * their protocol or TLS is found); the local
 * view is a document; the room never holds more connections than its
 * bound. One room lives for the whole run, so state carries over inputs
 * as it does in a stage. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/net/net.h"
#include "stats.h"
#include "wire.h"

#define FUZZ_PID 4242
#define FUZZ_MAX_EVENTS 256

static stats_t *s_stats;
static net_t *s_net;
static uint64_t s_now_ms = 1700000000000ull;

static const char *const s_rules[] = {
    "",
    "null",
    "{\"networkSamplings\":[{\"minDuration\":0,\"when4xx\":true,"
    "\"when5xx\":true,\"settings\":{\"requireCompleteRequest\":true,"
    "\"requireCompleteResponse\":true,\"maxRequestSize\":100}}]}",
    "{\"NetworkSamplings\":[{\"uriRegex\":\"^/a\",\"minDuration\":1},"
    "{\"when5xx\":true}]}",
    "{\"networkSamplings\":[{\"uriRegex\":\"(\"}]}",
    "[1,2,3]",
};

static void s_stop(void)
{
    net_destroy(&s_net);
    stats_destroy(&s_stats);
}

static net_t *s_room(void)
{
    if (!s_net) {
        s_stats = stats_new("aggregator", "fuzz");
        net_options_t o = {.stats = s_stats, .max_conns = 3,
                           .max_endpoints = 64};
        s_net = s_stats ? net_new(&o) : NULL;
        if (!s_net)
            abort();
        atexit(s_stop);
    }
    return s_net;
}

static void s_check_report(void)
{
    const wire_net_report_t *r = net_last_report(s_net);
    /* figures moved between traffics never go below zero (they would
     * wrap to huge counts) */
    for (uint32_t i = 0; i < r->nmeters; i++) {
        if (!(r->meters[i].value >= 0 && r->meters[i].value < 1e15))
            __builtin_trap();
        for (uint32_t k = 0; k < r->meters[i].nbuckets; k++)
            if (r->meters[i].counts[k] > (1ull << 40))
                __builtin_trap();
    }
    wire_net_report_t copy = *r;
    wire_buf_t buf;
    wire_header_set(&copy.hdr, "aggregator/fuzz", 1);
    wire_buf_init(&buf);
    if (wire_encode_net_report(&copy, &buf) != 0)
        __builtin_trap();
    wire_buf_release(&buf);
}

static void s_send(wire_net_event_t *ev, uint32_t *n, int flush)
{
    wire_net_batch_t b = {.nevents = *n, .events = ev, .node = "fuzz"};
    wire_header_set(&b.hdr, "collector/fuzz", 1);
    if (net_on_batch(s_net, &b) != 0)
        __builtin_trap();
    *n = 0;
    if (flush) {
        s_now_ms += 2000;
        (void)net_flush(s_net, s_now_ms);
        s_check_report();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static wire_net_event_t ev[FUZZ_MAX_EVENTS];
    static const uint32_t pids[] = {FUZZ_PID};
    static uint64_t ts = 1000000000ull;
    if (size < 1)
        return 0;
    s_room();
    wire_task_t t = {.task_id = "fuzz", .target = WIRE_TARGET_NETWORK,
                     .npids = 1, .pids = pids,
                     .extension_json =
                         s_rules[data[0] % (sizeof s_rules / sizeof *s_rules)]};
    wire_task_set_t set = {.ntasks = 1, .tasks = &t};
    (void)net_on_tasks(s_net, &set);
    uint32_t n = 0;
    size_t off = 1;
    while (off + 3 <= size) {
        uint8_t h = data[off], len = data[off + 1], extra = data[off + 2];
        off += 3;
        if (len > size - off)
            len = (uint8_t)(size - off);
        wire_net_event_t *e = &ev[n++];
        memset(e, 0, sizeof *e);
        e->kind = (uint8_t)((h & 7) % (WIRE_NET_KIND_MAX + 1));
        e->pid = e->tid = FUZZ_PID;
        e->conn_id = 1 + ((h >> 4) & 3);
        e->ts_ns = ts += (uint64_t)extra * 100000u;
        e->proto = WIRE_NET_TCP;
        e->role = (uint8_t)((h >> 4) & 1 ? WIRE_NET_ROLE_CLIENT
                                         : WIRE_NET_ROLE_SERVER);
        e->remote_addr[10] = e->remote_addr[11] = 0xff;
        e->remote_addr[15] = (uint8_t)(h >> 4);
        e->remote_port = 80;
        e->peer_pid = h & 0x20 ? 7 : 0;
        e->dur_ns = (uint64_t)extra * 1000u;
        e->dir = (h >> 3) & 1;
        e->is_ssl = (h >> 6) & 1;
        e->count = extra;
        if (e->kind == WIRE_NET_DATA) {
            e->ncaptured = len;
            e->bytes = len + (uint64_t)extra * 64u;
            e->payload = len ? data + off : NULL;
            e->rtt_us = extra;
        }
        off += len;
        if (n == FUZZ_MAX_EVENTS || (h & 0x80))
            s_send(ev, &n, (h & 0x80) != 0);
    }
    s_send(ev, &n, 1);
    size_t vlen = 0;
    char *view = net_view_json(s_net, 0, &vlen);
    if (!view || vlen < 2 || view[0] != '{' || view[vlen - 1] != '}')
        __builtin_trap();
    free(view);
    return 0;
}
