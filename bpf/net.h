/* Shared between bpf/net.bpf.c and collector/netcap.c: the socket events
 * of the processes of NETWORK tasks (only __u32/__u64, as every BPF
 * header of the project). */
#ifndef SKYPROF_BPF_NET_H
#define SKYPROF_BPF_NET_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Largest payload prefix one event carries (WIRE_MAX_NET_PAYLOAD). */
#define SKY_NET_MAX_PAYLOAD 4096u

/* Syscall number -> what it is to us (net_sysop, filled by user space
 * from <sys/syscall.h>, so the program holds no architecture's numbers).
 * 0: not ours. */
#define SKY_NET_SYSCALLS 512u
#define SKY_NET_OP_CONNECT  1
#define SKY_NET_OP_ACCEPT   2   /* accept, accept4 */
#define SKY_NET_OP_CLOSE    3
#define SKY_NET_OP_WRITE    4   /* write, sendto: (fd, buf, len) */
#define SKY_NET_OP_READ     5   /* read, recvfrom */
#define SKY_NET_OP_WRITEV   6   /* writev: (fd, iov, iovcnt) */
#define SKY_NET_OP_READV    7
#define SKY_NET_OP_SENDMSG  8   /* (fd, msghdr, flags) */
#define SKY_NET_OP_RECVMSG  9
#define SKY_NET_OP_MMSG     10  /* sendmmsg, recvmmsg: counted only */
#define SKY_NET_OP_MAX      10

/* Event kinds: as enum wire_net_kind. */
#define SKY_NET_OPEN    0
#define SKY_NET_CLOSE   1
#define SKY_NET_DATA    2
#define SKY_NET_RETRANS 3
#define SKY_NET_DROP    4

#define SKY_NET_F_PRE_EXISTING 0x1u
#define SKY_NET_F_SSL          0x2u

/* One ring record: this header, then ncaptured payload bytes. */
struct sky_net_ev {
    __u64 conn_id;
    __u64 ts_ns;        /* bpf_ktime_get_ns */
    __u64 dur_ns;
    __u64 bytes;
    __u64 bytes_sent, bytes_received;
    __u32 kind, pid, tid;
    __u32 proto, role, flags, dir;
    __u32 rtt_us, count, ncaptured;
    __u32 lport, rport;
    __u32 laddr[4], raddr[4]; /* IPv6, IPv4 as ::ffff:a.b.c.d */
};

/* A socket of a traced process (net_conns, keyed by its address). */
struct sky_net_conn {
    __u64 conn_id;
    __u64 sk;
    __u32 pid, proto, role, flags;
    __u32 lport, rport;
    __u32 laddr[4], raddr[4];
};

/* Per-CPU counters (net_counters). */
#define SKY_NET_CNT_EVENTS      0  /* records written */
#define SKY_NET_CNT_RING_FULL   1  /* records lost: ring full */
#define SKY_NET_CNT_TRUNCATED   2  /* DATA whose payload was cut */
#define SKY_NET_CNT_CAPTURED    3  /* payload bytes captured */
#define SKY_NET_CNT_ARGS_FULL   4  /* syscalls lost: net_args full */
#define SKY_NET_CNT_READ_ERR    5  /* payload reads that failed */
#define SKY_NET_CNT_MMSG        6  /* sendmmsg/recvmmsg calls (not parsed) */
#define SKY_NET_CNT_NOT_SOCKET  7  /* traced fds that were not sockets */
#define SKY_NET_CNT_CONNS_FULL  8  /* connections lost: net_conns full */
#define SKY_NET_CNT_SSL_UNTIED  9  /* TLS calls with no known socket */
#define SKY_NET_CNT_MAX         10

#endif
