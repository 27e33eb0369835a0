/* Records shared by bpf/profile.bpf.c and the collector (user space).
 *
 * Only __u32/__u64 so the same layout compiles against vmlinux.h in BPF and
 * <linux/types.h> in user space; every struct is naturally aligned with no
 * implicit padding, so both compilers agree byte for byte. */
#ifndef SKYPROF_BPF_PROFILE_H
#define SKYPROF_BPF_PROFILE_H

#ifndef __VMLINUX_H__     /* user space; BPF gets the types from vmlinux.h */
#include <linux/types.h>
#endif

/* perf_event_max_stack defaults to 127; deeper stacks are cut there. */
#define SKY_MAX_FRAMES 127
#define SKY_COMM_WORDS 2 /* 16 bytes of comm, TASK_COMM_LEN */
#define SKY_EXEC_PATH_WORDS 32 /* 256 bytes of an exec's file name */

/* sky_sample.flags */
#define SKY_F_TASK       0x1u  /* the process is a target of an active task */
#define SKY_F_HOST       0x2u  /* kept by the decimated host-wide sampler */
#define SKY_F_KSTACK_ERR 0x4u  /* bpf_get_stack failed for the kernel part */
#define SKY_F_USTACK_ERR 0x8u  /* ... for the user part */
#define SKY_F_TRUNCATED  0x10u /* the user walk stopped early: a return
                                  address outside every executable mapping,
                                  an unreadable frame, or max depth */
#define SKY_F_DWARF      0x20u /* the user stack was walked with the
                                  unwind tables (else frame pointers) */

/* Values of the task pid map (tgid -> flags). */
#define SKY_PID_ON_CPU 0x1u

/* Indices of the per-CPU counter array. */
#define SKY_CNT_RING_FULL   0   /* samples lost: sample ring full */
#define SKY_CNT_EVENTS_LOST 1   /* process events lost: event ring full */
#define SKY_CNT_SAMPLES     2   /* samples written */
/* The .eh_frame walker (bpf/unwind.bpf.h); see docs/unwinding.md. */
#define SKY_CNT_UNW_WALKS       3  /* user stacks walked with the tables */
#define SKY_CNT_UNW_FP_WALKS    4  /* user stacks left to bpf_get_stack
                                      (process without mapping table) */
#define SKY_CNT_UNW_FRAMES_CFI  5  /* frames found through a table row */
#define SKY_CNT_UNW_FRAMES_FP   6  /* frames found through frame pointers
                                      (object without table: JIT, anon) */
#define SKY_CNT_UNW_TRUNCATED   7  /* walks ended at a bad return address or
                                      an unreadable frame */
#define SKY_CNT_UNW_DEEP        8  /* walks cut at the depth limit */
#define SKY_CNT_UNW_TABLE_MISS  9  /* frames whose object's table is not (or
                                      no longer) loaded: frame pointers */
/* Walks of a process without entry (not read by the collector yet: a
 * process just exec'd), through the mappings the walk finds itself with
 * bpf_find_vma (bpf/unwind.bpf.h, "unready"); on-CPU samples only. */
#define SKY_CNT_UNW_UNREADY     10 /* such walks */
#define SKY_CNT_UNW_VMA_LOOKUPS 11 /* bpf_find_vma calls made by them */
#define SKY_CNT_UNW_VMA_TABLES  12 /* ... that found a mapping whose file
                                      has a table (unw_files) */
#define SKY_CNT_UNW_VMA_MISSES  13 /* ... that found a mapping whose file
                                      has none (frame pointers there) */
#define SKY_CNT_UNW_VMA_FAILED  14 /* ... refused (mmap_lock busy, one
                                      lookup per interrupt), no mapping,
                                      not executable, or the record full */
#define SKY_CNT_MAX         15

/* One on-CPU sample. Variable length: nk kernel frames then nu user frames
 * follow the header, leaf first, so short stacks use little ring space. */
