/* Task lifecycle in the policy engine's table: duplicates, replacement,
 * stale updates, expiry, future starts, process exit, several at once. */
#include <stdio.h>
#include <string.h>

#include "policy-engine/taskset.h"
#include "testutil.h"

static const uint32_t s_pids[] = {100, 200};

static wire_task_t s_task(const char *id, uint64_t start, uint64_t dur,
                          uint64_t update, uint32_t npids)
{
    wire_task_t t = {.task_id = id, .target = WIRE_TARGET_ON_CPU,
                     .start_ms = start, .duration_ms = dur,
                     .update_ms = update, .npids = npids, .pids = s_pids,
                     .extension_json = ""};
    return t;
}

START_TEST(duplicate_keeps_replacement_replaces)
{
    taskset_t *t = taskset_new();
    wire_task_t a = s_task("a", 1000, 60000, 5, 1);
    ck_assert_int_eq(taskset_offer(t, &a, 2000), TASKS_ADDED);
    uint64_t gen = taskset_generation(t);
    ck_assert_int_eq(taskset_offer(t, &a, 2500), TASKS_DUPLICATE);
    ck_assert_uint_eq(taskset_generation(t), gen);
    ck_assert_uint_eq(taskset_count(t), 1);

    wire_task_t a2 = s_task("a", 1000, 120000, 6, 2);
    a2.target = WIRE_TARGET_OFF_CPU;
    ck_assert_int_eq(taskset_offer(t, &a2, 3000), TASKS_REPLACED);
    ck_assert_uint_gt(taskset_generation(t), gen);
    const wire_task_t *snap;
    ck_assert_uint_eq(taskset_snapshot(t, &snap), 1);
    ck_assert_uint_eq(snap[0].npids, 2);
    ck_assert_uint_eq(snap[0].target, WIRE_TARGET_OFF_CPU);
    ck_assert_uint_eq(snap[0].duration_ms, 120000);

    wire_task_t old = s_task("a", 1000, 60000, 4, 1);
    ck_assert_int_eq(taskset_offer(t, &old, 3000), TASKS_STALE);
    ck_assert_uint_eq(taskset_snapshot(t, &snap), 1);
    ck_assert_uint_eq(snap[0].duration_ms, 120000);
    taskset_destroy(&t);
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(expired_and_future_and_invalid)
{
    taskset_t *t = taskset_new();
    wire_task_t past = s_task("past", 1000, 1000, 1, 1);
    ck_assert_int_eq(taskset_offer(t, &past, 5000), TASKS_EXPIRED);
    wire_task_t future = s_task("future", 100000, 1000, 1, 1);
    ck_assert_int_eq(taskset_offer(t, &future, 5000), TASKS_ADDED);
    wire_task_t nopids = s_task("nopids", 0, 1000, 1, 0);
    ck_assert_int_eq(taskset_offer(t, &nopids, 5000), TASKS_INVALID);
    wire_task_t nodur = s_task("nodur", 0, 0, 1, 1);
    ck_assert_int_eq(taskset_offer(t, &nodur, 5000), TASKS_INVALID);
    /* start 0 means now: the window is [now, now + duration). */
    wire_task_t asap = s_task("asap", 0, 1000, 0, 1);
    ck_assert_int_eq(taskset_offer(t, &asap, 5000), TASKS_ADDED);
    const wire_task_t *snap;
    ck_assert_uint_eq(taskset_snapshot(t, &snap), 2);
    ck_assert_uint_eq(snap[1].start_ms, 5000);
    ck_assert_uint_eq(taskset_expire(t, 5999), 0);
    ck_assert_uint_eq(taskset_expire(t, 6000), 1);
    ck_assert_uint_eq(taskset_snapshot(t, &snap), 1);
    ck_assert_str_eq(snap[0].task_id, "future");
    ck_assert_uint_eq(taskset_expire(t, 101000), 1);
    ck_assert_uint_eq(taskset_count(t), 0);
    taskset_destroy(&t);
}
END_TEST

START_TEST(process_exit_ends_its_part)
{
    taskset_t *t = taskset_new();
    wire_task_t two = s_task("two", 0, 60000, 1, 2);
    wire_task_t one = s_task("one", 0, 60000, 1, 1);
    one.target = WIRE_TARGET_OFF_CPU;
    ck_assert_int_eq(taskset_offer(t, &two, 1), TASKS_ADDED);
    ck_assert_int_eq(taskset_offer(t, &one, 1), TASKS_ADDED);
    /* pid 100 exits: "one" loses its only pid and ends, "two" keeps 200. */
    ck_assert_uint_eq(taskset_process_exited(t, 100), 2);
    const wire_task_t *snap;
    ck_assert_uint_eq(taskset_snapshot(t, &snap), 1);
    ck_assert_str_eq(snap[0].task_id, "two");
    ck_assert_uint_eq(snap[0].npids, 1);
    ck_assert_uint_eq(snap[0].pids[0], 200);
    ck_assert_uint_eq(taskset_process_exited(t, 999), 0);
    taskset_destroy(&t);
}
END_TEST

static int s_only_200_alive(uint32_t pid, void *arg) { return pid == 200; }

START_TEST(prune_and_cancel_and_bound)
{
    taskset_t *t = taskset_new();
    wire_task_t two = s_task("two", 0, 60000, 1, 2);
    ck_assert_int_eq(taskset_offer(t, &two, 1), TASKS_ADDED);
    ck_assert_uint_eq(taskset_prune(t, s_only_200_alive, NULL), 1);
    const wire_task_t *snap;
    ck_assert_uint_eq(taskset_snapshot(t, &snap), 1);
    ck_assert_uint_eq(snap[0].pids[0], 200);
    ck_assert_int_eq(taskset_cancel(t, "two"), 0);
    ck_assert_int_eq(taskset_cancel(t, "two"), -1);
    char ids[TASKS_MAX + 1][16];
    for (int i = 0; i <= TASKS_MAX; i++) {
        snprintf(ids[i], sizeof ids[i], "t%d", i);
        wire_task_t x = s_task(ids[i], 0, 60000, 1, 1);
        ck_assert_int_eq(taskset_offer(t, &x, 1),
                         i < TASKS_MAX ? TASKS_ADDED : TASKS_FULL);
    }
    ck_assert_uint_eq(taskset_count(t), TASKS_MAX);
    taskset_destroy(&t);
}
END_TEST

/* The OAP's keep of a NETWORK task: the same task re-sent with a longer
 * duration and an empty ExtensionConfigJSON extends the window and keeps
 * the sampling rules; a re-send that would shorten it does not; new rules
 * replace the old ones; other targets take the re-sent task as it is. */
START_TEST(network_resend_extends_and_keeps_rules)
{
    static const uint32_t pids[] = {100, 200, 300};
    const char *rules = "{\"networkSamplings\":[{\"minDuration\":10}]}";
    taskset_t *t = taskset_new();
    wire_task_t n = {.task_id = "net", .target = WIRE_TARGET_NETWORK,
                     .source = WIRE_SRC_OAP, .start_ms = 1000,
                     .duration_ms = 600000, .update_ms = 1, .npids = 3,
                     .pids = pids, .extension_json = rules};
    ck_assert_int_eq(taskset_offer(t, &n, 2000), TASKS_ADDED);
    wire_task_t keep = n;
    keep.duration_ms = 1200000;
    keep.update_ms = 2;
    keep.extension_json = "";
    ck_assert_int_eq(taskset_offer(t, &keep, 550000), TASKS_REPLACED);
    const wire_task_t *snap;
    ck_assert_uint_eq(taskset_snapshot(t, &snap), 1);
    ck_assert_uint_eq(snap[0].npids, 3);
    ck_assert_uint_eq(snap[0].start_ms + snap[0].duration_ms, 1201000);
    ck_assert_str_eq(snap[0].extension_json, rules);
    /* Past the first window, the task is still there. */
    ck_assert_uint_eq(taskset_expire(t, 700000), 0);

    /* A re-send with the first duration does not shorten it. */
    wire_task_t shorter = keep;
    shorter.duration_ms = 600000;
    shorter.update_ms = 3;
    ck_assert_int_eq(taskset_offer(t, &shorter, 700001), TASKS_REPLACED);
    ck_assert_uint_eq(taskset_snapshot(t, &snap), 1);
    ck_assert_uint_eq(snap[0].start_ms + snap[0].duration_ms, 1201000);
    ck_assert_str_eq(snap[0].extension_json, rules);

    /* New rules replace the old. */
    wire_task_t other = keep;
    other.update_ms = 4;
    other.extension_json = "{\"networkSamplings\":[]}";
    ck_assert_int_eq(taskset_offer(t, &other, 700002), TASKS_REPLACED);
    ck_assert_uint_eq(taskset_snapshot(t, &snap), 1);
    ck_assert_str_eq(snap[0].extension_json, "{\"networkSamplings\":[]}");
    ck_assert_uint_eq(taskset_expire(t, 1201000), 1);

    /* ON_CPU: the replacement is taken as it is. */
    wire_task_t a = s_task("a", 1000, 60000, 5, 1);
    a.extension_json = "{}";
    ck_assert_int_eq(taskset_offer(t, &a, 2000), TASKS_ADDED);
    wire_task_t a2 = s_task("a", 1000, 30000, 6, 1);
    ck_assert_int_eq(taskset_offer(t, &a2, 2000), TASKS_REPLACED);
    ck_assert_uint_eq(taskset_snapshot(t, &snap), 1);
    ck_assert_uint_eq(snap[0].duration_ms, 30000);
    ck_assert_str_eq(snap[0].extension_json, "");
    taskset_destroy(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tasks");
    TCase *tc = tcase_create("lifecycle");
    tcase_add_test(tc, duplicate_keeps_replacement_replaces);
    tcase_add_test(tc, expired_and_future_and_invalid);
    tcase_add_test(tc, process_exit_ends_its_part);
    tcase_add_test(tc, prune_and_cancel_and_bound);
    tcase_add_test(tc, network_resend_extends_and_keeps_rules);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
