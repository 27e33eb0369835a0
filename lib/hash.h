/* The hashes every hash table in skyprof uses: FNV-1a over strings and
 * bytes (short keys, fast, well spread) and a 64-bit finaliser for integer
 * keys and for spreading FNV's low bits. */
#ifndef SKYPROF_HASH_H
#define SKYPROF_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* splitmix64's finaliser: every input bit affects every output bit. The
 * collector's tables hash integer keys with it. */
static inline uint64_t hash_split64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* Bytes hashed eight at a time through hash_split64 (stack frames, build
 * ids: longer keys than FNV is quick at). */
static inline uint64_t hash_bytes64(const void *data, size_t len,
                                    uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = hash_split64(seed ^ len);
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = hash_split64(h ^ w);
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        h = hash_split64(h ^ w ^ 0x9e3779b97f4a7c15ull);
    }
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
