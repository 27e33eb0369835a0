/* Continuous profiling: policies (queryPolicies -> policy.update),
 * triggers (trigger.report -> reportProfilingTask -> task.request),
 * meters (metric.continuous -> collectBatch), the process entities the
 * policy engine needs (proc.ids), and watching the engine restart. */
#include "uplink_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contproto.h"
#include "hash.h"
#include "monitors.h"

/* One ServiceWithPolicyJSON document from queryPolicies: checked for the
 * shape we rely on, passed through unchanged on policy.update, and only
 * then are its UUIDs recorded, so a document the bus dropped is asked for
 * again at the next check instead of being lost. */
static void
s_on_policy(void *arg, const char *json)
{
    uplink_t *self = arg;
    char err[256];
    size_t len = strlen(json);
    if (policy_book_learn(self->book, json, len, false, err,
                          sizeof err) < 0) {
        stats_inc(self->m_cmd_invalid);
        log_warn_rl(&self->rl_oap, "uplink: policy command skipped: %s", err);
        return;
    }
    wire_policy_update_t m;
    memset(&m, 0, sizeof m);
    m.json = json;
    int rc = self->opts.publish
                 ? self->opts.publish(self->opts.cb_arg, MSG_POLICY_UPDATE, &m)
                 : -1;
    if (rc == BUS_TOO_BIG) {
        stats_inc(self->m_cmd_invalid);
        log_warn_rl(&self->rl_oap, "uplink: policy document of %zu bytes "
                    "is over the bus limit; skipped", len);
        return;
    }
    if (rc != 0) {
        log_warn_rl(&self->rl_oap, "uplink: policy.update dropped by the "
                    "bus; asking the OAP again next check");
        return;
    }
    int n = policy_book_learn(self->book, json, len, true, err, sizeof err);
    stats_inc(self->m_policies);
    log_info("uplink: continuous-profiling policies of %d service(s) from "
             "the OAP", n);
}

/* queryPolicies with every service this agent has processes for and the
 * policy UUID it holds for each. 0, or -1 when the OAP went away. */
int
uplink_continuous_query_policies(uplink_t *self)
{
    const char **services = NULL, **uuids = NULL;
    int rc = 0;
    if (self->now < self->next_policy)
        return 0;
    self->next_policy = self->now + self->opts.check_ms;
    uint64_t round = ++self->policy_round;
    proc_iter_t it = { 0, NULL };
    proc_entry_t *e;
    while ((e = proc_table_next(self->procs, &it))) {
        if (e->exited)
            continue;
        if (policy_book_want(self->book, e->entity.service, round) != 0)
            log_warn_rl(&self->rl_input, "uplink: more than %d services "
                        "(or out of memory): no policy query for %s",
                        UPLINK_MAX_SERVICES, e->entity.service);
    }
    policy_book_prune(self->book, round);
    size_t n = policy_book_count(self->book);
    if (!n)
        goto cleanup;
    services = calloc(n, sizeof *services);
    uuids = calloc(n, sizeof *uuids);
    if (!services || !uuids)
        goto cleanup;
    size_t cursor = 0, i = 0;
    while (i < n && policy_book_next(self->book, &cursor, &services[i],
                                     &uuids[i]))
        i++;
    size_t len;
    if (contproto_encode_policy_query(services, uuids, i, &self->enc,
                                      &self->enc_cap, &len) != 0)
        goto cleanup;
    oap_result_t r;
    oap_conn_unary(self->conn, M_POLICIES, self->enc, len, &r);
    uplink_call_t outcome = uplink_account(self, M_POLICIES, &r);
    if (outcome == UPLINK_CALL_OK) {
        uint32_t invalid = 0;
        /* The strings the query pointed at may change while documents
         * are applied; the query is packed already, so that is safe. */
        if (contproto_each_policy(r.reply, r.reply_len, s_on_policy, self,
                                  &invalid) != 0) {
            stats_inc(self->m_replies_invalid);
            log_warn_rl(&self->rl_oap, "uplink: queryPolicies reply is not "
                        "a Commands message (%zu bytes)", r.reply_len);
        }
        stats_add(self->m_cmd_invalid, invalid);
    }
    oap_result_clear(&r);
    rc = outcome == UPLINK_CALL_DOWN ? -1 : 0;
cleanup:
    free(services);
    free(uuids);
    return rc;
}

/* A policy fired for a process: reportProfilingTask, and the task the OAP
 * names goes to the policy engine on task.request. No retry: a trigger
 * that cannot be reported now is dropped (the policy engine keeps the
 * process silenced either way, so retrying would only pile up). */
