/* workload: fixed-work programs for the profiler benchmarks.
 *
 *   workload cpu ITERATIONS     CPU-bound: a hash loop under a few frames
 *   workload sys ITERATIONS     syscall-heavy: getppid, write, read, pipe
 *   workload marker             latency probe: reads marker numbers on
 *                               stdin and spins in bench_marker_<n>
 *   workload sleepers N         N children that sleep until the parent is
 *                               told to stop (SIGTERM), for the agent cost
 *   workload gaps MS CPU        gap detector: pinned to CPU, reads the clock
 *                               in a tight loop for MS milliseconds and
 *                               reports every gap between two reads longer
 *                               than BENCH_GAP_NS (default 1000 ns)
 *   workload switch N CPU       two threads pinned to CPU hand a byte back
 *                               and forth N times (2N context switches)
 *   workload serve CPU          pins itself to CPU, prints "ready pid=P",
 *                               then runs one command per stdin line
 *                               ("cpu N", "sys N", "gaps MS", "switch N")
 *                               and prints its result line; one process
 *                               for many runs, so a profiler task can
 *                               target it before the runs start
 *
 * cpu and sys do a fixed amount of work (unlike tests/progs/cpu_workload,
 * which runs for a fixed time), so a profiler's overhead shows up as a
 * longer run. They print "wall_ns=W cpu_ns=C" on stdout when done.
 * Built with frame pointers so every profiler can unwind them. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static volatile uint64_t s_sink;

static uint64_t s_clock_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ cpu */
NOINLINE uint64_t bench_cpu_leaf(uint64_t iterations, uint64_t seed)
{
    uint64_t acc = seed;

    for (uint64_t i = 0; i < iterations; i++) {
        acc ^= acc >> 29;
        acc *= 0xbf58476d1ce4e5b9ull;
        acc += i;
    }
    return acc;
}

/* A few real frames above the leaf, as in application code. */
NOINLINE uint64_t bench_cpu_middle(uint64_t iterations, uint64_t seed,
                                   int depth)
{
    if (depth > 0)
        return bench_cpu_middle(iterations, seed + 1, depth - 1) + 1;
    return bench_cpu_leaf(iterations, seed);
}

NOINLINE void bench_cpu(uint64_t iterations)
{
    /* Chunks of 100k iterations (~100 us) so samples spread over frames. */
    for (uint64_t done = 0; done < iterations; done += 100000)
        s_sink += bench_cpu_middle(100000, done, (int)(done / 100000 % 6));
}

/* ------------------------------------------------------------ sys */
NOINLINE void bench_sys(uint64_t iterations)
{
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int devzero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    int pipefd[2];
    char buf[64] = {0};

    if (devnull < 0 || devzero < 0 || pipe(pipefd) < 0) {
        perror("workload sys");
        exit(1);
    }
    for (uint64_t i = 0; i < iterations; i++) {
        s_sink += (uint64_t)syscall(SYS_getppid);
        s_sink += (uint64_t)write(devnull, buf, 1);
        s_sink += (uint64_t)read(devzero, buf, sizeof buf);
        /* A pipe round trip through our own buffer: no context switch,
         * but the pipe and wake-up paths of the kernel. */
        s_sink += (uint64_t)write(pipefd[1], buf, 8);
        s_sink += (uint64_t)read(pipefd[0], buf, 8);
    }
    close(devnull);
    close(devzero);
    close(pipefd[0]);
    close(pipefd[1]);
}

/* --------------------------------------------------------- marker */
/* Distinct function names a latency probe can look for in the API: the
 * driver asks for marker n, we spin in bench_marker_<n> until the next
 * line arrives on stdin. */
static volatile int s_marker_stop;

static void s_spin(void)
{
    while (!s_marker_stop)
        s_sink += bench_cpu_leaf(20000, s_sink);
}

