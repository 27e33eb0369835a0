/* The network room (net.h): which processes are traced (ctl.tasks), the
 * boundary checks of net.events batches, each event applied to its
 * connection (L4 meters of its traffic, protocol detection and feeding),
 * and the report every interval. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "aggregator/net/endpoints.h"
#include "aggregator/net/net_int.h"
#include "aggregator/net/room.h"
#include "log.h"

#define S_DETECT_TRIES 8          /* data events before a stream is unknown */
#define S_TRAFFIC_IDLE_MS (10 * 60 * 1000)
#define S_REPORT_ARENA (256u << 20)

/* ------------------------------------------------------------- helpers */

stats_t *net_stats(net_t *room)
{
    return room->o.stats;
}

uint64_t net_conn_wall_ms(const net_conn_t *c, uint64_t ts_ns)
{
    int64_t wall = (int64_t)ts_ns + c->wall_off_ns;
    return wall > 0 ? (uint64_t)wall / 1000000u : 0;
}

/* The task whose sampling rules apply to pid: the first naming it with
 * rules, else the first naming it (the policy engine's capture task for
 * the HTTP monitors has none, and must not hide an OAP task's rules). */
static net_task_t *s_pid_task(const net_t *self, uint32_t pid)
{
    net_task_t *first = NULL;
    for (size_t i = 0; i < self->ntasks; i++)
        for (uint32_t k = 0; k < self->tasks[i].npids; k++)
            if (self->tasks[i].pids[k] == pid) {
                if (net_rules_any(self->tasks[i].rules))
                    return &self->tasks[i];
                if (!first)
                    first = &self->tasks[i];
            }
    return first;
}

static int s_pid_match(const void *item, const void *key)
{
    return ((const net_pid_t *)item)->pid == *(const uint32_t *)key;
}

static net_pid_t *s_pid(const net_t *self, uint32_t pid)
{
    return hashmap_find(self->pids, hash_split64(pid), &pid);
}

int net_sampling_on(net_t *room, uint32_t pid)
{
    net_pid_t *p = s_pid(room, pid);
    return p && p->task && net_rules_any(p->task->rules);
}

const net_rule_t *net_rule_for(net_t *room, uint32_t pid, const char *uri)
{
    net_pid_t *p = s_pid(room, pid);
    return p && p->task ? net_rules_match(p->task->rules, uri) : NULL;
}

void net_endpoint_record(net_t *room, uint32_t pid, const char *uri,
                         int status, double dur_ms)
{
    if (net_endpoints_record(room->endpoints, pid, uri, status, dur_ms) != 0)
        stats_inc(room->c_endpoints_dropped);
}

/* ------------------------------------------------------------ lifecycle */

static void s_evict(net_conn_t *c, void *arg);

net_t *net_new(const net_options_t *o)
{
    net_t *self = NULL;
    if (!o || !o->stats || o->max_conns < 1 || o->max_endpoints < 1)
        goto cleanup;
    self = calloc(1, sizeof *self);
    if (!self)
        goto cleanup;
    self->o = *o;
    pthread_mutex_init(&self->lock, NULL);
    self->conns = net_conns_new(o->max_conns, s_evict, self);
    /* a traffic per connection at most, plus the idle ones kept a while */
    self->traffics = net_traffics_new(2 * o->max_conns);
    self->endpoints = net_endpoints_new(o->max_endpoints);
    self->pids = hashmap_new(s_pid_match);
    self->arena = arena_new(S_REPORT_ARENA);
    if (!self->conns || !self->traffics || !self->endpoints || !self->pids ||
        !self->arena) {
        net_destroy(&self);
        goto cleanup;
    }
    stats_t *st = o->stats;
#define S_C(field, name, help) self->field = stats_counter(st, name, NULL, help)
    S_C(c_batches, "net_batches", "net.events batches taken");
    S_C(c_rejected, "net_batches_rejected",
        "net.events batches refused at the boundary (a malformed event)");
    S_C(c_events, "net_events", "socket events applied");
    S_C(c_untraced, "net_events_untraced",
        "socket events of processes in no active NETWORK task (skipped)");
    S_C(c_lost, "net_events_lost", "events the collectors reported lost");
    S_C(c_evictions, "net_conn_evictions",
        "connections closed to make room (aggregator.net_max_connections)");
    S_C(c_unknown, "net_streams_unknown",
        "connections whose bytes no protocol of the table recognised");
    S_C(c_traffic_full, "net_traffics_full",
        "events whose meters were dropped: the traffic table was full");
    S_C(c_endpoints_dropped, "net_endpoints_dropped",
        "requests of new URIs beyond aggregator.net_max_endpoints");
    S_C(c_reports, "net_reports", "net.report messages published");
    S_C(c_report_failed, "net_reports_failed",
        "net.report messages that could not be built or sent");
    S_C(c_rules_refused, "net_rules_refused",
        "ExtensionConfigJSON sampling rules refused (previous rules kept)");
#undef S_C
    self->g_conns = stats_gauge(st, "net_connections", NULL,
                                "connections tracked by the network room");
    self->g_memory = stats_gauge(st, "net_memory_bytes", NULL,
                                 "heap bytes of the network room");
    if (!self->c_batches || !self->c_rejected || !self->c_events ||
        !self->c_untraced || !self->c_lost || !self->c_evictions ||
        !self->c_unknown || !self->c_traffic_full ||
        !self->c_endpoints_dropped || !self->c_reports ||
        !self->c_report_failed || !self->c_rules_refused || !self->g_conns ||
        !self->g_memory)
        net_destroy(&self);
cleanup:
    return self;
}

