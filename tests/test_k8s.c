/* Kubernetes process discovery (docs/kubernetes.md): container ids from
 * real cgroup-file layouts, the pod table, templates and filters, and the
 * uplink against a Kubernetes API double of our own
 * (tests/fake_k8s/fake_k8s.py: HTTPS with a CA made here by openssl, a
 * bearer token, list + watch, 410, dropped watches) and the fake OAP:
 * processes put into container cgroups are matched to the double's pods
 * by container id, and their k8sProcess reports are decoded. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "Command.pb-c.h"
#include "Common.pb-c.h"
#include "Process.pb-c.h"
#include "Profiling.pb-c.h"
#include "arena.h"
#include "cgroup_id.h"
#include "procfacts.h"
#include "procfeed.h"
#include "config.h"
#include "harness.h"
#include "json.h"
#include "log.h"
#include "stats.h"
#include "testutil.h"
#include "uplink/finder.h"
#include "uplink/k8s_disc.h"
#include "uplink/k8s_meta.h"
#include "uplink/uplink.h"
#include "wire.h"

#define PYTHON "/usr/bin/python3"
#define NODE "node-a"
#define TOKEN "k8s-test-token"

static const char *ID1 =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char *ID2 =
    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

/* ================================================= cgroup file layouts */
typedef struct {
    const char *what;
    const char *text;          /* %s = the id */
    bool is_container;
} s_layout_t;

/* Real /proc/PID/cgroup contents of each runtime and hierarchy (ids
 * replaced by %s). */
static const s_layout_t s_layouts[] = {
    { "containerd, cgroup v1 cgroupfs driver (kubelet)",
      "12:pids:/kubepods/besteffort/pod3f2a9c1e-5d6b-4a7e-9b1c-2d3e4f5a6b7c/%s\n"
      "11:memory:/kubepods/besteffort/pod3f2a9c1e-5d6b-4a7e-9b1c-2d3e4f5a6b7c/%s\n"
      "1:name=systemd:/kubepods/besteffort/pod3f2a9c1e-5d6b-4a7e-9b1c-2d3e4f5a6b7c/%s\n",
      true },
    { "containerd, cgroup v2 systemd driver",
      "0::/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod3f2a9c1e_5d6b_4a7e_9b1c_2d3e4f5a6b7c.slice/"
      "cri-containerd-%s.scope\n", true },
    { "CRI-O, cgroup v2",
      "0::/kubepods.slice/kubepods-besteffort.slice/"
      "kubepods-besteffort-pod3f2a9c1e_5d6b_4a7e_9b1c_2d3e4f5a6b7c.slice/"
      "crio-%s.scope\n", true },
    { "CRI-O's conmon, cgroup v2 (not the container)",
      "0::/kubepods.slice/kubepods-besteffort.slice/"
      "kubepods-besteffort-pod3f2a9c1e_5d6b_4a7e_9b1c_2d3e4f5a6b7c.slice/"
      "crio-conmon-%s.scope\n", false },
    { "Docker, cgroup v1",
      "12:memory:/docker/%s\n11:cpu,cpuacct:/docker/%s\n"
      "1:name=systemd:/docker/%s\n", true },
    { "Docker, cgroup v2 systemd",
      "0::/system.slice/docker-%s.scope\n", true },
    { "podman, cgroup v2 (systemd in the container: nested)",
      "0::/machine.slice/libpod-%s.scope/container\n", true },
    { "podman's conmon, cgroup v2 (not the container)",
      "0::/machine.slice/libpod-conmon-%s.scope\n", false },
    { "podman --cgroup-manager cgroupfs, hybrid (this machine's kind)",
      "9:name=systemd:/libpod_parent/libpod-%s\n8:pids:/libpod_parent/libpod-%s\n"
      "4:memory:/libpod_parent/libpod-%s\n0::/\n", true },
    { "hybrid, only the unified line names it",
      "9:name=systemd:/\n8:pids:/\n0::/system.slice/docker-%s.scope\n",
      true },
};

START_TEST(test_cgroup_layouts)
{
    char text[2048], id[CGROUP_ID_LEN];
    for (size_t i = 0; i < sizeof s_layouts / sizeof s_layouts[0]; i++) {
        snprintf(text, sizeof text, s_layouts[i].text, ID1, ID1, ID1);
        cgroup_container_id(text, id, sizeof id);
        ck_assert_msg(!strcmp(id, s_layouts[i].is_container ? ID1 : ""),
                      "%s: got '%s'", s_layouts[i].what, id);
    }
    /* Host processes, systemd sessions, and ids of the wrong length. */
    cgroup_container_id("0::/user.slice/user-0.slice/session-3.scope\n", id,
                        sizeof id);
    ck_assert_str_eq(id, "");
    cgroup_container_id("4:memory:/process_api/7e390cda132b29da78fefd5e54a31cc7\n",
                        id, sizeof id);
    ck_assert_str_eq(id, "");
    snprintf(text, sizeof text, "0::/docker/%sa\n", ID1);
    cgroup_container_id(text, id, sizeof id);
    ck_assert_str_eq(id, "");
    /* Upper-case hex is lower-cased (the API spells ids in lower case). */
    cgroup_container_id("0::/docker/0123456789ABCDEF0123456789ABCDEF"
                        "0123456789ABCDEF0123456789ABCDEF\n", id, sizeof id);
    ck_assert_str_eq(id, ID1);
    /* This process: readable, on the host or in whatever we run in. */
    ck_assert_int_eq(procfacts_container_id("/proc", (uint32_t)getpid(), id,
                                            sizeof id), 0);
    ck_assert_int_eq(procfacts_container_id("/proc", 0x7ffffff0u, id,
                                            sizeof id), -1);

    /* Whatever the runtime prefix of status.containerStatuses[].containerID. */
    const char *prefixes[] = { "containerd://", "cri-o://", "docker://",
                               "" };
    for (size_t i = 0; i < 4; i++) {
        snprintf(text, sizeof text, "%s%s", prefixes[i], ID2);
        ck_assert_int_eq(cgroup_id_from_k8s(text, id, sizeof id), 0);
        ck_assert_str_eq(id, ID2);
    }
    ck_assert_int_eq(cgroup_id_from_k8s("containerd://abc", id, sizeof id), -1);
    ck_assert_str_eq(id, "");
    ck_assert_int_eq(cgroup_id_from_k8s(NULL, id, sizeof id), -1);
}
END_TEST

/* ====================================================== JSON fixtures */
static char *
s_pod_json(const char *ns, const char *name, const char *node,
           const char *labels, const char *containers, const char *init)
{
    char *out = NULL;
    ck_assert_int_ge(asprintf(&out,
        "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"uid\":\"uid-%s-%s\","
        "\"labels\":{%s}},\"spec\":{\"nodeName\":\"%s\"},"
        "\"status\":{\"podIP\":\"10.1.0.7\",\"hostIP\":\"192.168.0.2\","
        "\"containerStatuses\":[%s],\"initContainerStatuses\":[%s]}}",
        ns, name, ns, name, labels, node, containers, init ? init : ""), 0);
    return out;
}

static char *
s_container_json(const char *name, const char *prefix, const char *id)
{
    char *out = NULL;
    if (id)
        ck_assert_int_ge(asprintf(&out, "{\"name\":\"%s\",\"containerID\":"
                                  "\"%s%s\"}", name, prefix, id), 0);
    else
        ck_assert_int_ge(asprintf(&out, "{\"name\":\"%s\"}", name), 0);
    return out;
}

static json_value_t *
s_parse(arena_t *a, const char *text)
{
    char err[128];
    json_value_t *v = json_parse(text, strlen(text), a, err, sizeof err);
    ck_assert_msg(v != NULL, "%s: %s", err, text);
    return v;
}

