/* httpload: a small HTTP/1.1 server and client over TCP, for the network
 * capture and analysis tests and benches (issue 14). Plain sockets, one
 * request at a time per connection, keep-alive by default.
 *
 *   httpload server [PORT]
 *       Listens on 127.0.0.1:PORT (0 or absent: any free port), prints
 *       "port N" on stdout, and serves until killed, one connection at a
 *       time in this process (the tests' clients are sequential; a traced
 *       server is one process). Endpoints:
 *         /ok            200, "hello\n" with Content-Length
 *         /chunked       200, a chunked body of three chunks ("abc", "defgh",
 *                        "ij\n")
 *         /slow?ms=N     200 after N ms (default 200)
 *         /error         500, "boom\n"
 *         /echo          200, the request body back (Content-Length)
 *         anything else  404
 *       "Connection: close" in a request closes after the response.
 *       --tls CERT KEY: TLS on every connection (OpenSSL; the server reads
 *       and writes with SSL_read_ex/SSL_write_ex, as Python's ssl does).
 *
 *   httpload client PORT [options] PATH...
 *       Connects to 127.0.0.1:PORT and sends "GET PATH" for each PATH in
 *       turn on one keep-alive connection, reading each whole response
 *       (Content-Length or chunked). Options:
 *         --rounds N     the PATH list N times (default 1)
 *         --conns N      N connections one after the other (default 1)
 *         --post N       POST /echo with an N-byte body instead of GETs
 *         --hold         connect, print "connected" and wait for a line on
 *                        stdin before the first request (a connection that
 *                        exists before a tracer starts)
 *         --send-only N  write N bytes of junk (not HTTP) and close
 *         --tls          TLS without certificate checks (SSL_write and
 *                        SSL_read, as curl does)
 *       Prints "requests N bytes_out N bytes_in N status2xx N status5xx N"
 *       and exits 0 when every response arrived.
 *
 * Requests are exactly "GET <path> HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
 * (and for POST a Content-Length header and the body of 'x's), so a test
 * can compare captured payloads with what was sent. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUF_MAX (1 << 20)

/* The TLS session of the connection being served or used, NULL: plain. */
static SSL *s_ssl;
static int s_server_side;

