/* Bus payload codec. Encoding uses msgpack-c's packer. Decoding uses a
 * bounded cursor of our own instead of msgpack_unpack: msgpack-c allocates
 * an array's storage from the count in its header before reading any
 * element, so a 6-byte payload could ask for gigabytes. Here every count is
 * checked against the bytes that remain (each element takes at least one)
 * and against the per-field bound before anything is allocated. */
#include "wire.h"
#include "monitors.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ================================================================ buffer */

void wire_buf_init(wire_buf_t *b) { memset(b, 0, sizeof *b); }
void wire_buf_reset(wire_buf_t *b) { b->len = 0; }

void wire_buf_release(wire_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int s_buf_write(void *data, const char *buf, size_t len)
{
    wire_buf_t *b = data;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, buf, len);
    b->len += len;
    return 0;
}

/* ================================================================ topics */

uint32_t wire_pid_bucket(uint32_t pid)
{
    /* Multiplicative hash so consecutive pids spread over the buckets. */
    return (uint32_t)((pid * 2654435761u) >> 16) % WIRE_BUCKETS;
}

void wire_sharded_topic(char *out, size_t size, const char *prefix,
                        uint32_t pid)
{
    snprintf(out, size, "%s%02u", prefix, wire_pid_bucket(pid));
}

void wire_header_set(wire_header_t *h, const char *sender, uint64_t seq)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->version = WIRE_VERSION;
    snprintf(h->sender, sizeof h->sender, "%s", sender ? sender : "");
    h->seq = seq;
    h->ts_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ================================================================ reader */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    arena_t *arena;
    char *err;
    size_t errlen;
    const char *field;   /* what is being read, for the error message */
} rd_t;

