/* Off-CPU profiling with real BPF (root).
 *
 * probe: the off-CPU probe of the collector (collector/offcpu.c) in both
 *   flavours against tests/progs/offcpu_workload: each blocking thread's
 *   time off CPU covers the window it was watched, its user leaf frame is
 *   the function it blocks in (checked against nm and /proc/PID/maps, not
 *   against our own symbolizer), the CPU-bound thread is not counted,
 *   the stack maps are emptied once the threads are gone, and an empty pid
 *   set unloads the programs. Tiny maps make the drops show up in the
 *   counters instead of anywhere else.
 * e2e: the whole pipeline through the launcher: an OFF_CPU task created
 *   over HTTP gives the three blocking paths in their shares of off-CPU
 *   time, and an ON_CPU task on the same process shows the spinning path
 *   but not the blocking ones. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "collector/active_tasks.h"
#include "collector/collector.h"
#include "collector/offcpu.h"
#include "log.h"
#include "loop.h"
#include "harness.h"
#include "testutil.h"
#include "wire.h"

/* ----------------------------------------------- workload functions */

typedef struct {
    const char *name;
    uint64_t start, end;   /* runtime addresses in the workload process */
} func_t;

/* Runtime address ranges of the workload's functions: symbol values and
 * sizes from nm, moved by the load bias read from /proc/PID/maps (the
 * mapping of the executable at file offset 0 minus the vaddr of its first
 * LOAD segment, from readelf). */
static int s_resolve_funcs(pid_t pid, const char *exe, func_t *funcs, int n)
{
    char cmd[1200], line[1024], real[1024];
    unsigned long long first_vaddr = 0, base = 0;
    int have_vaddr = 0, have_base = 0, found = 0;
    FILE *p;

    if (!realpath(exe, real))
        return -1;
    snprintf(cmd, sizeof(cmd), "readelf -lW '%s'", real);
    if (!(p = popen(cmd, "r")))
        return -1;
    while (fgets(line, sizeof(line), p)) {
        unsigned long long off, vaddr;
        if (!have_vaddr &&
            sscanf(line, " LOAD 0x%llx 0x%llx", &off, &vaddr) == 2) {
            first_vaddr = vaddr - off;
            have_vaddr = 1;
        }
    }
    pclose(p);
    snprintf(cmd, sizeof(cmd), "/proc/%d/maps", (int)pid);
    if (!(p = fopen(cmd, "r")))
        return -1;
    while (fgets(line, sizeof(line), p)) {
        unsigned long long start, pgoff;
        char path[1024] = "";
        if (sscanf(line, "%llx-%*x %*s %llx %*s %*s %1023s", &start,
                   &pgoff, path) == 3 &&
            pgoff == 0 && strcmp(path, real) == 0 && !have_base) {
            base = start;
            have_base = 1;
        }
    }
    fclose(p);
    if (!have_vaddr || !have_base)
        return -1;
    snprintf(cmd, sizeof(cmd), "nm -S --defined-only '%s'", real);
    if (!(p = popen(cmd, "r")))
        return -1;
    while (fgets(line, sizeof(line), p)) {
        unsigned long long value, size;
        char type, name[256];
        if (sscanf(line, "%llx %llx %c %255s", &value, &size, &type,
                   name) != 4)
            continue;
        for (int i = 0; i < n; i++)
            if (strcmp(name, funcs[i].name) == 0) {
                funcs[i].start = base - first_vaddr + value;
                funcs[i].end = funcs[i].start + size;
                found++;
            }
    }
    pclose(p);
    return found == n ? 0 : -1;
}

/* The workload's blocking leaves, as capture_t.funcs holds them (sleep,
 * pipe, mutex). */
#define SKY_OFF_FUNCS                                                     \
    { { "sky_off_sleep", 0, 0 },                                          \
      { "sky_off_pipe_read", 0, 0 },                                      \
      { "sky_off_mutex_wait", 0, 0 } }

/* ------------------------------------------------------------ capture */

#define MAX_THREADS 16

typedef struct {
    uint32_t tid;
    char comm[17];
    uint64_t count, ns;
    uint64_t ns_expected_leaf;   /* with the user leaf it should have */
    uint64_t ns_with_kernel;     /* with kernel frames */
    uint64_t ns_with_user;       /* with user frames */
} thread_acc_t;

typedef struct {
    uint32_t pid;
    func_t *funcs;               /* [0..2]: sleep, pipe, mutex leaves */
    thread_acc_t threads[MAX_THREADS];
    int nthreads;
    uint64_t other_pid_samples;
    uint64_t samples;
    /* what began after this CLOCK_MONOTONIC time (0: not kept) */
    uint64_t after_ns, count_after, ns_after;
} capture_t;

static const char *s_expected_leaf(const char *comm)
{
    if (strcmp(comm, "sleeper") == 0)
        return "sky_off_sleep";
    if (strcmp(comm, "reader") == 0)
        return "sky_off_pipe_read";
    if (strcmp(comm, "waiter") == 0)
        return "sky_off_mutex_wait";
    return NULL;
}

