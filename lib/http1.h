/* HTTP/1.x analysis of one connection's byte streams (issue 14).
 *
 * The network profiler captures what a traced process reads and writes
 * on a socket; this module turns those two byte streams into completed
 * exchanges (method, URI without its query, status, sizes, duration)
 * without ever holding a whole message: heads are parsed line by line in
 * a bounded buffer, bodies are only counted. It is fed incrementally, in
 * pieces split anywhere (partial reads and writes, one byte at a time),
 * and gives the same exchanges whatever the split.
 *
 * Covered: keep-alive, pipelining (responses matched to requests in
 * order), Content-Length, chunked transfer coding (extensions, trailers),
 * interim 1xx responses (Expect: 100-continue), bodiless responses (HEAD,
 * 204, 304), bodies delimited by the connection's close. A 101 upgrade or
 * a CONNECT tunnel ends the analysis without an error: what follows is not
 * HTTP/1.x.
 *
 * A stream that is not HTTP/1.x, breaks the grammar or exceeds a bound
 * (line length, head size, header count, pipelining depth) is counted by
 * reason in the connection's stats and the connection stops being
 * analysed: later bytes are only counted as ignored. Memory per
 * connection is allocated once, in http1_conn_new, from the limits
 * (http1_conn_memory says how much); feeding never allocates.
 *
 * Not thread-safe: one connection is fed by one thread. */
#ifndef SKYPROF_HTTP1_H
#define SKYPROF_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#define HTTP1_METHOD_MAX 16  /* with the NUL; longer methods: not HTTP */
#define HTTP1_URI_MAX 512    /* with the NUL; upper bound of max_uri */

/* Direction of bytes as seen by the traced process. */
typedef enum {
    HTTP1_DIR_OUT = 0, /* written (send, write, SSL_write) */
    HTTP1_DIR_IN = 1   /* read (recv, read, SSL_read) */
} http1_dir_t;

/* The traced process's role on the connection. */
typedef enum {
    HTTP1_SIDE_UNKNOWN = 0, /* detected from the first request line */
    HTTP1_SIDE_CLIENT = 1,  /* it writes the requests */
    HTTP1_SIDE_SERVER = 2   /* it reads the requests */
} http1_side_t;

/* Why a connection stopped being analysed. */
typedef enum {
    HTTP1_ERR_NOT_HTTP = 0,     /* first bytes are no request/status line */
    HTTP1_ERR_GRAMMAR,          /* broken request/status/header/chunk line */
    HTTP1_ERR_LINE_TOO_LONG,    /* a line longer than max_line */
    HTTP1_ERR_HEAD_TOO_LARGE,   /* a head (or trailer) beyond max_head */
    HTTP1_ERR_TOO_MANY_HEADERS, /* more than max_headers fields */
    HTTP1_ERR_PIPELINE_DEPTH,   /* more than max_pipeline unanswered */
    HTTP1_ERR_UNEXPECTED_RESPONSE, /* a response no request asked for */
    HTTP1_ERR_GAP,              /* bytes not captured outside a body */
    HTTP1_ERR_COUNT
} http1_err_t;

typedef struct {
    size_t max_line;       /* longest line, without CRLF (64..65536) */
    size_t max_head;       /* bytes of one head or trailer section */
    unsigned max_headers;  /* fields of one head or trailer section */
    unsigned max_pipeline; /* requests waiting for their response (1..256) */
    size_t max_uri;        /* URI bytes kept (1..HTTP1_URI_MAX-1) */
} http1_limits_t;

/* One completed exchange. */
typedef struct {
    char method[HTTP1_METHOD_MAX];
    char uri[HTTP1_URI_MAX]; /* query string and fragment stripped */
    int uri_truncated;       /* the path was longer than max_uri */
    int status;              /* final status, 100..599 (101: upgrade) */
    uint64_t req_bytes;      /* request head + body (chunk framing too) */
    uint64_t resp_bytes;     /* interim and final responses, head + body */
    uint64_t start_ns;       /* feed time of the first request byte */
    uint64_t end_ns;         /* feed time of the last response byte */
    http1_side_t side;       /* the traced process's role */
} http1_exchange_t;

typedef struct {
    uint64_t exchanges;     /* emitted */
    uint64_t interim;       /* 1xx responses other than 101 */
    uint64_t upgrades;      /* 101 or CONNECT 2xx: analysis ended */
    uint64_t unanswered;    /* requests still waiting at close */
    uint64_t truncated;     /* messages cut by the close */
    uint64_t bytes_ignored; /* fed after the analysis stopped */
    uint64_t errors[HTTP1_ERR_COUNT];
} http1_stats_t;

