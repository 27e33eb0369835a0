/* unwind_work MODE [SECONDS]: call chains with known names and shares for
 * the unwinder's end-to-end tests (tests/test_unwind_e2e.c). Built like a
 * distribution builds software, -O2 -g -fomit-frame-pointer, once by gcc
 * and once by clang (tests/progs/unwind/README.md), so only unwind tables
 * (.eh_frame) lead from a leaf back to main or start_thread.
 *
 *   cpu      main -> uw_run_cpu -> uw_chain_a -> uwlib_middle -> uwlib_leaf
 *                                   (libuwchain.so)              40 %
 *                               -> uw_sort_b -> qsort (libc) -> ...
 *                                   -> uw_compare                30 %
 *                               -> uw_tight_c -> uw_tiny_mid -> uw_tiny_leaf
 *                                   (tiny calls: many samples land in
 *                                   prologues and epilogues)     30 %
 *   signal   main -> uw_run_signal -> uw_signal_spin -> uw_spin_leaf, and
 *            every 10 ms of CPU a SIGPROF whose handler uw_on_signal ->
 *            uw_handler_work burns 1 to 9 ms of it: about half the CPU
 *            is on the far side of a signal frame (the lengths vary
 *            because the timer fires on the scheduler tick, where a
 *            tick-driven sampler samples too: a fixed short handler
 *            would never be caught)
 *   threads  2 x start_thread -> uw_thread_main -> uw_chain_a -> ... ;
 *            main waits in pthread_join
 *   dlopen   main -> uw_run_dlopen sleeps 200 ms, dlopens libuwplugin.so
 *            (beside the executable), then -> uwplug_entry -> uwplug_leaf
 *   offcpu   main -> uw_run_offcpu -> uw_reader -> uw_read_byte -> read
 *            (libc's frameless wrapper) on a pipe that
 *            uw_writer_thread -> uw_writer_pause -> nanosleep feeds every
 *            20 ms: off CPU, read's caller uw_read_byte must show
 *   short    main -> uw_short_spin for 40 ms of wall time, then exits
 *
 * The shares are slices of the thread's CPU time in rounds of varying
 * length, so they hold however busy the machine is. No function here
 * tail-calls (work follows every call), so every level stays on the
 * stack; noipa keeps gcc from renaming clones (.constprop, .isra). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#if defined(__clang__)
#define UW_NOINLINE __attribute__((noinline))
#else
#define UW_NOINLINE __attribute__((noinline, noipa))
#endif

uint64_t uwlib_middle(uint64_t iterations);

static volatile uint64_t s_sink;
static volatile sig_atomic_t s_stop;

UW_NOINLINE uint64_t uw_clock_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* This thread's CPU time: phases measured in it keep their shares when
 * the process is preempted. */