#define MARKER(n) NOINLINE void bench_marker_##n(void) { s_spin(); }
MARKER(0) MARKER(1) MARKER(2) MARKER(3) MARKER(4) MARKER(5) MARKER(6)
MARKER(7) MARKER(8) MARKER(9) MARKER(10) MARKER(11) MARKER(12) MARKER(13)
MARKER(14) MARKER(15) MARKER(16) MARKER(17) MARKER(18) MARKER(19)
MARKER(20) MARKER(21) MARKER(22) MARKER(23) MARKER(24) MARKER(25)
MARKER(26) MARKER(27) MARKER(28) MARKER(29) MARKER(30) MARKER(31)
MARKER(32) MARKER(33) MARKER(34) MARKER(35) MARKER(36) MARKER(37)
MARKER(38) MARKER(39)
#define NMARKERS 40

static void (*const s_markers[NMARKERS])(void) = {
    bench_marker_0, bench_marker_1, bench_marker_2, bench_marker_3,
    bench_marker_4, bench_marker_5, bench_marker_6, bench_marker_7,
    bench_marker_8, bench_marker_9, bench_marker_10, bench_marker_11,
    bench_marker_12, bench_marker_13, bench_marker_14, bench_marker_15,
    bench_marker_16, bench_marker_17, bench_marker_18, bench_marker_19,
    bench_marker_20, bench_marker_21, bench_marker_22, bench_marker_23,
    bench_marker_24, bench_marker_25, bench_marker_26, bench_marker_27,
    bench_marker_28, bench_marker_29, bench_marker_30, bench_marker_31,
    bench_marker_32, bench_marker_33, bench_marker_34, bench_marker_35,
    bench_marker_36, bench_marker_37, bench_marker_38, bench_marker_39,
};

static void s_on_sigio(int sig)
{
    (void)sig;
    s_marker_stop = 1;
}

/* The spin must end when the next command arrives, so stdin is set to
 * signal us (O_ASYNC) instead of being polled from the hot loop. Between
 * markers we block in read, off CPU, so only the marker is sampled. */
static int s_marker_mode(void)
{
    char line[64];
    size_t len = 0;

    signal(SIGIO, s_on_sigio);
    if (fcntl(0, F_SETOWN, getpid()) < 0 ||
        fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_ASYNC) < 0) {
        perror("workload marker: O_ASYNC on stdin");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        ssize_t n = read(0, line + len, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        if (line[len] != '\n' && len + 1 < sizeof line) {
            len++;
            continue;
        }
        line[len] = '\0';
        len = 0;
        int m = atoi(line);
        if (m < 0 || m >= NMARKERS) {
            printf("idle\n");
            fflush(stdout);
            continue;
        }
        s_marker_stop = 0;
        /* When the marker function starts running: the latency's zero. */
        printf("start %d %" PRIu64 "\n", m, s_clock_ns(CLOCK_REALTIME));
        fflush(stdout);
        s_markers[m]();
    }
}

/* -------------------------------------------------------- sleepers */
static volatile sig_atomic_t s_stop;

static void s_on_term(int sig)
{
    (void)sig;
    s_stop = 1;
}

static int s_sleepers_mode(long n)
{
    pid_t *kids = calloc((size_t)n, sizeof(*kids));

    if (!kids)
        return 1;
    signal(SIGTERM, s_on_term);
    for (long i = 0; i < n; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            signal(SIGTERM, SIG_DFL);
            for (;;)
                pause();
        }
        if (kids[i] < 0) {
            perror("workload sleepers: fork");
            break;
        }
    }
    printf("ready\n");
    fflush(stdout);
    while (!s_stop)
        pause();
    for (long i = 0; i < n; i++)
        if (kids[i] > 0)
            kill(kids[i], SIGKILL);
    for (long i = 0; i < n; i++)
        if (kids[i] > 0)
            waitpid(kids[i], NULL, 0);
    free(kids);
    return 0;
}

/* ----------------------------------------------------------- gaps */
/* What a sampling profiler costs the thread it interrupts cannot be seen
 * in the wall time of a fixed amount of work on a shared VM (runs alone
 * spread by 10-40 %), but it can be seen directly: a thread that does
 * nothing but read the clock sees every interruption as a gap between two
 * consecutive reads. A profiler's handler (hrtimer interrupt, BPF program,
 * stack walk) shows up as extra gaps of a few µs at its sampling rate.
 * Ticks and hypervisor exits appear alone too, and are subtracted by the
 * driver. A gap during which the thread was switched out (another task ran
 * on the CPU) is told apart from an interrupt by the thread's context
 * switch counters, read only when a gap happened: that removes most of
 * the noise other processes on the machine add. */

