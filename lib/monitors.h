/* The registry of continuous-profiling monitors: what each one is called
 * in a policy (ServiceWithPolicyJSON), the meter it is reported as, which
 * kind of cause a trigger on it carries to the OAP, and how its value is
 * taken from a reading of a process.
 *
 * The monitor's number is its ContinuousProfilingCauseType
 * (proto/Continuous.proto): the policy engine's slots, the trigger.report
 * message (lib/wire.h wire_cause_t.type, bounded by MONITOR_COUNT - 1) and
 * the uplink's report all use it. Adding a monitor is its value in the
 * enum below and its row in monitors.c; a monitor read from something new
 * (the network profiler's HTTP statistics) also adds what it needs to
 * monitor_sample_t and the code that fills it. */
#ifndef SKYPROF_MONITORS_H
#define SKYPROF_MONITORS_H

#include <stdint.h>

#include "wire.h"

enum monitor_type {
    MONITOR_PROCESS_CPU = 0,            /* ProcessCPU: % of the whole host */
    MONITOR_PROCESS_THREAD_COUNT = 1,   /* ProcessThreadCount */
    MONITOR_SYSTEM_LOAD = 2,            /* SystemLoad: 1-minute load */
    MONITOR_HTTP_ERROR_RATE = 3,        /* HTTPErrorRate (network, to come) */
    MONITOR_HTTP_AVG_RESPONSE_TIME = 4, /* HTTPAvgResponseTime (same) */
    MONITOR_COUNT = 5
};

/* Which ContinuousProfilingCause a trigger on the monitor reports. */
enum monitor_cause {
    MONITOR_CAUSE_SINGLE_VALUE = 0,     /* threshold and current value */
    MONITOR_CAUSE_URI = 1               /* the same, scoped to a URI */
};

/* What one reading of one process saw (filled by the policy engine's
 * policy-engine/monitor.c); every reader takes its value from here. */
typedef struct {
    uint64_t at_ns;             /* monotonic time of this reading */
    uint64_t cpu_ticks;         /* utime + stime, clock ticks */
    uint64_t prev_at_ns;        /* the previous reading, 0 when none */
    uint64_t prev_cpu_ticks;
    long clk_tck;               /* ticks per second */
    long ncpu;                  /* CPUs online */
    long threads;
    double load1;               /* system 1-minute load average */
} monitor_sample_t;

/* 0 and *value when the sample yields a value, -1 when it cannot yet
 * (CPU needs two readings). */
typedef int (*monitor_read_fn)(const monitor_sample_t *sample,
                               double *value);

typedef struct {
    enum monitor_type type;
    const char *name;           /* in policies and logs: "PROCESS_CPU" */
    const char *meter;          /* <meter_prefix>_<meter>: "process_cpu" */
    enum monitor_cause cause;
    monitor_read_fn read;       /* NULL: not measured by skyprof yet */
} monitor_desc_t;

/* The monitor of that type, or NULL when out of range. */
const monitor_desc_t *monitors_get(unsigned type);
/* The monitor's name, "UNKNOWN" when out of range. */
const char *monitors_name(unsigned type);
/* The type of the monitor named exactly so, or -1. */
int monitors_parse(const char *name);

/* The sampling rules of the NETWORK task a trigger starts, as the
 * reference agent writes them (ExtensionConfigJSON): one rule per URI
 * cause (its regex or path as uriRegex; the default rule, without one, for
 * causes on a process's global figures) with minDuration 0, when4xx and
 * when5xx, requests and responses kept whole. Causes of other monitors
 * add nothing. A malloc'ed JSON object, NULL when out of memory. */
char *monitors_sampling_rules(const wire_cause_t *causes, uint32_t n);

#endif
