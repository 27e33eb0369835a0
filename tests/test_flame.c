/* Flame trees: add, merge, visit, subtree, the node bound, the
 * total = self + children invariant, and the store blob round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/flame.h"
#include "aggregator/core/flame_blob.h"
#include "hash.h"
#include "testutil.h"

/* Checks total = self + sum(children) on every node; counts nodes. */
static int
s_check(const flame_node_t *n, int depth, void *arg)
{
    (void)depth;
    size_t *count = arg;
    uint64_t ns = n->self_ns, c = n->self_count;
    size_t kids = 0;
    for (const flame_node_t *k = n->first_child; k; k = k->next_sibling) {
        ns += k->total_ns;
        c += k->total_count;
        kids++;
        ck_assert_ptr_eq(k->parent, n);
    }
    ck_assert_uint_eq(ns, n->total_ns);
    ck_assert_uint_eq(c, n->total_count);
    ck_assert_uint_eq(kids, n->nchildren);
    (*count)++;
    return 0;
}

static size_t
s_check_tree(const flame_t *t)
{
    size_t n = 0;
    ck_assert_int_eq(flame_visit(t, s_check, &n), 0);
    ck_assert_uint_eq(n, flame_node_count(t));
    return n;
}

static const flame_node_t *
s_path(flame_t *t, const char *a, const char *b, const char *c)
{
    const char *names[3] = { a, b, c };
    const flame_node_t *n = flame_root(t);
    for (int i = 0; i < 3 && names[i]; i++) {
        const flame_node_t *k = n->first_child;
        while (k && strcmp(k->name, names[i]) != 0)
            k = k->next_sibling;
        if (!k)
            return NULL;
        n = k;
    }
    return n;
}

static flame_t *
s_sample_tree(void)
{
    flame_t *t = flame_new("root", 1000);
    const char *p1[] = { "main", "work", "leaf" };
    const char *p2[] = { "main", "work" };
    const char *p3[] = { "main", "idle" };
    uint8_t ty[] = { FLAME_USER, FLAME_LIB, FLAME_KERNEL };
    ck_assert_ptr_nonnull(flame_add(t, p1, ty, 3, 3000, 3));
    ck_assert_ptr_nonnull(flame_add(t, p2, ty, 2, 2000, 2));
    ck_assert_ptr_nonnull(flame_add(t, p3, ty, 2, 5000, 5));
    ck_assert_ptr_nonnull(flame_add(t, p1, ty, 3, 1000, 1));
    return t;
}

START_TEST(test_add_and_visit)
{
    flame_t *t = s_sample_tree();
    ck_assert_str_eq(flame_root_name(t), "root");
    ck_assert_uint_eq(flame_node_count(t), 5);
    ck_assert_uint_eq(flame_root(t)->total_ns, 11000);
    ck_assert_uint_eq(flame_root(t)->total_count, 11);
    const flame_node_t *leaf = s_path(t, "main", "work", "leaf");
    ck_assert_ptr_nonnull(leaf);
    ck_assert_uint_eq(leaf->self_ns, 4000);
    ck_assert_uint_eq(leaf->type, FLAME_KERNEL);
    const flame_node_t *work = s_path(t, "main", "work", NULL);
    ck_assert_uint_eq(work->self_ns, 2000);
    ck_assert_uint_eq(work->total_ns, 6000);
    ck_assert_uint_eq(s_path(t, "main", NULL, NULL)->self_ns, 0);
    /* Same name, different type: a different node. */
    const char *n1[] = { "main" };
    uint8_t tk[] = { FLAME_KERNEL };
    flame_add(t, n1, tk, 1, 1, 1);
    ck_assert_uint_eq(flame_root(t)->nchildren, 2);
    ck_assert_ptr_nonnull(flame_find_child(t, flame_root(t), "main",
                                           FLAME_KERNEL));
    ck_assert_ptr_null(flame_find_child(t, flame_root(t), "nope",
                                        FLAME_USER));
    s_check_tree(t);
    /* Ids are unique, root 0. */
    ck_assert_uint_eq(flame_root(t)->id, 0);
    ck_assert_uint_ne(leaf->id, work->id);
    flame_destroy(&t);
    ck_assert_ptr_null(t);
    flame_destroy(&t);
    flame_destroy(NULL);
}
END_TEST

