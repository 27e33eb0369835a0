/* Symbolizer library tests: real ELF files built with gcc during the test,
 * their expected function offsets computed independently from the ELF
 * (libelf in this file), separate debug files, perf maps, kallsyms,
 * demangling, bad input and the cache bound. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include "symbolizer/demangle.h"
#include "symbolizer/symbolize.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers */

static void
s_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
s_run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "command failed (%d): %s", rc, cmd);
}

/* The file offset of a link-time address, through the PT_LOAD segment
 * holding it: 0, or -1 when none does. */
static int
s_vaddr_offset(Elf *elf, uint64_t vaddr, uint64_t *off)
{
    size_t nph = 0;
    elf_getphdrnum(elf, &nph);
    for (size_t j = 0; j < nph; j++) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, (int)j, &ph) && ph.p_type == PT_LOAD &&
            vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz) {
            *off = vaddr - ph.p_vaddr + ph.p_offset;
            return 0;
        }
    }
    return -1;
}

/* Independent reference: the file offset of a function, from its symbol
 * value and the PT_LOAD segment holding it. */
static int
s_elf_func_offset(Elf *elf, const char *name, uint64_t *off, uint64_t *size)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) ||
            (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        for (size_t i = 0; d && i < d->d_size / sh.sh_entsize; i++) {
            GElf_Sym sym;
            gelf_getsym(d, (int)i, &sym);
            const char *n = elf_strptr(elf, sh.sh_link, sym.st_name);
            if (!n || strcmp(n, name) != 0 || sym.st_value == 0)
                continue;
            if (s_vaddr_offset(elf, sym.st_value, off) == 0) {
                *size = sym.st_size;
                return 0;
            }
        }
    }
    return -1;
}

static uint64_t
s_func_offset(const char *path, const char *name, uint64_t *size)
{
    uint64_t off = 0, sz = 0;
    elf_version(EV_CURRENT);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    ck_assert_ptr_nonnull(elf);
    int rc = s_elf_func_offset(elf, name, &off, &sz);
    elf_end(elf);
    close(fd);
    ck_assert_msg(rc == 0, "%s not found in %s", name, path);
    if (size)
        *size = sz;
    return off;
}

static size_t
s_build_id(const char *path, uint8_t *out)
{
    size_t len = 0;
    elf_version(EV_CURRENT);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    Elf_Scn *scn = NULL;
    while (!len && (scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        GElf_Nhdr nh;
        size_t o = 0, no, dof, next;
        while (d && (next = gelf_getnote(d, o, &nh, &no, &dof)) > 0) {
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_descsz <= 64) {
                memcpy(out, (char *)d->d_buf + dof, nh.n_descsz);
                len = nh.n_descsz;
                break;
            }
            o = next;
        }
    }
    elf_end(elf);
    close(fd);
    return len;
}

static const char *s_prog_src =
    "#include <stdio.h>\n"
    "__attribute__((noinline,used)) static int skyt_hidden(int x)"
    " { for (int i = 0; i < x; i++) x ^= i * 7; return x; }\n"
    "__attribute__((noinline)) int skyt_alpha(int x)"
    " { return skyt_hidden(x) + 1; }\n"
    "__attribute__((noinline)) int skyt_beta(int x)"
    " { return skyt_alpha(x) * 3 + skyt_hidden(x + 1); }\n"
    "int main(int argc, char **argv)"
    " { (void)argv; printf(\"%d\\n\", skyt_beta(argc)); return 0; }\n";

static const char *s_lib_src =
    "__attribute__((noinline)) int skyt_lib_one(int x)"
    " { return x * 11 + 1; }\n"
    "__attribute__((noinline)) int skyt_lib_two(int x)"
    " { return skyt_lib_one(x) - 4; }\n";

static void
s_obj(wire_object_t *obj, uint8_t type, const char *path)
{
    memset(obj, 0, sizeof(*obj));
    obj->type = type;
    obj->path = path;
    obj->pid = 0;
}

static symbolizer_t *
s_new(const char *debug_dirs, uint64_t cache_size)
{
    symbolizer_opts_t o;
    symbolizer_opts_default(&o);
    o.debug_dirs = debug_dirs ? debug_dirs : "";
    if (cache_size)
        o.cache_size = cache_size;
    symbolizer_t *s = symbolizer_new(&o);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* Asserts obj+offset resolves to want with the given frame type, both at
 * the function's first byte and inside it. */
static void
s_expect(symbolizer_t *s, const wire_object_t *obj, uint64_t off,
         uint64_t size, const char *want, uint8_t want_type)
{
    const char *name;
    uint8_t type;
    int rc = symbolizer_resolve_user(s, obj, 0, off, &name, &type);
    ck_assert_msg(rc == 0, "%s+0x%" PRIx64 ": unresolved (%s), want %s",
                  obj->path, off, name, want);
    ck_assert_str_eq(name, want);
    ck_assert_int_eq(type, want_type);
    if (size > 2) {
        rc = symbolizer_resolve_user(s, obj, 0, off + size / 2, &name, &type);
        ck_assert_int_eq(rc, 0);
        ck_assert_str_eq(name, want);
    }
}

static void
s_expect_unknown(symbolizer_t *s, const wire_object_t *obj, uint64_t off)
{
    const char *name;
    uint8_t type;
    char want[4200];
    int rc = symbolizer_resolve_user(s, obj, 0, off, &name, &type);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(type, WIRE_FRAME_UNKNOWN);
    snprintf(want, sizeof(want), "%s+0x%" PRIx64,
             obj->path && obj->path[0] ? obj->path : "[anon]", off);
    ck_assert_str_eq(name, want);
}

/* Builds prog.c in dir with extra gcc flags into dir/name. */
static void
s_build_prog(const char *dir, const char *name, const char *flags)
{
    char src[512];
    snprintf(src, sizeof(src), "%s/prog.c", dir);
    tu_write_file(src, s_prog_src);
    s_run("gcc -O1 -g -fno-inline -Wl,--build-id %s -o %s/%s %s", flags, dir,
          name, src);
}

/* -------------------------------------------------------------- tests */

static void
s_check_exe(const char *flags)
{
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof(path), "%s/prog", dir);
    s_build_prog(dir, "prog", flags);
    symbolizer_t *s = s_new(NULL, 0);
    wire_object_t obj;
    s_obj(&obj, WIRE_OBJ_EXE, path);
    const char *funcs[] = { "skyt_alpha", "skyt_beta", "skyt_hidden", "main" };
    for (size_t i = 0; i < 4; i++) {
        uint64_t size;
        uint64_t off = s_func_offset(path, funcs[i], &size);
        s_expect(s, &obj, off, size, funcs[i], WIRE_FRAME_USER);
    }
    /* An offset past every segment is unknown, not a wrong name. */
    s_expect_unknown(s, &obj, 0x7fffffff);
    symbolizer_stats_t st;
    symbolizer_get_stats(s, &st);
    ck_assert_uint_eq(st.cache_misses, 1);   /* loaded once, then cached */
    ck_assert_uint_ge(st.cache_hits, 7);
    symbolizer_destroy(&s);
    ck_assert_ptr_null(s);
    tu_rmtree(dir);
    free(dir);
}

