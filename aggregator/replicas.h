/* The other aggregator replicas as their ctl.agg.peer announcements tell:
 * where each one's HTTP API is, for query fan-out, and which ones left
 * recently, because their history left with them (a query over a range
 * they held is then reported partial). Bounded; written by the loop
 * thread, read by HTTP threads (own lock). */
#ifndef SKYPROF_AGG_REPLICAS_H
#define SKYPROF_AGG_REPLICAS_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define AGG_REPLICAS_MAX 32
#define AGG_REPLICAS_TIMEOUT_MS 3500
#define AGG_REPLICAS_DEPARTED_MAX 16

typedef struct {
    char instance[WIRE_MAX_AGG_INSTANCE + 1];
    char addr[WIRE_MAX_AGG_ADDR + 1];
} agg_replica_t;

typedef struct agg_replicas agg_replicas_t;

/* self_instance: our own announcements are ignored. history_ms: how long
 * a departure is remembered. */
agg_replicas_t *agg_replicas_new(const char *self_instance,
                                 uint64_t history_ms);
void agg_replicas_destroy(agg_replicas_t **self_p);

/* Loop thread. wall_ms dates departures. -1 when the table is full. */
int agg_replicas_on_peer(agg_replicas_t *self, const wire_agg_peer_t *m,
                         uint64_t mono_ms, uint64_t wall_ms);
void agg_replicas_expire(agg_replicas_t *self, uint64_t mono_ms,
                         uint64_t wall_ms);
/* Some other replica was ever heard from. */
int agg_replicas_ever_seen(agg_replicas_t *self);

/* Any thread. Copies up to max live peers into out. */
size_t agg_replicas_live(agg_replicas_t *self, agg_replica_t *out,
                         size_t max);
/* Describes ("a2 left at 1700000000") the replicas that left after
 * since_wall_ms into text; returns how many. */
size_t agg_replicas_departed(agg_replicas_t *self, uint64_t since_wall_ms,
                             char *text, size_t len);

#endif
