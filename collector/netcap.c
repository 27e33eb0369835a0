/* Network capture: probe loading, pid filter, ring drain, batches; see
 * netcap.h and bpf/net.bpf.c. */
#include "collector/netcap.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arena.h"
#include "bpf/net.h"
#include "collector/netpeer.h"
#include "collector/pidset.h"
#include "collector/netssl.h"
#include "log.h"
#include "net.skel.h"

#define NETCAP_MAX_PIDS 16384   /* processes followed at once */
/* Traced processes' mappings are read again this often for a libssl they
 * mapped since (exec, dlopen). */
#define NETCAP_SSL_RESCAN_MS 2000
/* Connections no event mentioned for this long leave the peer table (their
 * close was not seen); checked every minute, with the per-thread maps. */
#define NETCAP_PEER_IDLE_MS  (10 * 60 * 1000)
#define NETCAP_PEER_SWEEP_MS (60 * 1000)

/* The programs attached while capturing; the first two are essential. */
enum { P_ENTER, P_EXIT, P_STATE, P_RETRANS, P_COUNT };

struct netcap {
    netcap_options_t opts;
    loop_t *loop;
    netcap_emit_fn emit;
    void *arg;
    struct net_bpf *skel;
    struct bpf_link *links[P_COUNT];
    struct ring_buffer *rb;
    netssl_t *ssl;             /* TLS uprobes, while loaded */
    uint64_t ssl_scan_ms;      /* last rescan (monotonic) */
    uint64_t peer_sweep_ms;    /* last netpeer_expire (monotonic) */
    uint64_t ssl_attach_errors; /* of earlier loads */
    int rb_fd;                 /* registered with the loop, or -1 */
    pidset_t *pids;            /* the traced processes (net_pid_bits) */
    uint64_t next_conn_id;     /* the last id issued, carried over reloads */
    /* events waiting for netcap_flush; payloads in the arena */
    wire_net_event_t *pending;
    uint32_t npending;
    uint32_t peers_done;       /* pending[0..peers_done) had their peers
                                * looked up at a drain */
    arena_t *payloads;
    wire_net_event_t *scatter; /* flush: events grouped by bucket */
    uint64_t lost_unreported;  /* for the next batch's `lost` */
    uint64_t ring_lost_seen;   /* ring losses already in lost_unreported */
    netpeer_t *peers;
    /* counters of earlier loads (kernel counters restart with a load) */
    uint64_t base[SKY_NET_CNT_MAX];
    netcap_stats_t st;
    log_ratelimit_t rl;
};

void netcap_options_default(netcap_options_t *opts)
{
    *opts = (netcap_options_t){
        .capture_bytes = NETCAP_DEFAULT_CAPTURE,
        .ring_bytes = NETCAP_DEFAULT_RING,
        .max_conns = 65536,
        .max_pending = 65536,
        .max_batch = 4096,
    };
}

static int s_options_ok(const netcap_options_t *o)
{
    return o->capture_bytes <= WIRE_MAX_NET_PAYLOAD &&
           o->ring_bytes >= (64u << 10) && o->ring_bytes <= (1ull << 30) &&
           (o->ring_bytes & (o->ring_bytes - 1)) == 0 && o->max_conns >= 16 &&
           o->max_pending >= 1 && o->max_pending <= (1u << 22) &&
           o->max_batch >= 1 && o->max_batch <= WIRE_MAX_NET_EVENTS;
}

netcap_t *netcap_new(const netcap_options_t *opts, loop_t *loop,
                     netcap_emit_fn emit, void *arg)
{
    netcap_t *self;

    if (!opts || !s_options_ok(opts))
        return NULL;
    self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->opts = *opts;
    self->loop = loop;
    self->emit = emit;
    self->arg = arg;
    self->rb_fd = -1;
    self->rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);
    self->pending = calloc(opts->max_pending, sizeof(*self->pending));
    self->scatter = calloc(opts->max_pending, sizeof(*self->scatter));
    /* Room for every pending event's largest payload. */
    self->payloads = arena_new((size_t)opts->max_pending *
                               (opts->capture_bytes + 16) + (1u << 16));
    self->peers = netpeer_new(opts->max_conns, NULL);
    self->pids = pidset_new();
    if (!self->pending || !self->scatter || !self->payloads || !self->peers ||
        !self->pids)
        netcap_destroy(&self);
    return self;
}

