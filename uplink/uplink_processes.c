/* The processes protocol: the process table learnt from proc.events
 * (the collector reads /proc and the binaries; we do not), reported with
 * EBPFProcessService reportProcesses and kept alive with keepAlive
 * (uplink/README.md). */
#include "uplink_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "Process.pb-c.h"

/* Kubernetes first (a process in a known pod is a k8sProcess, in a
 * container no known pod runs it waits), then the host finders. 1 when
 * entity (and *k8s) were filled, 0 when the process is not reported. */
static int
s_identify(uplink_t *self, const finder_proc_t *fp, const char *container_id,
           proc_entity_t *entity, k8s_identity_t *k8s, bool *in_pod)
{
    *in_pod = false;
    if (self->k8s) {
        switch (k8s_disc_match(self->k8s, container_id, fp, &self->env,
                               entity, k8s)) {
        case K8S_MATCHED:
            *in_pod = true;
            return 1;
        case K8S_UNKNOWN_POD:
            stats_inc(self->m_k8s_unknown);
            return 0;
        case K8S_NO_ANALYZER:
            return 0;
        case K8S_HOST:
            break;
        }
    }
    return finder_set_match(self->finders, fp, &self->env, entity) >= 0;
}

static bool
s_same_identity(const proc_entry_t *e, const proc_entity_t *entity,
                const k8s_identity_t *k8s, bool in_pod)
{
    if (!proc_entity_equal(&e->entity, entity) || in_pod != (e->k8s != NULL))
        return false;
    return !in_pod || !memcmp(e->k8s, k8s, sizeof *k8s);
}

static void
s_learn(uplink_t *self, const seen_proc_t *f)
{
    proc_entry_t *old = proc_table_get(self->procs, f->pid);
    uint64_t k8s_gen = self->k8s ? k8s_disc_generation(self->k8s) : 0;
    if (old && !old->exited && !strcmp(old->cmdline, f->cmdline) &&
        (!*f->exe || !strcmp(old->exe, f->exe)) &&
        old->k8s_gen == k8s_gen) {
        old->seen_scan = self->scan_gen;
        return;
    }
    finder_proc_t fp = { f->pid, f->exe, f->cmdline, f->comm, NULL };
    proc_entity_t entity;
    k8s_identity_t *k8s = calloc(1, sizeof *k8s);
    bool in_pod = false;
    if (!k8s ||
        !s_identify(self, &fp, f->container_id, &entity, k8s, &in_pod)) {
        if (old)
            proc_table_remove(self->procs, f->pid);
        free(k8s);
        return;
    }
    if (old && !old->exited && !strcmp(old->cmdline, f->cmdline) &&
        s_same_identity(old, &entity, k8s, in_pod)) {
        /* The pod table changed, but not for this process: keep its
         * OAP id rather than reporting it anew. */
        old->k8s_gen = k8s_gen;
        old->seen_scan = self->scan_gen;
        proc_entity_clear(&entity);
        free(k8s);
        return;
    }
    proc_entry_t *e = proc_entry_new(f->pid, f->exe, f->cmdline, f->comm,
                                     &entity);
    if (!e) {
        stats_inc(self->m_procs_dropped);
        free(k8s);
        return;
    }
    /* The collector checked the binary (proc.events has_symbols). */
    e->support_ebpf = f->has_symbols;
    e->seen_scan = self->scan_gen;
    e->k8s_gen = k8s_gen;
    int k8s_rc = proc_entry_set_k8s(e, in_pod ? k8s : NULL);
    free(k8s);
    if (k8s_rc != 0) {
        proc_entry_free(e);
        stats_inc(self->m_procs_dropped);
        return;
    }
    if (proc_table_put(self->procs, e) != 0) {
        stats_inc(self->m_procs_dropped);
        log_warn_rl(&self->rl_input, "uplink: more than %d processes; "
                    "pid %u not reported", UPLINK_MAX_PROCS, f->pid);
    }
}

void
uplink_processes_scan(uplink_t *self)
{
    self->scan_gen++;
    /* Facts the collector has not republished for a while belong to
     * processes whose exit we missed. */
    if (self->opts.proc_stale_ms && self->now > self->opts.proc_stale_ms)
        seen_procs_expire(self->seen, self->now - self->opts.proc_stale_ms);
    size_t cursor = 0;
    const seen_proc_t *f;
    while ((f = seen_procs_next(self->seen, &cursor)))
        s_learn(self, f);
    proc_iter_t it = { 0, NULL };
    proc_entry_t *e;
    while ((e = proc_table_next(self->procs, &it))) {
        if (!e->exited && e->seen_scan != self->scan_gen) {
            e->exited = true;
            e->exited_ms = self->now;
        }
    }
}

