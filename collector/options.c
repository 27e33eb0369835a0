/* Collector settings; see options.h. */
#include "collector/options.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "collector/offcpu.h"
#include "wire.h"

/* The kernel's hrtimer-based CPU clock cannot usefully fire faster than
 * this; a smaller period only burns CPU in the sampler. */
#define COLLECTOR_MIN_PERIOD_NS 100000ull        /* 10 kHz */
#define COLLECTOR_MAX_PERIOD_NS 10000000000ull   /* 10 s */
#define COLLECTOR_MIN_RINGBUF (64ull << 10)
#define COLLECTOR_MAX_RINGBUF (1ull << 30)

void collector_options_default(collector_options_t *opts)
{
    *opts = (collector_options_t){
        .active = true,
        .period_ns = 9000000,
        .host_wide = true,
        .host_every = 2,
        .host_period_ns = 20000000,
        .sampler = COLLECTOR_SAMPLER_AUTO,
        .offcpu_sample_every = OFFCPU_DEFAULT_SAMPLE_EVERY,
        .offcpu_long_ns = OFFCPU_DEFAULT_LONG_NS,
        .net_capture_bytes = 1024,
        .net_ringbuf_size = 8u << 20,
        .unwinder = COLLECTOR_UNWINDER_AUTO,
        .unwind_rows = 4194304,
        .unwind_tables = 4096,
        .unwind_procs = 4096,
        .unwind_max_frames = 127,
        .ringbuf_size = 2u << 20,
        .drain_interval_ms = 250,
        .publish_interval_ms = 1000,
        .proc_grace_ms = 30000,
        .max_batch_samples = 4096,
        .max_procs = 32768,
        .probe_flavour = COLLECTOR_PROBE_AUTO,
        .scan_proc = true,
        .proc_republish_ms = 10000,
        .debug_dir = "/usr/lib/debug",
    };
}

int collector_sampler_parse(const char *name)
{
    if (!name || strcmp(name, "auto") == 0)
        return COLLECTOR_SAMPLER_AUTO;
    if (strcmp(name, "tick") == 0)
        return COLLECTOR_SAMPLER_TICK;
    if (strcmp(name, "perf_event") == 0)
        return COLLECTOR_SAMPLER_PERF_EVENT;
    return -1;
}

const char *collector_sampler_name(int sampler)
{
    switch (sampler) {
    case COLLECTOR_SAMPLER_TICK: return "tick";
    case COLLECTOR_SAMPLER_PERF_EVENT: return "perf_event";
    default: return "auto";
    }
}

int collector_unwinder_parse(const char *name)
{
    if (!name || strcmp(name, "auto") == 0)
        return COLLECTOR_UNWINDER_AUTO;
    if (strcmp(name, "dwarf") == 0)
        return COLLECTOR_UNWINDER_DWARF;
    if (strcmp(name, "fp") == 0)
        return COLLECTOR_UNWINDER_FP;
    return -1;
}

const char *collector_unwinder_name(int unwinder)
{
    switch (unwinder) {
    case COLLECTOR_UNWINDER_DWARF: return "dwarf";
    case COLLECTOR_UNWINDER_FP: return "fp";
    default: return "auto";
    }
}

/* Ranges of the unwinder's sizes: the maps must load (the row array is
 * one allocation, 8 bytes a row) and a slot index must fit 32 bits. */
#define COLLECTOR_UNWIND_ROWS_MAX (64u << 20)
#define COLLECTOR_UNWIND_TABLES_MAX (1u << 20)
#define COLLECTOR_UNWIND_PROCS_MAX (1u << 18)

