/* The protobuf shapes of continuous profiling (proto/Continuous.proto,
 * proto/Meter.proto; commands as the OAP's ContinuousProfilingPolicyCommand
 * and ContinuousProfilingReportCommand write them, apache/skywalking
 * apm-protocol/apm-network):
 *
 *   queryPolicies       ContinuousProfilingPolicyQuery -> Commands with
 *                       ContinuousProfilingPolicyQuery{ServiceWithPolicyJSON}
 *   reportProfilingTask ContinuousProfilingReport -> Commands with
 *                       ContinuousProfilingReportTask{TaskId}
 *   collectBatch        stream MeterDataCollection -> Commands
 *
 * Encoders append nothing to shared state: they pack into *buf (grown
 * with realloc) and return 0 with *len set, or -1 when memory ran out.
 * Readers never trust the reply: a malformed command is skipped and
 * counted. */
#ifndef SKYPROF_UPLINK_CONTPROTO_H
#define SKYPROF_UPLINK_CONTPROTO_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "finder.h"
#include "wire.h"

/* Packs msg into *buf, grown with realloc as needed (the uplink's
 * encoders all pack this way). 0, or -1 when memory ran out. */
int contproto_pack(const ProtobufCMessage *msg, uint8_t **buf, size_t *cap,
                   size_t *len);

int contproto_encode_policy_query(const char *const *services,
                                  const char *const *uuids, size_t n,
                                  uint8_t **buf, size_t *cap, size_t *len);

/* Called with each ServiceWithPolicyJSON argument, in reply order. */
typedef void (*contproto_policy_fn)(void *arg, const char *json);

/* Hands every ContinuousProfilingPolicyQuery command's document to fn;
 * *invalid counts such commands without the argument. -1 when reply is
 * not a Commands message at all. */
int contproto_each_policy(const uint8_t *reply, size_t len,
                          contproto_policy_fn fn, void *arg,
                          uint32_t *invalid);

/* The report of a trigger for the process with this entity: causes
 * (singleValue, or uri{regex|path} for the HTTP ones), duration in whole
 * seconds (rounded up), and the target task; a NETWORK target samples the
 * URI regexes of the HTTP causes. */
int contproto_encode_report(const wire_trigger_t *trigger,
                            const proc_entity_t *entity, uint8_t **buf,
                            size_t *cap, size_t *len);

/* The TaskId of the ContinuousProfilingReportTask command in a
 * reportProfilingTask reply into out: 0 found, 1 no such command (or no
 * usable TaskId), -1 not a Commands message. */
int contproto_report_task_id(const uint8_t *reply, size_t len, char *out,
                             size_t size);

/* One meter of a collection. */
typedef struct {
    const char *name;
    double value;
    const char *process_name;
    const char *layer;
    const char *uri;           /* "" or NULL: no uri label */
} contproto_meter_t;

/* MeterDataCollection of singleValue meters with labels process_name,
 * layer (and uri when set); service, serviceInstance and timestamp on the
 * first MeterData only, as the OAP expects. */
int contproto_encode_meters(const contproto_meter_t *meters, size_t n,
                            const char *service, const char *instance,
                            int64_t ts_ms, uint8_t **buf, size_t *cap,
                            size_t *len);

#endif
