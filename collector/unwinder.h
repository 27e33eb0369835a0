/* The user-space half of the in-kernel .eh_frame unwinder (issue 15):
 * keeps the BPF maps bpf/unwind.bpf.h walks in step with the process
 * table.
 *
 * - Tables: the unwind table of every executable object a followed
 *   process maps (lib/unwind_table.h), built once per object, keyed like
 *   objreg keys objects (build-id, else dev+inode) and shared by every
 *   process that maps it, packed to 8-byte rows (bpf/profile.h) into one
 *   BPF array as a contiguous run. The array and the table slots have
 *   fixed sizes; when either is full the least recently used tables are
 *   evicted (counted) and the mappings that still name them miss in the
 *   kernel (frame pointers, counted there).
 * - Processes: per process, its executable mappings (start, end, load
 *   bias, table slot) sorted for the kernel's binary search, rewritten
 *   whenever proctab re-reads them (exec, the post-exec rescans, a miss)
 *   and removed when the process exits. A process without an entry is
 *   walked with frame pointers (bpf_get_stack).
 *
 * Everything here runs on the collector's loop; nothing blocks on the
 * kernel but the map updates. See docs/unwinding.md. */
#ifndef SKYPROF_COLLECTOR_UNWINDER_H
#define SKYPROF_COLLECTOR_UNWINDER_H

#include <stddef.h>
#include <stdint.h>

#include "bpf/profile.h"
#include "collector/proctab.h"
#include "unwind_table.h"

typedef struct unwinder unwinder_t;

/* The maps of the loaded program (fds stay the caller's) and their sizes
 * (max_entries as loaded). */
typedef struct {
    int pids_fd, procs_fd, tables_fd, rows_fd;
    /* processes without entry (bpf/unwind.bpf.h, unw_files, unw_vmas):
     * files_fd -1 when the walker cannot look mappings up itself */
    int files_fd, vmas_fd, vzero_fd;
    int vmas_on;
    uint32_t max_procs, max_tables, max_rows, max_files, max_vmas;
} unwinder_maps_t;

typedef struct {
    uint64_t tables_built;      /* objects whose table was built */
    uint64_t tables_inline;     /* ... of them built on the loop at first
                                   sight (small objects, no worker wait) */
    uint64_t tables_evicted;    /* tables dropped to make room (LRU) */
    uint64_t tables_refused;    /* too big for the row array, code above
                                   4 GiB, or the file could not be read */
    uint64_t rows_unencodable;  /* rows whose offsets do not fit 8 bytes
                                   (left as "no rule") */
    uint64_t cfi_errors;        /* lib/unwind_table errors, summed */
    uint64_t procs_refused;     /* processes left to frame pointers: no
                                   free process slot */
    uint64_t maps_cut;          /* processes with more executable
                                   mappings than SKY_UNW_MAPS_MAX */
    uint64_t update_errors;     /* BPF map updates that failed */
    uint64_t build_ns;          /* time spent building and loading tables */
    uint64_t rows_written;      /* rows (and index slots) written to unw_rows */
    uint64_t rows_write_ns;     /* time spent writing them */
    uint64_t rows_mmap_errors;  /* unw_rows could not be mapped: rows went
                                   through bpf syscalls (logged once) */
    uint64_t memory_trims;      /* malloc_trim calls after a batch of builds */
    uint64_t rows_mmap;         /* gauge, 1: the last write used the mapping */
    uint64_t files_refused;     /* unw_files full: a file's table not
                                   named for processes without entry */
    uint64_t files;             /* gauge: unw_files entries */
    /* gauges */
    uint64_t tables;            /* tables loaded now */
    uint64_t tables_pending;    /* objects waiting for their table */
    uint64_t rows;              /* rows loaded now */
    uint64_t procs;             /* processes with a mapping table now */
    uint64_t bytes;             /* kernel memory in use: rows, tables,
                                   process entries */
    uint64_t bytes_reserved;    /* kernel memory the maps reserve */
} unwinder_stats_t;

/* NULL when out of memory. */
unwinder_t *unwinder_new(const unwinder_maps_t *maps,
                         const unwind_limits_t *limits);
void unwinder_destroy(unwinder_t **self_p);

/* Writes the process's mapping table. Objects not seen yet are queued
 * for unwinder_work and have no table (frame pointers) until it built
 * them. 0, or -1 when the process is left to frame pointers. */
int unwinder_sync(unwinder_t *self, const proc_t *proc);

/* Tables are built by a worker thread, one at a time, the most recently
 * wanted first (the objects of a process just exec'd before a backlog):
 * building is the slow part (a libc is a few ms, a libLLVM tens) and must
 * not hold up the loop, which reads new processes' mappings while they
 * live. unwinder_fd becomes readable when a build finished; then
 * unwinder_work loads finished builds into the kernel (for about
 * budget_ns at most), starts the next, and calls resync for every
 * process whose entry waited for a table (resync calls unwinder_sync).
 * Returns 1 while builds are queued or running. */
typedef void (*unwinder_resync_fn)(void *arg, uint32_t pid);
int unwinder_fd(const unwinder_t *self);
int unwinder_work(unwinder_t *self, uint64_t budget_ns,
                  unwinder_resync_fn resync, void *arg);

/* 1 when the process's entry is in the kernel and names the table of
 * every file mapping it holds that will get one (none still queued or
 * being built): the readiness the collector measures after exec. */
int unwinder_complete(const unwinder_t *self, uint32_t pid);

/* Removes the process's entry (exit); unknown pids are ignored. */
void unwinder_forget(unwinder_t *self, uint32_t pid);

/* The same, and for a pid without an entry of ours its kernel pid too:
 * the BPF fork hook points a new child at its parent's entry until the
 * collector writes the child's own (bpf/profile.bpf.c, s_unw_inherit). */
void unwinder_forget_pid(unwinder_t *self, uint32_t pid);

/* The mappings the BPF walks recorded for a process without entry (the
 * pid's unw_vmas record: bpf/unwind.bpf.h), sorted by start, dev as in
 * /proc/PID/maps (makedev): the view of a process gone before its
 * mappings were read. The count (up to max), or -1 when there is none. */
int unwinder_recorded(const unwinder_t *self, uint32_t pid,
                      proctab_vma_t *out, size_t max);

void unwinder_stats(const unwinder_t *self, unwinder_stats_t *out);

/* Packs one lib/unwind_table row into the kernel's 8-byte row. 0, or -1
 * when it does not fit (pc at or above 4 GiB); offsets that do not fit
 * make a "no rule" row and return 1. */
int unwinder_pack_row(const unwind_row_t *in, struct sky_unw_row *out);

#endif
