/* Continuous profiling protobuf shapes: see contproto.h. */
#include "contproto.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "Command.pb-c.h"
#include "Continuous.pb-c.h"
#include "Meter.pb-c.h"
#include "commands.h"
#include "monitors.h"

#define CMD_POLICY_QUERY "ContinuousProfilingPolicyQuery"
#define CMD_REPORT_TASK  "ContinuousProfilingReportTask"

int
contproto_pack(const ProtobufCMessage *msg, uint8_t **buf, size_t *cap,
               size_t *len)
{
    size_t need = protobuf_c_message_get_packed_size(msg);
    /* +1: an empty message packs to nothing, but callers still get a
     * valid buffer. */
    if (need + 1 > *cap) {
        size_t grown_cap = *cap ? *cap : 1024;
        while (grown_cap < need + 1)
            grown_cap *= 2;
        uint8_t *grown = realloc(*buf, grown_cap);
        if (!grown)
            return -1;
        *buf = grown;
        *cap = grown_cap;
    }
    *len = protobuf_c_message_pack(msg, *buf);
    return 0;
}

/* ------------------------------------------------------------ policies */
int
contproto_encode_policy_query(const char *const *services,
                              const char *const *uuids, size_t n,
                              uint8_t **buf, size_t *cap, size_t *len)
{
    int rc = -1;
    Skywalking__V3__ContinuousProfilingServicePolicyQuery *items =
        calloc(n ? n : 1, sizeof *items);
    Skywalking__V3__ContinuousProfilingServicePolicyQuery **pitems =
        calloc(n ? n : 1, sizeof *pitems);
    if (!items || !pitems)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        skywalking__v3__continuous_profiling_service_policy_query__init(
            &items[i]);
        items[i].servicename = (char *)services[i];
        items[i].uuid = (char *)(uuids[i] ? uuids[i] : "");
        pitems[i] = &items[i];
    }
    Skywalking__V3__ContinuousProfilingPolicyQuery q =
        SKYWALKING__V3__CONTINUOUS_PROFILING_POLICY_QUERY__INIT;
    q.n_policies = n;
    q.policies = pitems;
    rc = contproto_pack(&q.base, buf, cap, len);
cleanup:
    free(items);
    free(pitems);
    return rc;
}

int
contproto_each_policy(const uint8_t *reply, size_t len,
                      contproto_policy_fn fn, void *arg, uint32_t *invalid)
{
    *invalid = 0;
    Skywalking__V3__Commands *cmds =
        skywalking__v3__commands__unpack(NULL, len, reply);
    if (!cmds)
        return -1;
    for (size_t i = 0; i < cmds->n_commands; i++) {
        const Skywalking__V3__Command *cmd = cmds->commands[i];
        if (!cmd || !cmd->command || strcmp(cmd->command, CMD_POLICY_QUERY))
            continue;
        const char *json = commands_arg(cmd, "ServiceWithPolicyJSON");
        if (!json || !*json) {
            (*invalid)++;
            continue;
        }
        fn(arg, json);
    }
    skywalking__v3__commands__free_unpacked(cmds, NULL);
    return 0;
}

/* -------------------------------------------------------------- report */
/* Whether a trigger on this monitor reports a URI cause. */
static bool
s_is_uri_cause(uint8_t type)
{
    const monitor_desc_t *m = monitors_get(type);
    return m && m->cause == MONITOR_CAUSE_URI;
}