static void
s_expire_exited(uplink_t *self)
{
    uint32_t gone[256];
    size_t n;
    do {
        n = 0;
        proc_iter_t it = { 0, NULL };
        proc_entry_t *e;
        while ((e = proc_table_next(self->procs, &it)) && n < 256)
            if (e->exited && self->now - e->exited_ms >= UPLINK_EXIT_GRACE_MS)
                gone[n++] = e->pid;
        for (size_t i = 0; i < n; i++)
            proc_table_remove(self->procs, gone[i]);
    } while (n == 256);
    stats_set(self->m_processes, (double)proc_table_count(self->procs));
}

static void
s_entity_pb(const proc_entity_t *en, Skywalking__V3__EBPFProcessEntityMetadata *pb)
{
    skywalking__v3__ebpfprocess_entity_metadata__init(pb);
    pb->layer = en->layer;
    pb->servicename = en->service;
    pb->instancename = en->instance;
    pb->processname = en->process;
    pb->n_labels = en->nlabels;
    pb->labels = en->labels;
}

static bool
s_entity_matches(const proc_entity_t *en,
                 const Skywalking__V3__EBPFProcessEntityMetadata *pb)
{
    return pb && pb->layer && pb->servicename && pb->instancename &&
           pb->processname && !strcmp(en->layer, pb->layer) &&
           !strcmp(en->service, pb->servicename) &&
           !strcmp(en->instance, pb->instancename) &&
           !strcmp(en->process, pb->processname);
}

static void
s_take_process_ids(uplink_t *self, const oap_result_t *r)
{
    Skywalking__V3__EBPFReportProcessDownstream *down =
        skywalking__v3__ebpfreport_process_downstream__unpack(
            NULL, r->reply_len, r->reply);
    if (!down) {
        stats_inc(self->m_replies_invalid);
        log_warn_rl(&self->rl_oap, "uplink: reportProcesses reply is not an "
                    "EBPFReportProcessDownstream (%zu bytes)", r->reply_len);
        return;
    }
    for (size_t i = 0; i < down->n_processes; i++) {
        const Skywalking__V3__EBPFProcessDownstream *d = down->processes[i];
        if (!d || !d->processid || !*d->processid)
            continue;
        /* Host and Kubernetes downstreams have the same shape. */
        int32_t pid = 0;
        const Skywalking__V3__EBPFProcessEntityMetadata *ent = NULL;
        bool k8s = false;
        if (d->process_case ==
                SKYWALKING__V3__EBPFPROCESS_DOWNSTREAM__PROCESS_HOST_PROCESS &&
            d->hostprocess) {
            pid = d->hostprocess->pid;
            ent = d->hostprocess->entitymetadata;
        } else if (d->process_case ==
                       SKYWALKING__V3__EBPFPROCESS_DOWNSTREAM__PROCESS_K8S_PROCESS &&
                   d->k8sprocess) {
            pid = d->k8sprocess->pid;
            ent = d->k8sprocess->entitymetadata;
            k8s = true;
        }
        if (pid <= 0)
            continue;
        proc_entry_t *e = proc_table_get(self->procs, (uint32_t)pid);
        if (e && (e->k8s != NULL) == k8s &&
            s_entity_matches(&e->entity, ent))
            proc_entry_set_id(e, d->processid);
    }
    skywalking__v3__ebpfreport_process_downstream__free_unpacked(down, NULL);
}

/* Sends reportProcesses for live processes (all, or only new/changed),
 * in chunks. 0, or -1 when the OAP went away. */
