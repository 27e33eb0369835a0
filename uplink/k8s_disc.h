/* Kubernetes process discovery (docs/kubernetes.md): the API client, what
 * it learned (k8s_meta), and the analyzers that turn a process of a known
 * pod into an entity. The uplink asks it about each process it scans and
 * publishes its container table on "k8s.containers". */
#ifndef SKYPROF_UPLINK_K8S_DISC_H
#define SKYPROF_UPLINK_K8S_DISC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "finder.h"
#include "k8s_watch.h"
#include "stats.h"
#include "wire.h"

typedef struct k8s_disc k8s_disc_t;

typedef struct {
    bool active;
    k8s_client_options_t client;
    const char *namespaces;     /* comma separated, "" = all */
} k8s_disc_options_t;

/* Reads process_discovery.kubernetes.* (strings point into cfg) and the
 * analyzers (process_discovery.kubernetes.analyzers[i], else the reference
 * agent's defaults, with its ROVER_PROCESS_DISCOVERY_KUBERNETES_ANALYZER_*
 * environment overrides) into analyzers. -1 with a reason naming the key. */
int k8s_disc_options_from_config(k8s_disc_options_t *o,
                                 finder_set_t *analyzers,
                                 const config_t *cfg, char *err,
                                 size_t errlen);

/* Takes ownership of analyzers. NULL with a reason in err. */
k8s_disc_t *k8s_disc_new(const k8s_disc_options_t *o,
                         finder_set_t *analyzers, stats_t *stats, char *err,
                         size_t errlen);
void k8s_disc_destroy(k8s_disc_t **self_p);

/* Moves API bytes; forgets long-deleted pods. Never blocks. */
void k8s_disc_poll(k8s_disc_t *self, uint64_t now_ms);
/* Bumped when what the API said changed (a reason to rescan). */
uint64_t k8s_disc_generation(const k8s_disc_t *self);

/* Where a process runs, as the pod table knows it. */
typedef struct {
    char container_id[CGROUP_ID_LEN];
    char ns[256], pod[256], container[256], pod_ip[64];
} k8s_identity_t;

typedef enum {
    K8S_HOST,                  /* not in a container: host finders decide */
    K8S_UNKNOWN_POD,           /* in a container no known pod runs */
    K8S_NO_ANALYZER,           /* in a pod, but no analyzer matched */
    K8S_MATCHED                /* entity and identity filled */
} k8s_match_t;

/* Finds the pod running container_id (from proc.events: the collector
 * read /proc/PID/cgroup; "" = a host process) and, in a known pod, runs
 * the analyzers; on K8S_MATCHED the entity is to be cleared with
 * proc_entity_clear. */
k8s_match_t k8s_disc_match(k8s_disc_t *self, const char *container_id,
                           const finder_proc_t *p, const finder_env_t *env,
                           proc_entity_t *entity, k8s_identity_t *id);

/* The container table for "k8s.containers" (full state, at most
 * WIRE_MAX_K8S_CONTAINERS rows), pointing into the pod table: send it
 * before the discovery changes, then free it. -1 when out of memory. */
int k8s_disc_containers(const k8s_disc_t *self, const char *node,
                        wire_k8s_containers_t *m);
void k8s_disc_containers_free(wire_k8s_containers_t *m);

#endif
