/* Continuous profiling's watch (watch.h). */
#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "continuous.h"
#include "log.h"
#include "monitor.h"
#include "monitors.h"
#include "names.h"
#include "procfacts.h"

/* Per-process meters (<meter_prefix>_<monitor>) kept on /metrics while the
 * process is monitored. */
typedef struct {
    uint32_t pid;
    stats_metric_t *gauges[MONITOR_COUNT];
    uint64_t round;
} meter_set_t;

/* An HTTP monitor's value on /metrics: one gauge per process, monitor and
 * URI, dropped when no report refreshed it for WATCH_HTTP_STALE_MS. */
typedef struct {
    uint32_t pid;
    uint8_t monitor;
    char uri[128];
    stats_metric_t *gauge;
    uint64_t at_ms;
} http_gauge_t;

#define WATCH_HTTP_GAUGES   4096
#define WATCH_HTTP_STALE_MS 60000

/* The uplink's view of a process (proc.ids), for service membership. */
typedef struct {
    uint32_t pid;
    char service[128];
    char layer[32];
} entity_t;

struct watch {
    watch_options_t o;
    continuous_t *cont;
    monitor_t *monitor;
    monitor_reading_t *readings;     /* CONT_MAX_PROCS */
    meter_set_t *meters;             /* CONT_MAX_PROCS */
    size_t nmeters;
    uint64_t fetch_round;
    entity_t *entities;              /* CONT_MAX_PROCS, from proc.ids */
    size_t nentities;
    log_ratelimit_t rl;
    stats_metric_t *triggers;
    stats_metric_t *policy_errors;
    stats_metric_t *http_reports;
    http_gauge_t *http_gauges;       /* WATCH_HTTP_GAUGES */
    size_t nhttp_gauges;
    uint32_t *capture;               /* pids of the capture task, sorted */
    size_t ncapture;
    uint64_t capture_renew_ms;       /* wall clock: offer it again */
};

watch_t *
watch_new(const watch_options_t *opts)
{
    watch_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->o = *opts;
    self->rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);
    continuous_options_t co = {
        .execute_ms = opts->execute_ms,
        .silence_ms = opts->silence_ms,
    };
    self->cont = continuous_new(&co);
    self->monitor = monitor_new("/proc");
    self->readings = calloc(CONT_MAX_PROCS, sizeof *self->readings);
    self->meters = calloc(CONT_MAX_PROCS, sizeof *self->meters);
    self->entities = calloc(CONT_MAX_PROCS, sizeof *self->entities);
    self->http_gauges = calloc(WATCH_HTTP_GAUGES, sizeof *self->http_gauges);
    if (!self->cont || !self->monitor || !self->readings || !self->meters ||
        !self->entities || !self->http_gauges) {
        watch_destroy(&self);
        return NULL;
    }
    self->triggers = stats_counter(opts->stats, "continuous_triggers_total",
                                   "", "continuous-profiling triggers fired");
    self->policy_errors = stats_counter(opts->stats,
                                        "continuous_policy_errors_total", "",
                                        "policy documents rejected");
    self->http_reports = stats_counter(opts->stats,
                                       "continuous_http_figures_total", "",
                                       "per-process HTTP figures read from "
                                       "net.report for HTTP monitors");
    return self;
}

void
watch_destroy(watch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    watch_t *self = *self_p;
    continuous_destroy(&self->cont);
    monitor_destroy(&self->monitor);
    free(self->readings);
    free(self->meters);
    free(self->entities);
    free(self->capture);
    free(self->http_gauges);
    free(self);
    *self_p = NULL;
}

int
watch_apply_policies(watch_t *self, const char *json, char *err,
                     size_t errlen)
{
    return continuous_apply_json(self->cont, json, strlen(json), err, errlen);
}

size_t
watch_service_count(const watch_t *self)
{
    return continuous_service_count(self->cont);
}

