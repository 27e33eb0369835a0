/* This replica as a member of the group (see replica.h). Moved from
 * aggregator/main.c as it was: the stage's main keeps the configuration
 * and the wiring, the replica room what being one of many means. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "aggregator/replica/replica.h"
#include "log.h"
#include "msg.h"
#include "shard.h"

/* Messages handled per wakeup while leaving. */
#define MESSAGES_PER_WAKEUP 256
/* Hand-over timers and announcements. */
#define REPLICA_TICK_MS 200
#define ANNOUNCE_MS 1000

struct agg_member {
    stage_t *stage;
    agg_t *agg;
    shard_t *shard;
    agg_handover_t *handover;
    agg_replicas_t *replicas;
    agg_fanout_t *fanout;
    char advertise[WIRE_MAX_AGG_ADDR + 1];  /* "" = no API to offer */
    uint64_t last_announce_ms;
    log_ratelimit_t rl;
};

/* Tells the hand-over what the shard owns now. Everything runs on the loop
 * thread, so checking before each drain and after each hello sees every
 * change before the next batch is admitted. */
void
agg_member_sync(agg_member_t *self)
{
    if (!self || !self->shard)
        return;
    uint64_t now = now_mono_ms();
    int expect = shard_peer_count(self->shard) > 0
                 || agg_replicas_ever_seen(self->replicas);
    /* Whose idle answers may end a park: known before any park begins. */
    const char *peers[AGG_HANDOVER_PEERS];
    size_t npeers = shard_peer_names(self->shard, peers, AGG_HANDOVER_PEERS);
    agg_handover_set_peers(self->handover, peers, npeers, now);
    for (uint32_t b = 0; b < WIRE_BUCKETS; b++)
        agg_handover_set_owned(self->handover, b, shard_owns(self->shard, b),
                               expect, now);
}

static void
s_replay(void *arg, const char *topic, const void *data, size_t len)
{
    agg_member_t *self = arg;
    /* The bus already noted its sequence number. */
    agg_intake(self->agg, topic, data, len);
}

static void
s_publish_release(void *arg, uint32_t bucket, const wire_agg_mark_t *marks,
                  uint32_t nmarks)
{
    agg_member_t *self = arg;
    wire_agg_release_t m = { .instance = self->stage->instance,
                            .bucket = bucket, .nmarks = nmarks,
                            .marks = marks };
    if (bus_send(self->stage->bus, MSG_AGG_RELEASE, &m) != 0)
        log_warn("handover: cannot publish the release of bucket %u; its "
                 "new owner will wait for its timeout", bucket);
}

static void
s_publish_claim(void *arg, uint32_t bucket)
{
    agg_member_t *self = arg;
    wire_agg_release_t m = { .instance = self->stage->instance,
                            .bucket = bucket };
    bus_send(self->stage->bus, MSG_AGG_CLAIM, &m);
}

static void
s_publish_idle(void *arg, uint32_t bucket)
{
    agg_member_t *self = arg;
    wire_agg_idle_t m = { .instance = self->stage->instance,
                         .bucket = bucket };
    bus_send(self->stage->bus, MSG_AGG_IDLE, &m);
}

static void
s_announce(agg_member_t *self, int leaving)
{
    if (!self->advertise[0])
        return;
    wire_agg_peer_t m = { .instance = self->stage->instance,
                         .addr = self->advertise,
                         .leaving = (uint8_t)leaving };
    bus_send(self->stage->bus, MSG_AGG_PEER, &m);
}

/* ctl.agg.peer, decoded by the bus. */
static int
s_on_peer(void *arg, const msg_decoded_t *msg)
{
    agg_member_t *self = arg;
    const wire_agg_peer_t *m = msg->body;
    if (agg_replicas_on_peer(self->replicas, m, now_mono_ms(),
                             now_wall_ms()))
        log_warn_rl(&self->rl, "more than %d aggregator replicas; %s is "
                    "left out of queries", AGG_REPLICAS_MAX, m->instance);
    return 0;
}

/* ctl.agg.claim and ctl.agg.release; our own come back through the
 * broker. */
static int
s_on_handover(void *arg, const msg_decoded_t *msg)
{
    agg_member_t *self = arg;
    const wire_agg_release_t *m = msg->body;
    if (strcmp(m->instance, self->stage->instance) == 0)
        return 0;
    if (msg->id == MSG_AGG_CLAIM)
        agg_handover_on_claim(self->handover, m->bucket, now_mono_ms());
    else
        agg_handover_on_release(self->handover, m);
    return 0;
}

/* ctl.agg.idle: a peer does not count a bucket we claimed. */
static int
s_on_idle(void *arg, const msg_decoded_t *msg)
{
    agg_member_t *self = arg;
    const wire_agg_idle_t *m = msg->body;
    if (strcmp(m->instance, self->stage->instance) == 0)
        return 0;
    agg_handover_on_idle(self->handover, m->bucket, m->instance,
                         now_mono_ms());
    return 0;
}

/* A hello may change the owned buckets: the hand-over learns before the
 * next batch is admitted. */
static void
s_on_shard_change(void *arg)
{
    agg_member_sync(arg);
}

