/* lib/hashmap: find/insert/remove under heavy collisions (the backward
 * shift keeps every chain reachable), growth, iteration, clear; and the
 * key hashes of lib/hash.h it is used with. */
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "testutil.h"

typedef struct {
    uint64_t key;
    int value;
} item_t;

static int s_match(const void *item, const void *key)
{
    return ((const item_t *)item)->key == *(const uint64_t *)key;
}

/* _i = 0: spread hashes; 1: every key in one of 4 chains; 2: all equal */
static uint64_t s_hash(uint64_t key, int mode)
{
    return mode == 0 ? hash_split64(key) : mode == 1 ? key % 4 : 7;
}

START_TEST(test_insert_find_remove)
{
    enum { N = 600 };
    int mode = _i;
    item_t *items = calloc(N, sizeof *items);
    hashmap_t *m = hashmap_new(s_match);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(hashmap_find(m, 1, &items[0].key)); /* empty map */
    for (int i = 0; i < N; i++) {
        items[i] = (item_t){ (uint64_t)i * 1000 + 1, i };
        ck_assert_int_eq(hashmap_insert(m, s_hash(items[i].key, mode),
                                        &items[i]), 0);
    }
    ck_assert_uint_eq(hashmap_size(m), N);
    for (int i = 0; i < N; i++) {
        item_t *it = hashmap_find(m, s_hash(items[i].key, mode),
                                  &items[i].key);
        ck_assert_ptr_eq(it, &items[i]);
    }
    uint64_t absent = 5;
    ck_assert_ptr_null(hashmap_find(m, s_hash(absent, mode), &absent));
    ck_assert_ptr_null(hashmap_remove(m, s_hash(absent, mode), &absent));
    /* remove every third, from the middle of chains: the rest stay
     * reachable */
    for (int i = 0; i < N; i += 3)
        ck_assert_ptr_eq(hashmap_remove(m, s_hash(items[i].key, mode),
                                        &items[i].key), &items[i]);
    for (int i = 0; i < N; i++) {
        item_t *it = hashmap_find(m, s_hash(items[i].key, mode),
                                  &items[i].key);
        ck_assert_ptr_eq(it, i % 3 ? &items[i] : NULL);
    }
    ck_assert_uint_eq(hashmap_size(m), N - (N + 2) / 3);
    /* iteration sees each remaining item once */
    size_t cursor = 0, seen = 0;
    long sum = 0;
    item_t *it;
    while ((it = hashmap_next(m, &cursor))) {
        seen++;
        sum += it->value;
    }
    long want = 0;
    for (int i = 0; i < N; i++)
        want += i % 3 ? i : 0;
    ck_assert_uint_eq(seen, hashmap_size(m));
    ck_assert_int_eq(sum, want);
    hashmap_clear(m);
    ck_assert_uint_eq(hashmap_size(m), 0);
    cursor = 0;
    ck_assert_ptr_null(hashmap_next(m, &cursor));
    ck_assert_ptr_null(hashmap_find(m, s_hash(items[1].key, mode),
                                    &items[1].key));
    /* usable after a clear */
    ck_assert_int_eq(hashmap_insert(m, s_hash(items[1].key, mode),
                                    &items[1]), 0);
    ck_assert_ptr_eq(hashmap_find(m, s_hash(items[1].key, mode),
                                  &items[1].key), &items[1]);
    hashmap_destroy(&m);
    ck_assert_ptr_null(m);
    hashmap_destroy(&m);
    hashmap_destroy(NULL);
    free(items);
}
END_TEST

START_TEST(test_hashes)
{
    /* fixed functions: tables and their iteration order do not move */
    ck_assert_uint_eq(hash_split64(0), 0);
    ck_assert_uint_ne(hash_split64(1), hash_split64(2));
    const char key[] = "0123456789abcdefXYZ";
    uint64_t h = hash_bytes64(key, sizeof key - 1, 0);
    ck_assert_uint_eq(h, hash_bytes64(key, sizeof key - 1, 0));
    ck_assert_uint_ne(h, hash_bytes64(key, sizeof key - 1, 1));
    /* every length from 0 to 19 hashes differently, tails included */
    for (size_t a = 0; a < sizeof key - 1; a++)
        for (size_t b = 0; b < a; b++)
            ck_assert_uint_ne(hash_bytes64(key, a, 0),
                              hash_bytes64(key, b, 0));
    ck_assert_uint_ne(hash_fnv1a("a", 0), hash_fnv1a("b", 0));
    ck_assert_uint_eq(hash_fnv1a("svc", 3), hash_fnv1a_len("svc", 3, 3));
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("hashmap");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_insert_find_remove, 0, 3);
    tcase_add_test(tc, test_hashes);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
