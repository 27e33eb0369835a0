/* workload: fixed-work programs for the profiler benchmarks.
 *
 *   workload cpu ITERATIONS     CPU-bound: a hash loop under a few frames
 *   workload sys ITERATIONS     syscall-heavy: getppid, write, read, pipe
 *   workload marker             latency probe: reads marker numbers on
 *                               stdin and spins in bench_marker_<n>
 *   workload sleepers N         N children that sleep until the parent is
 *                               told to stop (SIGTERM), for the agent cost
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

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "marker") == 0)
        return s_marker_mode();
    if (argc != 3) {
        fprintf(stderr, "usage: workload cpu|sys ITERATIONS | marker | "
                        "sleepers N\n");
        return 2;
    }
    long long n = atoll(argv[2]);
    if (n <= 0) {
        fprintf(stderr, "workload: bad count %s\n", argv[2]);
        return 2;
    }
    if (strcmp(argv[1], "sleepers") == 0)
        return s_sleepers_mode((long)n);
    uint64_t w0 = s_clock_ns(CLOCK_MONOTONIC);
    uint64_t c0 = s_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    if (strcmp(argv[1], "cpu") == 0)
        bench_cpu((uint64_t)n);
    else if (strcmp(argv[1], "sys") == 0)
        bench_sys((uint64_t)n);
    else {
        fprintf(stderr, "workload: unknown mode %s\n", argv[1]);
        return 2;
    }
    uint64_t w1 = s_clock_ns(CLOCK_MONOTONIC);
    uint64_t c1 = s_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    printf("wall_ns=%" PRIu64 " cpu_ns=%" PRIu64 "\n", w1 - w0, c1 - c0);
    return (int)(s_sink & 0);
}
