/* TLS plaintext capture: the uprobes of bpf/net.bpf.c on OpenSSL's
 * SSL_write, SSL_read, SSL_write_ex and SSL_read_ex (+ their returns),
 * attached per traced process and per libssl it maps (libssl.so.3,
 * libssl.so.1.1, found in /proc/PID/maps and opened through
 * /proc/PID/root so a process in a container is covered). Attaching per
 * process, not per library file, keeps the breakpoints out of the
 * untraced processes that map the same library: a uprobe hit costs
 * microseconds (docs/network.md). Statically linked OpenSSL, BoringSSL,
 * Go's crypto/tls and Node's TLS are not covered. */
#ifndef SKYPROF_COLLECTOR_NETSSL_H
#define SKYPROF_COLLECTOR_NETSSL_H

#include <stddef.h>
#include <stdint.h>

struct bpf_program;
typedef struct netssl netssl_t;

/* The programs: entries of SSL_write, SSL_read, SSL_write_ex,
 * SSL_read_ex, and the return probe shared by the four. */
typedef struct {
    struct bpf_program *write, *read, *write_ex, *read_ex, *ret;
} netssl_progs_t;

/* proc_root: "/proc" when NULL. */
netssl_t *netssl_new(const netssl_progs_t *progs, const char *proc_root);
/* Detaches every probe. */
void netssl_destroy(netssl_t **self_p);

/* Attaches to the libssl copies pid maps and is not attached to yet.
 * Returns how many libraries were attached now, -1 on an error (logged,
 * counted). */
int netssl_scan(netssl_t *self, uint32_t pid);
/* Detaches pid's probes (it left the task set or exited). */
void netssl_forget(netssl_t *self, uint32_t pid);

typedef struct {
    uint64_t libraries;       /* (process, library) pairs attached now */
    uint64_t attach_errors;
} netssl_stats_t;

void netssl_stats(const netssl_t *self, netssl_stats_t *out);

#endif