static int
s_report(uplink_t *self, bool all)
{
    enum { NPROPS = 7 };
    Skywalking__V3__EBPFProcessProperties *props = NULL;
    Skywalking__V3__EBPFHostProcessMetadata *hosts = NULL;
    Skywalking__V3__EBPFKubernetesProcessMetadata *pods = NULL;
    Skywalking__V3__EBPFProcessEntityMetadata *ents = NULL;
    Skywalking__V3__KeyStringValuePair *kvs = NULL;
    Skywalking__V3__KeyStringValuePair **kvps = NULL;
    Skywalking__V3__EBPFProcessProperties **pprops = NULL;
    proc_entry_t **batch = NULL;
    char (*pids)[16] = NULL;
    int rc = -1;
    size_t cap = UPLINK_PROCS_PER_CALL;
    props = calloc(cap, sizeof *props);
    pprops = calloc(cap, sizeof *pprops);
    hosts = calloc(cap, sizeof *hosts);
    pods = calloc(cap, sizeof *pods);
    ents = calloc(cap, sizeof *ents);
    kvs = calloc(cap * NPROPS, sizeof *kvs);
    kvps = calloc(cap * NPROPS, sizeof *kvps);
    batch = calloc(cap, sizeof *batch);
    pids = calloc(cap, sizeof *pids);
    if (!props || !pprops || !hosts || !pods || !ents || !kvs || !kvps ||
        !batch || !pids)
        goto cleanup;

    proc_iter_t it = { 0, NULL };
    bool more = true;
    while (more) {
        size_t n = 0;
        proc_entry_t *e;
        while (n < cap && (e = proc_table_next(self->procs, &it))) {
            if (e->exited || !(all || e->needs_report))
                continue;
            batch[n] = e;
            s_entity_pb(&e->entity, &ents[n]);
            snprintf(pids[n], sizeof pids[n], "%u", e->pid);
            /* The properties the OAP and its UI read (the reference
             * agent, SkyWalking Rover, sends the same); a pod's process
             * adds where it runs. */
            const k8s_identity_t *pod = e->k8s;
            const char *keys[NPROPS] = { "host_ip", "pid", "command_line",
                                         "support_ebpf_profiling",
                                         "container_ip", "container_name",
                                         "pod_name" };
            const char *vals[NPROPS] = {
                self->host_ip, pids[n], e->cmdline,
                e->support_ebpf ? "true" : "false",
                pod ? pod->pod_ip : "", pod ? pod->container : "",
                pod ? pod->pod : "" };
            size_t nprops = pod ? NPROPS : 4;
            for (size_t k = 0; k < nprops; k++) {
                Skywalking__V3__KeyStringValuePair *kv = &kvs[n * NPROPS + k];
                skywalking__v3__key_string_value_pair__init(kv);
                kv->key = (char *)keys[k];
                kv->value = (char *)vals[k];
                kvps[n * NPROPS + k] = kv;
            }
            skywalking__v3__ebpfprocess_properties__init(&props[n]);
            if (pod) {
                skywalking__v3__ebpfkubernetes_process_metadata__init(
                    &pods[n]);
                pods[n].entity = &ents[n];
                pods[n].pid = (int32_t)e->pid;
                pods[n].n_properties = nprops;
                pods[n].properties = &kvps[n * NPROPS];
                props[n].metadata_case =
                    SKYWALKING__V3__EBPFPROCESS_PROPERTIES__METADATA_K8S_PROCESS;
                props[n].k8sprocess = &pods[n];
            } else {
                skywalking__v3__ebpfhost_process_metadata__init(&hosts[n]);
                hosts[n].entity = &ents[n];
                hosts[n].pid = (int32_t)e->pid;
                hosts[n].n_properties = nprops;
                hosts[n].properties = &kvps[n * NPROPS];
                props[n].metadata_case =
                    SKYWALKING__V3__EBPFPROCESS_PROPERTIES__METADATA_HOST_PROCESS;
                props[n].hostprocess = &hosts[n];
            }
            pprops[n] = &props[n];
            n++;
        }
        more = n == cap;
        if (n == 0)
            break;
        Skywalking__V3__EBPFProcessReportList list =
            SKYWALKING__V3__EBPFPROCESS_REPORT_LIST__INIT;
        list.n_processes = n;
        list.processes = pprops;
        list.ebpfagentid = self->agent_id;
        size_t len = uplink_pack(self, &list.base);
        if (!len)
            goto cleanup;
        oap_result_t r;
        oap_conn_unary(self->conn, M_REPORT, self->enc, len, &r);
        uplink_call_t outcome = uplink_account(self, M_REPORT, &r);
        if (outcome == UPLINK_CALL_OK) {
            stats_add(self->m_reported, n);
            for (size_t i = 0; i < n; i++) {
                batch[i]->needs_report = false;
                batch[i]->reported_round = self->round;
            }
            s_take_process_ids(self, &r);
        }
        oap_result_clear(&r);
        if (outcome == UPLINK_CALL_DOWN)
            goto cleanup;
    }
    rc = 0;
cleanup:
    free(props);
    free(pprops);
    free(hosts);
    free(pods);
    free(ents);
    free(kvs);
    free(kvps);
    free(batch);
    free(pids);
    return rc;
}

