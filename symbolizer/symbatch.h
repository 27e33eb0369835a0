/* Turning one decoded raw stack batch into a symbolized stack batch:
 * every kernel address and (object, offset) frame resolved through the
 * symbolizer, names interned into the batch's frame table (a name used by
 * a thousand samples travels once), samples copied with their frames leaf
 * first, kernel frames before user frames. Processes and task ids pass
 * through unchanged.
 *
 * Reusable: the output points into the builder's memory (and into the
 * input batch for procs, task ids and task lists) until the next build. */
#ifndef SKYPROF_SYMBOLIZER_SYMBATCH_H
#define SKYPROF_SYMBOLIZER_SYMBATCH_H

#include <stdint.h>

#include "symbolizer/symbolize.h"
#include "wire.h"

typedef struct symbatch symbatch_t;

typedef struct {
    uint64_t frames_resolved;   /* sample frames with a name */
    uint64_t frames_unknown;    /* sample frames kept as raw forms */
    uint64_t lookups;           /* distinct frames resolved (memo misses) */
} symbatch_counts_t;

symbatch_t *symbatch_new(void);
void symbatch_destroy(symbatch_t **self_p);

/* Builds out from in. The header of out is left zeroed for the caller.
 * counts (optional) receives what this batch added. Returns 0, or -1 when
 * memory runs out (out is then unusable). */
int symbatch_build(symbatch_t *self, symbolizer_t *sym,
                   const wire_raw_batch_t *in, wire_sym_batch_t *out,
                   symbatch_counts_t *counts);

#endif
