/* BPF loading and attachment; see probes.h. */
#include "collector/probes.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <math.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bpf/profile.h"
#include "kallsyms.h"
#include "log.h"
#include "profile.skel.h"

#define PROBES_MAX_CPUS 4096

/* Kernel names of the scheduler tick's hrtimer function, newest first. */
static const char *const s_tick_functions[] = { "tick_nohz_handler",
                                                "tick_sched_timer" };

struct probes {
    struct profile_bpf *skel;
    int flavour;
    int sampler;                 /* COLLECTOR_SAMPLER_TICK or _PERF_EVENT */
    uint64_t period_ns;          /* perf_event's sample_period */
    uint32_t host_every;         /* perf_event: host-wide every Nth */
    uint64_t tick_ns;            /* tick: NSEC_PER_SEC / CONFIG_HZ */
    uint32_t tick_host_every, tick_task_every;
    uint64_t irqentry_lo, irqentry_hi; /* interrupt entry code */
    int64_t irq_regs_off;        /* see irq_regs_off in profile.bpf.c */
    int ncpus_online;
    struct bpf_link **perf_links;
    int *perf_fds;
    int nperf;
    struct ring_buffer *samples_rb;
    struct ring_buffer *events_rb;
    uint32_t *pids;              /* what the task pid map holds, sorted */
    size_t npids;
    int ncpus_possible;
    int unwind;                  /* 1: the .eh_frame walker is loaded;
                                    2: with bpf_find_vma for processes
                                    without entry (unwind.bpf.h) */
};

/* libbpf talks a lot while we probe flavours; keep its last warning for
 * the error message and send the rest to debug. */
static char s_libbpf_last[256];

static int s_libbpf_print(enum libbpf_print_level level, const char *fmt,
                          va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
        line[--n] = '\0';
    /* libbpf prefixes most lines with its name already. */
    const char *text = strncmp(line, "libbpf: ", 8) == 0 ? line + 8 : line;
    if (level == LIBBPF_WARN && n)
        snprintf(s_libbpf_last, sizeof(s_libbpf_last), "%.*s",
                 (int)sizeof(s_libbpf_last) - 1, text);
    if (n)
        log_debug("libbpf: %s", text);
    return 0;
}

const char *probes_flavour_name(int flavour)
{
    switch (flavour) {
    case COLLECTOR_PROBE_TP_BTF: return "tp_btf";
    case COLLECTOR_PROBE_RAW_TP: return "raw_tp";
    case COLLECTOR_PROBE_TRACEPOINT: return "tracepoint";
    default: return "auto";
    }
}

static void s_select_flavour(struct profile_bpf *skel, int flavour)
{
    struct bpf_program *btf[] = { skel->progs.sky_exec_btf,
                                  skel->progs.sky_exit_btf,
                                  skel->progs.sky_fork_btf };
    struct bpf_program *raw[] = { skel->progs.sky_exec_raw,
                                  skel->progs.sky_exit_raw,
                                  skel->progs.sky_fork_raw };
    struct bpf_program *tp[] = { skel->progs.sky_exec_tp,
                                 skel->progs.sky_exit_tp,
                                 skel->progs.sky_fork_tp };
    for (int i = 0; i < 3; i++) {
        bpf_program__set_autoload(btf[i], flavour == COLLECTOR_PROBE_TP_BTF);
        bpf_program__set_autoload(raw[i], flavour == COLLECTOR_PROBE_RAW_TP);
        bpf_program__set_autoload(tp[i],
                                  flavour == COLLECTOR_PROBE_TRACEPOINT);
    }
}

/* Records of processes without entry (unw_vmas): processes exec'd and not
 * read yet at one time; 4.6 KiB each. */
#define PROBES_UNW_VMAS 512

/* Opens, configures, loads and attaches the process-event probes of one
 * flavour. NULL (with errno kept) when this flavour does not work here. */
