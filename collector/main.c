/* skyprof-collector: loads the BPF sampler and process probes, turns
 * samples into (object, offset) stacks and publishes them on the bus as
 * raw.stacks.BB batches, with process events on proc.events. Follows the
 * desired task set published on ctl.tasks. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "collector/collector.h"
#include "collector/options.h"
#include "log.h"
#include "stage.h"
#include "wire.h"

typedef struct {
    stage_t *stage;
    collector_t *collector;
    /* Put on every batch and event message: one central aggregator tells
     * the same pid on two nodes apart by it. */
    char node[WIRE_MAX_NODE + 1];
} collector_main_t;

/* node_name, or the host name when it is empty. */
static int s_node_name(const config_t *cfg, char *out, size_t size,
                       char *err, size_t errlen)
{
    const char *name = config_str(cfg, "node_name");
    int rc = -1;

    if (name && *name) {
        if (strlen(name) >= size) {
            snprintf(err, errlen, "node_name is longer than %zu bytes",
                     size - 1);
            goto cleanup;
        }
        snprintf(out, size, "%s", name);
    } else if (gethostname(out, size) < 0) {
        snprintf(err, errlen, "node_name is empty and the host name is "
                 "unreadable");
        goto cleanup;
    }
    out[size - 1] = '\0';
    rc = 0;
cleanup:
    return rc;
}

/* The engine's sink: each message on the bus, typed (lib/msg_table.h). */
static int s_publish_raw(void *arg, const char *topic, wire_raw_batch_t *batch)
{
    collector_main_t *self = arg;

    batch->node = self->node;
    return bus_send_on(self->stage->bus, MSG_RAW_STACKS, topic, batch);
}

static int s_publish_events(void *arg, wire_proc_events_t *events)
{
    collector_main_t *self = arg;

    events->node = self->node;
    return bus_send(self->stage->bus, MSG_PROC_EVENTS, events);
}

static int s_publish_net(void *arg, const char *topic, wire_net_batch_t *batch)
{
    collector_main_t *self = arg;

    batch->node = self->node;
    return bus_send_on(self->stage->bus, MSG_NET_EVENTS, topic, batch);
}

static int s_on_tasks(void *arg, const msg_decoded_t *m)
{
    collector_main_t *self = arg;

    collector_apply_tasks(self->collector, m->body);
    return 0;
}

/* The last good task set stays; the engine counts the bad one. */
static void s_on_bad_tasks(void *arg, msg_id_t id, const char *topic,
                           const char *err)
{
    collector_main_t *self = arg;

    collector_note_bad_tasks(self->collector);
}

static int s_on_bus(loop_t *loop, void *socket, void *arg)
{
    collector_main_t *self = arg;

    /* Bounded per call so the rings are never starved by the bus. */
    bus_dispatch(self->stage->bus, 64);
    return 0;
}

int main(int argc, char **argv)
{
    static const stage_desc_t desc = {
        .name = "collector",
        .summary = "Loads the eBPF on-CPU sampler and process probes, maps "
                   "user addresses to\n(object, file offset) and publishes "
                   "raw stacks and process events.",
        .extra_help = "Needs root, or CAP_BPF + CAP_PERFMON + "
                      "CAP_SYS_PTRACE (and CAP_DAC_READ_SEARCH for\n"
                      "other users' binaries). Settings: the collector.* "
                      "keys and\nprofiling.task.on_cpu.dump_period.",
    };
    collector_main_t self = { 0 };
    collector_options_t opts;
    char err[512] = "";
    int exit_code = 1;

    /* Big buffers (unwind table builds: tens of MiB for a libLLVM) are
     * mmap'd and given back when freed, not kept in the heap; a fixed
     * threshold also stops glibc from raising it after the first frees. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    self.stage = stage_new(&desc, argc, argv, &exit_code);
    if (!self.stage)
        return exit_code;
    exit_code = 1;
    /* Every setting is checked before the kernel is touched. */
    if (collector_options_from_config(self.stage->cfg, &opts, err,
                                      sizeof(err)) < 0) {
        log_error("%s", err);
        exit_code = 2;
        goto cleanup;
    }
    if (s_node_name(self.stage->cfg, self.node, sizeof(self.node), err,
                    sizeof(err)) < 0) {
        log_error("%s", err);
        exit_code = 2;
        goto cleanup;
    }
    log_info("node name %s", self.node);
    collector_sink_t sink = {
        .raw_batch = s_publish_raw,
        .net_batch = s_publish_net,
        .proc_events = s_publish_events,
        .arg = &self,
    };
    self.collector = collector_new(&opts, self.stage->loop, self.stage->stats,
                                   &sink, err, sizeof(err));
    if (!self.collector) {
        log_error("%s", err);
        goto cleanup;
    }
    bus_on_invalid(self.stage->bus, MSG_CTL_TASKS, s_on_bad_tasks, &self);
    if (bus_on(self.stage->bus, MSG_CTL_TASKS, s_on_tasks, &self) < 0 ||
        loop_add_socket(self.stage->loop, bus_sub_socket(self.stage->bus),
                        s_on_bus, &self) < 0) {
        log_error("cannot subscribe to %s", TOPIC_CTL_TASKS);
        goto cleanup;
    }
    exit_code = loop_run(self.stage->loop) == 0 ? 0 : 1;
    /* Publish what the last drain interval collected. */
    collector_drain(self.collector);
    log_info("stopping");
cleanup:
    collector_destroy(&self.collector);
    stage_destroy(&self.stage);
    return exit_code;
}
