/* Rendezvous assignment of pid buckets to replicas: every bucket has one
 * owner, the split is even, and a replica joining or leaving moves only
 * the buckets it gains or loses. */
#include <stdio.h>
#include <string.h>

#include "shard.h"
#include "testutil.h"
#include "wire.h"

START_TEST(one_owner_and_balanced)
{
    const char *names[] = {"sym-a", "sym-b", "sym-c"};
    int count[3] = {0};
    for (uint32_t b = 0; b < WIRE_BUCKETS; b++) {
        size_t o = shard_rendezvous_owner(names, 3, b);
        ck_assert_uint_lt(o, 3);
        count[o]++;
    }
    for (int i = 0; i < 3; i++) {
        ck_assert_int_gt(count[i], WIRE_BUCKETS / 3 / 2);
        ck_assert_int_lt(count[i], WIRE_BUCKETS / 3 * 2);
    }
    /* Independent of the order the peers are listed in. */
    const char *shuffled[] = {"sym-c", "sym-a", "sym-b"};
    for (uint32_t b = 0; b < WIRE_BUCKETS; b++)
        ck_assert_str_eq(names[shard_rendezvous_owner(names, 3, b)],
                         shuffled[shard_rendezvous_owner(shuffled, 3, b)]);
}
END_TEST

START_TEST(join_and_leave_move_only_their_buckets)
{
    const char *two[] = {"host1-100", "host2-200"};
    const char *three[] = {"host1-100", "host2-200", "host3-300"};
    int moved_to_new = 0;
    for (uint32_t b = 0; b < WIRE_BUCKETS; b++) {
        size_t before = shard_rendezvous_owner(two, 2, b);
        size_t after = shard_rendezvous_owner(three, 3, b);
        if (after == 2)
            moved_to_new++;
        else
            ck_assert_uint_eq(after, before); /* nothing else moves */
    }
    ck_assert_int_gt(moved_to_new, 0);
    /* The third leaving gives back exactly the same assignment. */
    for (uint32_t b = 0; b < WIRE_BUCKETS; b++) {
        size_t o = shard_rendezvous_owner(three, 3, b);
        if (o != 2)
            ck_assert_uint_eq(shard_rendezvous_owner(two, 2, b), o);
    }
    const char *one[] = {"only"};
    for (uint32_t b = 0; b < WIRE_BUCKETS; b++)
        ck_assert_uint_eq(shard_rendezvous_owner(one, 1, b), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shard");
    TCase *tc = tcase_create("rendezvous");
    tcase_add_test(tc, one_owner_and_balanced);
    tcase_add_test(tc, join_and_leave_move_only_their_buckets);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
