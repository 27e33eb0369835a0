/* Exact hand-over of pid buckets between aggregator replicas, so a sample
 * is counted once even while buckets move (lib/shard.c decides who owns
 * what; this decides what each replica counts).
 *
 * Every bucket is IDLE (not ours), PARKING (ours, waiting for the previous
 * owner's release) or COUNTING. The new owner subscribes, parks the
 * bucket's batches (bounded, counted drops) and claims the bucket (again
 * every second while parked). The replica that lost it keeps counting
 * until that claim arrives (so the new subscription is in place: nothing
 * falls between the two), waits a moment for the subscription to reach
 * the publishers, then publishes a release carrying, per origin sender
 * (the collector that made the raw batch), the highest origin seq it
 * counted. The new owner then counts the parked and later batches above
 * those marks. No claim within the longest grace: the old owner releases
 * anyway. No release within the park timeout (the old owner died, or
 * there was none): everything parked is counted.
 *
 * A replica that hears a claim of a bucket it does not count answers
 * "idle" (nothing to release). The claimant also stops parking once every
 * peer that may be counting the bucket has answered idle since the park
 * began: the peers of its shard view, and those that left it within the
 * longest grace plus the leaving margin (a replica that leaves keeps
 * counting its buckets through its grace, and releases them, after it has
 * left the view). One idle answer is not enough while another peer may
 * still release: counting the parked batches then would count twice.
 * Replicas that start together (nobody counted anything yet) so start at
 * once instead of after the park timeout.
 *
 * Origin seqs of one (collector, bucket) grow in publication order and one
 * symbolizer keeps that order, which is what makes one mark per sender
 * enough. Batches without an origin are counted by ownership alone.
 * Loop thread only. */
#ifndef SKYPROF_AGG_HANDOVER_H
#define SKYPROF_AGG_HANDOVER_H

#include <stddef.h>
#include <stdint.h>

#include "stats.h"
#include "wire.h"

#define AGG_HANDOVER_GRACE_MS 8000      /* longest wait for a claim */
#define AGG_HANDOVER_SETTLE_MS 300      /* claim -> release */
#define AGG_HANDOVER_CLAIM_MS 1000      /* claims repeat while parked */
#define AGG_HANDOVER_PARK_MS 10000
#define AGG_HANDOVER_PARK_BYTES (64u << 20)
/* A peer that left the view is still asked for this long past the grace:
 * a leaving replica counts through its grace, then up to a second more. */
#define AGG_HANDOVER_LEAVE_MS 2000
/* Peers, in view or recently left, that idle answers are kept for. */
#define AGG_HANDOVER_PEERS 64

enum agg_admit { AGG_ADMIT_COUNT, AGG_ADMIT_PARKED, AGG_ADMIT_SKIP };

/* Hands a parked payload back for counting (it goes through admit again). */
typedef void (*agg_replay_fn)(void *arg, const char *topic, const void *data,
                              size_t len);
/* Publishes a claim of a bucket. */
typedef void (*agg_claim_fn)(void *arg, uint32_t bucket);
/* Publishes the idle answer to a claim of a bucket not counted here. */
typedef void (*agg_idle_fn)(void *arg, uint32_t bucket);
/* Publishes the release of a bucket. */
typedef void (*agg_release_fn)(void *arg, uint32_t bucket,
                               const wire_agg_mark_t *marks, uint32_t nmarks);

typedef struct {
    stats_t *stats;                /* required */
    uint64_t grace_ms;             /* 0 = AGG_HANDOVER_GRACE_MS */
    uint64_t park_ms;              /* 0 = AGG_HANDOVER_PARK_MS */
    size_t park_bytes;             /* 0 = AGG_HANDOVER_PARK_BYTES */
    agg_replay_fn replay;
    agg_release_fn release;
    agg_claim_fn claim;
    agg_idle_fn idle;
    void *arg;
} agg_handover_opts_t;

typedef struct agg_handover agg_handover_t;

agg_handover_t *agg_handover_new(const agg_handover_opts_t *opts);
void agg_handover_destroy(agg_handover_t **self_p);

/* Ownership as the shard sees it now. expect_release: another replica
 * may have counted this bucket before, so wait for its release (else a
 * gained bucket is counted at once). */
void agg_handover_set_owned(agg_handover_t *self, uint32_t bucket, int owned,
                            int expect_release, uint64_t now_ms);
/* Decides what to do with one sym batch of bucket; a parked payload is
 * copied. */
int agg_handover_admit(agg_handover_t *self, uint32_t bucket,
                       const char *topic, const char *origin_sender,
                       uint64_t origin_seq, const void *payload, size_t len);
/* The batch admitted with AGG_ADMIT_COUNT was counted. */
void agg_handover_counted(agg_handover_t *self, uint32_t bucket,
                          const char *origin_sender, uint64_t origin_seq);
/* Another replica's release (own releases must be filtered by caller). */
void agg_handover_on_release(agg_handover_t *self, const wire_agg_release_t *m);
/* Another replica claimed bucket: if we still count it, release soon; if
 * we do not count it, answer idle. */
void agg_handover_on_claim(agg_handover_t *self, uint32_t bucket,
                           uint64_t now_ms);
/* The peers of the shard view now (not us). One that leaves it is still
 * waited for during the grace (grace_ms) plus AGG_HANDOVER_LEAVE_MS. */
void agg_handover_set_peers(agg_handover_t *self, const char *const *names,
                            size_t n, uint64_t now_ms);
/* Another replica's idle answer (own answers must be filtered by caller):
 * ends the park of bucket once every peer has answered so. */
void agg_handover_on_idle(agg_handover_t *self, uint32_t bucket,
                          const char *instance, uint64_t now_ms);
/* Ends grace periods (publishing releases) and park timeouts. */
void agg_handover_tick(agg_handover_t *self, uint64_t now_ms);
/* Every bucket is being given up: the replica leaves. */
void agg_handover_leave(agg_handover_t *self, uint64_t now_ms);
/* Buckets still in grace or parking (a leaving replica waits for 0). */
size_t agg_handover_pending(const agg_handover_t *self);
/* Buckets counted and owned. */
size_t agg_handover_counting(const agg_handover_t *self);

#endif
