/* The uplink's core: the engine's lifecycle, OAP call accounting, bus
 * input dispatch and the tick that paces the protocols (one file each:
 * uplink_processes.c, uplink_tasks.c, uplink_data.c,
 * uplink_continuous.c). See uplink.h and uplink/README.md. */
#include "uplink_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------- lifecycle */
static const char *
s_keep(uplink_t *self, size_t slot, const char *s)
{
    self->strings[slot] = strdup(s ? s : "");
    return self->strings[slot];
}

static void
s_metrics(uplink_t *self)
{
    stats_t *st = self->stats;
    self->m_bytes = stats_counter(st, "bytes_sent", NULL,
                                  "protobuf bytes sent to the OAP");
    self->m_messages = stats_counter(st, "messages_sent", NULL,
                                     "protobuf messages sent to the OAP");
    self->m_buffer_bytes = stats_gauge(st, "buffer_bytes", NULL,
                                       "profiling data waiting for the OAP");
    self->m_buffer_dropped = stats_counter(
        st, "buffer_dropped", NULL,
        "profiling messages dropped (oldest first) because the buffer was full");
    self->m_reconnects = stats_counter(st, "reconnects", NULL,
                                       "OAP reachable again after a failure");
    self->m_reported = stats_counter(st, "processes_reported", NULL,
                                     "process entries sent in reportProcesses");
    self->m_tasks = stats_counter(st, "tasks_received", NULL,
                                  "tasks from the OAP published on task.request");
    self->m_cmd_invalid = stats_counter(st, "commands_invalid", NULL,
                                        "malformed OAP commands skipped");
    self->m_replies_invalid = stats_counter(
        st, "replies_invalid", NULL, "OAP replies that were not valid protobuf");
    self->m_procs_dropped = stats_counter(
        st, "processes_dropped", NULL, "processes not tracked: table full");
    self->m_no_process = stats_counter(
        st, "data_dropped_no_process", NULL,
        "profiling messages dropped: the OAP never assigned the process an id");
    self->m_tasks_unmapped = stats_counter(
        st, "tasks_unmapped", NULL,
        "task commands naming processes this agent does not know");
    self->m_processes = stats_gauge(st, "processes", NULL,
                                    "processes matched by a finder");
    self->m_connected = stats_gauge(st, "connected", NULL,
                                    "1 when the last OAP call succeeded");
    self->m_policies = stats_counter(
        st, "policies_received", NULL,
        "continuous-profiling policy documents published on policy.update");
    self->m_triggers = stats_counter(
        st, "triggers_reported", NULL,
        "continuous-profiling triggers the OAP turned into a task");
    self->m_meters_sent = stats_counter(st, "meters_sent", NULL,
                                        "continuous-profiling meter values "
                                        "sent with collectBatch");
    self->m_net_meters = stats_counter(st, "net_meters_sent", NULL,
                                       "network profiling meters sent with "
                                       "collectBatch");
    self->m_net_logs = stats_counter(st, "net_logs_sent", NULL,
                                     "sampled requests sent to "
                                     "LogReportService");
    self->m_net_events = stats_counter(st, "net_events_sent", NULL,
                                       "sampled request/response events sent "
                                       "to SpanAttachedEventReportService");
    self->m_proc_ids = stats_counter(st, "proc_ids_published", NULL,
                                     "process entity states published on "
                                     "proc.ids");
    self->m_k8s_published = stats_counter(
        st, "k8s_containers_published", NULL,
        "container tables published on k8s.containers");
    self->m_k8s_unknown = stats_counter(
        st, "k8s_unknown_container", NULL,
        "known processes in a container no known pod runs (not reported "
        "until the API names it)");
}

static int
s_cmp_entity(const void *a, const void *b, void *arg)
{
    const proc_entry_t **entry = arg;
    uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;
    const proc_entity_t *ea = &entry[ia]->entity, *eb = &entry[ib]->entity;
    int c = strcmp(ea->service, eb->service);
    if (!c)
        c = strcmp(ea->instance, eb->instance);
    return c ? c : (ia > ib) - (ia < ib);
}

