/* The collector engine; see collector.h. */
#include "collector/collector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "bpf/profile.h"
#include "collector/batcher.h"
#include "collector/netcap.h"
#include "collector/objreg.h"
#include "collector/offcpu.h"
#include "collector/probes.h"
#include "collector/proctab.h"
#include "collector/symcheck.h"
#include "collector/unwinder.h"
#include "collector/active_tasks.h"
#include "log.h"
#include "procfacts.h"

#define COLLECTOR_HOUSEKEEP_MS 1000
/* Exit events only go missing when the event ring overflows, which the
 * kernel side counts: sweep /proc at once after such a loss, otherwise
 * only as a slow safety net (a sweep reads every process's stat file). */
#define COLLECTOR_ALIVE_CHECK_EVERY 60     /* housekeeping rounds */
#define COLLECTOR_RESCAN_IDLE_MS 1000
#define COLLECTOR_EVENTS_PER_MSG 256
#define COLLECTOR_MAX_SAMPLE_TASKS 64
/* Time per call spent loading finished unwind tables into the kernel
 * (collector/unwinder.h; the building itself is on the unwinder's
 * thread): a table is a few ms of map writes at most. */
#define COLLECTOR_UNWIND_DRAIN_BUDGET_NS  (20ull * 1000000ull)
#define COLLECTOR_UNWIND_RESCAN_BUDGET_NS (5ull * 1000000ull)

enum {
    M_SAMPLES_RECEIVED, M_SAMPLES_INVALID, M_SAMPLES_DROPPED_KERNEL,
    M_SAMPLES_DROPPED_USER, M_BATCHES, M_STACKS, M_ON_CPU_PUBLISHED,
    M_ON_CPU_UNPUBLISHED, M_PUBLISH_ERRORS,
    M_PROC_EVENTS, M_EVENTS_LOST_KERNEL, M_MAPS_REFRESHES,
    M_ADDR_UNMAPPED, M_TASK_SETS_APPLIED, M_TASK_SETS_STALE,
    M_TASK_SETS_INVALID, M_PROCESSES, M_OBJECTS, M_TASK_PIDS,
    M_OFFCPU_SWITCHES, M_OFFCPU_SAMPLES, M_OFFCPU_DROPPED_KERNEL,
    M_OFFCPU_STACKS_LOST, M_OFFCPU_PIDS, M_OFFCPU_ATTACHED,
    M_OFFCPU_UNSAMPLED, M_SAMPLER_TICK, M_SAMPLER_PERF_EVENTS,
    M_SAMPLER_HOST_PERIOD,
    M_NET_PIDS, M_NET_ATTACHED, M_NET_EVENTS, M_NET_BYTES_CAPTURED,
    M_NET_TRUNCATED, M_NET_LOST_KERNEL, M_NET_LOST_USER, M_NET_PUBLISHED,
    M_NET_BATCHES, M_NET_INVALID, M_NET_ATTACH_ERRORS, M_NET_HOOK_LOSSES,
    M_NET_MMSG, M_NET_PEERS, M_NET_TLS_LIBS, M_NET_TLS_UNTIED,
    M_NET_PUBLISH_ERRORS,
    M_USER_FRAMES_CUT, M_UNWINDER_DWARF, M_UNW_WALKS, M_UNW_FP_WALKS, M_UNW_FRAMES_CFI,
    M_UNW_FRAMES_FP, M_UNW_TRUNCATED, M_UNW_DEEP, M_UNW_TABLE_MISSES,
    M_UNW_TABLES_BUILT, M_UNW_TABLES_EVICTED, M_UNW_TABLES_REFUSED,
    M_UNW_ROWS_UNENCODABLE, M_UNW_CFI_ERRORS, M_UNW_PROCS_REFUSED,
    M_UNW_MAPS_CUT, M_UNW_UPDATE_ERRORS, M_UNW_BUILD_NS, M_UNW_TABLES,
    M_UNW_TABLES_PENDING, M_UNW_ROWS, M_UNW_PROCS, M_UNW_BYTES,
    M_UNW_BYTES_RESERVED,
    M_UNW_ROWS_WRITTEN, M_UNW_ROWS_WRITE_NS, M_UNW_ROWS_MMAP,
    M_UNW_ROWS_MMAP_ERRORS, M_UNW_MEMORY_TRIMS,
    M_UNW_TABLES_INLINE, M_UNW_EXECS, M_UNW_EXEC_LAG_NS, M_UNW_EXEC_DRAIN_NS,
    M_UNW_EXEC_READY, M_UNW_EXEC_READY_NS, M_UNW_EXEC_READY_1MS, M_UNW_EXEC_READY_10MS,
    M_UNW_SAMPLES_UNREADY, M_UNW_UNREADY_WALKS, M_UNW_VMA_LOOKUPS,
    M_UNW_VMA_TABLES, M_UNW_VMA_MISSES, M_UNW_VMA_FAILED, M_UNW_FILES,
    M_UNW_FILES_REFUSED, M_MAPS_RECORDED, M_COUNT
};

