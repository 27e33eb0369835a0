/* The per-stage /metrics and /healthz endpoint: a deliberately small
 * HTTP/1.0 server on a plain socket.
 *
 * Why not libmicrohttpd: it links gnutls, p11-kit, nettle, gmp, idn2 and
 * friends into every stage, about 2.5 MiB of resident library pages per
 * process, for two GET routes. The aggregator keeps libmicrohttpd for its
 * real API.
 *
 * Why a thread of its own: /healthz must keep answering while the stage
 * loop is hung, so a probe can see the beat go stale (503) instead of a
 * connection timeout that looks like a dead process.
 *
 * Why one connection at a time: the clients are a Prometheus scraper and a
 * liveness probe. Each connection is bounded in bytes (HEALTH_HEAD_MAX) and
 * time (HEALTH_IO_TIMEOUT_MS), so a client that connects and stays silent
 * delays the next one by at most that timeout and never stalls the stage. */
#include "health_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "netio.h"

#define HEALTH_STALE_MS 30000
/* Request line plus headers, blank line included. */
#define HEALTH_HEAD_MAX 8192
/* Budget for reading one request, and again for writing its response. */
#define HEALTH_IO_TIMEOUT_MS 2000
/* After answering, we read (and discard) what the client still sends so
 * closing does not turn into a RST that destroys the response in flight
 * (e.g. after a 431 with the rest of a huge header still arriving). */
#define HEALTH_DRAIN_MAX (64 * 1024)
#define HEALTH_DRAIN_MS 1000
#define HEALTH_BACKLOG 8
/* Pause after an accept() failure such as EMFILE, which would otherwise
 * make the listening socket poll readable in a busy loop. */
#define HEALTH_ACCEPT_BACKOFF_MS 100

struct health_http {
    stats_t *stats;
    uint64_t last_beat_ms;  /* atomic: written by the stage loop */
    uint64_t stale_ms;      /* atomic */
    int listen_fd;
    int wake_fd;            /* eventfd: destroy() makes it readable */
    uint16_t port;
    pthread_t thread;
    bool thread_started;
};

/* What s_read_head() got. */
enum { HEAD_COMPLETE, HEAD_TOO_LARGE, HEAD_TIMEOUT, HEAD_GONE };

static log_ratelimit_t s_io_rl = LOG_RATELIMIT_INIT(5, 60000);

int health_http_parse_addr(const char *addr, struct sockaddr_in *out)
{
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    char host[64] = "";
    const char *colon = strrchr(addr, ':');
    const char *port_s = colon ? colon + 1 : addr;
    if (colon) {
        size_t hl = (size_t)(colon - addr);
        if (hl >= sizeof host)
            return -1;
        memcpy(host, addr, hl);
        host[hl] = '\0';
    }
    char *end;
    long port = strtol(port_s, &end, 10);
    if (*port_s == '\0' || *end || port < 0 || port > 65535)
        return -1;
    out->sin_port = htons((uint16_t)port);
    if (!host[0] || strcmp(host, "*") == 0)
        out->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
        out->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
        return -1;
    return 0;
}

/* netio_wait with destroy()'s wake-up: stopping ends any wait. */
static int s_wait(health_http_t *self, int fd, short events,
                  uint64_t deadline_ms)
{
    return netio_wait(fd, events, self->wake_fd, deadline_ms);
}

/* Reads the request head (up to and including the blank line) into buf,
 * which holds HEALTH_HEAD_MAX bytes plus a terminating NUL. */
static int s_read_head(health_http_t *self, int fd, char *buf, size_t *len,
                       uint64_t deadline_ms)
{
    int result = HEAD_GONE;
    size_t used = 0;
    buf[0] = '\0';
    for (;;) {
        if (used == HEALTH_HEAD_MAX) {
            result = HEAD_TOO_LARGE;
            break;
        }
        ssize_t n = recv(fd, buf + used, HEALTH_HEAD_MAX - used, 0);
        if (n == 0)
            break;  /* closed before the head was complete */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                break;
            int w = s_wait(self, fd, POLLIN, deadline_ms);
            if (w == NETIO_READY)
                continue;
            result = w == NETIO_TIMEOUT ? HEAD_TIMEOUT : HEAD_GONE;
            break;
        }
        /* Look for the end of the head only where it can have appeared:
         * the new bytes and the three before them. */
        size_t from = used > 3 ? used - 3 : 0;
        used += (size_t)n;
        buf[used] = '\0';
        if (memmem(buf + from, used - from, "\r\n\r\n", 4) ||
            memmem(buf + from, used - from, "\n\n", 2)) {
            result = HEAD_COMPLETE;
            break;
        }
    }
    *len = used;
    return result;
}

