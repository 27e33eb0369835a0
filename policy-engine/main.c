/* skyprof-policy: owns the task set. Takes fixed-time tasks from the OAP
 * (through the uplink), the local configuration and the HTTP API (through
 * the aggregator), all on "task.request", decides what is active, and
 * republishes the full desired set on "ctl.tasks" on every change and every
 * policy.republish_interval, so a restarted collector converges. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "continuous.h"
#include "log.h"
#include "monitor.h"
#include "monitors.h"
#include "names.h"
#include "procfacts.h"
#include "stage.h"
#include "taskset.h"
#include "wire.h"

/* Per-process meters (<meter_prefix>_<monitor>) kept on /metrics while the
 * process is monitored. */
typedef struct {
    uint32_t pid;
    stats_metric_t *gauges[MONITOR_COUNT];
    uint64_t round;
} meter_set_t;

/* The uplink's view of a process (proc.ids), for service membership. */
typedef struct {
    uint32_t pid;
    char service[128];
    char layer[32];
} entity_t;

typedef struct {
    stage_t *stage;
    taskset_t *tasks;
    uint64_t published_generation;
    uint64_t epoch;              /* start time: makes generations monotonic
                                    across restarts of this stage */
    log_ratelimit_t rl;
    stats_metric_t *offered[TASKS_FULL + 1];
    stats_metric_t *active;
    stats_metric_t *sets_published;
    stats_metric_t *ended;
    /* continuous profiling */
    continuous_t *cont;
    monitor_t *monitor;
    monitor_reading_t *readings;     /* CONT_MAX_PROCS */
    meter_set_t *meters;             /* CONT_MAX_PROCS */
    size_t nmeters;
    uint64_t fetch_round;
    int oap_mode;
    stats_metric_t *triggers;
    stats_metric_t *policy_errors;
    entity_t *entities;              /* CONT_MAX_PROCS, from proc.ids */
    size_t nentities;
} policy_main_t;

static const char *s_service_of(uint32_t pid, void *arg)
{
    policy_main_t *self = arg;
    for (size_t i = 0; i < self->nentities; i++)
        if (self->entities[i].pid == pid)
            return self->entities[i].service;
    return NULL;
}

static const stage_desc_t s_desc = {
    .name = "policy",
    .summary = "skyprof policy engine: owns profiling tasks (OAP, local "
               "config, HTTP API) and publishes the desired active set.",
    .extra_help =
        "Local tasks come from the configuration file:\n"
        "  policy:\n"
        "    tasks:\n"
        "      - pid: 1234          # or a list: pids: [1, 2]\n"
        "        target: ON_CPU     # ON_CPU or OFF_CPU\n"
        "        duration: 60s\n"
        "        id: my-task        # optional",
};

static int s_publish(policy_main_t *self)
{
    const wire_task_t *tasks;
    size_t n = taskset_snapshot(self->tasks, &tasks);
    wire_task_set_t msg = {
        .generation = self->epoch + taskset_generation(self->tasks),
        .ntasks = (uint32_t)n,
        .tasks = tasks,
    };
    if (bus_send(self->stage->bus, MSG_CTL_TASKS, &msg) == BUS_TOO_BIG) {
        log_error("cannot encode the task set (%zu tasks)", n);
        return 0;
    }
    stats_inc(self->sets_published);
    stats_set(self->active, (double)n);
    self->published_generation = taskset_generation(self->tasks);
    return 0;
}

static int s_pid_alive(uint32_t pid, void *arg)
{
    return procfacts_alive(NULL, pid);
}

static void s_offer(policy_main_t *self, const wire_task_t *t)
{
    enum taskset_offer_result r = taskset_offer(self->tasks, t, now_wall_ms());
    stats_inc(self->offered[r]);
    if (r == TASKS_ADDED || r == TASKS_REPLACED)
        log_info("task %s %s: target %d, %u pid(s), %llu ms", t->task_id,
                 taskset_offer_result_name(r), t->target, t->npids,
                 (unsigned long long)t->duration_ms);
    else if (r != TASKS_DUPLICATE)
        log_warn_rl(&self->rl, "task %s %s", t->task_id,
                    taskset_offer_result_name(r));
}

static int s_on_timer(loop_t *loop, void *arg)
{
    policy_main_t *self = arg;
    size_t ended = taskset_expire(self->tasks, now_wall_ms());
    ended += taskset_prune(self->tasks, s_pid_alive, NULL);
    stats_add(self->ended, ended);
    return s_publish(self);
}