UW_NOINLINE uint64_t uw_cpu_ns(void)
{
    return uw_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* ------------------------------------------------------------ path A */
UW_NOINLINE uint64_t uw_chain_a(uint64_t until_ns)
{
    uint64_t acc = 0;

    while (uw_cpu_ns() < until_ns)
        acc += uwlib_middle(20000) + 1;
    return acc;
}

/* ------------------------------------------------------------ path B */
UW_NOINLINE int uw_compare(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    /* A little work per comparison so the callback holds its share. */
    for (int i = 0; i < 8; i++) {
        x = x * 2654435761u + 1;
        y = y * 2654435761u + 1;
    }
    return (x > y) - (x < y);
}

UW_NOINLINE uint64_t uw_sort_b(uint64_t until_ns)
{
    uint32_t v[512];
    uint64_t acc = 0;
    uint32_t seed = 12345;

    while (uw_cpu_ns() < until_ns) {
        for (size_t i = 0; i < 512; i++)
            v[i] = seed = seed * 1103515245u + 12345u;
        qsort(v, 512, sizeof v[0], uw_compare);
        acc += v[7] + 1;
    }
    return acc;
}

/* ------------------------------------------------------------ path C */
UW_NOINLINE uint64_t uw_tiny_leaf(uint64_t x)
{
    return (x * x) ^ (x >> 3);
}

/* x lives in a callee-saved register across the call: a push in the
 * prologue and a pop in the epilogue move the CFA inside this function. */
UW_NOINLINE uint64_t uw_tiny_mid(uint64_t x)
{
    uint64_t y = uw_tiny_leaf(x);
    return y * 3 + x;
}

UW_NOINLINE uint64_t uw_tight_c(uint64_t until_ns)
{
    uint64_t acc = 0;

    while (uw_cpu_ns() < until_ns)
        for (uint64_t i = 0; i < 2000; i++)
            acc += uw_tiny_mid(i ^ acc);
    return acc;
}

UW_NOINLINE void uw_run_cpu(double seconds)
{
    uint64_t end = uw_clock_ns(CLOCK_MONOTONIC) + (uint64_t)(seconds * 1e9);
    uint32_t rng = 0x2545f491u;

    /* Rounds of 4/3/3 parts, 3 to 13 ms long so they never lock in phase
     * with a sampler's period. */
    while (uw_clock_ns(CLOCK_MONOTONIC) < end) {
        uint64_t t = uw_cpu_ns();
        rng = rng * 1664525u + 1013904223u;
        uint64_t round_ns = 3000000 + (uint64_t)(rng >> 8) % 10000000;
        s_sink += uw_chain_a(t + round_ns * 4 / 10);
        s_sink += uw_sort_b(t + round_ns * 7 / 10);
        s_sink += uw_tight_c(t + round_ns);
    }
}

/* ------------------------------------------------------------ signal */
UW_NOINLINE uint64_t uw_handler_work(uint64_t until_ns)
{
    volatile uint64_t acc = 3;

    while (uw_cpu_ns() < until_ns)
        for (int i = 0; i < 1000; i++)
            acc = acc * 6364136223846793005ull + 1442695040888963407ull;
    return acc;
}

UW_NOINLINE void uw_on_signal(int sig)
{
    static uint32_t rng = 0x9e3779b9u;

    (void)sig;
    rng = rng * 1664525u + 1013904223u;
    s_sink += uw_handler_work(uw_cpu_ns() + 1000000 +
                              (uint64_t)(rng >> 8) % 8000000) + 1;
}

UW_NOINLINE uint64_t uw_spin_leaf(uint64_t n)
{
    volatile uint64_t acc = 5;

    for (uint64_t i = 0; i < n; i++)
        acc = (acc << 1) ^ (acc >> 7) ^ i;
    return acc;
}

UW_NOINLINE uint64_t uw_signal_spin(uint64_t end_ns)
{
    uint64_t acc = 0;

    while (uw_clock_ns(CLOCK_MONOTONIC) < end_ns)
        acc += uw_spin_leaf(20000) + 1;
    return acc;
}

UW_NOINLINE int uw_run_signal(double seconds)
{
    struct sigaction sa;
    struct itimerval it = { { 0, 10000 }, { 0, 10000 } };

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = uw_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGPROF, &sa, NULL) != 0 ||
        setitimer(ITIMER_PROF, &it, NULL) != 0)
        return -1;
    s_sink += uw_signal_spin(uw_clock_ns(CLOCK_MONOTONIC) +
                             (uint64_t)(seconds * 1e9));
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_PROF, &it, NULL);
    return 0;
}

/* ------------------------------------------------------------ threads */
static double s_thread_seconds;

UW_NOINLINE void *uw_thread_main(void *arg)
{
    uint64_t end = uw_clock_ns(CLOCK_MONOTONIC) +
                   (uint64_t)(s_thread_seconds * 1e9);
    uint64_t acc = 0;

    (void)arg;
    while (uw_clock_ns(CLOCK_MONOTONIC) < end)
        acc += uw_chain_a(uw_cpu_ns() + 2000000);
    s_sink += acc;
    return NULL;
}

UW_NOINLINE int uw_run_threads(double seconds)
{
    pthread_t t[2];

    s_thread_seconds = seconds;
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, uw_thread_main, NULL) != 0)
            return -1;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    return 0;
}

/* ------------------------------------------------------------ dlopen */
/* The plugin's path beside the executable, computed in a frame of its
 * own: PATH_MAX buffers in uw_run_dlopen's frame would put main more
 * than 8 KiB up the stack, past what perf --call-graph dwarf copies. */
