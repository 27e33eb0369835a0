/* unwindcost: the BPF cost per sample of the .eh_frame walk against the
 * frame-pointer walk, on the same stack, for bench/unwindcost.py.
 *
 *   unwindcost [ROUNDS [RUNS [COLD_RUNS [FRAMES...]]]]
 *                                     (defaults 15 200 25 20 40)
 *
 * Loads bench/unwindcost.bpf.c (which includes bpf/unwind.bpf.h), gives
 * this process its unwind tables with collector/unwinder.c as the
 * collector does, then for each FRAMES descends a call chain until a
 * stack taken at its bottom has that many frames and there runs the
 * program ROUNDS times per way (interleaved: timing alone, frame
 * pointers, walker), each run taking the stack RUNS times with warm
 * caches, then again COLD_RUNS times each after a sweep of the caches.
 * This file is built with frame pointers, so both ways see the whole
 * chain. Two lines per FRAMES (cold=0, cold=1):
 *
 *   cold=<0|1> frames=<walker's frames> fp_frames=<frame pointers' frames>
 *   same=<leading frames both found> end=<SKY_UNW_END_*> cfi=<frames
 *   by table> fp=<frames by frame pointers> none_ns=<median> fp_ns=<median>
 *   walk_ns=<median> fp_lo=.. fp_hi=.. walk_lo=.. walk_hi=..
 *
 * The medians are the median over the rounds of each round's median;
 * _lo/_hi the lowest and highest round medians. Before the lines, one
 * `prog verified_insns=<n>` line (the harness program with the walker).
 *
 * The bpf() syscall is made with an inline `syscall` instruction from a
 * function of this file, not through libc or libbpf (built without
 * frame pointers): the user registers the kernel saved at that syscall
 * are where both walks start. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "collector/objreg.h"
#include "collector/proctab.h"
#include "collector/unwinder.h"
#include "log.h"
#include "unwindcost.h"
#include "unwindcost.skel.h"

#define S_MAX_ROUNDS 101

typedef struct {
    struct unwindcost_bpf *skel;
    int prog_fd;
    unsigned rounds, runs, cold;
    unsigned frames_want;
    /* results at the bottom of the chain */
    double none[S_MAX_ROUNDS], fp[S_MAX_ROUNDS], walk[S_MAX_ROUNDS];
    long fp_frames, walk_frames;
    unsigned same, end, cfi, fpn;
} job_t;

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Called after the syscall so that s_sys_bpf is no leaf: GCC gives a
 * leaf no frame even with -mno-omit-leaf-frame-pointer, and the frame
 * pointers' walk would then skip s_sys_bpf's caller. */
__attribute__((noinline)) static long s_ret(long ret)
{
    __asm__ volatile("" : "+r"(ret));
    return ret;
}

/* The bpf() syscall straight from this frame (see the header comment). */
__attribute__((noinline)) static long s_sys_bpf(long cmd, void *attr,
                                                long size)
{
    long ret;

    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_bpf), "D"(cmd), "S"(attr), "d"(size)
                     : "rcx", "r11", "memory");
    return s_ret(ret);
}

/* One run of the program in the given mode: 0, or -1. */
__attribute__((noinline)) static int s_run(job_t *job, uint32_t mode)
{
    struct uc_args args = { .mode = mode, .runs = job->runs,
                            .cold = job->cold };
    union bpf_attr attr;

    memset(&attr, 0, sizeof(attr));
    attr.test.prog_fd = (uint32_t)job->prog_fd;
    attr.test.ctx_in = (uint64_t)(uintptr_t)&args;
    attr.test.ctx_size_in = sizeof(args);
    return s_sys_bpf(BPF_PROG_TEST_RUN, &attr, sizeof(attr)) == 0 ? 0 : -1;
}

/* The median of the last run's times. */
static double s_run_median(const job_t *job)
{
    uint64_t ns[UC_RUNS_MAX];
    unsigned n = job->runs;

    memcpy(ns, job->skel->bss->uc_ns, n * sizeof(ns[0]));
    qsort(ns, n, sizeof(ns[0]), s_cmp_u64);
    return n % 2 ? (double)ns[n / 2] : (ns[n / 2 - 1] + ns[n / 2]) / 2.0;
}

/* At the bottom of the chain: the rounds, and the checks of the last
 * stack each way took (every run from the same call site, so both ways
 * see the very same frames). 0, or -1 when a run failed. */