/* --------------------------------------------------------------- input */

static void
s_on_policy_update(watch_t *self, const wire_policy_update_t *m)
{
    char err[256];
    if (watch_apply_policies(self, m->json, err, sizeof err) != 0) {
        stats_inc(self->policy_errors);
        log_warn_rl(&self->rl, "continuous: policy update rejected, previous "
                    "policies kept: %s", err);
        return;
    }
    log_info("continuous: policies updated (%zu service(s))",
             watch_service_count(self));
}

static void
s_on_proc_ids(watch_t *self, const wire_proc_ids_t *m)
{
    size_t n = 0;
    for (uint32_t i = 0; i < m->nentities && n < CONT_MAX_PROCS; i++) {
        entity_t *e = &self->entities[n++];
        e->pid = m->entities[i].pid;
        snprintf(e->service, sizeof e->service, "%s", m->entities[i].service);
        snprintf(e->layer, sizeof e->layer, "%s", m->entities[i].layer);
    }
    self->nentities = n;
}

static const entity_t *
s_entity(const watch_t *self, uint32_t pid)
{
    for (size_t i = 0; i < self->nentities; i++)
        if (self->entities[i].pid == pid)
            return &self->entities[i];
    return NULL;
}

static int
s_cmp_http_pid(const void *a, const void *b, void *arg)
{
    const wire_net_http_t *rows = arg;
    uint32_t x = rows[*(const uint32_t *)a].pid;
    uint32_t y = rows[*(const uint32_t *)b].pid;
    return (x > y) - (x < y);
}

/* Sets the /metrics gauge of an HTTP monitor's value (created on first
 * use; none past WATCH_HTTP_GAUGES). */
static void
s_http_gauge(watch_t *self, uint32_t pid, const char *comm,
             const char *layer, const cont_http_value_t *v, uint64_t now)
{
    http_gauge_t *g = NULL;
    for (size_t i = 0; i < self->nhttp_gauges && !g; i++)
        if (self->http_gauges[i].pid == pid &&
            self->http_gauges[i].monitor == v->monitor &&
            !strcmp(self->http_gauges[i].uri, v->uri))
            g = &self->http_gauges[i];
    if (!g && self->nhttp_gauges < WATCH_HTTP_GAUGES) {
        char metric[128], labels[512];
        snprintf(metric, sizeof metric, "%s_%s", self->o.meter_prefix,
                 monitors_get(v->monitor)->meter);
        /* Label values are escaped as Prometheus wants: a URI may hold a
         * quote or a backslash. */
        char uri[260];
        size_t k = 0;
        for (const char *c = v->uri; *c && k + 2 < sizeof uri; c++) {
            if (*c == '"' || *c == '\\')
                uri[k++] = '\\';
            uri[k++] = *c == '\n' ? ' ' : *c;
        }
        uri[k] = '\0';
        snprintf(labels, sizeof labels,
                 "process_name=\"%s\",layer=\"%s\",pid=\"%u\",uri=\"%s\"",
                 comm, layer, pid, uri);
        g = &self->http_gauges[self->nhttp_gauges++];
        *g = (http_gauge_t){ .pid = pid, .monitor = v->monitor };
        snprintf(g->uri, sizeof g->uri, "%s", v->uri);
        g->gauge = stats_gauge(self->o.stats, metric, labels,
                               "continuous-profiling monitor value");
    }
    if (!g)
        return;
    stats_set(g->gauge, v->value);
    g->at_ms = now;
}

/* Gauges of processes no report mentioned for a while go away. */
static void
s_http_gauges_expire(watch_t *self, uint64_t now)
{
    for (size_t i = 0; i < self->nhttp_gauges;) {
        if (now - self->http_gauges[i].at_ms < WATCH_HTTP_STALE_MS) {
            i++;
            continue;
        }
        stats_remove(self->o.stats, self->http_gauges[i].gauge);
        self->http_gauges[i] = self->http_gauges[--self->nhttp_gauges];
    }
}

