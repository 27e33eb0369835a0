/* collector/unwinder: the 8-byte kernel row (every kind, offsets that do
 * not fit), and with real BPF maps (root): the mapping table written for
 * this very process (its executable's rows in the kernel equal
 * lib/unwind_table's for the same pc, shared objects under one table),
 * eviction when the row array is too small for every object (counted,
 * bounded), and the entry gone when the process is forgotten. */
#include <bpf/bpf.h>
#include <check.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "collector/objreg.h"
#include "collector/proctab.h"
#include "collector/unwinder.h"
#include "log.h"
#include "safe_open.h"
#include "testutil.h"
#include "unwind_table.h"

/* ------------------------------------------------------------- rows */

static struct sky_unw_row s_pack(uint64_t pc, int32_t cfa_off,
                                 int16_t rbp_off, uint8_t cfa_kind,
                                 uint8_t rbp_kind, int want_rc)
{
    unwind_row_t in = { .pc = pc, .cfa_off = cfa_off, .rbp_off = rbp_off,
                        .cfa_kind = cfa_kind, .rbp_kind = rbp_kind };
    struct sky_unw_row out;

    ck_assert_int_eq(unwinder_pack_row(&in, &out), want_rc);
    return out;
}

START_TEST(test_pack_rows)
{
    struct sky_unw_row r;

    ck_assert_uint_eq(sizeof(struct sky_unw_row), 8);
    /* Function entry: CFA = RSP + 8, RBP untouched. */
    r = s_pack(0x1130, 8, 0, UNWIND_CFA_RSP, UNWIND_RBP_SAME, 0);
    ck_assert_uint_eq(r.pc, 0x1130);
    ck_assert_int_eq((int16_t)r.cfa_off8, 1);
    ck_assert_uint_eq(r.kinds, SKY_UNW_KINDS(SKY_UNW_CFA_RSP, SKY_UNW_RBP_SAME, 0));
    /* Frame-pointer body: CFA = RBP + 16, RBP saved at CFA - 16. */
    r = s_pack(0x1134, 16, -16, UNWIND_CFA_RBP, UNWIND_RBP_AT_CFA, 0);
    ck_assert_int_eq((int16_t)r.cfa_off8, 2);
    ck_assert_int_eq((int8_t)r.rbp_off8, -2);
    ck_assert_uint_eq(r.kinds, SKY_UNW_KINDS(SKY_UNW_CFA_RBP, SKY_UNW_RBP_AT_CFA, 0));
    /* PLT: the (RIP & 15) threshold is kept as is. */
    r = s_pack(0x1020, 8, 11, UNWIND_CFA_PLT, UNWIND_RBP_SAME, 0);
    ck_assert_uint_eq(r.rbp_off8, 11);
    ck_assert_uint_eq(r.kinds & 7, SKY_UNW_CFA_PLT);
    /* Signal trampoline: caller's RSP at RSP+160, RBP at RSP+120. */
    r = s_pack(0x42000, 160, 120, UNWIND_CFA_SIGNAL, UNWIND_RBP_AT_RSP, 0);
    ck_assert_int_eq((int16_t)r.cfa_off8, 20);
    ck_assert_int_eq((int8_t)r.rbp_off8, 15);
    /* ld.so's lazy-binding trampoline: CFA = RBX + 24; a prologue that
     * pushed RBX third (at CFA - 32): rule 3. */
    unwind_row_t in = { .pc = 0x5000, .cfa_off = 24,
                        .cfa_kind = UNWIND_CFA_RBX, .rbx_rule = 3 };
    ck_assert_int_eq(unwinder_pack_row(&in, &r), 0);
    ck_assert_int_eq((int16_t)r.cfa_off8, 3);
    ck_assert_uint_eq(r.kinds,
                      SKY_UNW_KINDS(SKY_UNW_CFA_RBX, SKY_UNW_RBP_SAME, 3));
    in.rbx_rule = UNWIND_RBX_UNKNOWN;
    ck_assert_int_eq(unwinder_pack_row(&in, &r), 0);
    ck_assert_uint_eq(r.kinds >> 5, SKY_UNW_RBX_UNKNOWN);
    /* A big frame: 200 KiB of locals still fits 16 bits of eighths. */
    r = s_pack(0x2000, 200 * 1024 + 8, -16, UNWIND_CFA_RSP,
               UNWIND_RBP_AT_CFA, 0);
    ck_assert_int_eq((int16_t)r.cfa_off8, (200 * 1024 + 8) / 8);
    /* No rule stays no rule (the end of a function). */
    r = s_pack(0x3000, 0, 0, UNWIND_CFA_NONE, UNWIND_RBP_SAME, 0);
    ck_assert_uint_eq(r.kinds, 0);
    /* What does not fit: an offset not a multiple of 8, a CFA too far,
     * an RBP slot too far (the CFA stays, the RBP is lost), a PLT
     * threshold out of range, code above 4 GiB. */
    r = s_pack(0x4000, 12, 0, UNWIND_CFA_RSP, UNWIND_RBP_SAME, 1);
    ck_assert_uint_eq(r.kinds, 0);
    r = s_pack(0x4000, 8 * 40000, 0, UNWIND_CFA_RSP, UNWIND_RBP_SAME, 1);
    ck_assert_uint_eq(r.kinds, 0);
    r = s_pack(0x4000, 16, -2048, UNWIND_CFA_RSP, UNWIND_RBP_AT_CFA, 1);
    ck_assert_uint_eq(r.kinds, SKY_UNW_KINDS(SKY_UNW_CFA_RSP, SKY_UNW_RBP_UNKNOWN, 0));
    r = s_pack(0x4000, 8, 16, UNWIND_CFA_PLT, UNWIND_RBP_SAME, 1);
    s_pack(0x100000000ull, 8, 0, UNWIND_CFA_RSP, UNWIND_RBP_SAME, -1);
}
END_TEST