static void s_conn_close(net_t *self, net_conn_t *c)
{
    if (c->pst)
        c->proto->close(c->pst);
    c->pst = NULL;
    if (c->traffic)
        c->traffic->nconns--;
    net_conns_remove(self->conns, c);
}

/* Closes every connection (untraced_only: of processes no task names
 * any more); collected first, since closing changes the table. 0, or -1
 * without memory for the list (nothing closed then). */
static int s_close_conns(net_t *self, int untraced_only)
{
    size_t n = net_conns_count(self->conns), k = 0, cur = 0;
    net_conn_t **list = n ? malloc(n * sizeof *list) : NULL, *c;
    if (n && !list)
        return -1;
    while ((c = net_conns_next(self->conns, &cur)))
        if (!untraced_only || !s_pid(self, c->pid))
            list[k++] = c;
    for (size_t i = 0; i < k; i++)
        s_conn_close(self, list[i]);
    free(list);
    return 0;
}

static void s_evict(net_conn_t *c, void *arg)
{
    net_t *self = arg;
    stats_inc(self->c_evictions);
    s_conn_close(self, c);
}

static void s_pids_clear(net_t *self)
{
    size_t cur = 0;
    net_pid_t *p;
    while ((p = hashmap_next(self->pids, &cur)))
        free(p);
    hashmap_clear(self->pids);
}

static void s_tasks_free(net_task_t *tasks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        net_rules_destroy(&tasks[i].rules);
        free(tasks[i].pids);
        free(tasks[i].id);
    }
    free(tasks);
}

static void s_sent_free(net_t *self)
{
    for (size_t i = 0; i < self->nsent; i++)
        net_sample_free(&self->sent[i]);
    free(self->sent);
    self->sent = NULL;
    self->nsent = 0;
}

void net_destroy(net_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    net_t *self = *self_p;
    if (self->conns)
        (void)s_close_conns(self, 0);
    net_conns_destroy(&self->conns);
    net_traffics_destroy(&self->traffics);
    net_endpoints_destroy(&self->endpoints);
    if (self->pids)
        s_pids_clear(self);
    hashmap_destroy(&self->pids);
    s_tasks_free(self->tasks, self->ntasks);
    s_sent_free(self);
    arena_destroy(&self->arena);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- tasks */

static int s_json_empty(const char *j)
{
    if (!j)
        return 1;
    while (*j == ' ' || *j == '\t' || *j == '\n' || *j == '\r')
        j++;
    return !*j || strncmp(j, "null", 4) == 0;
}

static net_task_t *s_task_find(net_task_t *tasks, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(tasks[i].id, id) == 0)
            return &tasks[i];
    return NULL;
}

/* The new task's rules: parsed from its JSON, or the previous ones when
 * the JSON is empty, null or refused. */
static int s_task_rules(net_t *self, net_task_t *nt, const wire_task_t *t,
                        net_task_t *old)
{
    char err[256];
    if (!s_json_empty(t->extension_json)) {
        nt->rules = net_rules_parse(t->extension_json, err, sizeof err);
        if (nt->rules)
            return 0;
        log_warn("network task %s: sampling rules refused: %s", t->task_id,
                 err);
        stats_inc(self->c_rules_refused);
    }
    if (old) {
        nt->rules = old->rules;
        old->rules = NULL;
    }
    return nt->rules || s_json_empty(t->extension_json) ? 0 : -1;
}

