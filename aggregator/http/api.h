/* The aggregator's HTTP API (libmicrohttpd, its own small thread pool):
 * DeepFlow's ProfileTracing, SkyWalking's analysed tree, folded stacks,
 * pprof, SVG flame graphs, the HTML page, process and task listings, task
 * creation, /metrics and /healthz. The route table (routes.c) lists them;
 * docs/api.md describes them. The http room's one public header
 * (aggregator/README.md). */
#ifndef SKYPROF_AGG_API_H
#define SKYPROF_AGG_API_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/core/agg.h"
#include "aggregator/net/net.h"
#include "aggregator/replica/replica.h"

#define AGG_API_MAX_BODY (64u * 1024u)       /* request bodies */
#define AGG_API_MAX_REPLY (64u << 20)        /* generated responses */

typedef struct agg_api agg_api_t;

/* Connections: at most AGG_API_CONNECTIONS open, AGG_API_CONNECTIONS_PER_IP
 * from one address, each closed after AGG_API_IDLE_S without traffic, so
 * idle or slow clients cannot take the server from the others. Request
 * heads (request line plus headers) beyond AGG_API_MAX_HEAD are refused by
 * libmicrohttpd with 431 (or 414 for a long URL). */
#define AGG_API_CONNECTIONS 256u
#define AGG_API_CONNECTIONS_PER_IP 32u
#define AGG_API_IDLE_S 10u
#define AGG_API_MAX_HEAD (16u * 1024u)

typedef struct {
    /* "host:port", "[v6]:port" or ":port" (any address); port 0 picks a
     * free one (see agg_api_port). */
    const char *addr;
    /* Request admission (guard.h); NULL = none. */
    const char *advertise_addr;
    const char *allowed_hosts;
    const char *auth_token;
} agg_api_options_t;

/* NULL with a reason in err. */
agg_api_t *agg_api_new(agg_t *agg, const agg_api_options_t *opts, char *err,
                       size_t errlen);
void agg_api_destroy(agg_api_t **self_p);
uint16_t agg_api_port(const agg_api_t *self);

/* Replicas: flame and process queries also ask the peers (replica.h);
 * NULL answers from this replica alone. Set before requests arrive. */
void agg_api_set_fanout(agg_api_t *self, agg_fanout_t *fanout);

/* The network room whose view GET /api/network serves; NULL: none (404).
 * Set before requests arrive. */
void agg_api_set_net(agg_api_t *self, net_t *net);

/* The endpoints as --help lists them, one table (routes.c); malloc'ed,
 * NULL when out of memory. */
char *agg_api_help(void);

/* The local UI (page.c): one HTML page with inline CSS and JS that talks
 * to the JSON API (/api/processes, /api/tasks, /api/flamegraph.svg). */
extern const char api_page_index_html[];

#endif
