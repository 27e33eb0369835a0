/* The bucket hand-over between aggregator replicas (aggregator/core/
 * handover.c), driven directly: a claimant's park ends on a release, or
 * once every peer that may count the bucket has answered idle since the
 * park began, never on one idle answer while another peer may still
 * release; parked batches are replayed once and a release's marks still
 * apply; idle answers that prove nothing are ignored and counted; a
 * replica answers idle only for a bucket it does not count. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/handover.h"
#include "stats.h"
#include "testutil.h"

/* A batch as the test carries it: the payload names its origin, so the
 * replay can admit it again as the aggregator does. */
typedef struct {
    char sender[32];
    uint64_t seq;
} batch_t;

typedef struct {
    stats_t *stats;
    agg_handover_t *ho;
    int replays;            /* parked batches handed back */
    int counted;            /* batches admitted for counting */
    int counted_seq[64];    /* how often each seq was counted */
    int claims;
    int idles;
    uint32_t idle_bucket;
    int releases;
} rig_t;

static rig_t R;

/* What agg_intake does with a batch: admit, count, tell the hand-over. */
static int s_offer(uint32_t bucket, const char *sender, uint64_t seq)
{
    batch_t b;
    memset(&b, 0, sizeof b);
    snprintf(b.sender, sizeof b.sender, "%s", sender);
    b.seq = seq;
    char topic[32];
    snprintf(topic, sizeof topic, "sym.stacks.%02u", bucket);
    int rc = agg_handover_admit(R.ho, bucket, topic, b.sender, b.seq, &b,
                                sizeof b);
    if (rc == AGG_ADMIT_COUNT) {
        R.counted++;
        if (seq < 64)
            R.counted_seq[seq]++;
        agg_handover_counted(R.ho, bucket, b.sender, b.seq);
    }
    return rc;
}

static void s_replay(void *arg, const char *topic, const void *data,
                     size_t len)
{
    (void)arg;
    ck_assert_uint_eq(len, sizeof(batch_t));
    ck_assert_int_eq(strncmp(topic, "sym.stacks.", 11), 0);
    batch_t b;
    memcpy(&b, data, sizeof b);
    R.replays++;
    s_offer((uint32_t)atoi(topic + 11), b.sender, b.seq);
}

static void s_claim(void *arg, uint32_t bucket)
{
    (void)arg;
    (void)bucket;
    R.claims++;
}

static void s_idle(void *arg, uint32_t bucket)
{
    (void)arg;
    R.idles++;
    R.idle_bucket = bucket;
}

static void s_release(void *arg, uint32_t bucket, const wire_agg_mark_t *marks,
                      uint32_t nmarks)
{
    (void)arg;
    (void)bucket;
    (void)marks;
    (void)nmarks;
    R.releases++;
}

static void s_setup_with(uint64_t grace_ms, uint64_t park_ms)
{
    memset(&R, 0, sizeof R);
    R.stats = stats_new("aggregator", "a1");
    ck_assert_ptr_nonnull(R.stats);
    agg_handover_opts_t o = {.stats = R.stats, .grace_ms = grace_ms,
                             .park_ms = park_ms, .replay = s_replay,
                             .release = s_release, .claim = s_claim,
                             .idle = s_idle};
    R.ho = agg_handover_new(&o);
    ck_assert_ptr_nonnull(R.ho);
}

static void s_setup(void)
{
    s_setup_with(0, 0);
}

static void s_teardown(void)
{
    agg_handover_destroy(&R.ho);
    agg_handover_destroy(&R.ho);     /* NULL-safe */
    stats_destroy(&R.stats);
}

static double s_metric(const char *name)
{
    return stats_value(stats_counter(R.stats, name, NULL, ""));
}

static void s_peers2(const char *a, const char *b, uint64_t now)
{
    const char *names[] = {a, b};
    agg_handover_set_peers(R.ho, names, b ? 2 : 1, now);
}

/* Takes bucket with a release expected (the replica has peers). */
static void s_park(uint32_t bucket, uint64_t now)
{
    agg_handover_set_owned(R.ho, bucket, 1, 1, now);
    ck_assert_int_eq(s_offer(bucket, "c1", 1000), AGG_ADMIT_PARKED);
    R.replays = 0;
}

