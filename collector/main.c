/* skyprof-collector: loads the BPF sampler and process probes, turns
 * samples into (object, offset) stacks and publishes them on the bus as
 * raw.stacks.BB batches, with process events on proc.events. Follows the
 * desired task set published on ctl.tasks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "bus.h"
#include "collector/collector.h"
#include "collector/options.h"
#include "log.h"
#include "stage.h"
#include "wire.h"

typedef struct {
    stage_t *stage;
    collector_t *collector;
    arena_t *arena;
    wire_buf_t buf;
    log_ratelimit_t rl;
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

static int s_publish_raw(void *arg, const char *topic, wire_raw_batch_t *batch)
{
    collector_main_t *self = arg;
    bus_t *bus = self->stage->bus;

    wire_header_set(&batch->hdr, self->stage->sender,
                    bus_next_seq(bus, topic));
    batch->node = self->node;
    wire_buf_reset(&self->buf);
    if (wire_encode_raw_batch(batch, &self->buf) < 0) {
        log_warn_rl(&self->rl, "a raw stack batch broke a wire bound; dropped");
        return -1;
    }
    return bus_publish(bus, topic, self->buf.data, self->buf.len);
}

static int s_publish_events(void *arg, wire_proc_events_t *events)
{
    collector_main_t *self = arg;
    bus_t *bus = self->stage->bus;

    wire_header_set(&events->hdr, self->stage->sender,
                    bus_next_seq(bus, TOPIC_PROC_EVENTS));
    events->node = self->node;
    wire_buf_reset(&self->buf);
    if (wire_encode_proc_events(events, &self->buf) < 0) {
        log_warn_rl(&self->rl, "a process event batch broke a wire bound");
        return -1;
    }
    return bus_publish(bus, TOPIC_PROC_EVENTS, self->buf.data, self->buf.len);
}

static void s_on_tasks(collector_main_t *self, const char *topic,
                       const void *data, size_t len)
{
    wire_task_set_t set;
    char err[256];

    if (wire_decode_task_set(data, len, self->arena, &set, err,
                             sizeof(err)) != 0) {
        bus_count_invalid(self->stage->bus, topic);
        collector_note_bad_tasks(self->collector);
        log_warn_rl(&self->rl, "dropped a malformed %s (keeping the last "
                    "good task set): %s", topic, err);
        return;
    }
    bus_note_seq(self->stage->bus, topic, set.hdr.sender, set.hdr.seq);
    collector_apply_tasks(self->collector, &set);
}

static int s_on_bus(loop_t *loop, void *socket, void *arg)
{
    collector_main_t *self = arg;

    /* Bounded per call so the rings are never starved by the bus. */
    for (int i = 0; i < 64; i++) {
        const char *topic;
        const void *data;
        size_t len;
        int r = bus_recv(self->stage->bus, &topic, &data, &len);
        if (r == 0)
            break;
        if (r < 0)
            continue;
        arena_reset(self->arena);
        if (strcmp(topic, TOPIC_CTL_TASKS) == 0)
            s_on_tasks(self, topic, data, len);
    }
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
    collector_main_t self = { .rl = LOG_RATELIMIT_INIT(5, 10000) };
    collector_options_t opts;
    char err[512] = "";
    int exit_code = 1;

    wire_buf_init(&self.buf);
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
    self.arena = arena_new(16u << 20);
    if (!self.arena)
        goto cleanup;
    collector_sink_t sink = {
        .raw_batch = s_publish_raw,
        .proc_events = s_publish_events,
        .arg = &self,
    };
    self.collector = collector_new(&opts, self.stage->loop, self.stage->stats,
                                   &sink, err, sizeof(err));
    if (!self.collector) {
        log_error("%s", err);
        goto cleanup;
    }
    if (bus_subscribe(self.stage->bus, TOPIC_CTL_TASKS) < 0 ||
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
    arena_destroy(&self.arena);
    wire_buf_release(&self.buf);
    stage_destroy(&self.stage);
    return exit_code;
}
