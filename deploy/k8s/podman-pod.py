#!/usr/bin/env python3
"""Renders the node layout's node pod (deploy/k8s/node/daemonset.yaml) as a
Pod for `podman kube play`, to try the Kubernetes manifests on one machine
without a cluster (the uplink's own DaemonSet, uplink.yaml, is left out: in
local mode, as here, the pipeline needs no uplink):

    python3 deploy/k8s/podman-pod.py --tag latest --api-port 8080 > /tmp/skyprof-pod.yaml
    CONTAINERS_CONF=$PWD/deploy/compose/podman-compose.conf podman kube play /tmp/skyprof-pod.yaml
    curl 'http://127.0.0.1:8080/api/folded?app_service=...'
    podman kube down /tmp/skyprof-pod.yaml && podman volume rm skyprof-node-config

What podman 4.3 (Debian 12) does not take from the manifest is translated:
the DaemonSet becomes a Pod; fieldRef spec.nodeName becomes this host's
name; seccompProfile Unconfined becomes podman's per-container seccomp
annotation; hostPID is not applied by podman 4.3's kube play, which is why
the containers.conf above puts the containers in the host pid namespace;
the aggregator's API gets a hostPort; without a cluster there is no API
server, so Kubernetes process discovery is switched off and its projected
service-account token volume left out. Everything else (images, commands,
capabilities, users, read-only roots, the ConfigMap, volumes) is used as
written.
"""
import argparse
import os
import socket
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tag", default="latest", help="image tag (build.sh's SKYPROF_IMAGE_TAG)")
    ap.add_argument("--api-port", type=int, default=8080, help="host port of the API")
    ap.add_argument("--name", default="skyprof-node", help="pod name")
    args = ap.parse_args()

    with open(os.path.join(HERE, "node", "daemonset.yaml")) as f:
        ds = yaml.safe_load(f)
    with open(os.path.join(HERE, "node", "configmap.yaml")) as f:
        cm = yaml.safe_load(f)
    cm["metadata"].pop("namespace", None)
    # podman keeps a ConfigMap volume as a named volume after `kube down`;
    # naming it after the pod keeps trials apart and easy to remove
    # (podman volume rm NAME-config).
    old_cm = cm["metadata"]["name"]
    cm["metadata"]["name"] = f"{args.name}-config"
    spec = ds["spec"]["template"]["spec"]
    for v in spec.get("volumes") or []:
        if (v.get("configMap") or {}).get("name") == old_cm:
            v["configMap"]["name"] = cm["metadata"]["name"]
    for key in ("serviceAccountName", "tolerations"):
        spec.pop(key, None)
    token_vols = {v["name"] for v in spec.get("volumes") or []
                  if "projected" in v}
    spec["volumes"] = [v for v in spec.get("volumes") or []
                       if v["name"] not in token_vols]
    annotations = {}
    for c in spec["containers"]:
        image, _, _ = c["image"].rpartition(":")
        c["image"] = f"{image}:{args.tag}"
        c["volumeMounts"] = [m for m in c.get("volumeMounts") or []
                             if m["name"] not in token_vols]
        for e in c.get("env") or []:
            if e.get("name") == "SKYPROF_PROCESS_DISCOVERY_KUBERNETES_ACTIVE":
                e["value"] = "false"
            ref = (e.get("valueFrom") or {}).get("fieldRef")
            if ref and ref.get("fieldPath") == "spec.nodeName":
                e.pop("valueFrom")
                e["value"] = socket.gethostname()
        sc = c.get("securityContext") or {}
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            annotations[f"container.seccomp.security.alpha.kubernetes.io/{c['name']}"] = "unconfined"
        for p in c.get("ports") or []:
            if p.get("name") == "api":
                p["hostPort"] = args.api_port
                p["hostIP"] = "127.0.0.1"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": args.name,
            "labels": ds["spec"]["template"]["metadata"]["labels"],
            "annotations": annotations,
        },
        "spec": spec,
    }
    yaml.safe_dump_all([cm, pod], sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