struct sky_sample {
    __u64 ts_ns;      /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
    __u64 weight_ns;  /* CPU time this sample stands for */
    __u32 tgid;
    __u32 tid;
    __u32 cpu;
    __u32 flags;      /* SKY_F_* */
    __u32 nk;
    __u32 nu;
    __u64 comm[SKY_COMM_WORDS];
    __u64 frames[];   /* nk kernel addresses, then nu user addresses */
};

/* ------------------------------------------------- .eh_frame unwinder */
/* Maps written by collector/unwinder.c, read by bpf/unwind.bpf.h.
 *
 * unw_rows: one array of rows for every loaded object; an object's table
 * is the contiguous run [first, first + count), sorted by pc. 8 bytes:
 * pc is the object's link-time address (objects whose code lies above
 * 4 GiB get no table), offsets are in units of 8 bytes. */
struct sky_unw_row {
    __u32 pc;
    __u16 cfa_off8;   /* two's complement __s16: CFA offset / 8 */
    __u8 rbp_off8;    /* two's complement __s8: RBP offset / 8, or the
                         PLT (RIP & 15) threshold */
    __u8 kinds;       /* cfa kind (bits 0-2) | rbp kind << 3 | rbx rule << 5 */
};

/* CFA and RBP rule kinds (the values of lib/unwind_table.h). */
#define SKY_UNW_CFA_NONE   0
#define SKY_UNW_CFA_RSP    1
#define SKY_UNW_CFA_RBP    2
#define SKY_UNW_CFA_PLT    3
#define SKY_UNW_CFA_SIGNAL 4
#define SKY_UNW_CFA_RBX    5
#define SKY_UNW_RBP_SAME    0
#define SKY_UNW_RBP_AT_CFA  1
#define SKY_UNW_RBP_AT_RSP  2
#define SKY_UNW_RBP_UNKNOWN 3
/* RBX rules: 0 not saved, 1..6 at CFA - 8 * (rule + 1), 7 lost. */
#define SKY_UNW_RBX_SAME    0
#define SKY_UNW_RBX_UNKNOWN 7
#define SKY_UNW_KINDS(cfa, rbp, rbx) ((cfa) | (rbp) << 3 | (rbx) << 5)

/* unw_tables: slot -> where the object's rows are. gen changes whenever
 * the slot is given to another object, so a mapping that still names an
 * evicted table misses (frame pointers, counted) instead of using
 * another object's rows.
 *
 * Page index: the code from min_pc on is cut into pages of 2^shift
 * bytes; nidx __u32 entries stored right after the rows (two per row
 * slot, in the row's two 32-bit halves) give for each page the row (from
 * first) covering its start, so a lookup searches only the rows between
 * two entries. nidx 0: no index, the whole table is searched. */
struct sky_unw_table {
    __u32 first;
    __u32 count;      /* rows (the index follows them) */
    __u32 gen;
    __u32 nidx;
    __u32 min_pc;
    __u32 shift;
};

/* One executable mapping of a process: link-time pc = pc - bias.
 * table 0: no table (JIT, anonymous code, not loaded): frame pointers. */
struct sky_unw_map {
    __u64 start;
    __u64 end;
    __u64 bias;
    __u32 table;
    __u32 gen;
};

/* Executable mappings of one process, sorted by start (unw_procs, an
 * array indexed by the slot unw_pids gives for a tgid). */
#define SKY_UNW_MAPS_MAX 128
struct sky_unw_proc {
    __u32 nmaps;
    __u32 pad;
    struct sky_unw_map maps[SKY_UNW_MAPS_MAX];
};

/* unw_files: a file's identity as the kernel sees it (the inode of the
 * mapping's vm_file: s_dev in the kernel's encoding, MAJOR << 20 | MINOR,
 * and i_ino; dev 0 ino 0 is the vdso) -> its table and how a mapping of
 * it turns a pc into the table's link-time pc: for the executable
 * PT_LOAD segment holding the mapping's file offset pgoff (off <= pgoff
 * < end), bias = start - pgoff + delta, delta = p_offset - p_vaddr
 * (mod 2^64). Written by the collector next to the tables. */
