/* Bucket hand-over between aggregator replicas (see handover.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/handover.h"
#include "hash.h"
#include "log.h"

enum mode { M_IDLE, M_PARKING, M_COUNTING };

/* One bit per peer slot in bucket_t.idle_heard. */
_Static_assert(AGG_HANDOVER_PEERS <= 64, "idle_heard is a 64-bit mask");

typedef struct {
    char sender[64];
    uint64_t hash;
    uint64_t counted;   /* highest origin seq counted here */
    uint64_t floor;     /* the previous owner counted up to here */
} mark_t;

typedef struct parked {
    struct parked *next;
    char topic[32];
    size_t len;
    char data[];
} parked_t;

typedef struct {
    int mode;
    int owned;
    uint64_t grace_until;     /* lost while counting: release then */
    uint64_t park_until;
    uint64_t next_claim;      /* PARKING: when to claim again */
    uint64_t idle_heard;      /* PARKING: peers (bit = slot) that said idle */
    mark_t *marks;
    uint32_t nmarks, cap;
    parked_t *head, *tail;
} bucket_t;

/* A peer that may be counting what we claim: in the shard view, or left
 * it lately (a leaving replica still counts through its grace). */
typedef struct {
    char name[WIRE_MAX_AGG_INSTANCE + 1];
    int used, in_view, seen;
    uint64_t left_ms;
} peer_t;

struct agg_handover {
    agg_handover_opts_t o;
    bucket_t b[WIRE_BUCKETS];
    peer_t peers[AGG_HANDOVER_PEERS];
    uint64_t untracked_until; /* a peer was left out: no idle ends before */
    size_t parked_bytes;
    log_ratelimit_t rl;
    stats_metric_t *m_owned, *m_waiting, *m_parked, *m_replayed,
        *m_park_dropped, *m_not_owned, *m_below_mark, *m_rel_sent,
        *m_rel_applied, *m_rel_ignored, *m_timeouts, *m_marks_full,
        *m_claims_sent, *m_claims_heard, *m_idle_sent, *m_idle_heard,
        *m_idle_ignored, *m_idle_ends, *m_peers_full;
};

agg_handover_t *
agg_handover_new(const agg_handover_opts_t *opts)
{
    agg_handover_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->o = *opts;
    if (!self->o.grace_ms)
        self->o.grace_ms = AGG_HANDOVER_GRACE_MS;
    if (!self->o.park_ms)
        self->o.park_ms = AGG_HANDOVER_PARK_MS;
    if (!self->o.park_bytes)
        self->o.park_bytes = AGG_HANDOVER_PARK_BYTES;
    self->rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);
    stats_t *st = opts->stats;
    self->m_owned = stats_gauge(st, "handover_buckets_counting", NULL,
                                "pid buckets this replica owns and counts");
    self->m_waiting = stats_gauge(st, "handover_buckets_waiting", NULL,
                                  "buckets parked until the previous "
                                  "owner's release, or in grace");
    self->m_parked = stats_counter(st, "batches_parked", NULL,
                                   "sym batches held until a bucket's "
                                   "release");
    self->m_replayed = stats_counter(st, "batches_unparked", NULL,
                                     "parked batches handed to counting "
                                     "after a release or timeout");
    self->m_park_dropped = stats_counter(st, "batches_park_dropped", NULL,
                                         "batches lost: park buffer full");
    self->m_not_owned = stats_counter(st, "batches_not_owned", NULL,
                                      "sym batches of buckets another "
                                      "replica counts");
    self->m_below_mark = stats_counter(st, "batches_below_release", NULL,
                                       "batches the previous owner had "
                                       "already counted");
    self->m_rel_sent = stats_counter(st, "releases_sent", NULL,
                                     "buckets released to a new owner");
    self->m_rel_applied = stats_counter(st, "releases_applied", NULL,
                                        "releases that ended a park");
    self->m_rel_ignored = stats_counter(st, "releases_ignored", NULL,
                                        "releases for buckets not parked "
                                        "here (late or not ours)");
    self->m_timeouts = stats_counter(st, "handover_timeouts", NULL,
                                     "parks ended without a release "
                                     "(previous owner gone or none)");
    self->m_claims_sent = stats_counter(st, "claims_sent", NULL,
                                        "claims of gained buckets "
                                        "(repeated while parked)");
    self->m_claims_heard = stats_counter(st, "claims_heard", NULL,
                                         "claims that ended our grace on "
                                         "a lost bucket");
    self->m_marks_full = stats_counter(st, "handover_marks_full", NULL,
                                       "origin senders past the per-bucket "
                                       "bound, left out of releases");
    self->m_idle_sent = stats_counter(st, "idle_answers_sent", NULL,
                                      "claims answered idle: the bucket "
                                      "is not counted here");
    self->m_idle_heard = stats_counter(st, "idle_answers_heard", NULL,
                                       "idle answers to our claims of a "
                                       "parked bucket");
    self->m_idle_ignored = stats_counter(st, "idle_answers_ignored", NULL,
                                         "idle answers for buckets not "
                                         "parked here or from replicas not "
                                         "in the view");
    self->m_idle_ends = stats_counter(st, "handover_idle_ends", NULL,
                                      "parks ended because every peer "
                                      "answered idle (nobody counted the "
                                      "bucket)");
    self->m_peers_full = stats_counter(st, "handover_peers_full", NULL,
                                       "peers past the bound: parks wait "
                                       "for a release or the timeout");
    return self;
}

