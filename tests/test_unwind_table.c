/* lib/unwind_table: the rows of real objects (libc, and a program built
 * here with gcc -O2 -fomit-frame-pointer) against what the code does
 * (CFA = RSP+8 at every function entry, RSP+16 after a first push) and
 * against readelf --debug-dump=frames-interp, the trusted third-party
 * reading of the same CFI; the PLT and signal-trampoline patterns; and
 * hostile .eh_frame (truncated, CIE pointer loop, absurd length, unknown
 * opcode, limits) counted, bounded, never a crash; and the DW_CFA
 * interpreter rule by rule on synthetic CFI. Prints the build time
 * and size of the tables of libc and libLLVM (not asserted). */
#include <elf.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "unwind_table.h"

#define LIBC "/lib/x86_64-linux-gnu/libc.so.6"

/* ------------------------------------------------------ ELF helpers */

typedef struct {
    uint8_t *data;
    size_t size;
} image_t;

static image_t s_load(const char *path)
{
    image_t im = { 0 };
    im.data = (uint8_t *)tu_read_file(path, &im.size);
    ck_assert_msg(im.data, "cannot read %s", path);
    return im;
}

static const Elf64_Shdr *s_shdr(const image_t *im, const char *name)
{
    const Elf64_Ehdr *eh = (const void *)im->data;
    const Elf64_Shdr *sh = (const void *)(im->data + eh->e_shoff);
    const char *str = (const char *)im->data + sh[eh->e_shstrndx].sh_offset;
    for (size_t i = 0; i < eh->e_shnum; i++)
        if (strcmp(str + sh[i].sh_name, name) == 0)
            return &sh[i];
    return NULL;
}

/* File bytes at a link-time address (through the PT_LOAD headers). */
static const uint8_t *s_at(const image_t *im, uint64_t vaddr)
{
    const Elf64_Ehdr *eh = (const void *)im->data;
    const Elf64_Phdr *ph = (const void *)(im->data + eh->e_phoff);
    for (size_t i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD && vaddr >= ph[i].p_vaddr &&
            vaddr + 16 <= ph[i].p_vaddr + ph[i].p_filesz)
            return im->data + ph[i].p_offset + (vaddr - ph[i].p_vaddr);
    return NULL;
}

typedef void (*s_func_cb)(const image_t *im, const unwind_table_t *t,
                          const char *name, uint64_t addr, int *stats);

/* Calls cb for every defined function of symtab_name (.dynsym/.symtab). */
static void s_each_function(const image_t *im, const char *symtab_name,
                            const unwind_table_t *t, s_func_cb cb, int *stats)
{
    const Elf64_Shdr *sym = s_shdr(im, symtab_name);
    ck_assert_ptr_nonnull(sym);
    const Elf64_Ehdr *eh = (const void *)im->data;
    const Elf64_Shdr *sh = (const void *)(im->data + eh->e_shoff);
    const char *str = (const char *)im->data + sh[sym->sh_link].sh_offset;
    const Elf64_Sym *s = (const void *)(im->data + sym->sh_offset);
    for (size_t i = 0; i < sym->sh_size / sizeof *s; i++)
        if (ELF64_ST_TYPE(s[i].st_info) == STT_FUNC && s[i].st_value &&
            s[i].st_shndx != SHN_UNDEF && s[i].st_size > 1)
            cb(im, t, str + s[i].st_name, s[i].st_value, stats);
}

/* stats[0] functions, [1] found at entry, [2] entries CFA=RSP+8,
 * [3] functions opening with a push, [4] RSP+16 after it */
static void s_check_function(const image_t *im, const unwind_table_t *t,
                             const char *name, uint64_t addr, int *stats)
{
    const unwind_row_t *r = unwind_table_lookup(t, addr);
    if (strcmp(name, "_start") == 0) {
        /* the root: its CFI leaves the return address undefined, so the
           table ends the walk there */
        ck_assert_ptr_null(r);
        return;
    }
    stats[0]++;
    if (!r) {
        fprintf(stderr, "no row at %s %#lx\n", name, (unsigned long)addr);
        return;
    }
    stats[1]++;
    if (r->cfa_kind == UNWIND_CFA_RSP && r->cfa_off == 8 &&
        r->rbp_kind == UNWIND_RBP_SAME)
        stats[2]++;
    else
        fprintf(stderr, "entry of %s %#lx: kind %d off %d\n", name,
                (unsigned long)addr, r->cfa_kind, r->cfa_off);
    const uint8_t *code = s_at(im, addr);
    if (!code)
        return;
    size_t at = 0;
    if (memcmp(code, "\xf3\x0f\x1e\xfa", 4) == 0)
        at = 4;                                         /* endbr64 */
    size_t len = 0;
    if (code[at] >= 0x50 && code[at] <= 0x57)
        len = 1;                                        /* push r64 */
    else if (code[at] == 0x41 && code[at + 1] >= 0x50 && code[at + 1] <= 0x57)
        len = 2;                                        /* push r8-r15 */
    if (!len)
        return;
    stats[3]++;
    r = unwind_table_lookup(t, addr + at + len);
    if (r && r->cfa_kind == UNWIND_CFA_RSP && r->cfa_off == 16)
        stats[4]++;
    else
        fprintf(stderr, "after push in %s: kind %d off %d\n", name,
                r ? r->cfa_kind : -1, r ? r->cfa_off : 0);
}

