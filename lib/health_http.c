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
 * Why many connections at once: anyone who reaches the port can connect
 * and stay silent, and a liveness probe must still get its answer within
 * its own timeout (1 s by default in Kubernetes). The thread polls up to
 * HEALTH_MAX_CONNS connections, each a small state machine (read the
 * head, write the response, drain) with its own deadline
 * (HEALTH_IO_TIMEOUT_MS per phase) and bounded in bytes (HEALTH_HEAD_MAX);
 * when every slot is taken, the connection that has waited longest for
 * its request is closed to let the new one in (counted as
 * http_evicted_total). */
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

#include "hostport.h"
#include "log.h"

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
#define HEALTH_BACKLOG 64
#define HEALTH_MAX_CONNS 32
/* Pause after an accept() failure such as EMFILE, which would otherwise
 * make the listening socket poll readable in a busy loop. */
#define HEALTH_ACCEPT_BACKOFF_MS 100

enum { CONN_READ, CONN_WRITE, CONN_DRAIN };

typedef struct {
    int fd;                 /* -1 = free slot */
    int phase;
    uint64_t since_ms;      /* accepted at */
    uint64_t deadline_ms;   /* of the current phase */
    char *head;             /* HEALTH_HEAD_MAX + 1 */
    size_t used;
    char *out;              /* the whole response */
    size_t out_len, out_off;
    size_t drained;
} conn_t;

struct health_http {
    stats_t *stats;
    uint64_t last_beat_ms;  /* atomic: written by the stage loop */
    uint64_t stale_ms;      /* atomic */
    int listen_fd;
    int wake_fd;            /* eventfd: destroy() makes it readable */
    uint16_t port;
    pthread_t thread;
    bool thread_started;
    uint64_t accept_pause_until;
    stats_metric_t *m_evicted;
    conn_t conns[HEALTH_MAX_CONNS];
};

/* What s_read_head() got (HEAD_TIMEOUT: nothing more yet). */
enum { HEAD_COMPLETE, HEAD_TOO_LARGE, HEAD_TIMEOUT, HEAD_GONE };

static log_ratelimit_t s_io_rl = LOG_RATELIMIT_INIT(5, 60000);

int health_http_parse_addr(const char *addr, struct sockaddr_in *out)
{
    int rc = -1;
    hostport_t hp;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    if (hostport_parse(addr, HOSTPORT_BARE_PORT, &hp, NULL, 0) != 0)
        goto cleanup;
    out->sin_port = htons(hp.port);
    if (!hp.host[0] || strcmp(hp.host, "*") == 0)
        out->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(hp.host, "localhost") == 0)
        out->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, hp.host, &out->sin_addr) != 1)
        goto cleanup;
    rc = 0;
cleanup:
    return rc;
}

/* Reads what has arrived of the request head (up to and including the
 * blank line) without blocking. HEAD_TIMEOUT here means "wait for more". */
static int s_read_head(conn_t *c)
{
    for (;;) {
        if (c->used == HEALTH_HEAD_MAX)
            return HEAD_TOO_LARGE;
        ssize_t n = recv(c->fd, c->head + c->used, HEALTH_HEAD_MAX - c->used,
                         0);
        if (n == 0)
            return HEAD_GONE;  /* closed before the head was complete */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? HEAD_TIMEOUT
                                                           : HEAD_GONE;
        }
        /* Look for the end of the head only where it can have appeared:
         * the new bytes and the three before them. */
        size_t from = c->used > 3 ? c->used - 3 : 0;
        c->used += (size_t)n;
        c->head[c->used] = '\0';
        if (memmem(c->head + from, c->used - from, "\r\n\r\n", 4) ||
            memmem(c->head + from, c->used - from, "\n\n", 2))
            return HEAD_COMPLETE;
    }
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

/* Puts the whole response (head and body) in c->out and turns the
 * connection to writing it. */
static void s_respond(conn_t *c, int status, const char *type,
                      const char *body, size_t len, bool head_only)
{
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.0 %d %s\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
                      status, s_reason(status), type, len,
                      status == 405 ? "Allow: GET, HEAD\r\n" : "");
    size_t blen = head_only ? 0 : len;
    c->phase = CONN_WRITE;
    c->deadline_ms = now_mono_ms() + HEALTH_IO_TIMEOUT_MS;
    c->out_off = 0;
    c->out = hl > 0 ? malloc((size_t)hl + blen) : NULL;
    if (!c->out) {
        c->out_len = 0;  /* nothing to send: goes straight to closing */
        return;
    }
    memcpy(c->out, head, (size_t)hl);
    if (blen)
        memcpy(c->out + hl, body, blen);
    c->out_len = (size_t)hl + blen;
}