void
uplink_sort_by_entity(uint32_t *order, size_t n, const proc_entry_t **entry)
{
    qsort_r(order, n, sizeof *order, s_cmp_entity, entry);
}

size_t
uplink_entity_run(const uint32_t *order, size_t at, size_t n,
                  const proc_entry_t **entry)
{
    const proc_entity_t *first = &entry[order[at]]->entity;
    size_t k = at;
    while (k < n && !strcmp(entry[order[k]]->entity.service, first->service) &&
           !strcmp(entry[order[k]]->entity.instance, first->instance))
        k++;
    return k - at;
}

/* Counted drops of input (continuous profiling, network data), by what
 * went wrong. */
void
uplink_count_drop(uplink_t *self, const char *what, const char *reason,
                  uint64_t n)
{
    char labels[64];
    snprintf(labels, sizeof labels, "reason=\"%s\"", reason);
    stats_add(stats_counter(self->stats, what, labels,
                            "input dropped, by reason"),
              n);
}

uplink_t *
uplink_new(const uplink_options_t *opts, finder_set_t *finders,
           stats_t *stats)
{
    uplink_t *self = calloc(1, sizeof *self);
    if (!self) {
        k8s_disc_t *k8s = opts->k8s;
        finder_set_destroy(&finders);
        k8s_disc_destroy(&k8s);
        return NULL;
    }
    self->finders = finders;
    self->stats = stats;
    self->opts = *opts;
    self->k8s = opts->k8s;
    self->opts.k8s = NULL;
    uplink_options_t *o = &self->opts;
    o->addr = s_keep(self, 0, opts->addr);
    o->ca_path = s_keep(self, 1, opts->ca_path);
    o->cert_path = s_keep(self, 2, opts->cert_path);
    o->key_path = s_keep(self, 3, opts->key_path);
    o->auth_token = s_keep(self, 4, opts->auth_token);
    o->agent_id = s_keep(self, 5, opts->agent_id);
    o->node_name = s_keep(self, 6, opts->node_name && *opts->node_name
                                       ? opts->node_name : "");
    o->net_meter_prefix = s_keep(self, 7, opts->net_meter_prefix &&
                                              *opts->net_meter_prefix
                                              ? opts->net_meter_prefix
                                              : "rover_net_p");
    for (size_t i = 0; i <= 7; i++)
        if (!self->strings[i])
            goto fail;
    if (!o->report_period)
        o->report_period = 10;
    if (!o->max_backoff_ms)
        o->max_backoff_ms = 30000;
    if (!o->auth_backoff_ms)
        o->auth_backoff_ms = 300000;

    if (gethostname(self->host_name, sizeof self->host_name) != 0)
        snprintf(self->host_name, sizeof self->host_name, "localhost");
    self->host_name[sizeof self->host_name - 1] = '\0';
    if (!*o->node_name) {
        free(self->strings[6]);
        o->node_name = s_keep(self, 6, self->host_name);
        if (!o->node_name)
            goto fail;
    }
    if (*o->agent_id)
        snprintf(self->agent_id, sizeof self->agent_id, "%s", o->agent_id);
    else
        snprintf(self->agent_id, sizeof self->agent_id, "%.200s-%d",
                 self->host_name, (int)getpid());
    finder_host_ipv4(NULL, self->host_ip, sizeof self->host_ip);
    self->env = (finder_env_t){ self->agent_id, self->host_name,
                                self->host_ip };
    self->rl_input = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 60000);
    self->rl_oap = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 60000);
    s_metrics(self);

    if (!(self->arena = arena_new(UPLINK_ARENA_LIMIT)) ||
        !(self->procs = proc_table_new(UPLINK_MAX_PROCS)) ||
        !(self->buf = databuf_new(o->buffer_size)) ||
        !(self->book = policy_book_new(UPLINK_MAX_SERVICES)) ||
        !(self->seen = seen_procs_new(UPLINK_MAX_PROCS)))
        goto fail;
    if (*o->addr) {
        oap_conn_options_t co = { o->addr, o->tls, o->ca_path, o->cert_path,
                                  o->key_path, o->skip_verify, o->auth_token,
                                  o->timeout_ms };
        if (!(self->conn = oap_conn_new(&co)))
            goto fail;
        if (!finder_set_count(self->finders))
            log_warn("uplink: no process finders configured "
                     "(process_discovery.scanner.regex): no process will be "
                     "reported, so the OAP cannot offer tasks");
        log_info("uplink: OAP %s%s, agent id %s, %zu process finder(s)",
                 o->addr, o->tls ? " (TLS)" : "", self->agent_id,
                 finder_set_count(self->finders));
    } else {
        log_info("uplink: no core.backend.addr: idle (local mode)");
    }
    return self;