static struct profile_bpf *s_try_flavour(const collector_options_t *opts,
                                         const probes_t *self, int flavour,
                                         uint64_t tick_fn, int unwind,
                                         int *error)
{
    struct profile_bpf *skel = profile_bpf__open();
    int rc;

    if (!skel) {
        *error = errno ? errno : EINVAL;
        return NULL;
    }
    skel->rodata->sample_period_ns = opts->period_ns;
    /* With the tick, perf events (if any) sample the task pids only. */
    skel->rodata->host_every =
        opts->host_wide && !tick_fn ? opts->host_every : 0;
    skel->rodata->tick_fn = tick_fn;
    skel->rodata->tick_ns = self->tick_ns;
    skel->rodata->tick_host_every = opts->host_wide ? self->tick_host_every
                                                    : 0;
    skel->rodata->tick_task_every = self->tick_task_every;
    skel->rodata->irqentry_lo = self->irqentry_lo;
    skel->rodata->irqentry_hi = self->irqentry_hi;
    skel->rodata->irq_regs_off = self->irq_regs_off;
    /* Wake user space early only when a quarter of the ring is used: the
     * timer drain normally empties it long before. */
    skel->rodata->wakeup_bytes = opts->ringbuf_size / 4;
    /* Without the walker its maps shrink to one entry each. */
    skel->rodata->unw_enabled = unwind ? 1 : 0;
    skel->rodata->unw_vmas_on = unwind == 2 ? 1 : 0;
    skel->rodata->unw_max_frames = opts->unwind_max_frames;
    rc = bpf_map__set_max_entries(skel->maps.samples,
                                  (uint32_t)opts->ringbuf_size);
    if (rc == 0)
        rc = bpf_map__set_max_entries(skel->maps.unw_rows,
                                      unwind ? opts->unwind_rows : 1);
    if (rc == 0)
        rc = bpf_map__set_max_entries(skel->maps.unw_tables,
                                      unwind ? opts->unwind_tables : 1);
    if (rc == 0)
        rc = bpf_map__set_max_entries(skel->maps.unw_procs,
                                      unwind ? opts->unwind_procs : 1);
    if (rc == 0)
        rc = bpf_map__set_max_entries(skel->maps.unw_pids,
                                      unwind ? opts->unwind_procs : 1);
    /* A table's file can have several inodes (copies in containers). */
    if (rc == 0)
        rc = bpf_map__set_max_entries(skel->maps.unw_files,
                                      unwind == 2 ? 2 * opts->unwind_tables
                                                  : 1);
    if (rc == 0)
        rc = bpf_map__set_max_entries(skel->maps.unw_vmas,
                                      unwind == 2 ? PROBES_UNW_VMAS : 8);
    if (rc == 0) {
        s_select_flavour(skel, flavour);
        bpf_program__set_autoload(skel->progs.sky_on_tick, tick_fn != 0);
        rc = profile_bpf__load(skel);
    }
    if (rc == 0)
        rc = profile_bpf__attach(skel);
    if (rc != 0) {
        *error = rc < 0 ? -rc : rc;
        profile_bpf__destroy(skel);
        return NULL;
    }
    return skel;
}

static long s_perf_event_open(struct perf_event_attr *attr, int cpu)
{
    return syscall(__NR_perf_event_open, attr, -1, cpu, -1,
                   PERF_FLAG_FD_CLOEXEC);
}

