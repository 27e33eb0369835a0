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

#include "aggregator/core/agg.h"
#include "aggregator/http/api.h"
#include "aggregator/net/net.h"
#include "aggregator/replica/replica.h"
#include "hostport.h"
#include "log.h"
#include "stage.h"
#include "wire.h"

/* Messages handled per wakeup, so timers and the API pump stay timely
 * under a flood. */
#define MESSAGES_PER_WAKEUP 256

/* extra_help is the route table's (agg_api_help), made in main. */
static const stage_desc_t s_desc = {
    .name = "aggregator",
    .summary = "Merges symbolized stacks into flame trees, keeps their "
               "history and serves the HTTP API.",
};

/* What main's callbacks share; every stage's main names it <stage>_main_t. */
typedef struct {
    stage_t *stage;
    agg_t *agg;
    agg_api_t *api;
    agg_member_t *member;     /* replicas (aggregator.sharding) only */
    net_t *net;               /* the network room */
} aggregator_main_t;

static int
s_publish(void *arg, msg_id_t id, void *body)
{
    aggregator_main_t *self = arg;
    return bus_send(self->stage->bus, id, body);
}

/* What the core receives, decoded by the bus; the task set goes to the
 * network room too (which processes it analyses). */
static int
s_on_data(void *arg, const msg_decoded_t *m)
{
    aggregator_main_t *self = arg;
    if (m->id == MSG_CTL_TASKS)
        (void)net_on_tasks(self->net, m->body);
    return agg_on_msg(self->agg, m);
}

/* Socket events: the network room's alone. */
static int
s_on_net(void *arg, const msg_decoded_t *m)
{
    aggregator_main_t *self = arg;
    return net_on_batch(self->net, m->body);
}

static int
s_on_net_report(loop_t *loop, void *arg)
{
    aggregator_main_t *self = arg;
    (void)loop;
    (void)net_flush(self->net, now_wall_ms());
    return 0;
}

static void
s_on_invalid(void *arg, msg_id_t id, const char *topic, const char *err)
{
    aggregator_main_t *self = arg;
    agg_count_invalid(self->agg);
}

