/* cpu_workload SECONDS: burns one CPU for SECONDS with known shares of
 * distinctively named functions, for the profiler's end-to-end tests:
 *
 *   main -> sky_run -> sky_alpha_outer -> sky_alpha_leaf      ~60%
 *   main -> sky_run -> sky_beta_outer  -> skylib_beta_leaf    ~30% (libskyload.so)
 *   main -> sky_run -> sky_gamma_syscalls (getppid, write)    ~10% (kernel frames)
 *
 * Shares are time-sliced on CLOCK_MONOTONIC in 10 ms rounds, single
 * threaded, so they hold whatever the CPU speed. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define SKY_NOINLINE __attribute__((noinline))

uint64_t skylib_beta_leaf(uint64_t iterations);

static volatile uint64_t s_sink;
static int s_devnull = -1;

static SKY_NOINLINE uint64_t sky_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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

SKY_NOINLINE void sky_gamma_syscalls(uint64_t until_ns)
{
    static const char byte = 'x';

    while (sky_now_ns() < until_ns) {
        s_sink += (uint64_t)getppid();
        if (s_devnull >= 0 && write(s_devnull, &byte, 1) < 0)
            s_sink++;
    }
}

SKY_NOINLINE void sky_run(double seconds)
{
    uint64_t end = sky_now_ns() + (uint64_t)(seconds * 1e9);

    /* 10 ms rounds: 6 ms alpha, 3 ms beta, 1 ms gamma. */
    for (uint64_t t = sky_now_ns(); t < end; t = sky_now_ns()) {
        sky_alpha_outer(t + 6000000);
        sky_beta_outer(t + 9000000);
        sky_gamma_syscalls(t + 10000000);
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
