/* Network profiling to the OAP: net.report (the aggregator's network room,
 * every profiling.task.network.report_interval) -> meters on collectBatch,
 * sampled requests on LogReportService/collect and
 * SpanAttachedEventReportService/collect (shapes: netproto.h).
 *
 * Only processes of NETWORK tasks the OAP, the configuration or the API
 * asked for are reported. The policy engine also asks for capture of the
 * processes its HTTP monitors watch (a NETWORK task of source POLICY in
 * ctl.tasks, policy-engine/watch.c); their traffic feeds the monitors and
 * is not sent to the OAP as network profiling, as the reference agent
 * does not either. */
#include "uplink_internal.h"

#include <stdlib.h>
#include <string.h>

#include "netproto.h"

static int
s_cmp_pid(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Whether the task's processes are reported as network profiling: every
 * NETWORK task but the policy engine's own capture. */
static bool
s_reports(const wire_task_t *t)
{
    return t->target == WIRE_TARGET_NETWORK && t->source != WIRE_SRC_POLICY;
}

void
uplink_net_take_tasks(uplink_t *self, const wire_task_set_t *set)
{
    size_t n = 0;
    for (uint32_t i = 0; i < set->ntasks; i++)
        if (s_reports(&set->tasks[i]))
            n += set->tasks[i].npids;
    uint32_t *pids = malloc((n ? n : 1) * sizeof *pids);
    if (!pids) {
        /* Keep the previous set: better stale than reporting nothing. */
        log_warn_rl(&self->rl_input, "uplink: out of memory for the "
                    "network task pids");
        return;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < set->ntasks; i++) {
        const wire_task_t *t = &set->tasks[i];
        for (uint32_t p = 0; s_reports(t) && p < t->npids; p++)
            pids[k++] = t->pids[p];
    }
    qsort(pids, k, sizeof *pids, s_cmp_pid);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (!u || pids[u - 1] != pids[i])
            pids[u++] = pids[i];
    free(self->net_pids);
    self->net_pids = pids;
    self->net_npids = u;
}

/* The process the OAP knows for pid when a network task reports it. */
static const proc_entry_t *
s_reported(const uplink_t *self, uint32_t pid)
{
    if (!self->net_npids ||
        !bsearch(&pid, self->net_pids, self->net_npids, sizeof pid,
                 s_cmp_pid))
        return NULL;
    const proc_entry_t *e = proc_table_get(self->procs, pid);
    return e && e->process_id ? e : NULL;
}

/* The OAP id of the peer when it is a process of local's service
 * instance (the relation the OAP draws), else NULL. */
static const char *
s_peer_id(const uplink_t *self, const proc_entry_t *local, uint32_t peer_pid)
{
    if (!peer_pid)
        return NULL;
    const proc_entry_t *p = proc_table_get(self->procs, peer_pid);
    if (!p || !p->process_id ||
        strcmp(p->entity.service, local->entity.service) ||
        strcmp(p->entity.instance, local->entity.instance))
        return NULL;
    return p->process_id;
}

/* Pass over one report's meters, one collection per (service, instance),
 * for oap_conn_stream. */
typedef struct {
    uplink_t *self;
    const wire_net_report_t *r;
    uint32_t *order;               /* meter indices, sorted by entity */
    const proc_entry_t **entry;    /* per meter index */
    size_t n, at;
    netproto_meter_t *meters;      /* scratch per collection */
    netproto_proc_t *procs;
} s_meter_pass_t;

static int
s_next_collection(void *arg, const void **data, size_t *len)
{
    s_meter_pass_t *st = arg;
    if (st->at >= st->n)
        return 0;
    size_t k = 0, run = uplink_entity_run(st->order, st->at, st->n, st->entry);
    for (; k < run; st->at++, k++) {
        uint32_t i = st->order[st->at];
        const proc_entry_t *e = st->entry[i];
        const wire_net_meter_t *m = &st->r->meters[i];
        st->meters[k] = (netproto_meter_t){
            m, s_peer_id(st->self, e, m->peer_pid) };
        st->procs[k] = (netproto_proc_t){ e->process_id, &e->entity };
    }
    size_t mlen;
    if (netproto_encode_meters(st->meters, st->procs, k,
                               st->self->opts.net_meter_prefix,
                               (int64_t)st->r->ts_ms, &st->self->msg,
                               &st->self->msg_cap, &mlen) != 0)
        return -1;
    *data = st->self->msg;
    *len = mlen;
    return 1;
}

/* Counts a finished stream: sent, or dropped by why it failed. */
static void
s_account(uplink_t *self, const char *method, oap_result_t *r,
          stats_metric_t *sent, size_t n)
{
    uplink_call_t outcome = uplink_account(self, method, r);
    oap_result_clear(r);
    if (outcome == UPLINK_CALL_OK)
        stats_add(sent, n);
    else
        uplink_count_drop(self, "net_dropped",
                          outcome == UPLINK_CALL_DOWN ? "oap_down"
                                                      : "rejected", n);
}

static void
s_send_meters(uplink_t *self, const wire_net_report_t *r)
{
    s_meter_pass_t st = { self, r, NULL, NULL, 0, 0, NULL, NULL };
    size_t n = r->nmeters;
    st.order = calloc(n, sizeof *st.order);
    st.entry = calloc(n, sizeof *st.entry);
    st.meters = calloc(n, sizeof *st.meters);
    st.procs = calloc(n, sizeof *st.procs);
    if (!st.order || !st.entry || !st.meters || !st.procs) {
        uplink_count_drop(self, "net_dropped", "no_memory", n);
        goto cleanup;
    }
    size_t unknown = 0;
    for (uint32_t i = 0; i < n; i++) {
        const proc_entry_t *e = s_reported(self, r->meters[i].pid);
        if (!e) {
            unknown++;
            continue;
        }
        st.entry[i] = e;
        st.order[st.n++] = i;
    }
    if (unknown)
        uplink_count_drop(self, "net_dropped", "unknown_process", unknown);
    if (!st.n)
        goto cleanup;
    if (!uplink_may_call(self)) {
        uplink_count_drop(self, "net_dropped", "oap_down", st.n);
        goto cleanup;
    }
    uplink_sort_by_entity(st.order, st.n, st.entry);
    oap_result_t res;
    oap_conn_stream(self->conn, M_METERS, s_next_collection, &st, &res);
    s_account(self, M_METERS, &res, self->m_net_meters, st.n);
cleanup:
    free(st.order);
    free(st.entry);
    free(st.meters);
    free(st.procs);
}

/* Pass over one report's sampled requests: their logs, or their span
 * events. Position `at` walks two halves per sample (request, response);
 * a log is written at the first half. */
typedef struct {
    uplink_t *self;
    const wire_net_report_t *r;
    bool events;
    uint32_t at;
    size_t sent;
} s_sample_pass_t;

static int
s_next_sample(void *arg, const void **data, size_t *len)
{
    s_sample_pass_t *st = arg;
    uplink_t *self = st->self;
    for (; st->at < 2 * st->r->nsamples; st->at++) {
        const wire_net_sample_t *s = &st->r->samples[st->at / 2];
        bool response = st->at % 2;
        const proc_entry_t *e = s_reported(self, s->pid);
        if (!e)
            continue;
        netproto_proc_t local = { e->process_id, &e->entity };
        int rc = 1;
        if (st->events)
            rc = netproto_encode_event(s, &local, response, &self->msg,
                                       &self->msg_cap, len);
        else if (!response)
            rc = netproto_encode_log(s, &local,
                                     s_peer_id(self, e, s->peer_pid),
                                     (int64_t)st->r->ts_ms, &self->msg,
                                     &self->msg_cap, len);
        if (rc == 1)
            continue;
        if (rc != 0)
            return -1;
        st->at++;
        st->sent++;
        *data = self->msg;
        return 1;
    }
    return 0;
}

static void
s_send_samples(uplink_t *self, const wire_net_report_t *r, bool events)
{
    size_t n = 0;
    for (uint32_t i = 0; i < r->nsamples; i++) {
        const wire_net_sample_t *s = &r->samples[i];
        n += s_reported(self, s->pid) &&
             (!events || (s->req_len && s->req) || (s->resp_len && s->resp));
    }
    if (!events && n < r->nsamples)
        uplink_count_drop(self, "net_dropped", "unknown_process",
                          r->nsamples - n);
    if (!n)
        return;
    if (!uplink_may_call(self)) {
        if (!events)
            uplink_count_drop(self, "net_dropped", "oap_down", n);
        return;
    }
    s_sample_pass_t st = { self, r, events, 0, 0 };
    oap_result_t res;
    const char *method = events ? M_NET_EVENTS : M_NET_LOGS;
    oap_conn_stream(self->conn, method, s_next_sample, &st, &res);
    s_account(self, method, &res,
              events ? self->m_net_events : self->m_net_logs, st.sent);
}

void
uplink_net_take_report(uplink_t *self, const wire_net_report_t *r)
{
    if (r->nmeters)
        s_send_meters(self, r);
    if (r->nsamples) {
        s_send_samples(self, r, false);
        s_send_samples(self, r, true);
    }
}
