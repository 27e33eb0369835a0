/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* unwindcost: the BPF cost of one user stack, frame pointers against the
 * .eh_frame walker, for bench/unwindcost.c (driver) and bench/unwindcost.py.
 *
 * A BPF_PROG_TYPE_SYSCALL program the driver runs (BPF_PROG_TEST_RUN)
 * from the bottom of a call chain of known depth: it takes the calling
 * thread's user stack `runs` times in a bpf_loop, each time the way
 * bpf/profile.bpf.c's collect_user_stack takes it, and stores how long
 * each take lasted. Both ways start from the same user registers (the
 * thread's pt_regs at the bpf() syscall), so they walk the same frames:
 *
 * - UC_MODE_FP: bpf_get_task_stack on current, BPF_F_USER_STACK: the
 *   kernel's frame-pointer walk, the same perf_callchain_user that
 *   bpf_get_stack runs in the perf_event program;
 * - UC_MODE_WALK: sky_unwind_user from bpf/unwind.bpf.h, the very walker
 *   the samplers include, over the tables the driver loaded with
 *   collector/unwinder.c;
 * - UC_MODE_NONE: the timing alone (two clock reads and the loop step),
 *   what both figures carry.
 * With args->cold, each take follows a read of 4 MiB (outside the timed
 * part), so it finds the caches as a sampler does after other work. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "profile.h"
#include "unwind.bpf.h"
#include "unwindcost.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, UC_SWEEP_LINES);
    __type(key, __u32);
    __type(value, __u64[8]);          /* one cache line */
} uc_sweep SEC(".maps");

/* Results of the last run, read by the driver through the skeleton. */
__u64 uc_ns[UC_RUNS_MAX];
__s64 uc_frames;              /* frames of the last take, -1: failed */
__u32 uc_end;                 /* the walk's SKY_UNW_END_* */
__u32 uc_cfi, uc_fp;          /* the walk's frames by table, by FP */
__u64 uc_pc[SKY_MAX_FRAMES];  /* the last take's frames, leaf first */
__u64 uc_sink;                /* keeps the sweep's reads */

static long s_sweep_line(__u32 i, void *arg)
{
    __u64 *line = bpf_map_lookup_elem(&uc_sweep, &i);

    if (line)
        *(__u64 *)arg += line[0];
    return 0;
}

static long s_take(__u32 i, void *arg)
{
    struct uc_args *a = arg;
    __u32 mode = a->mode;
    struct task_struct *task = bpf_get_current_task_btf();
    struct sky_unw_frames *fr;
    __u64 t0, t1, sum = 0;
    long n = 0;

    if (a->cold) {
        bpf_loop(UC_SWEEP_LINES, s_sweep_line, &sum, 0);
        uc_sink += sum;
    }
    t0 = bpf_ktime_get_ns();
    if (mode == UC_MODE_FP) {
        n = bpf_get_task_stack(task, uc_pc, sizeof(uc_pc), BPF_F_USER_STACK);
        n = n < 0 ? -1 : (long)((__u64)n >> 3);
    } else if (mode == UC_MODE_WALK) {
        fr = sky_unwind_user((struct pt_regs *)bpf_task_pt_regs(task),
                             bpf_get_current_pid_tgid() >> 32);
        n = fr ? (long)fr->w.n : -1;
    }
    t1 = bpf_ktime_get_ns();
    uc_ns[i & (UC_RUNS_MAX - 1)] = t1 - t0;
    uc_frames = n;
    return 0;
}

SEC("syscall")
int uc_run(struct uc_args *args)
{
    struct uc_args a = { .mode = args->mode, .runs = args->runs,
                         .cold = args->cold };
    __u32 zero = 0, mode = a.mode;
    struct sky_unw_frames *fr;

    if (a.runs > UC_RUNS_MAX)
        a.runs = UC_RUNS_MAX;
    bpf_loop(a.runs, s_take, &a, 0);
    /* The walk's frames and tallies, for the driver's checks. */
    fr = bpf_map_lookup_elem(&unw_frames, &zero);
    if (mode == UC_MODE_WALK && fr) {
        uc_end = fr->w.end;
        uc_cfi = fr->w.cfi;
        uc_fp = fr->w.fp;
        bpf_probe_read_kernel(uc_pc, sizeof(uc_pc), fr->pc);
    }
    return 0;
}