/* ------------------------------------------------------- kernel side */

static uint64_t s_kernel_counter(const netcap_t *self, uint32_t idx)
{
    int ncpu = libbpf_num_possible_cpus();
    uint64_t sum = 0;

    if (!self->skel || ncpu <= 0)
        return 0;
    uint64_t vals[ncpu];
    if (bpf_map_lookup_elem(bpf_map__fd(self->skel->maps.net_counters), &idx,
                            vals) != 0)
        return 0;
    for (int i = 0; i < ncpu; i++)
        sum += vals[i];
    return sum;
}

static uint64_t s_counter(const netcap_t *self, uint32_t idx)
{
    return self->base[idx] + s_kernel_counter(self, idx);
}

static void s_unload(netcap_t *self)
{
    if (!self->skel)
        return;
    for (uint32_t i = 0; i < SKY_NET_CNT_MAX; i++)
        self->base[i] += s_kernel_counter(self, i);
    self->next_conn_id = self->skel->bss->next_conn_id;
    if (self->ssl) {
        netssl_stats_t ss;
        netssl_stats(self->ssl, &ss);
        self->ssl_attach_errors += ss.attach_errors;
    }
    netssl_destroy(&self->ssl);
    if (self->rb_fd >= 0 && self->loop)
        loop_remove_fd(self->loop, self->rb_fd);
    self->rb_fd = -1;
    ring_buffer__free(self->rb);
    self->rb = NULL;
    for (int p = 0; p < P_COUNT; p++) {
        bpf_link__destroy(self->links[p]);
        self->links[p] = NULL;
    }
    net_bpf__destroy(self->skel);
    self->skel = NULL;
    pidset_unbind(self->pids);
}

/* Which syscalls are ours, by this architecture's numbers. */
static int s_fill_sysops(netcap_t *self)
{
    static const struct { long nr; uint32_t op; } ops[] = {
        { SYS_connect, SKY_NET_OP_CONNECT }, { SYS_accept, SKY_NET_OP_ACCEPT },
        { SYS_accept4, SKY_NET_OP_ACCEPT },  { SYS_close, SKY_NET_OP_CLOSE },
        { SYS_write, SKY_NET_OP_WRITE },     { SYS_sendto, SKY_NET_OP_WRITE },
        { SYS_read, SKY_NET_OP_READ },       { SYS_recvfrom, SKY_NET_OP_READ },
        { SYS_writev, SKY_NET_OP_WRITEV },   { SYS_readv, SKY_NET_OP_READV },
        { SYS_sendmsg, SKY_NET_OP_SENDMSG }, { SYS_recvmsg, SKY_NET_OP_RECVMSG },
        { SYS_sendmmsg, SKY_NET_OP_MMSG },   { SYS_recvmmsg, SKY_NET_OP_MMSG },
    };
    int fd = bpf_map__fd(self->skel->maps.net_sysop);

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        uint32_t nr = (uint32_t)ops[i].nr;
        if (nr >= SKY_NET_SYSCALLS ||
            bpf_map_update_elem(fd, &nr, &ops[i].op, BPF_ANY) != 0)
            return -1;
    }
    return 0;
}

static int s_on_record(void *ctx, void *data, size_t size);

static int s_ready(loop_t *loop, int fd, void *arg)
{
    netcap_drain(arg);
    return 0;
}