static int s_fail(rd_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int s_fail(rd_t *r, const char *fmt, ...)
{
    if (r->err && r->errlen && !r->err[0]) {
        char what[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(r->err, r->errlen, "%s: %s", r->field ? r->field : "payload",
                 what);
    }
    return -1;
}

static size_t s_left(const rd_t *r) { return (size_t)(r->end - r->p); }

static int s_take(rd_t *r, size_t n, const uint8_t **out)
{
    if (s_left(r) < n)
        return s_fail(r, "truncated");
    *out = r->p;
    r->p += n;
    return 0;
}

static uint64_t s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static int s_array(rd_t *r, uint32_t *n, uint32_t max)
{
    const uint8_t *p = NULL;
    if (s_take(r, 1, &p))
        return -1;
    uint64_t count;
    if ((*p & 0xf0) == 0x90) {
        count = *p & 0x0f;
    } else if (*p == 0xdc || *p == 0xdd) {
        int w = *p == 0xdc ? 2 : 4;
        if (s_take(r, (size_t)w, &p))
            return -1;
        count = s_be(p, w);
    } else {
        return s_fail(r, "expected an array (type byte 0x%02x)", *p);
    }
    if (count > max)
        return s_fail(r, "%llu elements exceed the bound %u",
                      (unsigned long long)count, max);
    if (count > s_left(r))
        return s_fail(r, "%llu elements cannot fit in %zu bytes",
                      (unsigned long long)count, s_left(r));
    *n = (uint32_t)count;
    return 0;
}

/* Non-negative integer up to max. */
static int s_uint(rd_t *r, uint64_t *v, uint64_t max)
{
    const uint8_t *p = NULL;
    if (s_take(r, 1, &p))
        return -1;
    uint8_t t = *p;
    uint64_t val;
    if (t <= 0x7f) {
        val = t;
    } else if (t >= 0xcc && t <= 0xcf) {
        int w = 1 << (t - 0xcc);
        if (s_take(r, (size_t)w, &p))
            return -1;
        val = s_be(p, w);
    } else if (t >= 0xd0 && t <= 0xd3) {
        int w = 1 << (t - 0xd0);
        if (s_take(r, (size_t)w, &p))
            return -1;
        int64_t sv = (int64_t)s_be(p, w);
        if (w < 8) { /* sign-extend */
            int shift = 64 - 8 * w;
            sv = (int64_t)((uint64_t)sv << shift) >> shift;
        }
        if (sv < 0)
            return s_fail(r, "negative integer %lld", (long long)sv);
        val = (uint64_t)sv;
    } else {
        return s_fail(r, "expected an unsigned integer (type byte 0x%02x)", t);
    }
    if (val > max)
        return s_fail(r, "value %llu exceeds %llu", (unsigned long long)val,
                      (unsigned long long)max);
    *v = val;
    return 0;
}

static int s_u32(rd_t *r, uint32_t *v, uint32_t max)
{
    uint64_t x;
    if (s_uint(r, &x, max))
        return -1;
    *v = (uint32_t)x;
    return 0;
}

static int s_u8(rd_t *r, uint8_t *v, uint8_t max)
{
    uint64_t x;
    if (s_uint(r, &x, max))
        return -1;
    *v = (uint8_t)x;
    return 0;
}

static int s_double(rd_t *r, double *v)
{
    if (s_left(r) < 1)
        return s_fail(r, "truncated");
    uint8_t t = *r->p;
    const uint8_t *p = NULL;
    if (t == 0xcb || t == 0xca) {
        r->p++;
        int w = t == 0xcb ? 8 : 4;
        if (s_take(r, (size_t)w, &p))
            return -1;
        uint64_t bits = s_be(p, w);
        if (w == 8) {
            memcpy(v, &bits, 8);
        } else {
            uint32_t b32 = (uint32_t)bits;
            float f;
            memcpy(&f, &b32, 4);
            *v = f;
        }
        return 0;
    }
    uint64_t u;
    if (s_uint(r, &u, UINT64_MAX))
        return -1;
    *v = (double)u;
    return 0;
}

/* Raw bytes of a str or bin, pointing into the payload. */
static int s_bytes(rd_t *r, int want_bin, const uint8_t **out, uint32_t *len,
                   uint32_t max)
{
    const uint8_t *p = NULL;
    if (s_take(r, 1, &p))
        return -1;
    uint8_t t = *p;
    uint64_t n;
    if (!want_bin && (t & 0xe0) == 0xa0) {
        n = t & 0x1f;
    } else if ((!want_bin && t >= 0xd9 && t <= 0xdb) ||
               (want_bin && t >= 0xc4 && t <= 0xc6)) {
        int w = 1 << (want_bin ? t - 0xc4 : t - 0xd9);
        if (s_take(r, (size_t)w, &p))
            return -1;
        n = s_be(p, w);
    } else {
        return s_fail(r, "expected %s (type byte 0x%02x)",
                      want_bin ? "binary" : "a string", t);
    }
    if (n > max)
        return s_fail(r, "%llu bytes exceed the bound %u",
                      (unsigned long long)n, max);
    if (s_take(r, (size_t)n, out))
        return -1;
    *len = (uint32_t)n;
    return 0;
}

/* A string copied into the arena, NUL terminated; embedded NULs refused. */
static int s_str(rd_t *r, const char **out, uint32_t max)
{
    const uint8_t *b;
    uint32_t n;
    if (s_bytes(r, 0, &b, &n, max))
        return -1;
    if (n && memchr(b, 0, n))
        return s_fail(r, "string contains a NUL byte");
    char *s = arena_strndup(r->arena, (const char *)b, n);
    if (!s)
        return s_fail(r, "arena limit reached");
    *out = s;
    return 0;
}

static int s_str_into(rd_t *r, char *out, size_t size)
{
    const uint8_t *b;
    uint32_t n;
    if (s_bytes(r, 0, &b, &n, (uint32_t)size - 1))
        return -1;
    if (n && memchr(b, 0, n))
        return s_fail(r, "string contains a NUL byte");
    memcpy(out, b, n);
    out[n] = '\0';
    return 0;
}

static int s_is_nil(rd_t *r)
{
    if (s_left(r) >= 1 && *r->p == 0xc0) {
        r->p++;
        return 1;
    }
    return 0;
}

static void *s_alloc(rd_t *r, size_t n, size_t size)
{
    void *p = arena_calloc(r->arena, n ? n : 1, size);
    if (!p)
        s_fail(r, "arena limit reached");
    return p;
}

static int s_reader_init(rd_t *r, const void *data, size_t len,
                         arena_t *arena, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->p = data;
    r->end = r->p + len;
    r->arena = arena;
    r->err = err;
    r->errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
    if (!data || !arena)
        return s_fail(r, "no payload");
    if (len > WIRE_MAX_PAYLOAD)
        return s_fail(r, "payload of %zu bytes exceeds %u", len,
                      WIRE_MAX_PAYLOAD);
    return 0;
}

/* [version, sender, seq, ts, ...body]: reads the envelope and checks that
 * the array has 4 + body_fields elements, or up to `optional` more
 * (trailing fields added after version 1 shipped; *extra gets how many
 * are present). */
static int s_header_opt(rd_t *r, wire_header_t *h, uint32_t body_fields,
                        uint32_t optional, uint32_t *extra)
{
    uint32_t n;
    r->field = "envelope";
    if (s_array(r, &n, 64))
        return -1;
    r->field = "version";
    uint64_t v;
    if (s_uint(r, &v, UINT32_MAX))
        return -1;
    if (v != WIRE_VERSION)
        return s_fail(r, "unsupported schema version %llu (want %d)",
                      (unsigned long long)v, WIRE_VERSION);
    h->version = (uint32_t)v;
    if (n < 4 + body_fields || n > 4 + body_fields + optional) {
        r->field = "envelope";
        if (!optional)
            return s_fail(r, "%u fields, want %u", n, 4 + body_fields);
        return s_fail(r, "%u fields, want %u to %u", n, 4 + body_fields,
                      4 + body_fields + optional);
    }
    if (extra)
        *extra = n - 4 - body_fields;
    r->field = "sender";
    if (s_str_into(r, h->sender, sizeof h->sender))
        return -1;
    r->field = "seq";
    if (s_uint(r, &h->seq, UINT64_MAX))
        return -1;
    r->field = "ts_ns";
    return s_uint(r, &h->ts_ns, UINT64_MAX);
}

static int s_header(rd_t *r, wire_header_t *h, uint32_t body_fields)
{
    return s_header_opt(r, h, body_fields, 0, NULL);
}

/* The optional trailing node name: "" when the sender left it out. */
static int s_r_node(rd_t *r, uint32_t present, const char **node)
{
    *node = "";
    if (!present)
        return 0;
    r->field = "node";
    return s_str(r, node, WIRE_MAX_NODE);
}

static int s_finish(rd_t *r)
{
    if (r->p != r->end) {
        r->field = "payload";
        return s_fail(r, "%zu trailing bytes", s_left(r));
    }
    return 0;
}

static int s_expect_fields(rd_t *r, const char *what, uint32_t want)
{
    uint32_t n;
    const char *saved = r->field;
    r->field = what;
    if (s_array(r, &n, 64))
        return -1;
    if (n != want)
        return s_fail(r, "%u fields, want %u", n, want);
    r->field = saved;
    return 0;
}

static int s_str_list(rd_t *r, const char *field, uint32_t max_n,
                      uint32_t max_len, uint32_t *n, const char *const **out)
{
    r->field = field;
    if (s_array(r, n, max_n))
        return -1;
    const char **list = s_alloc(r, *n, sizeof *list);
    if (!list)
        return -1;
    for (uint32_t i = 0; i < *n; i++)
        if (s_str(r, &list[i], max_len))
            return -1;
    *out = list;
    return 0;
}

static int s_index_list(rd_t *r, const char *field, uint32_t max_n,
                        uint32_t limit, uint32_t *n, const uint32_t **out)
{
    r->field = field;
    if (s_array(r, n, max_n))
        return -1;
    uint32_t *list = s_alloc(r, *n, sizeof *list);
    if (!list)
        return -1;
    for (uint32_t i = 0; i < *n; i++) {
        if (s_u32(r, &list[i], UINT32_MAX))
            return -1;
        if (list[i] >= limit)
            return s_fail(r, "index %u out of range (%u entries)", list[i],
                          limit);
    }
    *out = list;
    return 0;
}

/* ================================================================ writer */

typedef struct {
    msgpack_packer pk;
    wire_buf_t *out;
    size_t start;
} wr_t;

static void s_writer_init(wr_t *w, wire_buf_t *out)
{
    w->out = out;
    w->start = out->len;
    msgpack_packer_init(&w->pk, out, s_buf_write);
}

static void s_w_str(wr_t *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    msgpack_pack_str(&w->pk, n);
    msgpack_pack_str_body(&w->pk, s ? s : "", n);
}

static void s_w_u64(wr_t *w, uint64_t v) { msgpack_pack_uint64(&w->pk, v); }

static void s_w_header(wr_t *w, const wire_header_t *h, uint32_t body_fields)
{
    msgpack_pack_array(&w->pk, 4 + body_fields);
    s_w_u64(w, WIRE_VERSION);
    s_w_str(w, h->sender);
    s_w_u64(w, h->seq);
    s_w_u64(w, h->ts_ns);
}

static void s_w_str_list(wr_t *w, uint32_t n, const char *const *list)
{
    msgpack_pack_array(&w->pk, n);
    for (uint32_t i = 0; i < n; i++)
        s_w_str(w, list[i]);
}

static void s_w_u32_list(wr_t *w, uint32_t n, const uint32_t *list)
{
    msgpack_pack_array(&w->pk, n);
    for (uint32_t i = 0; i < n; i++)
        s_w_u64(w, list[i]);
}

static int s_writer_done(wr_t *w, int ok)
{
    if (!ok || w->out->len > w->start + WIRE_MAX_PAYLOAD) {
        w->out->len = w->start;
        return -1;
    }
    return 0;
}

static int s_strlen_ok(const char *s, size_t max)
{
    return !s || strnlen(s, max + 1) <= max;
}

/* The node name goes out as one trailing body field only when set, so
 * a sender without one writes exactly the version-1 layout. */
static int s_has_node(const char *node)
{
    return node && *node;
}

/* ============================================================ procs table */

static void s_w_procs(wr_t *w, uint32_t n, const wire_proc_t *procs)
{
    msgpack_pack_array(&w->pk, n);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_array(&w->pk, 4);
        s_w_u64(w, procs[i].pid);
        s_w_u64(w, procs[i].nspid);
        s_w_str(w, procs[i].name);
        s_w_str(w, procs[i].container_id);
    }
}

static int s_procs_ok(uint32_t n, const wire_proc_t *procs)
{
    if (n > WIRE_MAX_PROCS)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        if (!s_strlen_ok(procs[i].name, WIRE_MAX_STR) ||
            !s_strlen_ok(procs[i].container_id, WIRE_MAX_STR))
            return 0;
    return 1;
}

static int s_r_procs(rd_t *r, uint32_t *n, const wire_proc_t **out)
{
    r->field = "procs";
    if (s_array(r, n, WIRE_MAX_PROCS))
        return -1;
    wire_proc_t *procs = s_alloc(r, *n, sizeof *procs);
    if (!procs)
        return -1;
    for (uint32_t i = 0; i < *n; i++) {
        if (s_expect_fields(r, "procs[]", 4) ||
            s_u32(r, &procs[i].pid, UINT32_MAX) ||
            s_u32(r, &procs[i].nspid, UINT32_MAX) ||
            s_str(r, &procs[i].name, WIRE_MAX_STR) ||
            s_str(r, &procs[i].container_id, WIRE_MAX_STR))
            return -1;
    }
    *out = procs;
    return 0;
}

/* ====================================================== raw stack batch */

int wire_encode_raw_batch(const wire_raw_batch_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    int ok = m->nobjects <= WIRE_MAX_OBJECTS && m->nsamples <= WIRE_MAX_SAMPLES &&
             m->ntask_ids <= WIRE_MAX_TASKS && s_procs_ok(m->nprocs, m->procs);
    ok = ok && s_strlen_ok(m->node, WIRE_MAX_NODE);
    if (!ok)
        return -1;
    s_w_header(&w, &m->hdr, 4 + (uint32_t)s_has_node(m->node));
    msgpack_pack_array(&w.pk, m->nobjects);
    for (uint32_t i = 0; i < m->nobjects && ok; i++) {
        const wire_object_t *o = &m->objects[i];
        ok = o->type <= WIRE_OBJ_TYPE_MAX && o->build_id_len <= WIRE_MAX_BUILD_ID &&
             s_strlen_ok(o->path, WIRE_MAX_STR);
        msgpack_pack_array(&w.pk, 7);
        s_w_u64(&w, o->id);
        s_w_u64(&w, o->type);
        msgpack_pack_bin(&w.pk, o->build_id_len);
        msgpack_pack_bin_body(&w.pk, o->build_id, o->build_id_len);
        s_w_u64(&w, o->dev);
        s_w_u64(&w, o->ino);
        s_w_u64(&w, o->pid);
        s_w_str(&w, o->path);
    }
    s_w_procs(&w, m->nprocs, m->procs);
    s_w_str_list(&w, m->ntask_ids, m->task_ids);
    msgpack_pack_array(&w.pk, m->nsamples);
    for (uint32_t i = 0; i < m->nsamples && ok; i++) {
        const wire_raw_sample_t *s = &m->samples[i];
        ok = s->kind <= WIRE_KIND_OFF_CPU && s->nk <= WIRE_MAX_FRAMES &&
             s->nu <= WIRE_MAX_FRAMES && s->ntasks <= WIRE_MAX_TASKS;
        msgpack_pack_array(&w.pk, 11);
        s_w_u64(&w, s->pid);
        s_w_u64(&w, s->tid);
        s_w_u64(&w, s->cpu);
        s_w_u64(&w, s->kind);
        s_w_u64(&w, s->ts_ns);
        s_w_u64(&w, s->count);
        s_w_u64(&w, s->weight_ns);
        char comm[WIRE_COMM_LEN + 1];
        memcpy(comm, s->comm, WIRE_COMM_LEN);
        comm[WIRE_COMM_LEN] = '\0';
        s_w_str(&w, comm);
        msgpack_pack_array(&w.pk, s->nk);
        for (uint32_t k = 0; k < s->nk; k++)
            s_w_u64(&w, s->kframes[k]);
        /* User frames flattened as object, offset pairs. */
        msgpack_pack_array(&w.pk, s->nu * 2);
        for (uint32_t k = 0; k < s->nu; k++) {
            s_w_u64(&w, s->uframes[k].object);
            s_w_u64(&w, s->uframes[k].offset);
        }
        s_w_u32_list(&w, s->ntasks, s->tasks);
    }
    if (s_has_node(m->node))
        s_w_str(&w, m->node);
    return s_writer_done(&w, ok);
}

static int s_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int wire_decode_raw_batch(const void *data, size_t len, arena_t *arena,
                          wire_raw_batch_t *m, char *err, size_t errlen)
{
    rd_t r;
    uint32_t has_node = 0;
    memset(m, 0, sizeof *m);
    m->node = "";
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header_opt(&r, &m->hdr, 4, 1, &has_node))
        return -1;

    r.field = "objects";
    if (s_array(&r, &m->nobjects, WIRE_MAX_OBJECTS))
        return -1;
    wire_object_t *objs = s_alloc(&r, m->nobjects, sizeof *objs);
    uint32_t *ids = s_alloc(&r, m->nobjects, sizeof *ids);
    if (!objs || !ids)
        return -1;
    for (uint32_t i = 0; i < m->nobjects; i++) {
        wire_object_t *o = &objs[i];
        const uint8_t *bid;
        uint32_t bid_len;
        if (s_expect_fields(&r, "objects[]", 7) ||
            s_u32(&r, &o->id, UINT32_MAX - 1) ||
            s_u8(&r, &o->type, WIRE_OBJ_TYPE_MAX) ||
            s_bytes(&r, 1, &bid, &bid_len, WIRE_MAX_BUILD_ID) ||
            s_uint(&r, &o->dev, UINT64_MAX) ||
            s_uint(&r, &o->ino, UINT64_MAX) ||
            s_u32(&r, &o->pid, UINT32_MAX) ||
            s_str(&r, &o->path, WIRE_MAX_STR))
            return -1;
        memcpy(o->build_id, bid, bid_len);
        o->build_id_len = (uint8_t)bid_len;
        ids[i] = o->id;
    }
    qsort(ids, m->nobjects, sizeof *ids, s_cmp_u32);
    for (uint32_t i = 1; i < m->nobjects; i++)
        if (ids[i] == ids[i - 1]) {
            r.field = "objects";
            return s_fail(&r, "duplicate object id %u", ids[i]);
        }
    m->objects = objs;

    if (s_r_procs(&r, &m->nprocs, &m->procs) ||
        s_str_list(&r, "task_ids", WIRE_MAX_TASKS, WIRE_MAX_STR, &m->ntask_ids,
                   &m->task_ids))
        return -1;

    r.field = "samples";
    if (s_array(&r, &m->nsamples, WIRE_MAX_SAMPLES))
        return -1;
    wire_raw_sample_t *samples = s_alloc(&r, m->nsamples, sizeof *samples);
    if (!samples)
        return -1;
    for (uint32_t i = 0; i < m->nsamples; i++) {
        wire_raw_sample_t *s = &samples[i];
        if (s_expect_fields(&r, "samples[]", 11))
            return -1;
        r.field = "samples[].ids";
        if (s_u32(&r, &s->pid, UINT32_MAX) || s_u32(&r, &s->tid, UINT32_MAX) ||
            s_u32(&r, &s->cpu, UINT32_MAX))
            return -1;
        r.field = "samples[].kind";
        if (s_u8(&r, &s->kind, WIRE_KIND_OFF_CPU))
            return -1;
        r.field = "samples[].values";
        if (s_uint(&r, &s->ts_ns, UINT64_MAX) ||
            s_uint(&r, &s->count, UINT64_MAX) ||
            s_uint(&r, &s->weight_ns, UINT64_MAX))
            return -1;
        r.field = "samples[].comm";
        if (s_str_into(&r, s->comm, sizeof s->comm))
            return -1;
        r.field = "samples[].kframes";
        if (s_array(&r, &s->nk, WIRE_MAX_FRAMES))
            return -1;
        uint64_t *kf = s_alloc(&r, s->nk, sizeof *kf);
        if (!kf)
            return -1;
        for (uint32_t k = 0; k < s->nk; k++)
            if (s_uint(&r, &kf[k], UINT64_MAX))
                return -1;
        s->kframes = kf;
        r.field = "samples[].uframes";
        uint32_t nu2;
        if (s_array(&r, &nu2, WIRE_MAX_FRAMES * 2))
            return -1;
        if (nu2 % 2)
            return s_fail(&r, "odd length %u (object, offset pairs)", nu2);
        s->nu = nu2 / 2;
        wire_uframe_t *uf = s_alloc(&r, s->nu, sizeof *uf);
        if (!uf)
            return -1;
        for (uint32_t k = 0; k < s->nu; k++) {
            if (s_u32(&r, &uf[k].object, UINT32_MAX) ||
                s_uint(&r, &uf[k].offset, UINT64_MAX))
                return -1;
            if (uf[k].object != WIRE_NO_OBJECT &&
                !bsearch(&uf[k].object, ids, m->nobjects, sizeof *ids,
                         s_cmp_u32))
                return s_fail(&r, "frame refers to unknown object %u",
                              uf[k].object);
        }
        s->uframes = uf;
        if (s_index_list(&r, "samples[].tasks", WIRE_MAX_TASKS, m->ntask_ids,
                         &s->ntasks, &s->tasks))
            return -1;
    }
    m->samples = samples;
    if (s_r_node(&r, has_node, &m->node))
        return -1;
    return s_finish(&r);
}

