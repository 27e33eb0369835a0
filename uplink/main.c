/* skyprof-uplink: the only stage that talks to the SkyWalking OAP. Reports
 * the processes the finders match, keeps them alive, asks for profiling
 * tasks (published on "task.request" for the policy-engine) and streams
 * the aggregator's per-task profiles ("agg.profile") to the OAP every
 * flush. For continuous profiling it publishes the process entities
 * ("proc.ids") and the OAP's policies ("policy.update"), reports the
 * policy engine's triggers ("trigger.report") and sends its meters
 * ("metric.continuous"). With no core.backend.addr it idles and only
 * serves counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "stage.h"
#include "uplink.h"
#include "wire.h"

/* How often the uplink looks at its schedule; every period it runs is a
 * multiple of a second in practice. */
#define UPLINK_TICK_MS 1000
/* Kubernetes API bytes are moved this often (non-blocking). */
#define UPLINK_K8S_TICK_MS 200

typedef struct {
    stage_t *stage;
    uplink_t *uplink;
} uplink_main_t;

static const stage_desc_t s_desc = {
    .name = "uplink",
    .summary = "skyprof uplink: reports processes to a SkyWalking OAP, "
               "fetches profiling tasks and sends profiling data over gRPC.",
    .extra_help =
        "Process finders (which processes are reported, and as what):\n"
        "  process_discovery:\n"
        "    scanner:\n"
        "      regex:\n"
        "        - match_cmd_regex: \"java .*\"\n"
        "          layer: OS_LINUX\n"
        "          service_name: \"{{.Process.ExeName}}\"\n"
        "          instance_name: \"{{.Rover.HostIPV4 \\\"eth0\\\"}}\"\n"
        "          process_name: \"{{.Process.ExeName}}-{{.Process.Pid}}\"\n"
        "          labels: \"a,b\"\n"
        "Kubernetes process discovery (docs/kubernetes.md):\n"
        "  process_discovery:\n"
        "    kubernetes:\n"
        "      active: true\n"
        "      node_name: \"${NODE_NAME}\"      # from spec.nodeName\n"
        "      namespaces: \"shop,prod\"        # empty = all\n"
        "      api_server: \"\"   # default: in-cluster (token_file, ca_file)\n"
        "See deploy/oap/skyprof-oap.yaml and uplink/README.md.",
};

static int
s_publish(void *arg, msg_id_t id, void *body)
{
    uplink_main_t *self = arg;
    return bus_send(self->stage->bus, id, body);
}

/* What the uplink receives, decoded by the bus. */
static int
s_on_msg(void *arg, const msg_decoded_t *m)
{
    uplink_main_t *self = arg;
    return uplink_on_msg(self->uplink, m, now_mono_ms());
}

static int
s_on_bus(loop_t *loop, void *socket, void *arg)
{
    uplink_main_t *self = arg;
    /* Bounded per wakeup so a flood cannot starve the OAP schedule. */
    bus_dispatch(self->stage->bus, 256);
    return 0;
}

static int
s_on_k8s_tick(loop_t *loop, void *arg)
{
    uplink_main_t *self = arg;
    uplink_k8s_tick(self->uplink, now_mono_ms());
    return 0;
}

static int
s_on_tick(loop_t *loop, void *arg)
{
    uplink_main_t *self = arg;
    uplink_tick(self->uplink, now_mono_ms());
    return 0;
}

int
main(int argc, char **argv)
{
    int exit_code = 1;
    uplink_main_t self = { 0 };
    finder_set_t *finders = NULL, *analyzers = NULL;
    k8s_disc_t *k8s = NULL;
    self.stage = stage_new(&s_desc, argc, argv, &exit_code);
    if (!self.stage)
        return exit_code;

    uplink_options_t opts;
    k8s_disc_options_t kopts;
    char err[512];
    if (!(finders = finder_set_new()) || !(analyzers = finder_set_new()))
        goto cleanup;
    if (uplink_options_from_config(&opts, finders, self.stage->cfg, err,
                                   sizeof err) != 0 ||
        k8s_disc_options_from_config(&kopts, analyzers, self.stage->cfg, err,
                                     sizeof err) != 0) {
        log_error("%s", err);
        exit_code = 2;
        goto cleanup;
    }
    if (kopts.active) {
        k8s = k8s_disc_new(&kopts, analyzers, self.stage->stats, err,
                           sizeof err);
        analyzers = NULL;           /* owned by the discovery */
        if (!k8s) {
            log_error("kubernetes: %s", err);
            exit_code = 2;
            goto cleanup;
        }
    }
    opts.k8s = k8s;
    opts.publish = s_publish;
    opts.cb_arg = &self;
    self.uplink = uplink_new(&opts, finders, self.stage->stats);
    finders = NULL;                 /* owned by the uplink now */
    k8s = NULL;
    if (!self.uplink)
        goto cleanup;

    if (uplink_active(self.uplink)) {
        bus_t *bus = self.stage->bus;
        if (bus_on(bus, MSG_PROC_EVENTS, s_on_msg, &self) != 0 ||
            bus_on(bus, MSG_AGG_PROFILE, s_on_msg, &self) != 0 ||
            bus_on(bus, MSG_CTL_TASKS, s_on_msg, &self) != 0 ||
            bus_on(bus, MSG_TRIGGER, s_on_msg, &self) != 0 ||
            bus_on(bus, MSG_METERS, s_on_msg, &self) != 0 ||
            bus_on(bus, MSG_NET_REPORT, s_on_msg, &self) != 0 ||
            loop_add_socket(self.stage->loop,
                            bus_sub_socket(self.stage->bus), s_on_bus,
                            &self) != 0 ||
            loop_add_timer(self.stage->loop, UPLINK_TICK_MS, s_on_tick,
                           &self) < 0) {
            log_error("uplink: cannot set up the bus or the timer");
            goto cleanup;
        }
        uplink_tick(self.uplink, now_mono_ms());
    }
    if (kopts.active &&
        loop_add_timer(self.stage->loop, UPLINK_K8S_TICK_MS, s_on_k8s_tick,
                       &self) < 0) {
        log_error("uplink: cannot set up the Kubernetes timer");
        goto cleanup;
    }
    exit_code = loop_run(self.stage->loop) == 0 ? 0 : 1;
    if (uplink_active(self.uplink)) {
        /* Last chance for data still buffered: one flush, bounded by the
         * call deadline. */
        uplink_flush_now(self.uplink);
        uplink_tick(self.uplink, now_mono_ms());
    }
cleanup:
    finder_set_destroy(&finders);
    finder_set_destroy(&analyzers);
    k8s_disc_destroy(&k8s);
    uplink_destroy(&self.uplink);
    stage_destroy(&self.stage);
    return exit_code;
}
