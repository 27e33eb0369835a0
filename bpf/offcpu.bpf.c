// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Off-CPU profiler of the skyprof collector.
 *
 * For threads of the processes in off_pids, every context switch that puts
 * the thread to sleep records when and where (kernel and user stack ids)
 * it left the CPU; when the thread is switched back in, the time it spent
 * off CPU is added to an in-kernel aggregation keyed by (tgid, tid, kernel
 * stack id, user stack id, generation). Nothing goes through a ring: at
 * 100k switches/s the per-switch cost is two hash operations and, for
 * targeted threads, two bpf_get_stackid calls. User space drains and
 * deletes the aggregation every drain interval.
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
 *    captured at switch-out and stored with the start time.
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

#include "profile.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SKY_EEXIST     17
#define SKY_TASK_DEAD  0x80u        /* include/linux/sched.h */
#define SKY_PF_KTHREAD 0x00200000u

/* Set by user space between open and load. */
const volatile __u32 count_preempted = 0;

/* The stack map generation new switch-outs use (0 or 1); written by user
 * space through the mmap'ed .bss. */
__u32 off_gen = 0;

/* tgid -> 1 for processes targeted by active off-CPU tasks. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u32);
    __type(value, __u32);
} off_pids SEC(".maps");

/* tid -> the switch-out of a sleeping thread of a targeted process. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 32768);   /* resized by user space before load */
    __type(key, __u32);
    __type(value, struct sky_off_start);
} off_start SEC(".maps");

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

static __always_inline __u32 s_task_state(struct task_struct *t)
{
    if (bpf_core_field_exists(t->__state))
        return BPF_CORE_READ(t, __state);
    return (__u32)BPF_CORE_READ((struct task_struct___pre514 *)t, state);
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

/* prev leaves the CPU. capture: prev is current (tp_btf). */
static __always_inline void s_switch_out(void *ctx, struct task_struct *prev,
                                         bool preempt, __u64 now, int capture)
{
    __u32 tgid = BPF_CORE_READ(prev, tgid);
    struct sky_off_start st = {};
    __u32 state, tid;

    if (!bpf_map_lookup_elem(&off_pids, &tgid))
        return;
    state = s_task_state(prev);
    if (state & SKY_TASK_DEAD)
        return;
    if ((preempt || state == 0) && !count_preempted) {
        s_count(SKY_OFF_CNT_PREEMPTED);
        return;
    }
    st.ts_ns = now;
    st.tgid = tgid;
    st.kstack = SKY_OFF_NO_STACK;
    st.ustack = SKY_OFF_NO_STACK;
    if (capture) {
        st.gen = s_gen();
        s_capture(ctx, st.gen, BPF_CORE_READ(prev, flags), &st.kstack,
                  &st.ustack);
    }
    tid = BPF_CORE_READ(prev, pid);
    if (bpf_map_update_elem(&off_start, &tid, &st, BPF_ANY) != 0)
        s_count(SKY_OFF_CNT_START_FULL);
}

/* next comes back. capture: next is current (kprobe). */
static __always_inline void s_switch_in(void *ctx, struct task_struct *next,
                                        __u64 now, int capture)
{
    __u32 tid = BPF_CORE_READ(next, pid);
    struct sky_off_start *st;
    struct sky_off_key key = {};
    struct sky_off_val *val;
    __u64 delta;

    st = bpf_map_lookup_elem(&off_start, &tid);
    if (!st)
        return;
    key.tgid = st->tgid;
    key.tid = tid;
    key.kstack = st->kstack;
    key.ustack = st->ustack;
    key.gen = st->gen;
    delta = now > st->ts_ns ? now - st->ts_ns : 0;
    if (capture) {
        key.gen = s_gen();
        s_capture(ctx, key.gen, BPF_CORE_READ(next, flags), &key.kstack,
                  &key.ustack);
    }
    val = bpf_map_lookup_elem(&off_agg, &key);
    if (!val) {
        struct sky_off_val init = {};
        long rc;

        init.first_ns = now;
        init.cpu = bpf_get_smp_processor_id();
        BPF_CORE_READ_STR_INTO(&init.comm, next, comm);
        rc = bpf_map_update_elem(&off_agg, &key, &init, BPF_NOEXIST);
        /* -EEXIST: a sibling on another CPU created it meanwhile. */
        if (rc == 0 || rc == -SKY_EEXIST)
            val = bpf_map_lookup_elem(&off_agg, &key);
    }
    if (val) {
        __sync_fetch_and_add(&val->count, 1);
        __sync_fetch_and_add(&val->total_ns, delta);
        s_count(SKY_OFF_CNT_SWITCHES);
    } else {
        s_count(SKY_OFF_CNT_AGG_FULL);
    }
    /* After the aggregation update: user space relies on a thread being
     * either still in off_start or already in off_agg. */
    bpf_map_delete_elem(&off_start, &tid);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sky_off_switch, bool preempt, struct task_struct *prev,
             struct task_struct *next)
{
    __u64 now = bpf_ktime_get_ns();

    s_switch_out(ctx, prev, preempt, now, 1);
    s_switch_in(ctx, next, now, 0);
    return 0;
}

/* Attached by user space to the finish_task_switch symbol it finds. */
SEC("kprobe")
int BPF_KPROBE(sky_off_finish, struct task_struct *prev)
{
    struct task_struct *next = (struct task_struct *)bpf_get_current_task();
    __u64 now = bpf_ktime_get_ns();

    s_switch_out(ctx, prev, false, now, 0);
    s_switch_in(ctx, next, now, 1);
    return 0;
}