static int
s_on_tick(loop_t *loop, void *arg)
{
    agg_member_t *self = arg;
    (void)loop;
    uint64_t now = now_mono_ms();
    agg_member_sync(self);
    agg_handover_tick(self->handover, now);
    if (now - self->last_announce_ms >= ANNOUNCE_MS) {
        self->last_announce_ms = now;
        s_announce(self, 0);
        agg_replicas_expire(self->replicas, now, now_wall_ms());
    }
    return 0;
}

agg_member_t *
agg_member_new(const agg_member_opts_t *o)
{
    agg_member_t *self = calloc(1, sizeof(*self));
    if (!self) {
        log_error("out of memory at start");
        return NULL;
    }
    self->stage = o->stage;
    self->agg = o->agg;
    self->rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);
    snprintf(self->advertise, sizeof(self->advertise), "%s",
             o->advertise ? o->advertise : "");
    agg_handover_opts_t ho = { .stats = self->stage->stats,
                               .replay = s_replay,
                               .release = s_publish_release,
                               .claim = s_publish_claim,
                               .idle = s_publish_idle, .arg = self };
    self->handover = agg_handover_new(&ho);
    self->replicas = agg_replicas_new(self->stage->instance, o->history_ms);
    if (!self->handover || !self->replicas) {
        log_error("out of memory at start");
        goto fail;
    }
    agg_set_handover(self->agg, self->handover);
    if (self->advertise[0]) {
        self->fanout = agg_fanout_new(self->agg, self->replicas,
                                      o->fanout_timeout_ms,
                                      o->fanout_max_reply, o->auth_token);
        if (!self->fanout) {
            log_error("out of memory at start");
            goto fail;
        }
        log_info("replica: queries fan out to peers; advertising %s",
                 self->advertise);
    } else {
        log_warn("aggregator.sharding without aggregator.http_addr: this "
                 "replica's share of the data cannot be queried");
    }
    bus_t *bus = self->stage->bus;
    if (bus_on(bus, MSG_AGG_PEER, s_on_peer, self) < 0
        || bus_on(bus, MSG_AGG_CLAIM, s_on_handover, self) < 0
        || bus_on(bus, MSG_AGG_RELEASE, s_on_handover, self) < 0
        || bus_on(bus, MSG_AGG_IDLE, s_on_idle, self) < 0) {
        log_error("cannot subscribe to %s*", TOPIC_AGG_CTL);
        goto fail;
    }
    self->shard = shard_new(self->stage, "aggregator", TOPIC_SYM_STACKS, 1);
    /* the network room's socket events shard by the same pid buckets */
    if (!self->shard || shard_add_prefix(self->shard, TOPIC_NET_EVENTS)) {
        log_error("cannot start sharding of %s* and %s*", TOPIC_SYM_STACKS,
                  TOPIC_NET_EVENTS);
        goto fail;
    }
    shard_on_change(self->shard, s_on_shard_change, self);
    /* A lost bucket is counted until its new owner claims it. */
    shard_set_release_grace(self->shard, AGG_HANDOVER_GRACE_MS + 2000);
    s_announce(self, 0);
    self->last_announce_ms = now_mono_ms();
    if (loop_add_timer(self->stage->loop, REPLICA_TICK_MS, s_on_tick,
                       self) < 0) {
        log_error("cannot register with the loop");
        goto fail;
    }
    return self;
fail:
    agg_member_destroy(&self);
    return NULL;
}

void
agg_member_destroy(agg_member_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    agg_member_t *self = *self_p;
    shard_destroy(&self->shard);
    agg_fanout_destroy(&self->fanout);
    agg_replicas_destroy(&self->replicas);
    if (self->handover)
        agg_set_handover(self->agg, NULL);
    agg_handover_destroy(&self->handover);
    free(self);
    *self_p = NULL;
}

agg_fanout_t *
agg_member_fanout(agg_member_t *self)
{
    return self ? self->fanout : NULL;
}

/* A leaving replica gives every bucket up: it tells its peers, keeps
 * counting through the grace period while they subscribe, then releases
 * each bucket with its marks. Bounded by the grace period plus a second;
 * a replica with no peer has no one to wait for (a container stop's
 * timeout, often 2 s, would otherwise kill it in the wait). */
void
agg_member_leave(agg_member_t *self)
{
    if (!self || !self->shard)
        return;
    s_announce(self, 1);
    if (shard_peer_count(self->shard) == 0) {
        log_info("no peer replica: no bucket to hand over");
        shard_destroy(&self->shard);
        return;
    }
    agg_handover_leave(self->handover, now_mono_ms());
    shard_destroy(&self->shard);          /* the leaving hello */
    uint64_t deadline = now_mono_ms() + AGG_HANDOVER_GRACE_MS + 1000;
    while (agg_handover_pending(self->handover) && now_mono_ms() < deadline) {
        zmq_pollitem_t item = { bus_sub_socket(self->stage->bus), 0,
                                ZMQ_POLLIN, 0 };
        if (zmq_poll(&item, 1, 50) > 0)
            bus_dispatch(self->stage->bus, MESSAGES_PER_WAKEUP);
        agg_handover_tick(self->handover, now_mono_ms());
    }
    log_info("handed every bucket over (%zu still pending)",
             agg_handover_pending(self->handover));
}
