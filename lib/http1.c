/* HTTP/1.x stream analysis (see http1.h). Each direction is a small state
 * machine: lines (start line, fields, chunk sizes, trailers) collect in a
 * buffer of max_line bytes, bodies are counted without being kept. The
 * request direction pushes one pending entry per request line into a
 * ring of max_pipeline entries; the response direction completes the
 * oldest one, which is how pipelined responses pair with their requests
 * (RFC 9112 section 9.3.2: responses come in request order). */
#include "http1.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
    P_START,      /* request or status line (leading empty lines skipped) */
    P_HEADERS,    /* field lines until the empty line */
    P_BODY_LEN,   /* Content-Length bytes left */
    P_CHUNK_SIZE, /* chunk-size [; ext] line */
    P_CHUNK_DATA, /* chunk bytes left */
    P_CHUNK_END,  /* the CRLF after a chunk's data */
    P_TRAILERS,   /* trailer fields until the empty line */
    P_BODY_CLOSE  /* everything until the close */
} s_state_t;

typedef struct {
    s_state_t st;
    char *line;           /* max_line + 1 bytes */
    size_t line_len;
    size_t head_bytes;    /* of the current head or trailer section */
    unsigned fields;      /* of the current head or trailer section */
    uint64_t left;        /* body or chunk bytes still to come */
    uint64_t msg_bytes;   /* of the current message (responses: + interim) */
    uint64_t last_ts;     /* of the last byte consumed */
    uint64_t first_ts;    /* of the current start line's first byte */
    int64_t content_length; /* -1: none */
    int chunked;          /* last transfer coding is chunked */
    int te_other;         /* a transfer coding, not chunked last */
    uint64_t seq;         /* request direction: entry of this message */
} s_dir_t;

typedef struct {
    uint64_t seq;
    http1_exchange_t ex;
    int is_head;
    int is_connect;
} s_pending_t;

struct _http1_conn_t {
    http1_limits_t lim;
    s_dir_t dir[2];
    int req_dir;          /* -1 until known */
    int active;
    int fed;
    http1_side_t side;
    s_pending_t *ring;    /* max_pipeline entries */
    uint64_t head_seq;    /* oldest unanswered */
    uint64_t tail_seq;    /* next to push */
    http1_exchange_fn *fn;
    void *arg;
    http1_part_fn *part_fn;
    void *part_arg;
    http1_stats_t stats;
};

static const char *s_err_names[HTTP1_ERR_COUNT] = {
    [HTTP1_ERR_NOT_HTTP] = "not_http",
    [HTTP1_ERR_GRAMMAR] = "grammar",
    [HTTP1_ERR_LINE_TOO_LONG] = "line_too_long",
    [HTTP1_ERR_HEAD_TOO_LARGE] = "head_too_large",
    [HTTP1_ERR_TOO_MANY_HEADERS] = "too_many_headers",
    [HTTP1_ERR_PIPELINE_DEPTH] = "pipeline_depth",
    [HTTP1_ERR_UNEXPECTED_RESPONSE] = "unexpected_response",
    [HTTP1_ERR_GAP] = "gap",
};

const char *http1_err_name(http1_err_t err)
{
    if ((unsigned)err >= HTTP1_ERR_COUNT)
        return "?";
    return s_err_names[err];
}

void http1_limits_default(http1_limits_t *l)
{
    l->max_line = 8192;
    l->max_head = 32768;
    l->max_headers = 100;
    l->max_pipeline = 16;
    l->max_uri = 256;
}

static void s_dir_reset(s_dir_t *d)
{
    d->st = P_START;
    d->line_len = 0;
    d->head_bytes = 0;
    d->fields = 0;
    d->left = 0;
    d->msg_bytes = 0;
    d->content_length = -1;
    d->chunked = 0;
    d->te_other = 0;
}

