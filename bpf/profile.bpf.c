// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* On-CPU sampler and process-event probes of the skyprof collector.
 *
 * Two triggers, chosen by user space at start:
 *  - tick (sky_on_tick): tp_btf/hrtimer_expire_entry, acting only when the
 *    expiring hrtimer is the scheduler tick (its function's address,
 *    tick_fn, from /proc/kallsyms). The kernel interrupts every busy CPU
 *    on its tick anyway (NO_HZ_IDLE: idle CPUs have none), so sampling
 *    there adds no interrupt of our own: only the program runs, on every
 *    tick_*_every-th tick of a CPU, and the interrupted task is current.
 *  - perf_event (sky_on_cpu): one PERF_COUNT_SW_CPU_CLOCK event per online
 *    CPU every `sample_period_ns`. Used for tasks whose dump_period the
 *    tick cannot honour (a whole number of ticks), and as the fallback
 *    where the tracepoint or the tick symbol is missing.
 * Processes in task_pids are kept at the task rate; every other process
 * only on every `*host_every`-th tick of its CPU (host-wide view). Only
 * ticks that could have been kept count, so every kept sample stands for
 * exactly that many periods of CPU time. The idle task is never sampled.
 *
 * Samples are written with BPF_RB_NO_WAKEUP: waking user space per sample
 * throttled the CPU_CLOCK sampler to about 10 samples/s (100 Hz asked) on
 * the kernel this was measured on (6.18), so user space drains on a timer
 * and we only force a wakeup once the ring is filling up
 * (collector/README.md, "Records").
 * Process events are rare and go to their own ring, which wakes user space
 * at once so a new process's mappings are read while it still exists. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "profile.h"
#include "unwind.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Tunables set by user space between open and load. */
const volatile __u64 sample_period_ns = 9000000;
const volatile __u32 host_every = 0;      /* 0: host-wide sampling off */
const volatile __u64 wakeup_bytes = 1 << 22; /* force a wakeup past this */
/* Tick trigger (0: not in use). */
const volatile __u64 tick_fn = 0;         /* the tick's hrtimer function */
const volatile __u64 tick_ns = 4000000;   /* NSEC_PER_SEC / CONFIG_HZ */
const volatile __u32 tick_host_every = 0; /* 0: host-wide sampling off */
const volatile __u32 tick_task_every = 0; /* 0: tasks are perf_event's */
/* [__irqentry_text_start, __irqentry_text_end): the interrupt entry code.
 * The tick's kernel stack runs from the hrtimer code up to the entry stub
 * of its interrupt (asm_sysvec_apic_timer_interrupt on x86), then goes on
 * into the interrupted kernel code, if any. */
const volatile __u64 irqentry_lo = 0;
const volatile __u64 irqentry_hi = 0;
/* &__irq_regs - &tick_cpu_sched in the per-CPU area (from BTF), 0 when
 * unknown. The tick's hrtimer lives in this CPU's tick_cpu_sched, so the
 * timer's address locates this CPU's get_irq_regs(): the registers the
 * tick interrupted, which tell user mode (no kernel stack to walk) from
 * kernel mode without walking it. */
const volatile __s64 irq_regs_off = 0;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 8 << 20); /* resized by user space before load */
} samples SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 << 10);
} proc_events SEC(".maps");

/* tgid -> SKY_PID_* of processes targeted by active tasks. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u32);
    __type(value, __u32);
} task_pids SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, SKY_CNT_MAX);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

/* Ticks since the last sample per CPU: [0] host-wide, [1] task pids. */
#define SKY_TICKS_HOST 0
#define SKY_TICKS_TASK 1
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} host_ticks SEC(".maps");

/* Kernel frames of the tick's own interrupt path above the interrupted
 * code (hrtimer and apic handlers, entry code) are cut; at most this many
 * are looked at. */
#define SKY_IRQ_FRAMES_MAX 24

#define SKY_HDR_WORDS (sizeof(struct sky_sample) / 8)
/* Kernel frames are written at SKY_FRAMES_AT, the user stack right after
 * however many there were (the verifier needs a constant size for each
 * bpf_get_stack call); the header goes right before the first kernel
 * frame kept, which moves it by up to SKY_IRQ_FRAMES_MAX words, and the
 * record is written from there. Room for that at both ends. */