fail:
    log_error("uplink: cannot start (out of memory or bad TLS files)");
    uplink_destroy(&self);
    return NULL;
}

void
uplink_destroy(uplink_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    uplink_t *self = *self_p;
    oap_conn_destroy(&self->conn);
    k8s_disc_destroy(&self->k8s);
    seen_procs_destroy(&self->seen);
    proc_table_destroy(&self->procs);
    databuf_destroy(&self->buf);
    policy_book_destroy(&self->book);
    arena_destroy(&self->arena);
    finder_set_destroy(&self->finders);
    free(self->enc);
    free(self->msg);
    free(self->net_pids);
    for (size_t i = 0; i < sizeof self->strings / sizeof self->strings[0];
         i++)
        free(self->strings[i]);
    free(self);
    *self_p = NULL;
}

bool
uplink_active(const uplink_t *self)
{
    return self->conn != NULL;
}

const char *
uplink_agent_id(const uplink_t *self)
{
    return self->agent_id;
}

size_t
uplink_buffer_bytes(const uplink_t *self)
{
    return databuf_bytes(self->buf);
}

const char *
uplink_process_id(const uplink_t *self, uint32_t pid)
{
    proc_entry_t *e = proc_table_get(self->procs, pid);
    return e ? e->process_id : NULL;
}

size_t
uplink_process_count(const uplink_t *self)
{
    return proc_table_count(self->procs);
}

bool
uplink_connected(const uplink_t *self)
{
    return self->up;
}

void
uplink_flush_now(uplink_t *self)
{
    self->next_flush = 0;
    self->next_check = 0;
}

/* ---------------------------------------------------- call accounting */

/* A method's name in counters and logs: its last part, or
 * "<Service>.collect" for the services whose method is just "collect"
 * (logs, span events), so their calls are told apart (the fake OAP files
 * them the same way). */
static const char *
s_method_name(const char *method, char *buf, size_t size)
{
    const char *name = strrchr(method, '/') + 1;
    if (strcmp(name, "collect") != 0)
        return name;
    const char *svc = method + 1;
    const char *dot = memrchr(svc, '.', (size_t)(name - 1 - svc));
    if (dot)
        svc = dot + 1;
    snprintf(buf, size, "%.*s.collect", (int)(name - 1 - svc), svc);
    return buf;
}

