/* The history store: closed windows persisted in SQLite so a restart keeps
 * recent history. One row per window (times, process table) and one row
 * per tree of the window (host-wide or task, per kind) holding a compact
 * flame blob (flame_blob.h). WAL journal; bounded by a retention age and a
 * size limit, oldest windows first.
 *
 * Used from one thread only. Any failure here is reported to the caller,
 * who carries on memory-only: the store is a convenience, never a reason
 * to stop profiling. */
#ifndef SKYPROF_AGG_STORE_H
#define SKYPROF_AGG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/core/window.h"

typedef struct agg_store agg_store_t;

/* Opens or creates path (and its directory). NULL with a reason in err
 * when the file cannot be used: unwritable, not a database, corrupt. */
agg_store_t *agg_store_open(const char *path, uint64_t max_bytes, char *err,
                            size_t errlen);
void agg_store_destroy(agg_store_t **self_p);

/* Writes every tree of a closed window in one transaction. */
int agg_store_put(agg_store_t *self, const agg_window_t *window);

/* Deletes windows that ended before cutoff_ms, then the oldest ones while
 * the file is over its size limit. Returns windows deleted, -1 on error. */
long agg_store_prune(agg_store_t *self, uint64_t cutoff_ms);

/* Calls fn for each stored window that ended at or after since_ms, oldest
 * first, handing over ownership of a closed window. Rows that fail to
 * decode are skipped and counted in *bad. Returns windows loaded or -1. */
typedef void (*agg_store_window_fn)(void *arg, agg_window_t *window);
long agg_store_load(agg_store_t *self, uint64_t since_ms, size_t max_nodes,
                    agg_store_window_fn fn, void *arg, uint64_t *bad);

/* Bytes the database currently takes (pages in use). */
uint64_t agg_store_size(agg_store_t *self);

#endif