/* The bus's handlers: each message decoded, its sequence noted. */
static int s_on_task_request(void *arg, const msg_decoded_t *m)
{
    policy_main_t *self = arg;
    const wire_task_set_t *req = m->body;
    for (uint32_t i = 0; i < req->ntasks; i++)
        s_offer(self, &req->tasks[i]);
    return 0;
}

static int s_on_proc_events(void *arg, const msg_decoded_t *m)
{
    policy_main_t *self = arg;
    const wire_proc_events_t *ev = m->body;
    for (uint32_t i = 0; i < ev->nevents; i++)
        if (ev->events[i].type == WIRE_PROC_EXIT)
            stats_add(self->ended,
                      taskset_process_exited(self->tasks, ev->events[i].pid) ? 1 : 0);
    return 0;
}

static int s_on_policy_update(void *arg, const msg_decoded_t *msg)
{
    policy_main_t *self = arg;
    const wire_policy_update_t *m = msg->body;
    char err[256];
    if (continuous_apply_json(self->cont, m->json, strlen(m->json), err,
                              sizeof err) != 0) {
        stats_inc(self->policy_errors);
        log_warn_rl(&self->rl, "continuous: policy update rejected, previous "
                    "policies kept: %s", err);
        return 0;
    }
    log_info("continuous: policies updated (%zu service(s))",
             continuous_service_count(self->cont));
    return 0;
}

static int s_on_proc_ids(void *arg, const msg_decoded_t *msg)
{
    policy_main_t *self = arg;
    const wire_proc_ids_t *m = msg->body;
    size_t n = 0;
    for (uint32_t i = 0; i < m->nentities && n < CONT_MAX_PROCS; i++) {
        entity_t *e = &self->entities[n++];
        e->pid = m->entities[i].pid;
        snprintf(e->service, sizeof e->service, "%s", m->entities[i].service);
        snprintf(e->layer, sizeof e->layer, "%s", m->entities[i].layer);
    }
    self->nentities = n;
    return 0;
}

static int s_on_bus(loop_t *loop, void *socket, void *arg)
{
    policy_main_t *self = arg;
    bus_dispatch(self->stage->bus, 256);
    if (taskset_generation(self->tasks) != self->published_generation)
        return s_publish(self);
    return 0;
}

static meter_set_t *s_meters_for(policy_main_t *self, uint32_t pid,
                                 const char *name)
{
    for (size_t i = 0; i < self->nmeters; i++)
        if (self->meters[i].pid == pid)
            return &self->meters[i];
    if (self->nmeters == CONT_MAX_PROCS)
        return NULL;
    meter_set_t *m = &self->meters[self->nmeters++];
    memset(m, 0, sizeof *m);
    m->pid = pid;
    const char *prefix =
        config_str(self->stage->cfg, "profiling.continuous.meter_prefix");
    for (unsigned k = 0; k < MONITOR_COUNT; k++) {
        const monitor_desc_t *desc = monitors_get(k);
        if (!desc->read)
            continue; /* not measured (yet): no meter */
        char metric[128], labels[256];
        snprintf(metric, sizeof metric, "%s_%s", prefix, desc->meter);
        snprintf(labels, sizeof labels,
                 "process_name=\"%s\",layer=\"OS_LINUX\",pid=\"%u\"", name,
                 pid);
        m->gauges[k] = stats_gauge(self->stage->stats, metric, labels,
                                   "continuous-profiling monitor value");
    }
    return m;
}

/* The same values for the uplink's MeterReportService. */
static void s_publish_meters(policy_main_t *self, const cont_reading_t *rs,
                             size_t n)
{
    if (!self->oap_mode || !n)
        return;
    const char *prefix =
        config_str(self->stage->cfg, "profiling.continuous.meter_prefix");
    size_t cap = n * MONITOR_COUNT;
    wire_meter_t *ms = calloc(cap, sizeof *ms);
    char (*names)[96] = calloc(cap, sizeof *names);
    if (!ms || !names)
        goto cleanup;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (unsigned j = 0; j < MONITOR_COUNT && k < WIRE_MAX_METRICS; j++) {
            if (!rs[i].has[j])
                continue;
            snprintf(names[k], sizeof names[k], "%s_%s", prefix,
                     monitors_get(j)->meter);
            ms[k] = (wire_meter_t){.name = names[k],
                                   .value = rs[i].values[j],
                                   .pid = rs[i].pid,
                                   .process_name = self->readings[i].process_name,
                                   .layer = "OS_LINUX",
                                   .uri = ""};
            k++;
        }
    wire_meters_t msg = {.ts_ms = now_wall_ms(), .nmeters = (uint32_t)k,
                         .meters = ms};
    bus_send(self->stage->bus, MSG_METERS, &msg);
cleanup:
    free(ms);
    free(names);
}