static void s_release_from(const char *instance, uint32_t bucket,
                           const char *sender, uint64_t seq)
{
    wire_agg_mark_t mark = {sender, seq};
    wire_agg_release_t m = {.instance = instance, .bucket = bucket,
                            .nmarks = 1, .marks = &mark};
    agg_handover_on_release(R.ho, &m);
}

START_TEST(one_idle_of_two_keeps_the_park_both_end_it)
{
    s_peers2("a2", "a3", 1000);
    agg_handover_set_owned(R.ho, 5, 1, 1, 1000);
    ck_assert_int_eq(R.claims, 1);
    for (uint64_t seq = 1; seq <= 3; seq++)
        ck_assert_int_eq(s_offer(5, "c1", seq), AGG_ADMIT_PARKED);

    /* a3 may still be counting it and about to release. */
    agg_handover_on_idle(R.ho, 5, "a2", 1100);
    agg_handover_on_idle(R.ho, 5, "a2", 1200);      /* a repeated claim */
    agg_handover_tick(R.ho, 1300);
    ck_assert_int_eq(s_offer(5, "c1", 4), AGG_ADMIT_PARKED);
    ck_assert_int_eq(R.replays, 0);
    ck_assert_uint_eq(agg_handover_pending(R.ho), 1);

    agg_handover_on_idle(R.ho, 5, "a3", 1400);
    ck_assert_int_eq(R.replays, 4);
    ck_assert_int_eq(R.counted, 4);
    for (int seq = 1; seq <= 4; seq++)
        ck_assert_int_eq(R.counted_seq[seq], 1);
    ck_assert_uint_eq(agg_handover_pending(R.ho), 0);
    ck_assert_uint_eq(agg_handover_counting(R.ho), 1);
    ck_assert_double_eq(s_metric("handover_idle_ends"), 1);
    ck_assert_double_eq(s_metric("idle_answers_heard"), 3);

    /* Nothing left for the timeout, and later batches are counted. */
    agg_handover_tick(R.ho, 1000 + AGG_HANDOVER_PARK_MS + 1);
    ck_assert_int_eq(R.replays, 4);
    ck_assert_double_eq(s_metric("handover_timeouts"), 0);
    ck_assert_int_eq(s_offer(5, "c1", 5), AGG_ADMIT_COUNT);
    /* A late idle answer is ignored. */
    agg_handover_on_idle(R.ho, 5, "a3", 1500);
    ck_assert_double_eq(s_metric("idle_answers_ignored"), 1);
}
END_TEST

START_TEST(a_release_after_an_idle_still_applies_its_marks)
{
    s_peers2("a2", "a3", 1000);
    s_park(7, 1000);
    for (uint64_t seq = 1; seq <= 4; seq++)
        ck_assert_int_eq(s_offer(7, "c1", seq), AGG_ADMIT_PARKED);
    agg_handover_on_idle(R.ho, 7, "a2", 1100);
    ck_assert_int_eq(R.replays, 0);

    /* a3 counted c1 up to 3: only 4 (and the other sender's) is ours. */
    s_release_from("a3", 7, "c1", 3);
    ck_assert_int_eq(R.replays, 5);
    ck_assert_int_eq(R.counted, 2);         /* c1 4 and c1 1000 */
    ck_assert_int_eq(R.counted_seq[4], 1);
    for (int seq = 1; seq <= 3; seq++)
        ck_assert_int_eq(R.counted_seq[seq], 0);
    ck_assert_double_eq(s_metric("batches_below_release"), 3);
    ck_assert_double_eq(s_metric("releases_applied"), 1);
    ck_assert_double_eq(s_metric("handover_idle_ends"), 0);

    /* a3's idle answer to an older claim, late: nothing replays twice. */
    agg_handover_on_idle(R.ho, 7, "a3", 1200);
    ck_assert_int_eq(R.replays, 5);
    ck_assert_int_eq(s_offer(7, "c1", 3), AGG_ADMIT_SKIP);
    ck_assert_double_eq(s_metric("idle_answers_ignored"), 1);
}
END_TEST