/* readelf's rows against ours: every row with an rsp/rbp CFA must be our
 * row at that pc with the same offset and the same RBP rule. Returns the
 * rows compared; *bad counts disagreements. */
static size_t s_compare_readelf(const char *path, const unwind_table_t *t,
                                size_t *bad, size_t *exprs)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "readelf --debug-dump=frames-interp '%s' 2>/dev/null", path);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    char line[4096], cols[40][16];
    int ncols = 0, rbp_col = -1, ra_col = -1, in_cie = 0;
    uint64_t fde_end = 0;
    size_t compared = 0;
    *bad = *exprs = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, " FDE ") || strstr(line, " CIE ")) {
            in_cie = strstr(line, " CIE ") != NULL;   /* rows at LOC 0 */
            const char *range = strstr(line, "..");
            fde_end = range ? strtoull(range + 2, NULL, 16) : 0;
            ncols = 0;
            continue;
        }
        if (strncmp(line, "   LOC", 6) == 0) {
            ncols = 0;
            rbp_col = ra_col = -1;
            for (char *tok = strtok(line, " \n"); tok && ncols < 40;
                 tok = strtok(NULL, " \n")) {
                snprintf(cols[ncols], sizeof cols[ncols], "%s", tok);
                if (strcmp(tok, "rbp") == 0)
                    rbp_col = ncols;
                if (strcmp(tok, "ra") == 0)
                    ra_col = ncols;
                ncols++;
            }
            continue;
        }
        if (!ncols || in_cie || line[0] < '0' || line[0] > 'f')
            continue;
        char *val[40];
        int n = 0;
        for (char *tok = strtok(line, " \n"); tok && n < 40;
             tok = strtok(NULL, " \n"))
            val[n++] = tok;
        if (n != ncols || ra_col < 0)
            continue;
        uint64_t pc = strtoull(val[0], NULL, 16);
        if (pc >= fde_end)
            continue;         /* readelf shows a row advanced to the end */
        const unwind_row_t *r = unwind_table_lookup(t, pc);
        if (strcmp(val[1], "exp") == 0) {
            (*exprs)++;
            continue;
        }
        if (strcmp(val[ra_col], "c-8") != 0)
            continue;
        int kind = strncmp(val[1], "rsp+", 4) == 0 ? UNWIND_CFA_RSP
                 : strncmp(val[1], "rbp+", 4) == 0 ? UNWIND_CFA_RBP : -1;
        if (kind < 0)
            continue;
        compared++;
        int want_off = atoi(val[1] + 4);
        int ok = r && r->cfa_kind == kind && r->cfa_off == want_off;
        if (ok && rbp_col >= 0 && val[rbp_col][0] == 'c')
            ok = r->rbp_kind == UNWIND_RBP_AT_CFA &&
                 r->rbp_off == atoi(val[rbp_col] + 1);
        else if (ok)
            ok = r->rbp_kind == UNWIND_RBP_SAME ||
                 r->rbp_kind == UNWIND_RBP_UNKNOWN;
        if (!ok && (*bad)++ < 5)
            fprintf(stderr, "%s: pc %#lx readelf %s, ours kind %d off %d "
                    "rbp %d/%d\n", path, (unsigned long)pc, val[1],
                    r ? r->cfa_kind : -1, r ? r->cfa_off : 0,
                    r ? r->rbp_kind : -1, r ? r->rbp_off : 0);
    }
    pclose(f);
    return compared;
}

