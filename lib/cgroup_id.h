/* Container ids: which container a process runs in, from the text of its
 * /proc/PID/cgroup, and the same id as the Kubernetes API spells it
 * (status.containerStatuses[].containerID = "<runtime>://<id>"). */
#ifndef SKYPROF_CGROUP_ID_H
#define SKYPROF_CGROUP_ID_H

#include <stddef.h>
#include <stdint.h>

/* A container id is 64 hex digits; buffers hold it and its NUL. */
#define CGROUP_ID_LEN 65

/* The container id named in a cgroup file's text, "" when none. Covers the
 * containerd, CRI-O, Docker and podman layouts under cgroup v1, v2 and
 * hybrid hierarchies: the last 64-hex run that is a whole word of a path
 * component (cri-containerd-<id>.scope, crio-<id>.scope,
 * docker-<id>.scope, libpod-<id>.scope, /kubepods/.../<id>, /docker/<id>),
 * nested cgroups ending with the innermost container. Components of a
 * runtime's monitor (crio-conmon-<id>.scope, libpod-conmon-<id>.scope)
 * are not the container: their processes get "". */
void cgroup_container_id(const char *cgroup_text, char *out, size_t size);

/* Reading proc_root/PID/cgroup: procfacts_container_id (lib/procfacts.h). */

/* The id part of a Kubernetes containerID ("containerd://<id>",
 * "cri-o://<id>", "docker://<id>", or a bare id), lower-cased into out;
 * -1 (out = "") when it is not 64 hex digits. */
int cgroup_id_from_k8s(const char *container_id, char *out, size_t size);

#endif
