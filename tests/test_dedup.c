/* The aggregator's origin de-duplication: a batch handled by two
 * symbolizer replicas counts once; memory is fixed; old origins age out. */
#include <stdio.h>

#include "aggregator/core/dedup.h"
#include "testutil.h"

START_TEST(second_copy_is_a_duplicate)
{
    origin_dedup_t *d = origin_dedup_new();
    ck_assert_int_eq(origin_dedup_check(d, "sym.stacks.01", "collector/a", 1), 0);
    ck_assert_int_eq(origin_dedup_check(d, "sym.stacks.01", "collector/a", 1), 1);
    ck_assert_int_eq(origin_dedup_check(d, "sym.stacks.01", "collector/a", 2), 0);
    ck_assert_int_eq(origin_dedup_check(d, "sym.stacks.01", "collector/b", 1), 0);
    /* Senders number each topic on their own: same seq, other bucket. */
    ck_assert_int_eq(origin_dedup_check(d, "sym.stacks.02", "collector/a", 1), 0);
    ck_assert_int_eq(origin_dedup_check(d, "sym.stacks.02", "collector/a", 1), 1);
    ck_assert_int_eq(origin_dedup_check(d, "sym.stacks.01", "", 5), 0);
    ck_assert_int_eq(origin_dedup_check(d, "sym.stacks.01", "", 5), 0);
    ck_assert_int_eq(origin_dedup_check(d, "sym.stacks.01", NULL, 5), 0);
    origin_dedup_destroy(&d);
    ck_assert_ptr_null(d);
    origin_dedup_destroy(NULL);
}
END_TEST

START_TEST(window_slides_and_index_stays_exact)
{
    origin_dedup_t *d = origin_dedup_new();
    char sender[32];
    /* Several laps of the ring with two senders interleaved. */
    for (uint64_t i = 1; i <= 5 * DEDUP_CAPACITY; i++) {
        snprintf(sender, sizeof sender, "collector/%u", (unsigned)(i % 2));
        ck_assert_int_eq(origin_dedup_check(d, "sym.stacks.01", sender, i), 0);
        /* everything still in the window is found ... */
        if (i > 10) {
            snprintf(sender, sizeof sender, "collector/%u", (unsigned)((i - 10) % 2));
            ck_assert_int_eq(origin_dedup_check(d, "sym.stacks.01", sender, i - 10), 1);
        }
    }
    /* ... and what left it is forgotten (it would be new again). */
    ck_assert_int_eq(origin_dedup_check(d, "sym.stacks.01", "collector/1", 1), 0);
    origin_dedup_destroy(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dedup");
    TCase *tc = tcase_create("origins");
    tcase_add_test(tc, second_copy_is_a_duplicate);
    tcase_add_test(tc, window_slides_and_index_stays_exact);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
