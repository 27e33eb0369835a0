/* The protobuf shapes of network profiling: what one net.report (lib/wire.h,
 * docs/network.md) becomes for the OAP, as the reference agent
 * (apache/skywalking-rover, pkg/profiling/task/network) sends it:
 *
 *   MeterReportService/collectBatch        one MeterDataCollection per
 *       (service, instance): singleValue or histogram meters named
 *       <prefix>_<name>, labels {role}_process_id = the OAP's id of the
 *       local process, the peer as {peer role}_process_id (a process of the
 *       same service instance), {peer role}_local = true (elsewhere on this
 *       host) or {peer role}_address = ip:port, then the room's labels
 *       (side, protocol, is_ssl, code) in their order;
 *   LogReportService/collect               one LogData per sampled request,
 *       tag LOG_KIND = NET_PROFILING_SAMPLED_TRACE, the trace id, a JSON
 *       body {uri, reason, latency, trace_provider, client_process,
 *       server_process, detect_point, component, ssl, status};
 *   SpanAttachedEventReportService/collect "HTTP Request Sampling" and
 *       "HTTP Response Sampling" events of that request (when the room kept
 *       its bytes), tags data_size, data_content, data_direction,
 *       data_type, connection_role, service_name, service_instance_name,
 *       process_name.
 *
 * Encoders pack into *buf (grown with realloc) and return 0 with *len set,
 * or -1 when memory ran out. Strings from the captured traffic (URIs,
 * bodies) are made valid UTF-8 first: the OAP refuses a message whose
 * string fields are not. */
#ifndef SKYPROF_UPLINK_NETPROTO_H
#define SKYPROF_UPLINK_NETPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "finder.h"
#include "wire.h"

#define NETPROTO_LOG_KIND "NET_PROFILING_SAMPLED_TRACE"

/* What the OAP knows of a local process. */
typedef struct {
    const char *process_id;        /* its processId */
    const proc_entity_t *entity;   /* as reported */
} netproto_proc_t;

/* One meter with its processes resolved. */
typedef struct {
    const wire_net_meter_t *m;
    /* The OAP's id of m->peer_pid when that process belongs to the same
     * service instance as m->pid (the OAP draws the relation between the
     * two), else NULL. */
    const char *peer_id;
} netproto_meter_t;

/* One MeterDataCollection of meters of local processes that share
 * local->entity's service and instance; local[i] is meters[i]'s process.
 * prefix: profiling.task.network.meter_prefix (no trailing '_'). */
int netproto_encode_meters(const netproto_meter_t *meters,
                           const netproto_proc_t *local, size_t n,
                           const char *prefix, int64_t ts_ms, uint8_t **buf,
                           size_t *cap, size_t *len);

/* The LogData of one sampled request seen by local; peer_id as in
 * netproto_meter_t. */
int netproto_encode_log(const wire_net_sample_t *s,
                        const netproto_proc_t *local, const char *peer_id,
                        int64_t ts_ms, uint8_t **buf, size_t *cap,
                        size_t *len);

/* The span event of the request (response false) or the response (true)
 * of a sampled request; 1 (nothing packed) when the room kept no bytes of
 * that half. */
int netproto_encode_event(const wire_net_sample_t *s,
                          const netproto_proc_t *local, bool response,
                          uint8_t **buf, size_t *cap, size_t *len);

/* The role names of the reference agent: "client", "server" (an unknown
 * role counts as client, as it does). */
const char *netproto_role(uint8_t role);

#endif