int net_on_tasks(net_t *self, const wire_task_set_t *set)
{
    int rc = 0;
    size_t n = 0;
    net_task_t *tasks = calloc(set->ntasks ? set->ntasks : 1, sizeof *tasks);
    if (!tasks)
        return -1;
    pthread_mutex_lock(&self->lock);
    for (uint32_t i = 0; i < set->ntasks; i++) {
        const wire_task_t *t = &set->tasks[i];
        if (t->target != WIRE_TARGET_NETWORK)
            continue;
        net_task_t *nt = &tasks[n];
        nt->id = strdup(t->task_id);
        nt->pids = malloc((t->npids ? t->npids : 1) * sizeof *nt->pids);
        if (!nt->id || !nt->pids) {
            free(nt->id);
            free(nt->pids);
            rc = -1;
            continue;
        }
        n++;
        if (t->npids)
            memcpy(nt->pids, t->pids, t->npids * sizeof *nt->pids);
        nt->npids = t->npids;
        if (s_task_rules(self, nt, t,
                         s_task_find(self->tasks, self->ntasks, t->task_id)))
            rc = -1;
    }
    s_tasks_free(self->tasks, self->ntasks);
    self->tasks = tasks;
    self->ntasks = n;
    /* pid -> the task whose rules apply to it */
    s_pids_clear(self);
    for (size_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < tasks[i].npids; k++) {
            uint32_t pid = tasks[i].pids[k];
            if (s_pid(self, pid))
                continue;
            net_pid_t *p = calloc(1, sizeof *p);
            if (!p || hashmap_insert(self->pids, hash_split64(pid), p) != 0) {
                free(p);
                rc = -1;
                continue;
            }
            p->pid = pid;
            p->task = s_pid_task(self, pid);
        }
    /* connections of processes no longer traced end now */
    if (s_close_conns(self, 1) != 0)
        rc = -1;
    pthread_mutex_unlock(&self->lock);
    return rc;
}

/* ------------------------------------------------------------- batches */

/* Beyond what the decoder checked: what this room relies on. */
static int s_event_ok(const wire_net_event_t *e, char *why, size_t len)
{
    if (e->kind > WIRE_NET_KIND_MAX || e->proto > WIRE_NET_PROTO_MAX ||
        e->role > WIRE_NET_ROLE_MAX || e->dir > WIRE_NET_DIR_MAX ||
        e->is_ssl > 1)
        snprintf(why, len, "a field out of range");
    else if (!e->pid)
        snprintf(why, len, "pid 0");
    else if (e->ncaptured > e->bytes || e->ncaptured > WIRE_MAX_NET_PAYLOAD)
        snprintf(why, len, "%u bytes captured of %llu", e->ncaptured,
                 (unsigned long long)e->bytes);
    else if (e->ncaptured && !e->payload)
        snprintf(why, len, "captured bytes without a payload");
    else
        return 1;
    return 0;
}

static void s_peer(const wire_net_event_t *e, char *out, size_t size)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0xff, 0xff};
    char ip[INET6_ADDRSTRLEN] = "";
    if (e->proto == WIRE_NET_UNIX) {
        snprintf(out, size, "unix");
        return;
    }
    if (memcmp(e->remote_addr, v4mapped, 12) == 0)
        inet_ntop(AF_INET, e->remote_addr + 12, ip, sizeof ip);
    else
        inet_ntop(AF_INET6, e->remote_addr, ip, sizeof ip);
    /* the reference writes ip:port, IPv6 without brackets */
    snprintf(out, size, "%s:%u", ip, e->remote_port);
}

static void s_uncount(net_counter_t *k, const net_counter_t *d)
{
    k->count -= d->count;
    k->bytes -= d->bytes;
    k->exe -= d->exe;
}

static void s_count(net_counter_t *k, uint64_t count, uint64_t bytes,
                    uint64_t exe)
{
    k->count += count;
    k->bytes += bytes;
    k->exe += exe;
}

