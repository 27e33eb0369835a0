// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Socket capture of the skyprof collector (issue 14, docs/network.md).
 *
 * For the processes in net_pids (those of active NETWORK tasks) it writes
 * to the ring net_events one record per connect/accept (OPEN), close
 * (CLOSE, with the kernel's totals), read/write-family syscall that moved
 * bytes (DATA, with a prefix of the bytes: capture_bytes at most), TCP
 * retransmit (RETRANS) and, at close, the socket's drop counter (DROP).
 * The collector turns the records into net.events batches; parsing is the
 * aggregator's.
 *
 * What untraced processes pay (these hooks run for every syscall of the
 * host while a NETWORK task is active):
 *  - sys_enter: one inlined array lookup of the syscall number (net_sysop:
 *    not a socket syscall -> return), then the pid bit (net_pid_bits,
 *    bpf/pidset.bpf.h: an inlined array lookup) -> return.
 *  - sys_exit: the pid bit -> return. Traced processes then look their
 *    thread up in net_args (only present when sys_enter kept something).
 *  - inet_sock_set_state and tcp_retransmit_skb (TCP state changes and
 *    retransmits of every socket): a hash lookup of the socket in
 *    net_conns, only on the transition to TCP_CLOSE for the first.
 * Drops are read from the socket (sk_drops) at close instead of a
 * per-packet hook such as kfree_skb, which would run for every freed
 * packet of the host.
 *
 * Sockets are keyed by their kernel address; a socket's record is deleted
 * at close() or at its TCP_CLOSE transition, and each new record takes the
 * next conn_id (a 64-bit counter user space carries over reloads), so a
 * later socket at the same address gets a new id. A socket first seen in a
 * read or write (open before the probes attached, or inherited) gets an
 * OPEN marked pre-existing; at attach user space also runs the
 * iter/task_file program below over the traced processes' open files.
 *
 * TLS: uprobes on OpenSSL's SSL_write/SSL_read (+_ex), attached by user
 * space per traced process, emit the plaintext as DATA with the SSL flag;
 * the syscalls inside those calls, and any socket once a TLS record
 * header was seen on it, count their bytes without a payload. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "net.h"
#include "pidset.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SKY_AF_UNIX   1
#define SKY_AF_INET   2
#define SKY_AF_INET6  10
#define SKY_IPPROTO_TCP 6
#define SKY_IPPROTO_UDP 17
#define SKY_S_IFMT    0170000
#define SKY_S_IFSOCK  0140000
#define SKY_TCP_CLOSE 7
#define SKY_TCP_LISTEN 10
#define SKY_EINPROGRESS 115
#define SKY_RCV_SHUTDOWN 1

/* Set by user space between open and load. */
const volatile __u32 capture_bytes = 1024;     /* <= SKY_NET_MAX_PAYLOAD */
const volatile __u64 wakeup_bytes = 1 << 20;   /* ring data that wakes */

/* The last connection id issued; user space sets it before attaching so
 * ids go on from where a previous load of the program stopped. */
__u64 next_conn_id;

/* The processes of active NETWORK tasks, written by user space. */
SKY_PIDSET_MAPS(net_pid_bits, net_pids);

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, SKY_NET_SYSCALLS);
    __type(key, __u32);
    __type(value, __u32);
} net_sysop SEC(".maps");

/* What sys_enter keeps for sys_exit, per thread. */
struct sky_net_args {
    __u64 ts_ns;
    __u64 sk;          /* the socket of fd (not for accept) */
    __u64 buf;         /* the buffer, iovec array or msghdr */
    __u64 bytes_sent, bytes_received; /* close: the totals before it */
    __u64 conn_id;     /* close: the record it closes */
    __u32 op, drops, retrans, in_ssl;
};