int collector_options_validate(const collector_options_t *o, char *err,
                               size_t errlen)
{
    if (o->period_ns < COLLECTOR_MIN_PERIOD_NS ||
        o->period_ns > COLLECTOR_MAX_PERIOD_NS) {
        snprintf(err, errlen,
                 "profiling.task.on_cpu.dump_period: %" PRIu64
                 "ns is out of range (100us..10s)", o->period_ns);
        return -1;
    }
    if (o->host_every == 0) {
        snprintf(err, errlen, "collector.host_period: must be > 0");
        return -1;
    }
    if (o->ringbuf_size < COLLECTOR_MIN_RINGBUF ||
        o->ringbuf_size > COLLECTOR_MAX_RINGBUF ||
        (o->ringbuf_size & (o->ringbuf_size - 1)) != 0) {
        snprintf(err, errlen,
                 "collector.ringbuf_size: %" PRIu64
                 " bytes must be a power of two between 64KiB and 1GiB",
                 o->ringbuf_size);
        return -1;
    }
    if (o->drain_interval_ms < 1 || o->drain_interval_ms > 10000) {
        snprintf(err, errlen,
                 "collector.drain_interval: %" PRIu64
                 "ms is out of range (1ms..10s)", o->drain_interval_ms);
        return -1;
    }
    if (o->publish_interval_ms > 60000) {
        snprintf(err, errlen,
                 "collector.publish_interval: %" PRIu64
                 "ms is over 1 minute", o->publish_interval_ms);
        return -1;
    }
    if (o->proc_republish_ms > 3600000) {
        snprintf(err, errlen,
                 "collector.proc_republish_interval: %" PRIu64 "ms is over 1h",
                 o->proc_republish_ms);
        return -1;
    }
    if (o->proc_grace_ms > 3600000) {
        snprintf(err, errlen,
                 "collector.proc_grace: %" PRIu64 "ms is over 1h",
                 o->proc_grace_ms);
        return -1;
    }
    if (o->max_batch_samples < 1 || o->max_batch_samples > WIRE_MAX_SAMPLES) {
        snprintf(err, errlen,
                 "collector.max_batch_samples: %u is out of range (1..%u)",
                 o->max_batch_samples, (unsigned)WIRE_MAX_SAMPLES);
        return -1;
    }
    if (o->sampler < COLLECTOR_SAMPLER_AUTO ||
        o->sampler > COLLECTOR_SAMPLER_PERF_EVENT) {
        snprintf(err, errlen, "collector.sampler %d is unknown", o->sampler);
        return -1;
    }
    if (o->net_capture_bytes > WIRE_MAX_NET_PAYLOAD) {
        snprintf(err, errlen, "collector.net_capture_bytes: %u is over %u",
                 o->net_capture_bytes, (unsigned)WIRE_MAX_NET_PAYLOAD);
        return -1;
    }
    if (o->net_ringbuf_size < (64u << 10) || o->net_ringbuf_size > (1u << 30) ||
        (o->net_ringbuf_size & (o->net_ringbuf_size - 1))) {
        snprintf(err, errlen,
                 "collector.net_ringbuf_size: %" PRIu64 " is not a power of "
                 "two between 64KB and 1GB", o->net_ringbuf_size);
        return -1;
    }
    if (o->offcpu_sample_every < 1 || o->offcpu_sample_every > 1000000) {
        snprintf(err, errlen,
                 "collector.offcpu_sample_every: %u is out of range "
                 "(1..1000000)", o->offcpu_sample_every);
        return -1;
    }
    if (o->offcpu_long_ns < 1000 || o->offcpu_long_ns > 60000000000ull) {
        snprintf(err, errlen,
                 "collector.offcpu_long_period: %" PRIu64
                 "ns is out of range (1us..60s)", o->offcpu_long_ns);
        return -1;
    }
    if (o->unwinder < COLLECTOR_UNWINDER_AUTO ||
        o->unwinder > COLLECTOR_UNWINDER_FP) {
        snprintf(err, errlen, "collector.unwinder %d is unknown", o->unwinder);
        return -1;
    }
    if (o->unwind_rows < 1024 || o->unwind_rows > COLLECTOR_UNWIND_ROWS_MAX) {
        snprintf(err, errlen,
                 "collector.unwind_rows: %u is out of range (1024..%u)",
                 o->unwind_rows, COLLECTOR_UNWIND_ROWS_MAX);
        return -1;
    }
    if (o->unwind_tables < 2 ||
        o->unwind_tables > COLLECTOR_UNWIND_TABLES_MAX) {
        snprintf(err, errlen,
                 "collector.unwind_tables: %u is out of range (2..%u)",
                 o->unwind_tables, COLLECTOR_UNWIND_TABLES_MAX);
        return -1;
    }
    if (o->unwind_procs < 1 || o->unwind_procs > COLLECTOR_UNWIND_PROCS_MAX) {
        snprintf(err, errlen,
                 "collector.unwind_procs: %u is out of range (1..%u)",
                 o->unwind_procs, COLLECTOR_UNWIND_PROCS_MAX);
        return -1;
    }
    if (o->unwind_max_frames < 1 || o->unwind_max_frames > 127) {
        snprintf(err, errlen,
                 "collector.unwind_max_frames: %u is out of range (1..127)",
                 o->unwind_max_frames);
        return -1;
    }
    if (o->probe_flavour < COLLECTOR_PROBE_AUTO ||
        o->probe_flavour > COLLECTOR_PROBE_TRACEPOINT) {
        snprintf(err, errlen, "probe flavour %d is unknown",
                 o->probe_flavour);
        return -1;
    }
    return 0;
}

