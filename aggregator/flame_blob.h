/* Compact binary form of a flame tree, for the history store: the nodes in
 * pre-order with their depth, type, name and values, zlib-compressed
 * (frame names repeat across processes and windows, so they compress
 * well). Decoding validates every field and the tree invariant, so a
 * damaged row is rejected rather than trusted. */
#ifndef SKYPROF_FLAME_BLOB_H
#define SKYPROF_FLAME_BLOB_H

#include <stddef.h>

#include "flame.h"

/* Most bytes a decoded blob may expand to; bounds memory on bad rows. */
#define FLAME_BLOB_MAX_RAW (256u << 20)

/* Returns a malloc'ed blob in *out, or -1. */
int flame_blob_encode(const flame_t *tree, unsigned char **out, size_t *len);

/* Returns a new tree, or NULL with a reason in err. */
flame_t *flame_blob_decode(const void *data, size_t len, char *err,
                           size_t errlen);

#endif
