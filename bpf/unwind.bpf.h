/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The in-kernel .eh_frame unwinder shared by the BPF programs that take
 * user stacks (bpf/profile.bpf.c: both on-CPU samplers; bpf/offcpu.bpf.c:
 * switch-out). Included once per program file after vmlinux.h and
 * profile.h; the maps are filled by collector/unwinder.c (the off-CPU
 * skeleton reuses the profile skeleton's map fds).
 *
 * One frame per bpf_loop iteration (so the verifier checks the step once,
 * whatever the depth): find the mapping of pc in the process's sorted
 * mapping list, binary-search its object's rows for the link-time pc
 * (pc - 1 for return addresses: a call may be the last instruction of a
 * function), compute the CFA from RSP or RBP (or the PLT and signal-frame
 * rules), read the return address at CFA-8 and the saved RBP, go on.
 * Objects without a table fall back to frame pointers for that one frame.
 * A pc in no executable mapping ends the walk with what was found and
 * SKY_F_TRUNCATED: never a garbage frame. The layout of the maps is in
 * bpf/profile.h; docs/unwinding.md tells the whole story. */
#ifndef SKYPROF_BPF_UNWIND_H
#define SKYPROF_BPF_UNWIND_H

/* Set by user space between open and load. 0: the walker is compiled in
 * but never runs (the fallback to frame pointers; the verifier prunes it). */
const volatile __u32 unw_enabled = 0;
const volatile __u32 unw_max_frames = SKY_MAX_FRAMES;
/* 1: a process without entry is walked through mappings the walk finds
 * with bpf_find_vma (below, "unready"); 0: left to the caller (frame
 * pointers), and the code is pruned (kernels without bpf_find_vma). */
const volatile __u32 unw_vmas_on = 0;

/* tgid -> slot of unw_procs (sizes set by user space before load). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, __u32);
} unw_pids SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, struct sky_unw_proc);
} unw_procs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, struct sky_unw_table);
} unw_tables SEC(".maps");

/* Mmapable: the collector writes a table's rows with memcpy into a
 * mapping of the array, not with a syscall per batch (a libLLVM's 1 M
 * rows took ~0.1-0.8 s of syscalls); lookups are unchanged. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(map_flags, BPF_F_MMAPABLE);
    __uint(max_entries, 1 << 22);
    __type(key, __u32);
    __type(value, struct sky_unw_row);
} unw_rows SEC(".maps");

/* (dev, inode) of a file -> its table (struct sky_unw_file), for
 * processes without entry; sized by user space. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct sky_unw_file_key);
    __type(value, struct sky_unw_file);
} unw_files SEC(".maps");

/* tgid -> the mappings walks of that process found themselves while it
 * had no entry (struct sky_unw_vmas). LRU: a record is dropped at the
 * process's next exec or fork of its pid, else when room is needed; the
 * collector reads it for a process gone before it read its mappings. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, struct sky_unw_vmas);
} unw_vmas SEC(".maps");

/* An empty record to create unw_vmas entries from (never written). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct sky_unw_vmas);
} unw_vmas_zero SEC(".maps");

/* The walk in progress (struct sky_unw_frames, bpf/profile.h), per CPU. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct sky_unw_frames);
} unw_frames SEC(".maps");

/* 1 when a < b (unsigned), computed without a branch: the verifier
 * walks a branchy binary search once per outcome of every halving, which
 * blows its 1 M instruction budget; this way each halving is one path. */
static __always_inline __u64 sky_unw_below(__u64 a, __u64 b)
{
    __u64 d = a - b;

    barrier_var(d);
    return ((~a & b) | ((~a | b) & d)) >> 63;
}

/* Entry i of the table's page index (see struct sky_unw_table), or
 * fallback when it cannot be read. */
static __always_inline __u32 sky_unw_index(const struct sky_unw_table *t,
                                           __u32 i, __u32 fallback)
{
    __u32 at = t->first + t->count + i / 2;
    struct sky_unw_row *r = bpf_map_lookup_elem(&unw_rows, &at);

    if (!r)
        return fallback;
    return (i & 1) ? *(__u32 *)((__u8 *)r + 4) : r->pc;
}

/* The row of the table covering the link-time pc rel, NULL if none:
 * the last row whose pc <= rel. */
static __always_inline struct sky_unw_row *
sky_unw_find_row(const struct sky_unw_table *t, __u64 rel)
{
    __u32 base = t->first, len = t->count;
    struct sky_unw_row *r;

    if (len == 0)
        return NULL;
    /* The page index narrows the search to the rows of rel's page (the
     * row covering its start up to the one covering the next's). */
    if (t->nidx && rel >= t->min_pc) {
        __u64 page = (rel - t->min_pc) >> (t->shift & 31);
        if (page < t->nidx) {
            __u32 lo = sky_unw_index(t, (__u32)page, 0);
            __u32 hi = page + 1 < t->nidx
                           ? sky_unw_index(t, (__u32)page + 1, len - 1) + 1
                           : len;
            if (lo < hi && hi <= len) {
                base = t->first + lo;
                len = hi - lo;
            }
        }
    }
    /* 24 halvings cover 16 M rows, more than unw_rows can hold; a table
     * needs log2(rows) (libc: 15), with the index one or two. One way
     * out per halving keeps the verifier's work linear. */
    for (int k = 0; k < 24 && len > 1; k++) {
        __u32 half = len >> 1;
        __u32 mid = base + half;
        r = bpf_map_lookup_elem(&unw_rows, &mid);
        if (!r)
            return NULL;
        __u64 take = sky_unw_below(rel, r->pc) ^ 1;   /* r->pc <= rel */
        base += half & (__u32)-take;
        len -= half;
    }
    r = bpf_map_lookup_elem(&unw_rows, &base);
    return r && r->pc <= rel ? r : NULL;
}

/* The mapping covering w->pc, NULL if none. The previous frame's
 * mapping first: consecutive frames are mostly in the same object. */
static __always_inline struct sky_unw_map *
sky_unw_find_map(struct sky_unw_proc *proc, struct sky_unw_walk *w)
{
    __u32 base = w->map_i & (SKY_UNW_MAPS_MAX - 1), len = proc->nmaps;
    __u64 pc = w->pc;
    struct sky_unw_map *m = &proc->maps[base];

    if (base < len && m->start <= pc && pc < m->end)
        return m;
    if (len == 0)
        return NULL;
    if (len > SKY_UNW_MAPS_MAX)
        len = SKY_UNW_MAPS_MAX;
    base = 0;
    for (int k = 0; k < 8 && len > 1; k++) { /* 2^7 = SKY_UNW_MAPS_MAX */
        __u32 half = len >> 1;
        __u64 start = proc->maps[(base + half) & (SKY_UNW_MAPS_MAX - 1)].start;
        __u64 take = sky_unw_below(pc, start) ^ 1;     /* start <= pc */
        base += half & (__u32)-take;
        len -= half;
    }
    base &= SKY_UNW_MAPS_MAX - 1;
    w->map_i = base;
    m = &proc->maps[base];
    return m->start <= pc && pc < m->end ? m : NULL;
}

/* A copy of the user stack from the last address read to the end of its
 * page: bpf_probe_read_user costs about the same for 8 bytes as for a
 * page (~100 ns here, most of a frame's cost when called per value), and
 * a walk reads upwards through the stack, so most reads hit the copy.
 * Per CPU; emptied at the start of each walk. */
#define SKY_UNW_WIN 4096            /* the page size of x86-64 */
struct sky_unw_win {
    __u64 base, len;
    __u8 data[SKY_UNW_WIN];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct sky_unw_win);
} unw_win SEC(".maps");