http1_conn_t *http1_conn_new(const http1_limits_t *limits)
{
    http1_conn_t *self = NULL;
    http1_limits_t lim;
    if (limits)
        lim = *limits;
    else
        http1_limits_default(&lim);
    if (lim.max_line < 64 || lim.max_line > 65536 || lim.max_head < 64
        || lim.max_headers < 1 || lim.max_pipeline < 1
        || lim.max_pipeline > 256 || lim.max_uri < 1
        || lim.max_uri > HTTP1_URI_MAX - 1)
        goto cleanup;
    self = calloc(1, sizeof *self);
    if (!self)
        goto cleanup;
    self->lim = lim;
    self->req_dir = -1;
    self->active = 1;
    self->ring = calloc(lim.max_pipeline, sizeof *self->ring);
    self->dir[0].line = malloc(lim.max_line + 1);
    self->dir[1].line = malloc(lim.max_line + 1);
    if (!self->ring || !self->dir[0].line || !self->dir[1].line) {
        http1_conn_destroy(&self);
        goto cleanup;
    }
    s_dir_reset(&self->dir[0]);
    s_dir_reset(&self->dir[1]);
cleanup:
    return self;
}

void http1_conn_destroy(http1_conn_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    http1_conn_t *self = *self_p;
    free(self->dir[0].line);
    free(self->dir[1].line);
    free(self->ring);
    free(self);
    *self_p = NULL;
}

void http1_conn_set_handler(http1_conn_t *self, http1_exchange_fn *fn,
                            void *arg)
{
    if (!self)
        return;
    self->fn = fn;
    self->arg = arg;
}

void http1_conn_set_part_handler(http1_conn_t *self, http1_part_fn *fn,
                                 void *arg)
{
    if (!self)
        return;
    self->part_fn = fn;
    self->part_arg = arg;
}

int http1_conn_set_side(http1_conn_t *self, http1_side_t side)
{
    if (!self || self->fed || (unsigned)side > HTTP1_SIDE_SERVER)
        return -1;
    self->side = side;
    self->req_dir = side == HTTP1_SIDE_CLIENT ? HTTP1_DIR_OUT
                  : side == HTTP1_SIDE_SERVER ? HTTP1_DIR_IN : -1;
    return 0;
}

http1_side_t http1_conn_side(const http1_conn_t *self)
{
    return self ? self->side : HTTP1_SIDE_UNKNOWN;
}

int http1_conn_active(const http1_conn_t *self)
{
    return self && self->active;
}

const http1_stats_t *http1_conn_stats(const http1_conn_t *self)
{
    return self ? &self->stats : NULL;
}

void http1_stats_add(http1_stats_t *dst, const http1_stats_t *src)
{
    if (!dst || !src)
        return;
    dst->exchanges += src->exchanges;
    dst->interim += src->interim;
    dst->upgrades += src->upgrades;
    dst->unanswered += src->unanswered;
    dst->truncated += src->truncated;
    dst->bytes_ignored += src->bytes_ignored;
    for (int i = 0; i < HTTP1_ERR_COUNT; i++)
        dst->errors[i] += src->errors[i];
}

size_t http1_conn_memory(const http1_conn_t *self)
{
    if (!self)
        return 0;
    return sizeof *self + 2 * (self->lim.max_line + 1)
         + self->lim.max_pipeline * sizeof *self->ring;
}

/* ------------------------------------------------------------ helpers */

static void s_fail(http1_conn_t *self, http1_err_t why)
{
    self->stats.errors[why]++;
    self->active = 0;
}

static void s_part(http1_conn_t *self, int d, http1_part_t part,
                   const void *data, size_t len)
{
    if (self->part_fn)
        self->part_fn(d == self->req_dir, part, data, len, self->part_arg);
}

static s_pending_t *s_pending(http1_conn_t *self, uint64_t seq)
{
    if (seq < self->head_seq || seq >= self->tail_seq)
        return NULL;
    return &self->ring[seq % self->lim.max_pipeline];
}