static void s_on_sample(void *arg, const offcpu_sample_t *s)
{
    capture_t *cap = arg;
    thread_acc_t *t = NULL;

    cap->samples++;
    if (s->pid != cap->pid) {
        cap->other_pid_samples++;
        return;
    }
    if (cap->after_ns && s->first_ns >= cap->after_ns) {
        cap->count_after += s->count;
        cap->ns_after += s->total_ns;
    }
    for (int i = 0; i < cap->nthreads; i++)
        if (cap->threads[i].tid == s->tid)
            t = &cap->threads[i];
    if (!t) {
        ck_assert_int_lt(cap->nthreads, MAX_THREADS);
        t = &cap->threads[cap->nthreads++];
        t->tid = s->tid;
    }
    /* The name may change right after the thread starts. */
    snprintf(t->comm, sizeof(t->comm), "%s", s->comm);
    t->count += s->count;
    t->ns += s->total_ns;
    if (s->nk > 0)
        t->ns_with_kernel += s->total_ns;
    if (s->nu > 0)
        t->ns_with_user += s->total_ns;
    const char *leaf = s_expected_leaf(s->comm);
    for (int f = 0; leaf && f < 3; f++)
        if (strcmp(cap->funcs[f].name, leaf) == 0 && s->nu > 0 &&
            s->uaddrs[0] >= cap->funcs[f].start &&
            s->uaddrs[0] < cap->funcs[f].end)
            t->ns_expected_leaf += s->total_ns;
}

static void s_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Drains every 100 ms until the child exits; returns how long the probe
 * watched it (ms). */
static uint64_t s_watch(offcpu_t *off, pid_t child, size_t *max_stacks)
{
    uint64_t t0 = now_mono_ms(), t1;
    int status;

    for (;;) {
        s_sleep_ms(100);
        offcpu_drain(off);
        size_t n = offcpu_stack_entries(off);
        if (n > *max_stacks)
            *max_stacks = n;
        if (waitpid(child, &status, WNOHANG) == child)
            break;
    }
    t1 = now_mono_ms();
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return t1 - t0;
}

/* --------------------------------------------------------------- probe */

static void s_probe_flavour(int flavour)
{
    const char *exe = tu_build_path("tests/progs/offcpu_workload");
    func_t funcs[3] = SKY_OFF_FUNCS;
    capture_t cap = { .funcs = funcs };
    offcpu_options_t opts;
    offcpu_stats_t st;
    size_t max_stacks = 0;

    offcpu_options_default(&opts);
    opts.flavour = flavour;
    opts.background_load = false;
    offcpu_t *off = offcpu_new(&opts, s_on_sample, &cap);
    ck_assert_ptr_nonnull(off);
    ck_assert(!offcpu_attached(off));

    char *argv[] = { (char *)exe, "3", NULL };
    pid_t child = tu_spawn(argv, NULL);
    ck_assert_int_gt(child, 0);
    cap.pid = (uint32_t)child;
    s_sleep_ms(300);   /* exec done, threads started */
    ck_assert_int_eq(s_resolve_funcs(child, exe, funcs, 3), 0);

    uint32_t pid = (uint32_t)child;
    ck_assert_int_eq(offcpu_set_pids(off, &pid, 1), 0);
    ck_assert(offcpu_attached(off));
    ck_assert_int_eq(offcpu_flavour(off), flavour);
    uint64_t window_ms = s_watch(off, child, &max_stacks);

    /* Once the threads are gone, two drains retire both generations. */
    for (int i = 0; i < 3; i++) {
        s_sleep_ms(30);
        offcpu_drain(off);
    }
    size_t left = offcpu_stack_entries(off);
    offcpu_stats(off, &st);
    fprintf(stderr,
            "%s: window %" PRIu64 " ms, %" PRIu64 " switches, %" PRIu64
            " samples, %" PRIu64 " preempted, stacks max %zu left %zu "
            "deleted %" PRIu64 ", lost k%" PRIu64 " u%" PRIu64 "\n",
            offcpu_flavour_name(flavour), window_ms, st.switches, st.samples,
            st.preempted, max_stacks, left, st.stacks_deleted,
            st.kstacks_lost, st.ustacks_lost);

    int sleepers = 0, checked = 0;
    for (int i = 0; i < cap.nthreads; i++) {
        thread_acc_t *t = &cap.threads[i];
        double share = (double)t->ns / 1e6 / (double)window_ms;
        fprintf(stderr, "  %-16s tid %u: %" PRIu64 " switches, %.0f ms "
                "(%.2f of the window), leaf ok %.2f\n", t->comm, t->tid,
                t->count, (double)t->ns / 1e6, share,
                t->ns ? (double)t->ns_expected_leaf / (double)t->ns : 0.0);
        if (strcmp(t->comm, "spinner") == 0) {
            /* It never blocks; preemption is not off-CPU time here. */
            ck_assert_double_lt(share, 0.05);
            continue;
        }
        /* Every other thread is asleep nearly all the time; the first
         * period (begun before the attach) and the last one (ended at the
         * exit) may be cut. */
        ck_assert_double_gt(share, 0.6);
        ck_assert_double_lt(share, 1.1);
        ck_assert_uint_eq(t->ns_with_kernel, t->ns);
        /* A stack whose hash bucket another stack holds is lost, and
         * counted; the time is kept without it. */
        if (st.ustacks_lost == 0)
            ck_assert_uint_eq(t->ns_with_user, t->ns);
        if (s_expected_leaf(t->comm)) {
            ck_assert_msg(t->ns_expected_leaf >= t->ns_with_user * 9 / 10,
                          "%s: %.2f of the time with the leaf %s",
                          t->comm,
                          (double)t->ns_expected_leaf /
                              (double)t->ns_with_user,
                          s_expected_leaf(t->comm));
            checked++;
        }
        if (strcmp(t->comm, "sleeper") == 0) {
            sleepers++;
            /* nanosleep(50 ms) per switch, at least */
            ck_assert_uint_ge(t->ns / t->count, 45000000ull);
        }
    }
    ck_assert_int_eq(sleepers, 2);
    ck_assert_int_eq(checked, 4);
    ck_assert_uint_eq(cap.other_pid_samples, 0);
    ck_assert_uint_gt(st.switches, 0);
    ck_assert_uint_eq(st.dropped_start + st.dropped_agg, 0);
    ck_assert_uint_eq(left, 0);
    ck_assert_uint_gt(st.stacks_deleted, 0);

    ck_assert_int_eq(offcpu_set_pids(off, NULL, 0), 0);
    ck_assert(!offcpu_attached(off));
    ck_assert_int_eq(offcpu_drain(off), 0);
    offcpu_destroy(&off);
    ck_assert_ptr_null(off);
}

