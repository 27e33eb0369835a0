/* Monitors for continuous profiling, read from /proc: process CPU (percent
 * of the whole host, as the reference agent reports it), thread count, and
 * the 1-minute system load. Only processes whose service has a policy are
 * read. A process's service is the one the uplink reported it under to
 * the OAP (proc.ids, looked up through monitor_service_fn), else its name
 * (comm). */
#ifndef SKYPROF_POLICY_MONITOR_H
#define SKYPROF_POLICY_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include "continuous.h"

typedef struct monitor monitor_t;

typedef struct {
    cont_reading_t r;
    char service[128];      /* r.service points here */
    char process_name[128];
} monitor_reading_t;

monitor_t *monitor_new(const char *proc_root);   /* "/proc" */
void monitor_destroy(monitor_t **self_p);

/* Maps a process to its service: the uplink's entity when it has one,
 * else NULL (the process name is used). */
typedef const char *(*monitor_service_fn)(uint32_t pid, void *arg);

/* Reads every process of a service with a policy. CPU needs two readings:
 * a process's first reading has no CPU value. Returns the count written. */
size_t monitor_read(monitor_t *self, const continuous_t *cont,
                    monitor_service_fn service_of, void *arg,
                    uint64_t now_mono_ns, monitor_reading_t *out, size_t max);

#endif
