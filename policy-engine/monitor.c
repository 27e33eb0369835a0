#include "monitor.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static int s_read_small(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return 0;
}

static double s_load1(const monitor_t *self)
{
    char path[300], buf[128];
    snprintf(path, sizeof path, "%s/loadavg", self->root);
    if (s_read_small(path, buf, sizeof buf))
        return 0;
    return strtod(buf, NULL);
}

/* utime + stime (fields 14, 15) and num_threads (20) of /proc/PID/stat;
 * the comm field may hold spaces and parentheses, so parse after the last
 * ')'. */
static int s_stat(const monitor_t *self, uint32_t pid, uint64_t *ticks,
                  long *threads)
{
    char path[300], buf[1024];
    snprintf(path, sizeof path, "%s/%u/stat", self->root, pid);
    if (s_read_small(path, buf, sizeof buf))
        return -1;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p += 2; /* field 3, state */
    unsigned long long ut = 0, st = 0;
    long nthreads = 0;
    int field = 3;
    for (char *tok = strtok(p, " "); tok; tok = strtok(NULL, " "), field++) {
        if (field == 14)
            ut = strtoull(tok, NULL, 10);
        else if (field == 15)
            st = strtoull(tok, NULL, 10);
        else if (field == 20) {
            nthreads = strtol(tok, NULL, 10);
            break;
        }
    }
    if (field != 20)
        return -1;
    *ticks = ut + st;
    *threads = nthreads;
    return 0;
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

/* Whether the service's policy uses a monitor skyprof measures. */
static int s_wanted(const continuous_t *cont, const char *service)
{
    for (unsigned k = 0; k < MONITOR_COUNT; k++)
        if (monitors_get(k)->read && continuous_wants(cont, service, k))
            return 1;
    return 0;
}

size_t monitor_read(monitor_t *self, const continuous_t *cont,
                    monitor_service_fn service_of, void *arg,
                    uint64_t now_mono_ns, monitor_reading_t *out, size_t max)
{
    size_t n = 0;
    self->round++;
    if (continuous_service_count(cont) == 0)
        return 0;
    DIR *d = opendir(self->root);
    if (!d)
        return 0;
    double load = s_load1(self);
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        uint32_t pid = (uint32_t)strtoul(de->d_name, NULL, 10);
        char path[300], comm[128];
        snprintf(path, sizeof path, "%s/%u/comm", self->root, pid);
        if (s_read_small(path, comm, sizeof comm))
            continue; /* exited meanwhile: normal */
        comm[strcspn(comm, "\n")] = '\0';
        const char *service = service_of ? service_of(pid, arg) : NULL;
        if (!service)
            service = comm;
        if (!s_wanted(cont, service))
            continue;
        monitor_sample_t sample = {.at_ns = now_mono_ns,
                                   .clk_tck = self->clk_tck,
                                   .ncpu = self->ncpu, .load1 = load};
        if (s_stat(self, pid, &sample.cpu_ticks, &sample.threads))
            continue;
        monitor_reading_t *m = &out[n];
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
        /* Every monitor skyprof can measure is read, so the meters show
         * them all, whichever one the policy watches. */
        for (unsigned k = 0; k < MONITOR_COUNT; k++) {
            const monitor_desc_t *desc = monitors_get(k);
            if (desc->read && desc->read(&sample, &m->r.values[k]) == 0)
                m->r.has[k] = 1;
        }
        if (prev) {
            prev->ticks = sample.cpu_ticks;
            prev->at_ns = now_mono_ns;
            prev->seen_round = self->round;
        }
        n++;
    }
    closedir(d);
    /* Forget processes not seen this round (exited). */
    for (size_t i = 0; i < self->nprev;) {
        if (self->prev[i].seen_round != self->round)
            self->prev[i] = self->prev[--self->nprev];
        else
            i++;
    }
    return n;
}