START_TEST(test_probe_tp_btf)
{
    s_probe_flavour(OFFCPU_TP_BTF);
}
END_TEST

START_TEST(test_probe_kprobe)
{
    s_probe_flavour(OFFCPU_KPROBE);
}
END_TEST

/* Maps far too small for the workload: what does not fit is counted. */
START_TEST(test_tiny_maps_count_drops)
{
    const char *exe = tu_build_path("tests/progs/offcpu_workload");
    func_t funcs[3] = SKY_OFF_FUNCS;
    capture_t cap = { .funcs = funcs };
    offcpu_options_t opts;
    offcpu_stats_t st;
    size_t max_stacks = 0;

    offcpu_options_default(&opts);
    opts.background_load = false;
    opts.start_entries = 2;
    opts.agg_entries = 2;
    opts.stack_entries = 2;
    offcpu_t *off = offcpu_new(&opts, s_on_sample, &cap);
    ck_assert_ptr_nonnull(off);
    char *argv[] = { (char *)exe, "2", NULL };
    pid_t child = tu_spawn(argv, NULL);
    ck_assert_int_gt(child, 0);
    cap.pid = (uint32_t)child;
    uint32_t pid = (uint32_t)child;
    ck_assert_int_eq(offcpu_set_pids(off, &pid, 1), 0);
    s_watch(off, child, &max_stacks);
    offcpu_stats(off, &st);
    ck_assert_uint_gt(st.dropped_start, 0);
    ck_assert_uint_gt(st.dropped_agg, 0);
    ck_assert_uint_gt(st.kstacks_lost + st.ustacks_lost, 0);
    ck_assert_uint_gt(cap.samples, 0);
    ck_assert_uint_le(max_stacks, 2 * 3);   /* 2 maps of 2 + 1 */
    offcpu_destroy(&off);
}
END_TEST

/* Short periods are sampled: a probe recording one in 8 of them, weighted
 * by 8, and a probe recording every one watch the same pipe ping-pong at
 * once (two separate runs differ by more than sampling on a loaded
 * machine). The sampled one must take far fewer stacks, count what it left
 * out, and still estimate the switches and the time off CPU of the
 * exact one. */
static uint64_t s_sum_count(const capture_t *cap)
{
    uint64_t n = 0;

    for (int i = 0; i < cap->nthreads; i++)
        n += cap->threads[i].count;
    return n;
}

static uint64_t s_sum_ns(const capture_t *cap)
{
    uint64_t n = 0;

    for (int i = 0; i < cap->nthreads; i++)
        n += cap->threads[i].ns;
    return n;
}

/* Runs offcpu_workload pingpong (the parent blocks about once per round)
 * under one probe, or two at once (off2, cap2), then the parent sleeps
 * 50 ms `sleeps` times; the parent's voluntary context switches (its
 * rusage) are what the probe should count. */