/* A thread killed inside a call never reaches its sys_exit: user space
 * deletes the entries of threads that are gone (not an LRU map, which
 * evicts before it is full and would lose calls in progress). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u32);
    __type(value, struct sky_net_args);
} net_args SEC(".maps");

/* Not an LRU map: those evict before they are full, and an evicted live
 * connection would come back as a new, pre-existing one. Records whose
 * close was never seen (a UDP or unix socket of a process that exited)
 * are deleted by user space once their process is gone; a full map is
 * counted. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);   /* resized by user space before load */
    __type(key, __u64);
    __type(value, struct sky_net_conn);
} net_conns SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4 << 20); /* resized by user space before load */
} net_events SEC(".maps");

/* A record being built: header and payload. */
struct sky_net_scratch {
    struct sky_net_ev ev;
    __u8 data[SKY_NET_MAX_PAYLOAD];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct sky_net_scratch);
} net_scratch SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, SKY_NET_CNT_MAX);
    __type(key, __u32);
    __type(value, __u64);
} net_counters SEC(".maps");

static __always_inline void s_count(__u32 idx, __u64 n)
{
    __u64 *c = bpf_map_lookup_elem(&net_counters, &idx);

    if (c)
        *c += n;
}

static __always_inline int s_traced(__u32 tgid)
{
    return sky_pidset_has(&net_pid_bits, &net_pids, tgid);
}

/* The socket behind fd of the current process, or NULL. */
static __always_inline struct sock *s_fd_sock(struct task_struct *task,
                                              __u32 fd)
{
    struct files_struct *files = BPF_CORE_READ(task, files);
    struct fdtable *fdt = BPF_CORE_READ(files, fdt);
    struct file **fds;
    struct file *file = NULL;
    struct socket *sock;
    __u32 mode;

    if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
        return NULL;
    fds = BPF_CORE_READ(fdt, fd);
    bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
    if (!file)
        return NULL;
    mode = BPF_CORE_READ(file, f_inode, i_mode);
    if ((mode & SKY_S_IFMT) != SKY_S_IFSOCK) {
        s_count(SKY_NET_CNT_NOT_SOCKET, 1);
        return NULL;
    }
    sock = BPF_CORE_READ(file, private_data);
    return sock ? BPF_CORE_READ(sock, sk) : NULL;
}

/* Protocol and addresses of sk into c; 0, or -1 for a socket we do not
 * follow (netlink, raw, packet...). */
