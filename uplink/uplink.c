/* The uplink's logic: see uplink.h and uplink/README.md. */
#include "uplink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "Command.pb-c.h"
#include "Process.pb-c.h"
#include "Profiling.pb-c.h"
#include "arena.h"
#include "commands.h"
#include "contproto.h"
#include "databuf.h"
#include "hash.h"
#include "log.h"
#include "oap_conn.h"
#include "policybook.h"
#include "proctable.h"
#include "procscan.h"
#include "profdata.h"
#include "symcheck.h"

#define M_REPORT    "/skywalking.v3.EBPFProcessService/reportProcesses"
#define M_KEEPALIVE "/skywalking.v3.EBPFProcessService/keepAlive"
#define M_QUERY     "/skywalking.v3.EBPFProfilingService/queryTasks"
#define M_COLLECT   "/skywalking.v3.EBPFProfilingService/collectProfilingData"
#define M_POLICIES  "/skywalking.v3.ContinuousProfilingService/queryPolicies"
#define M_TRIGGER   "/skywalking.v3.ContinuousProfilingService/reportProfilingTask"
#define M_METERS    "/skywalking.v3.MeterReportService/collectBatch"

/* Processes per reportProcesses/keepAlive call: keeps each request far
 * below the OAP's 4 MiB message limit on hosts with thousands of them. */
#define UPLINK_PROCS_PER_CALL 500
#define UPLINK_MAX_PROCS      65536
/* How long an exited process keeps its processId, so profiles flushed
 * after its exit are still attributed. */
#define UPLINK_EXIT_GRACE_MS  120000
/* New processes learnt from events are reported at most this often
 * between heartbeats. */
#define UPLINK_QUICK_REPORT_MS 1000
/* Decoded bus messages are bounded by the wire limits; this caps what one
 * agg.profile batch may make us allocate. */
#define UPLINK_ARENA_LIMIT    (64u << 20)
/* Services named in one queryPolicies call (one per finder-rendered
 * service name; far more than a host runs). */
#define UPLINK_MAX_SERVICES   4096
/* k8s.containers is republished this often even when unchanged. */
#define UPLINK_K8S_PUBLISH_MS 5000
/* A changed pod table rescans /proc at most this often. */
#define UPLINK_K8S_RESCAN_MS  1000

struct uplink {
    uplink_options_t opts;
    char *strings[12];             /* owned copies behind opts */
    stats_t *stats;
    finder_set_t *finders;
    finder_env_t env;
    char agent_id[256];
    char host_name[256];
    char host_ip[64];

    oap_conn_t *conn;              /* NULL when idle */
    symcheck_t *symcheck;
    proc_table_t *procs;
    databuf_t *buf;
    arena_t *arena;
    wire_buf_t out;
    uint8_t *enc;                  /* encoding scratch */
    size_t enc_cap;
    uint8_t *msg;                  /* stream message scratch */
    size_t msg_cap;

    uint64_t now;
    bool started;
    uint64_t next_heartbeat, next_check, next_flush, next_quick_report;
    uint64_t next_policy, next_proc_ids;
    uint64_t round;
    bool full_report_due;
    uint64_t scan_gen;

    bool up;                       /* last call reached the OAP */
    bool ever_failed;              /* a failure happened since the last up */
    bool ever_up;
    uint64_t backoff_ms;
    uint64_t retry_at;
    bool auth_logged;
    int64_t latest_update_ms;
    uint64_t seq;                  /* task.request */
    uint64_t seq_proc_ids, seq_policy;

    k8s_disc_t *k8s;               /* NULL: no Kubernetes discovery */
    uint64_t k8s_gen_published, k8s_gen_scanned;
    uint64_t next_k8s_publish, next_k8s_rescan;
    uint64_t seq_k8s;
    stats_metric_t *m_k8s_published, *m_k8s_unknown;

    policy_book_t *book;           /* service -> policy UUID */
    uint64_t policy_round;
    uint64_t proc_ids_hash;        /* state last published on proc.ids */
    bool proc_ids_sent;
    char engine_sender[64];        /* policy engine seen on ctl.tasks */
    uint64_t engine_seq;
    log_ratelimit_t rl_input, rl_oap;

    stats_metric_t *m_bytes, *m_messages, *m_buffer_bytes, *m_buffer_dropped,
        *m_reconnects, *m_reported, *m_tasks, *m_cmd_invalid,
        *m_replies_invalid, *m_procs_dropped, *m_no_process, *m_processes,
        *m_connected, *m_tasks_unmapped, *m_policies, *m_triggers,
        *m_meters_sent, *m_proc_ids;
};

