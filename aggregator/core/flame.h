/* Flame trees: a root, then one child per distinct frame sequence. Values
 * are kept in nanoseconds (CPU time on-CPU, blocked time off-CPU) and in
 * counts (samples, or context switches), so the API can answer in
 * microseconds (DeepFlow's ProfileTracing) and in dump counts
 * (SkyWalking's EBPFProfilingTree) from one tree.
 *
 * Children are found through one tree-wide hash keyed by (parent, name,
 * type) for O(1) lookup while merging, and kept in a sibling list for
 * traversal. Names are interned in the tree. Invariant kept by every
 * operation: total = self + sum(children's total), for ns and counts. */
#ifndef SKYPROF_FLAME_H
#define SKYPROF_FLAME_H

#include <stddef.h>
#include <stdint.h>

/* Node types: the wire frame types (enum wire_frame_type, 0..4) plus the
 * synthetic layers of the host-wide view. */
enum flame_node_type {
    FLAME_KERNEL = 0,
    FLAME_USER = 1,
    FLAME_LIB = 2,
    FLAME_JIT = 3,
    FLAME_UNKNOWN = 4,
    FLAME_ROOT = 5,     /* process name, task id, or "Total" */
    FLAME_PROCESS = 6,  /* "[p] name" layer under Total */
    FLAME_THREAD = 7,   /* "[t] name" layer */
    FLAME_NODE = 8,     /* "[n] node" layer: the host a process runs on */
    /* Kubernetes layers between node and process (docs/kubernetes.md) */
    FLAME_NAMESPACE = 9,  /* "[ns] namespace" */
    FLAME_POD = 10,       /* "[pod] name" */
    FLAME_CONTAINER = 11, /* "[c] name" */
};
#define FLAME_TYPE_MAX FLAME_CONTAINER

typedef struct flame_node {
    const char *name;
    uint8_t type;
    uint32_t id;                   /* stable within the tree, root = 0 */
    uint64_t self_ns, total_ns;
    uint64_t self_count, total_count;
    struct flame_node *parent;
    struct flame_node *first_child;
    struct flame_node *next_sibling;
    uint32_t nchildren;
} flame_node_t;

typedef struct flame flame_t;

/* max_nodes bounds memory: paths that would add nodes past it are folded
 * into a "[truncated]" child of the deepest existing node (counted). */
flame_t *flame_new(const char *root_name, size_t max_nodes);
void flame_destroy(flame_t **self_p);

flame_node_t *flame_root(flame_t *self);
size_t flame_node_count(const flame_t *self);
uint64_t flame_truncated(const flame_t *self);

/* Adds one path, root-most frame first, crediting every node on it with
 * total and the last with self. Returns the leaf, or NULL on allocation
 * failure. */
flame_node_t *flame_add(flame_t *self, const char *const *names,
                        const uint8_t *types, size_t n, uint64_t ns,
                        uint64_t count);

/* flame_add with each name's hash_fnv1a(name, 0) computed by the caller
 * (hashes may be NULL): a batch hashes its frame table once instead of
 * every frame of every sample. */
flame_node_t *flame_add_hashed(flame_t *self, const char *const *names,
                               const uint64_t *hashes, const uint8_t *types,
                               size_t n, uint64_t ns, uint64_t count);

/* Adds every path of src into self (same semantics as flame_add). */
int flame_merge(flame_t *self, const flame_t *src);

/* Depth-first pre-order visit; stops early when fn returns non-zero. */
typedef int (*flame_visit_fn)(const flame_node_t *node, int depth, void *arg);
int flame_visit(const flame_t *self, flame_visit_fn fn, void *arg);

/* Keeps only the subtree under the first child of the root whose name
 * matches (used to cut one process out of the host-wide tree). The result
 * is rooted at child_name; it is empty (root only) when nothing matches.
 * NULL only on allocation failure. */
flame_t *flame_subtree(const flame_t *self, const char *child_name,
                       size_t max_nodes);

/* ---- extensions used by the aggregator's windows and queries ---- */

const char *flame_root_name(const flame_t *self);

/* The child of parent with this name and type, or NULL. */
flame_node_t *flame_find_child(const flame_t *self, const flame_node_t *parent,
                               const char *name, uint8_t type);

/* Finds or creates the child (values 0). NULL when the node bound is
 * reached or allocation fails; the caller then folds what it would have
 * added into the parent (flame_credit). */
flame_node_t *flame_child(flame_t *self, flame_node_t *parent,
                          const char *name, uint8_t type);

/* Drops the lookup tables that only adding needs (a sixth to a third of a
 * big tree's memory): for trees that are done growing, like closed
 * windows. Reads and flame_find_child keep working (it then walks the
 * siblings, without writing, so shared readers stay safe); a later add
 * rebuilds the tables first. */
void flame_compact(flame_t *self);

/* Credits node's self and the total of node and every ancestor. */
void flame_credit(flame_t *self, flame_node_t *node, uint64_t ns,
                  uint64_t count);

/* Merges the subtree of src (a node of another tree) into `at`: at gets
 * src's values, src's children merge into at's children, and at's
 * ancestors' totals grow by src's total. Paths past the node bound fold
 * into "[truncated]" (counted). 0, or -1 on allocation failure. */
int flame_merge_node(flame_t *self, flame_node_t *at, const flame_node_t *src);

#endif