static __always_inline int s_describe(struct sock *sk, struct sky_net_conn *c)
{
    __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
    __u16 proto;

    if (family == SKY_AF_UNIX) {
        c->proto = 2;
        return 0;
    }
    if (family != SKY_AF_INET && family != SKY_AF_INET6)
        return -1;
    proto = BPF_CORE_READ(sk, sk_protocol);
    if (proto == SKY_IPPROTO_TCP)
        c->proto = 0;
    else if (proto == SKY_IPPROTO_UDP)
        c->proto = 1;
    else
        return -1;
    c->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
    c->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
    if (family == SKY_AF_INET) {
        c->laddr[2] = c->raddr[2] = bpf_htonl(0xffff);
        c->laddr[3] = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
        c->raddr[3] = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    } else {
        BPF_CORE_READ_INTO(&c->laddr, sk,
                           __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
        BPF_CORE_READ_INTO(&c->raddr, sk,
                           __sk_common.skc_v6_daddr.in6_u.u6_addr32);
    }
    return 0;
}

static __always_inline struct sky_net_scratch *s_scratch(void)
{
    __u32 zero = 0;

    return bpf_map_lookup_elem(&net_scratch, &zero);
}

/* The header of a record about connection c. */
static __always_inline struct sky_net_ev *s_ev(struct sky_net_scratch *s,
                                               const struct sky_net_conn *c,
                                               __u32 kind, __u32 tid,
                                               __u64 now)
{
    struct sky_net_ev *ev = &s->ev;

    __builtin_memset(ev, 0, sizeof(*ev));
    ev->kind = kind;
    ev->conn_id = c->conn_id;
    ev->pid = c->pid;
    ev->tid = tid;
    ev->ts_ns = now;
    ev->proto = c->proto;
    ev->role = c->role;
    ev->flags = c->flags;
    ev->lport = c->lport;
    ev->rport = c->rport;
    __builtin_memcpy(ev->laddr, c->laddr, sizeof(ev->laddr));
    __builtin_memcpy(ev->raddr, c->raddr, sizeof(ev->raddr));
    return ev;
}

/* Writes the record with n payload bytes. User space consumes on its
 * drain timer; the ring's epoll fd fires only once wakeup_bytes wait. */
static __always_inline void s_output(struct sky_net_scratch *s, __u32 n)
{
    __u64 flags = BPF_RB_NO_WAKEUP;

    if (n > SKY_NET_MAX_PAYLOAD)
        n = SKY_NET_MAX_PAYLOAD;
    if (bpf_ringbuf_query(&net_events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
        flags = BPF_RB_FORCE_WAKEUP;
    if (bpf_ringbuf_output(&net_events, s, sizeof(s->ev) + n, flags) == 0)
        s_count(SKY_NET_CNT_EVENTS, 1);
    else
        s_count(SKY_NET_CNT_RING_FULL, 1);
}

/* A new record for sk (replacing a stale one at the same address) and its
 * OPEN; NULL when sk is not followed. */
static __always_inline struct sky_net_conn *
s_open(struct sock *sk, __u32 tgid, __u32 tid, __u32 role, __u32 flags,
       __u64 now, __u64 dur_ns)
{
    struct sky_net_conn c = {};
    struct sky_net_scratch *s;
    struct sky_net_ev *ev;
    __u64 key = (__u64)sk;

    if (s_describe(sk, &c) < 0)
        return NULL;
    /* A socket first seen after its TCP_CLOSE (a write that met a reset)
     * is not opened again. */
    if ((flags & SKY_NET_F_PRE_EXISTING) && c.proto == 0 &&
        BPF_CORE_READ(sk, __sk_common.skc_state) == SKY_TCP_CLOSE)
        return NULL;
    c.conn_id = __sync_fetch_and_add(&next_conn_id, 1) + 1;
    c.sk = key;
    c.pid = tgid;
    c.role = role;
    c.flags = flags;
    if (bpf_map_update_elem(&net_conns, &key, &c, BPF_ANY) != 0) {
        s_count(SKY_NET_CNT_CONNS_FULL, 1);
        return NULL;
    }
    s = s_scratch();
    if (s) {
        ev = s_ev(s, &c, SKY_NET_OPEN, tid, now);
        ev->dur_ns = dur_ns;
        s_output(s, 0);
    }
    return bpf_map_lookup_elem(&net_conns, &key);
}

/* The kernel's totals of a TCP socket. */
static __always_inline void s_totals(struct sock *sk, __u32 proto,
                                     struct sky_net_args *a)
{
    struct tcp_sock *tp = (struct tcp_sock *)sk;

    a->drops = BPF_CORE_READ(sk, sk_drops.counter);
    if (proto != 0)
        return;
    /* Data bytes sent once: bytes_sent counts retransmits again, and
     * bytes_acked also counts the SYN of an active open and the FIN. */
    if (bpf_core_field_exists(tp->bytes_sent) &&
        bpf_core_field_exists(tp->bytes_retrans))
        a->bytes_sent = BPF_CORE_READ(tp, bytes_sent) -
                        BPF_CORE_READ(tp, bytes_retrans);
    else
        a->bytes_sent = BPF_CORE_READ(tp, bytes_acked);
    /* bytes_received counts a received FIN too (it advances rcv_nxt), so
     * one less once the peer's FIN is in (RCV_SHUTDOWN; a local
     * shutdown(SHUT_RD) sets it as well: one byte too few then). */
    a->bytes_received = BPF_CORE_READ(tp, bytes_received);
    if ((BPF_CORE_READ(sk, sk_shutdown) & SKY_RCV_SHUTDOWN) &&
        a->bytes_received)
        a->bytes_received--;
    a->retrans = BPF_CORE_READ(tp, total_retrans);
}

/* CLOSE (and DROP when the socket dropped packets) of c; deletes it. */
static __always_inline void s_close(__u64 key, struct sky_net_conn *c,
                                    const struct sky_net_args *a, __u32 tid,
                                    __u64 now, __u64 dur_ns)
{
    struct sky_net_scratch *s = s_scratch();
    struct sky_net_ev *ev;

    if (s) {
        if (a->drops) {
            ev = s_ev(s, c, SKY_NET_DROP, tid, now);
            ev->count = a->drops;
            s_output(s, 0);
        }
        ev = s_ev(s, c, SKY_NET_CLOSE, tid, now);
        ev->dur_ns = dur_ns;
        ev->bytes_sent = a->bytes_sent;
        ev->bytes_received = a->bytes_received;
        ev->count = a->retrans;
        s_output(s, 0);
    }
    bpf_map_delete_elem(&net_conns, &key);
}

/* A TLS library call in progress, per thread (uprobe to uretprobe). The
 * socket syscalls it makes tell which socket it runs on. */
struct sky_ssl_call {
    __u64 ts_ns;
    __u64 ssl;         /* the SSL * */
    __u64 buf;
    __u64 out;         /* _ex: where the byte count is written */
    __u64 sk;          /* the socket a syscall inside the call used */
    __u32 dir, ex;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);   /* as net_args */
    __uint(max_entries, 16384);
    __type(key, __u32);
    __type(value, struct sky_ssl_call);
} ssl_calls SEC(".maps");

/* SSL * -> socket, learned from calls that made a syscall: a read served
 * from already decrypted records makes none. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);  /* a hint: losing one is cheap */
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, __u64);
} ssl_socks SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(sky_net_enter, struct pt_regs *regs, long id)
{
    struct sky_net_args a = {};
    struct sky_net_conn *c;
    struct sock *sk = NULL;
    __u32 key = (__u32)id, *op, tid;
    __u64 pid_tgid;

    if (id < 0 || id >= SKY_NET_SYSCALLS)
        return 0;
    op = bpf_map_lookup_elem(&net_sysop, &key);
    if (!op || !*op)
        return 0;
    pid_tgid = bpf_get_current_pid_tgid();
    if (!s_traced(pid_tgid >> 32))
        return 0;
    if (*op == SKY_NET_OP_MMSG) {
        s_count(SKY_NET_CNT_MMSG, 1);
        return 0;
    }
    a.op = *op;
    a.ts_ns = bpf_ktime_get_ns();
    if (a.op != SKY_NET_OP_ACCEPT) {
        sk = s_fd_sock((struct task_struct *)bpf_get_current_task(),
                       (__u32)PT_REGS_PARM1_CORE_SYSCALL(regs));
        if (!sk)
            return 0;
        a.sk = (__u64)sk;
    }
    if (a.op == SKY_NET_OP_CLOSE) {
        c = bpf_map_lookup_elem(&net_conns, &a.sk);
        if (!c)
            return 0;
        a.conn_id = c->conn_id;
        s_totals(sk, c->proto, &a);
    }
    a.buf = PT_REGS_PARM2_CORE_SYSCALL(regs);
    tid = (__u32)pid_tgid;
    if (a.op >= SKY_NET_OP_WRITE) {
        struct sky_ssl_call *call = bpf_map_lookup_elem(&ssl_calls, &tid);

        if (call) {
            call->sk = a.sk;
            a.in_ssl = 1;
        }
    }
    if (bpf_map_update_elem(&net_args, &tid, &a, BPF_ANY) != 0)
        s_count(SKY_NET_CNT_ARGS_FULL, 1);
    return 0;
}