/* Log-scale histogram: 8 buckets per power of two from 256 ns, so a
 * bucket spans 9-12 % of its value. */
#define GAP_SUB_BITS 3
#define GAP_MIN_SHIFT 8
#define GAP_OCTAVES 27
#define GAP_BUCKETS (GAP_OCTAVES << GAP_SUB_BITS)

/* Length bands, ns: the profilers' handlers sit in the first two; the last
 * one holds hypervisor steal and similar long stalls. */
static const uint64_t s_band_edge[] = { 10000, 100000, 1000000 };
#define GAP_BANDS 4

typedef struct {
    uint64_t wall_ns, reads, thresh_ns;
    uint64_t irq_n, irq_ns;                 /* gaps without a switch */
    uint64_t band_n[GAP_BANDS], band_ns[GAP_BANDS];
    uint64_t sw_n, sw_ns;                   /* gaps with a switch */
    uint64_t hist_n[GAP_BUCKETS], hist_ns[GAP_BUCKETS];
    long nvcsw, nivcsw;
    int cpu_start, cpu_end;
    /* When each interrupt gap began (ns from the start) and how long it
     * was: the driver folds them at a profiler's sampling period, where
     * its handler's gaps pile up at one phase and the hypervisor's do not. */
    uint64_t nlog, *log_at;
    uint32_t *log_len;
} gaps_t;

#define GAP_LOG_MAX (1u << 20)

static unsigned s_gap_bucket(uint64_t ns)
{
    if (ns < (1ull << GAP_MIN_SHIFT))
        return 0;
    unsigned e = 63u - (unsigned)__builtin_clzll(ns);
    unsigned sub = (unsigned)(ns >> (e - GAP_SUB_BITS)) &
                   ((1u << GAP_SUB_BITS) - 1);
    unsigned idx = ((e - GAP_MIN_SHIFT) << GAP_SUB_BITS) + sub;
    return idx < GAP_BUCKETS ? idx : GAP_BUCKETS - 1;
}

static uint64_t s_gap_bucket_low(unsigned idx)
{
    unsigned e = (idx >> GAP_SUB_BITS) + GAP_MIN_SHIFT;
    uint64_t sub = idx & ((1u << GAP_SUB_BITS) - 1);
    return ((1ull << GAP_SUB_BITS) + sub) << (e - GAP_SUB_BITS);
}

static long s_thread_switches(long *voluntary, long *involuntary)
{
    struct rusage ru;

    if (getrusage(RUSAGE_THREAD, &ru) < 0)
        return -1;
    *voluntary = ru.ru_nvcsw;
    *involuntary = ru.ru_nivcsw;
    return ru.ru_nvcsw + ru.ru_nivcsw;
}

static int s_pin(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) {
        perror("workload: sched_setaffinity");
        return -1;
    }
    return 0;
}

static void s_gaps_run(uint64_t duration_ns, uint64_t thresh_ns, gaps_t *g)
{
    long v0, i0, v, iv;
    long switches = s_thread_switches(&v0, &i0);

    uint64_t *log_at = g->log_at;
    uint32_t *log_len = g->log_len;

    memset(g, 0, sizeof *g);
    g->log_at = log_at;
    g->log_len = log_len;
    g->thresh_ns = thresh_ns;
    g->cpu_start = sched_getcpu();
    uint64_t start = s_clock_ns(CLOCK_MONOTONIC);
    uint64_t end = start + duration_ns, prev = start, reads = 0;
    while (prev < end) {
        uint64_t now = s_clock_ns(CLOCK_MONOTONIC);
        uint64_t d = now - prev;
        reads++;
        prev = now;
        if (d <= thresh_ns)
            continue;
        long sw = s_thread_switches(&v, &iv);
        if (sw != switches) {
            switches = sw;
            g->sw_n++;
            g->sw_ns += d;
        } else {
            unsigned band = 0;
            while (band < GAP_BANDS - 1 && d >= s_band_edge[band])
                band++;
            unsigned b = s_gap_bucket(d);
            g->irq_n++;
            g->irq_ns += d;
            g->band_n[band]++;
            g->band_ns[band] += d;
            g->hist_n[b]++;
            g->hist_ns[b] += d;
            if (g->nlog < GAP_LOG_MAX) {
                g->log_at[g->nlog] = now - d - start;
                g->log_len[g->nlog++] = d > UINT32_MAX ? UINT32_MAX
                                                       : (uint32_t)d;
            }
        }
        /* The getrusage call is the detector's own cost, not a gap. */
        prev = s_clock_ns(CLOCK_MONOTONIC);
    }
    g->wall_ns = prev - start;
    g->reads = reads;
    g->cpu_end = sched_getcpu();
    s_thread_switches(&v, &iv);
    g->nvcsw = v - v0;
    g->nivcsw = iv - i0;
}