__attribute__((noinline)) static int s_measure(job_t *job)
{
    static const uint32_t modes[] = { UC_MODE_NONE, UC_MODE_FP,
                                      UC_MODE_WALK };
    uint64_t fp_pc[SKY_MAX_FRAMES];
    double *med[] = { job->none, job->fp, job->walk };
    unsigned r, m, i;

    for (r = 0; r < job->rounds; r++) {
        for (m = 0; m < 3; m++) {
            if (s_run(job, modes[m]) < 0)
                return -1;
            med[m][r] = s_run_median(job);
            if (modes[m] == UC_MODE_FP) {
                job->fp_frames = (long)job->skel->bss->uc_frames;
                memcpy(fp_pc, job->skel->bss->uc_pc, sizeof(fp_pc));
            } else if (modes[m] == UC_MODE_WALK) {
                job->walk_frames = (long)job->skel->bss->uc_frames;
            }
        }
    }
    job->end = job->skel->bss->uc_end;
    job->cfi = job->skel->bss->uc_cfi;
    job->fpn = job->skel->bss->uc_fp;
    for (i = 0; i < SKY_MAX_FRAMES && (long)i < job->fp_frames &&
                (long)i < job->walk_frames &&
                fp_pc[i] == job->skel->bss->uc_pc[i]; i++)
        ;
    job->same = i;
    return 0;
}

/* The call chain: S_LINKS distinct functions, each its own rows in the
 * table (a recursion would find the same row again and again, warmer
 * than any real stack), each calling the one the depth left names. Not
 * tail calls: each level keeps a frame (-fno-optimize-sibling-calls). */
#define S_LINKS 64
typedef int (*link_fn)(job_t *job, unsigned left);
static const link_fn s_links[S_LINKS];

#define S_LINK(k)                                                          \
    __attribute__((noinline)) static int s_link##k(job_t *job,             \
                                                   unsigned left)          \
    {                                                                      \
        int rc = left > 0 ? s_links[(left - 1) % S_LINKS](job, left - 1)   \
                          : s_measure(job);                                \
        __asm__ volatile("" ::: "memory");                                 \
        return rc;                                                         \
    }
