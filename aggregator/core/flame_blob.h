/* Compact binary form of a flame tree, for the history store: the nodes in
 * pre-order with their depth, type, name and values, zlib-compressed
 * (frame names repeat across processes and windows, so they compress
 * well). Decoding validates every field and the tree invariant, so a
 * damaged row is rejected rather than trusted. */
#ifndef SKYPROF_FLAME_BLOB_H
#define SKYPROF_FLAME_BLOB_H

#include <stddef.h>

#include "aggregator/core/flame.h"

/* Most bytes a decoded blob may expand to; bounds memory on bad rows. */
#define FLAME_BLOB_MAX_RAW (256u << 20)
/* Raw bytes a blob from a peer may spend per node it is allowed to hold
 * (a node is typically 20 bytes of varints plus its name). */
#define FLAME_BLOB_NODE_BYTES 256u

/* What a decoded blob may cost, whatever its header claims: raw (expanded)
 * bytes and nodes. Memory follows the bytes that really decompress, never
 * the claimed length. */
typedef struct {
    size_t max_raw;
    size_t max_nodes;
} flame_blob_limits_t;

/* Returns a malloc'ed blob in *out, or -1. */
int flame_blob_encode(const flame_t *tree, unsigned char **out, size_t *len);

/* Returns a new tree, or NULL with a reason in err. Bounded by
 * FLAME_BLOB_MAX_RAW only: for the aggregator's own history store. */
flame_t *flame_blob_decode(const void *data, size_t len, char *err,
                           size_t errlen);
/* The same within lim, for blobs from elsewhere (peer replicas). */
flame_t *flame_blob_decode_bounded(const void *data, size_t len,
                                   const flame_blob_limits_t *lim, char *err,
                                   size_t errlen);

#endif
