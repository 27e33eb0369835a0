// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Off-CPU profiler of the skyprof collector.
 *
 * For threads of the targeted processes, a context switch that puts the
 * thread to sleep records when it left the CPU (for the periods sampling
 * keeps, below); when the thread is switched back in, the time it spent
 * off CPU is added to an in-kernel aggregation keyed by (tgid, tid,
 * kernel stack id, user stack id, generation). Nothing goes through a
 * ring. User space drains and deletes
 * the aggregation every drain interval.
 *
 * Cost, which the probe pays on every context switch of the host while
 * any off-CPU task runs:
 *  - Threads of other processes: the tgid's bit in off_pid_bits (an exact
 *    bitmap, bpf/pidset.bpf.h; its array lookup is inlined) is read for
 *    prev and next and the probe returns; no hash lookup, no clock read.
 *  - Targeted threads: what costs are the stack walks (kernel, and user
 *    with the unwind tables: microseconds), then the clock read and hash
 *    updates (tens of ns each). So only the periods that are recorded pay
 *    for them: every period of a thread until it had
 *    SKY_OFF_KEEP_AFTER_LONG short recorded ones in a row (a new thread,
 *    one whose last recorded period was long, at least long_ns, and one
 *    that last arrived on a CPU at least long_ns before its wakeup, which
 *    is read at every switch-in: threads that sleep long switch
 *    rarely and are recorded whole), then one in sample_every, drawn at
 *    random at switch-out, before the period's length is known. A recorded period stands for 1 / its
 *    probability of being recorded (its weight multiplies count and
 *    time), which keeps the totals unbiased whatever the past that chose
 *    the probability; the periods left out are counted
 *    (SKY_OFF_CNT_UNSAMPLED) and cost the thread's mode byte (off_mode,
 *    an inlined array lookup), a random draw and that counter at
 *    switch-out and the mode byte at switch-in: no clock read, no hash.
 *    sample_every = 1 records every period.
 *
 * What is counted: a thread that blocks (its state is not TASK_RUNNING
 * when it leaves the CPU: sleeping, waiting for I/O, a lock, a futex, a
 * stopped or traced task). A thread that is preempted or yields while
 * runnable is waiting for a CPU, not for an event; that is CPU contention,
 * which on-CPU profiling and run-queue latency describe better, and
 * counting it would make every CPU-bound thread's time-slice ends look
 * like off-CPU stacks. Those switch-outs are only counted
 * (SKY_OFF_CNT_PREEMPTED) unless count_preempted is set. offcputime counts
 * both by default. A dying task's last switch-out (TASK_DEAD) never ends.
 *
 * Two flavours, chosen by user space with bpf_program__set_autoload:
 *  - tp_btf/sched_switch (preferred): current is prev, so the stacks are
 *    captured at switch-out and stored with the start time (off_start,
 *    for recorded periods only).
 *  - a kprobe on finish_task_switch (whatever /proc/kallsyms calls it,
 *    finish_task_switch.isra.0 here): current is next, so only the time
 *    is kept at switch-out and the stacks (unchanged while the thread was
 *    asleep) are captured at switch-in.
 *
 * Stacks live in two stack maps, selected by off_gen, which user space
 * flips every drain: a stack id it consumed can be deleted once no new
 * switch-out writes to that generation and no sleeping thread still holds
 * the id, so the stack maps do not fill up. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "pidset.bpf.h"
#include "profile.h"
#include "unwind.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SKY_EEXIST     17
#define SKY_TASK_DEAD  0x80u        /* include/linux/sched.h */
#define SKY_PF_KTHREAD 0x00200000u

/* Set by user space between open and load. */
const volatile __u32 count_preempted = 0;
const volatile __u32 sample_every = 1;     /* 1: record every period */
const volatile __u64 long_ns = 1000000;    /* see above */
const volatile __u32 prev_state_arg = 0;   /* sched_switch has prev_state */
/* User stacks walked with the unwind tables (unw_enabled, the maps shared
 * with the on-CPU program) get ids in [wstack_base, 2 * wstack_base): the
 * stack maps' bucket count is wstack_base, so the ids of both kinds never
 * meet and user space tells them apart by range. */
const volatile __u32 wstack_base = 16384;

/* The stack map generation new switch-outs use (0 or 1); written by user
 * space through the mmap'ed .bss. */
__u32 off_gen = 0;

/* The targeted processes (bpf/pidset.bpf.h), written by user space. */
SKY_PIDSET_MAPS(off_pid_bits, off_pids);

/* tid -> the start of a recorded period of a sleeping thread (only those:
 * the periods sampling leaves out touch no hash). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 32768);   /* resized by user space before load */
    __type(key, __u32);
    __type(value, struct sky_off_start);
} off_start SEC(".maps");