/* ================================================ symbolized stack batch */

int wire_encode_sym_batch(const wire_sym_batch_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    int ok = m->nframes <= WIRE_MAX_STRINGS && m->nsamples <= WIRE_MAX_SAMPLES &&
             m->ntask_ids <= WIRE_MAX_TASKS && s_procs_ok(m->nprocs, m->procs);
    ok = ok && s_strlen_ok(m->node, WIRE_MAX_NODE);
    if (!ok)
        return -1;
    s_w_header(&w, &m->hdr, 5 + (uint32_t)s_has_node(m->node));
    msgpack_pack_array(&w.pk, m->nframes);
    for (uint32_t i = 0; i < m->nframes && ok; i++) {
        ok = m->frames[i].type <= WIRE_FRAME_TYPE_MAX &&
             s_strlen_ok(m->frames[i].name, WIRE_MAX_STR);
        msgpack_pack_array(&w.pk, 2);
        s_w_str(&w, m->frames[i].name);
        s_w_u64(&w, m->frames[i].type);
    }
    s_w_procs(&w, m->nprocs, m->procs);
    s_w_str_list(&w, m->ntask_ids, m->task_ids);
    msgpack_pack_array(&w.pk, m->nsamples);
    for (uint32_t i = 0; i < m->nsamples && ok; i++) {
        const wire_sym_sample_t *s = &m->samples[i];
        ok = s->kind <= WIRE_KIND_OFF_CPU && s->nframes <= 2 * WIRE_MAX_FRAMES &&
             s->nkernel <= s->nframes && s->ntasks <= WIRE_MAX_TASKS;
        for (uint32_t k = 0; k < s->nframes && ok; k++)
            ok = s->frames[k] < m->nframes;
        msgpack_pack_array(&w.pk, 11);
        s_w_u64(&w, s->pid);
        s_w_u64(&w, s->tid);
        s_w_u64(&w, s->cpu);
        s_w_u64(&w, s->kind);
        s_w_u64(&w, s->ts_ns);
        s_w_u64(&w, s->count);
        s_w_u64(&w, s->weight_ns);
        char comm[WIRE_COMM_LEN + 1];
        memcpy(comm, s->comm, WIRE_COMM_LEN);
        comm[WIRE_COMM_LEN] = '\0';
        s_w_str(&w, comm);
        s_w_u64(&w, s->nkernel);
        s_w_u32_list(&w, s->nframes, s->frames);
        s_w_u32_list(&w, s->ntasks, s->tasks);
    }
    ok = ok && s_strlen_ok(m->origin_sender, 63);
    msgpack_pack_array(&w.pk, 2);
    s_w_str(&w, m->origin_sender);
    s_w_u64(&w, m->origin_seq);
    if (s_has_node(m->node))
        s_w_str(&w, m->node);
    return s_writer_done(&w, ok);
}

int wire_decode_sym_batch(const void *data, size_t len, arena_t *arena,
                          wire_sym_batch_t *m, char *err, size_t errlen)
{
    rd_t r;
    uint32_t has_node = 0;
    memset(m, 0, sizeof *m);
    m->node = "";
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header_opt(&r, &m->hdr, 5, 1, &has_node))
        return -1;
    r.field = "frames";
    if (s_array(&r, &m->nframes, WIRE_MAX_STRINGS))
        return -1;
    wire_frame_t *frames = s_alloc(&r, m->nframes, sizeof *frames);
    if (!frames)
        return -1;
    for (uint32_t i = 0; i < m->nframes; i++) {
        if (s_expect_fields(&r, "frames[]", 2))
            return -1;
        r.field = "frames[]";
        if (s_str(&r, &frames[i].name, WIRE_MAX_STR) ||
            s_u8(&r, &frames[i].type, WIRE_FRAME_TYPE_MAX))
            return -1;
    }
    m->frames = frames;
    if (s_r_procs(&r, &m->nprocs, &m->procs) ||
        s_str_list(&r, "task_ids", WIRE_MAX_TASKS, WIRE_MAX_STR, &m->ntask_ids,
                   &m->task_ids))
        return -1;
    r.field = "samples";
    if (s_array(&r, &m->nsamples, WIRE_MAX_SAMPLES))
        return -1;
    wire_sym_sample_t *samples = s_alloc(&r, m->nsamples, sizeof *samples);
    if (!samples)
        return -1;
    for (uint32_t i = 0; i < m->nsamples; i++) {
        wire_sym_sample_t *s = &samples[i];
        if (s_expect_fields(&r, "samples[]", 11))
            return -1;
        r.field = "samples[].fields";
        if (s_u32(&r, &s->pid, UINT32_MAX) || s_u32(&r, &s->tid, UINT32_MAX) ||
            s_u32(&r, &s->cpu, UINT32_MAX) ||
            s_u8(&r, &s->kind, WIRE_KIND_OFF_CPU) ||
            s_uint(&r, &s->ts_ns, UINT64_MAX) ||
            s_uint(&r, &s->count, UINT64_MAX) ||
            s_uint(&r, &s->weight_ns, UINT64_MAX) ||
            s_str_into(&r, s->comm, sizeof s->comm) ||
            s_u32(&r, &s->nkernel, 2 * WIRE_MAX_FRAMES))
            return -1;
        if (s_index_list(&r, "samples[].frames", 2 * WIRE_MAX_FRAMES,
                         m->nframes, &s->nframes, &s->frames))
            return -1;
        if (s->nkernel > s->nframes)
            return s_fail(&r, "nkernel %u > %u frames", s->nkernel,
                          s->nframes);
        if (s_index_list(&r, "samples[].tasks", WIRE_MAX_TASKS, m->ntask_ids,
                         &s->ntasks, &s->tasks))
            return -1;
    }
    m->samples = samples;
    if (s_expect_fields(&r, "origin", 2))
        return -1;
    r.field = "origin";
    if (s_str(&r, &m->origin_sender, 63) || s_uint(&r, &m->origin_seq, UINT64_MAX))
        return -1;
    if (s_r_node(&r, has_node, &m->node))
        return -1;
    return s_finish(&r);
}

