/* The HTTP/1.x stream analyzer (lib/http1.c), fed the way the network
 * profiler feeds it: pieces of two directions, split where the input
 * says. Byte 0: bits 0-1 the side the caller declares (unknown, client,
 * server), bit 2 tiny limits (so the bounds are reached), bit 3 close at
 * the end. Then segments: a header byte (bit 0 the direction, bits 1-7
 * the length, 0..127) and that many bytes; each segment is one feed with
 * its own timestamp.
 *
 * Promises checked: every exchange has a method of method characters, a
 * URI within max_uri without query or fragment, a final status (101 or
 * 200..599), sizes no larger than what was fed in their direction, an end
 * not before its start and a known side; the stats count what was
 * emitted; memory never changes after creation; and the same segments fed
 * one byte at a time give exactly the same exchanges and the same fate
 * (analysed or stopped, one error or none) and the same parts (start
 * lines, fields, body bytes: a hash over their stream), body bytes never
 * more than was fed in their direction. Each segment also goes through
 * http1_detect. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http1.h"

#define FUZZ_MAX_EX 64

typedef struct {
    http1_exchange_t ex[FUZZ_MAX_EX];
    size_t n;       /* emitted, possibly more than kept */
    size_t max_uri;
    uint64_t fed[2];
    const http1_conn_t *conn;
    uint64_t parts_hash;   /* FNV-1a over the parts' stream */
    uint64_t body[2];      /* body bytes per direction (0: request) */
} s_run_t;

static void s_hash(uint64_t *h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++)
        *h = (*h ^ p[i]) * 1099511628211ull;
}

/* Body pieces hash as their bytes only, so a body split anywhere hashes
 * the same; other parts hash with their kind and a terminator. */
static void s_part(int request, http1_part_t part, const char *data,
                   size_t len, void *arg)
{
    s_run_t *run = arg;
    if ((unsigned)part > HTTP1_PART_BODY || (len && !data)
        || (part == HTTP1_PART_START && !len)
        || (part == HTTP1_PART_FIELD && !memchr(data, ':', len))
        || (part != HTTP1_PART_BODY && memchr(data, '\n', len)))
        __builtin_trap();
    if (part == HTTP1_PART_BODY) {
        run->body[request ? 0 : 1] += len;
    } else {
        uint8_t tag[2] = {(uint8_t)part, (uint8_t)request};
        s_hash(&run->parts_hash, tag, 2);
    }
    s_hash(&run->parts_hash, data, len);
    if (part != HTTP1_PART_BODY)
        s_hash(&run->parts_hash, "\xff", 1);
}

static void s_check(const http1_exchange_t *ex, void *arg)
{
    s_run_t *run = arg;
    size_t mlen = strnlen(ex->method, HTTP1_METHOD_MAX);
    if (mlen == 0 || mlen == HTTP1_METHOD_MAX)
        __builtin_trap();
    for (size_t i = 0; i < mlen; i++) {
        char c = ex->method[i];
        if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
            __builtin_trap();
    }
    size_t ulen = strnlen(ex->uri, HTTP1_URI_MAX);
    if (ulen > run->max_uri || memchr(ex->uri, '?', ulen)
        || memchr(ex->uri, '#', ulen))
        __builtin_trap();
    if (ex->status != 101 && (ex->status < 200 || ex->status > 599))
        __builtin_trap();
    if (ex->end_ns < ex->start_ns)
        __builtin_trap();
    if (ex->side != HTTP1_SIDE_CLIENT && ex->side != HTTP1_SIDE_SERVER)
        __builtin_trap();
    int req_dir = ex->side == HTTP1_SIDE_CLIENT ? HTTP1_DIR_OUT
                                                : HTTP1_DIR_IN;
    /* a request line is at least "A / HTTP/1.0" + LF, a status line 12 */
    if (ex->req_bytes < 13 || ex->req_bytes > run->fed[req_dir]
        || ex->resp_bytes < 13 || ex->resp_bytes > run->fed[!req_dir])
        __builtin_trap();
    if (run->n < FUZZ_MAX_EX)
        run->ex[run->n] = *ex;
    run->n++;
    if (http1_conn_stats(run->conn)->exchanges != run->n)
        __builtin_trap();
}