START_TEST(test_pie_executable)
{
    s_check_exe("-fPIE -pie");
}
END_TEST

START_TEST(test_non_pie_executable)
{
    s_check_exe("-fno-pie -no-pie");
}
END_TEST

START_TEST(test_shared_library)
{
    char *dir = tu_mkdtemp();
    char src[512], path[512];
    snprintf(src, sizeof(src), "%s/lib.c", dir);
    snprintf(path, sizeof(path), "%s/libskyt.so", dir);
    tu_write_file(src, s_lib_src);
    s_run("gcc -O1 -shared -fPIC -Wl,--build-id -o %s %s", path, src);
    symbolizer_t *s = s_new(NULL, 0);
    wire_object_t obj;
    s_obj(&obj, WIRE_OBJ_LIB, path);
    /* Seen through our own /proc/PID/root, and verified by build-id. */
    obj.pid = (uint32_t)getpid();
    obj.build_id_len = (uint8_t)s_build_id(path, obj.build_id);
    ck_assert_uint_gt(obj.build_id_len, 0);
    uint64_t size, off = s_func_offset(path, "skyt_lib_one", &size);
    s_expect(s, &obj, off, size, "skyt_lib_one", WIRE_FRAME_LIB);
    off = s_func_offset(path, "skyt_lib_two", &size);
    s_expect(s, &obj, off, size, "skyt_lib_two", WIRE_FRAME_LIB);

    /* The same file used by another (exited) process hits the cache:
     * keyed by build-id, shared across processes. */
    symbolizer_stats_t before, after;
    symbolizer_get_stats(s, &before);
    obj.pid = 0x7ffffff0;   /* no such process: host path is used */
    s_expect(s, &obj, off, size, "skyt_lib_two", WIRE_FRAME_LIB);
    symbolizer_get_stats(s, &after);
    ck_assert_uint_eq(after.cache_misses, before.cache_misses);
    symbolizer_destroy(&s);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_stripped_with_debuglink)
{
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof(path), "%s/prog", dir);
    s_build_prog(dir, "prog", "-fPIE -pie");
    uint64_t hsize, hidden = s_func_offset(path, "skyt_hidden", &hsize);
    uint64_t asize, alpha = s_func_offset(path, "skyt_alpha", &asize);
    /* Debug file in the binary's .debug/ directory; the name differs from
     * the binary's so only the debuglink can lead there. */
    s_run("cd %s && mkdir .debug && objcopy --only-keep-debug prog "
          ".debug/prog.dbg && strip --strip-all prog && "
          "objcopy --add-gnu-debuglink=.debug/prog.dbg prog", dir);

    /* Without the debug file the stripped binary still has .dynsym only
     * for exported symbols; the static function is unknown. */
    char moved[512], orig[512];
    snprintf(orig, sizeof(orig), "%s/.debug/prog.dbg", dir);
    snprintf(moved, sizeof(moved), "%s/prog.dbg.away", dir);
    ck_assert_int_eq(rename(orig, moved), 0);
    symbolizer_t *s = s_new(NULL, 0);
    wire_object_t obj;
    s_obj(&obj, WIRE_OBJ_EXE, path);
    s_expect_unknown(s, &obj, hidden);
    symbolizer_destroy(&s);

    ck_assert_int_eq(rename(moved, orig), 0);
    s = s_new(NULL, 0);
    s_expect(s, &obj, hidden, hsize, "skyt_hidden", WIRE_FRAME_USER);
    s_expect(s, &obj, alpha, asize, "skyt_alpha", WIRE_FRAME_USER);
    symbolizer_destroy(&s);

    /* A file with the right name but other content fails the CRC. */
    tu_write_file(orig, "not the debug file\n");
    s = s_new(NULL, 0);
    s_expect_unknown(s, &obj, hidden);
    symbolizer_destroy(&s);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* The file offset of the ELF entry point (e_entry) of path. */
static uint64_t
s_entry_offset(const char *path)
{
    elf_version(EV_CURRENT);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    ck_assert_ptr_nonnull(elf);
    GElf_Ehdr eh;
    ck_assert_ptr_nonnull(gelf_getehdr(elf, &eh));
    uint64_t off = 0;
    int rc = s_vaddr_offset(elf, eh.e_entry, &off);
    elf_end(elf);
    close(fd);
    ck_assert_msg(rc == 0, "%s: entry in no segment", path);
    return off;
}

/* A stack taken before main ends in the program's or the loader's entry
 * code, which stripped files (and Debian's ld.so) do not name: it is
 * called _start there, and only there (not in other libraries, and not
 * past the entry code). */