uplink_call_t
uplink_account(uplink_t *self, const char *method, const oap_result_t *r)
{
    char namebuf[96];
    const char *shortname = s_method_name(method, namebuf, sizeof namebuf);
    char labels[160];
    snprintf(labels, sizeof labels, "method=\"%s\",status=\"%s\"", shortname,
             oap_status_name(r->status));
    stats_inc(stats_counter(self->stats, "calls", labels,
                            "gRPC calls to the OAP by method and status"));
    stats_add(self->m_bytes, r->bytes_sent);
    stats_add(self->m_messages, r->messages_sent);

    switch (r->status) {
    case 0: /* OK */
        if (!self->up && self->ever_failed) {
            stats_inc(self->m_reconnects);
            log_info("uplink: OAP %s reachable again; re-reporting every "
                     "process", self->opts.addr);
            self->full_report_due = true;
        } else if (!self->ever_up) {
            log_info("uplink: connected to OAP %s", self->opts.addr);
        }
        self->up = self->ever_up = true;
        self->ever_failed = false;
        self->backoff_ms = 0;
        self->auth_logged = false;
        stats_set(self->m_connected, 1);
        return UPLINK_CALL_OK;
    case 16: /* UNAUTHENTICATED */
    case 7:  /* PERMISSION_DENIED */
        /* A wrong token does not fix itself: say so once and wait long
         * instead of hammering the OAP. */
        if (!self->auth_logged)
            log_error("uplink: the OAP at %s refused our credentials (%s: %s);"
                      " check core.backend.authentication; next try in %"
                      PRIu64 " s", self->opts.addr,
                      oap_status_name(r->status), r->details,
                      self->opts.auth_backoff_ms / 1000);
        self->auth_logged = true;
        self->up = false;
        self->ever_failed = true;
        self->retry_at = self->now + self->opts.auth_backoff_ms;
        stats_set(self->m_connected, 0);
        return UPLINK_CALL_DOWN;
    case 12: /* UNIMPLEMENTED */
    case 3:  /* INVALID_ARGUMENT */
    case 5:  /* NOT_FOUND */
    case 6:  /* ALREADY_EXISTS */
    case 9:  /* FAILED_PRECONDITION */
    case 11: /* OUT_OF_RANGE */
        log_warn_rl(&self->rl_oap, "uplink: OAP rejected %s: %s: %s",
                    shortname, oap_status_name(r->status), r->details);
        return UPLINK_CALL_REJECTED;
    default:
        self->backoff_ms = self->backoff_ms
                               ? self->backoff_ms * 2 : 1000;
        if (self->backoff_ms > self->opts.max_backoff_ms)
            self->backoff_ms = self->opts.max_backoff_ms;
        self->retry_at = self->now + self->backoff_ms;
        log_warn_rl(&self->rl_oap, "uplink: OAP %s: %s failed: %s: %s; "
                    "retrying in %" PRIu64 " ms", self->opts.addr, shortname,
                    oap_status_name(r->status), r->details, self->backoff_ms);
        self->up = false;
        self->ever_failed = true;
        oap_conn_reset(self->conn);
        stats_set(self->m_connected, 0);
        return UPLINK_CALL_DOWN;
    }
}

bool
uplink_may_call(const uplink_t *self)
{
    return self->up || self->now >= self->retry_at;
}

size_t
uplink_pack(uplink_t *self, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (len + 1 > self->enc_cap) {
        size_t cap = self->enc_cap ? self->enc_cap : 4096;
        while (cap < len + 1)
            cap *= 2;
        uint8_t *grown = realloc(self->enc, cap);
        if (!grown)
            return 0;
        self->enc = grown;
        self->enc_cap = cap;
    }
    return protobuf_c_message_pack(msg, self->enc);
}

/* --------------------------------------------------------------- input */

int
uplink_on_msg(uplink_t *self, const msg_decoded_t *m, uint64_t now_ms)
{
    self->now = now_ms;
    /* Idle (no OAP): nothing to report them to. */
    if (!self->conn)
        return 0;
    switch (m->id) {
    case MSG_PROC_EVENTS:
        uplink_processes_take_events(self, m->body);
        break;
    case MSG_AGG_PROFILE:
        uplink_data_take_profiles(self, m->body);
        break;
    case MSG_CTL_TASKS:
        uplink_continuous_watch_engine(self, m->hdr);
        uplink_net_take_tasks(self, m->body);
        break;
    case MSG_TRIGGER:
        uplink_continuous_take_trigger(self, m->body);
        break;
    case MSG_METERS:
        uplink_continuous_take_meters(self, m->body);
        break;
    case MSG_NET_REPORT:
        uplink_net_take_report(self, m->body);
        break;
    default:
        break;
    }
    return 0;
}

