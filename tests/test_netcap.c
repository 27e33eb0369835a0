/* Network capture with real BPF (root): collector/netcap.c and
 * bpf/net.bpf.c against tests/progs/httpload over loopback. Every batch
 * the capture publishes goes through the net.events codec (encoded, then
 * decoded) before it is checked, as the aggregator would receive it.
 *
 * http: a traced server and two traced clients, each connected before the
 *   capture started: the sockets that existed are reported as
 *   pre-existing, a new connection has its 4-tuple, roles and peer
 *   processes, the requests captured are byte for byte what was sent, a
 *   POST larger than the capture is cut and counted, the totals at close
 *   are the bytes the calls moved, and an untraced client's process
 *   produces nothing.
 * detach: an empty pid set unloads the probes; after a reload connection
 *   ids go on from where they were (never reused).
 * collector: a NETWORK task on ctl.tasks attaches the capture in the
 *   collector, its batches reach the sink, the counters say so, and the
 *   end of the task detaches it.
 * tls: plaintext of the system OpenSSL's calls with is_ssl, tied to the
 *   connection; the ciphertext syscalls counted without payload.
 * udp/unix: counted, with their protocol.
 * short connections: 2000 opened and closed, no state left.
 * untraced local peer: found through /proc.
 * peer: netpeer's matching of reversed tuples (no BPF needed). */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "collector/collector.h"
#include "collector/netcap.h"
#include "collector/netpeer.h"
#include "log.h"
#include "harness.h"
#include "testutil.h"
#include "wire.h"

#define MAX_EVENTS 40000

/* Every event received, decoded from the wire, payloads in the arena. */
typedef struct {
    arena_t *arena;
    wire_net_event_t ev[MAX_EVENTS];
    size_t n;
    uint64_t lost;
    int batches;
} got_t;

static int s_emit(void *arg, const char *topic, wire_net_batch_t *batch)
{
    got_t *g = arg;
    wire_buf_t buf;
    wire_net_batch_t out;
    char err[256], want[32];

    wire_buf_init(&buf);
    wire_header_set(&batch->hdr, "collector/test", (uint64_t)g->batches + 1);
    ck_assert_int_eq(wire_encode_net_batch(batch, &buf), 0);
    ck_assert_msg(wire_decode_net_batch(buf.data, buf.len, g->arena, &out, err,
                                        sizeof(err)) == 0, "%s", err);
    wire_buf_release(&buf);
    ck_assert_uint_gt(out.nevents, 0);
    for (uint32_t i = 0; i < out.nevents; i++) {
        /* Every event of a batch is of the topic's bucket. */
        wire_sharded_topic(want, sizeof(want), TOPIC_NET_EVENTS,
                           out.events[i].pid);
        ck_assert_str_eq(topic, want);
        ck_assert_uint_lt(g->n, MAX_EVENTS);
        g->ev[g->n++] = out.events[i];
    }
    g->lost += out.lost;
    g->batches++;
    return 0;
}

static void s_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* A child with pipes to its stdin and from its stdout. */
typedef struct {
    pid_t pid;
    FILE *in, *out;
} child_t;