/* Bytes that belong to the current message of direction d. */
static void s_account(http1_conn_t *self, int d, size_t n, uint64_t ts)
{
    s_dir_t *dir = &self->dir[d];
    dir->msg_bytes += n;
    dir->last_ts = ts;
    if (d == self->req_dir && dir->st != P_START) {
        s_pending_t *p = s_pending(self, dir->seq);
        if (p)
            p->ex.req_bytes += n;
    }
}

static int s_is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int s_method_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

/* Could b[0..n) start a request line? (A method is uppercase here: every
 * registered method is, and it keeps binary streams out early.) */
static int s_could_be_request(const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b[i] == ' ')
            return i > 0;
        if (!s_method_char((unsigned char)b[i]) || i >= HTTP1_METHOD_MAX - 1)
            return 0;
    }
    return 1;
}

static int s_could_be_status(const char *b, size_t n)
{
    return memcmp(b, "HTTP/", n < 5 ? n : 5) == 0;
}

/* A line may hold no control character but HTAB (obs-text is fine). */
static int s_line_clean(const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

static int s_version_ok(const char *v, size_t n)
{
    return n == 8 && memcmp(v, "HTTP/1.", 7) == 0 && v[7] >= '0'
        && v[7] <= '9';
}

/* ---------------------------------------------------------- messages */

static void s_emit(http1_conn_t *self, s_pending_t *p, int status,
                   uint64_t resp_bytes, uint64_t end_ts)
{
    p->ex.status = status;
    p->ex.resp_bytes = resp_bytes;
    p->ex.end_ns = end_ts > p->ex.start_ns ? end_ts : p->ex.start_ns;
    p->ex.side = self->side;
    self->stats.exchanges++;
    if (self->fn)
        self->fn(&p->ex, self->arg);
    self->head_seq++;
}

static void s_msg_done(http1_conn_t *self, int d)
{
    s_dir_t *dir = &self->dir[d];
    if (d != self->req_dir) {
        s_pending_t *p = s_pending(self, self->head_seq);
        if (p)
            s_emit(self, p, p->ex.status, dir->msg_bytes, dir->last_ts);
    }
    s_dir_reset(dir);
}

/* "METHOD SP target SP HTTP/1.d": -1 with the method's end and the
 * target's span, or the error. */
static int s_parse_request(const char *b, size_t n, const char **sp1_p,
                           const char **target_p, const char **sp2_p)
{
    const char *sp1 = memchr(b, ' ', n);
    if (!sp1 || sp1 == b || (size_t)(sp1 - b) >= HTTP1_METHOD_MAX)
        return HTTP1_ERR_NOT_HTTP;
    const char *target = sp1 + 1;
    const char *end = b + n;
    const char *sp2 = memchr(target, ' ', (size_t)(end - target));
    if (!sp2 || sp2 == target)
        return HTTP1_ERR_GRAMMAR;
    if (!s_version_ok(sp2 + 1, (size_t)(end - sp2 - 1)))
        return HTTP1_ERR_NOT_HTTP;  /* HTTP/2's preface, HTTP/0.9, ... */
    for (const char *q = b; q < sp1; q++)
        if (!s_method_char((unsigned char)*q))
            return HTTP1_ERR_NOT_HTTP;
    *sp1_p = sp1;
    *target_p = target;
    *sp2_p = sp2;
    return -1;
}

/* "HTTP/1.d SP 3DIGIT [SP reason]": -1 and the status, or the error. */
static int s_parse_status(const char *b, size_t n, int *status_p)
{
    if (n < 12 || !s_version_ok(b, 8) || b[8] != ' ')
        return HTTP1_ERR_GRAMMAR;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (b[i] < '0' || b[i] > '9')
            return HTTP1_ERR_GRAMMAR;
        status = status * 10 + (b[i] - '0');
    }
    if (status < 100 || status > 599 || (n > 12 && b[12] != ' '))
        return HTTP1_ERR_GRAMMAR;
    *status_p = status;
    return -1;
}