/* The user word at addr: 0, or -1 when it cannot be read. The copy is
 * refilled from addr to the end of addr's page, which is mapped when
 * addr is (reading past it could fault on the stack's top). */
static __always_inline int sky_unw_read(struct sky_unw_win *win, __u64 addr,
                                        __u64 *out)
{
    __u64 off, len;

    if (addr & 7)   /* stacks hold aligned words; anything else directly */
        return bpf_probe_read_user(out, sizeof(*out), (void *)addr) ? -1 : 0;
    off = addr - win->base;
    if (addr >= win->base && off < win->len && win->len - off >= 8) {
        *out = *(__u64 *)&win->data[off & (SKY_UNW_WIN - 8)];
        return 0;
    }
    len = SKY_UNW_WIN - (addr & (SKY_UNW_WIN - 1));
    if (len > SKY_UNW_WIN)
        return -1;
    if (bpf_probe_read_user(win->data, len, (void *)addr) != 0) {
        win->len = 0;
        return -1;
    }
    win->base = addr;
    win->len = len;
    *out = *(__u64 *)&win->data[0];
    return 0;
}


/* One step by frame pointers: RBP points at the saved RBP, the return
 * address above it. 0, or -1 when the chain cannot be followed. */
static __always_inline int sky_unw_fp_step(struct sky_unw_walk *w,
                                           struct sky_unw_win *win)
{
    __u64 fr[2];

