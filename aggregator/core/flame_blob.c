/* Flame tree <-> compact blob (see flame_blob.h).
 *
 * Layout: "SKFT", version byte, varint raw length, zlib stream of
 *   varint node count, then per node in pre-order:
 *   varint depth, u8 type, varint name length, name bytes,
 *   varint self_ns, self_count, total_ns, total_count. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "aggregator/core/flame_blob.h"

#define BLOB_MAGIC "SKFT"
#define BLOB_VERSION 1
#define BLOB_MAX_NAME 65536u

typedef struct {
    unsigned char *data;
    size_t len, cap;
    int oom;
} out_t;

static void
s_put(out_t *o, const void *p, size_t n)
{
    if (o->oom)
        return;
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n)
            cap *= 2;
        unsigned char *d = realloc(o->data, cap);
        if (!d) {
            o->oom = 1;
            return;
        }
        o->data = d;
        o->cap = cap;
    }
    memcpy(o->data + o->len, p, n);
    o->len += n;
}

static void
s_put_varint(out_t *o, uint64_t v)
{
    unsigned char b[10];
    size_t n = 0;
    do {
        b[n] = v & 0x7f;
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    s_put(o, b, n);
}

typedef struct {
    out_t *out;
} enc_ctx_t;

static int
s_enc_node(const flame_node_t *n, int depth, void *arg)
{
    out_t *o = ((enc_ctx_t *)arg)->out;
    size_t nlen = strlen(n->name);
    s_put_varint(o, (uint64_t)depth);
    s_put(o, &n->type, 1);
    s_put_varint(o, nlen);
    s_put(o, n->name, nlen);
    s_put_varint(o, n->self_ns);
    s_put_varint(o, n->self_count);
    s_put_varint(o, n->total_ns);
    s_put_varint(o, n->total_count);
    return o->oom ? -1 : 0;
}

int
flame_blob_encode(const flame_t *tree, unsigned char **out, size_t *len)
{
    int rc = -1;
    out_t raw = { 0 }, blob = { 0 };
    enc_ctx_t ctx = { &raw };

    s_put_varint(&raw, flame_node_count(tree));
    if (flame_visit(tree, s_enc_node, &ctx) || raw.oom
        || raw.len > FLAME_BLOB_MAX_RAW)
        goto cleanup;

    uLongf zlen = compressBound(raw.len);
    s_put(&blob, BLOB_MAGIC, 4);
    unsigned char version = BLOB_VERSION;
    s_put(&blob, &version, 1);
    s_put_varint(&blob, raw.len);
    size_t head = blob.len;
    if (blob.oom)
        goto cleanup;
    unsigned char *grown = realloc(blob.data, head + zlen);
    if (!grown)
        goto cleanup;
    blob.data = grown;
    /* Level 1: windows are written on the flush path, speed matters more
     * than the last few percent. */
    if (compress2(blob.data + head, &zlen, raw.data, raw.len, 1) != Z_OK)
        goto cleanup;
    *out = blob.data;
    *len = head + zlen;
    blob.data = NULL;
    rc = 0;
cleanup:
    free(raw.data);
    free(blob.data);
    return rc;
}

/* --------------------------------------------------------------- decode */
typedef struct {
    const unsigned char *p, *end;
} in_t;

