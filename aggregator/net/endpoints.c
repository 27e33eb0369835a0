/* Endpoints: (pid, URI) rows of paired HTTP requests. Each interval's
 * counts go on net.report (the continuous HTTP monitors read them); the
 * totals since the row appeared, with a latency histogram for p50/p99,
 * feed the local view. Bounded: new URIs beyond the bound are counted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/net/endpoints.h"

struct net_endpoints {
    hashmap_t *map;
    size_t max;
};

typedef struct { uint32_t pid; const char *uri; } s_key_t;

static int s_match(const void *item, const void *key)
{
    const net_endpoint_t *e = item;
    const s_key_t *k = key;
    return e->pid == k->pid && strcmp(e->uri, k->uri) == 0;
}

static uint64_t s_hash(uint32_t pid, const char *uri)
{
    return hash_fnv1a(uri, hash_split64(pid));
}

net_endpoints_t *net_endpoints_new(size_t max)
{
    net_endpoints_t *self = calloc(1, sizeof *self);
    if (!self)
        goto cleanup;
    self->max = max;
    self->map = hashmap_new(s_match);
    if (!self->map)
        net_endpoints_destroy(&self);
cleanup:
    return self;
}

void net_endpoints_destroy(net_endpoints_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    net_endpoints_t *self = *self_p;
    size_t cur = 0;
    net_endpoint_t *e;
    if (self->map)
        while ((e = hashmap_next(self->map, &cur)))
            free(e);
    hashmap_destroy(&self->map);
    free(self);
    *self_p = NULL;
}

int net_endpoints_record(net_endpoints_t *self, uint32_t pid,
                         const char *uri, int status, double dur_ms)
{
    s_key_t k = {pid, uri};
    uint64_t h = s_hash(pid, uri);
    net_endpoint_t *e = hashmap_find(self->map, h, &k);
    if (!e) {
        if (hashmap_size(self->map) >= self->max)
            return -1;
        e = calloc(1, sizeof *e);
        if (!e)
            return -1;
        e->pid = pid;
        snprintf(e->uri, sizeof e->uri, "%s", uri);
        if (hashmap_insert(self->map, h, e) != 0) {
            free(e);
            return -1;
        }
    }
    int err = status >= 500;
    e->requests++;
    e->errors += (uint64_t)err;
    e->dur_ms_sum += dur_ms;
    e->total_requests++;
    e->total_errors += (uint64_t)err;
    e->total_dur_ms_sum += dur_ms;
    e->dur_h[net_bucket(net_dur_bounds_ms, NET_DUR_BUCKETS, dur_ms)]++;
    return 0;
}

net_endpoint_t *net_endpoints_next(const net_endpoints_t *self,
                                   size_t *cursor)
{
    return hashmap_next(self->map, cursor);
}

size_t net_endpoints_count(const net_endpoints_t *self)
{
    return hashmap_size(self->map);
}

double net_endpoint_quantile(const net_endpoint_t *e, double q)
{
    uint64_t total = 0, seen = 0;
    for (size_t i = 0; i < NET_DUR_BUCKETS; i++)
        total += e->dur_h[i];
    if (!total)
        return 0;
    /* the bucket's upper bound: an estimate never below the truth */
    double want = q * (double)total;
    for (size_t i = 0; i < NET_DUR_BUCKETS; i++) {
        seen += e->dur_h[i];
        if ((double)seen >= want)
            return i + 1 < NET_DUR_BUCKETS ? net_dur_bounds_ms[i + 1]
                                           : net_dur_bounds_ms[i];
    }
    return net_dur_bounds_ms[NET_DUR_BUCKETS - 1];
}