/* ------------------------------------------------------- with BPF maps */

typedef struct {
    int pids, procs, tables, rows, files;
} maps_t;

/* 1: unw_rows is mmapable, as the collector loads it; 0: a plain array
 * (the unwinder falls back to syscalls). */
static int s_rows_mmapable = 1;

static maps_t s_maps(uint32_t max_procs, uint32_t max_tables,
                     uint32_t max_rows)
{
    LIBBPF_OPTS(bpf_map_create_opts, ro,
                .map_flags = s_rows_mmapable ? BPF_F_MMAPABLE : 0);
    maps_t m;

    m.pids = bpf_map_create(BPF_MAP_TYPE_HASH, "t_unw_pids", 4, 4, max_procs,
                            NULL);
    m.procs = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_unw_procs", 4,
                             sizeof(struct sky_unw_proc), max_procs, NULL);
    m.tables = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_unw_tables", 4,
                              sizeof(struct sky_unw_table), max_tables, NULL);
    m.rows = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_unw_rows", 4,
                            sizeof(struct sky_unw_row), max_rows, &ro);
    ck_assert_int_ge(m.pids, 0);
    ck_assert_int_ge(m.procs, 0);
    ck_assert_int_ge(m.tables, 0);
    ck_assert_int_ge(m.rows, 0);
    m.files = bpf_map_create(BPF_MAP_TYPE_HASH, "t_unw_files",
                             sizeof(struct sky_unw_file_key),
                             sizeof(struct sky_unw_file), 2 * max_tables,
                             NULL);
    ck_assert_int_ge(m.files, 0);
    return m;
}

static void s_close(maps_t *m)
{
    close(m->pids);
    close(m->procs);
    close(m->tables);
    close(m->rows);
    close(m->files);
}

static void s_sync_hook(void *arg, const proc_t *proc)
{
    unwinder_sync(arg, proc);
}

static void s_gone_hook(void *arg, uint32_t pid)
{
    unwinder_forget(arg, pid);
}

typedef struct fixture {
    maps_t m;
    unwinder_t *unw;
    objreg_t *objects;
    proctab_t *procs;
    proc_t *self;
} fixture_t;

static void s_resync(void *arg, uint32_t pid)
{
    fixture_t *f = arg;
    proc_t *proc = proctab_find(f->procs, pid);

    ck_assert_ptr_nonnull(proc);
    unwinder_sync(f->unw, proc);
}