static const struct {
    const char *name;
    int gauge;
    const char *help;
} s_metric_defs[M_COUNT] = {
    [M_SAMPLES_RECEIVED] = { "samples_received", 0, "samples read from the ring" },
    [M_SAMPLES_INVALID] = { "samples_invalid", 0, "malformed ring records" },
    [M_SAMPLES_DROPPED_KERNEL] = { "samples_dropped_kernel", 0, "samples lost because the ring was full" },
    [M_SAMPLES_DROPPED_USER] = { "samples_dropped_user", 0, "samples dropped at the per-drain memory bound" },
    [M_BATCHES] = { "batches_published", 0, "raw stack batches published" },
    [M_STACKS] = { "stacks_published", 0, "distinct stacks published" },
    [M_ON_CPU_PUBLISHED] = { "on_cpu_published", 0, "on-CPU samples in published batches: once drained, samples_received = on_cpu_published + on_cpu_unpublished + samples_invalid + samples_dropped_user" },
    [M_ON_CPU_UNPUBLISHED] = { "on_cpu_unpublished", 0, "on-CPU samples in batches that could not be published" },
    [M_PUBLISH_ERRORS] = { "publish_errors", 0, "messages that could not be published" },
    [M_PROC_EVENTS] = { "proc_events", 0, "process events published" },
    [M_EVENTS_LOST_KERNEL] = { "proc_events_lost_kernel", 0, "process events lost because their ring was full" },
    [M_MAPS_REFRESHES] = { "maps_refreshes", 0, "reads of /proc/PID/maps" },
    [M_ADDR_UNMAPPED] = { "addresses_unmapped", 0, "user addresses no mapping covered" },
    [M_TASK_SETS_APPLIED] = { "task_sets_applied", 0, "ctl.tasks messages applied" },
    [M_TASK_SETS_STALE] = { "task_sets_stale", 0, "ctl.tasks messages ignored as stale" },
    [M_TASK_SETS_INVALID] = { "task_sets_invalid", 0, "ctl.tasks messages that did not decode" },
    [M_PROCESSES] = { "processes", 1, "processes in the process table" },
    [M_OBJECTS] = { "objects", 1, "objects (files, vdso, JIT regions) tracked" },
    [M_TASK_PIDS] = { "task_pids", 1, "pids targeted by active on-CPU tasks" },
    [M_OFFCPU_SWITCHES] = { "offcpu_switches", 0, "off-CPU periods aggregated in the kernel" },
    [M_OFFCPU_SAMPLES] = { "offcpu_samples", 0, "off-CPU (thread, stack) aggregates drained" },
    [M_OFFCPU_DROPPED_KERNEL] = { "offcpu_dropped_kernel", 0, "off-CPU periods lost because a kernel map was full" },
    [M_OFFCPU_STACKS_LOST] = { "offcpu_stacks_lost", 0, "off-CPU periods kept without a kernel or user stack" },
    [M_OFFCPU_PIDS] = { "offcpu_pids", 1, "pids targeted by active off-CPU tasks" },
    [M_OFFCPU_ATTACHED] = { "offcpu_attached", 1, "1 while the off-CPU probe is attached" },
    [M_OFFCPU_UNSAMPLED] = { "offcpu_unsampled", 0, "short off-CPU periods not recorded (the sampled ones stand for them)" },
    [M_SAMPLER_TICK] = { "sampler_tick", 1, "1: on-CPU samples are taken on the scheduler tick; 0: on perf events of our own" },
    [M_SAMPLER_PERF_EVENTS] = { "sampler_perf_events", 1, "CPU-clock perf events attached now" },
    [M_SAMPLER_HOST_PERIOD] = { "sampler_host_period_ns", 1, "period of host-wide samples (ns of CPU each stands for)" },
    [M_NET_PIDS] = { "net_pids", 1, "pids targeted by active NETWORK tasks" },
    [M_NET_ATTACHED] = { "net_attached", 1, "1 while the network capture probes are attached" },
    [M_NET_EVENTS] = { "net_events", 0, "socket events written by the network probes" },
    [M_NET_BYTES_CAPTURED] = { "net_bytes_captured", 0, "payload bytes captured from traced sockets" },
    [M_NET_TRUNCATED] = { "net_truncated", 0, "reads/writes whose payload was cut at collector.net_capture_bytes" },
    [M_NET_LOST_KERNEL] = { "net_lost_kernel", 0, "socket events lost because their ring was full" },
    [M_NET_LOST_USER] = { "net_lost_user", 0, "socket events dropped at the pending-events bound" },
    [M_NET_PUBLISHED] = { "net_published", 0, "socket events in published net.events batches" },
    [M_NET_BATCHES] = { "net_batches", 0, "net.events batches published" },
    [M_NET_INVALID] = { "net_invalid", 0, "malformed socket event records" },
    [M_NET_ATTACH_ERRORS] = { "net_attach_errors", 0, "network programs that failed to load or attach" },
    [M_NET_HOOK_LOSSES] = { "net_hook_losses", 0, "syscalls or sockets the probes could not follow (a kernel map full) or read" },
    [M_NET_MMSG] = { "net_mmsg_calls", 0, "sendmmsg/recvmmsg calls of traced processes (counted, not captured)" },
    [M_NET_PEERS] = { "net_peers_resolved", 0, "connections whose peer process on this host was found" },
    [M_NET_TLS_LIBS] = { "net_tls_libraries", 1, "(traced process, libssl) pairs with TLS uprobes attached" },
    [M_NET_TLS_UNTIED] = { "net_tls_untied", 0, "TLS library calls on no known socket (plaintext not kept)" },
    [M_NET_PUBLISH_ERRORS] = { "net_publish_errors", 0, "net.events batches that could not be published (their events are lost)" },
    [M_USER_FRAMES_CUT] = { "user_frames_cut", 0, "user frames dropped from the first (non-leaf) address no mapping covers on: junk of frame-pointer walks, never published" },
    [M_UNWINDER_DWARF] = { "unwind_dwarf_active", 1, "1: user stacks are walked in the kernel with .eh_frame tables; 0: frame pointers (unwinder=fp, or the walker did not load)" },
    [M_UNW_WALKS] = { "unwind_walks", 0, "user stacks walked with the unwind tables" },
    [M_UNW_FP_WALKS] = { "unwind_fp_walks", 0, "user stacks taken with frame pointers: the process had no mapping table (yet)" },
    [M_UNW_FRAMES_CFI] = { "unwind_frames_dwarf", 0, "user frames found through an unwind table row" },
    [M_UNW_FRAMES_FP] = { "unwind_frames_fp", 0, "user frames found through frame pointers inside a table walk (JIT, anonymous code, vdso)" },
    [M_UNW_TRUNCATED] = { "unwind_truncated", 0, "walks ended at a return address outside every executable mapping or an unreadable frame (the valid frames are kept)" },
    [M_UNW_DEEP] = { "unwind_deep", 0, "walks cut at collector.unwind_max_frames" },
    [M_UNW_TABLE_MISSES] = { "unwind_table_misses", 0, "frames whose object's table was evicted (frame pointers used)" },
    [M_UNW_TABLES_BUILT] = { "unwind_tables_built", 0, "unwind tables built and loaded into the kernel" },
    [M_UNW_TABLES_EVICTED] = { "unwind_tables_evicted", 0, "unwind tables evicted to make room (least recently used)" },
    [M_UNW_TABLES_REFUSED] = { "unwind_tables_refused", 0, "objects left without a table (no CFI, unreadable, too big, code above 4 GiB)" },
    [M_UNW_ROWS_UNENCODABLE] = { "unwind_rows_unencodable", 0, "unwind rows whose offsets do not fit the kernel's 8-byte row" },
    [M_UNW_CFI_ERRORS] = { "unwind_cfi_errors", 0, "errors in .eh_frame/.debug_frame (lib/unwind_table reasons, summed)" },
    [M_UNW_PROCS_REFUSED] = { "unwind_procs_refused", 0, "processes left to frame pointers: collector.unwind_procs is full" },
    [M_UNW_MAPS_CUT] = { "unwind_maps_cut", 0, "processes with more executable mappings than the kernel entry holds" },
    [M_UNW_UPDATE_ERRORS] = { "unwind_update_errors", 0, "unwinder BPF map updates that failed" },
    [M_UNW_BUILD_NS] = { "unwind_build_ns", 0, "time spent building and loading unwind tables" },
    [M_UNW_TABLES] = { "unwind_tables", 1, "unwind tables loaded in the kernel" },
    [M_UNW_TABLES_PENDING] = { "unwind_tables_pending", 1, "objects whose unwind table is still to be built (frame pointers meanwhile)" },
    [M_UNW_ROWS] = { "unwind_rows", 1, "unwind table rows loaded in the kernel" },
    [M_UNW_PROCS] = { "unwind_procs", 1, "processes with a mapping table in the kernel" },
    [M_UNW_BYTES] = { "unwind_bytes", 1, "kernel memory the unwinder uses (rows, tables, process entries)" },
    [M_UNW_BYTES_RESERVED] = { "unwind_bytes_reserved", 1, "kernel memory the unwinder's maps reserve" },
    [M_UNW_ROWS_WRITTEN] = { "unwind_rows_written", 0, "unwind rows (and page index slots) written into the kernel" },
    [M_UNW_ROWS_WRITE_NS] = { "unwind_rows_write_ns", 0, "time spent writing unwind rows into the kernel" },
    [M_UNW_ROWS_MMAP] = { "unwind_rows_mmap", 1, "1: unwind rows are written through a mapping of unw_rows; 0: with bpf syscalls" },
    [M_UNW_ROWS_MMAP_ERRORS] = { "unwind_rows_mmap_errors", 0, "row writes that could not map unw_rows (done with bpf syscalls)" },
    [M_UNW_MEMORY_TRIMS] = { "unwind_memory_trims", 0, "heap trims (malloc_trim) after a batch of unwind table builds" },
    [M_UNW_TABLES_INLINE] = { "unwind_tables_inline", 0, "unwind tables of small objects built on the collector's loop at first sight (of unwind_tables_built)" },
    [M_UNW_EXECS] = { "unwind_execs", 0, "exec events handled with the unwinder (each drops the process's kernel entry)" },
    [M_UNW_EXEC_LAG_NS] = { "unwind_exec_lag_ns", 0, "time from the execs to the collector handling their events (ns, summed)" },
    [M_UNW_EXEC_DRAIN_NS] = { "unwind_exec_drain_ns", 0, "time spent at exec events resolving the samples taken before them (ns, summed)" },
    [M_UNW_EXEC_READY] = { "unwind_exec_ready", 0, "execs whose process got a complete kernel entry (every table it maps that can be built)" },
    [M_UNW_EXEC_READY_NS] = { "unwind_exec_ready_ns", 0, "time from the execs to their complete kernel entry (ns, summed over unwind_exec_ready)" },
    [M_UNW_EXEC_READY_1MS] = { "unwind_exec_ready_over_1ms", 0, "execs whose complete kernel entry came more than 1 ms after the exec" },
    [M_UNW_EXEC_READY_10MS] = { "unwind_exec_ready_over_10ms", 0, "execs whose complete kernel entry came more than 10 ms after the exec" },
    [M_UNW_UNREADY_WALKS] = { "unwind_unready_walks", 0, "on-CPU walks of processes without kernel entry (not read yet) through the mappings the walker finds itself (bpf_find_vma)" },
    [M_UNW_VMA_LOOKUPS] = { "unwind_vma_lookups", 0, "bpf_find_vma lookups of those walks (at most one per walk)" },
    [M_UNW_VMA_TABLES] = { "unwind_vma_tables", 0, "lookups that found a mapping whose file has a table" },
    [M_UNW_VMA_MISSES] = { "unwind_vma_misses", 0, "lookups that found a mapping whose file has no table (frame pointers there)" },
    [M_UNW_VMA_FAILED] = { "unwind_vma_failed", 0, "lookups refused (mmap_lock busy), without executable mapping, or with the process's record full" },
    [M_UNW_FILES] = { "unwind_files", 1, "files (dev, inode) naming a loaded table for those walks" },
    [M_UNW_FILES_REFUSED] = { "unwind_files_refused", 0, "files not named for lack of room (unw_files, 2 x collector.unwind_tables)" },
    [M_MAPS_RECORDED] = { "maps_recorded", 0, "processes gone before their mappings were read, resolved with the walker's record of them" },
    [M_UNW_SAMPLES_UNREADY] = { "unwind_samples_unready", 0, "samples taken after an exec before the process's kernel entry was complete (frame pointers for some or all frames)" },
};

