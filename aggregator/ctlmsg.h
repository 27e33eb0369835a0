/* Control messages only aggregator replicas exchange (topic prefix
 * "ctl.agg."): where a replica's HTTP API can be reached, and the release
 * of a pid bucket it stopped counting. Same envelope as lib/wire.h (a
 * msgpack array starting with the header [version, sender, seq, ts_ns]);
 * kept here because no other stage reads them. Decoders validate every
 * type and bound; decoded strings point into the caller's arena.
 *
 *   ctl.agg.peer    [hdr.., instance, http_addr, leaving]
 *   ctl.agg.release [hdr.., instance, bucket, [[origin_sender, seq], ..]]
 *   ctl.agg.claim   [hdr.., instance, bucket, []]   (same codec as release)
 */
#ifndef SKYPROF_AGG_CTLMSG_H
#define SKYPROF_AGG_CTLMSG_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "wire.h"

#define TOPIC_AGG_CTL      "ctl.agg."
#define TOPIC_AGG_PEER     "ctl.agg.peer"
#define TOPIC_AGG_RELEASE  "ctl.agg.release"
/* "I own this bucket now and am subscribed to it": the old owner may
 * stop counting and release. */
#define TOPIC_AGG_CLAIM    "ctl.agg.claim"

#define AGG_CTL_MAX_ADDR 256
#define AGG_CTL_MAX_INSTANCE 64
/* Origin senders (collectors) per released bucket. */
#define AGG_CTL_MAX_MARKS 4096
#define AGG_CTL_MAX_PAYLOAD (1u << 20)

typedef struct {
    wire_header_t hdr;
    const char *instance;
    const char *addr;        /* host:port of its HTTP API */
    uint8_t leaving;
} agg_peer_msg_t;

/* The highest origin seq of one origin sender a replica counted. */
typedef struct {
    const char *sender;
    uint64_t seq;
} agg_mark_t;

typedef struct {
    wire_header_t hdr;
    const char *instance;    /* the replica that releases */
    uint32_t bucket;
    uint32_t nmarks;
    const agg_mark_t *marks;
} agg_release_msg_t;

int agg_encode_peer(const agg_peer_msg_t *m, wire_buf_t *out);
int agg_decode_peer(const void *data, size_t len, arena_t *arena,
                    agg_peer_msg_t *m, char *err, size_t errlen);
int agg_encode_release(const agg_release_msg_t *m, wire_buf_t *out);
int agg_decode_release(const void *data, size_t len, arena_t *arena,
                       agg_release_msg_t *m, char *err, size_t errlen);

#endif
