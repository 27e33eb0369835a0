/* Unit tests of the symbolizer's data structures: the symbol table
 * (aliases, size-0 symbols, nesting, lazy demangling, big tables) and the
 * byte-bounded LRU object cache, and the cross-batch frame memo. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "symbolizer/framememo.h"
#include "symbolizer/objcache.h"
#include "symbolizer/symtab.h"
#include "testutil.h"

static void
s_add(symtab_t *t, uint64_t start, uint64_t size, uint64_t limit,
      const char *name, int rank)
{
    ck_assert_int_eq(symtab_add(t, start, size, limit, name, strlen(name),
                                rank), 0);
}

static const char *
s_at(symtab_t *t, uint64_t addr)
{
    const char *n = symtab_lookup(t, addr, NULL);
    return n ? n : "(none)";
}

START_TEST(test_symtab_ranges)
{
    symtab_t *t = symtab_new();
    ck_assert_ptr_nonnull(t);
    /* Added out of order on purpose. */
    s_add(t, 0x2000, 0x100, 0, "second", SYMTAB_RANK_GLOBAL);
    s_add(t, 0x1000, 0x80, 0, "first", SYMTAB_RANK_GLOBAL);
    /* Size 0: runs to the next symbol, but not past its section end. */
    s_add(t, 0x3000, 0, 0x3400, "label", SYMTAB_RANK_LOCAL);
    s_add(t, 0x3200, 0x10, 0, "after_label", SYMTAB_RANK_LOCAL);
    s_add(t, 0x5000, 0, 0x5100, "tail_label", SYMTAB_RANK_LOCAL);
    /* Nested: a local symbol inside a bigger one. */
    s_add(t, 0x6000, 0x1000, 0, "outer", SYMTAB_RANK_GLOBAL);
    s_add(t, 0x6100, 0x20, 0, "inner", SYMTAB_RANK_LOCAL);
    ck_assert_int_eq(symtab_finish(t, 0), 0);
    ck_assert_uint_eq(symtab_count(t), 7);

    ck_assert_str_eq(s_at(t, 0x0fff), "(none)");
    ck_assert_str_eq(s_at(t, 0x1000), "first");
    ck_assert_str_eq(s_at(t, 0x107f), "first");
    ck_assert_str_eq(s_at(t, 0x1080), "(none)");     /* gap after size */
    ck_assert_str_eq(s_at(t, 0x20ff), "second");
    ck_assert_str_eq(s_at(t, 0x31ff), "label");
    ck_assert_str_eq(s_at(t, 0x3205), "after_label");
    ck_assert_str_eq(s_at(t, 0x3300), "(none)");
    ck_assert_str_eq(s_at(t, 0x50ff), "tail_label");
    ck_assert_str_eq(s_at(t, 0x5100), "(none)");     /* section end */
    ck_assert_str_eq(s_at(t, 0x6110), "inner");
    ck_assert_str_eq(s_at(t, 0x6500), "outer");      /* found looking back */
    ck_assert_str_eq(s_at(t, 0x7000), "(none)");
    uint64_t start = 0;
    ck_assert_ptr_nonnull(symtab_lookup(t, 0x6500, &start));
    ck_assert_uint_eq(start, 0x6000);
    symtab_destroy(&t);
    ck_assert_ptr_null(t);
    symtab_destroy(&t);   /* NULL is fine */
}
END_TEST

