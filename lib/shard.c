#include "shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "wire.h"
#include "hash.h"

#define SHARD_HELLO_MS 1000
#define SHARD_PEER_TIMEOUT_MS 3500
#define SHARD_JOIN_DELAY_MS 1500
#define SHARD_RELEASE_GRACE_MS 2000
#define SHARD_MAX_PEERS 64
#define SHARD_MAX_PREFIXES 4

typedef struct {
    char instance[64];
    uint64_t last_seen_ms;
} peer_t;

struct shard {
    stage_t *stage;
    char role[32];
    /* the sharded topics: the first from shard_new, more added after */
    char prefix[SHARD_MAX_PREFIXES][32];
    size_t nprefix;
    char hello_topic[64];
    int enabled;
    uint64_t started_ms;
    peer_t peers[SHARD_MAX_PEERS];
    size_t npeers;
    /* Subscription state per bucket: owned now, and until when a lost
     * bucket stays subscribed. */
    uint8_t owned[WIRE_BUCKETS];
    uint8_t subscribed[WIRE_BUCKETS];
    uint64_t release_at_ms[WIRE_BUCKETS];
    uint64_t release_grace_ms;
    int timer;
    void (*on_change)(void *arg);
    void *on_change_arg;
    stats_metric_t *owned_gauge, *peers_gauge, *rebalances;
    log_ratelimit_t rl;
};

/* Rendezvous weight of (instance, bucket): FNV-1a of the name seeded by
 * the bucket, then finalised so near-identical names still spread. */
static uint64_t s_hash(const char *instance, uint32_t bucket)
{
    return hash_mix64(hash_fnv1a(instance, (uint64_t)bucket * 0x9e3779b97f4a7c15ull));
}

size_t shard_rendezvous_owner(const char *const *instances, size_t n,
                              uint32_t bucket)
{
    size_t best = 0;
    uint64_t best_h = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = s_hash(instances[i], bucket);
        if (i == 0 || h > best_h ||
            (h == best_h && strcmp(instances[i], instances[best]) < 0)) {
            best = i;
            best_h = h;
        }
    }
    return best;
}

static void s_set_subscribed(shard_t *self, uint32_t b, int on)
{
    if (self->subscribed[b] == on)
        return;
    int ok = 1;
    for (size_t i = 0; i < self->nprefix; i++) {
        char topic[48];
        snprintf(topic, sizeof topic, "%s%02u", self->prefix[i], b);
        ok &= (on ? bus_subscribe : bus_unsubscribe)(self->stage->bus,
                                                     topic) == 0;
    }
    if (ok)
        self->subscribed[b] = (uint8_t)on;
}

static void s_rebalance(shard_t *self, uint64_t now)
{
    const char *names[SHARD_MAX_PEERS + 1];
    size_t n = 0, me = 0;
    names[n++] = self->stage->instance;
    for (size_t i = 0; i < self->npeers; i++)
        names[n++] = self->peers[i].instance;
    int changed = 0;
    size_t owned = 0;
    for (uint32_t b = 0; b < WIRE_BUCKETS; b++) {
        int mine = shard_rendezvous_owner(names, n, b) == me;
        if (mine != self->owned[b]) {
            changed = 1;
            self->owned[b] = (uint8_t)mine;
            if (!mine)
                self->release_at_ms[b] = now + self->release_grace_ms;
        }
        if (mine)
            s_set_subscribed(self, b, 1);
        else if (self->subscribed[b] && now >= self->release_at_ms[b])
            s_set_subscribed(self, b, 0);
        owned += mine;
    }
    if (changed) {
        stats_inc(self->rebalances);
        log_info("shard: %s owns %zu of %d buckets with %zu peer(s)",
                 self->role, owned, WIRE_BUCKETS, self->npeers);
    }
    stats_set(self->owned_gauge, (double)owned);
    stats_set(self->peers_gauge, (double)self->npeers);
}

static void s_send_hello(shard_t *self, int leaving)
{
    wire_hello_t h = {.role = self->role, .instance = self->stage->instance,
                      .started_ms = self->started_ms, .leaving = (uint8_t)leaving};
    bus_send_on(self->stage->bus, MSG_HELLO, self->hello_topic, &h);
}

static int s_on_timer(loop_t *loop, void *arg)
{
    shard_t *self = arg;
    uint64_t now = now_mono_ms();
    s_send_hello(self, 0);
    for (size_t i = 0; i < self->npeers;) {
        if (now - self->peers[i].last_seen_ms > SHARD_PEER_TIMEOUT_MS) {
            log_info("shard: peer %s of %s timed out", self->peers[i].instance,
                     self->role);
            self->peers[i] = self->peers[--self->npeers];
        } else {
            i++;
        }
    }
    /* A new replica listens before it takes buckets, so it joins an
     * existing group instead of claiming everything for a moment. */
    if (now - self->started_ms >= SHARD_JOIN_DELAY_MS)
        s_rebalance(self, now);
    return 0;
}