/* RFC 9110 token characters, the alphabet of a method name. */
static bool s_is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Parses "METHOD SP /target SP HTTP/d.d" ending in CRLF or LF. Returns 0
 * with method and path (query string cut off) pointing into head, or the
 * HTTP status to answer a malformed line with. */
static int s_parse_request_line(const char *head, size_t len,
                                const char **method, size_t *method_len,
                                const char **path, size_t *path_len)
{
    const char *eol = memchr(head, '\n', len);
    if (!eol)
        return 400;
    size_t line_len = (size_t)(eol - head);
    if (line_len > 0 && head[line_len - 1] == '\r')
        line_len--;
    const char *p = head, *end = head + line_len;

    const char *m = p;
    while (p < end && s_is_tchar((unsigned char)*p))
        p++;
    if (p == m || p == end || *p != ' ')
        return 400;
    *method = m;
    *method_len = (size_t)(p - m);
    p++;

    const char *t = p;
    if (p == end || *p != '/')
        return 400;
    while (p < end && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f)
        p++;
    if (p == end || *p != ' ')
        return 400;
    const char *q = memchr(t, '?', (size_t)(p - t));
    *path = t;
    *path_len = (size_t)((q ? q : p) - t);
    p++;

    if (end - p != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' ||
        p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
        return 400;
    if (p[5] != '1')
        return 505;
    return 0;
}

static const char *s_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

static int s_respond(health_http_t *self, int fd, int status,
                     const char *type, const char *body, size_t len,
                     bool head_only)
{
    uint64_t deadline = now_mono_ms() + HEALTH_IO_TIMEOUT_MS;
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.0 %d %s\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
                      status, s_reason(status), type, len,
                      status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (hl < 0 || (size_t)hl >= sizeof head)
        return -1;
    bool with_body = !head_only && len > 0;
    /* MSG_MORE keeps head and body in one segment: two small writes would
     * meet Nagle and the client's delayed ACK. */
    if (netio_send_all(fd, head, (size_t)hl, with_body ? MSG_MORE : 0,
                       self->wake_fd, deadline) != 0)
        return -1;
    if (with_body &&
        netio_send_all(fd, body, len, 0, self->wake_fd, deadline) != 0)
        return -1;
    return 0;
}

static int s_respond_text(health_http_t *self, int fd, int status,
                          const char *text, bool head_only)
{
    return s_respond(self, fd, status, "text/plain", text, strlen(text),
                     head_only);
}

static int s_serve_metrics(health_http_t *self, int fd, bool head_only)
{
    size_t len = 0;
    char *text = self->stats ? stats_render(self->stats, &len) : strdup("");
    if (!text)
        return s_respond_text(self, fd, 500, "out of memory\n", head_only);
    int rc = s_respond(self, fd, 200, "text/plain; version=0.0.4", text,
                       len, head_only);
    free(text);
    return rc;
}

static int s_serve_healthz(health_http_t *self, int fd, bool head_only)
{
    uint64_t beat = __atomic_load_n(&self->last_beat_ms, __ATOMIC_RELAXED);
    uint64_t stale = __atomic_load_n(&self->stale_ms, __ATOMIC_RELAXED);
    uint64_t now = now_mono_ms();
    if (now > beat && now - beat > stale)
        return s_respond_text(self, fd, 503, "stage loop stalled\n",
                              head_only);
    return s_respond_text(self, fd, 200, "ok\n", head_only);
}

/* Reads what the client still sends, bounded in bytes and time, so that
 * close() sends a FIN behind our response instead of a RST. */
static void s_drain(health_http_t *self, int fd)
{
    shutdown(fd, SHUT_WR);
    uint64_t deadline = now_mono_ms() + HEALTH_DRAIN_MS;
    size_t drained = 0;
    char sink[4096];
    while (drained < HEALTH_DRAIN_MAX) {
        ssize_t n = recv(fd, sink, sizeof sink, 0);
        if (n > 0) {
            drained += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            s_wait(self, fd, POLLIN, deadline) == NETIO_READY)
            continue;
        break;  /* EOF, error, timeout or stopping */
    }
}

/* One request, one response. */
static void s_handle(health_http_t *self, int fd)
{
    char head[HEALTH_HEAD_MAX + 1];
    size_t len = 0;
    int got = s_read_head(self, fd, head, &len,
                          now_mono_ms() + HEALTH_IO_TIMEOUT_MS);
    if (got == HEAD_GONE || (got == HEAD_TIMEOUT && len == 0))
        return;  /* nothing worth an answer */
    if (got == HEAD_TIMEOUT) {
        s_respond_text(self, fd, 408, "request timeout\n", false);
        goto cleanup;
    }
    if (got == HEAD_TOO_LARGE) {
        s_respond_text(self, fd, 431, "request head too large\n", false);
        goto cleanup;
    }

    const char *method, *path;
    size_t method_len, path_len;
    int bad = s_parse_request_line(head, len, &method, &method_len, &path,
                                   &path_len);
    if (bad) {
        s_respond_text(self, fd, bad, "bad request\n", false);
        goto cleanup;
    }
    bool is_get = method_len == 3 && memcmp(method, "GET", 3) == 0;
    bool is_head = method_len == 4 && memcmp(method, "HEAD", 4) == 0;
    if (!is_get && !is_head)
        s_respond_text(self, fd, 405, "method not allowed\n", false);
    else if (path_len == 8 && memcmp(path, "/metrics", 8) == 0)
        s_serve_metrics(self, fd, is_head);
    else if (path_len == 8 && memcmp(path, "/healthz", 8) == 0)
        s_serve_healthz(self, fd, is_head);
    else
        s_respond_text(self, fd, 404, "not found\n", is_head);
cleanup:
    s_drain(self, fd);
}

static void *s_serve(void *arg)
{
    health_http_t *self = arg;
    for (;;) {
        struct pollfd pfd[2] = {
            {.fd = self->listen_fd, .events = POLLIN},
            {.fd = self->wake_fd, .events = POLLIN},
        };
        int n = poll(pfd, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            log_error("http: poll: %s", strerror(errno));
            break;
        }
        if (pfd[1].revents)
            break;
        if (!pfd[0].revents)
            continue;
        int fd = accept4(self->listen_fd, NULL, NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED)
                continue;
            log_warn_rl(&s_io_rl, "http: accept: %s", strerror(errno));
            if (s_wait(self, -1, 0, now_mono_ms() +
                                        HEALTH_ACCEPT_BACKOFF_MS) == NETIO_STOP)
                break;
            continue;
        }
        s_handle(self, fd);
        close(fd);
    }
    return NULL;
}