static void s_pingpong2(offcpu_t *off, capture_t *cap, offcpu_t *off2,
                        capture_t *cap2, const char *rounds,
                        const char *sleeps, long *nvcsw)
{
    const char *exe = tu_build_path("tests/progs/offcpu_workload");
    struct rusage ru;
    int status;

    /* Asleep first: the probes are attached before the rounds (two loads
     * take seconds on a loaded machine). */
    char *argv[] = { (char *)exe, "pingpong", (char *)rounds,
                     off2 ? "3" : "0.5", (char *)sleeps, NULL };
    pid_t child = tu_spawn(argv, NULL);
    ck_assert_int_gt(child, 0);
    uint32_t pid = (uint32_t)child;
    cap->pid = pid;
    ck_assert_int_eq(offcpu_set_pids(off, &pid, 1), 0);
    if (off2) {
        cap2->pid = pid;
        ck_assert_int_eq(offcpu_set_pids(off2, &pid, 1), 0);
    }
    for (;;) {
        s_sleep_ms(100);
        offcpu_drain(off);
        if (off2)
            offcpu_drain(off2);
        if (wait4(child, &status, WNOHANG, &ru) == child)
            break;
    }
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    offcpu_drain(off);
    if (off2)
        offcpu_drain(off2);
    *nvcsw = ru.ru_nvcsw;
}

static void s_pingpong(offcpu_t *off, capture_t *cap, const char *rounds,
                       const char *sleeps, long *nvcsw)
{
    s_pingpong2(off, cap, NULL, NULL, rounds, sleeps, nvcsw);
}

START_TEST(test_sampled_short_periods_stand_for_all)
{
    func_t funcs[3] = SKY_OFF_FUNCS;
    capture_t exact = { .funcs = funcs }, sampled = { .funcs = funcs };
    offcpu_options_t opts;
    offcpu_stats_t st_exact, st_sampled;
    long nv;

    offcpu_options_default(&opts);
    opts.flavour = OFFCPU_TP_BTF;
    opts.background_load = false;
    opts.sample_every = 1;
    offcpu_t *all = offcpu_new(&opts, s_on_sample, &exact);
    ck_assert_ptr_nonnull(all);
    opts.sample_every = 8;
    offcpu_t *some = offcpu_new(&opts, s_on_sample, &sampled);
    ck_assert_ptr_nonnull(some);
    s_pingpong2(all, &exact, some, &sampled, "60000", "0", &nv);
    offcpu_stats(all, &st_exact);
    offcpu_stats(some, &st_sampled);
    offcpu_destroy(&all);
    offcpu_destroy(&some);

    uint64_t n_exact = s_sum_count(&exact), n_est = s_sum_count(&sampled);
    uint64_t ns_exact = s_sum_ns(&exact), ns_est = s_sum_ns(&sampled);
    fprintf(stderr,
            "%ld voluntary switches; every 1: %" PRIu64 " periods, %.1f ms, "
            "%" PRIu64 " preempted; every 8: %" PRIu64 " recorded, %" PRIu64
            " unsampled, %" PRIu64 " estimated, %.1f ms, %" PRIu64
            " preempted\n",
            nv, n_exact, (double)ns_exact / 1e6, st_exact.preempted,
            st_sampled.switches, st_sampled.unsampled, n_est,
            (double)ns_est / 1e6, st_sampled.preempted);
    /* Every period of the parent is recorded, and each one is a
     * voluntary switch (the kernel counts also those whose wakeup raced
     * the switch-out; __schedule reports them runnable, and so do we). */
    ck_assert_uint_eq(st_exact.unsampled, 0);
    ck_assert_uint_le(n_exact, st_exact.switches);
    ck_assert_uint_gt(n_exact, 20000);
    ck_assert_double_lt((double)n_exact, 1.02 * (double)nv);
    /* One in 8 short periods recorded, the others counted. */
    uint64_t seen = st_sampled.switches + st_sampled.unsampled;
    ck_assert_uint_gt(seen, 20000);
    ck_assert_double_lt((double)seen, 1.02 * (double)nv);
    ck_assert_uint_gt(st_sampled.unsampled, seen / 2);
    ck_assert_uint_lt(st_sampled.switches, seen / 4);
    /* Weighted, the sample stands for every period the probe saw: 8 x a
     * binomial draw of p = 1/8 over > 20000 periods has a relative sd
     * under 2 %. */
    ck_assert_double_gt((double)n_est, 0.9 * (double)seen);
    ck_assert_double_lt((double)n_est, 1.1 * (double)seen);
    ck_assert_double_gt((double)n_est, 0.9 * (double)n_exact);
    ck_assert_double_lt((double)n_est, 1.1 * (double)n_exact);
    /* Time: the same periods, but the sampled probe runs after the exact
     * one on every switch, so its periods begin after the exact one's
     * stack walks (~10 % less time here); on a loaded machine a few long
     * ones weigh much, so only a gross error (a weight not applied: 1/8)
     * fails. */
    ck_assert_double_gt((double)ns_est, 0.5 * (double)ns_exact);
    ck_assert_double_lt((double)ns_est, 2.0 * (double)ns_exact);
    ck_assert_uint_eq(exact.other_pid_samples + sampled.other_pid_samples,
                      0);
}
END_TEST

/* A thread that switched fast and then sleeps long: once one of its
 * sleeps is seen to be long (its previous arrival on a CPU long before its
 * wakeup, read at switch-in even for a period sampling left out), its next periods are
 * recorded whole. With practically nothing drawn at random, of the five
 * 50 ms sleeps that follow the rounds the last four are recorded: the
 * first is the one left out that told. */
