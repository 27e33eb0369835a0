/* Flame trees (see flame.h).
 *
 * Memory layout: nodes and interned names live in a chain of bump-allocated
 * chunks that start small and double, because the aggregator keeps many
 * trees (two per window, plus per-task ones) and most of them are small.
 * One open-addressing table interns names; another maps (parent, name,
 * type) to the child node, so a lookup never walks a sibling list. */
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/flame.h"
#include "hash.h"

#define CHUNK_MIN 1024u
#define CHUNK_MAX (256u * 1024u)
#define TRUNCATED_NAME "[truncated]"

typedef struct chunk {
    struct chunk *next;
    size_t used, size;
    unsigned char data[];
} chunk_t;

typedef struct {
    const char *str;
    uint64_t hash;
} intern_slot_t;

struct flame {
    flame_node_t *root;
    size_t max_nodes;
    size_t nnodes;
    uint64_t truncated;
    uint32_t next_id;
    chunk_t *chunks;          /* newest first */
    size_t next_chunk;
    intern_slot_t *strs;      /* interned names */
    size_t nstrs, strs_cap;   /* cap is a power of two */
    flame_node_t **kids;      /* (parent, name, type) -> child */
    size_t nkids, kids_cap;
    int compact;              /* both tables dropped (flame_compact) */
};