START_TEST(test_pod_table)
{
    arena_t *a = arena_new(1 << 20);
    k8s_meta_t *m = k8s_meta_new(" shop , prod ");
    ck_assert_ptr_nonnull(m);
    char *c1 = s_container_json("app", "containerd://", ID1);
    char *c2 = s_container_json("istio-init", "containerd://", ID2);
    char *pod = s_pod_json("shop", "web-1", NODE, "\"app\":\"web\"", c1, c2);
    ck_assert_int_eq(k8s_meta_put(m, K8S_POD, s_parse(a, pod), 10), 0);
    /* Init containers are matched too. */
    size_t c = 99;
    const k8s_pod_t *p = k8s_meta_find(m, ID2, &c);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->containers[c].name, "istio-init");
    p = k8s_meta_find(m, ID1, &c);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->name, "web-1");
    ck_assert_str_eq(p->ip, "10.1.0.7");
    ck_assert_str_eq(p->containers[c].name, "app");
    /* No Service yet; one by selector, one selector-less by Endpoints:
     * the first by name wins. */
    ck_assert_str_eq(k8s_meta_service_of(m, p), "");
    ck_assert_int_eq(k8s_meta_put(m, K8S_SERVICE, s_parse(a,
        "{\"metadata\":{\"namespace\":\"shop\",\"name\":\"web\"},"
        "\"spec\":{\"selector\":{\"app\":\"web\"}}}"), 10), 0);
    ck_assert_int_eq(k8s_meta_put(m, K8S_SERVICE, s_parse(a,
        "{\"metadata\":{\"namespace\":\"shop\",\"name\":\"zz-other\"},"
        "\"spec\":{\"selector\":{\"app\":\"db\"}}}"), 10), 0);
    ck_assert_str_eq(k8s_meta_service_of(m, p), "web");
    ck_assert_int_eq(k8s_meta_put(m, K8S_ENDPOINTS, s_parse(a,
        "{\"metadata\":{\"namespace\":\"shop\",\"name\":\"a-manual\"},"
        "\"subsets\":[{\"addresses\":[{\"ip\":\"10.1.0.7\",\"targetRef\":"
        "{\"kind\":\"Pod\",\"name\":\"web-1\"}}]}]}"), 10), 0);
    ck_assert_str_eq(k8s_meta_service_of(m, p), "a-manual");
    k8s_meta_delete(m, K8S_ENDPOINTS, s_parse(a,
        "{\"metadata\":{\"namespace\":\"shop\",\"name\":\"a-manual\"}}"), 11);
    ck_assert_str_eq(k8s_meta_service_of(m, p), "web");

    /* Namespaces filter: other namespaces are ignored (1). */
    char *c3 = s_container_json("app", "cri-o://", ID2);
    char *other = s_pod_json("kube-system", "dns", NODE, "", c3, NULL);
    ck_assert_int_eq(k8s_meta_put(m, K8S_POD, s_parse(a, other), 10), 1);
    ck_assert_uint_eq(k8s_meta_count(m, K8S_POD), 1);

    /* The same pod again (a status-only MODIFIED): nothing to rescan. */
    uint64_t gen = k8s_meta_generation(m);
    ck_assert_int_eq(k8s_meta_put(m, K8S_POD, s_parse(a, pod), 11), 0);
    ck_assert_uint_eq(k8s_meta_generation(m), gen);
    /* A restart: the new container id replaces the old one. */
    char *c4 = s_container_json("app", "docker://", ID2);
    char *restarted = s_pod_json("shop", "web-1", NODE, "\"app\":\"web\"",
                                 c4, NULL);
    ck_assert_int_eq(k8s_meta_put(m, K8S_POD, s_parse(a, restarted), 12), 0);
    ck_assert_uint_gt(k8s_meta_generation(m), gen);
    ck_assert_ptr_null(k8s_meta_find(m, ID1, NULL));
    ck_assert_ptr_nonnull(k8s_meta_find(m, ID2, NULL));

    /* Deleted while its process lives: kept for K8S_DELETED_KEEP_MS. */
    k8s_meta_delete(m, K8S_POD, s_parse(a, restarted), 1000);
    p = k8s_meta_find(m, ID2, NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert(p->deleted);
    k8s_meta_expire(m, 1000 + K8S_DELETED_KEEP_MS - 1);
    ck_assert_ptr_nonnull(k8s_meta_find(m, ID2, NULL));
    k8s_meta_expire(m, 1000 + K8S_DELETED_KEEP_MS);
    ck_assert_ptr_null(k8s_meta_find(m, ID2, NULL));

    /* A relist that no longer names an object deletes it. */
    k8s_meta_list_begin(m, K8S_SERVICE);
    k8s_meta_list_end(m, K8S_SERVICE, 2000);
    ck_assert_uint_eq(k8s_meta_count(m, K8S_SERVICE), 0);

    /* Malformed objects are refused, not half-kept. */
    ck_assert_int_eq(k8s_meta_put(m, K8S_POD, s_parse(a, "{\"metadata\":{}}"),
                                  1), -1);
    ck_assert_int_eq(k8s_meta_put(m, K8S_POD, s_parse(a, "[1]"), 1), -1);
    ck_assert_int_eq(k8s_meta_put(m, K8S_POD, s_parse(a,
        "{\"metadata\":{\"namespace\":\"shop\",\"name\":\"x\",\"uid\":\"u\","
        "\"labels\":{\"a\":1}}}"), 1), -1);
    ck_assert_uint_eq(k8s_meta_count(m, K8S_POD), 0);

    free(c1); free(c2); free(c3); free(c4);
    free(pod); free(other); free(restarted);
    k8s_meta_destroy(&m);
    ck_assert_ptr_null(m);
    arena_destroy(&a);
}
END_TEST

/* ================================================ templates and filters */
/* The reference agent's K8S_SERVICE analyzer, as issue 16 names it. */
static const finder_spec_t s_k8s_service = {
    .layer = "K8S_SERVICE",
    .service_name = "{{.Pod.ServiceName}}.{{.Pod.Namespace}}",
    .instance_name = "{{.Pod.Name}}",
    .process_name = "{{.Process.ExeName}}",
    .filters = { ".Pod.HasServiceName" },
    .nfilters = 1,
};

START_TEST(test_templates_and_filters)
{
    char *keys[] = { "app.kubernetes.io/name", "version" };
    char *values[] = { "checkout", "v2" };
    k8s_container_t conts[] = { { "app", "" }, { "istio-proxy", "" } };
    k8s_pod_t pod = { .uid = "u", .ns = "shop", .name = "checkout-7d9f",
                      .ip = "10.1.0.9", .host_ip = "192.168.0.2",
                      .nlabels = 2, .label_keys = keys,
                      .label_values = values, .ncontainers = 2,
                      .containers = conts };
    finder_pod_t fp = { &pod, 0, "checkout" };
    finder_proc_t p = { 42, "/usr/local/bin/server", "server --port 80",
                        "server", &fp };
    finder_env_t env = { "agent-1", "host-1", "192.168.0.2" };
    char err[256];
    struct { const char *tmpl, *want; } cases[] = {
        { "{{.Pod.ServiceName}}.{{.Pod.Namespace}}", "checkout.shop" },
        { "{{.Pod.Name}}", "checkout-7d9f" },
        { "{{.Process.ExeName}}", "server" },
        { "{{.Pod.ContainerName}}/{{.Container.Name}}", "app/app" },
        { "{{.Pod.LabelValue \"service.istio.io/canonical-name,"
          "app.kubernetes.io/name,app\" \"none\"}}", "checkout" },
        { "{{.Pod.LabelValue \"missing\" \"none\"}}", "none" },
        { "{{.Pod.LabelValue \"missing\"}}", "" },
        { "{{.Pod.HasContainer \"istio-proxy\"}}", "true" },
        { "{{.Pod.HasContainer \"nope\"}}", "false" },
        { "{{.Pod.IP}}-{{.Rover.HostName}}-{{.Rover.InstanceID}}",
          "10.1.0.9-host-1-agent-1" },
        { "{{ eq .Pod.Namespace \"shop\" }}", "true" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *r = finder_render(cases[i].tmpl, &p, &env, err, sizeof err);
        ck_assert_msg(r != NULL, "%s: %s", cases[i].tmpl, err);
        ck_assert_msg(!strcmp(r, cases[i].want), "%s: got '%s'",
                      cases[i].tmpl, r);
        free(r);
    }
    struct { const char *expr; bool want; } filters[] = {
        { ".Pod.HasContainer \"istio-proxy\"", true },
        { "eq .Container.Name \"istio-proxy\"", false },
        { "ne .Container.Name \"istio-proxy\"", true },
        { "not .Pod.HasServiceName", false },
        { "and .Pod.HasServiceName (eq .Pod.Namespace \"shop\")", true },
        { "or (eq .Pod.Namespace \"x\") (eq (.Pod.LabelValue \"version\") "
          "\"v2\")", true },
        { ".Pod.LabelValue \"missing\"", false },
    };
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        bool got = !filters[i].want;
        ck_assert_msg(finder_eval(filters[i].expr, &p, &env, &got, err,
                                  sizeof err) == 0, "%s: %s",
                      filters[i].expr, err);
        ck_assert_msg(got == filters[i].want, "%s", filters[i].expr);
    }
    /* Bad expressions name what is wrong. */
    bool ignored;
    ck_assert_int_eq(finder_eval("eq .Pod.Nme \"x\"", &p, &env, &ignored,
                                 err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, ".Pod.Nme"));
    ck_assert_int_eq(finder_eval("contains .Pod.Name \"x\"", &p, &env,
                                 &ignored, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "contains"));
    ck_assert_int_eq(finder_eval("eq .Pod.Name", &p, &env, &ignored, err,
                                 sizeof err), -1);
    ck_assert_int_eq(finder_eval("(eq .Pod.Name \"x\"", &p, &env, &ignored,
                                 err, sizeof err), -1);
    ck_assert_int_eq(finder_eval("\"unterminated", &p, &env, &ignored, err,
                                 sizeof err), -1);
    /* A host process has no pod: .Pod.* is an error there. */
    finder_proc_t host = { 42, "/bin/x", "x", "x", NULL };
    ck_assert_ptr_null(finder_render("{{.Pod.Name}}", &host, &env, err,
                                     sizeof err));

    /* Analyzer sets: first match wins, filters gate, host processes never
     * match an analyzer. */
    finder_set_t *set = finder_set_new();
    finder_spec_t envoy = { .layer = "MESH_DP",
                            .service_name = "{{.Pod.ServiceName}}",
                            .instance_name = "{{.Pod.Name}}",
                            .process_name = "{{.Process.ExeName}}",
                            .filters = { "eq .Container.Name \"istio-proxy\"" },
                            .nfilters = 1 };
    finder_spec_t svc = s_k8s_service;
    ck_assert_int_eq(finder_set_add(set, &envoy, err, sizeof err), 0);
    ck_assert_int_eq(finder_set_add(set, &svc, err, sizeof err), 0);
    proc_entity_t en;
    ck_assert_int_eq(finder_set_match(set, &p, &env, &en), 1);
    ck_assert_str_eq(en.layer, "K8S_SERVICE");
    ck_assert_str_eq(en.service, "checkout.shop");
    proc_entity_clear(&en);
    fp.container = 1;
    ck_assert_int_eq(finder_set_match(set, &p, &env, &en), 0);
    ck_assert_str_eq(en.layer, "MESH_DP");
    proc_entity_clear(&en);
    ck_assert_int_eq(finder_set_match(set, &host, &env, &en), -1);
    finder_spec_t bad = svc;
    bad.filters[0] = "eq .Pod.Namespac \"x\"";
    ck_assert_int_eq(finder_set_add(set, &bad, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "filters[0]"));
    finder_set_destroy(&set);
}
END_TEST

