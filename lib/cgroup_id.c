/* Container ids from cgroup paths and Kubernetes statuses: see
 * cgroup_id.h. */
#include "cgroup_id.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#define CGROUP_ID_HEX 64

static size_t
s_hex_run(const char *s)
{
    size_t n = 0;
    while (isxdigit((unsigned char)s[n]))
        n++;
    return n;
}

/* True when the path component holding p (from the last '/' or ':' before
 * it) names a runtime's monitor process rather than the container. */
static bool
s_in_monitor_component(const char *text, const char *p)
{
    const char *start = p;
    while (start > text && start[-1] != '/' && start[-1] != ':' &&
           start[-1] != '\n')
        start--;
    size_t len = (size_t)(p - start);
    return len >= 7 && memmem(start, len, "conmon-", 7) != NULL;
}

void
cgroup_container_id(const char *text, char *out, size_t size)
{
    if (size == 0)
        return;
    out[0] = '\0';
    for (const char *p = text; *p; p++) {
        if (!isxdigit((unsigned char)*p) ||
            (p != text && isalnum((unsigned char)p[-1])))
            continue;
        size_t n = s_hex_run(p);
        /* A whole word: 65 hex digits or "<id>x" are not an id. */
        if (n == CGROUP_ID_HEX && !isalnum((unsigned char)p[n]) &&
            !s_in_monitor_component(text, p)) {
            size_t copy = n < size - 1 ? n : size - 1;
            for (size_t i = 0; i < copy; i++)
                out[i] = (char)tolower((unsigned char)p[i]);
            out[copy] = '\0';
        }
        p += n ? n - 1 : 0;
    }
}

int
cgroup_id_from_k8s(const char *container_id, char *out, size_t size)
{
    if (size)
        out[0] = '\0';
    if (!container_id || size < CGROUP_ID_LEN)
        return -1;
    const char *sep = strstr(container_id, "://");
    const char *id = sep ? sep + 3 : container_id;
    if (strlen(id) != CGROUP_ID_HEX || s_hex_run(id) != CGROUP_ID_HEX)
        return -1;
    for (size_t i = 0; i < CGROUP_ID_HEX; i++)
        out[i] = (char)tolower((unsigned char)id[i]);
    out[CGROUP_ID_HEX] = '\0';
    return 0;
}
