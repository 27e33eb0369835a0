/* skyprof-aggregator: merges symbolized stacks into flame trees per
 * window, keeps a bounded history (memory + SQLite), publishes per-task
 * profiles on agg.profile for the uplink and serves the HTTP API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <zmq.h>

#include "agg.h"
#include "api.h"
#include "wire.h"
#include "fanout.h"
#include "handover.h"
#include "log.h"
#include "replicas.h"
#include "shard.h"
#include "stage.h"

/* Messages handled per wakeup, so timers and the API pump stay timely
 * under a flood. */
#define MESSAGES_PER_WAKEUP 256
/* Replicas: hand-over timers and announcements. */
#define REPLICA_TICK_MS 200
#define ANNOUNCE_MS 1000

static const stage_desc_t s_desc = {
    .name = "aggregator",
    .summary = "Merges symbolized stacks into flame trees, keeps their "
               "history and serves the HTTP API.",
    .extra_help = "HTTP API on aggregator.http_addr: POST "
                  "/v1/profile/ProfileTracing, GET /api/tree, /api/folded,\n"
                  "/api/pprof, /api/flamegraph.svg, /api/processes, "
                  "/api/tasks (GET, POST), /, /metrics, /healthz.\n"
                  "With aggregator.sharding, replicas share the pid buckets "
                  "(rendezvous hashing,\nexact hand-over) and every query "
                  "fans out to the live peers.",
};

typedef struct {
    stage_t *stage;
    agg_t *agg;
    agg_api_t *api;
    /* Replicas (aggregator.sharding) only. */
    shard_t *shard;
    agg_handover_t *handover;
    agg_replicas_t *replicas;
    agg_fanout_t *fanout;
    char advertise[WIRE_MAX_AGG_ADDR + 1];  /* "" = no API to offer */
    uint64_t last_announce_ms;
    log_ratelimit_t rl;
} aggd_t;

static int
s_publish(void *arg, msg_id_t id, void *body)
{
    aggd_t *self = arg;
    return bus_send(self->stage->bus, id, body);
}

/* What the core receives, decoded by the bus. */
static int
s_on_data(void *arg, const msg_decoded_t *m)
{
    aggd_t *self = arg;
    return agg_on_msg(self->agg, m);
}

static void
s_on_invalid(void *arg, msg_id_t id, const char *topic, const char *err)
{
    aggd_t *self = arg;
    agg_count_invalid(self->agg);
}

/* ------------------------------------------------------------ replicas */
/* Tells the hand-over what the shard owns now. Everything runs on the loop
 * thread, so checking before each drain and after each hello sees every
 * change before the next batch is admitted. */
static void
s_sync_owned(aggd_t *self)
{
    if (!self->shard)
        return;
    uint64_t now = now_mono_ms();
    int expect = shard_peer_count(self->shard) > 0
                 || agg_replicas_ever_seen(self->replicas);
    for (uint32_t b = 0; b < WIRE_BUCKETS; b++)
        agg_handover_set_owned(self->handover, b, shard_owns(self->shard, b),
                               expect, now);
}

static void
s_replay(void *arg, const char *topic, const void *data, size_t len)
{
    aggd_t *self = arg;
    /* The bus already noted its sequence number. */
    agg_intake(self->agg, NULL, topic, data, len);
}

static void
s_publish_release(void *arg, uint32_t bucket, const wire_agg_mark_t *marks,
                  uint32_t nmarks)
{
    aggd_t *self = arg;
    wire_agg_release_t m = { .instance = self->stage->instance,
                            .bucket = bucket, .nmarks = nmarks,
                            .marks = marks };
    if (bus_send(self->stage->bus, MSG_AGG_RELEASE, &m) != 0)
        log_warn("handover: cannot publish the release of bucket %u; its "
                 "new owner will wait for its timeout", bucket);
}

static void
s_publish_claim(void *arg, uint32_t bucket)
{
    aggd_t *self = arg;
    wire_agg_release_t m = { .instance = self->stage->instance,
                            .bucket = bucket };
    bus_send(self->stage->bus, MSG_AGG_CLAIM, &m);
}

static void
s_announce(aggd_t *self, int leaving)
{
    if (!self->advertise[0])
        return;
    wire_agg_peer_t m = { .instance = self->stage->instance,
                         .addr = self->advertise,
                         .leaving = (uint8_t)leaving };
    bus_send(self->stage->bus, MSG_AGG_PEER, &m);
}

/* ctl.agg.peer, decoded by the bus. */
static int
s_on_peer(void *arg, const msg_decoded_t *msg)
{
    aggd_t *self = arg;
    const wire_agg_peer_t *m = msg->body;
    if (agg_replicas_on_peer(self->replicas, m, now_mono_ms(),
                             now_wall_ms()))
        log_warn_rl(&self->rl, "more than %d aggregator replicas; %s is "
                    "left out of queries", AGG_REPLICAS_MAX, m->instance);
    return 0;
}