START_TEST(test_long_sleeps_after_short_waits_are_recorded)
{
    func_t funcs[3] = SKY_OFF_FUNCS;
    capture_t cap = { .funcs = funcs };
    offcpu_options_t opts;
    offcpu_stats_t st;
    struct timespec t0;
    long nvcsw;

    offcpu_options_default(&opts);
    opts.flavour = OFFCPU_TP_BTF;
    /* Draws of 1 in 2^32 - 1: with 1 in a million, one of the ~58 000
     * short periods was drawn in about 6 % of runs, and its weight (a
     * million periods, 41 s) swamped the 250 ms asserted below. */
    opts.sample_every = UINT32_MAX;
    ck_assert(opts.background_load);   /* the default: loads off the loop */
    offcpu_t *off = offcpu_new(&opts, s_on_sample, &cap);
    ck_assert_ptr_nonnull(off);
    /* Past the 0.5 s sleep before the rounds (and the 16 short periods
     * recorded after it), well before the rounds end. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cap.after_ns = (uint64_t)t0.tv_sec * 1000000000ull +
                   (uint64_t)t0.tv_nsec + 600000000ull;
    s_pingpong(off, &cap, "60000", "5", &nvcsw);
    offcpu_stats(off, &st);
    offcpu_destroy(&off);
    ck_assert_uint_eq(st.attaches, 1);

    fprintf(stderr, "short then long: after the rounds began %" PRIu64
            " periods recorded, %.1f ms; %" PRIu64 " left out (%ld "
            "voluntary switches)\n", cap.count_after,
            (double)cap.ns_after / 1e6, st.unsampled, nvcsw);
    ck_assert_uint_gt(st.unsampled, 20000);
    /* 4 sleeps (and any run of 16 short periods after a round in which
     * the parent ran or slept over long_ns: those are short) */
    ck_assert_uint_ge(cap.count_after, 4);
    ck_assert_double_gt((double)cap.ns_after, 3.5 * 50e6);
    ck_assert_double_lt((double)cap.ns_after, 5.5 * 50e6);
    ck_assert_uint_eq(cap.other_pid_samples, 0);
}
END_TEST

/* ----------------------------------------------- tasks and collector */

START_TEST(test_tasks_by_target)
{
    activetasks_t *t = activetasks_new();
    uint32_t on_pids[] = { 7 }, off_pids[] = { 9, 7 };
    wire_task_t tasks[] = {
        { .task_id = "on", .target = WIRE_TARGET_ON_CPU, .duration_ms = 1000,
          .npids = 1, .pids = on_pids },
        { .task_id = "off", .target = WIRE_TARGET_OFF_CPU,
          .start_ms = 2000, .duration_ms = 1000, .npids = 2,
          .pids = off_pids },
        { .task_id = "net", .target = WIRE_TARGET_NETWORK, .npids = 1,
          .pids = on_pids },
    };
    const uint32_t *pids;
    const char *ids[4];

    ck_assert_ptr_nonnull(t);
    wire_task_set_t set = th_task_set("policy/offcpu-test", 1, 1, tasks, 3);
    ck_assert_int_eq(activetasks_apply(t, &set, 1500), 0);
    /* The on-CPU and the network task have started. */
    ck_assert_int_eq(activetasks_refresh_targets(t, 1500),
                     ACTIVETASKS_ON_CPU_CHANGED | ACTIVETASKS_NETWORK_CHANGED);
    ck_assert_uint_eq(activetasks_target_pids(t, WIRE_TARGET_OFF_CPU, &pids),
                      0);
    /* The off-CPU one starts: only its bit. */
    ck_assert_int_eq(activetasks_refresh_targets(t, 2000),
                     ACTIVETASKS_OFF_CPU_CHANGED);
    ck_assert_uint_eq(activetasks_target_pids(t, WIRE_TARGET_OFF_CPU, &pids),
                      2);
    ck_assert_uint_eq(pids[0], 7);
    ck_assert_uint_eq(pids[1], 9);
    ck_assert_uint_eq(activetasks_target_for_pid(t, WIRE_TARGET_OFF_CPU, 9,
                                                 ids, 4), 1);
    ck_assert_str_eq(ids[0], "off");
    ck_assert_uint_eq(activetasks_target_for_pid(t, WIRE_TARGET_ON_CPU, 9,
                                                 ids, 4), 0);
    ck_assert_uint_eq(activetasks_for_pid(t, 7, ids, 4), 1);
    ck_assert_str_eq(ids[0], "on");
    /* Network tasks have their own pids (the network capture's). */
    ck_assert_uint_eq(activetasks_target_pids(t, WIRE_TARGET_NETWORK, &pids),
                      1);
    ck_assert_uint_eq(pids[0], 7);
    ck_assert_int_eq(activetasks_refresh_targets(t, 2100), 0);
    /* The on-CPU task ends at 1500 + 1000, the off-CPU one at 3000. */
    ck_assert_int_eq(activetasks_refresh_targets(t, 2500),
                     ACTIVETASKS_ON_CPU_CHANGED);
    ck_assert_int_eq(activetasks_refresh_targets(t, 3000),
                     ACTIVETASKS_OFF_CPU_CHANGED);
    activetasks_destroy(&t);
}
END_TEST

