/* Sorted function symbol table with an interned string pool. */
#include "symbolizer/symtab.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer/demangle.h"
#include "hash.h"

/* Longest name kept: longer C++ template names are truncated (nobody reads
 * past this in a flame graph, and the wire caps strings anyway). */
#define SYMTAB_MAX_NAME 2047

/* Names are pool offsets; the top bit marks "still mangled". */
#define NAME_MANGLED 0x80000000u
#define NAME_OFFSET_MASK 0x7fffffffu

/* When a lookup lands past the end of the symbol before it, the address
 * may still lie in an enclosing symbol that starts earlier (nested local
 * symbols); look back this many entries before giving up. */
#define LOOKBACK 8

/* Starts live in their own array so the binary search walks 8-byte keys
 * only (a libc-sized table fits in L1); the rest is read once per hit. */
typedef struct {
    uint32_t len;      /* bytes covered */
    uint32_t name;     /* pool offset | NAME_MANGLED */
} sym_entry_t;

/* Only while building. */
typedef struct {
    uint64_t start;
    uint64_t size;
    uint64_t limit;
    uint32_t name;
    uint32_t seq;
    uint8_t rank;
} sym_build_t;

/* Every BLOCK-th start is copied into a small top-level index: a lookup
 * searches the index (a few KB, cache resident) and then one block of 64
 * starts (8 cache lines), instead of ~17 cold cache lines of a big table.
 * This is what makes lookups in libLLVM-sized tables fast. */
#define BLOCK_SHIFT 6
#define BLOCK (1u << BLOCK_SHIFT)

struct symtab {
    uint64_t *starts;
    uint64_t *index;       /* starts[i * BLOCK] */
    size_t nindex;
    sym_entry_t *entries;
    size_t count;

    char *pool;
    size_t pool_len;
    size_t pool_cap;

    /* build state, freed at finish */
    sym_build_t *build;
    size_t nbuild;
    size_t build_cap;
    uint32_t *intern;      /* open addressing: pool offset + 1, 0 = empty */
    size_t intern_cap;     /* power of two */
    size_t intern_used;
    bool finished;
};

symtab_t *
symtab_new(void)
{
    symtab_t *self = calloc(1, sizeof(*self));
    return self;
}

void
symtab_destroy(symtab_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    symtab_t *self = *self_p;
    free(self->starts);
    free(self->index);
    free(self->entries);
    free(self->pool);
    free(self->build);
    free(self->intern);
    free(self);
    *self_p = NULL;
}

/* Appends len bytes + NUL to the pool; returns the offset or -1. */
static int64_t
s_pool_append(symtab_t *self, const char *s, size_t len)
{
    int64_t off = -1;
    size_t need = self->pool_len + len + 1;
    if (need > NAME_OFFSET_MASK)
        goto cleanup;
    if (need > self->pool_cap) {
        size_t cap = self->pool_cap ? self->pool_cap : 4096;
        while (cap < need)
            cap *= 2;
        char *pool = realloc(self->pool, cap);
        if (!pool)
            goto cleanup;
        self->pool = pool;
        self->pool_cap = cap;
    }
    memcpy(self->pool + self->pool_len, s, len);
    self->pool[self->pool_len + len] = '\0';
    off = (int64_t)self->pool_len;
    self->pool_len = need;
cleanup:
    return off;
}

static int
s_intern_grow(symtab_t *self)
{
    int rc = -1;
    size_t cap = self->intern_cap ? self->intern_cap * 2 : 1024;
    uint32_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        goto cleanup;
    for (size_t i = 0; i < self->intern_cap; i++) {
        uint32_t v = self->intern[i];
        if (!v)
            continue;
        const char *s = self->pool + (v - 1);
        size_t j = hash_fnv1a_len(s, strlen(s), 0) & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = v;
    }
    free(self->intern);
    self->intern = slots;
    self->intern_cap = cap;
    rc = 0;
cleanup:
    return rc;
}

