/* Kubernetes process discovery: see k8s_disc.h and docs/kubernetes.md. */
#include "k8s_disc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define K8S_KEY "process_discovery.kubernetes"
#define K8S_ENV "ROVER_PROCESS_DISCOVERY_KUBERNETES_ANALYZER_"

struct k8s_disc {
    k8s_client_t *client;
    k8s_meta_t *meta;
    finder_set_t *analyzers;
    stats_metric_t *m_refused, *m_pods;
    log_ratelimit_t rl;
    uint64_t now;              /* the caller's clock, from k8s_disc_poll */
};

/* ------------------------------------------------------------- options */
/* The reference agent's default analyzers (its configs/rover_configs.yaml),
 * service names as issue 16 asks: `<service>.<namespace>`. Each field can
 * be overridden by ROVER_PROCESS_DISCOVERY_KUBERNETES_ANALYZER_<NAME>_<F>. */
typedef struct {
    const char *env;           /* ISTIO_ENVOY, ... */
    const char *filters[2];
    const char *layer, *service, *instance, *process, *labels;
} s_default_t;

#define S_SERVICE "{{.Pod.ServiceName}}.{{.Pod.Namespace}}"
#define S_MESH_SERVICE                                                       \
    "{{.Pod.LabelValue \"service.istio.io/canonical-name,"                   \
    "app.kubernetes.io/name,app\" \"\"}}.{{.Pod.Namespace}}"

static const s_default_t s_defaults[] = {
    { "ISTIO_ENVOY",
      { ".Pod.HasContainer \"istio-proxy\"",
        "eq .Container.Name \"istio-proxy\"" },
      "MESH_DP", S_MESH_SERVICE, "{{.Pod.Name}}", "{{.Process.ExeName}}",
      "mesh-envoy" },
    { "ISTIO_APPLICATION",
      { ".Pod.HasContainer \"istio-proxy\"",
        "ne .Container.Name \"istio-proxy\"" },
      "MESH", S_MESH_SERVICE, "{{.Pod.Name}}", "{{.Process.ExeName}}",
      "mesh-application" },
    { "K8S_SERVICE", { ".Pod.HasServiceName", NULL },
      "K8S_SERVICE", S_SERVICE, "{{.Pod.Name}}", "{{.Process.ExeName}}",
      "k8s-service" },
};

static const char *
s_env_or(const char *name, const char *field, const char *fallback)
{
    char var[160];
    snprintf(var, sizeof var, K8S_ENV "%s_%s", name, field);
    const char *v = getenv(var);
    return v ? v : fallback;
}

static int
s_add_defaults(finder_set_t *analyzers, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof s_defaults / sizeof s_defaults[0]; i++) {
        const s_default_t *d = &s_defaults[i];
        bool active = true;
        const char *a = s_env_or(d->env, "ACTIVE", "true");
        if (config_parse_bool(a, &active) != 0) {
            snprintf(err, errlen, "%s%s_ACTIVE = '%s': want true or false",
                     K8S_ENV, d->env, a);
            return -1;
        }
        if (!active)
            continue;
        finder_spec_t spec = {
            .layer = s_env_or(d->env, "LAYER", d->layer),
            .service_name = s_env_or(d->env, "SERVICE_NAME", d->service),
            .instance_name = s_env_or(d->env, "INSTANCE_NAME", d->instance),
            .process_name = s_env_or(d->env, "PROCESS_NAME", d->process),
            .labels = s_env_or(d->env, "LABELS", d->labels),
        };
        for (size_t f = 0; f < 2 && d->filters[f]; f++)
            spec.filters[spec.nfilters++] = d->filters[f];
        char why[256];
        if (finder_set_add(analyzers, &spec, why, sizeof why) != 0) {
            snprintf(err, errlen, "default Kubernetes analyzer %s: %s",
                     d->env, why);
            return -1;
        }
    }
    return 0;
}

static const char *
s_akey(char *buf, size_t size, size_t i, const char *field)
{
    snprintf(buf, size, K8S_KEY ".analyzers[%zu].%s", i, field);
    return buf;
}

