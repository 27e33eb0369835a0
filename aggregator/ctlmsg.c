/* Codec of the aggregator replicas' control messages (see ctlmsg.h). The
 * payloads are small and bounded (AGG_CTL_MAX_PAYLOAD is checked before
 * unpacking), so msgpack-c's object API is used: its zone grows with the
 * payload, never with a count read from it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "ctlmsg.h"

typedef struct {
    char *err;
    size_t errlen;
    arena_t *arena;
} rd_t;

static int
s_fail(rd_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int
s_buf_write(void *data, const char *buf, size_t len)
{
    wire_buf_t *b = data;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
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

static void
s_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s ? s : "", n);
}

static void
s_pack_header(msgpack_packer *pk, const wire_header_t *h, uint32_t body)
{
    msgpack_pack_array(pk, 4 + body);
    msgpack_pack_uint64(pk, WIRE_VERSION);
    s_pack_str(pk, h->sender);
    msgpack_pack_uint64(pk, h->seq);
    msgpack_pack_uint64(pk, h->ts_ns);
}

static int
s_str(rd_t *r, const msgpack_object *o, size_t max, const char *field,
      const char **out)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return s_fail(r, "%s: not a string", field);
    if (o->via.str.size > max)
        return s_fail(r, "%s: longer than %zu bytes", field, max);
    if (memchr(o->via.str.ptr, '\0', o->via.str.size))
        return s_fail(r, "%s: holds a NUL byte", field);
    *out = arena_strndup(r->arena, o->via.str.ptr, o->via.str.size);
    if (!*out)
        return s_fail(r, "%s: out of memory", field);
    return 0;
}

static int
s_u64(rd_t *r, const msgpack_object *o, uint64_t max, const char *field,
      uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return s_fail(r, "%s: not an integer in 0..%llu", field,
                      (unsigned long long)max);
    *out = o->via.u64;
    return 0;
}

/* Unpacks the payload and checks the header; *body gets the array. */
static int
s_open(rd_t *r, msgpack_unpacked *u, const void *data, size_t len,
       uint32_t body_fields, wire_header_t *hdr, const msgpack_object **items)
{
    size_t off = 0;
    if (len > AGG_CTL_MAX_PAYLOAD)
        return s_fail(r, "payload of %zu bytes over %u", len,
                      AGG_CTL_MAX_PAYLOAD);
    if (msgpack_unpack_next(u, data, len, &off) != MSGPACK_UNPACK_SUCCESS)
        return s_fail(r, "not one msgpack value");
    if (off != len)
        return s_fail(r, "%zu trailing bytes", len - off);
    const msgpack_object *o = &u->data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4 + body_fields)
        return s_fail(r, "expected an array of %u fields", 4 + body_fields);
    const msgpack_object *a = o->via.array.ptr;
    uint64_t v = 0;
    const char *sender;
    if (s_u64(r, &a[0], UINT32_MAX, "version", &v))
        return -1;
    if (v != WIRE_VERSION)
        return s_fail(r, "version %llu, expected %d", (unsigned long long)v,
                      WIRE_VERSION);
    hdr->version = (uint32_t)v;
    if (s_str(r, &a[1], sizeof(hdr->sender) - 1, "sender", &sender)
        || s_u64(r, &a[2], UINT64_MAX, "seq", &hdr->seq)
        || s_u64(r, &a[3], UINT64_MAX, "ts_ns", &hdr->ts_ns))
        return -1;
    snprintf(hdr->sender, sizeof(hdr->sender), "%s", sender);
    *items = a + 4;
    return 0;
}

int
agg_encode_peer(const agg_peer_msg_t *m, wire_buf_t *out)
{
    if (!m->instance || !m->addr
        || strlen(m->instance) > AGG_CTL_MAX_INSTANCE
        || strlen(m->addr) > AGG_CTL_MAX_ADDR)
        return -1;
    size_t start = out->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, s_buf_write);
    s_pack_header(&pk, &m->hdr, 3);
    s_pack_str(&pk, m->instance);
    s_pack_str(&pk, m->addr);
    msgpack_pack_uint8(&pk, m->leaving ? 1 : 0);
    if (out->len <= start) {
        out->len = start;
        return -1;
    }
    return 0;
}