/* Interns a name: equal names share one pool copy. Returns offset or -1. */
static int64_t
s_intern(symtab_t *self, const char *s, size_t len)
{
    int64_t off = -1;
    if ((self->intern_used + 1) * 2 > self->intern_cap &&
        s_intern_grow(self) < 0)
        goto cleanup;
    size_t mask = self->intern_cap - 1;
    size_t j = hash_fnv1a_len(s, len, 0) & mask;
    while (self->intern[j]) {
        const char *have = self->pool + (self->intern[j] - 1);
        if (strncmp(have, s, len) == 0 && have[len] == '\0') {
            off = self->intern[j] - 1;
            goto cleanup;
        }
        j = (j + 1) & mask;
    }
    off = s_pool_append(self, s, len);
    if (off < 0)
        goto cleanup;
    self->intern[j] = (uint32_t)off + 1;
    self->intern_used++;
cleanup:
    return off;
}

int
symtab_add(symtab_t *self, uint64_t start, uint64_t size, uint64_t limit,
           const char *name, size_t name_len, int rank)
{
    int rc = -1;
    if (self->finished || name_len == 0)
        goto cleanup;
    if (name_len > SYMTAB_MAX_NAME)
        name_len = SYMTAB_MAX_NAME;
    if (self->nbuild == self->build_cap) {
        size_t cap = self->build_cap ? self->build_cap * 2 : 256;
        sym_build_t *b = realloc(self->build, cap * sizeof(*b));
        if (!b)
            goto cleanup;
        self->build = b;
        self->build_cap = cap;
    }
    int64_t off = s_intern(self, name, name_len);
    if (off < 0)
        goto cleanup;
    sym_build_t *b = &self->build[self->nbuild];
    b->start = start;
    b->size = size;
    b->limit = limit > start ? limit : start + 1;
    b->name = (uint32_t)off;
    b->seq = (uint32_t)self->nbuild;
    b->rank = (uint8_t)rank;
    self->nbuild++;
    rc = 0;
cleanup:
    return rc;
}

static size_t
s_leading_underscores(const char *s)
{
    size_t n = 0;
    while (s[n] == '_')
        n++;
    return n;
}

/* qsort has no context argument in C11; the pool and the tie-break mode
 * are needed by the comparator, so they go through file statics set just
 * before sorting (the symbolizer is single-threaded). */
static const char *s_sort_pool;
static int s_sort_later_wins;

/* Orders by start, then best alias first. */
static int
s_cmp_build(const void *pa, const void *pb)
{
    const sym_build_t *a = pa, *b = pb;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    if (s_sort_later_wins)
        return a->seq > b->seq ? -1 : (a->seq < b->seq);
    /* A sized symbol says more than an unsized label at the same place. */
    if ((a->size != 0) != (b->size != 0))
        return a->size ? -1 : 1;
    /* Public names (malloc, mmap) read better than internal aliases
     * (__libc_malloc, __mmap), even when the public one is the weak
     * alias. */
    const char *na = s_sort_pool + a->name, *nb = s_sort_pool + b->name;
    size_t ua = s_leading_underscores(na), ub = s_leading_underscores(nb);
    if (ua != ub)
        return ua < ub ? -1 : 1;
    if (a->rank != b->rank)
        return a->rank > b->rank ? -1 : 1;
    size_t la = strlen(na), lb = strlen(nb);
    if (la != lb)
        return la < lb ? -1 : 1;
    return a->seq < b->seq ? -1 : (a->seq > b->seq);
}

