/* GET /api/network: the network room's local view (aggregator/net,
 * net_view_json) of this replica's processes, or one process's. */
#include <stdlib.h>

#include "aggregator/http/request.h"
#include "aggregator/http/routes.h"

void
api_network(api_request_t *req, api_reply_t *r)
{
    uint64_t pid = 0;
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
    if (!json) {
        api_reply_error(r, 500, "out of memory");
        return;
    }
    api_reply_take(r, json, len, "application/json");
}