#define S_LINK8(h)                                                         \
    S_LINK(h##0) S_LINK(h##1) S_LINK(h##2) S_LINK(h##3) S_LINK(h##4)       \
    S_LINK(h##5) S_LINK(h##6) S_LINK(h##7)
S_LINK8(1) S_LINK8(2) S_LINK8(3) S_LINK8(4)
S_LINK8(5) S_LINK8(6) S_LINK8(7) S_LINK8(8)
#define S_REF8(h)                                                          \
    s_link##h##0, s_link##h##1, s_link##h##2, s_link##h##3, s_link##h##4,  \
    s_link##h##5, s_link##h##6, s_link##h##7
static const link_fn s_links[S_LINKS] = {
    S_REF8(1), S_REF8(2), S_REF8(3), S_REF8(4),
    S_REF8(5), S_REF8(6), S_REF8(7), S_REF8(8)
};

/* depth more frames (at most S_LINKS distinct), then the measurement. */
static int s_descend(job_t *job, unsigned depth)
{
    return depth > 0 ? s_links[(depth - 1) % S_LINKS](job, depth - 1)
                     : s_measure(job);
}

static double s_median(double *v, unsigned n)
{
    qsort(v, n, sizeof(v[0]), s_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static void s_maps_changed(void *arg, const proc_t *proc)
{
    unwinder_sync(arg, proc);
}

typedef struct {
    unwinder_t *unw;
    proctab_t *procs;
} resync_t;

static void s_resync_sync(void *arg, uint32_t pid)
{
    resync_t *rs = arg;
    proc_t *proc = proctab_find(rs->procs, pid);

    if (proc)
        unwinder_sync(rs->unw, proc);
}

/* Gives this process its tables, as the collector would. 0, or -1. */
static int s_load_tables(struct unwindcost_bpf *skel, objreg_t **objects,
                         proctab_t **procs, unwinder_t **unw)
{
    unwinder_maps_t um = {
        .pids_fd = bpf_map__fd(skel->maps.unw_pids),
        .procs_fd = bpf_map__fd(skel->maps.unw_procs),
        .tables_fd = bpf_map__fd(skel->maps.unw_tables),
        .rows_fd = bpf_map__fd(skel->maps.unw_rows),
        .max_procs = bpf_map__max_entries(skel->maps.unw_procs),
        .max_tables = bpf_map__max_entries(skel->maps.unw_tables),
        .max_rows = bpf_map__max_entries(skel->maps.unw_rows),
    };
    proc_t *self;
    int rc = -1;

    *unw = unwinder_new(&um, NULL);
    *objects = objreg_new();
    *procs = *objects ? proctab_new(*objects, 16, 1000) : NULL;
    if (!*unw || !*procs)
        goto cleanup;
    proctab_hooks_t hooks = { s_maps_changed, NULL, *unw };
    proctab_set_hooks(*procs, &hooks);
    self = proctab_get(*procs, (uint32_t)getpid(), NULL);
    if (!self || proctab_load_maps(*procs, self) < 0)
        goto cleanup;
    resync_t rs = { *unw, *procs };
    struct pollfd pfd = { .fd = unwinder_fd(*unw), .events = POLLIN };
    for (int waited = 0; unwinder_work(*unw, UINT64_MAX, s_resync_sync, &rs);
         waited++) {
        if (waited > 600) {   /* 60 s */
            fprintf(stderr, "unwindcost: tables not built in 60 s\n");
            goto cleanup;
        }
        poll(&pfd, 1, 100);
    }
    rc = 0;
cleanup:
    return rc;
}

int main(int argc, char **argv)
{
    struct unwindcost_bpf *skel = NULL;
    objreg_t *objects = NULL;
    proctab_t *procs = NULL;
    unwinder_t *unw = NULL;
    job_t job;
    int rc = 1;

    log_init("unwindcost", LOG_LVL_WARN);
    memset(&job, 0, sizeof(job));
    job.rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 15;
    unsigned warm_runs = argc > 2 ? (unsigned)atoi(argv[2]) : 200;
    unsigned cold_runs = argc > 3 ? (unsigned)atoi(argv[3]) : 25;
    if (job.rounds < 1 || job.rounds > S_MAX_ROUNDS || warm_runs < 1 ||
        warm_runs > UC_RUNS_MAX || cold_runs < 1 || cold_runs > UC_RUNS_MAX) {
        fprintf(stderr, "usage: unwindcost [ROUNDS(1-%d) [RUNS(1-%d) "
                "[COLD_RUNS(1-%d) [FRAMES...]]]]\n", S_MAX_ROUNDS,
                UC_RUNS_MAX, UC_RUNS_MAX);
        goto cleanup;
    }
    skel = unwindcost_bpf__open();
    if (!skel) {
        fprintf(stderr, "unwindcost: cannot open the BPF object\n");
        goto cleanup;
    }
    skel->rodata->unw_enabled = 1;
    skel->rodata->unw_max_frames = SKY_MAX_FRAMES;
    /* Room for this process's objects only. */
    bpf_map__set_max_entries(skel->maps.unw_rows, 1u << 20);
    bpf_map__set_max_entries(skel->maps.unw_tables, 64);
    bpf_map__set_max_entries(skel->maps.unw_procs, 4);
    bpf_map__set_max_entries(skel->maps.unw_pids, 4);
    if (unwindcost_bpf__load(skel) != 0) {
        fprintf(stderr, "unwindcost: cannot load the BPF program\n");
        goto cleanup;
    }
    job.skel = skel;
    job.prog_fd = bpf_program__fd(skel->progs.uc_run);
    struct bpf_prog_info info;
    uint32_t len = sizeof(info);
    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(job.prog_fd, &info, &len) == 0)
        printf("prog verified_insns=%u\n", info.verified_insns);
    if (s_load_tables(skel, &objects, &procs, &unw) < 0)
        goto cleanup;

    int nwant = argc > 4 ? argc - 4 : 2;
    for (int k = 0; k < nwant * 2; k++) {
        unsigned want = argc > 4 ? (unsigned)atoi(argv[4 + k / 2])
                                 : 20u * (k / 2 + 1);
        unsigned depth = 0;
        /* The frames below the chain (main, libc's start): one probe. */
        job_t probe = job;
        probe.rounds = 1;
        probe.runs = 1;
        probe.cold = 0;
        if (s_descend(&probe, 0) < 0) {
            fprintf(stderr, "unwindcost: the program did not run\n");
            goto cleanup;
        }
        if (probe.walk_frames > 0 && (unsigned)probe.walk_frames < want)
            depth = want - (unsigned)probe.walk_frames;
        job.cold = k & 1;
        job.runs = job.cold ? cold_runs : warm_runs;
        if (s_descend(&job, depth) < 0) {
            fprintf(stderr, "unwindcost: the program did not run\n");
            goto cleanup;
        }
        /* s_median sorts: the round medians' extremes are at the ends. */
        double none = s_median(job.none, job.rounds);
        double fp = s_median(job.fp, job.rounds);
        double walk = s_median(job.walk, job.rounds);
        printf("cold=%u frames=%ld fp_frames=%ld same=%u end=%u cfi=%u "
               "fp=%u none_ns=%.0f fp_ns=%.0f walk_ns=%.0f fp_lo=%.0f "
               "fp_hi=%.0f walk_lo=%.0f walk_hi=%.0f\n",
               job.cold, job.walk_frames, job.fp_frames, job.same, job.end,
               job.cfi, job.fpn, none, fp, walk, job.fp[0],
               job.fp[job.rounds - 1], job.walk[0],
               job.walk[job.rounds - 1]);
        fflush(stdout);
    }
    rc = 0;
cleanup:
    proctab_destroy(&procs);
    objreg_destroy(&objects);
    unwinder_destroy(&unw);
    unwindcost_bpf__destroy(skel);
    return rc;
}