struct collector {
    collector_options_t opts;
    loop_t *loop;
    collector_sink_t sink;
    probes_t *probes;
    objreg_t *objects;
    proctab_t *procs;
    batcher_t *batcher;
    activetasks_t *tasks;
    offcpu_t *offcpu;            /* loaded only while OFF_CPU tasks run */
    netcap_t *netcap;            /* loaded only while NETWORK tasks run */
    unwinder_t *unwinder;        /* NULL: user stacks by frame pointers */
    stats_metric_t *metrics[M_COUNT];
    uint64_t values[M_COUNT];    /* mirrors, also without a stats registry */
    int drain_timer, housekeep_timer, rescan_timer, republish_timer;
    symcheck_t *symcheck;        /* has_symbols of proc.events */
    uint32_t housekeep_rounds;
    uint64_t events_lost_at_sweep; /* M_EVENTS_LOST_KERNEL then */
    uint64_t last_publish_ms;    /* monotonic */
    int64_t mono_to_real_ns;     /* added to bpf_ktime_get_ns stamps */
    /* process events waiting to be published */
    arena_t *event_arena;
    wire_proc_event_t *events;
    uint32_t nevents;
    log_ratelimit_t bad_sample_rl;
    /* an exec being applied while the samples before it are drained */
    uint32_t exec_pid;
    uint64_t exec_ts;
    char exec_comm[17];
    char exec_path[SKY_EXEC_PATH_WORDS * 8];
};

/* ------------------------------------------------------------ counters */

static void s_add(collector_t *self, int m, uint64_t n)
{
    self->values[m] += n;
    if (self->metrics[m])
        stats_add(self->metrics[m], n);
}

static void s_set(collector_t *self, int m, uint64_t v)
{
    self->values[m] = v;
    if (self->metrics[m])
        stats_set(self->metrics[m], (double)v);
}

/* Counters kept elsewhere (BPF maps, the process table) are folded in as
 * deltas so the exported counters stay monotonic. */
static void s_sync_counter(collector_t *self, int m, uint64_t total)
{
    if (total > self->values[m])
        s_add(self, m, total - self->values[m]);
}

/* The network capture's counters (kernel and user side). */
static void s_sync_net_stats(collector_t *self)
{
    netcap_stats_t ns;

    if (!self->netcap)
        return;
    netcap_stats(self->netcap, &ns);
    s_set(self, M_NET_ATTACHED, netcap_attached(self->netcap));
    s_sync_counter(self, M_NET_EVENTS, ns.events);
    s_sync_counter(self, M_NET_BYTES_CAPTURED, ns.captured_bytes);
    s_sync_counter(self, M_NET_TRUNCATED, ns.truncated);
    s_sync_counter(self, M_NET_LOST_KERNEL, ns.ring_lost);
    s_sync_counter(self, M_NET_LOST_USER, ns.dropped_user);
    s_sync_counter(self, M_NET_PUBLISHED, ns.published);
    s_sync_counter(self, M_NET_BATCHES, ns.batches);
    s_sync_counter(self, M_NET_INVALID, ns.invalid);
    s_sync_counter(self, M_NET_ATTACH_ERRORS,
                   ns.attach_errors + ns.ssl_attach_errors);
    s_set(self, M_NET_TLS_LIBS, ns.ssl_libraries);
    s_sync_counter(self, M_NET_TLS_UNTIED, ns.ssl_untied);
    s_sync_counter(self, M_NET_PUBLISH_ERRORS, ns.publish_errors);
    s_sync_counter(self, M_NET_HOOK_LOSSES,
                   ns.args_lost + ns.conns_lost + ns.read_errors);
    s_sync_counter(self, M_NET_MMSG, ns.mmsg_calls);
    s_sync_counter(self, M_NET_PEERS, ns.peers_matched + ns.peers_proc);
}