static void s_setup(fixture_t *f, uint32_t max_tables, uint32_t max_rows)
{
    f->m = s_maps(16, max_tables, max_rows);
    unwinder_maps_t um = { .pids_fd = f->m.pids, .procs_fd = f->m.procs,
                           .tables_fd = f->m.tables, .rows_fd = f->m.rows,
                           .files_fd = f->m.files, .vmas_fd = -1,
                           .vzero_fd = -1, .vmas_on = 1,
                           .max_files = 2 * max_tables,
                           .max_procs = 16, .max_tables = max_tables,
                           .max_rows = max_rows };
    f->unw = unwinder_new(&um, NULL);
    ck_assert_ptr_nonnull(f->unw);
    f->objects = objreg_new();
    f->procs = proctab_new(f->objects, 64, 1000);
    ck_assert_ptr_nonnull(f->procs);
    proctab_hooks_t hooks = { s_sync_hook, s_gone_hook, f->unw, NULL };
    proctab_set_hooks(f->procs, &hooks);
    f->self = proctab_get(f->procs, (uint32_t)getpid(), NULL);
    ck_assert_ptr_nonnull(f->self);
    ck_assert_int_eq(proctab_load_maps(f->procs, f->self), 0);
    /* Small objects' tables are built at once (on the caller's thread);
     * the worker builds the others one by one, and the results are loaded
     * when the fd says so. */
    unwinder_stats_t st;
    unwinder_stats(f->unw, &st);
    ck_assert_uint_eq(st.tables_built, st.tables_inline);
    ck_assert_uint_gt(st.tables_pending, 0);
    struct pollfd pfd = { .fd = unwinder_fd(f->unw), .events = POLLIN };
    uint64_t deadline = tu_now_ms() + 50000;
    while (unwinder_work(f->unw, UINT64_MAX, s_resync, f)) {
        ck_assert_uint_lt(tu_now_ms(), deadline);
        poll(&pfd, 1, 100);
    }
    unwinder_stats(f->unw, &st);
    ck_assert_uint_eq(st.tables_pending, 0);
}

static void s_teardown(fixture_t *f)
{
    proctab_destroy(&f->procs);
    objreg_destroy(&f->objects);
    unwinder_destroy(&f->unw);
    ck_assert_ptr_null(f->unw);
    unwinder_destroy(&f->unw);   /* NULL-safe */
    s_close(&f->m);
}

static struct sky_unw_row s_row_at(const fixture_t *f, uint32_t i)
{
    struct sky_unw_row r;

    ck_assert_int_eq(bpf_map_lookup_elem(f->m.rows, &i, &r), 0);
    return r;
}

/* The last row of [lo, hi) whose pc <= rel, -1 if none. */
static int64_t s_search(const fixture_t *f, uint32_t lo, uint32_t hi,
                        uint64_t rel)
{
    int64_t found = -1;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s_row_at(f, mid).pc <= rel) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return found;
}

/* The row for rel through the page index, as bpf/unwind.bpf.h finds it
 * (entries in the 32-bit halves of the row slots after the rows). */
static int64_t s_search_indexed(const fixture_t *f,
                                const struct sky_unw_table *t, uint64_t rel)
{
    uint32_t lo = 0, hi = t->count;

    if (t->nidx && rel >= t->min_pc) {
        uint64_t page = (rel - t->min_pc) >> t->shift;
        if (page < t->nidx) {
            uint32_t e[2];
            struct sky_unw_row r = s_row_at(f, t->first + t->count +
                                                   (uint32_t)page / 2);
            memcpy(e, &r, sizeof(e));
            lo = e[page & 1];
            if (page + 1 < t->nidx) {
                r = s_row_at(f, t->first + t->count +
                                    (uint32_t)(page + 1) / 2);
                memcpy(e, &r, sizeof(e));
                hi = e[(page + 1) & 1] + 1;
            }
        }
    }
    return s_search(f, t->first + lo, t->first + hi, rel);
}

/* The kernel table and bias for the runtime address addr of this
 * process, as the BPF walker would find them. 0 or -1. */
static int s_kernel_table(const fixture_t *f, uint64_t addr,
                          struct sky_unw_table *t, uint64_t *bias)
{
    uint32_t pid = (uint32_t)getpid(), slot;
    static struct sky_unw_proc e;

    if (bpf_map_lookup_elem(f->m.pids, &pid, &slot) != 0 ||
        bpf_map_lookup_elem(f->m.procs, &slot, &e) != 0)
        return -1;
    for (uint32_t i = 0; i < e.nmaps; i++) {
        const struct sky_unw_map *m = &e.maps[i];
        if (addr < m->start || addr >= m->end)
            continue;
        if (!m->table ||
            bpf_map_lookup_elem(f->m.tables, &m->table, t) != 0 ||
            t->gen != m->gen)
            return -1;
        *bias = m->bias;
        return 0;
    }
    return -1;
}

/* The kernel row covering the runtime address addr of this process. */
static int s_kernel_row(const fixture_t *f, uint64_t addr,
                        struct sky_unw_row *out, uint64_t *rel)
{
    struct sky_unw_table t;
    uint64_t bias;

