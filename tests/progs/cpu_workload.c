/* cpu_workload SECONDS: burns one CPU for SECONDS with known shares of
 * distinctively named functions, for the profiler's end-to-end tests:
 *
 *   main -> sky_run -> sky_alpha_outer -> sky_alpha_leaf      ~60%
 *   main -> sky_run -> sky_beta_outer  -> skylib_beta_leaf    ~30% (libskyload.so)
 *   main -> sky_run -> sky_gamma_syscalls (getppid, write)    ~10% (kernel frames)
 *
 * SECONDS is wall time; the shares are slices of the thread's CPU time in
 * rounds of varying length, single threaded, so they hold whatever the CPU
 * speed and however busy the machine. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SKY_NOINLINE __attribute__((noinline))

uint64_t skylib_beta_leaf(uint64_t iterations);

static volatile uint64_t s_sink;
static int s_devnull = -1;

static SKY_NOINLINE uint64_t sky_clock_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Phases are measured in this thread's CPU time, not wall time, so the
 * shares hold on a busy machine where the workload is often preempted
 * (a preemption would otherwise eat a whole short phase). */
static SKY_NOINLINE uint64_t sky_now_ns(void)
{
    return sky_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

SKY_NOINLINE uint64_t sky_alpha_leaf(uint64_t iterations)
{
    volatile uint64_t acc = 1;

    for (uint64_t i = 0; i < iterations; i++)
        acc = acc * 6364136223846793005ull + 1442695040888963407ull;
    return acc;
}

SKY_NOINLINE void sky_alpha_outer(uint64_t until_ns)
{
    while (sky_now_ns() < until_ns)
        s_sink += sky_alpha_leaf(20000);
}

SKY_NOINLINE void sky_beta_outer(uint64_t until_ns)
{
    while (sky_now_ns() < until_ns)
        s_sink += skylib_beta_leaf(20000);
}

/* The syscall instruction sits in a function with a frame pointer: libc's
 * wrappers have none, and a frame-pointer unwind from inside them would
 * skip their caller, hiding sky_gamma_syscalls from the stack. */
SKY_NOINLINE long sky_gamma_syscall3(long nr, long a1, long a2, long a3)
{
#if defined(__x86_64__)
    long ret;
    /* Asking for the frame address makes gcc set up the frame it would
     * otherwise leave out of an asm-only leaf. */
    void *volatile frame = __builtin_frame_address(0);
    (void)frame;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"(nr), "D"(a1), "S"(a2), "d"(a3)
                     : "rcx", "r11", "memory");
    return ret;
#else
    return syscall(nr, a1, a2, a3);
#endif
}

SKY_NOINLINE void sky_gamma_syscalls(uint64_t until_ns)
{
    static const char byte = 'x';

    while (sky_now_ns() < until_ns) {
        for (int i = 0; i < 4; i++) {
            s_sink += (uint64_t)sky_gamma_syscall3(SYS_getppid, 0, 0, 0);
            if (s_devnull >= 0)
                s_sink += (uint64_t)sky_gamma_syscall3(SYS_write, s_devnull,
                                                       (long)&byte, 1);
        }
    }
}

SKY_NOINLINE void sky_run(double seconds)
{
    uint64_t end = sky_clock_ns(CLOCK_MONOTONIC) + (uint64_t)(seconds * 1e9);
    uint32_t rng = 0x2545f491u;

    /* Rounds of 6/3/1 parts. Their length varies between 3 and 13 ms so
     * they never lock in phase with a sampler's fixed period (a 10 ms
     * round under a 10 ms sampler would always be caught in one phase). */
    while (sky_clock_ns(CLOCK_MONOTONIC) < end) {
        uint64_t t = sky_now_ns();
        rng = rng * 1664525u + 1013904223u;
        uint64_t round_ns = 3000000 + (uint64_t)(rng >> 8) % 10000000;
        sky_alpha_outer(t + round_ns * 6 / 10);
        sky_beta_outer(t + round_ns * 9 / 10);
        sky_gamma_syscalls(t + round_ns);
    }
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;

    if (seconds <= 0 || seconds > 86400) {
        fprintf(stderr, "usage: cpu_workload SECONDS\n");
        return 2;
    }
    s_devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    sky_run(seconds);
    if (s_devnull >= 0)
        close(s_devnull);
    return (int)(s_sink & 0); /* keep s_sink observable */
}