/* keepAlive for reported processes not re-reported this round. */
static int
s_keepalive(uplink_t *self)
{
    Skywalking__V3__EBPFProcessPingPkg *pkgs = NULL;
    Skywalking__V3__EBPFProcessPingPkg **ppkgs = NULL;
    Skywalking__V3__EBPFProcessEntityMetadata *ents = NULL;
    Skywalking__V3__KeyStringValuePair *kvs = NULL;
    Skywalking__V3__KeyStringValuePair **kvps = NULL;
    int rc = -1;
    size_t cap = UPLINK_PROCS_PER_CALL;
    pkgs = calloc(cap, sizeof *pkgs);
    ppkgs = calloc(cap, sizeof *ppkgs);
    ents = calloc(cap, sizeof *ents);
    kvs = calloc(cap, sizeof *kvs);
    kvps = calloc(cap, sizeof *kvps);
    if (!pkgs || !ppkgs || !ents || !kvs || !kvps)
        goto cleanup;
    proc_iter_t it = { 0, NULL };
    bool more = true;
    while (more) {
        size_t n = 0;
        proc_entry_t *e;
        while (n < cap && (e = proc_table_next(self->procs, &it))) {
            if (e->exited || !e->process_id ||
                e->reported_round == self->round)
                continue;
            s_entity_pb(&e->entity, &ents[n]);
            skywalking__v3__key_string_value_pair__init(&kvs[n]);
            kvs[n].key = (char *)"support_ebpf_profiling";
            kvs[n].value = (char *)(e->support_ebpf ? "true" : "false");
            kvps[n] = &kvs[n];
            skywalking__v3__ebpfprocess_ping_pkg__init(&pkgs[n]);
            pkgs[n].entitymetadata = &ents[n];
            pkgs[n].n_properties = 1;
            pkgs[n].properties = &kvps[n];
            ppkgs[n] = &pkgs[n];
            n++;
        }
        more = n == cap;
        if (n == 0)
            break;
        Skywalking__V3__EBPFProcessPingPkgList list =
            SKYWALKING__V3__EBPFPROCESS_PING_PKG_LIST__INIT;
        list.n_processes = n;
        list.processes = ppkgs;
        list.ebpfagentid = self->agent_id;
        size_t len = uplink_pack(self, &list.base);
        if (!len)
            goto cleanup;
        oap_result_t r;
        oap_conn_unary(self->conn, M_KEEPALIVE, self->enc, len, &r);
        uplink_call_t outcome = uplink_account(self, M_KEEPALIVE, &r);
        oap_result_clear(&r);
        if (outcome == UPLINK_CALL_DOWN)
            goto cleanup;
    }
    rc = 0;
cleanup:
    free(pkgs);
    free(ppkgs);
    free(ents);
    free(kvs);
    free(kvps);
    return rc;
}

static bool
s_any_pending(uplink_t *self)
{
    proc_iter_t it = { 0, NULL };
    proc_entry_t *e;
    while ((e = proc_table_next(self->procs, &it)))
        if (!e->exited && e->needs_report)
            return true;
    return false;
}

int
uplink_processes_call(uplink_t *self)
{
    uint64_t now = self->now;
    if (now >= self->next_heartbeat || self->full_report_due) {
        bool heartbeat = now >= self->next_heartbeat;
        if (heartbeat) {
            self->round++;
            self->next_heartbeat = now + self->opts.heartbeat_ms;
            uplink_processes_scan(self);
            s_expire_exited(self);
        }
        bool all = self->full_report_due ||
                   self->round % self->opts.report_period == 1 ||
                   self->opts.report_period == 1;
        self->full_report_due = false;
        if (s_report(self, all) != 0) {
            self->full_report_due = all;
            return -1;
        }
        self->next_quick_report = now + UPLINK_QUICK_REPORT_MS;
        return heartbeat ? s_keepalive(self) : 0;
    }
    if (now >= self->next_quick_report && s_any_pending(self)) {
        self->next_quick_report = now + UPLINK_QUICK_REPORT_MS;
        return s_report(self, false);
    }
    return 0;
}

void
uplink_processes_take_events(uplink_t *self, const wire_proc_events_t *m)
{
    for (uint32_t i = 0; i < m->nevents; i++) {
        const wire_proc_event_t *ev = &m->events[i];
        if (ev->type == WIRE_PROC_EXIT) {
            seen_procs_remove(self->seen, ev->pid);
            proc_entry_t *e = proc_table_get(self->procs, ev->pid);
            if (e && !e->exited) {
                e->exited = true;
                e->exited_ms = self->now;
            }
            continue;
        }
        if (!ev->cmdline || !*ev->cmdline)
            continue;          /* kernel thread or not readable */
        const seen_proc_t *f = seen_procs_put(self->seen, ev, self->now);
        if (!f) {
            stats_inc(self->m_procs_dropped);
            log_warn_rl(&self->rl_input, "uplink: more than %d processes "
                        "(or out of memory); pid %u not tracked",
                        UPLINK_MAX_PROCS, ev->pid);
            continue;
        }
        s_learn(self, f);
    }
    stats_set(self->m_processes, (double)proc_table_count(self->procs));
}