/* What c's ledger holds moves from traffic a to b. */
static void s_ledger_move(const net_ledger_t *l, net_traffic_t *a,
                          net_traffic_t *b)
{
    for (int k = 0; k < NET_C_COUNT; k++) {
        s_uncount(&a->c[k], &l->c[k]);
        s_count(&b->c[k], l->c[k].count, l->c[k].bytes, l->c[k].exe);
    }
    for (uint8_t i = 0; i < l->nhist; i++) {
        a->h[l->hist[i].h][l->hist[i].bucket]--;
        b->h[l->hist[i].h][l->hist[i].bucket]++;
    }
    a->bytes_out -= l->bytes_out;
    a->bytes_in -= l->bytes_in;
    a->rtt_us_sum -= l->rtt_us_sum;
    a->rtt_n -= l->rtt_n;
    b->bytes_out += l->bytes_out;
    b->bytes_in += l->bytes_in;
    b->rtt_us_sum += l->rtt_us_sum;
    b->rtt_n += l->rtt_n;
}

/* The connection's traffic for its current key: when the key changes
 * (its protocol found, TLS seen, its ends learned) what the connection
 * counted in this interval follows it, while its ledger holds it. */
static void s_retraffic(net_t *self, net_conn_t *c)
{
    net_traffic_t *t = net_traffics_get(self->traffics, c->pid, c->role,
                                        c->peer_pid, c->peer, c->is_ssl,
                                        c->proto);
    net_traffic_t *old = c->traffic;
    net_ledger_t *l = &c->ledger;
    if (t == old)
        return;
    if (old && t && !l->over && l->gen == self->flush_gen)
        s_ledger_move(l, old, t);
    else if (old)
        l->over = 1;   /* counted where it was: the ledger no longer says */
    if (old)
        old->nconns--;
    c->traffic = t;
    if (t)
        t->nconns++;
}

/* 1 when the event names the connection's ends (the collector fills them
 * on every event it knows the socket of; a zero address says nothing). */
static int s_has_facts(const wire_net_event_t *e)
{
    static const uint8_t zero[16];
    return e->proto == WIRE_NET_UNIX ||
           memcmp(e->remote_addr, zero, sizeof zero) != 0 || e->remote_port;
}

/* What an event says about its connection: ends, side, peer process. A
 * known side or peer is not forgotten by an event that lacks it. */
static void s_conn_facts(net_t *self, net_conn_t *c, const wire_net_event_t *e)
{
    int facts = s_has_facts(e);
    uint8_t role = e->role != WIRE_NET_ROLE_UNKNOWN ? e->role : c->role;
    uint32_t peer_pid = e->peer_pid ? e->peer_pid : c->peer_pid;
    /* most events repeat what the connection knows: compare raw */
    int same_ends = !facts || (c->l4 == e->proto && c->rport == e->remote_port &&
                               memcmp(c->raddr, e->remote_addr, 16) == 0);
    if (same_ends && role == c->role && peer_pid == c->peer_pid &&
        c->traffic)
        return;
    if (facts && !same_ends) {
        c->l4 = e->proto;
        c->rport = e->remote_port;
        memcpy(c->raddr, e->remote_addr, 16);
        s_peer(e, c->peer, sizeof c->peer);
    }
    c->role = role;
    c->peer_pid = peer_pid;
    s_retraffic(self, c);
}

/* One L4 figure of c: counter k, and histogram h (-1 none) at value v
 * (ns, or us for the RTT). Kept in c's ledger while it may turn TLS. */
static void s_l4(net_t *self, net_conn_t *c, int k, uint64_t count,
                 uint64_t bytes, uint64_t exe, int h, double v)
{
    net_traffic_t *t = c->traffic;
    net_ledger_t *l = &c->ledger;
    if (!t)
        return;
    size_t b = h < 0 ? 0 : net_bucket(h == NET_H_WRITE_RTT ? net_l4_bounds_us
                                                           : net_l4_bounds_ns,
                                      NET_L4_BUCKETS, v);
    s_count(&t->c[k], count, bytes, exe);
    if (h >= 0)
        t->h[h][b]++;
    if (l->over)
        return;
    if (l->gen != self->flush_gen || (h >= 0 && l->nhist == NET_LEDGER_HIST)) {
        l->over = 1;
        return;
    }
    s_count(&l->c[k], count, bytes, exe);
    if (h >= 0) {
        l->hist[l->nhist].h = (uint8_t)h;
        l->hist[l->nhist++].bucket = (uint8_t)b;
    }
}

/* c turns out to be TLS: its traffic becomes the TLS one (s_retraffic
 * moves what its handshake counted). */
