/* The stages' health server (lib/health_http.c), attacked the way a
 * client on its port would: each input is sent as one request over a real
 * connection to a server running in this process, then the client stops
 * writing and reads the answer. Any answer must be an HTTP/1.0 status
 * line; crashes, leaks and sanitizer reports surface in the server
 * thread. The input's start also feeds the listen-address parser. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "health_http.h"
#include "common/fuzz_http.h"
#include "stats.h"

static health_http_t *s_server;
static stats_t *s_stats;

static void s_stop(void)
{
    health_http_destroy(&s_server);
    stats_destroy(&s_stats);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_server) {
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

    (void)fuzz_http_exchange(health_http_port(s_server), data, size);
    return 0;
}