static child_t s_start(char *const argv[])
{
    int to[2], from[2];
    child_t c = { -1, NULL, NULL };

    ck_assert_int_eq(pipe(to), 0);
    ck_assert_int_eq(pipe(from), 0);
    c.pid = fork();
    ck_assert_int_ge(c.pid, 0);
    if (c.pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[1]);
        close(from[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    c.in = fdopen(to[1], "w");
    c.out = fdopen(from[0], "r");
    ck_assert(c.in && c.out);
    return c;
}

static void s_line(child_t *c, char *buf, size_t size)
{
    ck_assert_ptr_nonnull(fgets(buf, (int)size, c->out));
}

/* Starts an httpload server; its port as text in port_s (size 16). */
static child_t s_start_server(char *const argv[], char *port_s)
{
    char line[64];
    int port = 0;
    child_t srv = s_start(argv);

    s_line(&srv, line, sizeof(line));
    ck_assert_int_eq(sscanf(line, "port %d", &port), 1);
    snprintf(port_s, 16, "%d", port);
    return srv;
}

static int s_wait(child_t *c)
{
    int status;

    fclose(c->in);
    fclose(c->out);
    ck_assert_int_eq(waitpid(c->pid, &status, 0), c->pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void s_drain(netcap_t *cap, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        s_sleep_ms(100);
        netcap_drain(cap);
        netcap_flush(cap);
    }
}

static int s_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static const uint8_t s_lo4[16] = {[10] = 0xff, [11] = 0xff, [12] = 127,
                                  [15] = 1};

/* The OPEN of pid's connection: pre-existing or not, with a remote or
 * local port equal to port. */
static const wire_net_event_t *s_find_open(const got_t *g, uint32_t pid,
                                           int pre, uint16_t lport,
                                           uint16_t rport, int nth)
{
    for (size_t i = 0; i < g->n; i++) {
        const wire_net_event_t *e = &g->ev[i];
        if (e->kind == WIRE_NET_OPEN && e->pid == pid &&
            e->pre_existing == pre && (!lport || e->local_port == lport) &&
            (!rport || e->remote_port == rport) && nth-- == 0)
            return e;
    }
    return NULL;
}

/* Concatenated captured payloads of conn in direction dir, and the bytes
 * the calls moved. */
static size_t s_stream(const got_t *g, uint64_t conn, uint8_t dir, char *out,
                       size_t size, uint64_t *moved, int *ndata)
{
    size_t n = 0;

    *moved = 0;
    *ndata = 0;
    for (size_t i = 0; i < g->n; i++) {
        const wire_net_event_t *e = &g->ev[i];
        if (e->kind != WIRE_NET_DATA || e->conn_id != conn || e->dir != dir)
            continue;
        (*ndata)++;
        *moved += e->bytes;
        ck_assert_uint_le(e->ncaptured, e->bytes);
        if (n + e->ncaptured < size) {
            memcpy(out + n, e->payload, e->ncaptured);
            n += e->ncaptured;
        }
    }
    out[n] = '\0';
    return n;
}

static const wire_net_event_t *s_find_kind(const got_t *g, uint64_t conn,
                                           uint8_t kind)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->ev[i].conn_id == conn && g->ev[i].kind == kind)
            return &g->ev[i];
    return NULL;
}

START_TEST(test_http_loopback)
{
    const char *exe = tu_build_path("tests/progs/httpload");
    got_t *g = calloc(1, sizeof(*g));
    netcap_options_t opts;
    netcap_stats_t st;
    char line[256], port_s[16];

    ck_assert_ptr_nonnull(g);
    g->arena = arena_new(256u << 20);
    netcap_options_default(&opts);
    opts.capture_bytes = 1024;
    netcap_t *cap = netcap_new(&opts, NULL, s_emit, g);
    ck_assert_ptr_nonnull(cap);
    ck_assert(!netcap_attached(cap));

    char *srv_argv[] = { (char *)exe, "server", NULL };
    child_t srv = s_start_server(srv_argv, port_s);
    int port = atoi(port_s);

    /* Two clients connected before the capture starts. */
    char *c1_argv[] = { (char *)exe, "client", port_s, "--hold", "--conns",
                        "2", "/ok", "/chunked", "/error", NULL };
    child_t c1 = s_start(c1_argv);
    s_line(&c1, line, sizeof(line));
    ck_assert_str_eq(line, "connected\n");

    uint32_t pids[2] = { (uint32_t)srv.pid, (uint32_t)c1.pid };
    qsort(pids, 2, sizeof(pids[0]), s_cmp_u32);
    ck_assert_int_eq(netcap_set_pids(cap, pids, 2), 0);
    ck_assert(netcap_attached(cap));
    s_drain(cap, 1);

    /* Go: c1's first connection (pre-existing), then a new one. */
    fputs("go\n", c1.in);
    fflush(c1.in);
    s_line(&c1, line, sizeof(line));
    long requests, bytes_out, bytes_in, s2, s5;
    ck_assert_int_eq(sscanf(line, "requests %ld bytes_out %ld bytes_in %ld "
                            "status2xx %ld status5xx %ld", &requests,
                            &bytes_out, &bytes_in, &s2, &s5), 5);
    ck_assert_int_eq(requests, 6);
    ck_assert_int_eq(s5, 2);
    ck_assert_int_eq(s_wait(&c1), 0);

    /* A large POST from a client that joins while the capture runs. */
    char *c2_argv[] = { (char *)exe, "client", port_s, "--hold", "--post",
                        "3000", NULL };
    child_t c2 = s_start(c2_argv);
    s_line(&c2, line, sizeof(line));
    uint32_t pids3[3] = { (uint32_t)srv.pid, (uint32_t)c1.pid,
                          (uint32_t)c2.pid };
    qsort(pids3, 3, sizeof(pids3[0]), s_cmp_u32);
    ck_assert_int_eq(netcap_set_pids(cap, pids3, 3), 0);
    fputs("go\n", c2.in);
    fflush(c2.in);
    s_line(&c2, line, sizeof(line));
    ck_assert_int_eq(s_wait(&c2), 0);

    /* An untraced client of the traced server. */
    char *u_argv[] = { (char *)exe, "client", port_s, "/ok", NULL };
    child_t u = s_start(u_argv);
    s_line(&u, line, sizeof(line));
    ck_assert_int_eq(s_wait(&u), 0);
    s_drain(cap, 4);
    netcap_stats(cap, &st);
    kill(srv.pid, SIGTERM);
    s_wait(&srv);

    fprintf(stderr, "http: %zu events in %d batches, lost %" PRIu64
            ", truncated %" PRIu64 ", captured %" PRIu64 " B, peers %"
            PRIu64 "+%" PRIu64 "\n", g->n, g->batches, g->lost,
            st.truncated, st.captured_bytes, st.peers_matched, st.peers_proc);
    ck_assert_uint_eq(g->lost, 0);
    ck_assert_uint_eq(st.ring_lost + st.dropped_user + st.invalid, 0);

    /* The untraced client's process produced nothing. */
    for (size_t i = 0; i < g->n; i++)
        ck_assert_uint_ne(g->ev[i].pid, (uint32_t)u.pid);

    /* Sockets open before the capture: found at once, pre-existing. */
    const wire_net_event_t *pre_c = s_find_open(g, (uint32_t)c1.pid, 1, 0,
                                                (uint16_t)port, 0);
    const wire_net_event_t *pre_s = s_find_open(g, (uint32_t)srv.pid, 1,
                                                (uint16_t)port, 0, 0);
    ck_assert_ptr_nonnull(pre_c);
    ck_assert_ptr_nonnull(pre_s);
    ck_assert_uint_eq(pre_c->local_port, pre_s->remote_port);
    ck_assert_uint_eq(pre_c->peer_pid, (uint32_t)srv.pid);
    /* Their sides: the server's end is on its listening port. */
    ck_assert_uint_eq(pre_c->role, WIRE_NET_ROLE_CLIENT);
    ck_assert_uint_eq(pre_s->role, WIRE_NET_ROLE_SERVER);
    ck_assert_uint_eq(pre_s->peer_pid, (uint32_t)c1.pid);

    /* The new connection: 4-tuple, roles, peers. */
    const wire_net_event_t *oc = s_find_open(g, (uint32_t)c1.pid, 0, 0,
                                             (uint16_t)port, 0);
    ck_assert_ptr_nonnull(oc);
    ck_assert_uint_eq(oc->role, WIRE_NET_ROLE_CLIENT);
    ck_assert_uint_eq(oc->proto, WIRE_NET_TCP);
    ck_assert_mem_eq(oc->remote_addr, s_lo4, 16);
    ck_assert_mem_eq(oc->local_addr, s_lo4, 16);
    ck_assert_uint_ne(oc->local_port, 0);
    ck_assert_uint_eq(oc->peer_pid, (uint32_t)srv.pid);
    ck_assert_uint_gt(oc->dur_ns, 0);
    const wire_net_event_t *os = s_find_open(g, (uint32_t)srv.pid, 0,
                                             (uint16_t)port, oc->local_port,
                                             0);
    ck_assert_ptr_nonnull(os);
    ck_assert_uint_eq(os->role, WIRE_NET_ROLE_SERVER);
    ck_assert_uint_eq(os->peer_pid, (uint32_t)c1.pid);
    ck_assert_uint_ne(os->conn_id, oc->conn_id);

    /* What c1 sent on it, byte for byte, and what it received. */
    static char stream[65536];
    uint64_t moved;
    int ndata;
    const char *want =
        "GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        "GET /chunked HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        "GET /error HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    s_stream(g, oc->conn_id, WIRE_NET_OUT, stream, sizeof(stream), &moved,
             &ndata);
    ck_assert_str_eq(stream, want);
    ck_assert_uint_eq(moved, strlen(want));
    ck_assert_int_eq(ndata, 3);
    uint64_t sent = moved;
    s_stream(g, oc->conn_id, WIRE_NET_IN, stream, sizeof(stream), &moved,
             &ndata);
    ck_assert(strncmp(stream, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ck_assert_ptr_nonnull(strstr(stream, "HTTP/1.1 500 Internal"));
    ck_assert_ptr_nonnull(strstr(stream, "3\r\nabc\r\n"));
    /* Both connections of c1 together: what the client counted. */
    uint64_t pre_out, pre_in;
    s_stream(g, pre_c->conn_id, WIRE_NET_OUT, stream, sizeof(stream), &pre_out,
             &ndata);
    s_stream(g, pre_c->conn_id, WIRE_NET_IN, stream, sizeof(stream), &pre_in,
             &ndata);
    ck_assert_uint_eq(sent + pre_out, (uint64_t)bytes_out);
    ck_assert_uint_eq(moved + pre_in, (uint64_t)bytes_in);
    /* The server's side of it mirrors the client's. */
    uint64_t srv_in, srv_out;
    s_stream(g, os->conn_id, WIRE_NET_IN, stream, sizeof(stream), &srv_in,
             &ndata);
    ck_assert_str_eq(stream, want);
    s_stream(g, os->conn_id, WIRE_NET_OUT, stream, sizeof(stream), &srv_out,
             &ndata);
    ck_assert_uint_eq(srv_in, sent);
    ck_assert_uint_eq(srv_out, moved);
    /* Writes on TCP carry the smoothed RTT. */
    for (size_t i = 0; i < g->n; i++)
        if (g->ev[i].conn_id == oc->conn_id && g->ev[i].kind == WIRE_NET_DATA &&
            g->ev[i].dir == WIRE_NET_OUT)
            ck_assert_uint_gt(g->ev[i].rtt_us, 0);

    /* Close with the kernel's totals: what the calls moved. */
    const wire_net_event_t *cc = s_find_kind(g, oc->conn_id, WIRE_NET_CLOSE);
    ck_assert_ptr_nonnull(cc);
    ck_assert_uint_eq(cc->pid, (uint32_t)c1.pid);
    ck_assert_uint_eq(cc->bytes_sent, sent);
    ck_assert_uint_eq(cc->bytes_received, moved);
    ck_assert_uint_eq(cc->local_port, oc->local_port);
    ck_assert_uint_eq(cc->peer_pid, (uint32_t)srv.pid);

    /* The POST: one write of 3062 bytes, 1024 captured. */
    const wire_net_event_t *o2 = s_find_open(g, (uint32_t)c2.pid, 1, 0,
                                             (uint16_t)port, 0);
    ck_assert_ptr_nonnull(o2);
    int posts = 0;
    for (size_t i = 0; i < g->n; i++) {
        const wire_net_event_t *e = &g->ev[i];
        if (e->conn_id != o2->conn_id || e->kind != WIRE_NET_DATA ||
            e->dir != WIRE_NET_OUT)
            continue;
        posts++;
        ck_assert_uint_eq(e->bytes, 3062);
        ck_assert_uint_eq(e->ncaptured, 1024);
        ck_assert(memcmp(e->payload, "POST /echo HTTP/1.1\r\n", 21) == 0);
    }
    ck_assert_int_eq(posts, 1);
    ck_assert_uint_ge(st.truncated, 1);

    /* Connection ids are unique per socket. */
    for (size_t i = 0; i < g->n; i++)
        for (size_t j = i + 1; j < g->n; j++)
            if (g->ev[i].kind == WIRE_NET_OPEN &&
                g->ev[j].kind == WIRE_NET_OPEN)
                ck_assert_uint_ne(g->ev[i].conn_id, g->ev[j].conn_id);

    ck_assert_int_eq(netcap_set_pids(cap, NULL, 0), 0);
    ck_assert(!netcap_attached(cap));
    netcap_destroy(&cap);
    ck_assert_ptr_null(cap);
    arena_destroy(&g->arena);
    free(g);
}
END_TEST

/* Detach, reattach: ids never reused; nothing captured while detached. */
START_TEST(test_detach_and_ids)
{
    const char *exe = tu_build_path("tests/progs/httpload");
    got_t *g = calloc(1, sizeof(*g));
    netcap_options_t opts;
    char line[256], port_s[16];
    uint64_t max_id = 0;

    ck_assert_ptr_nonnull(g);
    g->arena = arena_new(64u << 20);
    netcap_options_default(&opts);
    netcap_t *cap = netcap_new(&opts, NULL, s_emit, g);
    ck_assert_ptr_nonnull(cap);
    char *srv_argv[] = { (char *)exe, "server", NULL };
    child_t srv = s_start_server(srv_argv, port_s);
    uint32_t pid = (uint32_t)srv.pid;
    char *c_argv[] = { (char *)exe, "client", port_s, "--conns", "3", "/ok",
                       NULL };

    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(netcap_set_pids(cap, &pid, 1), 0);
        child_t c = s_start(c_argv);
        s_line(&c, line, sizeof(line));
        ck_assert_int_eq(s_wait(&c), 0);
        s_drain(cap, 2);
        ck_assert_int_eq(netcap_set_pids(cap, NULL, 0), 0);
        ck_assert(!netcap_attached(cap));
        size_t opens = 0;
        for (size_t i = 0; i < g->n; i++) {
            if (g->ev[i].kind != WIRE_NET_OPEN || g->ev[i].pre_existing)
                continue;
            opens++;
            /* Each round's ids are above the previous round's. */
            ck_assert_uint_gt(g->ev[i].conn_id, max_id);
        }
        ck_assert_uint_eq(opens, 3);
        for (size_t i = 0; i < g->n; i++)
            if (g->ev[i].conn_id > max_id)
                max_id = g->ev[i].conn_id;
        g->n = 0;
    }
    /* Detached: a client run leaves nothing. */
    child_t c = s_start(c_argv);
    s_line(&c, line, sizeof(line));
    ck_assert_int_eq(s_wait(&c), 0);
    ck_assert_int_eq(netcap_drain(cap), 0);
    ck_assert_int_eq(netcap_flush(cap), 0);
    ck_assert_uint_eq(g->n, 0);
    kill(srv.pid, SIGTERM);
    s_wait(&srv);
    netcap_destroy(&cap);
    arena_destroy(&g->arena);
    free(g);
}
END_TEST

static int s_col_raw(void *arg, const char *topic, wire_raw_batch_t *b)
{
    return 0;
}

static int s_col_events(void *arg, wire_proc_events_t *ev)
{
    return 0;
}

START_TEST(test_collector_network_task)
{
    const char *exe = tu_build_path("tests/progs/httpload");
    got_t *g = calloc(1, sizeof(*g));
    collector_options_t opts;
    collector_info_t info;
    char err[512] = "", line[256], port_s[16];

    ck_assert_ptr_nonnull(g);
    g->arena = arena_new(64u << 20);
    collector_sink_t sink = { .raw_batch = s_col_raw,
                              .proc_events = s_col_events, .arg = g,
                              .net_batch = s_emit };
    loop_t *loop = loop_new();
    ck_assert_ptr_nonnull(loop);
    collector_options_default(&opts);
    opts.host_wide = false;
    opts.scan_proc = false;
    collector_t *col = collector_new(&opts, loop, NULL, &sink, err,
                                     sizeof(err));
    ck_assert_msg(col != NULL, "collector_new: %s", err);
    collector_info(col, &info);
    ck_assert_int_eq(info.net_attached, 0);

    char *srv_argv[] = { (char *)exe, "server", NULL };
    child_t srv = s_start_server(srv_argv, port_s);
    uint32_t pid = (uint32_t)srv.pid;

    /* An on-CPU task does not load the capture; a network task does. */
    wire_task_t tasks[2] = {
        { .task_id = "on-1", .target = WIRE_TARGET_ON_CPU,
          .duration_ms = 60000, .npids = 1, .pids = &pid },
        { .task_id = "net-1", .target = WIRE_TARGET_NETWORK,
          .duration_ms = 60000, .npids = 1, .pids = &pid },
    };
    wire_task_set_t set = th_task_set("policy/netcap-test", 1, 1, tasks, 1);
    ck_assert_int_eq(collector_apply_tasks(col, &set), 0);
    collector_info(col, &info);
    ck_assert_int_eq(info.net_attached, 0);
    set = th_task_set("policy/netcap-test", 2, 2, tasks, 2);
    ck_assert_int_eq(collector_apply_tasks(col, &set), 0);
    collector_info(col, &info);
    ck_assert_int_eq(info.net_attached, 1);
    ck_assert_uint_eq(info.net_pids, 1);

    char *c_argv[] = { (char *)exe, "client", port_s, "--rounds", "5", "/ok",
                       "/error", NULL };
    child_t c = s_start(c_argv);
    s_line(&c, line, sizeof(line));
    ck_assert_int_eq(s_wait(&c), 0);
    s_sleep_ms(100);
    collector_drain(col);
    /* The end of the task detaches; what was left is published. */
    set = th_task_set("policy/netcap-test", 3, 3, NULL, 0);
    ck_assert_int_eq(collector_apply_tasks(col, &set), 0);
    collector_drain(col);
    collector_info(col, &info);
    ck_assert_int_eq(info.net_attached, 0);
    ck_assert_uint_eq(info.net_pids, 0);

    size_t opens = 0, data_in = 0;
    uint64_t conn = 0;
    for (size_t i = 0; i < g->n; i++) {
        const wire_net_event_t *e = &g->ev[i];
        ck_assert_uint_eq(e->pid, pid);
        if (e->kind == WIRE_NET_OPEN) {
            opens++;
            conn = e->conn_id;
            ck_assert_uint_eq(e->role, WIRE_NET_ROLE_SERVER);
        }
        if (e->kind == WIRE_NET_DATA && e->dir == WIRE_NET_IN &&
            e->conn_id == conn)
            data_in++;
    }
    ck_assert_uint_eq(opens, 1);
    ck_assert_uint_eq(data_in, 10);
    ck_assert_uint_eq(info.net_published, g->n);
    /* SIGKILL: the loop blocks SIGTERM, and the server inherited that. */
    kill(srv.pid, SIGKILL);
    s_wait(&srv);
    collector_destroy(&col);
    loop_destroy(&loop);
    arena_destroy(&g->arena);
    free(g);
}
END_TEST

/* TLS through the system OpenSSL: the client uses SSL_write/SSL_read, the
 * server SSL_write_ex/SSL_read_ex. Plaintext with is_ssl on the right
 * connection; the ciphertext syscalls counted without payload. */
START_TEST(test_tls_plaintext)
{
    const char *exe = tu_build_path("tests/progs/httpload");
    got_t *g = calloc(1, sizeof(*g));
    netcap_options_t opts;
    netcap_stats_t st;
    char line[256], port_s[16], cmd[1024];
    char *dir = tu_mkdtemp();

    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_nonnull(dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/k.pem "
             "-out %s/c.pem -days 1 -subj /CN=localhost >/dev/null 2>&1",
             dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    char cert[600], key[600];
    snprintf(cert, sizeof(cert), "%s/c.pem", dir);
    snprintf(key, sizeof(key), "%s/k.pem", dir);
    g->arena = arena_new(64u << 20);
    netcap_options_default(&opts);
    netcap_t *cap = netcap_new(&opts, NULL, s_emit, g);
    ck_assert_ptr_nonnull(cap);

    char *srv_argv[] = { (char *)exe, "server", "--tls", cert, key, NULL };
    child_t srv = s_start_server(srv_argv, port_s);
    char *c_argv[] = { (char *)exe, "client", port_s, "--tls", "--hold",
                       "--rounds", "2", "/ok", "/error", NULL };
    child_t c = s_start(c_argv);
    s_line(&c, line, sizeof(line));
    ck_assert_str_eq(line, "connected\n");

    uint32_t pids[2] = { (uint32_t)srv.pid, (uint32_t)c.pid };
    qsort(pids, 2, sizeof(pids[0]), s_cmp_u32);
    ck_assert_int_eq(netcap_set_pids(cap, pids, 2), 0);
    netcap_stats(cap, &st);
    ck_assert_uint_eq(st.ssl_libraries, 2);
    fputs("go\n", c.in);
    fflush(c.in);
    s_line(&c, line, sizeof(line));
    ck_assert_int_eq(s_wait(&c), 0);
    s_drain(cap, 3);
    netcap_stats(cap, &st);
    kill(srv.pid, SIGTERM);
    s_wait(&srv);

    const char *want =
        "GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        "GET /error HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        "GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        "GET /error HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    static char out[65536], in[65536], srv_in[65536];
    size_t no = 0, ni = 0, ns = 0;
    int cipher = 0, cipher_payload = 0, srv_inflight = 0;
    uint64_t conn = 0;
    for (size_t i = 0; i < g->n; i++) {
        const wire_net_event_t *e = &g->ev[i];
        if (e->kind != WIRE_NET_DATA)
            continue;
        if (!e->is_ssl) {
            cipher++;
            /* The server's SSL_read_ex in progress at attach reads a
             * record's body outside any call the probes saw: the one
             * ciphertext kept. */
            cipher_payload += e->ncaptured != 0 &&
                              (e->pid != (uint32_t)srv.pid || e->dir != 1 ||
                               ++srv_inflight > 1);
            continue;
        }
        if (e->pid == (uint32_t)c.pid && e->dir == WIRE_NET_OUT &&
            no + e->ncaptured < sizeof(out)) {
            memcpy(out + no, e->payload, e->ncaptured);
            no += e->ncaptured;
            conn = e->conn_id;
        } else if (e->pid == (uint32_t)c.pid && ni + e->ncaptured < sizeof(in)) {
            memcpy(in + ni, e->payload, e->ncaptured);
            ni += e->ncaptured;
        } else if (e->pid == (uint32_t)srv.pid && e->dir == WIRE_NET_IN &&
                   ns + e->ncaptured < sizeof(srv_in)) {
            memcpy(srv_in + ns, e->payload, e->ncaptured);
            ns += e->ncaptured;
        }
    }
    out[no] = in[ni] = srv_in[ns] = '\0';
    fprintf(stderr, "tls: %zu events, %d ciphertext calls, untied %" PRIu64
            "\n", g->n, cipher, st.ssl_untied);
    ck_assert_str_eq(out, want);
    /* The server was already blocked in SSL_read_ex when the probes
     * attached: a call in progress then is not seen; the others are. */
    const char *first = "GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    ck_assert_msg(!strcmp(srv_in, want) ||
                  !strcmp(srv_in, want + strlen(first)), "%s", srv_in);
    ck_assert(strncmp(in, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ck_assert_ptr_nonnull(strstr(in, "HTTP/1.1 500 "));
    ck_assert_int_gt(cipher, 0);
    ck_assert_int_eq(cipher_payload, 0);
    /* The close of the TLS connection says so. */
    const wire_net_event_t *cc = s_find_kind(g, conn, WIRE_NET_CLOSE);
    ck_assert_ptr_nonnull(cc);
    ck_assert_uint_eq(cc->is_ssl, 1);

    netcap_destroy(&cap);
    tu_rmtree(dir);
    free(dir);
    arena_destroy(&g->arena);
    free(g);
}
END_TEST

/* UDP and unix sockets are at least counted: an OPEN with their protocol
 * (found at their first call) and DATA with the bytes. */
START_TEST(test_udp_and_unix_counted)
{
    got_t *g = calloc(1, sizeof(*g));
    netcap_options_t opts;
    char line[64];

    ck_assert_ptr_nonnull(g);
    g->arena = arena_new(64u << 20);
    netcap_options_default(&opts);
    netcap_t *cap = netcap_new(&opts, NULL, s_emit, g);
    ck_assert_ptr_nonnull(cap);
    /* A child that, once told, sends 100 bytes over UDP to itself and 200
     * over a unix socket pair, and reads them. */
    int to[2], from[2];
    ck_assert_int_eq(pipe(to), 0);
    ck_assert_int_eq(pipe(from), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char buf[256], c;
        int u = socket(AF_INET, SOCK_DGRAM, 0), sp[2];
        struct sockaddr_in a = { .sin_family = AF_INET,
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof(a);
        if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            getsockname(u, (struct sockaddr *)&a, &alen) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0 ||
            write(from[1], "r", 1) != 1 || read(to[0], &c, 1) != 1)
            _exit(1);
        memset(buf, 'u', sizeof(buf));
        if (sendto(u, buf, 100, 0, (struct sockaddr *)&a, sizeof(a)) != 100 ||
            recv(u, buf, sizeof(buf), 0) != 100 ||
            write(sp[0], buf, 200) != 200 || read(sp[1], buf, 200) != 200)
            _exit(1);
        _exit(0);
    }
    ck_assert_int_eq(read(from[0], line, 1), 1);
    uint32_t p32 = (uint32_t)pid;
    ck_assert_int_eq(netcap_set_pids(cap, &p32, 1), 0);
    ck_assert_int_eq(write(to[1], "g", 1), 1);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    s_drain(cap, 2);

    uint64_t udp = 0, unx = 0;
    int udp_open = 0, unix_open = 0;
    for (size_t i = 0; i < g->n; i++) {
        const wire_net_event_t *e = &g->ev[i];
        ck_assert_uint_eq(e->pid, p32);
        if (e->kind == WIRE_NET_OPEN) {
            udp_open += e->proto == WIRE_NET_UDP;
            unix_open += e->proto == WIRE_NET_UNIX;
        }
        if (e->kind != WIRE_NET_DATA)
            continue;
        if (e->proto == WIRE_NET_UDP)
            udp += e->bytes;
        if (e->proto == WIRE_NET_UNIX)
            unx += e->bytes;
    }
    ck_assert_int_eq(udp_open, 1);
    ck_assert_int_eq(unix_open, 2);   /* both ends of the pair */
    ck_assert_uint_eq(udp, 200);      /* sent and received */
    ck_assert_uint_eq(unx, 400);
    netcap_destroy(&cap);
    close(to[0]);
    close(to[1]);
    close(from[0]);
    close(from[1]);
    arena_destroy(&g->arena);
    free(g);
}
END_TEST

/* 2000 short connections of a traced client and server: every one opened
 * and closed once, and the kernel's socket map and the peer table are
 * back to what they were (no state kept per closed connection). */
START_TEST(test_short_connections_leave_no_state)
{
    const char *exe = tu_build_path("tests/progs/httpload");
    got_t *g = calloc(1, sizeof(*g));
    netcap_options_t opts;
    char line[256], port_s[16];
    size_t peers = 0, before;

    ck_assert_ptr_nonnull(g);
    g->arena = arena_new(256u << 20);
    netcap_options_default(&opts);
    opts.capture_bytes = 64;
    opts.max_pending = 1000;   /* publishes early, loses nothing */
    netcap_t *cap = netcap_new(&opts, NULL, s_emit, g);
    ck_assert_ptr_nonnull(cap);
    char *srv_argv[] = { (char *)exe, "server", NULL };
    child_t srv = s_start_server(srv_argv, port_s);
    char *c_argv[] = { (char *)exe, "client", port_s, "--hold", "--conns",
                       "2000", "/ok", NULL };
    child_t c = s_start(c_argv);
    s_line(&c, line, sizeof(line));
    uint32_t pids[2] = { (uint32_t)srv.pid, (uint32_t)c.pid };
    qsort(pids, 2, sizeof(pids[0]), s_cmp_u32);
    ck_assert_int_eq(netcap_set_pids(cap, pids, 2), 0);
    s_drain(cap, 1);
    before = netcap_conn_entries(cap, NULL);   /* the held connection */
    fputs("go\n", c.in);
    fflush(c.in);
    while (waitpid(c.pid, NULL, WNOHANG) == 0)
        s_drain(cap, 1);
    fclose(c.in);
    fclose(c.out);
    s_drain(cap, 3);
    size_t left = netcap_conn_entries(cap, &peers);
    size_t opens = 0, closes = 0, pre = 0;
    for (size_t i = 0; i < g->n; i++) {
        opens += g->ev[i].kind == WIRE_NET_OPEN && !g->ev[i].pre_existing;
        pre += g->ev[i].kind == WIRE_NET_OPEN && g->ev[i].pre_existing;
        closes += g->ev[i].kind == WIRE_NET_CLOSE;
    }
    fprintf(stderr, "short: %zu events, %zu opens, %zu closes, %zu sockets "
            "left (%zu before), %zu peers\n", g->n, opens, closes, left,
            before, peers);
    /* 1999 new connections at both ends; every connection closed at both
     * ends (the held one too). */
    ck_assert_uint_eq(opens, 2 * 1999);
    /* Only the held connection's two ends: no record closed under a live
     * connection (a socket address reused while close() still ran). */
    ck_assert_uint_eq(pre, 2);
    ck_assert_uint_eq(closes, 2 * 2000);
    ck_assert_uint_eq(left, 0);
    ck_assert_uint_eq(peers, 0);
    ck_assert_uint_eq(g->lost, 0);
    netcap_stats_t st;
    netcap_stats(cap, &st);
    ck_assert_uint_gt(st.early_flushes, 0);
    ck_assert_uint_eq(st.dropped_user, 0);
    kill(srv.pid, SIGTERM);
    s_wait(&srv);
    netcap_destroy(&cap);
    arena_destroy(&g->arena);
    free(g);
}
END_TEST

/* A traced client of an untraced server on this host: the server's pid
 * comes from /proc (its socket's inode in /proc/net/tcp, then
 * /proc/PID/fd). */
START_TEST(test_untraced_local_peer)
{
    const char *exe = tu_build_path("tests/progs/httpload");
    got_t *g = calloc(1, sizeof(*g));
    netcap_options_t opts;
    netcap_stats_t st;
    char line[256], port_s[16];

    ck_assert_ptr_nonnull(g);
    g->arena = arena_new(64u << 20);
    netcap_options_default(&opts);
    netcap_t *cap = netcap_new(&opts, NULL, s_emit, g);
    ck_assert_ptr_nonnull(cap);
    char *srv_argv[] = { (char *)exe, "server", NULL };
    child_t srv = s_start_server(srv_argv, port_s);
    char *c_argv[] = { (char *)exe, "client", port_s, "--hold", "--conns",
                       "2", "/ok", NULL };
    child_t c = s_start(c_argv);
    s_line(&c, line, sizeof(line));
    uint32_t pid = (uint32_t)c.pid;
    ck_assert_int_eq(netcap_set_pids(cap, &pid, 1), 0);
    /* Looked up at a drain, while the connection is there. */
    s_drain(cap, 1);
    fputs("go\n", c.in);
    fflush(c.in);
    s_line(&c, line, sizeof(line));
    s_drain(cap, 2);
    ck_assert_int_eq(s_wait(&c), 0);
    netcap_stats(cap, &st);
    int opens = 0;
    for (size_t i = 0; i < g->n; i++) {
        const wire_net_event_t *e = &g->ev[i];
        ck_assert_uint_eq(e->pid, pid);
        if (e->kind != WIRE_NET_OPEN)
            continue;
        opens++;
        /* The held connection; the second one may be closed by the time
         * of a drain (the client made it and closed it meanwhile). */
        if (e->pre_existing)
            ck_assert_uint_eq(e->peer_pid, (uint32_t)srv.pid);
        else
            ck_assert(e->peer_pid == 0 || e->peer_pid == (uint32_t)srv.pid);
    }
    ck_assert_int_eq(opens, 2);
    ck_assert_uint_ge(st.peers_proc, 1);
    kill(srv.pid, SIGTERM);
    s_wait(&srv);
    netcap_destroy(&cap);
    arena_destroy(&g->arena);
    free(g);
}
END_TEST

/* netpeer without BPF: reversed tuples pair up, closes forget. */
START_TEST(test_peer_matching)
{
    netpeer_t *p = netpeer_new(4, "/nonexistent");
    netpeer_tuple_t a = { .proto = WIRE_NET_TCP, .lport = 40000,
                          .rport = 8080 };
    netpeer_tuple_t b = { .proto = WIRE_NET_TCP, .lport = 8080,
                          .rport = 40000 };
    netpeer_tuple_t far = { .proto = WIRE_NET_TCP, .lport = 40001,
                            .rport = 443 };
    netpeer_stats_t st;

    ck_assert_ptr_nonnull(p);
    memcpy(a.laddr, s_lo4, 16);
    memcpy(a.raddr, s_lo4, 16);
    memcpy(b.laddr, s_lo4, 16);
    memcpy(b.raddr, s_lo4, 16);
    memcpy(far.laddr, s_lo4, 16);
    far.raddr[10] = far.raddr[11] = 0xff;
    far.raddr[12] = 10;
    ck_assert_uint_eq(netpeer_open(p, 1, 100, &a, WIRE_NET_ROLE_CLIENT, 0),
                      WIRE_NET_ROLE_CLIENT);
    netpeer_open(p, 2, 200, &b, WIRE_NET_ROLE_SERVER, 0);
    /* Unknown side, no /proc here: no listening port, so a client. */
    ck_assert_uint_eq(netpeer_open(p, 3, 100, &far, 0, 0),
                      WIRE_NET_ROLE_CLIENT);
    ck_assert_uint_eq(netpeer_role(p, 2), WIRE_NET_ROLE_SERVER);
    ck_assert_uint_eq(netpeer_peer(p, 1, 0), 200);
    ck_assert_uint_eq(netpeer_peer(p, 2, 0), 100);
    ck_assert_uint_eq(netpeer_peer(p, 3, 0), 0);   /* remote */
    ck_assert_uint_eq(netpeer_peer(p, 99, 0), 0);  /* unknown */
    netpeer_close(p, 2);
    ck_assert_uint_eq(netpeer_peer(p, 1, 0), 200); /* cached */
    /* The table is bounded. */
    netpeer_open(p, 4, 1, &b, 1, 0);
    netpeer_open(p, 5, 1, &b, 1, 0);
    netpeer_open(p, 6, 1, &b, 1, 0);
    netpeer_stats(p, &st);
    ck_assert_uint_eq(st.conns, 4);
    ck_assert_uint_eq(st.untracked, 1);
    ck_assert_uint_eq(st.matched, 2);
    /* Unseen for long: forgotten (1 and 3 were last seen at 0, 4..5 at
     * their open at 0; none at 5000). */
    ck_assert_uint_eq(netpeer_expire(p, 5000, 10000), 0);
    ck_assert_uint_eq(netpeer_peer(p, 1, 9000), 200);
    ck_assert_uint_eq(netpeer_expire(p, 15000, 10000), 3);
    ck_assert_uint_eq(netpeer_role(p, 1), WIRE_NET_ROLE_CLIENT);
    ck_assert_uint_eq(netpeer_role(p, 3), 0);
    netpeer_destroy(&p);
    ck_assert_ptr_null(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("netcap");
    TCase *unit = tcase_create("unit");
    TCase *bpf = tcase_create("bpf");

    tcase_add_test(unit, test_peer_matching);
    suite_add_tcase(s, unit);
    tcase_set_timeout(bpf, 60);
    if (tu_require_bpf("network capture")) {
        tcase_add_test(bpf, test_http_loopback);
        tcase_add_test(bpf, test_detach_and_ids);
        tcase_add_test(bpf, test_collector_network_task);
        tcase_add_test(bpf, test_udp_and_unix_counted);
        tcase_add_test(bpf, test_short_connections_leave_no_state);
        tcase_add_test(bpf, test_untraced_local_peer);
        if (tu_require_tool("network capture TLS", "openssl"))
            tcase_add_test(bpf, test_tls_plaintext);
    }
    suite_add_tcase(s, bpf);
    return tu_run(s);
}