static unwind_table_t *s_table_of(const char *path, double *ms)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    unwind_table_t *t = unwind_table_new_fd(fd, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    close(fd);
    ck_assert_ptr_nonnull(t);
    if (ms)
        *ms = (double)(b.tv_sec - a.tv_sec) * 1e3 +
              (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    return t;
}

static void s_print_errors(const char *what, const unwind_summary_t *s)
{
    fprintf(stderr, "%s: errors:", what);
    for (int i = 0; i < UNWIND_ERR_COUNT; i++)
        if (s->errors[i])
            fprintf(stderr, " %s=%zu", unwind_error_name(i), s->errors[i]);
    fprintf(stderr, "\n");
}

/* Every row starts above the previous one and differs from it. One
 * assertion for the whole table: in fork mode check records every passing
 * assertion, and one per row of libLLVM's table cost seconds of make test
 * (the parent reads the records after each test). */
static void s_check_sorted(const unwind_table_t *t)
{
    const unwind_row_t *rows;
    size_t n = unwind_table_rows(t, &rows), i;
    for (i = 1; i < n; i++)
        if (rows[i].pc <= rows[i - 1].pc ||
            memcmp(&rows[i].cfa_off, &rows[i - 1].cfa_off, 8) == 0)
            break;
    ck_assert_msg(i >= n, "row %zu of %zu (pc %#lx) does not follow row "
                  "%zu (pc %#lx) or repeats it", i, n,
                  (unsigned long)(i < n ? rows[i].pc : 0), i - 1,
                  (unsigned long)(i < n ? rows[i - 1].pc : 0));
}

/* ------------------------------------------------------ real objects */

START_TEST(test_libc)
{
    double ms;
    unwind_table_t *t = s_table_of(LIBC, &ms);
    unwind_summary_t sum;
    unwind_table_summary(t, &sum);
    fprintf(stderr, "libc: %zu rows, %zu bytes, %zu FDEs (%zu used), "
            "%.1f ms\n", sum.rows, sum.bytes, sum.fdes, sum.fdes_used, ms);
    s_print_errors("libc", &sum);
    ck_assert_uint_gt(sum.rows, 5000);
    ck_assert_uint_eq(sum.bytes, sum.rows * sizeof(unwind_row_t));
    ck_assert_int_eq(sum.from_debug_frame, 0);
    ck_assert_uint_ge(sum.fdes_used, sum.fdes * 99 / 100);
    s_check_sorted(t);

    image_t im = s_load(LIBC);
    int st[5] = { 0 };
    s_each_function(&im, ".dynsym", t, s_check_function, st);
    fprintf(stderr, "libc: %d functions, %d found, %d RSP+8 at entry, "
            "%d open with a push, %d RSP+16 after it\n",
            st[0], st[1], st[2], st[3], st[4]);
    ck_assert_int_gt(st[0], 1000);
    ck_assert_int_eq(st[1], st[0]);       /* every function start found */
    ck_assert_int_eq(st[2], st[1]);
    ck_assert_int_gt(st[3], 100);
    ck_assert_int_eq(st[4], st[3]);

    size_t bad, exprs;
    size_t n = s_compare_readelf(LIBC, t, &bad, &exprs);
    fprintf(stderr, "libc: %zu rows compared with readelf, %zu differ, "
            "%zu expression rows\n", n, bad, exprs);
    ck_assert_uint_gt(n, 5000);
    ck_assert_uint_eq(bad, 0);

    /* the signal trampoline and the PLT patterns are recognised */
    const unwind_row_t *rows;
    size_t count = unwind_table_rows(t, &rows);
    size_t sig = 0, plt = 0;
    for (size_t i = 0; i < count; i++) {
        if (rows[i].cfa_kind == UNWIND_CFA_SIGNAL) {
            sig++;
            /* rt_sigframe: uc_mcontext rsp at 160, rip 168, rbp 120 */
            ck_assert_int_eq(rows[i].cfa_off, 160);
            ck_assert_int_eq(rows[i].rbp_kind, UNWIND_RBP_AT_RSP);
            ck_assert_int_eq(rows[i].rbp_off, 120);
        }
        if (rows[i].cfa_kind == UNWIND_CFA_PLT) {
            plt++;
            ck_assert_int_eq(rows[i].cfa_off, 8);
            ck_assert(rows[i].rbp_off == 10 || rows[i].rbp_off == 11);
        }
    }
    ck_assert_uint_eq(sig, 1);
    ck_assert_uint_ge(plt, 1);
    free(im.data);
    unwind_table_destroy(&t);
    unwind_table_destroy(&t);                          /* NULL-safe */
}
END_TEST

static const char *s_prog_src =
    "#include <stdio.h>\n#include <stdlib.h>\n"
    "__attribute__((noinline)) long leaf(long *v, long n)\n"
    "{ long s = 0; for (long i = 0; i < n; i++) s += v[i] * i; return s; }\n"
    "__attribute__((noinline)) long mid(long n)\n"
    "{ long *v = malloc(sizeof *v * (size_t)n); long a = 0;\n"
    "  for (long i = 0; i < n; i++) v[i] = rand();\n"
    "  for (long j = 0; j < 3; j++) a += leaf(v, n) ^ leaf(v + 1, n - 1);\n"
    "  free(v); return a; }\n"
    "static int cmp(const void *a, const void *b)\n"
    "{ return *(const int *)a - *(const int *)b; }\n"
    "int main(int argc, char **argv)\n"
    "{ int x[4] = { 3, 1, 2, argc }; qsort(x, 4, sizeof x[0], cmp);\n"
    "  printf(\"%ld %d %s\\n\", mid(argc * 100), x[0], argv[0]); return 0; }\n";

/* _i 0: distribution flags (.eh_frame); 1: no unwind tables, so the
 * program's own functions have only .debug_frame; 2: frame pointers, so
 * CFA = RBP+16 with RBP saved at CFA-16 in the program's functions */
static const char *const s_prog_flags[] = {
    "", "-fno-asynchronous-unwind-tables -fno-unwind-tables",
    "-fno-omit-frame-pointer",
};

START_TEST(test_program_built_here)
{
    char *dir = tu_mkdtemp();
    char src[512], exe[512], cmd[2048];
    snprintf(src, sizeof src, "%s/prog.c", dir);
    snprintf(exe, sizeof exe, "%s/prog", dir);
    tu_write_file(src, s_prog_src);
    snprintf(cmd, sizeof cmd, "gcc -O2 %s -g %s -o '%s' '%s'",
             _i == 2 ? "" : "-fomit-frame-pointer", s_prog_flags[_i], exe,
             src);
    ck_assert_int_eq(system(cmd), 0);

    unwind_table_t *t = s_table_of(exe, NULL);
    unwind_summary_t sum;
    unwind_table_summary(t, &sum);
    s_print_errors("prog", &sum);
    ck_assert_int_eq(sum.from_debug_frame, _i == 1);
    ck_assert_uint_gt(sum.rows, 5);
    for (int i = 0; i < UNWIND_ERR_COUNT; i++)
        ck_assert_uint_eq(sum.errors[i], 0);
    s_check_sorted(t);

    image_t im = s_load(exe);
    int st[5] = { 0 };
    s_each_function(&im, ".symtab", t, s_check_function, st);
    ck_assert_int_ge(st[0], 3);               /* main, mid, leaf, ... */
    ck_assert_int_eq(st[1], st[0]);
    ck_assert_int_eq(st[2], st[1]);
    ck_assert_int_ge(st[3], 1);               /* mid pushes */
    ck_assert_int_eq(st[4], st[3]);

    size_t bad, exprs;
    size_t n = s_compare_readelf(exe, t, &bad, &exprs);
    ck_assert_uint_gt(n, 5);
    ck_assert_uint_eq(bad, 0);
    ck_assert_uint_ge(exprs, 1);              /* the PLT */
    const unwind_row_t *rows;
    size_t count = unwind_table_rows(t, &rows), plt = 0, rbp = 0;
    for (size_t i = 0; i < count; i++) {
        plt += rows[i].cfa_kind == UNWIND_CFA_PLT;
        if (rows[i].cfa_kind == UNWIND_CFA_RBP) {
            rbp++;
            ck_assert_int_eq(rows[i].cfa_off, 16);
            ck_assert_int_eq(rows[i].rbp_kind, UNWIND_RBP_AT_CFA);
            ck_assert_int_eq(rows[i].rbp_off, -16);
        }
    }
    ck_assert_uint_ge(plt, 1);
    if (_i == 2)
        ck_assert_uint_ge(rbp, 2);            /* mid, main */
    else
        ck_assert_uint_eq(rbp, 0);

    free(im.data);
    unwind_table_destroy(&t);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_llvm_size_and_time)
{
    glob_t g;
    if (glob("/usr/lib/x86_64-linux-gnu/libLLVM-[0-9][0-9].so.1", 0, NULL,
             &g) != 0) {
        tu_skip("test_llvm_size_and_time", "no libLLVM here");
        return;
    }
    /* the newest only: the readelf comparison takes seconds */
    for (size_t i = g.gl_pathc - 1; i < g.gl_pathc; i++) {
        double ms;
        unwind_table_t *t = s_table_of(g.gl_pathv[i], &ms);
        unwind_summary_t sum;
        unwind_table_summary(t, &sum);
        fprintf(stderr, "%s: %zu rows, %zu bytes, %zu FDEs (%zu used), "
                "%.1f ms (sanitizer build)\n", g.gl_pathv[i], sum.rows,
                sum.bytes, sum.fdes, sum.fdes_used, ms);
        s_print_errors(g.gl_pathv[i], &sum);
        ck_assert_uint_gt(sum.rows, 100000);
        s_check_sorted(t);
        size_t bad, exprs;
        size_t n = s_compare_readelf(g.gl_pathv[i], t, &bad, &exprs);
        fprintf(stderr, "%s: %zu rows compared with readelf, %zu differ\n",
                g.gl_pathv[i], n, bad);
        ck_assert_uint_gt(n, 100000);
        ck_assert_uint_eq(bad, 0);
        image_t im = s_load(g.gl_pathv[i]);
        int st[5] = { 0 };
        s_each_function(&im, ".dynsym", t, s_check_function, st);
        fprintf(stderr, "%s: %d functions, %d found, %d RSP+8 at entry, "
                "%d open with a push, %d RSP+16 after it\n", g.gl_pathv[i],
                st[0], st[1], st[2], st[3], st[4]);
        ck_assert_int_gt(st[0], 10000);
        ck_assert_int_eq(st[1], st[0]);
        ck_assert_int_eq(st[2], st[1]);
        ck_assert_int_eq(st[4], st[3]);
        free(im.data);
        unwind_table_destroy(&t);
    }
    globfree(&g);
}
END_TEST

/* ------------------------------------------------------ hostile input */

/* A copy of libc with its .eh_frame changed by fn, then tabled. */
static unwind_table_t *s_mutated(void (*fn)(image_t *, Elf64_Shdr *),
                                 const unwind_limits_t *lim,
                                 unwind_summary_t *sum)
{
    image_t im = s_load(LIBC);
    Elf64_Shdr *eh = (Elf64_Shdr *)s_shdr(&im, ".eh_frame");
    ck_assert_ptr_nonnull(eh);
    fn(&im, eh);
    unwind_table_t *t = unwind_table_new_mem(im.data, im.size, lim);
    ck_assert_ptr_nonnull(t);
    unwind_table_summary(t, sum);
    free(im.data);
    s_check_sorted(t);
    return t;
}

/* offset of the n-th FDE in .eh_frame (walking valid lengths) */
static size_t s_fde(const image_t *im, const Elf64_Shdr *eh, int n)
{
    size_t off = 0;
    for (;;) {
        uint32_t len, id;
        memcpy(&len, im->data + eh->sh_offset + off, 4);
        memcpy(&id, im->data + eh->sh_offset + off + 4, 4);
        if (id != 0 && n-- == 0)
            return off;
        off += 4 + len;
    }
}

static void s_truncate(image_t *im, Elf64_Shdr *eh)
{
    (void)im;
    eh->sh_size = eh->sh_size / 2 + 3;          /* cut mid-record */
}

static void s_cie_loop(image_t *im, Elf64_Shdr *eh)
{
    /* the first FDEs point at themselves, then at the next FDE */
    for (int i = 0; i < 3; i++) {
        size_t off = s_fde(im, eh, i);
        uint32_t self = 4;
        memcpy(im->data + eh->sh_offset + off + 4, &self, 4);
    }
    size_t off = s_fde(im, eh, 3), next = s_fde(im, eh, 4);
    uint32_t back = (uint32_t)(off + 4 - next);  /* "backwards" to next */
    memcpy(im->data + eh->sh_offset + off + 4, &back, 4);
}

static void s_absurd_length(image_t *im, Elf64_Shdr *eh)
{
    size_t off = s_fde(im, eh, 10);
    uint32_t huge = 0xfffffff0u;
    memcpy(im->data + eh->sh_offset + off, &huge, 4);
}

static void s_bad_opcode(image_t *im, Elf64_Shdr *eh)
{
    /* the first FDE with instructions: its first one becomes 0x3f */
    for (int i = 0;; i++) {
        size_t off = s_fde(im, eh, i);
        uint32_t len;
        memcpy(&len, im->data + eh->sh_offset + off, 4);
        /* len id(4) pc(4) range(4) auglen(1) insns... (zR, sdata4) */
        if (len > 13) {
            im->data[eh->sh_offset + off + 4 + 13] = 0x3f;
            return;
        }
    }
}

static void s_nothing(image_t *im, Elf64_Shdr *eh)
{
    (void)im;
    (void)eh;
}

static void s_no_cfi(image_t *im, Elf64_Shdr *eh)
{
    (void)im;
    eh->sh_name = 0;                            /* nameless now */
    Elf64_Shdr *df = (Elf64_Shdr *)s_shdr(im, ".debug_frame");
    if (df)
        df->sh_name = 0;
}

START_TEST(test_hostile)
{
    unwind_summary_t whole, sum;
    unwind_table_t *t = s_mutated(s_nothing, NULL, &whole);
    unwind_table_destroy(&t);

    t = s_mutated(s_truncate, NULL, &sum);
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_TRUNCATED], 1);
    ck_assert_uint_gt(sum.rows, whole.rows / 4);
    ck_assert_uint_lt(sum.rows, whole.rows);
    unwind_table_destroy(&t);

    t = s_mutated(s_cie_loop, NULL, &sum);
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_BAD_CIE], 4);
    ck_assert_uint_eq(sum.fdes_used, whole.fdes_used - 4);
    unwind_table_destroy(&t);

    t = s_mutated(s_absurd_length, NULL, &sum);
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_TRUNCATED], 1);
    ck_assert_uint_le(sum.fdes, 11);            /* the framing ends there */
    unwind_table_destroy(&t);

    t = s_mutated(s_bad_opcode, NULL, &sum);
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_OPCODE], 1);
    ck_assert_uint_eq(sum.fdes_used, whole.fdes_used - 1);
    unwind_table_destroy(&t);

    unwind_limits_t lim = { .max_rows = 100 };
    t = s_mutated(s_nothing, &lim, &sum);
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_LIMIT], 1);
    ck_assert_uint_le(sum.rows, 100);
    unwind_table_destroy(&t);

    lim = (unwind_limits_t){ .max_fdes = 50 };
    t = s_mutated(s_nothing, &lim, &sum);
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_LIMIT], 1);
    ck_assert_uint_eq(sum.fdes, 50);
    unwind_table_destroy(&t);

    lim = (unwind_limits_t){ .max_section_bytes = 1024 };
    t = s_mutated(s_nothing, &lim, &sum);
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_SECTION], 1);
    ck_assert_uint_eq(sum.rows, 0);
    unwind_table_destroy(&t);

    t = s_mutated(s_no_cfi, NULL, &sum);
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_NO_CFI], 1);
    ck_assert_ptr_null(unwind_table_lookup(t, 0x27000));
    unwind_table_destroy(&t);

    /* not ELF, empty, NULL */
    t = unwind_table_new_mem("not an elf file at all, just text....", 36,
                             NULL);
    unwind_table_summary(t, &sum);
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_NOT_ELF], 1);
    ck_assert_uint_eq(sum.rows, 0);
    unwind_table_destroy(&t);
    t = unwind_table_new_mem(NULL, 0, NULL);
    unwind_table_summary(t, &sum);
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_NOT_ELF], 1);
    unwind_table_destroy(&t);
    t = unwind_table_new_fd(-1, NULL);
    unwind_table_summary(t, &sum);
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_NOT_ELF], 1);
    unwind_table_destroy(&t);
}
END_TEST