/* ctl.agg.claim and ctl.agg.release; our own come back through the
 * broker. */
static int
s_on_handover(void *arg, const msg_decoded_t *msg)
{
    aggd_t *self = arg;
    const wire_agg_release_t *m = msg->body;
    if (strcmp(m->instance, self->stage->instance) == 0)
        return 0;
    if (msg->id == MSG_AGG_CLAIM)
        agg_handover_on_claim(self->handover, m->bucket, now_mono_ms());
    else
        agg_handover_on_release(self->handover, m);
    return 0;
}

/* A hello may change the owned buckets: the hand-over learns before the
 * next batch is admitted. */
static void
s_on_shard_change(void *arg)
{
    s_sync_owned(arg);
}

static int
s_on_bus(loop_t *loop, void *socket, void *arg)
{
    aggd_t *self = arg;
    (void)loop;
    (void)socket;
    s_sync_owned(self);
    bus_dispatch(self->stage->bus, MESSAGES_PER_WAKEUP);
    return 0;
}

static int
s_on_replica_tick(loop_t *loop, void *arg)
{
    aggd_t *self = arg;
    (void)loop;
    uint64_t now = now_mono_ms();
    s_sync_owned(self);
    agg_handover_tick(self->handover, now);
    if (now - self->last_announce_ms >= ANNOUNCE_MS) {
        self->last_announce_ms = now;
        s_announce(self, 0);
        agg_replicas_expire(self->replicas, now, now_wall_ms());
    }
    return 0;
}

/* A leaving replica gives every bucket up: it tells its peers, keeps
 * counting through the grace period while they subscribe, then releases
 * each bucket with its marks. Bounded by the grace period plus a second. */
static void
s_leave(aggd_t *self)
{
    s_announce(self, 1);
    agg_handover_leave(self->handover, now_mono_ms());
    shard_destroy(&self->shard);          /* the leaving hello */
    uint64_t deadline = now_mono_ms() + AGG_HANDOVER_GRACE_MS + 1000;
    while (agg_handover_pending(self->handover) && now_mono_ms() < deadline) {
        zmq_pollitem_t item = { bus_sub_socket(self->stage->bus), 0,
                                ZMQ_POLLIN, 0 };
        if (zmq_poll(&item, 1, 50) > 0)
            bus_dispatch(self->stage->bus, MESSAGES_PER_WAKEUP);
        agg_handover_tick(self->handover, now_mono_ms());
    }
    log_info("handed every bucket over (%zu still pending)",
             agg_handover_pending(self->handover));
}

/* The host name's IPv4 address when it has a non-loopback one: container
 * runtimes map it in /etc/hosts, while peers' DNS may not know the name
 * (compose service DNS knows services, not container host names). */
static void
s_host_ip(char *host, size_t len)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ai->ai_addr;
        char ip[INET_ADDRSTRLEN];
        if ((ntohl(sin->sin_addr.s_addr) >> 24) == 127
            || !inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)))
            continue;
        snprintf(host, len, "%s", ip);
        break;
    }
    freeaddrinfo(res);
}

/* The host peers reach our API at when aggregator.advertise_addr is not
 * set: the bound address's, an unspecified one replaced by the host name
 * (or its address). */
static void
s_advertise_host(const char *http_addr, char *host, size_t len)
{
    const char *colon = strrchr(http_addr, ':');
    size_t hlen = colon ? (size_t)(colon - http_addr) : 0;
    snprintf(host, len, "%.*s", (int)hlen, http_addr);
    if (!host[0] || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "[::]") == 0
        || strcmp(host, "*") == 0) {
        if (gethostname(host, len - 1) != 0)
            snprintf(host, len, "localhost");
        host[len - 1] = '\0';
        s_host_ip(host, len);
    }
}

/* Where peers reach our API: aggregator.advertise_addr, else the
 * advertised host with the bound port. */
static void
s_advertise(aggd_t *self, const char *http_addr)
{
    const char *set = config_str(self->stage->cfg, "aggregator.advertise_addr");
    if (set && set[0]) {
        snprintf(self->advertise, sizeof(self->advertise), "%s", set);
        return;
    }
    /* Room for ":port" after it. */
    char host[sizeof(self->advertise) - sizeof(":65535")];
    s_advertise_host(http_addr, host, sizeof(host));
    snprintf(self->advertise, sizeof(self->advertise), "%s:%u", host,
             agg_api_port(self->api));
}

