/* skyprof-aggregator: merges symbolized stacks into flame trees per
 * window, keeps a bounded history (memory + SQLite), publishes per-task
 * profiles on agg.profile for the uplink and serves the HTTP API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "api.h"
#include "log.h"
#include "stage.h"

/* Messages handled per wakeup, so timers and the API pump stay timely
 * under a flood. */
#define MESSAGES_PER_WAKEUP 256

static const stage_desc_t s_desc = {
    .name = "aggregator",
    .summary = "Merges symbolized stacks into flame trees, keeps their "
               "history and serves the HTTP API.",
    .extra_help = "HTTP API on aggregator.http_addr: POST "
                  "/v1/profile/ProfileTracing, GET /api/tree, /api/folded,\n"
                  "/api/pprof, /api/flamegraph.svg, /api/processes, "
                  "/api/tasks (GET, POST), /, /metrics, /healthz.",
};

typedef struct {
    stage_t *stage;
    agg_t *agg;
    agg_api_t *api;
} aggd_t;

static int
s_publish(void *arg, const char *topic, const void *data, size_t len)
{
    aggd_t *self = arg;
    return bus_publish(self->stage->bus, topic, data, len);
}

static void
s_on_message(void *arg, const char *topic, const void *data, size_t len)
{
    aggd_t *self = arg;
    agg_intake(self->agg, self->stage->bus, topic, data, len);
}

static int
s_on_bus(loop_t *loop, void *socket, void *arg)
{
    aggd_t *self = arg;
    (void)loop;
    (void)socket;
    stage_drain(self->stage, MESSAGES_PER_WAKEUP, s_on_message, self);
    return 0;
}

static int
s_on_flush(loop_t *loop, void *arg)
{
    aggd_t *self = arg;
    (void)loop;
    agg_flush(self->agg, now_wall_ms());
    return 0;
}

static int
s_on_wake(loop_t *loop, int fd, void *arg)
{
    aggd_t *self = arg;
    (void)loop;
    (void)fd;
    agg_pump(self->agg);
    return 0;
}

static int
s_subscribe(aggd_t *self)
{
    /* One instance takes every pid bucket of sym.stacks. */
    const char *topics[] = { TOPIC_SYM_STACKS, TOPIC_PROC_EVENTS,
                             TOPIC_CTL_TASKS, TOPIC_STATS };
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
        if (bus_subscribe(self->stage->bus, topics[i]) < 0) {
            log_error("cannot subscribe to %s", topics[i]);
            return -1;
        }
    return 0;
}

int
main(int argc, char **argv)
{
    int rc = 1;
    aggd_t self;
    char err[512];
    memset(&self, 0, sizeof(self));

    self.stage = stage_new(&s_desc, argc, argv, &rc);
    if (!self.stage)
        goto cleanup;
    rc = 1;
    const config_t *cfg = self.stage->cfg;
    int64_t max_nodes = config_int(cfg, "aggregator.max_nodes");
    if (max_nodes < 16) {
        log_error("aggregator.max_nodes: %lld is too small (at least 16)",
                  (long long)max_nodes);
        rc = 2;
        goto cleanup;
    }
    agg_options_t o = {
        .sender = self.stage->sender,
        .flush_ms = config_duration_ms(cfg, "profiling.flush_interval"),
        .history_ms = config_duration_ms(cfg, "aggregator.history"),
        .max_nodes = (size_t)max_nodes,
        .store_path = config_str(cfg, "aggregator.store_path"),
        .store_retention_ms = config_duration_ms(cfg,
                                                 "aggregator.store_retention"),
        .stats = self.stage->stats,
        .publish = s_publish,
        .publish_arg = &self,
    };
    if (o.flush_ms < 100) {
        log_error("profiling.flush_interval: %llums is too short "
                  "(at least 100ms)", (unsigned long long)o.flush_ms);
        rc = 2;
        goto cleanup;
    }
    self.agg = agg_new(&o, now_wall_ms());
    if (!self.agg) {
        log_error("out of memory at start");
        goto cleanup;
    }
    const char *addr = config_str(cfg, "aggregator.http_addr");
    if (addr[0]) {
        self.api = agg_api_new(self.agg, addr, err, sizeof(err));
        if (!self.api) {
            log_error("aggregator.http_addr: %s", err);
            goto cleanup;
        }
        log_info("HTTP API on %s (port %u)", addr, agg_api_port(self.api));
    }
    if (s_subscribe(&self) < 0)
        goto cleanup;
    if (loop_add_socket(self.stage->loop, bus_sub_socket(self.stage->bus),
                        s_on_bus, &self) < 0
        || loop_add_timer(self.stage->loop, o.flush_ms, s_on_flush, &self) < 0
        || loop_add_fd(self.stage->loop, agg_wake_fd(self.agg), s_on_wake,
                       &self) < 0) {
        log_error("cannot register with the loop");
        goto cleanup;
    }
    log_info("aggregating every %llums, history %llums in memory, store %s",
             (unsigned long long)o.flush_ms, (unsigned long long)o.history_ms,
             agg_store_active(self.agg) ? o.store_path : "off");
    rc = loop_run(self.stage->loop) == 0 ? 0 : 1;
    log_info("stopping (signal %d)", loop_stop_signal(self.stage->loop));
    /* The last partial window is kept: flush it into the store. */
    agg_flush(self.agg, now_wall_ms());
cleanup:
    agg_api_destroy(&self.api);
    agg_destroy(&self.agg);
    stage_destroy(&self.stage);
    return rc;
}