/* Online CPUs from sysfs ("0-3,5"), as a bitmap over possible CPUs. */
static int s_online_cpus(unsigned char *online, int max)
{
    char buf[4096];
    FILE *f = fopen("/sys/devices/system/cpu/online", "re");
    int count = 0;

    if (!f)
        return -1;
    if (!fgets(buf, sizeof(buf), f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    for (char *p = buf; *p && *p != '\n';) {
        char *end;
        long a = strtol(p, &end, 10), b;
        if (end == p)
            return -1;
        b = a;
        p = end;
        if (*p == '-') {
            b = strtol(p + 1, &end, 10);
            if (end == p + 1)
                return -1;
            p = end;
        }
        for (long c = a; c <= b && c < max; c++)
            if (c >= 0 && !online[c]) {
                online[c] = 1;
                count++;
            }
        if (*p == ',')
            p++;
    }
    return count;
}

/* How many CPUs are online now, -1 when sysfs does not say. */
static int s_count_online_cpus(void)
{
    int ncpu = libbpf_num_possible_cpus();
    unsigned char *online;
    int n;

    if (ncpu <= 0 || ncpu > PROBES_MAX_CPUS)
        ncpu = PROBES_MAX_CPUS;
    online = calloc((size_t)ncpu, 1);
    n = online ? s_online_cpus(online, ncpu) : -1;
    free(online);
    return n;
}

static void s_detach_sampler(probes_t *self)
{
    for (int i = 0; i < self->nperf; i++) {
        bpf_link__destroy(self->perf_links[i]);
        close(self->perf_fds[i]);
    }
    self->nperf = 0;
}

static int s_attach_sampler(probes_t *self, char *err, size_t errlen)
{
    int ncpu = libbpf_num_possible_cpus();
    unsigned char *online = NULL;
    int rc = -1;

    if (ncpu <= 0 || ncpu > PROBES_MAX_CPUS)
        ncpu = PROBES_MAX_CPUS;
    online = calloc((size_t)ncpu, 1);
    if (!self->perf_links)
        self->perf_links = calloc((size_t)ncpu, sizeof(*self->perf_links));
    if (!self->perf_fds)
        self->perf_fds = calloc((size_t)ncpu, sizeof(*self->perf_fds));
    if (!online || !self->perf_links || !self->perf_fds) {
        snprintf(err, errlen, "out of memory");
        goto cleanup;
    }
    if (s_online_cpus(online, ncpu) <= 0) {
        snprintf(err, errlen, "cannot read /sys/devices/system/cpu/online");
        goto cleanup;
    }
    self->nperf = 0;
    for (int cpu = 0; cpu < ncpu; cpu++) {
        if (!online[cpu])
            continue;
        struct perf_event_attr attr = {
            .type = PERF_TYPE_SOFTWARE,
            .size = sizeof(attr),
            .config = PERF_COUNT_SW_CPU_CLOCK,
            .sample_period = self->period_ns,
        };
        long fd = s_perf_event_open(&attr, cpu);
        if (fd < 0) {
            if (errno == ENODEV)  /* went offline meanwhile */
                continue;
            snprintf(err, errlen,
                     "perf_event_open(CPU_CLOCK) on CPU %d: %s%s", cpu,
                     strerror(errno),
                     errno == EACCES || errno == EPERM
                         ? " (needs root or CAP_PERFMON)" : "");
            goto cleanup;
        }
        struct bpf_link *link = bpf_program__attach_perf_event(
            self->skel->progs.sky_on_cpu, (int)fd);
        if (!link) {
            int e = errno;
            close((int)fd);
            snprintf(err, errlen, "attaching the sampler on CPU %d: %s",
                     cpu, strerror(e));
            goto cleanup;
        }
        self->perf_fds[self->nperf] = (int)fd;
        self->perf_links[self->nperf] = link;
        self->nperf++;
    }
    if (self->nperf == 0) {
        snprintf(err, errlen, "no online CPU could be sampled");
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (rc != 0)
        s_detach_sampler(self);
    free(online);
    return rc;
}

/* What the tick sampler needs from /proc/kallsyms: the address of the
 * tick's hrtimer function and the bounds of the interrupt entry code.
 * 0, or -1 when some is missing (or addresses are hidden). */
static int s_find_tick_symbols(uint64_t *tick_fn, const char **name,
                               uint64_t *irq_lo, uint64_t *irq_hi)
{
    const char *const names[] = { s_tick_functions[0], s_tick_functions[1],
                                  "__irqentry_text_start",
                                  "__irqentry_text_end" };
    uint64_t addr[4];

    if (kallsyms_addrs(names, 4, addr) < 0)
        return -1;
    *tick_fn = addr[0] ? addr[0] : addr[1];
    *name = addr[0] ? names[0] : names[1];
    *irq_lo = addr[2];
    *irq_hi = addr[3];
    return *tick_fn && *irq_lo && *irq_hi > *irq_lo ? 0 : -1;
}

/* "now at N nsecs" and the first "jiffies: N" of /proc/timer_list. */
static int s_read_jiffies(uint64_t *now_ns, uint64_t *jiffies)
{
    FILE *f = fopen("/proc/timer_list", "re");
    char line[512];
    int got = 0;

    if (!f)
        return -1;
    while (got != 3 && fgets(line, sizeof(line), f)) {
        unsigned long long v;
        if (!(got & 1) && sscanf(line, "now at %llu nsecs", &v) == 1) {
            *now_ns = v;
            got |= 1;
        } else if (!(got & 2) && sscanf(line, "jiffies: %llu", &v) == 1) {
            *jiffies = v;
            got |= 2;
        }
    }
    fclose(f);
    return got == 3 ? 0 : -1;
}

/* The kernel's tick period, from CONFIG_HZ measured as the rate jiffies
 * advance over 100 ms, snapped to the HZ values Kconfig offers. 0 when
 * /proc/timer_list cannot tell. */
static uint64_t s_measure_tick_ns(void)
{
    static const unsigned hz_values[] = { 100, 250, 300, 1000 };
    uint64_t t0, j0, t1, j1;
    struct timespec pause = { 0, 100000000 };

    if (s_read_jiffies(&t0, &j0) < 0)
        return 0;
    nanosleep(&pause, NULL);
    if (s_read_jiffies(&t1, &j1) < 0 || t1 <= t0 || j1 <= j0)
        return 0;
    double hz = (double)(j1 - j0) * 1e9 / (double)(t1 - t0);
    unsigned best = hz_values[0];
    for (size_t i = 1; i < sizeof(hz_values) / sizeof(hz_values[0]); i++)
        if (fabs(hz - hz_values[i]) < fabs(hz - best))
            best = hz_values[i];
    if (fabs(hz - best) > best * 0.25)
        return 0;
    return 1000000000ull / best;
}

/* &__irq_regs - &tick_cpu_sched in the kernel's per-CPU area, from the
 * .data..percpu section of its BTF; 0 when either is missing. */
static int64_t s_irq_regs_offset(void)
{
    struct btf *btf = btf__load_vmlinux_btf();
    int64_t off[2] = { -1, -1 };
    static const char *const vars[] = { "__irq_regs", "tick_cpu_sched" };

    if (!btf)
        return 0;
    int sec = btf__find_by_name_kind(btf, ".data..percpu", BTF_KIND_DATASEC);
    if (sec > 0) {
        const struct btf_type *t = btf__type_by_id(btf, (uint32_t)sec);
        const struct btf_var_secinfo *v = btf_var_secinfos(t);
        for (int i = 0; i < btf_vlen(t); i++, v++) {
            const struct btf_type *var = btf__type_by_id(btf, v->type);
            const char *name = var ? btf__name_by_offset(btf, var->name_off)
                                   : NULL;
            for (int k = 0; name && k < 2; k++)
                if (strcmp(name, vars[k]) == 0)
                    off[k] = v->offset;
        }
    }
    btf__free(btf);
    if (off[0] < 0 || off[1] < 0)
        return 0;
    return off[0] - off[1];
}

/* Whether and how the tick can sample: 0 with tick_fn set, -1 with why. */
static int s_plan_tick(probes_t *self, const collector_options_t *opts,
                       uint64_t *tick_fn, const char **why)
{
    const char *name = NULL;

    if (s_find_tick_symbols(tick_fn, &name, &self->irqentry_lo,
                            &self->irqentry_hi) < 0) {
        *tick_fn = 0;
        *why = "/proc/kallsyms has no tick_nohz_handler or tick_sched_timer, "
               "or no __irqentry_text_start/end";
        return -1;
    }
    self->irq_regs_off = s_irq_regs_offset();
    if (!self->irq_regs_off)
        log_info("tick sampler: the interrupted registers cannot be "
                 "located (no __irq_regs or tick_cpu_sched in BTF): every "
                 "sample walks the kernel stack");
    self->tick_ns = s_measure_tick_ns();
    if (!self->tick_ns) {
        *why = "CONFIG_HZ could not be measured from /proc/timer_list";
        return -1;
    }
    uint64_t every = (opts->host_period_ns + self->tick_ns / 2) /
                     self->tick_ns;
    self->tick_host_every = every ? (uint32_t)every : 1;
    /* Tasks keep their exact dump_period on perf events unless it is a
     * whole number of ticks (within 1 %). */
    uint64_t task_every = (opts->period_ns + self->tick_ns / 2) /
                          self->tick_ns;
    uint64_t diff = task_every * self->tick_ns > opts->period_ns
                        ? task_every * self->tick_ns - opts->period_ns
                        : opts->period_ns - task_every * self->tick_ns;
    self->tick_task_every =
        task_every && diff * 100 <= opts->period_ns ? (uint32_t)task_every
                                                    : 0;
    log_debug("scheduler tick: %s at 0x%llx, %llu ns", name,
              (unsigned long long)*tick_fn, (unsigned long long)self->tick_ns);
    return 0;
}

probes_t *probes_new(const collector_options_t *opts,
                     probes_record_fn on_sample, probes_record_fn on_event,
                     void *ctx, char *err, size_t errlen)
{
    static const int order[] = { COLLECTOR_PROBE_TP_BTF,
                                 COLLECTOR_PROBE_RAW_TP,
                                 COLLECTOR_PROBE_TRACEPOINT };
    probes_t *self = calloc(1, sizeof(*self));
    int error = 0;

    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    libbpf_set_print(s_libbpf_print);
    self->period_ns = opts->period_ns;
    self->host_every = opts->host_every;
    uint64_t tick_fn = 0;
    const char *why_not_tick = "collector.sampler is perf_event";
    char unwind_why[320] = "collector.unwinder is fp";
    if (opts->active && opts->sampler != COLLECTOR_SAMPLER_PERF_EVENT &&
        s_plan_tick(self, opts, &tick_fn, &why_not_tick) < 0 &&
        opts->sampler == COLLECTOR_SAMPLER_TICK) {
        snprintf(err, errlen, "collector.sampler is tick but %s",
                 why_not_tick);
        goto fail;
    }
    /* With the tick first; without it if nothing loads with it. */
    for (int pass = tick_fn ? 0 : 1; pass < 2 && !self->skel; pass++) {
        uint64_t fn = pass == 0 ? tick_fn : 0;
        for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
            if (opts->probe_flavour != COLLECTOR_PROBE_AUTO &&
                opts->probe_flavour != order[i])
                continue;
            s_libbpf_last[0] = '\0';
            /* The walker first; where it does not load, frame pointers
             * (collector.unwinder auto) with the reason logged. */
            if (opts->unwinder != COLLECTOR_UNWINDER_FP) {
                /* With bpf_find_vma for processes not read yet (5.17+),
                 * else without. */
                self->skel = s_try_flavour(opts, self, order[i], fn, 2,
                                           &error);
                self->unwind = self->skel ? 2 : 0;
                if (!self->skel) {
                    s_libbpf_last[0] = '\0';
                    self->skel = s_try_flavour(opts, self, order[i], fn, 1,
                                               &error);
                    self->unwind = self->skel != NULL;
                }
                if (!self->skel)
                    snprintf(unwind_why, sizeof(unwind_why), "%s%s%s",
                             strerror(error),
                             s_libbpf_last[0] ? "; libbpf: " : "",
                             s_libbpf_last);
            }
            if (!self->skel && opts->unwinder != COLLECTOR_UNWINDER_DWARF) {
                s_libbpf_last[0] = '\0';
                self->skel = s_try_flavour(opts, self, order[i], fn, 0,
                                           &error);
            }
            if (self->skel) {
                self->flavour = order[i];
                break;
            }
            log_debug("process-event probes as %s%s: %s",
                      probes_flavour_name(order[i]),
                      fn ? " with the tick sampler" : "", strerror(error));
            /* Without permission no flavour will do: say so at once. */
            if (error == EPERM || error == EACCES)
                break;
        }
        if (!self->skel && pass == 0) {
            if (opts->sampler == COLLECTOR_SAMPLER_TICK) {
                snprintf(err, errlen, "collector.sampler is tick but "
                         "tp_btf/hrtimer_expire_entry does not load: %s%s%s",
                         strerror(error), s_libbpf_last[0] ? "; libbpf: " : "",
                         s_libbpf_last);
                goto fail;
            }
            why_not_tick = "tp_btf/hrtimer_expire_entry does not load";
        }
        if (self->skel)
            self->sampler = fn ? COLLECTOR_SAMPLER_TICK
                               : COLLECTOR_SAMPLER_PERF_EVENT;
    }
    if (!self->skel) {
        snprintf(err, errlen, "cannot load the BPF programs: %s%s%s%s",
                 strerror(error),
                 error == EPERM || error == EACCES
                     ? " (needs root, or CAP_BPF+CAP_PERFMON+CAP_SYS_PTRACE)"
                     : "",
                 s_libbpf_last[0] ? "; libbpf: " : "", s_libbpf_last);
        goto fail;
    }
    self->ncpus_online = s_count_online_cpus();
    if (self->unwind)
        log_info("user stacks: .eh_frame tables walked in the kernel (up to "
                 "%u frames; %u rows, %u tables, %u processes)%s",
                 opts->unwind_max_frames, opts->unwind_rows,
                 opts->unwind_tables, opts->unwind_procs,
                 self->unwind == 2 ? "" : "; processes not read yet: frame "
                                          "pointers (no bpf_find_vma)");
    else
        log_info("user stacks: frame pointers (unwinder=\"fp\"): %s",
                 unwind_why);
    if (!opts->active)
        log_info("on-CPU sampling off (profiling.active is false)");
    else if (self->sampler == COLLECTOR_SAMPLER_TICK)
        log_info("on-CPU sampler: scheduler tick (%.0f Hz); host-wide every "
                 "%u ticks = %.3f ms; tasks %s%.3f ms",
                 1e9 / (double)self->tick_ns, self->tick_host_every,
                 (double)self->tick_host_every * (double)self->tick_ns / 1e6,
                 self->tick_task_every ? "on the tick every "
                                       : "on perf events (while any) every ",
                 (double)(self->tick_task_every
                              ? self->tick_task_every * self->tick_ns
                              : opts->period_ns) / 1e6);
    else
        log_info("on-CPU sampler: perf_event (CPU clock every %.3f ms): %s",
                 (double)opts->period_ns / 1e6, why_not_tick);
    if (opts->active && self->sampler == COLLECTOR_SAMPLER_PERF_EVENT &&
        s_attach_sampler(self, err, errlen) < 0)
        goto fail;
    self->samples_rb = ring_buffer__new(bpf_map__fd(self->skel->maps.samples),
                                        on_sample, ctx, NULL);
    self->events_rb = ring_buffer__new(
        bpf_map__fd(self->skel->maps.proc_events), on_event, ctx, NULL);
    if (!self->samples_rb || !self->events_rb) {
        snprintf(err, errlen, "cannot set up the ring buffers: %s",
                 strerror(errno));
        goto fail;
    }
    self->ncpus_possible = libbpf_num_possible_cpus();
    return self;
fail:
    probes_destroy(&self);
    return NULL;
}

void probes_destroy(probes_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    probes_t *self = *self_p;
    ring_buffer__free(self->samples_rb);
    ring_buffer__free(self->events_rb);
    s_detach_sampler(self);
    free(self->perf_links);
    free(self->perf_fds);
    profile_bpf__destroy(self->skel);
    free(self->pids);
    free(self);
    *self_p = NULL;
}

int probes_samples_fd(const probes_t *self)
{
    return ring_buffer__epoll_fd(self->samples_rb);
}

int probes_events_fd(const probes_t *self)
{
    return ring_buffer__epoll_fd(self->events_rb);
}

int probes_consume_samples(probes_t *self)
{
    return ring_buffer__consume(self->samples_rb);
}

int probes_consume_events(probes_t *self)
{
    return ring_buffer__consume(self->events_rb);
}

static int s_contains(const uint32_t *sorted, size_t n, uint32_t pid)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] == pid)
            return 1;
        if (sorted[mid] < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* With the tick, tasks whose period it cannot honour have perf events
 * while any is active. */
static int s_follow_tasks(probes_t *self, size_t n)
{
    char err[256];

    if (self->sampler != COLLECTOR_SAMPLER_TICK || self->tick_task_every)
        return 0;
    if (n == 0 && self->nperf > 0) {
        s_detach_sampler(self);
        log_info("on-CPU task sampling: perf events detached");
    } else if (n > 0 && self->nperf == 0) {
        if (s_attach_sampler(self, err, sizeof(err)) < 0) {
            log_warn("on-CPU tasks cannot be sampled: %s", err);
            return -1;
        }
        log_info("on-CPU task sampling: perf events on %d CPU%s every "
                 "%.3f ms (not a whole number of ticks)", self->nperf,
                 self->nperf == 1 ? "" : "s", (double)self->period_ns / 1e6);
    }
    return 0;
}

int probes_set_task_pids(probes_t *self, const uint32_t *pids, size_t n)
{
    int fd = bpf_map__fd(self->skel->maps.task_pids);
    uint32_t flags = SKY_PID_ON_CPU;
    uint32_t *copy = NULL;
    int rc = 0;

    for (size_t i = 0; i < self->npids; i++)
        if (!s_contains(pids, n, self->pids[i]))
            bpf_map_delete_elem(fd, &self->pids[i]);
    size_t failed = 0;
    int first_errno = 0;
    for (size_t i = 0; i < n; i++)
        if (!s_contains(self->pids, self->npids, pids[i]) &&
            bpf_map_update_elem(fd, &pids[i], &flags, BPF_ANY) != 0) {
            if (!failed++)
                first_errno = errno;
            rc = -1;
        }
    /* One line for the lot: a task set larger than the map would
     * otherwise log once per pid. */
    if (failed)
        log_warn("%zu task pid%s not added to the sampler: %s", failed,
                 failed == 1 ? "" : "s", strerror(first_errno));
    if (n) {
        copy = malloc(n * sizeof(*copy));
        if (!copy)
            return -1;
        memcpy(copy, pids, n * sizeof(*copy));
    }
    free(self->pids);
    self->pids = copy;
    self->npids = n;
    if (s_follow_tasks(self, n) < 0)
        rc = -1;
    return rc;
}

uint64_t probes_counter(const probes_t *self, uint32_t idx)
{
    int ncpu = self->ncpus_possible > 0 ? self->ncpus_possible : 1;
    uint64_t *values = calloc((size_t)ncpu, sizeof(*values));
    uint64_t sum = 0;

    if (!values)
        return 0;
    if (bpf_map__lookup_elem(self->skel->maps.counters, &idx, sizeof(idx),
                             values, (size_t)ncpu * sizeof(*values), 0) == 0)
        for (int i = 0; i < ncpu; i++)
            sum += values[i];
    free(values);
    return sum;
}

int probes_flavour(const probes_t *self)
{
    return self->flavour;
}

int probes_ncpus(const probes_t *self)
{
    if (self->sampler == COLLECTOR_SAMPLER_TICK)
        return self->ncpus_online > 0 ? self->ncpus_online : 0;
    return self->nperf;
}

int probes_sampler(const probes_t *self)
{
    return self->sampler;
}

int probes_perf_events(const probes_t *self)
{
    return self->nperf;
}

int probes_unwind_maps(const probes_t *self, const collector_options_t *opts,
                       unwinder_maps_t *out)
{
    if (!self->unwind)
        return -1;
    *out = (unwinder_maps_t){
        .pids_fd = bpf_map__fd(self->skel->maps.unw_pids),
        .procs_fd = bpf_map__fd(self->skel->maps.unw_procs),
        .tables_fd = bpf_map__fd(self->skel->maps.unw_tables),
        .rows_fd = bpf_map__fd(self->skel->maps.unw_rows),
        .files_fd = self->unwind == 2
                        ? bpf_map__fd(self->skel->maps.unw_files) : -1,
        .vmas_fd = bpf_map__fd(self->skel->maps.unw_vmas),
        .vzero_fd = bpf_map__fd(self->skel->maps.unw_vmas_zero),
        .vmas_on = self->unwind == 2,
        .max_files = self->unwind == 2 ? 2 * opts->unwind_tables : 0,
        .max_vmas = self->unwind == 2 ? PROBES_UNW_VMAS : 0,
        .max_procs = opts->unwind_procs,
        .max_tables = opts->unwind_tables,
        .max_rows = opts->unwind_rows,
    };
    return 0;
}

uint64_t probes_host_period_ns(const probes_t *self)
{
    if (self->sampler == COLLECTOR_SAMPLER_TICK)
        return (uint64_t)self->tick_host_every * self->tick_ns;
    return self->period_ns * self->host_every;
}