/* ======================================================= process events */

int wire_encode_proc_events(const wire_proc_events_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    int ok = m->nevents <= WIRE_MAX_PROCS &&
             s_strlen_ok(m->node, WIRE_MAX_NODE);
    if (!ok)
        return -1;
    s_w_header(&w, &m->hdr, 1 + (uint32_t)s_has_node(m->node));
    msgpack_pack_array(&w.pk, m->nevents);
    for (uint32_t i = 0; i < m->nevents && ok; i++) {
        const wire_proc_event_t *e = &m->events[i];
        ok = e->type <= WIRE_PROC_EVENT_MAX && s_strlen_ok(e->comm, WIRE_MAX_STR) &&
             s_strlen_ok(e->exe, WIRE_MAX_STR) &&
             s_strlen_ok(e->cmdline, WIRE_MAX_LONG_STR) &&
             s_strlen_ok(e->container_id, WIRE_MAX_STR);
        msgpack_pack_array(&w.pk, 10);
        s_w_u64(&w, e->type);
        s_w_u64(&w, e->pid);
        s_w_u64(&w, e->ppid);
        s_w_u64(&w, e->nspid);
        s_w_u64(&w, e->ts_ns);
        s_w_str(&w, e->comm);
        s_w_str(&w, e->exe);
        s_w_str(&w, e->cmdline);
        s_w_str(&w, e->container_id);
        s_w_u64(&w, e->has_symbols ? 1 : 0);
    }
    if (s_has_node(m->node))
        s_w_str(&w, m->node);
    return s_writer_done(&w, ok);
}

int wire_decode_proc_events(const void *data, size_t len, arena_t *arena,
                            wire_proc_events_t *m, char *err, size_t errlen)
{
    rd_t r;
    uint32_t has_node = 0;
    memset(m, 0, sizeof *m);
    m->node = "";
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header_opt(&r, &m->hdr, 1, 1, &has_node))
        return -1;
    r.field = "events";
    if (s_array(&r, &m->nevents, WIRE_MAX_PROCS))
        return -1;
    wire_proc_event_t *ev = s_alloc(&r, m->nevents, sizeof *ev);
    if (!ev)
        return -1;
    for (uint32_t i = 0; i < m->nevents; i++) {
        wire_proc_event_t *e = &ev[i];
        /* 9 fields: a collector from before has_symbols (decodes as 0). */
        uint32_t nf;
        r.field = "events[]";
        if (s_array(&r, &nf, 64))
            return -1;
        if (nf != 9 && nf != 10)
            return s_fail(&r, "%u fields, want 9 or 10", nf);
        if (s_u8(&r, &e->type, WIRE_PROC_EVENT_MAX) ||
            s_u32(&r, &e->pid, UINT32_MAX) || s_u32(&r, &e->ppid, UINT32_MAX) ||
            s_u32(&r, &e->nspid, UINT32_MAX) ||
            s_uint(&r, &e->ts_ns, UINT64_MAX) ||
            s_str(&r, &e->comm, WIRE_MAX_STR) ||
            s_str(&r, &e->exe, WIRE_MAX_STR) ||
            s_str(&r, &e->cmdline, WIRE_MAX_LONG_STR) ||
            s_str(&r, &e->container_id, WIRE_MAX_STR) ||
            (nf == 10 && s_u8(&r, &e->has_symbols, 1)))
            return -1;
    }
    m->events = ev;
    if (s_r_node(&r, has_node, &m->node))
        return -1;
    return s_finish(&r);
}

/* ================================================== network events (14) */

static int s_net_event_ok(const wire_net_event_t *e)
{
    return e->kind <= WIRE_NET_KIND_MAX && e->proto <= WIRE_NET_PROTO_MAX &&
           e->role <= WIRE_NET_ROLE_MAX && e->dir <= WIRE_NET_DIR_MAX &&
           e->pre_existing <= 1 && e->is_ssl <= 1 &&
           e->ncaptured <= WIRE_MAX_NET_PAYLOAD && e->ncaptured <= e->bytes &&
           (e->payload || !e->ncaptured);
}

int wire_encode_net_batch(const wire_net_batch_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    int ok = m->nevents <= WIRE_MAX_NET_EVENTS &&
             s_strlen_ok(m->node, WIRE_MAX_NODE);
    if (!ok)
        return -1;
    s_w_header(&w, &m->hdr, 2 + (uint32_t)s_has_node(m->node));
    msgpack_pack_array(&w.pk, m->nevents);
    for (uint32_t i = 0; i < m->nevents && ok; i++) {
        const wire_net_event_t *e = &m->events[i];
        ok = s_net_event_ok(e);
        msgpack_pack_array(&w.pk, 22);
        s_w_u64(&w, e->kind);
        s_w_u64(&w, e->pid);
        s_w_u64(&w, e->tid);
        s_w_u64(&w, e->conn_id);
        s_w_u64(&w, e->ts_ns);
        s_w_u64(&w, e->proto);
        s_w_u64(&w, e->role);
        s_w_u64(&w, e->pre_existing);
        msgpack_pack_bin(&w.pk, 16);
        msgpack_pack_bin_body(&w.pk, e->local_addr, 16);
        msgpack_pack_bin(&w.pk, 16);
        msgpack_pack_bin_body(&w.pk, e->remote_addr, 16);
        s_w_u64(&w, e->local_port);
        s_w_u64(&w, e->remote_port);
        s_w_u64(&w, e->peer_pid);
        s_w_u64(&w, e->dur_ns);
        s_w_u64(&w, e->dir);
        s_w_u64(&w, e->is_ssl);
        s_w_u64(&w, e->bytes);
        s_w_u64(&w, e->rtt_us);
        msgpack_pack_bin(&w.pk, ok ? e->ncaptured : 0);
        if (ok && e->ncaptured)
            msgpack_pack_bin_body(&w.pk, e->payload, e->ncaptured);
        s_w_u64(&w, e->bytes_sent);
        s_w_u64(&w, e->bytes_received);
        s_w_u64(&w, e->count);
    }
    s_w_u64(&w, m->lost);
    if (s_has_node(m->node))
        s_w_str(&w, m->node);
    return s_writer_done(&w, ok);
}

static int s_r_addr(rd_t *r, uint8_t out[16])
{
    const uint8_t *b;
    uint32_t n;
    if (s_bytes(r, 1, &b, &n, 16))
        return -1;
    if (n != 16)
        return s_fail(r, "%u bytes, want 16 (IPv6 or IPv4-mapped)", n);
    memcpy(out, b, 16);
    return 0;
}

static int s_r_net_event(rd_t *r, wire_net_event_t *e)
{
    const uint8_t *payload;
    uint32_t ports[2];
    if (s_expect_fields(r, "events[]", 22))
        return -1;
    r->field = "events[].ids";
    if (s_u8(r, &e->kind, WIRE_NET_KIND_MAX) ||
        s_u32(r, &e->pid, UINT32_MAX) || s_u32(r, &e->tid, UINT32_MAX) ||
        s_uint(r, &e->conn_id, UINT64_MAX) || s_uint(r, &e->ts_ns, UINT64_MAX))
        return -1;
    r->field = "events[].conn";
    if (s_u8(r, &e->proto, WIRE_NET_PROTO_MAX) ||
        s_u8(r, &e->role, WIRE_NET_ROLE_MAX) || s_u8(r, &e->pre_existing, 1))
        return -1;
    r->field = "events[].addr";
    if (s_r_addr(r, e->local_addr) || s_r_addr(r, e->remote_addr))
        return -1;
    r->field = "events[].ports";
    if (s_u32(r, &ports[0], UINT16_MAX) || s_u32(r, &ports[1], UINT16_MAX))
        return -1;
    e->local_port = (uint16_t)ports[0];
    e->remote_port = (uint16_t)ports[1];
    r->field = "events[].peer";
    if (s_u32(r, &e->peer_pid, UINT32_MAX) || s_uint(r, &e->dur_ns, UINT64_MAX))
        return -1;
    r->field = "events[].dir";
    if (s_u8(r, &e->dir, WIRE_NET_DIR_MAX) || s_u8(r, &e->is_ssl, 1))
        return -1;
    r->field = "events[].data";
    if (s_uint(r, &e->bytes, UINT64_MAX) || s_u32(r, &e->rtt_us, UINT32_MAX) ||
        s_bytes(r, 1, &payload, &e->ncaptured, WIRE_MAX_NET_PAYLOAD))
        return -1;
    if (e->ncaptured > e->bytes)
        return s_fail(r, "%u bytes captured of a %llu-byte call", e->ncaptured,
                      (unsigned long long)e->bytes);
    if (e->ncaptured) {
        uint8_t *copy = s_alloc(r, e->ncaptured, 1);
        if (!copy)
            return -1;
        memcpy(copy, payload, e->ncaptured);
        e->payload = copy;
    }
    r->field = "events[].totals";
    if (s_uint(r, &e->bytes_sent, UINT64_MAX) ||
        s_uint(r, &e->bytes_received, UINT64_MAX) ||
        s_u32(r, &e->count, UINT32_MAX))
        return -1;
    return 0;
}

int wire_decode_net_batch(const void *data, size_t len, arena_t *arena,
                          wire_net_batch_t *m, char *err, size_t errlen)
{
    rd_t r;
    uint32_t has_node = 0;
    memset(m, 0, sizeof *m);
    m->node = "";
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header_opt(&r, &m->hdr, 2, 1, &has_node))
        return -1;
    r.field = "events";
    if (s_array(&r, &m->nevents, WIRE_MAX_NET_EVENTS))
        return -1;
    wire_net_event_t *ev = s_alloc(&r, m->nevents, sizeof *ev);
    if (!ev)
        return -1;
    for (uint32_t i = 0; i < m->nevents; i++)
        if (s_r_net_event(&r, &ev[i]))
            return -1;
    m->events = ev;
    r.field = "lost";
    if (s_uint(&r, &m->lost, UINT64_MAX))
        return -1;
    if (s_r_node(&r, has_node, &m->node))
        return -1;
    return s_finish(&r);
}