#define SKY_UNW_FILE_SEGS 4
struct sky_unw_file_key {
    __u64 dev;
    __u64 ino;
};
struct sky_unw_file {
    __u32 table;
    __u32 gen;
    __u32 nsegs;
    __u32 pad;
    struct {
        __u64 off, end, delta;
    } segs[SKY_UNW_FILE_SEGS];
};

/* unw_vmas: tgid -> the executable mappings walks of a process without
 * entry found (bpf_find_vma), sorted by start: proc.maps[i] is what the
 * walker uses, vma[i] where it comes from, for the collector to resolve
 * the samples of a process gone before it read /proc/PID/maps. */
#define SKY_UNW_VMAS_MAX 16
#define SKY_UNW_VMA_ANON 0  /* no file: frame pointers */
#define SKY_UNW_VMA_FILE 1
#define SKY_UNW_VMA_VDSO 2
struct sky_unw_vma {
    __u64 pgoff;      /* file offset of start, in bytes */
    __u64 dev;        /* as in sky_unw_file_key */
    __u64 ino;
    __u32 kind;       /* SKY_UNW_VMA_* */
    __u32 pad;
};
struct sky_unw_vmas {
    struct sky_unw_proc proc;     /* nmaps <= SKY_UNW_VMAS_MAX */
    struct sky_unw_vma vma[SKY_UNW_VMAS_MAX];
};

/* Why a walk ended (sky_unw_walk.end). */
#define SKY_UNW_END_NONE  0  /* still going */
#define SKY_UNW_END_ROOT  1  /* the thread's first frame: a clean end */
#define SKY_UNW_END_BAD   2  /* bad address or unreadable frame */
#define SKY_UNW_END_DEEP  3  /* a valid frame past unw_max_frames */

/* The walk's registers and tallies. */
struct sky_unw_walk {
    __u64 pc, sp, bp, bx;
    __u32 slot;
    __u32 n;           /* frames written to unw_frames */
    __u32 end;         /* SKY_UNW_END_* */
    __u32 pc_is_ra;    /* pc is a return address: look up pc - 1 */
    __u32 bp_ok;       /* bp holds this frame's RBP */
    __u32 bx_ok;       /* bx holds this frame's RBX */
    __u32 cfi, fp, miss;
    __u32 leaf_unmapped;   /* the leaf is in no known mapping: the
                              process mapped code since (dlopen) */
    __u32 map_i;           /* the last mapping found (tried first) */
    __u32 unready;         /* the process has no entry: mappings from
                              its unw_vmas record and bpf_find_vma */
    __u32 vma_budget;      /* bpf_find_vma calls this walk may still make */
    __u32 vma_lookups, vma_tables, vma_misses, vma_failed;
    __u32 pad;
};

/* The walk in progress: its frames, leaf first, and its state (also the
 * value of the off-CPU walked-stack maps). Kept in a per-CPU map, not on
 * the stack: the verifier tracks stack values from one
 * bpf_loop iteration to the next and would check the step once per depth
 * (past its 1 M instruction budget); map values it does not track, so it
 * checks the step once. */
struct sky_unw_frames {
    __u64 pc[SKY_MAX_FRAMES + 1];   /* a power of two: indices are masked */
    struct sky_unw_walk w;
};

/* sky_proc_event.type */
#define SKY_EV_FORK 1
#define SKY_EV_EXEC 2
#define SKY_EV_EXIT 3
#define SKY_EV_MAPS 4     /* a sample's leaf is in no mapping the walker
                             knows: re-read the mappings (not published) */

/* sky_proc_event.flags */
#define SKY_EVF_MAYBE_THREAD 0x1u /* tracepoint fallback: the fork may be a
                                     thread; user space checks Tgid */

struct sky_proc_event {
    __u64 ts_ns;
    __u32 type;       /* SKY_EV_* */
    __u32 pid;        /* tgid of the process the event is about */
    __u32 ppid;       /* parent tgid (fork), else 0 */
    __u32 flags;
    __u64 comm[SKY_COMM_WORDS];
};