START_TEST(test_symtab_aliases)
{
    symtab_t *t = symtab_new();
    /* libc-style aliases at one address: the public name wins even when
     * it is weak; a sized symbol beats an unsized label. */
    s_add(t, 0x1000, 0x40, 0, "__libc_malloc", SYMTAB_RANK_GLOBAL);
    s_add(t, 0x1000, 0x40, 0, "malloc", SYMTAB_RANK_GLOBAL);
    s_add(t, 0x2000, 0x40, 0, "__mmap", SYMTAB_RANK_GLOBAL);
    s_add(t, 0x2000, 0x40, 0, "mmap", SYMTAB_RANK_WEAK);
    s_add(t, 0x3000, 0, 0x3100, "a_label", SYMTAB_RANK_GLOBAL);
    s_add(t, 0x3000, 0x20, 0, "the_function", SYMTAB_RANK_LOCAL);
    s_add(t, 0x4000, 0x10, 0, "local_name", SYMTAB_RANK_LOCAL);
    s_add(t, 0x4000, 0x10, 0, "global_name", SYMTAB_RANK_GLOBAL);
    ck_assert_int_eq(symtab_finish(t, 0), 0);
    ck_assert_uint_eq(symtab_count(t), 4);
    ck_assert_str_eq(s_at(t, 0x1010), "malloc");
    ck_assert_str_eq(s_at(t, 0x2010), "mmap");
    ck_assert_str_eq(s_at(t, 0x3010), "the_function");
    ck_assert_str_eq(s_at(t, 0x4000), "global_name");
    symtab_destroy(&t);

    /* Perf-map mode: the line written last describes the address now. */
    t = symtab_new();
    s_add(t, 0x1000, 0x40, 0, "old_code", SYMTAB_RANK_GLOBAL);
    s_add(t, 0x1000, 0x40, 0, "new_code", SYMTAB_RANK_GLOBAL);
    ck_assert_int_eq(symtab_finish(t, 1), 0);
    ck_assert_str_eq(s_at(t, 0x1000), "new_code");
    /* Finished tables take no more symbols. */
    ck_assert_int_eq(symtab_add(t, 0x9000, 1, 0, "late", 4, 0), -1);
    symtab_destroy(&t);
}
END_TEST

START_TEST(test_symtab_demangle_lazily)
{
    symtab_t *t = symtab_new();
    s_add(t, 0x1000, 0x10, 0, "_ZN3foo3barEi", SYMTAB_RANK_GLOBAL);
    s_add(t, 0x2000, 0x10, 0, "_ZN4core3fmt5write17h0123456789abcdefE",
          SYMTAB_RANK_GLOBAL);
    s_add(t, 0x3000, 0x10, 0, "_Znot_really_mangled", SYMTAB_RANK_GLOBAL);
    ck_assert_int_eq(symtab_finish(t, 0), 0);
    size_t before = symtab_bytes(t);
    ck_assert_str_eq(s_at(t, 0x1004), "foo::bar(int)");
    /* The demangled name is kept: the table grew, and says so. */
    ck_assert_uint_gt(symtab_bytes(t), before);
    size_t after = symtab_bytes(t);
    ck_assert_str_eq(s_at(t, 0x1008), "foo::bar(int)");
    ck_assert_uint_eq(symtab_bytes(t), after);
    ck_assert_str_eq(s_at(t, 0x2000), "core::fmt::write");
    ck_assert_str_eq(s_at(t, 0x3000), "_Znot_really_mangled");
    symtab_destroy(&t);
}
END_TEST

/* Many symbols (more than one index block), every one found, checked
 * against the arithmetic that generated them. */
START_TEST(test_symtab_large)
{
    symtab_t *t = symtab_new();
    const uint32_t n = 100000;
    char name[32];
    for (uint32_t i = 0; i < n; i++) {
        /* Reverse order, varying sizes, gaps between functions. */
        uint32_t k = n - 1 - i;
        snprintf(name, sizeof(name), "fn_%u", k);
        s_add(t, 0x400000 + (uint64_t)k * 64, 16 + k % 32, 0, name,
              SYMTAB_RANK_GLOBAL);
    }
    ck_assert_int_eq(symtab_finish(t, 0), 0);
    ck_assert_uint_eq(symtab_count(t), n);
    for (uint32_t k = 0; k < n; k += 7) {
        uint64_t base = 0x400000 + (uint64_t)k * 64;
        uint64_t size = 16 + k % 32;
        snprintf(name, sizeof(name), "fn_%u", k);
        ck_assert_str_eq(s_at(t, base), name);
        ck_assert_str_eq(s_at(t, base + size - 1), name);
        if (size < 64)
            ck_assert_str_eq(s_at(t, base + size), "(none)");
    }
    ck_assert_str_eq(s_at(t, 0x3fffff), "(none)");
    ck_assert_str_eq(s_at(t, UINT64_MAX), "(none)");
    symtab_destroy(&t);

    t = symtab_new();
    ck_assert_int_eq(symtab_finish(t, 0), 0);   /* empty table */
    ck_assert_str_eq(s_at(t, 0x1000), "(none)");
    symtab_destroy(&t);
}
END_TEST

