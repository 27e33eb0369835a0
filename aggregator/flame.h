/* Flame trees: a root, then one child per distinct frame sequence. Values
 * are kept in nanoseconds (CPU time on-CPU, blocked time off-CPU) and in
 * counts (samples, or context switches), so the API can answer in
 * microseconds (seed 004) and in dump counts (seed 001) from one tree.
 *
 * Children are kept in a per-node hash for O(1) lookup while merging and in
 * a sibling list for traversal. Names are interned in the tree. */
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
};

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

/* Adds every path of src into self (same semantics as flame_add). */
int flame_merge(flame_t *self, const flame_t *src);

/* Depth-first pre-order visit; stops early when fn returns non-zero. */
typedef int (*flame_visit_fn)(const flame_node_t *node, int depth, void *arg);
int flame_visit(const flame_t *self, flame_visit_fn fn, void *arg);

/* Keeps only the subtree under the first child of the root whose name
 * matches (used to cut one process out of the host-wide tree). */
flame_t *flame_subtree(const flame_t *self, const char *child_name,
                       size_t max_nodes);

#endif