/* Reads the monitors of every process of a service with a policy, feeds
 * the slots and the meters. */
static int s_on_fetch(loop_t *loop, void *arg)
{
    policy_main_t *self = arg;
    self->fetch_round++;
    size_t n = monitor_read(self->monitor, self->cont, s_service_of, self,
                            now_mono_ns(), self->readings, CONT_MAX_PROCS);
    cont_reading_t *rs = calloc(n ? n : 1, sizeof *rs);
    if (!rs)
        return 0;
    for (size_t i = 0; i < n; i++) {
        rs[i] = self->readings[i].r;
        meter_set_t *m = s_meters_for(self, rs[i].pid,
                                      self->readings[i].process_name);
        if (!m)
            continue;
        m->round = self->fetch_round;
        for (int k = 0; k < MONITOR_COUNT; k++)
            if (rs[i].has[k] && m->gauges[k])
                stats_set(m->gauges[k], rs[i].values[k]);
    }
    continuous_observe(self->cont, now_wall_ms() / 1000, rs, n);
    s_publish_meters(self, rs, n);
    free(rs);
    /* Meters of processes no longer monitored go away. */
    for (size_t i = 0; i < self->nmeters;) {
        meter_set_t *m = &self->meters[i];
        if (m->round == self->fetch_round) {
            i++;
            continue;
        }
        for (int k = 0; k < MONITOR_COUNT; k++)
            stats_remove(self->stage->stats, m->gauges[k]);
        *m = self->meters[--self->nmeters];
    }
    return 0;
}

/* With an OAP, the uplink reports the trigger and brings back the task the
 * OAP names (through task.request). */
static void s_publish_trigger(policy_main_t *self, const cont_trigger_t *t)
{
    wire_cause_t causes[MONITOR_COUNT];
    for (uint32_t c = 0; c < t->ncauses; c++)
        causes[c] = (wire_cause_t){.type = t->causes[c].monitor,
                                   .threshold = t->causes[c].threshold,
                                   .current = t->causes[c].current,
                                   .uri_regex = t->causes[c].uri_regex,
                                   .uri_path = ""};
    wire_trigger_t msg = {.pid = t->pid, .target = t->target,
                          .duration_ms = t->duration_ms, .service = t->service,
                          .ncauses = t->ncauses, .causes = causes};
    bus_send(self->stage->bus, MSG_TRIGGER, &msg);
}

/* A trigger becomes a task. Locally the engine names the task itself; with
 * an OAP the task id must come from the OAP's reply to
 * reportProfilingTask, which the uplink will obtain. */
static int s_on_check(loop_t *loop, void *arg)
{
    policy_main_t *self = arg;
    cont_trigger_t trig[16];
    uint64_t now = now_wall_ms();
    size_t n = continuous_check(self->cont, now, trig, 16);
    for (size_t i = 0; i < n; i++) {
        const cont_trigger_t *t = &trig[i];
        stats_inc(self->triggers);
        char causes[256] = "";
        size_t used = 0;
        for (uint32_t c = 0; c < t->ncauses && used < sizeof causes; c++)
            used += (size_t)snprintf(causes + used, sizeof causes - used,
                                     "%s%s %.2f >= %.2f", c ? ", " : "",
                                     monitors_name(t->causes[c].monitor),
                                     t->causes[c].current, t->causes[c].threshold);
        log_info("continuous: %s pid %u (%s) triggered %s profiling for "
                 "%llu ms", t->service, t->pid, causes,
                 names_target(t->target),
                 (unsigned long long)t->duration_ms);
        if (self->oap_mode) {
            s_publish_trigger(self, t);
            continue;
        }
        char id[96];
        snprintf(id, sizeof id, "continuous-%u-%u-%llu", t->pid, t->target,
                 (unsigned long long)now);
        wire_task_t task = {
            .task_id = id,
            .target = t->target,
            .trigger = WIRE_TRIGGER_CONTINUOUS,
            .source = WIRE_SRC_POLICY,
            .start_ms = now,
            .duration_ms = t->duration_ms,
            .update_ms = now,
            .npids = 1,
            .pids = &t->pid,
            .extension_json = "",
        };
        s_offer(self, &task);
    }
    if (taskset_generation(self->tasks) != self->published_generation)
        s_publish(self);
    return 0;
}

/* A local task's target: ON_CPU when not given, any case. */
static int s_parse_target(const char *s)
{
    return s ? names_target_parse(s, NAMES_ANY_CASE) : WIRE_TARGET_ON_CPU;
}

/* policy.tasks[i].{id,pid,pids[j],target,duration}: validated at start,
 * like every other key, before anything is published. */
