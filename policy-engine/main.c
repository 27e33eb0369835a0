/* skyprof-policy: owns the task set (engine.h) and continuous profiling's
 * watch (watch.h). This file is the stage around them: configuration (local
 * tasks and policies), the bus's typed handlers and the timers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "log.h"
#include "names.h"
#include "stage.h"
#include "watch.h"
#include "wire.h"

/* What main's callbacks share. */
typedef struct {
    stage_t *stage;
    policy_engine_t *engine;
    watch_t *watch;
} policy_main_t;

static const stage_desc_t s_desc = {
    .name = "policy",
    .summary = "skyprof policy engine: owns profiling tasks (OAP, local "
               "config, HTTP API) and publishes the desired active set.",
    .extra_help =
        "Local tasks come from the configuration file:\n"
        "  policy:\n"
        "    tasks:\n"
        "      - pid: 1234          # or a list: pids: [1, 2]\n"
        "        target: ON_CPU     # ON_CPU, OFF_CPU or NETWORK\n"
        "        duration: 60s\n"
        "        id: my-task        # optional\n"
        "        # NETWORK only, optional: the sampling rules, as the OAP's\n"
        "        # ExtensionConfigJSON (docs/network.md)\n"
        "        extension_config: '{\"networkSamplings\":[{\"minDuration\":100}]}'",
};

static int s_on_bus(loop_t *loop, void *socket, void *arg)
{
    policy_main_t *self = arg;
    bus_dispatch(self->stage->bus, 256);
    return policy_engine_publish_changes(self->engine);
}

static int s_on_republish(loop_t *loop, void *arg)
{
    policy_main_t *self = arg;
    return policy_engine_tick(self->engine);
}

static int s_on_fetch(loop_t *loop, void *arg)
{
    policy_main_t *self = arg;
    watch_fetch(self->watch);
    return 0;
}

/* A local trigger offers its task: published at once. */
static int s_on_check(loop_t *loop, void *arg)
{
    policy_main_t *self = arg;
    watch_check(self->watch);
    return policy_engine_publish_changes(self->engine);
}

/* A local task's target: ON_CPU when not given, any case. */
static int s_parse_target(const char *s)
{
    return s ? names_target_parse(s, NAMES_ANY_CASE) : WIRE_TARGET_ON_CPU;
}

/* policy.tasks[i].{id,pid,pids[j],target,duration}: validated at start,
 * like every other key, before anything is published. */