health_http_t *health_http_new(const char *addr, stats_t *stats)
{
    health_http_t *self = NULL;
    struct sockaddr_in sa;
    if (health_http_parse_addr(addr, &sa) != 0) {
        log_error("http: bad listen address '%s' (want host:port)", addr);
        goto fail;
    }
    self = calloc(1, sizeof *self);
    if (!self) {
        log_error("http: out of memory");
        goto fail;
    }
    self->listen_fd = -1;
    self->wake_fd = -1;
    self->stats = stats;
    self->last_beat_ms = now_mono_ms();
    self->stale_ms = HEALTH_STALE_MS;

    self->listen_fd =
        socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (self->listen_fd < 0) {
        log_error("http: socket: %s", strerror(errno));
        goto fail;
    }
    int one = 1;
    setsockopt(self->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(self->listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(self->listen_fd, HEALTH_BACKLOG) != 0) {
        log_error("http: cannot listen on %s: %s", addr, strerror(errno));
        goto fail;
    }
    struct sockaddr_in bound;
    socklen_t bound_len = sizeof bound;
    if (getsockname(self->listen_fd, (struct sockaddr *)&bound,
                    &bound_len) != 0) {
        log_error("http: getsockname: %s", strerror(errno));
        goto fail;
    }
    self->port = ntohs(bound.sin_port);

    self->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->wake_fd < 0) {
        log_error("http: eventfd: %s", strerror(errno));
        goto fail;
    }

    /* The thread starts with every signal blocked so process signals keep
     * going to the stage loop (its signalfd), never to this thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&self->thread, NULL, s_serve, self);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        log_error("http: thread: %s", strerror(err));
        goto fail;
    }
    self->thread_started = true;
    log_info("http: /metrics and /healthz on %s (port %u)", addr,
             (unsigned)self->port);
    return self;
fail:
    health_http_destroy(&self);
    return NULL;
}

void health_http_destroy(health_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    health_http_t *self = *self_p;
    if (self->thread_started) {
        /* Adding 1 to a fresh eventfd cannot fail (only an overflowing
         * counter would), and joining is what makes freeing safe. */
        uint64_t one = 1;
        if (write(self->wake_fd, &one, sizeof one) != (ssize_t)sizeof one)
            log_error("http: waking the server thread: %s", strerror(errno));
        pthread_join(self->thread, NULL);
    }
    if (self->listen_fd >= 0)
        close(self->listen_fd);
    if (self->wake_fd >= 0)
        close(self->wake_fd);
    free(self);
    *self_p = NULL;
}

void health_http_beat(health_http_t *self)
{
    if (self)
        __atomic_store_n(&self->last_beat_ms, now_mono_ms(), __ATOMIC_RELAXED);
}

void health_http_set_stale_ms(health_http_t *self, uint64_t stale_ms)
{
    if (self)
        __atomic_store_n(&self->stale_ms, stale_ms, __ATOMIC_RELAXED);
}

int health_http_port(const health_http_t *self)
{
    return self ? (int)self->port : -1;
}