    if (s_kernel_table(f, addr, &t, &bias) < 0)
        return -1;
    *rel = addr - bias;
    int64_t i = s_search_indexed(f, &t, *rel);
    if (i < 0)
        return -1;
    *out = s_row_at(f, (uint32_t)i);
    return 0;
}

static int s_function_in_test(int x)
{
    return x * 3 + 1;
}

START_TEST(test_tables_of_this_process)
{
    fixture_t f;
    unwinder_stats_t st;

    s_setup(&f, 64, 1u << 20);
    unwinder_stats(f.unw, &st);
    ck_assert_uint_eq(st.procs, 1);
    ck_assert_uint_ge(st.tables_built, 2);   /* this test, libc, ... */
    ck_assert_uint_eq(st.tables, st.tables_built);
    ck_assert_uint_gt(st.rows, 1000);
    ck_assert_uint_eq(st.bytes, st.rows * 8 +
                                    st.tables * sizeof(struct sky_unw_table) +
                                    st.procs * (sizeof(struct sky_unw_proc) +
                                                8));
    ck_assert_uint_ge(st.bytes_reserved, (1u << 20) * 8);
    /* Every row went through the mapping (nothing was evicted). */
    ck_assert_uint_eq(st.rows_mmap, 1);
    ck_assert_uint_eq(st.rows_mmap_errors, 0);
    ck_assert_uint_eq(st.rows_written, st.rows);
    ck_assert_uint_ge(st.memory_trims, 1);

    /* The row the kernel would use for a function of ours is the row
     * lib/unwind_table gives for the same link-time pc. */
    uint64_t addr = (uint64_t)(uintptr_t)&s_function_in_test, rel = 0;
    struct sky_unw_row kr, want;
    ck_assert_int_eq(s_kernel_row(&f, addr, &kr, &rel), 0);
    int fd = safe_open_proc_link("/proc/self/exe", 0, NULL);
    ck_assert_int_ge(fd, 0);
    unwind_table_t *table = unwind_table_new_fd(fd, NULL);
    close(fd);
    ck_assert_ptr_nonnull(table);
    const unwind_row_t *row = unwind_table_lookup(table, rel);
    ck_assert_ptr_nonnull(row);
    ck_assert_int_eq(unwinder_pack_row(row, &want), 0);
    ck_assert_uint_eq(kr.kinds, want.kinds);
    ck_assert_uint_eq(kr.cfa_off8, want.cfa_off8);
    ck_assert_uint_eq(kr.rbp_off8, want.rbp_off8);
    /* At a function's entry the CFA is RSP + 8. */
    ck_assert_uint_eq(kr.kinds & 7, SKY_UNW_CFA_RSP);
    unwind_table_destroy(&table);
    /* A libc function resolves too (a table shared by every process). */
    ck_assert_int_eq(s_kernel_row(&f, (uint64_t)(uintptr_t)&qsort, &kr,
                                  &rel), 0);
    /* libc's page index gives the row a full search gives, for every
     * row's first pc, the byte before it and a few after. */
    struct sky_unw_table lt;
    uint64_t bias;
    ck_assert_int_eq(s_kernel_table(&f, (uint64_t)(uintptr_t)&qsort, &lt,
                                    &bias), 0);
    ck_assert_uint_gt(lt.nidx, 0);
    for (uint32_t i = 0; i < lt.count; i += 7) {
        uint64_t pc = s_row_at(&f, lt.first + i).pc;
        const uint64_t around[3] = { pc - 1, pc, pc + 4 };
        for (int d = 0; d < 3; d++) {
            uint64_t at = around[d];
            ck_assert_int_eq(s_search_indexed(&f, &lt, at),
                             s_search(&f, lt.first, lt.first + lt.count, at));
        }
    }

    /* Re-reading the same mappings rewrites nothing and builds nothing. */
    ck_assert_int_eq(proctab_load_maps(f.procs, f.self), 0);
    unwinder_stats_t again;
    unwinder_stats(f.unw, &again);
    ck_assert_uint_eq(again.tables_built, st.tables_built);
    ck_assert_uint_eq(again.update_errors, 0);

    /* Exit: the pid leaves the kernel's table. */
    proctab_on_exit(f.procs, (uint32_t)getpid());
    uint32_t pid = (uint32_t)getpid(), slot;
    ck_assert_int_ne(bpf_map_lookup_elem(f.m.pids, &pid, &slot), 0);
    unwinder_stats(f.unw, &again);
    ck_assert_uint_eq(again.procs, 0);
    s_teardown(&f);
}
END_TEST