int collector_options_from_config(const config_t *cfg,
                                  collector_options_t *o, char *err,
                                  size_t errlen)
{
    collector_options_default(o);
    o->active = config_bool(cfg, "profiling.active");
    o->period_ns = config_duration_ns(cfg, "profiling.task.on_cpu.dump_period");
    o->host_wide = config_bool(cfg, "collector.host_wide");
    uint64_t host_ns = config_duration_ns(cfg, "collector.host_period");
    o->host_period_ns = host_ns;
    const char *sampler = config_str(cfg, "collector.sampler");
    o->sampler = collector_sampler_parse(sampler);
    if (o->sampler < 0) {
        snprintf(err, errlen,
                 "collector.sampler: '%s' is not auto, tick or perf_event",
                 sampler);
        return -1;
    }
    const char *unwinder = config_str(cfg, "collector.unwinder");
    o->unwinder = collector_unwinder_parse(unwinder);
    if (o->unwinder < 0) {
        snprintf(err, errlen,
                 "collector.unwinder: '%s' is not auto, dwarf or fp",
                 unwinder);
        return -1;
    }
    static const struct {
        const char *key;
        size_t at;
    } sizes[] = {
        { "collector.unwind_rows",
          offsetof(collector_options_t, unwind_rows) },
        { "collector.unwind_tables",
          offsetof(collector_options_t, unwind_tables) },
        { "collector.unwind_procs",
          offsetof(collector_options_t, unwind_procs) },
        { "collector.unwind_max_frames",
          offsetof(collector_options_t, unwind_max_frames) },
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        int64_t v = config_int(cfg, sizes[i].key);
        if (v < 0 || v > UINT32_MAX) {
            snprintf(err, errlen, "%s: %" PRId64 " is out of range",
                     sizes[i].key, v);
            return -1;
        }
        *(uint32_t *)((char *)o + sizes[i].at) = (uint32_t)v;
    }
    int64_t every = config_int(cfg, "collector.offcpu_sample_every");
    if (every < 1 || every > 1000000) {
        snprintf(err, errlen,
                 "collector.offcpu_sample_every: %" PRId64
                 " is out of range (1..1000000)", every);
        return -1;
    }
    o->offcpu_sample_every = (uint32_t)every;
    o->offcpu_long_ns = config_duration_ns(cfg,
                                           "collector.offcpu_long_period");
    o->ringbuf_size = config_size(cfg, "collector.ringbuf_size");
    uint64_t cap = config_size(cfg, "collector.net_capture_bytes");
    if (cap > WIRE_MAX_NET_PAYLOAD) {
        snprintf(err, errlen,
                 "collector.net_capture_bytes: %" PRIu64 " is over %u", cap,
                 (unsigned)WIRE_MAX_NET_PAYLOAD);
        return -1;
    }
    o->net_capture_bytes = (uint32_t)cap;
    o->net_ringbuf_size = config_size(cfg, "collector.net_ringbuf_size");
    o->drain_interval_ms = config_duration_ms(cfg, "collector.drain_interval");
    o->publish_interval_ms = config_duration_ms(cfg,
                                                "collector.publish_interval");
    o->proc_grace_ms = config_duration_ms(cfg, "collector.proc_grace");
    o->proc_republish_ms = config_duration_ms(
        cfg, "collector.proc_republish_interval");
    o->debug_dir = config_str(cfg, "symbolizer.debug_dirs");
    int64_t max_batch = config_int(cfg, "collector.max_batch_samples");
    if (max_batch < 1 || max_batch > WIRE_MAX_SAMPLES) {
        snprintf(err, errlen,
                 "collector.max_batch_samples: %" PRId64
                 " is out of range (1..%u)", max_batch,
                 (unsigned)WIRE_MAX_SAMPLES);
        return -1;
    }
    o->max_batch_samples = (uint32_t)max_batch;
    if (o->period_ns == 0) {
        snprintf(err, errlen,
                 "profiling.task.on_cpu.dump_period: must be > 0");
        return -1;
    }
    if (o->host_wide && host_ns < o->period_ns) {
        snprintf(err, errlen,
                 "collector.host_period: %" PRIu64 "ns is shorter than "
                 "profiling.task.on_cpu.dump_period (%" PRIu64 "ns)",
                 host_ns, o->period_ns);
        return -1;
    }
    /* With perf_event, one event per CPU serves both rates: the host-wide
     * view keeps every Nth tick, N the nearest whole multiple of the task
     * period. (The tick trigger rounds host_period_ns to its own ticks.) */
    uint64_t host_every = (host_ns + o->period_ns / 2) / o->period_ns;
    if (host_every == 0)
        host_every = 1;
    if (host_every > 1000000) {
        snprintf(err, errlen,
                 "collector.host_period: %" PRIu64 "ns is too long", host_ns);
        return -1;
    }
    o->host_every = (uint32_t)host_every;
    return collector_options_validate(o, err, errlen);
}
