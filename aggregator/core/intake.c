/* Bus intake: the core's handler for every message it receives, already
 * decoded and sequence-checked by the bus's typed edge (lib/bus.h), and
 * the same path for payloads that come from elsewhere (tests, batches the
 * hand-over replays). A message that fails is counted and logged
 * (rate-limited), never fatal. */
#include <stdio.h>
#include <string.h>

#include "aggregator/core/agg_int.h"
#include "aggregator/core/handover.h"

/* sym.stacks.BB: replicas count only their buckets, each batch once. */
static int
s_on_sym(agg_t *self, const msg_decoded_t *m)
{
    const wire_sym_batch_t *b = m->body;
    int rc = -1;

    if (self->handover) {
        /* Replicas: only what this one counts, once (handover.h). */
        if (m->bucket < 0) {
            log_warn_rl(&self->rl, "dropped a malformed %s message: topic "
                        "names no pid bucket", m->topic);
            goto cleanup;
        }
        if (agg_handover_admit(self->handover, (uint32_t)m->bucket, m->topic,
                               b->origin_sender, b->origin_seq, m->payload,
                               m->len) != AGG_ADMIT_COUNT) {
            rc = 0;
            goto cleanup;
        }
    }
    if (origin_dedup_check(self->dedup, m->topic, b->origin_sender,
                           b->origin_seq)) {
        stats_inc(self->m_duplicates);
        rc = 0;
        goto cleanup;
    }
    /* A batch the core refuses is counted there, not invalid. */
    if (agg_ingest_sym(self, b) == 0 && self->handover)
        agg_handover_counted(self->handover, (uint32_t)m->bucket,
                             b->origin_sender, b->origin_seq);
    rc = 0;
cleanup:
    return rc;
}

int
agg_on_msg(agg_t *self, const msg_decoded_t *m)
{
    int rc = 0;

    switch (m->id) {
    case MSG_SYM_STACKS:
        rc = s_on_sym(self, m);
        break;
    case MSG_PROC_EVENTS:
        agg_ingest_proc_events(self, m->body);
        break;
    case MSG_K8S_CONTAINERS:
        agg_ingest_k8s(self, m->body);
        break;
    case MSG_CTL_TASKS:
        agg_ingest_tasks(self, m->body);
        break;
    case MSG_STATS:
        agg_ingest_stats(self, m->body);
        break;
    default:
        /* Subscriptions are prefixes; anything else is not ours. */
        break;
    }
    return rc;
}

void
agg_count_invalid(agg_t *self)
{
    stats_inc(self->m_invalid);
}

int
agg_intake(agg_t *self, const char *topic, const void *payload, size_t len)
{
    msg_decoded_t m;
    char err[256] = "";
    int rc;

    arena_reset(self->arena);
    rc = msg_decode(topic, payload, len, self->arena, &m, err, sizeof(err));
    if (rc == 1) {
        rc = 0;             /* no message of ours has this topic */
        goto cleanup;
    }
    if (rc == 0)
        rc = agg_on_msg(self, &m);
    else
        log_warn_rl(&self->rl, "dropped a malformed %s message: %s", topic,
                    err);
    if (rc != 0)
        agg_count_invalid(self);
cleanup:
    arena_reset(self->arena);
    return rc;
}
