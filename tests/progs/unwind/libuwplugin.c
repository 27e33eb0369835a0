/* libuwplugin.so: loaded by unwind_work with dlopen after it started, so
 * its unwind tables must be found for an object mapped after exec. Not
 * linked by anything. */
#include <stdint.h>

#define UW_NOINLINE __attribute__((noinline))

UW_NOINLINE uint64_t uwplug_leaf(uint64_t iterations)
{
    volatile uint64_t acc = 7;

    for (uint64_t i = 0; i < iterations; i++)
        acc = acc * 2862933555777941757ull + 3037000493ull;
    return acc;
}

/* The entry point unwind_work finds with dlsym. */
UW_NOINLINE uint64_t uwplug_entry(uint64_t iterations)
{
    volatile uint64_t pad[4] = { 1, 2, 3, 4 };
    uint64_t r = uwplug_leaf(iterations);
    return r + pad[1];
}