static int s_load(netcap_t *self)
{
    struct net_bpf *skel = net_bpf__open();
    struct bpf_program *progs[P_COUNT];
    int rc;

    if (!skel) {
        log_warn("network capture: cannot open the BPF object: %s",
                 strerror(errno));
        self->st.attach_errors++;
        return -1;
    }
    skel->rodata->capture_bytes = self->opts.capture_bytes;
    skel->rodata->wakeup_bytes = self->opts.ring_bytes / 4;
    rc = bpf_map__set_max_entries(skel->maps.net_events,
                                  (uint32_t)self->opts.ring_bytes);
    if (rc == 0)
        rc = bpf_map__set_max_entries(skel->maps.net_conns,
                                      self->opts.max_conns);
    if (rc == 0)
        rc = pidset_size_bitmap(skel->maps.net_pid_bits);
    if (rc == 0)
        rc = net_bpf__load(skel);
    if (rc != 0) {
        log_warn("network capture: cannot load bpf/net.bpf.c: %s",
                 strerror(-rc));
        self->st.attach_errors++;
        net_bpf__destroy(skel);
        return -1;
    }
    self->skel = skel;
    pidset_bind(self->pids, bpf_map__fd(skel->maps.net_pid_bits),
                bpf_map__max_entries(skel->maps.net_pid_bits),
                bpf_map__fd(skel->maps.net_pids));
    skel->bss->next_conn_id = self->next_conn_id;
    if (s_fill_sysops(self) < 0) {
        log_warn("network capture: cannot fill the syscall table");
        goto fail;
    }
    progs[P_ENTER] = skel->progs.sky_net_enter;
    progs[P_EXIT] = skel->progs.sky_net_exit;
    progs[P_STATE] = skel->progs.sky_net_state;
    progs[P_RETRANS] = skel->progs.sky_net_retrans;
    for (int p = 0; p < P_COUNT; p++) {
        self->links[p] = bpf_program__attach(progs[p]);
        if (self->links[p])
            continue;
        self->links[p] = NULL;
        self->st.attach_errors++;
        log_warn("network capture: cannot attach %s: %s",
                 bpf_program__name(progs[p]), strerror(errno));
        /* Without the syscall hooks there is nothing to capture; without
         * the TCP hooks, closes come from close() and no retransmits. */
        if (p == P_ENTER || p == P_EXIT)
            goto fail;
    }
    netssl_progs_t sp = { skel->progs.sky_ssl_write, skel->progs.sky_ssl_read,
                          skel->progs.sky_ssl_write_ex,
                          skel->progs.sky_ssl_read_ex, skel->progs.sky_ssl_ret };
    self->ssl = netssl_new(&sp, NULL);
    if (!self->ssl)
        goto fail;
    self->rb = ring_buffer__new(bpf_map__fd(skel->maps.net_events),
                                s_on_record, self, NULL);
    if (!self->rb)
        goto fail;
    self->rb_fd = ring_buffer__epoll_fd(self->rb);
    if (self->loop && loop_add_fd(self->loop, self->rb_fd, s_ready, self) < 0) {
        self->rb_fd = -1;
        goto fail;
    }
    self->st.attaches++;
    log_info("network capture attached (payload prefix %u bytes, ring %llu "
             "KiB)", self->opts.capture_bytes,
             (unsigned long long)(self->opts.ring_bytes >> 10));
    return 0;
fail:
    s_unload(self);
    return -1;
}

/* Reports the sockets process pid already holds (iter/task_file over that
 * process only). */
static void s_scan_pid(netcap_t *self, uint32_t pid)
{
    union bpf_iter_link_info linfo;
    LIBBPF_OPTS(bpf_iter_attach_opts, opts);
    struct bpf_link *link;
    char buf[64];
    int fd;

    memset(&linfo, 0, sizeof(linfo));
    linfo.task.pid = pid;
    opts.link_info = &linfo;
    opts.link_info_len = sizeof(linfo);
    link = bpf_program__attach_iter(self->skel->progs.sky_net_iter, &opts);
    if (!link) {
        if (log_ratelimit_allow(&self->rl))
            log_warn("network capture: cannot scan the sockets of %u: %s",
                     pid, strerror(errno));
        return;
    }
    fd = bpf_iter_create(bpf_link__fd(link));
    if (fd >= 0) {
        while (read(fd, buf, sizeof(buf)) > 0)
            ;
        close(fd);
    }
    bpf_link__destroy(link);
}

/* Entries of threads that are gone (killed inside a call) leave the
 * per-thread maps. */
static void s_sweep_threads(netcap_t *self, int fd)
{
    uint32_t key, next, dead[256];
    size_t n = 0;
    char path[64];

    for (int first = 1;
         n < 256 && bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0;
         first = 0) {
        key = next;
        snprintf(path, sizeof(path), "/proc/%u", key);
        if (access(path, F_OK) != 0)
            dead[n++] = key;
    }
    for (size_t i = 0; i < n; i++)
        bpf_map_delete_elem(fd, &dead[i]);
}

