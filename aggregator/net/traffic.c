/* Traffics: a local process and one peer (process, or address), with its
 * side, TLS flag and protocol, as the reference agent groups connections
 * for its meters. The table is bounded; a traffic lives while connections
 * point at it and a while after its last activity (the local view). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/net/net_int.h"

/* SkyWalking Rover's layer-4 buckets (0 .. 5 s), in ns and in us. */
const double net_l4_bounds_ns[NET_L4_BUCKETS] = {
    0, 10e3, 50e3, 100e3, 500e3, 1e6, 1.2e6, 1.5e6, 1.7e6, 2e6, 2.5e6, 3e6,
    5e6, 7e6, 10e6, 13e6, 16e6, 20e6, 25e6, 30e6, 35e6, 40e6, 45e6, 50e6,
    70e6, 100e6, 150e6, 200e6, 300e6, 500e6, 1e9, 2e9, 3e9, 5e9};
const double net_l4_bounds_us[NET_L4_BUCKETS] = {
    0, 10, 50, 100, 500, 1e3, 1.2e3, 1.5e3, 1.7e3, 2e3, 2.5e3, 3e3, 5e3, 7e3,
    10e3, 13e3, 16e3, 20e3, 25e3, 30e3, 35e3, 40e3, 45e3, 50e3, 70e3, 100e3,
    150e3, 200e3, 300e3, 500e3, 1e6, 2e6, 3e6, 5e6};
/* Its HTTP/1.x package sizes in bytes (1048 is the reference's, not 1024)
 * and durations in ms. */
const double net_size_bounds[NET_SIZE_BUCKETS] = {
    256, 512, 1048, 1536, 2048, 3072, 5120, 8192, 10240, 15360, 20480, 35840,
    51200, 76800, 102400, 204800, 512000, 819200, 1048576, 1572864, 2097152,
    5242880, 10485760, 20971520, 52428800};
const double net_dur_bounds_ms[NET_DUR_BUCKETS] = {
    1, 2, 5, 10, 15, 20, 25, 30, 40, 45, 50, 60, 65, 70, 80, 90, 100, 110,
    130, 150, 170, 200, 230, 260, 290, 330, 380, 430, 480, 500, 600, 700, 800,
    900, 1000, 1100, 1300, 1500, 1800, 2000, 5000, 10000, 15000, 20000,
    30000};

size_t net_bucket(const double *bounds, size_t n, double v)
{
    for (size_t i = 1; i < n; i++)
        if (bounds[i] > v)
            return i - 1;
    return n - 1;
}

const char *net_role_name(uint8_t role)
{
    return role == WIRE_NET_ROLE_SERVER ? "server" : "client";
}

struct net_traffics {
    hashmap_t *map;
    size_t max;
};

typedef struct {
    uint32_t pid, peer_pid;
    uint8_t role, is_ssl;
    const net_protocol_t *proto;
    const char *peer;          /* the key's form (s_peer_key) */
} s_key_t;

/* A server's clients come from ephemeral ports: as the reference agent,
 * its traffic is per client address without the port (named by the first
 * connection's ip:port); a client's is per server ip:port. */
static size_t s_peer_key_len(uint8_t role, const char *peer)
{
    const char *colon = role == WIRE_NET_ROLE_SERVER ? strrchr(peer, ':')
                                                     : NULL;
    return colon ? (size_t)(colon - peer) : strlen(peer);
}

static int s_match(const void *item, const void *key)
{
    const net_traffic_t *t = item;
    const s_key_t *k = key;
    size_t n = s_peer_key_len(t->role, t->peer);
    return t->pid == k->pid && t->peer_pid == k->peer_pid &&
           t->role == k->role && t->is_ssl == k->is_ssl &&
           t->proto == k->proto && n == s_peer_key_len(k->role, k->peer) &&
           strncmp(t->peer, k->peer, n) == 0;
}

static uint64_t s_hash(const s_key_t *k)
{
    uint64_t h = hash_split64(((uint64_t)k->pid << 32) | k->peer_pid);
    h = hash_split64(h ^ ((uint64_t)k->role << 8 | k->is_ssl) ^
                     (uint64_t)(uintptr_t)k->proto);
    return hash_fnv1a_len(k->peer, s_peer_key_len(k->role, k->peer), h);
}

