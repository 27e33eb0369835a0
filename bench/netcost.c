/* netcost: the CPU a socket call costs with the network capture
 * (collector/netcap.c, bpf/net.bpf.c) attached, for bench/netcost.py.
 *
 *   netcost MODE ROUNDS [--tls CERT KEY]
 *
 * A client (this process) and an echo server (a forked child) bounce a
 * 64-byte message over TCP loopback ROUNDS times: per round the client
 * sends and receives, the server receives and sends, four calls (with
 * --tls: SSL_write and SSL_read, through the system OpenSSL). MODE:
 *   off     nothing attached
 *   traced  the capture attached, both processes traced
 *   other   the capture attached, tracing only an idle process: what
 *           processes outside every NETWORK task pay while one runs
 * Prints one JSON object: CPU ns per call (both processes' CPU time over
 * the measured rounds, after 1000 warm-up rounds), and the events the
 * capture produced (drained after the measurement, so the drain is not
 * counted: it runs in the collector, not in the traced processes). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "collector/netcap.h"
#include "log.h"

#define MSG 64
#define WARMUP 1000

static SSL *s_ssl;

static int s_send(int fd, const char *p, size_t n)
{
    if (s_ssl)
        return SSL_write(s_ssl, p, (int)n) == (int)n ? 0 : -1;
    return send(fd, p, n, 0) == (ssize_t)n ? 0 : -1;
}

static int s_recv(int fd, char *p, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = s_ssl ? SSL_read(s_ssl, p + got, (int)(n - got))
                          : recv(fd, p + got, n - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static uint64_t s_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int s_count(void *arg, const char *topic, wire_net_batch_t *b)
{
    uint64_t *n = arg;

    n[0] += b->nevents;
    n[1] += b->lost;
    return 0;
}

/* The echo server: WARMUP + rounds messages back, then its CPU time for
 * the measured rounds on the pipe. */
static void s_server(int lfd, SSL_CTX *ctx, long rounds, int go_fd,
                     int report_fd)
{
    char buf[MSG], c;
    int fd = accept(lfd, NULL, NULL);
    uint64_t t0 = 0;

    if (fd < 0)
        _exit(1);
    if (ctx) {
        s_ssl = SSL_new(ctx);
        if (!s_ssl || SSL_set_fd(s_ssl, fd) != 1 || SSL_accept(s_ssl) != 1)
            _exit(1);
    }
    for (long i = 0; i < WARMUP + rounds; i++) {
        if (i == WARMUP) {
            /* the client says when the measurement starts */
            if (read(go_fd, &c, 1) != 1)
                _exit(1);
            t0 = s_cpu_ns();
        }
        if (s_recv(fd, buf, MSG) < 0 || s_send(fd, buf, MSG) < 0)
            _exit(1);
    }
    uint64_t used = s_cpu_ns() - t0;
    if (write(report_fd, &used, sizeof(used)) != sizeof(used))
        _exit(1);
    _exit(0);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 2 ? argv[1] : "";
    long rounds = argc > 2 ? atol(argv[2]) : 0;
    SSL_CTX *sctx = NULL, *cctx = NULL;
    int go[2], report[2];

    if (strcmp(mode, "off") && strcmp(mode, "traced") && strcmp(mode, "other")) {
        fprintf(stderr, "usage: netcost off|traced|other ROUNDS "
                        "[--tls CERT KEY]\n");
        return 2;
    }
    if (argc > 5 && !strcmp(argv[3], "--tls")) {
        sctx = SSL_CTX_new(TLS_server_method());
        cctx = SSL_CTX_new(TLS_client_method());
        if (!sctx || !cctx ||
            SSL_CTX_use_certificate_file(sctx, argv[4], SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_use_PrivateKey_file(sctx, argv[5], SSL_FILETYPE_PEM) != 1)
            return 1;
    }
    log_set_level(LOG_LVL_WARN);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(lfd, 4) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) < 0 || pipe(go) < 0 ||
        pipe(report) < 0)
        return 1;
    pid_t child = fork();
    if (child == 0)
        s_server(lfd, sctx, rounds, go[0], report[1]);

    /* Attached before the connection: both ends are seen from the start. */
    netcap_options_t o;
    netcap_options_default(&o);
    o.ring_bytes = 64u << 20;
    o.max_pending = 1u << 20;
    uint64_t counts[2] = { 0, 0 };
    netcap_t *cap = NULL;
    if (strcmp(mode, "off")) {
        cap = netcap_new(&o, NULL, s_count, counts);
        uint32_t pids[2] = { (uint32_t)getpid(), (uint32_t)child };
        uint32_t idle = 1;   /* init: asleep, no sockets to speak of */
        if (pids[0] > pids[1]) {
            uint32_t t = pids[0];
            pids[0] = pids[1];
            pids[1] = t;
        }
        if (!cap || (!strcmp(mode, "traced") ? netcap_set_pids(cap, pids, 2)
                                             : netcap_set_pids(cap, &idle, 1)))
            return 1;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return 1;
    if (cctx) {
        s_ssl = SSL_new(cctx);
        if (!s_ssl || SSL_set_fd(s_ssl, fd) != 1 || SSL_connect(s_ssl) != 1)
            return 1;
    }
    char buf[MSG];
    memset(buf, 'x', sizeof(buf));
    uint64_t t0 = 0;
    for (long i = 0; i < WARMUP + rounds; i++) {
        if (i == WARMUP) {
            t0 = s_cpu_ns();
            if (write(go[1], "g", 1) != 1)
                return 1;
        }
        if (s_send(fd, buf, MSG) < 0 || s_recv(fd, buf, MSG) < 0)
            return 1;
    }
    uint64_t mine = s_cpu_ns() - t0, theirs = 0;
    if (read(report[0], &theirs, sizeof(theirs)) != sizeof(theirs))
        return 1;
    waitpid(child, NULL, 0);
    if (cap) {
        netcap_drain(cap);
        netcap_flush(cap);
    }
    netcap_stats_t st = { 0 };
    if (cap)
        netcap_stats(cap, &st);
    printf("{\"mode\": \"%s\", \"tls\": %d, \"rounds\": %ld, "
           "\"ns_per_call\": %.1f, \"events\": %llu, \"lost\": %llu}\n",
           mode, sctx != NULL, rounds,
           (double)(mine + theirs) / (4.0 * (double)rounds),
           (unsigned long long)counts[0],
           (unsigned long long)(counts[1] + st.ring_lost));
    netcap_destroy(&cap);
    return 0;
}