/* ------------------------------------------------------------- options */
void
uplink_options_defaults(uplink_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->addr = "";
    o->ca_path = o->cert_path = o->key_path = o->auth_token = "";
    o->timeout_ms = 5000;
    o->buffer_size = 4u << 20;
    o->heartbeat_ms = 20000;
    o->report_period = 10;
    o->check_ms = 10000;
    o->flush_ms = 5000;
    o->max_backoff_ms = 30000;
    o->auth_backoff_ms = 300000;
    o->agent_id = "";
    o->sender = "uplink/0";
    o->proc_root = "/proc";
    o->scan_proc = true;
    o->debug_dir = "/usr/lib/debug";
}

static const char *
s_finder_key(char *buf, size_t size, size_t i, const char *field)
{
    snprintf(buf, size, "process_discovery.scanner.regex[%zu].%s", i, field);
    return buf;
}

/* labels may be a comma-separated string or a YAML list. */
static char *
s_finder_labels(const config_t *cfg, size_t i)
{
    char key[160];
    const char *flat = config_raw(cfg, s_finder_key(key, sizeof key, i,
                                                     "labels"));
    if (flat)
        return strdup(flat);
    size_t n = config_list_len(cfg, key);
    size_t len = 0;
    char *out = calloc(1, 1);
    for (size_t l = 0; out && l < n; l++) {
        char item[200];
        snprintf(item, sizeof item, "%s[%zu]", key, l);
        const char *v = config_raw(cfg, item);
        if (!v || !*v)
            continue;
        char *grown = realloc(out, len + strlen(v) + 2);
        if (!grown) {
            free(out);
            return NULL;
        }
        out = grown;
        len += (size_t)sprintf(out + len, "%s%s", len ? "," : "", v);
    }
    return out;
}

int
uplink_options_from_config(uplink_options_t *o, finder_set_t *finders,
                           const config_t *cfg, char *err, size_t errlen)
{
    uplink_options_defaults(o);
    o->addr = config_str(cfg, "core.backend.addr");
    o->tls = config_bool(cfg, "core.backend.enable_TLS");
    o->ca_path = config_str(cfg, "core.backend.ca_pem_path");
    o->cert_path = config_str(cfg, "core.backend.client_pem_path");
    o->key_path = config_str(cfg, "core.backend.client_key_path");
    o->skip_verify = config_bool(cfg, "core.backend.insecure_skip_verify");
    o->auth_token = config_str(cfg, "core.backend.authentication");
    o->timeout_ms = config_duration_ms(cfg, "core.backend.upstream_timeout");
    o->buffer_size = config_size(cfg, "core.backend.buffer_size");
    o->heartbeat_ms = config_duration_ms(
        cfg, "process_discovery.heartbeat_period");
    int64_t period = config_int(cfg,
                                "process_discovery.properties_report_period");
    o->check_ms = config_duration_ms(cfg, "profiling.check_interval");
    o->flush_ms = config_duration_ms(cfg, "profiling.flush_interval");
    o->agent_id = config_str(cfg, "uplink.agent_id");
    o->debug_dir = config_str(cfg, "symbolizer.debug_dirs");

    if (period < 1 || period > 1000000) {
        snprintf(err, errlen, "config key process_discovery."
                 "properties_report_period = '%" PRId64 "': must be 1 or more",
                 period);
        return -1;
    }
    o->report_period = (uint32_t)period;
    const struct { const char *key; uint64_t v; } positive[] = {
        { "core.backend.upstream_timeout", o->timeout_ms },
        { "process_discovery.heartbeat_period", o->heartbeat_ms },
        { "profiling.check_interval", o->check_ms },
        { "profiling.flush_interval", o->flush_ms },
        { "core.backend.buffer_size", o->buffer_size },
    };
    for (size_t i = 0; i < sizeof positive / sizeof positive[0]; i++) {
        if (positive[i].v == 0) {
            snprintf(err, errlen, "config key %s = '%s': must be more than 0",
                     positive[i].key, config_str(cfg, positive[i].key));
            return -1;
        }
    }

    o->node_name = config_str(cfg, "node_name");
    size_t n = config_list_len(cfg, "process_discovery.scanner.regex");
    for (size_t i = 0; i < n; i++) {
        char k[6][160];
        finder_spec_t spec = {
            config_raw(cfg, s_finder_key(k[0], sizeof k[0], i,
                                         "match_cmd_regex")),
            config_raw(cfg, s_finder_key(k[1], sizeof k[1], i, "layer")),
            config_raw(cfg, s_finder_key(k[2], sizeof k[2], i,
                                         "service_name")),
            config_raw(cfg, s_finder_key(k[3], sizeof k[3], i,
                                         "instance_name")),
            config_raw(cfg, s_finder_key(k[4], sizeof k[4], i,
                                         "process_name")),
            NULL, { NULL }, 0,
        };
        char *labels = s_finder_labels(cfg, i);
        spec.labels = labels;
        char why[256];
        int rc = finder_set_add(finders, &spec, why, sizeof why);
        free(labels);
        if (rc != 0) {
            snprintf(err, errlen, "config key process_discovery.scanner."
                     "regex[%zu]: %s", i, why);
            return -1;
        }
    }
    return 0;
}

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
    self->m_proc_ids = stats_counter(st, "proc_ids_published", NULL,
                                     "process entity states published on "
                                     "proc.ids");
    self->m_k8s_published = stats_counter(
        st, "k8s_containers_published", NULL,
        "container tables published on k8s.containers");
    self->m_k8s_unknown = stats_counter(
        st, "k8s_unknown_container", NULL,
        "scanned processes in a container no known pod runs (not reported "
        "until the API names it)");
}