typedef struct {
    uint32_t pid;
    uint64_t off_samples, off_tagged, off_resolved, off_ns, on_samples;
    int decode_failures;
    arena_t *arena;
} col_capture_t;

static int s_col_batch(void *arg, const char *topic, wire_raw_batch_t *b)
{
    col_capture_t *cap = arg;
    wire_buf_t buf;
    wire_raw_batch_t back;
    char err[256];

    /* What the collector publishes must pass the codec. */
    wire_header_set(&b->hdr, "collector/offcpu-test", 1);
    wire_buf_init(&buf);
    if (wire_encode_raw_batch(b, &buf) != 0 ||
        wire_decode_raw_batch(buf.data, buf.len, cap->arena, &back, err,
                              sizeof(err)) != 0)
        cap->decode_failures++;
    wire_buf_release(&buf);
    arena_reset(cap->arena);
    for (uint32_t i = 0; i < b->nsamples; i++) {
        const wire_raw_sample_t *x = &b->samples[i];
        if (x->pid != cap->pid)
            continue;
        if (x->kind != WIRE_KIND_OFF_CPU) {
            cap->on_samples++;
            continue;
        }
        cap->off_samples++;
        cap->off_ns += x->weight_ns;
        if (x->ntasks == 1 && strcmp(b->task_ids[x->tasks[0]], "off-1") == 0)
            cap->off_tagged++;
        if (x->nu > 0 && x->uframes[0].object != WIRE_NO_OBJECT)
            cap->off_resolved++;
    }
    return 0;
}

static int s_col_events(void *arg, wire_proc_events_t *ev)
{
    return 0;
}

START_TEST(test_collector_follows_off_cpu_tasks)
{
    col_capture_t cap = { 0 };
    collector_options_t opts;
    collector_info_t info;
    char err[512] = "";
    collector_sink_t sink = { .raw_batch = s_col_batch, .proc_events = s_col_events,
                              .arg = &cap };

    cap.arena = arena_new(0);
    ck_assert_ptr_nonnull(cap.arena);
    loop_t *loop = loop_new();
    ck_assert_ptr_nonnull(loop);
    collector_options_default(&opts);
    opts.host_wide = false;
    opts.scan_proc = false;
    collector_t *col = collector_new(&opts, loop, NULL, &sink, err,
                                     sizeof(err));
    ck_assert_msg(col != NULL, "collector_new: %s", err);
    collector_info(col, &info);
    ck_assert_int_eq(info.offcpu_attached, 0);

    char *argv[] = { (char *)tu_build_path("tests/progs/offcpu_workload"),
                     "3", NULL };
    pid_t child = tu_spawn(argv, NULL);
    ck_assert_int_gt(child, 0);
    cap.pid = (uint32_t)child;
    uint32_t pid = (uint32_t)child;

    /* An on-CPU task alone does not load the off-CPU probe. */
    wire_task_t on = { .task_id = "on-1", .target = WIRE_TARGET_ON_CPU,
                       .duration_ms = 60000, .npids = 1, .pids = &pid };
    wire_task_set_t set = th_task_set("policy/offcpu-test", 1, 1, &on, 1);
    ck_assert_int_eq(collector_apply_tasks(col, &set), 0);
    collector_info(col, &info);
    ck_assert_int_eq(info.offcpu_attached, 0);

    wire_task_t off = { .task_id = "off-1", .target = WIRE_TARGET_OFF_CPU,
                        .duration_ms = 60000, .npids = 1, .pids = &pid };
    set = th_task_set("policy/offcpu-test", 2, 2, &off, 1);
    ck_assert_int_eq(collector_apply_tasks(col, &set), 0);
    /* The programs load on a thread of their own; a drain adopts them. */
    for (int i = 0; i < 200; i++) {
        collector_info(col, &info);
        if (info.offcpu_attached)
            break;
        s_sleep_ms(50);
        collector_drain(col);
    }
    ck_assert_int_eq(info.offcpu_attached, 1);
    ck_assert_uint_eq(info.offcpu_pids, 1);
    uint64_t attached_ms = now_mono_ms();

    int status;
    while (waitpid(child, &status, WNOHANG) != child) {
        s_sleep_ms(100);
        collector_drain(col);
    }
    /* What was watched: from the attach (a verification of seconds on a
     * loaded machine) to the exit, at 100 ms of resolution. */
    uint64_t watched_ms = now_mono_ms() - attached_ms;
    collector_drain(col);
    /* Ending the task detaches; the last aggregates were published. */
    set = th_task_set("policy/offcpu-test", 3, 3, NULL, 0);
    ck_assert_int_eq(collector_apply_tasks(col, &set), 0);
    collector_drain(col);
    collector_info(col, &info);
    fprintf(stderr, "collector: %" PRIu64 " off-CPU samples (%" PRIu64
            " tagged, %" PRIu64 " resolved), %.0f ms off CPU in %" PRIu64
            " ms watched\n", cap.off_samples, cap.off_tagged,
            cap.off_resolved, (double)cap.off_ns / 1e6, watched_ms);
    ck_assert_int_eq(info.offcpu_attached, 0);
    ck_assert_uint_eq(info.offcpu_pids, 0);
    ck_assert_uint_gt(info.offcpu_samples, 0);
    ck_assert_uint_gt(info.offcpu_switches, 0);
    ck_assert_int_eq(cap.decode_failures, 0);
    ck_assert_uint_gt(cap.off_samples, 0);
    ck_assert_uint_eq(cap.off_tagged, cap.off_samples);
    /* Seven threads blocked nearly all the time they were watched (3 s
     * of run, less the attach): at least half of it is seen (the periods
     * cut by the attach and by the exit are not). */
    ck_assert_uint_gt(watched_ms, 500);
    ck_assert_uint_gt(cap.off_ns, 7ull * watched_ms * 1000000ull / 2);
    ck_assert_uint_ge(cap.off_resolved * 10, cap.off_samples * 9);
    collector_destroy(&col);
    loop_destroy(&loop);
    arena_destroy(&cap.arena);
}
END_TEST