/* The HTTP figures of one process: its monitors' slots and meters (added
 * to ms, *nms of them, at most cap). */
static void
s_http_process(watch_t *self, const wire_net_report_t *m,
               const uint32_t *idx, size_t n, wire_meter_t *ms,
               char (*names)[96], size_t *nms, size_t cap)
{
    uint32_t pid = m->http[idx[0]].pid;
    const entity_t *ent = s_entity(self, pid);
    char comm[128];
    if (procfacts_comm("/proc", pid, comm, sizeof comm) != 0)
        snprintf(comm, sizeof comm, "%u", pid);
    const char *service = ent ? ent->service : comm;
    if (!continuous_wants_http(self->cont, service))
        return;
    cont_http_t *rows = calloc(n, sizeof *rows);
    cont_http_value_t vals[CONT_MAX_ITEMS];
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++) {
        const wire_net_http_t *h = &m->http[idx[i]];
        rows[i] = (cont_http_t){ h->uri, h->requests, h->errors,
                                 h->duration_ms_sum };
    }
    uint64_t to_s = m->ts_ms / 1000;
    uint64_t span = self->o.net_interval_ms / 1000;
    uint64_t from_s = to_s > (span ? span : 1) ? to_s - (span ? span : 1) : 0;
    size_t nv = continuous_observe_http(self->cont, pid, service, from_s,
                                        to_s, rows, n, vals, CONT_MAX_ITEMS);
    free(rows);
    stats_inc(self->http_reports);
    const char *layer = ent && ent->layer[0] ? ent->layer : "OS_LINUX";
    for (size_t v = 0; v < nv; v++)
        s_http_gauge(self, pid, comm, layer, &vals[v], now_wall_ms());
    for (size_t v = 0; v < nv && *nms < cap; v++) {
        size_t k = (*nms)++;
        snprintf(names[k], sizeof names[k], "%s_%s", self->o.meter_prefix,
                 monitors_get(vals[v].monitor)->meter);
        ms[k] = (wire_meter_t){ .name = names[k], .value = vals[v].value,
                                .pid = pid };
        /* Strings live until the report's meters are sent. */
        ms[k].uri = strdup(vals[v].uri);
        ms[k].process_name = strdup(comm);
        ms[k].layer = layer;
    }
}

/* net.report: every process's HTTP figures (rows grouped by pid) feed
 * its HTTP monitors; with an OAP their values go out as meters. */
static void
s_on_net_report(watch_t *self, const wire_net_report_t *m)
{
    if (!m->nhttp || !continuous_service_count(self->cont))
        return;
    size_t cap = (size_t)m->nhttp * 2;
    if (cap > WIRE_MAX_METRICS)
        cap = WIRE_MAX_METRICS;
    uint32_t *idx = calloc(m->nhttp, sizeof *idx);
    wire_meter_t *ms = calloc(cap, sizeof *ms);
    char (*names)[96] = calloc(cap, sizeof *names);
    size_t nms = 0;
    if (!idx || !ms || !names)
        goto cleanup;
    for (uint32_t i = 0; i < m->nhttp; i++)
        idx[i] = i;
    qsort_r(idx, m->nhttp, sizeof *idx, s_cmp_http_pid,
            (void *)m->http);
    for (uint32_t i = 0; i < m->nhttp;) {
        uint32_t j = i;
        while (j < m->nhttp && m->http[idx[j]].pid == m->http[idx[i]].pid)
            j++;
        s_http_process(self, m, idx + i, j - i, ms, names, &nms, cap);
        i = j;
    }
    s_http_gauges_expire(self, now_wall_ms());
    if (self->o.oap_mode && nms) {
        wire_meters_t msg = { .ts_ms = m->ts_ms, .nmeters = (uint32_t)nms,
                              .meters = ms };
        bus_send(self->o.bus, MSG_METERS, &msg);
    }
cleanup:
    for (size_t k = 0; ms && k < nms; k++) {
        free((char *)ms[k].uri);
        free((char *)ms[k].process_name);
    }
    free(idx);
    free(ms);
    free(names);
}

