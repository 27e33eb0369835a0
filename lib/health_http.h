/* A small per-stage HTTP endpoint (plain socket, own thread): GET /metrics
 * renders the stage's counters, GET /healthz answers "ok" while the stage
 * loop is alive. Used by container liveness/readiness probes. */
#ifndef SKYPROF_HEALTH_HTTP_H
#define SKYPROF_HEALTH_HTTP_H

#include "stats.h"

typedef struct health_http health_http_t;

/* addr is "host:port" or ":port". NULL on failure (logged). */
health_http_t *health_http_new(const char *addr, stats_t *stats);
void health_http_destroy(health_http_t **self_p);
/* The stage loop calls this on every round so /healthz can tell a hung
 * loop from a live one. */
void health_http_beat(health_http_t *self);
/* How long without a beat before /healthz answers 503 (default 30 s). */
void health_http_set_stale_ms(health_http_t *self, uint64_t stale_ms);
/* The port actually bound (useful with ":0"); -1 for NULL. */
int health_http_port(const health_http_t *self);

/* Parse "host:port" / ":port" / "port" (lib/hostport.h) into a sockaddr_in
 * (IPv4; host "", "*" or "localhost" or a dotted quad). */
struct sockaddr_in;
int health_http_parse_addr(const char *addr, struct sockaddr_in *out);

#endif