/* ================================================================ tasks */

int wire_encode_task_set(const wire_task_set_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    int ok = m->ntasks <= WIRE_MAX_TASKS;
    if (!ok)
        return -1;
    s_w_header(&w, &m->hdr, 2);
    s_w_u64(&w, m->generation);
    msgpack_pack_array(&w.pk, m->ntasks);
    for (uint32_t i = 0; i < m->ntasks && ok; i++) {
        const wire_task_t *t = &m->tasks[i];
        ok = t->task_id && t->task_id[0] && s_strlen_ok(t->task_id, WIRE_MAX_STR) &&
             t->target <= WIRE_TARGET_MAX && t->trigger <= WIRE_TRIGGER_MAX &&
             t->source <= WIRE_SRC_MAX && t->npids <= WIRE_MAX_PIDS &&
             s_strlen_ok(t->extension_json, WIRE_MAX_LONG_STR);
        msgpack_pack_array(&w.pk, 10);
        s_w_str(&w, t->task_id);
        s_w_u64(&w, t->target);
        s_w_u64(&w, t->trigger);
        s_w_u64(&w, t->source);
        s_w_u64(&w, t->start_ms);
        s_w_u64(&w, t->duration_ms);
        s_w_u64(&w, t->update_ms);
        s_w_u32_list(&w, t->npids, t->pids);
        if (t->process_ids)
            s_w_str_list(&w, t->npids, t->process_ids);
        else
            msgpack_pack_nil(&w.pk);
        s_w_str(&w, t->extension_json);
    }
    return s_writer_done(&w, ok);
}

int wire_decode_task_set(const void *data, size_t len, arena_t *arena,
                         wire_task_set_t *m, char *err, size_t errlen)
{
    rd_t r;
    memset(m, 0, sizeof *m);
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header(&r, &m->hdr, 2))
        return -1;
    r.field = "generation";
    if (s_uint(&r, &m->generation, UINT64_MAX))
        return -1;
    r.field = "tasks";
    if (s_array(&r, &m->ntasks, WIRE_MAX_TASKS))
        return -1;
    wire_task_t *tasks = s_alloc(&r, m->ntasks, sizeof *tasks);
    if (!tasks)
        return -1;
    for (uint32_t i = 0; i < m->ntasks; i++) {
        wire_task_t *t = &tasks[i];
        if (s_expect_fields(&r, "tasks[]", 10))
            return -1;
        r.field = "tasks[].task_id";
        if (s_str(&r, &t->task_id, WIRE_MAX_STR))
            return -1;
        if (!t->task_id[0])
            return s_fail(&r, "empty task id");
        r.field = "tasks[].fields";
        if (s_u8(&r, &t->target, WIRE_TARGET_MAX) ||
            s_u8(&r, &t->trigger, WIRE_TRIGGER_MAX) ||
            s_u8(&r, &t->source, WIRE_SRC_MAX) ||
            s_uint(&r, &t->start_ms, UINT64_MAX) ||
            s_uint(&r, &t->duration_ms, UINT64_MAX) ||
            s_uint(&r, &t->update_ms, UINT64_MAX))
            return -1;
        if (s_index_list(&r, "tasks[].pids", WIRE_MAX_PIDS, UINT32_MAX,
                         &t->npids, &t->pids))
            return -1;
        r.field = "tasks[].process_ids";
        if (!s_is_nil(&r)) {
            uint32_t n;
            if (s_str_list(&r, "tasks[].process_ids", WIRE_MAX_PIDS,
                           WIRE_MAX_STR, &n, &t->process_ids))
                return -1;
            if (n != t->npids)
                return s_fail(&r, "%u process ids for %u pids", n, t->npids);
        }
        r.field = "tasks[].extension_json";
        if (s_str(&r, &t->extension_json, WIRE_MAX_LONG_STR))
            return -1;
    }
    m->tasks = tasks;
    return s_finish(&r);
}

/* =================================================== aggregated profiles */

int wire_encode_profile_batch(const wire_profile_batch_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    int ok = m->nprofiles <= WIRE_MAX_TASKS * 16;
    if (!ok)
        return -1;
    s_w_header(&w, &m->hdr, 1);
    msgpack_pack_array(&w.pk, m->nprofiles);
    for (uint32_t i = 0; i < m->nprofiles && ok; i++) {
        const wire_task_profile_t *p = &m->profiles[i];
        ok = p->task_id && s_strlen_ok(p->task_id, WIRE_MAX_STR) &&
             s_strlen_ok(p->process_id, WIRE_MAX_STR) &&
             p->target <= WIRE_TARGET_MAX && p->nstacks <= WIRE_MAX_SAMPLES;
        msgpack_pack_array(&w.pk, 8);
        s_w_str(&w, p->task_id);
        s_w_u64(&w, p->pid);
        s_w_str(&w, p->process_id);
        s_w_u64(&w, p->target);
        s_w_u64(&w, p->start_ms);
        s_w_u64(&w, p->window_start_ms);
        s_w_u64(&w, p->window_end_ms);
        msgpack_pack_array(&w.pk, p->nstacks);
        for (uint32_t k = 0; k < p->nstacks && ok; k++) {
            const wire_prof_stack_t *s = &p->stacks[k];
            ok = s->nk <= WIRE_MAX_FRAMES && s->nu <= WIRE_MAX_FRAMES;
            for (uint32_t j = 0; j < s->nk && ok; j++)
                ok = s_strlen_ok(s->kframes[j], WIRE_MAX_STR);
            for (uint32_t j = 0; j < s->nu && ok; j++)
                ok = s_strlen_ok(s->uframes[j], WIRE_MAX_STR);
            msgpack_pack_array(&w.pk, 4);
            s_w_str_list(&w, s->nk, s->kframes);
            s_w_str_list(&w, s->nu, s->uframes);
            s_w_u64(&w, s->count);
            s_w_u64(&w, s->duration_ns);
        }
    }
    return s_writer_done(&w, ok);
}

int wire_decode_profile_batch(const void *data, size_t len, arena_t *arena,
                              wire_profile_batch_t *m, char *err,
                              size_t errlen)
{
    rd_t r;
    memset(m, 0, sizeof *m);
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header(&r, &m->hdr, 1))
        return -1;
    r.field = "profiles";
    if (s_array(&r, &m->nprofiles, WIRE_MAX_TASKS * 16))
        return -1;
    wire_task_profile_t *profs = s_alloc(&r, m->nprofiles, sizeof *profs);
    if (!profs)
        return -1;
    for (uint32_t i = 0; i < m->nprofiles; i++) {
        wire_task_profile_t *p = &profs[i];
        if (s_expect_fields(&r, "profiles[]", 8))
            return -1;
        r.field = "profiles[]";
        if (s_str(&r, &p->task_id, WIRE_MAX_STR) ||
            s_u32(&r, &p->pid, UINT32_MAX) ||
            s_str(&r, &p->process_id, WIRE_MAX_STR) ||
            s_u8(&r, &p->target, WIRE_TARGET_MAX) ||
            s_uint(&r, &p->start_ms, UINT64_MAX) ||
            s_uint(&r, &p->window_start_ms, UINT64_MAX) ||
            s_uint(&r, &p->window_end_ms, UINT64_MAX))
            return -1;
        r.field = "profiles[].stacks";
        if (s_array(&r, &p->nstacks, WIRE_MAX_SAMPLES))
            return -1;
        wire_prof_stack_t *stacks = s_alloc(&r, p->nstacks, sizeof *stacks);
        if (!stacks)
            return -1;
        for (uint32_t k = 0; k < p->nstacks; k++) {
            wire_prof_stack_t *s = &stacks[k];
            if (s_expect_fields(&r, "stacks[]", 4) ||
                s_str_list(&r, "stacks[].kframes", WIRE_MAX_FRAMES,
                           WIRE_MAX_STR, &s->nk, &s->kframes) ||
                s_str_list(&r, "stacks[].uframes", WIRE_MAX_FRAMES,
                           WIRE_MAX_STR, &s->nu, &s->uframes))
                return -1;
            r.field = "stacks[].values";
            if (s_uint(&r, &s->count, UINT64_MAX) ||
                s_uint(&r, &s->duration_ns, UINT64_MAX))
                return -1;
        }
        p->stacks = stacks;
    }
    m->profiles = profs;
    return s_finish(&r);
}

/* ================================================================ stats */

int wire_encode_stats(const wire_stats_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    int ok = m->nmetrics <= WIRE_MAX_METRICS &&
             s_strlen_ok(m->stage, WIRE_MAX_STR) &&
             s_strlen_ok(m->instance, WIRE_MAX_STR);
    if (!ok)
        return -1;
    s_w_header(&w, &m->hdr, 3);
    s_w_str(&w, m->stage);
    s_w_str(&w, m->instance);
    msgpack_pack_array(&w.pk, m->nmetrics);
    for (uint32_t i = 0; i < m->nmetrics && ok; i++) {
        const wire_metric_t *x = &m->metrics[i];
        ok = x->type <= WIRE_METRIC_GAUGE && s_strlen_ok(x->name, WIRE_MAX_STR) &&
             s_strlen_ok(x->labels, WIRE_MAX_STR);
        msgpack_pack_array(&w.pk, 4);
        s_w_str(&w, x->name);
        s_w_str(&w, x->labels);
        s_w_u64(&w, x->type);
        msgpack_pack_double(&w.pk, x->value);
    }
    return s_writer_done(&w, ok);
}

