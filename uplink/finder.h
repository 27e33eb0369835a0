/* Process finders: which processes the uplink reports to the OAP and under
 * which entity (layer, service, instance, process name, labels).
 *
 * A finder matches the process command line with a POSIX extended regular
 * expression (the reference agent's `match_cmd_regex`, RE2 syntax, is the
 * same for the usual patterns) and renders the entity names from templates
 * with these placeholders (uplink/README.md):
 *
 *   {{.Process.ExeName}}      basename of the executable
 *   {{.Process.ExeFilePath}}  full path of the executable
 *   {{.Process.Pid}}          pid on the host
 *   {{.Process.CommandLine}}  arguments joined by spaces
 *   {{.Process.Comm}}         kernel task name
 *   {{.Rover.HostIPV4 "eth0"}} IPv4 of that interface (argument optional:
 *                             first non-loopback address); {{.Rover.HostIP}}
 *   {{.Rover.HostName}}       host name
 *   {{.Rover.InstanceID}}     the agent id (uplink.agent_id)
 *
 * The first finder that matches wins. */
#ifndef SKYPROF_UPLINK_FINDER_H
#define SKYPROF_UPLINK_FINDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s_meta.h"

typedef struct finder_set finder_set_t;

#define FINDER_MAX_FILTERS 16

typedef struct {
    const char *match_cmd_regex; /* NULL or "": filters only */
    const char *layer;          /* NULL or "": OS_LINUX */
    const char *service_name;   /* NULL or "": {{.Process.ExeName}} */
    const char *instance_name;  /* NULL or "": {{.Rover.HostIPV4}} */
    const char *process_name;   /* NULL or "": {{.Process.ExeName}} */
    const char *labels;         /* comma separated, NULL or "": none */
    /* Kubernetes analyzers: expressions that must all be true
     * (finder_eval); a finder with filters only matches pod processes. */
    const char *filters[FINDER_MAX_FILTERS];
    size_t nfilters;
} finder_spec_t;

/* What the templates can see of a process's pod (Kubernetes discovery,
 * docs/kubernetes.md): {{.Pod.Name}}, {{.Pod.Namespace}},
 * {{.Pod.ServiceName}}, {{.Pod.HasServiceName}}, {{.Pod.IP}},
 * {{.Pod.ContainerName}} (= {{.Container.Name}}),
 * {{.Pod.LabelValue "key1,key2" "default"}}, {{.Pod.HasContainer "name"}}. */
typedef struct {
    const k8s_pod_t *pod;
    size_t container;           /* index in pod->containers */
    const char *service;        /* "" when no Service selects the pod */
} finder_pod_t;

/* What the templates can see of a process. */
typedef struct {
    uint32_t pid;
    const char *exe;            /* path, "" when unknown */
    const char *cmdline;
    const char *comm;
    const finder_pod_t *pod;    /* NULL: a host process (.Pod.* is an
                                   error) */
} finder_proc_t;

/* What the templates can see of this agent. */
typedef struct {
    const char *agent_id;
    const char *host_name;
    const char *host_ip;        /* first non-loopback IPv4 */
} finder_env_t;

typedef struct {
    char *layer;
    char *service;
    char *instance;
    char *process;
    char **labels;
    size_t nlabels;
} proc_entity_t;

finder_set_t *finder_set_new(void);
void finder_set_destroy(finder_set_t **self_p);

/* Compiles the regex, checks every template and filter (against a sample
 * process, and a sample pod when there are filters); -1 with a reason
 * naming the filter (filters[i]) or template. */
int finder_set_add(finder_set_t *self, const finder_spec_t *spec, char *err,
                   size_t errlen);
size_t finder_set_count(const finder_set_t *self);

/* Index of the first finder matching p and the rendered entity (to clear
 * with proc_entity_clear), or -1 when none matches or memory ran out. */
int finder_set_match(const finder_set_t *self, const finder_proc_t *p,
                     const finder_env_t *env, proc_entity_t *entity);

void proc_entity_clear(proc_entity_t *entity);
/* 1 when both entities have the same layer, names and labels. */
int proc_entity_equal(const proc_entity_t *a, const proc_entity_t *b);

/* Renders one template; malloc'ed string or NULL with a reason in err. */
char *finder_render(const char *tmpl, const finder_proc_t *p,
                    const finder_env_t *env, char *err, size_t errlen);

/* Evaluates one expression without braces (an analyzer filter such as
 * `eq .Container.Name "istio-proxy"`, or `.Pod.HasServiceName`): `eq`,
 * `ne`, `not`, `and`, `or`, placeholders, quoted strings, parentheses.
 * 0 and *result (true unless the value is empty or "false"), or -1 with a
 * reason in err. */
int finder_eval(const char *expr, const finder_proc_t *p,
                const finder_env_t *env, bool *result, char *err,
                size_t errlen);

/* True when tmpl renders for a process in a pod; else false with a
 * reason in err. */
bool finder_template_ok(const char *tmpl, char *err, size_t errlen);

/* First non-loopback IPv4 of ifname (NULL: of any interface) into out;
 * "127.0.0.1" when there is none. */
void finder_host_ipv4(const char *ifname, char *out, size_t size);

#endif