#define SKY_FRAMES_AT (SKY_IRQ_FRAMES_MAX + SKY_HDR_WORDS)
#define SKY_RECORD_MAX_WORDS (SKY_HDR_WORDS + 2 * SKY_MAX_FRAMES)
#define SKY_SCRATCH_WORDS (2 * SKY_IRQ_FRAMES_MAX + SKY_RECORD_MAX_WORDS)

struct sky_scratch {
    __u64 words[SKY_SCRATCH_WORDS];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct sky_scratch);
} scratch SEC(".maps");

static __always_inline void s_add(__u32 idx, __u64 n)
{
    __u64 *c = bpf_map_lookup_elem(&counters, &idx);

    if (c)
        *c += n;
}

static __always_inline void s_count(__u32 idx)
{
    s_add(idx, 1);
}

/* Processes told to re-read their mappings (SKY_EV_MAPS): tgid -> when,
 * so a process running in a new library asks at most every 50 ms. */
#define SKY_MAPS_EVERY_NS 50000000ull
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, __u64);
} maps_asked SEC(".maps");

static __always_inline void s_emit(__u32 type, __u32 pid, __u32 ppid,
                                   __u32 flags, const char *kpath);

/* The walk met a leaf in no mapping it knows: code mapped since the
 * collector last read the process's mappings (dlopen, a JIT region).
 * Waking the collector now rather than at its next drain gets the
 * library's table in before most of its samples. */
static __always_inline void s_ask_maps(__u32 tgid)
{
    __u64 now = bpf_ktime_get_ns(), *last = bpf_map_lookup_elem(&maps_asked,
                                                               &tgid);

    if (last && now - *last < SKY_MAPS_EVERY_NS)
        return;
    bpf_map_update_elem(&maps_asked, &tgid, &now, BPF_ANY);
    s_emit(SKY_EV_MAPS, tgid, 0, 0, NULL);
}

/* The user stack of the current task, leaf first, into ustack; bytes
 * written or a negative error. The ONE place user stacks are collected:
 * uregs are the task's user registers, whatever trigger interrupted it.
 * With the unwind tables (bpf/unwind.bpf.h) when the process has them,
 * else frame pointers through bpf_get_stack. Taken before the kernel
 * stack, into the walker's per-CPU buffer, and copied behind the kernel
 * frames in one helper call: the code after the kernel stack's irq cut
 * is checked once per outcome of the cut, so it must stay short. */
static __always_inline long collect_user_stack(void *ctx,
                                               struct pt_regs *uregs,
                                               struct sky_unw_frames *ustack,
                                               __u32 *flags)
{
    struct sky_unw_frames *fr;
    struct sky_unw_walk *w;

    fr = sky_unwind_user(uregs, bpf_get_current_pid_tgid() >> 32);
    if (!fr) {
        if (unw_enabled)
            s_count(SKY_CNT_UNW_FP_WALKS);
        return bpf_get_stack(ctx, ustack->pc, SKY_MAX_FRAMES * 8,
                             BPF_F_USER_STACK);
    }
    w = &fr->w;
    if (w->leaf_unmapped)
        s_ask_maps(bpf_get_current_pid_tgid() >> 32);
    s_count(SKY_CNT_UNW_WALKS);
    s_add(SKY_CNT_UNW_FRAMES_CFI, w->cfi);
    s_add(SKY_CNT_UNW_FRAMES_FP, w->fp);
    s_add(SKY_CNT_UNW_TABLE_MISS, w->miss);
    if (w->unready) {
        s_count(SKY_CNT_UNW_UNREADY);
        s_add(SKY_CNT_UNW_VMA_LOOKUPS, w->vma_lookups);
        s_add(SKY_CNT_UNW_VMA_TABLES, w->vma_tables);
        s_add(SKY_CNT_UNW_VMA_MISSES, w->vma_misses);
        s_add(SKY_CNT_UNW_VMA_FAILED, w->vma_failed);
    }
    *flags |= SKY_F_DWARF;
    if (w->end == SKY_UNW_END_BAD) {
        s_count(SKY_CNT_UNW_TRUNCATED);
        *flags |= SKY_F_TRUNCATED;
    } else if (w->end == SKY_UNW_END_DEEP) {
        s_count(SKY_CNT_UNW_DEEP);
        *flags |= SKY_F_TRUNCATED;
    }
    return (long)w->n * 8;
}