static void s_sync_stats(collector_t *self)
{
    proctab_stats_t ps;

    proctab_stats(self->procs, &ps);
    s_sync_counter(self, M_MAPS_REFRESHES, ps.maps_refreshes);
    s_sync_counter(self, M_ADDR_UNMAPPED, ps.addresses_unmapped);
    s_sync_counter(self, M_MAPS_RECORDED, ps.maps_recorded);
    s_sync_counter(self, M_SAMPLES_DROPPED_KERNEL,
                   probes_counter(self->probes, SKY_CNT_RING_FULL));
    s_sync_counter(self, M_EVENTS_LOST_KERNEL,
                   probes_counter(self->probes, SKY_CNT_EVENTS_LOST));
    s_set(self, M_PROCESSES, proctab_count(self->procs));
    s_set(self, M_OBJECTS, objreg_count(self->objects));
    offcpu_stats_t os;
    offcpu_stats(self->offcpu, &os);
    s_sync_counter(self, M_OFFCPU_SWITCHES, os.switches);
    s_sync_counter(self, M_OFFCPU_SAMPLES, os.samples);
    s_sync_counter(self, M_OFFCPU_DROPPED_KERNEL,
                   os.dropped_start + os.dropped_agg);
    s_sync_counter(self, M_OFFCPU_STACKS_LOST,
                   os.kstacks_lost + os.ustacks_lost + os.stacks_missing);
    s_set(self, M_OFFCPU_ATTACHED, offcpu_attached(self->offcpu));
    s_sync_net_stats(self);
    s_sync_counter(self, M_OFFCPU_UNSAMPLED, os.unsampled);
    if (self->probes)
        s_set(self, M_SAMPLER_PERF_EVENTS,
              probes_perf_events(self->probes));
    if (self->unwinder) {
        static const struct {
            int m;
            uint32_t idx;
        } kernel[] = {
            { M_UNW_WALKS, SKY_CNT_UNW_WALKS },
            { M_UNW_FP_WALKS, SKY_CNT_UNW_FP_WALKS },
            { M_UNW_FRAMES_CFI, SKY_CNT_UNW_FRAMES_CFI },
            { M_UNW_FRAMES_FP, SKY_CNT_UNW_FRAMES_FP },
            { M_UNW_TRUNCATED, SKY_CNT_UNW_TRUNCATED },
            { M_UNW_DEEP, SKY_CNT_UNW_DEEP },
            { M_UNW_TABLE_MISSES, SKY_CNT_UNW_TABLE_MISS },
            { M_UNW_UNREADY_WALKS, SKY_CNT_UNW_UNREADY },
            { M_UNW_VMA_LOOKUPS, SKY_CNT_UNW_VMA_LOOKUPS },
            { M_UNW_VMA_TABLES, SKY_CNT_UNW_VMA_TABLES },
            { M_UNW_VMA_MISSES, SKY_CNT_UNW_VMA_MISSES },
            { M_UNW_VMA_FAILED, SKY_CNT_UNW_VMA_FAILED },
        };
        for (size_t i = 0; i < sizeof(kernel) / sizeof(kernel[0]); i++)
            s_sync_counter(self, kernel[i].m,
                           probes_counter(self->probes, kernel[i].idx));
        unwinder_stats_t us;
        unwinder_stats(self->unwinder, &us);
        s_sync_counter(self, M_UNW_TABLES_BUILT, us.tables_built);
        s_sync_counter(self, M_UNW_TABLES_INLINE, us.tables_inline);
        s_sync_counter(self, M_UNW_TABLES_EVICTED, us.tables_evicted);
        s_sync_counter(self, M_UNW_TABLES_REFUSED, us.tables_refused);
        s_sync_counter(self, M_UNW_ROWS_UNENCODABLE, us.rows_unencodable);
        s_sync_counter(self, M_UNW_CFI_ERRORS, us.cfi_errors);
        s_sync_counter(self, M_UNW_PROCS_REFUSED, us.procs_refused);
        s_sync_counter(self, M_UNW_MAPS_CUT, us.maps_cut);
        s_sync_counter(self, M_UNW_UPDATE_ERRORS, us.update_errors);
        s_sync_counter(self, M_UNW_BUILD_NS, us.build_ns);
        s_set(self, M_UNW_TABLES, us.tables);
        s_set(self, M_UNW_TABLES_PENDING, us.tables_pending);
        s_set(self, M_UNW_ROWS, us.rows);
        s_set(self, M_UNW_PROCS, us.procs);
        s_set(self, M_UNW_BYTES, us.bytes);
        s_set(self, M_UNW_BYTES_RESERVED, us.bytes_reserved);
        s_sync_counter(self, M_UNW_ROWS_WRITTEN, us.rows_written);
        s_sync_counter(self, M_UNW_ROWS_WRITE_NS, us.rows_write_ns);
        s_sync_counter(self, M_UNW_ROWS_MMAP_ERRORS, us.rows_mmap_errors);
        s_sync_counter(self, M_UNW_MEMORY_TRIMS, us.memory_trims);
        s_set(self, M_UNW_ROWS_MMAP, us.rows_mmap);
        s_set(self, M_UNW_FILES, us.files);
        s_sync_counter(self, M_UNW_FILES_REFUSED, us.files_refused);
    }
}

static void s_update_clock_offset(collector_t *self)
{
    struct timespec mono, real;

    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    self->mono_to_real_ns =
        ((int64_t)real.tv_sec - (int64_t)mono.tv_sec) * 1000000000LL +
        ((int64_t)real.tv_nsec - (int64_t)mono.tv_nsec);
}

/* ------------------------------------------------------ process events */

static int s_flush_events(collector_t *self)
{
    if (self->nevents == 0)
        return 0;
    wire_proc_events_t msg = { .nevents = self->nevents,
                               .events = self->events };
    if (self->sink.proc_events &&
        self->sink.proc_events(self->sink.arg, &msg) == 0)
        s_add(self, M_PROC_EVENTS, self->nevents);
    else
        s_add(self, M_PUBLISH_ERRORS, 1);
    self->nevents = 0;
    arena_reset(self->event_arena);
    return 0;
}

static const char *s_keep(collector_t *self, const char *s)
{
    const char *copy = arena_strdup(self->event_arena, s ? s : "");
    return copy ? copy : "";
}

/* Whether the process's executable has symbols a profile can use,
 * through /proc/PID/exe (it sees into mount namespaces) else its path;
 * cached by device and inode in symcheck, so a binary is read once. */
static bool s_has_symbols(collector_t *self, uint32_t pid, const char *exe)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/%u/exe", pid);
    return symcheck_has_symbols(self->symcheck, path) ||
           (*exe && symcheck_has_symbols(self->symcheck, exe));
}

/* Queues one event; reads exe and cmdline from /proc unless exiting. */
static void s_queue_event(collector_t *self, uint8_t type, const proc_t *proc,
                          uint32_t ppid, uint64_t ts_ns)
{
    char exe[PROCFACTS_EXE_MAX] = "", cmdline[PROCFACTS_CMDLINE_MAX] = "";
    bool has_symbols = false;

    if (self->nevents >= COLLECTOR_EVENTS_PER_MSG)
        s_flush_events(self);
    if (type != WIRE_PROC_EXIT) {
        procfacts_exe(NULL, proc->pid, exe, sizeof(exe));
        procfacts_cmdline(NULL, proc->pid, cmdline, sizeof(cmdline));
        /* A kernel thread (no command line) has no binary to check. */
        has_symbols = *cmdline && s_has_symbols(self, proc->pid, exe);
    }
    wire_proc_event_t *e = &self->events[self->nevents++];
    e->type = type;
    e->pid = proc->pid;
    e->ppid = ppid;
    e->nspid = proc->nspid;
    e->ts_ns = ts_ns;
    e->comm = s_keep(self, proc->comm);
    e->exe = s_keep(self, exe);
    e->cmdline = s_keep(self, cmdline);
    e->container_id = s_keep(self, proc->container_id);
    e->has_symbols = has_symbols;
}

static void s_arm_rescans(collector_t *self)
{
    uint64_t next = proctab_run_rescans(self->procs, now_mono_ms());

    loop_set_timer_interval(self->loop, self->rescan_timer,
                            next == UINT64_MAX ? COLLECTOR_RESCAN_IDLE_MS
                                               : (next ? next : 1));
}

/* After the process's kernel entry may have changed: the first time it
 * is complete after an exec, how long that took (the readiness counters;
 * samples taken before it are counted in s_on_sample). */
static void s_unwind_note_ready(collector_t *self, proc_t *proc)
{
    if (!self->unwinder || !proc || !proc->unw_exec_ns ||
        proc->unw_ready_ns || !unwinder_complete(self->unwinder, proc->pid))
        return;
    uint64_t now = now_mono_ns();
    uint64_t took = now > proc->unw_exec_ns ? now - proc->unw_exec_ns : 0;
    proc->unw_ready_ns = now;
    s_add(self, M_UNW_EXEC_READY, 1);
    s_add(self, M_UNW_EXEC_READY_NS, took);
    if (took > 1000000ull)
        s_add(self, M_UNW_EXEC_READY_1MS, 1);
    if (took > 10000000ull)
        s_add(self, M_UNW_EXEC_READY_10MS, 1);
}

/* The process exec'd at exec_ns (kernel stamp): its new image replaces
 * the old in the table (which writes its kernel entry). */