static int s_request_line(http1_conn_t *self, int d, const char *b, size_t n)
{
    const char *sp1 = NULL, *target = NULL, *sp2 = NULL;
    int rc = s_parse_request(b, n, &sp1, &target, &sp2);
    if (rc >= 0)
        return rc;
    if (self->tail_seq - self->head_seq >= self->lim.max_pipeline)
        return HTTP1_ERR_PIPELINE_DEPTH;

    if (self->req_dir < 0) {
        self->req_dir = d;
        self->side = d == HTTP1_DIR_OUT ? HTTP1_SIDE_CLIENT
                                        : HTTP1_SIDE_SERVER;
    }
    s_dir_t *dir = &self->dir[d];
    s_pending_t *p = &self->ring[self->tail_seq % self->lim.max_pipeline];
    memset(p, 0, sizeof *p);
    p->seq = self->tail_seq++;
    dir->seq = p->seq;
    size_t mlen = (size_t)(sp1 - b);
    memcpy(p->ex.method, b, mlen);
    p->ex.method[mlen] = '\0';
    p->is_head = strcmp(p->ex.method, "HEAD") == 0;
    p->is_connect = strcmp(p->ex.method, "CONNECT") == 0;
    size_t ulen = 0;
    while (target + ulen < sp2 && target[ulen] != '?' && target[ulen] != '#')
        ulen++;
    if (ulen > self->lim.max_uri) {
        ulen = self->lim.max_uri;
        p->ex.uri_truncated = 1;
    }
    memcpy(p->ex.uri, target, ulen);
    p->ex.uri[ulen] = '\0';
    p->ex.start_ns = dir->first_ts;
    /* the request line's bytes came before its entry existed */
    p->ex.req_bytes = dir->msg_bytes;
    return -1;
}

static int s_status_line(http1_conn_t *self, const char *b, size_t n)
{
    int status = 0;
    int rc = s_parse_status(b, n, &status);
    if (rc >= 0)
        return rc;
    s_pending_t *p = s_pending(self, self->head_seq);
    if (!p)
        return HTTP1_ERR_UNEXPECTED_RESPONSE;
    p->ex.status = status;
    return -1;
}

/* Trims optional whitespace around a field value. */
static void s_trim(const char **v, size_t *n)
{
    while (*n && (**v == ' ' || **v == '\t')) {
        (*v)++;
        (*n)--;
    }
    while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
        (*n)--;
}

static int s_field(http1_conn_t *self, int d, const char *b, size_t n,
                   int trailer)
{
    s_dir_t *dir = &self->dir[d];
    if (++dir->fields > self->lim.max_headers)
        return HTTP1_ERR_TOO_MANY_HEADERS;
    const char *colon = memchr(b, ':', n);
    if (!colon || colon == b)
        return HTTP1_ERR_GRAMMAR; /* obs-fold lines land here too */
    size_t nlen = (size_t)(colon - b);
    for (size_t i = 0; i < nlen; i++)
        if (!s_is_tchar((unsigned char)b[i]))
            return HTTP1_ERR_GRAMMAR;
    if (trailer)
        return -1;  /* framing fields in trailers mean nothing */
    const char *v = colon + 1;
    size_t vlen = (size_t)(b + n - v);
    s_trim(&v, &vlen);
    if (nlen == 14 && strncasecmp(b, "Content-Length", 14) == 0) {
        if (vlen == 0 || vlen > 18)
            return HTTP1_ERR_GRAMMAR;
        int64_t cl = 0;
        for (size_t i = 0; i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9')
                return HTTP1_ERR_GRAMMAR;
            cl = cl * 10 + (v[i] - '0');
        }
        if (dir->content_length >= 0 && dir->content_length != cl)
            return HTTP1_ERR_GRAMMAR;  /* request smuggling material */
        dir->content_length = cl;
    } else if (nlen == 17 && strncasecmp(b, "Transfer-Encoding", 17) == 0) {
        /* codings accumulate over repeated fields; chunked must be last */
        const char *last = v;
        size_t llen = vlen;
        const char *comma;
        while ((comma = memchr(last, ',', llen))) {
            llen -= (size_t)(comma + 1 - last);
            last = comma + 1;
        }
        s_trim(&last, &llen);
        if (llen == 7 && strncasecmp(last, "chunked", 7) == 0) {
            dir->chunked = 1;
            dir->te_other = 0;
        } else if (vlen) {
            dir->chunked = 0;
            dir->te_other = 1;
        }
    }
    return -1;
}