    if (!w->bp_ok || w->bp == 0 || w->bp < w->sp)
        return -1;
    if (sky_unw_read(win, w->bp, &fr[0]) < 0 ||
        sky_unw_read(win, w->bp + 8, &fr[1]) < 0)
        return -1;
    w->sp = w->bp + 16;
    w->bp = fr[0];
    w->bx_ok = 0;   /* where a function without CFI kept RBX is unknown */
    w->pc = fr[1];
    w->pc_is_ra = 1;
    w->fp++;
    return 0;
}

/* One step by the row: 0, 1 at the thread's root, -1 when it fails. */
static __always_inline int sky_unw_cfi_step(struct sky_unw_walk *w,
                                            struct sky_unw_win *win,
                                            const struct sky_unw_row *row)
{
    __u32 kind = row->kinds & 7, rbp_kind = (row->kinds >> 3) & 3;
    __u32 rbx_rule = row->kinds >> 5;
    __s64 cfa_off = (__s64)(__s16)row->cfa_off8 * 8;
    __s64 rbp_off = (__s64)(__s8)row->rbp_off8 * 8;
    __u64 cfa, ra, regs[2];

    switch (kind) {
    case SKY_UNW_CFA_RSP:
        cfa = w->sp + cfa_off;
        break;
    case SKY_UNW_CFA_RBP:
        if (!w->bp_ok)
            return -1;
        cfa = w->bp + cfa_off;
        break;
    case SKY_UNW_CFA_RBX:
        if (!w->bx_ok)
            return -1;
        cfa = w->bx + cfa_off;
        break;
    case SKY_UNW_CFA_PLT:
        cfa = w->sp + cfa_off + ((w->pc & 15) >= row->rbp_off8 ? 8 : 0);
        break;
    case SKY_UNW_CFA_SIGNAL:
        /* The kernel's ucontext is at RSP: the interrupted RSP and RIP
         * (not a return address) and RBP are in its sigcontext. */
        if (sky_unw_read(win, w->sp + cfa_off, &regs[0]) < 0 ||
            sky_unw_read(win, w->sp + cfa_off + 8, &regs[1]) < 0)
            return -1;
        w->bp_ok = sky_unw_read(win, w->sp + rbp_off, &w->bp) == 0;
        /* struct sigcontext_64: rbx follows rbp */
        w->bx_ok = sky_unw_read(win, w->sp + rbp_off + 8, &w->bx) == 0;
        w->sp = regs[0];
        w->pc = regs[1];
        w->pc_is_ra = 0;
        w->cfi++;
        return 0;
    default:
        return 1;   /* no rule: the outermost frame (_start, clone) */
    }
    /* The caller's frame lies above this one. */
    if (cfa <= w->sp)
        return -1;
    if (sky_unw_read(win, cfa - 8, &ra) < 0)
        return -1;
    if (rbp_kind == SKY_UNW_RBP_AT_CFA) {
        w->bp_ok = sky_unw_read(win, cfa + rbp_off, &w->bp) == 0;
    } else if (rbp_kind != SKY_UNW_RBP_SAME) {
        w->bp_ok = 0;
    }
    if (rbx_rule == SKY_UNW_RBX_UNKNOWN)
        w->bx_ok = 0;
    else if (rbx_rule != SKY_UNW_RBX_SAME)
        w->bx_ok = sky_unw_read(win, cfa - 8 * (rbx_rule + 1), &w->bx) == 0;
    w->sp = cfa;
    w->pc = ra;
    w->pc_is_ra = 1;
    w->cfi++;
    return 0;
}

