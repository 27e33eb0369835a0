/* The last counters message of every other stage instance (stats.<stage>),
 * so the aggregator's /metrics serves the whole pipeline in one scrape.
 * Bounded in instances and metrics; instances silent for longer than the
 * expiry are dropped. Not thread-safe: the caller locks. */
#ifndef SKYPROF_AGG_STAGESTATS_H
#define SKYPROF_AGG_STAGESTATS_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/core/buf.h"
#include "wire.h"

#define AGG_STAGESTATS_MAX 64
#define AGG_STAGESTATS_EXPIRE_MS (5 * 60 * 1000)

typedef struct agg_stagestats agg_stagestats_t;

agg_stagestats_t *agg_stagestats_new(void);
void agg_stagestats_destroy(agg_stagestats_t **self_p);

/* Replaces the instance's counters. -1 when the table is full or the
 * message holds a name that is not a valid metric name. */
int agg_stagestats_update(agg_stagestats_t *self, const wire_stats_t *m,
                     uint64_t now_ms);
void agg_stagestats_expire(agg_stagestats_t *self, uint64_t now_ms);
/* Prometheus text: every metric gets an instance label. */
void agg_stagestats_render(const agg_stagestats_t *self, agg_buf_t *b);

#endif