static int
s_add_configured(finder_set_t *analyzers, const config_t *cfg, size_t n,
                 char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        char k[8][192];
        const char *active = config_raw(cfg, s_akey(k[0], sizeof k[0], i,
                                                    "active"));
        bool on = true;
        if (active && config_parse_bool(active, &on) != 0) {
            snprintf(err, errlen, "config key %s = '%s': want true or false",
                     k[0], active);
            return -1;
        }
        if (!on)
            continue;
        finder_spec_t spec = {
            .layer = config_raw(cfg, s_akey(k[1], sizeof k[1], i, "layer")),
            .service_name = config_raw(cfg, s_akey(k[2], sizeof k[2], i,
                                                   "service_name")),
            .instance_name = config_raw(cfg, s_akey(k[3], sizeof k[3], i,
                                                    "instance_name")),
            .process_name = config_raw(cfg, s_akey(k[4], sizeof k[4], i,
                                                   "process_name")),
            .labels = config_raw(cfg, s_akey(k[5], sizeof k[5], i,
                                             "labels")),
        };
        /* An analyzer names pods: its defaults are the K8S_SERVICE ones. */
        if (!spec.layer || !*spec.layer)
            spec.layer = "K8S_SERVICE";
        if (!spec.service_name || !*spec.service_name)
            spec.service_name = S_SERVICE;
        if (!spec.instance_name || !*spec.instance_name)
            spec.instance_name = "{{.Pod.Name}}";
        s_akey(k[6], sizeof k[6], i, "filters");
        size_t nf = config_list_len(cfg, k[6]);
        const char *single = config_raw(cfg, k[6]);
        char fkeys[FINDER_MAX_FILTERS][208];
        if (nf > FINDER_MAX_FILTERS) {
            snprintf(err, errlen, "config key %s: more than %d filters",
                     k[6], FINDER_MAX_FILTERS);
            return -1;
        }
        for (size_t f = 0; f < nf; f++) {
            snprintf(fkeys[f], sizeof fkeys[f], "%s[%zu]", k[6], f);
            const char *v = config_raw(cfg, fkeys[f]);
            if (v && *v)
                spec.filters[spec.nfilters++] = v;
        }
        if (!nf && single && *single)
            spec.filters[spec.nfilters++] = single;
        /* Every pod process passes an analyzer without filters. */
        if (!spec.nfilters)
            spec.filters[spec.nfilters++] = "\"true\"";
        /* properties_template: read so a bad one is an error, not sent
         * (the OAP reads no extra properties; docs/kubernetes.md). */
        const char *props = config_raw(cfg, s_akey(k[7], sizeof k[7], i,
                                                   "properties_template"));
        char why[256];
        if (finder_set_add(analyzers, &spec, why, sizeof why) != 0 ||
            (props && *props && !finder_template_ok(props, why,
                                                   sizeof why))) {
            snprintf(err, errlen, "config key %s.analyzers[%zu]: %s",
                     K8S_KEY, i, why);
            return -1;
        }
    }
    return 0;
}

int
k8s_disc_options_from_config(k8s_disc_options_t *o, finder_set_t *analyzers,
                             const config_t *cfg, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->active = config_bool(cfg, K8S_KEY ".active");
    o->namespaces = config_str(cfg, K8S_KEY ".namespaces");
    o->client.api_server = config_str(cfg, K8S_KEY ".api_server");
    o->client.token_file = config_str(cfg, K8S_KEY ".token_file");
    o->client.ca_file = config_str(cfg, K8S_KEY ".ca_file");
    o->client.node_name = config_str(cfg, K8S_KEY ".node_name");
    if (!*o->client.node_name)
        o->client.node_name = config_str(cfg, "node_name");
    size_t n = config_list_len(cfg, K8S_KEY ".analyzers");
    int rc = n ? s_add_configured(analyzers, cfg, n, err, errlen)
               : s_add_defaults(analyzers, err, errlen);
    if (rc != 0)
        return -1;
    if (o->active && !*o->client.node_name) {
        snprintf(err, errlen, "config key %s.node_name is empty (and so is "
                 "node_name): set it from spec.nodeName "
                 "(ROVER_PROCESS_DISCOVERY_KUBERNETES_NODE_NAME)", K8S_KEY);
        return -1;
    }
    return 0;
}

/* ----------------------------------------------------------- lifecycle */
static void
s_on_event(void *arg, k8s_kind_t kind, k8s_event_t ev,
           const json_value_t *obj)
{
    k8s_disc_t *self = arg;
    uint64_t now = self->now;
    switch (ev) {
    case K8S_EV_LIST_BEGIN:
        k8s_meta_list_begin(self->meta, kind);
        break;
    case K8S_EV_LIST_END:
        k8s_meta_list_end(self->meta, kind, now);
        break;
    case K8S_EV_PUT:
        if (k8s_meta_put(self->meta, kind, obj, now) < 0) {
            stats_inc(self->m_refused);
            log_warn_rl(&self->rl, "kubernetes: an object was refused "
                        "(malformed, or past %d pods / %d services)",
                        K8S_MAX_PODS, K8S_MAX_SERVICES);
        }
        break;
    case K8S_EV_DELETE:
        k8s_meta_delete(self->meta, kind, obj, now);
        break;
    }
}