static int
s_replicas_start(aggd_t *self, uint64_t history_ms)
{
    const config_t *cfg = self->stage->cfg;
    agg_handover_opts_t ho = { .stats = self->stage->stats,
                               .replay = s_replay,
                               .release = s_publish_release,
                               .claim = s_publish_claim, .arg = self };
    self->handover = agg_handover_new(&ho);
    self->replicas = agg_replicas_new(self->stage->instance, history_ms);
    if (!self->handover || !self->replicas) {
        log_error("out of memory at start");
        return -1;
    }
    agg_set_handover(self->agg, self->handover);
    if (self->api) {
        self->fanout = agg_fanout_new(
            self->agg, self->replicas,
            config_duration_ms(cfg, "aggregator.fanout_timeout"),
            AGG_API_MAX_REPLY, config_str(cfg, "aggregator.auth_token"));
        if (!self->fanout) {
            log_error("out of memory at start");
            return -1;
        }
        agg_api_set_fanout(self->api, self->fanout);
        s_advertise(self, config_str(cfg, "aggregator.http_addr"));
        log_info("replica: queries fan out to peers; advertising %s",
                 self->advertise);
    } else {
        log_warn("aggregator.sharding without aggregator.http_addr: this "
                 "replica's share of the data cannot be queried");
    }
    if (bus_on(self->stage->bus, MSG_AGG_PEER, s_on_peer, self) < 0
        || bus_on(self->stage->bus, MSG_AGG_CLAIM, s_on_handover, self) < 0
        || bus_on(self->stage->bus, MSG_AGG_RELEASE, s_on_handover,
                  self) < 0) {
        log_error("cannot subscribe to %s*", TOPIC_AGG_CTL);
        return -1;
    }
    self->shard = shard_new(self->stage, "aggregator", TOPIC_SYM_STACKS, 1);
    if (!self->shard) {
        log_error("cannot start sharding of %s*", TOPIC_SYM_STACKS);
        return -1;
    }
    shard_on_change(self->shard, s_on_shard_change, self);
    /* A lost bucket is counted until its new owner claims it. */
    shard_set_release_grace(self->shard, AGG_HANDOVER_GRACE_MS + 2000);
    s_announce(self, 0);
    self->last_announce_ms = now_mono_ms();
    if (loop_add_timer(self->stage->loop, REPLICA_TICK_MS, s_on_replica_tick,
                       self) < 0) {
        log_error("cannot register with the loop");
        return -1;
    }
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
s_subscribe(aggd_t *self, int sharding)
{
    static const msg_id_t ids[] = { MSG_PROC_EVENTS, MSG_CTL_TASKS,
                                    MSG_K8S_CONTAINERS, MSG_STATS,
                                    MSG_SYM_STACKS };
    bus_t *bus = self->stage->bus;
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        bus_on_invalid(bus, ids[i], s_on_invalid, self);
        if (bus_on(bus, ids[i], s_on_data, self) < 0)
            return -1;
    }
    /* Every stage's stats; one instance takes every pid bucket of
     * sym.stacks, replicas let the shard subscribe to the buckets they
     * own. */
    if (bus_subscribe(bus, TOPIC_STATS) < 0
        || (!sharding && bus_subscribe(bus, TOPIC_SYM_STACKS) < 0)) {
        log_error("cannot subscribe to the bus");
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
    self.rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);

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
    int sharding = config_bool(cfg, "aggregator.sharding");
    /* A replica's store holds only its buckets, and two replicas loading
     * one file would both count it: one file per host. */
    char store_path[1024];
    const char *store = config_str(cfg, "aggregator.store_path");
    if (sharding && store[0]) {
        char host[256] = "host";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(store_path, sizeof(store_path), "%s.%s", store, host);
        store = store_path;
    }
    agg_options_t o = {
        .flush_ms = config_duration_ms(cfg, "profiling.flush_interval"),
        .history_ms = config_duration_ms(cfg, "aggregator.history"),
        .max_nodes = (size_t)max_nodes,
        .store_path = store,
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
        /* The name peers will send as Host is one of ours. */
        char host[256];
        const char *advertise = config_str(cfg, "aggregator.advertise_addr");
        if (!advertise[0]) {
            s_advertise_host(addr, host, sizeof(host));
            advertise = host;
        }
        agg_api_options_t ao = {
            .addr = addr,
            .advertise_addr = advertise,
            .allowed_hosts = config_str(cfg, "aggregator.allowed_hosts"),
            .auth_token = config_str(cfg, "aggregator.auth_token"),
        };
        self.api = agg_api_new(self.agg, &ao, err, sizeof(err));
        if (!self.api) {
            log_error("aggregator.http_addr: %s", err);
            goto cleanup;
        }
        log_info("HTTP API on %s (port %u)", addr, agg_api_port(self.api));
    }
    if (s_subscribe(&self, sharding) < 0)
        goto cleanup;
    if (sharding && s_replicas_start(&self, o.history_ms) < 0)
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
    if (self.shard)
        s_leave(&self);
    /* The last partial window is kept: flush it into the store. */
    agg_flush(self.agg, now_wall_ms());
cleanup:
    shard_destroy(&self.shard);
    /* The API first: its threads use the fan-out and the core. */
    agg_api_destroy(&self.api);
    agg_fanout_destroy(&self.fanout);
    agg_replicas_destroy(&self.replicas);
    if (self.agg)
        agg_set_handover(self.agg, NULL);
    agg_handover_destroy(&self.handover);
    agg_destroy(&self.agg);
    stage_destroy(&self.stage);
    return rc;
}