START_TEST(test_merge)
{
    flame_t *a = s_sample_tree();
    flame_t *b = s_sample_tree();
    const char *other[] = { "other" };
    uint8_t ty[] = { FLAME_USER };
    flame_add(b, other, ty, 1, 700, 7);
    ck_assert_int_eq(flame_merge(a, b), 0);
    ck_assert_uint_eq(flame_root(a)->total_ns, 22700);
    ck_assert_uint_eq(flame_root(a)->total_count, 29);
    ck_assert_uint_eq(s_path(a, "main", "work", "leaf")->self_ns, 8000);
    ck_assert_uint_eq(s_path(a, "other", NULL, NULL)->self_count, 7);
    ck_assert_uint_eq(flame_node_count(a), 6);
    s_check_tree(a);

    /* Merging a node below a grafted child credits the ancestors. */
    flame_t *c = flame_new("Total", 1000);
    flame_node_t *p = flame_child(c, flame_root(c), "proc", FLAME_PROCESS);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(flame_merge_node(c, p, flame_root(b)), 0);
    ck_assert_uint_eq(flame_root(c)->total_ns, flame_root(b)->total_ns);
    ck_assert_uint_eq(p->total_ns, flame_root(b)->total_ns);
    s_check_tree(c);
    flame_destroy(&a);
    flame_destroy(&b);
    flame_destroy(&c);
}
END_TEST

START_TEST(test_subtree)
{
    flame_t *t = flame_new("Total", 100);
    const char *p1[] = { "proc-a", "t1", "f" };
    const char *p2[] = { "proc-b", "t2", "g" };
    uint8_t ty[] = { FLAME_PROCESS, FLAME_THREAD, FLAME_USER };
    flame_add(t, p1, ty, 3, 100, 1);
    flame_add(t, p2, ty, 3, 200, 2);
    flame_t *s = flame_subtree(t, "proc-b", 100);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(flame_root_name(s), "proc-b");
    ck_assert_uint_eq(flame_root(s)->total_ns, 200);
    ck_assert_uint_eq(flame_node_count(s), 3);
    ck_assert_ptr_nonnull(s_path(s, "t2", "g", NULL));
    s_check_tree(s);
    flame_destroy(&s);
    s = flame_subtree(t, "missing", 100);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(flame_node_count(s), 1);
    ck_assert_uint_eq(flame_root(s)->total_ns, 0);
    flame_destroy(&s);
    flame_destroy(&t);
}
END_TEST

START_TEST(test_truncation_bound)
{
    const size_t max = 50;
    flame_t *t = flame_new("root", max);
    char names[8][32];
    const char *path[8];
    uint8_t ty[8] = { 0 };
    uint64_t added = 0;
    for (int i = 0; i < 500; i++) {
        for (int d = 0; d < 8; d++) {
            snprintf(names[d], sizeof(names[d]), "f%d_%d", d, (i * (d + 1)) % 97);
            path[d] = names[d];
        }
        ck_assert_ptr_nonnull(flame_add(t, path, ty, 8, 10, 1));
        added += 10;
        ck_assert_uint_le(flame_node_count(t), max);
    }
    ck_assert_uint_eq(flame_node_count(t), max);
    ck_assert_uint_gt(flame_truncated(t), 0);
    /* Nothing is lost: every ns is still accounted for at the root. */
    ck_assert_uint_eq(flame_root(t)->total_ns, added);
    s_check_tree(t);

    /* Merging a big tree into a small one respects the bound too. */
    flame_t *big = flame_new("big", 10000);
    for (int i = 0; i < 300; i++) {
        snprintf(names[0], sizeof(names[0]), "a%d", i);
        snprintf(names[1], sizeof(names[1]), "b%d", i);
        path[0] = names[0];
        path[1] = names[1];
        flame_add(big, path, ty, 2, 3, 1);
    }
    flame_t *small = flame_new("small", 20);
    flame_merge(small, big);
    ck_assert_uint_le(flame_node_count(small), 20);
    ck_assert_uint_eq(flame_root(small)->total_ns, 900);
    ck_assert_uint_gt(flame_truncated(small), 0);
    s_check_tree(small);
    flame_destroy(&big);
    flame_destroy(&small);
    flame_destroy(&t);
}
END_TEST

typedef struct {
    char *lines[64];
    size_t n;
} dump_t;

/* One line per node naming its whole path, so two trees compare equal
 * whatever their sibling order. */
static int
s_dump(const flame_node_t *n, int depth, void *arg)
{
    dump_t *d = arg;
    const flame_node_t *chain[64];
    char path[2048];
    size_t nchain = 0, off = 0;
    (void)depth;
    for (const flame_node_t *p = n; p && nchain < 64; p = p->parent)
        chain[nchain++] = p;
    path[0] = '\0';
    while (nchain-- > 0 && off < sizeof(path))
        off += (size_t)snprintf(path + off, sizeof(path) - off, "%u:%s/",
                                chain[nchain]->type, chain[nchain]->name);
    ck_assert_uint_lt(d->n, 64);
    ck_assert_int_gt(asprintf(&d->lines[d->n++], "%s=%llu:%llu:%llu:%llu",
                              path, (unsigned long long)n->self_ns,
                              (unsigned long long)n->self_count,
                              (unsigned long long)n->total_ns,
                              (unsigned long long)n->total_count), 0);
    return 0;
}