/* Counted drops of continuous-profiling input, by what went wrong. */
static void
s_count_drop(uplink_t *self, const char *what, const char *reason,
             uint64_t n)
{
    char labels[64];
    snprintf(labels, sizeof labels, "reason=\"%s\"", reason);
    stats_add(stats_counter(self->stats, what, labels,
                            "continuous-profiling input dropped, by reason"),
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
    o->sender = s_keep(self, 6, opts->sender);
    o->proc_root = s_keep(self, 7, opts->proc_root ? opts->proc_root
                                                   : "/proc");
    /* symbolizer.debug_dirs is colon separated: the first root is the
     * one build-id paths live under. */
    const char *dd = opts->debug_dir ? opts->debug_dir : "";
    char first[512];
    snprintf(first, sizeof first, "%.*s", (int)strcspn(dd, ":"), dd);
    o->debug_dir = s_keep(self, 8, first);
    o->node_name = s_keep(self, 9, opts->node_name && *opts->node_name
                                       ? opts->node_name : "");
    for (size_t i = 0; i <= 9; i++)
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
        free(self->strings[9]);
        o->node_name = s_keep(self, 9, self->host_name);
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
    wire_buf_init(&self->out);

    if (!(self->arena = arena_new(UPLINK_ARENA_LIMIT)) ||
        !(self->procs = proc_table_new(UPLINK_MAX_PROCS)) ||
        !(self->buf = databuf_new(o->buffer_size)) ||
        !(self->book = policy_book_new(UPLINK_MAX_SERVICES)) ||
        !(self->symcheck = symcheck_new(o->debug_dir)))
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
    symcheck_destroy(&self->symcheck);
    proc_table_destroy(&self->procs);
    databuf_destroy(&self->buf);
    policy_book_destroy(&self->book);
    arena_destroy(&self->arena);
    finder_set_destroy(&self->finders);
    wire_buf_release(&self->out);
    free(self->enc);
    free(self->msg);
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
typedef enum { S_CALL_OK, S_CALL_REJECTED, S_CALL_DOWN } s_call_t;

static s_call_t
s_account(uplink_t *self, const char *method, const oap_result_t *r)
{
    const char *shortname = strrchr(method, '/') + 1;
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
        return S_CALL_OK;
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
        return S_CALL_DOWN;
    case 12: /* UNIMPLEMENTED */
    case 3:  /* INVALID_ARGUMENT */
    case 5:  /* NOT_FOUND */
    case 6:  /* ALREADY_EXISTS */
    case 9:  /* FAILED_PRECONDITION */
    case 11: /* OUT_OF_RANGE */
        log_warn_rl(&self->rl_oap, "uplink: OAP rejected %s: %s: %s",
                    shortname, oap_status_name(r->status), r->details);
        return S_CALL_REJECTED;
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
        return S_CALL_DOWN;
    }
}

static bool
s_may_call(const uplink_t *self)
{
    return self->up || self->now >= self->retry_at;
}

static size_t
s_pack(uplink_t *self, const ProtobufCMessage *msg)
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

/* ----------------------------------------------------------- processes */
/* Kubernetes first (a process in a known pod is a k8sProcess, in a
 * container no known pod runs it waits), then the host finders. 1 when
 * entity (and *k8s) were filled, 0 when the process is not reported. */
static int
s_identify(uplink_t *self, const finder_proc_t *fp, proc_entity_t *entity,
           k8s_identity_t *k8s, bool *in_pod)
{
    *in_pod = false;
    if (self->k8s) {
        switch (k8s_disc_match(self->k8s, self->opts.proc_root, fp,
                               &self->env, entity, k8s)) {
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
s_learn(uplink_t *self, const procscan_info_t *info)
{
    proc_entry_t *old = proc_table_get(self->procs, info->pid);
    uint64_t k8s_gen = self->k8s ? k8s_disc_generation(self->k8s) : 0;
    if (old && !old->exited && !strcmp(old->cmdline, info->cmdline) &&
        (!*info->exe || !strcmp(old->exe, info->exe)) &&
        old->k8s_gen == k8s_gen) {
        old->seen_scan = self->scan_gen;
        return;
    }
    finder_proc_t fp = { info->pid, info->exe, info->cmdline, info->comm,
                         NULL };
    proc_entity_t entity;
    k8s_identity_t *k8s = calloc(1, sizeof *k8s);
    bool in_pod = false;
    if (!k8s || !s_identify(self, &fp, &entity, k8s, &in_pod)) {
        if (old)
            proc_table_remove(self->procs, info->pid);
        free(k8s);
        return;
    }
    if (old && !old->exited && !strcmp(old->cmdline, info->cmdline) &&
        s_same_identity(old, &entity, k8s, in_pod)) {
        /* The pod table changed, but not for this process: keep its
         * OAP id rather than reporting it anew. */
        old->k8s_gen = k8s_gen;
        old->seen_scan = self->scan_gen;
        proc_entity_clear(&entity);
        free(k8s);
        return;
    }
    char path[64];
    snprintf(path, sizeof path, "%s/%u/exe", self->opts.proc_root, info->pid);
    bool support = symcheck_has_symbols(self->symcheck, path) ||
                   (*info->exe && symcheck_has_symbols(self->symcheck,
                                                       info->exe));
    proc_entry_t *e = proc_entry_new(info->pid, info->exe, info->cmdline,
                                     info->comm, &entity);
    if (!e) {
        stats_inc(self->m_procs_dropped);
        free(k8s);
        return;
    }
    e->support_ebpf = support;
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
                    "pid %u not reported", UPLINK_MAX_PROCS, info->pid);
    }
}

static int
s_scan_one(void *arg, uint32_t pid)
{
    uplink_t *self = arg;
    procscan_info_t *info = malloc(sizeof *info);
    if (!info)
        return 0;
    if (procscan_read(self->opts.proc_root, pid, info) == 0)
        s_learn(self, info);
    free(info);
    return 0;
}

static void
s_scan(uplink_t *self)
{
    self->scan_gen++;
    if (procscan_each(self->opts.proc_root, s_scan_one, self) == 0)
        return;        /* /proc unreadable: keep what events told us */
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
            /* The properties the OAP and its UI read (protocol-facts.md);
             * a pod's process adds where it runs. */
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
        size_t len = s_pack(self, &list.base);
        if (!len)
            goto cleanup;
        oap_result_t r;
        oap_conn_unary(self->conn, M_REPORT, self->enc, len, &r);
        s_call_t outcome = s_account(self, M_REPORT, &r);
        if (outcome == S_CALL_OK) {
            stats_add(self->m_reported, n);
            for (size_t i = 0; i < n; i++) {
                batch[i]->needs_report = false;
                batch[i]->reported_round = self->round;
            }
            s_take_process_ids(self, &r);
        }
        oap_result_clear(&r);
        if (outcome == S_CALL_DOWN)
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
        size_t len = s_pack(self, &list.base);
        if (!len)
            goto cleanup;
        oap_result_t r;
        oap_conn_unary(self->conn, M_KEEPALIVE, self->enc, len, &r);
        s_call_t outcome = s_account(self, M_KEEPALIVE, &r);
        oap_result_clear(&r);
        if (outcome == S_CALL_DOWN)
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

static int
s_processes(uplink_t *self)
{
    uint64_t now = self->now;
    if (now >= self->next_heartbeat || self->full_report_due) {
        bool heartbeat = now >= self->next_heartbeat;
        if (heartbeat) {
            self->round++;
            self->next_heartbeat = now + self->opts.heartbeat_ms;
            if (self->opts.scan_proc)
                s_scan(self);
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

/* --------------------------------------------------------------- tasks */
static uint32_t
s_pid_of(void *arg, const char *process_id)
{
    uplink_t *self = arg;
    proc_entry_t *e = proc_table_find_id(self->procs, process_id);
    return e ? e->pid : 0;
}

/* Publishes tasks on task.request. 0, or -1 when they were dropped. */
static int
s_publish_tasks(uplink_t *self, const wire_task_t *tasks, uint32_t ntasks)
{
    wire_task_set_t set;
    memset(&set, 0, sizeof set);
    wire_header_set(&set.hdr, self->opts.sender, ++self->seq);
    set.generation = 0;
    set.ntasks = ntasks;
    set.tasks = tasks;
    wire_buf_reset(&self->out);
    if (wire_encode_task_set(&set, &self->out) != 0) {
        log_warn_rl(&self->rl_oap, "uplink: %u task(s) from the OAP break "
                    "the wire bounds; dropped", ntasks);
        return -1;
    }
    if (self->opts.publish &&
        self->opts.publish(self->opts.cb_arg, TOPIC_TASK_REQUEST,
                           self->out.data, self->out.len) != 0) {
        log_warn_rl(&self->rl_oap, "uplink: task.request dropped by the bus");
        return -1;
    }
    for (uint32_t i = 0; i < ntasks; i++)
        log_info("uplink: task %s (%s, %s, %u process(es)) from the OAP",
                 tasks[i].task_id,
                 tasks[i].target == WIRE_TARGET_ON_CPU ? "ON_CPU" :
                 tasks[i].target == WIRE_TARGET_OFF_CPU ? "OFF_CPU" :
                 "NETWORK",
                 tasks[i].trigger == WIRE_TRIGGER_CONTINUOUS ? "continuous"
                                                             : "fixed time",
                 tasks[i].npids);
    return 0;
}

static int
s_query_tasks(uplink_t *self)
{
    if (self->now < self->next_check)
        return 0;
    self->next_check = self->now + self->opts.check_ms;
    Skywalking__V3__EBPFProfilingTaskQuery q =
        SKYWALKING__V3__EBPFPROFILING_TASK_QUERY__INIT;
    q.roverinstanceid = self->agent_id;
    q.latestupdatetime = self->latest_update_ms;
    size_t len = s_pack(self, &q.base);
    if (!len)
        return 0;
    oap_result_t r;
    oap_conn_unary(self->conn, M_QUERY, self->enc, len, &r);
    s_call_t outcome = s_account(self, M_QUERY, &r);
    if (outcome == S_CALL_OK) {
        commands_tasks_t ct;
        arena_reset(self->arena);
        if (commands_parse_tasks(r.reply, r.reply_len, self->arena, s_pid_of,
                                 self, &ct, &self->rl_oap) != 0) {
            stats_inc(self->m_replies_invalid);
            log_warn_rl(&self->rl_oap, "uplink: queryTasks reply is not a "
                        "Commands message (%zu bytes)", r.reply_len);
        } else {
            stats_add(self->m_cmd_invalid, ct.invalid);
            stats_add(self->m_tasks_unmapped, ct.unmapped);
            if (ct.ntasks) {
                stats_add(self->m_tasks, ct.ntasks);
                s_publish_tasks(self, ct.tasks, ct.ntasks);
            }
            if (ct.next_update_ms > self->latest_update_ms)
                self->latest_update_ms = ct.next_update_ms;
        }
        arena_reset(self->arena);
    }
    oap_result_clear(&r);
    return outcome == S_CALL_DOWN ? -1 : 0;
}

/* ---------------------------------------------------------------- data */
typedef struct {
    uplink_t *self;
    databuf_item_t *item;          /* next to send */
    const char *last_task, *last_proc;
    size_t unresolved;
    uint64_t now_wall;
} s_stream_t;

static const char *
s_resolve(uplink_t *self, const databuf_item_t *item)
{
    if (*item->process_id)
        return item->process_id;
    proc_entry_t *e = proc_table_get(self->procs, item->pid);
    return e ? e->process_id : NULL;
}

static int
s_next_msg(void *arg, const void **data, size_t *len)
{
    s_stream_t *st = arg;
    uplink_t *self = st->self;
    for (; st->item; st->item = st->item->next) {
        const char *proc = s_resolve(self, st->item);
        if (!proc) {
            st->unresolved++;
            continue;
        }
        databuf_item_t *item = st->item;
        st->item = item->next;
        if (st->last_task && !strcmp(st->last_task, item->task_id) &&
            !strcmp(st->last_proc, proc)) {
            *data = item->data;
            *len = item->len;
            return 1;
        }
        /* First message of this task and process in the stream: prefix
         * the metadata (concatenated protobuf messages merge). */
        size_t mlen = profdata_encode_meta(item->task_id, proc, item->start_ms,
                                           st->now_wall, &self->enc,
                                           &self->enc_cap);
        if (!mlen)
            return -1;
        if (mlen + item->len > self->msg_cap) {
            size_t cap = self->msg_cap ? self->msg_cap : 4096;
            while (cap < mlen + item->len)
                cap *= 2;
            uint8_t *grown = realloc(self->msg, cap);
            if (!grown)
                return -1;
            self->msg = grown;
            self->msg_cap = cap;
        }
        memcpy(self->msg, self->enc, mlen);
        memcpy(self->msg + mlen, item->data, item->len);
        st->last_task = item->task_id;
        st->last_proc = proc;
        *data = self->msg;
        *len = mlen + item->len;
        return 1;
    }
    return 0;
}

static int
s_flush(uplink_t *self)
{
    if (self->now < self->next_flush)
        return 0;
    self->next_flush = self->now + self->opts.flush_ms;
    if (!databuf_count(self->buf))
        return 0;
    s_stream_t st = { self, databuf_head(self->buf), NULL, NULL, 0,
                      now_wall_ms() };
    oap_result_t r;
    oap_conn_stream(self->conn, M_COLLECT, s_next_msg, &st, &r);
    s_call_t outcome = s_account(self, M_COLLECT, &r);
    if (outcome != S_CALL_DOWN) {
        /* Delivered, or refused for good (resending would be refused
         * again): either way these messages are done. */
        while (databuf_count(self->buf))
            databuf_pop(self->buf);
        stats_add(self->m_no_process, st.unresolved);
        if (st.unresolved)
            log_warn_rl(&self->rl_oap, "uplink: %zu profiling message(s) "
                        "dropped: their process has no OAP id",
                        st.unresolved);
    }
    stats_set(self->m_buffer_bytes, (double)databuf_bytes(self->buf));
    oap_result_clear(&r);
    return outcome == S_CALL_DOWN ? -1 : 0;
}

static void
s_take_profiles(uplink_t *self, const wire_profile_batch_t *batch)
{
    for (uint32_t p = 0; p < batch->nprofiles; p++) {
        const wire_task_profile_t *tp = &batch->profiles[p];
        if (tp->target != WIRE_TARGET_ON_CPU &&
            tp->target != WIRE_TARGET_OFF_CPU)
            continue;
        const char *proc = tp->process_id ? tp->process_id : "";
        for (uint32_t s = 0; s < tp->nstacks; s++) {
            size_t len = profdata_encode_stack(tp->target, &tp->stacks[s],
                                               &self->enc, &self->enc_cap);
            int dropped = len ? databuf_push(self->buf, tp->task_id, proc,
                                             tp->pid, tp->start_ms, self->enc,
                                             len)
                              : -1;
            if (dropped != 0) {
                stats_add(self->m_buffer_dropped,
                          dropped < 0 ? 1 : (uint64_t)dropped);
                log_warn_rl(&self->rl_input, "uplink: profiling buffer full "
                            "(%" PRIu64 " bytes): oldest data dropped",
                            self->opts.buffer_size);
            }
        }
    }
    stats_set(self->m_buffer_bytes, (double)databuf_bytes(self->buf));
}

/* ------------------------------------------------ continuous profiling */
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
    wire_header_set(&m.hdr, self->opts.sender, self->seq_policy + 1);
    m.json = json;
    wire_buf_reset(&self->out);
    if (wire_encode_policy_update(&m, &self->out) != 0) {
        stats_inc(self->m_cmd_invalid);
        log_warn_rl(&self->rl_oap, "uplink: policy document of %zu bytes "
                    "is over the bus limit; skipped", len);
        return;
    }
    if (!self->opts.publish ||
        self->opts.publish(self->opts.cb_arg, TOPIC_POLICY_UPDATE,
                           self->out.data, self->out.len) != 0) {
        log_warn_rl(&self->rl_oap, "uplink: policy.update dropped by the "
                    "bus; asking the OAP again next check");
        return;
    }
    self->seq_policy++;
    int n = policy_book_learn(self->book, json, len, true, err, sizeof err);
    stats_inc(self->m_policies);
    log_info("uplink: continuous-profiling policies of %d service(s) from "
             "the OAP", n);
}

/* queryPolicies with every service this agent has processes for and the
 * policy UUID it holds for each. 0, or -1 when the OAP went away. */
static int
s_query_policies(uplink_t *self)
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
    s_call_t outcome = s_account(self, M_POLICIES, &r);
    if (outcome == S_CALL_OK) {
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
    rc = outcome == S_CALL_DOWN ? -1 : 0;
cleanup:
    free(services);
    free(uuids);
    return rc;
}

/* A policy fired for a process: reportProfilingTask, and the task the OAP
 * names goes to the policy engine on task.request. No retry: a trigger
 * that cannot be reported now is dropped (the policy engine keeps the
 * process silenced either way, so retrying would only pile up). */
static void
s_take_trigger(uplink_t *self, const wire_trigger_t *t)
{
    proc_entry_t *e = proc_table_get(self->procs, t->pid);
    if (!e || e->exited || !e->process_id) {
        s_count_drop(self, "triggers_dropped", "unknown_process", 1);
        log_warn_rl(&self->rl_input, "uplink: trigger for pid %u dropped: "
                    "the OAP has no id for that process", t->pid);
        return;
    }
    if (!s_may_call(self)) {
        s_count_drop(self, "triggers_dropped", "oap_down", 1);
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
        s_count_drop(self, "triggers_dropped", "no_memory", 1);
        return;
    }
    oap_result_t r;
    oap_conn_unary(self->conn, M_TRIGGER, self->enc, len, &r);
    s_call_t outcome = s_account(self, M_TRIGGER, &r);
    char task_id[WIRE_MAX_STR + 1];
    int found = outcome == S_CALL_OK
                    ? contproto_report_task_id(r.reply, r.reply_len, task_id,
                                               sizeof task_id)
                    : 1;
    oap_result_clear(&r);
    if (outcome != S_CALL_OK) {
        s_count_drop(self, "triggers_dropped",
                     outcome == S_CALL_DOWN ? "oap_down" : "rejected", 1);
        return;
    }
    if (found != 0) {
        stats_inc(found < 0 ? self->m_replies_invalid : self->m_cmd_invalid);
        s_count_drop(self, "triggers_dropped", "no_task", 1);
        log_warn_rl(&self->rl_oap, "uplink: reportProfilingTask for pid %u "
                    "answered without a ContinuousProfilingReportTask "
                    "TaskId", t->pid);
        return;
    }
    uint64_t now_wall = now_wall_ms();
    const char *process_id = e->process_id;
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
        .extension_json = "",
    };
    if (s_publish_tasks(self, &task, 1) != 0) {
        s_count_drop(self, "triggers_dropped", "bus", 1);
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
s_cmp_meter(const void *a, const void *b, void *arg)
{
    const s_meter_stream_t *st = arg;
    uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;
    const proc_entity_t *ea = &st->entry[ia]->entity;
    const proc_entity_t *eb = &st->entry[ib]->entity;
    int c = strcmp(ea->service, eb->service);
    if (!c)
        c = strcmp(ea->instance, eb->instance);
    return c ? c : (ia > ib) - (ia < ib);
}

static int
s_next_meters(void *arg, const void **data, size_t *len)
{
    s_meter_stream_t *st = arg;
    if (st->at >= st->n)
        return 0;
    const proc_entity_t *first = &st->entry[st->order[st->at]]->entity;
    size_t k = 0;
    for (; st->at < st->n; st->at++, k++) {
        uint32_t i = st->order[st->at];
        const proc_entity_t *en = &st->entry[i]->entity;
        if (strcmp(en->service, first->service) ||
            strcmp(en->instance, first->instance))
            break;
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

static void
s_take_meters(uplink_t *self, const wire_meters_t *m)
{
    s_meter_stream_t st = { self, m, NULL, NULL, 0, 0, 0, NULL };
    if (!m->nmeters)
        return;
    if (!s_may_call(self)) {
        s_count_drop(self, "meters_dropped", "oap_down", m->nmeters);
        return;
    }
    st.order = calloc(m->nmeters, sizeof *st.order);
    st.entry = calloc(m->nmeters, sizeof *st.entry);
    st.scratch = calloc(m->nmeters, sizeof *st.scratch);
    if (!st.order || !st.entry || !st.scratch) {
        s_count_drop(self, "meters_dropped", "no_memory", m->nmeters);
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
        s_count_drop(self, "meters_dropped", "unknown_process", unknown);
        log_warn_rl(&self->rl_input, "uplink: %zu meter value(s) of "
                    "processes not reported to the OAP dropped", unknown);
    }
    if (!st.n)
        goto cleanup;
    qsort_r(st.order, st.n, sizeof *st.order, s_cmp_meter, &st);
    oap_result_t r;
    oap_conn_stream(self->conn, M_METERS, s_next_meters, &st, &r);
    s_call_t outcome = s_account(self, M_METERS, &r);
    oap_result_clear(&r);
    if (outcome == S_CALL_OK)
        stats_add(self->m_meters_sent, st.n);
    else
        s_count_drop(self, "meters_dropped",
                     outcome == S_CALL_DOWN ? "oap_down" : "rejected", st.n);
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
static void
s_publish_proc_ids(uplink_t *self, bool force)
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
    wire_header_set(&m.hdr, self->opts.sender, self->seq_proc_ids + 1);
    m.nentities = k;
    m.entities = ents;
    wire_buf_reset(&self->out);
    if (wire_encode_proc_ids(&m, &self->out) != 0) {
        log_warn_rl(&self->rl_input, "uplink: proc.ids of %u processes "
                    "breaks the wire bounds", k);
        goto cleanup;
    }
    if (!self->opts.publish ||
        self->opts.publish(self->opts.cb_arg, TOPIC_PROC_IDS, self->out.data,
                           self->out.len) != 0)
        goto cleanup;      /* digest unchanged: tried again next tick */
    self->seq_proc_ids++;
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
static void
s_watch_engine(uplink_t *self, const wire_header_t *hdr)
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

/* --------------------------------------------------------------- input */
static void
s_take_events(uplink_t *self, const wire_proc_events_t *m)
{
    procscan_info_t *info = malloc(sizeof *info);
    if (!info)
        return;
    for (uint32_t i = 0; i < m->nevents; i++) {
        const wire_proc_event_t *ev = &m->events[i];
        if (ev->type == WIRE_PROC_EXIT) {
            proc_entry_t *e = proc_table_get(self->procs, ev->pid);
            if (e && !e->exited) {
                e->exited = true;
                e->exited_ms = self->now;
            }
            continue;
        }
        if (!ev->cmdline || !*ev->cmdline)
            continue;          /* kernel thread or not readable */
        memset(info, 0, sizeof *info);
        info->pid = ev->pid;
        snprintf(info->exe, sizeof info->exe, "%s", ev->exe ? ev->exe : "");
        snprintf(info->cmdline, sizeof info->cmdline, "%s", ev->cmdline);
        snprintf(info->comm, sizeof info->comm, "%s",
                 ev->comm ? ev->comm : "");
        s_learn(self, info);
    }
    free(info);
    stats_set(self->m_processes, (double)proc_table_count(self->procs));
}

/* A message decoded: the bus tracks its sequence number (gaps = lost). */
static void
s_note_seq(uplink_t *self, const char *topic, const wire_header_t *hdr)
{
    if (self->opts.note_seq)
        self->opts.note_seq(self->opts.cb_arg, topic, hdr->sender, hdr->seq);
}

int
uplink_handle(uplink_t *self, const char *topic, const void *payload,
              size_t len, uint64_t now_ms)
{
    int rc = -1;
    char err[160];
    self->now = now_ms;
    arena_reset(self->arena);
    if (!strcmp(topic, TOPIC_PROC_EVENTS)) {
        wire_proc_events_t m;
        if (wire_decode_proc_events(payload, len, self->arena, &m, err,
                                    sizeof err) != 0)
            goto bad;
        s_note_seq(self, topic, &m.hdr);
        if (self->conn)
            s_take_events(self, &m);
    } else if (!strcmp(topic, TOPIC_AGG_PROFILE)) {
        wire_profile_batch_t m;
        if (wire_decode_profile_batch(payload, len, self->arena, &m, err,
                                      sizeof err) != 0)
            goto bad;
        s_note_seq(self, topic, &m.hdr);
        if (self->conn)
            s_take_profiles(self, &m);
    } else if (!strcmp(topic, TOPIC_CTL_TASKS)) {
        wire_task_set_t m;
        if (wire_decode_task_set(payload, len, self->arena, &m, err,
                                 sizeof err) != 0)
            goto bad;
        s_note_seq(self, topic, &m.hdr);
        if (self->conn)
            s_watch_engine(self, &m.hdr);
    } else if (!strcmp(topic, TOPIC_TRIGGER)) {
        wire_trigger_t m;
        if (wire_decode_trigger(payload, len, self->arena, &m, err,
                                sizeof err) != 0)
            goto bad;
        s_note_seq(self, topic, &m.hdr);
        if (self->conn)
            s_take_trigger(self, &m);
    } else if (!strcmp(topic, TOPIC_METERS)) {
        wire_meters_t m;
        if (wire_decode_meters(payload, len, self->arena, &m, err,
                               sizeof err) != 0)
            goto bad;
        s_note_seq(self, topic, &m.hdr);
        if (self->conn)
            s_take_meters(self, &m);
    }
    rc = 0;
    goto cleanup;
bad:
    log_warn_rl(&self->rl_input, "uplink: malformed %s message dropped: %s",
                topic, err);
cleanup:
    arena_reset(self->arena);
    return rc;
}

/* ---------------------------------------------------------------- tick */
/* The OAP calls that are due, in dependency order; stops at the first
 * sign the OAP went away. */
static void
s_calls(uplink_t *self)
{
    if (!s_may_call(self))
        return;
    if (s_processes(self) != 0 || !s_may_call(self))
        return;
    if (s_query_tasks(self) != 0 || !s_may_call(self))
        return;
    if (s_query_policies(self) != 0 || !s_may_call(self))
        return;
    /* A call of this tick found the OAP back after a failure: re-report
     * before sending data that names the processes. */
    if (self->full_report_due && s_processes(self) != 0)
        return;
    s_flush(self);
}

static void
s_publish_k8s(uplink_t *self)
{
    wire_buf_reset(&self->out);
    if (k8s_disc_encode(self->k8s, self->opts.sender, ++self->seq_k8s,
                        self->opts.node_name, &self->out) != 0) {
        log_warn_rl(&self->rl_input, "uplink: the container table does not "
                    "fit k8s.containers");
        return;
    }
    if (self->opts.publish(self->opts.cb_arg, TOPIC_K8S_CONTAINERS,
                           self->out.data, self->out.len) == 0)
        stats_inc(self->m_k8s_published);
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
     * starts a container before the API shows its id): look at /proc
     * again and report them at once. */
    if (self->conn && self->started && gen != self->k8s_gen_scanned &&
        now_ms >= self->next_k8s_rescan) {
        self->k8s_gen_scanned = gen;
        self->next_k8s_rescan = now_ms + UPLINK_K8S_RESCAN_MS;
        self->now = now_ms;
        if (self->opts.scan_proc)
            s_scan(self);
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
        /* The first heartbeat, right now, scans /proc and reports. */
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
    s_publish_proc_ids(self, periodic);
}