int
uplink_handle(uplink_t *self, const char *topic, const void *payload,
              size_t len, uint64_t now_ms)
{
    msg_decoded_t m;
    char err[160];
    int rc;

    self->now = now_ms;
    arena_reset(self->arena);
    rc = msg_decode(topic, payload, len, self->arena, &m, err, sizeof err);
    if (rc == 0)
        rc = uplink_on_msg(self, &m, now_ms);
    else if (rc == 1)
        rc = 0;                     /* no message of ours has this topic */
    else
        log_warn_rl(&self->rl_input, "uplink: malformed %s message "
                    "dropped: %s", topic, err);
    arena_reset(self->arena);
    return rc;
}

/* ---------------------------------------------------------------- tick */
/* The OAP calls that are due, in dependency order; stops at the first
 * sign the OAP went away. */
static void
s_calls(uplink_t *self)
{
    if (!uplink_may_call(self))
        return;
    if (uplink_processes_call(self) != 0 || !uplink_may_call(self))
        return;
    if (uplink_tasks_query(self) != 0 || !uplink_may_call(self))
        return;
    if (uplink_continuous_query_policies(self) != 0 || !uplink_may_call(self))
        return;
    /* A call of this tick found the OAP back after a failure: re-report
     * before sending data that names the processes. */
    if (self->full_report_due && uplink_processes_call(self) != 0)
        return;
    uplink_data_flush(self);
}

static void
s_publish_k8s(uplink_t *self)
{
    wire_k8s_containers_t m;
    if (k8s_disc_containers(self->k8s, self->opts.node_name, &m) != 0) {
        log_warn_rl(&self->rl_input, "uplink: out of memory for "
                    "k8s.containers");
        return;
    }
    int rc = self->opts.publish(self->opts.cb_arg, MSG_K8S_CONTAINERS, &m);
    if (rc == 0)
        stats_inc(self->m_k8s_published);
    else if (rc == BUS_TOO_BIG)
        log_warn_rl(&self->rl_input, "uplink: the container table does not "
                    "fit k8s.containers");
    k8s_disc_containers_free(&m);
}

void
uplink_k8s_tick(uplink_t *self, uint64_t now_ms)
{
    if (!self->k8s)
        return;
    k8s_disc_poll(self->k8s, now_ms);
    uint64_t gen = k8s_disc_generation(self->k8s);
    if (gen != self->k8s_gen_published || now_ms >= self->next_k8s_publish) {
        self->k8s_gen_published = gen;
        self->next_k8s_publish = now_ms + UPLINK_K8S_PUBLISH_MS;
        s_publish_k8s(self);
    }
    /* A pod table change can name processes already running (the runtime
     * starts a container before the API shows its id): match the known
     * processes again and report them at once. */
    if (self->conn && self->started && gen != self->k8s_gen_scanned &&
        now_ms >= self->next_k8s_rescan) {
        self->k8s_gen_scanned = gen;
        self->next_k8s_rescan = now_ms + UPLINK_K8S_RESCAN_MS;
        self->now = now_ms;
        uplink_processes_scan(self);
        self->next_quick_report = now_ms;
    }
}

void
uplink_tick(uplink_t *self, uint64_t now_ms)
{
    self->now = now_ms;
    if (!self->conn)
        return;
    if (!self->started) {
        self->started = true;
        /* The first heartbeat, right now, reports what proc.events told. */
        self->next_heartbeat = now_ms;
        self->next_check = now_ms;
        self->next_policy = now_ms;
        self->next_flush = now_ms + self->opts.flush_ms;
        self->next_proc_ids = now_ms;
    }
    s_calls(self);
    /* proc.ids goes out whether or not the OAP answers: the policy engine
     * needs the pid -> service mapping either way. */
    bool periodic = now_ms >= self->next_proc_ids;
    if (periodic)
        self->next_proc_ids = now_ms + self->opts.heartbeat_ms;
    uplink_continuous_publish_proc_ids(self, periodic);
}