START_TEST(test_entry_point_named)
{
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof(path), "%s/prog", dir);
    s_build_prog(dir, "prog", "-fPIE -pie");
    s_run("strip --strip-all %s", path);
    symbolizer_t *s = s_new(NULL, 0);
    const char *name;
    uint8_t type;
    wire_object_t obj;
    s_obj(&obj, WIRE_OBJ_EXE, path);
    uint64_t entry = s_entry_offset(path);
    s_expect(s, &obj, entry, 0, "_start", WIRE_FRAME_USER);
    s_expect(s, &obj, entry + 0x10, 0, "_start", WIRE_FRAME_USER);
    symbolizer_resolve_user(s, &obj, 0, entry + 64, &name, &type);
    ck_assert_str_ne(name, "_start");

    char ld[PATH_MAX], libc[PATH_MAX];
    ck_assert_ptr_nonnull(realpath("/lib64/ld-linux-x86-64.so.2", ld));
    s_obj(&obj, WIRE_OBJ_LIB, ld);
    entry = s_entry_offset(ld);
    /* The return address after RTLD_START's call of _dl_start. */
    s_expect(s, &obj, entry + 8, 0, "_start", WIRE_FRAME_LIB);

    ck_assert_ptr_nonnull(realpath("/lib/x86_64-linux-gnu/libc.so.6", libc));
    s_obj(&obj, WIRE_OBJ_LIB, libc);
    symbolizer_resolve_user(s, &obj, 0, s_entry_offset(libc), &name, &type);
    ck_assert_str_ne(name, "_start");
    symbolizer_destroy(&s);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_debug_file_by_build_id)
{
    char *dir = tu_mkdtemp();
    char path[512], dbgroot[512];
    snprintf(path, sizeof(path), "%s/prog", dir);
    snprintf(dbgroot, sizeof(dbgroot), "%s/debugroot", dir);
    s_build_prog(dir, "prog", "-fno-pie -no-pie");
    uint64_t hsize, hidden = s_func_offset(path, "skyt_hidden", &hsize);
    uint8_t id[64];
    size_t idlen = s_build_id(path, id);
    ck_assert_uint_ge(idlen, 2);
    char hex[129];
    for (size_t i = 0; i < idlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    s_run("cd %s && mkdir -p debugroot/.build-id/%.2s && "
          "objcopy --only-keep-debug prog debugroot/.build-id/%.2s/%s.debug "
          "&& strip --strip-all prog", dir, hex, hex, hex + 2);

    wire_object_t obj;
    s_obj(&obj, WIRE_OBJ_EXE, path);
    memcpy(obj.build_id, id, idlen);
    obj.build_id_len = (uint8_t)idlen;
    /* Several roots, the right one not first. */
    char dirs[1200];
    snprintf(dirs, sizeof(dirs), "/nonexistent::%s", dbgroot);
    symbolizer_t *s = s_new(dirs, 0);
    s_expect(s, &obj, hidden, hsize, "skyt_hidden", WIRE_FRAME_USER);
    symbolizer_destroy(&s);

    s = s_new("/nonexistent", 0);
    s_expect_unknown(s, &obj, hidden);
    symbolizer_destroy(&s);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_perf_map)
{
    /* A pid no real process has, so we own its map file name. */
    uint32_t nspid = 3999000 + (uint32_t)(getpid() % 1000);
    char map[128];
    snprintf(map, sizeof(map), "/tmp/perf-%u.map", nspid);
    tu_write_file(map, "7f0000001000 100 LazyCompile:*fib /app/x.js:3\n"
                 "0x7f0000001200 0x80 Interpreter\n"
                 "garbage line\n"
                 "7f0000002000 40 java.lang.String::hashCode\n");
    symbolizer_t *s = s_new(NULL, 0);
    wire_object_t obj;
    /* As the collector names it: the map's path inside the process,
     * read through /proc/PID/root. */
    s_obj(&obj, WIRE_OBJ_JIT, map);
    obj.pid = (uint32_t)getpid();
    const char *name;
    uint8_t type;
    ck_assert_int_eq(symbolizer_resolve_user(s, &obj, nspid, 0x7f0000001010,
                                             &name, &type), 0);
    ck_assert_str_eq(name, "LazyCompile:*fib /app/x.js:3");
    ck_assert_int_eq(type, WIRE_FRAME_JIT);
    ck_assert_int_eq(symbolizer_resolve_user(s, &obj, nspid, 0x7f000000127f,
                                             &name, &type), 0);
    ck_assert_str_eq(name, "Interpreter");
    ck_assert_int_eq(symbolizer_resolve_user(s, &obj, nspid, 0x7f0000002000,
                                             &name, &type), 0);
    ck_assert_str_eq(name, "java.lang.String::hashCode");
    /* Between entries: unknown. */
    ck_assert_int_eq(symbolizer_resolve_user(s, &obj, nspid, 0x7f0000001180,
                                             &name, &type), -1);
    ck_assert_int_eq(type, WIRE_FRAME_UNKNOWN);

    /* The JIT compiles more code: the map grows and a miss re-reads it. */
    FILE *f = fopen(map, "a");
    ck_assert_ptr_nonnull(f);
    fputs("7f0000003000 20 LazyCompile:*later /app/x.js:9\n", f);
    fclose(f);
    ck_assert_int_eq(symbolizer_resolve_user(s, &obj, nspid, 0x7f0000003008,
                                             &name, &type), 0);
    ck_assert_str_eq(name, "LazyCompile:*later /app/x.js:9");
    symbolizer_stats_t st;
    symbolizer_get_stats(s, &st);
    ck_assert_uint_eq(st.perfmap_reloads, 1);
    symbolizer_destroy(&s);

    /* No path from the collector: the name comes from the namespace pid. */
    s = s_new(NULL, 0);
    s_obj(&obj, WIRE_OBJ_JIT, "[anon:jit]");
    obj.pid = (uint32_t)getpid();
    ck_assert_int_eq(symbolizer_resolve_user(s, &obj, nspid, 0x7f0000001010,
                                             &name, &type), 0);
    ck_assert_str_eq(name, "LazyCompile:*fib /app/x.js:3");
    symbolizer_destroy(&s);

    /* A host process that exited (no /proc/PID any more): its map is
     * still at the same host path. */
    s = s_new(NULL, 0);
    s_obj(&obj, WIRE_OBJ_JIT, map);
    obj.pid = nspid;
    ck_assert_int_eq(symbolizer_resolve_user(s, &obj, 0, 0x7f0000002004,
                                             &name, &type), 0);
    ck_assert_str_eq(name, "java.lang.String::hashCode");
    symbolizer_destroy(&s);
    unlink(map);
}
END_TEST

START_TEST(test_demangle_names)
{
    struct { const char *in, *out; } cases[] = {
        { "_ZN3foo3barEi", "foo::bar(int)" },
        { "_ZNSt6vectorIiSaIiEE9push_backERKi",
          "std::vector<int, std::allocator<int> >::push_back(int const&)" },
        /* Rust legacy: the hash suffix goes. */
        { "_ZN4core3fmt5write17h0123456789abcdefE", "core::fmt::write" },
        { "_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$"
          "17h5d9c5bd2c5ab8eccE", "std::rt::lang_start::{{closure}}" },
        /* Rust v0. */
        { "_RNvCs1234_7mycrate3foo", "mycrate::foo" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *d = sym_demangle(cases[i].in);
        ck_assert_msg(d != NULL, "%s did not demangle", cases[i].in);
        ck_assert_str_eq(d, cases[i].out);
        free(d);
    }
    ck_assert_ptr_null(sym_demangle("main"));
    ck_assert_ptr_null(sym_demangle("_Zgarbage"));
}
END_TEST

START_TEST(test_cxx_library_demangled)
{
    char *dir = tu_mkdtemp();
    char src[512], path[512];
    snprintf(src, sizeof(src), "%s/lib.cc", dir);
    snprintf(path, sizeof(path), "%s/libcxx.so", dir);
    tu_write_file(src, "namespace skyt { struct Shape {\n"
                 "  __attribute__((noinline)) int area(int w, int h) const;\n"
                 "}; int Shape::area(int w, int h) const { return w * h; } }\n"
                 "__attribute__((noinline)) int skyt_over(double d)"
                 " { return (int)d; }\n");
    s_run("g++ -O1 -shared -fPIC -o %s %s", path, src);
    symbolizer_t *s = s_new(NULL, 0);
    wire_object_t obj;
    s_obj(&obj, WIRE_OBJ_LIB, path);
    uint64_t size, off = s_func_offset(path, "_ZNK4skyt5Shape4areaEii", &size);
    s_expect(s, &obj, off, size, "skyt::Shape::area(int, int) const",
             WIRE_FRAME_LIB);
    off = s_func_offset(path, "_Z9skyt_overd", &size);
    s_expect(s, &obj, off, size, "skyt_over(double)", WIRE_FRAME_LIB);
    symbolizer_destroy(&s);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* Our own vdso image and its size (from /proc/self/maps). */
static const void *
s_vdso(size_t *size)
{
    const void *image = (const void *)(uintptr_t)getauxval(AT_SYSINFO_EHDR);
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    *size = 0;
    while (image && f && fgets(line, sizeof(line), f)) {
        unsigned long a, b;
        if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &a, &b) == 2 &&
            a == (uintptr_t)image)
            *size = b - a;
    }
    if (f)
        fclose(f);
    return *size ? image : NULL;
}

static int
s_vdso_func(uint64_t *off, uint64_t *size)
{
    size_t len;
    const void *image = s_vdso(&len);
    if (!image)
        return -1;
    elf_version(EV_CURRENT);
    Elf *elf = elf_memory((char *)(uintptr_t)image, len);
    if (!elf)
        return -1;
    int rc = s_elf_func_offset(elf, "__vdso_clock_gettime", off, size);
    elf_end(elf);
    return rc;
}

START_TEST(test_vdso)
{
    uint64_t off, size;
    ck_assert_int_eq(s_vdso_func(&off, &size), 0);
    symbolizer_t *s = s_new(NULL, 0);
    wire_object_t obj;
    s_obj(&obj, WIRE_OBJ_VDSO, "[vdso]");
    obj.pid = (uint32_t)getpid();
    const char *name;
    uint8_t type;
    ck_assert_int_eq(symbolizer_resolve_user(s, &obj, 0, off, &name, &type), 0);
    /* clock_gettime is a weak alias of the same code; either name is the
     * function. */
    ck_assert_msg(strstr(name, "clock_gettime") != NULL, "got %s", name);
    ck_assert_int_eq(type, WIRE_FRAME_LIB);
    symbolizer_destroy(&s);
}
END_TEST

/* Address of a well-known kernel function, 0 when kallsyms hides it. */
static uint64_t
s_kernel_symbol(const char *want)
{
    FILE *f = fopen("/proc/kallsyms", "r");
    char line[512];
    uint64_t addr = 0;
    while (f && fgets(line, sizeof(line), f)) {
        char type, nm[256];
        unsigned long long a;
        if (sscanf(line, "%llx %c %255s", &a, &type, nm) == 3 && a &&
            (type == 'T' || type == 't') && strcmp(nm, want) == 0) {
            addr = a;
            break;
        }
    }
    if (f)
        fclose(f);
    return addr;
}

START_TEST(test_kallsyms_real)
{
    const char *want = "do_sys_openat2";
    uint64_t addr = s_kernel_symbol(want);
    ck_assert_uint_ne(addr, 0);
    symbolizer_t *s = s_new(NULL, 0);
    const char *name;
    uint8_t type;
    ck_assert_int_eq(symbolizer_resolve_kernel(s, addr, &name, &type), 0);
    ck_assert_str_eq(name, want);
    ck_assert_int_eq(type, WIRE_FRAME_KERNEL);
    ck_assert_int_eq(symbolizer_resolve_kernel(s, addr + 4, &name, &type), 0);
    ck_assert_str_eq(name, want);
    symbolizer_destroy(&s);
}
END_TEST

START_TEST(test_kallsyms_file)
{
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof(path), "%s/kallsyms", dir);
    tu_write_file(path, "ffffffff81000000 T _stext\n"
                  "ffffffff81000100 t skyt_local\n"
                  "ffffffff81000200 D skyt_data\n"
                  "ffffffff81000300 T skyt_global\n"
                  "ffffffffc0001000 t skyt_mod_fn\t[skytmod]\n"
                  "ffffffffc0001080 T skyt_mod_fn2\t[skytmod]\n");
    symbolizer_opts_t o;
    symbolizer_opts_default(&o);
    o.kallsyms_path = path;
    symbolizer_t *s = symbolizer_new(&o);
    ck_assert_ptr_nonnull(s);
    const char *name;
    uint8_t type;
    ck_assert_int_eq(symbolizer_resolve_kernel(s, 0xffffffff81000150ull,
                                               &name, &type), 0);
    ck_assert_str_eq(name, "skyt_local");
    /* Data symbols do not end a function: it runs to the next text one. */
    ck_assert_int_eq(symbolizer_resolve_kernel(s, 0xffffffff81000250ull,
                                               &name, &type), 0);
    ck_assert_str_eq(name, "skyt_local");
    ck_assert_int_eq(symbolizer_resolve_kernel(s, 0xffffffffc0001010ull,
                                               &name, &type), 0);
    ck_assert_str_eq(name, "skyt_mod_fn");
    ck_assert_int_eq(symbolizer_resolve_kernel(s, 0xffffffff80000000ull,
                                               &name, &type), -1);
    ck_assert_str_eq(name, "[k] 0xffffffff80000000");
    ck_assert_int_eq(type, WIRE_FRAME_UNKNOWN);
    symbolizer_destroy(&s);

    /* kptr_restrict: every address reads zero. */
    tu_write_file(path, "0000000000000000 T _stext\n"
                  "0000000000000000 T do_sys_openat2\n");
    s = symbolizer_new(&o);
    ck_assert_int_eq(symbolizer_resolve_kernel(s, 0xffffffff81234567ull,
                                               &name, &type), -1);
    ck_assert_str_eq(name, "[k] 0xffffffff81234567");
    ck_assert_int_eq(type, WIRE_FRAME_UNKNOWN);
    symbolizer_destroy(&s);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_bad_input)
{
    char *dir = tu_mkdtemp();
    char prog[512], p[512];
    snprintf(prog, sizeof(prog), "%s/prog", dir);
    s_build_prog(dir, "prog", "-fPIE -pie");
    uint64_t off = s_func_offset(prog, "skyt_alpha", NULL);
    symbolizer_t *s = s_new(NULL, 0);
    wire_object_t obj;
    const char *name;
    uint8_t type;

    /* Truncated copies: inside the headers, and half-way. */
    struct stat st;
    ck_assert_int_eq(stat(prog, &st), 0);
    const long cuts[] = { 10, 100, st.st_size / 2, st.st_size - 1 };
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/trunc%zu", dir, i);
        s_run("head -c %ld %s > %s", cuts[i], prog, p);
        s_obj(&obj, WIRE_OBJ_EXE, p);
        /* Must not crash; a cut past the symbols may still resolve. */
        int rc = symbolizer_resolve_user(s, &obj, 0, off, &name, &type);
        if (rc == 0)
            ck_assert_str_eq(name, "skyt_alpha");
        else
            ck_assert_int_eq(type, WIRE_FRAME_UNKNOWN);
    }
    snprintf(p, sizeof(p), "%s/trunc0", dir);
    s_obj(&obj, WIRE_OBJ_EXE, p);
    s_expect_unknown(s, &obj, off);

    snprintf(p, sizeof(p), "%s/text", dir);
    tu_write_file(p, "#!/bin/sh\necho this is not an ELF file\n");
    s_obj(&obj, WIRE_OBJ_EXE, p);
    s_expect_unknown(s, &obj, 0x10);

    snprintf(p, sizeof(p), "%s/empty", dir);
    tu_write_file(p, "");
    s_obj(&obj, WIRE_OBJ_LIB, p);
    s_expect_unknown(s, &obj, 0);

    /* A FIFO where a binary should be must not block us. */
    snprintf(p, sizeof(p), "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    s_obj(&obj, WIRE_OBJ_LIB, p);
    s_expect_unknown(s, &obj, 0x1000);

    s_obj(&obj, WIRE_OBJ_LIB, dir);              /* a directory */
    s_expect_unknown(s, &obj, 0x1000);
    s_obj(&obj, WIRE_OBJ_LIB, "relative/path.so");
    s_expect_unknown(s, &obj, 0x1000);
    s_obj(&obj, WIRE_OBJ_LIB, "");
    s_expect_unknown(s, &obj, 0x1000);
    s_obj(&obj, WIRE_OBJ_ANON, "[anon]");
    s_expect_unknown(s, &obj, 0x1000);
    s_obj(&obj, 99, prog);                       /* bad object type */
    s_expect_unknown(s, &obj, off);

    /* Right file, wrong build-id: refused. */
    s_obj(&obj, WIRE_OBJ_EXE, prog);
    obj.build_id_len = 20;
    memset(obj.build_id, 0xab, 20);
    s_expect_unknown(s, &obj, off);
    /* Wrong inode without a build-id: refused too. */
    s_obj(&obj, WIRE_OBJ_EXE, prog);
    obj.dev = (uint64_t)st.st_dev;
    obj.ino = (uint64_t)st.st_ino + 1;
    s_expect_unknown(s, &obj, off);
    /* Right inode, device in the kernel's encoding: accepted. */
    obj.ino = (uint64_t)st.st_ino;
    obj.dev = ((uint64_t)major(st.st_dev) << 20) | minor(st.st_dev);
    s_expect(s, &obj, off, 0, "skyt_alpha", WIRE_FRAME_USER);

    /* No object at all. */
    ck_assert_int_eq(symbolizer_resolve_user(s, NULL, 0, 0x1234, &name,
                                             &type), -1);
    ck_assert_str_eq(name, "[unknown] 0x0000000000001234");
    ck_assert_int_eq(type, WIRE_FRAME_UNKNOWN);

    /* A path longer than a wire string still gives a bounded name. */
    char *longp = malloc(5000);
    ck_assert_ptr_nonnull(longp);
    memset(longp, 'a', 4999);
    longp[0] = '/';
    longp[4999] = '\0';
    s_obj(&obj, WIRE_OBJ_LIB, longp);
    ck_assert_int_eq(symbolizer_resolve_user(s, &obj, 0, 1, &name, &type), -1);
    ck_assert_uint_lt(strlen(name), WIRE_MAX_STR);
    free(longp);
    symbolizer_destroy(&s);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* Seeded random corruption of a real binary (headers mostly, where the
 * parser trusts counts and offsets): every lookup returns some bounded
 * name, nothing crashes (the sanitizer build checks our side). */
START_TEST(test_corrupted_elf)
{
    char *dir = tu_mkdtemp();
    char prog[512], bad[512];
    snprintf(prog, sizeof(prog), "%s/prog", dir);
    snprintf(bad, sizeof(bad), "%s/bad", dir);
    s_build_prog(dir, "prog", "-fPIE -pie");
    size_t len;
    char *orig = tu_read_file(prog, &len);
    ck_assert_ptr_nonnull(orig);
    char *buf = malloc(len);
    ck_assert_ptr_nonnull(buf);
    unsigned seed = 20261122;
    for (int it = 0; it < 300; it++) {
        memcpy(buf, orig, len);
        int flips = 1 + rand_r(&seed) % 16;
        for (int k = 0; k < flips; k++) {
            size_t pos = rand_r(&seed) % 2 ? (size_t)rand_r(&seed) % 128
                                           : (size_t)rand_r(&seed) % len;
            buf[pos] = (char)(rand_r(&seed) % 3 ? rand_r(&seed) : 0xff);
        }
        FILE *f = fopen(bad, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
        fclose(f);
        symbolizer_t *s = s_new(NULL, 0);
        wire_object_t obj;
        s_obj(&obj, WIRE_OBJ_EXE, bad);
        for (uint64_t off = 0; off < len; off += 211) {
            const char *name;
            uint8_t type;
            symbolizer_resolve_user(s, &obj, 0, off, &name, &type);
            ck_assert_ptr_nonnull(name);
            ck_assert_uint_gt(strlen(name), 0);
            ck_assert_uint_lt(strlen(name), WIRE_MAX_STR);
            ck_assert_int_le(type, WIRE_FRAME_TYPE_MAX);
        }
        symbolizer_destroy(&s);
    }
    free(buf);
    free(orig);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_negative_cache)
{
    symbolizer_opts_t o;
    symbolizer_opts_default(&o);
    o.debug_dirs = "";
    o.retry_ms = 3600 * 1000;   /* never within this test */
    symbolizer_t *s = symbolizer_new(&o);
    wire_object_t obj;
    s_obj(&obj, WIRE_OBJ_LIB, "/nonexistent/skyt/libgone.so");
    obj.dev = 1;
    obj.ino = 42;
    s_expect_unknown(s, &obj, 0x1000);
    s_expect_unknown(s, &obj, 0x2000);
    symbolizer_stats_t st;
    symbolizer_get_stats(s, &st);
    ck_assert_uint_eq(st.objects_unreadable, 1);   /* tried once */
    ck_assert_uint_eq(st.cache_hits, 1);
    symbolizer_destroy(&s);

    o.retry_ms = 0;             /* retry at once */
    s = symbolizer_new(&o);
    s_expect_unknown(s, &obj, 0x1000);
    s_expect_unknown(s, &obj, 0x2000);
    symbolizer_get_stats(s, &st);
    ck_assert_uint_eq(st.objects_unreadable, 2);
    symbolizer_destroy(&s);
}
END_TEST

static const char *s_libdir = "/usr/lib/x86_64-linux-gnu";

/* Many real objects through a small cache: the bound holds after every
 * lookup, old objects are evicted, and one that alone is larger than the
 * cache is refused instead of breaking the bound. */
START_TEST(test_lru_bound)
{
    DIR *d = opendir(s_libdir);
    ck_assert_ptr_nonnull(d);
    const uint64_t limit = 256 * 1024;
    symbolizer_t *s = s_new(NULL, limit);
    symbolizer_stats_t st;
    struct dirent *de;
    int objects = 0;
    while ((de = readdir(d)) && objects < 60) {
        if (!strstr(de->d_name, ".so"))
            continue;
        char path[1024];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/%s", s_libdir, de->d_name);
        if (lstat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
            continue;
        wire_object_t obj;
        s_obj(&obj, WIRE_OBJ_LIB, path);
        obj.dev = (uint64_t)sb.st_dev;
        obj.ino = (uint64_t)sb.st_ino;
        const char *name;
        uint8_t type;
        for (uint64_t off = 0x1000; off < 0x20000; off += 0x3000)
            symbolizer_resolve_user(s, &obj, 0, off, &name, &type);
        symbolizer_get_stats(s, &st);
        ck_assert_msg(st.cache_bytes <= limit, "cache %" PRIu64 " > %" PRIu64,
                      st.cache_bytes, limit);
        objects++;
    }
    closedir(d);
    ck_assert_int_ge(objects, 20);
    symbolizer_get_stats(s, &st);
    ck_assert_uint_gt(st.cache_evictions, 0);
    ck_assert_uint_gt(st.frames_resolved, 0);
    ck_assert_uint_gt(st.cache_bytes, 0);
    symbolizer_destroy(&s);

    /* A cache smaller than libc's symbol table: libc is refused, counted,
     * and its frames fall back to path+offset. */
    const char *libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    struct stat sb;
    if (stat(libc, &sb) == 0) {
        s = s_new(NULL, 4096);
        wire_object_t obj;
        s_obj(&obj, WIRE_OBJ_LIB, libc);
        s_expect_unknown(s, &obj, 0x30000);
        symbolizer_get_stats(s, &st);
        ck_assert_uint_eq(st.objects_too_large, 1);
        ck_assert_uint_le(st.cache_bytes, 4096);
        symbolizer_destroy(&s);
    }
}
END_TEST

/* ------------------------------------------- hostile containers, bounds */

/* A process chrooted into dir stands for a container: the symbolizer
 * reaches its files through /proc/PID/root. */
static pid_t
s_spawn_in_root(const char *dir)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (chroot(dir) == 0 && chdir("/") == 0)
            pause();
        _exit(1);
    }
    char link[64], got[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/%d/root", (int)pid);
    for (int i = 0; i < 500; i++) {
        ssize_t n = readlink(link, got, sizeof(got) - 1);
        if (n > 0) {
            got[n] = '\0';
            if (strcmp(got, dir) == 0)
                return pid;
        }
        usleep(10000);
    }
    ck_abort_msg("child never entered %s", dir);
    return -1;
}

static void
s_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* A PIE program built in a fresh directory, for the container tests:
 * dir/prog, the root path dir/root, skyt_alpha and the build-id. */
typedef struct {
    char *dir;
    char root[512], prog[512];
    uint64_t alpha, asize;
    uint8_t id[64];
    size_t idlen;
} ctr_prog_t;

static void
s_ctr_prog(ctr_prog_t *p)
{
    p->dir = tu_mkdtemp();
    ck_assert_ptr_nonnull(p->dir);
    snprintf(p->root, sizeof(p->root), "%s/root", p->dir);
    snprintf(p->prog, sizeof(p->prog), "%s/prog", p->dir);
    s_build_prog(p->dir, "prog", "-fPIE -pie");
    p->alpha = s_func_offset(p->prog, "skyt_alpha", &p->asize);
    p->idlen = s_build_id(p->prog, p->id);
}

START_TEST(test_container_root_confined)
{
    ctr_prog_t cp;
    s_ctr_prog(&cp);
    char *dir = cp.dir, *root = cp.root, *host_prog = cp.prog, host_map[512];
    uint64_t asize = cp.asize, alpha = cp.alpha;
    const uint8_t *id = cp.id;
    size_t idlen = cp.idlen;
    /* Inside: a copy of the binary, a link to the host's copy (absolute,
     * the way an attacker writes it), a FIFO, perf maps: one genuine,
     * one a link to a host file. */
    uint32_t map_pid = 3998000 + (uint32_t)(getpid() % 1000);
    snprintf(host_map, sizeof(host_map), "%s/host.map", dir);
    tu_write_file(host_map, "7f0000001000 100 HostSecretFunction\n");
    s_run("mkdir -p %s/bin %s/tmp && cp %s %s/bin/prog && "
          "ln -s %s %s/bin/evil && mkfifo %s/bin/fifo && "
          "ln -s %s %s/tmp/perf-%u.map && "
          "echo '7f0000001000 100 InsideJit' > %s/tmp/perf-%u.map",
          root, root, host_prog, root, host_prog, root, root, host_map,
          root, map_pid, root, map_pid + 1);
    pid_t child = s_spawn_in_root(root);

    symbolizer_t *s = s_new(NULL, 0);
    wire_object_t obj;
    s_obj(&obj, WIRE_OBJ_EXE, "/bin/prog");
    obj.pid = (uint32_t)child;
    memcpy(obj.build_id, id, idlen);
    obj.build_id_len = (uint8_t)idlen;
    s_expect(s, &obj, alpha, asize, "skyt_alpha", WIRE_FRAME_USER);

    /* The link would lead to the very same binary on the host: not
     * followed (nothing inside the root at that path), so unresolved. */
    s_obj(&obj, WIRE_OBJ_EXE, "/bin/evil");
    obj.pid = (uint32_t)child;
    s_expect_unknown(s, &obj, alpha);
    s_obj(&obj, WIRE_OBJ_EXE, "/bin/fifo");
    obj.pid = (uint32_t)child;
    s_expect_unknown(s, &obj, 0x1000);    /* refused, not blocked on */
    s_obj(&obj, WIRE_OBJ_EXE, "/bin/../../prog");
    obj.pid = (uint32_t)child;
    s_expect_unknown(s, &obj, alpha);

    const char *name;
    uint8_t type;
    char map[128];
    snprintf(map, sizeof(map), "/tmp/perf-%u.map", map_pid + 1);
    s_obj(&obj, WIRE_OBJ_JIT, map);
    obj.pid = (uint32_t)child;
    ck_assert_int_eq(symbolizer_resolve_user(s, &obj, 0, 0x7f0000001010,
                                             &name, &type), 0);
    ck_assert_str_eq(name, "InsideJit");
    snprintf(map, sizeof(map), "/tmp/perf-%u.map", map_pid);
    s_obj(&obj, WIRE_OBJ_JIT, map);
    obj.pid = (uint32_t)child;
    ck_assert_int_eq(symbolizer_resolve_user(s, &obj, 0, 0x7f0000001010,
                                             &name, &type), -1);

    symbolizer_stats_t st;
    symbolizer_get_stats(s, &st);
    ck_assert_uint_ge(st.files_refused, 2);   /* the FIFO, the ".." */
    ck_assert_uint_eq(st.frames_resolved, 3);
    symbolizer_destroy(&s);
    s_kill(child);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* The first process of a container is gone before its samples are
 * symbolized: its file is found in no root. The next process mapping the
 * same file (same build-id, so the same cache key) is looked in at once,
 * not after retry_ms; and no more than a few new roots per window. */
START_TEST(test_missing_file_retried_in_new_root)
{
    ctr_prog_t cp;
    s_ctr_prog(&cp);
    char *dir = cp.dir, *root = cp.root, *host_prog = cp.prog;
    uint64_t asize = cp.asize, alpha = cp.alpha;
    const uint8_t *id = cp.id;
    size_t idlen = cp.idlen;
    s_run("mkdir -p %s/ctr && cp %s %s/ctr/prog", root, host_prog, root);

    symbolizer_opts_t o;
    symbolizer_opts_default(&o);
    o.debug_dirs = "";
    o.retry_ms = 3600 * 1000;   /* never within this test */
    symbolizer_t *s = symbolizer_new(&o);
    ck_assert_ptr_nonnull(s);
    wire_object_t obj;
    s_obj(&obj, WIRE_OBJ_EXE, "/ctr/prog");   /* no such path on the host */
    memcpy(obj.build_id, id, idlen);
    obj.build_id_len = (uint8_t)idlen;
    obj.pid = 0x7ffffff0;                      /* gone */
    s_expect_unknown(s, &obj, alpha);
    s_expect_unknown(s, &obj, alpha + 1);      /* the same root: cached */
    symbolizer_stats_t st;
    symbolizer_get_stats(s, &st);
    ck_assert_uint_eq(st.objects_unreadable, 1);

    pid_t child = s_spawn_in_root(root);
    obj.pid = (uint32_t)child;
    s_expect(s, &obj, alpha, asize, "skyt_alpha", WIRE_FRAME_USER);
    symbolizer_get_stats(s, &st);
    ck_assert_uint_eq(st.root_retries, 1);
    symbolizer_destroy(&s);
    s_kill(child);

    /* Roots that never hold it: SYM_ROOTS_TRIED (8) looks, then the
     * entry waits for retry_ms whichever process names it. */
    s = symbolizer_new(&o);
    for (uint32_t i = 0; i < 20; i++) {
        obj.pid = 0x7ffffff0 - i;
        s_expect_unknown(s, &obj, alpha);
    }
    symbolizer_get_stats(s, &st);
    ck_assert_uint_eq(st.objects_unreadable, 8);
    ck_assert_uint_eq(st.root_retries, 7);
    symbolizer_destroy(&s);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* Rewrites the section header of the first section of type `type`. */
static void
s_patch_section_size(const char *path, uint32_t type, uint64_t size)
{
    elf_version(EV_CURRENT);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    ck_assert_ptr_nonnull(elf);
    GElf_Ehdr eh;
    ck_assert_ptr_nonnull(gelf_getehdr(elf, &eh));
    ck_assert_int_eq(eh.e_ident[EI_CLASS], ELFCLASS64);
    Elf_Scn *scn = NULL;
    size_t idx = 0;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) && sh.sh_type == type) {
            idx = elf_ndxscn(scn);
            break;
        }
    }
    ck_assert_uint_gt(idx, 0);
    Elf64_Shdr raw;
    off_t at = (off_t)(eh.e_shoff + idx * eh.e_shentsize);
    ck_assert_int_eq(pread(fd, &raw, sizeof(raw), at), (ssize_t)sizeof(raw));
    raw.sh_size = size;
    ck_assert_int_eq(pwrite(fd, &raw, sizeof(raw), at), (ssize_t)sizeof(raw));
    elf_end(elf);
    close(fd);
}

static long
s_maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

START_TEST(test_symtab_claim_refused_before_reading)
{
    /* A small binary whose .symtab claims 1.5 GiB, the file made that
     * large (sparse, so it costs nothing on disk): libelf would read the
     * whole claim. Refused from the header instead. */
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof(path), "%s/prog", dir);
    s_build_prog(dir, "prog", "-fPIE -pie");
    uint64_t asize, alpha = s_func_offset(path, "skyt_alpha", &asize);
    s_patch_section_size(path, SHT_SYMTAB, 1536ull << 20);
    ck_assert_int_eq(truncate(path, (off_t)1600 << 20), 0);
    long rss_before = s_maxrss_kb();
    symbolizer_t *s = s_new(NULL, 0);
    wire_object_t obj;
    s_obj(&obj, WIRE_OBJ_EXE, path);
    s_expect_unknown(s, &obj, alpha);
    symbolizer_stats_t st;
    symbolizer_get_stats(s, &st);
    ck_assert_uint_eq(st.objects_too_large, 1);
    /* Nothing near the claim was allocated (ASan's own overhead aside). */
    ck_assert_int_lt(s_maxrss_kb() - rss_before, 128 * 1024);
    symbolizer_destroy(&s);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_perf_map_bound)
{
    uint32_t nspid = 3997000 + (uint32_t)(getpid() % 1000);
    char map[128];
    snprintf(map, sizeof(map), "/tmp/perf-%u.map", nspid);
    symbolizer_opts_t o;
    symbolizer_opts_default(&o);
    o.debug_dirs = "";
    o.perfmap_max_size = 64 << 10;
    /* Within the bound: read. */
    FILE *f = fopen(map, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 1000; i++)     /* ~30 KiB */
        fprintf(f, "%llx 10 jit_fn_%d\n", 0x7f0000000000ull + 16u * i, i);
    fclose(f);
    symbolizer_t *s = symbolizer_new(&o);
    ck_assert_ptr_nonnull(s);
    wire_object_t obj;
    s_obj(&obj, WIRE_OBJ_JIT, map);
    obj.pid = nspid;                   /* no such process: the host map */
    const char *name;
    uint8_t type;
    ck_assert_int_eq(symbolizer_resolve_user(s, &obj, 0, 0x7f0000000014,
                                             &name, &type), 0);
    ck_assert_str_eq(name, "jit_fn_1");
    /* The JIT grows it past the bound: refused from its size, once per
     * version, and the table read before keeps answering. */
    f = fopen(map, "a");
    ck_assert_ptr_nonnull(f);
    for (int i = 1000; i < 4000; i++)
        fprintf(f, "%llx 10 jit_fn_%d\n", 0x7f0000000000ull + 16u * i, i);
    fclose(f);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(symbolizer_resolve_user(s, &obj, 0, 0x7f0000010004,
                                                 &name, &type), -1);
    ck_assert_int_eq(symbolizer_resolve_user(s, &obj, 0, 0x7f0000000024,
                                             &name, &type), 0);
    ck_assert_str_eq(name, "jit_fn_2");
    symbolizer_stats_t st;
    symbolizer_get_stats(s, &st);
    ck_assert_uint_eq(st.perfmaps_refused, 1);
    ck_assert_uint_eq(st.perfmap_reloads, 0);
    symbolizer_destroy(&s);
    /* Too large from the start: refused unread. */
    s = symbolizer_new(&o);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(symbolizer_resolve_user(s, &obj, 0, 0x7f0000000014,
                                             &name, &type), -1);
    symbolizer_get_stats(s, &st);
    ck_assert_uint_eq(st.perfmaps_refused, 1);
    ck_assert_uint_eq(st.objects_too_large, 1);
    symbolizer_destroy(&s);
    unlink(map);
}
END_TEST