/* ------------------------------------------------------ synthetic CFI */

#define FN_PC 0x1000
#define FN_LEN 0x40

/* An ELF file whose .eh_frame is one x86-64 CIE (augmentation "", so
 * FDE pointers are 8-byte absolute) and one FDE for [FN_PC, FN_PC+FN_LEN)
 * running insns. */
static unwind_table_t *s_synthetic(const uint8_t *insns, size_t n,
                                   unwind_summary_t *sum)
{
    static uint8_t img[4096];
    memset(img, 0, sizeof img);
    size_t eh = 64, off = eh;
    /* CIE: len, id 0, v1, "", code 1, data -8, ra 16,
       def_cfa rsp+8, offset ra at cfa-8; padded with nops */
    static const uint8_t cie[] = { 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0x78,
                                   16, 0x0c, 7, 8, 0x90, 1, 0, 0 };
    memcpy(img + off, cie, sizeof cie);
    off += sizeof cie;
    size_t fde = off;
    uint32_t len = (uint32_t)(4 + 16 + n), cie_ptr = (uint32_t)(fde + 4 - eh);
    uint64_t pc = FN_PC, range = FN_LEN;
    memcpy(img + off, &len, 4);
    memcpy(img + off + 4, &cie_ptr, 4);
    memcpy(img + off + 8, &pc, 8);
    memcpy(img + off + 16, &range, 8);
    ck_assert_uint_lt(n, 1024);
    memcpy(img + off + 24, insns, n);
    off += 4 + len;
    memset(img + off, 0, 4);                    /* terminator */
    off += 4;
    size_t eh_len = off - eh;
    static const char names[] = "\0.shstrtab\0.eh_frame";
    size_t str = off;
    memcpy(img + str, names, sizeof names);
    off = (str + sizeof names + 7) & ~(size_t)7;
    Elf64_Ehdr *h = (Elf64_Ehdr *)img;
    memcpy(h->e_ident, ELFMAG, SELFMAG);
    h->e_ident[EI_CLASS] = ELFCLASS64;
    h->e_ident[EI_DATA] = ELFDATA2LSB;
    h->e_ident[EI_VERSION] = EV_CURRENT;
    h->e_type = ET_DYN;
    h->e_machine = EM_X86_64;
    h->e_ehsize = sizeof *h;
    h->e_shentsize = sizeof(Elf64_Shdr);
    h->e_shnum = 3;
    h->e_shstrndx = 1;
    h->e_shoff = off;
    Elf64_Shdr *sh = (Elf64_Shdr *)(img + off);
    sh[1] = (Elf64_Shdr){ .sh_name = 1, .sh_type = SHT_STRTAB,
                          .sh_offset = str, .sh_size = sizeof names };
    sh[2] = (Elf64_Shdr){ .sh_name = 11, .sh_type = SHT_PROGBITS,
                          .sh_addr = 0x2000, .sh_offset = eh,
                          .sh_size = eh_len };
    off += 3 * sizeof *sh;
    unwind_table_t *t = unwind_table_new_mem(img, off, NULL);
    ck_assert_ptr_nonnull(t);
    unwind_table_summary(t, sum);
    s_check_sorted(t);
    return t;
}

