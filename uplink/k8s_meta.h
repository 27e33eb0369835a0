/* What the Kubernetes API server told us about this node: its pods (with
 * their containers' ids), and the cluster's Services and Endpoints, which
 * give a pod its service name. Fed with the objects of list and watch
 * replies (already parsed JSON); looked up by container id.
 *
 * Bounded: at most K8S_MAX_PODS pods, K8S_MAX_SERVICES services and
 * K8S_MAX_SERVICES endpoints, labels and containers per pod capped; past
 * the caps objects are refused and counted by the caller (-1). */
#ifndef SKYPROF_UPLINK_K8S_META_H
#define SKYPROF_UPLINK_K8S_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup_id.h"
#include "json.h"

#define K8S_MAX_PODS          2048
#define K8S_MAX_SERVICES      8192
#define K8S_MAX_POD_LABELS    64
#define K8S_MAX_POD_CONTAINERS 32
#define K8S_MAX_EP_PODS       1024
/* How long a deleted pod's identity stays for processes still running. */
#define K8S_DELETED_KEEP_MS   120000

typedef enum { K8S_POD, K8S_SERVICE, K8S_ENDPOINTS, K8S_KINDS } k8s_kind_t;

typedef struct {
    char *name;
    char id[CGROUP_ID_LEN];     /* "" until the runtime started it */
} k8s_container_t;

typedef struct {
    char *uid, *ns, *name, *ip, *host_ip;
    size_t nlabels;
    char **label_keys, **label_values;
    size_t ncontainers;
    k8s_container_t *containers;
    bool deleted;               /* DELETED seen; kept K8S_DELETED_KEEP_MS */
    uint64_t deleted_ms;
    uint64_t list_gen;          /* last relist that saw it */
} k8s_pod_t;

typedef struct k8s_meta k8s_meta_t;

/* namespaces: comma separated, NULL or "" = every namespace. */
k8s_meta_t *k8s_meta_new(const char *namespaces);
void k8s_meta_destroy(k8s_meta_t **self_p);

/* ADDED / MODIFIED (or a list item): 0, 1 when the object is ignored (a
 * namespace not watched), -1 when malformed or a cap is reached. */
int k8s_meta_put(k8s_meta_t *self, k8s_kind_t kind, const json_value_t *obj,
                 uint64_t now_ms);
/* DELETED. Pods are only marked (see K8S_DELETED_KEEP_MS). */
void k8s_meta_delete(k8s_meta_t *self, k8s_kind_t kind,
                     const json_value_t *obj, uint64_t now_ms);
/* A full relist of kind starts / ended: objects of that kind the relist
 * did not name are deleted at the end. */
void k8s_meta_list_begin(k8s_meta_t *self, k8s_kind_t kind);
void k8s_meta_list_end(k8s_meta_t *self, k8s_kind_t kind, uint64_t now_ms);
/* Forgets pods deleted more than K8S_DELETED_KEEP_MS ago. */
void k8s_meta_expire(k8s_meta_t *self, uint64_t now_ms);

/* The pod running container id (64 hex, lower case) and the container's
 * index in it, or NULL. */
const k8s_pod_t *k8s_meta_find(const k8s_meta_t *self, const char *id,
                               size_t *container);
/* The pod's service: the first by name of the Services of its namespace
 * whose selector matches its labels or whose Endpoints name it; "" when
 * none. */
const char *k8s_meta_service_of(const k8s_meta_t *self, const k8s_pod_t *p);
/* A label's value or NULL. */
const char *k8s_pod_label(const k8s_pod_t *p, const char *key);

/* Bumped by every change that can alter a lookup. */
uint64_t k8s_meta_generation(const k8s_meta_t *self);
size_t k8s_meta_count(const k8s_meta_t *self, k8s_kind_t kind);
/* Pod i (0 .. count-1), for publishing the container table. */
const k8s_pod_t *k8s_meta_pod_at(const k8s_meta_t *self, size_t i);

#endif
