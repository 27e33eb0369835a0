/* (pid, URI) rows of the network room (endpoints.c). */
#ifndef SKYPROF_AGG_NET_ENDPOINTS_H
#define SKYPROF_AGG_NET_ENDPOINTS_H

#include "aggregator/net/net_int.h"

typedef struct {
    uint32_t pid;
    char uri[256];             /* lib/http1 keeps 255 bytes of a path */
    /* this interval (net.report's http rows; reset by the room) */
    uint64_t requests, errors;
    double dur_ms_sum;
    /* since the row appeared (the local view) */
    uint64_t total_requests, total_errors;
    double total_dur_ms_sum;
    uint64_t dur_h[NET_DUR_BUCKETS];
} net_endpoint_t;

typedef struct net_endpoints net_endpoints_t;
net_endpoints_t *net_endpoints_new(size_t max);
void net_endpoints_destroy(net_endpoints_t **self_p);
/* 0, or -1 when the row is new and the table is full (or no memory). */
int net_endpoints_record(net_endpoints_t *self, uint32_t pid,
                         const char *uri, int status, double dur_ms);
net_endpoint_t *net_endpoints_next(const net_endpoints_t *self,
                                   size_t *cursor);
size_t net_endpoints_count(const net_endpoints_t *self);
/* Latency (ms) under which a fraction q of the row's requests fell: the
 * upper bound of the histogram bucket that holds it. */
double net_endpoint_quantile(const net_endpoint_t *e, double q);

#endif