/* Decides whether this tick or perf event of current is kept: the flags
 * of the sample (and its weight), or 0 to skip. host_rate, task_rate: keep
 * every Nth tick of the CPU for other processes and for task pids (0: not
 * this trigger's to sample); period_ns: what one tick stands for. */
static __always_inline __u32 s_keep(__u32 tgid, __u32 host_rate,
                                    __u32 task_rate, __u64 period_ns,
                                    __u64 *weight)
{
    __u32 *pid_flags = bpf_map_lookup_elem(&task_pids, &tgid);
    __u32 idx = SKY_TICKS_HOST, rate = host_rate, flags = SKY_F_HOST;
    __u64 *ticks;

    if (pid_flags && (*pid_flags & SKY_PID_ON_CPU)) {
        idx = SKY_TICKS_TASK;
        rate = task_rate;
        flags = SKY_F_TASK;
    }
    if (rate == 0)
        return 0;
    if (rate > 1) {
        ticks = bpf_map_lookup_elem(&host_ticks, &idx);
        if (!ticks)
            return 0;
        *ticks += 1;
        if (*ticks < rate)
            return 0;
        *ticks = 0;
    }
    *weight = period_ns * rate;
    return flags;
}

/* Writes one sample of current. cut_irq (tick): the kernel frames up to
 * the interrupt's entry stub are the tick's own and are cut, which leaves
 * none when user mode was interrupted. perf_event's stacks begin at the
 * interrupted code already. in_user: user mode was interrupted, the
 * kernel stack is not walked at all. */
static __always_inline int s_sample(void *ctx, __u32 flags, __u64 weight,
                                    int cut_irq, int in_user)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct task_struct *task = bpf_get_current_task_btf();
    struct pt_regs *uregs = (struct pt_regs *)bpf_task_pt_regs(task);
    __u32 zero = 0, skip = 0;
    struct sky_unw_frames *ustack;
    struct sky_scratch *sc;
    struct sky_sample *s;
    __u64 *frames;
    long kbytes = 0, ubytes;
    __u32 nk, nu;
    __u64 size, wflags;

    sc = bpf_map_lookup_elem(&scratch, &zero);
    ustack = bpf_map_lookup_elem(&unw_frames, &zero);
    if (!sc || !ustack)
        return 0;
    frames = &sc->words[SKY_FRAMES_AT];

    ubytes = collect_user_stack(ctx, uregs, ustack, &flags);
    if (ubytes < 0) {
        flags |= SKY_F_USTACK_ERR;
        ubytes = 0;
    }
    nu = (__u32)ubytes / 8;
    if (nu > SKY_MAX_FRAMES)
        nu = SKY_MAX_FRAMES;

    if (!in_user) {
        kbytes = bpf_get_stack(ctx, frames, SKY_MAX_FRAMES * 8, 0);
        if (kbytes < 0) {
            flags |= SKY_F_KSTACK_ERR;
            kbytes = 0;
        }
    }
    nk = (__u32)kbytes / 8;
    if (nk > SKY_MAX_FRAMES)
        nk = SKY_MAX_FRAMES;
    if (cut_irq) {
        for (__u32 i = 0; i < SKY_IRQ_FRAMES_MAX - 1 && i < nk; i++)
            if (frames[i] >= irqentry_lo && frames[i] < irqentry_hi) {
                skip = i + 1;
                break;
            }
    }

    if (nu && bpf_probe_read_kernel(&frames[nk], nu * 8, ustack->pc) != 0) {
        flags |= SKY_F_USTACK_ERR;
        nu = 0;
    }

    /* The header goes right before the first kept kernel frame. */
    if (skip >= SKY_IRQ_FRAMES_MAX || skip > nk)
        return 0;
    s = (struct sky_sample *)&sc->words[SKY_IRQ_FRAMES_MAX + skip];
    s->ts_ns = bpf_ktime_get_ns();
    s->weight_ns = weight;
    s->tgid = id >> 32;
    s->tid = (__u32)id;
    s->cpu = bpf_get_smp_processor_id();
    bpf_get_current_comm(s->comm, sizeof(s->comm));
    s->nk = nk - skip;
    s->nu = nu;
    s->flags = flags;

    size = sizeof(struct sky_sample) + ((__u64)nk - skip + nu) * 8;
    if (size > SKY_RECORD_MAX_WORDS * 8)
        return 0;

    wflags = BPF_RB_NO_WAKEUP;
    if (bpf_ringbuf_query(&samples, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
        wflags = BPF_RB_FORCE_WAKEUP;

    if (bpf_ringbuf_output(&samples, s, size, wflags) < 0)
        s_count(SKY_CNT_RING_FULL);
    else
        s_count(SKY_CNT_SAMPLES);
    return 0;
}

SEC("perf_event")
int sky_on_cpu(struct bpf_perf_event_data *ctx)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    __u64 weight;
    __u32 flags;

    /* The idle task is not a process anyone profiles. */
    if (tgid == 0)
        return 0;
    flags = s_keep(tgid, host_every, 1, sample_period_ns, &weight);
    if (!flags)
        return 0;
    return s_sample(ctx, flags, weight, 0, 0);
}