static void s_turn_tls(net_t *self, net_conn_t *c)
{
    c->is_ssl = 1;
    /* the bytes so far were the handshake: the plaintext is detected anew */
    if (!c->pst) {
        c->detect = NET_CONN_DETECT_PENDING;
        c->detect_tries = 0;
    }
    s_retraffic(self, c);
}

static void s_detect(net_t *self, net_conn_t *c, const wire_net_event_t *e)
{
    int more = 0;
    for (size_t i = 0; i < net_nprotocols; i++) {
        net_detect_t d = net_protocols[i]->detect(e->payload, e->ncaptured,
                                                  e->dir);
        if (d == NET_DETECT_YES) {
            c->detect = NET_CONN_DETECT_DONE;
            c->proto = net_protocols[i];
            c->pst = c->proto->open(self, c);
            if (!c->pst)
                c->proto = NULL;
            s_retraffic(self, c);
            return;
        }
        more |= d == NET_DETECT_MORE;
    }
    if (!more || ++c->detect_tries >= S_DETECT_TRIES) {
        c->detect = NET_CONN_DETECT_DONE;
        stats_inc(self->c_unknown);
    }
}

/* On a TLS connection the collector reports both the ciphertext syscalls
 * (is_ssl 0, no payload) and the plaintext SSL calls (is_ssl 1): layer 4
 * counts the first, the protocol reads the second, so nothing counts
 * twice. */
static void s_data(net_t *self, net_conn_t *c, const wire_net_event_t *e)
{
    if (!c->is_ssl || e->is_ssl) {
        if (c->detect == NET_CONN_DETECT_PENDING && e->ncaptured)
            s_detect(self, c, e);
        if (c->pst) {
            (void)c->proto->feed(c->pst, e->dir, e->payload, e->ncaptured,
                                 e->ts_ns);
            if (e->bytes > e->ncaptured)
                (void)c->proto->skip(c->pst, e->dir,
                                     e->bytes - e->ncaptured, e->ts_ns);
        }
    }
    net_traffic_t *t = c->traffic;
    if (e->is_ssl || !t)
        return;
    int ledger = !c->ledger.over && c->ledger.gen == self->flush_gen;
    if (e->dir == WIRE_NET_OUT) {
        s_l4(self, c, NET_C_WRITE, 1, e->bytes, e->dur_ns, NET_H_WRITE_EXE,
             (double)e->dur_ns);
        t->bytes_out += e->bytes;
        c->ledger.bytes_out += ledger ? e->bytes : 0;
        if (e->rtt_us) {
            s_l4(self, c, NET_C_WRITE_RTT, 1, 0, e->rtt_us, NET_H_WRITE_RTT,
                 (double)e->rtt_us);
            t->rtt_us_sum += e->rtt_us;
            t->rtt_n++;
            c->ledger.rtt_us_sum += ledger ? e->rtt_us : 0;
            c->ledger.rtt_n += (uint64_t)ledger;
        }
    } else {
        s_l4(self, c, NET_C_READ, 1, e->bytes, e->dur_ns, NET_H_READ_EXE,
             (double)e->dur_ns);
        t->bytes_in += e->bytes;
        c->ledger.bytes_in += ledger ? e->bytes : 0;
    }
}

static void s_event(net_t *self, uint64_t node_hash, int64_t off,
                    const wire_net_event_t *e)
{
    if (!s_pid(self, e->pid)) {
        stats_inc(self->c_untraced);
        return;
    }
    stats_inc(self->c_events);
    net_conn_t *c = net_conns_find(self->conns, node_hash, e->conn_id);
    if (c) {
        net_conns_touch(self->conns, c);
    } else {
        c = net_conns_add(self->conns, node_hash, e->conn_id);
        if (!c)
            return;
        c->pid = e->pid;
        c->room = self;
        c->ledger.gen = self->flush_gen;
    }
    c->wall_off_ns = off;
    s_conn_facts(self, c, e);
    if (e->is_ssl && !c->is_ssl)
        s_turn_tls(self, c);
    net_traffic_t *t = c->traffic;
    if (!t && e->kind != WIRE_NET_CLOSE) {
        stats_inc(self->c_traffic_full);
        if (e->kind != WIRE_NET_DATA)
            return;
    }
    switch (e->kind) {
    case WIRE_NET_OPEN:
        /* as the reference: only a timed connect/accept counts */
        if (!e->pre_existing && e->dur_ns)
            s_l4(self, c, NET_C_CONNECT, 1, 0, e->dur_ns, NET_H_CONNECT_EXE,
                 (double)e->dur_ns);
        break;
    case WIRE_NET_DATA:
        s_data(self, c, e);
        break;
    case WIRE_NET_RETRANS:
        s_l4(self, c, NET_C_RETRANSMIT, e->count, 0, 0, -1, 0);
        break;
    case WIRE_NET_DROP:
        s_l4(self, c, NET_C_DROP, e->count, 0, 0, -1, 0);
        break;
    case WIRE_NET_CLOSE:
        if (e->dur_ns)
            s_l4(self, c, NET_C_CLOSE, 1, 0, e->dur_ns, NET_H_CLOSE_EXE,
                 (double)e->dur_ns);
        s_conn_close(self, c);
        break;
    default:
        break;
    }
}

