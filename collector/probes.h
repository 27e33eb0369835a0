/* The collector's BPF side: loads bpf/profile.bpf.c through its skeleton,
 * attaches the on-CPU sampler (the scheduler tick, else perf events on
 * every online CPU) and the process-event probes
 * (tp_btf, else raw tracepoints, else tracepoints), and gives user space
 * the two ring buffers, the task pid map and the kernel counters. */
#ifndef SKYPROF_COLLECTOR_PROBES_H
#define SKYPROF_COLLECTOR_PROBES_H

#include <stddef.h>
#include <stdint.h>

#include "collector/options.h"
#include "collector/unwinder.h"

typedef struct probes probes_t;

/* Called per ring record; return 0 to go on. */
typedef int (*probes_record_fn)(void *ctx, void *data, size_t size);

/* NULL with a reason in err when the programs cannot be loaded or
 * attached (no permission, no BTF, ...). */
probes_t *probes_new(const collector_options_t *opts,
                     probes_record_fn on_sample, probes_record_fn on_event,
                     void *ctx, char *err, size_t errlen);
void probes_destroy(probes_t **self_p);

/* Epoll fds of the rings, for the loop. */
int probes_samples_fd(const probes_t *self);
int probes_events_fd(const probes_t *self);
/* Consume what is in a ring now; returns records consumed or -1. */
int probes_consume_samples(probes_t *self);
int probes_consume_events(probes_t *self);

/* Makes the task pid map hold exactly these pids (sorted, unique).
 * 0 ok, -1 when some update failed (the rest is applied). */
int probes_set_task_pids(probes_t *self, const uint32_t *pids, size_t n);

/* Sum over CPUs of a SKY_CNT_* counter. */
uint64_t probes_counter(const probes_t *self, uint32_t idx);

/* The on-CPU trigger chosen at start (enum collector_sampler, never
 * AUTO), and how many perf events are attached now (with the tick: only
 * while tasks need a period the tick cannot honour). */
int probes_sampler(const probes_t *self);
int probes_perf_events(const probes_t *self);
/* The period host-wide samples are taken at (what each one weighs). */
uint64_t probes_host_period_ns(const probes_t *self);

/* The maps of the .eh_frame walker when it loaded (0), -1 when user
 * stacks are taken with frame pointers (collector.unwinder fp, or the
 * walker did not load: logged at start). */
int probes_unwind_maps(const probes_t *self, const collector_options_t *opts,
                       unwinder_maps_t *out);

/* The probe flavour that loaded, and how many CPUs are sampled. */
int probes_flavour(const probes_t *self);
const char *probes_flavour_name(int flavour);
int probes_ncpus(const probes_t *self);

#endif