static int
s_get_varint(in_t *in, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (in->p >= in->end)
            return -1;
        unsigned char b = *in->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

static int
s_check_sums(const flame_node_t *n, int depth, void *arg)
{
    (void)depth;
    (void)arg;
    uint64_t ns = n->self_ns, count = n->self_count;
    for (const flame_node_t *c = n->first_child; c; c = c->next_sibling) {
        ns += c->total_ns;
        count += c->total_count;
    }
    return ns == n->total_ns && count == n->total_count ? 0 : -1;
}

/* Inflates exactly want bytes from src into a new *out. The buffer grows
 * with what really decompresses, so a header claiming more than the
 * stream holds costs nothing; a stream longer or shorter than the claim
 * fails. */
static int
s_inflate(const unsigned char *src, size_t len, size_t want,
          unsigned char **out, const char **why)
{
    int rc = -1, zrc;
    z_stream z;
    unsigned char *buf = NULL;
    size_t cap = 0;
    memset(&z, 0, sizeof(z));
    *why = "bad compressed data";
    if (inflateInit(&z) != Z_OK) {
        *why = "out of memory";
        goto cleanup;   /* inflateEnd() takes a stream that never started */
    }
    z.next_in = (unsigned char *)src;
    do {
        size_t done = cap - z.avail_out;
        if (z.avail_out == 0) {
            if (cap == want + 1)
                goto cleanup;   /* more than claimed */
            size_t grown = cap ? cap * 2 : 65536;
            if (grown > want + 1)
                grown = want + 1;
            unsigned char *b = realloc(buf, grown);
            if (!b) {
                *why = "out of memory";
                goto cleanup;
            }
            buf = b;
            cap = grown;
            z.next_out = buf + done;
            z.avail_out = (uInt)(cap - done);
        }
        /* zlib counts in uInt; feed the input in pieces it can count. */
        size_t used_in = (size_t)(z.next_in - src);
        if (z.avail_in == 0 && used_in < len)
            z.avail_in = (uInt)(len - used_in > 1u << 30 ? 1u << 30
                                                         : len - used_in);
        zrc = inflate(&z, Z_NO_FLUSH);
    } while (zrc == Z_OK);
    if (zrc != Z_STREAM_END || z.total_out != want)
        goto cleanup;
    *out = buf;
    buf = NULL;
    rc = 0;
cleanup:
    inflateEnd(&z);
    free(buf);
    return rc;
}

flame_t *
flame_blob_decode(const void *data, size_t len, char *err, size_t errlen)
{
    flame_blob_limits_t lim = { FLAME_BLOB_MAX_RAW, SIZE_MAX };
    return flame_blob_decode_bounded(data, len, &lim, err, errlen);
}

flame_t *
flame_blob_decode_bounded(const void *data, size_t len,
                          const flame_blob_limits_t *lim, char *err,
                          size_t errlen)
{
    flame_t *tree = NULL;
    unsigned char *raw = NULL;
    flame_node_t **stack = NULL;
    size_t stack_cap = 0;
    char *name = NULL;
    const char *why = "truncated";
    in_t in = { data, (const unsigned char *)data + len };
    uint64_t raw_len, nnodes;

    if (len < 6 || memcmp(data, BLOB_MAGIC, 4) != 0) {
        why = "bad magic";
        goto fail;
    }
    in.p += 4;
    if (*in.p++ != BLOB_VERSION) {
        why = "unknown version";
        goto fail;
    }
    if (s_get_varint(&in, &raw_len) || raw_len == 0
        || raw_len > FLAME_BLOB_MAX_RAW || raw_len > lim->max_raw) {
        why = "bad raw length";
        goto fail;
    }
    if (s_inflate(in.p, (size_t)(in.end - in.p), (size_t)raw_len, &raw,
                  &why))
        goto fail;
    in.p = raw;
    in.end = raw + raw_len;
    /* Each node takes at least 7 bytes, which bounds a hostile count. */
    if (s_get_varint(&in, &nnodes) || nnodes == 0 || nnodes > raw_len / 7) {
        why = "bad node count";
        goto fail;
    }
    if (nnodes > lim->max_nodes) {
        why = "more nodes than allowed";
        goto fail;
    }
    name = malloc(BLOB_MAX_NAME + 1);
    if (!name) {
        why = "out of memory";
        goto fail;
    }
    size_t depth_now = 0;
    for (uint64_t i = 0; i < nnodes; i++) {
        uint64_t depth, nlen, v[4];
        if (s_get_varint(&in, &depth) || in.p >= in.end)
            goto fail;
        uint8_t type = *in.p++;
        if (s_get_varint(&in, &nlen))
            goto fail;
        if (nlen > BLOB_MAX_NAME || nlen > (uint64_t)(in.end - in.p)) {
            why = "bad name length";
            goto fail;
        }
        memcpy(name, in.p, nlen);
        name[nlen] = '\0';
        in.p += nlen;
        if (memchr(name, '\0', nlen)) {
            why = "NUL in name";
            goto fail;
        }
        for (int k = 0; k < 4; k++)
            if (s_get_varint(&in, &v[k]))
                goto fail;
        if (type > FLAME_TYPE_MAX || (i == 0) != (depth == 0)
            || (i == 0 && type != FLAME_ROOT)
            || (i > 0 && depth > depth_now + 1)) {
            why = "bad node shape";
            goto fail;
        }
        flame_node_t *node;
        if (i == 0) {
            tree = flame_new(name, nnodes);
            if (!tree) {
                why = "out of memory";
                goto fail;
            }
            node = flame_root(tree);
        } else {
            size_t before = flame_node_count(tree);
            node = flame_child(tree, stack[depth - 1], name, type);
            if (!node || flame_node_count(tree) != before + 1) {
                why = "duplicate node";
                goto fail;
            }
        }
        if (depth >= stack_cap) {
            size_t cap = stack_cap ? stack_cap * 2 : 64;
            flame_node_t **s = realloc(stack, cap * sizeof(*s));
            if (!s) {
                why = "out of memory";
                goto fail;
            }
            stack = s;
            stack_cap = cap;
        }
        stack[depth] = node;
        depth_now = depth;
        node->self_ns = v[0];
        node->self_count = v[1];
        node->total_ns = v[2];
        node->total_count = v[3];
    }
    if (in.p != in.end) {
        why = "trailing bytes";
        goto fail;
    }
    if (flame_visit(tree, s_check_sums, NULL)) {
        why = "totals do not add up";
        goto fail;
    }
    why = NULL;
fail:
    if (why) {
        if (err && errlen)
            snprintf(err, errlen, "flame blob: %s", why);
        flame_destroy(&tree);
    }
    free(raw);
    free(stack);
    free(name);
    return tree;
}