int net_on_batch(net_t *self, const wire_net_batch_t *b)
{
    char why[128];
    uint64_t last_ts = 0;
    for (uint32_t i = 0; i < b->nevents; i++) {
        if (!s_event_ok(&b->events[i], why, sizeof why)) {
            log_warn("net.events from %s refused: event %u: %s",
                     b->hdr.sender, i, why);
            stats_inc(self->c_rejected);
            return -1;
        }
        if (b->events[i].ts_ns > last_ts)
            last_ts = b->events[i].ts_ns;
    }
    /* pids and connection ids are per node (per sender without one) */
    const char *node = b->node && b->node[0] ? b->node : b->hdr.sender;
    uint64_t node_hash = hash_fnv1a(node, 0x6e6574);
    /* events carry the collector's monotonic clock; its last event is
     * about when it sent the batch (hdr.ts_ns, wall clock) */
    int64_t off = (int64_t)b->hdr.ts_ns - (int64_t)last_ts;
    pthread_mutex_lock(&self->lock);
    stats_inc(self->c_batches);
    stats_add(self->c_lost, b->lost);
    for (uint32_t i = 0; i < b->nevents; i++)
        s_event(self, node_hash, off, &b->events[i]);
    stats_set(self->g_conns, (double)net_conns_count(self->conns));
    pthread_mutex_unlock(&self->lock);
    return 0;
}

/* --------------------------------------------------------------- report */

static const char *const s_cnames[NET_C_COUNT] = {
    "write", "read", "write_rtt", "connect", "close", "retransmit", "drop"};
static const char *const s_hnames[NET_H_COUNT] = {
    "write_rtt", "write_exe_time", "read_exe_time", "connect_exe_time",
    "close_exe_time"};

/* The reference's layer-4 meters of one traffic, then its protocol's. */
static void s_report_traffic(net_t *self, net_traffic_t *t,
                             net_report_builder_t *b)
{
    const char *role = net_role_name(t->role);
    for (int k = 0; k < NET_C_COUNT; k++) {
        net_counter_t *c = &t->c[k];
        if (!c->count)
            continue;
        net_rb_value(b, t, net_rb_name(b, "%s_%s_counts_counter", role,
                                       s_cnames[k]),
                     (double)c->count, NULL);
        if (c->bytes)
            net_rb_value(b, t, net_rb_name(b, "%s_%s_bytes_counter", role,
                                           s_cnames[k]),
                         (double)c->bytes, NULL);
        if (c->exe)
            net_rb_value(b, t, net_rb_name(b, "%s_%s_exe_time_counter", role,
                                           s_cnames[k]),
                         (double)c->exe / (double)c->count, NULL);
    }
    for (int k = 0; k < NET_H_COUNT; k++)
        net_rb_hist(b, t, net_rb_name(b, "%s_%s_histogram", role,
                                      s_hnames[k]),
                    k == NET_H_WRITE_RTT ? net_l4_bounds_us : net_l4_bounds_ns,
                    t->h[k], NET_L4_BUCKETS);
    if (t->proto && t->l7 && t->proto->meters_report(t->l7, t, b) != 0)
        b->failed = 1;
    for (int r = 0; r < NET_REASONS; r++)
        for (int i = 0; i < NET_TOPN && t->top[r][i]; i++) {
            net_sample_t *s = t->top[r][i];
            t->top[r][i] = NULL;
            net_rb_sample(b, s);
            net_view_keep(self, s);
            /* the report points at it until the next flush */
            net_sample_t **sent = realloc(self->sent, (self->nsent + 1) *
                                                          sizeof *sent);
            if (!sent) {
                b->failed = 1;
                net_sample_free(&s);
                continue;
            }
            self->sent = sent;
            self->sent[self->nsent++] = s;
        }
}