/* ---------------------------------------------------------- allocation */
static void *
s_alloc(flame_t *self, size_t size)
{
    size = (size + 7) & ~(size_t)7;
    chunk_t *c = self->chunks;
    if (!c || c->size - c->used < size) {
        size_t want = self->next_chunk;
        while (want < size)
            want *= 2;
        c = malloc(sizeof(*c) + want);
        if (!c)
            return NULL;
        c->next = self->chunks;
        c->used = 0;
        c->size = want;
        self->chunks = c;
        if (self->next_chunk < CHUNK_MAX)
            self->next_chunk *= 2;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

/* ------------------------------------------------------------- hashing */
static uint64_t
s_hash_kid(const flame_node_t *parent, const char *name, uint8_t type)
{
    return hash_mix64((uint64_t)(uintptr_t)parent * 31u
                 ^ hash_mix64((uint64_t)(uintptr_t)name) ^ type);
}

/* ------------------------------------------------------------- interning */
static const char *
s_intern_find(const flame_t *self, const char *name, uint64_t h)
{
    if (!self->strs_cap)
        return NULL;
    size_t mask = self->strs_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const intern_slot_t *slot = &self->strs[i];
        if (!slot->str)
            return NULL;
        if (slot->hash == h && strcmp(slot->str, name) == 0)
            return slot->str;
    }
}

static int
s_intern_grow(flame_t *self)
{
    size_t cap = self->strs_cap ? self->strs_cap * 2 : 64;
    intern_slot_t *strs = calloc(cap, sizeof(*strs));
    if (!strs)
        return -1;
    for (size_t i = 0; i < self->strs_cap; i++) {
        if (!self->strs[i].str)
            continue;
        size_t j = self->strs[i].hash & (cap - 1);
        while (strs[j].str)
            j = (j + 1) & (cap - 1);
        strs[j] = self->strs[i];
    }
    free(self->strs);
    self->strs = strs;
    self->strs_cap = cap;
    return 0;
}

static const char *
s_intern(flame_t *self, const char *name, uint64_t h)
{
    const char *found = s_intern_find(self, name, h);
    if (found)
        return found;
    if ((self->nstrs + 1) * 4 >= self->strs_cap * 3 && s_intern_grow(self))
        return NULL;
    size_t len = strlen(name);
    char *copy = s_alloc(self, len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, name, len + 1);
    size_t mask = self->strs_cap - 1;
    size_t i = h & mask;
    while (self->strs[i].str)
        i = (i + 1) & mask;
    self->strs[i].str = copy;
    self->strs[i].hash = h;
    self->nstrs++;
    return copy;
}

/* ------------------------------------------------------------ children */
static flame_node_t *
s_kid_find(const flame_t *self, const flame_node_t *parent, const char *iname,
           uint8_t type)
{
    if (!self->kids_cap)
        return NULL;
    size_t mask = self->kids_cap - 1;
    for (size_t i = s_hash_kid(parent, iname, type) & mask;;
         i = (i + 1) & mask) {
        flame_node_t *n = self->kids[i];
        if (!n)
            return NULL;
        if (n->parent == parent && n->name == iname && n->type == type)
            return n;
    }
}

static void
s_kid_place(flame_node_t **kids, size_t cap, flame_node_t *n)
{
    size_t mask = cap - 1;
    size_t i = s_hash_kid(n->parent, n->name, n->type) & mask;
    while (kids[i])
        i = (i + 1) & mask;
    kids[i] = n;
}

static int
s_kid_grow(flame_t *self)
{
    size_t cap = self->kids_cap ? self->kids_cap * 2 : 32;
    flame_node_t **kids = calloc(cap, sizeof(*kids));
    if (!kids)
        return -1;
    for (size_t i = 0; i < self->kids_cap; i++)
        if (self->kids[i])
            s_kid_place(kids, cap, self->kids[i]);
    free(self->kids);
    self->kids = kids;
    self->kids_cap = cap;
    return 0;
}

static flame_node_t *
s_node_new(flame_t *self, flame_node_t *parent, const char *iname,
           uint8_t type)
{
    if ((self->nkids + 1) * 4 >= self->kids_cap * 3 && s_kid_grow(self))
        return NULL;
    flame_node_t *n = s_alloc(self, sizeof(*n));
    if (!n)
        return NULL;
    memset(n, 0, sizeof(*n));
    n->name = iname;
    n->type = type;
    n->id = self->next_id++;
    n->parent = parent;
    /* Prepending keeps insertion O(1); output layers order siblings
     * themselves when they need an order. */
    n->next_sibling = parent->first_child;
    parent->first_child = n;
    parent->nchildren++;
    s_kid_place(self->kids, self->kids_cap, n);
    self->nkids++;
    self->nnodes++;
    return n;
}

/* Puts an already interned name (in the chunks) back in the table. */
static int
s_intern_adopt(flame_t *self, const char *str)
{
    uint64_t h = hash_fnv1a(str, 0);
    if (s_intern_find(self, str, h))
        return 0;
    if ((self->nstrs + 1) * 4 >= self->strs_cap * 3 && s_intern_grow(self))
        return -1;
    size_t mask = self->strs_cap - 1;
    size_t i = h & mask;
    while (self->strs[i].str)
        i = (i + 1) & mask;
    self->strs[i].str = str;
    self->strs[i].hash = h;
    self->nstrs++;
    return 0;
}

/* Rebuilds the tables flame_compact dropped, from the nodes themselves
 * (pre-order walk through the sibling lists, no recursion). */
static int
s_rebuild(flame_t *self)
{
    flame_node_t *root = self->root, *n = root;
    while (n) {
        if (s_intern_adopt(self, n->name) < 0)
            return -1;
        if (n != root) {
            if ((self->nkids + 1) * 4 >= self->kids_cap * 3 &&
                s_kid_grow(self))
                return -1;
            s_kid_place(self->kids, self->kids_cap, n);
            self->nkids++;
        }
        if (n->first_child) {
            n = n->first_child;
            continue;
        }
        while (n != root && !n->next_sibling)
            n = n->parent;
        n = n == root ? NULL : n->next_sibling;
    }
    self->compact = 0;
    return 0;
}

/* Finds or creates; NULL at the node bound (or out of memory). h is
 * hash_fnv1a(name, 0). */
static flame_node_t *
s_child_h(flame_t *self, flame_node_t *parent, const char *name, uint64_t h,
          uint8_t type)
{
    if (self->compact && s_rebuild(self) < 0)
        return NULL;
    const char *iname = s_intern_find(self, name, h);
    if (iname) {
        flame_node_t *n = s_kid_find(self, parent, iname, type);
        if (n)
            return n;
    }
    if (self->nnodes >= self->max_nodes)
        return NULL;
    if (!iname && !(iname = s_intern(self, name, h)))
        return NULL;
    return s_node_new(self, parent, iname, type);
}

static flame_node_t *
s_child(flame_t *self, flame_node_t *parent, const char *name, uint8_t type)
{
    return s_child_h(self, parent, name, hash_fnv1a(name, 0), type);
}

/* Where a path that cannot be added below `at` goes: its "[truncated]"
 * child when there is room for it, else `at` itself. */
static flame_node_t *
s_fold_target(flame_t *self, flame_node_t *at)
{
    self->truncated++;
    flame_node_t *t = s_child(self, at, TRUNCATED_NAME, FLAME_UNKNOWN);
    return t ? t : at;
}

/* ------------------------------------------------------------- public */
flame_t *
flame_new(const char *root_name, size_t max_nodes)
{
    flame_t *self = calloc(1, sizeof(*self));
    if (!self)
        goto fail;
    self->max_nodes = max_nodes < 2 ? 2 : max_nodes;
    self->next_chunk = CHUNK_MIN;
    self->root = s_alloc(self, sizeof(*self->root));
    if (!self->root)
        goto fail;
    memset(self->root, 0, sizeof(*self->root));
    const char *name = s_intern(self, root_name ? root_name : "",
                                hash_fnv1a(root_name ? root_name : "", 0));
    if (!name)
        goto fail;
    self->root->name = name;
    self->root->type = FLAME_ROOT;
    self->root->id = self->next_id++;
    self->nnodes = 1;
    return self;
fail:
    flame_destroy(&self);
    return NULL;
}

void
flame_destroy(flame_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    flame_t *self = *self_p;
    chunk_t *c = self->chunks;
    while (c) {
        chunk_t *next = c->next;
        free(c);
        c = next;
    }
    free(self->strs);
    free(self->kids);
    free(self);
    *self_p = NULL;
}

flame_node_t *
flame_root(flame_t *self)
{
    return self->root;
}

const char *
flame_root_name(const flame_t *self)
{
    return self->root->name;
}

size_t
flame_node_count(const flame_t *self)
{
    return self->nnodes;
}

uint64_t
flame_truncated(const flame_t *self)
{
    return self->truncated;
}

flame_node_t *
flame_find_child(const flame_t *self, const flame_node_t *parent,
                 const char *name, uint8_t type)
{
    if (self->compact) {
        /* Read-only (closed windows are shared between threads): walk
         * the siblings rather than rebuild the tables. */
        for (flame_node_t *c = parent->first_child; c; c = c->next_sibling)
            if (c->type == type && strcmp(c->name, name) == 0)
                return c;
        return NULL;
    }
    const char *iname = s_intern_find(self, name, hash_fnv1a(name, 0));
    return iname ? s_kid_find(self, parent, iname, type) : NULL;
}

flame_node_t *
flame_child(flame_t *self, flame_node_t *parent, const char *name,
            uint8_t type)
{
    return s_child(self, parent, name, type);
}

void
flame_compact(flame_t *self)
{
    free(self->strs);
    self->strs = NULL;
    self->nstrs = self->strs_cap = 0;
    free(self->kids);
    self->kids = NULL;
    self->nkids = self->kids_cap = 0;
    self->compact = 1;
}

void
flame_credit(flame_t *self, flame_node_t *node, uint64_t ns, uint64_t count)
{
    (void)self;
    node->self_ns += ns;
    node->self_count += count;
    for (flame_node_t *p = node; p; p = p->parent) {
        p->total_ns += ns;
        p->total_count += count;
    }
}

flame_node_t *
flame_add(flame_t *self, const char *const *names, const uint8_t *types,
          size_t n, uint64_t ns, uint64_t count)
{
    return flame_add_hashed(self, names, NULL, types, n, ns, count);
}

flame_node_t *
flame_add_hashed(flame_t *self, const char *const *names,
                 const uint64_t *hashes, const uint8_t *types, size_t n,
                 uint64_t ns, uint64_t count)
{
    flame_node_t *node = self->root;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = hashes ? hashes[i] : hash_fnv1a(names[i], 0);
        flame_node_t *child = s_child_h(self, node, names[i], h, types[i]);
        if (!child) {
            if (self->nnodes < self->max_nodes)
                return NULL;          /* allocation failure, not the bound */
            node = s_fold_target(self, node);
            break;
        }
        node = child;
    }
    flame_credit(self, node, ns, count);
    return node;
}