int wire_decode_stats(const void *data, size_t len, arena_t *arena,
                      wire_stats_t *m, char *err, size_t errlen)
{
    rd_t r;
    memset(m, 0, sizeof *m);
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header(&r, &m->hdr, 3))
        return -1;
    r.field = "stage";
    if (s_str(&r, &m->stage, WIRE_MAX_STR) ||
        s_str(&r, &m->instance, WIRE_MAX_STR))
        return -1;
    r.field = "metrics";
    if (s_array(&r, &m->nmetrics, WIRE_MAX_METRICS))
        return -1;
    wire_metric_t *x = s_alloc(&r, m->nmetrics, sizeof *x);
    if (!x)
        return -1;
    for (uint32_t i = 0; i < m->nmetrics; i++) {
        if (s_expect_fields(&r, "metrics[]", 4))
            return -1;
        r.field = "metrics[]";
        if (s_str(&r, &x[i].name, WIRE_MAX_STR) ||
            s_str(&r, &x[i].labels, WIRE_MAX_STR) ||
            s_u8(&r, &x[i].type, WIRE_METRIC_GAUGE) || s_double(&r, &x[i].value))
            return -1;
    }
    m->metrics = x;
    return s_finish(&r);
}

/* ================================================================ hello */

int wire_encode_hello(const wire_hello_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    if (!s_strlen_ok(m->role, WIRE_MAX_STR) ||
        !s_strlen_ok(m->instance, WIRE_MAX_STR))
        return -1;
    s_w_header(&w, &m->hdr, 4);
    s_w_str(&w, m->role);
    s_w_str(&w, m->instance);
    s_w_u64(&w, m->started_ms);
    s_w_u64(&w, m->leaving ? 1 : 0);
    return s_writer_done(&w, 1);
}

int wire_decode_hello(const void *data, size_t len, arena_t *arena,
                      wire_hello_t *m, char *err, size_t errlen)
{
    rd_t r;
    memset(m, 0, sizeof *m);
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header(&r, &m->hdr, 4))
        return -1;
    r.field = "hello";
    if (s_str(&r, &m->role, WIRE_MAX_STR) ||
        s_str(&r, &m->instance, WIRE_MAX_STR) ||
        s_uint(&r, &m->started_ms, UINT64_MAX) || s_u8(&r, &m->leaving, 1))
        return -1;
    if (!m->instance[0])
        return s_fail(&r, "empty instance");
    return s_finish(&r);
}

/* ================================================== aggregator replicas */

int wire_encode_agg_peer(const wire_agg_peer_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    if (!s_strlen_ok(m->instance, WIRE_MAX_AGG_INSTANCE) ||
        !m->instance || !m->instance[0] ||
        !s_strlen_ok(m->addr, WIRE_MAX_AGG_ADDR))
        return -1;
    s_w_header(&w, &m->hdr, 3);
    s_w_str(&w, m->instance);
    s_w_str(&w, m->addr);
    s_w_u64(&w, m->leaving ? 1 : 0);
    return s_writer_done(&w, 1);
}

int wire_decode_agg_peer(const void *data, size_t len, arena_t *arena,
                         wire_agg_peer_t *m, char *err, size_t errlen)
{
    rd_t r;
    memset(m, 0, sizeof *m);
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header(&r, &m->hdr, 3))
        return -1;
    r.field = "agg peer";
    if (s_str(&r, &m->instance, WIRE_MAX_AGG_INSTANCE) ||
        s_str(&r, &m->addr, WIRE_MAX_AGG_ADDR) ||
        s_u8(&r, &m->leaving, 1))
        return -1;
    if (!m->instance[0])
        return s_fail(&r, "empty instance");
    return s_finish(&r);
}

int wire_encode_agg_release(const wire_agg_release_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    if (!m->instance || !m->instance[0] ||
        !s_strlen_ok(m->instance, WIRE_MAX_AGG_INSTANCE) ||
        m->bucket >= WIRE_BUCKETS || m->nmarks > WIRE_MAX_AGG_MARKS)
        return -1;
    for (uint32_t i = 0; i < m->nmarks; i++)
        if (!m->marks[i].sender || !m->marks[i].sender[0] ||
            !s_strlen_ok(m->marks[i].sender, WIRE_MAX_STR))
            return -1;
    s_w_header(&w, &m->hdr, 3);
    s_w_str(&w, m->instance);
    s_w_u64(&w, m->bucket);
    msgpack_pack_array(&w.pk, m->nmarks);
    for (uint32_t i = 0; i < m->nmarks; i++) {
        msgpack_pack_array(&w.pk, 2);
        s_w_str(&w, m->marks[i].sender);
        s_w_u64(&w, m->marks[i].seq);
    }
    return s_writer_done(&w, 1);
}

int wire_decode_agg_release(const void *data, size_t len, arena_t *arena,
                            wire_agg_release_t *m, char *err, size_t errlen)
{
    rd_t r;
    memset(m, 0, sizeof *m);
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header(&r, &m->hdr, 3))
        return -1;
    r.field = "agg release";
    if (s_str(&r, &m->instance, WIRE_MAX_AGG_INSTANCE) ||
        s_u32(&r, &m->bucket, WIRE_BUCKETS - 1))
        return -1;
    if (!m->instance[0])
        return s_fail(&r, "empty instance");
    r.field = "marks";
    if (s_array(&r, &m->nmarks, WIRE_MAX_AGG_MARKS))
        return -1;
    wire_agg_mark_t *marks = s_alloc(&r, m->nmarks, sizeof *marks);
    if (!marks)
        return -1;
    for (uint32_t i = 0; i < m->nmarks; i++) {
        if (s_expect_fields(&r, "mark", 2) ||
            s_str(&r, &marks[i].sender, WIRE_MAX_STR) ||
            s_uint(&r, &marks[i].seq, UINT64_MAX))
            return -1;
        if (!marks[i].sender[0])
            return s_fail(&r, "mark %u: empty sender", i);
    }
    m->marks = marks;
    return s_finish(&r);
}

int wire_encode_agg_idle(const wire_agg_idle_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    if (!m->instance || !m->instance[0] ||
        !s_strlen_ok(m->instance, WIRE_MAX_AGG_INSTANCE) ||
        m->bucket >= WIRE_BUCKETS)
        return -1;
    s_w_header(&w, &m->hdr, 2);
    s_w_str(&w, m->instance);
    s_w_u64(&w, m->bucket);
    return s_writer_done(&w, 1);
}

int wire_decode_agg_idle(const void *data, size_t len, arena_t *arena,
                         wire_agg_idle_t *m, char *err, size_t errlen)
{
    rd_t r;
    memset(m, 0, sizeof *m);
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header(&r, &m->hdr, 2))
        return -1;
    r.field = "agg idle";
    if (s_str(&r, &m->instance, WIRE_MAX_AGG_INSTANCE) ||
        s_u32(&r, &m->bucket, WIRE_BUCKETS - 1))
        return -1;
    if (!m->instance[0])
        return s_fail(&r, "empty instance");
    return s_finish(&r);
}

/* ====================================================== process entities */

int wire_encode_proc_ids(const wire_proc_ids_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    int ok = m->nentities <= WIRE_MAX_PROCS;
    if (!ok)
        return -1;
    s_w_header(&w, &m->hdr, 1);
    msgpack_pack_array(&w.pk, m->nentities);
    for (uint32_t i = 0; i < m->nentities && ok; i++) {
        const wire_proc_entity_t *e = &m->entities[i];
        const char *strs[5] = {e->process_id, e->layer, e->service,
                               e->instance, e->process_name};
        msgpack_pack_array(&w.pk, 6);
        s_w_u64(&w, e->pid);
        for (int k = 0; k < 5; k++) {
            ok = ok && s_strlen_ok(strs[k], WIRE_MAX_STR);
            s_w_str(&w, strs[k]);
        }
    }
    return s_writer_done(&w, ok);
}

int wire_decode_proc_ids(const void *data, size_t len, arena_t *arena,
                         wire_proc_ids_t *m, char *err, size_t errlen)
{
    rd_t r;
    memset(m, 0, sizeof *m);
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header(&r, &m->hdr, 1))
        return -1;
    r.field = "entities";
    if (s_array(&r, &m->nentities, WIRE_MAX_PROCS))
        return -1;
    wire_proc_entity_t *ents = s_alloc(&r, m->nentities, sizeof *ents);
    if (!ents)
        return -1;
    for (uint32_t i = 0; i < m->nentities; i++) {
        wire_proc_entity_t *e = &ents[i];
        if (s_expect_fields(&r, "entities[]", 6))
            return -1;
        r.field = "entities[]";
        if (s_u32(&r, &e->pid, UINT32_MAX) ||
            s_str(&r, &e->process_id, WIRE_MAX_STR) ||
            s_str(&r, &e->layer, WIRE_MAX_STR) ||
            s_str(&r, &e->service, WIRE_MAX_STR) ||
            s_str(&r, &e->instance, WIRE_MAX_STR) ||
            s_str(&r, &e->process_name, WIRE_MAX_STR))
            return -1;
    }
    m->entities = ents;
    return s_finish(&r);
}

/* ================================================= Kubernetes containers */

int wire_encode_k8s_containers(const wire_k8s_containers_t *m,
                               wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    int ok = m->ncontainers <= WIRE_MAX_K8S_CONTAINERS &&
             s_strlen_ok(m->node, WIRE_MAX_STR);
    if (!ok)
        return -1;
    s_w_header(&w, &m->hdr, 2);
    s_w_str(&w, m->node);
    msgpack_pack_array(&w.pk, m->ncontainers);
    for (uint32_t i = 0; i < m->ncontainers && ok; i++) {
        const wire_k8s_container_t *c = &m->containers[i];
        const char *strs[6] = {c->container_id, c->ns, c->pod, c->container,
                               c->pod_ip, c->service};
        msgpack_pack_array(&w.pk, 6);
        for (int k = 0; k < 6; k++) {
            ok = ok && s_strlen_ok(strs[k], WIRE_MAX_STR);
            s_w_str(&w, strs[k]);
        }
        ok = ok && strlen(c->container_id) == 64;
    }
    return s_writer_done(&w, ok);
}

