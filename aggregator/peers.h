/* The last counters message of every other stage instance (stats.<stage>),
 * so the aggregator's /metrics serves the whole pipeline in one scrape.
 * Bounded in instances and metrics; instances silent for longer than the
 * expiry are dropped. Not thread-safe: the caller locks. */
#ifndef SKYPROF_AGG_PEERS_H
#define SKYPROF_AGG_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "wire.h"

#define AGG_PEERS_MAX 64
#define AGG_PEERS_EXPIRE_MS (5 * 60 * 1000)

typedef struct agg_peers agg_peers_t;

agg_peers_t *agg_peers_new(void);
void agg_peers_destroy(agg_peers_t **self_p);

/* Replaces the instance's counters. -1 when the table is full or the
 * message holds a name that is not a valid metric name. */
int agg_peers_update(agg_peers_t *self, const wire_stats_t *m,
                     uint64_t now_ms);
void agg_peers_expire(agg_peers_t *self, uint64_t now_ms);
/* Prometheus text: every metric gets an instance label. */
void agg_peers_render(const agg_peers_t *self, agg_buf_t *b);

#endif