static void
s_free_parked(agg_handover_t *self, bucket_t *b)
{
    while (b->head) {
        parked_t *p = b->head;
        b->head = p->next;
        self->parked_bytes -= p->len;
        free(p);
    }
    b->tail = NULL;
}

void
agg_handover_destroy(agg_handover_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    agg_handover_t *self = *self_p;
    for (uint32_t i = 0; i < WIRE_BUCKETS; i++) {
        s_free_parked(self, &self->b[i]);
        free(self->b[i].marks);
    }
    free(self);
    *self_p = NULL;
}

static void
s_gauges(agg_handover_t *self)
{
    stats_set(self->m_owned, (double)agg_handover_counting(self));
    stats_set(self->m_waiting, (double)agg_handover_pending(self));
}

static mark_t *
s_mark(agg_handover_t *self, bucket_t *b, const char *sender, int create)
{
    uint64_t h = hash_fnv1a(sender, 0);
    for (uint32_t i = 0; i < b->nmarks; i++)
        if (b->marks[i].hash == h && strcmp(b->marks[i].sender, sender) == 0)
            return &b->marks[i];
    if (!create)
        return NULL;
    if (b->nmarks == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 8;
        mark_t *m = cap <= WIRE_MAX_AGG_MARKS
                        ? realloc(b->marks, cap * sizeof(*m)) : NULL;
        if (!m) {
            stats_inc(self->m_marks_full);
            return NULL;
        }
        b->marks = m;
        b->cap = cap;
    }
    mark_t *m = &b->marks[b->nmarks++];
    memset(m, 0, sizeof(*m));
    snprintf(m->sender, sizeof(m->sender), "%s", sender);
    m->hash = h;
    return m;
}

/* Starts counting: the parked batches go back through admit, which now
 * applies the floors. */
static void
s_unpark(agg_handover_t *self, bucket_t *b)
{
    b->mode = M_COUNTING;
    b->idle_heard = 0;
    parked_t *p = b->head;
    b->head = b->tail = NULL;
    while (p) {
        parked_t *next = p->next;
        self->parked_bytes -= p->len;
        stats_inc(self->m_replayed);
        if (self->o.replay)
            self->o.replay(self->o.arg, p->topic, p->data, p->len);
        free(p);
        p = next;
    }
}

static void
s_claim(agg_handover_t *self, uint32_t bucket, uint64_t now_ms)
{
    self->b[bucket].next_claim = now_ms + AGG_HANDOVER_CLAIM_MS;
    stats_inc(self->m_claims_sent);
    if (self->o.claim)
        self->o.claim(self->o.arg, bucket);
}

