/* lib/http1: exchanges out of byte streams fed whole and split anywhere;
 * keep-alive, pipelining, chunked with extensions and trailers,
 * 100-continue, bodiless responses, close-delimited bodies, and every
 * refusal counted with its reason. */
#include <stdio.h>
#include <string.h>

#include "http1.h"
#include "testutil.h"

#define MAX_EX 16

typedef struct {
    http1_exchange_t ex[MAX_EX];
    int n;
} s_got_t;

static void s_collect(const http1_exchange_t *ex, void *arg)
{
    s_got_t *got = arg;
    ck_assert_int_lt(got->n, MAX_EX);
    got->ex[got->n++] = *ex;
}

/* One piece of traffic: direction, bytes, time. */
typedef struct {
    http1_dir_t dir;
    const char *text;
    uint64_t ts;
} s_piece_t;

/* Feeds pieces in slices of at most `slice` bytes (0: whole), then closes
 * when asked. Returns the connection (for its stats). */
static http1_conn_t *s_run(const s_piece_t *pieces, size_t npieces,
                           size_t slice, int close, http1_side_t side,
                           const http1_limits_t *lim, s_got_t *got)
{
    http1_conn_t *c = http1_conn_new(lim);
    ck_assert_ptr_nonnull(c);
    memset(got, 0, sizeof *got);
    http1_conn_set_handler(c, s_collect, got);
    ck_assert_int_eq(http1_conn_set_side(c, side), 0);
    for (size_t i = 0; i < npieces; i++) {
        size_t len = strlen(pieces[i].text);
        size_t step = slice ? slice : (len ? len : 1);
        for (size_t off = 0; off < len; off += step) {
            size_t n = len - off < step ? len - off : step;
            (void)http1_conn_feed(c, pieces[i].dir, pieces[i].text + off, n,
                                  pieces[i].ts);
        }
    }
    if (close)
        http1_conn_close(c);
    return c;
}

static void s_same(const s_got_t *a, const s_got_t *b)
{
    ck_assert_int_eq(a->n, b->n);
    for (int i = 0; i < a->n; i++)
        ck_assert_msg(memcmp(&a->ex[i], &b->ex[i], sizeof a->ex[i]) == 0,
                      "exchange %d differs", i);
}

static void s_ex(const http1_exchange_t *ex, const char *method,
                 const char *uri, int status, uint64_t req, uint64_t resp,
                 uint64_t start, uint64_t end)
{
    ck_assert_str_eq(ex->method, method);
    ck_assert_str_eq(ex->uri, uri);
    ck_assert_int_eq(ex->status, status);
    ck_assert_uint_eq(ex->req_bytes, req);
    ck_assert_uint_eq(ex->resp_bytes, resp);
    ck_assert_uint_eq(ex->start_ns, start);
    ck_assert_uint_eq(ex->end_ns, end);
}

#define REQ1 "GET /api/items?id=7&x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
#define RESP1 "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
#define REQ2 "POST /api/items HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
#define RESP2 "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"

