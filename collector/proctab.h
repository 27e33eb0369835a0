/* The collector's process table: what it knows about each process it has
 * seen, chiefly its executable mappings, so every sampled user address can
 * be turned into (object, file offset) while the process's memory layout
 * is still known.
 *
 * Mappings are read from /proc/PID/maps lazily on a process's first sample,
 * right after exec (and re-read a few times shortly after, as ld.so maps
 * the libraries after the exec event), and again when an address misses
 * (with backoff). An exited process keeps its mappings for a grace period
 * so samples drained after its exit still resolve. The table is bounded:
 * when full, the oldest exited processes go first. */
#ifndef SKYPROF_COLLECTOR_PROCTAB_H
#define SKYPROF_COLLECTOR_PROCTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/objreg.h"
#include "cgroup_id.h"

typedef struct proctab proctab_t;

typedef struct {
    uint64_t start, end, pgoff;
    object_t *obj;
} mapping_t;

typedef struct proc {
    uint32_t pid;
    uint32_t nspid;
    uint64_t start_ticks;     /* 0 when unknown */
    char comm[16];
    char container_id[CGROUP_ID_LEN];
    mapping_t *maps;          /* executable mappings sorted by start */
    uint32_t nmaps;
    bool maps_loaded;
    uint64_t next_refresh_ms; /* earliest re-read after a miss */
    uint64_t next_pc_refresh_ms; /* ... after a miss of an executed pc */
    uint32_t refresh_backoff_ms;
    uint64_t exited_ms;       /* 0 while alive */
    uint32_t rescans_left;
    uint64_t next_rescan_ms;
    /* the unwinder's readiness (collector.c): the last exec's kernel
     * stamp (CLOCK_MONOTONIC ns, 0: none seen) and when the process's
     * kernel entry was first complete after it (0: not yet) */
    uint64_t unw_exec_ns, unw_ready_ns;
    bool recorded_tried;      /* the BPF record of its mappings was asked
                                 for (since the last exec) */
    char *exec_path;          /* the last exec's file name made absolute,
                                 or NULL */
    uint32_t ppid;            /* the parent at fork, 0 when not seen */
    /* table bookkeeping */
    struct proc *exit_next;   /* exited processes, oldest first */
    struct proc *rescan_next; /* processes with rescans due */
    bool on_rescan_list;
} proc_t;

/* A parsed line of /proc/PID/maps. */
typedef struct {
    uint64_t start, end, pgoff;
    uint64_t dev;             /* makedev(major, minor) like st_dev */
    uint64_t ino;
    bool exec;
    const char *path;         /* into the line; "" for anonymous */
    size_t path_len;          /* without a " (deleted)" suffix */
} maps_line_t;

/* 0 ok, -1 malformed. The line may end in '\n'. */
int proctab_parse_maps_line(const char *line, maps_line_t *out);

typedef struct {
    uint64_t maps_refreshes;      /* /proc/PID/maps reads */
    uint64_t addresses_unmapped;  /* user addresses no mapping covers */
    uint64_t procs_refused;       /* table full of live processes */
    uint64_t maps_recorded;       /* processes gone before their mappings
                                     were read, resolved with the
                                     kernel's record of them instead */
} proctab_stats_t;

proctab_t *proctab_new(objreg_t *objects, size_t max_procs,
                       uint64_t grace_ms);
void proctab_destroy(proctab_t **self_p);

/* An executable mapping the BPF walker found itself (bpf/unwind.bpf.h,
 * unw_vmas) for a process whose /proc/PID/maps was not read. */
typedef struct {
    uint64_t start, end, pgoff;
    uint64_t dev, ino;        /* makedev(major, minor) like st_dev */
    uint32_t kind;            /* SKY_UNW_VMA_*: 0 anonymous, 1 file, 2 vdso */
} proctab_vma_t;
#define PROCTAB_VMAS_MAX 16

/* Who else follows the mappings (the unwinder's BPF tables): told when a
 * process's mapping list was (re)read or inherited at fork, and when a
 * process exited or left the table; asked (recorded) for the mappings
 * the kernel recorded for a process whose mappings could not be read
 * (gone first): their count, or -1. Any may be NULL. */
typedef struct {
    void (*maps_changed)(void *arg, const proc_t *proc);
    void (*gone)(void *arg, uint32_t pid);
    void *arg;
    int (*recorded)(void *arg, uint32_t pid, proctab_vma_t *out, size_t max);
} proctab_hooks_t;
void proctab_set_hooks(proctab_t *self, const proctab_hooks_t *hooks);

proc_t *proctab_find(proctab_t *self, uint32_t pid);
/* Finds or creates the entry (reading comm, nspid, container id from
 * /proc). A pid without /proc entry is created as already exited, with
 * comm_hint as its name, so its samples are not retried against /proc.
 * NULL when the table is full of live processes or out of memory. */
proc_t *proctab_get(proctab_t *self, uint32_t pid, const char *comm_hint);

/* Process events. */
proc_t *proctab_on_fork(proctab_t *self, uint32_t pid, uint32_t ppid,
                        const char *comm);
/* exe_path: the file name the exec was given (the event's), or NULL/"";
 * kept to name the executable should the process be gone before its
 * mappings are read. */
proc_t *proctab_on_exec(proctab_t *self, uint32_t pid, const char *comm,
                        const char *exe_path);
void proctab_on_exit(proctab_t *self, uint32_t pid);

/* (Re)reads the process's executable mappings. 0 ok, -1 gone (also a
 * zombie, whose maps file reads empty; the entry keeps what it had). */
int proctab_load_maps(proctab_t *self, proc_t *proc);

/* Resolves one user address. Returns the object with *offset set to the
 * file offset (or the raw address for JIT and anonymous code), or NULL
 * with *offset = addr when no mapping covers it. */
object_t *proctab_resolve(proctab_t *self, proc_t *proc, uint64_t addr,
                          uint64_t *offset);

/* The same for a pc the CPU was executing (a sample's leaf): a miss is
 * a new mapping, never junk, and re-reads the mappings without backoff
 * (at most every 50 ms). */
object_t *proctab_resolve_pc(proctab_t *self, proc_t *proc, uint64_t addr,
                             uint64_t *offset);

/* Runs the post-exec rescans that are due; returns ms until the next one,
 * or UINT64_MAX when none is pending. */
uint64_t proctab_run_rescans(proctab_t *self, uint64_t now_ms);
/* Frees exited processes past the grace period and marks processes whose
 * /proc entry vanished (or whose pid was reused) as exited. */
void proctab_gc(proctab_t *self, uint64_t now_ms, bool check_alive);

size_t proctab_count(const proctab_t *self);
void proctab_stats(const proctab_t *self, proctab_stats_t *out);

/* Iteration over every process (for the start-up process events): start
 * with *cursor = 0; NULL at the end; the table must not change meanwhile. */
proc_t *proctab_next(proctab_t *self, size_t *cursor);

#endif