static void s_respond_text(conn_t *c, int status, const char *text,
                           bool head_only)
{
    s_respond(c, status, "text/plain", text, strlen(text), head_only);
}

static void s_serve_metrics(health_http_t *self, conn_t *c, bool head_only)
{
    size_t len = 0;
    char *text = self->stats ? stats_render(self->stats, &len) : strdup("");
    if (!text) {
        s_respond_text(c, 500, "out of memory\n", head_only);
        return;
    }
    s_respond(c, 200, "text/plain; version=0.0.4", text, len, head_only);
    free(text);
}

static void s_serve_healthz(health_http_t *self, conn_t *c, bool head_only)
{
    uint64_t beat = __atomic_load_n(&self->last_beat_ms, __ATOMIC_RELAXED);
    uint64_t stale = __atomic_load_n(&self->stale_ms, __ATOMIC_RELAXED);
    uint64_t now = now_mono_ms();
    if (now > beat && now - beat > stale)
        s_respond_text(c, 503, "stage loop stalled\n", head_only);
    else
        s_respond_text(c, 200, "ok\n", head_only);
}

/* A complete head: route it. */
static void s_answer(health_http_t *self, conn_t *c)
{
    const char *method, *path;
    size_t method_len, path_len;
    int bad = s_parse_request_line(c->head, c->used, &method, &method_len,
                                   &path, &path_len);
    if (bad) {
        s_respond_text(c, bad, "bad request\n", false);
        return;
    }
    bool is_get = method_len == 3 && memcmp(method, "GET", 3) == 0;
    bool is_head = method_len == 4 && memcmp(method, "HEAD", 4) == 0;
    if (!is_get && !is_head)
        s_respond_text(c, 405, "method not allowed\n", false);
    else if (path_len == 8 && memcmp(path, "/metrics", 8) == 0)
        s_serve_metrics(self, c, is_head);
    else if (path_len == 8 && memcmp(path, "/healthz", 8) == 0)
        s_serve_healthz(self, c, is_head);
    else
        s_respond_text(c, 404, "not found\n", is_head);
}

static void s_close(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->head);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

/* After the response: read (and discard) what the client still sends,
 * bounded in bytes and time, so that close() sends a FIN behind the
 * response instead of a RST. */
static void s_start_drain(conn_t *c)
{
    shutdown(c->fd, SHUT_WR);
    c->phase = CONN_DRAIN;
    c->deadline_ms = now_mono_ms() + HEALTH_DRAIN_MS;
}

static void s_on_read(health_http_t *self, conn_t *c)
{
    int got = s_read_head(c);
    if (got == HEAD_TIMEOUT)
        return;  /* more to come */
    if (got == HEAD_GONE)
        s_close(c);
    else if (got == HEAD_TOO_LARGE)
        s_respond_text(c, 431, "request head too large\n", false);
    else
        s_answer(self, c);
}

static void s_on_write(conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;  /* the socket buffer is full: wait for room */
        s_close(c);
        return;
    }
    s_start_drain(c);
}