static const s_piece_t s_keepalive[] = {
    { HTTP1_DIR_OUT, REQ1, 100 },
    { HTTP1_DIR_IN, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", 150 },
    { HTTP1_DIR_IN, "lo", 170 },
    { HTTP1_DIR_OUT, REQ2, 300 },
    { HTTP1_DIR_IN, RESP2, 420 },
};

START_TEST(test_keepalive_whole_and_bytewise)
{
    s_got_t whole, bytes;
    http1_conn_t *c = s_run(s_keepalive, 5, 0, 0, HTTP1_SIDE_UNKNOWN, NULL,
                            &whole);
    ck_assert_int_eq(whole.n, 2);
    s_ex(&whole.ex[0], "GET", "/api/items", 200, strlen(REQ1), strlen(RESP1),
         100, 170);
    s_ex(&whole.ex[1], "POST", "/api/items", 500, strlen(REQ2),
         strlen(RESP2), 300, 420);
    ck_assert_int_eq(whole.ex[0].side, HTTP1_SIDE_CLIENT);
    ck_assert_int_eq(http1_conn_side(c), HTTP1_SIDE_CLIENT);
    ck_assert_int_eq(http1_conn_active(c), 1);
    ck_assert_uint_eq(http1_conn_stats(c)->exchanges, 2);
    http1_conn_destroy(&c);
    ck_assert_ptr_null(c);
    http1_conn_destroy(&c); /* NULL-safe */

    for (size_t slice = 1; slice <= 7; slice++) {
        c = s_run(s_keepalive, 5, slice, 0, HTTP1_SIDE_UNKNOWN, NULL, &bytes);
        s_same(&whole, &bytes);
        http1_conn_destroy(&c);
    }
}
END_TEST

START_TEST(test_server_side)
{
    /* the same bytes seen from the server: requests are read */
    const s_piece_t p[] = {
        { HTTP1_DIR_IN, REQ1, 10 },
        { HTTP1_DIR_OUT, RESP1, 20 },
    };
    s_got_t got;
    http1_conn_t *c = s_run(p, 2, 0, 0, HTTP1_SIDE_SERVER, NULL, &got);
    ck_assert_int_eq(got.n, 1);
    ck_assert_int_eq(got.ex[0].side, HTTP1_SIDE_SERVER);
    s_ex(&got.ex[0], "GET", "/api/items", 200, strlen(REQ1), strlen(RESP1),
         10, 20);
    ck_assert_int_eq(http1_conn_set_side(c, HTTP1_SIDE_CLIENT), -1);
    http1_conn_destroy(&c);
}
END_TEST

START_TEST(test_pipelined)
{
    const s_piece_t p[] = {
        { HTTP1_DIR_OUT, "GET /a HTTP/1.1\r\n\r\nGET /b?q HTTP/1.1\r\n\r\n"
                         "HEAD /c HTTP/1.1\r\n\r\n", 1 },
        { HTTP1_DIR_IN, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nBB", 5 },
        { HTTP1_DIR_IN, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 9 },
    };
    for (size_t slice = 0; slice <= 3; slice++) {
        s_got_t got;
        http1_conn_t *c = s_run(p, 3, slice, 0, HTTP1_SIDE_UNKNOWN, NULL,
                                &got);
        ck_assert_int_eq(got.n, 3);
        s_ex(&got.ex[0], "GET", "/a", 200, 19, 39, 1, 5);
        s_ex(&got.ex[1], "GET", "/b", 404, 21, 47, 1, 5);
        s_ex(&got.ex[2], "HEAD", "/c", 200, 20, 40, 1, 9);
        ck_assert_int_eq(http1_conn_active(c), 1);
        http1_conn_destroy(&c);
    }
}
END_TEST

START_TEST(test_chunked_extension_trailer)
{
    const char *req = "PUT /up HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n"
                      "\r\n4;name=val\r\nabcd\r\n0\r\n\r\n";
    const char *resp = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n"
                       "\r\n5 ; ext=\"x\"\r\nhello\r\nA\r\n0123456789\r\n"
                       "0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n";
    const s_piece_t p[] = {
        { HTTP1_DIR_OUT, req, 3 },
        { HTTP1_DIR_IN, resp, 8 },
        { HTTP1_DIR_OUT, "GET /next HTTP/1.1\r\n\r\n", 10 },
        { HTTP1_DIR_IN, "HTTP/1.1 204 No Content\r\n\r\n", 11 },
    };
    s_got_t whole, bytes;
    http1_conn_t *c = s_run(p, 4, 0, 0, HTTP1_SIDE_UNKNOWN, NULL, &whole);
    ck_assert_int_eq(whole.n, 2);
    s_ex(&whole.ex[0], "PUT", "/up", 201, strlen(req), strlen(resp), 3, 8);
    s_ex(&whole.ex[1], "GET", "/next", 204, 22, 27, 10, 11);
    http1_conn_destroy(&c);
    c = s_run(p, 4, 1, 0, HTTP1_SIDE_UNKNOWN, NULL, &bytes);
    s_same(&whole, &bytes);
    http1_conn_destroy(&c);
}
END_TEST

START_TEST(test_expect_continue)
{
    const char *head = "POST /upload HTTP/1.1\r\nContent-Length: 4\r\n"
                       "Expect: 100-continue\r\n\r\n";
    const char *cont = "HTTP/1.1 100 Continue\r\n\r\n";
    const char *fin = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const s_piece_t p[] = {
        { HTTP1_DIR_OUT, head, 1 },
        { HTTP1_DIR_IN, cont, 2 },
        { HTTP1_DIR_OUT, "data", 3 },
        { HTTP1_DIR_IN, fin, 4 },
    };
    s_got_t got;
    http1_conn_t *c = s_run(p, 4, 0, 0, HTTP1_SIDE_UNKNOWN, NULL, &got);
    ck_assert_int_eq(got.n, 1);
    s_ex(&got.ex[0], "POST", "/upload", 200, strlen(head) + 4,
         strlen(cont) + strlen(fin), 1, 4);
    ck_assert_uint_eq(http1_conn_stats(c)->interim, 1);
    http1_conn_destroy(&c);
}
END_TEST

START_TEST(test_bodiless_responses)
{
    const s_piece_t p[] = {
        { HTTP1_DIR_OUT, "HEAD /big HTTP/1.1\r\n\r\n", 1 },
        { HTTP1_DIR_IN, "HTTP/1.1 200 OK\r\nContent-Length: 123456\r\n\r\n", 2 },
        { HTTP1_DIR_OUT, "GET /cached HTTP/1.1\r\n\r\n", 3 },
        { HTTP1_DIR_IN, "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", 4 },
        { HTTP1_DIR_OUT, "GET /after HTTP/1.1\r\n\r\n", 5 },
        { HTTP1_DIR_IN, RESP1, 6 },
    };
    s_got_t got;
    http1_conn_t *c = s_run(p, 6, 0, 0, HTTP1_SIDE_UNKNOWN, NULL, &got);
    ck_assert_int_eq(got.n, 3);
    ck_assert_str_eq(got.ex[0].method, "HEAD");
    ck_assert_int_eq(got.ex[0].status, 200);
    ck_assert_uint_eq(got.ex[0].resp_bytes, 43);
    ck_assert_int_eq(got.ex[1].status, 304);
    s_ex(&got.ex[2], "GET", "/after", 200, 23, strlen(RESP1), 5, 6);
    http1_conn_destroy(&c);
}
END_TEST

START_TEST(test_close_delimited)
{
    const char *resp = "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nbody until close";
    const s_piece_t p[] = {
        { HTTP1_DIR_OUT, "GET /old HTTP/1.0\r\n\r\n", 1 },
        { HTTP1_DIR_IN, resp, 7 },
    };
    s_got_t got;
    http1_conn_t *c = s_run(p, 2, 0, 0, HTTP1_SIDE_UNKNOWN, NULL, &got);
    ck_assert_int_eq(got.n, 0);
    http1_conn_close(c);
    ck_assert_int_eq(got.n, 1);
    s_ex(&got.ex[0], "GET", "/old", 200, 21, strlen(resp), 1, 7);
    ck_assert_int_eq(http1_conn_active(c), 0);
    ck_assert_uint_eq(http1_conn_stats(c)->unanswered, 0);
    ck_assert_int_eq(http1_conn_feed(c, HTTP1_DIR_IN, "x", 1, 8), -1);
    ck_assert_uint_eq(http1_conn_stats(c)->bytes_ignored, 1);
    http1_conn_destroy(&c);

    /* a request left without answer and a body cut short are counted */
    const s_piece_t q[] = {
        { HTTP1_DIR_OUT, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n", 1 },
        { HTTP1_DIR_IN, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 2 },
    };
    c = s_run(q, 2, 0, 1, HTTP1_SIDE_UNKNOWN, NULL, &got);
    ck_assert_int_eq(got.n, 0);
    ck_assert_uint_eq(http1_conn_stats(c)->unanswered, 2);
    ck_assert_uint_eq(http1_conn_stats(c)->truncated, 1);
    http1_conn_destroy(&c);
}
END_TEST

START_TEST(test_upgrade_ends_analysis)
{
    const s_piece_t p[] = {
        { HTTP1_DIR_OUT, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\n\r\n", 1 },
        { HTTP1_DIR_IN, "HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello", 2 },
    };
    s_got_t got;
    http1_conn_t *c = s_run(p, 2, 0, 0, HTTP1_SIDE_UNKNOWN, NULL, &got);
    ck_assert_int_eq(got.n, 1);
    ck_assert_int_eq(got.ex[0].status, 101);
    ck_assert_uint_eq(http1_conn_stats(c)->upgrades, 1);
    ck_assert_uint_eq(http1_conn_stats(c)->bytes_ignored, 7);
    for (int i = 0; i < HTTP1_ERR_COUNT; i++)
        ck_assert_uint_eq(http1_conn_stats(c)->errors[i], 0);
    http1_conn_destroy(&c);
}
END_TEST

static void s_refused(const s_piece_t *p, size_t n, const http1_limits_t *lim,
                      http1_err_t why, int exchanges)
{
    for (size_t slice = 0; slice <= 1; slice++) {
        s_got_t got;
        http1_conn_t *c = s_run(p, n, slice, 0, HTTP1_SIDE_UNKNOWN, lim, &got);
        ck_assert_int_eq(got.n, exchanges);
        ck_assert_int_eq(http1_conn_active(c), 0);
        const http1_stats_t *st = http1_conn_stats(c);
        for (int i = 0; i < HTTP1_ERR_COUNT; i++)
            ck_assert_msg(st->errors[i] == (i == (int)why),
                          "%s: %llu", http1_err_name((http1_err_t)i),
                          (unsigned long long)st->errors[i]);
        ck_assert_int_eq(http1_conn_feed(c, HTTP1_DIR_OUT, REQ1,
                                         strlen(REQ1), 99), -1);
        ck_assert_int_eq(got.n, exchanges);
        http1_conn_destroy(&c);
    }
}

START_TEST(test_garbage)
{
    const s_piece_t bin[] = { { HTTP1_DIR_OUT, "\x16\x03\x01\x02\x00\x01", 1 } };
    s_refused(bin, 1, NULL, HTTP1_ERR_NOT_HTTP, 0);
    const s_piece_t lower[] = { { HTTP1_DIR_IN, "hello world\n", 1 } };
    s_refused(lower, 1, NULL, HTTP1_ERR_NOT_HTTP, 0);
    const s_piece_t h2[] = { { HTTP1_DIR_OUT, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 1 } };
    s_refused(h2, 1, NULL, HTTP1_ERR_NOT_HTTP, 0);
    const s_piece_t resp_first[] = { { HTTP1_DIR_IN, RESP1, 1 } };
    s_refused(resp_first, 1, NULL, HTTP1_ERR_UNEXPECTED_RESPONSE, 0);
    /* one good exchange, then the server sends nonsense: kept, counted */
    const s_piece_t broken[] = {
        { HTTP1_DIR_OUT, REQ1, 1 }, { HTTP1_DIR_IN, RESP1, 2 },
        { HTTP1_DIR_OUT, REQ1, 3 }, { HTTP1_DIR_IN, "HTTP/1.1 2x0 OK\r\n", 4 },
    };
    s_refused(broken, 4, NULL, HTTP1_ERR_GRAMMAR, 1);
    const s_piece_t badchunk[] = {
        { HTTP1_DIR_OUT, REQ1, 1 },
        { HTTP1_DIR_IN, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 2 },
    };
    s_refused(badchunk, 2, NULL, HTTP1_ERR_GRAMMAR, 0);
    const s_piece_t twocl[] = {
        { HTTP1_DIR_OUT, "POST / HTTP/1.1\r\nContent-Length: 1\r\n"
                         "Content-Length: 2\r\n\r\n", 1 },
    };
    s_refused(twocl, 1, NULL, HTTP1_ERR_GRAMMAR, 0);
}
END_TEST

START_TEST(test_bounds)
{
    http1_limits_t lim;
    http1_limits_default(&lim);
    lim.max_line = 64;
    lim.max_head = 128;
    lim.max_headers = 3;
    lim.max_pipeline = 2;
    lim.max_uri = 4;
    char big[256];
    snprintf(big, sizeof big, "GET /x HTTP/1.1\r\nX-Long: %080d\r\n\r\n", 0);
    const s_piece_t line[] = { { HTTP1_DIR_OUT, big, 1 } };
    s_refused(line, 1, &lim, HTTP1_ERR_LINE_TOO_LONG, 0);
    const s_piece_t head[] = {
        { HTTP1_DIR_OUT, "GET /x HTTP/1.1\r\n"
                         "A: 0123456789012345678901234567890123456789\r\n"
                         "B: 0123456789012345678901234567890123456789\r\n"
                         "C: 0123456789012345678901234567890123456789\r\n\r\n", 1 },
    };
    s_refused(head, 1, &lim, HTTP1_ERR_HEAD_TOO_LARGE, 0);
    const s_piece_t many[] = {
        { HTTP1_DIR_OUT, "GET /x HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 1 },
    };
    s_refused(many, 1, &lim, HTTP1_ERR_TOO_MANY_HEADERS, 0);
    const s_piece_t deep[] = {
        { HTTP1_DIR_OUT, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"
                         "GET /3 HTTP/1.1\r\n\r\n", 1 },
    };
    s_refused(deep, 1, &lim, HTTP1_ERR_PIPELINE_DEPTH, 0);

    /* the URI is cut at max_uri and says so */
    const s_piece_t uri[] = {
        { HTTP1_DIR_OUT, "GET /abcdefgh?x HTTP/1.1\r\n\r\n", 1 },
        { HTTP1_DIR_IN, RESP1, 2 },
    };
    s_got_t got;
    http1_conn_t *c = s_run(uri, 2, 0, 0, HTTP1_SIDE_UNKNOWN, &lim, &got);
    ck_assert_int_eq(got.n, 1);
    ck_assert_str_eq(got.ex[0].uri, "/abc");
    ck_assert_int_eq(got.ex[0].uri_truncated, 1);
    size_t small = http1_conn_memory(c);
    http1_conn_destroy(&c);
    c = http1_conn_new(NULL);
    ck_assert_uint_gt(http1_conn_memory(c), small);
    ck_assert_uint_lt(http1_conn_memory(c), 64 * 1024);
    http1_conn_destroy(&c);

    /* limits out of range are refused */
    http1_limits_t bad = lim;
    bad.max_line = 10;
    ck_assert_ptr_null(http1_conn_new(&bad));
    bad = lim;
    bad.max_uri = HTTP1_URI_MAX;
    ck_assert_ptr_null(http1_conn_new(&bad));
    bad = lim;
    bad.max_pipeline = 0;
    ck_assert_ptr_null(http1_conn_new(&bad));
    ck_assert_str_eq(http1_err_name(HTTP1_ERR_HEAD_TOO_LARGE), "head_too_large");
    ck_assert_str_eq(http1_err_name(HTTP1_ERR_COUNT), "?");
}
END_TEST

START_TEST(test_tolerated_forms)
{
    /* bare LF line ends, empty lines before a request, OWS around
     * values, case-insensitive field names, a 1 MiB body fed in pieces */
    static char body[1 << 20];
    memset(body, 'x', sizeof body - 1);
    const s_piece_t p[] = {
        { HTTP1_DIR_OUT, "\r\n\nGET /lf HTTP/1.1\nHost: a\n\n", 1 },
        { HTTP1_DIR_IN, "HTTP/1.1 200 OK\ncontent-length:\t1048575 \n\n", 2 },
        { HTTP1_DIR_IN, body, 3 },
        { HTTP1_DIR_OUT, "DELETE /x HTTP/1.1\r\n\r\n", 4 },
        /* no length at all: the body runs to the close */
        { HTTP1_DIR_IN, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", 5 },
    };
    s_got_t got;
    http1_conn_t *c = s_run(p, 5, 4096, 1, HTTP1_SIDE_UNKNOWN, NULL, &got);
    ck_assert_int_eq(got.n, 2);
    /* the skipped empty lines belong to no message */
    s_ex(&got.ex[0], "GET", "/lf", 200, strlen(p[0].text) - 3,
         strlen(p[1].text) + sizeof body - 1, 1, 3);
    s_ex(&got.ex[1], "DELETE", "/x", 200, strlen(p[3].text),
         strlen(p[4].text), 4, 5);
    for (int i = 0; i < HTTP1_ERR_COUNT; i++)
        ck_assert_uint_eq(http1_conn_stats(c)->errors[i], 0);
    http1_conn_destroy(&c);
}
END_TEST

START_TEST(test_early_response)
{
    /* the server refuses an upload before its body is all sent: the
     * exchange ends with the response; the rest of the body is skipped by
     * its length and the next request is still analysed */
    const s_piece_t p[] = {
        { HTTP1_DIR_OUT, "POST /big HTTP/1.1\r\nContent-Length: 10\r\n\r\nab", 1 },
        { HTTP1_DIR_IN, "HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n", 2 },
        { HTTP1_DIR_OUT, "cdefghij", 3 },
        { HTTP1_DIR_OUT, "GET /next HTTP/1.1\r\n\r\n", 4 },
        { HTTP1_DIR_IN, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 5 },
    };
    s_got_t got;
    http1_conn_t *c = s_run(p, 5, 0, 0, HTTP1_SIDE_UNKNOWN, NULL, &got);
    ck_assert_int_eq(got.n, 2);
    ck_assert_int_eq(got.ex[0].status, 413);
    ck_assert_uint_eq(got.ex[0].req_bytes, 44);
    s_ex(&got.ex[1], "GET", "/next", 200, 22, 38, 4, 5);
    http1_conn_destroy(&c);

    /* a request whose length cannot be known is refused */
    const s_piece_t te[] = {
        { HTTP1_DIR_OUT, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 1 },
    };
    s_refused(te, 1, NULL, HTTP1_ERR_GRAMMAR, 0);
    /* obs-fold */
    const s_piece_t fold[] = {
        { HTTP1_DIR_OUT, "GET / HTTP/1.1\r\nA: 1\r\n  2\r\n\r\n", 1 },
    };
    s_refused(fold, 1, NULL, HTTP1_ERR_GRAMMAR, 0);
}
END_TEST

START_TEST(test_detect)
{
#define D(str) http1_detect(str, sizeof str - 1)
    ck_assert_int_eq(D("GET / HTTP/1.1\r\n"), HTTP1_DETECT_REQUEST);
    ck_assert_int_eq(D("\r\nOPTIONS * HTTP/1.0\nHost"), HTTP1_DETECT_REQUEST);
    ck_assert_int_eq(D("HTTP/1.1 204 No Content\r\n"), HTTP1_DETECT_RESPONSE);
    ck_assert_int_eq(D("HTTP/1.1 200\n"), HTTP1_DETECT_RESPONSE);
    ck_assert_int_eq(D(""), HTTP1_DETECT_MORE);
    ck_assert_int_eq(D("GE"), HTTP1_DETECT_MORE);
    ck_assert_int_eq(D("HTTP/1.1 2"), HTTP1_DETECT_MORE);
    ck_assert_int_eq(D("POST /x?y=1 HTTP/1"), HTTP1_DETECT_MORE);
    ck_assert_int_eq(D("get / HTTP/1.1\r\n"), HTTP1_DETECT_NO);
    ck_assert_int_eq(D("\x16\x03\x01"), HTTP1_DETECT_NO);
    ck_assert_int_eq(D("PRI * HTTP/2.0\r\n"), HTTP1_DETECT_NO);
    ck_assert_int_eq(D("HTTP/1.1 99 x\r\n"), HTTP1_DETECT_NO);
    ck_assert_int_eq(D("GET /\x01 HTTP/1.1\r\n"), HTTP1_DETECT_NO);
    ck_assert_int_eq(http1_detect(NULL, 0), HTTP1_DETECT_MORE);
#undef D
}
END_TEST

START_TEST(test_stats_add)
{
    http1_stats_t a = { .exchanges = 1, .errors = { [HTTP1_ERR_GRAMMAR] = 2 } };
    http1_stats_t b = { .exchanges = 3, .bytes_ignored = 4,
                        .errors = { [HTTP1_ERR_GRAMMAR] = 1 } };
    http1_stats_add(&a, &b);
    ck_assert_uint_eq(a.exchanges, 4);
    ck_assert_uint_eq(a.bytes_ignored, 4);
    ck_assert_uint_eq(a.errors[HTTP1_ERR_GRAMMAR], 3);
}
END_TEST

/* The capture keeps a prefix of each write: uncaptured body bytes still
 * count in the sizes and the next message parses; a gap anywhere else
 * ends the analysis, counted. */
START_TEST(test_uncaptured_bytes)
{
    const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    const char *chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                          "\r\n\r\n400\r\n";
    s_got_t got;
    memset(&got, 0, sizeof got);
    http1_conn_t *c = http1_conn_new(NULL);
    ck_assert_ptr_nonnull(c);
    http1_conn_set_handler(c, s_collect, &got);
    /* a 1000-byte body of which 10 bytes were captured */
    ck_assert_int_eq(http1_conn_feed(c, HTTP1_DIR_OUT, REQ1, strlen(REQ1), 10),
                     0);
    ck_assert_int_eq(http1_conn_feed(c, HTTP1_DIR_IN, head, strlen(head), 20),
                     0);
    ck_assert_int_eq(http1_conn_feed(c, HTTP1_DIR_IN, "0123456789", 10, 20),
                     0);
    ck_assert_int_eq(got.n, 0);
    ck_assert_int_eq(http1_conn_skip(c, HTTP1_DIR_IN, 990, 30), 0);
    ck_assert_int_eq(got.n, 1);
    s_ex(&got.ex[0], "GET", "/api/items", 200, strlen(REQ1),
         strlen(head) + 1000, 10, 30);
    /* chunk data skipped across the chunk, the next one parsed */
    ck_assert_int_eq(http1_conn_feed(c, HTTP1_DIR_OUT, REQ1, strlen(REQ1), 40),
                     0);
    ck_assert_int_eq(http1_conn_feed(c, HTTP1_DIR_IN, chunked,
                                     strlen(chunked), 50), 0);
    ck_assert_int_eq(http1_conn_skip(c, HTTP1_DIR_IN, 1024, 60), 0);
    ck_assert_int_eq(http1_conn_feed(c, HTTP1_DIR_IN, "\r\n0\r\n\r\n", 7,
                                     70), 0);
    ck_assert_int_eq(got.n, 2);
    s_ex(&got.ex[1], "GET", "/api/items", 200, strlen(REQ1),
         strlen(chunked) + 1024 + 7, 40, 70);
    ck_assert_uint_eq(http1_conn_stats(c)->errors[HTTP1_ERR_GAP], 0);
    /* a gap between messages: where the next one starts is unknown */
    ck_assert_int_eq(http1_conn_skip(c, HTTP1_DIR_OUT, 5, 80), -1);
    ck_assert_int_eq(http1_conn_active(c), 0);
    ck_assert_uint_eq(http1_conn_stats(c)->errors[HTTP1_ERR_GAP], 1);
    ck_assert_uint_eq(http1_conn_stats(c)->bytes_ignored, 5);
    ck_assert_str_eq(http1_err_name(HTTP1_ERR_GAP), "gap");
    http1_conn_destroy(&c);

    /* a gap inside a head */
    c = http1_conn_new(NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(http1_conn_feed(c, HTTP1_DIR_OUT, "GET / HTTP/1.1\r\nHo",
                                     18, 1), 0);
    ck_assert_int_eq(http1_conn_skip(c, HTTP1_DIR_OUT, 3, 2), -1);
    ck_assert_uint_eq(http1_conn_stats(c)->errors[HTTP1_ERR_GAP], 1);
    ck_assert_int_eq(http1_conn_skip(NULL, HTTP1_DIR_OUT, 3, 2), -1);
    http1_conn_destroy(&c);
}
END_TEST

/* Parts, concatenated per direction in a readable log: "S:<line>|",
 * "F:<line>|", "E|" and the body bytes as they come. */
typedef struct {
    char log[2][1024];
    size_t len[2];
} s_parts_t;

static void s_part_log(int request, http1_part_t part, const char *data,
                       size_t len, void *arg)
{
    s_parts_t *pt = arg;
    static const char *const tag[] = {"S:", "F:", "E", ""};
    char *out = pt->log[request ? 0 : 1];
    size_t *n = &pt->len[request ? 0 : 1];
    int w = snprintf(out + *n, sizeof pt->log[0] - *n, "%s%.*s%s", tag[part],
                     (int)len, data, part == HTTP1_PART_BODY ? "" : "|");
    ck_assert_int_ge(w, 0);
    ck_assert_uint_lt(*n + (size_t)w, sizeof pt->log[0]);
    *n += (size_t)w;
}

START_TEST(test_parts)
{
    const char *req = "POST /up?x=1 HTTP/1.1\r\nHost: h\r\n"
                      "sw8: 1-dA==-cw==-0-YQ==-Yg==-Yw==-ZA==\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;e\r\nde\r\n"
                      "0\r\nX-T: 1\r\n\r\n"
                      "GET /b HTTP/1.1\r\n\r\n";
    const char *resp = "HTTP/1.1 100 Continue\r\n\r\n"
                       "HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nfail"
                       "HTTP/1.1 204 No Content\r\n\r\n";
    for (size_t slice = 0; slice <= 2; slice++) {
        http1_conn_t *c = http1_conn_new(NULL);
        s_parts_t pt;
        memset(&pt, 0, sizeof pt);
        http1_conn_set_part_handler(c, s_part_log, &pt);
        size_t step[2] = {slice ? slice : strlen(req),
                          slice ? slice : strlen(resp)};
        for (size_t off = 0; off < strlen(req); off += step[0])
            (void)http1_conn_feed(c, HTTP1_DIR_IN, req + off,
                                  strlen(req) - off < step[0]
                                      ? strlen(req) - off : step[0], 1);
        for (size_t off = 0; off < strlen(resp); off += step[1])
            (void)http1_conn_feed(c, HTTP1_DIR_OUT, resp + off,
                                  strlen(resp) - off < step[1]
                                      ? strlen(resp) - off : step[1], 2);
        ck_assert_int_eq(http1_conn_stats(c)->exchanges, 2);
        /* trailers are no header fields; the body comes without framing */
        ck_assert_str_eq(pt.log[0],
                         "S:POST /up?x=1 HTTP/1.1|F:Host: h|"
                         "F:sw8: 1-dA==-cw==-0-YQ==-Yg==-Yw==-ZA==|"
                         "F:Transfer-Encoding: chunked|E|abcde"
                         "S:GET /b HTTP/1.1|E|");
        ck_assert_str_eq(pt.log[1],
                         "S:HTTP/1.1 100 Continue|E|"
                         "S:HTTP/1.1 500 Oops|F:Content-Length: 4|E|fail"
                         "S:HTTP/1.1 204 No Content|E|");
        http1_conn_destroy(&c);
    }
}
END_TEST


int main(void)
{
    Suite *s = suite_create("http1");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_keepalive_whole_and_bytewise);
    tcase_add_test(tc, test_server_side);
    tcase_add_test(tc, test_pipelined);
    tcase_add_test(tc, test_chunked_extension_trailer);
    tcase_add_test(tc, test_expect_continue);
    tcase_add_test(tc, test_bodiless_responses);
    tcase_add_test(tc, test_close_delimited);
    tcase_add_test(tc, test_upgrade_ends_analysis);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_bounds);
    tcase_add_test(tc, test_tolerated_forms);
    tcase_add_test(tc, test_early_response);
    tcase_add_test(tc, test_detect);
    tcase_add_test(tc, test_stats_add);
    tcase_add_test(tc, test_uncaptured_bytes);
    tcase_add_test(tc, test_parts);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
