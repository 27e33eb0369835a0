/* A small per-stage HTTP/1.0 endpoint (plain socket, own thread, up to 32
 * connections at once, each with its own deadlines): GET or HEAD /metrics
 * renders the stage's counters; /healthz answers 200 "ok" while the stage
 * loop beats and 503 once it has not for the stale time, so a probe tells
 * a hung loop from a dead process. Any other path is 404, any other method
 * 405. Every stage but the aggregator (which serves both on its API port)
 * starts one when <stage>.http_addr is set (lib/stage.c); the Kubernetes
 * manifests probe /healthz. */
#ifndef SKYPROF_HEALTH_HTTP_H
#define SKYPROF_HEALTH_HTTP_H

#include "stats.h"

typedef struct health_http health_http_t;

/* addr is "host:port" or ":port". NULL on failure (logged). */
health_http_t *health_http_new(const char *addr, stats_t *stats);
void health_http_destroy(health_http_t **self_p);
/* The stage loop calls this from a timer (every 5 s, lib/stage.c) so
 * /healthz can tell a hung loop from a live one. */
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
