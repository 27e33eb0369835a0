#include "msg.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* The codecs of lib/wire.c take their own structure types; these adapters
 * give every entry the same signature without calling a function through
 * an incompatible pointer type. The header is the first member of every
 * message structure, which msg_decode and bus_send rely on. */
#define MSG(id, topic, shape, type, codec, payload, pubs, subs)             \
    _Static_assert(offsetof(type, hdr) == 0,                                \
                   #type ": the header must be the first member");         \
    static int s_decode_##id(const void *data, size_t len, arena_t *arena,  \
                             void *body, char *err, size_t errlen)          \
    {                                                                       \
        return wire_decode_##codec(data, len, arena, (type *)body, err,     \
                                   errlen);                                 \
    }                                                                       \
    static int s_encode_##id(const void *body, wire_buf_t *out)             \
    {                                                                       \
        return wire_encode_##codec((const type *)body, out);                \
    }
#include "msg_table.h"
#undef MSG

static const msg_desc_t s_table[MSG_COUNT] = {
#define MSG(id, topic, shape, type, codec, payload, pubs, subs)             \
    [MSG_##id] = {MSG_##id, topic, MSG_SHAPE_##shape, #type, sizeof(type),  \
                  payload, s_decode_##id, s_encode_##id},
#include "msg_table.h"
#undef MSG
};

const msg_desc_t *msg_desc(msg_id_t id)
{
    if ((unsigned)id >= MSG_COUNT)
        return NULL;
    return &s_table[id];
}

const msg_desc_t *msg_for_topic(const char *topic)
{
    const msg_desc_t *found = NULL;

    for (size_t i = 0; i < MSG_COUNT && !found; i++) {
        const msg_desc_t *d = &s_table[i];
        if (d->shape == MSG_SHAPE_EXACT ? strcmp(topic, d->topic) == 0
                                        : strncmp(topic, d->topic,
                                                  strlen(d->topic)) == 0)
            found = d;
    }
    return found;
}

/* "sym.stacks.07" -> 7; -1 unless exactly two digits naming a bucket. */
static int s_topic_bucket(const char *topic, const msg_desc_t *d)
{
    const char *b = topic + strlen(d->topic);
    int bucket = -1;

    if (d->shape != MSG_SHAPE_BUCKET || b[0] < '0' || b[0] > '9' ||
        b[1] < '0' || b[1] > '9' || b[2])
        goto cleanup;
    bucket = (b[0] - '0') * 10 + (b[1] - '0');
    if (bucket >= WIRE_BUCKETS)
        bucket = -1;
cleanup:
    return bucket;
}

int msg_decode(const char *topic, const void *payload, size_t len,
               arena_t *arena, msg_decoded_t *out, char *err, size_t errlen)
{
    const msg_desc_t *d = msg_for_topic(topic);
    int rc = -1;

    memset(out, 0, sizeof *out);
    if (!d) {
        rc = 1;
        goto cleanup;
    }
    void *body = arena_calloc(arena, 1, d->size);
    if (!body) {
        snprintf(err, errlen, "out of decode memory");
        goto cleanup;
    }
    if (d->decode(payload, len, arena, body, err, errlen) != 0)
        goto cleanup;
    const wire_header_t *hdr = body;
    /* The sequence is per (sender, topic) and starts at 1: without both a
     * receiver could not count what it lost. */
    if (!hdr->sender[0] || hdr->seq == 0) {
        snprintf(err, errlen, "header without a sender or a sequence number");
        goto cleanup;
    }
    *out = (msg_decoded_t){.desc = d, .id = d->id, .topic = topic,
                           .bucket = s_topic_bucket(topic, d), .hdr = hdr,
                           .body = body, .payload = payload, .len = len};
    rc = 0;
cleanup:
    return rc;
}

int msg_encode(msg_id_t id, void *body, const char *sender, uint64_t seq,
               wire_buf_t *out)
{
    const msg_desc_t *d = msg_desc(id);

    wire_buf_reset(out);
    if (!d)
        return -1;
    wire_header_set((wire_header_t *)body, sender, seq);
    /* An encoder that fails appends nothing (lib/wire.h). */
    return d->encode(body, out) == 0 ? 0 : -1;
}

int msg_topic_for_pid(msg_id_t id, uint32_t pid, char *out, size_t size)
{
    const msg_desc_t *d = msg_desc(id);
    int rc = -1;

    if (!d || size < strlen(d->topic) + 3)
        goto cleanup;
    if (d->shape == MSG_SHAPE_BUCKET)
        wire_sharded_topic(out, size, d->topic, pid);
    else
        snprintf(out, size, "%s", d->topic);
    rc = 0;
cleanup:
    return rc;
}

int msg_topic_for_name(msg_id_t id, const char *name, char *out,
                       size_t size)
{
    const msg_desc_t *d = msg_desc(id);
    int n = d ? snprintf(out, size, "%s%s", d->topic,
                         d->shape == MSG_SHAPE_SUFFIX ? name : "")
              : -1;

    return n >= 0 && (size_t)n < size ? 0 : -1;
}