START_TEST(test_eviction_is_bounded_and_counted)
{
    fixture_t f;
    unwinder_stats_t st;

    /* Room for libc's ~28 K rows but not for every object this process
     * maps: older tables are evicted, the rows never exceed the array. */
    s_setup(&f, 64, 40000);
    unwinder_stats(f.unw, &st);
    printf("eviction: %lu tables built, %lu evicted, %lu refused, %lu "
           "loaded with %lu rows\n", (unsigned long)st.tables_built,
           (unsigned long)st.tables_evicted, (unsigned long)st.tables_refused,
           (unsigned long)st.tables, (unsigned long)st.rows);
    ck_assert_uint_le(st.rows, 40000);
    ck_assert_uint_gt(st.tables_evicted + st.tables_refused, 0);
    ck_assert_uint_eq(st.update_errors, 0);
    s_teardown(&f);

    /* Two table slots (slot 0 means none): one table at a time. */
    s_setup(&f, 2, 1u << 20);
    unwinder_stats(f.unw, &st);
    ck_assert_uint_eq(st.tables, 1);
    ck_assert_uint_ge(st.tables_evicted, 1);
    s_teardown(&f);
}
END_TEST

/* Every unw_files entry names a loaded table by its current generation:
 * a walk of a process without entry never reads an evicted table's
 * rows through it (an entry would otherwise outlive its table: counted
 * misses at best). With n set, the entries are counted. */
static void s_files_name_loaded_tables(const fixture_t *f, uint32_t *n)
{
    struct sky_unw_file_key key, next;
    struct sky_unw_file val;
    struct sky_unw_table t;
    void *prev = NULL;

    *n = 0;
    while (bpf_map_get_next_key(f->m.files, prev, &next) == 0) {
        ck_assert_int_eq(bpf_map_lookup_elem(f->m.files, &next, &val), 0);
        ck_assert_int_eq(bpf_map_lookup_elem(f->m.tables, &val.table, &t), 0);
        ck_assert_uint_ne(val.table, 0);
        ck_assert_uint_eq(val.gen, t.gen);
        ck_assert_uint_gt(val.nsegs, 0);
        (*n)++;
        key = next;
        prev = &key;
    }
}

/* The table of this process's libc, found by its file as the walker of a
 * process without entry finds it (inode -> unw_files -> bias from the
 * segment), equals the one its process entry names; evicting tables
 * takes their files out. */
START_TEST(test_files_follow_tables)
{
    fixture_t f;
    unwinder_stats_t st;
    struct sky_unw_table t;
    uint64_t bias, addr = (uint64_t)(uintptr_t)&snprintf;
    uint32_t n;

    s_setup(&f, 4096, 1u << 22);
    ck_assert_int_eq(s_kernel_table(&f, addr, &t, &bias), 0);
    const mapping_t *m = NULL;
    for (uint32_t i = 0; i < f.self->nmaps; i++)
        if (addr >= f.self->maps[i].start && addr < f.self->maps[i].end)
            m = &f.self->maps[i];
    ck_assert_ptr_nonnull(m);
    struct sky_unw_file_key key = {
        .dev = ((uint64_t)major(m->obj->dev) << 20) | minor(m->obj->dev),
        .ino = m->obj->ino
    };
    struct sky_unw_file val;
    ck_assert_int_eq(bpf_map_lookup_elem(f.m.files, &key, &val), 0);
    ck_assert_uint_eq(val.gen, t.gen);
    int found = 0;
    for (uint32_t i = 0; i < val.nsegs && i < SKY_UNW_FILE_SEGS; i++)
        if (m->pgoff >= val.segs[i].off && m->pgoff < val.segs[i].end) {
            ck_assert_uint_eq(m->start - m->pgoff + val.segs[i].delta, bias);
            found = 1;
        }
    ck_assert_int_eq(found, 1);
    s_files_name_loaded_tables(&f, &n);
    unwinder_stats(f.unw, &st);
    ck_assert_uint_eq(n, st.files);
    ck_assert_uint_gt(n, 0);
    s_teardown(&f);

    /* One table slot: every table but the last was evicted. */
    s_setup(&f, 2, 1u << 20);
    s_files_name_loaded_tables(&f, &n);
    unwinder_stats(f.unw, &st);
    ck_assert_uint_ge(st.tables_evicted, 1);
    ck_assert_uint_eq(n, st.files);
    ck_assert_uint_le(n, f.self->nmaps);
    s_teardown(&f);
}
END_TEST

