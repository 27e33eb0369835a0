/* The aggregator's HTTP API (libmicrohttpd, its own small thread pool):
 * DeepFlow's ProfileTracing, SkyWalking's analysed tree, folded stacks,
 * pprof, SVG flame graphs, the HTML page, process and task listings, task
 * creation, /metrics and /healthz. aggregator/API.md lists them. */
#ifndef SKYPROF_AGG_API_H
#define SKYPROF_AGG_API_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"

#define AGG_API_MAX_BODY (64u * 1024u)       /* request bodies */
#define AGG_API_MAX_REPLY (64u << 20)        /* generated responses */

typedef struct agg_api agg_api_t;

/* addr: "host:port", "[v6]:port" or ":port" (any address); port 0 picks a
 * free one (see agg_api_port). NULL with a reason in err. */
agg_api_t *agg_api_new(agg_t *agg, const char *addr, char *err,
                       size_t errlen);
void agg_api_destroy(agg_api_t **self_p);
uint16_t agg_api_port(const agg_api_t *self);

/* Replicas: flame and process queries also ask the peers (fanout.h);
 * NULL answers from this replica alone. Set before requests arrive. */
struct agg_fanout;
void agg_api_set_fanout(agg_api_t *self, struct agg_fanout *fanout);

#endif
