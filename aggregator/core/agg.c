/* Aggregator core: windows, history, store, metadata (see agg.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "aggregator/core/agg_int.h"

static void
s_counters(agg_t *self)
{
    stats_t *st = self->o.stats;
    self->m_batches = stats_counter(st, "batches_in", NULL,
                                    "symbolized stack batches received");
    self->m_samples = stats_counter(st, "samples_in", NULL,
                                    "distinct stacks received in batches");
    self->m_windows = stats_counter(st, "windows", NULL,
                                    "aggregation windows closed");
    self->m_nodes = stats_gauge(st, "trees_nodes", NULL,
                                "flame tree nodes held in memory");
    self->m_store_errors = stats_counter(st, "store_errors", NULL,
                                         "history store failures");
    self->m_published = stats_counter(st, "profiles_published", NULL,
                                      "task profiles sent on agg.profile");
    self->m_invalid = stats_counter(st, "invalid_messages", NULL,
                                    "bus messages dropped as malformed");
    self->m_rejected = stats_counter(st, "samples_rejected", NULL,
                                     "samples dropped as malformed");
    self->m_truncated = stats_counter(st, "paths_truncated", NULL,
                                      "paths folded at the tree node bound");
    self->m_dropped_stacks = stats_counter(st, "stacks_unpublished", NULL,
                                           "task stacks past the per-window "
                                           "bound, left out of agg.profile");
    self->m_evicted = stats_counter(st, "windows_evicted", NULL,
                                    "windows dropped from memory early by "
                                    "the node budget");
    self->m_requests = stats_counter(st, "task_requests", NULL,
                                     "tasks requested through the API");
    self->m_duplicates = stats_counter(st, "batches_duplicate", NULL,
                                       "symbolized batches already received "
                                       "from another symbolizer replica");
}

static void
s_hist_push(agg_t *self, agg_window_t *w)
{
    if (self->nhist == self->hist_cap) {
        size_t cap = self->hist_cap ? self->hist_cap * 2 : 64;
        agg_window_t **h = realloc(self->hist, cap * sizeof(*h));
        if (!h) {
            log_warn("aggregator: out of memory keeping a window");
            agg_window_unref(&w);
            return;
        }
        self->hist = h;
        self->hist_cap = cap;
    }
    self->hist[self->nhist++] = w;
    self->hist_nodes += agg_window_nodes(w);
}

static void
s_hist_drop_oldest(agg_t *self)
{
    agg_window_t *w = self->hist[0];
    self->hist_nodes -= agg_window_nodes(w);
    memmove(self->hist, self->hist + 1,
            (self->nhist - 1) * sizeof(*self->hist));
    self->nhist--;
    agg_window_unref(&w);
}

/* Caller holds the lock. */
static void
s_hist_bound(agg_t *self, uint64_t now_ms)
{
    uint64_t cutoff = now_ms > self->o.history_ms
                          ? now_ms - self->o.history_ms : 0;
    while (self->nhist && agg_window_end(self->hist[0]) < cutoff)
        s_hist_drop_oldest(self);
    while (self->nhist > 1 && self->hist_nodes > self->o.history_max_nodes) {
        s_hist_drop_oldest(self);
        stats_inc(self->m_evicted);
    }
}

static void
s_store_loaded(void *arg, agg_window_t *w)
{
    agg_t *self = arg;
    if (self->nhist && agg_window_start(w)
                           <= agg_window_start(self->hist[self->nhist - 1])) {
        agg_window_unref(&w);
        return;
    }
    s_hist_push(self, w);
}

static void
s_store_open(agg_t *self, uint64_t now_ms)
{
    char err[512];
    if (!self->store_path || !*self->store_path)
        return;
    self->store = agg_store_open(self->store_path, self->o.store_max_bytes,
                                 err, sizeof(err));
    if (!self->store) {
        log_warn("history store unusable, keeping history in memory only: "
                 "%s", err);
        stats_inc(self->m_store_errors);
        return;
    }
    uint64_t bad = 0;
    uint64_t since = now_ms > self->o.history_ms
                         ? now_ms - self->o.history_ms : 0;
    long n = agg_store_load(self->store, since, self->o.max_nodes,
                            s_store_loaded, self, &bad);
    if (n < 0)
        stats_inc(self->m_store_errors);
    stats_add(self->m_store_errors, bad);
    s_hist_bound(self, now_ms);
    log_info("history store %s: %ld windows restored%s", self->store_path,
             n < 0 ? 0 : n, bad ? " (some rows skipped as damaged)" : "");
}