static void s_on_drain(conn_t *c)
{
    char sink[4096];
    for (;;) {
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        if (n > 0) {
            c->drained += (size_t)n;
            if (c->drained >= HEALTH_DRAIN_MAX)
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        break;  /* EOF or error */
    }
    s_close(c);
}

/* Progress on one connection whose socket is ready. */
static void s_on_ready(health_http_t *self, conn_t *c)
{
    if (c->phase == CONN_READ)
        s_on_read(self, c);
    if (c->fd >= 0 && c->phase == CONN_WRITE)
        s_on_write(c);
    else if (c->fd >= 0 && c->phase == CONN_DRAIN)
        s_on_drain(c);
}

/* A connection whose deadline passed: a client that stopped mid-request
 * gets a 408, a silent one or one that does not read is closed. */
static void s_on_deadline(health_http_t *self, conn_t *c)
{
    if (c->phase == CONN_READ && c->used > 0) {
        s_respond_text(c, 408, "request timeout\n", false);
        s_on_ready(self, c);
        return;
    }
    s_close(c);
}

/* A free slot for a new connection; when all are taken, the one that has
 * waited longest for its request gives way (then the oldest of all), so
 * a probe is always let in however many clients sit idle. */
static conn_t *s_slot(health_http_t *self)
{
    conn_t *oldest = NULL;
    for (size_t i = 0; i < HEALTH_MAX_CONNS; i++) {
        conn_t *c = &self->conns[i];
        if (c->fd < 0)
            return c;
        bool better = !oldest ||
                      (c->phase == CONN_READ) > (oldest->phase == CONN_READ) ||
                      ((c->phase == CONN_READ) == (oldest->phase == CONN_READ) &&
                       c->since_ms < oldest->since_ms);
        if (better)
            oldest = c;
    }
    stats_inc(self->m_evicted);
    s_close(oldest);
    return oldest;
}

static void s_accept(health_http_t *self)
{
    for (int i = 0; i < HEALTH_MAX_CONNS; i++) {
        int fd = accept4(self->listen_fd, NULL, NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED)
                return;
            log_warn_rl(&s_io_rl, "http: accept: %s", strerror(errno));
            /* e.g. EMFILE: the listening socket stays readable; pause. */
            self->accept_pause_until = now_mono_ms() +
                                       HEALTH_ACCEPT_BACKOFF_MS;
            return;
        }
        char *head = malloc(HEALTH_HEAD_MAX + 1);
        if (!head) {
            close(fd);
            return;
        }
        conn_t *c = s_slot(self);
        c->fd = fd;
        c->head = head;
        c->head[0] = '\0';
        c->phase = CONN_READ;
        c->since_ms = now_mono_ms();
        c->deadline_ms = c->since_ms + HEALTH_IO_TIMEOUT_MS;
    }
}

static void *s_serve(void *arg)
{
    health_http_t *self = arg;
    struct pollfd pfd[2 + HEALTH_MAX_CONNS];
    conn_t *which[2 + HEALTH_MAX_CONNS];
    for (;;) {
        uint64_t now = now_mono_ms();
        uint64_t next = UINT64_MAX;
        nfds_t n = 0;
        pfd[n++] = (struct pollfd){.fd = self->wake_fd, .events = POLLIN};
        bool accepting = now >= self->accept_pause_until;
        if (accepting)
            pfd[n++] = (struct pollfd){.fd = self->listen_fd,
                                       .events = POLLIN};
        else
            next = self->accept_pause_until;
        for (size_t i = 0; i < HEALTH_MAX_CONNS; i++) {
            conn_t *c = &self->conns[i];
            if (c->fd < 0)
                continue;
            if (c->deadline_ms < next)
                next = c->deadline_ms;
            which[n] = c;
            pfd[n++] = (struct pollfd){
                .fd = c->fd,
                .events = c->phase == CONN_WRITE ? POLLOUT : POLLIN};
        }
        int timeout = next == UINT64_MAX ? -1
                      : next <= now     ? 0
                                        : (int)(next - now);
        int ready = poll(pfd, n, timeout);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0) {
            log_error("http: poll: %s", strerror(errno));
            break;
        }
        if (pfd[0].revents)
            break;
        nfds_t first = accepting ? 2 : 1;
        for (nfds_t i = first; i < n; i++)
            if (pfd[i].revents && which[i]->fd == pfd[i].fd)
                s_on_ready(self, which[i]);
        now = now_mono_ms();
        for (size_t i = 0; i < HEALTH_MAX_CONNS; i++) {
            conn_t *c = &self->conns[i];
            if (c->fd >= 0 && c->deadline_ms <= now)
                s_on_deadline(self, c);
        }
        /* Accepting last: a slot freed above is reused at once. */
        if (accepting && pfd[1].revents)
            s_accept(self);
    }
    for (size_t i = 0; i < HEALTH_MAX_CONNS; i++)
        s_close(&self->conns[i]);
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
    for (size_t i = 0; i < HEALTH_MAX_CONNS; i++)
        self->conns[i].fd = -1;
    if (stats)
        self->m_evicted = stats_counter(stats, "http_evicted_total", "",
                                        "health/metrics connections closed "
                                        "unanswered to make room");
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