static void s_apply_exec(collector_t *self, uint32_t pid, const char *comm,
                         const char *path, uint64_t exec_ns)
{
    proc_t *proc = proctab_on_exec(self->procs, pid, comm, path);

    if (!proc)
        return;
    proc->unw_exec_ns = exec_ns;
    proc->unw_ready_ns = 0;
    s_unwind_note_ready(self, proc);
}

/* The file name an exec record carries, into self->exec_path; "" when
 * the record is the short one (a flavour that does not know it). */
static void s_exec_path_of(collector_t *self, const void *data, size_t size)
{
    const struct sky_proc_exec_event *x = data;

    self->exec_path[0] = '\0';
    if (size >= sizeof(*x)) {
        memcpy(self->exec_path, x->path, sizeof(self->exec_path) - 1);
        self->exec_path[sizeof(self->exec_path) - 1] = '\0';
    }
}

static int s_on_event(void *ctx, void *data, size_t size)
{
    collector_t *self = ctx;
    const struct sky_proc_event *ev = data;
    char comm[17];
    proc_t *proc;
    uint64_t t0;

    if (size < sizeof(*ev) || ev->pid == 0) {
        log_warn_rl(&self->bad_sample_rl, "malformed process event (%zu bytes)",
                    size);
        return 0;
    }
    memcpy(comm, ev->comm, 16);
    comm[16] = '\0';
    uint64_t ts = ev->ts_ns + (uint64_t)self->mono_to_real_ns;
    switch (ev->type) {
    case SKY_EV_FORK:
        if (ev->flags & SKY_EVF_MAYBE_THREAD) {
            uint32_t tgid = 0;
            if (procfacts_status(NULL, ev->pid, NULL, &tgid) == 0 &&
                tgid != ev->pid)
                return 0;   /* a thread */
        }
        proc = proctab_on_fork(self->procs, ev->pid, ev->ppid, comm);
        /* The kernel walks the child with its parent's entry until it has
         * its own (the fork hook); with no mappings to give it one now,
         * that borrowed entry goes: the parent's slot must not outlive
         * the parent under the child's pid. */
        if (self->unwinder && (!proc || !proc->maps_loaded))
            unwinder_forget_pid(self->unwinder, ev->pid);
        if (proc)
            s_queue_event(self, WIRE_PROC_START, proc, ev->ppid, ts);
        break;
    case SKY_EV_EXEC:
        /* The kernel dropped the process's mapping table at exec; the
         * next sync writes the new image's from scratch. */
        t0 = now_mono_ns();
        if (self->unwinder) {
            unwinder_forget(self->unwinder, ev->pid);
            s_add(self, M_UNW_EXECS, 1);
            s_add(self, M_UNW_EXEC_LAG_NS,
                  t0 > ev->ts_ns ? t0 - ev->ts_ns : 0);
        }
        /* Samples still in the ring mostly predate the exec: resolve them
         * against the old mappings first. The first sample of this pid
         * stamped after the exec applies it (s_on_sample), so later ones
         * see the new image. */
        self->exec_pid = ev->pid;
        self->exec_ts = ev->ts_ns;
        snprintf(self->exec_comm, sizeof(self->exec_comm), "%s", comm);
        s_exec_path_of(self, data, size);
        probes_consume_samples(self->probes);
        if (self->unwinder)
            s_add(self, M_UNW_EXEC_DRAIN_NS, now_mono_ns() - t0);
        if (self->exec_pid == ev->pid)
            s_apply_exec(self, ev->pid, comm, self->exec_path, ev->ts_ns);
        self->exec_pid = 0;
        proc = proctab_find(self->procs, ev->pid);
        if (proc) {
            procfacts_stat_t st;
            procfacts_stat(NULL, ev->pid, &st);
            s_queue_event(self, WIRE_PROC_EXEC, proc, st.ppid, ts);
        }
        break;
    case SKY_EV_EXIT: {
        /* Consumers hear of every exit, also of processes that came and
         * went between two reads of ours. */
        proc_t unknown = { .pid = ev->pid };
        proc = proctab_find(self->procs, ev->pid);
        if (!proc) {
            snprintf(unknown.comm, sizeof(unknown.comm), "%.15s", comm);
            proc = &unknown;
        }
        proctab_on_exit(self->procs, ev->pid);
        /* Also a child the fork hook pointed at its parent's entry and
         * that we never tracked. */
        if (self->unwinder)
            unwinder_forget_pid(self->unwinder, ev->pid);
        s_queue_event(self, WIRE_PROC_EXIT, proc, 0, ts);
        break;
    }
    case SKY_EV_MAPS:
        /* The walker met code in no mapping it knows (dlopen): read the
         * mappings now, which gives the new library its table. */
        proc = proctab_find(self->procs, ev->pid);
        if (proc && !proc->exited_ms)
            proctab_load_maps(self->procs, proc);
        break;
    default:
        log_warn_rl(&self->bad_sample_rl, "unknown process event type %u",
                    ev->type);
        break;
    }
    return 0;
}

static int s_events_ready(loop_t *loop, int fd, void *arg)
{
    collector_t *self = arg;

    /* Read the new processes' /proc entries now, while they run; the
     * events themselves go out with the next publish. */
    s_update_clock_offset(self);
    probes_consume_events(self->probes);
    s_arm_rescans(self);
    return 0;
}

/* ------------------------------------------------------------- samples */

/* User addresses (leaf first) to (object, offset) frames for the batcher;
 * returns how many are kept. A frame no mapping covers is junk of a
 * frame-pointer walk (a table walk never yields one): the stack is cut
 * there and keeps its valid frames, never an "[unknown] 0x..." frame per
 * address. Not the leaf, the interrupted pc itself: a miss there is a
 * new mapping (dlopen), which is re-read at once. */
static uint32_t s_resolve_user(collector_t *self, proc_t *proc,
                               const uint64_t *addrs, uint32_t n,
                               wire_uframe_t *uframes)
{
    uint32_t kept = n;

    for (uint32_t i = 0; i < n; i++) {
        uint64_t addr = addrs[i];
        object_t *obj =
            !proc ? NULL
            : i == 0 ? proctab_resolve_pc(self->procs, proc, addr,
                                          &uframes[i].offset)
                     : proctab_resolve(self->procs, proc, addr,
                                       &uframes[i].offset);
        if (!obj && proc && i > 0) {
            kept = i;
            s_add(self, M_USER_FRAMES_CUT, n - i);
            break;
        }
        if (obj && batcher_note_object(self->batcher, obj) == 0) {
            uframes[i].object = obj->id;
        } else {
            uframes[i].object = WIRE_NO_OBJECT;
            uframes[i].offset = addr;
        }
    }
    if (proc)
        batcher_note_proc(self->batcher, proc);
    return kept;
}