static ssize_t s_io_write(int fd, const char *p, size_t n)
{
    size_t done = 0;

    if (!s_ssl)
        return write(fd, p, n);
    if (!s_server_side)
        return SSL_write(s_ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
    return SSL_write_ex(s_ssl, p, n, &done) == 1 ? (ssize_t)done : -1;
}

static ssize_t s_io_read(int fd, char *p, size_t n)
{
    size_t done = 0;

    if (!s_ssl)
        return read(fd, p, n);
    if (!s_server_side)
        return SSL_read(s_ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
    return SSL_read_ex(s_ssl, p, n, &done) == 1 ? (ssize_t)done : -1;
}

static int s_write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = s_io_write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ------------------------------------------------------------ parsing */

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} buf_t;

static long s_bytes_in;   /* every byte read from a socket */

static int s_fill(int fd, buf_t *b)
{
    if (b->len == b->cap)
        return -1;
    ssize_t r = s_io_read(fd, b->data + b->len, b->cap - b->len);
    if (r <= 0)
        return -1;
    b->len += (size_t)r;
    s_bytes_in += r;
    return 0;
}

static void s_consume(buf_t *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

/* Reads one message head (up to the blank line); returns its length. */
static ssize_t s_read_head(int fd, buf_t *b)
{
    for (;;) {
        char *end = memmem(b->data, b->len, "\r\n\r\n", 4);
        if (end)
            return end + 4 - b->data;
        if (s_fill(fd, b) < 0)
            return -1;
    }
}

static long s_header_long(const char *head, size_t hlen, const char *name)
{
    size_t nlen = strlen(name);
    for (const char *p = head; p && p < head + hlen;) {
        const char *eol = memmem(p, (size_t)(head + hlen - p), "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > nlen && !strncasecmp(p, name, nlen) &&
            p[nlen] == ':')
            return strtol(p + nlen + 1, NULL, 10);
        p = eol + 2;
    }
    return -1;
}

static int s_header_has(const char *head, size_t hlen, const char *text)
{
    return memmem(head, hlen, text, strlen(text)) != NULL;
}

/* Reads a body of n bytes (they may already be in b); consumes it. */
static int s_read_body(int fd, buf_t *b, size_t n, buf_t *out)
{
    while (b->len < n)
        if (s_fill(fd, b) < 0)
            return -1;
    if (out) {
        memcpy(out->data, b->data, n < out->cap ? n : out->cap);
        out->len = n < out->cap ? n : out->cap;
    }
    s_consume(b, n);
    return 0;
}

static int s_read_chunked(int fd, buf_t *b)
{
    for (;;) {
        char *eol;
        while (!(eol = memmem(b->data, b->len, "\r\n", 2)))
            if (s_fill(fd, b) < 0)
                return -1;
        size_t size = strtoul(b->data, NULL, 16);
        s_consume(b, (size_t)(eol + 2 - b->data));
        if (s_read_body(fd, b, size + 2, NULL) < 0)
            return -1;
        if (size == 0)
            return 0;
    }
}

/* A TLS session on fd (server or client side), or NULL. */
static SSL *s_tls_start(SSL_CTX *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);

    if (!ssl || SSL_set_fd(ssl, fd) != 1 ||
        (s_server_side ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) {
        ERR_print_errors_fp(stderr);
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

static void s_tls_end(void)
{
    if (!s_ssl)
        return;
    SSL_shutdown(s_ssl);
    SSL_free(s_ssl);
    s_ssl = NULL;
}

/* ------------------------------------------------------------- server */

/* Head and body are two writes (a test sees both): without TCP_NODELAY
 * Nagle holds the body until the peer's delayed ACK, ~40 ms a request on a
 * keep-alive connection, and the load could not go past ~25 requests/s. */
static void s_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void s_respond(int fd, int status, const char *body, size_t blen,
                      int close_after)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                     status == 200 ? "OK" : status == 500
                                                ? "Internal Server Error"
                                                : "Not Found",
                     blen, close_after ? "Connection: close\r\n" : "");
    if (s_write_all(fd, head, (size_t)n) == 0 && blen)
        s_write_all(fd, body, blen);
}

static void s_serve(int fd)
{
    buf_t b = { malloc(BUF_MAX), 0, BUF_MAX };
    buf_t body = { malloc(BUF_MAX), 0, BUF_MAX };

    while (b.data && body.data) {
        ssize_t hlen = s_read_head(fd, &b);
        if (hlen < 0)
            break;
        char method[16] = "", path[1024] = "";
        sscanf(b.data, "%15s %1023s", method, path);
        long clen = s_header_long(b.data, (size_t)hlen, "Content-Length");
        int close_after = s_header_has(b.data, (size_t)hlen,
                                       "Connection: close");
        s_consume(&b, (size_t)hlen);
        body.len = 0;
        if (clen > 0 && s_read_body(fd, &b, (size_t)clen, &body) < 0)
            break;
        if (!strcmp(path, "/ok")) {
            s_respond(fd, 200, "hello\n", 6, close_after);
        } else if (!strcmp(path, "/chunked")) {
            static const char r[] =
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                "3\r\nabc\r\n5\r\ndefgh\r\n3\r\nij\n\r\n0\r\n\r\n";
            s_write_all(fd, r, sizeof(r) - 1);
        } else if (!strncmp(path, "/slow", 5)) {
            const char *q = strstr(path, "ms=");
            long ms = q ? strtol(q + 3, NULL, 10) : 200;
            struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
            nanosleep(&ts, NULL);
            s_respond(fd, 200, "slow\n", 5, close_after);
        } else if (!strcmp(path, "/error")) {
            s_respond(fd, 500, "boom\n", 5, close_after);
        } else if (!strcmp(path, "/echo")) {
            s_respond(fd, 200, body.data, body.len, close_after);
        } else {
            s_respond(fd, 404, "", 0, close_after);
        }
        if (close_after)
            break;
    }
    free(b.data);
    free(body.data);
    s_tls_end();
    close(fd);
}

static int s_server(int port, SSL_CTX *ctx)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);

    if (lfd < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(lfd, 128) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) {
        perror("httpload server");
        return 1;
    }
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        s_nodelay(fd);
        if (ctx && !(s_ssl = s_tls_start(ctx, fd))) {
            close(fd);
            continue;
        }
        s_serve(fd);
    }
}

/* ------------------------------------------------------------- client */

typedef struct {
    long requests, bytes_out, bytes_in, s2xx, s5xx;
} totals_t;

static int s_connect(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    s_nodelay(fd);
    return fd;
}