/* The head of direction d is complete: where its body goes. */
static int s_head_done(http1_conn_t *self, int d)
{
    s_dir_t *dir = &self->dir[d];
    if (d == self->req_dir) {
        if (dir->te_other)
            return HTTP1_ERR_GRAMMAR; /* RFC 9112 6.3: length unknown */
        if (dir->chunked) {
            dir->st = P_CHUNK_SIZE;
        } else if (dir->content_length > 0) {
            dir->left = (uint64_t)dir->content_length;
            dir->st = P_BODY_LEN;
        } else {
            s_msg_done(self, d);
        }
        return -1;
    }
    s_pending_t *p = s_pending(self, self->head_seq);
    if (!p)
        return HTTP1_ERR_UNEXPECTED_RESPONSE;
    int status = p->ex.status;
    if (status == 101 || (p->is_connect && status >= 200 && status < 300)) {
        /* what follows is another protocol */
        s_emit(self, p, status, dir->msg_bytes, dir->last_ts);
        self->stats.upgrades++;
        self->active = 0;
        return -1;
    }
    if (status < 200) {
        /* interim: the final response follows; its bytes add up */
        uint64_t kept = dir->msg_bytes;
        s_dir_reset(dir);
        dir->msg_bytes = kept;
        self->stats.interim++;
        return -1;
    }
    if (p->is_head || status == 204 || status == 304) {
        s_msg_done(self, d);
    } else if (dir->chunked) {
        dir->st = P_CHUNK_SIZE;
    } else if (dir->content_length >= 0 && !dir->te_other) {
        dir->left = (uint64_t)dir->content_length;
        dir->st = P_BODY_LEN;
        if (!dir->left)
            s_msg_done(self, d);
    } else {
        dir->st = P_BODY_CLOSE;
    }
    return -1;
}

static int s_chunk_size(s_dir_t *dir, const char *b, size_t n)
{
    uint64_t size = 0;
    size_t i = 0;
    for (; i < n; i++) {
        char c = b[i];
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            break;
        if (i >= 15)
            return HTTP1_ERR_GRAMMAR; /* no chunk is 2^60 bytes */
        size = size * 16 + (uint64_t)v;
    }
    if (i == 0)
        return HTTP1_ERR_GRAMMAR;
    /* BWS, then extensions we do not interpret */
    while (i < n && (b[i] == ' ' || b[i] == '\t'))
        i++;
    if (i < n && b[i] != ';')
        return HTTP1_ERR_GRAMMAR;
    if (size == 0) {
        dir->st = P_TRAILERS;
        dir->head_bytes = 0;
        dir->fields = 0;
    } else {
        dir->left = size;
        dir->st = P_CHUNK_DATA;
    }
    return -1;
}