/* ======================================================== configuration */
static config_t *
s_config(const char *yaml, char *err, size_t errlen)
{
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(yaml, f);
    fclose(f);
    config_t *cfg = config_load(path, err, errlen);
    tu_rmtree(dir);
    free(dir);
    return cfg;
}

START_TEST(test_config_keys)
{
    char err[512];
    k8s_disc_options_t o;
    /* The reference agent's environment names. */
    setenv("ROVER_PROCESS_DISCOVERY_KUBERNETES_ACTIVE", "true", 1);
    setenv("ROVER_PROCESS_DISCOVERY_KUBERNETES_NODE_NAME", "node-x", 1);
    setenv("ROVER_PROCESS_DISCOVERY_KUBERNETES_NAMESPACES", "a,b", 1);
    setenv("ROVER_PROCESS_DISCOVERY_KUBERNETES_ANALYZER_ISTIO_ENVOY_ACTIVE",
           "false", 1);
    config_t *cfg = s_config(
        "process_discovery:\n"
        "  kubernetes:\n"
        "    api_server: https://10.0.0.1:6443\n"
        "    token_file: /tmp/token\n"
        "    ca_file: /tmp/ca.crt\n", err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    finder_set_t *set = finder_set_new();
    ck_assert_int_eq(k8s_disc_options_from_config(&o, set, cfg, err,
                                                  sizeof err), 0);
    ck_assert(o.active);
    ck_assert_str_eq(o.client.node_name, "node-x");
    ck_assert_str_eq(o.namespaces, "a,b");
    ck_assert_str_eq(o.client.api_server, "https://10.0.0.1:6443");
    ck_assert_str_eq(o.client.token_file, "/tmp/token");
    ck_assert_str_eq(o.client.ca_file, "/tmp/ca.crt");
    /* Defaults minus the envoy analyzer switched off by its env name. */
    ck_assert_uint_eq(finder_set_count(set), 2);
    finder_set_destroy(&set);
    config_destroy(&cfg);
    unsetenv("ROVER_PROCESS_DISCOVERY_KUBERNETES_ACTIVE");
    unsetenv("ROVER_PROCESS_DISCOVERY_KUBERNETES_NODE_NAME");
    unsetenv("ROVER_PROCESS_DISCOVERY_KUBERNETES_NAMESPACES");
    unsetenv("ROVER_PROCESS_DISCOVERY_KUBERNETES_ANALYZER_ISTIO_ENVOY_ACTIVE");

    /* Configured analyzers; a bad filter or template names its key. */
    const char *good =
        "process_discovery:\n"
        "  kubernetes:\n"
        "    analyzers:\n"
        "      - active: false\n"
        "        filters: [\"bogus\"]\n"
        "      - filters:\n"
        "          - .Pod.HasServiceName\n"
        "          - ne .Pod.Namespace \"kube-system\"\n"
        "        layer: K8S_SERVICE\n"
        "        service_name: \"{{.Pod.ServiceName}}.{{.Pod.Namespace}}\"\n"
        "        properties_template: \"{{.Pod.Name}}\"\n";
    cfg = s_config(good, err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    set = finder_set_new();
    ck_assert_msg(k8s_disc_options_from_config(&o, set, cfg, err,
                                               sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(finder_set_count(set), 1);
    ck_assert(!o.active);
    finder_set_destroy(&set);
    config_destroy(&cfg);

    const char *bad[] = {
        "process_discovery:\n  kubernetes:\n    analyzers:\n"
        "      - filters: [\"eq .Pod.Nam \\\"x\\\"\"]\n",
        "process_discovery:\n  kubernetes:\n    analyzers:\n"
        "      - service_name: \"{{.Pod.Nonsense}}\"\n",
        "process_discovery:\n  kubernetes:\n    analyzers:\n"
        "      - layer: \"not a layer\"\n",
        "process_discovery:\n  kubernetes:\n    analyzers:\n"
        "      - properties_template: \"{{.Pod.Name\"\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg = s_config(bad[i], err, sizeof err);
        ck_assert_msg(cfg != NULL, "%s", err);
        set = finder_set_new();
        ck_assert_int_eq(k8s_disc_options_from_config(&o, set, cfg, err,
                                                      sizeof err), -1);
        ck_assert_msg(strstr(err, "process_discovery.kubernetes."
                                  "analyzers[0]") != NULL, "%s", err);
        finder_set_destroy(&set);
        config_destroy(&cfg);
    }
    /* Active without a node name is a start-up error. */
    cfg = s_config("node_name: \"\"\nprocess_discovery:\n  kubernetes:\n"
                   "    active: true\n", err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    set = finder_set_new();
    ck_assert_int_eq(k8s_disc_options_from_config(&o, set, cfg, err,
                                                  sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "node_name"));
    finder_set_destroy(&set);
    config_destroy(&cfg);

    /* No API server at all: a clear error. */
    unsetenv("KUBERNETES_SERVICE_HOST");
    k8s_disc_options_t none = { .active = true, .namespaces = "",
                                .client = { .node_name = NODE } };
    stats_t *st = stats_new("uplink", "test");
    ck_assert_ptr_null(k8s_disc_new(&none, finder_set_new(), st, err,
                                    sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "process_discovery.kubernetes."
                                      "api_server"));
    stats_destroy(&st);
}
END_TEST

/* ============================================ against the API double */
typedef struct {
    char *dir;
    pid_t pid;
    int port;
} server_t;

static int
s_file_exists(void *arg)
{
    struct stat st;
    return stat((const char *)arg, &st) == 0;
}

/* Starts a fake (argv[1] is its script) that writes DIR/port and
 * DIR/ready. */
static int
s_server_start(server_t *s, char *const argv[])
{
    char ready[600], path[600], log[600];
    snprintf(ready, sizeof ready, "%s/ready", s->dir);
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    unlink(ready);
    s->pid = tu_spawn(argv, log);
    if (s->pid < 0 || !tu_wait_until(s_file_exists, ready, 60000))
        return -1;
    snprintf(path, sizeof path, "%s/port", s->dir);
    char *text = tu_read_file(path, NULL);
    if (!text)
        return -1;
    s->port = atoi(text);
    free(text);
    return 0;
}

static void
s_server_stop(server_t *s)
{
    if (s->pid > 0)
        tu_stop(s->pid, 3000);
    s->pid = -1;
}

typedef struct {
    server_t api, oap;
    char ca[600], token[600];
    char cgroup_root[256];
    pid_t procs[4];
    char cgroups[4][512];
    size_t nprocs;
    stats_t *stats;
    uplink_t *up;
    uint8_t *containers;       /* newest k8s.containers payload */
    size_t containers_len, containers_count;
    int cmd_seq;
    bool record_data;          /* the fake OAP keeps profiling data */
    pid_t launcher;            /* bin/skyprof, every stage */
} env_t;

static env_t *s_env;

/* The uplink learns processes only from proc.events: before each tick
 * the test plays the collector (an alive event per running process with
 * its container id, an exit per process gone). */
static tu_procfeed_t s_feed;

static void
s_feed_procs(env_t *e, uint64_t now)
{
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(tu_procfeed_encode(&s_feed, &buf), 0);
    ck_assert_int_eq(uplink_handle(e->up, TOPIC_PROC_EVENTS, buf.data,
                                   buf.len, now), 0);
    wire_buf_release(&buf);
}

static int
s_capture(void *arg, msg_id_t id, void *body)
{
    env_t *e = arg;
    wire_buf_t buf;
    if (id != MSG_K8S_CONTAINERS)
        return 0;
    /* Encoded as bus_send would. */
    wire_buf_init(&buf);
    ck_assert_int_eq(msg_encode(id, body, "uplink/test",
                                e->containers_count + 1, &buf), 0);
    free(e->containers);
    e->containers = malloc(buf.len);
    ck_assert_ptr_nonnull(e->containers);
    memcpy(e->containers, buf.data, buf.len);
    e->containers_len = buf.len;
    e->containers_count++;
    wire_buf_release(&buf);
    return 0;
}

/* A CA, and a server certificate for 127.0.0.1 it signed. */
static int
s_make_pki(env_t *e)
{
    char cmd[4096], ext[600];
    snprintf(ext, sizeof ext, "%s/ext.cnf", e->api.dir);
    FILE *f = fopen(ext, "w");
    if (!f)
        return -1;
    fputs("subjectAltName=IP:127.0.0.1,DNS:localhost\n", f);
    fclose(f);
    snprintf(e->ca, sizeof e->ca, "%s/ca.crt", e->api.dir);
    const char *d = e->api.dir;
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
             "-subj /CN=skyprof-test-ca -keyout ca.key -out ca.crt && "
             "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 "
             "-keyout server.key -out server.csr && "
             "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key "
             "-CAcreateserial -days 2 -extfile ext.cnf -out server.crt",
             d);
    char quiet[4200];
    snprintf(quiet, sizeof quiet, "(%s) >/dev/null 2>&1", cmd);
    return system(quiet) == 0 ? 0 : -1;
}

static void
s_api_start(env_t *e)
{
    char cert[600], key[600];
    snprintf(cert, sizeof cert, "%s/server.crt", e->api.dir);
    snprintf(key, sizeof key, "%s/server.key", e->api.dir);
    char *argv[] = { PYTHON, "tests/fake_k8s/fake_k8s.py", "--dir",
                     e->api.dir, "--cert", cert, "--key", key, "--token",
                     TOKEN, NULL };
    ck_assert_int_eq(s_server_start(&e->api, argv), 0);
}

static void
s_oap_start(env_t *e, bool record_data)
{
    char *argv[] = { PYTHON, "tests/fake_oap/fake_oap.py", "--dir",
                     e->oap.dir, record_data ? NULL : "--no-record-data",
                     NULL };
    ck_assert_int_eq(s_server_start(&e->oap, argv), 0);
}

/* A command for the API double (tests/fake_k8s/fake_k8s.py). */
static void
s_api_cmd(env_t *e, const char *fmt, ...)
{
    char tmp[700], path[700];
    snprintf(tmp, sizeof tmp, "%s/cmd/.%06d.tmp", e->api.dir, e->cmd_seq);
    snprintf(path, sizeof path, "%s/cmd/%06d.json", e->api.dir, e->cmd_seq++);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    ck_assert_int_eq(rename(tmp, path), 0);
}

static void
s_put_pod(env_t *e, const char *ns, const char *name, const char *node,
          const char *labels, const char *container, const char *id)
{
    char *c = s_container_json(container, "containerd://", id);
    char *pod = s_pod_json(ns, name, node, labels, c, NULL);
    s_api_cmd(e, "{\"op\":\"put\",\"kind\":\"pods\",\"object\":%s}", pod);
    free(c);
    free(pod);
}

/* The spawned workload has exec'ed (posix_spawn returns before). */
static int
s_exec_done(void *arg)
{
    char path[64], exe[512];
    snprintf(path, sizeof path, "/proc/%d/exe", *(pid_t *)arg);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    return strstr(exe, "/idle_workload") != NULL;
}

/* idle_workload (it has symbols) in a cgroup named like a containerd
 * container under cgroup v1 (pids hierarchy): what /proc/PID/cgroup shows
 * for a pod's process. */
static pid_t
s_container_proc(env_t *e, const char *id)
{
    size_t i = e->nprocs++;
    snprintf(e->cgroups[i], sizeof e->cgroups[i], "%s/pod-%zu/%s",
             e->cgroup_root, i, id);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", e->cgroups[i]);
    ck_assert_int_eq(system(cmd), 0);
    char *argv[] = { (char *)tu_build_path("tests/progs/idle_workload"), "0",
                     NULL };
    e->procs[i] = tu_spawn(argv, NULL);
    ck_assert_int_gt(e->procs[i], 0);
    ck_assert(tu_wait_until(s_exec_done, &e->procs[i], 10000));
    char path[600], pid[32];
    snprintf(path, sizeof path, "%s/cgroup.procs", e->cgroups[i]);
    snprintf(pid, sizeof pid, "%d\n", (int)e->procs[i]);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_gt(fputs(pid, f), 0);
    ck_assert_int_eq(fclose(f), 0);
    char got[CGROUP_ID_LEN];
    ck_assert_int_eq(procfacts_container_id("/proc", (uint32_t)e->procs[i],
                                            got, sizeof got), 0);
    ck_assert_str_eq(got, id);
    return e->procs[i];
}

/* record_data: the fake OAP keeps profiling data. */
static bool
s_env_start(env_t *e, const char *name, bool record_data, bool api_up)
{
    memset(e, 0, sizeof *e);
    e->record_data = record_data;
    s_env = e;
    if (!tu_require_tool(name, "openssl"))
        return false;
    if (geteuid() != 0 || access("/sys/fs/cgroup/pids", W_OK) != 0) {
        tu_skip(name, "needs root and a writable /sys/fs/cgroup/pids to put "
                "processes in container cgroups");
        return false;
    }
    e->api.dir = tu_mkdtemp();
    e->oap.dir = tu_mkdtemp();
    snprintf(e->cgroup_root, sizeof e->cgroup_root,
             "/sys/fs/cgroup/pids/skyprof-test-%d", (int)getpid());
    ck_assert_int_eq(s_make_pki(e), 0);
    snprintf(e->token, sizeof e->token, "%s/token", e->api.dir);
    FILE *f = fopen(e->token, "w");
    ck_assert_ptr_nonnull(f);
    fputs(TOKEN "\n", f);
    fclose(f);
    s_oap_start(e, e->record_data);
    if (api_up)
        s_api_start(e);
    e->stats = stats_new("uplink", "test");
    return true;
}

static void
s_uplink_start(env_t *e, const char *namespaces, const char *host_regex,
               int api_port)
{
    char server[128], err[512], oap[64];
    snprintf(server, sizeof server, "https://127.0.0.1:%d", api_port);
    snprintf(oap, sizeof oap, "127.0.0.1:%d", e->oap.port);
    k8s_disc_options_t ko = {
        .active = true, .namespaces = namespaces,
        .client = { .api_server = server, .token_file = e->token,
                    .ca_file = e->ca, .node_name = NODE,
                    .max_backoff_ms = 1000, .watch_timeout_s = 30 },
    };
    finder_set_t *analyzers = finder_set_new();
    finder_spec_t svc = s_k8s_service;
    ck_assert_int_eq(finder_set_add(analyzers, &svc, err, sizeof err), 0);
    k8s_disc_t *k8s = k8s_disc_new(&ko, analyzers, e->stats, err, sizeof err);
    ck_assert_msg(k8s != NULL, "%s", err);

    uplink_options_t o;
    uplink_options_defaults(&o);
    o.addr = oap;
    o.timeout_ms = 3000;
    o.agent_id = "agent-k8s";
    o.publish = s_capture;
    o.cb_arg = e;
    o.k8s = k8s;
    o.node_name = NODE;
    finder_set_t *finders = finder_set_new();
    if (host_regex) {
        finder_spec_t host = { .match_cmd_regex = host_regex };
        ck_assert_int_eq(finder_set_add(finders, &host, err, sizeof err), 0);
    }
    e->up = uplink_new(&o, finders, e->stats);
    ck_assert_ptr_nonnull(e->up);
}

static void
s_env_stop(env_t *e)
{
    uplink_destroy(&e->up);
    tu_procfeed_release(&s_feed);
    stats_destroy(&e->stats);
    for (size_t i = 0; i < e->nprocs; i++) {
        kill(e->procs[i], SIGKILL);
        waitpid(e->procs[i], NULL, 0);
    }
    for (size_t i = 0; i < e->nprocs; i++) {
        rmdir(e->cgroups[i]);
        char *slash = strrchr(e->cgroups[i], '/');
        *slash = '\0';
        rmdir(e->cgroups[i]);
    }
    if (e->cgroup_root[0])
        rmdir(e->cgroup_root);
    s_server_stop(&e->api);
    s_server_stop(&e->oap);
    if (e->api.dir) {
        tu_rmtree(e->api.dir);
        tu_rmtree(e->oap.dir);
    }
    free(e->api.dir);
    free(e->oap.dir);
    free(e->containers);
}

/* Runs the uplink's two timers on the real clock for up to ms or until
 * done(e) says so. */
static bool
s_run(env_t *e, int ms, bool (*done)(env_t *e))
{
    uint64_t end = tu_now_ms() + (uint64_t)ms, next_tick = 0;
    while (tu_now_ms() < end) {
        uint64_t now = now_mono_ms();
        uplink_k8s_tick(e->up, now);
        if (now >= next_tick) {
            s_feed_procs(e, now);
            uplink_tick(e->up, now);
            next_tick = now + 200;
        }
        if (done && done(e))
            return true;
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Every reportProcesses request the fake OAP recorded, decoded; the
 * k8sProcess entries for pid (newest last), counted into *n. */
static Skywalking__V3__EBPFKubernetesProcessMetadata *
s_reported_k8s(env_t *e, pid_t pid, Skywalking__V3__EBPFProcessReportList
               **keep)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/req/reportProcesses", e->oap.dir);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "ls %s 2>/dev/null | sort", dir);
    FILE *ls = popen(cmd, "r");
    ck_assert_ptr_nonnull(ls);
    char name[256];
    Skywalking__V3__EBPFKubernetesProcessMetadata *found = NULL;
    *keep = NULL;
    while (fgets(name, sizeof name, ls)) {
        name[strcspn(name, "\n")] = '\0';
        char path[1000];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        size_t len = 0;
        uint8_t *data = (uint8_t *)tu_read_file(path, &len);
        if (!data)
            continue;
        Skywalking__V3__EBPFProcessReportList *list =
            skywalking__v3__ebpfprocess_report_list__unpack(NULL, len, data);
        free(data);
        ck_assert_ptr_nonnull(list);
        bool mine = false;
        for (size_t i = 0; i < list->n_processes; i++) {
            Skywalking__V3__EBPFProcessProperties *p = list->processes[i];
            if (p->metadata_case ==
                    SKYWALKING__V3__EBPFPROCESS_PROPERTIES__METADATA_K8S_PROCESS &&
                p->k8sprocess->pid == pid) {
                found = p->k8sprocess;
                mine = true;
            }
        }
        if (mine) {
            if (*keep)
                skywalking__v3__ebpfprocess_report_list__free_unpacked(*keep,
                                                                       NULL);
            *keep = list;
        } else {
            skywalking__v3__ebpfprocess_report_list__free_unpacked(list, NULL);
        }
    }
    pclose(ls);
    return found;
}

static const char *
s_prop(const Skywalking__V3__EBPFKubernetesProcessMetadata *k,
       const char *key)
{
    for (size_t i = 0; i < k->n_properties; i++)
        if (!strcmp(k->properties[i]->key, key))
            return k->properties[i]->value;
    return NULL;
}

/* The K8S_SERVICE analyzer's entity for idle_workload in pod, and the
 * pod properties. */
static void
s_assert_k8s_entity(const Skywalking__V3__EBPFKubernetesProcessMetadata *k,
                    const char *service, const char *pod,
                    const char *container)
{
    ck_assert_ptr_nonnull(k);
    ck_assert_str_eq(k->entity->layer, "K8S_SERVICE");
    ck_assert_str_eq(k->entity->servicename, service);
    ck_assert_str_eq(k->entity->instancename, pod);
    ck_assert_str_eq(k->entity->processname, "idle_workload");
    ck_assert_str_eq(s_prop(k, "pod_name"), pod);
    ck_assert_str_eq(s_prop(k, "container_name"), container);
}

static pid_t s_wanted_pid;

static bool
s_reported(env_t *e)
{
    Skywalking__V3__EBPFProcessReportList *keep;
    bool ok = s_reported_k8s(e, s_wanted_pid, &keep) != NULL;
    if (keep)
        skywalking__v3__ebpfprocess_report_list__free_unpacked(keep, NULL);
    return ok;
}

/* The newest k8s.containers table, decoded: the row of id or NULL. */
static const wire_k8s_container_t *
s_container_row(env_t *e, arena_t *a, const char *id, uint32_t *n)
{
    if (!e->containers)
        return NULL;
    wire_k8s_containers_t m;
    char err[256];
    arena_reset(a);
    ck_assert_msg(wire_decode_k8s_containers(e->containers,
                                             e->containers_len, a, &m, err,
                                             sizeof err) == 0, "%s", err);
    ck_assert_str_eq(m.node, NODE);
    if (n)
        *n = m.ncontainers;
    for (uint32_t i = 0; i < m.ncontainers; i++)
        if (!strcmp(m.containers[i].container_id, id))
            return &m.containers[i];
    return NULL;
}

static size_t
s_log_count(env_t *e, const char *needle)
{
    char path[700];
    snprintf(path, sizeof path, "%s/requests.log", e->api.dir);
    char *text = tu_read_file(path, NULL);
    size_t n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p++)
        n++;
    free(text);
    return n;
}

/* A list request of this node's pods (a watch adds "&watch=1..."). */
static const char *s_pod_list =
    "200 /api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a\n";
static const char *s_needle;
static size_t s_needle_min;

static bool
s_log_has(env_t *e)
{
    return s_log_count(e, s_needle) >= s_needle_min;
}

static double
s_metric(env_t *e, const char *name)
{
    return stats_value(stats_counter(e->stats, name, NULL, NULL));
}

START_TEST(test_discovery_against_api)
{
    env_t e;
    if (!s_env_start(&e, "test_discovery_against_api", false, true))
        return;
    arena_t *a = arena_new(1 << 20);
    pid_t web = s_container_proc(&e, ID1);
    pid_t dns = s_container_proc(&e, ID2);
    s_api_cmd(&e, "{\"op\":\"put\",\"kind\":\"services\",\"object\":"
              "{\"metadata\":{\"namespace\":\"shop\",\"name\":\"web\"},"
              "\"spec\":{\"selector\":{\"app\":\"web\"}}}}");
    s_api_cmd(&e, "{\"op\":\"put\",\"kind\":\"services\",\"object\":"
              "{\"metadata\":{\"namespace\":\"kube-system\",\"name\":\"dns\"},"
              "\"spec\":{\"selector\":{\"app\":\"dns\"}}}}");
    /* A pod of another node with the same container id must not count. */
    s_put_pod(&e, "shop", "elsewhere", "node-b", "\"app\":\"web\"", "x", ID2);
    s_put_pod(&e, "kube-system", "dns-1", NODE, "\"app\":\"dns\"", "dns",
              ID2);
    s_uplink_start(&e, "shop", NULL, e.api.port);

    /* The process exists first; its pod shows up afterwards, as when a
     * runtime starts the container before the API reports its id. */
    uint64_t t0 = tu_now_ms();
    s_put_pod(&e, "shop", "web-1", NODE, "\"app\":\"web\"", "app", ID1);
    s_wanted_pid = web;
    ck_assert(s_run(&e, 30000, s_reported));
    uint64_t latency = tu_now_ms() - t0;
    printf("k8s: a new pod's process reported %" PRIu64 " ms after the "
           "pod was added\n", latency);

    Skywalking__V3__EBPFProcessReportList *keep;
    Skywalking__V3__EBPFKubernetesProcessMetadata *k =
        s_reported_k8s(&e, web, &keep);
    ck_assert_ptr_nonnull(k);
    ck_assert_str_eq(keep->ebpfagentid, "agent-k8s");
    s_assert_k8s_entity(k, "web.shop", "web-1", "app");
    ck_assert_str_eq(s_prop(k, "container_ip"), "10.1.0.7");
    char pidtxt[16];
    snprintf(pidtxt, sizeof pidtxt, "%d", (int)web);
    ck_assert_str_eq(s_prop(k, "pid"), pidtxt);
    ck_assert_str_eq(s_prop(k, "command_line"),
                     tu_build_path("tests/progs/idle_workload 0"));
    ck_assert_str_eq(s_prop(k, "support_ebpf_profiling"), "true");
    ck_assert_ptr_nonnull(s_prop(k, "host_ip"));
    skywalking__v3__ebpfprocess_report_list__free_unpacked(keep, NULL);
    /* The OAP's id came back through the k8sProcess downstream. */
    char want_id[32];
    snprintf(want_id, sizeof want_id, "proc-%d", (int)web);
    ck_assert_str_eq(uplink_process_id(e.up, (uint32_t)web), want_id);
    /* kube-system is not watched: its process is not reported. */
    ck_assert_ptr_null(s_reported_k8s(&e, dns, &keep));
    ck_assert_ptr_null(keep);

    /* The container table on the bus names the pod, not the other
     * namespace's. */
    uint32_t nrows = 0;
    const wire_k8s_container_t *row = s_container_row(&e, a, ID1, &nrows);
    ck_assert_ptr_nonnull(row);
    ck_assert_uint_eq(nrows, 1);
    ck_assert_str_eq(row->ns, "shop");
    ck_assert_str_eq(row->pod, "web-1");
    ck_assert_str_eq(row->container, "app");
    ck_assert_str_eq(row->service, "web");
    ck_assert_str_eq(row->pod_ip, "10.1.0.7");

    /* A dropped watch resumes from the last resourceVersion, without a
     * relist. */
    size_t lists = s_log_count(&e, s_pod_list);
    s_api_cmd(&e, "{\"op\":\"drop\"}");
    s_needle = "resourceVersion=";
    s_needle_min = s_log_count(&e, "resourceVersion=") + 3;
    ck_assert(s_run(&e, 20000, s_log_has));
    ck_assert_uint_eq(s_log_count(&e, s_pod_list), lists);
    /* A 410 in the stream (history compacted) makes a full relist. */
    s_api_cmd(&e, "{\"op\":\"compact\"}");
    s_api_cmd(&e, "{\"op\":\"drop\"}");
    s_needle = s_pod_list;
    s_needle_min = lists + 1;
    ck_assert(s_run(&e, 20000, s_log_has));
    ck_assert_double_ge(s_metric(&e, "k8s_relists_gone"), 1);
    /* An HTTP 410 answering a watch request relists too. */
    s_api_cmd(&e, "{\"op\":\"gone_status\"}");
    s_api_cmd(&e, "{\"op\":\"drop\"}");
    s_needle = "410 /api/v1/";
    s_needle_min = 1;
    ck_assert(s_run(&e, 20000, s_log_has));
    s_needle = s_pod_list;
    s_needle_min = lists + 2;
    s_run(&e, 10000, s_log_has);
    ck_assert_uint_ge(s_log_count(&e, s_pod_list) +
                      s_log_count(&e, "200 /api/v1/services\n") +
                      s_log_count(&e, "200 /api/v1/endpoints\n"), lists + 4);

    /* Still consistent after all that: an update arrives. */
    s_put_pod(&e, "shop", "web-1", NODE, "\"app\":\"web\",\"v\":\"2\"", "app",
              ID1);
    s_run(&e, 2000, NULL);
    ck_assert_ptr_nonnull(s_container_row(&e, a, ID1, NULL));

    /* The pod is deleted while its process lives: the identity stays for
     * the process's reports (K8S_DELETED_KEEP_MS). */
    s_api_cmd(&e, "{\"op\":\"delete\",\"kind\":\"pods\",\"namespace\":"
              "\"shop\",\"name\":\"web-1\"}");
    s_run(&e, 3000, NULL);
    ck_assert_str_eq(uplink_process_id(e.up, (uint32_t)web), want_id);
    ck_assert_ptr_nonnull(s_container_row(&e, a, ID1, NULL));
    ck_assert_double_eq(s_metric(&e, "k8s_objects_invalid"), 0);

    arena_destroy(&a);
    s_env_stop(&e);
}
END_TEST

/* Two failed API requests since the uplink started (a loaded machine
 * can take seconds per TLS handshake). */
static bool
s_failed_twice(env_t *e)
{
    return s_metric(e, "k8s_failures") >= 2;
}

static bool
s_synced(env_t *e)
{
    return stats_value(stats_gauge(e->stats, "k8s_synced", NULL, NULL)) == 1;
}

START_TEST(test_api_down_at_start)
{
    env_t e;
    if (!s_env_start(&e, "test_api_down_at_start", false, false))
        return;
    /* A port nothing listens on (bound then closed), later the double's. */
    s_api_start(&e);
    int port = e.api.port;
    s_server_stop(&e.api);
    pid_t web = s_container_proc(&e, ID1);
    /* A host process (no container) the regex finder reports. */
    char *host_argv[] = { (char *)tu_build_path("tests/progs/idle_workload"),
                          "0", NULL };
    pid_t host = tu_spawn(host_argv, NULL);
    ck_assert_int_gt(host, 0);
    ck_assert(tu_wait_until(s_exec_done, &host, 10000));
    /* Host discovery keeps working while the API is away. */
    s_uplink_start(&e, "", "idle_workload 0$", port);
    s_run(&e, 20000, s_failed_twice);
    ck_assert_double_ge(s_metric(&e, "k8s_failures"), 2);
    char want_id[32];
    snprintf(want_id, sizeof want_id, "proc-%d", (int)host);
    ck_assert_str_eq(uplink_process_id(e.up, (uint32_t)host), want_id);
    kill(host, SIGKILL);
    waitpid(host, NULL, 0);
    snprintf(want_id, sizeof want_id, "proc-%d", (int)web);
    /* In a container no known pod runs: not reported as a host process
     * either (it waits for its pod). */
    ck_assert_ptr_null(uplink_process_id(e.up, (uint32_t)web));
    ck_assert_double_ge(s_metric(&e, "k8s_unknown_container"), 1);
    s_api_cmd(&e, "{\"op\":\"put\",\"kind\":\"services\",\"object\":"
              "{\"metadata\":{\"namespace\":\"shop\",\"name\":\"web\"},"
              "\"spec\":{\"selector\":{\"app\":\"web\"}}}}");
    s_put_pod(&e, "shop", "web-1", NODE, "\"app\":\"web\"", "app", ID1);
    /* The API server comes up on the same port. */
    char cert[600], key[600], portarg[16];
    snprintf(cert, sizeof cert, "%s/server.crt", e.api.dir);
    snprintf(key, sizeof key, "%s/server.key", e.api.dir);
    snprintf(portarg, sizeof portarg, "%d", port);
    char *argv[] = { PYTHON, "tests/fake_k8s/fake_k8s.py", "--dir",
                     e.api.dir, "--cert", cert, "--key", key, "--token",
                     TOKEN, "--port", portarg, NULL };
    ck_assert_int_eq(s_server_start(&e.api, argv), 0);
    ck_assert(s_run(&e, 20000, s_synced));
    s_wanted_pid = web;
    ck_assert(s_run(&e, 20000, s_reported));
    ck_assert_str_eq(uplink_process_id(e.up, (uint32_t)web), want_id);
    s_env_stop(&e);
}
END_TEST

START_TEST(test_wrong_token_and_ca)
{
    env_t e;
    if (!s_env_start(&e, "test_wrong_token_and_ca", false, true))
        return;
    /* A token the server refuses: 401s, counted, retried. */
    FILE *f = fopen(e.token, "w");
    fputs("wrong\n", f);
    fclose(f);
    s_uplink_start(&e, "", NULL, e.api.port);
    s_run(&e, 20000, s_failed_twice);
    ck_assert_double_ge(s_metric(&e, "k8s_failures"), 2);
    ck_assert_uint_ge(s_log_count(&e, "401 /api/v1/"), 2);
    ck_assert(!s_synced(&e));
    /* The right token (re-read at every request) and it syncs. */
    f = fopen(e.token, "w");
    fputs(TOKEN "\n", f);
    fclose(f);
    ck_assert(s_run(&e, 20000, s_synced));

    /* A CA that did not sign the server's certificate (the system roots):
     * the TLS handshake fails, nothing is listed, the failures count. */
    uplink_destroy(&e.up);
    stats_destroy(&e.stats);
    e.stats = stats_new("uplink", "test");
    snprintf(e.ca, sizeof e.ca, "/etc/ssl/certs/ca-certificates.crt");
    size_t lists = s_log_count(&e, s_pod_list);
    s_uplink_start(&e, "", NULL, e.api.port);
    s_run(&e, 20000, s_failed_twice);
    ck_assert_double_ge(s_metric(&e, "k8s_failures"), 2);
    ck_assert(!s_synced(&e));
    ck_assert_uint_eq(s_log_count(&e, s_pod_list), lists);
    s_env_stop(&e);
}
END_TEST

/* 100 pods of 2 containers on this node, 100 Services: all in the table
 * (the cost is printed for the closing note, not asserted). */
static bool
s_hundred(env_t *e)
{
    arena_t *a = arena_new(1 << 22);
    uint32_t n = 0;
    s_container_row(e, a, ID1, &n);
    arena_destroy(&a);
    return n == 200;
}

START_TEST(test_hundred_pods)
{
    env_t e;
    if (!s_env_start(&e, "test_hundred_pods", false, true))
        return;
    for (int i = 0; i < 100; i++) {
        char ns[32], name[32], labels[64], c[600], id1[65], id2[65];
        snprintf(ns, sizeof ns, "ns-%d", i % 10);
        snprintf(name, sizeof name, "pod-%d", i);
        snprintf(labels, sizeof labels, "\"app\":\"app-%d\"", i);
        snprintf(id1, sizeof id1, "%064x", i * 2 + 1);
        snprintf(id2, sizeof id2, "%064x", i * 2 + 2);
        snprintf(c, sizeof c, "{\"name\":\"app\",\"containerID\":"
                 "\"containerd://%s\"},{\"name\":\"sidecar\",\"containerID\":"
                 "\"containerd://%s\"}", id1, id2);
        char *pod = s_pod_json(ns, name, NODE, labels, c, NULL);
        s_api_cmd(&e, "{\"op\":\"put\",\"kind\":\"pods\",\"object\":%s}",
                  pod);
        free(pod);
        s_api_cmd(&e, "{\"op\":\"put\",\"kind\":\"services\",\"object\":"
                  "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"svc-%d\"},"
                  "\"spec\":{\"selector\":{\"app\":\"app-%d\"}}}}", ns, i, i);
    }
    struct mallinfo2 m0 = mallinfo2();
    s_uplink_start(&e, "", NULL, e.api.port);
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    uint64_t t0 = tu_now_ms();
    ck_assert(s_run(&e, 20000, s_hundred));
    uint64_t synced_ms = tu_now_ms() - t0;
    /* A steady minute's worth of churn: every pod modified once. */
    for (int i = 0; i < 100; i++) {
        char name[32], labels[64], c[600], id1[65], id2[65];
        snprintf(name, sizeof name, "pod-%d", i);
        snprintf(labels, sizeof labels, "\"app\":\"app-%d\",\"r\":\"2\"", i);
        snprintf(id1, sizeof id1, "%064x", i * 2 + 1);
        snprintf(id2, sizeof id2, "%064x", i * 2 + 2);
        snprintf(c, sizeof c, "{\"name\":\"app\",\"containerID\":"
                 "\"containerd://%s\"},{\"name\":\"sidecar\",\"containerID\":"
                 "\"containerd://%s\"}", id1, id2);
        char ns[32];
        snprintf(ns, sizeof ns, "ns-%d", i % 10);
        char *pod = s_pod_json(ns, name, NODE, labels, c, NULL);
        s_api_cmd(&e, "{\"op\":\"put\",\"kind\":\"pods\",\"object\":%s}",
                  pod);
        free(pod);
    }
    s_run(&e, 3000, NULL);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu_ms = (double)(c1.tv_sec - c0.tv_sec) * 1e3 +
                    (double)(c1.tv_nsec - c0.tv_nsec) / 1e6;
    struct mallinfo2 m1 = mallinfo2();
    printf("k8s: 100 pods + 100 services synced in %" PRIu64 " ms; CPU of "
           "the test process (uplink + /proc rescans) over sync + 100 "
           "MODIFIED events + 3 s: %.0f ms; k8s.containers %zu bytes; heap "
           "in use by the uplink with discovery %.0f KiB\n",
           synced_ms, cpu_ms, e.containers_len,
           ((double)m1.uordblks - (double)m0.uordblks) / 1024.0);
    ck_assert(s_hundred(&e));
    ck_assert_double_ge(s_metric(&e, "k8s_watch_events"), 100);
    s_env_stop(&e);
}
END_TEST

/* ================================================ real podman containers */
/* Runs sh -c cmd; 0 and its first output line in out (when given). */
static int
s_sh(char *out, size_t size, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[2200];
    snprintf(full, sizeof full, "(%s) 2>/dev/null", cmd);
    FILE *p = popen(full, "r");
    if (!p)
        return -1;
    char line[512] = "";
    if (!fgets(line, sizeof line, p))
        line[0] = '\0';
    char rest[512];
    while (fgets(rest, sizeof rest, p))
        ;
    int rc = pclose(p);
    line[strcspn(line, "\n")] = '\0';
    if (out)
        snprintf(out, size, "%s", line);
    return rc == 0 ? 0 : -1;
}

#define K8S_IMAGE "localhost/skyprof-k8s-test:test"
#define PODMAN "CONTAINERS_CONF=$PWD/deploy/images/containers.conf podman"

/* An image FROM scratch holding idle_workload (symbols, known function
 * names), its libc and the ELF interpreter, as deploy/images/build.sh
 * builds the stage images. */
static int
s_build_image(const char *dir, const char *workload)
{
    char prog[256];
    snprintf(prog, sizeof prog, "%s",
             tu_build_path("tests/progs/idle_workload"));
    *strrchr(prog, '/') = '\0';
    return s_sh(NULL, 0,
                "set -e; cd %s; mkdir -p ctx/root/usr/bin; "
                "cp %s/%s/%s %s/%s/*.so ctx/root/usr/bin/; "
                "for l in $(ldd ctx/root/usr/bin/%s | awk "
                "'$2 == \"=>\" && $3 ~ /^\\// { print $3 } "
                "NF >= 2 && $1 ~ /^\\// { print $1 }'); do "
                "mkdir -p ctx/root$(dirname $l); cp -L $l ctx/root$l; done; "
                "printf 'FROM scratch\\nCOPY root/ /\\n' > ctx/Containerfile; "
                "cd %s; " PODMAN " build --quiet --layers=false -t " K8S_IMAGE
                " -f %s/ctx/Containerfile %s/ctx",
                dir, getcwd((char[1024]){ 0 }, 1024), prog, workload,
                getcwd((char[1024]){ 0 }, 1024), prog, workload,
                getcwd((char[1024]){ 0 }, 1024), dir, dir);
}

/* Starts a container; its full id and host pid. */
static int
s_podman_run(const char *name, const char *cmd, char id[CGROUP_ID_LEN],
             pid_t *pid)
{
    char out[256];
    if (s_sh(out, sizeof out, PODMAN " run -d --rm --runtime runc --name %s "
             K8S_IMAGE " %s", name, cmd) != 0 ||
        strlen(out) != CGROUP_ID_LEN - 1)
        return -1;
    memcpy(id, out, CGROUP_ID_LEN);     /* 64 hex digits and the NUL */
    if (s_sh(out, sizeof out, "podman inspect -f '{{.State.Pid}}' %s",
             name) != 0)
        return -1;
    *pid = (pid_t)atoi(out);
    return *pid > 0 ? 0 : -1;
}

START_TEST(test_podman_containers)
{
    env_t e;
    if (!tu_require_tool("test_podman_containers", "podman") ||
        !s_env_start(&e, "test_podman_containers", false, true))
        return;
    char names[2][64], ids[2][CGROUP_ID_LEN];
    pid_t pids[2] = { 0, 0 };
    snprintf(names[0], sizeof names[0], "skyprof-k8s-web-%d", (int)getpid());
    snprintf(names[1], sizeof names[1], "skyprof-k8s-dns-%d", (int)getpid());
    if (s_build_image(e.api.dir, "idle_workload") != 0) {
        tu_skip("test_podman_containers", "podman cannot build an image "
                "here");
        s_env_stop(&e);
        return;
    }
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(s_podman_run(names[i], "/usr/bin/idle_workload 0",
                                      ids[i], &pids[i]), 0);
    /* What the runtime put in /proc/PID/cgroup is the container's id. */
    for (int i = 0; i < 2; i++) {
        char got[CGROUP_ID_LEN];
        ck_assert_int_eq(procfacts_container_id("/proc", (uint32_t)pids[i],
                                                got, sizeof got), 0);
        ck_assert_str_eq(got, ids[i]);
    }
    s_api_cmd(&e, "{\"op\":\"put\",\"kind\":\"services\",\"object\":"
              "{\"metadata\":{\"namespace\":\"shop\",\"name\":\"web\"},"
              "\"spec\":{\"selector\":{\"app\":\"web\"}}}}");
    char *c = s_container_json("web", "cri-o://", ids[0]);
    char *pod = s_pod_json("shop", "web-7f9c", NODE, "\"app\":\"web\"", c,
                           NULL);
    s_api_cmd(&e, "{\"op\":\"put\",\"kind\":\"pods\",\"object\":%s}", pod);
    free(c);
    free(pod);
    s_put_pod(&e, "kube-system", "dns-1", NODE, "\"app\":\"dns\"", "dns",
              ids[1]);
    s_uplink_start(&e, "shop", NULL, e.api.port);
    s_wanted_pid = pids[0];
    ck_assert(s_run(&e, 30000, s_reported));
    Skywalking__V3__EBPFProcessReportList *keep;
    Skywalking__V3__EBPFKubernetesProcessMetadata *k =
        s_reported_k8s(&e, pids[0], &keep);
    s_assert_k8s_entity(k, "web.shop", "web-7f9c", "web");
    ck_assert_str_eq(s_prop(k, "command_line"), "/usr/bin/idle_workload 0");
    /* The container's binary was read through its root (/proc/PID/exe):
     * it has symbols, so the OAP may offer tasks on it. */
    ck_assert_str_eq(s_prop(k, "support_ebpf_profiling"), "true");
    skywalking__v3__ebpfprocess_report_list__free_unpacked(keep, NULL);
    /* The other namespace's container is not reported. */
    ck_assert_ptr_null(s_reported_k8s(&e, pids[1], &keep));

    for (int i = 0; i < 2; i++)
        s_sh(NULL, 0, "podman rm -f -t 0 %s", names[i]);
    s_sh(NULL, 0, "podman rmi -f " K8S_IMAGE);
    s_env_stop(&e);
}
END_TEST

/* ================================================== the whole pipeline */
/* Every stage (bin/skyprof, real BPF) with discovery against the API
 * double: a podman container running cpu_workload is a pod's process; the
 * OAP gets its k8sProcess, a task the OAP names for it returns the
 * container binary's own function names (read through its root), and the
 * aggregator's local views know its namespace, pod and container. */
typedef struct {
    const char *task_id;
    char current[128];
    int alpha, beta;
} s_data_t;

static void
s_scan_data(env_t *e, s_data_t *d)
{
    char cmd[800], name[256];
    snprintf(cmd, sizeof cmd, "ls %s/req/collectProfilingData 2>/dev/null "
             "| grep '\\.bin$' | sort", e->oap.dir);
    FILE *ls = popen(cmd, "r");
    ck_assert_ptr_nonnull(ls);
    while (fgets(name, sizeof name, ls)) {
        name[strcspn(name, "\n")] = '\0';
        char path[1100];
        snprintf(path, sizeof path, "%s/req/collectProfilingData/%s",
                 e->oap.dir, name);
        size_t len = 0;
        uint8_t *data = (uint8_t *)tu_read_file(path, &len);
        Skywalking__V3__EBPFProfilingData *m =
            data ? skywalking__v3__ebpfprofiling_data__unpack(NULL, len, data)
                 : NULL;
        free(data);
        if (!m)
            continue;
        if (m->task && m->task->taskid)
            snprintf(d->current, sizeof d->current, "%s", m->task->taskid);
        if (!strcmp(d->current, d->task_id) && m->profiling_case ==
                SKYWALKING__V3__EBPFPROFILING_DATA__PROFILING_ON_CPU)
            for (size_t i = 0; i < m->oncpu->n_stacks; i++)
                for (size_t k = 0; k < m->oncpu->stacks[i]->n_stacksymbols;
                     k++) {
                    const char *sym = m->oncpu->stacks[i]->stacksymbols[k];
                    d->alpha |= !strcmp(sym, "sky_alpha_leaf");
                    d->beta |= !strcmp(sym, "skylib_beta_leaf");
                }
        skywalking__v3__ebpfprofiling_data__free_unpacked(m, NULL);
    }
    pclose(ls);
}

static const char *s_task_id = "oap-k8s-1";

static bool
s_task_data(env_t *e)
{
    s_data_t d = { .task_id = s_task_id };
    s_scan_data(e, &d);
    return d.alpha && d.beta;
}

/* queryTasks answers once with a fixed-time ON_CPU task for process_id. */
static void
s_offer_task(env_t *e, const char *process_id)
{
    char now[32];
    snprintf(now, sizeof now, "%llu",
             (unsigned long long)time(NULL) * 1000ull);
    const char *kv[] = { "SerialNumber", "k1", "TaskId", s_task_id,
                         "ProcessId", process_id, "TaskUpdateTime", now,
                         "TriggerType", "FIXED_TIME", "TargetType", "ON_CPU",
                         "TaskStartTime", now, "ExtensionConfigJSON", "null",
                         "FixedTriggerDuration", "5" };
    enum { NKV = sizeof kv / sizeof kv[0] / 2 };
    Skywalking__V3__KeyStringValuePair pairs[NKV], *pp[NKV];
    for (size_t i = 0; i < NKV; i++) {
        skywalking__v3__key_string_value_pair__init(&pairs[i]);
        pairs[i].key = (char *)kv[2 * i];
        pairs[i].value = (char *)kv[2 * i + 1];
        pp[i] = &pairs[i];
    }
    Skywalking__V3__Command cmd = SKYWALKING__V3__COMMAND__INIT, *cp = &cmd;
    cmd.command = "EBPFProfilingTaskQuery";
    cmd.n_args = NKV;
    cmd.args = pp;
    Skywalking__V3__Commands cmds = SKYWALKING__V3__COMMANDS__INIT;
    cmds.n_commands = 1;
    cmds.commands = &cp;
    size_t len = skywalking__v3__commands__get_packed_size(&cmds);
    uint8_t *buf = malloc(len);
    ck_assert_ptr_nonnull(buf);
    skywalking__v3__commands__pack(&cmds, buf);
    char dir[700], tmp[800], path[800];
    snprintf(dir, sizeof dir, "%s/reply", e->oap.dir);
    mkdir(dir, 0755);
    snprintf(tmp, sizeof tmp, "%s/.queryTasks.tmp", dir);
    snprintf(path, sizeof path, "%s/queryTasks.once.bin", dir);
    FILE *f = fopen(tmp, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
    ck_assert_int_eq(rename(tmp, path), 0);
    free(buf);
}

static int s_api_port;

static char *
s_local_get(const char *path, int *status)
{
    return tu_http("GET", "127.0.0.1", s_api_port, path, NULL, status, NULL);
}

static int
s_local_up(void *arg)
{
    int status = 0;
    char *b = s_local_get("/healthz", &status);
    free(b);
    return status == 200;
}

static int
s_local_has(void *arg)
{
    const char **q = arg;
    int status = 0;
    char *b = s_local_get(q[0], &status);
    int ok = b && status == 200 && strstr(b, q[1]) != NULL;
    free(b);
    return ok;
}

static int
s_reported_wait(void *arg)
{
    return s_reported(arg);
}

static int
s_task_data_wait(void *arg)
{
    return s_task_data(arg);
}

START_TEST(test_pipeline_task_in_container)
{
    env_t e;
    if (!tu_require_bpf("test_pipeline_task_in_container") ||
        !tu_require_tool("test_pipeline_task_in_container", "podman") ||
        !s_env_start(&e, "test_pipeline_task_in_container", true, true))
        return;
    char name[64], id[CGROUP_ID_LEN];
    pid_t pid = 0;
    snprintf(name, sizeof name, "skyprof-k8s-cpu-%d", (int)getpid());
    if (s_build_image(e.api.dir, "cpu_workload") != 0) {
        tu_skip("test_pipeline_task_in_container", "podman cannot build an "
                "image here");
        s_env_stop(&e);
        return;
    }
    ck_assert_int_eq(s_podman_run(name, "/usr/bin/cpu_workload 25", id,
                                  &pid), 0);
    s_api_cmd(&e, "{\"op\":\"put\",\"kind\":\"services\",\"object\":"
              "{\"metadata\":{\"namespace\":\"shop\",\"name\":\"burner\"},"
              "\"spec\":{\"selector\":{\"app\":\"burner\"}}}}");
    s_put_pod(&e, "shop", "burner-1", NODE, "\"app\":\"burner\"", "cpu", id);

    s_api_port = th_free_port(); /* other tests may run at the same time */
    char config[700], log[700];
    snprintf(config, sizeof config, "%s/skyprof.yaml", e.oap.dir);
    snprintf(log, sizeof log, "%s/run.log", e.oap.dir);
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "runtime_dir: %s/run\n"
            "node_name: " NODE "\n"
            "core:\n  backend:\n    addr: 127.0.0.1:%d\n"
            "    upstream_timeout: 2s\n"
            "process_discovery:\n  heartbeat_period: 2s\n"
            "  kubernetes:\n    active: true\n    node_name: " NODE "\n"
            "    api_server: https://127.0.0.1:%d\n"
            "    token_file: %s\n    ca_file: %s\n"
            "profiling:\n  check_interval: 1s\n  flush_interval: 1s\n"
            "aggregator:\n  http_addr: 127.0.0.1:%d\n  store_path: \"\"\n",
            e.oap.dir, e.oap.port, e.api.port, e.token, e.ca, s_api_port);
    fclose(f);
    char *argv[] = { (char *)tu_build_path("bin/skyprof"), "--config", config,
                     "--bin-dir", (char *)tu_build_path("bin"), NULL };
    e.launcher = tu_spawn(argv, log);
    ck_assert_msg(tu_wait_until(s_local_up, NULL, 20000), "API down; see %s",
                  log);

    /* Reported as the pod's process, then a task on it. */
    s_wanted_pid = pid;
    ck_assert_msg(tu_wait_until(s_reported_wait, &e, 30000),
                  "no k8sProcess for pid %d; see %s", (int)pid, log);
    char process_id[32];
    snprintf(process_id, sizeof process_id, "proc-%d", (int)pid);
    s_offer_task(&e, process_id);
    ck_assert_msg(tu_wait_until(s_task_data_wait, &e, 25000),
                  "no data with the container's functions; see %s", log);

    /* Locally: the process row names the pod, the Total view is layered
     * node-less (one node) ns -> pod -> container -> process. */
    const char *rows[2] = { "/api/processes",
                            "\"namespace\":\"shop\",\"pod\":\"burner-1\","
                            "\"container\":\"cpu\"" };
    ck_assert_msg(tu_wait_until(s_local_has, rows, 10000),
                  "/api/processes names no pod; see %s", log);
    const char *folded[2] = { "/api/folded?app_service=Total&namespace=shop",
                              "[ns] shop;[pod] burner-1;[c] cpu;"
                              "[p] cpu_workload;" };
    ck_assert_msg(tu_wait_until(s_local_has, folded, 10000),
                  "no pod layers in Total; see %s", log);

    int st = tu_stop(e.launcher, 20000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "launcher status %d; see %s", st, log);
    s_sh(NULL, 0, "podman rm -f -t 0 %s", name);
    s_sh(NULL, 0, "podman rmi -f " K8S_IMAGE);
    s_env_stop(&e);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("k8s");
    TCase *unit = tcase_create("unit");
    tcase_add_test(unit, test_cgroup_layouts);
    tcase_add_test(unit, test_pod_table);
    tcase_add_test(unit, test_templates_and_filters);
    tcase_add_test(unit, test_config_keys);
    suite_add_tcase(s, unit);
    TCase *api = tcase_create("api");
    tcase_set_timeout(api, 120);
    tcase_add_test(api, test_discovery_against_api);
    tcase_add_test(api, test_api_down_at_start);
    tcase_add_test(api, test_wrong_token_and_ca);
    tcase_add_test(api, test_hundred_pods);
    tcase_add_test(api, test_podman_containers);
    suite_add_tcase(s, api);
    TCase *chain = tcase_create("pipeline");
    tcase_set_timeout(chain, 150);
    tcase_add_test(chain, test_pipeline_task_in_container);
    suite_add_tcase(s, chain);
    return s;
}

int
main(void)
{
    log_init("test_k8s", log_level_parse("warn"));
    return tu_run(s_suite());
}
