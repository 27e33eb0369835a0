/* Replica sharding: identical replicas of a stage (symbolizer, aggregator)
 * share the WIRE_BUCKETS pid buckets among themselves with no central
 * coordinator. Each replica announces itself on "ctl.hello.<role>" every
 * second; each keeps the set of live peers (heard from in the last few
 * seconds, minus those that said they are leaving) and assigns every bucket
 * to the peer with the highest rendezvous hash of (instance, bucket). All
 * replicas compute the same owner from the same peer set, so starting or
 * stopping one moves only the buckets it gains or loses.
 *
 * Hand-over: a replica subscribes to a bucket as soon as it owns it and
 * keeps a bucket it lost for a short grace period, so during a change a
 * batch may reach two replicas but no batch reaches none; downstream
 * de-duplicates by the batch's origin (sender, seq). */
#ifndef SKYPROF_SHARD_H
#define SKYPROF_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "stage.h"

typedef struct shard shard_t;

/* topic_prefix is the sharded topic this replica consumes, e.g.
 * "raw.stacks."; the shard subscribes "<prefix>BB" for owned buckets.
 * With enabled == 0 the replica owns every bucket at once (single
 * instance, no announcements). */
shard_t *shard_new(stage_t *stage, const char *role, const char *topic_prefix,
                   int enabled);
/* How long a lost bucket stays subscribed (default 2 s). The aggregator
 * counts a lost bucket until its new owner claims it, which can take
 * longer than the new owner's join delay, so it asks for more. */
void shard_set_release_grace(shard_t *self, uint64_t grace_ms);

/* One more sharded topic prefix (e.g. "net.events." beside the
 * aggregator's "sym.stacks."): subscribed for the same owned buckets. 0,
 * or -1 beyond 4 prefixes or when the bus refuses. */
int shard_add_prefix(shard_t *self, const char *topic_prefix);

/* Announces that this replica leaves, then frees. */
void shard_destroy(shard_t **self_p);

/* The shard receives its role's "ctl.hello.<role>" itself (bus_on); fn
 * is called after each hello it took in, when the owned set may have
 * changed. */
void shard_on_change(shard_t *self, void (*fn)(void *arg), void *arg);

int shard_owns(const shard_t *self, uint32_t bucket);
size_t shard_owned_count(const shard_t *self);
size_t shard_peer_count(const shard_t *self);
/* Points out[] at the names of up to max live peers (valid until the
 * next hello or timer); returns how many. */
size_t shard_peer_names(const shard_t *self, const char **out, size_t max);

/* The pure assignment rule, exposed for tests: the owner of bucket among
 * n instance names. */
size_t shard_rendezvous_owner(const char *const *instances, size_t n,
                              uint32_t bucket);

#endif