START_TEST(idle_answers_that_prove_nothing_are_ignored)
{
    s_peers2("a2", NULL, 1000);
    /* Not ours at all. */
    agg_handover_on_idle(R.ho, 9, "a2", 1000);
    /* Counted here already (no release was expected). */
    agg_handover_set_owned(R.ho, 10, 1, 0, 1000);
    agg_handover_on_idle(R.ho, 10, "a2", 1000);
    /* No such bucket; no instance. */
    agg_handover_on_idle(R.ho, WIRE_BUCKETS, "a2", 1000);
    s_park(11, 1000);
    agg_handover_on_idle(R.ho, 11, NULL, 1000);
    agg_handover_on_idle(R.ho, 11, "", 1000);
    /* A replica not in the view (or ourselves, if it came back). */
    agg_handover_on_idle(R.ho, 11, "zz", 1000);
    agg_handover_on_idle(R.ho, 11, "a1", 1000);
    ck_assert_double_eq(s_metric("idle_answers_ignored"), 7);
    ck_assert_double_eq(s_metric("idle_answers_heard"), 0);
    ck_assert_int_eq(R.replays, 0);
    ck_assert_uint_eq(agg_handover_pending(R.ho), 1);
    /* The one peer there is ends it. */
    agg_handover_on_idle(R.ho, 11, "a2", 1100);
    ck_assert_int_eq(R.replays, 1);
    ck_assert_uint_eq(agg_handover_pending(R.ho), 0);
}
END_TEST

START_TEST(idle_answered_only_when_not_counting)
{
    s_peers2("a2", NULL, 1000);
    /* Never counted here: answer idle. */
    agg_handover_on_claim(R.ho, 3, 1000);
    ck_assert_int_eq(R.idles, 1);
    ck_assert_uint_eq(R.idle_bucket, 3);
    ck_assert_double_eq(s_metric("idle_answers_sent"), 1);

    /* Counted and owned: the claimant's view is behind, no answer. */
    agg_handover_set_owned(R.ho, 4, 1, 0, 1000);
    agg_handover_on_claim(R.ho, 4, 1000);
    /* Parked and owned: the same. */
    s_park(6, 1000);
    agg_handover_on_claim(R.ho, 6, 1000);
    ck_assert_int_eq(R.idles, 1);

    /* Counted, then lost (in grace): it must release, never say idle. */
    agg_handover_set_owned(R.ho, 4, 0, 0, 2000);
    agg_handover_on_claim(R.ho, 4, 2000);
    ck_assert_int_eq(R.idles, 1);
    ck_assert_double_eq(s_metric("claims_heard"), 1);
    agg_handover_tick(R.ho, 2000 + AGG_HANDOVER_SETTLE_MS);
    ck_assert_int_eq(R.releases, 1);
    /* Released: now it is idle here. */
    agg_handover_on_claim(R.ho, 4, 3000);
    ck_assert_int_eq(R.idles, 2);
}
END_TEST

/* Answers heard for an earlier park of the bucket prove nothing now. */
START_TEST(answers_count_from_the_park_on)
{
    s_peers2("a2", "a3", 1000);
    s_park(2, 1000);
    agg_handover_on_idle(R.ho, 2, "a2", 1100);
    s_release_from("a3", 2, "c1", 0);
    ck_assert_int_eq(R.replays, 1);
    /* Lost, released, regained: a new park. */
    agg_handover_set_owned(R.ho, 2, 0, 0, 2000);
    agg_handover_tick(R.ho, 2000 + AGG_HANDOVER_GRACE_MS);
    ck_assert_int_eq(R.releases, 1);
    s_park(2, 20000);
    agg_handover_on_idle(R.ho, 2, "a3", 20100);
    ck_assert_int_eq(R.replays, 0);
    agg_handover_on_idle(R.ho, 2, "a2", 20200);
    ck_assert_int_eq(R.replays, 1);
}
END_TEST

/* A replica that left the view cleanly still counts its buckets through
 * its grace and then releases them: until that has surely happened, the
 * other peers' idle answers do not end a park. */
