/* What every stage's main does first: parse --help/--config/-v, load and
 * validate the configuration, set up logging, the loop, the ZeroMQ context,
 * the bus, the counters, the periodic stats publication and, when
 * <stage>.http_addr is set, the per-stage HTTP endpoint (/metrics,
 * /healthz; lib/health_http.h) with its liveness beat. The aggregator is
 * the exception: it serves /metrics and /healthz on its own API port. */
#ifndef SKYPROF_STAGE_H
#define SKYPROF_STAGE_H

#include "bus.h"
#include "config.h"
#include "loop.h"
#include "stats.h"

typedef struct {
    const char *name;         /* "collector", used in topics and config */
    const char *summary;      /* one line for --help */
    const char *extra_help;   /* stage-specific options text, or NULL */
} stage_desc_t;

typedef struct stage {
    const stage_desc_t *desc;
    config_t *cfg;
    loop_t *loop;
    void *zmq_ctx;
    bus_t *bus;
    bus_curve_t *curve;       /* CURVE keys for tcp:// (enabled 0: off) */
    stats_t *stats;
    char instance[48];
    char sender[64];          /* "<name>/<instance>" */
    void *http;               /* per-stage health/metrics server */
    int verbose;
} stage_t;

/* Parses the command line and starts the common machinery. Returns NULL
 * and sets *exit_code (0 after --help or --print-config, 2 on usage or
 * config errors, 1 on other failures). */
stage_t *stage_new(const stage_desc_t *desc, int argc, char **argv,
                   int *exit_code);
void stage_destroy(stage_t **self_p);

/* The broker endpoints from bus.in / bus.out, defaulting to ipc:// sockets
 * in runtime_dir. */
void stage_endpoints(const config_t *cfg, char *in, size_t in_size, char *out,
                     size_t out_size);

/* Receives up to max messages without blocking and hands each one with a
 * valid envelope to fn (malformed envelopes are counted by the bus).
 * Bounded so one busy socket cannot starve the rest of the loop. Returns
 * how many were handed over. */
typedef void (*stage_msg_fn)(void *arg, const char *topic, const void *data,
                             size_t len);
int stage_drain(stage_t *self, int max, stage_msg_fn fn, void *arg);

/* Encodes with the given encoder into a scratch buffer and publishes. */
int stage_publish(stage_t *self, const char *topic, const void *buf,
                  size_t len);

#endif