static int s_on_sample(void *ctx, void *data, size_t size)
{
    collector_t *self = ctx;
    const struct sky_sample *s = data;
    wire_uframe_t uframes[SKY_MAX_FRAMES];
    const char *task_ids[COLLECTOR_MAX_SAMPLE_TASKS];
    char comm[17];

    s_add(self, M_SAMPLES_RECEIVED, 1);
    if (size < sizeof(*s) || s->nk > SKY_MAX_FRAMES ||
        s->nu > SKY_MAX_FRAMES ||
        size < sizeof(*s) + ((size_t)s->nk + s->nu) * sizeof(uint64_t)) {
        s_add(self, M_SAMPLES_INVALID, 1);
        log_warn_rl(&self->bad_sample_rl, "malformed sample record (%zu bytes)",
                    size);
        return 0;
    }
    memcpy(comm, s->comm, 16);
    comm[16] = '\0';
    if (self->exec_pid == s->tgid && s->ts_ns >= self->exec_ts) {
        s_apply_exec(self, s->tgid, self->exec_comm, self->exec_path,
                     self->exec_ts);
        self->exec_pid = 0;
    }
    proc_t *proc = proctab_get(self->procs, s->tgid, comm);
    if (self->unwinder && proc && proc->unw_exec_ns &&
        s->ts_ns >= proc->unw_exec_ns &&
        (!proc->unw_ready_ns || s->ts_ns < proc->unw_ready_ns))
        s_add(self, M_UNW_SAMPLES_UNREADY, 1);
    uint32_t nu = s_resolve_user(self, proc,
                                 (const uint64_t *)&s->frames[s->nk], s->nu,
                                 uframes);
    uint32_t ntasks = 0;
    if (s->flags & SKY_F_TASK)
        ntasks = activetasks_for_pid(self->tasks, s->tgid, task_ids,
                               COLLECTOR_MAX_SAMPLE_TASKS);
    batcher_sample_t bs = {
        .pid = s->tgid,
        .tid = s->tid,
        .cpu = s->cpu,
        .kind = WIRE_KIND_ON_CPU,
        .ts_ns = s->ts_ns + (uint64_t)self->mono_to_real_ns,
        .comm = comm,
        .nk = s->nk,
        .nu = nu,
        .kframes = (const uint64_t *)s->frames,
        .uframes = uframes,
        .ntasks = ntasks,
        .tasks = task_ids,
        .count = 1,
        .weight_ns = s->weight_ns,
    };
    if (batcher_add(self->batcher, &bs) < 0)
        s_add(self, M_SAMPLES_DROPPED_USER, 1);
    return 0;
}

/* One drained off-CPU aggregate: the same path to the batcher as an
 * on-CPU sample, with the switch count and the time off CPU as weight. */
static void s_on_offcpu(void *arg, const offcpu_sample_t *s)
{
    collector_t *self = arg;
    wire_uframe_t uframes[SKY_MAX_FRAMES];
    const char *task_ids[COLLECTOR_MAX_SAMPLE_TASKS];
    uint32_t nu = s->nu < SKY_MAX_FRAMES ? s->nu : SKY_MAX_FRAMES;
    uint32_t nk = s->nk < SKY_MAX_FRAMES ? s->nk : SKY_MAX_FRAMES;

    proc_t *proc = proctab_get(self->procs, s->pid, s->comm);
    nu = s_resolve_user(self, proc, s->uaddrs, nu, uframes);
    batcher_sample_t bs = {
        .pid = s->pid,
        .tid = s->tid,
        .cpu = s->cpu,
        .kind = WIRE_KIND_OFF_CPU,
        .ts_ns = s->first_ns + (uint64_t)self->mono_to_real_ns,
        .comm = s->comm,
        .nk = nk,
        .nu = nu,
        .kframes = s->kframes,
        .uframes = uframes,
        .ntasks = activetasks_target_for_pid(self->tasks, WIRE_TARGET_OFF_CPU,
                                             s->pid, task_ids,
                                             COLLECTOR_MAX_SAMPLE_TASKS),
        .tasks = task_ids,
        .count = s->count,
        .weight_ns = s->total_ns,
    };
    if (batcher_add(self->batcher, &bs) < 0)
        s_add(self, M_SAMPLES_DROPPED_USER, 1);
}

static int s_emit_net(void *arg, const char *topic, wire_net_batch_t *batch)
{
    collector_t *self = arg;

    if (!self->sink.net_batch)
        return -1;
    return self->sink.net_batch(self->sink.arg, topic, batch);
}

static int s_emit_batch(void *arg, const char *topic, wire_raw_batch_t *batch)
{
    collector_t *self = arg;

    if (!self->sink.raw_batch)
        return -1;
    return self->sink.raw_batch(self->sink.arg, topic, batch);
}

/* Consumes both rings into the batcher; publishes the batches and the
 * queued process events when publish_now, when publish_interval has
 * passed, or when a batch is full. Publishing less often than draining
 * sends fewer, larger messages: every message costs a wakeup in the
 * broker and in each consumer, which dominates the pipeline's idle cost. */
static void s_unwind_resync(void *arg, uint32_t pid)
{
    collector_t *self = arg;
    proc_t *proc = proctab_find(self->procs, pid);

    if (proc) {
        unwinder_sync(self->unwinder, proc);
        s_unwind_note_ready(self, proc);
    } else {
        unwinder_forget(self->unwinder, pid);
    }
}

static void s_unwind_work(collector_t *self, uint64_t budget_ns)
{
    if (self->unwinder)
        unwinder_work(self->unwinder, budget_ns, s_unwind_resync, self);
}

static int s_drain(collector_t *self, bool publish_now)
{
    batcher_flush_stats_t fs = { 0 };
    uint64_t now_ms = now_mono_ms();
    /* Half a drain of slack, so timer jitter does not push a publish to
     * the next drain. */
    uint64_t due_ms = self->last_publish_ms + self->opts.publish_interval_ms;
    uint64_t slack_ms = self->opts.drain_interval_ms / 2;

    s_update_clock_offset(self);
    /* Events first: a process that started since the last drain gets its
     * entry (and exec-time mappings) before its samples are resolved. */
    probes_consume_events(self->probes);
    probes_consume_samples(self->probes);
    offcpu_drain(self->offcpu);
    netcap_drain(self->netcap);
    if (publish_now || now_ms + slack_ms >= due_ms ||
        batcher_pending(self->batcher) >= self->opts.max_batch_samples) {
        batcher_flush(self->batcher, s_emit_batch, self, &fs);
        s_flush_events(self);
        netcap_flush(self->netcap);
        self->last_publish_ms = now_ms;
        s_add(self, M_BATCHES, fs.batches);
        s_add(self, M_STACKS, fs.stacks);
        s_add(self, M_ON_CPU_PUBLISHED, fs.on_cpu);
        s_add(self, M_ON_CPU_UNPUBLISHED, fs.on_cpu_unpublished);
        s_add(self, M_PUBLISH_ERRORS, fs.emit_errors);
        /* Reading the kernel's counters costs syscalls: once a publish. */
        s_sync_stats(self);
    }
    /* Execs handled just now scheduled rescans: time them. */
    s_arm_rescans(self);
    s_unwind_work(self, COLLECTOR_UNWIND_DRAIN_BUDGET_NS);
    return 0;
}

int collector_drain(collector_t *self)
{
    return s_drain(self, true);
}

static int s_drain_timer(loop_t *loop, void *arg)
{
    return s_drain(arg, false);
}

static int s_samples_ready(loop_t *loop, int fd, void *arg)
{
    /* Only fires when the kernel side found the ring filling up. */
    return s_drain(arg, false);
}

static int s_rescan_timer(loop_t *loop, void *arg)
{
    collector_t *self = arg;

    s_arm_rescans(self);
    /* Right after an exec: load the tables the worker finished. */
    s_unwind_work(self, COLLECTOR_UNWIND_RESCAN_BUDGET_NS);
    return 0;
}

/* --------------------------------------------------------------- tasks */