/* ------------------------------------------------------------ objcache */

static int s_freed;

static void
s_free_value(void *v)
{
    s_freed++;
    free(v);
}

static objcache_entry_t *
s_put(objcache_t *c, const char *key, size_t bytes)
{
    char *v = strdup(key);
    ck_assert_ptr_nonnull(v);
    objcache_entry_t *e = objcache_insert(c, key, strlen(key), v, bytes);
    if (!e)
        free(v);
    return e;
}

START_TEST(test_objcache_lru)
{
    s_freed = 0;
    objcache_t *c = objcache_new(4096, s_free_value);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(s_put(c, "a", 1000));
    ck_assert_ptr_nonnull(s_put(c, "b", 1000));
    ck_assert_ptr_nonnull(s_put(c, "c", 1000));
    ck_assert_uint_eq(objcache_count(c), 3);
    /* Touch "a": "b" becomes the least recently used. */
    objcache_entry_t *a = objcache_find(c, "a", 1);
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(objcache_value(a), "a");
    ck_assert_ptr_nonnull(s_put(c, "d", 1000));   /* evicts b */
    ck_assert_ptr_null(objcache_find(c, "b", 1));
    ck_assert_ptr_nonnull(objcache_find(c, "a", 1));
    ck_assert_ptr_nonnull(objcache_find(c, "c", 1));
    ck_assert_ptr_nonnull(objcache_find(c, "d", 1));
    ck_assert_int_eq(s_freed, 1);
    ck_assert_uint_eq(objcache_evictions(c), 1);
    ck_assert_uint_le(objcache_bytes(c), objcache_limit(c));

    /* Too big alone: refused, the caller keeps the value, others stay. */
    ck_assert_ptr_null(s_put(c, "huge", 5000));
    ck_assert_uint_eq(objcache_count(c), 3);

    /* Growing an entry evicts others, never itself while it fits. */
    objcache_entry_t *d = objcache_find(c, "d", 1);
    ck_assert_int_eq(objcache_resize(c, d, 3000), 0);
    ck_assert_ptr_nonnull(objcache_find(c, "d", 1));
    ck_assert_uint_le(objcache_bytes(c), objcache_limit(c));
    ck_assert_uint_eq(objcache_count(c), 1);
    /* Growing past the whole limit removes it. */
    d = objcache_find(c, "d", 1);
    ck_assert_int_eq(objcache_resize(c, d, 10000), -1);
    ck_assert_ptr_null(objcache_find(c, "d", 1));
    ck_assert_uint_eq(objcache_count(c), 0);
    ck_assert_uint_eq(objcache_bytes(c), 0);
    objcache_destroy(&c);
    ck_assert_ptr_null(c);
}
END_TEST

START_TEST(test_objcache_many)
{
    s_freed = 0;
    const size_t limit = 64 * 1024;
    objcache_t *c = objcache_new(limit, s_free_value);
    char key[32];
    /* Keys that differ only in their tail, and binary-looking keys. */
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "object-key-%08d", i);
        ck_assert_ptr_nonnull(s_put(c, key, 100 + (size_t)(i % 7) * 50));
        ck_assert_uint_le(objcache_bytes(c), limit);
    }
    /* The newest are present, the oldest gone. */
    ck_assert_ptr_nonnull(objcache_find(c, "object-key-00004999", 19));
    ck_assert_ptr_null(objcache_find(c, "object-key-00000000", 19));
    size_t n = objcache_count(c);
    ck_assert_uint_gt(n, 50);
    ck_assert_int_eq((size_t)s_freed + n, 5000);
    /* Remove one explicitly. */
    objcache_entry_t *e = objcache_find(c, "object-key-00004999", 19);
    objcache_remove(c, e);
    ck_assert_ptr_null(objcache_find(c, "object-key-00004999", 19));
    ck_assert_uint_eq(objcache_count(c), n - 1);
    objcache_destroy(&c);
    ck_assert_int_eq(s_freed, 5000);   /* destroy frees the rest */
}
END_TEST

