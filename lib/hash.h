/* The hashes every hash table in skyprof uses: FNV-1a over strings and
 * bytes (short keys, fast, well spread) and a 64-bit finaliser for integer
 * keys and for spreading FNV's low bits. */
#ifndef SKYPROF_HASH_H
#define SKYPROF_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_OFFSET 1469598103934665603ull
#define HASH_FNV_PRIME 1099511628211ull

/* FNV-1a of a NUL-terminated string; seed distinguishes key spaces. */
static inline uint64_t hash_fnv1a(const char *s, uint64_t seed)
{
    uint64_t h = HASH_FNV_OFFSET ^ seed;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * HASH_FNV_PRIME;
    return h;
}

static inline uint64_t hash_fnv1a_len(const void *p, size_t len, uint64_t seed)
{
    const unsigned char *b = p;
    uint64_t h = HASH_FNV_OFFSET ^ seed;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * HASH_FNV_PRIME;
    return h;
}

/* MurmurHash3's 64-bit finaliser. */
static inline uint64_t hash_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

#endif
