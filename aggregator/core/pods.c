/* Container id -> pod, per node: see pods.h. Each node's table lives in
 * one arena, sorted by container id. */
#include "aggregator/core/pods.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"

typedef struct {
    const char *id;
    agg_pod_t pod;
} s_row_t;

typedef struct {
    char *node;
    arena_t *arena;
    s_row_t *rows;
    size_t nrows;
} s_table_t;

struct agg_pods {
    s_table_t tables[AGG_PODS_MAX_NODES];
    size_t ntables;
};

agg_pods_t *
agg_pods_new(void)
{
    return calloc(1, sizeof(agg_pods_t));
}

void
agg_pods_destroy(agg_pods_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    agg_pods_t *self = *self_p;
    for (size_t i = 0; i < self->ntables; i++) {
        free(self->tables[i].node);
        arena_destroy(&self->tables[i].arena);
    }
    free(self);
    *self_p = NULL;
}

static int
s_row_cmp(const void *a, const void *b)
{
    return strcmp(((const s_row_t *)a)->id, ((const s_row_t *)b)->id);
}

static s_table_t *
s_table(const agg_pods_t *self, const char *node)
{
    for (size_t i = 0; i < self->ntables; i++)
        if (!strcmp(self->tables[i].node, node))
            return (s_table_t *)&self->tables[i];
    return NULL;
}

int
agg_pods_update(agg_pods_t *self, const wire_k8s_containers_t *m)
{
    const char *node = m->node ? m->node : "";
    s_table_t *t = s_table(self, node);
    if (!t) {
        if (self->ntables == AGG_PODS_MAX_NODES)
            return -1;
        t = &self->tables[self->ntables];
        memset(t, 0, sizeof(*t));
        if (!(t->node = strdup(node)))
            return -1;
        self->ntables++;
    }
    /* Bounded by the wire limits: 4096 rows of 6 strings of 4 KiB. */
    arena_t *a = arena_new((size_t)WIRE_MAX_K8S_CONTAINERS * 6 *
                           (WIRE_MAX_STR + 1) + (1u << 20));
    s_row_t *rows = a ? arena_calloc(a, m->ncontainers ? m->ncontainers : 1,
                                     sizeof(*rows)) : NULL;
    if (!rows) {
        arena_destroy(&a);
        return -1;
    }
    for (uint32_t i = 0; i < m->ncontainers; i++) {
        const wire_k8s_container_t *c = &m->containers[i];
        rows[i] = (s_row_t){ arena_strdup(a, c->container_id),
                             { arena_strdup(a, c->ns),
                               arena_strdup(a, c->pod),
                               arena_strdup(a, c->container) } };
        if (!rows[i].id || !rows[i].pod.ns || !rows[i].pod.pod
            || !rows[i].pod.container) {
            arena_destroy(&a);
            return -1;
        }
    }
    qsort(rows, m->ncontainers, sizeof(*rows), s_row_cmp);
    arena_destroy(&t->arena);
    t->arena = a;
    t->rows = rows;
    t->nrows = m->ncontainers;
    return 0;
}

const agg_pod_t *
agg_pods_find(const agg_pods_t *self, const char *node,
              const char *container_id)
{
    if (!container_id || !*container_id)
        return NULL;
    const s_table_t *t = s_table(self, node ? node : "");
    if (!t || !t->nrows)
        return NULL;
    s_row_t key = { container_id, { NULL, NULL, NULL } };
    const s_row_t *r = bsearch(&key, t->rows, t->nrows, sizeof(*t->rows),
                               s_row_cmp);
    return r ? &r->pod : NULL;
}