static int s_load_local_tasks(policy_main_t *self)
{
    const config_t *cfg = self->stage->cfg;
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
                log_error("config key %s = '%s': want a process id", key, pid_s);
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
            log_error("config key %s = '%s': want ON_CPU or OFF_CPU", key,
                      target_s);
            return -1;
        }
        snprintf(key, sizeof key, "policy.tasks[%zu].duration", i);
        const char *dur_s = config_raw(cfg, key);
        if (!dur_s || config_parse_duration_ns(dur_s, &dur_ns) || !dur_ns) {
            log_error("config key %s = '%s': want a duration such as 60s",
                      key, dur_s ? dur_s : "");
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
            .extension_json = "",
        };
        s_offer(self, &t);
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
    self.rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);
    self.epoch = now_wall_ms() << 20;
    self.tasks = taskset_new();
    if (!self.tasks)
        goto cleanup;
    stats_t *st = self.stage->stats;
    for (int r = 0; r <= TASKS_FULL; r++) {
        char labels[64];
        snprintf(labels, sizeof labels, "result=\"%s\"",
                 taskset_offer_result_name((enum taskset_offer_result)r));
        self.offered[r] = stats_counter(st, "tasks_offered_total", labels,
                                        "tasks received, by outcome");
    }
    self.active = stats_gauge(st, "tasks_active", "", "tasks in the set");
    self.sets_published = stats_counter(st, "task_sets_published_total", "",
                                        "desired task sets published");
    self.ended = stats_counter(st, "tasks_ended_total", "",
                               "tasks that ended or lost their processes");
    if (s_load_local_tasks(&self) != 0) {
        rc = 2;
        goto cleanup;
    }
    const config_t *cfg = self.stage->cfg;
    continuous_options_t co = {
        .execute_ms = config_duration_ms(cfg, "profiling.continuous.trigger.execute_duration"),
        .silence_ms = config_duration_ms(cfg, "profiling.continuous.trigger.silence_duration"),
    };
    self.cont = continuous_new(&co);
    self.monitor = monitor_new("/proc");
    self.readings = calloc(CONT_MAX_PROCS, sizeof *self.readings);
    self.meters = calloc(CONT_MAX_PROCS, sizeof *self.meters);
    self.entities = calloc(CONT_MAX_PROCS, sizeof *self.entities);
    if (!self.cont || !self.monitor || !self.readings || !self.meters ||
        !self.entities)
        goto cleanup;
    self.oap_mode = config_str(cfg, "core.backend.addr")[0] != '\0';
    self.triggers = stats_counter(st, "continuous_triggers_total", "",
                                  "continuous-profiling triggers fired");
    self.policy_errors = stats_counter(st, "continuous_policy_errors_total", "",
                                       "policy documents rejected");
    const char *local_json = config_str(cfg, "policy.continuous_policies");
    if (local_json[0]) {
        char err[256];
        if (continuous_apply_json(self.cont, local_json, strlen(local_json),
                                  err, sizeof err) != 0) {
            log_error("config key policy.continuous_policies: %s", err);
            rc = 2;
            goto cleanup;
        }
        log_info("continuous: %zu service(s) with local policies",
                 continuous_service_count(self.cont));
    }
    loop_add_timer(self.stage->loop,
                   config_duration_ms(cfg, "profiling.continuous.fetch_interval"),
                   s_on_fetch, &self);
    loop_add_timer(self.stage->loop,
                   config_duration_ms(cfg, "profiling.continuous.check_interval"),
                   s_on_check, &self);
    if (bus_on(self.stage->bus, MSG_TASK_REQUEST, s_on_task_request, &self) ||
        bus_on(self.stage->bus, MSG_PROC_EVENTS, s_on_proc_events, &self) ||
        bus_on(self.stage->bus, MSG_POLICY_UPDATE, s_on_policy_update,
               &self) ||
        bus_on(self.stage->bus, MSG_PROC_IDS, s_on_proc_ids, &self))
        goto cleanup;
    loop_add_socket(self.stage->loop, bus_sub_socket(self.stage->bus), s_on_bus,
                    &self);
    loop_add_timer(self.stage->loop,
                   config_duration_ms(self.stage->cfg, "policy.republish_interval"),
                   s_on_timer, &self);
    rc = loop_run(self.stage->loop) == 0 ? 0 : 1;
    log_info("stopping (signal %d)", loop_stop_signal(self.stage->loop));
cleanup:
    continuous_destroy(&self.cont);
    monitor_destroy(&self.monitor);
    free(self.readings);
    free(self.meters);
    free(self.entities);
    taskset_destroy(&self.tasks);
    stage_destroy(&self.stage);
    return rc;
}