static void s_expect(const unwind_table_t *t, uint64_t pc, int kind,
                     int off, int rbp_kind, int rbp_off)
{
    const unwind_row_t *r = unwind_table_lookup(t, pc);
    if (kind == UNWIND_CFA_NONE) {
        ck_assert_ptr_null(r);
        return;
    }
    ck_assert_msg(r, "no row at %#lx", (unsigned long)pc);
    ck_assert_int_eq(r->cfa_kind, kind);
    ck_assert_int_eq(r->cfa_off, off);
    ck_assert_int_eq(r->rbp_kind, rbp_kind);
    ck_assert_int_eq(r->rbp_off, rbp_off);
}

START_TEST(test_synthetic_rules)
{
    unwind_summary_t sum;
    /* push rbp; mov rsp,rbp; ... remember; leave-like; restore */
    static const uint8_t fp[] = {
        0x41, 0x0e, 16, 0x86, 2,        /* +1: cfa rsp+16, rbp at cfa-16 */
        0x43, 0x0d, 6,                  /* +4: cfa rbp+16 */
        0x0a,                           /* remember */
        0x48, 0x0c, 7, 8, 0xc6,         /* +12: cfa rsp+8, restore rbp */
        0x41, 0x0b,                     /* +13: back to rbp+16 */
    };
    unwind_table_t *t = s_synthetic(fp, sizeof fp, &sum);
    ck_assert_uint_eq(sum.fdes_used, 1);
    s_expect(t, FN_PC - 1, UNWIND_CFA_NONE, 0, 0, 0);
    s_expect(t, FN_PC, UNWIND_CFA_RSP, 8, UNWIND_RBP_SAME, 0);
    s_expect(t, FN_PC + 1, UNWIND_CFA_RSP, 16, UNWIND_RBP_AT_CFA, -16);
    s_expect(t, FN_PC + 4, UNWIND_CFA_RBP, 16, UNWIND_RBP_AT_CFA, -16);
    s_expect(t, FN_PC + 12, UNWIND_CFA_RSP, 8, UNWIND_RBP_SAME, 0);
    s_expect(t, FN_PC + 13, UNWIND_CFA_RBP, 16, UNWIND_RBP_AT_CFA, -16);
    s_expect(t, FN_PC + FN_LEN - 1, UNWIND_CFA_RBP, 16, UNWIND_RBP_AT_CFA,
             -16);
    s_expect(t, FN_PC + FN_LEN, UNWIND_CFA_NONE, 0, 0, 0);
    ck_assert_uint_eq(unwind_table_rows(t, NULL), 6);
    unwind_table_destroy(&t);

    /* the PLT0-style expression after 6 bytes (lit11 threshold) */
    static const uint8_t plt[] = {
        0x0e, 16, 0x46, 0x0e, 24, 0x4a, 0x0f, 11,
        0x77, 8, 0x80, 0, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22,
    };
    t = s_synthetic(plt, sizeof plt, &sum);
    s_expect(t, FN_PC, UNWIND_CFA_RSP, 16, UNWIND_RBP_SAME, 0);
    s_expect(t, FN_PC + 6, UNWIND_CFA_RSP, 24, UNWIND_RBP_SAME, 0);
    s_expect(t, FN_PC + 16, UNWIND_CFA_PLT, 8, UNWIND_RBP_SAME, 11);
    unwind_table_destroy(&t);

    /* the signal trampoline: CFA = *(rsp+160), rbp at rsp+120, rip at
       rsp+168 */
    static const uint8_t sig[] = {
        0x0f, 4, 0x77, 0xa0, 0x01, 0x06,
        0x10, 6, 3, 0x77, 0xf8, 0x00,
        0x10, 16, 3, 0x77, 0xa8, 0x01,
    };
    t = s_synthetic(sig, sizeof sig, &sum);
    s_expect(t, FN_PC, UNWIND_CFA_SIGNAL, 160, UNWIND_RBP_AT_RSP, 120);
    unwind_table_destroy(&t);

    /* ld.so's _dl_runtime_resolve_xsavec: entered with the PLT's two
       pushes (CFA rsp+24), push rbx (rbx at CFA-32), then CFA on rbx
       while rsp is realigned; a later push rbx at CFA-64 is out of the
       encodable slots (lost) */
    static const uint8_t rbx[] = {
        0x0e, 24, 0x41, 0x0e, 32, 0x83, 4,
        0x43, 0x0d, 3,
        0x48, 0x83, 8,
    };
    t = s_synthetic(rbx, sizeof rbx, &sum);
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_REGISTER], 0);
    s_expect(t, FN_PC, UNWIND_CFA_RSP, 24, UNWIND_RBP_SAME, 0);
    ck_assert_uint_eq(unwind_table_lookup(t, FN_PC)->rbx_rule,
                      UNWIND_RBX_SAME);
    s_expect(t, FN_PC + 1, UNWIND_CFA_RSP, 32, UNWIND_RBP_SAME, 0);
    ck_assert_uint_eq(unwind_table_lookup(t, FN_PC + 1)->rbx_rule, 3);
    s_expect(t, FN_PC + 4, UNWIND_CFA_RBX, 32, UNWIND_RBP_SAME, 0);
    ck_assert_uint_eq(unwind_table_lookup(t, FN_PC + 4)->rbx_rule, 3);
    ck_assert_uint_eq(unwind_table_lookup(t, FN_PC + 12)->rbx_rule,
                      UNWIND_RBX_UNKNOWN);
    unwind_table_destroy(&t);

    /* a CFA on r10 (as in glibc's setcontext): no row, counted */
    static const uint8_t r10[] = { 0x41, 0x0c, 10, 0 };
    t = s_synthetic(r10, sizeof r10, &sum);
    s_expect(t, FN_PC, UNWIND_CFA_RSP, 8, UNWIND_RBP_SAME, 0);
    s_expect(t, FN_PC + 1, UNWIND_CFA_NONE, 0, 0, 0);
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_REGISTER], 1);
    unwind_table_destroy(&t);

    /* _start: RA undefined ends the walk, not an error */
    static const uint8_t start[] = { 0x07, 16 };
    t = s_synthetic(start, sizeof start, &sum);
    s_expect(t, FN_PC, UNWIND_CFA_NONE, 0, 0, 0);
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_REGISTER], 0);
    unwind_table_destroy(&t);

    /* bad programs: the FDE is dropped, the reason counted */
    static const struct { uint8_t insns[40]; size_t n; int err; } bad[] = {
        { { 0x0b }, 1, UNWIND_ERR_STATE },           /* restore, empty */
        { { 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
            0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a }, 17,
          UNWIND_ERR_STATE },                         /* 17 remembers */
        { { 0x02, 0x41 }, 2, UNWIND_ERR_STATE },      /* past the end */
        { { 0x3f }, 1, UNWIND_ERR_OPCODE },
        { { 0x0e }, 1, UNWIND_ERR_TRUNCATED },        /* no operand */
        { { 0x0e, 0x80, 0x80 }, 3, UNWIND_ERR_TRUNCATED },
        { { 0x0f, 30, 0x77 }, 3, UNWIND_ERR_TRUNCATED }, /* block > rest */
        { { 0x10, 6, 0xff, 0xff, 0xff, 0xff, 0x0f }, 7,
          UNWIND_ERR_TRUNCATED },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = s_synthetic(bad[i].insns, bad[i].n, &sum);
        ck_assert_msg(sum.errors[bad[i].err] == 1, "case %zu", i);
        ck_assert_uint_eq(sum.fdes_used, 0);
        ck_assert_uint_eq(unwind_table_rows(t, NULL), 0);
        unwind_table_destroy(&t);
    }

    /* an absurd offset saturates and is refused, without overflow */
    static const uint8_t huge[] = { 0x11, 6, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0xff, 0x00,
                                    0x0e, 0xff, 0xff, 0xff, 0xff, 0x0f };
    t = s_synthetic(huge, sizeof huge, &sum);
    ck_assert_ptr_null(unwind_table_lookup(t, FN_PC));
    ck_assert_uint_eq(sum.errors[UNWIND_ERR_REGISTER], 1);
    unwind_table_destroy(&t);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("unwind_table");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_libc);
    tcase_add_loop_test(tc, test_program_built_here, 0, 3);
    tcase_add_test(tc, test_llvm_size_and_time);
    tcase_add_test(tc, test_hostile);
    tcase_add_test(tc, test_synthetic_rules);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