agg_t *
agg_new(const agg_options_t *opts, uint64_t now_ms)
{
    agg_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->wake_fd = -1;
    self->o = *opts;
    if (!self->o.flush_ms)
        self->o.flush_ms = 5000;
    if (self->o.max_nodes < 16)
        self->o.max_nodes = 16;
    if (!self->o.history_max_nodes)
        self->o.history_max_nodes = self->o.max_nodes * 8;
    if (!self->o.store_max_bytes)
        self->o.store_max_bytes = AGG_STORE_MAX_BYTES;
    self->store_path = opts->store_path ? strdup(opts->store_path) : NULL;
    self->o.store_path = self->store_path;
    pthread_mutex_init(&self->lock, NULL);
    self->rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);
    s_counters(self);
    if (opts->store_path && !self->store_path)
        goto fail;
    self->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->wake_fd < 0)
        goto fail;
    self->procs = agg_procs_new(AGG_PROCS_MAX);
    self->pods = agg_pods_new();
    self->tasks = agg_tasks_new();
    self->stagestats = agg_stagestats_new();
    self->arena = arena_new(0);
    self->dedup = origin_dedup_new();
    self->current = agg_window_new(now_ms, self->o.max_nodes);
    if (!self->procs || !self->pods || !self->tasks || !self->stagestats
        || !self->arena
        || !self->dedup || !self->current)
        goto fail;
    s_store_open(self, now_ms);
    return self;
fail:
    agg_destroy(&self);
    return NULL;
}

void
agg_destroy(agg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    agg_t *self = *self_p;
    while (self->nhist)
        s_hist_drop_oldest(self);
    free(self->hist);
    agg_window_destroy(&self->current);
    agg_store_destroy(&self->store);
    agg_procs_destroy(&self->procs);
    agg_pods_destroy(&self->pods);
    agg_tasks_destroy(&self->tasks);
    agg_stagestats_destroy(&self->stagestats);
    arena_destroy(&self->arena);
    origin_dedup_destroy(&self->dedup);
    if (self->wake_fd >= 0)
        close(self->wake_fd);
    pthread_mutex_destroy(&self->lock);
    for (size_t i = 0; i < self->nqueue; i++)
        free(self->queue[i].extension_json);
    free(self->store_path);
    free(self);
    *self_p = NULL;
}

/* ------------------------------------------------------------ ingestion */
static const char *
s_name_of(void *arg, const char *node, uint32_t pid)
{
    /* Loop thread: the registry's only writer, so no lock to read it. */
    const agg_proc_t *p = agg_procs_get(((agg_t *)arg)->procs, node, pid);
    return p ? p->name : NULL;
}

static const agg_pod_t *
s_pod_of(void *arg, const char *node, const char *container_id)
{
    return agg_pods_find(((agg_t *)arg)->pods, node, container_id);
}

int
agg_ingest_sym(agg_t *self, const wire_sym_batch_t *b)
{
    stats_inc(self->m_batches);
    stats_add(self->m_samples, b->nsamples);
    uint64_t truncated_before = 0;
    for (int k = 0; k < AGG_KINDS; k++)
        truncated_before += flame_truncated(agg_window_host(self->current, k));
    long rejected = agg_window_add_batch(self->current, b, s_name_of,
                                             s_pod_of, self);
    uint64_t truncated_after = 0;
    for (int k = 0; k < AGG_KINDS; k++)
        truncated_after += flame_truncated(agg_window_host(self->current, k));
    stats_add(self->m_truncated, truncated_after - truncated_before);
    if (rejected < 0) {
        log_warn_rl(&self->rl, "aggregator: out of memory adding a batch");
        return -1;
    }
    if (rejected) {
        stats_add(self->m_rejected, (uint64_t)rejected);
        log_warn_rl(&self->rl, "sym batch from %s: %ld malformed samples "
                    "dropped", b->hdr.sender, rejected);
    }
    if (b->nprocs) {
        uint64_t now = now_wall_ms();
        pthread_mutex_lock(&self->lock);
        for (uint32_t i = 0; i < b->nprocs; i++)
            agg_procs_seen(self->procs, b->node, b->procs[i].pid,
                           b->procs[i].name, now);
        pthread_mutex_unlock(&self->lock);
    }
    return 0;
}

void
agg_ingest_k8s(agg_t *self, const wire_k8s_containers_t *m)
{
    if (agg_pods_update(self->pods, m) != 0)
        log_warn_rl(&self->rl, "k8s.containers from %s: table not kept (out "
                    "of memory or more than %d nodes)", m->hdr.sender,
                    AGG_PODS_MAX_NODES);
}