START_TEST(test_debuglink_crc_bound)
{
    /* No build-id on either side: only the debuglink CRC can vouch for
     * the debug file, and that is a read of the whole file. */
    char *dir = tu_mkdtemp();
    char path[512], dbg[512];
    snprintf(path, sizeof(path), "%s/prog", dir);
    snprintf(dbg, sizeof(dbg), "%s/prog.dbg", dir);
    s_build_prog(dir, "prog", "-fPIE -pie -Wl,--build-id=none");
    uint64_t hsize, hidden = s_func_offset(path, "skyt_hidden", &hsize);
    s_run("cd %s && objcopy --only-keep-debug prog prog.dbg && "
          "strip --strip-all prog && objcopy --add-gnu-debuglink=prog.dbg "
          "prog", dir);
    wire_object_t obj;
    s_obj(&obj, WIRE_OBJ_EXE, path);
    symbolizer_t *s = s_new(NULL, 0);
    s_expect(s, &obj, hidden, hsize, "skyt_hidden", WIRE_FRAME_USER);
    symbolizer_destroy(&s);
    /* The same debug file grown to 8 GiB (sparse): its CRC is not even
     * attempted on the symbolizer's only thread. */
    ck_assert_int_eq(truncate(dbg, (off_t)8 << 30), 0);
    s = s_new(NULL, 0);
    s_expect_unknown(s, &obj, hidden);
    symbolizer_stats_t st;
    symbolizer_get_stats(s, &st);
    ck_assert_uint_eq(st.debug_crc_skipped, 1);
    symbolizer_destroy(&s);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("symbolizer");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pie_executable);
    tcase_add_test(tc, test_non_pie_executable);
    tcase_add_test(tc, test_shared_library);
    tcase_add_test(tc, test_stripped_with_debuglink);
    tcase_add_test(tc, test_debug_file_by_build_id);
    tcase_add_test(tc, test_entry_point_named);
    tcase_add_test(tc, test_perf_map);
    tcase_add_test(tc, test_demangle_names);
    if (tu_require_tool("test_cxx_library_demangled", "g++"))
        tcase_add_test(tc, test_cxx_library_demangled);
    uint64_t off, size;
    if (s_vdso_func(&off, &size) == 0)
        tcase_add_test(tc, test_vdso);
    else
        tu_skip("test_vdso", "no vdso with __vdso_clock_gettime here");
    if (s_kernel_symbol("do_sys_openat2"))
        tcase_add_test(tc, test_kallsyms_real);
    else
        tu_skip("test_kallsyms_real", "do_sys_openat2 not visible in "
                "/proc/kallsyms (kptr_restrict?)");
    tcase_add_test(tc, test_kallsyms_file);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_corrupted_elf);
    tcase_add_test(tc, test_negative_cache);
    tcase_add_test(tc, test_container_root_confined);
    tcase_add_test(tc, test_missing_file_retried_in_new_root);
    tcase_add_test(tc, test_symtab_claim_refused_before_reading);
    tcase_add_test(tc, test_perf_map_bound);
    tcase_add_test(tc, test_debuglink_crc_bound);
    struct stat st;
    if (stat(s_libdir, &st) == 0)
        tcase_add_test(tc, test_lru_bound);
    else
        tu_skip("test_lru_bound", "no %s", s_libdir);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