static void s_gaps_print(const gaps_t *g)
{
    printf("wall_ns=%" PRIu64 " reads=%" PRIu64 " thresh_ns=%" PRIu64
           " cpu=%d cpu_end=%d nvcsw=%ld nivcsw=%ld"
           " irq_n=%" PRIu64 " irq_ns=%" PRIu64
           " sw_n=%" PRIu64 " sw_ns=%" PRIu64,
           g->wall_ns, g->reads, g->thresh_ns, g->cpu_start, g->cpu_end,
           g->nvcsw, g->nivcsw, g->irq_n, g->irq_ns, g->sw_n, g->sw_ns);
    for (int b = 0; b < GAP_BANDS; b++)
        printf(" band%d_n=%" PRIu64 " band%d_ns=%" PRIu64, b, g->band_n[b],
               b, g->band_ns[b]);
    /* Non-empty buckets as low_ns:count:sum_ns, comma separated. */
    printf(" hist=");
    const char *sep = "";
    for (unsigned i = 0; i < GAP_BUCKETS; i++) {
        if (!g->hist_n[i])
            continue;
        printf("%s%" PRIu64 ":%" PRIu64 ":%" PRIu64, sep,
               s_gap_bucket_low(i), g->hist_n[i], g->hist_ns[i]);
        sep = ",";
    }
    printf("%s log=", *sep ? "" : "-");
    /* at:len in µs (at) and ns (len): a few thousand entries a run. */
    for (uint64_t i = 0; i < g->nlog; i++)
        printf("%s%.3f:%" PRIu32, i ? "," : "", g->log_at[i] / 1e3,
               g->log_len[i]);
    printf("%s\n", g->nlog ? "" : "-");
    fflush(stdout);
}

static uint64_t s_gap_threshold(void)
{
    const char *env = getenv("BENCH_GAP_NS");
    long long v = env ? atoll(env) : 0;

    return v > 0 ? (uint64_t)v : 1000;
}

static int s_gaps(uint64_t ms)
{
    gaps_t *g = calloc(1, sizeof *g);
    int rc = 1;

    if (!g || !(g->log_at = malloc(GAP_LOG_MAX * sizeof *g->log_at)) ||
        !(g->log_len = malloc(GAP_LOG_MAX * sizeof *g->log_len))) {
        perror("workload gaps");
        goto cleanup;
    }
    /* Touch the log now so page faults do not show up as gaps. */
    memset(g->log_at, 0, GAP_LOG_MAX * sizeof *g->log_at);
    memset(g->log_len, 0, GAP_LOG_MAX * sizeof *g->log_len);
    s_gaps_run(ms * 1000000ull, s_gap_threshold(), g);
    s_gaps_print(g);
    rc = 0;
cleanup:
    if (g) {
        free(g->log_at);
        free(g->log_len);
    }
    free(g);
    return rc;
}

/* --------------------------------------------------------- switch */
/* An off-CPU profiler runs on every context switch (sched_switch), so its
 * cost lands on programs that block. Two threads on one CPU hand a byte
 * back and forth through two pipes: every hand-over is a switch. */
typedef struct {
    int to_peer[2], from_peer[2];
    uint64_t rounds;
} pingpong_t;

static void *s_pong(void *arg)
{
    pingpong_t *pp = arg;
    char c;

    for (uint64_t i = 0; i < pp->rounds; i++) {
        if (read(pp->to_peer[0], &c, 1) != 1 ||
            write(pp->from_peer[1], &c, 1) != 1)
            break;
    }
    return NULL;
}