/* Every row of the table covering addr, read back with
 * bpf_map_lookup_elem, into out (count + index slots). */
static uint32_t s_table_rows(const fixture_t *f, uint64_t addr,
                             struct sky_unw_row **out,
                             struct sky_unw_table *t)
{
    uint64_t bias;

    ck_assert_int_eq(s_kernel_table(f, addr, t, &bias), 0);
    uint32_t n = t->count + (t->nidx + 1) / 2;
    *out = calloc(n, sizeof(**out));
    ck_assert_ptr_nonnull(*out);
    for (uint32_t i = 0; i < n; i++)
        (*out)[i] = s_row_at(f, t->first + i);
    return n;
}

/* Rows written through the mapping read back through the map exactly as
 * the syscall path (a plain array, the fallback) writes them. */
START_TEST(test_mmap_rows_equal_syscall_rows)
{
    fixture_t f;
    unwinder_stats_t st;
    struct sky_unw_row *a, *b;
    struct sky_unw_table ta, tb;
    uint64_t addr = (uint64_t)(uintptr_t)&qsort;

    s_rows_mmapable = 1;
    s_setup(&f, 64, 1u << 20);
    unwinder_stats(f.unw, &st);
    ck_assert_uint_eq(st.rows_mmap, 1);
    uint32_t na = s_table_rows(&f, addr, &a, &ta);
    s_teardown(&f);

    s_rows_mmapable = 0;
    s_setup(&f, 64, 1u << 20);
    unwinder_stats(f.unw, &st);
    ck_assert_uint_eq(st.rows_mmap, 0);
    ck_assert_uint_ge(st.rows_mmap_errors, 1);
    ck_assert_uint_eq(st.update_errors, 0);
    uint32_t nb = s_table_rows(&f, addr, &b, &tb);
    s_teardown(&f);
    s_rows_mmapable = 1;

    ck_assert_uint_gt(na, 1000);
    ck_assert_uint_eq(na, nb);
    ck_assert_uint_eq(ta.count, tb.count);
    ck_assert_uint_eq(ta.nidx, tb.nidx);
    ck_assert_int_eq(memcmp(a, b, na * sizeof(*a)), 0);
    free(a);
    free(b);
}
END_TEST

/* With two table slots every table replaces the one before in the same
 * rows: the survivor reads back right (its index agrees with a full
 * search, its rows are sorted and its own). */
START_TEST(test_replaced_table_reads_back)
{
    fixture_t f;
    unwinder_stats_t st;

    s_setup(&f, 2, 1u << 20);
    unwinder_stats(f.unw, &st);
    ck_assert_uint_ge(st.tables_evicted, 1);
    ck_assert_uint_eq(st.rows_mmap, 1);
    ck_assert_uint_ge(st.rows_written, st.rows);
    struct sky_unw_table t;
    ck_assert_int_eq(bpf_map_lookup_elem(f.m.tables, &(uint32_t){ 1 }, &t),
                     0);
    ck_assert_uint_eq(t.first, 0);
    ck_assert_uint_eq(t.count + (t.nidx + 1) / 2, st.rows);
    for (uint32_t i = 1; i < t.count; i++)
        ck_assert_uint_lt(s_row_at(&f, t.first + i - 1).pc,
                          s_row_at(&f, t.first + i).pc);
    for (uint32_t i = 0; i < t.count; i++) {
        uint64_t pc = s_row_at(&f, t.first + i).pc;
        ck_assert_int_eq(s_search_indexed(&f, &t, pc),
                         s_search(&f, t.first, t.first + t.count, pc));
    }
    s_teardown(&f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("unwinder");
    TCase *tc = tcase_create("unwinder");

    log_init("test", LOG_LVL_WARN);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pack_rows);
    if (tu_require_bpf("unwinder")) {
        tcase_add_test(tc, test_tables_of_this_process);
        tcase_add_test(tc, test_eviction_is_bounded_and_counted);
        tcase_add_test(tc, test_mmap_rows_equal_syscall_rows);
        tcase_add_test(tc, test_replaced_table_reads_back);
        tcase_add_test(tc, test_files_follow_tables);
    }
    suite_add_tcase(s, tc);
    return tu_run(s);
}