int
contproto_encode_report(const wire_trigger_t *t, const proc_entity_t *entity,
                        uint8_t **buf, size_t *cap, size_t *len)
{
    int rc = -1;
    size_t n = t->ncauses;
    Skywalking__V3__ContinuousProfilingCause *causes =
        calloc(n ? n : 1, sizeof *causes);
    Skywalking__V3__ContinuousProfilingCause **pcauses =
        calloc(n ? n : 1, sizeof *pcauses);
    Skywalking__V3__ContinuousProfilingSingleValueCause *singles =
        calloc(n ? n : 1, sizeof *singles);
    Skywalking__V3__ContinuousProfilingURICause *uris =
        calloc(n ? n : 1, sizeof *uris);
    char **regexes = calloc(n ? n : 1, sizeof *regexes);
    if (!causes || !pcauses || !singles || !uris || !regexes)
        goto cleanup;

    size_t nregex = 0;
    for (size_t i = 0; i < n; i++) {
        const wire_cause_t *c = &t->causes[i];
        Skywalking__V3__ContinuousProfilingCause *pc = &causes[i];
        skywalking__v3__continuous_profiling_cause__init(pc);
        pc->type = (Skywalking__V3__ContinuousProfilingTriggeredMonitorType)
                       c->type;
        if (s_is_uri_cause(c->type)) {
            Skywalking__V3__ContinuousProfilingURICause *u = &uris[i];
            skywalking__v3__continuous_profiling_uricause__init(u);
            u->threshold = c->threshold;
            u->current = c->current;
            if (c->uri_regex && *c->uri_regex) {
                u->uri_case =
                    SKYWALKING__V3__CONTINUOUS_PROFILING_URICAUSE__URI_REGEX;
                u->regex = (char *)c->uri_regex;
            } else if (c->uri_path && *c->uri_path) {
                u->uri_case =
                    SKYWALKING__V3__CONTINUOUS_PROFILING_URICAUSE__URI_PATH;
                u->path = (char *)c->uri_path;
            }
            pc->cause_case =
                SKYWALKING__V3__CONTINUOUS_PROFILING_CAUSE__CAUSE_URI;
            pc->uri = u;
            /* The network task samples what the policy watched. */
            bool seen = !c->uri_regex || !*c->uri_regex;
            for (size_t r = 0; !seen && r < nregex; r++)
                seen = !strcmp(regexes[r], c->uri_regex);
            if (!seen)
                regexes[nregex++] = (char *)c->uri_regex;
        } else {
            Skywalking__V3__ContinuousProfilingSingleValueCause *sv =
                &singles[i];
            skywalking__v3__continuous_profiling_single_value_cause__init(sv);
            sv->threshold = c->threshold;
            sv->current = c->current;
            pc->cause_case =
                SKYWALKING__V3__CONTINUOUS_PROFILING_CAUSE__CAUSE_SINGLE_VALUE;
            pc->singlevalue = sv;
        }
        pcauses[i] = pc;
    }

    Skywalking__V3__ContinuousProfilingReport rep =
        SKYWALKING__V3__CONTINUOUS_PROFILING_REPORT__INIT;
    rep.layer = entity->layer;
    rep.servicename = entity->service;
    rep.instancename = entity->instance;
    rep.processname = entity->process;
    rep.n_causes = n;
    rep.causes = pcauses;
    /* Whole seconds, rounded up so a task never runs shorter than the
     * policy engine asked. */
    uint64_t secs = t->duration_ms / 1000 + (t->duration_ms % 1000 != 0);
    rep.duration = secs > INT32_MAX ? INT32_MAX : (int32_t)secs;

    Skywalking__V3__ContinuousOnCPUProfilingTask on =
        SKYWALKING__V3__CONTINUOUS_ON_CPUPROFILING_TASK__INIT;
    Skywalking__V3__ContinuousOffCPUProfilingTask off =
        SKYWALKING__V3__CONTINUOUS_OFF_CPUPROFILING_TASK__INIT;
    Skywalking__V3__ContinuousNetworkProfilingTask net =
        SKYWALKING__V3__CONTINUOUS_NETWORK_PROFILING_TASK__INIT;
    switch (t->target) {
    case WIRE_TARGET_ON_CPU:
        rep.target_task_case =
            SKYWALKING__V3__CONTINUOUS_PROFILING_REPORT__TARGET_TASK_ON_CPU;
        rep.oncpu = &on;
        break;
    case WIRE_TARGET_OFF_CPU:
        rep.target_task_case =
            SKYWALKING__V3__CONTINUOUS_PROFILING_REPORT__TARGET_TASK_OFF_CPU;
        rep.offcpu = &off;
        break;
    default:
        net.n_samplinguriregexes = nregex;
        net.samplinguriregexes = regexes;
        rep.target_task_case =
            SKYWALKING__V3__CONTINUOUS_PROFILING_REPORT__TARGET_TASK_NETWORK;
        rep.network = &net;
        break;
    }
    rc = contproto_pack(&rep.base, buf, cap, len);
cleanup:
    free(causes);
    free(pcauses);
    free(singles);
    free(uris);
    free(regexes);
    return rc;
}

