#include "monitor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procfacts.h"

typedef struct {
    uint32_t pid;
    uint64_t ticks;          /* utime + stime */
    uint64_t at_ns;
    uint64_t seen_round;
} cpu_prev_t;

struct monitor {
    char root[256];
    long clk_tck;
    long ncpu;
    cpu_prev_t prev[CONT_MAX_PROCS];
    size_t nprev;
    uint64_t round;
};

monitor_t *monitor_new(const char *proc_root)
{
    monitor_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->root, sizeof self->root, "%s", proc_root ? proc_root : "/proc");
    self->clk_tck = sysconf(_SC_CLK_TCK);
    self->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (self->clk_tck <= 0)
        self->clk_tck = 100;
    if (self->ncpu <= 0)
        self->ncpu = 1;
    return self;
}

void monitor_destroy(monitor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

static cpu_prev_t *s_prev(monitor_t *self, uint32_t pid)
{
    for (size_t i = 0; i < self->nprev; i++)
        if (self->prev[i].pid == pid)
            return &self->prev[i];
    if (self->nprev == CONT_MAX_PROCS)
        return NULL;
    cpu_prev_t *p = &self->prev[self->nprev++];
    memset(p, 0, sizeof *p);
    p->pid = pid;
    return p;
}

/* Whether the service has a policy on a monitor skyprof measures: read
 * here from /proc, or HTTP ones from net.report (the watch also needs
 * those processes, to ask for their network capture). */
static int s_wanted(const continuous_t *cont, const char *service)
{
    for (unsigned k = 0; k < MONITOR_COUNT; k++)
        if (continuous_wants(cont, service, k))
            return 1;
    return 0;
}

/* One monitor_read pass, for procfacts_each_pid. */
typedef struct {
    monitor_t *self;
    const continuous_t *cont;
    monitor_service_fn service_of;
    void *arg;
    uint64_t now_ns;
    double load;
    monitor_reading_t *out;
    size_t n, max;
} read_pass_t;

static int s_read_one(void *arg, uint32_t pid)
{
    read_pass_t *rp = arg;
    monitor_t *self = rp->self;
    char comm[128];
    procfacts_stat_t st;
    if (procfacts_comm(self->root, pid, comm, sizeof comm))
        return 0; /* exited meanwhile: normal */
    const char *service = rp->service_of ? rp->service_of(pid, rp->arg) : NULL;
    if (!service)
        service = comm;
    if (!s_wanted(rp->cont, service) || procfacts_stat(self->root, pid, &st))
        return 0;
    monitor_sample_t sample = {.at_ns = rp->now_ns,
                               .cpu_ticks = st.utime + st.stime,
                               .clk_tck = self->clk_tck, .ncpu = self->ncpu,
                               .threads = st.num_threads, .load1 = rp->load};
    monitor_reading_t *m = &rp->out[rp->n++];
    memset(m, 0, sizeof *m);
    snprintf(m->service, sizeof m->service, "%s", service);
    snprintf(m->process_name, sizeof m->process_name, "%s", comm);
    m->r.pid = pid;
    m->r.service = m->service;
    cpu_prev_t *prev = s_prev(self, pid);
    if (prev) {
        sample.prev_at_ns = prev->at_ns;
        sample.prev_cpu_ticks = prev->ticks;
    }
    /* Every monitor skyprof can measure is read, so the meters show them
     * all, whichever one the policy watches. */
    for (unsigned k = 0; k < MONITOR_COUNT; k++) {
        const monitor_desc_t *desc = monitors_get(k);
        if (desc->read && desc->read(&sample, &m->r.values[k]) == 0)
            m->r.has[k] = 1;
    }
    if (prev) {
        prev->ticks = sample.cpu_ticks;
        prev->at_ns = rp->now_ns;
        prev->seen_round = self->round;
    }
    return rp->n == rp->max;
}

size_t monitor_read(monitor_t *self, const continuous_t *cont,
                    monitor_service_fn service_of, void *arg,
                    uint64_t now_mono_ns, monitor_reading_t *out, size_t max)
{
    read_pass_t rp = {.self = self, .cont = cont, .service_of = service_of,
                      .arg = arg, .now_ns = now_mono_ns, .out = out,
                      .max = max};
    self->round++;
    if (continuous_service_count(cont) == 0 || max == 0)
        return 0;
    procfacts_loadavg(self->root, &rp.load);
    procfacts_each_pid(self->root, s_read_one, &rp);
    /* Forget processes not seen this round (exited). */
    for (size_t i = 0; i < self->nprev;) {
        if (self->prev[i].seen_round != self->round)
            self->prev[i] = self->prev[--self->nprev];
        else
            i++;
    }
    return rp.n;
}
