/* Peer aggregator replicas (see replica.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/replica/replica.h"
#include "log.h"

typedef struct {
    agg_replica_t r;
    uint64_t last_seen_ms;
} live_t;

typedef struct {
    char instance[WIRE_MAX_AGG_INSTANCE + 1];
    uint64_t wall_ms;
} departed_t;

struct agg_replicas {
    pthread_mutex_t lock;
    char self_instance[WIRE_MAX_AGG_INSTANCE + 1];
    uint64_t history_ms;
    live_t live[AGG_REPLICAS_MAX];
    size_t nlive;
    departed_t departed[AGG_REPLICAS_DEPARTED_MAX];
    size_t ndeparted;
    int ever_seen;
};

agg_replicas_t *
agg_replicas_new(const char *self_instance, uint64_t history_ms)
{
    agg_replicas_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    snprintf(self->self_instance, sizeof(self->self_instance), "%s",
             self_instance ? self_instance : "");
    self->history_ms = history_ms;
    return self;
}

void
agg_replicas_destroy(agg_replicas_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pthread_mutex_destroy(&(*self_p)->lock);
    free(*self_p);
    *self_p = NULL;
}

/* Caller holds the lock. The oldest record makes room. */
static void
s_depart(agg_replicas_t *self, size_t i, uint64_t wall_ms, const char *why)
{
    log_info("replicas: aggregator %s %s; its history is no longer "
             "queryable", self->live[i].r.instance, why);
    if (self->ndeparted == AGG_REPLICAS_DEPARTED_MAX) {
        memmove(self->departed, self->departed + 1,
                (AGG_REPLICAS_DEPARTED_MAX - 1) * sizeof(*self->departed));
        self->ndeparted--;
    }
    departed_t *d = &self->departed[self->ndeparted++];
    memcpy(d->instance, self->live[i].r.instance, sizeof(d->instance));
    d->instance[sizeof(d->instance) - 1] = '\0';
    d->wall_ms = wall_ms;
    self->live[i] = self->live[--self->nlive];
}

int
agg_replicas_on_peer(agg_replicas_t *self, const wire_agg_peer_t *m,
                     uint64_t mono_ms, uint64_t wall_ms)
{
    int rc = 0;
    if (strcmp(m->instance, self->self_instance) == 0)
        return 0;
    pthread_mutex_lock(&self->lock);
    self->ever_seen = 1;
    size_t i;
    for (i = 0; i < self->nlive; i++)
        if (strcmp(self->live[i].r.instance, m->instance) == 0)
            break;
    if (m->leaving) {
        if (i < self->nlive)
            s_depart(self, i, wall_ms, "left");
        goto cleanup;
    }
    if (i == self->nlive) {
        if (self->nlive == AGG_REPLICAS_MAX) {
            rc = -1;
            goto cleanup;
        }
        self->nlive++;
        snprintf(self->live[i].r.instance, sizeof(self->live[i].r.instance),
                 "%s", m->instance);
        log_info("replicas: aggregator %s at %s joined", m->instance,
                 m->addr);
    }
    snprintf(self->live[i].r.addr, sizeof(self->live[i].r.addr), "%s",
             m->addr);
    self->live[i].last_seen_ms = mono_ms;
cleanup:
    pthread_mutex_unlock(&self->lock);
    return rc;
}

void
agg_replicas_expire(agg_replicas_t *self, uint64_t mono_ms, uint64_t wall_ms)
{
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->nlive;) {
        if (mono_ms - self->live[i].last_seen_ms > AGG_REPLICAS_TIMEOUT_MS)
            s_depart(self, i, wall_ms, "went silent");
        else
            i++;
    }
    uint64_t cutoff = wall_ms > self->history_ms ? wall_ms - self->history_ms
                                                 : 0;
    size_t keep = 0;
    for (size_t i = 0; i < self->ndeparted; i++)
        if (self->departed[i].wall_ms >= cutoff)
            self->departed[keep++] = self->departed[i];
    self->ndeparted = keep;
    pthread_mutex_unlock(&self->lock);
}

int
agg_replicas_ever_seen(agg_replicas_t *self)
{
    pthread_mutex_lock(&self->lock);
    int seen = self->ever_seen;
    pthread_mutex_unlock(&self->lock);
    return seen;
}

size_t
agg_replicas_live(agg_replicas_t *self, agg_replica_t *out, size_t max)
{
    pthread_mutex_lock(&self->lock);
    size_t n = self->nlive < max ? self->nlive : max;
    for (size_t i = 0; i < n; i++)
        out[i] = self->live[i].r;
    pthread_mutex_unlock(&self->lock);
    return n;
}

size_t
agg_replicas_departed(agg_replicas_t *self, uint64_t since_wall_ms,
                      char *text, size_t len)
{
    size_t n = 0, used = 0;
    if (len)
        text[0] = '\0';
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->ndeparted; i++) {
        if (self->departed[i].wall_ms < since_wall_ms)
            continue;
        n++;
        if (used < len) {
            int w = snprintf(text + used, len - used, "%saggregator %s left "
                             "at %llu, its history is gone",
                             used ? "; " : "", self->departed[i].instance,
                             (unsigned long long)(self->departed[i].wall_ms
                                                  / 1000));
            if (w > 0)
                used += (size_t)w;
        }
    }
    pthread_mutex_unlock(&self->lock);
    return n;
}