/* Socket records of processes that are gone (their UDP and unix sockets,
 * closed at exit without a close()) or no longer traced: a followed
 * socket's TCP close and retransmits would still be reported. */
static void s_sweep_conns(netcap_t *self)
{
    int fd = bpf_map__fd(self->skel->maps.net_conns);
    struct sky_net_conn c;
    uint64_t key, next, dead[256];
    size_t n;
    char path[64];

    do {
        n = 0;
        for (int first = 1;
             n < 256 &&
             bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0;
             first = 0) {
            key = next;
            if (bpf_map_lookup_elem(fd, &key, &c) != 0)
                continue;
            snprintf(path, sizeof(path), "/proc/%u", c.pid);
            if (!pidset_has(self->pids, c.pid) ||
                access(path, F_OK) != 0)
                dead[n++] = key;
        }
        for (size_t i = 0; i < n; i++)
            bpf_map_delete_elem(fd, &dead[i]);
    } while (n == 256);
}

/* pidset_update's callbacks. */
static void s_pid_removed(void *arg, uint32_t pid)
{
    netcap_t *self = arg;

    netssl_forget(self->ssl, pid);
}

/* After the filter: a socket opened meanwhile is seen by the probes or by
 * the scan, and the scan skips what the probes recorded. */
static void s_pid_added(void *arg, uint32_t pid)
{
    netcap_t *self = arg;

    s_scan_pid(self, pid);
    netssl_scan(self->ssl, pid);
}

int netcap_set_pids(netcap_t *self, const uint32_t *pids, size_t n)
{
    int rc = 0;

    if (n > NETCAP_MAX_PIDS) {
        log_warn("network capture: %zu processes, following the first %d", n,
                 NETCAP_MAX_PIDS);
        n = NETCAP_MAX_PIDS;
    }
    if (n == 0) {
        if (self->skel) {
            netcap_drain(self);
            netcap_flush(self);
            s_unload(self);
            log_info("network capture detached");
        }
        goto cleanup;
    }
    if (!self->skel && s_load(self) < 0) {
        rc = -1;
        goto cleanup;
    }
    rc = pidset_update(self->pids, pids, n, s_pid_added, s_pid_removed,
                       self);
    s_sweep_conns(self);
cleanup:
    self->st.npids = (uint32_t)pidset_count(self->pids);
    return rc;
}

/* -------------------------------------------------------------- drain */

static int s_on_record(void *ctx, void *data, size_t size)
{
    netcap_t *self = ctx;
    const struct sky_net_ev *r = data;
    wire_net_event_t *e;

    self->st.received++;
    if (size < sizeof(*r) || r->kind > WIRE_NET_KIND_MAX ||
        r->proto > WIRE_NET_PROTO_MAX || r->role > WIRE_NET_ROLE_MAX ||
        r->dir > WIRE_NET_DIR_MAX || r->ncaptured > WIRE_MAX_NET_PAYLOAD ||
        r->ncaptured > size - sizeof(*r) || r->ncaptured > r->bytes ||
        r->lport > 65535 || r->rport > 65535) {
        self->st.invalid++;
        return 0;
    }
    /* Full before the publish interval: published now, as the stack
     * batcher does with a full batch, rather than dropped. */
    if (self->npending >= self->opts.max_pending) {
        self->st.early_flushes++;
        netcap_flush(self);
    }
    if (self->npending >= self->opts.max_pending) {
        self->st.dropped_user++;
        self->lost_unreported++;
        return 0;
    }
    e = &self->pending[self->npending];
    memset(e, 0, sizeof(*e));
    e->kind = (uint8_t)r->kind;
    e->pid = r->pid;
    e->tid = r->tid;
    e->conn_id = r->conn_id;
    e->ts_ns = r->ts_ns;
    e->proto = (uint8_t)r->proto;
    e->role = (uint8_t)r->role;
    e->pre_existing = (r->flags & SKY_NET_F_PRE_EXISTING) != 0;
    e->is_ssl = (r->flags & SKY_NET_F_SSL) != 0;
    memcpy(e->local_addr, r->laddr, 16);
    memcpy(e->remote_addr, r->raddr, 16);
    e->local_port = (uint16_t)r->lport;
    e->remote_port = (uint16_t)r->rport;
    e->dur_ns = r->dur_ns;
    e->dir = (uint8_t)r->dir;
    e->bytes = r->bytes;
    e->rtt_us = r->rtt_us;
    e->bytes_sent = r->bytes_sent;
    e->bytes_received = r->bytes_received;
    e->count = r->count;
    if (r->ncaptured) {
        uint8_t *copy = arena_alloc(self->payloads, r->ncaptured);
        if (!copy) {
            self->st.dropped_user++;
            self->lost_unreported++;
            return 0;
        }
        memcpy(copy, (const uint8_t *)data + sizeof(*r), r->ncaptured);
        e->payload = copy;
        e->ncaptured = r->ncaptured;
    }
    if (e->kind == WIRE_NET_OPEN && e->proto != WIRE_NET_UNIX) {
        netpeer_tuple_t t = { .proto = e->proto, .lport = e->local_port,
                              .rport = e->remote_port };
        memcpy(t.laddr, e->local_addr, 16);
        memcpy(t.raddr, e->remote_addr, 16);
        e->role = netpeer_open(self->peers, e->conn_id, e->pid, &t, e->role,
                               now_mono_ms());
    } else if (!e->role && e->proto != WIRE_NET_UNIX) {
        /* The side of a connection found pre-existing, inferred at its
         * OPEN, for its later events too. */
        e->role = netpeer_role(self->peers, e->conn_id);
    }
    self->npending++;
    return 0;
}