/* ---------------------------------------------------------- end to end */

static th_launch_t P;

static const char *s_pipeline_yaml =
    "profiling:\n  flush_interval: 1s\n"
    "collector:\n  host_wide: false\n  drain_interval: 100ms\n";

static char *s_get(const char *path, int *status)
{
    return th_api(&P, "GET", path, NULL, status);
}

/* Sums of a folded text: lines whose frames contain each needle. */
enum { F_SLEEP, F_PIPE, F_MUTEX, F_SPIN, F_NEEDLES };
static const char *const s_needles[F_NEEDLES] = {
    "sky_off_sleep", "sky_off_pipe_read", "sky_off_mutex_wait",
    "sky_on_spin" };

typedef struct {
    double v[F_NEEDLES];
    double total;
} sums_t;

static sums_t s_sums(const char *folded)
{
    sums_t s = { { 0 }, 0 };
    char *copy = strdup(folded);

    ck_assert_ptr_nonnull(copy);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        char *sp = strrchr(line, ' ');
        if (!sp)
            continue;
        double v = strtod(sp + 1, NULL);
        *sp = '\0';
        s.total += v;
        for (int i = 0; i < F_NEEDLES; i++)
            if (strstr(line, s_needles[i]))
                s.v[i] += v;
    }
    free(copy);
    return s;
}

static sums_t s_folded(const char *task_id, const char *query,
                       const char *needle)
{
    char path[256];
    int found = 0;

    snprintf(path, sizeof path, "/api/folded?task_id=%s%s", task_id, query);
    char *body = th_api_wait(&P, path, needle, 15000, &found);
    ck_assert_msg(found, "%s has no %s: %s (log %s)", path, needle,
                  body ? body : "(none)", P.log);
    sums_t s = s_sums(body);
    free(body);
    return s;
}

/* 1 when a line of the task's off-CPU folded stacks holds both needles,
 * the second after the first, and ends in __schedule. */
static int s_folded_line(const char *task_id, const char *first,
                         const char *second)
{
    char path[256];
    int status = 0, found = 0;

    snprintf(path, sizeof path, "/api/folded?task_id=%s&event=off-cpu",
             task_id);
    char *body = s_get(path, &status);
    ck_assert_ptr_nonnull(body);
    for (char *line = strtok(body, "\n"); line && !found;
         line = strtok(NULL, "\n")) {
        char *a = strstr(line, first);
        char *b = a ? strstr(a, second) : NULL;
        char *sp = strrchr(line, ' ');
        if (b && sp && sp - line >= 14 &&
            strncmp(sp - 14, "[k] __schedule", 14) == 0)
            found = 1;
        else if (b && !*first)
            found = 1;   /* any line with the needle */
    }
    free(body);
    return found;
}