static int s_switch(uint64_t rounds)
{
    pingpong_t pp = { .rounds = rounds };
    pthread_t tid;
    int rc = 1;
    char c = 'x';

    if (pipe(pp.to_peer) < 0 || pipe(pp.from_peer) < 0) {
        perror("workload switch: pipe");
        return 1;
    }
    uint64_t w0 = s_clock_ns(CLOCK_MONOTONIC);
    uint64_t c0 = s_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    /* The thread inherits our affinity: both on one CPU. */
    if (pthread_create(&tid, NULL, s_pong, &pp) != 0) {
        perror("workload switch: pthread_create");
        goto cleanup;
    }
    for (uint64_t i = 0; i < rounds; i++) {
        if (write(pp.to_peer[1], &c, 1) != 1 ||
            read(pp.from_peer[0], &c, 1) != 1)
            break;
    }
    pthread_join(tid, NULL);
    uint64_t w1 = s_clock_ns(CLOCK_MONOTONIC);
    uint64_t c1 = s_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("wall_ns=%" PRIu64 " cpu_ns=%" PRIu64 " nvcsw_total=%ld\n",
           w1 - w0, c1 - c0, ru.ru_nvcsw);
    fflush(stdout);
    rc = 0;
cleanup:
    close(pp.to_peer[0]);
    close(pp.to_peer[1]);
    close(pp.from_peer[0]);
    close(pp.from_peer[1]);
    return rc;
}

/* ------------------------------------------------------- cpu, sys */
static int s_fixed_work(const char *mode, uint64_t n)
{
    uint64_t w0 = s_clock_ns(CLOCK_MONOTONIC);
    uint64_t c0 = s_clock_ns(CLOCK_PROCESS_CPUTIME_ID);

    if (strcmp(mode, "cpu") == 0)
        bench_cpu(n);
    else if (strcmp(mode, "sys") == 0)
        bench_sys(n);
    else {
        fprintf(stderr, "workload: unknown mode %s\n", mode);
        return 2;
    }
    uint64_t w1 = s_clock_ns(CLOCK_MONOTONIC);
    uint64_t c1 = s_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    printf("wall_ns=%" PRIu64 " cpu_ns=%" PRIu64 "\n", w1 - w0, c1 - c0);
    fflush(stdout);
    return 0;
}

/* ---------------------------------------------------------- serve */
static int s_serve(int cpu)
{
    char line[128], mode[16];
    unsigned long long n;

    if (s_pin(cpu) < 0)
        return 1;
    printf("ready pid=%d cpu=%d\n", (int)getpid(), cpu);
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        int rc;
        if (sscanf(line, "%15s %llu", mode, &n) != 2 || n == 0) {
            printf("error bad command\n");
            fflush(stdout);
            continue;
        }
        if (strcmp(mode, "gaps") == 0)
            rc = s_gaps(n);
        else if (strcmp(mode, "switch") == 0)
            rc = s_switch(n);
        else
            rc = s_fixed_work(mode, n);
        if (rc != 0) {
            printf("error %s failed\n", mode);
            fflush(stdout);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "marker") == 0)
        return s_marker_mode();
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: workload cpu|sys ITERATIONS | marker | "
                        "sleepers N | gaps MS CPU | switch N CPU | "
                        "serve CPU\n");
        return 2;
    }
    long long n = atoll(argv[2]);
    if (n < 0 || (n == 0 && strcmp(argv[1], "serve") != 0)) {
        fprintf(stderr, "workload: bad count %s\n", argv[2]);
        return 2;
    }
    if (strcmp(argv[1], "serve") == 0)
        return s_serve((int)n);
    if (strcmp(argv[1], "sleepers") == 0)
        return s_sleepers_mode((long)n);
    if (argc == 4 && s_pin(atoi(argv[3])) < 0)
        return 1;
    if (strcmp(argv[1], "gaps") == 0)
        return s_gaps((uint64_t)n);
    if (strcmp(argv[1], "switch") == 0)
        return s_switch((uint64_t)n);
    int rc = s_fixed_work(argv[1], (uint64_t)n);
    return rc ? rc : (int)(s_sink & 0);
}