int
flame_merge_node(flame_t *self, flame_node_t *at, const flame_node_t *src)
{
    for (flame_node_t *p = at->parent; p; p = p->parent) {
        p->total_ns += src->total_ns;
        p->total_count += src->total_count;
    }
    at->self_ns += src->self_ns;
    at->self_count += src->self_count;
    at->total_ns += src->total_ns;
    at->total_count += src->total_count;

    /* Iterative pre-order walk of src; dst_parent always maps
     * cur->parent, which holds because every mapped dst node is the child
     * of the mapping of its src parent. */
    const flame_node_t *cur = src->first_child;
    flame_node_t *dst_parent = at;
    int rc = 0;
    while (cur) {
        flame_node_t *d = s_child(self, dst_parent, cur->name, cur->type);
        if (d) {
            d->self_ns += cur->self_ns;
            d->self_count += cur->self_count;
            d->total_ns += cur->total_ns;
            d->total_count += cur->total_count;
            if (cur->first_child) {
                dst_parent = d;
                cur = cur->first_child;
                continue;
            }
        } else {
            if (self->nnodes < self->max_nodes)
                rc = -1;
            /* dst_parent's total already includes cur's: crediting the fold
             * target's self (and its own total when it is a new child)
             * keeps total = self + children. */
            flame_node_t *t = s_fold_target(self, dst_parent);
            t->self_ns += cur->total_ns;
            t->self_count += cur->total_count;
            if (t != dst_parent) {
                t->total_ns += cur->total_ns;
                t->total_count += cur->total_count;
            }
        }
        while (cur != src && !cur->next_sibling) {
            cur = cur->parent;
            dst_parent = dst_parent->parent;
        }
        if (cur == src)
            break;
        cur = cur->next_sibling;
    }
    return rc;
}

int
flame_merge(flame_t *self, const flame_t *src)
{
    return flame_merge_node(self, self->root, src->root);
}

int
flame_visit(const flame_t *self, flame_visit_fn fn, void *arg)
{
    const flame_node_t *cur = self->root;
    int depth = 0;
    while (cur) {
        int rc = fn(cur, depth, arg);
        if (rc)
            return rc;
        if (cur->first_child) {
            cur = cur->first_child;
            depth++;
            continue;
        }
        while (cur && !cur->next_sibling) {
            cur = cur->parent;
            depth--;
        }
        if (cur)
            cur = cur->next_sibling;
    }
    return 0;
}

flame_t *
flame_subtree(const flame_t *self, const char *child_name, size_t max_nodes)
{
    flame_t *out = flame_new(child_name, max_nodes);
    if (!out)
        return NULL;
    for (const flame_node_t *c = self->root->first_child; c;
         c = c->next_sibling) {
        if (strcmp(c->name, child_name) == 0) {
            if (flame_merge_node(out, out->root, c))
                flame_destroy(&out);
            break;
        }
    }
    return out;
}