int
watch_on_msg(void *arg, const msg_decoded_t *m)
{
    watch_t *self = arg;
    if (m->id == MSG_POLICY_UPDATE)
        s_on_policy_update(self, m->body);
    else if (m->id == MSG_PROC_IDS)
        s_on_proc_ids(self, m->body);
    else if (m->id == MSG_NET_REPORT)
        s_on_net_report(self, m->body);
    return 0;
}

/* --------------------------------------------------------------- fetch */

static const char *
s_service_of(uint32_t pid, void *arg)
{
    watch_t *self = arg;
    for (size_t i = 0; i < self->nentities; i++)
        if (self->entities[i].pid == pid)
            return self->entities[i].service;
    return NULL;
}

static meter_set_t *
s_meters_for(watch_t *self, uint32_t pid, const char *name)
{
    for (size_t i = 0; i < self->nmeters; i++)
        if (self->meters[i].pid == pid)
            return &self->meters[i];
    if (self->nmeters == CONT_MAX_PROCS)
        return NULL;
    meter_set_t *m = &self->meters[self->nmeters++];
    memset(m, 0, sizeof *m);
    m->pid = pid;
    for (unsigned k = 0; k < MONITOR_COUNT; k++) {
        const monitor_desc_t *desc = monitors_get(k);
        if (!desc->read)
            continue; /* not measured (yet): no meter */
        char metric[128], labels[256];
        snprintf(metric, sizeof metric, "%s_%s", self->o.meter_prefix,
                 desc->meter);
        snprintf(labels, sizeof labels,
                 "process_name=\"%s\",layer=\"OS_LINUX\",pid=\"%u\"", name,
                 pid);
        m->gauges[k] = stats_gauge(self->o.stats, metric, labels,
                                   "continuous-profiling monitor value");
    }
    return m;
}

/* The same values for the uplink's MeterReportService. */
static void
s_publish_meters(watch_t *self, const cont_reading_t *rs, size_t n)
{
    if (!self->o.oap_mode || !n)
        return;
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
            snprintf(names[k], sizeof names[k], "%s_%s", self->o.meter_prefix,
                     monitors_get(j)->meter);
            ms[k] = (wire_meter_t){
                .name = names[k],
                .value = rs[i].values[j],
                .pid = rs[i].pid,
                .process_name = self->readings[i].process_name,
                .layer = "OS_LINUX",
                .uri = ""};
            k++;
        }
    wire_meters_t msg = {.ts_ms = now_wall_ms(), .nmeters = (uint32_t)k,
                         .meters = ms};
    bus_send(self->o.bus, MSG_METERS, &msg);
cleanup:
    free(ms);
    free(names);
}

static int
s_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The capture task of the HTTP monitors: the processes (of this fetch's
 * readings) whose service has an HTTP policy. Offered again when that set
 * changes or half its window passed; withdrawn when no process needs it. */
