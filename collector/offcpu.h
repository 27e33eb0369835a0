/* The collector's off-CPU profiler: loads bpf/offcpu.bpf.c while at least
 * one process is targeted by an active OFF_CPU task (hosts without such a
 * task pay nothing, not even the maps' memory), keeps its pid filter in
 * step with the task set, and drains the in-kernel aggregation of
 * off-CPU time into samples: one per (thread, kernel stack, user stack)
 * with the number of switches and the nanoseconds spent off CPU since the
 * last drain.
 *
 * Loading is done on a thread of its own by default (background_load):
 * the verifier's time is not the caller's loop's.
 *
 * Flavours: tp_btf/sched_switch, else a kprobe on the finish_task_switch
 * symbol /proc/kallsyms has (finish_task_switch.isra.0 on this kernel).
 *
 * Stack ids are generation-tagged (two stack maps, flipped at each drain)
 * so the stacks a drain consumed can be deleted from the generation no
 * switch-out writes to any more, unless a thread still asleep refers to
 * them: the stack maps hold what one or two drain intervals produce, not
 * everything ever seen. See bpf/offcpu.bpf.c for what is counted. */
#ifndef SKYPROF_COLLECTOR_OFFCPU_H
#define SKYPROF_COLLECTOR_OFFCPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/unwinder.h"

typedef struct offcpu offcpu_t;

enum offcpu_flavour {
    OFFCPU_AUTO = 0,       /* tp_btf, else kprobe */
    OFFCPU_TP_BTF = 1,
    OFFCPU_KPROBE = 2,
};

typedef struct {
    int flavour;            /* enum offcpu_flavour */
    bool count_preempted;   /* also count runnable (preempted) waits */
    uint32_t stack_entries; /* stacks per generation map (0: 8192) */
    uint32_t agg_entries;   /* (thread, stack) pairs per drain (0: 16384) */
    uint32_t start_entries; /* threads asleep in a recorded period at once
                               (0: 32768) */
    /* Every period of a thread is recorded (stacks, time) until it had
     * 16 short ones in a row (shorter than long_ns), then one in
     * sample_every, each counting sample_every times, until a recorded
     * one is long again or the thread last got a CPU long_ns before its
     * wakeup (see bpf/offcpu.bpf.c). 1: every period; 0: the
     * default. */
    uint32_t sample_every;
    uint64_t long_ns;       /* 0: the default */
    /* Load (verify) and attach the programs on a thread of their own, so
     * the caller's loop does not wait for it (default); the set then
     * takes effect at the first offcpu_drain or offcpu_set_pids after
     * the load. false: offcpu_set_pids loads before it returns. */
    bool background_load;
} offcpu_options_t;

/* Defaults of the two above: with them an OFF_CPU task costs a
 * context-switch-heavy program under 10 % (docs/benchmarks.md). */
#define OFFCPU_DEFAULT_SAMPLE_EVERY 128u
#define OFFCPU_DEFAULT_LONG_NS      1000000ull

void offcpu_options_default(offcpu_options_t *opts);

/* One drained aggregate. Pointers are valid during the callback. */
typedef struct {
    uint32_t pid, tid, cpu;
    uint64_t count;         /* switches */
    uint64_t total_ns;      /* time off CPU */
    uint64_t first_ns;      /* CLOCK_MONOTONIC of the first switch-in */
    const char *comm;       /* thread name, NUL terminated */
    uint32_t nk, nu;
    const uint64_t *kframes;  /* kernel addresses, leaf first */
    const uint64_t *uaddrs;   /* user addresses, leaf first */
} offcpu_sample_t;

typedef void (*offcpu_sample_fn)(void *arg, const offcpu_sample_t *s);

/* Loads nothing yet. NULL when out of memory or the options are out of
 * range. */
offcpu_t *offcpu_new(const offcpu_options_t *opts, offcpu_sample_fn on_sample,
                     void *arg);
/* Detaches without draining. */
void offcpu_destroy(offcpu_t **self_p);

/* User stacks with the on-CPU program's .eh_frame walker (its maps,
 * shared) from the next load on; NULL: frame pointers. */
void offcpu_set_unwinder(offcpu_t *self, const unwinder_maps_t *maps,
                         uint32_t max_frames);

/* Makes the filter hold exactly these pids (sorted, unique). The first
 * pid loads and attaches the programs (in the background with
 * background_load: the set applies once they are, see above); an empty
 * set drains what is left (through the callback) and unloads them. 0 ok,
 * -1 when the programs could not be attached (logged; retried at the next
 * change of the set) or some pid could not be added. */
int offcpu_set_pids(offcpu_t *self, const uint32_t *pids, size_t n);

/* Adopts a background load that is done, then hands every aggregate
 * collected so far to the callback, deletes it in the kernel and retires
 * the stacks no longer referred to. Returns the number of samples handed
 * over, 0 when detached. */
int offcpu_drain(offcpu_t *self);

bool offcpu_attached(const offcpu_t *self);
/* The flavour attached (or last attached), OFFCPU_AUTO if never. */
int offcpu_flavour(const offcpu_t *self);
const char *offcpu_flavour_name(int flavour);

typedef struct {
    uint64_t switches;        /* off-CPU periods aggregated in the kernel */
    uint64_t dropped_start;   /* switch-outs lost: start map full */
    uint64_t dropped_agg;     /* periods lost: aggregation map full */
    uint64_t kstacks_lost;    /* periods kept without their kernel stack */
    uint64_t ustacks_lost;    /* ... without their user stack */
    uint64_t preempted;       /* preempted switch-outs, not counted */
    uint64_t unsampled;       /* short periods not recorded (sampling) */
    uint64_t stacks_missing;  /* stack ids user space could not read */
    uint64_t stacks_deleted;  /* stack map entries retired */
    uint64_t samples;         /* samples handed to the callback */
    uint64_t attaches;
    uint32_t npids;
} offcpu_stats_t;

void offcpu_stats(const offcpu_t *self, offcpu_stats_t *out);

/* Entries in both stack maps now (walks them; for tests). */
size_t offcpu_stack_entries(const offcpu_t *self);

#endif