int netcap_drain(netcap_t *self)
{
    if (!self->rb)
        return 0;
    int n = ring_buffer__consume(self->rb);
    /* The peers of the connections opened since the last drain, while
     * they are young: a short connection may be gone from /proc by the
     * flush. After the whole drain, so two ends drained together find
     * each other without /proc. */
    uint64_t now_ms = now_mono_ms();
    for (uint32_t i = self->peers_done; i < self->npending; i++) {
        wire_net_event_t *e = &self->pending[i];
        if (e->kind == WIRE_NET_OPEN && e->proto != WIRE_NET_UNIX)
            e->peer_pid = netpeer_peer(self->peers, e->conn_id, now_ms);
    }
    self->peers_done = self->npending;
    return n < 0 ? 0 : n;
}

/* Local peers, then the connections that closed leave the peer table. */
static void s_resolve_peers(netcap_t *self)
{
    uint64_t now_ms = now_mono_ms();

    for (uint32_t i = 0; i < self->npending; i++) {
        wire_net_event_t *e = &self->pending[i];
        if (e->proto != WIRE_NET_UNIX)
            e->peer_pid = netpeer_peer(self->peers, e->conn_id, now_ms);
    }
    for (uint32_t i = 0; i < self->npending; i++)
        if (self->pending[i].kind == WIRE_NET_CLOSE)
            netpeer_close(self->peers, self->pending[i].conn_id);
    if (now_ms >= self->peer_sweep_ms + NETCAP_PEER_SWEEP_MS) {
        self->peer_sweep_ms = now_ms;
        netpeer_expire(self->peers, now_ms, NETCAP_PEER_IDLE_MS);
        if (self->skel) {
            s_sweep_threads(self, bpf_map__fd(self->skel->maps.net_args));
            s_sweep_threads(self, bpf_map__fd(self->skel->maps.ssl_calls));
            s_sweep_conns(self);
        }
    }
}

/* Libraries the traced processes mapped since they were scanned. */
static void s_rescan_ssl(netcap_t *self)
{
    uint64_t now = now_mono_ms();

    if (!self->ssl || now < self->ssl_scan_ms + NETCAP_SSL_RESCAN_MS)
        return;
    self->ssl_scan_ms = now;
    const uint32_t *pids = pidset_pids(self->pids);
    for (size_t i = 0; i < pidset_count(self->pids); i++)
        netssl_scan(self->ssl, pids[i]);
}

