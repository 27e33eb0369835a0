/* The context of bench/unwindcost.bpf.c's program, shared with its
 * driver bench/unwindcost.c (only __u32: the same layout in both). */
#ifndef SKYPROF_BENCH_UNWINDCOST_H
#define SKYPROF_BENCH_UNWINDCOST_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define UC_RUNS_MAX 1024   /* a power of two: indices are masked */

#define UC_MODE_NONE 0     /* the timing alone */
#define UC_MODE_FP   1     /* bpf_get_task_stack, frame pointers */
#define UC_MODE_WALK 2     /* the .eh_frame walker (bpf/unwind.bpf.h) */

/* A cold take: before it, UC_SWEEP_LINES cache lines of a 4 MiB map
 * are read, which leaves in the data caches little of what the last
 * take used (a sampler fires after 10 ms of other work, not at once). */
#define UC_SWEEP_LINES 65536

struct uc_args {
    __u32 mode;            /* UC_MODE_* */
    __u32 runs;            /* stacks taken, at most UC_RUNS_MAX */
    __u32 cold;            /* 1: sweep the caches before each take */
};

#endif