/* ----------------------------------------- processes without entry
 * After exec the process's entry is gone (it described the old image)
 * until the collector has read /proc/PID/maps, which a loaded host
 * delays past the life of a short process. Meanwhile its walks use the
 * process's unw_vmas record: mappings found by bpf_find_vma, each turned
 * into a walker mapping through unw_files (the file's table, by inode).
 * bpf_find_vma takes mmap_lock by trylock and, with interrupts off (the
 * tick, perf_event and sched_switch programs), hands the unlock to an
 * irq_work that runs only after the program: a second call in the same
 * program fails (-EBUSY, measured on 6.18; so does the vma iterator
 * kfunc, in every one of these programs). So one lookup per walk, for
 * its first frame in no recorded mapping; the record fills over the
 * process's samples, and exec seeds it (the executable, ld.so, the vdso) from
 * process context, where lookups are not limited. */
#define SKY_VM_EXEC 0x4ull   /* VM_EXEC of include/linux/mm.h */

struct sky_unw_vctx {
    struct sky_unw_vmas *v;
    __u32 result;            /* SKY_UNW_VR_* */
};
#define SKY_UNW_VR_NONE    0 /* no mapping, or bpf_find_vma refused */
#define SKY_UNW_VR_TABLE   1 /* recorded; its file has a table */
#define SKY_UNW_VR_NOTABLE 2 /* recorded; no table (frame pointers) */
#define SKY_UNW_VR_SKIP    3 /* not executable, known already, or full */

/* Fills m's table, generation and bias from unw_files for the mapping
 * rec describes; no table (0) when its file has none. 1 with a table. */
static __always_inline int sky_unw_vma_table(struct sky_unw_map *m,
                                             const struct sky_unw_vma *rec)
{
    struct sky_unw_file_key k = { .dev = rec->dev, .ino = rec->ino };
    struct sky_unw_file *f;

    m->table = 0;
    m->gen = 0;
    m->bias = 0;
    if (rec->kind == SKY_UNW_VMA_ANON)
        return 0;
    f = bpf_map_lookup_elem(&unw_files, &k);
    if (!f)
        return 0;
    for (int i = 0; i < SKY_UNW_FILE_SEGS; i++) {
        if (i >= f->nsegs)
            break;
        if (rec->pgoff >= f->segs[i].off && rec->pgoff < f->segs[i].end) {
            m->bias = m->start - rec->pgoff + f->segs[i].delta;
            m->table = f->table;
            m->gen = f->gen;
            return 1;
        }
    }
    return 0;
}

/* bpf_find_vma's callback: records the mapping in the process's record,
 * kept sorted by start. */
static long sky_unw_vma_cb(struct task_struct *task,
                           struct vm_area_struct *vma, void *arg)
{
    struct sky_unw_vctx *vc = arg;
    struct sky_unw_vmas *v = vc->v;
    struct sky_unw_vma rec = {};
    struct sky_unw_map m = {};
    struct file *file;
    __u32 n, i;