static int
s_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
s_same_tree(const flame_t *x, const flame_t *y)
{
    dump_t a = { .n = 0 }, b = { .n = 0 };
    flame_visit(x, s_dump, &a);
    flame_visit(y, s_dump, &b);
    ck_assert_uint_eq(a.n, b.n);
    qsort(a.lines, a.n, sizeof(char *), s_strcmp);
    qsort(b.lines, b.n, sizeof(char *), s_strcmp);
    for (size_t i = 0; i < a.n; i++) {
        ck_assert_str_eq(a.lines[i], b.lines[i]);
        free(a.lines[i]);
        free(b.lines[i]);
    }
}

START_TEST(test_blob_roundtrip)
{
    flame_t *t = s_sample_tree();
    const char *odd[] = { "名前\x01;weird \"name\"" };
    uint8_t ty[] = { FLAME_JIT };
    flame_add(t, odd, ty, 1, 5, 1);
    unsigned char *blob = NULL;
    size_t len = 0;
    char err[128];
    ck_assert_int_eq(flame_blob_encode(t, &blob, &len), 0);
    ck_assert_uint_gt(len, 5);
    flame_t *back = flame_blob_decode(blob, len, err, sizeof(err));
    ck_assert_msg(back != NULL, "%s", err);
    s_same_tree(t, back);
    flame_destroy(&back);

    /* Every truncation and a flipped byte are rejected, never trusted. */
    for (size_t cut = 0; cut < len; cut++) {
        back = flame_blob_decode(blob, cut, err, sizeof(err));
        ck_assert_ptr_null(back);
    }
    blob[len / 2] ^= 0x5a;
    back = flame_blob_decode(blob, len, err, sizeof(err));
    ck_assert_ptr_null(back);
    free(blob);
    flame_destroy(&t);
}
END_TEST

/* A compacted tree (closed window) still finds its children, and adding
 * to it afterwards reuses the existing nodes instead of duplicating them;
 * hashed adds land on the same nodes as plain ones. */
START_TEST(test_compact_and_hashed)
{
    flame_t *f = flame_new("Total", 1000);
    ck_assert_ptr_nonnull(f);
    const char *p1[] = { "main", "work", "std::vector<int>::push_back" };
    const char *p2[] = { "main", "idle" };
    uint8_t ty[] = { FLAME_USER, FLAME_USER, FLAME_LIB };
    uint64_t h1[3];
    for (int i = 0; i < 3; i++)
        h1[i] = hash_fnv1a(p1[i], 0);
    ck_assert_ptr_nonnull(flame_add(f, p1, ty, 3, 10, 1));
    ck_assert_ptr_nonnull(flame_add(f, p2, ty, 2, 5, 1));
    size_t nodes = flame_node_count(f);
    ck_assert_uint_eq(nodes, 5);
    flame_compact(f);
    flame_node_t *root = flame_root(f);
    flame_node_t *m = flame_find_child(f, root, "main", FLAME_USER);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(flame_find_child(f, m, "idle", FLAME_USER));
    ck_assert_ptr_null(flame_find_child(f, m, "idle", FLAME_LIB));
    ck_assert_ptr_null(flame_find_child(f, m, "nothing", FLAME_USER));
    /* Adding again after compaction: same nodes, values accumulate. */
    flame_node_t *leaf = flame_add_hashed(f, p1, h1, ty, 3, 7, 2);
    ck_assert_ptr_nonnull(leaf);
    ck_assert_uint_eq(flame_node_count(f), nodes);
    ck_assert_uint_eq(leaf->self_ns, 17);
    ck_assert_uint_eq(leaf->self_count, 3);
    ck_assert_uint_eq(m->total_ns, 22);
    ck_assert_uint_eq(root->total_count, 4);
    ck_assert_ptr_eq(flame_find_child(f, root, "main", FLAME_USER), m);
    /* A new path after compaction grows the tree by exactly its nodes. */
    const char *p3[] = { "main", "work", "other" };
    ck_assert_ptr_nonnull(flame_add_hashed(f, p3, NULL, ty, 3, 1, 1));
    ck_assert_uint_eq(flame_node_count(f), nodes + 1);
    flame_destroy(&f);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("flame");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_add_and_visit);
    tcase_add_test(tc, test_merge);
    tcase_add_test(tc, test_subtree);
    tcase_add_test(tc, test_truncation_bound);
    tcase_add_test(tc, test_blob_roundtrip);
    tcase_add_test(tc, test_compact_and_hashed);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
