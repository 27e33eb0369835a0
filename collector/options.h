/* The collector's settings, read from the configuration and validated
 * before anything is loaded into the kernel. */
#ifndef SKYPROF_COLLECTOR_OPTIONS_H
#define SKYPROF_COLLECTOR_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Which flavour of process-event probe to load; AUTO tries them in order
 * and keeps the first that loads. */
enum collector_probe_flavour {
    COLLECTOR_PROBE_AUTO = 0,
    COLLECTOR_PROBE_TP_BTF = 1,
    COLLECTOR_PROBE_RAW_TP = 2,
    COLLECTOR_PROBE_TRACEPOINT = 3,
};

/* Which trigger samples on-CPU stacks; AUTO takes the tick where the
 * kernel has it (see collector/README.md). */
enum collector_sampler {
    COLLECTOR_SAMPLER_AUTO = 0,
    COLLECTOR_SAMPLER_TICK = 1,
    COLLECTOR_SAMPLER_PERF_EVENT = 2,
};

/* How user stacks are walked (collector.unwinder). */
enum collector_unwinder {
    COLLECTOR_UNWINDER_AUTO = 0,  /* the tables where the walker loads */
    COLLECTOR_UNWINDER_DWARF = 1, /* the tables, or fail */
    COLLECTOR_UNWINDER_FP = 2,    /* frame pointers (bpf_get_stack) */
};

typedef struct {
    bool active;                 /* profiling.active */
    uint64_t period_ns;          /* profiling.task.on_cpu.dump_period */
    bool host_wide;              /* collector.host_wide */
    uint32_t host_every;         /* host-wide keeps every Nth tick (>= 1) */
    uint64_t host_period_ns;     /* collector.host_period */
    int sampler;                 /* enum collector_sampler */
    uint32_t offcpu_sample_every; /* collector.offcpu_sample_every */
    uint64_t offcpu_long_ns;     /* collector.offcpu_long_period */
    int unwinder;                /* enum collector_unwinder */
    uint32_t unwind_rows;        /* collector.unwind_rows */
    uint32_t unwind_tables;      /* collector.unwind_tables */
    uint32_t unwind_procs;       /* collector.unwind_procs */
    uint32_t unwind_max_frames;  /* collector.unwind_max_frames */
    uint64_t ringbuf_size;       /* bytes, power of two */
    uint64_t drain_interval_ms;
    uint64_t publish_interval_ms; /* 0: publish at every drain */
    uint64_t proc_grace_ms;
    uint32_t max_batch_samples;
    uint32_t max_procs;          /* process table bound */
    int probe_flavour;           /* enum collector_probe_flavour */
    bool scan_proc;              /* read /proc at start (tests may skip) */
    /* collector.proc_republish_interval: every live process again on
     * proc.events (type alive); 0 = never. */
    uint64_t proc_republish_ms;
    /* First root of symbolizer.debug_dirs: where a stripped executable's
     * debug file counts as symbols (has_symbols on proc.events). */
    const char *debug_dir;
} collector_options_t;

/* "auto", "tick", "perf_event"; -1 for anything else. */
int collector_sampler_parse(const char *name);
const char *collector_sampler_name(int sampler);

/* "auto", "dwarf", "fp"; -1 for anything else. */
int collector_unwinder_parse(const char *name);
const char *collector_unwinder_name(int unwinder);

/* Defaults equal to the configuration defaults. */
void collector_options_default(collector_options_t *opts);

/* Fills opts from cfg. Returns 0, or -1 with a message naming the key and
 * the value in err. */
int collector_options_from_config(const config_t *cfg,
                                  collector_options_t *opts, char *err,
                                  size_t errlen);

/* Checks ranges (also for options built by hand). 0 ok, -1 with err. */
int collector_options_validate(const collector_options_t *opts, char *err,
                               size_t errlen);

#endif
