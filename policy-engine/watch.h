/* Continuous profiling's watch: reads the monitors of the processes that
 * have a policy, keeps their meters, and fires triggers.
 *
 * Policies come from the OAP (policy.update, through the uplink) or the
 * configuration; which service a process belongs to from the uplink's
 * proc.ids. The HTTP monitors (HTTP_ERROR_RATE, HTTP_AVG_RESPONSE_TIME)
 * read the network room's net.report, which only covers processes of
 * NETWORK tasks: the watch therefore keeps one NETWORK task of its own in
 * the set (WATCH_CAPTURE_TASK, source POLICY, no sampling rules) naming
 * every process an HTTP policy watches, so their traffic is captured
 * before anything fired; the uplink does not report it to the OAP. Every fetch reads the monitors (monitor.h) of those processes,
 * sets their per-process gauges on /metrics and, with an OAP, publishes the
 * values for the uplink's MeterReportService (metric.continuous). Every
 * check turns the policies' verdicts (continuous.h) into profiling: with an
 * OAP a trigger.report for the uplink, which obtains the task from the OAP;
 * locally a task offered to the policy engine (engine.h). */
#ifndef SKYPROF_POLICY_WATCH_H
#define SKYPROF_POLICY_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "engine.h"
#include "msg.h"
#include "stats.h"

typedef struct watch watch_t;

/* The id of the watch's capture task for HTTP monitors. */
#define WATCH_CAPTURE_TASK "policy-http-capture"
/* Its window, renewed when half of it has passed. */
#define WATCH_CAPTURE_MS   600000

typedef struct {
    bus_t *bus;
    stats_t *stats;
    policy_engine_t *engine;     /* where local triggers offer their task */
    const char *meter_prefix;    /* profiling.continuous.meter_prefix */
    int oap_mode;                /* an OAP is configured */
    uint64_t execute_ms;         /* ...trigger.execute_duration */
    uint64_t silence_ms;         /* ...trigger.silence_duration */
    uint64_t net_interval_ms;    /* profiling.task.network.report_interval:
                                    the seconds one net.report covers */
} watch_options_t;

/* NULL when out of memory. Everything in opts outlives the watch. */
watch_t *watch_new(const watch_options_t *opts);
void watch_destroy(watch_t **self_p);

/* Replaces the policies with a ServiceWithPolicyJSON document; on error
 * nothing changes and err says why. 0 or -1. */
int watch_apply_policies(watch_t *self, const char *json, char *err,
                         size_t errlen);
size_t watch_service_count(const watch_t *self);

/* The bus handler for policy.update (a refused document is counted and
 * logged, the previous policies stay), proc.ids and net.report (the HTTP
 * figures of the processes HTTP policies watch: their monitors' slots
 * and meters). 0. */
int watch_on_msg(void *self, const msg_decoded_t *m);

/* Reads the monitors and updates meters (the fetch interval). */
void watch_fetch(watch_t *self);
/* Fires what the policies say (the check interval). */
void watch_check(watch_t *self);

#endif