static int s_load_local_tasks(const config_t *cfg, policy_engine_t *engine)
{
    size_t n = config_list_len(cfg, "policy.tasks");
    for (size_t i = 0; i < n; i++) {
        char key[128], id[96];
        uint32_t pids[64];
        uint32_t npids = 0;
        int64_t v;
        uint64_t dur_ns = 0;
        snprintf(key, sizeof key, "policy.tasks[%zu].pid", i);
        const char *pid_s = config_raw(cfg, key);
        if (pid_s) {
            if (config_parse_int(pid_s, &v) || v <= 0 || v > INT32_MAX) {
                log_error("config key %s = '%s': want a process id", key,
                          pid_s);
                return -1;
            }
            pids[npids++] = (uint32_t)v;
        }
        char lkey[64];
        snprintf(lkey, sizeof lkey, "policy.tasks[%zu].pids", i);
        size_t np = config_list_len(cfg, lkey);
        for (size_t k = 0; k < np && npids < 64; k++) {
            snprintf(key, sizeof key, "%s[%zu]", lkey, k);
            const char *s = config_raw(cfg, key);
            if (!s || config_parse_int(s, &v) || v <= 0 || v > INT32_MAX) {
                log_error("config key %s = '%s': want a process id", key,
                          s ? s : "");
                return -1;
            }
            pids[npids++] = (uint32_t)v;
        }
        if (!npids) {
            log_error("config key policy.tasks[%zu]: needs pid or pids", i);
            return -1;
        }
        snprintf(key, sizeof key, "policy.tasks[%zu].target", i);
        const char *target_s = config_raw(cfg, key);
        int target = s_parse_target(target_s);
        if (target < 0) {
            log_error("config key %s = '%s': want ON_CPU, OFF_CPU or "
                      "NETWORK", key, target_s);
            return -1;
        }
        snprintf(key, sizeof key, "policy.tasks[%zu].duration", i);
        const char *dur_s = config_raw(cfg, key);
        if (!dur_s || config_parse_duration_ns(dur_s, &dur_ns) || !dur_ns) {
            log_error("config key %s = '%s': want a duration such as 60s",
                      key, dur_s ? dur_s : "");
            return -1;
        }
        snprintf(key, sizeof key, "policy.tasks[%zu].extension_config", i);
        const char *ext = config_raw(cfg, key);
        if (ext && *ext && (target != WIRE_TARGET_NETWORK || ext[0] != '{' ||
                            strlen(ext) > WIRE_MAX_LONG_STR)) {
            log_error("config key %s: a JSON object, for NETWORK tasks only",
                      key);
            return -1;
        }
        snprintf(key, sizeof key, "policy.tasks[%zu].id", i);
        const char *id_s = config_raw(cfg, key);
        snprintf(id, sizeof id, "%s", id_s && id_s[0] ? id_s : "");
        if (!id[0])
            snprintf(id, sizeof id, "local-%zu-%u", i, pids[0]);
        wire_task_t t = {
            .task_id = id,
            .target = (uint8_t)target,
            .trigger = WIRE_TRIGGER_FIXED_TIME,
            .source = WIRE_SRC_LOCAL,
            .duration_ms = dur_ns / 1000000,
            .npids = npids,
            .pids = pids,
            .extension_json = ext ? ext : "",
        };
        policy_engine_offer(engine, &t);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc = 1;
    policy_main_t self = {0};
    self.stage = stage_new(&s_desc, argc, argv, &rc);
    if (!self.stage)
        return rc;
    rc = 1;
    const config_t *cfg = self.stage->cfg;
    bus_t *bus = self.stage->bus;
    self.engine = policy_engine_new(bus, self.stage->stats);
    if (!self.engine)
        goto cleanup;
    if (s_load_local_tasks(cfg, self.engine) != 0) {
        rc = 2;
        goto cleanup;
    }
    watch_options_t wo = {
        .bus = bus,
        .stats = self.stage->stats,
        .engine = self.engine,
        .meter_prefix = config_str(cfg, "profiling.continuous.meter_prefix"),
        .oap_mode = config_str(cfg, "core.backend.addr")[0] != '\0',
        .execute_ms = config_duration_ms(
            cfg, "profiling.continuous.trigger.execute_duration"),
        .silence_ms = config_duration_ms(
            cfg, "profiling.continuous.trigger.silence_duration"),
        /* The seconds a net.report's HTTP figures cover. */
        .net_interval_ms = config_duration_ms(
            cfg, "profiling.task.network.report_interval"),
    };
    self.watch = watch_new(&wo);
    if (!self.watch)
        goto cleanup;
    const char *local_json = config_str(cfg, "policy.continuous_policies");
    if (local_json[0]) {
        char err[256];
        if (watch_apply_policies(self.watch, local_json, err,
                                 sizeof err) != 0) {
            log_error("config key policy.continuous_policies: %s", err);
            rc = 2;
            goto cleanup;
        }
        log_info("continuous: %zu service(s) with local policies",
                 watch_service_count(self.watch));
    }
    if (bus_on(bus, MSG_TASK_REQUEST, policy_engine_on_msg, self.engine) ||
        bus_on(bus, MSG_PROC_EVENTS, policy_engine_on_msg, self.engine) ||
        bus_on(bus, MSG_POLICY_UPDATE, watch_on_msg, self.watch) ||
        bus_on(bus, MSG_PROC_IDS, watch_on_msg, self.watch) ||
        bus_on(bus, MSG_NET_REPORT, watch_on_msg, self.watch))
        goto cleanup;
    loop_t *loop = self.stage->loop;
    uint64_t fetch_ms =
        config_duration_ms(cfg, "profiling.continuous.fetch_interval");
    uint64_t check_ms =
        config_duration_ms(cfg, "profiling.continuous.check_interval");
    loop_add_timer(loop, fetch_ms, s_on_fetch, &self);
    loop_add_timer(loop, check_ms, s_on_check, &self);
    loop_add_socket(loop, bus_sub_socket(bus), s_on_bus, &self);
    loop_add_timer(loop, config_duration_ms(cfg, "policy.republish_interval"),
                   s_on_republish, &self);
    rc = loop_run(loop) == 0 ? 0 : 1;
    log_info("stopping (signal %d)", loop_stop_signal(loop));
cleanup:
    watch_destroy(&self.watch);
    policy_engine_destroy(&self.engine);
    stage_destroy(&self.stage);
    return rc;
}