/* Where the data of a read/write-family call starts and how long that
 * first piece is: the buffer itself, or the first iovec (of the call or
 * of its msghdr). Only the first iovec is captured. */
static __always_inline __u64 s_data(const struct sky_net_args *a,
                                    __u64 *len)
{
    struct user_msghdr msg = {};
    struct iovec iov = {};
    void *iovp = (void *)a->buf;

    if (a->op == SKY_NET_OP_WRITE || a->op == SKY_NET_OP_READ) {
        *len = ~0ull;
        return a->buf;
    }
    if (a->op == SKY_NET_OP_SENDMSG || a->op == SKY_NET_OP_RECVMSG) {
        if (bpf_probe_read_user(&msg, sizeof(msg), (void *)a->buf) != 0 ||
            !msg.msg_iovlen)
            return 0;
        iovp = msg.msg_iov;
    }
    if (bpf_probe_read_user(&iov, sizeof(iov), iovp) != 0)
        return 0;
    *len = iov.iov_len;
    return (__u64)iov.iov_base;
}

/* A DATA record of c: bytes moved by a call of dur_ns, the first
 * min(bytes, first, capture_bytes) of them read from ptr (0: none kept).
 * ssl: plaintext of a TLS library call. */
static __always_inline void s_emit_data(struct sky_net_conn *c, __u32 tid,
                                        __u64 now, __u64 dur_ns, __u64 bytes,
                                        __u32 dir, __u64 ptr, __u64 first,
                                        int ssl)
{
    struct sky_net_scratch *s = s_scratch();
    struct sky_net_ev *ev;
    __u32 n;

    if (!s)
        return;
    ev = s_ev(s, c, SKY_NET_DATA, tid, now);
    ev->flags = (c->flags & ~SKY_NET_F_SSL) | (ssl ? SKY_NET_F_SSL : 0);
    ev->dur_ns = dur_ns;
    ev->bytes = bytes;
    ev->dir = dir;
    if (dir == 0 && c->proto == 0) {
        struct tcp_sock *tp = (struct tcp_sock *)c->sk;

        ev->rtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
    }
    n = capture_bytes;
    if (bytes < n)
        n = bytes;
    if (first < n)
        n = first;
    if (n > SKY_NET_MAX_PAYLOAD)
        n = SKY_NET_MAX_PAYLOAD;
    if (!ptr)
        n = 0;
    if (n && bpf_probe_read_user(s->data, n, (void *)ptr) != 0) {
        s_count(SKY_NET_CNT_READ_ERR, 1);
        n = 0;
    }
    /* A TLS record (content type 20..23: change cipher spec, alert,
     * handshake, application data; version 3.x) on the socket: from now
     * on its syscalls carry ciphertext, kept by no one (the plaintext
     * comes from the library's uprobes). No HTTP message starts so. */
    if (!ssl && n >= 3 && s->data[0] >= 20 && s->data[0] <= 23 &&
        s->data[1] == 3 && s->data[2] <= 4) {
        c->flags |= SKY_NET_F_SSL;
        n = 0;
    }
    if (n < bytes)
        s_count(SKY_NET_CNT_TRUNCATED, 1);
    s_count(SKY_NET_CNT_CAPTURED, n);
    ev->ncaptured = n;
    s_output(s, n);
}

