/* The stages' health server (lib/health_http.c), attacked the way a
 * client on its port would: each input is sent as one request over a real
 * connection to a server running in this process, then the client stops
 * writing and reads the answer. Any answer must be an HTTP/1.0 status
 * line; crashes, leaks and sanitizer reports surface in the server
 * thread. The first input byte also feeds the listen-address parser. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "health_http.h"
#include "log.h"
#include "stats.h"

static health_http_t *s_server;
static stats_t *s_stats;

static void s_stop(void)
{
    health_http_destroy(&s_server);
    stats_destroy(&s_stats);
}

static int s_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_server) {
        log_init("fuzz", LOG_LVL_ERROR);
        s_stats = stats_new("fuzz", "0");
        s_server = health_http_new("127.0.0.1:0", s_stats);
        if (!s_server)
            abort();
        atexit(s_stop);
    }
    /* The address parser, on a NUL-terminated copy of a prefix. */
    char addr[80];
    size_t alen = size < sizeof addr - 1 ? size : sizeof addr - 1;
    memcpy(addr, data, alen);
    addr[alen] = '\0';
    struct sockaddr_in sa;
    (void)health_http_parse_addr(addr, &sa);

    int fd = s_connect(health_http_port(s_server));
    if (fd < 0)
        return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;          /* the server may answer and close early */
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    char reply[4096], head[16];
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, reply, sizeof reply, 0);
        if (n <= 0)
            break;
        if (got < sizeof head)
            memcpy(head + got, reply,
                   (size_t)n < sizeof head - got ? (size_t)n
                                                 : sizeof head - got);
        got += (size_t)n;
    }
    if (got > 0 && (got < 9 || memcmp(head, "HTTP/1.0 ", 9) != 0))
        __builtin_trap();   /* whatever comes back is an HTTP answer */
    close(fd);
    return 0;
}