int wire_decode_k8s_containers(const void *data, size_t len, arena_t *arena,
                               wire_k8s_containers_t *m, char *err,
                               size_t errlen)
{
    rd_t r;
    memset(m, 0, sizeof *m);
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header(&r, &m->hdr, 2))
        return -1;
    r.field = "node";
    if (s_str(&r, &m->node, WIRE_MAX_STR))
        return -1;
    r.field = "containers";
    if (s_array(&r, &m->ncontainers, WIRE_MAX_K8S_CONTAINERS))
        return -1;
    wire_k8s_container_t *cs = s_alloc(&r, m->ncontainers, sizeof *cs);
    if (!cs)
        return -1;
    for (uint32_t i = 0; i < m->ncontainers; i++) {
        wire_k8s_container_t *c = &cs[i];
        if (s_expect_fields(&r, "containers[]", 6))
            return -1;
        r.field = "containers[]";
        if (s_str(&r, &c->container_id, WIRE_MAX_STR) ||
            s_str(&r, &c->ns, WIRE_MAX_STR) ||
            s_str(&r, &c->pod, WIRE_MAX_STR) ||
            s_str(&r, &c->container, WIRE_MAX_STR) ||
            s_str(&r, &c->pod_ip, WIRE_MAX_STR) ||
            s_str(&r, &c->service, WIRE_MAX_STR))
            return -1;
        if (strlen(c->container_id) != 64)
            return s_fail(&r, "containers[%u]: container id is not 64 "
                          "hex digits", i);
    }
    m->containers = cs;
    return s_finish(&r);
}

/* ================================================== continuous profiling */

int wire_encode_policy_update(const wire_policy_update_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    if (!m->json || !s_strlen_ok(m->json, WIRE_MAX_JSON))
        return -1;
    s_w_header(&w, &m->hdr, 1);
    s_w_str(&w, m->json);
    return s_writer_done(&w, 1);
}

int wire_decode_policy_update(const void *data, size_t len, arena_t *arena,
                              wire_policy_update_t *m, char *err,
                              size_t errlen)
{
    rd_t r;
    memset(m, 0, sizeof *m);
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header(&r, &m->hdr, 1))
        return -1;
    r.field = "json";
    if (s_str(&r, &m->json, WIRE_MAX_JSON))
        return -1;
    return s_finish(&r);
}

int wire_encode_trigger(const wire_trigger_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    int ok = m->target <= WIRE_TARGET_MAX && m->ncauses <= 16 &&
             s_strlen_ok(m->service, WIRE_MAX_STR);
    if (!ok)
        return -1;
    s_w_header(&w, &m->hdr, 5);
    s_w_u64(&w, m->pid);
    s_w_u64(&w, m->target);
    s_w_u64(&w, m->duration_ms);
    s_w_str(&w, m->service);
    msgpack_pack_array(&w.pk, m->ncauses);
    for (uint32_t i = 0; i < m->ncauses && ok; i++) {
        const wire_cause_t *c = &m->causes[i];
        ok = c->type < MONITOR_COUNT &&
             s_strlen_ok(c->uri_regex, WIRE_MAX_STR) &&
             s_strlen_ok(c->uri_path, WIRE_MAX_STR);
        msgpack_pack_array(&w.pk, 5);
        s_w_u64(&w, c->type);
        msgpack_pack_double(&w.pk, c->threshold);
        msgpack_pack_double(&w.pk, c->current);
        s_w_str(&w, c->uri_regex);
        s_w_str(&w, c->uri_path);
    }
    return s_writer_done(&w, ok);
}

int wire_decode_trigger(const void *data, size_t len, arena_t *arena,
                        wire_trigger_t *m, char *err, size_t errlen)
{
    rd_t r;
    memset(m, 0, sizeof *m);
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header(&r, &m->hdr, 5))
        return -1;
    r.field = "trigger";
    if (s_u32(&r, &m->pid, UINT32_MAX) ||
        s_u8(&r, &m->target, WIRE_TARGET_MAX) ||
        s_uint(&r, &m->duration_ms, UINT64_MAX) ||
        s_str(&r, &m->service, WIRE_MAX_STR))
        return -1;
    r.field = "causes";
    if (s_array(&r, &m->ncauses, 16))
        return -1;
    wire_cause_t *causes = s_alloc(&r, m->ncauses, sizeof *causes);
    if (!causes)
        return -1;
    for (uint32_t i = 0; i < m->ncauses; i++) {
        wire_cause_t *c = &causes[i];
        if (s_expect_fields(&r, "causes[]", 5))
            return -1;
        r.field = "causes[]";
        if (s_u8(&r, &c->type, MONITOR_COUNT - 1) ||
            s_double(&r, &c->threshold) ||
            s_double(&r, &c->current) ||
            s_str(&r, &c->uri_regex, WIRE_MAX_STR) ||
            s_str(&r, &c->uri_path, WIRE_MAX_STR))
            return -1;
    }
    m->causes = causes;
    return s_finish(&r);
}

int wire_encode_meters(const wire_meters_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    int ok = m->nmeters <= WIRE_MAX_METRICS;
    if (!ok)
        return -1;
    s_w_header(&w, &m->hdr, 2);
    s_w_u64(&w, m->ts_ms);
    msgpack_pack_array(&w.pk, m->nmeters);
    for (uint32_t i = 0; i < m->nmeters && ok; i++) {
        const wire_meter_t *x = &m->meters[i];
        ok = s_strlen_ok(x->name, WIRE_MAX_STR) &&
             s_strlen_ok(x->process_name, WIRE_MAX_STR) &&
             s_strlen_ok(x->layer, WIRE_MAX_STR) &&
             s_strlen_ok(x->uri, WIRE_MAX_STR);
        msgpack_pack_array(&w.pk, 6);
        s_w_str(&w, x->name);
        msgpack_pack_double(&w.pk, x->value);
        s_w_u64(&w, x->pid);
        s_w_str(&w, x->process_name);
        s_w_str(&w, x->layer);
        s_w_str(&w, x->uri);
    }
    return s_writer_done(&w, ok);
}

int wire_decode_meters(const void *data, size_t len, arena_t *arena,
                       wire_meters_t *m, char *err, size_t errlen)
{
    rd_t r;
    memset(m, 0, sizeof *m);
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header(&r, &m->hdr, 2))
        return -1;
    r.field = "ts_ms";
    if (s_uint(&r, &m->ts_ms, UINT64_MAX))
        return -1;
    r.field = "meters";
    if (s_array(&r, &m->nmeters, WIRE_MAX_METRICS))
        return -1;
    wire_meter_t *x = s_alloc(&r, m->nmeters, sizeof *x);
    if (!x)
        return -1;
    for (uint32_t i = 0; i < m->nmeters; i++) {
        if (s_expect_fields(&r, "meters[]", 6))
            return -1;
        r.field = "meters[]";
        if (s_str(&r, &x[i].name, WIRE_MAX_STR) || s_double(&r, &x[i].value) ||
            s_u32(&r, &x[i].pid, UINT32_MAX) ||
            s_str(&r, &x[i].process_name, WIRE_MAX_STR) ||
            s_str(&r, &x[i].layer, WIRE_MAX_STR) ||
            s_str(&r, &x[i].uri, WIRE_MAX_STR))
            return -1;
    }
    m->meters = x;
    return s_finish(&r);
}

/* ==================================================== network report (14) */

static int s_net_meter_ok(const wire_net_meter_t *x)
{
    if (!x->name || !x->name[0] || !s_strlen_ok(x->name, WIRE_MAX_STR) ||
        !s_strlen_ok(x->peer_address, WIRE_MAX_STR) ||
        x->role > WIRE_NET_ROLE_MAX || x->nlabels > WIRE_MAX_NET_LABELS ||
        x->nbuckets > WIRE_MAX_NET_BUCKETS)
        return 0;
    for (uint32_t k = 0; k < x->nlabels; k++)
        if (!x->labels[k].key || !x->labels[k].key[0] ||
            !s_strlen_ok(x->labels[k].key, WIRE_MAX_STR) ||
            !s_strlen_ok(x->labels[k].value, WIRE_MAX_STR))
            return 0;
    /* histogram bounds strictly increase: the OAP takes them as buckets */
    for (uint32_t k = 1; k < x->nbuckets; k++)
        if (!(x->bounds[k] > x->bounds[k - 1]))
            return 0;
    return 1;
}

static void s_w_net_meter(wr_t *w, const wire_net_meter_t *x)
{
    msgpack_pack_array(&w->pk, 9);
    s_w_str(w, x->name);
    s_w_u64(w, x->pid);
    s_w_u64(w, x->role);
    s_w_u64(w, x->peer_pid);
    s_w_str(w, x->peer_address);
    msgpack_pack_array(&w->pk, x->nlabels);
    for (uint32_t k = 0; k < x->nlabels; k++) {
        msgpack_pack_array(&w->pk, 2);
        s_w_str(w, x->labels[k].key);
        s_w_str(w, x->labels[k].value);
    }
    msgpack_pack_double(&w->pk, x->value);
    msgpack_pack_array(&w->pk, x->nbuckets);
    for (uint32_t k = 0; k < x->nbuckets; k++)
        msgpack_pack_double(&w->pk, x->bounds[k]);
    msgpack_pack_array(&w->pk, x->nbuckets);
    for (uint32_t k = 0; k < x->nbuckets; k++)
        s_w_u64(w, x->counts[k]);
}

static int s_net_sample_ok(const wire_net_sample_t *s)
{
    const char *strs[8] = {s->peer_address, s->method, s->uri, s->reason,
                           s->trace_provider, s->trace_id, s->segment_id,
                           s->span_id};
    for (int k = 0; k < 8; k++)
        if (!s_strlen_ok(strs[k], WIRE_MAX_STR))
            return 0;
    return s->role <= WIRE_NET_ROLE_MAX && s->is_ssl <= 1 &&
           s->req_len <= WIRE_MAX_LONG_STR && s->resp_len <= WIRE_MAX_LONG_STR &&
           (s->req || !s->req_len) && (s->resp || !s->resp_len);
}