/* The DATA record of a read/write-family syscall. Inside a TLS library
 * call the bytes are ciphertext: counted (L4), not kept. */
static __always_inline void s_data_event(struct sky_net_conn *c,
                                         const struct sky_net_args *a,
                                         __u32 tid, __u64 now, __u64 ret)
{
    __u64 first = 0, ptr = 0;
    __u32 dir = a->op == SKY_NET_OP_READ || a->op == SKY_NET_OP_READV ||
                a->op == SKY_NET_OP_RECVMSG;

    if (!a->in_ssl && !(c->flags & SKY_NET_F_SSL))
        ptr = s_data(a, &first);
    s_emit_data(c, tid, now, now - a->ts_ns, ret, dir, ptr, first, 0);
}

/* An accept that was already waiting when the probes attached (a server
 * blocked in accept) has no sys_enter record: its connection is opened
 * here all the same. The syscall number is read from the registers, which
 * only x86 is written for; elsewhere the socket is found at its first read
 * as pre-existing. */
static __always_inline void s_late_accept(struct pt_regs *regs, long ret,
                                          __u32 tgid, __u32 tid)
{
#if defined(__TARGET_ARCH_x86)
    __u32 id, *op;
    struct sock *sk;

    if (ret < 0)
        return;
    id = (__u32)BPF_CORE_READ(regs, orig_ax);
    if (id >= SKY_NET_SYSCALLS)
        return;
    op = bpf_map_lookup_elem(&net_sysop, &id);
    if (!op || *op != SKY_NET_OP_ACCEPT)
        return;
    sk = s_fd_sock((struct task_struct *)bpf_get_current_task(), (__u32)ret);
    if (sk)
        s_open(sk, tgid, tid, 2, 0, bpf_ktime_get_ns(), 0);
#endif
}