/* Feeds the segments, each whole (bytewise 0) or one byte at a time. */
static http1_conn_t *s_feed(const uint8_t *data, size_t size,
                            const http1_limits_t *lim, http1_side_t side,
                            int close, int bytewise, s_run_t *run)
{
    http1_conn_t *c = http1_conn_new(lim);
    if (!c)
        __builtin_trap();
    memset(run, 0, sizeof *run);
    run->max_uri = lim->max_uri;
    run->conn = c;
    run->parts_hash = 14695981039346656037ull;
    http1_conn_set_handler(c, s_check, run);
    http1_conn_set_part_handler(c, s_part, run);
    if (http1_conn_set_side(c, side) != 0)
        __builtin_trap();
    size_t mem = http1_conn_memory(c);
    uint64_t ts = 1000;
    size_t off = 0;
    while (off < size) {
        uint8_t h = data[off++];
        http1_dir_t dir = (h & 1) ? HTTP1_DIR_IN : HTTP1_DIR_OUT;
        size_t len = h >> 1;
        if (len > size - off)
            len = size - off;
        ts += 1 + (h & 6);
        /* counted before the feed: the callback compares sizes with it */
        run->fed[dir] += len;
        if (bytewise) {
            for (size_t i = 0; i < len; i++)
                (void)http1_conn_feed(c, dir, data + off + i, 1, ts);
        } else {
            (void)http1_conn_feed(c, dir, data + off, len, ts);
        }
        if (!bytewise) {
            /* the detection step a protocol table runs on first bytes */
            http1_detect_t det = http1_detect(data + off, len);
            if ((unsigned)det > HTTP1_DETECT_RESPONSE)
                __builtin_trap();
        }
        off += len;
        if (http1_conn_memory(c) != mem)
            __builtin_trap();
    }
    if (close)
        http1_conn_close(c);
    return c;
}

static uint64_t s_errors(const http1_stats_t *st)
{
    uint64_t n = 0;
    for (int i = 0; i < HTTP1_ERR_COUNT; i++)
        n += st->errors[i];
    return n;
}

static int s_same(const http1_exchange_t *a, const http1_exchange_t *b)
{
    return strcmp(a->method, b->method) == 0 && strcmp(a->uri, b->uri) == 0
        && a->uri_truncated == b->uri_truncated && a->status == b->status
        && a->req_bytes == b->req_bytes && a->resp_bytes == b->resp_bytes
        && a->start_ns == b->start_ns && a->end_ns == b->end_ns
        && a->side == b->side;
}

static s_run_t s_whole, s_bytes;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    http1_limits_t lim;
    http1_limits_default(&lim);
    if (data[0] & 4) {
        lim.max_line = 64;
        lim.max_head = 256;
        lim.max_headers = 4;
        lim.max_pipeline = 2;
        lim.max_uri = 8;
    }
    http1_side_t side = (http1_side_t)(data[0] & 3);
    if (side > HTTP1_SIDE_SERVER)
        side = HTTP1_SIDE_UNKNOWN;
    int close = (data[0] & 8) != 0;

    http1_conn_t *a = s_feed(data + 1, size - 1, &lim, side, close, 0,
                             &s_whole);
    http1_conn_t *b = s_feed(data + 1, size - 1, &lim, side, close, 1,
                             &s_bytes);
    const http1_stats_t *sa = http1_conn_stats(a);
    const http1_stats_t *sb = http1_conn_stats(b);
    if (s_whole.n != s_bytes.n || sa->exchanges != s_whole.n)
        __builtin_trap();
    size_t kept = s_whole.n < FUZZ_MAX_EX ? s_whole.n : FUZZ_MAX_EX;
    for (size_t i = 0; i < kept; i++)
        if (!s_same(&s_whole.ex[i], &s_bytes.ex[i]))
            __builtin_trap();
    int req_dir = http1_conn_side(a) == HTTP1_SIDE_SERVER ? HTTP1_DIR_IN
                                                          : HTTP1_DIR_OUT;
    if (s_whole.parts_hash != s_bytes.parts_hash
        || s_whole.body[0] > s_whole.fed[req_dir]
        || s_whole.body[1] > s_whole.fed[!req_dir])
        __builtin_trap();
    if (http1_conn_active(a) != http1_conn_active(b)
        || s_errors(sa) != s_errors(sb) || s_errors(sa) > 1
        || sa->upgrades != sb->upgrades || sa->interim != sb->interim
        || sa->unanswered != sb->unanswered)
        __builtin_trap();
    http1_conn_destroy(&a);
    http1_conn_destroy(&b);
    return 0;
}