static void s_w_bin(wr_t *w, const uint8_t *b, uint32_t n)
{
    msgpack_pack_bin(&w->pk, n);
    msgpack_pack_bin_body(&w->pk, n ? (const void *)b : "", n);
}

static void s_w_net_sample(wr_t *w, const wire_net_sample_t *s)
{
    msgpack_pack_array(&w->pk, 17);
    s_w_u64(w, s->pid);
    s_w_u64(w, s->role);
    s_w_u64(w, s->peer_pid);
    s_w_str(w, s->peer_address);
    s_w_u64(w, s->is_ssl);
    s_w_str(w, s->method);
    s_w_str(w, s->uri);
    s_w_u64(w, s->status);
    s_w_str(w, s->reason);
    s_w_u64(w, s->start_ms);
    s_w_u64(w, s->end_ms);
    s_w_str(w, s->trace_provider);
    s_w_str(w, s->trace_id);
    s_w_str(w, s->segment_id);
    s_w_str(w, s->span_id);
    s_w_bin(w, s->req, s->req_len);
    s_w_bin(w, s->resp, s->resp_len);
}

int wire_encode_net_report(const wire_net_report_t *m, wire_buf_t *out)
{
    wr_t w;
    s_writer_init(&w, out);
    int ok = m->nmeters <= WIRE_MAX_NET_METERS &&
             m->nsamples <= WIRE_MAX_NET_SAMPLES &&
             m->nhttp <= WIRE_MAX_NET_METERS;
    for (uint32_t i = 0; ok && i < m->nmeters; i++)
        ok = s_net_meter_ok(&m->meters[i]);
    for (uint32_t i = 0; ok && i < m->nsamples; i++)
        ok = s_net_sample_ok(&m->samples[i]);
    for (uint32_t i = 0; ok && i < m->nhttp; i++)
        ok = m->http[i].uri && s_strlen_ok(m->http[i].uri, WIRE_MAX_STR) &&
             m->http[i].errors <= m->http[i].requests;
    if (!ok)
        return -1;
    s_w_header(&w, &m->hdr, 4);
    s_w_u64(&w, m->ts_ms);
    msgpack_pack_array(&w.pk, m->nmeters);
    for (uint32_t i = 0; i < m->nmeters; i++)
        s_w_net_meter(&w, &m->meters[i]);
    msgpack_pack_array(&w.pk, m->nsamples);
    for (uint32_t i = 0; i < m->nsamples; i++)
        s_w_net_sample(&w, &m->samples[i]);
    msgpack_pack_array(&w.pk, m->nhttp);
    for (uint32_t i = 0; i < m->nhttp; i++) {
        const wire_net_http_t *h = &m->http[i];
        msgpack_pack_array(&w.pk, 5);
        s_w_u64(&w, h->pid);
        s_w_str(&w, h->uri);
        s_w_u64(&w, h->requests);
        s_w_u64(&w, h->errors);
        msgpack_pack_double(&w.pk, h->duration_ms_sum);
    }
    return s_writer_done(&w, 1);
}

static int s_r_net_meter(rd_t *r, wire_net_meter_t *x)
{
    if (s_expect_fields(r, "meters[]", 9))
        return -1;
    r->field = "meters[]";
    if (s_str(r, &x->name, WIRE_MAX_STR) || s_u32(r, &x->pid, UINT32_MAX) ||
        s_u8(r, &x->role, WIRE_NET_ROLE_MAX) ||
        s_u32(r, &x->peer_pid, UINT32_MAX) ||
        s_str(r, &x->peer_address, WIRE_MAX_STR))
        return -1;
    if (!x->name[0])
        return s_fail(r, "empty meter name");
    r->field = "meters[].labels";
    if (s_array(r, &x->nlabels, WIRE_MAX_NET_LABELS))
        return -1;
    wire_label_t *labels = s_alloc(r, x->nlabels, sizeof *labels);
    if (!labels)
        return -1;
    for (uint32_t k = 0; k < x->nlabels; k++) {
        if (s_expect_fields(r, "meters[].labels[]", 2) ||
            s_str(r, &labels[k].key, WIRE_MAX_STR) ||
            s_str(r, &labels[k].value, WIRE_MAX_STR))
            return -1;
        if (!labels[k].key[0])
            return s_fail(r, "empty label key");
    }
    x->labels = labels;
    r->field = "meters[].value";
    if (s_double(r, &x->value))
        return -1;
    r->field = "meters[].bounds";
    uint32_t ncounts;
    if (s_array(r, &x->nbuckets, WIRE_MAX_NET_BUCKETS))
        return -1;
    double *bounds = s_alloc(r, x->nbuckets, sizeof *bounds);
    if (!bounds)
        return -1;
    for (uint32_t k = 0; k < x->nbuckets; k++) {
        if (s_double(r, &bounds[k]))
            return -1;
        if (k && !(bounds[k] > bounds[k - 1]))
            return s_fail(r, "bounds do not increase at %u", k);
    }
    x->bounds = bounds;
    r->field = "meters[].counts";
    if (s_array(r, &ncounts, WIRE_MAX_NET_BUCKETS))
        return -1;
    if (ncounts != x->nbuckets)
        return s_fail(r, "%u counts for %u bounds", ncounts, x->nbuckets);
    uint64_t *counts = s_alloc(r, x->nbuckets, sizeof *counts);
    if (!counts)
        return -1;
    for (uint32_t k = 0; k < x->nbuckets; k++)
        if (s_uint(r, &counts[k], UINT64_MAX))
            return -1;
    x->counts = counts;
    return 0;
}

/* Binary copied into the arena, as strings are: the decoded message does
 * not depend on the payload's life. */
static int s_bin_copy(rd_t *r, const uint8_t **out, uint32_t *len)
{
    const uint8_t *b;
    if (s_bytes(r, 1, &b, len, WIRE_MAX_LONG_STR))
        return -1;
    uint8_t *copy = s_alloc(r, *len, 1);
    if (!copy)
        return -1;
    if (*len)
        memcpy(copy, b, *len);
    *out = copy;
    return 0;
}

static int s_r_net_sample(rd_t *r, wire_net_sample_t *s)
{
    if (s_expect_fields(r, "samples[]", 17))
        return -1;
    r->field = "samples[]";
    if (s_u32(r, &s->pid, UINT32_MAX) || s_u8(r, &s->role, WIRE_NET_ROLE_MAX) ||
        s_u32(r, &s->peer_pid, UINT32_MAX) ||
        s_str(r, &s->peer_address, WIRE_MAX_STR) || s_u8(r, &s->is_ssl, 1) ||
        s_str(r, &s->method, WIRE_MAX_STR) || s_str(r, &s->uri, WIRE_MAX_STR) ||
        s_u32(r, &s->status, UINT32_MAX) ||
        s_str(r, &s->reason, WIRE_MAX_STR) ||
        s_uint(r, &s->start_ms, UINT64_MAX) ||
        s_uint(r, &s->end_ms, UINT64_MAX) ||
        s_str(r, &s->trace_provider, WIRE_MAX_STR) ||
        s_str(r, &s->trace_id, WIRE_MAX_STR) ||
        s_str(r, &s->segment_id, WIRE_MAX_STR) ||
        s_str(r, &s->span_id, WIRE_MAX_STR))
        return -1;
    r->field = "samples[].bodies";
    if (s_bin_copy(r, &s->req, &s->req_len) ||
        s_bin_copy(r, &s->resp, &s->resp_len))
        return -1;
    return 0;
}

int wire_decode_net_report(const void *data, size_t len, arena_t *arena,
                           wire_net_report_t *m, char *err, size_t errlen)
{
    rd_t r;
    memset(m, 0, sizeof *m);
    if (s_reader_init(&r, data, len, arena, err, errlen) ||
        s_header(&r, &m->hdr, 4))
        return -1;
    r.field = "ts_ms";
    if (s_uint(&r, &m->ts_ms, UINT64_MAX))
        return -1;
    r.field = "meters";
    if (s_array(&r, &m->nmeters, WIRE_MAX_NET_METERS))
        return -1;
    wire_net_meter_t *meters = s_alloc(&r, m->nmeters, sizeof *meters);
    if (!meters)
        return -1;
    for (uint32_t i = 0; i < m->nmeters; i++)
        if (s_r_net_meter(&r, &meters[i]))
            return -1;
    m->meters = meters;
    r.field = "samples";
    if (s_array(&r, &m->nsamples, WIRE_MAX_NET_SAMPLES))
        return -1;
    wire_net_sample_t *samples = s_alloc(&r, m->nsamples, sizeof *samples);
    if (!samples)
        return -1;
    for (uint32_t i = 0; i < m->nsamples; i++)
        if (s_r_net_sample(&r, &samples[i]))
            return -1;
    m->samples = samples;
    r.field = "http";
    if (s_array(&r, &m->nhttp, WIRE_MAX_NET_METERS))
        return -1;
    wire_net_http_t *http = s_alloc(&r, m->nhttp, sizeof *http);
    if (!http)
        return -1;
    for (uint32_t i = 0; i < m->nhttp; i++) {
        wire_net_http_t *h = &http[i];
        if (s_expect_fields(&r, "http[]", 5))
            return -1;
        r.field = "http[]";
        if (s_u32(&r, &h->pid, UINT32_MAX) ||
            s_str(&r, &h->uri, WIRE_MAX_STR) ||
            s_uint(&r, &h->requests, UINT64_MAX) ||
            s_uint(&r, &h->errors, UINT64_MAX) ||
            s_double(&r, &h->duration_ms_sum))
            return -1;
        if (h->errors > h->requests)
            return s_fail(&r, "%llu errors for %llu requests",
                          (unsigned long long)h->errors,
                          (unsigned long long)h->requests);
    }
    m->http = http;
    return s_finish(&r);
}