SEC("raw_tp/sys_exit")
int BPF_PROG(sky_net_exit, struct pt_regs *regs, long ret)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid(), now;
    __u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
    struct sky_net_args *ap, a;
    struct sky_net_conn *c;
    struct task_struct *task;
    struct sock *sk;

    if (!s_traced(tgid))
        return 0;
    ap = bpf_map_lookup_elem(&net_args, &tid);
    if (!ap) {
        s_late_accept(regs, ret, tgid, tid);
        return 0;
    }
    a = *ap;
    bpf_map_delete_elem(&net_args, &tid);
    now = bpf_ktime_get_ns();
    switch (a.op) {
    case SKY_NET_OP_CONNECT:
        if (ret == 0 || ret == -SKY_EINPROGRESS)
            s_open((struct sock *)a.sk, tgid, tid, 1, 0, now, now - a.ts_ns);
        break;
    case SKY_NET_OP_ACCEPT:
        if (ret < 0)
            break;
        task = (struct task_struct *)bpf_get_current_task();
        sk = s_fd_sock(task, (__u32)ret);
        if (sk)
            s_open(sk, tgid, tid, 2, 0, now, now - a.ts_ns);
        break;
    case SKY_NET_OP_CLOSE:
        /* The same record: on loopback the whole close handshake can run
         * inside close(), the socket be freed (its record closed at
         * TCP_CLOSE) and another process's new socket take its address
         * before this returns. */
        c = bpf_map_lookup_elem(&net_conns, &a.sk);
        if (ret == 0 && c && c->conn_id == a.conn_id)
            s_close(a.sk, c, &a, tid, now, now - a.ts_ns);
        break;
    default:
        if (ret <= 0)
            break;
        c = bpf_map_lookup_elem(&net_conns, &a.sk);
        if (!c)
            c = s_open((struct sock *)a.sk, tgid, tid, 0,
                       SKY_NET_F_PRE_EXISTING, now, 0);
        if (c)
            s_data_event(c, &a, tid, now, (__u64)ret);
    }
    return 0;
}

/* ------------------------------------------------------------- TLS */
/* Uprobes on OpenSSL's SSL_write/SSL_read and their _ex variants, attached
 * by user space per traced process and library (collector/netcap.c): the
 * plaintext of each call as DATA with is_ssl, on the connection whose
 * socket the call's syscalls used. */
static __always_inline int s_ssl_enter(struct pt_regs *ctx, __u32 dir,
                                       __u32 ex)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    struct sky_ssl_call call = {};
    __u32 tid = (__u32)pid_tgid;

    if (!s_traced(pid_tgid >> 32))
        return 0;
    call.ts_ns = bpf_ktime_get_ns();
    call.ssl = PT_REGS_PARM1(ctx);
    call.buf = PT_REGS_PARM2(ctx);
    call.out = ex ? PT_REGS_PARM4(ctx) : 0;
    call.dir = dir;
    call.ex = ex;
    if (bpf_map_update_elem(&ssl_calls, &tid, &call, BPF_ANY) != 0)
        s_count(SKY_NET_CNT_ARGS_FULL, 1);
    return 0;
}

SEC("uprobe")
int BPF_KPROBE(sky_ssl_write) { return s_ssl_enter(ctx, 0, 0); }
SEC("uprobe")
int BPF_KPROBE(sky_ssl_read) { return s_ssl_enter(ctx, 1, 0); }
SEC("uprobe")
int BPF_KPROBE(sky_ssl_write_ex) { return s_ssl_enter(ctx, 0, 1); }
SEC("uprobe")
int BPF_KPROBE(sky_ssl_read_ex) { return s_ssl_enter(ctx, 1, 1); }

