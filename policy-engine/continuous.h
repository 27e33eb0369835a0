/* Continuous profiling (SkyWalking's ContinuousProfilingService,
 * proto/Continuous.proto; SkyWalking Rover's "Continuous Profiling"):
 * per-service policies, per-process monitor readings kept in per-second
 * slots, threshold checks, and triggers with a silence period.
 *
 * Pure logic with the clock passed in; the policy engine feeds it readings
 * from /proc every fetch interval, asks for triggers every check interval,
 * and turns triggers into tasks (locally) or reports (through the uplink).
 *
 * Semantics (as the reference agent): a policy item has a Threshold, a
 * Period (seconds) and a Count; it fires for a process when, among the last
 * Period one-second slots, at least Count reached the threshold. After a
 * trigger the same process and target stay quiet for the execute duration
 * plus the silence duration. */
#ifndef SKYPROF_POLICY_CONTINUOUS_H
#define SKYPROF_POLICY_CONTINUOUS_H

#include <stddef.h>
#include <stdint.h>

#include "monitors.h"
#include "wire.h"

#define CONT_MAX_PERIOD 3600
#define CONT_MAX_SERVICES 256
#define CONT_MAX_ITEMS 16          /* (target, monitor) items per service */
#define CONT_MAX_PROCS 4096

typedef struct continuous continuous_t;

typedef struct {
    uint64_t execute_ms;
    uint64_t silence_ms;
} continuous_options_t;

/* One reading of one process (the system load is the same for all). */
typedef struct {
    uint32_t pid;
    const char *service;        /* service the process belongs to */
    double values[MONITOR_COUNT];
    uint8_t has[MONITOR_COUNT]; /* 1 when values[i] was measured */
} cont_reading_t;

typedef struct {
    uint8_t monitor;            /* enum monitor_type = cause type */
    double threshold;
    double current;             /* the latest value */
    /* HTTP causes: the policy's URIRegex, or one path of its URIList;
     * both "" for the process's global figures. */
    char uri_regex[128];
    char uri_path[128];
} cont_cause_t;

/* One process's HTTP figures for one URI (query stripped) over an
 * interval, from the network room's net.report (wire_net_http_t). */
typedef struct {
    const char *uri;
    uint64_t requests;
    uint64_t errors;            /* status >= 500 */
    double duration_ms_sum;
} cont_http_t;

/* A value an HTTP monitor took for a process: its meter. */
typedef struct {
    uint8_t monitor;            /* MONITOR_HTTP_ERROR_RATE or _AVG_... */
    char uri[128];              /* the path, the regex, or "global" */
    double value;
} cont_http_value_t;

typedef struct {
    uint32_t pid;
    char service[128];
    uint8_t target;             /* WIRE_TARGET_ON_CPU / OFF_CPU / NETWORK */
    uint32_t ncauses;
    cont_cause_t causes[MONITOR_COUNT];
    uint64_t duration_ms;       /* the execute duration */
} cont_trigger_t;

continuous_t *continuous_new(const continuous_options_t *opts);
void continuous_destroy(continuous_t **self_p);

/* Applies a ServiceWithPolicyJSON document (array of {ServiceName, UUID,
 * Profiling:{TARGET:{MONITOR:{Threshold,Period,Count,URIList,URIRegex}}}}).
 * Each listed service's policy is replaced; a service with an empty UUID
 * and no Profiling is removed. The whole document is validated first: on
 * any error nothing changes, -1 is returned and err says what and where. */
int continuous_apply_json(continuous_t *self, const char *json, size_t len,
                          char *err, size_t errlen);

size_t continuous_service_count(const continuous_t *self);
/* The UUID currently held for a service ("" when none). */
const char *continuous_service_uuid(const continuous_t *self,
                                    const char *service);
/* Whether any policy of the service uses the monitor (so the engine reads
 * only what it needs). */
int continuous_wants(const continuous_t *self, const char *service,
                     enum monitor_type monitor);

/* Records readings for second now_s (wall clock seconds). Processes not
 * seen for CONT_MAX_PERIOD seconds are forgotten. HTTP monitors are not
 * read here (continuous_observe_http). */
void continuous_observe(continuous_t *self, uint64_t now_s,
                        const cont_reading_t *readings, size_t n);

/* Records the HTTP figures of one process over the seconds (from_s, to_s]
 * (one network report interval): each HTTP policy item of its service
 * (URIList path, URIRegex or global) takes the error rate (percent of
 * requests with status >= 500) or the average response time (ms) of the
 * requests its URIs saw, in every second of the interval; an item whose
 * URIs saw no request records nothing. The values taken are written to
 * out (at most max, one per monitor and URI) for the meters; returns
 * their count. */
size_t continuous_observe_http(continuous_t *self, uint32_t pid,
                               const char *service, uint64_t from_s,
                               uint64_t to_s, const cont_http_t *rows,
                               size_t n, cont_http_value_t *out, size_t max);

/* Whether any policy of the service uses an HTTP monitor: its processes
 * need network capture. */
int continuous_wants_http(const continuous_t *self, const char *service);

/* Checks every policy against the slots; returns the number of triggers
 * written to out (at most max), and starts their silence. */
size_t continuous_check(continuous_t *self, uint64_t now_ms,
                        cont_trigger_t *out, size_t max);

#endif