net_traffics_t *net_traffics_new(size_t max)
{
    net_traffics_t *self = calloc(1, sizeof *self);
    if (!self)
        goto cleanup;
    self->max = max;
    self->map = hashmap_new(s_match);
    if (!self->map)
        net_traffics_destroy(&self);
cleanup:
    return self;
}

static void s_free(net_traffic_t *t)
{
    if (t->proto && t->l7)
        t->proto->meters_free(t->l7);
    for (int r = 0; r < NET_REASONS; r++)
        for (int i = 0; i < NET_TOPN; i++)
            net_sample_free(&t->top[r][i]);
    free(t);
}

void net_traffics_destroy(net_traffics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    net_traffics_t *self = *self_p;
    size_t cur = 0;
    net_traffic_t *t;
    if (self->map)
        while ((t = hashmap_next(self->map, &cur)))
            s_free(t);
    hashmap_destroy(&self->map);
    free(self);
    *self_p = NULL;
}

net_traffic_t *net_traffics_get(net_traffics_t *self, uint32_t pid,
                                uint8_t role, uint32_t peer_pid,
                                const char *peer, uint8_t is_ssl,
                                const net_protocol_t *proto)
{
    /* the peer is its process when known, else its address */
    s_key_t k = {pid, peer_pid, role, is_ssl, proto, peer_pid ? "" : peer};
    uint64_t h = s_hash(&k);
    net_traffic_t *t = hashmap_find(self->map, h, &k);
    if (t || hashmap_size(self->map) >= self->max)
        goto cleanup;
    t = calloc(1, sizeof *t);
    if (!t)
        goto cleanup;
    t->hash = h;
    t->pid = pid;
    t->peer_pid = peer_pid;
    t->role = role;
    t->is_ssl = is_ssl;
    t->proto = proto;
    snprintf(t->peer, sizeof t->peer, "%s", k.peer);
    if (proto && !(t->l7 = proto->meters_new())) {
        free(t);
        t = NULL;
        goto cleanup;
    }
    if (hashmap_insert(self->map, h, t) != 0) {
        s_free(t);
        t = NULL;
    }
cleanup:
    return t;
}

size_t net_traffics_count(const net_traffics_t *self)
{
    return hashmap_size(self->map);
}

net_traffic_t *net_traffics_next(const net_traffics_t *self, size_t *cursor)
{
    return hashmap_next(self->map, cursor);
}

void net_traffics_expire(net_traffics_t *self, uint64_t idle_before_ms)
{
    /* removal reshuffles the map: collect first */
    size_t n = hashmap_size(self->map), ngone = 0, cur = 0;
    net_traffic_t **gone = n ? malloc(n * sizeof *gone) : NULL;
    net_traffic_t *t;
    if (!gone)
        return;
    while ((t = hashmap_next(self->map, &cur)))
        if (!t->nconns && t->last_ms < idle_before_ms)
            gone[ngone++] = t;
    for (size_t i = 0; i < ngone; i++) {
        t = gone[i];
        s_key_t k = {t->pid, t->peer_pid, t->role, t->is_ssl, t->proto,
                     t->peer};
        hashmap_remove(self->map, t->hash, &k);
        s_free(t);
    }
    free(gone);
}

size_t net_traffics_memory(const net_traffics_t *self)
{
    return hashmap_size(self->map) * (sizeof(net_traffic_t) + 2 * sizeof(void *));
}

void net_traffic_offer(net_traffic_t *t, net_sample_t *s)
{
    net_sample_t **top = t->top[s->reason];
    /* the reference ranks by duration: the shortest leaves when full */
    int at = NET_TOPN;
    for (int i = 0; i < NET_TOPN; i++)
        if (!top[i] || top[i]->dur_ms < s->dur_ms) {
            at = i;
            break;
        }
    if (at == NET_TOPN) {
        net_sample_free(&s);
        return;
    }
    net_sample_free(&top[NET_TOPN - 1]);
    memmove(&top[at + 1], &top[at], (size_t)(NET_TOPN - 1 - at) * sizeof *top);
    top[at] = s;
}