static void s_reconcile_tasks(collector_t *self)
{
    const uint32_t *pids;

    /* Off-CPU time gathered so far belongs to the tasks active while it
     * was gathered: drain it before they change. */
    if (offcpu_attached(self->offcpu))
        offcpu_drain(self->offcpu);
    int changed = activetasks_refresh_targets(self->tasks, now_wall_ms());
    if (changed & ACTIVETASKS_ON_CPU_CHANGED) {
        size_t n = activetasks_active_pids(self->tasks, &pids);
        probes_set_task_pids(self->probes, pids, n);
        s_set(self, M_TASK_PIDS, n);
        log_info("on-CPU tasks now target %zu process%s", n,
                 n == 1 ? "" : "es");
    }
    if (changed & ACTIVETASKS_OFF_CPU_CHANGED) {
        size_t n = activetasks_target_pids(self->tasks, WIRE_TARGET_OFF_CPU,
                                           &pids);
        /* profiling.active off means no profiling probes at all. */
        if (!self->opts.active)
            n = 0;
        offcpu_set_pids(self->offcpu, pids, n);
        s_set(self, M_OFFCPU_PIDS, n);
        s_set(self, M_OFFCPU_ATTACHED, offcpu_attached(self->offcpu));
        log_info("off-CPU tasks now target %zu process%s", n,
                 n == 1 ? "" : "es");
    }
    if (changed & ACTIVETASKS_NETWORK_CHANGED) {
        size_t n = activetasks_target_pids(self->tasks, WIRE_TARGET_NETWORK,
                                           &pids);
        if (!self->opts.active)
            n = 0;
        /* Events of the processes leaving go out with the old set. */
        netcap_drain(self->netcap);
        netcap_set_pids(self->netcap, pids, n);
        s_set(self, M_NET_PIDS, n);
        s_set(self, M_NET_ATTACHED, netcap_attached(self->netcap));
        log_info("network tasks now target %zu process%s", n,
                 n == 1 ? "" : "es");
    }
}

int collector_apply_tasks(collector_t *self, const wire_task_set_t *set)
{
    int rc = activetasks_apply(self->tasks, set, now_wall_ms());

    if (rc == 1) {
        s_add(self, M_TASK_SETS_STALE, 1);
        return 1;
    }
    if (rc < 0)
        return -1;
    s_add(self, M_TASK_SETS_APPLIED, 1);
    s_reconcile_tasks(self);
    return 0;
}

void collector_note_bad_tasks(collector_t *self)
{
    s_add(self, M_TASK_SETS_INVALID, 1);
}

static int s_housekeep(loop_t *loop, void *arg)
{
    collector_t *self = arg;
    uint64_t lost = self->values[M_EVENTS_LOST_KERNEL];
    bool check_alive = ++self->housekeep_rounds %
                       COLLECTOR_ALIVE_CHECK_EVERY == 0 ||
                       lost != self->events_lost_at_sweep;

    if (check_alive)
        self->events_lost_at_sweep = lost;
    /* Tasks start and end with the clock, not only with messages. */
    s_reconcile_tasks(self);
    proctab_gc(self->procs, now_mono_ms(), check_alive);
    s_sync_stats(self);
    return 0;
}

/* symbolizer.debug_dirs is colon separated: the first root is the one
 * build-id paths live under. */
static const char *s_first_debug_dir(const char *dirs, char *out, size_t size)
{
    const char *d = dirs ? dirs : "";

    snprintf(out, size, "%.*s", (int)strcspn(d, ":"), d);
    return out;
}

/* Every live process again, as an alive event: a receiver that started
 * after us or lost messages (the uplink builds its process table from
 * these) learns the whole table within one interval. */
static int s_republish(loop_t *loop, void *arg)
{
    collector_t *self = arg;
    uint64_t ts = now_wall_ms() * 1000000ull;
    size_t cursor = 0;
    proc_t *proc;

    while ((proc = proctab_next(self->procs, &cursor))) {
        if (proc->exited_ms)
            continue;
        procfacts_stat_t st = { 0 };
        procfacts_stat(NULL, proc->pid, &st);
        s_queue_event(self, WIRE_PROC_ALIVE, proc, st.ppid, ts);
    }
    s_flush_events(self);
    return 0;
}

/* ----------------------------------------------------------- lifecycle */

/* One running process: an entry and a start event (and, with the
 * unwinder, its mappings now, so its first samples are walked with the
 * tables). */
static int s_scan_one(void *arg, uint32_t pid)
{
    collector_t *self = arg;
    proc_t *proc = proctab_get(self->procs, pid, NULL);
    procfacts_stat_t st;

    if (!proc || proc->exited_ms)
        return 0;
    if (self->unwinder && !proc->maps_loaded)
        proctab_load_maps(self->procs, proc);
    procfacts_stat(NULL, pid, &st);
    s_queue_event(self, WIRE_PROC_START, proc, st.ppid,
                  now_wall_ms() * 1000000ull);
    return 0;
}

/* Every process already running gets an entry and a start event, so
 * consumers learn about processes that predate the collector. */
static void s_scan_proc(collector_t *self)
{
    if (procfacts_each_pid(NULL, s_scan_one, self) == 0)
        log_warn("cannot list /proc: %s", strerror(errno));
    s_flush_events(self);
}

static int s_unwind_ready(loop_t *loop, int fd, void *arg)
{
    collector_t *self = arg;

    /* Process events first: loading a big table into the kernel holds the
     * loop for 5-50 ms, and a process that exec'd meanwhile should get its
     * entry before that, not after. */
    s_update_clock_offset(self);
    probes_consume_events(self->probes);
    s_arm_rescans(self);
    s_unwind_work(self, COLLECTOR_UNWIND_DRAIN_BUDGET_NS);
    return 0;
}

/* proctab hooks: the kernel's mapping tables follow the process table. */
static void s_unwind_maps_changed(void *arg, const proc_t *proc)
{
    collector_t *self = arg;

    unwinder_sync(self->unwinder, proc);
    s_unwind_note_ready(self, proctab_find(self->procs, proc->pid));
}

static void s_unwind_gone(void *arg, uint32_t pid)
{
    collector_t *self = arg;

    unwinder_forget(self->unwinder, pid);
}

static int s_unwind_recorded(void *arg, uint32_t pid, proctab_vma_t *out,
                             size_t max)
{
    collector_t *self = arg;

    return unwinder_recorded(self->unwinder, pid, out, max);
}