    vc->result = SKY_UNW_VR_SKIP;
    if (!v || !(BPF_CORE_READ(vma, vm_flags) & SKY_VM_EXEC))
        return 0;
    m.start = BPF_CORE_READ(vma, vm_start);
    m.end = BPF_CORE_READ(vma, vm_end);
    rec.pgoff = BPF_CORE_READ(vma, vm_pgoff) << 12;
    file = BPF_CORE_READ(vma, vm_file);
    if (file) {
        rec.kind = SKY_UNW_VMA_FILE;
        rec.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
        rec.ino = BPF_CORE_READ(file, f_inode, i_ino);
    } else if (m.start == (__u64)BPF_CORE_READ(vma, vm_mm, context.vdso)) {
        rec.kind = SKY_UNW_VMA_VDSO;   /* key 0, 0 */
    }
    n = v->proc.nmaps;
    if (n >= SKY_UNW_VMAS_MAX)
        return 0;
    /* Insertion from the end; a mapping known already is not doubled
     * (exec's seeds can be one mapping: a static program). */
    i = n;
    for (int k = 0; k < SKY_UNW_VMAS_MAX; k++) {
        struct sky_unw_map *prev;
        if (i == 0)
            break;
        prev = &v->proc.maps[(i - 1) & (SKY_UNW_VMAS_MAX - 1)];
        if (prev->start == m.start)
            return 0;
        if (prev->start < m.start)
            break;
        v->proc.maps[i & (SKY_UNW_VMAS_MAX - 1)] = *prev;
        v->vma[i & (SKY_UNW_VMAS_MAX - 1)] =
            v->vma[(i - 1) & (SKY_UNW_VMAS_MAX - 1)];
        i--;
    }
    vc->result = sky_unw_vma_table(&m, &rec) ? SKY_UNW_VR_TABLE
                                             : SKY_UNW_VR_NOTABLE;
    v->proc.maps[i & (SKY_UNW_VMAS_MAX - 1)] = m;
    v->vma[i & (SKY_UNW_VMAS_MAX - 1)] = rec;
    v->proc.nmaps = n + 1;
    return 0;
}

/* Records the mapping of current covering pc; SKY_UNW_VR_*. A global
 * function, as the two below: the verifier checks it once, not once per
 * state of the walk's step (inlined, the step's check grew tenfold,
 * 76 K to 744 K instructions of the 1 M budget, and took seconds). */
__noinline __u32 sky_unw_vma_find(struct sky_unw_vmas *v, __u64 pc)
{
    struct sky_unw_vctx vc = { .v = v, .result = SKY_UNW_VR_NONE };

    /* Off: pruned, so that programs whose type has no bpf_find_vma (the
     * benchmark's syscall program) still load; a global function is
     * checked whether or not anything calls it. */
    if (!unw_enabled || !unw_vmas_on || !v)
        return SKY_UNW_VR_NONE;
    if (bpf_find_vma(bpf_get_current_task_btf(), pc, sky_unw_vma_cb, &vc,
                     0) != 0)
        return SKY_UNW_VR_NONE;
    return vc.result;
}

/* Mapping i of the record with its file's current table (tables come
 * and go while a process waits for its entry). */
__noinline int sky_unw_vma_refresh(struct sky_unw_vmas *v, __u32 i)
{
    if (!unw_enabled || !unw_vmas_on || !v)
        return 0;
    i &= SKY_UNW_VMAS_MAX - 1;
    return sky_unw_vma_table(&v->proc.maps[i], &v->vma[i]);
}

/* One step's use of the record: 1 when w->pc lies in a mapping of the
 * record, then at w->map_i (with its file's current table), looked up
 * there (once per walk) when it does not yet. have: the step found it.
 * Global, as the two above: inlined, even pruned, this tripled the
 * verifier's work on the step. */
__noinline int sky_unw_vma_step(struct sky_unw_vmas *v,
                                struct sky_unw_walk *w, int have)
{
    __u32 r;