START_TEST(test_pipeline_off_and_on_cpu)
{
    char off_id[64], on_id[64];

    th_launch_start(&P, s_pipeline_yaml, NULL);
    th_wait_collector(P.log, 1, 20000);
    char *argv[] = { (char *)tu_build_path("tests/progs/offcpu_workload"),
                     "8", NULL };
    pid_t wl = tu_spawn(argv, NULL);
    ck_assert_int_gt(wl, 0);
    th_api_create_task(&P, (int)wl, "OFF_CPU", 30, off_id, sizeof off_id);
    th_api_create_task(&P, (int)wl, "ON_CPU", 30, on_id, sizeof on_id);
    int st;
    ck_assert_int_eq(waitpid(wl, &st, 0), wl);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Let the last windows flush before reading the final numbers. */
    s_folded(off_id, "&event=off-cpu", "sky_off_mutex_wait");
    sleep(3);

    sums_t us = s_folded(off_id, "&event=off-cpu&unit=us", "sky_off_sleep");
    /* Each path reached the scheduler through its own kernel path, and the
     * kernel stacks start at __schedule, not in the probe. */
    ck_assert(s_folded_line(off_id, "sky_off_sleep;", "[k] do_nanosleep;"));
    ck_assert(s_folded_line(off_id, "sky_off_pipe_read;", "pipe_read;"));
    ck_assert(s_folded_line(off_id, "sky_off_mutex_wait;", "[k] futex_wait"));
    ck_assert(!s_folded_line(off_id, "", "bpf_prog_"));
    sums_t cnt = s_folded(off_id, "&event=off-cpu&unit=count",
                          "sky_off_sleep");
    fprintf(stderr, "off-CPU task %s: %.0f ms total; sleep %.3f pipe %.3f "
            "mutex %.3f spin %.3f; sleep %.1f ms per switch\n", off_id,
            us.total / 1e3, us.v[F_SLEEP] / us.total,
            us.v[F_PIPE] / us.total, us.v[F_MUTEX] / us.total,
            us.v[F_SPIN] / us.total,
            cnt.v[F_SLEEP] ? us.v[F_SLEEP] / cnt.v[F_SLEEP] / 1e3 : 0.0);
    /* Seven threads block nearly all the time, two of them in
     * sky_off_sleep, one each in the pipe read and the mutex wait
     * (tests/progs/offcpu_workload.c): 2/7, 1/7, 1/7. */
    ck_assert_double_gt(us.total, 5e6);   /* > 5 s of off-CPU time */
    ck_assert_double_ge(us.v[F_SLEEP] / us.total, 0.22);
    ck_assert_double_le(us.v[F_SLEEP] / us.total, 0.35);
    ck_assert_double_ge(us.v[F_PIPE] / us.total, 0.10);
    ck_assert_double_le(us.v[F_PIPE] / us.total, 0.18);
    ck_assert_double_ge(us.v[F_MUTEX] / us.total, 0.10);
    ck_assert_double_le(us.v[F_MUTEX] / us.total, 0.18);
    /* The spinner never blocks. */
    ck_assert_double_lt(us.v[F_SPIN] / us.total, 0.01);
    /* Each sleep is a 50 ms nanosleep. */
    ck_assert_double_ge(us.v[F_SLEEP] / cnt.v[F_SLEEP], 45000.0);
    ck_assert_double_le(us.v[F_SLEEP] / cnt.v[F_SLEEP], 200000.0);

    /* On CPU the same process is its spinner; the blocking paths only run
     * for the microseconds around each wakeup (1-2 % of the samples here,
     * more when the spinner gets less of a busy CPU), against 57 % of the
     * off-CPU time. */
    sums_t on = s_folded(on_id, "", "sky_on_spin");
    fprintf(stderr, "on-CPU task %s: %.0f samples; spin %.3f, blocking "
            "paths %.3f\n", on_id, on.total, on.v[F_SPIN] / on.total,
            (on.v[F_SLEEP] + on.v[F_PIPE] + on.v[F_MUTEX]) / on.total);
    ck_assert_double_gt(on.total, 50);
    ck_assert_double_ge(on.v[F_SPIN] / on.total, 0.85);
    ck_assert_double_le((on.v[F_SLEEP] + on.v[F_PIPE] + on.v[F_MUTEX]) /
                            on.total, 0.08);
    th_launch_stop(&P);
}
END_TEST

/* CONFIG_KPROBES=n kernels (like the one these tests were written on)
 * have neither the kprobe PMU nor tracefs kprobe_events. */
static int s_have_kprobes(void)
{
    return access("/sys/bus/event_source/devices/kprobe/type", R_OK) == 0 ||
           access("/sys/kernel/tracing/kprobe_events", R_OK) == 0 ||
           access("/sys/kernel/debug/tracing/kprobe_events", R_OK) == 0;
}

int main(void)
{
    Suite *s = suite_create("offcpu");
    TCase *probe = tcase_create("probe");
    TCase *e2e = tcase_create("e2e");
    TCase *tasks = tcase_create("tasks");

    tcase_add_test(tasks, test_tasks_by_target);
    suite_add_tcase(s, tasks);

    tcase_set_timeout(probe, 60);
    tcase_set_timeout(e2e, 180);
    if (tu_require_bpf("offcpu probe")) {
        tcase_add_test(probe, test_probe_tp_btf);
        if (s_have_kprobes())
            tcase_add_test(probe, test_probe_kprobe);
        else
            tu_skip("offcpu kprobe flavour", "this kernel has no kprobes "
                    "(no kprobe PMU, no kprobe_events)");
        tcase_add_test(probe, test_tiny_maps_count_drops);
        tcase_add_test(probe, test_sampled_short_periods_stand_for_all);
        tcase_add_test(probe, test_long_sleeps_after_short_waits_are_recorded);
        tcase_add_test(probe, test_collector_follows_off_cpu_tasks);
    }
    if (tu_require_bpf("offcpu end to end"))
        tcase_add_test(e2e, test_pipeline_off_and_on_cpu);
    suite_add_tcase(s, probe);
    suite_add_tcase(s, e2e);
    return tu_run(s);
}