void
agg_ingest_proc_events(agg_t *self, const wire_proc_events_t *m)
{
    uint64_t now = now_wall_ms();
    pthread_mutex_lock(&self->lock);
    for (uint32_t i = 0; i < m->nevents; i++)
        agg_procs_event(self->procs, m->node, &m->events[i], now);
    pthread_mutex_unlock(&self->lock);
}

void
agg_ingest_tasks(agg_t *self, const wire_task_set_t *set)
{
    pthread_mutex_lock(&self->lock);
    size_t left_out = agg_tasks_set(self->tasks, set, now_wall_ms());
    pthread_mutex_unlock(&self->lock);
    if (left_out)
        log_warn_rl(&self->rl, "task set: %zu pids beyond the metadata "
                    "bound ignored", left_out);
}

void
agg_ingest_stats(agg_t *self, const wire_stats_t *m)
{
    /* Our own counters are rendered from the registry directly. */
    if (m->stage && m->instance && self->o.stats
        && strcmp(m->stage, stats_stage(self->o.stats)) == 0
        && strcmp(m->instance, stats_instance(self->o.stats)) == 0)
        return;
    uint64_t now = now_wall_ms();
    pthread_mutex_lock(&self->lock);
    int rc = agg_stagestats_update(self->stagestats, m, now);
    agg_stagestats_expire(self->stagestats, now);
    pthread_mutex_unlock(&self->lock);
    if (rc) {
        stats_inc(self->m_invalid);
        log_warn_rl(&self->rl, "stats from %s dropped: bad metric names or "
                    "too many instances", m->hdr.sender);
    }
}

/* ---------------------------------------------------------------- flush */
int
agg_flush(agg_t *self, uint64_t now_ms)
{
    agg_window_t *next = agg_window_new(now_ms, self->o.max_nodes);
    if (!next) {
        log_warn("aggregator: out of memory opening a window; "
                 "the current one keeps growing");
        return -1;
    }
    agg_window_t *w = self->current;
    self->current = next;
    agg_window_close(w, now_ms);

    /* The lock covers the task metadata the profiles point into, which
     * the HTTP thread may change (task requests). */
    pthread_mutex_lock(&self->lock);
    long sent = agg_publish_window(self, w);
    pthread_mutex_unlock(&self->lock);
    if (sent > 0)
        stats_add(self->m_published, (uint64_t)sent);
    stats_add(self->m_dropped_stacks, agg_window_dropped(w));
    agg_window_drop_stacks(w);

    if (self->store) {
        uint64_t cutoff = now_ms > self->o.store_retention_ms
                              ? now_ms - self->o.store_retention_ms : 0;
        if (agg_store_put(self->store, w) || agg_store_prune(self->store,
                                                             cutoff) < 0)
            stats_inc(self->m_store_errors);
    }

    pthread_mutex_lock(&self->lock);
    s_hist_push(self, w);
    s_hist_bound(self, now_ms);
    uint64_t cutoff = now_ms > self->o.history_ms
                          ? now_ms - self->o.history_ms : 0;
    agg_procs_expire(self->procs, cutoff);
    size_t nodes = self->hist_nodes;
    pthread_mutex_unlock(&self->lock);

    stats_inc(self->m_windows);
    stats_set(self->m_nodes, (double)(nodes + agg_window_nodes(next)));
    return 0;
}

/* ------------------------------------------------------- task requests */
int
agg_wake_fd(agg_t *self)
{
    return self->wake_fd;
}

static void
s_task_id(char *out, size_t len)
{
    unsigned char r[8];
    if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        /* Uniqueness is what matters; time and pid give it here. */
        uint64_t t = now_mono_ns() ^ ((uint64_t)getpid() << 32);
        memcpy(r, &t, sizeof(r));
    }
    snprintf(out, len, "api-%02x%02x%02x%02x-%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7]);
}

/* The wire form of a queued request (pointing into it). */
static void
s_request_wire(const agg_request_t *req, wire_task_t *wt)
{
    memset(wt, 0, sizeof(*wt));
    wt->task_id = req->task_id;
    wt->target = req->target;
    wt->trigger = WIRE_TRIGGER_FIXED_TIME;
    wt->source = WIRE_SRC_API;
    wt->start_ms = req->start_ms;
    wt->duration_ms = req->duration_ms;
    wt->update_ms = req->update_ms;
    wt->npids = req->npids;
    wt->pids = req->pids;
    wt->extension_json = req->extension_json ? req->extension_json : "";
}

