/* Bus intake: decode each message by topic into the decode arena,
 * validate, note its sequence number and hand it to the core. A message
 * that fails is counted and logged (rate-limited), never fatal. */
#include <stdio.h>
#include <string.h>

#include "aggregator/core/agg_int.h"
#include "aggregator/core/handover.h"

static int
s_starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The pid bucket a sharded topic names ("sym.stacks.07" -> 7), or -1. */
static int
s_topic_bucket(const char *topic, const char *prefix)
{
    const char *d = topic + strlen(prefix);
    if (d[0] < '0' || d[0] > '9' || d[1] < '0' || d[1] > '9' || d[2])
        return -1;
    int b = (d[0] - '0') * 10 + (d[1] - '0');
    return b < WIRE_BUCKETS ? b : -1;
}

static void
s_invalid(agg_t *self, bus_t *bus, const char *topic, const char *err)
{
    if (bus)
        bus_count_invalid(bus, topic);
    stats_inc(self->m_invalid);
    log_warn_rl(&self->rl, "dropped a malformed %s message: %s", topic, err);
}

int
agg_intake(agg_t *self, bus_t *bus, const char *topic, const void *payload,
           size_t len)
{
    char err[256] = "";
    int rc = -1;
    const wire_header_t *hdr = NULL;
    arena_reset(self->arena);

    if (s_starts(topic, TOPIC_SYM_STACKS)) {
        wire_sym_batch_t m;
        if (wire_decode_sym_batch(payload, len, self->arena, &m, err,
                                  sizeof(err)))
            goto invalid;
        hdr = &m.hdr;
        if (bus)
            bus_note_seq(bus, topic, hdr->sender, hdr->seq);
        int bucket = -1;
        if (self->handover) {
            /* Replicas: only what this one counts, once (handover.h). */
            bucket = s_topic_bucket(topic, TOPIC_SYM_STACKS);
            if (bucket < 0) {
                snprintf(err, sizeof(err), "topic names no pid bucket");
                goto invalid;
            }
            if (agg_handover_admit(self->handover, (uint32_t)bucket, topic,
                                   m.origin_sender, m.origin_seq, payload,
                                   len) != AGG_ADMIT_COUNT) {
                rc = 0;
                goto cleanup;
            }
        }
        if (origin_dedup_check(self->dedup, topic, m.origin_sender,
                               m.origin_seq)) {
            stats_inc(self->m_duplicates);
            rc = 0;
            goto cleanup;
        }
        rc = agg_ingest_sym(self, &m);
        if (rc == 0 && self->handover)
            agg_handover_counted(self->handover, (uint32_t)bucket,
                                 m.origin_sender, m.origin_seq);
    } else if (strcmp(topic, TOPIC_PROC_EVENTS) == 0) {
        wire_proc_events_t m;
        if (wire_decode_proc_events(payload, len, self->arena, &m, err,
                                    sizeof(err)))
            goto invalid;
        if (bus)
            bus_note_seq(bus, topic, m.hdr.sender, m.hdr.seq);
        agg_ingest_proc_events(self, &m);
        rc = 0;
    } else if (strcmp(topic, TOPIC_K8S_CONTAINERS) == 0) {
        wire_k8s_containers_t m;
        if (wire_decode_k8s_containers(payload, len, self->arena, &m, err,
                                       sizeof(err)))
            goto invalid;
        if (bus)
            bus_note_seq(bus, topic, m.hdr.sender, m.hdr.seq);
        agg_ingest_k8s(self, &m);
        rc = 0;
    } else if (strcmp(topic, TOPIC_CTL_TASKS) == 0) {
        wire_task_set_t m;
        if (wire_decode_task_set(payload, len, self->arena, &m, err,
                                 sizeof(err)))
            goto invalid;
        if (bus)
            bus_note_seq(bus, topic, m.hdr.sender, m.hdr.seq);
        agg_ingest_tasks(self, &m);
        rc = 0;
    } else if (s_starts(topic, TOPIC_STATS)) {
        wire_stats_t m;
        if (wire_decode_stats(payload, len, self->arena, &m, err,
                              sizeof(err)))
            goto invalid;
        if (bus)
            bus_note_seq(bus, topic, m.hdr.sender, m.hdr.seq);
        agg_ingest_stats(self, &m);
        rc = 0;
    } else {
        /* Subscriptions are prefixes; anything else is not ours. */
        rc = 0;
    }
    goto cleanup;
invalid:
    s_invalid(self, bus, topic, err);
cleanup:
    arena_reset(self->arena);
    return rc;
}