void
uplink_continuous_take_trigger(uplink_t *self, const wire_trigger_t *t)
{
    proc_entry_t *e = proc_table_get(self->procs, t->pid);
    if (!e || e->exited || !e->process_id) {
        uplink_count_drop(self, "triggers_dropped", "unknown_process", 1);
        log_warn_rl(&self->rl_input, "uplink: trigger for pid %u dropped: "
                    "the OAP has no id for that process", t->pid);
        return;
    }
    if (!uplink_may_call(self)) {
        uplink_count_drop(self, "triggers_dropped", "oap_down", 1);
        log_warn_rl(&self->rl_oap, "uplink: trigger for pid %u dropped: "
                    "the OAP is unreachable", t->pid);
        return;
    }
    if (strcmp(t->service, e->entity.service) != 0)
        log_debug("uplink: trigger of pid %u names service %s, reported as "
                  "%s", t->pid, t->service, e->entity.service);
    size_t len;
    if (contproto_encode_report(t, &e->entity, &self->enc, &self->enc_cap,
                                &len) != 0) {
        uplink_count_drop(self, "triggers_dropped", "no_memory", 1);
        return;
    }
    oap_result_t r;
    oap_conn_unary(self->conn, M_TRIGGER, self->enc, len, &r);
    uplink_call_t outcome = uplink_account(self, M_TRIGGER, &r);
    char task_id[WIRE_MAX_STR + 1];
    int found = outcome == UPLINK_CALL_OK
                    ? contproto_report_task_id(r.reply, r.reply_len, task_id,
                                               sizeof task_id)
                    : 1;
    oap_result_clear(&r);
    if (outcome != UPLINK_CALL_OK) {
        uplink_count_drop(self, "triggers_dropped",
                          outcome == UPLINK_CALL_DOWN ? "oap_down"
                                                      : "rejected", 1);
        return;
    }
    if (found != 0) {
        stats_inc(found < 0 ? self->m_replies_invalid : self->m_cmd_invalid);
        uplink_count_drop(self, "triggers_dropped", "no_task", 1);
        log_warn_rl(&self->rl_oap, "uplink: reportProfilingTask for pid %u "
                    "answered without a ContinuousProfilingReportTask "
                    "TaskId", t->pid);
        return;
    }
    uint64_t now_wall = now_wall_ms();
    const char *process_id = e->process_id;
    /* As the reference agent: the NETWORK task a trigger starts samples
     * the URIs that fired (the OAP's reply names only the task). */
    char *rules = t->target == WIRE_TARGET_NETWORK
                      ? monitors_sampling_rules(t->causes, t->ncauses)
                      : NULL;
    wire_task_t task = {
        .task_id = task_id,
        .target = t->target,
        .trigger = WIRE_TRIGGER_CONTINUOUS,
        .source = WIRE_SRC_OAP,
        .start_ms = now_wall,
        .duration_ms = t->duration_ms,
        .update_ms = now_wall,
        .npids = 1,
        .pids = &t->pid,
        .process_ids = &process_id,
        .extension_json = rules ? rules : "",
    };
    int rc = uplink_tasks_publish(self, &task, 1);
    free(rules);
    if (rc != 0) {
        uplink_count_drop(self, "triggers_dropped", "bus", 1);
        return;
    }
    stats_inc(self->m_triggers);
}

/* Meters of one metric.continuous message, grouped by entity: the OAP
 * takes service and instance from the first MeterData of a collection,
 * so each (service, instance) gets a collection of its own in the one
 * collectBatch stream. */
typedef struct {
    uplink_t *self;
    const wire_meters_t *m;
    uint32_t *order;               /* meter indices sorted by entity */
    const proc_entry_t **entry;    /* per meter index */
    size_t n, at, sent;
    contproto_meter_t *scratch;
} s_meter_stream_t;

static int
s_next_meters(void *arg, const void **data, size_t *len)
{
    s_meter_stream_t *st = arg;
    if (st->at >= st->n)
        return 0;
    const proc_entity_t *first = &st->entry[st->order[st->at]]->entity;
    size_t k = 0, run = uplink_entity_run(st->order, st->at, st->n, st->entry);
    for (; k < run; st->at++, k++) {
        uint32_t i = st->order[st->at];
        const proc_entity_t *en = &st->entry[i]->entity;
        const wire_meter_t *x = &st->m->meters[i];
        /* The OAP attaches the meters to its process entity by name and
         * layer: use the names it was told in reportProcesses. */
        st->scratch[k] = (contproto_meter_t){ x->name, x->value,
                                              en->process, en->layer,
                                              x->uri };
    }
    size_t mlen;
    if (contproto_encode_meters(st->scratch, k, first->service,
                                first->instance, (int64_t)st->m->ts_ms,
                                &st->self->msg, &st->self->msg_cap,
                                &mlen) != 0)
        return -1;
    st->sent += k;
    *data = st->self->msg;
    *len = mlen;
    return 1;
}