/* A complete line of direction d (CR and LF stripped). -1 or an error. */
static int s_line(http1_conn_t *self, int d, const char *b, size_t n)
{
    s_dir_t *dir = &self->dir[d];
    if (!s_line_clean(b, n))
        return dir->st == P_START && self->req_dir < 0 ? HTTP1_ERR_NOT_HTTP
                                                       : HTTP1_ERR_GRAMMAR;
    switch (dir->st) {
    case P_START:
        if (self->req_dir < 0 ? s_could_be_status(b, n) && n >= 5
                              : d != self->req_dir) {
            if (self->req_dir < 0)
                return HTTP1_ERR_UNEXPECTED_RESPONSE;
            int rc = s_status_line(self, b, n);
            if (rc < 0) {
                dir->st = P_HEADERS;
                s_part(self, d, HTTP1_PART_START, b, n);
            }
            return rc;
        } else {
            int rc = s_request_line(self, d, b, n);
            if (rc < 0) {
                dir->st = P_HEADERS;
                s_part(self, d, HTTP1_PART_START, b, n);
            }
            return rc;
        }
    case P_HEADERS: {
        if (n == 0) {
            /* before the head's end decides: it may emit the exchange */
            s_part(self, d, HTTP1_PART_HEAD_END, b, 0);
            return s_head_done(self, d);
        }
        int rc = s_field(self, d, b, n, 0);
        if (rc < 0)
            s_part(self, d, HTTP1_PART_FIELD, b, n);
        return rc;
    }
    case P_CHUNK_SIZE:
        return s_chunk_size(dir, b, n);
    case P_CHUNK_END:
        if (n != 0)
            return HTTP1_ERR_GRAMMAR;
        dir->st = P_CHUNK_SIZE;
        return -1;
    case P_TRAILERS:
        if (n == 0) {
            s_msg_done(self, d);
            return -1;
        }
        return s_field(self, d, b, n, 1);
    default:
        return HTTP1_ERR_GRAMMAR;
    }
}

/* Consumes a prefix of p[0..n) in direction d; returns its length. */
static size_t s_step(http1_conn_t *self, int d, const uint8_t *p, size_t n,
                     uint64_t ts)
{
    s_dir_t *dir = &self->dir[d];
    size_t take;
    switch (dir->st) {
    case P_BODY_LEN:
    case P_CHUNK_DATA:
        take = n < dir->left ? n : (size_t)dir->left;
        s_account(self, d, take, ts);
        s_part(self, d, HTTP1_PART_BODY, p, take);
        dir->left -= take;
        if (!dir->left) {
            if (dir->st == P_CHUNK_DATA)
                dir->st = P_CHUNK_END;
            else
                s_msg_done(self, d);
        }
        return take;
    case P_BODY_CLOSE:
        s_account(self, d, n, ts);
        s_part(self, d, HTTP1_PART_BODY, p, n);
        return n;
    default:
        break;
    }
    /* a line state */
    if (dir->st == P_START && dir->line_len == 0) {
        /* empty lines before a message are tolerated (RFC 9112 2.2) */
        size_t skip = 0;
        while (skip < n && (p[skip] == '\r' || p[skip] == '\n'))
            skip++;
        if (skip)
            return skip;
        dir->first_ts = ts; /* the message's first byte */
    }
    const uint8_t *lf = memchr(p, '\n', n);
    take = lf ? (size_t)(lf - p) + 1 : n;
    size_t body = lf ? take - 1 : take; /* without the LF */
    int in_head = dir->st == P_START || dir->st == P_HEADERS
               || dir->st == P_TRAILERS;
    if (in_head && dir->head_bytes + take > self->lim.max_head) {
        s_fail(self, HTTP1_ERR_HEAD_TOO_LARGE);
        return n;
    }
    /* the CR of CRLF may sit in the buffer: room for max_line + CR */
    if (dir->line_len + body > self->lim.max_line + 1) {
        s_fail(self, HTTP1_ERR_LINE_TOO_LONG);
        return n;
    }
    size_t before = dir->line_len;
    memcpy(dir->line + dir->line_len, p, body);
    dir->line_len += body;
    if (in_head)
        dir->head_bytes += take;
    s_account(self, d, take, ts);
    if (dir->st == P_START && before < 24) {
        /* reject what cannot be HTTP before waiting for a whole line */
        size_t m = dir->line_len < 24 ? dir->line_len : 24;
        int ok = self->req_dir < 0
            ? s_could_be_request(dir->line, m) || s_could_be_status(dir->line, m)
            : d == self->req_dir ? s_could_be_request(dir->line, m)
                                 : s_could_be_status(dir->line, m);
        if (!ok) {
            s_fail(self, d == self->req_dir || self->req_dir < 0
                             ? HTTP1_ERR_NOT_HTTP : HTTP1_ERR_GRAMMAR);
            return n;
        }
    }
    if (!lf)
        return take;
    size_t len = dir->line_len;
    if (len && dir->line[len - 1] == '\r')
        len--;
    if (len > self->lim.max_line) {
        s_fail(self, HTTP1_ERR_LINE_TOO_LONG);
        return n;
    }
    dir->line_len = 0;
    int rc = s_line(self, d, dir->line, len);
    if (rc >= 0)
        s_fail(self, (http1_err_t)rc);
    return take;
}

