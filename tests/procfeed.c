/* The collector's proc.events, emulated for uplink tests: see procfeed.h. */
#include "procfeed.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "arena.h"
#include "bus.h"
#include "cgroup_id.h"
#include "procfacts.h"
#include "stats.h"

/* One process's facts as the collector reads them (lib/procfacts.h),
 * strings in arena; -1 when it is gone. */
static int s_read(arena_t *arena, symcheck_t *sc, uint32_t pid,
                  wire_proc_event_t *ev)
{
    char path[64], exe[PROCFACTS_EXE_MAX] = "", comm[32] = "";
    char cmdline[PROCFACTS_CMDLINE_MAX] = "", id[CGROUP_ID_LEN] = "";

    if (procfacts_comm(NULL, pid, comm, sizeof comm) != 0)
        return -1;
    /* A kernel thread has no command line, no exe and no symbols. */
    procfacts_cmdline(NULL, pid, cmdline, sizeof cmdline);
    procfacts_exe(NULL, pid, exe, sizeof exe);
    procfacts_container_id(NULL, pid, id, sizeof id);
    snprintf(path, sizeof path, "/proc/%u/exe", pid);
    bool has_symbols = *cmdline && (symcheck_has_symbols(sc, path) ||
                                    (*exe && symcheck_has_symbols(sc, exe)));
    *ev = (wire_proc_event_t){
        .type = WIRE_PROC_ALIVE, .pid = pid,
        .comm = arena_strdup(arena, comm), .exe = arena_strdup(arena, exe),
        .cmdline = arena_strdup(arena, cmdline),
        .container_id = arena_strdup(arena, id),
        .has_symbols = has_symbols,
    };
    return ev->comm && ev->exe && ev->cmdline && ev->container_id ? 0 : -1;
}

static int s_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Collects the facts of every running process (procfacts_each_pid). */
typedef struct {
    arena_t *arena;
    symcheck_t *sc;
    wire_proc_event_t *evs;
    uint32_t *alive;
    size_t n, cap;
} s_scan_t;

static int s_scan_one(void *arg, uint32_t pid)
{
    s_scan_t *st = arg;
    if (st->n >= st->cap)
        return 1;
    if (s_read(st->arena, st->sc, pid, &st->evs[st->n]) == 0)
        st->alive[st->n++] = pid;
    return 0;
}

int tu_procfeed_encode(tu_procfeed_t *self, wire_buf_t *out)
{
    int rc = -1;
    arena_t *arena = arena_new(64u << 20);
    if (!self->symcheck)
        self->symcheck = symcheck_new("/usr/lib/debug");
    symcheck_t *sc = self->symcheck;
    size_t cap = 4096;
    wire_proc_event_t *evs = calloc(cap + self->npids, sizeof *evs);
    uint32_t *alive = calloc(cap, sizeof *alive);
    if (!arena || !sc || !evs || !alive)
        goto cleanup;
    s_scan_t st = { arena, sc, evs, alive, 0, cap };
    if (procfacts_each_pid(NULL, s_scan_one, &st) == 0)
        goto cleanup;
    size_t n = st.n;
    qsort(alive, n, sizeof *alive, s_cmp_u32);
    size_t total = n;
    for (size_t i = 0; i < self->npids; i++)
        if (!bsearch(&self->pids[i], alive, n, sizeof *alive, s_cmp_u32))
            evs[total++] = (wire_proc_event_t){
                .type = WIRE_PROC_EXIT, .pid = self->pids[i], .comm = "",
                .exe = "", .cmdline = "", .container_id = "" };
    wire_proc_events_t m = { .nevents = (uint32_t)total, .events = evs };
    wire_header_set(&m.hdr, "collector/procfeed", ++self->seq);
    wire_buf_reset(out);
    if (wire_encode_proc_events(&m, out) != 0)
        goto cleanup;
    free(self->pids);
    self->pids = alive;
    self->npids = n;
    alive = NULL;
    rc = 0;
cleanup:
    free(alive);
    free(evs);
    arena_destroy(&arena);
    return rc;
}

void tu_procfeed_release(tu_procfeed_t *self)
{
    free(self->pids);
    symcheck_destroy(&self->symcheck);
    memset(self, 0, sizeof *self);
}

struct tu_procfeed_thread {
    pthread_t thread;
    int stop;                /* atomic */
    int interval_ms;
    void *ctx;
    stats_t *stats;
    bus_t *bus;
};

static void *s_run(void *arg)
{
    tu_procfeed_thread_t *self = arg;
    tu_procfeed_t feed = { 0 };
    wire_buf_t buf;

    wire_buf_init(&buf);
    while (!__atomic_load_n(&self->stop, __ATOMIC_RELAXED)) {
        if (tu_procfeed_encode(&feed, &buf) == 0)
            bus_publish(self->bus, TOPIC_PROC_EVENTS, buf.data, buf.len);
        usleep((useconds_t)self->interval_ms * 1000u);
    }
    wire_buf_release(&buf);
    tu_procfeed_release(&feed);
    return NULL;
}

tu_procfeed_thread_t *tu_procfeed_start(const char *bus_in,
                                        const char *bus_out,
                                        int interval_ms)
{
    tu_procfeed_thread_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->interval_ms = interval_ms;
    self->ctx = zmq_ctx_new();
    self->stats = stats_new("test", "procfeed");
    bus_options_t bo = { bus_in, bus_out, 1000, 1000, "collector/procfeed",
                         NULL };
    if (self->ctx && self->stats)
        self->bus = bus_new(self->ctx, &bo, self->stats);
    if (!self->bus || pthread_create(&self->thread, NULL, s_run, self) != 0) {
        bus_destroy(&self->bus);
        stats_destroy(&self->stats);
        if (self->ctx)
            zmq_ctx_term(self->ctx);
        free(self);
        return NULL;
    }
    return self;
}

void tu_procfeed_stop(tu_procfeed_thread_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tu_procfeed_thread_t *self = *self_p;
    __atomic_store_n(&self->stop, 1, __ATOMIC_RELAXED);
    pthread_join(self->thread, NULL);
    bus_destroy(&self->bus);
    stats_destroy(&self->stats);
    zmq_ctx_term(self->ctx);
    free(self);
    *self_p = NULL;
}