void
agg_handover_set_owned(agg_handover_t *self, uint32_t bucket, int owned,
                       int expect_release, uint64_t now_ms)
{
    if (bucket >= WIRE_BUCKETS)
        return;
    bucket_t *b = &self->b[bucket];
    owned = owned ? 1 : 0;
    if (b->owned == owned)
        return;
    b->owned = owned;
    if (owned && b->mode == M_IDLE) {
        b->nmarks = 0;
        if (expect_release) {
            b->mode = M_PARKING;
            b->park_until = now_ms + self->o.park_ms;
            b->idle_heard = 0;
            s_claim(self, bucket, now_ms);
        } else {
            b->mode = M_COUNTING;
        }
    } else if (!owned && b->mode != M_IDLE) {
        b->grace_until = now_ms + self->o.grace_ms;
    }
    /* Regained during grace: it was never given up, nothing to do. */
    s_gauges(self);
}

int
agg_handover_admit(agg_handover_t *self, uint32_t bucket, const char *topic,
                   const char *origin_sender, uint64_t origin_seq,
                   const void *payload, size_t len)
{
    if (bucket >= WIRE_BUCKETS)
        return AGG_ADMIT_SKIP;
    bucket_t *b = &self->b[bucket];
    if (b->mode == M_IDLE) {
        stats_inc(self->m_not_owned);
        return AGG_ADMIT_SKIP;
    }
    if (b->mode == M_PARKING) {
        parked_t *p = NULL;
        if (self->parked_bytes + len <= self->o.park_bytes)
            p = malloc(sizeof(*p) + len);
        if (!p) {
            stats_inc(self->m_park_dropped);
            log_warn_rl(&self->rl, "handover: park buffer full (%zu bytes); "
                        "a batch of bucket %u is lost", self->parked_bytes,
                        bucket);
            return AGG_ADMIT_SKIP;
        }
        p->next = NULL;
        snprintf(p->topic, sizeof(p->topic), "%s", topic);
        p->len = len;
        memcpy(p->data, payload, len);
        if (b->tail)
            b->tail->next = p;
        else
            b->head = p;
        b->tail = p;
        self->parked_bytes += len;
        stats_inc(self->m_parked);
        return AGG_ADMIT_PARKED;
    }
    if (!origin_sender || !origin_sender[0]) {
        /* No origin, no mark: only the owner counts it. */
        if (b->owned)
            return AGG_ADMIT_COUNT;
        stats_inc(self->m_not_owned);
        return AGG_ADMIT_SKIP;
    }
    const mark_t *m = s_mark(self, b, origin_sender, 0);
    if (m && origin_seq <= m->floor) {
        stats_inc(self->m_below_mark);
        return AGG_ADMIT_SKIP;
    }
    return AGG_ADMIT_COUNT;
}

void
agg_handover_counted(agg_handover_t *self, uint32_t bucket,
                     const char *origin_sender, uint64_t origin_seq)
{
    if (bucket >= WIRE_BUCKETS || !origin_sender || !origin_sender[0])
        return;
    mark_t *m = s_mark(self, &self->b[bucket], origin_sender, 1);
    if (m && origin_seq > m->counted)
        m->counted = origin_seq;
}

void
agg_handover_on_release(agg_handover_t *self, const wire_agg_release_t *m)
{
    if (m->bucket >= WIRE_BUCKETS)
        return;
    bucket_t *b = &self->b[m->bucket];
    if (b->mode != M_PARKING) {
        stats_inc(self->m_rel_ignored);
        return;
    }
    for (uint32_t i = 0; i < m->nmarks; i++) {
        mark_t *k = s_mark(self, b, m->marks[i].sender, 1);
        if (!k)
            continue;
        if (m->marks[i].seq > k->floor)
            k->floor = m->marks[i].seq;
        if (k->floor > k->counted)
            k->counted = k->floor;
    }
    stats_inc(self->m_rel_applied);
    log_info("handover: bucket %u released by %s (%u origin marks)",
             m->bucket, m->instance, m->nmarks);
    s_unpark(self, b);
    s_gauges(self);
}

