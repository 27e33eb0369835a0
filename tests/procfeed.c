/* The collector's proc.events, emulated for uplink tests: see procfeed.h. */
#include "procfeed.h"

#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "arena.h"
#include "bus.h"
#include "cgroup_id.h"
#include "stats.h"
#include "testutil.h"

/* One process's facts, strings in arena; -1 when it is gone. */
static int s_read(arena_t *arena, symcheck_t *sc, uint32_t pid,
                  wire_proc_event_t *ev)
{
    char path[64], exe[4096] = "", comm[32] = "", id[CGROUP_ID_LEN] = "";
    size_t len = 0;
    int rc = -1;

    snprintf(path, sizeof path, "/proc/%u/cmdline", pid);
    char *cmdline = tu_read_file(path, &len);
    if (!cmdline)
        goto cleanup;
    for (size_t i = 0; i + 1 < len; i++)
        if (cmdline[i] == '\0')
            cmdline[i] = ' ';
    snprintf(path, sizeof path, "/proc/%u/exe", pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    bool has_symbols = len > 0 && (symcheck_has_symbols(sc, path) ||
                                   (*exe && symcheck_has_symbols(sc, exe)));
    snprintf(path, sizeof path, "/proc/%u/comm", pid);
    char *c = tu_read_file(path, NULL);
    if (c) {
        snprintf(comm, sizeof comm, "%.*s", (int)strcspn(c, "\n"), c);
        free(c);
    }
    snprintf(path, sizeof path, "/proc/%u/cgroup", pid);
    char *cg = tu_read_file(path, NULL);
    if (cg) {
        cgroup_container_id(cg, id, sizeof id);
        free(cg);
    }
    *ev = (wire_proc_event_t){
        .type = WIRE_PROC_ALIVE, .pid = pid,
        .comm = arena_strdup(arena, comm), .exe = arena_strdup(arena, exe),
        .cmdline = arena_strdup(arena, len ? cmdline : ""),
        .container_id = arena_strdup(arena, id),
        .has_symbols = has_symbols,
    };
    rc = ev->comm && ev->exe && ev->cmdline && ev->container_id ? 0 : -1;
cleanup:
    free(cmdline);
    return rc;
}

static int s_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int tu_procfeed_encode(tu_procfeed_t *self, wire_buf_t *out)
{
    int rc = -1;
    arena_t *arena = arena_new(64u << 20);
    if (!self->symcheck)
        self->symcheck = symcheck_new("/usr/lib/debug");
    symcheck_t *sc = self->symcheck;
    DIR *dir = opendir("/proc");
    size_t cap = 4096, n = 0;
    wire_proc_event_t *evs = calloc(cap + self->npids, sizeof *evs);
    uint32_t *alive = calloc(cap, sizeof *alive);
    if (!arena || !sc || !dir || !evs || !alive)
        goto cleanup;
    struct dirent *de;
    while ((de = readdir(dir)) && n < cap) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        uint32_t pid = (uint32_t)strtoul(de->d_name, NULL, 10);
        if (s_read(arena, sc, pid, &evs[n]) == 0)
            alive[n++] = pid;
    }
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
    if (dir)
        closedir(dir);
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