int
agg_decode_peer(const void *data, size_t len, arena_t *arena,
                agg_peer_msg_t *m, char *err, size_t errlen)
{
    rd_t r = { err, errlen, arena };
    msgpack_unpacked u;
    const msgpack_object *a;
    uint64_t leaving = 0;
    int rc = -1;
    memset(m, 0, sizeof(*m));
    msgpack_unpacked_init(&u);
    if (s_open(&r, &u, data, len, 3, &m->hdr, &a)
        || s_str(&r, &a[0], AGG_CTL_MAX_INSTANCE, "instance", &m->instance)
        || s_str(&r, &a[1], AGG_CTL_MAX_ADDR, "addr", &m->addr)
        || s_u64(&r, &a[2], 1, "leaving", &leaving))
        goto cleanup;
    if (!m->instance[0] || !m->addr[0]) {
        s_fail(&r, "empty instance or addr");
        goto cleanup;
    }
    m->leaving = (uint8_t)leaving;
    rc = 0;
cleanup:
    msgpack_unpacked_destroy(&u);
    return rc;
}

int
agg_encode_release(const agg_release_msg_t *m, wire_buf_t *out)
{
    if (!m->instance || strlen(m->instance) > AGG_CTL_MAX_INSTANCE
        || m->bucket >= WIRE_BUCKETS || m->nmarks > AGG_CTL_MAX_MARKS)
        return -1;
    for (uint32_t i = 0; i < m->nmarks; i++)
        if (!m->marks[i].sender
            || strlen(m->marks[i].sender) >= sizeof(((wire_header_t *)0)->sender))
            return -1;
    size_t start = out->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, s_buf_write);
    s_pack_header(&pk, &m->hdr, 3);
    s_pack_str(&pk, m->instance);
    msgpack_pack_uint32(&pk, m->bucket);
    msgpack_pack_array(&pk, m->nmarks);
    for (uint32_t i = 0; i < m->nmarks; i++) {
        msgpack_pack_array(&pk, 2);
        s_pack_str(&pk, m->marks[i].sender);
        msgpack_pack_uint64(&pk, m->marks[i].seq);
    }
    if (out->len <= start || out->len - start > AGG_CTL_MAX_PAYLOAD) {
        out->len = start;
        return -1;
    }
    return 0;
}

int
agg_decode_release(const void *data, size_t len, arena_t *arena,
                   agg_release_msg_t *m, char *err, size_t errlen)
{
    rd_t r = { err, errlen, arena };
    msgpack_unpacked u;
    const msgpack_object *a;
    uint64_t bucket = 0;
    int rc = -1;
    memset(m, 0, sizeof(*m));
    msgpack_unpacked_init(&u);
    if (s_open(&r, &u, data, len, 3, &m->hdr, &a)
        || s_str(&r, &a[0], AGG_CTL_MAX_INSTANCE, "instance", &m->instance)
        || s_u64(&r, &a[1], WIRE_BUCKETS - 1, "bucket", &bucket))
        goto cleanup;
    if (!m->instance[0]) {
        s_fail(&r, "empty instance");
        goto cleanup;
    }
    m->bucket = (uint32_t)bucket;
    if (a[2].type != MSGPACK_OBJECT_ARRAY
        || a[2].via.array.size > AGG_CTL_MAX_MARKS) {
        s_fail(&r, "marks: not an array of at most %u", AGG_CTL_MAX_MARKS);
        goto cleanup;
    }
    m->nmarks = a[2].via.array.size;
    agg_mark_t *marks = arena_calloc(arena, m->nmarks ? m->nmarks : 1,
                                     sizeof(*marks));
    if (!marks) {
        s_fail(&r, "marks: out of memory");
        goto cleanup;
    }
    for (uint32_t i = 0; i < m->nmarks; i++) {
        const msgpack_object *e = &a[2].via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2) {
            s_fail(&r, "marks[%u]: not a [sender, seq] pair", i);
            goto cleanup;
        }
        if (s_str(&r, &e->via.array.ptr[0], sizeof(m->hdr.sender) - 1,
                  "marks.sender", &marks[i].sender)
            || s_u64(&r, &e->via.array.ptr[1], UINT64_MAX, "marks.seq",
                     &marks[i].seq))
            goto cleanup;
    }
    m->marks = marks;
    rc = 0;
cleanup:
    msgpack_unpacked_destroy(&u);
    return rc;
}