k8s_disc_t *
k8s_disc_new(const k8s_disc_options_t *o, finder_set_t *analyzers,
             stats_t *stats, char *err, size_t errlen)
{
    k8s_disc_t *self = calloc(1, sizeof *self);
    if (!self) {
        finder_set_destroy(&analyzers);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->analyzers = analyzers;
    self->rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 60000);
    self->m_refused = stats_counter(stats, "k8s_objects_refused", NULL,
                                    "Kubernetes objects not kept: malformed "
                                    "or past the table limits");
    self->m_pods = stats_gauge(stats, "k8s_pods", NULL,
                               "pods of this node known");
    if (!(self->meta = k8s_meta_new(o->namespaces))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(self->client = k8s_client_new(&o->client, s_on_event, self, stats,
                                        err, errlen)))
        goto fail;
    log_info("kubernetes: discovery of node '%s', namespaces %s, %zu "
             "analyzer(s)", o->client.node_name,
             *o->namespaces ? o->namespaces : "(all)",
             finder_set_count(analyzers));
    return self;
fail:
    k8s_disc_destroy(&self);
    return NULL;
}

void
k8s_disc_destroy(k8s_disc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    k8s_disc_t *self = *self_p;
    k8s_client_destroy(&self->client);
    k8s_meta_destroy(&self->meta);
    finder_set_destroy(&self->analyzers);
    free(self);
    *self_p = NULL;
}

void
k8s_disc_poll(k8s_disc_t *self, uint64_t now_ms)
{
    self->now = now_ms;
    k8s_client_poll(self->client, now_ms);
    k8s_meta_expire(self->meta, now_ms);
    stats_set(self->m_pods, (double)k8s_meta_count(self->meta, K8S_POD));
}

uint64_t
k8s_disc_generation(const k8s_disc_t *self)
{
    return k8s_meta_generation(self->meta);
}

/* ------------------------------------------------------------ matching */
k8s_match_t
k8s_disc_match(k8s_disc_t *self, const char *container_id,
               const finder_proc_t *p, const finder_env_t *env,
               proc_entity_t *entity, k8s_identity_t *id)
{
    memset(id, 0, sizeof *id);
    if (!container_id || !*container_id)
        return K8S_HOST;
    snprintf(id->container_id, sizeof id->container_id, "%s", container_id);
    size_t c = 0;
    const k8s_pod_t *pod = k8s_meta_find(self->meta, id->container_id, &c);
    if (!pod)
        return K8S_UNKNOWN_POD;
    finder_pod_t fp = { pod, c, k8s_meta_service_of(self->meta, pod) };
    finder_proc_t with_pod = *p;
    with_pod.pod = &fp;
    if (finder_set_match(self->analyzers, &with_pod, env, entity) < 0)
        return K8S_NO_ANALYZER;
    snprintf(id->ns, sizeof id->ns, "%s", pod->ns);
    snprintf(id->pod, sizeof id->pod, "%s", pod->name);
    snprintf(id->container, sizeof id->container, "%s",
             pod->containers[c].name);
    snprintf(id->pod_ip, sizeof id->pod_ip, "%s", pod->ip);
    return K8S_MATCHED;
}

int
k8s_disc_containers(const k8s_disc_t *self, const char *node,
                    wire_k8s_containers_t *m)
{
    size_t total = 0, n = 0;
    const k8s_pod_t *p;
    memset(m, 0, sizeof *m);
    for (size_t i = 0; (p = k8s_meta_pod_at(self->meta, i)); i++)
        total += p->ncontainers;
    wire_k8s_container_t *rows = calloc(total ? total : 1, sizeof *rows);
    if (!rows)
        return -1;
    for (size_t i = 0; (p = k8s_meta_pod_at(self->meta, i)); i++) {
        const char *svc = k8s_meta_service_of(self->meta, p);
        for (size_t c = 0; c < p->ncontainers; c++) {
            if (!p->containers[c].id[0] || n == WIRE_MAX_K8S_CONTAINERS)
                continue;
            rows[n++] = (wire_k8s_container_t){
                p->containers[c].id, p->ns, p->name, p->containers[c].name,
                p->ip, svc };
        }
    }
    m->node = node;
    m->ncontainers = (uint32_t)n;
    m->containers = rows;
    return 0;
}

void
k8s_disc_containers_free(wire_k8s_containers_t *m)
{
    free((void *)m->containers);
    m->containers = NULL;
    m->ncontainers = 0;
}