/* An exec event of a flavour that knows the file name execve was given
 * (as given: absolute, relative or /dev/fd/N), cut at
 * SKY_EXEC_PATH_WORDS * 8 - 1 bytes. It names the executable of a process
 * gone before its maps were read. Only these records carry it: fork, exit
 * and maps events (most of the ring) stay 40 bytes, not 296. */
struct sky_proc_exec_event {
    struct sky_proc_event ev;
    __u64 path[SKY_EXEC_PATH_WORDS];
};

/* ------------------------------------------------------------ off-CPU */
/* bpf/offcpu.bpf.c aggregates off-CPU time in the kernel; user space
 * drains the aggregation map (see collector/offcpu.h). Stacks live in two
 * BPF_MAP_TYPE_STACK_TRACE maps, one per generation, so user space can
 * delete the stacks it consumed from the generation no new switch-out
 * writes to. */

/* Indices of the off-CPU per-CPU counter array. */
#define SKY_OFF_CNT_SWITCHES     0 /* off-CPU periods added to the map */
#define SKY_OFF_CNT_START_FULL   1 /* switch-outs lost: start map full */
#define SKY_OFF_CNT_AGG_FULL     2 /* periods lost: aggregation map full */
#define SKY_OFF_CNT_KSTACK_LOST  3 /* kernel stack not stored (collision
                                      or stack map full) */
#define SKY_OFF_CNT_USTACK_LOST  4 /* ... user stack */
#define SKY_OFF_CNT_PREEMPTED    5 /* preempted switch-outs not counted */
#define SKY_OFF_CNT_UNSAMPLED    6 /* short periods left out by sampling
                                      (the sampled ones stand for them) */
#define SKY_OFF_CNT_MAX          7

/* Which periods are recorded (stacks and aggregation): every one of a
 * thread until it had SKY_OFF_KEEP_AFTER_LONG short recorded periods in
 * a row (a new thread, one whose last recorded period was long, at least
 * long_ns, and one whose previous arrival on a CPU was at least long_ns
 * before its wakeup: sleepers, I/O and lock waits switch rarely and are
 * recorded whole), then one in sample_every, drawn at switch-out, each
 * standing for sample_every. The thread's mode byte (off_mode) holds the
 * count of short ones in a row and whether a recorded period is in
 * progress. */
#define SKY_OFF_KEEP_AFTER_LONG 16u
#define SKY_OFF_MODE_SHORT_RUN  0x7fu
#define SKY_OFF_MODE_RECORDING  0x80u

/* A stack id that names no stack (the capture failed). */
#define SKY_OFF_NO_STACK (-1)

/* A recorded period in progress (start map, keyed by tid): from the
 * thread's switch-out to its switch-in, which adds it to the aggregation
 * and deletes it. The stack ids are those captured at switch-out
 * (tp_btf); the kprobe flavour captures at switch-in and leaves them
 * SKY_OFF_NO_STACK here. */
struct sky_off_start {
    __u64 ts_ns;      /* bpf_ktime_get_ns at switch-out */
    __s32 kstack;
    __s32 ustack;
    __u32 tgid;
    __u32 gen;        /* stack map generation the ids belong to */
    __u32 weight;     /* periods this one stands for (1 / probability it
                         was recorded) */
    __u32 pad;
};

/* Aggregation key: one per (thread, stack, generation). */
struct sky_off_key {
    __u32 tgid;
    __u32 tid;
    __s32 kstack;
    __s32 ustack;
    __u32 gen;
    __u32 pad;
};

struct sky_off_val {
    __u64 count;      /* times switched out (and back in) */
    __u64 total_ns;   /* time spent off CPU */
    __u64 first_ns;   /* bpf_ktime_get_ns of the first switch-in */
    __u32 cpu;        /* CPU of the first switch-in */
    __u32 pad;
    __u64 comm[SKY_COMM_WORDS];
};

#endif
