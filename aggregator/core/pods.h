/* The pod identity of containers, per node, from "k8s.containers" (the
 * uplink's Kubernetes discovery, docs/kubernetes.md): each message
 * replaces the table of its node. Looked up by (node, container id) when
 * a batch names a process's container, so windows keep the namespace,
 * pod and container a process ran in even after the pod is gone. Loop
 * thread only. Bounded: AGG_PODS_MAX_NODES tables of at most
 * WIRE_MAX_K8S_CONTAINERS rows. */
#ifndef SKYPROF_AGG_PODS_H
#define SKYPROF_AGG_PODS_H

#include <stddef.h>

#include "wire.h"

#define AGG_PODS_MAX_NODES 256

typedef struct {
    const char *ns, *pod, *container;
} agg_pod_t;

typedef struct agg_pods agg_pods_t;

agg_pods_t *agg_pods_new(void);
void agg_pods_destroy(agg_pods_t **self_p);

/* Replaces the node's table; -1 when out of memory or past
 * AGG_PODS_MAX_NODES (the old table stays). */
int agg_pods_update(agg_pods_t *self, const wire_k8s_containers_t *m);

/* The pod of container_id on node, or NULL. */
const agg_pod_t *agg_pods_find(const agg_pods_t *self, const char *node,
                               const char *container_id);

#endif