START_TEST(a_peer_that_left_is_waited_for_through_its_grace)
{
    agg_handover_destroy(&R.ho);
    stats_destroy(&R.stats);
    s_setup_with(1000, 60000);                 /* kept 1 s + 2 s */
    s_peers2("a2", "a3", 1000);
    s_peers2("a3", NULL, 2000);                 /* a2 left */
    s_park(4, 2000);
    s_park(8, 2000);
    agg_handover_on_idle(R.ho, 4, "a3", 2100);
    agg_handover_on_idle(R.ho, 8, "a3", 2100);
    agg_handover_tick(R.ho, 2200);
    ck_assert_int_eq(R.replays, 0);
    /* a2 releases what it counted. */
    s_release_from("a2", 4, "c1", 0);
    ck_assert_int_eq(R.replays, 1);
    /* It never counted 8, and has now been gone longer than any grace:
     * a3's answer is enough. */
    s_peers2("a3", NULL, 2000 + 1000 + AGG_HANDOVER_LEAVE_MS - 1);
    agg_handover_tick(R.ho, 2000 + 1000 + AGG_HANDOVER_LEAVE_MS - 1);
    ck_assert_int_eq(R.replays, 1);
    s_peers2("a3", NULL, 2000 + 1000 + AGG_HANDOVER_LEAVE_MS);
    agg_handover_tick(R.ho, 2000 + 1000 + AGG_HANDOVER_LEAVE_MS);
    ck_assert_int_eq(R.replays, 2);
    ck_assert_double_eq(s_metric("handover_idle_ends"), 1);
    ck_assert_double_eq(s_metric("handover_timeouts"), 0);
}
END_TEST

START_TEST(no_peer_known_waits_for_the_timeout)
{
    s_park(1, 1000);
    agg_handover_on_idle(R.ho, 1, "a2", 1100);
    agg_handover_tick(R.ho, 1200);
    ck_assert_int_eq(R.replays, 0);
    agg_handover_tick(R.ho, 1000 + AGG_HANDOVER_PARK_MS);
    ck_assert_int_eq(R.replays, 1);
    ck_assert_double_eq(s_metric("handover_timeouts"), 1);
    ck_assert_double_eq(s_metric("handover_idle_ends"), 0);
}
END_TEST

/* More peers than the hand-over can tell apart: an untracked one may be
 * counting, so only a release or the timeout ends a park. */
START_TEST(too_many_peers_wait_for_a_release)
{
    char names[AGG_HANDOVER_PEERS + 1][16];
    const char *ptrs[AGG_HANDOVER_PEERS + 1];
    for (int i = 0; i <= AGG_HANDOVER_PEERS; i++) {
        snprintf(names[i], sizeof names[i], "p%d", i);
        ptrs[i] = names[i];
    }
    agg_handover_set_peers(R.ho, ptrs, AGG_HANDOVER_PEERS + 1, 1000);
    agg_handover_set_peers(R.ho, ptrs, AGG_HANDOVER_PEERS + 1, 1100);
    ck_assert_double_eq(s_metric("handover_peers_full"), 1);  /* once */
    s_park(12, 1000);
    for (int i = 0; i <= AGG_HANDOVER_PEERS; i++)
        agg_handover_on_idle(R.ho, 12, names[i], 1100);
    agg_handover_tick(R.ho, 1200);
    ck_assert_int_eq(R.replays, 0);
    s_release_from("p3", 12, "c1", 0);
    ck_assert_int_eq(R.replays, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("handover");
    TCase *tc = tcase_create("idle");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, one_idle_of_two_keeps_the_park_both_end_it);
    tcase_add_test(tc, a_release_after_an_idle_still_applies_its_marks);
    tcase_add_test(tc, idle_answers_that_prove_nothing_are_ignored);
    tcase_add_test(tc, idle_answered_only_when_not_counting);
    tcase_add_test(tc, answers_count_from_the_park_on);
    tcase_add_test(tc, a_peer_that_left_is_waited_for_through_its_grace);
    tcase_add_test(tc, no_peer_known_waits_for_the_timeout);
    tcase_add_test(tc, too_many_peers_wait_for_a_release);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
