/* libskyload.so: the shared-library half of the test workloads, so user
 * frames of a library (not only of the executable) can be checked. */
#include <stdint.h>

#define SKY_NOINLINE __attribute__((noinline))

/* Integer work the compiler cannot fold away; returns a value the caller
 * keeps so the loop survives optimisation. */
SKY_NOINLINE uint64_t skylib_beta_leaf(uint64_t iterations)
{
    volatile uint64_t acc = 0x9e3779b97f4a7c15ull;

    for (uint64_t i = 0; i < iterations; i++)
        acc = (acc ^ i) * 0xbf58476d1ce4e5b9ull + (acc >> 29);
    return acc;
}
