/* A Kubernetes API client for the three resources discovery needs: the
 * pods of this node, Services and Endpoints. Each is listed, then watched
 * from the list's resourceVersion; a watch that ends resumes from the last
 * version seen, a 410 Gone relists. libcurl's multi interface does the
 * HTTPS without blocking: k8s_client_poll is called from the uplink's
 * loop. Objects are handed to the caller as parsed JSON (lib/json.h),
 * valid only during the callback. docs/kubernetes.md. */
#ifndef SKYPROF_UPLINK_K8S_WATCH_H
#define SKYPROF_UPLINK_K8S_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "json.h"
#include "k8s_meta.h"
#include "stats.h"

/* Largest list reply and largest watch event accepted. */
#define K8S_MAX_LIST_BYTES  (32u << 20)
#define K8S_MAX_EVENT_BYTES (4u << 20)

typedef struct {
    const char *api_server;   /* "https://host:port"; "" = in-cluster */
    const char *token_file;   /* "" = the service account's */
    const char *ca_file;      /* "" = the service account's */
    const char *node_name;    /* pods of this node only */
    uint32_t max_backoff_ms;  /* 0 = 30 s */
    uint32_t watch_timeout_s; /* server-side watch timeout; 0 = 240 s */
} k8s_client_options_t;

typedef enum {
    K8S_EV_LIST_BEGIN,        /* obj NULL: a full list of kind follows */
    K8S_EV_PUT,               /* list item, ADDED or MODIFIED */
    K8S_EV_DELETE,
    K8S_EV_LIST_END           /* obj NULL */
} k8s_event_t;

typedef void (*k8s_event_fn)(void *arg, k8s_kind_t kind, k8s_event_t ev,
                             const json_value_t *obj);

typedef struct k8s_client k8s_client_t;

/* The API server URL the options name (api_server, else
 * KUBERNETES_SERVICE_HOST/PORT) into out; -1 when there is none. */
int k8s_client_server(const char *api_server, char *out, size_t size);

/* NULL with a reason in err (no API server known, no memory). */
k8s_client_t *k8s_client_new(const k8s_client_options_t *opts,
                             k8s_event_fn fn, void *arg, stats_t *stats,
                             char *err, size_t errlen);
void k8s_client_destroy(k8s_client_t **self_p);

/* Starts due requests, moves bytes, hands over complete documents. Never
 * blocks. */
void k8s_client_poll(k8s_client_t *self, uint64_t now_ms);

/* True once every resource was listed at least once. */
bool k8s_client_synced(const k8s_client_t *self);

#endif
