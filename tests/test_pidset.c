/* collector/pidset: the process set of a probe and its two BPF maps (a
 * bitmap of tgids below 64 * its words, a hash of the tgids past it),
 * checked against real maps (root; skipped without BPF). */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "collector/pidset.h"
#include "testutil.h"

#define WORDS 4u               /* the bitmap covers tgids 0..255 */

typedef struct {
    int bits_fd, pids_fd;
} maps_t;

static int s_maps(maps_t *m)
{
    m->bits_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "test_bits", 4, 8, WORDS,
                                NULL);
    m->pids_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "test_pids", 4, 4, 64,
                                NULL);
    return m->bits_fd >= 0 && m->pids_fd >= 0 ? 0 : -1;
}

static void s_close(maps_t *m)
{
    close(m->bits_fd);
    close(m->pids_fd);
}

/* Whether the maps say tgid is in the set, the way bpf/pidset.bpf.h
 * tests it. */
static int s_in_maps(const maps_t *m, uint32_t tgid)
{
    uint32_t word = tgid / 64, one;
    uint64_t w;

    if (word < WORDS) {
        ck_assert_int_eq(bpf_map_lookup_elem(m->bits_fd, &word, &w), 0);
        return (w >> (tgid % 64)) & 1;
    }
    return bpf_map_lookup_elem(m->pids_fd, &tgid, &one) == 0;
}

static int s_hash_entries(const maps_t *m)
{
    uint32_t key, next;
    int n = 0;

    for (int first = 1;
         bpf_map_get_next_key(m->pids_fd, first ? NULL : &key, &next) == 0;
         first = 0) {
        key = next;
        n++;
    }
    return n;
}

typedef struct {
    uint32_t added[16], removed[16];
    int nadded, nremoved;
} calls_t;

static void s_added(void *arg, uint32_t pid)
{
    calls_t *c = arg;

    ck_assert_int_lt(c->nadded, 16);
    c->added[c->nadded++] = pid;
}

static void s_removed(void *arg, uint32_t pid)
{
    calls_t *c = arg;

    ck_assert_int_lt(c->nremoved, 16);
    c->removed[c->nremoved++] = pid;
}

static int s_have_bpf_maps(void)
{
    maps_t m;
    int ok = s_maps(&m) == 0;

    s_close(&m);
    if (!ok)
        return tu_skip("pidset maps", "cannot create BPF maps: %s",
                       strerror(errno));
    return 1;
}

START_TEST(test_update_writes_exactly_the_set)
{
    maps_t m;
    calls_t c = { 0 };
    pidset_t *p = pidset_new();
    /* 1 and 63 share word 0, 64 is word 1, 255 the last bit; 256 and 4000
     * are past the bitmap */
    const uint32_t first[] = { 1, 63, 64, 200, 255, 256, 4000 };
    const uint32_t second[] = { 1, 64, 130, 4000, 5000 };

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(s_maps(&m), 0);
    /* Not bound: nothing to write to. */
    ck_assert_int_eq(pidset_update(p, first, 7, NULL, NULL, NULL), -1);
    ck_assert_int_eq(errno, EBADF);
    pidset_bind(p, m.bits_fd, WORDS, m.pids_fd);

    ck_assert_int_eq(pidset_update(p, first, 7, s_added, s_removed, &c), 0);
    ck_assert_int_eq(c.nadded, 7);
    ck_assert_int_eq(c.nremoved, 0);
    for (uint32_t t = 0; t < 6000; t++) {
        int want = 0;
        for (int i = 0; i < 7; i++)
            want |= first[i] == t;
        ck_assert_msg(s_in_maps(&m, t) == want, "tgid %u", t);
        ck_assert_int_eq(pidset_has(p, t), want);
    }
    /* Only the tgids past the bitmap are in the hash. */
    ck_assert_int_eq(s_hash_entries(&m), 2);
    ck_assert_uint_eq(pidset_count(p), 7);
    ck_assert_uint_eq(pidset_pids(p)[6], 4000);

    memset(&c, 0, sizeof c);
    ck_assert_int_eq(pidset_update(p, second, 5, s_added, s_removed, &c), 0);
    ck_assert_int_eq(c.nadded, 2);        /* 130, 5000 */
    ck_assert_uint_eq(c.added[0], 130);
    ck_assert_uint_eq(c.added[1], 5000);
    ck_assert_int_eq(c.nremoved, 4);      /* 63, 200, 255, 256 */
    ck_assert_uint_eq(c.removed[0], 63);
    ck_assert_uint_eq(c.removed[3], 256);
    for (uint32_t t = 0; t < 6000; t++) {
        int want = 0;
        for (int i = 0; i < 5; i++)
            want |= second[i] == t;
        ck_assert_msg(s_in_maps(&m, t) == want, "tgid %u", t);
    }
    ck_assert_int_eq(s_hash_entries(&m), 2);   /* 4000, 5000 */

    /* Empty: every bit and hash entry goes. */
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(pidset_update(p, NULL, 0, s_added, s_removed, &c), 0);
    ck_assert_int_eq(c.nremoved, 5);
    ck_assert_int_eq(c.nadded, 0);
    for (uint32_t t = 0; t < 6000; t++)
        ck_assert(!s_in_maps(&m, t));
    ck_assert_int_eq(s_hash_entries(&m), 0);
    ck_assert_uint_eq(pidset_count(p), 0);

    /* Unbinding forgets the set with the maps. */
    ck_assert_int_eq(pidset_update(p, first, 2, NULL, NULL, NULL), 0);
    pidset_unbind(p);
    ck_assert_uint_eq(pidset_count(p), 0);
    ck_assert(!pidset_has(p, 1));
    pidset_destroy(&p);
    ck_assert_ptr_null(p);
    pidset_destroy(&p);
    s_close(&m);
}
END_TEST

/* A full hash: the update says so, and the set still holds every pid
 * asked for (the next update retries the missing ones). */
START_TEST(test_full_hash_is_reported)
{
    maps_t m;
    pidset_t *p = pidset_new();
    uint32_t many[80];

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(s_maps(&m), 0);
    pidset_bind(p, m.bits_fd, WORDS, m.pids_fd);
    for (uint32_t i = 0; i < 80; i++)
        many[i] = 1000 + i;       /* all past the bitmap; the hash holds 64 */
    ck_assert_int_eq(pidset_update(p, many, 80, NULL, NULL, NULL), -1);
    ck_assert_int_eq(errno, E2BIG);
    ck_assert_uint_eq(pidset_count(p), 80);
    ck_assert_int_eq(s_hash_entries(&m), 64);
    pidset_destroy(&p);
    s_close(&m);
}
END_TEST

START_TEST(test_pid_max)
{
    uint32_t max = pidset_pid_max();

    /* Linux's range: at least 301 (RESERVED_PIDS + 1), at most 2^22. */
    ck_assert_uint_ge(max, 301);
    ck_assert_uint_le(max, 1u << 22);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pidset");
    TCase *tc = tcase_create("maps");

    tcase_add_test(tc, test_pid_max);
    if (s_have_bpf_maps()) {
        tcase_add_test(tc, test_update_writes_exactly_the_set);
        tcase_add_test(tc, test_full_hash_is_reported);
    }
    suite_add_tcase(s, tc);
    return tu_run(s);
}