int
contproto_report_task_id(const uint8_t *reply, size_t len, char *out,
                         size_t size)
{
    int rc = 1;
    Skywalking__V3__Commands *cmds =
        skywalking__v3__commands__unpack(NULL, len, reply);
    if (!cmds)
        return -1;
    for (size_t i = 0; i < cmds->n_commands; i++) {
        const Skywalking__V3__Command *cmd = cmds->commands[i];
        if (!cmd || !cmd->command || strcmp(cmd->command, CMD_REPORT_TASK))
            continue;
        const char *id = commands_arg(cmd, "TaskId");
        /* Task ids travel on the bus: the wire bound applies. */
        if (!id || !*id || strlen(id) >= size || strlen(id) > WIRE_MAX_STR)
            continue;
        snprintf(out, size, "%s", id);
        rc = 0;
        break;
    }
    skywalking__v3__commands__free_unpacked(cmds, NULL);
    return rc;
}

/* -------------------------------------------------------------- meters */
int
contproto_encode_meters(const contproto_meter_t *meters, size_t n,
                        const char *service, const char *instance,
                        int64_t ts_ms, uint8_t **buf, size_t *cap,
                        size_t *len)
{
    enum { NLABELS = 3 };
    int rc = -1;
    Skywalking__V3__MeterData *data = calloc(n ? n : 1, sizeof *data);
    Skywalking__V3__MeterData **pdata = calloc(n ? n : 1, sizeof *pdata);
    Skywalking__V3__MeterSingleValue *values =
        calloc(n ? n : 1, sizeof *values);
    Skywalking__V3__Label *labels = calloc(n * NLABELS + 1, sizeof *labels);
    Skywalking__V3__Label **plabels = calloc(n * NLABELS + 1,
                                             sizeof *plabels);
    if (!data || !pdata || !values || !labels || !plabels)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        const contproto_meter_t *m = &meters[i];
        Skywalking__V3__MeterSingleValue *v = &values[i];
        skywalking__v3__meter_single_value__init(v);
        v->name = (char *)m->name;
        v->value = m->value;
        v->labels = &plabels[i * NLABELS];
        const char *keys[NLABELS] = { "process_name", "layer", "uri" };
        const char *vals[NLABELS] = { m->process_name, m->layer, m->uri };
        for (size_t k = 0; k < NLABELS; k++) {
            if (!vals[k] || (k == 2 && !*vals[k]))
                continue;
            Skywalking__V3__Label *l = &labels[i * NLABELS + v->n_labels];
            skywalking__v3__label__init(l);
            l->name = (char *)keys[k];
            l->value = (char *)vals[k];
            v->labels[v->n_labels++] = l;
        }
        skywalking__v3__meter_data__init(&data[i]);
        data[i].metric_case = SKYWALKING__V3__METER_DATA__METRIC_SINGLE_VALUE;
        data[i].singlevalue = v;
        if (i == 0) {
            data[i].service = (char *)service;
            data[i].serviceinstance = (char *)instance;
            data[i].timestamp = ts_ms;
        }
        pdata[i] = &data[i];
    }
    Skywalking__V3__MeterDataCollection col =
        SKYWALKING__V3__METER_DATA_COLLECTION__INIT;
    col.n_meterdata = n;
    col.meterdata = pdata;
    rc = contproto_pack(&col.base, buf, cap, len);
cleanup:
    free(data);
    free(pdata);
    free(values);
    free(labels);
    free(plabels);
    return rc;
}