    if (!unw_enabled || !unw_vmas_on || !v || !w)
        return have;
    if (have) {
        sky_unw_vma_refresh(v, w->map_i);
        return 1;
    }
    if (!w->vma_budget)
        return 0;
    r = sky_unw_vma_find(v, w->pc);
    w->vma_budget--;
    w->vma_lookups++;
    if (r == SKY_UNW_VR_TABLE)
        w->vma_tables++;
    else if (r == SKY_UNW_VR_NOTABLE)
        w->vma_misses++;
    else
        w->vma_failed++;
    w->map_i = 0;
    return sky_unw_find_map(&v->proc, w) != NULL;
}

/* The record of tgid, created empty when missing; NULL when it cannot
 * be (the LRU map is busy). */
static __always_inline struct sky_unw_vmas *sky_unw_vmas_get(__u32 tgid)
{
    struct sky_unw_vmas *v = bpf_map_lookup_elem(&unw_vmas, &tgid);
    __u32 zero = 0;

    if (v)
        return v;
    v = bpf_map_lookup_elem(&unw_vmas_zero, &zero);
    if (!v || bpf_map_update_elem(&unw_vmas, &tgid, v, BPF_NOEXIST) != 0)
        return NULL;
    return bpf_map_lookup_elem(&unw_vmas, &tgid);
}

/* At exec (process context, current is the process): a fresh record
 * holding the new image's executable, ld.so (the entry point the
 * registers hold: ld.so's for a dynamic program) and vdso. The libraries ld.so
 * maps afterwards are found by the walks. */
static __always_inline void sky_unw_vmas_exec(__u32 tgid)
{
    struct task_struct *task;
    struct sky_unw_vmas *v;
    struct pt_regs *regs;

    if (!unw_enabled || !unw_vmas_on)
        return;
    bpf_map_delete_elem(&unw_vmas, &tgid);
    v = sky_unw_vmas_get(tgid);
    if (!v)
        return;
    task = bpf_get_current_task_btf();
    regs = (struct pt_regs *)bpf_task_pt_regs(task);
    if (regs)
        sky_unw_vma_find(v, BPF_CORE_READ(regs, ip));
    sky_unw_vma_find(v, BPF_CORE_READ(task, mm, start_code));
    /* clock_gettime runs in the vdso: a leaf there needs it and libc */
    sky_unw_vma_find(v, (__u64)BPF_CORE_READ(task, mm, context.vdso));
}

/* At fork: the child's pid may have been another process's. */
static __always_inline void sky_unw_vmas_fork(__u32 tgid)
{
    if (unw_enabled && unw_vmas_on)
        bpf_map_delete_elem(&unw_vmas, &tgid);
}

/* What every step of a walk works on, looked up once per walk: the
 * bpf_loop context, on sky_unwind_walk's stack. (Pointers that stay the
 * same from step to step cost the verifier nothing; the registers,
 * which change, live in the map value, see struct sky_unw_frames.) */
struct sky_unw_ctx {
    struct sky_unw_frames *out;
    struct sky_unw_proc *proc;
    struct sky_unw_win *win;
    struct sky_unw_vmas *vmas;   /* unready: proc is &vmas->proc */
};

static long sky_unw_step(__u32 i, void *arg)
{
    struct sky_unw_ctx *c = arg;
    struct sky_unw_frames *out = c->out;
    struct sky_unw_proc *proc = c->proc;
    struct sky_unw_win *win = c->win;
    struct sky_unw_walk *w = &out->w;
    struct sky_unw_map *m;
    int rc = -1;

    if (w->pc < 4096) {          /* a chain's 0 terminator */
        w->end = SKY_UNW_END_ROOT;
        return 1;
    }
    m = sky_unw_find_map(proc, w);
    if (unw_vmas_on && c->vmas)
        m = sky_unw_vma_step(c->vmas, w, m != NULL)
                ? &proc->maps[w->map_i & (SKY_UNW_MAPS_MAX - 1)] : NULL;
    /* The leaf is the interrupted pc itself, never garbage; any other pc
     * must lie in an executable mapping to be a frame. */
    if (!m && i > 0) {
        w->end = SKY_UNW_END_BAD;
        return 1;
    }
    if (!m)
        w->leaf_unmapped = 1;
    out->pc[w->n & SKY_MAX_FRAMES] = w->pc;
    w->n++;
    if (w->n > unw_max_frames) {  /* the extra iteration: deeper */
        w->end = SKY_UNW_END_DEEP;
        return 1;
    }
    if (m && m->table) {
        struct sky_unw_table *t = bpf_map_lookup_elem(&unw_tables, &m->table);
        __u64 rel = w->pc - w->pc_is_ra - m->bias;
        if (t && t->gen == m->gen && rel < (1ull << 32)) {
            struct sky_unw_row *row = sky_unw_find_row(t, rel);
            rc = row ? sky_unw_cfi_step(w, win, row) : 1;
            if (rc == 1) {
                w->end = SKY_UNW_END_ROOT;
                return 1;
            }
        } else {
            w->miss++;
            rc = sky_unw_fp_step(w, win);
        }
    } else {
        rc = sky_unw_fp_step(w, win);
    }
    if (rc != 0) {
        w->end = SKY_UNW_END_BAD;
        return 1;
    }
    return 0;
}