static void
s_update_capture(watch_t *self, size_t n)
{
    uint32_t *pids = calloc(n ? n : 1, sizeof *pids);
    size_t k = 0;
    if (!pids)
        return;
    for (size_t i = 0; i < n && k < WIRE_MAX_PIDS; i++)
        if (continuous_wants_http(self->cont, self->readings[i].service))
            pids[k++] = self->readings[i].r.pid;
    qsort(pids, k, sizeof *pids, s_cmp_u32);
    uint64_t now = now_wall_ms();
    bool same = k == self->ncapture &&
                (!k || !memcmp(pids, self->capture, k * sizeof *pids));
    if (same && (!k || now < self->capture_renew_ms)) {
        free(pids);
        return;
    }
    if (!k) {
        policy_engine_cancel(self->o.engine, WATCH_CAPTURE_TASK);
    } else {
        wire_task_t task = {
            .task_id = WATCH_CAPTURE_TASK,
            .target = WIRE_TARGET_NETWORK,
            .trigger = WIRE_TRIGGER_CONTINUOUS,
            .source = WIRE_SRC_POLICY,
            .start_ms = now,
            .duration_ms = WATCH_CAPTURE_MS,
            .update_ms = now,
            .npids = (uint32_t)k,
            .pids = pids,
            .extension_json = "",
        };
        policy_engine_offer(self->o.engine, &task);
        self->capture_renew_ms = now + WATCH_CAPTURE_MS / 2;
    }
    free(self->capture);
    self->capture = pids;
    self->ncapture = k;
}

void
watch_fetch(watch_t *self)
{
    self->fetch_round++;
    size_t n = monitor_read(self->monitor, self->cont, s_service_of, self,
                            now_mono_ns(), self->readings, CONT_MAX_PROCS);
    cont_reading_t *rs = calloc(n ? n : 1, sizeof *rs);
    if (!rs)
        return;
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
    s_update_capture(self, n);
    s_http_gauges_expire(self, now_wall_ms());
    /* Meters of processes no longer monitored go away. */
    for (size_t i = 0; i < self->nmeters;) {
        meter_set_t *m = &self->meters[i];
        if (m->round == self->fetch_round) {
            i++;
            continue;
        }
        for (int k = 0; k < MONITOR_COUNT; k++)
            stats_remove(self->o.stats, m->gauges[k]);
        *m = self->meters[--self->nmeters];
    }
}

/* --------------------------------------------------------------- check */

/* With an OAP, the uplink reports the trigger and brings back the task the
 * OAP names (through task.request). */
static void
s_wire_causes(const cont_trigger_t *t, wire_cause_t *causes)
{
    for (uint32_t c = 0; c < t->ncauses; c++)
        causes[c] = (wire_cause_t){.type = t->causes[c].monitor,
                                   .threshold = t->causes[c].threshold,
                                   .current = t->causes[c].current,
                                   .uri_regex = t->causes[c].uri_regex,
                                   .uri_path = t->causes[c].uri_path};
}

static void
s_publish_trigger(watch_t *self, const cont_trigger_t *t)
{
    wire_cause_t causes[MONITOR_COUNT];
    s_wire_causes(t, causes);
    wire_trigger_t msg = {.pid = t->pid, .target = t->target,
                          .duration_ms = t->duration_ms, .service = t->service,
                          .ncauses = t->ncauses, .causes = causes};
    bus_send(self->o.bus, MSG_TRIGGER, &msg);
}

/* Locally the watch names the task itself; with an OAP the task id must
 * come from the OAP's reply to reportProfilingTask, which the uplink will
 * obtain. */
void
watch_check(watch_t *self)
{
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
                                     t->causes[c].current,
                                     t->causes[c].threshold);
        log_info("continuous: %s pid %u (%s) triggered %s profiling for "
                 "%llu ms", t->service, t->pid, causes,
                 names_target(t->target),
                 (unsigned long long)t->duration_ms);
        if (self->o.oap_mode) {
            s_publish_trigger(self, t);
            continue;
        }
        char id[96];
        snprintf(id, sizeof id, "continuous-%u-%u-%llu", t->pid, t->target,
                 (unsigned long long)now);
        /* A NETWORK task samples what fired. */
        wire_cause_t wcauses[MONITOR_COUNT];
        s_wire_causes(t, wcauses);
        char *rules = t->target == WIRE_TARGET_NETWORK
                          ? monitors_sampling_rules(wcauses, t->ncauses)
                          : NULL;
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
            .extension_json = rules ? rules : "",
        };
        policy_engine_offer(self->o.engine, &task);
        free(rules);
    }
}