void
agg_handover_on_claim(agg_handover_t *self, uint32_t bucket, uint64_t now_ms)
{
    if (bucket >= WIRE_BUCKETS)
        return;
    bucket_t *b = &self->b[bucket];
    /* Nothing counted here, nothing to release: say so, so the claimant
     * need not wait for the timeout. */
    if (b->mode == M_IDLE) {
        stats_inc(self->m_idle_sent);
        if (self->o.idle)
            self->o.idle(self->o.arg, bucket);
        return;
    }
    /* While we think we own it the views differ for a moment: the claim
     * repeats once ours catches up. A bucket parked but lost is counted
     * and released when its grace ends, like one counted. */
    if (b->owned)
        return;
    uint64_t soon = now_ms + AGG_HANDOVER_SETTLE_MS;
    if (soon < b->grace_until) {
        b->grace_until = soon;
        stats_inc(self->m_claims_heard);
    }
}

static int
s_peer_slot(const agg_handover_t *self, const char *name)
{
    for (int i = 0; i < AGG_HANDOVER_PEERS; i++)
        if (self->peers[i].used && strcmp(self->peers[i].name, name) == 0)
            return i;
    return -1;
}

/* A slot taken or freed: no answer heard from whoever held it counts. */
static void
s_forget_slot(agg_handover_t *self, int slot)
{
    for (uint32_t i = 0; i < WIRE_BUCKETS; i++)
        self->b[i].idle_heard &= ~(1ull << slot);
}

void
agg_handover_set_peers(agg_handover_t *self, const char *const *names,
                       size_t n, uint64_t now_ms)
{
    uint64_t keep = self->o.grace_ms + AGG_HANDOVER_LEAVE_MS;
    for (int i = 0; i < AGG_HANDOVER_PEERS; i++)
        self->peers[i].seen = 0;
    for (size_t k = 0; k < n; k++) {
        int slot = -1;
        if (strlen(names[k]) <= WIRE_MAX_AGG_INSTANCE) {
            slot = s_peer_slot(self, names[k]);
            for (int i = 0; slot < 0 && i < AGG_HANDOVER_PEERS; i++)
                if (!self->peers[i].used) {
                    peer_t *p = &self->peers[i];
                    memset(p, 0, sizeof(*p));
                    p->used = 1;
                    snprintf(p->name, sizeof(p->name), "%s", names[k]);
                    s_forget_slot(self, i);
                    slot = i;
                }
        }
        if (slot < 0) {
            /* Its answers cannot be told apart: only a release or the
             * timeout may end a park while it may count. */
            if (now_ms >= self->untracked_until) {
                stats_inc(self->m_peers_full);
                log_warn_rl(&self->rl, "handover: more than %d peers (or "
                            "a name past %d bytes): parks wait for a "
                            "release or the timeout", AGG_HANDOVER_PEERS,
                            WIRE_MAX_AGG_INSTANCE);
            }
            self->untracked_until = now_ms + keep;
            continue;
        }
        self->peers[slot].seen = 1;
    }
    for (int i = 0; i < AGG_HANDOVER_PEERS; i++) {
        peer_t *p = &self->peers[i];
        if (!p->used)
            continue;
        if (p->seen) {
            p->in_view = 1;
        } else if (p->in_view) {
            p->in_view = 0;
            p->left_ms = now_ms;
        } else if (now_ms - p->left_ms >= keep) {
            p->used = 0;
            s_forget_slot(self, i);
        }
    }
}

/* Every peer that may count bucket said it does not, since the park
 * began. No peer known: no answer proves anything, wait as before. */