/* A byte per tid, eight to a word (SKY_OFF_MODE_*): whether a recorded
 * period of the thread is in progress, and how many short recorded ones
 * it had in a row. An array: its lookup is inlined. Sized by user space
 * to pid_max / 8 words; a tid past it has no byte (its periods are drawn,
 * and its switch-ins look off_start up). A byte is only written by its
 * own thread's switches, which the scheduler serializes. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 8192);    /* resized by user space before load */
    __type(key, __u32);
    __type(value, __u64);
} off_mode SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);   /* resized by user space before load */
    __type(key, struct sky_off_key);
    __type(value, struct sky_off_val);
} off_agg SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 8192);    /* resized by user space before load */
    __uint(key_size, sizeof(__u32));
    __uint(value_size, SKY_MAX_FRAMES * sizeof(__u64));
} off_stacks0 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 8192);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, SKY_MAX_FRAMES * sizeof(__u64));
} off_stacks1 SEC(".maps");

/* Walked user stacks, one map per generation like the stack maps:
 * id -> the walk (frames pc[0, w.n)). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);    /* resized by user space before load */
    __type(key, __u32);
    __type(value, struct sky_unw_frames);
} off_wstacks0 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __type(key, __u32);
    __type(value, struct sky_unw_frames);
} off_wstacks1 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, SKY_OFF_CNT_MAX);
    __type(key, __u32);
    __type(value, __u64);
} off_counters SEC(".maps");

static __always_inline void s_count(__u32 idx)
{
    __u64 *c = bpf_map_lookup_elem(&off_counters, &idx);

    if (c)
        *c += 1;
}

static __always_inline __u32 s_gen(void)
{
    return *(volatile __u32 *)&off_gen & 1;
}

/* Before 5.14 the field was `long state`. */
struct task_struct___pre514 {
    long state;
} __attribute__((preserve_access_index));

/* The same from a BTF pointer (tp_btf): plain loads, no helper call. */
static __always_inline __u32 s_task_state_btf(struct task_struct *t)
{
    if (bpf_core_field_exists(t->__state))
        return t->__state;
    return (__u32)((struct task_struct___pre514 *)t)->state;
}