/* The walk from the given user registers of process tgid, into
 * unw_frames (frames in pc[0, w.n), tallies, why it ended). Returns the
 * frame count, or -1 when this process has no mapping table (the caller
 * takes the stack some other way). A global function: the verifier
 * checks it once, not once per state of each caller (the tick program
 * reaches it in two dozen states, which blew the 1 M instruction budget). */
__noinline int sky_unwind_walk(__u64 pc, __u64 sp, __u64 bp, __u64 bx,
                               __u32 tgid)
{
    __u32 zero = 0, *slot;
    struct sky_unw_ctx c;
    struct sky_unw_walk *w;

    slot = bpf_map_lookup_elem(&unw_pids, &tgid);
    c.out = bpf_map_lookup_elem(&unw_frames, &zero);
    c.win = bpf_map_lookup_elem(&unw_win, &zero);
    c.vmas = NULL;
    if (!c.out || !c.win)
        return -1;
    if (!slot) {
        if (!unw_vmas_on)
            return -1;
        c.vmas = sky_unw_vmas_get(tgid);
        if (!c.vmas)
            return -1;
    }
    w = &c.out->w;
    __builtin_memset(w, 0, sizeof(*w));
    if (c.vmas) {
        c.proc = &c.vmas->proc;
        w->unready = 1;
        w->vma_budget = 1;
    } else {
        w->slot = *slot;
        c.proc = bpf_map_lookup_elem(&unw_procs, &w->slot);
    }
    if (!c.proc) {
        w->end = SKY_UNW_END_BAD;
        return 0;
    }
    w->pc = pc;
    w->sp = sp;
    w->bp = bp;
    w->bp_ok = 1;
    w->bx = bx;
    w->bx_ok = 1;
    c.win->len = 0;     /* the stack changed since the last walk */
    /* One more iteration than frames: it tells a deeper stack (a valid
     * pc past the limit) from one that ends there. */
    bpf_loop(unw_max_frames + 1, sky_unw_step, &c, 0);
    if (w->n > unw_max_frames)
        w->n = unw_max_frames;
    return (int)w->n;
}

/* The walk of current's user stack from its user registers (the task's
 * pt_regs), NULL when it was not walked: walker off, no user context
 * (kernel thread), or no mapping table for the process. */
static __always_inline struct sky_unw_frames *
sky_unwind_user(struct pt_regs *uregs, __u32 tgid)
{
    __u32 zero = 0;

    if (!unw_enabled || !uregs)
        return NULL;
    /* uregs is the BTF pointer bpf_task_pt_regs gave: plain loads (the
     * verifier guards them), not a bpf_probe_read_kernel call each. */
    if ((uregs->cs & 3) != 3)
        return NULL;
    if (sky_unwind_walk(uregs->ip, uregs->sp, uregs->bp, uregs->bx, tgid) < 0)
        return NULL;
    return bpf_map_lookup_elem(&unw_frames, &zero);
}

#endif