int
symtab_finish(symtab_t *self, int later_wins)
{
    int rc = -1;
    if (self->finished)
        goto cleanup;
    s_sort_pool = self->pool;
    s_sort_later_wins = later_wins;
    if (self->nbuild > 1)
        qsort(self->build, self->nbuild, sizeof(*self->build), s_cmp_build);

    /* Dedupe in place: keep the first (best) entry per start. */
    size_t n = 0;
    for (size_t i = 0; i < self->nbuild; i++) {
        if (n > 0 && self->build[n - 1].start == self->build[i].start)
            continue;
        self->build[n++] = self->build[i];
    }

    if (n > 0) {
        self->starts = malloc(n * sizeof(*self->starts));
        self->entries = malloc(n * sizeof(*self->entries));
        if (!self->starts || !self->entries)
            goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        const sym_build_t *b = &self->build[i];
        uint64_t end;
        if (b->size) {
            end = b->start + b->size;
            if (end < b->start)             /* wrapped: hostile size */
                end = UINT64_MAX;
        } else {
            end = b->limit;
            if (i + 1 < n && self->build[i + 1].start < end)
                end = self->build[i + 1].start;
        }
        uint64_t len = end - b->start;
        sym_entry_t *e = &self->entries[i];
        self->starts[i] = b->start;
        e->len = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
        e->name = b->name;
        if (sym_is_mangled(self->pool + b->name))
            e->name |= NAME_MANGLED;
    }
    self->count = n;
    self->nindex = (n + BLOCK - 1) / BLOCK;
    if (self->nindex) {
        self->index = malloc(self->nindex * sizeof(*self->index));
        if (!self->index)
            goto cleanup;
        for (size_t b = 0; b < self->nindex; b++)
            self->index[b] = self->starts[b << BLOCK_SHIFT];
    }

    /* Shrink the pool to what it holds: it is cached for a long time. */
    if (self->pool_len && self->pool_cap > self->pool_len) {
        char *pool = realloc(self->pool, self->pool_len);
        if (pool) {
            self->pool = pool;
            self->pool_cap = self->pool_len;
        }
    }
    rc = 0;
cleanup:
    free(self->build);
    self->build = NULL;
    self->nbuild = self->build_cap = 0;
    free(self->intern);
    self->intern = NULL;
    self->intern_cap = self->intern_used = 0;
    self->finished = true;
    s_sort_pool = NULL;
    return rc;
}

static bool
s_contains(const symtab_t *self, size_t i, uint64_t addr)
{
    return addr >= self->starts[i] &&
           addr - self->starts[i] < self->entries[i].len;
}

/* Demangles an entry's name the first time it is returned. On failure the
 * mangled name stays (still better than nothing) and is not retried. */
static void
s_demangle_entry(symtab_t *self, sym_entry_t *e)
{
    uint32_t off = e->name & NAME_OFFSET_MASK;
    char *dem = sym_demangle(self->pool + off);
    e->name = off;
    if (!dem)
        return;
    size_t len = strlen(dem);
    if (len > SYMTAB_MAX_NAME)
        len = SYMTAB_MAX_NAME;
    int64_t noff = s_pool_append(self, dem, len);
    free(dem);
    if (noff >= 0)
        e->name = (uint32_t)noff;
}

/* Number of leading elements <= key in a sorted array (branch-free). */
static size_t
s_upper_bound(const uint64_t *a, size_t n, uint64_t key)
{
    size_t lo = 0;
    if (n == 0)
        return 0;
    while (n > 1) {
        size_t half = n / 2;
        lo = a[lo + half - 1] <= key ? lo + half : lo;
        n -= half;
    }
    return lo + (a[lo] <= key);
}

const char *
symtab_lookup(symtab_t *self, uint64_t addr, uint64_t *start_out)
{
    const char *name = NULL;
    if (!self->finished || self->count == 0)
        goto cleanup;
    /* First entry with start > addr. */
    const uint64_t *starts = self->starts;
    /* Block: the last whose first start <= addr (none: addr is below the
     * whole table). */
    size_t nb = s_upper_bound(self->index, self->nindex, addr);
    if (nb == 0)
        goto cleanup;
    size_t base = (nb - 1) << BLOCK_SHIFT;
    size_t len = self->count - base < BLOCK ? self->count - base : BLOCK;
    size_t lo = base + s_upper_bound(starts + base, len, addr);
    sym_entry_t *hit = NULL;
    size_t hit_index = 0;
    for (size_t i = lo, steps = 0; i > 0 && steps < LOOKBACK; i--, steps++) {
        if (s_contains(self, i - 1, addr)) {
            hit = &self->entries[i - 1];
            hit_index = i - 1;
            break;
        }
    }
    if (!hit)
        goto cleanup;
    if (hit->name & NAME_MANGLED)
        s_demangle_entry(self, hit);
    name = self->pool + hit->name;
    if (start_out)
        *start_out = starts[hit_index];
cleanup:
    return name;
}

size_t
symtab_count(const symtab_t *self)
{
    return self->count;
}

size_t
symtab_bytes(const symtab_t *self)
{
    return sizeof(*self) +
           self->count * (sizeof(sym_entry_t) + sizeof(uint64_t)) +
           self->nindex * sizeof(uint64_t) +
           self->pool_cap + self->build_cap * sizeof(sym_build_t) +
           self->intern_cap * sizeof(uint32_t);
}