/* The memo answers what was put, keeps serials (object copies) apart,
 * hands the stored hash back, and never holds more than its limit however
 * many distinct frames pass through it. */
START_TEST(test_framememo_basic)
{
    framememo_t *m = framememo_new(64 * 1024);
    ck_assert_ptr_nonnull(m);
    framememo_hit_t hit;
    ck_assert_int_eq(framememo_get(m, 1, 0x100, &hit), -1);
    uint64_t h = hash_fnv1a("std::vector<int>::push_back(int const&)", 1);
    ck_assert_int_eq(framememo_put(m, 1, 0x100,
                                   "std::vector<int>::push_back(int const&)",
                                   1, h, &hit), 0);
    ck_assert_str_eq(hit.name, "std::vector<int>::push_back(int const&)");
    memset(&hit, 0, sizeof(hit));
    ck_assert_int_eq(framememo_get(m, 1, 0x100, &hit), 0);
    ck_assert_str_eq(hit.name, "std::vector<int>::push_back(int const&)");
    ck_assert_uint_eq(hit.hash, h);
    ck_assert_uint_eq(hit.type, 1);
    /* Another serial (the object reloaded) or offset does not match. */
    ck_assert_int_eq(framememo_get(m, 2, 0x100, &hit), -1);
    ck_assert_int_eq(framememo_get(m, 1, 0x101, &hit), -1);
    /* Putting the same key again replaces it. */
    ck_assert_int_eq(framememo_put(m, 1, 0x100, "other", 2, 7, NULL), 0);
    ck_assert_int_eq(framememo_get(m, 1, 0x100, &hit), 0);
    ck_assert_str_eq(hit.name, "other");
    ck_assert_uint_eq(framememo_hits(m), 2);
    framememo_destroy(&m);
    ck_assert_ptr_null(m);
    framememo_destroy(NULL);
    /* Too small for anything useful: no memo rather than a useless one. */
    ck_assert_ptr_null(framememo_new(64));
}
END_TEST

START_TEST(test_framememo_bounded)
{
    const size_t limit = 16 * 1024;
    framememo_t *m = framememo_new(limit);
    ck_assert_ptr_nonnull(m);
    char name[200];
    size_t kept = 0;
    for (uint64_t i = 0; i < 20000; i++) {
        int len = snprintf(name, sizeof(name), "function_%" PRIu64 "_%0*d",
                           i, (int)(i % 150), 0);
        ck_assert_int_gt(len, 0);
        if (framememo_put(m, 1 + i % 3, i * 16, name, 2,
                          hash_fnv1a(name, 2), NULL) == 0)
            kept++;
        ck_assert_uint_le(framememo_bytes(m), limit);
    }
    ck_assert_uint_gt(kept, 0);
    /* Recent entries are still there, with their own names. */
    framememo_hit_t hit;
    int found = 0;
    for (uint64_t i = 19990; i < 20000; i++) {
        if (framememo_get(m, 1 + i % 3, i * 16, &hit) == 0) {
            snprintf(name, sizeof(name), "function_%" PRIu64 "_%0*d", i,
                     (int)(i % 150), 0);
            ck_assert_str_eq(hit.name, name);
            ck_assert_uint_eq(hit.hash, hash_fnv1a(name, 2));
            found++;
        }
    }
    ck_assert_int_gt(found, 0);
    framememo_destroy(&m);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("symcache");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_symtab_ranges);
    tcase_add_test(tc, test_symtab_aliases);
    tcase_add_test(tc, test_symtab_demangle_lazily);
    tcase_add_test(tc, test_symtab_large);
    tcase_add_test(tc, test_objcache_lru);
    tcase_add_test(tc, test_objcache_many);
    tcase_add_test(tc, test_framememo_basic);
    tcase_add_test(tc, test_framememo_bounded);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
