/* The collector engine: BPF probes, process table, per-drain batching and
 * task reconciliation, driven by a loop_t. It publishes through a sink so
 * the stage's main can put batches on the bus while tests receive them
 * directly.
 *
 * Drain model: samples are written to the ring without waking user space
 * (per-sample wakeups throttle the sampler on this kernel); a timer
 * consumes the ring every drain_interval and the ring's epoll fd only
 * fires when the kernel side finds the ring filling up. Drained stacks
 * are published every publish_interval (or when a batch is full), so the
 * bus carries a few large messages a second rather than many small ones.
 * Process events wake the collector at once, so a new process's mappings
 * are read while it still runs; the events are published with the next
 * batch. */
#ifndef SKYPROF_COLLECTOR_COLLECTOR_H
#define SKYPROF_COLLECTOR_COLLECTOR_H

#include <stdint.h>

#include "collector/options.h"
#include "loop.h"
#include "stats.h"
#include "wire.h"

typedef struct collector collector_t;

/* Where the engine's messages go. The headers are left for the sink to
 * fill (sender, sequence number). Each returns 0, or -1 when it could not
 * publish (counted by the engine). Pointers are valid during the call. */
typedef struct {
    int (*raw_batch)(void *arg, const char *topic, wire_raw_batch_t *batch);
    int (*proc_events)(void *arg, wire_proc_events_t *events);
    void *arg;
} collector_sink_t;

/* Loads and attaches the BPF programs, scans /proc and registers its fds
 * and timers with the loop. NULL with a reason in err when the options are
 * invalid (before anything touches the kernel) or BPF cannot load. */
collector_t *collector_new(const collector_options_t *opts, loop_t *loop,
                           stats_t *stats, const collector_sink_t *sink,
                           char *err, size_t errlen);
/* Detaches everything from the kernel and the loop. */
void collector_destroy(collector_t **self_p);

/* Reconciles to a decoded ctl.tasks message. Returns 0 applied, 1 ignored
 * as stale, -1 on failure (the last good set stays). */
int collector_apply_tasks(collector_t *self, const wire_task_set_t *set);
/* Counts a ctl.tasks payload that failed to decode (kept: the last good). */
void collector_note_bad_tasks(collector_t *self);

/* Consumes both rings and publishes everything pending now (the timer
 * publishes only every publish_interval). */
int collector_drain(collector_t *self);

/* For tests and diagnostics. */
typedef struct {
    uint64_t samples_received;
    uint64_t samples_invalid;
    uint64_t samples_dropped_kernel;
    uint64_t samples_dropped_user;  /* batch memory bound */
    uint64_t batches_published;
    uint64_t stacks_published;
    uint64_t publish_errors;
    uint64_t proc_events;
    uint64_t proc_events_lost_kernel;
    uint64_t maps_refreshes;
    uint64_t addresses_unmapped;
    uint64_t processes;
    uint64_t objects;
    uint64_t task_sets_applied;
    uint64_t task_sets_stale;
    uint64_t task_sets_invalid;
    uint64_t task_pids;             /* pids in the BPF task map */
    uint64_t offcpu_pids;           /* pids in the off-CPU filter */
    int offcpu_attached;            /* 1 while the off-CPU probe is on */
    uint64_t offcpu_samples;        /* off-CPU aggregates drained */
    uint64_t offcpu_switches;       /* off-CPU periods seen in the kernel */
    int probe_flavour;
    int sampler;                 /* enum collector_sampler */
    int perf_events;             /* CPU-clock perf events attached now */
    int ncpus;
    int unwind_dwarf;            /* 1: the .eh_frame walker is in use */
    uint64_t unwind_walks;       /* user stacks walked with the tables */
    uint64_t unwind_fp_walks;    /* ... left to frame pointers */
    uint64_t unwind_frames_dwarf, unwind_frames_fp;
    uint64_t unwind_truncated, unwind_deep;
    uint64_t unwind_tables_built;
} collector_info_t;

void collector_info(const collector_t *self, collector_info_t *out);
/* 1 when the process table holds an entry for pid (alive or in grace). */
int collector_has_process(const collector_t *self, uint32_t pid);

#endif
