/* GET /api/network: the network room's local view (aggregator/net,
 * net_view_json) of this replica's processes, or one process's; with
 * replicas, every live peer's view (asked with local=1) merged in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/http/request.h"
#include "aggregator/http/routes.h"

/* The peers' views, kept until they are merged. */
typedef struct {
    char *docs[AGG_REPLICAS_MAX + 1];
    size_t lens[AGG_REPLICAS_MAX + 1];
    size_t n;
} s_parts_t;

static int
s_take(void *arg, const char *body, size_t len)
{
    s_parts_t *p = arg;
    long bad = 0;
    size_t mlen = 0;
    /* a part that is no view is refused now, so partial names its peer */
    const char *one[1] = { body };
    char *check = net_view_merge(one, &len, 1, &mlen, &bad);
    if (!check || p->n == AGG_REPLICAS_MAX + 1) {
        free(check);
        return -1;
    }
    p->docs[p->n] = check;
    p->lens[p->n++] = mlen;
    return 0;
}

void
api_network(api_request_t *req, api_reply_t *r)
{
    uint64_t pid = 0;
    s_parts_t parts;
    memset(&parts, 0, sizeof(parts));
    const char *arg = api_arg(req, "pid");
    if (arg && (api_parse_u64(arg, &pid) || pid > UINT32_MAX)) {
        api_reply_error(r, 400, "pid: not a process id");
        return;
    }
    if (!req->net) {
        api_reply_error(r, 503, "no network room in this stage");
        return;
    }
    size_t len = 0;
    char *json = net_view_json(req->net, (uint32_t)pid, &len);
    if (json && req->fanout) {
        char path[128];
        snprintf(path, sizeof(path), "/api/network?local=1&pid=%llu",
                 (unsigned long long)pid);
        parts.docs[parts.n] = json;
        parts.lens[parts.n++] = len;
        agg_fanout_each(req->fanout, path, s_take, &parts, r->partial,
                        sizeof(r->partial));
        long bad = 0;
        json = parts.n > 1
                   ? net_view_merge((const char *const *)parts.docs,
                                    parts.lens, parts.n, &len, &bad)
                   : parts.docs[0];
        if (parts.n > 1)
            for (size_t i = 0; i < parts.n; i++)
                free(parts.docs[i]);
    }
    if (!json) {
        api_reply_error(r, 500, "out of memory");
        return;
    }
    api_reply_take(r, json, len, "application/json");
}