/* Adds, refreshes or (leaving) removes the peer a hello names. */
static void s_peer_heard(shard_t *self, const wire_hello_t *h)
{
    uint64_t now = now_mono_ms();
    size_t i;
    for (i = 0; i < self->npeers; i++)
        if (strcmp(self->peers[i].instance, h->instance) == 0)
            break;
    if (h->leaving) {
        if (i < self->npeers) {
            log_info("shard: peer %s of %s left", h->instance, self->role);
            self->peers[i] = self->peers[--self->npeers];
            if (now - self->started_ms >= SHARD_JOIN_DELAY_MS)
                s_rebalance(self, now);
        }
        return;
    }
    if (i == self->npeers) {
        if (self->npeers == SHARD_MAX_PEERS) {
            log_warn_rl(&self->rl, "shard: more than %d peers; ignoring %s",
                        SHARD_MAX_PEERS, h->instance);
            return;
        }
        snprintf(self->peers[i].instance, sizeof self->peers[i].instance, "%s",
                 h->instance);
        self->npeers++;
        log_info("shard: peer %s of %s joined", h->instance, self->role);
        self->peers[i].last_seen_ms = now;
        if (now - self->started_ms >= SHARD_JOIN_DELAY_MS)
            s_rebalance(self, now);
        return;
    }
    self->peers[i].last_seen_ms = now;
}

/* ctl.hello.<role>, decoded by the bus; other roles' are not ours. */
static int s_on_hello(void *arg, const msg_decoded_t *m)
{
    shard_t *self = arg;
    const wire_hello_t *h = m->body;

    if (strcmp(m->topic, self->hello_topic) == 0 &&
        strcmp(h->instance, self->stage->instance) != 0) {
        s_peer_heard(self, h);
        if (self->on_change)
            self->on_change(self->on_change_arg);
    }
    return 0;
}

shard_t *shard_new(stage_t *stage, const char *role, const char *topic_prefix,
                   int enabled)
{
    shard_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->stage = stage;
    self->enabled = enabled;
    self->timer = -1;
    self->release_grace_ms = SHARD_RELEASE_GRACE_MS;
    self->rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);
    snprintf(self->role, sizeof self->role, "%s", role);
    snprintf(self->prefix[0], sizeof self->prefix[0], "%s", topic_prefix);
    self->nprefix = 1;
    snprintf(self->hello_topic, sizeof self->hello_topic, "%s%s", TOPIC_HELLO,
             role);
    self->started_ms = now_mono_ms();
    self->owned_gauge = stats_gauge(stage->stats, "shard_buckets_owned", "",
                                    "pid buckets this replica consumes");
    self->peers_gauge = stats_gauge(stage->stats, "shard_peers", "",
                                    "other live replicas of this stage");
    self->rebalances = stats_counter(stage->stats, "shard_rebalances_total", "",
                                     "changes of the owned bucket set");
    if (!enabled) {
        for (uint32_t b = 0; b < WIRE_BUCKETS; b++)
            self->owned[b] = 1;
        if (bus_subscribe(stage->bus, topic_prefix) != 0)
            goto fail;
        stats_set(self->owned_gauge, WIRE_BUCKETS);
        return self;
    }
    if (bus_on(stage->bus, MSG_HELLO, s_on_hello, self) != 0 ||
        bus_subscribe(stage->bus, self->hello_topic) != 0)
        goto fail;
    self->timer = loop_add_timer(stage->loop, SHARD_HELLO_MS, s_on_timer, self);
    if (self->timer < 0)
        goto fail;
    s_send_hello(self, 0);
    return self;
fail:
    shard_destroy(&self);
    return NULL;
}

void shard_destroy(shard_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    shard_t *self = *self_p;
    if (self->enabled && self->stage && self->stage->bus)
        s_send_hello(self, 1);
    if (self->timer >= 0)
        loop_remove_timer(self->stage->loop, self->timer);
    if (self->enabled && self->stage && self->stage->bus)
        bus_on(self->stage->bus, MSG_HELLO, NULL, NULL);
    free(self);
    *self_p = NULL;
}

int shard_add_prefix(shard_t *self, const char *topic_prefix)
{
    if (self->nprefix == SHARD_MAX_PREFIXES ||
        strlen(topic_prefix) >= sizeof self->prefix[0])
        return -1;
    snprintf(self->prefix[self->nprefix++], sizeof self->prefix[0], "%s",
             topic_prefix);
    if (!self->enabled)
        return bus_subscribe(self->stage->bus, topic_prefix);
    /* the buckets taken so far, on the new topic too */
    for (uint32_t b = 0; b < WIRE_BUCKETS; b++) {
        char topic[48];
        snprintf(topic, sizeof topic, "%s%02u", topic_prefix, b);
        if (self->subscribed[b] && bus_subscribe(self->stage->bus, topic) != 0)
            return -1;
    }
    return 0;
}

void shard_on_change(shard_t *self, void (*fn)(void *arg), void *arg)
{
    self->on_change = fn;
    self->on_change_arg = arg;
}

void shard_set_release_grace(shard_t *self, uint64_t grace_ms)
{
    self->release_grace_ms = grace_ms;
}

int shard_owns(const shard_t *self, uint32_t bucket)
{
    return bucket < WIRE_BUCKETS && self->owned[bucket];
}

size_t shard_owned_count(const shard_t *self)
{
    size_t n = 0;
    for (uint32_t b = 0; b < WIRE_BUCKETS; b++)
        n += self->owned[b];
    return n;
}

size_t shard_peer_count(const shard_t *self) { return self->npeers; }

size_t shard_peer_names(const shard_t *self, const char **out, size_t max)
{
    size_t n = 0;
    for (; n < self->npeers && n < max; n++)
        out[n] = self->peers[n].instance;
    return n;
}
