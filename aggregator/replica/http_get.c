/* Minimal bounded HTTP GET (see http_get.h). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aggregator/replica/http_get.h"
#include "log.h"
#include "netio.h"

static int
s_split(const char *addr, char *host, size_t hlen, char *port, size_t plen)
{
    const char *colon;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return -1;
        snprintf(host, hlen, "%.*s", (int)(close - addr - 1), addr + 1);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || colon == addr)
            return -1;
        snprintf(host, hlen, "%.*s", (int)(colon - addr), addr);
    }
    if (!colon[1] || strlen(colon + 1) >= plen)
        return -1;
    snprintf(port, plen, "%s", colon + 1);
    return 0;
}

static int
s_connect(const char *addr, uint64_t deadline, char *err, size_t errlen)
{
    char host[256], port[16];
    struct addrinfo hints, *res = NULL;
    int fd = -1;
    if (s_split(addr, host, sizeof(host), port, sizeof(port))) {
        snprintf(err, errlen, "bad address '%s'", addr);
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc || !res) {
        snprintf(err, errlen, "cannot resolve %s: %s", addr,
                 gai_strerror(rc));
        return -1;
    }
    snprintf(err, errlen, "cannot connect to %s", addr);
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK
                                       | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            int w = netio_wait(fd, POLLOUT, -1, deadline);
            if (w == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0
                && soerr == 0)
                break;
            snprintf(err, errlen, "connect to %s: %s", addr,
                     w == NETIO_TIMEOUT ? "timed out"
                                        : strerror(soerr ? soerr : errno));
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int
agg_http_get(const char *addr, const char *path, const char *bearer,
             uint64_t timeout_ms, size_t max_body, int *status, char **body,
             size_t *len, char *err, size_t errlen)
{
    uint64_t deadline = now_mono_ms() + timeout_ms;
    char req[4096];
    char *buf = NULL;
    size_t used = 0, cap = 0, limit = max_body + AGG_HTTP_MAX_HEADER;
    int rc = -1;
    int with_token = bearer && *bearer;
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n"
                     "%s%s%sConnection: close\r\n\r\n", path, addr,
                     with_token ? "Authorization: Bearer " : "",
                     with_token ? bearer : "", with_token ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(req)) {
        snprintf(err, errlen, "request line too long");
        return -1;
    }
    int fd = s_connect(addr, deadline, err, errlen);
    if (fd < 0)
        return -1;
    if (netio_send_all(fd, req, (size_t)n, 0, -1, deadline) != 0) {
        snprintf(err, errlen, "send to %s: %s", addr,
                 errno == ETIMEDOUT ? "timed out" : strerror(errno));
        goto cleanup;
    }
    for (;;) {
        if (used + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : 16384;
            if (ncap > limit + 1)
                ncap = limit + 1;
            if (used + 1 >= ncap) {
                snprintf(err, errlen, "reply from %s over %zu bytes", addr,
                         limit);
                goto cleanup;
            }
            char *g = realloc(buf, ncap);
            if (!g) {
                snprintf(err, errlen, "out of memory");
                goto cleanup;
            }
            buf = g;
            cap = ncap;
        }
        ssize_t r = recv(fd, buf + used, cap - used - 1, 0);
        if (r > 0) {
            used += (size_t)r;
            continue;
        }
        if (r == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            int w = netio_wait(fd, POLLIN, -1, deadline);
            if (w == NETIO_READY)
                continue;
            snprintf(err, errlen, "reply from %s: %s", addr,
                     w == NETIO_TIMEOUT ? "timed out" : strerror(errno));
            goto cleanup;
        }
        snprintf(err, errlen, "recv from %s: %s", addr, strerror(errno));
        goto cleanup;
    }
    if (!buf) {
        snprintf(err, errlen, "empty reply from %s", addr);
        goto cleanup;
    }
    buf[used] = '\0';
    int code = 0;
    if (sscanf(buf, "HTTP/1.%*1[01] %3d", &code) != 1 || code < 100
        || code > 599) {
        snprintf(err, errlen, "no HTTP status line from %s", addr);
        goto cleanup;
    }
    char *hend = memmem(buf, used, "\r\n\r\n", 4);
    if (!hend || (size_t)(hend - buf) > AGG_HTTP_MAX_HEADER) {
        snprintf(err, errlen, "bad header from %s", addr);
        goto cleanup;
    }
    size_t hlen = (size_t)(hend - buf) + 4;
    size_t blen = used - hlen;
    /* A connection cut short is a failure, not a smaller answer. */
    for (char *line = strstr(buf, "\r\n"); line && line < hend;
         line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Length:", 15) == 0) {
            unsigned long long cl = strtoull(line + 17, NULL, 10);
            if (cl != blen) {
                snprintf(err, errlen, "reply from %s cut short (%zu of "
                         "%llu bytes)", addr, blen, cl);
                goto cleanup;
            }
        }
    }
    if (blen > max_body) {
        snprintf(err, errlen, "reply from %s over %zu bytes", addr, max_body);
        goto cleanup;
    }
    char *out = malloc(blen + 1);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        goto cleanup;
    }
    memcpy(out, buf + hlen, blen);
    out[blen] = '\0';
    *body = out;
    *len = blen;
    *status = code;
    rc = 0;
cleanup:
    free(buf);
    close(fd);
    return rc;
}