static __always_inline __u32 s_task_state(struct task_struct *t)
{
    if (bpf_core_field_exists(t->__state))
        return BPF_CORE_READ(t, __state);
    return (__u32)BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

/* Stores the walk just made (unw_frames) in generation gen under an id
 * from the hash of its frames: the id, or SKY_OFF_NO_STACK when another
 * stack holds that id or the map is full (like bpf_get_stackid without
 * BPF_F_REUSE_STACKID, which would overwrite a stack a sleeping thread
 * still refers to). A global function: checked once by the verifier. */
__noinline int sky_off_store_walk(__u32 gen)
{
    __u32 zero = 0, id, n;
    __u64 h = 0x9e3779b97f4a7c15ull;
    struct sky_unw_frames *fr = bpf_map_lookup_elem(&unw_frames, &zero);
    struct sky_unw_frames *old;
    void *map = gen ? (void *)&off_wstacks1 : (void *)&off_wstacks0;
    long rc;

    if (!fr || wstack_base == 0)
        return SKY_OFF_NO_STACK;
    n = fr->w.n;
    for (__u32 i = 0; i < SKY_MAX_FRAMES && i < n; i++) {
        h ^= fr->pc[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    id = wstack_base + ((__u32)h & (wstack_base - 1));
    /* Read n again: the loop above left the verifier a different range
     * for it at each of its exits, and the loop below would be checked
     * once per range. */
    n = *(volatile __u32 *)&fr->w.n;
    rc = bpf_map_update_elem(map, &id, fr, BPF_NOEXIST);
    if (rc == 0)
        return (int)id;
    if (rc != -SKY_EEXIST)
        return SKY_OFF_NO_STACK;
    old = bpf_map_lookup_elem(map, &id);
    if (!old || old->w.n != n)
        return SKY_OFF_NO_STACK;
    for (__u32 i = 0; i < SKY_MAX_FRAMES && i < n; i++)
        if (old->pc[i] != fr->pc[i])
            return SKY_OFF_NO_STACK;
    return (int)id;
}

/* Stack ids of current in generation gen; SKY_OFF_NO_STACK when the
 * capture failed (hash collision without BPF_F_REUSE_STACKID, which would
 * overwrite a stack a sleeping thread still refers to, or a full map). */
static __always_inline void s_capture(void *ctx, __u32 gen, __u32 task_flags,
                                      __s32 *kstack, __s32 *ustack)
{
    long id;

    if (gen)
        id = bpf_get_stackid(ctx, &off_stacks1, 0);
    else
        id = bpf_get_stackid(ctx, &off_stacks0, 0);
    if (id < 0) {
        s_count(SKY_OFF_CNT_KSTACK_LOST);
        id = SKY_OFF_NO_STACK;
    }
    *kstack = (__s32)id;
    if (task_flags & SKY_PF_KTHREAD) {
        *ustack = SKY_OFF_NO_STACK;
        return;
    }
    /* With the unwind tables where the process has them (see
     * bpf/unwind.bpf.h), else frame pointers. */
    if (unw_enabled) {
        struct task_struct *task = bpf_get_current_task_btf();
        struct pt_regs *uregs = (struct pt_regs *)bpf_task_pt_regs(task);

        if (sky_unwind_user(uregs, bpf_get_current_pid_tgid() >> 32)) {
            id = sky_off_store_walk(gen);
            if (id < 0)
                s_count(SKY_OFF_CNT_USTACK_LOST);
            *ustack = (__s32)id;
            return;
        }
    }
    if (gen)
        id = bpf_get_stackid(ctx, &off_stacks1, BPF_F_USER_STACK);
    else
        id = bpf_get_stackid(ctx, &off_stacks0, BPF_F_USER_STACK);
    if (id < 0) {
        s_count(SKY_OFF_CNT_USTACK_LOST);
        id = SKY_OFF_NO_STACK;
    }
    *ustack = (__s32)id;
}

static __always_inline int s_targeted(__u32 tgid)
{
    return sky_pidset_has(&off_pid_bits, &off_pids, tgid);
}

/* The time of this switch, read once for both of its halves. */
static __always_inline __u64 s_now(__u64 *now)
{
    if (!*now)
        *now = bpf_ktime_get_ns();
    return *now;
}

/* Whether next's time from its previous arrival on a CPU to its wakeup
 * (its last run plus its sleep, not its wait for a CPU since) is at least
 * long_ns: then it switches rarely, and every period it has can be
 * recorded for little. The kernel keeps both times (CONFIG_SCHED_INFO,
 * the scheduler's clock) until the switch this tracepoint announces. */
static __always_inline int s_arrived_long_ago(struct task_struct *next)
{
    __u64 arrived, queued;

    if (!bpf_core_field_exists(next->sched_info.last_queued))
        return 0;
    arrived = next->sched_info.last_arrival;
    queued = next->sched_info.last_queued;
    return arrived && queued > arrived && queued - arrived >= long_ns;
}

/* The mode byte of thread tid, NULL past the map. */
static __always_inline __u8 *s_mode(__u32 tid)
{
    __u32 word = tid / 8;
    __u8 *w = bpf_map_lookup_elem(&off_mode, &word);

    return w ? w + (tid % 8) : NULL;
}

/* Whether the period now beginning is recorded (stacks and aggregation),
 * and what it then stands for: 1 / the probability it was recorded. The
 * choice depends on the thread's past only, never on this period. */
static __always_inline __u32 s_weight(__u32 short_run)
{
    if (sample_every <= 1 || short_run < SKY_OFF_KEEP_AFTER_LONG)
        return 1;
    /* r < 2^32 / sample_every: the probability of r % sample_every == 0,
     * without a division. */
    if ((__u64)bpf_get_prandom_u32() * sample_every < (1ull << 32))
        return sample_every;
    return 0;
}

/* prev (of process tgid) leaves the CPU. capture: prev is current
 * (tp_btf). A period left out costs the mode byte, a random draw and a
 * counter: no clock, no hash. */
static __always_inline void s_switch_out(void *ctx, struct task_struct *prev,
                                         __u32 tgid, __u32 tid, __u32 state,
                                         bool preempt, __u64 *now,
                                         int capture)
{
    struct sky_off_start st = {};
    __u8 *mode = s_mode(tid);
    __u8 m = mode ? *mode : SKY_OFF_KEEP_AFTER_LONG;

    if (state & SKY_TASK_DEAD) {
        /* Its last switch-out: a thread that gets the tid next starts
         * afresh. */
        if (mode)
            *mode = 0;
        return;
    }
    if ((preempt || state == 0) && !count_preempted) {
        s_count(SKY_OFF_CNT_PREEMPTED);
        return;
    }
    st.weight = s_weight(m & SKY_OFF_MODE_SHORT_RUN);
    if (!st.weight) {
        s_count(SKY_OFF_CNT_UNSAMPLED);
        return;
    }
    /* The time first: the capture below is time off CPU already. */
    st.ts_ns = s_now(now);
    st.tgid = tgid;
    st.kstack = SKY_OFF_NO_STACK;
    st.ustack = SKY_OFF_NO_STACK;
    if (capture) {
        st.gen = s_gen();
        s_capture(ctx, st.gen, BPF_CORE_READ(prev, flags), &st.kstack,
                  &st.ustack);
    }
    if (bpf_map_update_elem(&off_start, &tid, &st, BPF_ANY) != 0) {
        s_count(SKY_OFF_CNT_START_FULL);
        return;
    }
    if (mode)
        *mode = m | SKY_OFF_MODE_RECORDING;
}

/* next comes back. capture: next is current (kprobe); arrival: next's
 * previous arrival and its wakeup are still readable (tp_btf). */
static __always_inline void s_switch_in(void *ctx, struct task_struct *next,
                                        __u32 tid, __u64 *now, int capture,
                                        int arrival)
{
    struct sky_off_start *st;
    struct sky_off_key key = {};
    struct sky_off_val *val;
    __u8 *mode = s_mode(tid);
    __u8 m = 0;
    __u64 delta;
    __u32 weight;

    if (mode) {
        m = *mode;
        if (!(m & SKY_OFF_MODE_RECORDING)) {
            /* A period left out: only whether the thread went back to
             * switching rarely. */
            if (arrival && m && s_arrived_long_ago(next))
                *mode = 0;
            return;
        }
        m &= SKY_OFF_MODE_SHORT_RUN;
    }
    st = bpf_map_lookup_elem(&off_start, &tid);
    if (!st) {
        /* Forgotten by user space (the process left the set meanwhile). */
        if (mode)
            *mode = m;
        return;
    }
    delta = s_now(now) > st->ts_ns ? *now - st->ts_ns : 0;
    weight = st->weight;
    key.tgid = st->tgid;
    key.tid = tid;
    key.kstack = st->kstack;
    key.ustack = st->ustack;
    key.gen = st->gen;
    if (capture) {
        key.gen = s_gen();
        s_capture(ctx, key.gen, BPF_CORE_READ(next, flags), &key.kstack,
                  &key.ustack);
    }
    val = bpf_map_lookup_elem(&off_agg, &key);
    if (!val) {
        struct sky_off_val init = {};
        long rc;

        init.first_ns = *now;
        init.cpu = bpf_get_smp_processor_id();
        BPF_CORE_READ_STR_INTO(&init.comm, next, comm);
        rc = bpf_map_update_elem(&off_agg, &key, &init, BPF_NOEXIST);
        /* -EEXIST: a sibling on another CPU created it meanwhile. */
        if (rc == 0 || rc == -SKY_EEXIST)
            val = bpf_map_lookup_elem(&off_agg, &key);
    }
    if (val) {
        __sync_fetch_and_add(&val->count, weight);
        __sync_fetch_and_add(&val->total_ns, delta * weight);
        s_count(SKY_OFF_CNT_SWITCHES);
    } else {
        s_count(SKY_OFF_CNT_AGG_FULL);
    }
    /* After the aggregation update: user space relies on a stack id being
     * either still held here or already in off_agg. */
    bpf_map_delete_elem(&off_start, &tid);
    if (mode) {
        if (delta >= long_ns)
            m = 0;
        else if (m < SKY_OFF_KEEP_AFTER_LONG)
            m++;
        *mode = m;
    }
}

/* prev and next are BTF pointers here: their fields are plain loads. The
 * state __schedule decided on is the tracepoint's 4th argument (5.18+,
 * prev_state_arg set by user space from BTF): prev->__state itself may
 * already read TASK_RUNNING when a waker on another CPU got there first,
 * which would make a blocking switch look like a preemption. */
SEC("tp_btf/sched_switch")
int BPF_PROG(sky_off_switch, bool preempt, struct task_struct *prev,
             struct task_struct *next)
{
    __u32 prev_tgid = prev->tgid;
    __u64 now = 0;

    if (s_targeted(prev_tgid))
        s_switch_out(ctx, prev, prev_tgid, prev->pid,
                     prev_state_arg ? (__u32)ctx[3] : s_task_state_btf(prev),
                     preempt, &now, 1);
    if (s_targeted(next->tgid))
        s_switch_in(ctx, next, next->pid, &now, 0, 1);
    return 0;
}

/* Attached by user space to the finish_task_switch symbol it finds. */
SEC("kprobe")
int BPF_KPROBE(sky_off_finish, struct task_struct *prev)
{
    struct task_struct *next = (struct task_struct *)bpf_get_current_task();
    __u32 prev_tgid = BPF_CORE_READ(prev, tgid);
    __u64 now = 0;

    if (s_targeted(prev_tgid))
        s_switch_out(ctx, prev, prev_tgid, BPF_CORE_READ(prev, pid),
                     s_task_state(prev), false, &now, 0);
    if (s_targeted(BPF_CORE_READ(next, tgid)))
        s_switch_in(ctx, next, BPF_CORE_READ(next, pid), &now, 1, 0);
    return 0;
}