SEC("uretprobe")
int BPF_KRETPROBE(sky_ssl_ret, long ret)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid(), now, bytes = 0, sk;
    __u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
    struct sky_ssl_call *cp, call;
    struct sky_net_conn *c;
    __u64 *known;

    cp = bpf_map_lookup_elem(&ssl_calls, &tid);
    if (!cp)
        return 0;
    call = *cp;
    bpf_map_delete_elem(&ssl_calls, &tid);
    if (call.ex) {
        if (ret == 1 && call.out)
            bpf_probe_read_user(&bytes, sizeof(bytes), (void *)call.out);
    } else if (ret > 0) {
        bytes = (__u64)ret;
    }
    sk = call.sk;
    if (sk) {
        bpf_map_update_elem(&ssl_socks, &call.ssl, &sk, BPF_ANY);
    } else {
        known = bpf_map_lookup_elem(&ssl_socks, &call.ssl);
        sk = known ? *known : 0;
    }
    if (!bytes)
        return 0;
    if (!sk) {
        s_count(SKY_NET_CNT_SSL_UNTIED, 1);
        return 0;
    }
    now = bpf_ktime_get_ns();
    c = bpf_map_lookup_elem(&net_conns, &sk);
    if (!c)
        c = s_open((struct sock *)sk, tgid, tid, 0, SKY_NET_F_PRE_EXISTING,
                   now, 0);
    if (!c)
        return 0;
    c->flags |= SKY_NET_F_SSL;
    s_emit_data(c, tid, now, now - call.ts_ns, bytes, call.dir, call.buf,
                ~0ull, 1);
    return 0;
}

/* A TCP socket reached CLOSE (reset, or the last FIN after close()): its
 * final totals. Runs in softirq context too: the pid is the record's. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sky_net_state, const struct sock *sk, const int oldstate,
             const int newstate)
{
    struct sky_net_args a = {};
    struct sky_net_conn *c;
    __u64 key = (__u64)sk;

    if (newstate != SKY_TCP_CLOSE)
        return 0;
    c = bpf_map_lookup_elem(&net_conns, &key);
    if (!c)
        return 0;
    s_totals((struct sock *)sk, c->proto, &a);
    s_close(key, c, &a, 0, bpf_ktime_get_ns(), 0);
    return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(sky_net_retrans, const struct sock *sk, const struct sk_buff *skb)
{
    struct sky_net_scratch *s;
    struct sky_net_conn *c;
    struct sky_net_ev *ev;
    __u64 key = (__u64)sk;

    c = bpf_map_lookup_elem(&net_conns, &key);
    if (!c)
        return 0;
    s = s_scratch();
    if (!s)
        return 0;
    ev = s_ev(s, c, SKY_NET_RETRANS, 0, bpf_ktime_get_ns());
    ev->count = 1;
    s_output(s, 0);
    return 0;
}

/* Run by user space (bpf_iter) when processes join: every socket the
 * traced processes hold that has no record yet gets a pre-existing OPEN.
 * Threads sharing a file table are visited once. */
SEC("iter/task_file")
int sky_net_iter(struct bpf_iter__task_file *ctx)
{
    struct task_struct *task = ctx->task;
    struct file *file = ctx->file;
    struct socket *sock;
    struct sock *sk;
    __u64 key;
    __u32 tgid;

    if (!task || !file)
        return 0;
    tgid = task->tgid;
    if (!s_traced(tgid))
        return 0;
    if ((BPF_CORE_READ(file, f_inode, i_mode) & SKY_S_IFMT) != SKY_S_IFSOCK)
        return 0;
    sock = BPF_CORE_READ(file, private_data);
    sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
    if (!sk)
        return 0;
    key = (__u64)sk;
    if (bpf_map_lookup_elem(&net_conns, &key))
        return 0;
    /* Listening sockets (TCP and unix) are not connections. */
    if (BPF_CORE_READ(sk, __sk_common.skc_state) == SKY_TCP_LISTEN)
        return 0;
    s_open(sk, tgid, task->pid, 0, SKY_NET_F_PRE_EXISTING,
           bpf_ktime_get_ns(), 0);
    return 0;
}