static int
s_on_bus(loop_t *loop, void *socket, void *arg)
{
    aggregator_main_t *self = arg;
    (void)loop;
    (void)socket;
    agg_member_sync(self->member);
    bus_dispatch(self->stage->bus, MESSAGES_PER_WAKEUP);
    return 0;
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
 * set: the bound address's ("[v6]" bracketed, ready for ":port"), an
 * unspecified one replaced by the host name (or its address). */
static void
s_advertise_host(const char *http_addr, char *host, size_t len)
{
    hostport_t hp;
    /* A bad address is refused when the API starts. */
    if (hostport_parse(http_addr, 0, &hp, NULL, 0) == 0 && hp.host[0]
        && strcmp(hp.host, "0.0.0.0") != 0 && strcmp(hp.host, "::") != 0
        && strcmp(hp.host, "*") != 0
        && hostport_format(hp.host, NULL, host, len) == 0)
        return;
    if (gethostname(host, len - 1) != 0)
        snprintf(host, len, "localhost");
    host[len - 1] = '\0';
    s_host_ip(host, len);
}

/* Where peers reach our API: aggregator.advertise_addr, else the
 * advertised host with the bound port. */
static void
s_advertise(aggregator_main_t *self, const char *http_addr, char *out,
            size_t len)
{
    const char *set = config_str(self->stage->cfg, "aggregator.advertise_addr");
    if (set && set[0]) {
        snprintf(out, len, "%s", set);
        return;
    }
    /* Room for ":port" after it. */
    char host[WIRE_MAX_AGG_ADDR + 1 - sizeof(":65535")];
    s_advertise_host(http_addr, host, sizeof(host));
    snprintf(out, len, "%s:%u", host, agg_api_port(self->api));
}

static int
s_replicas_start(aggregator_main_t *self, uint64_t history_ms)
{
    const config_t *cfg = self->stage->cfg;
    char advertise[WIRE_MAX_AGG_ADDR + 1] = "";
    if (self->api)
        s_advertise(self, config_str(cfg, "aggregator.http_addr"), advertise,
                    sizeof(advertise));
    agg_member_opts_t mo = {
        .stage = self->stage,
        .agg = self->agg,
        .history_ms = history_ms,
        .advertise = advertise,
        .fanout_timeout_ms = config_duration_ms(cfg,
                                                "aggregator.fanout_timeout"),
        .fanout_max_reply = AGG_API_MAX_REPLY,
        .auth_token = config_str(cfg, "aggregator.auth_token"),
    };
    self->member = agg_member_new(&mo);
    if (!self->member)
        return -1;
    if (self->api)
        agg_api_set_fanout(self->api, agg_member_fanout(self->member));
    return 0;
}

static int
s_on_flush(loop_t *loop, void *arg)
{
    aggregator_main_t *self = arg;
    (void)loop;
    agg_flush(self->agg, now_wall_ms());
    return 0;
}

static int
s_on_wake(loop_t *loop, int fd, void *arg)
{
    aggregator_main_t *self = arg;
    (void)loop;
    (void)fd;
    agg_pump(self->agg);
    return 0;
}

static int
s_subscribe(aggregator_main_t *self, int sharding)
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
    bus_on_invalid(bus, MSG_NET_EVENTS, s_on_invalid, self);
    if (bus_on(bus, MSG_NET_EVENTS, s_on_net, self) < 0)
        return -1;
    /* Every stage's stats; one instance takes every pid bucket of
     * sym.stacks, replicas let the shard subscribe to the buckets they
     * own. */
    if (bus_subscribe(bus, TOPIC_STATS) < 0
        || (!sharding && bus_subscribe(bus, TOPIC_SYM_STACKS) < 0)
        || (!sharding && bus_subscribe(bus, TOPIC_NET_EVENTS) < 0)) {
        log_error("cannot subscribe to the bus");
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    int rc = 1;
    aggregator_main_t self;
    char err[512];
    char *help = NULL;
    memset(&self, 0, sizeof(self));

    stage_desc_t desc = s_desc;
    help = agg_api_help();
    desc.extra_help = help;
    self.stage = stage_new(&desc, argc, argv, &rc);
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
    int64_t max_conns = config_int(cfg, "aggregator.net_max_connections");
    int64_t max_endpoints = config_int(cfg, "aggregator.net_max_endpoints");
    uint64_t report_ms = config_duration_ms(cfg,
                                            "profiling.task.network.report_interval");
    if (max_conns < 1 || max_endpoints < 1 || report_ms < 100) {
        log_error("aggregator.net_max_connections and net_max_endpoints must "
                  "be positive, profiling.task.network.report_interval at "
                  "least 100ms");
        rc = 2;
        goto cleanup;
    }
    net_options_t no = {
        .stats = self.stage->stats,
        .max_conns = (size_t)max_conns,
        .max_endpoints = (size_t)max_endpoints,
        .publish = s_publish,
        .publish_arg = &self,
    };
    self.net = net_new(&no);
    if (!self.net) {
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
        agg_api_set_net(self.api, self.net);
        log_info("HTTP API on %s (port %u)", addr, agg_api_port(self.api));
    }
    if (s_subscribe(&self, sharding) < 0)
        goto cleanup;
    if (sharding && s_replicas_start(&self, o.history_ms) < 0)
        goto cleanup;
    if (loop_add_socket(self.stage->loop, bus_sub_socket(self.stage->bus),
                        s_on_bus, &self) < 0
        || loop_add_timer(self.stage->loop, o.flush_ms, s_on_flush, &self) < 0
        || loop_add_timer(self.stage->loop, report_ms, s_on_net_report,
                          &self) < 0
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
    agg_member_leave(self.member);
    /* The last partial window is kept: flush it into the store. */
    agg_flush(self.agg, now_wall_ms());
cleanup:
    /* The API first: its threads use the fan-out and the core. */
    agg_api_destroy(&self.api);
    agg_member_destroy(&self.member);
    net_destroy(&self.net);
    agg_destroy(&self.agg);
    stage_destroy(&self.stage);
    free(help);
    return rc;
}
