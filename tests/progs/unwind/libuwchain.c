/* libuwchain.so: the shared-library levels of unwind_work's call chains,
 * built like its executable (no frame pointers), so a walk has to cross
 * from the library's unwind tables back into the executable's. */
#include <stdint.h>

#define UW_NOINLINE __attribute__((noinline))

/* The leaf of path A: integer work the compiler cannot fold. */
UW_NOINLINE uint64_t uwlib_leaf(uint64_t iterations)
{
    volatile uint64_t acc = 0x9e3779b97f4a7c15ull;

    for (uint64_t i = 0; i < iterations; i++)
        acc = (acc ^ i) * 0xbf58476d1ce4e5b9ull + (acc >> 29);
    return acc;
}

/* A middle level with a frame of its own (a local array keeps its stack
 * pointer moved), and work after the call so it is not a tail call. */
UW_NOINLINE uint64_t uwlib_middle(uint64_t iterations)
{
    volatile uint64_t scratch[8];

    for (int i = 0; i < 8; i++)
        scratch[i] = iterations + (uint64_t)i;
    uint64_t r = uwlib_leaf(iterations);
    return r ^ scratch[3];
}
