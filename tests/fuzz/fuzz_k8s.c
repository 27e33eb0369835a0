/* Kubernetes discovery's readers of outside input: API objects (the pod
 * table, uplink/k8s_meta.c) and /proc/PID/cgroup text (lib/cgroup_id.c).
 * The first byte picks what the rest is fed as: a pod, Service or
 * Endpoints object added then deleted, or a cgroup file. Any input is
 * refused or kept within the table's bounds; lookups of what was kept
 * find it; nothing crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "cgroup_id.h"
#include "json.h"
#include "uplink/k8s_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0] % 4;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (mode == 3) {
        char *copy = malloc(len + 1);
        char id[CGROUP_ID_LEN];
        if (!copy)
            return 0;
        memcpy(copy, text, len);
        copy[len] = '\0';
        cgroup_container_id(copy, id, sizeof id);
        if (id[0] && strlen(id) != CGROUP_ID_LEN - 1)
            __builtin_trap();       /* an id is 64 hex digits or nothing */
        cgroup_id_from_k8s(copy, id, sizeof id);
        free(copy);
        return 0;
    }
    char err[128];
    arena_t *arena = arena_new(len * 8 + 65536);
    k8s_meta_t *meta = k8s_meta_new(data[0] & 4 ? "ns,other" : "");
    json_value_t *obj = arena && meta
                            ? json_parse(text, len, arena, err, sizeof err)
                            : NULL;
    if (obj) {
        k8s_kind_t kind = (k8s_kind_t)mode;
        k8s_meta_list_begin(meta, kind);
        int rc = k8s_meta_put(meta, kind, obj, 1);
        if (rc == 0 && kind == K8S_POD) {
            const k8s_pod_t *p = k8s_meta_pod_at(meta, 0);
            for (size_t c = 0; p && c < p->ncontainers; c++)
                if (p->containers[c].id[0] &&
                    !k8s_meta_find(meta, p->containers[c].id, NULL))
                    __builtin_trap();   /* a kept container is found */
            if (p)
                (void)k8s_meta_service_of(meta, p);
        }
        k8s_meta_list_end(meta, kind, 2);
        k8s_meta_delete(meta, kind, obj, 3);
        k8s_meta_expire(meta, 3 + K8S_DELETED_KEEP_MS);
        if (k8s_meta_count(meta, kind) != 0)
            __builtin_trap();           /* deleted and expired: gone */
    }
    k8s_meta_destroy(&meta);
    arena_destroy(&arena);
    return 0;
}
