/* The node's pods and the cluster's Services and Endpoints: see
 * k8s_meta.h. Small arrays searched linearly: a node runs at most a few
 * hundred pods, and lookups happen per new process, not per sample. */
#include "k8s_meta.h"

#include <stdlib.h>
#include <string.h>

/* Longest name, label or address kept (Kubernetes' own limits are 253 for
 * names and 63 + 253 for label keys). */
#define K8S_MAX_TEXT 1024

typedef struct {
    char *ns, *name;
    size_t nkeys;
    char **keys, **values;     /* selector (services) */
    size_t npods;
    char **pods;               /* pod names of the subsets (endpoints) */
    uint64_t list_gen;
} k8s_svc_t;

struct k8s_meta {
    char **namespaces;
    size_t nnamespaces;
    k8s_pod_t *pods;
    size_t npods, cap_pods;
    k8s_svc_t *svcs[2];        /* K8S_SERVICE, K8S_ENDPOINTS */
    size_t nsvcs[2], cap_svcs[2];
    uint64_t list_gen[K8S_KINDS];
    uint64_t generation;
};

/* ------------------------------------------------------------- helpers */
static const char *
s_str(const json_value_t *v, const char *key)
{
    const json_value_t *m = json_get(v, key);
    return m && m->type == JSON_STRING ? m->str : NULL;
}