int netcap_flush(netcap_t *self)
{
    uint32_t count[WIRE_BUCKETS + 1] = { 0 };
    int batches = 0;

    s_rescan_ssl(self);
    /* What the ring lost since the last flush goes out with this one. */
    uint64_t ring_lost = s_counter(self, SKY_NET_CNT_RING_FULL);
    self->lost_unreported += ring_lost - self->ring_lost_seen;
    self->ring_lost_seen = ring_lost;
    if (!self->npending)
        return 0;
    s_resolve_peers(self);
    /* Group by bucket, keeping each bucket's order (a counting sort). */
    for (uint32_t i = 0; i < self->npending; i++)
        count[wire_pid_bucket(self->pending[i].pid) + 1]++;
    for (uint32_t b = 1; b <= WIRE_BUCKETS; b++)
        count[b] += count[b - 1];
    uint32_t start[WIRE_BUCKETS + 1];
    memcpy(start, count, sizeof(start));
    for (uint32_t i = 0; i < self->npending; i++)
        self->scatter[count[wire_pid_bucket(self->pending[i].pid)]++] =
            self->pending[i];
    for (uint32_t b = 0; b < WIRE_BUCKETS; b++) {
        for (uint32_t at = start[b]; at < start[b + 1];) {
            uint32_t n = start[b + 1] - at;
            char topic[32];
            if (n > self->opts.max_batch)
                n = self->opts.max_batch;
            wire_net_batch_t batch = { .nevents = n,
                                       .events = &self->scatter[at],
                                       .lost = self->lost_unreported };
            wire_sharded_topic(topic, sizeof(topic), TOPIC_NET_EVENTS,
                               self->scatter[at].pid);
            if (self->emit && self->emit(self->arg, topic, &batch) == 0) {
                self->st.published += n;
                self->lost_unreported = 0;
            } else {
                self->st.publish_errors++;
            }
            batches++;
            at += n;
        }
    }
    self->st.batches += (uint64_t)batches;
    self->npending = 0;
    self->peers_done = 0;
    arena_reset(self->payloads);
    return batches;
}

bool netcap_attached(const netcap_t *self)
{
    return self && self->skel != NULL;
}

void netcap_stats(const netcap_t *self, netcap_stats_t *out)
{
    netpeer_stats_t ps;

    *out = self->st;
    out->events = s_counter(self, SKY_NET_CNT_EVENTS);
    out->ring_lost = s_counter(self, SKY_NET_CNT_RING_FULL);
    out->truncated = s_counter(self, SKY_NET_CNT_TRUNCATED);
    out->captured_bytes = s_counter(self, SKY_NET_CNT_CAPTURED);
    out->args_lost = s_counter(self, SKY_NET_CNT_ARGS_FULL);
    out->conns_lost = s_counter(self, SKY_NET_CNT_CONNS_FULL);
    out->read_errors = s_counter(self, SKY_NET_CNT_READ_ERR);
    out->mmsg_calls = s_counter(self, SKY_NET_CNT_MMSG);
    out->ssl_untied = s_counter(self, SKY_NET_CNT_SSL_UNTIED);
    out->ssl_attach_errors = self->ssl_attach_errors;
    if (self->ssl) {
        netssl_stats_t ss;
        netssl_stats(self->ssl, &ss);
        out->ssl_libraries = ss.libraries;
        out->ssl_attach_errors += ss.attach_errors;
    }
    netpeer_stats(self->peers, &ps);
    out->peers_matched = ps.matched;
    out->peers_proc = ps.proc_found;
}

size_t netcap_conn_entries(const netcap_t *self, size_t *peers)
{
    netpeer_stats_t ps;
    uint64_t key, next;
    size_t n = 0;

    netpeer_stats(self->peers, &ps);
    if (peers)
        *peers = ps.conns;
    if (!self->skel)
        return 0;
    int fd = bpf_map__fd(self->skel->maps.net_conns);
    for (int first = 1;
         bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0;
         first = 0) {
        key = next;
        n++;
    }
    return n;
}

void netcap_destroy(netcap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    netcap_t *self = *self_p;
    s_unload(self);
    pidset_destroy(&self->pids);
    free(self->pending);
    free(self->scatter);
    arena_destroy(&self->payloads);
    netpeer_destroy(&self->peers);
    free(self);
    *self_p = NULL;
}