void
uplink_continuous_take_meters(uplink_t *self, const wire_meters_t *m)
{
    s_meter_stream_t st = { self, m, NULL, NULL, 0, 0, 0, NULL };
    if (!m->nmeters)
        return;
    if (!uplink_may_call(self)) {
        uplink_count_drop(self, "meters_dropped", "oap_down", m->nmeters);
        return;
    }
    st.order = calloc(m->nmeters, sizeof *st.order);
    st.entry = calloc(m->nmeters, sizeof *st.entry);
    st.scratch = calloc(m->nmeters, sizeof *st.scratch);
    if (!st.order || !st.entry || !st.scratch) {
        uplink_count_drop(self, "meters_dropped", "no_memory", m->nmeters);
        goto cleanup;
    }
    size_t unknown = 0;
    for (uint32_t i = 0; i < m->nmeters; i++) {
        const proc_entry_t *e = proc_table_get(self->procs, m->meters[i].pid);
        if (!e) {
            unknown++;
            continue;
        }
        st.entry[i] = e;
        st.order[st.n++] = i;
    }
    if (unknown) {
        uplink_count_drop(self, "meters_dropped", "unknown_process", unknown);
        log_warn_rl(&self->rl_input, "uplink: %zu meter value(s) of "
                    "processes not reported to the OAP dropped", unknown);
    }
    if (!st.n)
        goto cleanup;
    uplink_sort_by_entity(st.order, st.n, st.entry);
    oap_result_t r;
    oap_conn_stream(self->conn, M_METERS, s_next_meters, &st, &r);
    uplink_call_t outcome = uplink_account(self, M_METERS, &r);
    oap_result_clear(&r);
    if (outcome == UPLINK_CALL_OK)
        stats_add(self->m_meters_sent, st.n);
    else
        uplink_count_drop(self, "meters_dropped",
                          outcome == UPLINK_CALL_DOWN ? "oap_down"
                                                      : "rejected", st.n);
cleanup:
    free(st.order);
    free(st.entry);
    free(st.scratch);
}

/* Order-independent digest of what proc.ids would carry, so an unchanged
 * table is not republished every tick. */
static uint64_t
s_proc_ids_digest(uplink_t *self, uint32_t *count)
{
    uint64_t sum = 0;
    uint32_t n = 0;
    proc_iter_t it = { 0, NULL };
    proc_entry_t *e;
    while ((e = proc_table_next(self->procs, &it))) {
        if (e->exited)
            continue;
        uint64_t h = hash_mix64(e->pid);
        h = hash_fnv1a(e->process_id ? e->process_id : "", h);
        h = hash_fnv1a(e->entity.layer, h);
        h = hash_fnv1a(e->entity.service, h);
        h = hash_fnv1a(e->entity.instance, h);
        h = hash_fnv1a(e->entity.process, h);
        sum += hash_mix64(h);
        n++;
    }
    *count = n;
    return sum ^ hash_mix64(n);
}

/* proc.ids: the full state of the live processes reported to the OAP,
 * when it changed or when force (the periodic republish, so a restarted
 * policy engine converges). */
void
uplink_continuous_publish_proc_ids(uplink_t *self, bool force)
{
    wire_proc_entity_t *ents = NULL;
    uint32_t n;
    uint64_t digest = s_proc_ids_digest(self, &n);
    if (!force && self->proc_ids_sent && digest == self->proc_ids_hash)
        return;
    if (!(ents = calloc(n ? n : 1, sizeof *ents)))
        goto cleanup;
    uint32_t k = 0;
    proc_iter_t it = { 0, NULL };
    proc_entry_t *e;
    while ((e = proc_table_next(self->procs, &it)) && k < n) {
        if (e->exited)
            continue;
        ents[k++] = (wire_proc_entity_t){
            e->pid, e->process_id ? e->process_id : "", e->entity.layer,
            e->entity.service, e->entity.instance, e->entity.process };
    }
    wire_proc_ids_t m;
    memset(&m, 0, sizeof m);
    m.nentities = k;
    m.entities = ents;
    int rc = self->opts.publish
                 ? self->opts.publish(self->opts.cb_arg, MSG_PROC_IDS, &m)
                 : -1;
    if (rc == BUS_TOO_BIG)
        log_warn_rl(&self->rl_input, "uplink: proc.ids of %u processes "
                    "breaks the wire bounds", k);
    if (rc != 0)
        goto cleanup;      /* digest unchanged: tried again next tick */
    self->proc_ids_hash = digest;
    self->proc_ids_sent = true;
    stats_inc(self->m_proc_ids);
cleanup:
    free(ents);
}

/* The policy engine keeps the policies only in memory, and a
 * policy.update published before it subscribed is lost. Its ctl.tasks
 * republication shows when it (re)started: a sender not seen before, or
 * a sequence that went back to the start. Then every UUID is forgotten,
 * so the next queryPolicies (made at once) has the OAP send every policy
 * again; the OAP stays the one copy of them. */
void
uplink_continuous_watch_engine(uplink_t *self, const wire_header_t *hdr)
{
    bool restarted = strcmp(self->engine_sender, hdr->sender) != 0 ||
                     hdr->seq <= self->engine_seq;
    snprintf(self->engine_sender, sizeof self->engine_sender, "%s",
             hdr->sender);
    self->engine_seq = hdr->seq;
    if (!restarted)
        return;
    log_info("uplink: policy engine %s (re)started: asking the OAP for "
             "every policy again", hdr->sender);
    policy_book_forget_uuids(self->book);
    self->next_policy = self->now;
}
