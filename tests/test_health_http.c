/* The per-stage /metrics and /healthz server (lib/health_http.c): routes,
 * status codes for every kind of bad request, bounds on request size and
 * on silent clients, the stale-beat 503, and shutdown with a client still
 * connected. Each test starts its own server on an ephemeral port. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "health_http.h"
#include "stats.h"
#include "testutil.h"

static stats_t *s_stats;
static health_http_t *s_http;
static int s_port;

static void setup(void)
{
    s_stats = stats_new("hhtest", "inst1");
    ck_assert_ptr_nonnull(s_stats);
    s_http = health_http_new("127.0.0.1:0", s_stats);
    ck_assert_ptr_nonnull(s_http);
    s_port = health_http_port(s_http);
    ck_assert_int_gt(s_port, 0);
}

static void teardown(void)
{
    health_http_destroy(&s_http);
    stats_destroy(&s_stats);
}

/* A connected client socket with generous timeouts so a broken server
 * fails the test instead of hanging it. */
static int s_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {.tv_sec = 15};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)s_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Everything the server sends until it closes (a reset ends it too). */
static char *s_read_all(int fd, size_t *len)
{
    size_t cap = 1 << 16, used = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    for (;;) {
        if (used + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        ssize_t n = recv(fd, buf + used, cap - used - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        ck_assert_msg(!(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)),
                      "server neither answered nor closed");
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    buf[used] = '\0';
    if (len)
        *len = used;
    return buf;
}

/* Sends raw bytes (in one or more pieces) and returns the whole response. */
static char *s_exchange(const char *const *pieces, size_t npieces, int *status)
{
    int fd = s_connect();
    for (size_t i = 0; i < npieces; i++) {
        /* The server may answer and close early (oversized head): a failed
         * send is then expected and the response still counts. */
        if (send(fd, pieces[i], strlen(pieces[i]), MSG_NOSIGNAL) < 0)
            break;
        if (npieces > 1)
            usleep(20000);  /* let the server see the pieces separately */
    }
    size_t len = 0;
    char *resp = s_read_all(fd, &len);
    close(fd);
    *status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d ", status) != 1)
        *status = 0;
    return resp;
}

static int s_status_of(const char *request)
{
    int status;
    free(s_exchange(&request, 1, &status));
    return status;
}

static const char *s_body(const char *resp)
{
    const char *sep = strstr(resp, "\r\n\r\n");
    ck_assert_ptr_nonnull(sep);
    return sep + 4;
}

START_TEST(healthz_answers_ok)
{
    int status = 0;
    size_t len = 0;
    char *body = tu_http("GET", "127.0.0.1", s_port, "/healthz", NULL,
                         &status, &len);
    ck_assert_ptr_nonnull(body);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(body, "ok\n");
    free(body);
}
END_TEST

START_TEST(metrics_render_registered_counters)
{
    stats_metric_t *c = stats_counter(s_stats, "requests_total",
                                      "route=\"a\"", "requests seen");
    ck_assert_ptr_nonnull(c);
    stats_add(c, 41);
    stats_inc(c);
    const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    int status;
    char *resp = s_exchange(&req, 1, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp, "\r\nContent-Type: text/plain; "
                                       "version=0.0.4\r\n"));
    ck_assert_ptr_nonnull(strstr(
        s_body(resp), "skyprof_hhtest_requests_total{stage=\"hhtest\","
                      "instance=\"inst1\",route=\"a\"} 42\n"));
    free(resp);

    /* A query string does not change the route. */
    ck_assert_int_eq(s_status_of("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), 200);
}
END_TEST

/* A body far larger than one send: Content-Length matches what arrives,
 * so partial sends are resumed, not dropped. */
START_TEST(large_metrics_arrive_whole)
{
    char name[64];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "metric_number_%d_with_a_long_name", i);
        stats_add(stats_counter(s_stats, name, NULL, "padding"), (uint64_t)i);
    }
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
    int status;
    char *resp = s_exchange(&req, 1, &status);
    ck_assert_int_eq(status, 200);
    const char *cl = strstr(resp, "Content-Length: ");
    ck_assert_ptr_nonnull(cl);
    size_t declared = strtoul(cl + 16, NULL, 10);
    ck_assert_uint_gt(declared, 200000);
    ck_assert_uint_eq(strlen(s_body(resp)), declared);
    ck_assert_ptr_nonnull(strstr(resp, "metric_number_2999_with_a_long_name"
                                       "{stage=\"hhtest\",instance=\"inst1\"}"
                                       " 2999\n"));
    free(resp);
}
END_TEST

START_TEST(head_has_headers_only)
{
    const char *req = "HEAD /healthz HTTP/1.0\r\n\r\n";
    int status;
    char *resp = s_exchange(&req, 1, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(resp, "Content-Length: 3\r\n"));
    ck_assert_str_eq(s_body(resp), "");
    free(resp);
}
END_TEST

START_TEST(unknown_path_is_404_and_other_methods_405)
{
    int status = 0;
    char *body = tu_http("GET", "127.0.0.1", s_port, "/nothing-here", NULL,
                         &status, NULL);
    ck_assert_ptr_nonnull(body);
    ck_assert_int_eq(status, 404);
    free(body);
    ck_assert_int_eq(s_status_of("GET /healthzz HTTP/1.0\r\n\r\n"), 404);
    ck_assert_int_eq(s_status_of("GET /metrics/ HTTP/1.0\r\n\r\n"), 404);

    body = tu_http("POST", "127.0.0.1", s_port, "/healthz", "{\"a\":1}",
                   &status, NULL);
    ck_assert_ptr_nonnull(body);
    ck_assert_int_eq(status, 405);
    free(body);
    const char *req = "DELETE /metrics HTTP/1.0\r\n\r\n";
    char *resp = s_exchange(&req, 1, &status);
    ck_assert_int_eq(status, 405);
    ck_assert_ptr_nonnull(strstr(resp, "\r\nAllow: GET, HEAD\r\n"));
    free(resp);
}
END_TEST

START_TEST(malformed_request_lines_are_400)
{
    static const char *const bad[] = {
        "GARBAGE\r\n\r\n",
        "GET /healthz\r\n\r\n",               /* no version */
        "GET healthz HTTP/1.0\r\n\r\n",       /* not origin-form */
        "GET  /healthz HTTP/1.0\r\n\r\n",     /* two spaces */
        "GET /healthz HTTP/1.0 \r\n\r\n",     /* trailing space */
        "GET /healthz FTP/1.0\r\n\r\n",
        "GET /healthz HTTP/1.x\r\n\r\n",
        "G\x01T /healthz HTTP/1.0\r\n\r\n",   /* control byte in method */
        "GET /hea\x7fthz HTTP/1.0\r\n\r\n",   /* control byte in target */
        "\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(s_status_of(bad[i]) == 400, "request %zu not 400", i);
    ck_assert_int_eq(s_status_of("GET /healthz HTTP/2.0\r\n\r\n"), 505);
    /* Bare LF line ends are tolerated. */
    ck_assert_int_eq(s_status_of("GET /healthz HTTP/1.0\n\n"), 200);
    /* Still serving after all of that. */
    ck_assert_int_eq(s_status_of("GET /healthz HTTP/1.0\r\n\r\n"), 200);
}
END_TEST

START_TEST(request_split_across_packets)
{
    static const char *const pieces[] = {"GET /hea", "lthz HTTP/1.0\r\n",
                                         "Host: x\r\n", "\r\n"};
    int status;
    char *resp = s_exchange(pieces, 4, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(s_body(resp), "ok\n");
    free(resp);
}
END_TEST

START_TEST(oversized_head_is_refused_and_server_survives)
{
    size_t n = 20 * 1024;
    char *req = malloc(n + 64);
    ck_assert_ptr_nonnull(req);
    int k = snprintf(req, n + 64, "GET /healthz HTTP/1.0\r\nX-Pad: ");
    memset(req + k, 'a', n);
    strcpy(req + k + n, "\r\n\r\n");
    int status;
    const char *pieces[] = {req};
    char *resp = s_exchange(pieces, 1, &status);
    /* The server drains what follows the first 8 KiB before closing, so
     * the 431 arrives instead of being lost to a reset. */
    ck_assert_int_eq(status, 431);
    free(resp);
    free(req);
    ck_assert_int_eq(s_status_of("GET /healthz HTTP/1.0\r\n\r\n"), 200);
}
END_TEST

/* A client that connects and says nothing holds the server for the read
 * timeout only: the next client is answered and the silent one is closed. */
START_TEST(silent_client_does_not_block_the_next)
{
    int silent = s_connect();
    ck_assert_int_eq(s_status_of("GET /healthz HTTP/1.0\r\n\r\n"), 200);
    size_t len = 1;
    char *got = s_read_all(silent, &len);
    ck_assert_uint_eq(len, 0);  /* closed without a response */
    free(got);
    close(silent);

    /* A client that stops mid-request gets a 408 when its time is up. */
    const char *partial = "GET /healthz HTTP/1.0\r\nHost:";
    int fd = s_connect();
    ck_assert_int_eq(send(fd, partial, strlen(partial), MSG_NOSIGNAL),
                     (ssize_t)strlen(partial));
    got = s_read_all(fd, NULL);
    int status = 0;
    ck_assert_int_eq(sscanf(got, "HTTP/1.%*d %d ", &status), 1);
    ck_assert_int_eq(status, 408);
    free(got);
    close(fd);
}
END_TEST


/* Many clients connected and silent (more than the server keeps at
 * once): a probe is still answered, long before the silent ones time
 * out. Before, the server took one connection at a time with a 2 s
 * budget each: 3 silent clients delayed /healthz by 6 s. */
START_TEST(probe_answered_while_many_clients_wait)
{
    enum { SILENT = 48 };
    int silent[SILENT];
    for (int i = 0; i < SILENT; i++)
        silent[i] = s_connect();
    /* A client that sent half a request counts as waiting too. */
    ck_assert_int_eq(send(silent[0], "GET /hea", 8, MSG_NOSIGNAL), 8);
    usleep(100000);  /* the server has seen them all */
    for (int round = 0; round < 3; round++) {
        uint64_t t0 = tu_now_ms();
        ck_assert_int_eq(s_status_of("GET /healthz HTTP/1.0\r\n\r\n"), 200);
        uint64_t took = tu_now_ms() - t0;
        /* Generous against a loaded machine; the silent clients' own
         * deadline is 2 s. */
        ck_assert_msg(took < 3000, "probe %d answered after %llu ms", round,
                      (unsigned long long)took);
    }
    /* Slots were made by closing silent clients, and that is counted. */
    char *m = NULL;
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
    int status = 0;
    m = s_exchange(&req, 1, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(strstr(m, "http_evicted_total"));
    ck_assert_ptr_null(strstr(m, "http_evicted_total{stage=\"hhtest\","
                                 "instance=\"inst1\"} 0\n"));
    free(m);
    for (int i = 0; i < SILENT; i++)
        close(silent[i]);
}
END_TEST

static int s_is_stale(void *arg)
{
    (void)arg;
    return s_status_of("GET /healthz HTTP/1.0\r\n\r\n") == 503;
}

START_TEST(stale_beat_is_503_until_the_next_beat)
{
    health_http_beat(s_http);
    ck_assert_int_eq(s_status_of("GET /healthz HTTP/1.0\r\n\r\n"), 200);
    /* Without beats the answer turns to 503 once the window has passed. */
    health_http_set_stale_ms(s_http, 1);
    ck_assert_int_eq(tu_wait_until(s_is_stale, NULL, 10000), 1);
    const char *req = "GET /healthz HTTP/1.0\r\n\r\n";
    int status;
    char *resp = s_exchange(&req, 1, &status);
    ck_assert_int_eq(status, 503);
    ck_assert_str_eq(s_body(resp), "stage loop stalled\n");
    free(resp);
    /* /metrics keeps answering: it does not depend on the loop. */
    ck_assert_int_eq(s_status_of("GET /metrics HTTP/1.0\r\n\r\n"), 200);
    /* A beat brings it back. */
    health_http_set_stale_ms(s_http, 600000);
    health_http_beat(s_http);
    ck_assert_int_eq(s_status_of("GET /healthz HTTP/1.0\r\n\r\n"), 200);
}
END_TEST

/* destroy() wakes the thread even while it waits on a silent client. */
START_TEST(destroy_with_a_client_connected)
{
    int silent = s_connect();
    /* Give the thread a moment to accept it and wait on it; destroy must
     * be prompt and clean whether or not it got that far. */
    usleep(50000);
    health_http_destroy(&s_http);
    ck_assert_ptr_null(s_http);
    close(silent);
    health_http_destroy(&s_http);  /* NULL is fine */
    health_http_destroy(NULL);
}
END_TEST

START_TEST(bad_addresses_fail_cleanly)
{
    ck_assert_ptr_null(health_http_new("not-an-address:80", s_stats));
    ck_assert_ptr_null(health_http_new("127.0.0.1:99999", s_stats));
    ck_assert_ptr_null(health_http_new("127.0.0.1:", s_stats));
    /* The port is taken by the fixture's server. */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", s_port);
    ck_assert_ptr_null(health_http_new(addr, s_stats));
    ck_assert_int_eq(health_http_port(NULL), -1);

    struct sockaddr_in sa;
    ck_assert_int_eq(health_http_parse_addr(":9100", &sa), 0);
    ck_assert_uint_eq(ntohs(sa.sin_port), 9100);
    ck_assert_uint_eq(ntohl(sa.sin_addr.s_addr), INADDR_ANY);
    ck_assert_int_eq(health_http_parse_addr("localhost:1", &sa), 0);
    ck_assert_uint_eq(ntohl(sa.sin_addr.s_addr), INADDR_LOOPBACK);
    ck_assert_int_eq(health_http_parse_addr("9101", &sa), 0);
    ck_assert_uint_eq(ntohs(sa.sin_port), 9101);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("health_http");
    TCase *tc = tcase_create("health_http");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, healthz_answers_ok);
    tcase_add_test(tc, metrics_render_registered_counters);
    tcase_add_test(tc, large_metrics_arrive_whole);
    tcase_add_test(tc, head_has_headers_only);
    tcase_add_test(tc, unknown_path_is_404_and_other_methods_405);
    tcase_add_test(tc, malformed_request_lines_are_400);
    tcase_add_test(tc, request_split_across_packets);
    tcase_add_test(tc, oversized_head_is_refused_and_server_survives);
    tcase_add_test(tc, silent_client_does_not_block_the_next);
    tcase_add_test(tc, stale_beat_is_503_until_the_next_beat);
    tcase_add_test(tc, probe_answered_while_many_clients_wait);
    tcase_add_test(tc, destroy_with_a_client_connected);
    tcase_add_test(tc, bad_addresses_fail_cleanly);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