/* Whether the tick interrupted user mode; 0 when that cannot be told
 * (then the kernel stack is walked and cut). */
static __always_inline int s_tick_in_user(struct hrtimer *timer)
{
    struct pt_regs *regs = NULL;
    __u64 cs = 0, at;

    if (!irq_regs_off)
        return 0;
    at = (__u64)timer - bpf_core_field_offset(struct tick_sched, sched_timer) +
         irq_regs_off;
    if (bpf_probe_read_kernel(&regs, sizeof(regs), (void *)at) != 0 || !regs)
        return 0;
    if (bpf_probe_read_kernel(&cs, sizeof(cs), &regs->cs) != 0)
        return 0;
    return (cs & 3) == 3;
}

SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(sky_on_tick, struct hrtimer *timer, ktime_t *now)
{
    __u32 tgid;
    __u64 weight;
    __u32 flags;

    if ((__u64)timer->function != tick_fn)
        return 0;
    tgid = bpf_get_current_pid_tgid() >> 32;
    if (tgid == 0)
        return 0;
    flags = s_keep(tgid, tick_host_every, tick_task_every, tick_ns,
                   &weight);
    if (!flags)
        return 0;
    return s_sample(ctx, flags, weight, 1, s_tick_in_user(timer));
}

/* ------------------------------------------------------ process events */

static __always_inline void s_emit(__u32 type, __u32 pid, __u32 ppid,
                                   __u32 flags, const char *kpath)
{
    struct sky_proc_exec_event *x = NULL;
    struct sky_proc_event *e;

    /* Two reservations of constant size: the verifier wants one per call. */
    if (kpath) {
        x = bpf_ringbuf_reserve(&proc_events, sizeof(*x), 0);
        e = x ? &x->ev : NULL;
    } else {
        e = bpf_ringbuf_reserve(&proc_events, sizeof(*e), 0);
    }
    if (!e) {
        s_count(SKY_CNT_EVENTS_LOST);
        return;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->type = type;
    e->pid = pid;
    e->ppid = ppid;
    e->flags = flags;
    /* exec sets the new comm before the tracepoint; a forked child still
     * carries its parent's comm, which is current's. */
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    if (x && bpf_probe_read_kernel_str(x->path, sizeof(x->path), kpath) < 0)
        x->path[0] = 0;
    bpf_ringbuf_submit(e, 0);
}

/* The exiting task is current in every flavour of the exit hook. Only the
 * last thread of a process ends the process: signal->live drops to zero
 * before the tracepoint fires. */
static __always_inline void s_on_exit(void)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    int live = BPF_CORE_READ(task, signal, live.counter);

    if (live != 0)
        return;
    s_emit(SKY_EV_EXIT, bpf_get_current_pid_tgid() >> 32, 0, 0, NULL);
}

/* exec: de_thread has made the caller the leader, so current's tgid is the
 * process. kpath: the file name execve was given (kernel memory), or NULL
 * where the flavour does not have it. */
