/* short_lived: spins ~40 ms of CPU time in sky_short_lived_spin and exits,
 * to check that a process gone before its samples are drained is still
 * resolved. CPU time, so a busy machine does not starve it of samples. */
#include <stdint.h>
#include <time.h>

#define SKY_NOINLINE __attribute__((noinline))

static volatile uint64_t s_sink;

SKY_NOINLINE void sky_short_lived_spin(uint64_t ms)
{
    struct timespec start, now;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
    do {
        for (int i = 0; i < 10000; i++)
            s_sink = s_sink * 2862933555777941757ull + 3037000493ull;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    } while ((uint64_t)(now.tv_sec - start.tv_sec) * 1000000000ull +
                 (uint64_t)(now.tv_nsec - start.tv_nsec) <
             ms * 1000000ull);
}

int main(void)
{
    sky_short_lived_spin(40);
    return 0;
}
