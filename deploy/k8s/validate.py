#!/usr/bin/env python3
"""Offline checks of skyprof's deployment files (no cluster needed).

    python3 deploy/k8s/validate.py [--bin-dir build/bin]

Kubernetes manifests (deploy/k8s/*/): every document parses, carries
apiVersion/kind/metadata, sits in the skyprof namespace; workload selectors
match their pod labels; every container has an image, CPU and memory
requests and limits, liveness and readiness probes on /healthz at one of
its own named ports, a read-only root filesystem, no privilege escalation,
all capabilities dropped and only the ones its stage is allowed added;
non-root unless the stage needs root; hostPID only where a stage needs the
node's pids, and never in a pod that holds the uplink (the stage that talks
to the network learns processes from the bus); every volume mount, ConfigMap and Secret reference resolves;
the ports a ConfigMap's skyprof.yaml gives each stage are the ones its
probes use; kustomization resources exist. Every port a container declares
(the API, the health ports, the bus) is under an Ingress NetworkPolicy that
selects its pod, and no rule admits it from everywhere; an aggregator whose
ConfigMap binds the API on every address reads its token from a Secret.
An uplink with Kubernetes discovery has its service account bound to a
ClusterRole granting get/list/watch on pods, services, endpoints and nodes,
the token projected into it alone, and the node name (its own and the
collector's) from spec.nodeName.

Compose (deploy/compose/docker-compose.yml): parses, every service has an
image and the same privilege rules; published ports name a host address
that defaults to loopback.

With --bin-dir, every skyprof.yaml (image default and ConfigMaps) is loaded
by a real stage (--print-config), so an unknown value or type fails here
rather than in a pod. With kubectl on PATH, `kubectl kustomize` renders each
layout (client side only: kubectl cannot validate against an API schema
without a server).

Exit status 0 when everything holds; every problem is printed.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))

# What each stage may hold. Root only where Kubernetes cannot give the
# capabilities to a non-root process (no ambient capabilities).
STAGE_CAPS = {
    "broker": set(),
    "collector": {"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"},
    "symbolizer": {"SYS_PTRACE", "DAC_READ_SEARCH", "SYSLOG"},
    "aggregator": set(),
    "policy": set(),
    # Process facts come on proc.events: the stage that talks to the
    # network reads no /proc entry and no binary.
    "uplink": set(),
}
HOST_PID_STAGES = {"collector", "symbolizer", "policy"}
# Stages that must not share the host pid namespace: hostPID is pod-wide,
# so they live in pods of their own.
NO_HOST_PID_STAGES = {"uplink"}
CONFIG_PORT_KEY = {
    "broker": "broker", "collector": "collector", "symbolizer": "symbolizer",
    "aggregator": "aggregator", "policy": "policy", "uplink": "uplink",
}
WORKLOAD_KINDS = {"DaemonSet", "Deployment", "StatefulSet"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
# Kubernetes process discovery (docs/kubernetes.md): what the uplink reads,
# and where the service-account token goes.
DISCOVERY_RESOURCES = {"pods", "services", "endpoints", "nodes"}
DISCOVERY_VERBS = {"get", "list", "watch"}
SA_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DISCOVERY_ENV = "SKYPROF_PROCESS_DISCOVERY_KUBERNETES_ACTIVE"
WILDCARD_HOSTS = {"", "0.0.0.0", "*", "[::]"}

problems = []


def problem(where, msg):
    problems.append(f"{where}: {msg}")


def stage_of(container):
    m = re.search(r"skyprof-([a-z]+)", container.get("image", ""))
    return m.group(1) if m else None


def load_docs(path):
    try:
        with open(path) as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        problem(path, f"does not parse: {e}")
        return []


def config_ports(text, where):
    """stage -> port of <stage>.http_addr in a skyprof.yaml."""
    try:
        cfg = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        problem(where, f"skyprof.yaml does not parse: {e}")
        return {}
    ports = {}
    for stage, key in CONFIG_PORT_KEY.items():
        addr = (cfg.get(key) or {}).get("http_addr") or ""
        if addr:
            ports[stage] = int(addr.rsplit(":", 1)[1])
    return ports


def policy_selects(policy, labels):
    spec = policy.get("spec") or {}
    if "Ingress" not in (spec.get("policyTypes") or ["Ingress"]):
        return False
    sel = (spec.get("podSelector") or {}).get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in sel.items())


def check_port_policies(where, labels, containers, policies):
    """Every declared container port is under a policy, never open to all."""
    selecting = [p for p in policies if policy_selects(p, labels)]
    for c in containers:
        for p in c.get("ports") or []:
            number, name = p.get("containerPort"), p.get("name")
            w = f"{where}/{c.get('name')} port {name or number}"
            if not selecting:
                problem(w, "no NetworkPolicy selects this pod")
                continue
            covered = False
            for pol in selecting:
                for rule in (pol.get("spec") or {}).get("ingress") or []:
                    rports = [x.get("port") for x in rule.get("ports") or []]
                    if rports and number not in rports and name not in rports:
                        continue
                    covered = True
                    if not rule.get("from"):
                        problem(w, f"NetworkPolicy {pol['metadata']['name']} "
                                   "admits it from everywhere")
            if not covered:
                problem(w, "no NetworkPolicy rule admits it (unreachable)")


def api_binds_everywhere(cfg_text):
    try:
        cfg = yaml.safe_load(cfg_text) or {}
    except yaml.YAMLError:
        return False
    addr = str((cfg.get("aggregator") or {}).get("http_addr") or "")
    return bool(addr) and addr.rsplit(":", 1)[0] in WILDCARD_HOSTS


def check_container(where, c, pod_volumes, host_pid, cfg_ports, names):
    stage = stage_of(c)
    w = f"{where}/{c.get('name')}"
    if stage not in STAGE_CAPS:
        problem(w, f"image {c.get('image')!r} is not a skyprof stage image")
        return stage
    for field in ("name", "image"):
        if not c.get(field):
            problem(w, f"no {field}")
    res = c.get("resources") or {}
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in (res.get(kind) or {}):
                problem(w, f"no resources.{kind}.{r}")
    ports = {}
    for p in c.get("ports") or []:
        if "name" in p:
            if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?", p["name"]):
                problem(w, f"port name {p['name']!r} is not a valid IANA_SVC_NAME")
            if p["name"] in names:
                problem(w, f"port name {p['name']!r} used twice in the pod")
            names.add(p["name"])
            ports[p["name"]] = p["containerPort"]
    for probe in ("livenessProbe", "readinessProbe"):
        get = ((c.get(probe) or {}).get("httpGet")) or {}
        if get.get("path") != "/healthz":
            problem(w, f"{probe} is not an httpGet of /healthz")
            continue
        port = get.get("port")
        number = ports.get(port, port)
        if not isinstance(number, int):
            problem(w, f"{probe} port {port!r} is not a port of this container")
        elif stage in cfg_ports and cfg_ports[stage] != number:
            problem(w, f"{probe} probes {number}, config serves {cfg_ports[stage]}")
    sc = c.get("securityContext") or {}
    if sc.get("readOnlyRootFilesystem") is not True:
        problem(w, "root filesystem not read-only")
    if sc.get("allowPrivilegeEscalation") is not False:
        problem(w, "allowPrivilegeEscalation not false")
    if sc.get("privileged"):
        problem(w, "privileged")
    caps = sc.get("capabilities") or {}
    if [x.upper() for x in caps.get("drop") or []] != ["ALL"]:
        problem(w, "capabilities not dropped (drop: [ALL])")
    added = {x.upper() for x in caps.get("add") or []}
    if not added <= STAGE_CAPS[stage]:
        problem(w, f"adds {sorted(added - STAGE_CAPS[stage])} beyond what {stage} needs")
    if not added and (sc.get("runAsUser") != 10001 or sc.get("runAsNonRoot") is not True):
        problem(w, "holds no capabilities yet does not run as uid 10001 (runAsNonRoot)")
    seccomp = (sc.get("seccompProfile") or {}).get("type")
    allowed = ("Unconfined", "Localhost") if stage == "collector" else ("RuntimeDefault",)
    if seccomp not in allowed:
        problem(w, f"seccompProfile {seccomp!r}")
    if stage == "collector" and not host_pid:
        problem(w, "collector without hostPID")
    if stage in NO_HOST_PID_STAGES and host_pid:
        problem(w, f"{stage} in a hostPID pod (hostPID is pod-wide: give it "
                   "a pod of its own)")
    mounts = {m["name"] for m in c.get("volumeMounts") or []}
    for m in sorted(mounts - pod_volumes):
        problem(w, f"mounts undeclared volume {m!r}")
    if "config" not in mounts:
        problem(w, "does not mount the config volume")
    for e in c.get("env") or []:
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            yield_ref = ("Secret", ref.get("name"))
            c.setdefault("_refs", []).append(yield_ref)
    return stage


def check_k8s(layout_dir, bin_dir):
    docs = []
    for path in sorted(glob.glob(os.path.join(layout_dir, "*.yaml"))):
        if os.path.basename(path) == "kustomization.yaml":
            continue
        docs += [(path, d) for d in load_docs(path)]
    kust = os.path.join(layout_dir, "kustomization.yaml")
    resources = []
    if os.path.exists(kust):
        for d in load_docs(kust):
            for r in d.get("resources") or []:
                rp = os.path.normpath(os.path.join(layout_dir, r))
                if not os.path.exists(rp):
                    problem(kust, f"resource {r} does not exist")
                elif os.path.isdir(rp):
                    resources.append(rp)
    for sub in resources:
        if sub != layout_dir:
            for path in sorted(glob.glob(os.path.join(sub, "*.yaml"))):
                if os.path.basename(path) != "kustomization.yaml":
                    docs += [(path, d) for d in load_docs(path)]

    objects = {}
    for path, d in docs:
        where = f"{os.path.relpath(path, TOP)}:{d.get('kind')}/{(d.get('metadata') or {}).get('name')}"
        for field in ("apiVersion", "kind", "metadata"):
            if field not in d:
                problem(where, f"no {field}")
        md = d.get("metadata") or {}
        if not md.get("name"):
            problem(where, "no metadata.name")
        if d.get("kind") in CLUSTER_SCOPED:
            if md.get("namespace"):
                problem(where, "cluster-scoped object with a namespace")
        elif md.get("namespace") != "skyprof":
            problem(where, "not in namespace skyprof")
        objects[(d.get("kind"), md.get("name"))] = (where, d)

    cfg_ports_by_map = {}
    open_api_maps = set()
    for (kind, name), (where, d) in objects.items():
        if kind == "ConfigMap" and "skyprof.yaml" in (d.get("data") or {}):
            text = d["data"]["skyprof.yaml"]
            cfg_ports_by_map[name] = config_ports(text, where)
            if api_binds_everywhere(text):
                open_api_maps.add(name)
            if bin_dir:
                check_config_with_stage(where, text, bin_dir)

    stages_seen = set()
    for (kind, name), (where, d) in objects.items():
        if kind not in WORKLOAD_KINDS:
            continue
        spec = d.get("spec") or {}
        tmpl = spec.get("template") or {}
        sel = ((spec.get("selector") or {}).get("matchLabels")) or {}
        labels = ((tmpl.get("metadata") or {}).get("labels")) or {}
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            problem(where, "selector does not match the pod template labels")
        pod = tmpl.get("spec") or {}
        if pod.get("automountServiceAccountToken") is not False:
            problem(where, "mounts a service account token no stage uses")
        sa = pod.get("serviceAccountName")
        if sa and ("ServiceAccount", sa) not in objects:
            problem(where, f"service account {sa} not defined")
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        cfg_ports = {}
        for v in volumes.values():
            cm = (v.get("configMap") or {}).get("name")
            if cm:
                if ("ConfigMap", cm) not in objects:
                    problem(where, f"ConfigMap {cm} not defined")
                cfg_ports.update(cfg_ports_by_map.get(cm, {}))
        host_pid = bool(pod.get("hostPID"))
        names = set()
        stages = set()
        policies = [d for (k, _), (_, d) in objects.items() if k == "NetworkPolicy"]
        check_port_policies(where, labels, pod.get("containers") or [], policies)
        maps = {(v.get("configMap") or {}).get("name") for v in volumes.values()}
        for c in pod.get("containers") or []:
            st = check_container(where, c, set(volumes), host_pid, cfg_ports, names)
            stages.add(st)
            token = [e for e in c.get("env") or []
                     if e.get("name") == "SKYPROF_AGGREGATOR_AUTH_TOKEN"
                     and (e.get("valueFrom") or {}).get("secretKeyRef")]
            if st == "aggregator" and maps & open_api_maps and not token:
                problem(f"{where}/{c.get('name')}", "API bound on every address "
                        "without SKYPROF_AGGREGATOR_AUTH_TOKEN from a Secret")
            for kind_ref, ref in c.pop("_refs", []):
                if (kind_ref, ref) not in objects:
                    problem(where, f"{kind_ref} {ref} not defined")
        stages_seen |= stages
        check_discovery(where, pod, sa, objects)
        if host_pid and not stages & HOST_PID_STAGES:
            problem(where, "hostPID without a stage that needs it")
    if "collector" not in stages_seen:
        problem(layout_dir, "no collector in this layout")

    kubectl = shutil.which("kubectl")
    if kubectl and os.path.exists(kust):
        r = subprocess.run([kubectl, "kustomize", layout_dir],
                           capture_output=True, text=True)
        if r.returncode != 0:
            problem(kust, f"kubectl kustomize failed: {r.stderr.strip()}")
    return len(objects)


def env_value(c, name):
    for e in c.get("env") or []:
        if e.get("name") == name:
            return e.get("value"), (e.get("valueFrom") or {})
    return None, {}


def discovery_roles(sa, objects):
    """The ClusterRoles bound to ServiceAccount skyprof/sa."""
    roles = set()
    for (kind, _), (_, d) in objects.items():
        if kind != "ClusterRoleBinding":
            continue
        ref = d.get("roleRef") or {}
        for s in d.get("subjects") or []:
            if (s.get("kind"), s.get("name"), s.get("namespace")) == (
                    "ServiceAccount", sa, "skyprof") and ref.get("kind") == "ClusterRole":
                roles.add(ref.get("name"))
    return roles


def grants_discovery(role):
    granted = {}
    for rule in role.get("rules") or []:
        if "" not in (rule.get("apiGroups") or []):
            continue
        for r in rule.get("resources") or []:
            granted.setdefault(r, set()).update(rule.get("verbs") or [])
    return all(DISCOVERY_VERBS <= granted.get(r, set())
               for r in DISCOVERY_RESOURCES)


def check_discovery(where, pod, sa, objects):
    """An uplink with Kubernetes discovery: its service account is bound to
    a ClusterRole with get/list/watch on pods, services, endpoints and
    nodes; the token is projected into the uplink container alone; the node
    name comes from spec.nodeName for the uplink and the collector."""
    containers = pod.get("containers") or []
    uplinks = [c for c in containers if stage_of(c) == "uplink"
               and env_value(c, DISCOVERY_ENV)[0] == "true"]
    token_vols = {v["name"] for v in pod.get("volumes") or []
                  if any("serviceAccountToken" in src
                         for src in (v.get("projected") or {}).get("sources") or [])}
    for c in containers:
        mounted = {m["name"] for m in c.get("volumeMounts") or []}
        if mounted & token_vols and c not in uplinks:
            problem(f"{where}/{c.get('name')}",
                    "mounts the service-account token without Kubernetes discovery")
    if not uplinks:
        return
    if not sa:
        problem(where, "Kubernetes discovery without a serviceAccountName")
    elif not any(grants_discovery(objects[("ClusterRole", r)][1])
                 for r in discovery_roles(sa, objects)
                 if ("ClusterRole", r) in objects):
        problem(where, f"service account {sa} is not bound to a ClusterRole "
                "granting get/list/watch on pods, services, endpoints, nodes")
    for c in uplinks:
        w = f"{where}/{c.get('name')}"
        mounts = {m["name"]: m for m in c.get("volumeMounts") or []}
        if not any(n in token_vols and m.get("mountPath") == SA_TOKEN_DIR
                   and m.get("readOnly") for n, m in mounts.items()):
            problem(w, f"Kubernetes discovery without a projected token "
                    f"mounted read-only at {SA_TOKEN_DIR}")
    for c in containers:
        if stage_of(c) not in ("uplink", "collector"):
            continue
        for name in ("SKYPROF_NODE_NAME",) + (
                ("SKYPROF_PROCESS_DISCOVERY_KUBERNETES_NODE_NAME",)
                if c in uplinks else ()):
            _, src = env_value(c, name)
            if (src.get("fieldRef") or {}).get("fieldPath") != "spec.nodeName":
                problem(f"{where}/{c.get('name')}",
                        f"{name} is not taken from spec.nodeName")


def check_config_with_stage(where, text, bin_dir):
    exe = os.path.join(bin_dir, "skyprof-broker")
    if not os.access(exe, os.X_OK):
        problem(where, f"{exe} not built; cannot load the configuration")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(text)
        f.flush()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SKYPROF_", "ROVER_"))}
        r = subprocess.run([exe, "--config", f.name, "--print-config"],
                           capture_output=True, text=True, env=env)
    if r.returncode != 0:
        problem(where, f"skyprof.yaml rejected by the stage: {(r.stderr or r.stdout).strip()}")
    elif "warn" in r.stderr.lower():
        problem(where, f"skyprof.yaml warnings: {r.stderr.strip()}")


def check_compose(path):
    docs = load_docs(path)
    if len(docs) != 1:
        problem(path, "expected one YAML document")
        return 0
    services = docs[0].get("services") or {}
    for name, svc in services.items():
        w = f"{os.path.relpath(path, TOP)}:{name}"
        image = svc.get("image") or ""
        m = re.search(r"skyprof\}?-([a-z]+):", image)
        stage = m.group(1) if m else None
        if stage not in STAGE_CAPS:
            problem(w, f"image {image!r} is not a skyprof stage image")
            continue
        if [x.upper() for x in svc.get("cap_drop") or []] != ["ALL"]:
            problem(w, "cap_drop is not [ALL]")
        added = {x.upper() for x in svc.get("cap_add") or []}
        if not added <= STAGE_CAPS[stage]:
            problem(w, f"adds {sorted(added - STAGE_CAPS[stage])}")
        if svc.get("privileged"):
            problem(w, "privileged")
        if stage in HOST_PID_STAGES and svc.get("pid") != "host":
            problem(w, "needs pid: host")
        if stage not in HOST_PID_STAGES and "pid" in svc:
            problem(w, "pid namespace it does not need")
        user = str(svc.get("user", ""))
        if stage != "collector" and not added and user != "10001":
            problem(w, f"user {user!r}: stages without capabilities run as 10001")
        if svc.get("read_only") is not True:
            problem(w, "root filesystem not read-only")
        for port in svc.get("ports") or []:
            # ${VAR:-default} -> default: what an unset environment gives.
            bind = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(port)).split(":")
            if len(bind) != 3 or ("127.0.0.1" not in bind[0] and "::1" not in bind[0]):
                problem(w, f"published port {port!r} does not default to a "
                           "loopback host address")
        env = svc.get("environment") or {}
        for k in ("SKYPROF_BUS_IN", "SKYPROF_BUS_OUT"):
            if not str(env.get(k, "")).startswith("tcp://"):
                problem(w, f"{k} is not a tcp:// endpoint")
    return len(services)


def check_seccomp(path):
    """The collector's profile parses, filters, and lets it load BPF."""
    import json
    try:
        with open(path) as f:
            prof = json.load(f)
    except (OSError, ValueError) as e:
        problem(path, f"does not load: {e}")
        return
    denied = set()
    for rule in prof.get("syscalls") or []:
        if rule.get("action") != "SCMP_ACT_ALLOW":
            denied |= set(rule.get("names") or [])
    if prof.get("defaultAction") == "SCMP_ACT_ALLOW" and not denied:
        problem(path, "filters nothing")
    for needed in ("bpf", "perf_event_open", "openat", "read", "mmap"):
        if needed in denied:
            problem(path, f"denies {needed}, which the collector needs")
    for escape in ("mount", "setns", "unshare", "init_module", "finit_module",
                   "kexec_load", "open_by_handle_at"):
        if escape not in denied:
            problem(path, f"does not deny {escape}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", help="build/bin: load configurations with a real stage")
    args = ap.parse_args()
    counts = {}
    for layout in sorted(glob.glob(os.path.join(HERE, "*", "kustomization.yaml"))):
        d = os.path.dirname(layout)
        if os.path.basename(d) == "common":
            continue
        counts[os.path.relpath(d, TOP)] = check_k8s(d, args.bin_dir)
    compose = os.path.join(TOP, "deploy", "compose", "docker-compose.yml")
    counts[os.path.relpath(compose, TOP)] = check_compose(compose)
    check_seccomp(os.path.join(TOP, "deploy", "compose", "collector-seccomp.json"))
    if args.bin_dir:
        with open(os.path.join(TOP, "deploy", "images", "skyprof.yaml")) as f:
            check_config_with_stage("deploy/images/skyprof.yaml", f.read(), args.bin_dir)
    for p in problems:
        print(f"validate: {p}", file=sys.stderr)
    summary = ", ".join(f"{k}: {n} objects" for k, n in counts.items())
    print(f"validate: {'FAILED' if problems else 'ok'} ({summary})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