typedef struct _http1_conn_t http1_conn_t;

/* Called for every completed exchange, in response order. */
typedef void (http1_exchange_fn)(const http1_exchange_t *ex, void *arg);

/* Defaults: lines 8 KiB, heads 32 KiB, 100 fields, 16 pipelined, URI 256. */
void http1_limits_default(http1_limits_t *l);

/* NULL limits: the defaults. NULL when a limit is out of range or memory
 * is short. */
http1_conn_t *http1_conn_new(const http1_limits_t *limits);
void http1_conn_destroy(http1_conn_t **self_p);

/* Where exchanges go (none: they are only counted). */
void http1_conn_set_handler(http1_conn_t *self, http1_exchange_fn *fn,
                            void *arg);
/* What a message is made of, for a caller that keeps parts of it (trace
 * headers, sampled requests): the start line (request, status, and every
 * interim status line), each header field line (name: value, as sent; not
 * trailers), the end of a head, and body data as it goes by (chunk framing
 * left out; bytes skipped with http1_conn_skip are not seen). Lines come
 * without their CRLF. request: 1 for the request direction. Parts of a
 * response belong to the oldest unanswered request. */
typedef enum {
    HTTP1_PART_START = 0,
    HTTP1_PART_FIELD,
    HTTP1_PART_HEAD_END,
    HTTP1_PART_BODY
} http1_part_t;
typedef void (http1_part_fn)(int request, http1_part_t part, const char *data,
                             size_t len, void *arg);
/* Where parts go (none: not reported, the default). */
void http1_conn_set_part_handler(http1_conn_t *self, http1_part_fn *fn,
                                 void *arg);

/* The role when the caller knows it (accept vs connect); must come before
 * the first byte. Unknown: the first direction carrying a request line is
 * the client's. 0, or -1 when already fed or side is out of range. */
int http1_conn_set_side(http1_conn_t *self, http1_side_t side);
http1_side_t http1_conn_side(const http1_conn_t *self);

/* Bytes of one direction, read or written at ts_ns (CLOCK_MONOTONIC
 * or any clock, the same for both directions; fed in time order).
 * 0 while the connection is analysed, -1 once it is not (error, upgrade,
 * close) or on bad arguments. */
int http1_conn_feed(http1_conn_t *self, http1_dir_t dir, const void *buf,
                    size_t len, uint64_t ts_ns);
/* n bytes of one direction went by at ts_ns without being captured (the
 * capture keeps a bounded prefix of each read or write). Inside a body of
 * known length, a chunk's data or a close-delimited body they are counted
 * in the message's size and the analysis goes on; anywhere else (a head, a
 * chunk-size line, between messages) where the next message starts is
 * unknown, so the analysis ends with HTTP1_ERR_GAP. Returns as feed. */
int http1_conn_skip(http1_conn_t *self, http1_dir_t dir, uint64_t n,
                    uint64_t ts_ns);
/* The connection closed: completes a close-delimited response, counts
 * what is left unanswered or cut. The analysis ends. */
void http1_conn_close(http1_conn_t *self);

/* 1 while bytes are still analysed. */
int http1_conn_active(const http1_conn_t *self);
const http1_stats_t *http1_conn_stats(const http1_conn_t *self);
/* Adds src into dst (a stage sums its connections). */
void http1_stats_add(http1_stats_t *dst, const http1_stats_t *src);
/* Heap bytes this connection holds: fixed by its limits. */
size_t http1_conn_memory(const http1_conn_t *self);

/* What the first bytes of a stream are, for a protocol table's detection
 * step (empty lines before a message are skipped): REQUEST or RESPONSE
 * when the first line is a whole HTTP/1.x request or status line, MORE
 * when they could still start one but hold no line end yet, NO when they
 * cannot. */
typedef enum {
    HTTP1_DETECT_NO = 0,
    HTTP1_DETECT_MORE,
    HTTP1_DETECT_REQUEST,
    HTTP1_DETECT_RESPONSE
} http1_detect_t;
http1_detect_t http1_detect(const void *buf, size_t len);

/* "not_http", "grammar", ... (for counters); "?" out of range. */
const char *http1_err_name(http1_err_t err);

#endif
