/* The message table (lib/msg_table.h) as data: for every bus message its
 * topic and shape, its C structure and its bounded codec from lib/wire.c.
 * The bus's typed edges (bus_on, bus_dispatch, bus_send in lib/bus.h) are
 * built on it, so decoding, header checks, sequence numbers and invalid
 * counting are written once, here and in bus.c, for every message. */
#ifndef SKYPROF_MSG_H
#define SKYPROF_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "wire.h"

typedef enum {
#define MSG(id, ...) MSG_##id,
#include "msg_table.h"
#undef MSG
    MSG_COUNT
} msg_id_t;

enum msg_shape {
    MSG_SHAPE_EXACT,    /* the topic itself */
    MSG_SHAPE_BUCKET,   /* topic prefix + the pid's bucket "BB" */
    MSG_SHAPE_SUFFIX    /* topic prefix + a name (stage, role) */
};

typedef struct {
    msg_id_t id;
    const char *topic;       /* the topic, or its prefix (shape) */
    enum msg_shape shape;
    const char *type;        /* name of the C structure */
    size_t size;             /* sizeof the C structure */
    const char *payload;     /* what it is, for people */
    /* The bounded codec of lib/wire.c, for the structure above. */
    int (*decode)(const void *data, size_t len, arena_t *arena, void *body,
                  char *err, size_t errlen);
    int (*encode)(const void *body, wire_buf_t *out);
} msg_desc_t;

/* The entry of a message type; NULL when id is out of range. */
const msg_desc_t *msg_desc(msg_id_t id);

/* The entry whose topic a received topic has: equal for EXACT, starting
 * with it for BUCKET and SUFFIX. NULL when no message has the topic. */
const msg_desc_t *msg_for_topic(const char *topic);

/* One decoded message, valid while the arena it was decoded into is not
 * reset. */
typedef struct {
    const msg_desc_t *desc;
    msg_id_t id;
    const char *topic;
    int bucket;                 /* BUCKET shape: the pid bucket the topic
                                   names (0..WIRE_BUCKETS-1), else -1 */
    const wire_header_t *hdr;   /* = body's header */
    const void *body;           /* the desc->type structure */
    const void *payload;        /* the bytes it was decoded from */
    size_t len;
} msg_decoded_t;

/* Decodes a payload received on topic into arena with the topic's codec
 * and checks its header (version, a sender, a sequence number from 1).
 * 0 decoded; 1 no message has this topic (nothing decoded); -1 malformed,
 * with the reason in err. */
int msg_decode(const char *topic, const void *payload, size_t len,
               arena_t *arena, msg_decoded_t *out, char *err, size_t errlen);

/* Fills body's header (version, sender, seq, now) and encodes body, of the
 * type of message id, into out (reset first). 0, or -1 when the body
 * breaks a wire bound (out is empty then). */
int msg_encode(msg_id_t id, void *body, const char *sender, uint64_t seq,
               wire_buf_t *out);

/* The topic of a message of a BUCKET shape carrying pid ("raw.stacks.07"),
 * or of a SUFFIX shape with the given name ("stats.collector"), or of an
 * EXACT one (key ignored). 0, or -1 when it does not fit in out. */
int msg_topic_for_pid(msg_id_t id, uint32_t pid, char *out, size_t size);
int msg_topic_for_name(msg_id_t id, const char *name, char *out,
                       size_t size);

#endif