static char *
s_dup(const char *s)
{
    if (!s)
        s = "";
    size_t n = strnlen(s, K8S_MAX_TEXT);
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

static void
s_free_strs(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* Copies a JSON object of strings into parallel key/value arrays; -1 on a
 * cap, a non-string value or no memory. */
static int
s_string_map(const json_value_t *obj, size_t max, size_t *n, char ***keys,
             char ***values)
{
    *n = 0;
    *keys = *values = NULL;
    if (!obj || obj->type == JSON_NULL)
        return 0;
    if (obj->type != JSON_OBJECT || obj->n > max)
        return -1;
    if (obj->n == 0)
        return 0;
    *keys = calloc(obj->n, sizeof **keys);
    *values = calloc(obj->n, sizeof **values);
    if (!*keys || !*values)
        return -1;
    for (size_t i = 0; i < obj->n; i++) {
        if (obj->items[i]->type != JSON_STRING)
            return -1;
        (*keys)[i] = s_dup(obj->keys[i]);
        (*values)[i] = s_dup(obj->items[i]->str);
        *n = i + 1;
        if (!(*keys)[i] || !(*values)[i])
            return -1;
    }
    return 0;
}

/* Room for one more item in a growable array; -1 when out of memory. */
static int
s_reserve(void **items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t grown_cap = *cap ? *cap * 2 : 16;
    void *grown = realloc(*items, grown_cap * size);
    if (!grown)
        return -1;
    *items = grown;
    *cap = grown_cap;
    return 0;
}

static bool
s_namespace_watched(const k8s_meta_t *self, const char *ns)
{
    if (!self->nnamespaces)
        return true;
    for (size_t i = 0; i < self->nnamespaces; i++)
        if (!strcmp(self->namespaces[i], ns))
            return true;
    return false;
}

/* ----------------------------------------------------------- lifecycle */
k8s_meta_t *
k8s_meta_new(const char *namespaces)
{
    k8s_meta_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    const char *cur = namespaces ? namespaces : "";
    while (*cur) {
        size_t len = strcspn(cur, ",");
        const char *item = cur;
        cur += len + (cur[len] == ',');
        while (len && *item == ' ') {
            item++;
            len--;
        }
        while (len && item[len - 1] == ' ')
            len--;
        if (!len)
            continue;
        char **grown = realloc(self->namespaces,
                               (self->nnamespaces + 1) * sizeof *grown);
        if (!grown)
            goto fail;
        self->namespaces = grown;
        if (!(grown[self->nnamespaces] = strndup(item, len)))
            goto fail;
        self->nnamespaces++;
    }
    return self;
fail:
    k8s_meta_destroy(&self);
    return NULL;
}

static void
s_pod_clear(k8s_pod_t *p)
{
    free(p->uid);
    free(p->ns);
    free(p->name);
    free(p->ip);
    free(p->host_ip);
    s_free_strs(p->label_keys, p->nlabels);
    s_free_strs(p->label_values, p->nlabels);
    for (size_t i = 0; i < p->ncontainers; i++)
        free(p->containers[i].name);
    free(p->containers);
    memset(p, 0, sizeof *p);
}

static void
s_svc_clear(k8s_svc_t *s)
{
    free(s->ns);
    free(s->name);
    s_free_strs(s->keys, s->nkeys);
    s_free_strs(s->values, s->nkeys);
    s_free_strs(s->pods, s->npods);
    memset(s, 0, sizeof *s);
}

void
k8s_meta_destroy(k8s_meta_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    k8s_meta_t *self = *self_p;
    s_free_strs(self->namespaces, self->nnamespaces);
    for (size_t i = 0; i < self->npods; i++)
        s_pod_clear(&self->pods[i]);
    free(self->pods);
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < self->nsvcs[k]; i++)
            s_svc_clear(&self->svcs[k][i]);
        free(self->svcs[k]);
    }
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- pods */
static int
s_pod_containers(k8s_pod_t *p, const json_value_t *status)
{
    static const char *const lists[] = { "initContainerStatuses",
                                         "containerStatuses" };
    size_t total = 0;
    for (size_t l = 0; l < 2; l++) {
        const json_value_t *arr = json_get(status, lists[l]);
        if (arr && arr->type == JSON_ARRAY)
            total += arr->n;
    }
    if (total > K8S_MAX_POD_CONTAINERS)
        return -1;
    if (!total)
        return 0;
    if (!(p->containers = calloc(total, sizeof *p->containers)))
        return -1;
    for (size_t l = 0; l < 2; l++) {
        const json_value_t *arr = json_get(status, lists[l]);
        for (size_t i = 0; arr && arr->type == JSON_ARRAY && i < arr->n; i++) {
            const char *name = s_str(arr->items[i], "name");
            if (!name)
                return -1;
            k8s_container_t *c = &p->containers[p->ncontainers++];
            if (!(c->name = s_dup(name)))
                return -1;
            /* Not started yet: no containerID; an unknown form: no id. */
            cgroup_id_from_k8s(s_str(arr->items[i], "containerID"), c->id,
                               sizeof c->id);
        }
    }
    return 0;
}

/* Same identity for every lookup (names, IP, labels, containers): a
 * MODIFIED event that changed only the status conditions is not a change
 * worth a /proc rescan. */
static bool
s_pod_same(const k8s_pod_t *a, const k8s_pod_t *b)
{
    if (strcmp(a->ns, b->ns) || strcmp(a->name, b->name) ||
        strcmp(a->ip, b->ip) || a->deleted != b->deleted ||
        a->nlabels != b->nlabels || a->ncontainers != b->ncontainers)
        return false;
    for (size_t i = 0; i < a->nlabels; i++)
        if (strcmp(a->label_keys[i], b->label_keys[i]) ||
            strcmp(a->label_values[i], b->label_values[i]))
            return false;
    for (size_t i = 0; i < a->ncontainers; i++)
        if (strcmp(a->containers[i].name, b->containers[i].name) ||
            strcmp(a->containers[i].id, b->containers[i].id))
            return false;
    return true;
}

static k8s_pod_t *
s_pod_find(const k8s_meta_t *self, const char *uid)
{
    for (size_t i = 0; i < self->npods; i++)
        if (!strcmp(self->pods[i].uid, uid))
            return &self->pods[i];
    return NULL;
}

static int
s_pod_put(k8s_meta_t *self, const json_value_t *obj)
{
    const json_value_t *md = json_get(obj, "metadata");
    const json_value_t *status = json_get(obj, "status");
    const char *uid = s_str(md, "uid"), *ns = s_str(md, "namespace"),
               *name = s_str(md, "name");
    if (!uid || !ns || !name)
        return -1;
    if (!s_namespace_watched(self, ns))
        return 1;
    k8s_pod_t fresh = { 0 };
    int rc = -1;
    if (!(fresh.uid = s_dup(uid)) || !(fresh.ns = s_dup(ns)) ||
        !(fresh.name = s_dup(name)) ||
        !(fresh.ip = s_dup(s_str(status, "podIP"))) ||
        !(fresh.host_ip = s_dup(s_str(status, "hostIP"))) ||
        s_string_map(json_get(md, "labels"), K8S_MAX_POD_LABELS,
                     &fresh.nlabels, &fresh.label_keys,
                     &fresh.label_values) != 0 ||
        s_pod_containers(&fresh, status) != 0)
        goto cleanup;
    fresh.list_gen = self->list_gen[K8S_POD];
    k8s_pod_t *old = s_pod_find(self, uid);
    bool changed = true;
    if (old) {
        changed = !s_pod_same(old, &fresh);
        s_pod_clear(old);
        *old = fresh;
    } else {
        if (self->npods >= K8S_MAX_PODS ||
            s_reserve((void **)&self->pods, &self->cap_pods, self->npods,
                      sizeof *self->pods) != 0)
            goto cleanup;
        self->pods[self->npods++] = fresh;
    }
    memset(&fresh, 0, sizeof fresh);
    if (changed)
        self->generation++;
    rc = 0;
cleanup:
    s_pod_clear(&fresh);
    return rc;
}

static void
s_pod_remove_at(k8s_meta_t *self, size_t i)
{
    s_pod_clear(&self->pods[i]);
    self->pods[i] = self->pods[--self->npods];
    self->generation++;
}

/* ------------------------------------------------ services, endpoints */
static int
s_svc_fill(k8s_svc_t *s, k8s_kind_t kind, const json_value_t *obj)
{
    if (kind == K8S_SERVICE) {
        const json_value_t *sel = json_get(json_get(obj, "spec"),
                                           "selector");
        return s_string_map(sel, K8S_MAX_POD_LABELS, &s->nkeys, &s->keys,
                            &s->values);
    }
    const json_value_t *subsets = json_get(obj, "subsets");
    if (!subsets || subsets->type != JSON_ARRAY)
        return 0;
    for (size_t i = 0; i < subsets->n; i++) {
        static const char *const lists[] = { "addresses",
                                             "notReadyAddresses" };
        for (size_t l = 0; l < 2; l++) {
            const json_value_t *addrs = json_get(subsets->items[i], lists[l]);
            for (size_t a = 0; addrs && addrs->type == JSON_ARRAY &&
                               a < addrs->n; a++) {
                const json_value_t *ref = json_get(addrs->items[a],
                                                   "targetRef");
                const char *rkind = s_str(ref, "kind");
                const char *pod = s_str(ref, "name");
                if (!pod || !rkind || strcmp(rkind, "Pod"))
                    continue;
                if (s->npods >= K8S_MAX_EP_PODS)
                    return -1;
                char **grown = realloc(s->pods, (s->npods + 1) *
                                                    sizeof *grown);
                if (!grown)
                    return -1;
                s->pods = grown;
                if (!(s->pods[s->npods] = s_dup(pod)))
                    return -1;
                s->npods++;
            }
        }
    }
    return 0;
}

static int
s_svc_put(k8s_meta_t *self, k8s_kind_t kind, const json_value_t *obj)
{
    const json_value_t *md = json_get(obj, "metadata");
    const char *ns = s_str(md, "namespace"), *name = s_str(md, "name");
    if (!ns || !name)
        return -1;
    if (!s_namespace_watched(self, ns))
        return 1;
    int k = kind == K8S_SERVICE ? 0 : 1;
    k8s_svc_t fresh = { 0 };
    int rc = -1;
    if (!(fresh.ns = s_dup(ns)) || !(fresh.name = s_dup(name)) ||
        s_svc_fill(&fresh, kind, obj) != 0)
        goto cleanup;
    fresh.list_gen = self->list_gen[kind];
    k8s_svc_t *old = NULL;
    for (size_t i = 0; i < self->nsvcs[k] && !old; i++)
        if (!strcmp(self->svcs[k][i].ns, ns) &&
            !strcmp(self->svcs[k][i].name, name))
            old = &self->svcs[k][i];
    if (old) {
        s_svc_clear(old);
        *old = fresh;
    } else {
        if (self->nsvcs[k] >= K8S_MAX_SERVICES ||
            s_reserve((void **)&self->svcs[k], &self->cap_svcs[k],
                      self->nsvcs[k], sizeof *self->svcs[k]) != 0)
            goto cleanup;
        self->svcs[k][self->nsvcs[k]++] = fresh;
    }
    memset(&fresh, 0, sizeof fresh);
    self->generation++;
    rc = 0;
cleanup:
    s_svc_clear(&fresh);
    return rc;
}

static void
s_svc_remove_at(k8s_meta_t *self, int k, size_t i)
{
    s_svc_clear(&self->svcs[k][i]);
    self->svcs[k][i] = self->svcs[k][--self->nsvcs[k]];
    self->generation++;
}

/* ------------------------------------------------------------- updates */
int
k8s_meta_put(k8s_meta_t *self, k8s_kind_t kind, const json_value_t *obj,
             uint64_t now_ms)
{
    if (!obj || obj->type != JSON_OBJECT)
        return -1;
    return kind == K8S_POD ? s_pod_put(self, obj) : s_svc_put(self, kind, obj);
}

void
k8s_meta_delete(k8s_meta_t *self, k8s_kind_t kind, const json_value_t *obj,
                uint64_t now_ms)
{
    const json_value_t *md = json_get(obj, "metadata");
    if (kind == K8S_POD) {
        const char *uid = s_str(md, "uid");
        k8s_pod_t *p = uid ? s_pod_find(self, uid) : NULL;
        if (p && !p->deleted) {
            p->deleted = true;
            p->deleted_ms = now_ms;
            self->generation++;
        }
        return;
    }
    const char *ns = s_str(md, "namespace"), *name = s_str(md, "name");
    int k = kind == K8S_SERVICE ? 0 : 1;
    for (size_t i = 0; ns && name && i < self->nsvcs[k]; i++)
        if (!strcmp(self->svcs[k][i].ns, ns) &&
            !strcmp(self->svcs[k][i].name, name)) {
            s_svc_remove_at(self, k, i);
            return;
        }
}

void
k8s_meta_list_begin(k8s_meta_t *self, k8s_kind_t kind)
{
    self->list_gen[kind]++;
}

void
k8s_meta_list_end(k8s_meta_t *self, k8s_kind_t kind, uint64_t now_ms)
{
    uint64_t gen = self->list_gen[kind];
    if (kind == K8S_POD) {
        /* A pod missing from the relist was deleted while we were not
         * watching: the same as a DELETED event. */
        for (size_t i = 0; i < self->npods; i++)
            if (self->pods[i].list_gen != gen && !self->pods[i].deleted) {
                self->pods[i].deleted = true;
                self->pods[i].deleted_ms = now_ms;
                self->generation++;
            }
        return;
    }
    int k = kind == K8S_SERVICE ? 0 : 1;
    for (size_t i = 0; i < self->nsvcs[k];)
        if (self->svcs[k][i].list_gen != gen)
            s_svc_remove_at(self, k, i);
        else
            i++;
}

void
k8s_meta_expire(k8s_meta_t *self, uint64_t now_ms)
{
    for (size_t i = 0; i < self->npods;)
        if (self->pods[i].deleted &&
            now_ms - self->pods[i].deleted_ms >= K8S_DELETED_KEEP_MS)
            s_pod_remove_at(self, i);
        else
            i++;
}

/* ------------------------------------------------------------- lookups */
const k8s_pod_t *
k8s_meta_find(const k8s_meta_t *self, const char *id, size_t *container)
{
    if (!id || !*id)
        return NULL;
    /* A live pod wins over a deleted one that reused nothing but could
     * still list the id (a DELETED event followed by a recreate). */
    const k8s_pod_t *found = NULL;
    for (size_t i = 0; i < self->npods; i++) {
        const k8s_pod_t *p = &self->pods[i];
        for (size_t c = 0; c < p->ncontainers; c++)
            if (!strcmp(p->containers[c].id, id) &&
                (!found || found->deleted)) {
                found = p;
                if (container)
                    *container = c;
            }
    }
    return found;
}

const char *
k8s_pod_label(const k8s_pod_t *p, const char *key)
{
    for (size_t i = 0; i < p->nlabels; i++)
        if (!strcmp(p->label_keys[i], key))
            return p->label_values[i];
    return NULL;
}

static bool
s_selects(const k8s_svc_t *s, const k8s_pod_t *p)
{
    if (!s->nkeys)                /* no selector: selects nothing */
        return false;
    for (size_t i = 0; i < s->nkeys; i++) {
        const char *v = k8s_pod_label(p, s->keys[i]);
        if (!v || strcmp(v, s->values[i]))
            return false;
    }
    return true;
}

static bool
s_lists(const k8s_svc_t *e, const k8s_pod_t *p)
{
    for (size_t i = 0; i < e->npods; i++)
        if (!strcmp(e->pods[i], p->name))
            return true;
    return false;
}

const char *
k8s_meta_service_of(const k8s_meta_t *self, const k8s_pod_t *p)
{
    const char *best = NULL;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < self->nsvcs[k]; i++) {
            const k8s_svc_t *s = &self->svcs[k][i];
            if (strcmp(s->ns, p->ns) || (best && strcmp(s->name, best) >= 0))
                continue;
            if (k == 0 ? s_selects(s, p) : s_lists(s, p))
                best = s->name;
        }
    return best ? best : "";
}

uint64_t
k8s_meta_generation(const k8s_meta_t *self)
{
    return self->generation;
}

size_t
k8s_meta_count(const k8s_meta_t *self, k8s_kind_t kind)
{
    if (kind == K8S_POD)
        return self->npods;
    return self->nsvcs[kind == K8S_SERVICE ? 0 : 1];
}

const k8s_pod_t *
k8s_meta_pod_at(const k8s_meta_t *self, size_t i)
{
    return i < self->npods ? &self->pods[i] : NULL;
}