/* One request and its whole response. */
static int s_exchange(int fd, buf_t *b, const char *req, size_t rlen,
                      totals_t *t)
{
    if (s_write_all(fd, req, rlen) < 0)
        return -1;
    t->bytes_out += (long)rlen;
    ssize_t hlen = s_read_head(fd, b);
    if (hlen < 0)
        return -1;
    int status = 0;
    sscanf(b->data, "HTTP/1.1 %d", &status);
    long clen = s_header_long(b->data, (size_t)hlen, "Content-Length");
    int chunked = s_header_has(b->data, (size_t)hlen, "chunked");
    s_consume(b, (size_t)hlen);
    if (chunked) {
        if (s_read_chunked(fd, b) < 0)
            return -1;
    } else if (clen > 0) {
        if (s_read_body(fd, b, (size_t)clen, NULL) < 0)
            return -1;
    }
    t->requests++;
    t->s2xx += status >= 200 && status < 300;
    t->s5xx += status >= 500;
    return 0;
}

static int s_client(int argc, char **argv)
{
    int port = atoi(argv[0]), rounds = 1, conns = 1, hold = 0;
    SSL_CTX *ctx = NULL;
    long post = -1, junk = -1;
    char **paths = NULL;
    int npaths = 0;
    totals_t t = { 0 };
    buf_t b = { malloc(BUF_MAX), 0, BUF_MAX };
    char *req = malloc(BUF_MAX + 256);

    paths = calloc((size_t)argc, sizeof(*paths));
    if (!b.data || !req || !paths)
        return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--conns") && i + 1 < argc)
            conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--post") && i + 1 < argc)
            post = atol(argv[++i]);
        else if (!strcmp(argv[i], "--send-only") && i + 1 < argc)
            junk = atol(argv[++i]);
        else if (!strcmp(argv[i], "--hold"))
            hold = 1;
        else if (!strcmp(argv[i], "--tls"))
            ctx = SSL_CTX_new(TLS_client_method());
        else
            paths[npaths++] = argv[i];
    }
    if (post > BUF_MAX || junk > BUF_MAX)
        return 1;
    for (int c = 0; c < conns; c++) {
        int fd = s_connect(port);
        if (fd < 0) {
            perror("httpload client: connect");
            return 1;
        }
        if (ctx && !(s_ssl = s_tls_start(ctx, fd)))
            return 1;
        if (hold && c == 0) {
            char line[64];
            printf("connected\n");
            fflush(stdout);
            if (!fgets(line, sizeof(line), stdin))
                return 1;
        }
        b.len = 0;
        if (junk >= 0) {
            memset(req, 0xa5, (size_t)junk);
            if (s_write_all(fd, req, (size_t)junk) < 0)
                return 1;
            t.bytes_out += junk;
        }
        for (int r = 0; junk < 0 && r < rounds; r++) {
            if (post >= 0) {
                int n = snprintf(req, 256,
                                 "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Content-Length: %ld\r\n\r\n", post);
                memset(req + n, 'x', (size_t)post);
                if (s_exchange(fd, &b, req, (size_t)n + (size_t)post, &t) < 0)
                    return 1;
                continue;
            }
            for (int p = 0; p < npaths; p++) {
                int n = snprintf(req, 1200,
                                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                                 paths[p]);
                if (s_exchange(fd, &b, req, (size_t)n, &t) < 0) {
                    fprintf(stderr, "httpload client: %s failed\n", paths[p]);
                    return 1;
                }
            }
        }
        s_tls_end();
        close(fd);
    }
    SSL_CTX_free(ctx);
    printf("requests %ld bytes_out %ld bytes_in %ld status2xx %ld "
           "status5xx %ld\n", t.requests, t.bytes_out, s_bytes_in, t.s2xx,
           t.s5xx);
    free(b.data);
    free(req);
    free(paths);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "server")) {
        SSL_CTX *ctx = NULL;
        int port = 0;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--tls") && i + 2 < argc) {
                ctx = SSL_CTX_new(TLS_server_method());
                if (!ctx ||
                    SSL_CTX_use_certificate_file(ctx, argv[i + 1],
                                                 SSL_FILETYPE_PEM) != 1 ||
                    SSL_CTX_use_PrivateKey_file(ctx, argv[i + 2],
                                                SSL_FILETYPE_PEM) != 1) {
                    ERR_print_errors_fp(stderr);
                    return 1;
                }
                i += 2;
            } else {
                port = atoi(argv[i]);
            }
        }
        s_server_side = 1;
        return s_server(port, ctx);
    }
    if (argc >= 3 && !strcmp(argv[1], "client"))
        return s_client(argc - 2, argv + 2);
    fprintf(stderr, "usage: httpload server [PORT] [--tls CERT KEY] | "
                    "httpload client PORT [--rounds N] [--conns N] "
                    "[--post N] [--hold] [--send-only N] [--tls] PATH...\n");
    return 2;
}