static int
s_all_idle(const agg_handover_t *self, const bucket_t *b, uint64_t now_ms)
{
    if (now_ms < self->untracked_until)
        return 0;
    int n = 0;
    for (int i = 0; i < AGG_HANDOVER_PEERS; i++) {
        if (!self->peers[i].used)
            continue;
        if (!(b->idle_heard & (1ull << i)))
            return 0;
        n++;
    }
    return n > 0;
}

static void
s_idle_end(agg_handover_t *self, uint32_t bucket)
{
    stats_inc(self->m_idle_ends);
    log_info("handover: no peer counts bucket %u; counting what was parked",
             bucket);
    s_unpark(self, &self->b[bucket]);
}

void
agg_handover_on_idle(agg_handover_t *self, uint32_t bucket,
                     const char *instance, uint64_t now_ms)
{
    int slot = instance ? s_peer_slot(self, instance) : -1;
    if (bucket >= WIRE_BUCKETS || slot < 0
        || self->b[bucket].mode != M_PARKING || !self->b[bucket].owned) {
        stats_inc(self->m_idle_ignored);
        return;
    }
    bucket_t *b = &self->b[bucket];
    b->idle_heard |= 1ull << slot;
    stats_inc(self->m_idle_heard);
    if (s_all_idle(self, b, now_ms)) {
        s_idle_end(self, bucket);
        s_gauges(self);
    }
}

static void
s_release(agg_handover_t *self, uint32_t bucket)
{
    bucket_t *b = &self->b[bucket];
    wire_agg_mark_t *marks = calloc(b->nmarks ? b->nmarks : 1, sizeof(*marks));
    uint32_t n = 0;
    if (marks) {
        for (uint32_t i = 0; i < b->nmarks; i++) {
            uint64_t seq = b->marks[i].counted > b->marks[i].floor
                               ? b->marks[i].counted : b->marks[i].floor;
            marks[n++] = (wire_agg_mark_t){ b->marks[i].sender, seq };
        }
    } else {
        log_warn("handover: out of memory releasing bucket %u; its new "
                 "owner will time out and may count some batches twice",
                 bucket);
    }
    if (marks && self->o.release)
        self->o.release(self->o.arg, bucket, marks, n);
    stats_inc(self->m_rel_sent);
    free(marks);
    b->mode = M_IDLE;
    b->nmarks = 0;
}

void
agg_handover_tick(agg_handover_t *self, uint64_t now_ms)
{
    for (uint32_t i = 0; i < WIRE_BUCKETS; i++) {
        bucket_t *b = &self->b[i];
        int grace_over = !b->owned && now_ms >= b->grace_until;
        /* The peers that had not answered may have left for good. */
        if (b->mode == M_PARKING && b->owned && b->idle_heard
            && s_all_idle(self, b, now_ms))
            s_idle_end(self, i);
        if (b->mode == M_PARKING && (now_ms >= b->park_until || grace_over)) {
            stats_inc(self->m_timeouts);
            log_info("handover: no release for bucket %u; counting what "
                     "was parked", i);
            s_unpark(self, b);
        }
        if (b->mode == M_COUNTING && grace_over)
            s_release(self, i);
        if (b->mode == M_PARKING && b->owned && now_ms >= b->next_claim)
            s_claim(self, i, now_ms);
    }
    s_gauges(self);
}

void
agg_handover_leave(agg_handover_t *self, uint64_t now_ms)
{
    for (uint32_t i = 0; i < WIRE_BUCKETS; i++)
        agg_handover_set_owned(self, i, 0, 0, now_ms);
}

size_t
agg_handover_pending(const agg_handover_t *self)
{
    size_t n = 0;
    for (uint32_t i = 0; i < WIRE_BUCKETS; i++)
        n += self->b[i].mode == M_PARKING
             || (self->b[i].mode == M_COUNTING && !self->b[i].owned);
    return n;
}

size_t
agg_handover_counting(const agg_handover_t *self)
{
    size_t n = 0;
    for (uint32_t i = 0; i < WIRE_BUCKETS; i++)
        n += self->b[i].mode == M_COUNTING && self->b[i].owned;
    return n;
}