int
agg_request_tasks(agg_t *self, const agg_task_spec_t *spec, char *id_out,
                  size_t id_len, char *err, size_t errlen)
{
    int rc = -1;
    agg_request_t req;
    memset(&req, 0, sizeof(req));
    if (!spec->npids || spec->npids > AGG_REQUEST_MAX_PIDS) {
        snprintf(err, errlen, "1 to %d pids", AGG_REQUEST_MAX_PIDS);
        return -1;
    }
    for (uint32_t i = 0; i < spec->npids; i++)
        if (!spec->pids[i]) {
            snprintf(err, errlen, "pid must be a positive integer");
            return -1;
        }
    if (spec->target < 0 || spec->target > WIRE_TARGET_MAX) {
        snprintf(err, errlen, "target must be ON_CPU, OFF_CPU or NETWORK");
        return -1;
    }
    const char *ext = spec->extension_json;
    if (ext && strnlen(ext, AGG_REQUEST_MAX_EXTENSION + 1)
                   > AGG_REQUEST_MAX_EXTENSION) {
        snprintf(err, errlen, "extension config beyond %u bytes",
                 AGG_REQUEST_MAX_EXTENSION);
        return -1;
    }
    if (ext && ext[0] && !(req.extension_json = strdup(ext))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s_task_id(req.task_id, sizeof(req.task_id));
    memcpy(req.pids, spec->pids, spec->npids * sizeof(*req.pids));
    req.npids = spec->npids;
    req.target = (uint8_t)spec->target;
    req.duration_ms = spec->duration_ms;
    req.start_ms = spec->start_ms;
    req.update_ms = now_wall_ms();

    wire_task_t wt;
    s_request_wire(&req, &wt);
    pthread_mutex_lock(&self->lock);
    if (self->nqueue >= AGG_QUEUE_MAX) {
        snprintf(err, errlen, "too many task requests waiting; retry later");
        goto cleanup;
    }
    if (agg_tasks_request(self->tasks, &wt, req.update_ms)) {
        snprintf(err, errlen, "out of memory");
        goto cleanup;
    }
    self->queue[self->nqueue++] = req;
    snprintf(id_out, id_len, "%s", req.task_id);
    rc = 0;
cleanup:
    pthread_mutex_unlock(&self->lock);
    if (rc == 0) {
        uint64_t one = 1;
        if (write(self->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            log_warn("aggregator: eventfd: %s", strerror(errno));
        stats_inc(self->m_requests);
    } else {
        free(req.extension_json);
    }
    return rc;
}

int
agg_request_task(agg_t *self, uint32_t pid, int target, uint64_t duration_ms,
                 uint64_t start_ms, char *id_out, size_t id_len, char *err,
                 size_t errlen)
{
    agg_task_spec_t spec = { .pids = &pid, .npids = 1, .target = target,
                             .duration_ms = duration_ms,
                             .start_ms = start_ms };
    return agg_request_tasks(self, &spec, id_out, id_len, err, errlen);
}

int
agg_pump(agg_t *self)
{
    agg_request_t reqs[AGG_QUEUE_MAX];
    uint64_t drain;
    if (read(self->wake_fd, &drain, sizeof(drain)) < 0 && errno != EAGAIN)
        log_warn("aggregator: eventfd: %s", strerror(errno));
    pthread_mutex_lock(&self->lock);
    size_t n = self->nqueue;
    memcpy(reqs, self->queue, n * sizeof(*reqs));
    self->nqueue = 0;
    pthread_mutex_unlock(&self->lock);

    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        wire_task_t wt;
        s_request_wire(&reqs[i], &wt);
        wire_task_set_t set;
        memset(&set, 0, sizeof(set));
        set.ntasks = 1;
        set.tasks = &wt;
        if (self->o.publish
            && self->o.publish(self->o.publish_arg, MSG_TASK_REQUEST, &set)) {
            log_warn("task request %s: publish failed", wt.task_id);
            rc = -1;
        }
        free(reqs[i].extension_json);
    }
    return rc;
}

/* -------------------------------------------------------------- listings */
typedef struct {
    uint32_t pid;
    const char *node;
    const char *name;
    uint64_t cpu_ns, samples, off_ns;
    uint64_t last_end_ms;
    const agg_wproc_t *pod;     /* the window row naming its pod, or NULL */
} proc_row_t;

static int
s_row_cmp(const void *a, const void *b)
{
    const proc_row_t *x = a, *y = b;
    return agg_prow_order(x->pid, x->node, x->last_end_ms, y->pid, y->node,
                          y->last_end_ms);
}

int
agg_process_rows(agg_t *self, uint64_t start_ms, uint64_t end_ms,
                 agg_prows_t *out)
{
    proc_row_t *rows = NULL;
    size_t nrows = 0, cap = 0;
    uint64_t newest_end = 0;
    int rc = -1;

    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->nhist; i++) {
        const agg_window_t *w = self->hist[i];
        if (agg_window_end(w) <= start_ms || agg_window_start(w) > end_ms)
            continue;
        if (agg_window_end(w) > newest_end)
            newest_end = agg_window_end(w);
        for (size_t j = 0; j < agg_window_nprocs(w); j++) {
            const agg_wproc_t *p = agg_window_proc(w, j);
            if (nrows == cap) {
                size_t ncap = cap ? cap * 2 : 256;
                proc_row_t *r = realloc(rows, ncap * sizeof(*r));
                if (!r)
                    goto cleanup;
                rows = r;
                cap = ncap;
            }
            rows[nrows++] = (proc_row_t){ p->pid, p->node, p->name,
                                          p->cpu_ns, p->samples, p->off_ns,
                                          agg_window_end(w),
                                          p->pod ? p : NULL };
        }
    }
    if (nrows)
        qsort(rows, nrows, sizeof(*rows), s_row_cmp);
    for (size_t i = 0; i < nrows;) {
        proc_row_t sum = rows[i];
        size_t j = i + 1;
        for (; j < nrows && rows[j].pid == sum.pid
               && strcmp(rows[j].node, sum.node) == 0;
             j++) {
            sum.cpu_ns += rows[j].cpu_ns;
            sum.samples += rows[j].samples;
            sum.off_ns += rows[j].off_ns;
            sum.name = rows[j].name;          /* newest name wins */
            sum.last_end_ms = rows[j].last_end_ms;
            if (rows[j].pod)
                sum.pod = rows[j].pod;        /* and the newest pod */
        }
        i = j;
        const agg_proc_t *info = agg_procs_get(self->procs, sum.node,
                                               sum.pid);
        agg_prow_t row = {
            .pid = sum.pid, .node = (char *)sum.node,
            .name = (char *)sum.name,
            .cmdline = (char *)(info && info->cmdline ? info->cmdline : ""),
            .cpu_ns = sum.cpu_ns, .samples = sum.samples,
            .off_ns = sum.off_ns, .last_end_ms = sum.last_end_ms,
            .ns = (char *)(sum.pod ? sum.pod->ns : ""),
            .pod = (char *)(sum.pod ? sum.pod->pod : ""),
            .container = (char *)(sum.pod ? sum.pod->container : ""),
            .alive = info ? info->exit_ms == 0
                          : sum.last_end_ms == newest_end,
        };
        if (agg_prows_add(out, &row))
            goto cleanup;
    }
    rc = 0;
cleanup:
    pthread_mutex_unlock(&self->lock);
    free(rows);
    return rc;
}

void
agg_processes_json(agg_t *self, uint64_t start_ms, uint64_t end_ms,
                   agg_buf_t *out)
{
    agg_prows_t rows;
    agg_prows_init(&rows);
    if (agg_process_rows(self, start_ms, end_ms, &rows))
        out->oom = 1;
    else
        agg_prows_json(&rows, NULL, out);
    agg_prows_release(&rows);
}

void
agg_tasks_json_all(agg_t *self, agg_buf_t *out)
{
    pthread_mutex_lock(&self->lock);
    agg_tasks_json(self->tasks, out);
    pthread_mutex_unlock(&self->lock);
}

char *
agg_metrics_text(agg_t *self, size_t *len)
{
    agg_buf_t b;
    agg_buf_init(&b, 0);
    if (self->o.stats) {
        size_t n = 0;
        char *own = stats_render(self->o.stats, &n);
        if (own)
            agg_buf_append(&b, own, n);
        else
            b.oom = 1;
        free(own);
    }
    pthread_mutex_lock(&self->lock);
    agg_stagestats_render(self->stagestats, &b);
    pthread_mutex_unlock(&self->lock);
    return agg_buf_take(&b, len);
}

/* ------------------------------------------------------------ accessors */
void
agg_set_handover(agg_t *self, agg_handover_t *handover)
{
    self->handover = handover;
}

stats_t *agg_stats(agg_t *self) { return self->o.stats; }
uint64_t agg_flush_ms(const agg_t *self) { return self->o.flush_ms; }
size_t agg_max_nodes(const agg_t *self) { return self->o.max_nodes; }
int agg_store_active(const agg_t *self) { return self->store != NULL; }

size_t
agg_history_len(agg_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t n = self->nhist;
    pthread_mutex_unlock(&self->lock);
    return n;
}