static __always_inline void s_on_exec(const char *kpath)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;

    /* The mapping table describes the old image: walking the new one with
     * it could take junk for frames. Frame pointers until user space has
     * read the new mappings. */
    if (unw_enabled)
        bpf_map_delete_elem(&unw_pids, &tgid);
    /* ... and its walks meanwhile use the mappings they find, starting
     * with the executable and ld.so (bpf/unwind.bpf.h). */
    sky_unw_vmas_exec(tgid);
    s_emit(SKY_EV_EXEC, tgid, 0, 0, kpath);
}

/* A forked child runs in a copy of its parent's address space: until the
 * collector gives it an entry of its own (at the fork event), the child
 * is walked with its parent's, so its samples before that (the child's
 * code up to exec, often all of a short one's life before exec) are
 * whole stacks. The parent's process slot is shared, not copied (an
 * entry is 4 KiB; a hash update is cheap here). It cannot be handed to
 * another process while the child uses it: the collector handles the
 * fork event (which rewrites or removes the child's pid) before the
 * parent's exit event (which frees the slot); exec and exit drop the
 * child's pid too. A parent without an entry leaves none for the child
 * (a pid's stale entry is removed). */
static __always_inline void s_unw_inherit(__u32 parent, __u32 child)
{
    __u32 *slot, s;

    if (!unw_enabled)
        return;
    sky_unw_vmas_fork(child);
    slot = bpf_map_lookup_elem(&unw_pids, &parent);
    if (!slot) {
        bpf_map_delete_elem(&unw_pids, &child);
        return;
    }
    s = *slot;
    bpf_map_update_elem(&unw_pids, &child, &s, BPF_ANY);
}

static __always_inline void s_on_fork(struct task_struct *parent,
                                      struct task_struct *child)
{
    __u32 pid = BPF_CORE_READ(child, pid);
    __u32 tgid = BPF_CORE_READ(child, tgid);
    __u32 ptgid = BPF_CORE_READ(parent, tgid);

    if (pid != tgid) /* a new thread, not a new process */
        return;
    s_unw_inherit(ptgid, tgid);
    s_emit(SKY_EV_FORK, tgid, ptgid, 0, NULL);
}

/* Flavour 1: BTF-enabled tracepoints (5.5+). */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(sky_exec_btf, struct task_struct *p, pid_t old_pid,
             struct linux_binprm *bprm)
{
    s_on_exec(BPF_CORE_READ(bprm, filename));
    return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sky_exit_btf, struct task_struct *p)
{
    s_on_exit();
    return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sky_fork_btf, struct task_struct *parent,
             struct task_struct *child)
{
    s_on_fork(parent, child);
    return 0;
}

/* Flavour 2: raw tracepoints (4.17+), same arguments read with probes. */
SEC("raw_tp/sched_process_exec")
int BPF_PROG(sky_exec_raw, struct task_struct *p, pid_t old_pid,
             struct linux_binprm *bprm)
{
    s_on_exec(BPF_CORE_READ(bprm, filename));
    return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(sky_exit_raw, struct task_struct *p)
{
    s_on_exit();
    return 0;
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(sky_fork_raw, struct task_struct *parent,
             struct task_struct *child)
{
    s_on_fork(parent, child);
    return 0;
}

/* Flavour 3: classic tracepoints. The fork tracepoint fires for threads
 * too and does not say which it was, so user space checks; nor does the
 * child inherit its parent's unwinder entry here (every new thread's id
 * would take a pid entry). */
SEC("tp/sched/sched_process_exec")
int sky_exec_tp(struct trace_event_raw_sched_process_exec *ctx)
{
    s_on_exec(NULL);
    return 0;
}

SEC("tp/sched/sched_process_exit")
int sky_exit_tp(struct trace_event_raw_sched_process_template *ctx)
{
    s_on_exit();
    return 0;
}

SEC("tp/sched/sched_process_fork")
int sky_fork_tp(struct trace_event_raw_sched_process_fork *ctx)
{
    /* A thread's id has no record to lose: dropping it is harmless. */
    sky_unw_vmas_fork((__u32)ctx->child_pid);
    s_emit(SKY_EV_FORK, (__u32)ctx->child_pid,
           bpf_get_current_pid_tgid() >> 32, SKY_EVF_MAYBE_THREAD, NULL);
    return 0;
}