UW_NOINLINE void *uw_open_plugin(void)
{
    char exe[PATH_MAX], lib[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    snprintf(lib, sizeof lib, "%s/libuwplugin.so", dirname(exe));
    void *h = dlopen(lib, RTLD_NOW);
    if (!h)
        fprintf(stderr, "unwind_work: %s\n", dlerror());
    return h;
}

UW_NOINLINE int uw_run_dlopen(double seconds)
{
    struct timespec pause = { 0, 200000000 };
    int rc = -1;

    /* Loaded well after exec: the unwinder must pick up a new mapping. */
    nanosleep(&pause, NULL);
    void *h = uw_open_plugin();
    if (!h)
        return -1;
    uint64_t (*entry)(uint64_t) = (uint64_t (*)(uint64_t))dlsym(h, "uwplug_entry");
    if (entry) {
        uint64_t end = uw_clock_ns(CLOCK_MONOTONIC) + (uint64_t)(seconds * 1e9);
        while (uw_clock_ns(CLOCK_MONOTONIC) < end)
            s_sink += entry(20000) + 1;
        rc = 0;
    }
    dlclose(h);
    return rc;
}

/* ------------------------------------------------------------ offcpu */
static int s_pipe[2];

UW_NOINLINE void uw_writer_pause(void)
{
    struct timespec ts = { 0, 20000000 };

    nanosleep(&ts, NULL);
    s_sink += 1;
}

UW_NOINLINE void *uw_writer_thread(void *arg)
{
    (void)arg;
    while (!s_stop) {
        uw_writer_pause();
        if (write(s_pipe[1], "x", 1) != 1)
            break;
    }
    close(s_pipe[1]);
    return NULL;
}

/* Blocks in libc's read: the wrapper has no frame of its own, so only
 * unwind tables lead from it back here. */
UW_NOINLINE int uw_read_byte(int fd)
{
    char c;
    ssize_t n = read(fd, &c, 1);
    return n == 1 ? (int)c + 1 : 0;
}

UW_NOINLINE uint64_t uw_reader(uint64_t end_ns)
{
    uint64_t acc = 0;
    int c;

    while (uw_clock_ns(CLOCK_MONOTONIC) < end_ns &&
           (c = uw_read_byte(s_pipe[0])) > 0)
        acc += (uint64_t)c;
    return acc;
}

UW_NOINLINE int uw_run_offcpu(double seconds)
{
    pthread_t w;

    if (pipe(s_pipe) != 0 ||
        pthread_create(&w, NULL, uw_writer_thread, NULL) != 0)
        return -1;
    s_sink += uw_reader(uw_clock_ns(CLOCK_MONOTONIC) +
                        (uint64_t)(seconds * 1e9));
    s_stop = 1;
    pthread_join(w, NULL);
    close(s_pipe[0]);
    return 0;
}

/* ------------------------------------------------------------ short */
UW_NOINLINE uint64_t uw_short_spin(uint64_t end_ns)
{
    uint64_t acc = 0;

    while (uw_clock_ns(CLOCK_MONOTONIC) < end_ns)
        acc += uw_spin_leaf(2000) + 1;
    return acc;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    double seconds = argc > 2 ? atof(argv[2]) : 3.0;
    int rc = 0;

    if (seconds <= 0 || seconds > 86400) {
        fprintf(stderr, "unwind_work: SECONDS out of range\n");
        return 2;
    }
    if (strcmp(mode, "cpu") == 0)
        uw_run_cpu(seconds);
    else if (strcmp(mode, "signal") == 0)
        rc = uw_run_signal(seconds);
    else if (strcmp(mode, "threads") == 0)
        rc = uw_run_threads(seconds);
    else if (strcmp(mode, "dlopen") == 0)
        rc = uw_run_dlopen(seconds);
    else if (strcmp(mode, "offcpu") == 0)
        rc = uw_run_offcpu(seconds);
    else if (strcmp(mode, "short") == 0)
        s_sink += uw_short_spin(uw_clock_ns(CLOCK_MONOTONIC) + 40000000);
    else {
        fprintf(stderr, "usage: unwind_work cpu|signal|threads|dlopen|"
                        "offcpu|short [SECONDS]\n");
        return 2;
    }
    return rc == 0 ? (int)(s_sink & 0) : 1;
}