collector_t *collector_new(const collector_options_t *opts, loop_t *loop,
                           stats_t *stats, const collector_sink_t *sink,
                           char *err, size_t errlen)
{
    collector_t *self = NULL;
    char debug_dir[512];

    if (collector_options_validate(opts, err, errlen) < 0)
        return NULL;
    self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->opts = *opts;
    self->loop = loop;
    self->sink = *sink;
    self->drain_timer = self->housekeep_timer = self->rescan_timer = -1;
    self->republish_timer = -1;
    self->bad_sample_rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);
    for (int m = 0; stats && m < M_COUNT; m++)
        self->metrics[m] =
            s_metric_defs[m].gauge
                ? stats_gauge(stats, s_metric_defs[m].name, "",
                              s_metric_defs[m].help)
                : stats_counter(stats, s_metric_defs[m].name, "",
                                s_metric_defs[m].help);
    self->objects = objreg_new();
    self->procs = self->objects
                      ? proctab_new(self->objects, opts->max_procs,
                                    opts->proc_grace_ms)
                      : NULL;
    self->batcher = batcher_new(opts->max_batch_samples, 0);
    self->tasks = activetasks_new();
    offcpu_options_t offcpu_opts;
    offcpu_options_default(&offcpu_opts);
    offcpu_opts.sample_every = opts->offcpu_sample_every;
    offcpu_opts.long_ns = opts->offcpu_long_ns;
    self->offcpu = offcpu_new(&offcpu_opts, s_on_offcpu, self);
    netcap_options_t net_opts;
    netcap_options_default(&net_opts);
    net_opts.capture_bytes = opts->net_capture_bytes;
    net_opts.ring_bytes = opts->net_ringbuf_size;
    self->netcap = netcap_new(&net_opts, loop, s_emit_net, self);
    self->event_arena = arena_new(4u << 20);
    self->events = calloc(COLLECTOR_EVENTS_PER_MSG, sizeof(*self->events));
    self->symcheck = symcheck_new(s_first_debug_dir(opts->debug_dir, debug_dir,
                                                    sizeof(debug_dir)));
    if (!self->procs || !self->batcher || !self->tasks || !self->offcpu ||
        !self->netcap ||
        !self->event_arena || !self->events || !self->symcheck) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s_update_clock_offset(self);
    self->probes = probes_new(opts, s_on_sample, s_on_event, self, err,
                              errlen);
    if (!self->probes)
        goto fail;
    unwinder_maps_t umaps;
    if (probes_unwind_maps(self->probes, opts, &umaps) == 0) {
        self->unwinder = unwinder_new(&umaps, NULL);
        if (!self->unwinder) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (loop_add_fd(loop, unwinder_fd(self->unwinder), s_unwind_ready,
                        self) < 0) {
            snprintf(err, errlen, "cannot register the unwinder with the loop");
            goto fail;
        }
        proctab_hooks_t hooks = { s_unwind_maps_changed, s_unwind_gone, self,
                                  s_unwind_recorded };
        proctab_set_hooks(self->procs, &hooks);
        offcpu_set_unwinder(self->offcpu, &umaps, opts->unwind_max_frames);
    }
    s_set(self, M_UNWINDER_DWARF, self->unwinder != NULL);
    /* Probes first, scan second: a process started in between is seen by
     * the exec/fork probes, not missed. */
    if (opts->scan_proc)
        s_scan_proc(self);
    if (loop_add_fd(loop, probes_samples_fd(self->probes), s_samples_ready,
                    self) < 0 ||
        loop_add_fd(loop, probes_events_fd(self->probes), s_events_ready,
                    self) < 0) {
        snprintf(err, errlen, "cannot register the ring buffers with the loop");
        goto fail;
    }
    self->drain_timer = loop_add_timer(loop, opts->drain_interval_ms,
                                       s_drain_timer, self);
    self->housekeep_timer = loop_add_timer(loop, COLLECTOR_HOUSEKEEP_MS,
                                           s_housekeep, self);
    self->rescan_timer = loop_add_timer(loop, COLLECTOR_RESCAN_IDLE_MS,
                                        s_rescan_timer, self);
    if (opts->proc_republish_ms)
        self->republish_timer = loop_add_timer(loop, opts->proc_republish_ms,
                                               s_republish, self);
    if (self->drain_timer < 0 || self->housekeep_timer < 0 ||
        self->rescan_timer < 0 ||
        (opts->proc_republish_ms && self->republish_timer < 0)) {
        snprintf(err, errlen, "cannot register the collector's timers");
        goto fail;
    }
    s_set(self, M_SAMPLER_TICK,
          probes_sampler(self->probes) == COLLECTOR_SAMPLER_TICK);
    s_set(self, M_SAMPLER_HOST_PERIOD,
          opts->host_wide ? probes_host_period_ns(self->probes) : 0);
    s_sync_stats(self);
    if (!opts->active)
        log_info("profiling.active is false: process events only, no "
                 "sampling; process events via %s",
                 probes_flavour_name(probes_flavour(self->probes)));
    else
        log_info("sampling %d CPU%s on the %s (host-wide %s); process "
                 "events via %s; %zu processes",
                 probes_ncpus(self->probes),
                 probes_ncpus(self->probes) == 1 ? "" : "s",
                 probes_sampler(self->probes) == COLLECTOR_SAMPLER_TICK
                     ? "scheduler tick" : "perf_event CPU clock",
                 opts->host_wide ? "on" : "off",
                 probes_flavour_name(probes_flavour(self->probes)),
                 proctab_count(self->procs));
    return self;
fail:
    collector_destroy(&self);
    return NULL;
}

void collector_destroy(collector_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    collector_t *self = *self_p;
    if (self->probes) {
        loop_remove_fd(self->loop, probes_samples_fd(self->probes));
        loop_remove_fd(self->loop, probes_events_fd(self->probes));
    }
    if (self->drain_timer >= 0)
        loop_remove_timer(self->loop, self->drain_timer);
    if (self->housekeep_timer >= 0)
        loop_remove_timer(self->loop, self->housekeep_timer);
    if (self->rescan_timer >= 0)
        loop_remove_timer(self->loop, self->rescan_timer);
    if (self->republish_timer >= 0)
        loop_remove_timer(self->loop, self->republish_timer);
    offcpu_destroy(&self->offcpu);
    netcap_destroy(&self->netcap);
    if (self->procs)
        proctab_set_hooks(self->procs, NULL);
    if (self->unwinder)
        loop_remove_fd(self->loop, unwinder_fd(self->unwinder));
    unwinder_destroy(&self->unwinder);
    probes_destroy(&self->probes);
    batcher_destroy(&self->batcher);
    /* The process table holds references into the object registry. */
    proctab_destroy(&self->procs);
    objreg_destroy(&self->objects);
    activetasks_destroy(&self->tasks);
    arena_destroy(&self->event_arena);
    free(self->events);
    symcheck_destroy(&self->symcheck);
    free(self);
    *self_p = NULL;
}

void collector_info(const collector_t *self, collector_info_t *out)
{
    memset(out, 0, sizeof(*out));
    out->samples_received = self->values[M_SAMPLES_RECEIVED];
    out->samples_invalid = self->values[M_SAMPLES_INVALID];
    out->samples_dropped_kernel = self->values[M_SAMPLES_DROPPED_KERNEL];
    out->samples_dropped_user = self->values[M_SAMPLES_DROPPED_USER];
    out->batches_published = self->values[M_BATCHES];
    out->stacks_published = self->values[M_STACKS];
    out->publish_errors = self->values[M_PUBLISH_ERRORS];
    out->proc_events = self->values[M_PROC_EVENTS];
    out->proc_events_lost_kernel = self->values[M_EVENTS_LOST_KERNEL];
    out->maps_refreshes = self->values[M_MAPS_REFRESHES];
    out->addresses_unmapped = self->values[M_ADDR_UNMAPPED];
    out->processes = self->values[M_PROCESSES];
    out->objects = self->values[M_OBJECTS];
    out->task_sets_applied = self->values[M_TASK_SETS_APPLIED];
    out->task_sets_stale = self->values[M_TASK_SETS_STALE];
    out->task_sets_invalid = self->values[M_TASK_SETS_INVALID];
    out->task_pids = self->values[M_TASK_PIDS];
    out->offcpu_pids = self->values[M_OFFCPU_PIDS];
    out->offcpu_attached = offcpu_attached(self->offcpu);
    out->offcpu_samples = self->values[M_OFFCPU_SAMPLES];
    out->offcpu_switches = self->values[M_OFFCPU_SWITCHES];
    out->net_pids = self->values[M_NET_PIDS];
    out->net_attached = netcap_attached(self->netcap);
    out->net_published = self->values[M_NET_PUBLISHED];
    out->probe_flavour = probes_flavour(self->probes);
    out->sampler = probes_sampler(self->probes);
    out->perf_events = probes_perf_events(self->probes);
    out->ncpus = probes_ncpus(self->probes);
    out->unwind_dwarf = self->unwinder != NULL;
    out->unwind_walks = self->values[M_UNW_WALKS];
    out->unwind_fp_walks = self->values[M_UNW_FP_WALKS];
    out->unwind_frames_dwarf = self->values[M_UNW_FRAMES_CFI];
    out->unwind_frames_fp = self->values[M_UNW_FRAMES_FP];
    out->unwind_truncated = self->values[M_UNW_TRUNCATED];
    out->unwind_deep = self->values[M_UNW_DEEP];
    out->unwind_tables_built = self->values[M_UNW_TABLES_BUILT];
}

int collector_has_process(const collector_t *self, uint32_t pid)
{
    return proctab_find(self->procs, pid) != NULL;
}