static void s_traffic_reset(net_traffic_t *t, uint64_t now_ms)
{
    int active = t->nconns > 0;
    for (int k = 0; k < NET_C_COUNT; k++)
        active |= t->c[k].count != 0;
    if (active)
        t->last_ms = now_ms;
    t->requests_last = t->requests - t->requests_prev;
    t->requests_prev = t->requests;
    memset(t->c, 0, sizeof t->c);
    memset(t->h, 0, sizeof t->h);
}

static void s_report_http(net_t *self, net_report_builder_t *b,
                          wire_net_report_t *r)
{
    size_t n = 0, cur = 0, cap = net_endpoints_count(self->endpoints);
    net_endpoint_t *e;
    wire_net_http_t *rows = cap ? arena_alloc(self->arena, cap * sizeof *rows)
                                : NULL;
    if (cap && !rows) {
        b->failed = 1;
        return;
    }
    while ((e = net_endpoints_next(self->endpoints, &cur))) {
        if (e->requests && n < WIRE_MAX_NET_METERS)
            rows[n++] = (wire_net_http_t){.pid = e->pid, .uri = e->uri,
                                          .requests = e->requests,
                                          .errors = e->errors,
                                          .duration_ms_sum = e->dur_ms_sum};
    }
    r->nhttp = (uint32_t)n;
    r->http = rows;
}

static void s_endpoints_reset(net_t *self)
{
    size_t cur = 0;
    net_endpoint_t *e;
    while ((e = net_endpoints_next(self->endpoints, &cur))) {
        e->requests = e->errors = 0;
        e->dur_ms_sum = 0;
    }
}

int net_flush(net_t *self, uint64_t now_ms)
{
    int rc = 0;
    net_report_builder_t b;
    pthread_mutex_lock(&self->lock);
    s_sent_free(self);
    arena_reset(self->arena);
    self->flush_gen++;   /* earlier ledgers are given up */
    net_rb_init(&b, self->arena);
    memset(&self->last, 0, sizeof self->last);
    size_t cur = 0;
    net_traffic_t *t;
    while ((t = net_traffics_next(self->traffics, &cur))) {
        s_report_traffic(self, t, &b);
        s_traffic_reset(t, now_ms);
    }
    s_report_http(self, &b, &self->last);
    s_endpoints_reset(self);
    net_traffics_expire(self->traffics, now_ms > S_TRAFFIC_IDLE_MS
                                            ? now_ms - S_TRAFFIC_IDLE_MS : 0);
    self->last.ts_ms = now_ms;
    self->last.nmeters = b.nmeters;
    self->last.meters = b.meters;
    self->last.nsamples = b.nsamples;
    self->last.samples = b.samples;
    if (b.failed) {
        /* a bound or the arena: nothing half-built goes out */
        stats_inc(self->c_report_failed);
        memset(&self->last, 0, sizeof self->last);
        rc = -1;
    } else if ((self->last.nmeters || self->last.nsamples ||
                self->last.nhttp) && self->o.publish) {
        if (self->o.publish(self->o.publish_arg, MSG_NET_REPORT,
                            &self->last) == 0) {
            stats_inc(self->c_reports);
        } else {
            stats_inc(self->c_report_failed);
            rc = -1;
        }
    }
    stats_set(self->g_memory, (double)net_memory_locked(self));
    pthread_mutex_unlock(&self->lock);
    return rc;
}

const wire_net_report_t *net_last_report(const net_t *self)
{
    return &self->last;
}

size_t net_memory_locked(const net_t *self)
{
    size_t n = sizeof *self + net_traffics_memory(self->traffics) +
               arena_used(self->arena) +
               net_endpoints_count(self->endpoints) * sizeof(net_endpoint_t);
    size_t cur = 0;
    net_conn_t *c;
    while ((c = net_conns_next(self->conns, &cur)))
        n += sizeof *c + (c->pst ? c->proto->memory(c->pst) : 0);
    return n;
}

size_t net_memory(const net_t *self)
{
    net_t *me = (net_t *)self;   /* the lock, not the data, changes */
    pthread_mutex_lock(&me->lock);
    size_t n = net_memory_locked(self);
    pthread_mutex_unlock(&me->lock);
    return n;
}