int http1_conn_feed(http1_conn_t *self, http1_dir_t dir, const void *buf,
                    size_t len, uint64_t ts_ns)
{
    if (!self || (dir != HTTP1_DIR_OUT && dir != HTTP1_DIR_IN)
        || (!buf && len))
        return -1;
    self->fed = 1;
    const uint8_t *p = buf;
    while (len && self->active) {
        size_t used = s_step(self, (int)dir, p, len, ts_ns);
        p += used;
        len -= used;
    }
    self->stats.bytes_ignored += len;
    return self->active ? 0 : -1;
}

int http1_conn_skip(http1_conn_t *self, http1_dir_t dir, uint64_t n,
                    uint64_t ts_ns)
{
    if (!self || (dir != HTTP1_DIR_OUT && dir != HTTP1_DIR_IN))
        return -1;
    self->fed = 1;
    int d = (int)dir;
    while (n && self->active) {
        s_dir_t *sd = &self->dir[d];
        if (sd->st == P_BODY_CLOSE) {
            s_account(self, d, (size_t)n, ts_ns);
            n = 0;
        } else if ((sd->st == P_BODY_LEN || sd->st == P_CHUNK_DATA)) {
            uint64_t take = n < sd->left ? n : sd->left;
            s_account(self, d, (size_t)take, ts_ns);
            sd->left -= take;
            n -= take;
            if (!sd->left) {
                if (sd->st == P_CHUNK_DATA)
                    sd->st = P_CHUNK_END;
                else
                    s_msg_done(self, d);
            }
        } else {
            s_fail(self, HTTP1_ERR_GAP);
        }
    }
    self->stats.bytes_ignored += n;
    return self->active ? 0 : -1;
}

void http1_conn_close(http1_conn_t *self)
{
    if (!self || !self->active)
        return;
    self->fed = 1;
    int rd = self->req_dir;
    if (rd >= 0) {
        s_dir_t *resp = &self->dir[!rd];
        if (resp->st == P_BODY_CLOSE)
            s_msg_done(self, !rd);
        else if (resp->st != P_START || resp->line_len)
            self->stats.truncated++;
        s_dir_t *req = &self->dir[rd];
        if (req->st != P_START || req->line_len) {
            self->stats.truncated++;
        }
        self->stats.unanswered += self->tail_seq - self->head_seq;
    }
    self->head_seq = self->tail_seq;
    self->active = 0;
}

http1_detect_t http1_detect(const void *buf, size_t len)
{
    const char *b = buf;
    if (!b)
        return len ? HTTP1_DETECT_NO : HTTP1_DETECT_MORE;
    while (len && (*b == '\r' || *b == '\n')) {
        b++;
        len--;
    }
    const char *lf = memchr(b, '\n', len);
    size_t n = lf ? (size_t)(lf - b) : len;
    if (lf && n && b[n - 1] == '\r')
        n--;
    size_t m = n < 24 ? n : 24;
    int req = s_could_be_request(b, m), resp = s_could_be_status(b, m);
    if (!req && !resp)
        return HTTP1_DETECT_NO;
    if (!lf)
        return HTTP1_DETECT_MORE;
    if (!s_line_clean(b, n))
        return HTTP1_DETECT_NO;
    const char *sp1, *target, *sp2;
    int status;
    if (resp && n >= 5 && s_parse_status(b, n, &status) < 0)
        return HTTP1_DETECT_RESPONSE;
    if (req && s_parse_request(b, n, &sp1, &target, &sp2) < 0)
        return HTTP1_DETECT_REQUEST;
    return HTTP1_DETECT_NO;
}
