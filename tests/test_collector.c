/* Collector unit tests (no BPF): build-id reader, /proc/PID/maps parsing
 * and address resolution against this very process, the object registry,
 * per-drain batching and dedup, task reconciliation, options. */
#include <check.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "collector/batcher.h"
#include "elfid.h"
#include "collector/objreg.h"
#include "collector/options.h"
#include "procfacts.h"
#include "cgroup_id.h"
#include "collector/proctab.h"
#include "collector/symcheck.h"
#include "collector/active_tasks.h"
#include "config.h"
#include "harness.h"
#include "testutil.h"
#include "wire.h"

/* ------------------------------------------------------------ build-id */

/* Writes a minimal ELF64 little-endian file: header, one PT_NOTE program
 * header, and a note area with an unrelated note then the build-id. */
static char *s_write_elf(const char *dir, const char *name,
                         const uint8_t *id, uint32_t idlen,
                         uint32_t bogus_descsz)
{
    static char path[512];
    unsigned char buf[512];
    Elf64_Ehdr eh;
    Elf64_Phdr ph;
    size_t pos;

    memset(buf, 0, sizeof(buf));
    memset(&eh, 0, sizeof(eh));
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_DYN;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_phoff = sizeof(eh);
    eh.e_ehsize = sizeof(eh);
    eh.e_phentsize = sizeof(ph);
    eh.e_phnum = 1;
    memcpy(buf, &eh, sizeof(eh));
    pos = sizeof(eh) + sizeof(ph);
    size_t notes = pos;
    /* An ABI tag note first: the reader must walk past it. */
    uint32_t w[3] = { 4, 16, NT_GNU_ABI_TAG };
    memcpy(buf + pos, w, 12);
    memcpy(buf + pos + 12, "GNU", 4);
    pos += 16 + 16;
    uint32_t b[3] = { 4, bogus_descsz ? bogus_descsz : idlen,
                      NT_GNU_BUILD_ID };
    memcpy(buf + pos, b, 12);
    memcpy(buf + pos + 12, "GNU", 4);
    memcpy(buf + pos + 16, id, idlen);
    pos += 16 + ((idlen + 3) & ~3u);
    memset(&ph, 0, sizeof(ph));
    ph.p_type = PT_NOTE;
    ph.p_offset = notes;
    ph.p_filesz = pos - notes;
    ph.p_align = 4;
    memcpy(buf + sizeof(eh), &ph, sizeof(ph));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, pos, f), pos);
    fclose(f);
    return path;
}

START_TEST(test_buildid_synthetic)
{
    char *dir = tu_mkdtemp();
    uint8_t id[20], out[ELFID_BUILD_ID_MAX];

    for (int i = 0; i < 20; i++)
        id[i] = (uint8_t)(0xa0 + i * 3);
    char *path = s_write_elf(dir, "good.so", id, 20, 0);
    ck_assert_int_eq(elfid_build_id_path(path, out), 20);
    ck_assert_mem_eq(out, id, 20);

    /* A descriptor size pointing past the note area: no id, no crash. */
    path = s_write_elf(dir, "bogus.so", id, 20, 0x7fffffff);
    ck_assert_int_eq(elfid_build_id_path(path, out), 0);

    /* Truncated to the ELF header: still ELF, nothing to read. */
    char trunc[512];
    snprintf(trunc, sizeof(trunc), "%s/trunc.so", dir);
    path = s_write_elf(dir, "good2.so", id, 20, 0);
    ck_assert_int_eq(truncate(path, 70), 0);
    ck_assert_int_le(elfid_build_id_path(path, out), 0);

    /* Not ELF at all. */
    snprintf(trunc, sizeof(trunc), "%s/text", dir);
    FILE *f = fopen(trunc, "w");
    fputs("#!/bin/sh\necho hello\n", f);
    fclose(f);
    ck_assert_int_eq(elfid_build_id_path(trunc, out), -1);
    ck_assert_int_eq(elfid_build_id_path("/nonexistent/file", out), -1);
    /* A FIFO where a library is expected: refused, never blocked on (a
     * plain open for reading would wait for a writer for ever). */
    snprintf(trunc, sizeof(trunc), "%s/fifo.so", dir);
    ck_assert_int_eq(mkfifo(trunc, 0600), 0);
    ck_assert_int_eq(elfid_build_id_path(trunc, out), -1);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* The build-id of a real binary matches what binutils' readelf says. */
START_TEST(test_buildid_matches_readelf)
{
    const char *exe = tu_build_path("tests/progs/cpu_workload");
    char cmd[1024], line[512], hex[2 * ELFID_BUILD_ID_MAX + 1] = "";
    uint8_t out[ELFID_BUILD_ID_MAX];

    if (access(exe, R_OK) != 0 || !tu_require_tool("buildid_readelf",
                                                   "readelf"))
        return;
    snprintf(cmd, sizeof(cmd), "readelf -n '%s'", exe);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    while (fgets(line, sizeof(line), p)) {
        char *at = strstr(line, "Build ID: ");
        if (at)
            sscanf(at + 10, "%128s", hex);
    }
    pclose(p);
    ck_assert_uint_gt(strlen(hex), 0);
    int n = elfid_build_id_path(exe, out);
    ck_assert_int_eq(n * 2, (int)strlen(hex));
    char mine[2 * ELFID_BUILD_ID_MAX + 1];
    for (int i = 0; i < n; i++)
        sprintf(mine + 2 * i, "%02x", out[i]);
    ck_assert_str_eq(mine, hex);
}
END_TEST

/* ---------------------------------------------------------- maps lines */

START_TEST(test_maps_parse)
{
    maps_line_t ml;

    ck_assert_int_eq(proctab_parse_maps_line(
                         "55d0c0a00000-55d0c0a21000 r-xp 00002000 fd:01 "
                         "1234567                    /usr/bin/foo bar\n",
                         &ml), 0);
    ck_assert_uint_eq(ml.start, 0x55d0c0a00000ull);
    ck_assert_uint_eq(ml.end, 0x55d0c0a21000ull);
    ck_assert_uint_eq(ml.pgoff, 0x2000);
    ck_assert(ml.exec);
    ck_assert_uint_eq(ml.ino, 1234567);
    ck_assert_uint_eq(major(ml.dev), 0xfd);
    ck_assert_uint_eq(minor(ml.dev), 1);
    ck_assert_int_eq((int)ml.path_len, (int)strlen("/usr/bin/foo bar"));
    ck_assert(strncmp(ml.path, "/usr/bin/foo bar", ml.path_len) == 0);

    ck_assert_int_eq(proctab_parse_maps_line(
                         "7f0000000000-7f0000001000 r-xp 00000000 08:02 99 "
                         "/tmp/x.so (deleted)", &ml), 0);
    ck_assert(strncmp(ml.path, "/tmp/x.so", ml.path_len) == 0);
    ck_assert_uint_eq(ml.path_len, strlen("/tmp/x.so"));

    ck_assert_int_eq(proctab_parse_maps_line(
                         "7ffd1000-7ffd3000 r--p 00000000 00:00 0 ", &ml), 0);
    ck_assert(!ml.exec);
    ck_assert_uint_eq(ml.path_len, 0);

    ck_assert_int_eq(proctab_parse_maps_line("garbage", &ml), -1);
    ck_assert_int_eq(proctab_parse_maps_line(
                         "2000-1000 r-xp 0 00:00 0 /x", &ml), -1);
    ck_assert_int_eq(proctab_parse_maps_line("", &ml), -1);
}
END_TEST

/* ------------------------------------------- resolution of own addresses */

static __attribute__((noinline, used)) int s_probe_function(int x)
{
    return x * 3 + 1;
}

/* Resolving an address of this process gives an (object, offset) whose
 * file bytes are the bytes in memory: the offset is right independently
 * of how it was computed. */
static void s_check_resolves_to_file(proctab_t *pt, proc_t *proc,
                                     const void *addr, uint8_t want_type)
{
    uint64_t off = 0;
    object_t *obj = proctab_resolve(pt, proc, (uint64_t)(uintptr_t)addr,
                                    &off);
    ck_assert_ptr_nonnull(obj);
    ck_assert_uint_eq(obj->type, want_type);
    unsigned char file_bytes[32];
    int fd = open(obj->path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, file_bytes, sizeof(file_bytes), (off_t)off),
                     (ssize_t)sizeof(file_bytes));
    close(fd);
    ck_assert_mem_eq(file_bytes, addr, sizeof(file_bytes));
    /* The object's build-id is the file's. */
    uint8_t id[ELFID_BUILD_ID_MAX];
    int n = elfid_build_id_path(obj->path, id);
    ck_assert_int_eq(n, obj->build_id_len);
    if (n > 0)
        ck_assert_mem_eq(id, obj->build_id, (size_t)n);
}

START_TEST(test_resolve_self)
{
    objreg_t *objs = objreg_new();
    proctab_t *pt = proctab_new(objs, 16, 1000);
    proc_t *proc = proctab_get(pt, (uint32_t)getpid(), NULL);
    char exe[4096];

    ck_assert_ptr_nonnull(proc);
    ck_assert(!proc->exited_ms);
    ck_assert_int_eq(proctab_load_maps(pt, proc), 0);
    ck_assert_uint_gt(proc->nmaps, 1);
    s_check_resolves_to_file(pt, proc, (const void *)s_probe_function,
                             WIRE_OBJ_EXE);
    void *libc_fn = dlsym(RTLD_DEFAULT, "getppid");
    ck_assert_ptr_nonnull(libc_fn);
    s_check_resolves_to_file(pt, proc, libc_fn, WIRE_OBJ_LIB);

    /* The executable object is named as the process sees it. */
    uint64_t off;
    object_t *obj = proctab_resolve(pt, proc,
                                    (uint64_t)(uintptr_t)s_probe_function,
                                    &off);
    ck_assert_int_eq(procfacts_exe(NULL, (uint32_t)getpid(), exe, sizeof(exe)), 0);
    ck_assert_str_eq(obj->path, exe);

    /* Null page: unmapped, counted, raw address kept. */
    proctab_stats_t st;
    ck_assert_ptr_null(proctab_resolve(pt, proc, 0x10, &off));
    ck_assert_uint_eq(off, 0x10);
    proctab_stats(pt, &st);
    ck_assert_uint_eq(st.addresses_unmapped, 1);

    ck_assert_uint_gt(objreg_count(objs), 1);
    proctab_destroy(&pt);
    ck_assert_ptr_null(pt);
    objreg_destroy(&objs);
    ck_assert_ptr_null(objs);
}
END_TEST

/* A zombie's maps file still opens (until its parent reaps it) and reads
 * empty: re-reading it must not wipe the mappings read while it lived
 * (a rescan or a miss re-read after the exit, before the exit event), and
 * an exec handled only now must leave no empty table that would hide the
 * walker's record of the process. */
START_TEST(test_zombie_keeps_maps)
{
    objreg_t *objs = objreg_new();
    proctab_t *pt = proctab_new(objs, 16, 1000);
    int gate[2];
    uint64_t off;
    siginfo_t si;

    ck_assert_int_eq(pipe(gate), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        char c;
        close(gate[1]);
        _exit(read(gate[0], &c, 1) < 0 ? 1 : 0);
    }
    close(gate[0]);
    proc_t *proc = proctab_get(pt, (uint32_t)child, NULL);
    ck_assert_ptr_nonnull(proc);
    ck_assert_int_eq(proctab_load_maps(pt, proc), 0);
    uint32_t nmaps = proc->nmaps;
    ck_assert_uint_gt(nmaps, 1);
    const uint64_t fn = (uint64_t)(uintptr_t)s_probe_function;
    object_t *exe = proctab_resolve(pt, proc, fn, &off);
    ck_assert_ptr_nonnull(exe);

    close(gate[1]);   /* the child exits; WNOWAIT leaves it a zombie */
    memset(&si, 0, sizeof(si));
    ck_assert_int_eq(waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT), 0);
    ck_assert_int_eq(si.si_pid, child);
    ck_assert_int_eq(proctab_load_maps(pt, proc), -1);
    ck_assert_uint_eq(proc->nmaps, nmaps);
    ck_assert_ptr_eq(proctab_resolve(pt, proc, fn, &off), exe);
    ck_assert_ptr_nonnull(proctab_on_exec(pt, (uint32_t)child, "zombie", NULL));
    ck_assert(!proc->maps_loaded);
    ck_assert_uint_eq(proc->nmaps, 0);

    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    proctab_destroy(&pt);
    objreg_destroy(&objs);
}
END_TEST

/* Anonymous executable memory is JIT code when the process has a perf map,
 * else anonymous; the vdso is its own object. Frames there keep their raw
 * address (JIT, anon) or their offset in the vdso image. */
START_TEST(test_resolve_special)
{
    objreg_t *objs = objreg_new();
    proctab_t *pt = proctab_new(objs, 16, 1000);
    uint32_t pid = (uint32_t)getpid();
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char perf_map[64];
    uint64_t off;

    unsigned char *code = mmap(NULL, page, PROT_READ | PROT_WRITE | PROT_EXEC,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(code, MAP_FAILED);
    uint64_t addr = (uint64_t)(uintptr_t)code + 16;

    proc_t *proc = proctab_get(pt, pid, NULL);
    object_t *obj = proctab_resolve(pt, proc, addr, &off);
    ck_assert_ptr_nonnull(obj);
    ck_assert_uint_eq(obj->type, WIRE_OBJ_ANON);
    ck_assert_uint_eq(off, addr);

    snprintf(perf_map, sizeof(perf_map), "/tmp/perf-%u.map", pid);
    FILE *f = fopen(perf_map, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%" PRIx64 " 10 jitted_function\n", addr - 16);
    fclose(f);
    ck_assert_int_eq(proctab_load_maps(pt, proc), 0);
    obj = proctab_resolve(pt, proc, addr, &off);
    unlink(perf_map);
    ck_assert_ptr_nonnull(obj);
    ck_assert_uint_eq(obj->type, WIRE_OBJ_JIT);
    ck_assert_str_eq(obj->path, perf_map);
    ck_assert_uint_eq(obj->pid, pid);
    ck_assert_uint_eq(off, addr);

    uint64_t vdso = getauxval(AT_SYSINFO_EHDR);
    if (vdso) {
        obj = proctab_resolve(pt, proc, vdso + 0x10, &off);
        ck_assert_ptr_nonnull(obj);
        ck_assert_uint_eq(obj->type, WIRE_OBJ_VDSO);
        ck_assert_uint_eq(off, 0x10);
    }
    munmap(code, page);
    proctab_destroy(&pt);
    objreg_destroy(&objs);
}
END_TEST

/* Exited processes keep resolving for the grace period, then go; a full
 * table evicts exited entries first. */
START_TEST(test_proctab_grace_and_bound)
{
    objreg_t *objs = objreg_new();
    proctab_t *pt = proctab_new(objs, 2, 1000);
    uint32_t self_pid = (uint32_t)getpid();
    proc_t *proc = proctab_get(pt, self_pid, NULL);
    uint64_t off;

    ck_assert_ptr_nonnull(proctab_resolve(pt, proc,
                                          (uint64_t)(uintptr_t)s_probe_function,
                                          &off));
    size_t nobj = objreg_count(objs);
    ck_assert_uint_gt(nobj, 0);
    proctab_on_exit(pt, self_pid);
    ck_assert_uint_gt(proc->exited_ms, 0);
    ck_assert_ptr_nonnull(proctab_resolve(pt, proc,
                                          (uint64_t)(uintptr_t)s_probe_function,
                                          &off));
    proctab_gc(pt, proc->exited_ms + 10, false);
    ck_assert_ptr_eq(proctab_find(pt, self_pid), proc);
    proctab_gc(pt, proc->exited_ms + 1000, false);
    ck_assert_ptr_null(proctab_find(pt, self_pid));
    /* Its mappings were the only users of those objects. */
    ck_assert_uint_eq(objreg_count(objs), 0);

    /* A pid with no /proc entry is taken as already exited. */
    proc_t *ghost = proctab_get(pt, 0x7ffffff0u, "ghost");
    ck_assert_ptr_nonnull(ghost);
    ck_assert_uint_gt(ghost->exited_ms, 0);
    ck_assert_str_eq(ghost->comm, "ghost");
    /* Bound 2: the live process and the ghost fill it; one more live
     * process evicts the exited ghost, and a fourth is refused. */
    ck_assert_ptr_nonnull(proctab_get(pt, self_pid, NULL));
    ck_assert_ptr_nonnull(proctab_get(pt, (uint32_t)getppid(), NULL));
    ck_assert_ptr_null(proctab_find(pt, 0x7ffffff0u));
    ck_assert_ptr_null(proctab_get(pt, 1, NULL));
    proctab_stats_t st;
    proctab_stats(pt, &st);
    ck_assert_uint_eq(st.procs_refused, 1);
    proctab_destroy(&pt);
    objreg_destroy(&objs);
}
END_TEST

/* The executable mapping of exe (ours, as we see its path) in pid. */
static maps_line_t s_exe_mapping(pid_t pid, const char *exe)
{
    char path[64], line[8192];
    maps_line_t ml = { 0 };
    int found = 0;

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (!found && fgets(line, sizeof(line), f))
        found = proctab_parse_maps_line(line, &ml) == 0 && ml.exec &&
                ml.path_len == strlen(exe) &&
                strncmp(ml.path, exe, ml.path_len) == 0;
    fclose(f);
    ck_assert(found);
    ml.path = NULL;             /* pointed into line */
    return ml;
}

START_TEST(test_objects_identity)
{
    objreg_t *objs = objreg_new();
    char exe[4096];

    ck_assert_int_eq(procfacts_exe(NULL, (uint32_t)getpid(), exe, sizeof(exe)), 0);
    maps_line_t ml = s_exe_mapping(getpid(), exe);
    object_t *a = objreg_get_file(objs, (uint32_t)getpid(), ml.dev, ml.ino,
                                   exe, ml.start, ml.end, WIRE_OBJ_EXE);
    object_t *b = objreg_get_file(objs, (uint32_t)getpid(), ml.dev, ml.ino,
                                   exe, ml.start, ml.end, WIRE_OBJ_EXE);
    ck_assert_ptr_eq(a, b);
    ck_assert_uint_gt(a->build_id_len, 0);
    /* The same content under another (dev, inode) is the same object:
     * identity is the build-id. */
    object_t *c = objreg_get_file(objs, (uint32_t)getpid(), ml.dev + 1,
                                   ml.ino, exe, ml.start, ml.end,
                                   WIRE_OBJ_EXE);
    ck_assert_ptr_eq(c, a);
    ck_assert_uint_eq(objreg_count(objs), 1);
    object_t *v1 = objreg_get_special(objs, 10, WIRE_OBJ_VDSO, "[vdso]");
    object_t *v2 = objreg_get_special(objs, 11, WIRE_OBJ_VDSO, "[vdso]");
    object_t *j1 = objreg_get_special(objs, 10, WIRE_OBJ_JIT, "/tmp/perf-10.map");
    object_t *j2 = objreg_get_special(objs, 11, WIRE_OBJ_JIT, "/tmp/perf-11.map");
    ck_assert_ptr_eq(v1, v2);
    ck_assert_ptr_ne(j1, j2);
    ck_assert_uint_ne(j1->id, a->id);
    ck_assert_uint_eq(objreg_count(objs), 4);
    uint32_t id = a->id;
    objreg_unref(objs, &a);
    objreg_unref(objs, &b);
    ck_assert_ptr_null(a);
    ck_assert_uint_eq(objreg_count(objs), 4);
    objreg_unref(objs, &c);
    ck_assert_uint_eq(objreg_count(objs), 3);
    /* Gone for good: a new sighting is a new object with a new id. */
    object_t *d = objreg_get_file(objs, (uint32_t)getpid(), ml.dev, ml.ino,
                                   exe, ml.start, ml.end, WIRE_OBJ_EXE);
    ck_assert_uint_ne(d->id, id);
    objreg_unref(objs, &d);
    objreg_unref(objs, &v1);
    objreg_unref(objs, &v2);
    objreg_unref(objs, &j1);
    objreg_unref(objs, &j2);
    ck_assert_uint_eq(objreg_count(objs), 0);
    objreg_destroy(&objs);
}
END_TEST

/* A file mapped by a process in a container (here a chroot) is named
 * with its oldest ancestor sharing that root, which outlives it; on our
 * own root, with the process itself (test_objects_identity). */
START_TEST(test_objects_named_by_container_ancestor)
{
    objreg_t *objs = objreg_new();
    char exe[4096], *dir = tu_mkdtemp();
    int fds[2];
    pid_t child = 0;

    ck_assert_int_eq(procfacts_exe(NULL, (uint32_t)getpid(), exe, sizeof(exe)), 0);
    ck_assert_int_eq(pipe(fds), 0);
    pid_t parent = fork();
    ck_assert_int_ge(parent, 0);
    if (parent == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (chroot(dir) != 0 || chdir("/") != 0)
            _exit(1);
        pid_t c = fork();
        if (c == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            pause();
            _exit(0);
        }
        if (write(fds[1], &c, sizeof(c)) != (ssize_t)sizeof(c))
            _exit(1);
        pause();
        _exit(0);
    }
    ck_assert_int_eq(read(fds[0], &child, sizeof(child)), (ssize_t)sizeof(child));
    ck_assert_int_gt(child, 0);
    maps_line_t ml = s_exe_mapping(child, exe);
    object_t *obj = objreg_get_file(objs, (uint32_t)child, ml.dev, ml.ino,
                                    exe, ml.start, ml.end, WIRE_OBJ_EXE);
    ck_assert_ptr_nonnull(obj);
    ck_assert_uint_gt(obj->build_id_len, 0);   /* read through the child */
    ck_assert_uint_eq(obj->pid, (uint32_t)parent);
    objreg_unref(objs, &obj);
    kill(parent, SIGKILL);
    waitpid(parent, NULL, 0);
    close(fds[0]);
    close(fds[1]);
    objreg_destroy(&objs);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* ------------------------------------------------------------- batcher */

typedef struct {
    int batches;
    uint64_t count_total, weight_total;
    uint32_t samples_total;
    uint32_t max_nsamples;
    char topics[64][32];
    int ntopics;
    int bad_topic;
    int bad_tables;
    int decode_failures;
    arena_t *arena;
} capture_t;

static int s_capture(void *arg, const char *topic, wire_raw_batch_t *batch)
{
    capture_t *cap = arg;

    cap->batches++;
    if (batch->nsamples > cap->max_nsamples)
        cap->max_nsamples = batch->nsamples;
    for (uint32_t i = 0; i < batch->nsamples; i++) {
        const wire_raw_sample_t *s = &batch->samples[i];
        char want[32];
        wire_sharded_topic(want, sizeof(want), TOPIC_RAW_STACKS, s->pid);
        if (strcmp(want, topic) != 0)
            cap->bad_topic++;
        cap->count_total += s->count;
        cap->weight_total += s->weight_ns;
        cap->samples_total++;
        /* Every object a frame names is in the table, and every task
         * index is in range. */
        for (uint32_t f = 0; f < s->nu; f++) {
            int listed = s->uframes[f].object == WIRE_NO_OBJECT;
            for (uint32_t o = 0; o < batch->nobjects && !listed; o++)
                listed = batch->objects[o].id == s->uframes[f].object;
            if (!listed)
                cap->bad_tables++;
        }
        for (uint32_t t = 0; t < s->ntasks; t++)
            if (s->tasks[t] >= batch->ntask_ids)
                cap->bad_tables++;
        int proc_listed = 0;
        for (uint32_t p = 0; p < batch->nprocs; p++)
            proc_listed |= batch->procs[p].pid == s->pid;
        if (!proc_listed)
            cap->bad_tables++;
    }
    /* The codec must accept what the collector builds. */
    wire_buf_t buf;
    wire_raw_batch_t back;
    char err[256];
    wire_buf_init(&buf);
    wire_header_set(&batch->hdr, "collector/test", (uint64_t)cap->batches);
    if (wire_encode_raw_batch(batch, &buf) != 0 ||
        wire_decode_raw_batch(buf.data, buf.len, cap->arena, &back, err,
                              sizeof(err)) != 0 ||
        back.nsamples != batch->nsamples)
        cap->decode_failures++;
    wire_buf_release(&buf);
    arena_reset(cap->arena);
    if (cap->ntopics < 64)
        snprintf(cap->topics[cap->ntopics++], 32, "%s", topic);
    return 0;
}

START_TEST(test_batcher_dedup_and_split)
{
    batcher_t *b = batcher_new(3, 0);
    capture_t cap = { .arena = arena_new(0) };
    object_t obj = { .id = 7, .type = WIRE_OBJ_EXE, .path = "/bin/x",
                     .build_id_len = 2, .build_id = { 0xab, 0xcd } };
    proc_t procs[3];
    uint64_t kf[2] = { 0xffffffff81000010ull, 0xffffffff81000020ull };
    wire_uframe_t uf[2] = { { 7, 0x1000 }, { WIRE_NO_OBJECT, 0x42 } };
    const char *tasks_a[] = { "task-a" };
    const char *tasks_b[] = { "task-b", "task-a" };

    memset(procs, 0, sizeof(procs));
    for (int i = 0; i < 3; i++) {
        procs[i].pid = 100 + (uint32_t)i;
        snprintf(procs[i].comm, sizeof(procs[i].comm), "p%d", i);
    }
    ck_assert_int_eq(batcher_note_object(b, &obj), 0);
    batcher_sample_t s = {
        .pid = 100, .tid = 100, .cpu = 0, .kind = WIRE_KIND_ON_CPU,
        .ts_ns = 5, .comm = "p0", .nk = 2, .nu = 2, .kframes = kf,
        .uframes = uf, .ntasks = 1, .tasks = tasks_a, .count = 1,
        .weight_ns = 10,
    };
    ck_assert_int_eq(batcher_note_proc(b, &procs[0]), 0);
    /* Same stack three times: one entry with count 3. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(batcher_add(b, &s), 0);
    ck_assert_uint_eq(batcher_pending(b), 1);
    /* A different thread, different frames, different tasks: new. */
    s.tid = 101;
    ck_assert_int_eq(batcher_add(b, &s), 0);
    s.tid = 100;
    uint64_t kf2[2] = { kf[0], kf[1] + 1 };
    s.kframes = kf2;
    ck_assert_int_eq(batcher_add(b, &s), 0);
    s.kframes = kf;
    s.ntasks = 2;
    s.tasks = tasks_b;
    ck_assert_int_eq(batcher_add(b, &s), 0);
    ck_assert_uint_eq(batcher_pending(b), 4);
    /* Same pid again with an equal copy of the task name: merges. */
    char copy[] = "task-a";
    const char *tasks_copy[] = { copy };
    s.ntasks = 1;
    s.tasks = tasks_copy;
    ck_assert_int_eq(batcher_add(b, &s), 0);
    ck_assert_uint_eq(batcher_pending(b), 4);
    /* Two more processes, to spread over buckets. */
    for (int p = 1; p < 3; p++) {
        ck_assert_int_eq(batcher_note_proc(b, &procs[p]), 0);
        s.pid = s.tid = procs[p].pid;
        ck_assert_int_eq(batcher_add(b, &s), 0);
    }
    batcher_flush_stats_t fs = { 0 };
    batcher_flush(b, s_capture, &cap, &fs);
    ck_assert_uint_eq(cap.samples_total, 6);
    ck_assert_uint_eq(cap.count_total, 9);
    ck_assert_uint_eq(cap.weight_total, 90);
    ck_assert_int_eq(cap.bad_topic, 0);
    ck_assert_int_eq(cap.bad_tables, 0);
    ck_assert_int_eq(cap.decode_failures, 0);
    ck_assert_uint_le(cap.max_nsamples, 3);
    ck_assert_uint_eq(fs.stacks, 6);
    ck_assert_uint_eq(fs.batches, (uint64_t)cap.batches);
    /* pid 100's four stacks need two batches of at most three. */
    ck_assert_int_ge(cap.batches, 2);
    /* After a flush the batcher is empty. */
    ck_assert_uint_eq(batcher_pending(b), 0);
    memset(&cap.topics, 0, sizeof(cap.topics));
    int before = cap.batches;
    batcher_flush(b, s_capture, &cap, &fs);
    ck_assert_int_eq(cap.batches, before);
    batcher_destroy(&b);
    ck_assert_ptr_null(b);
    arena_destroy(&cap.arena);
}
END_TEST

/* An object whose process changed while in a batch (the first one
 * exited, another maps the file) goes out naming the live one, through
 * whose root the symbolizer can still open it. */
typedef struct {
    uint32_t pid;
    char path[64];
    uint32_t nobjects;
} object_capture_t;

static int s_capture_object(void *arg, const char *topic,
                            wire_raw_batch_t *batch)
{
    object_capture_t *oc = arg;

    (void)topic;
    oc->nobjects += batch->nobjects;
    if (batch->nobjects > 0) {
        oc->pid = batch->objects[0].pid;
        snprintf(oc->path, sizeof(oc->path), "%s", batch->objects[0].path);
    }
    return 0;
}

START_TEST(test_batcher_object_process_follows)
{
    batcher_t *b = batcher_new(100, 0);
    object_capture_t oc = { 0 };
    proc_t proc = { .pid = 300 };
    object_t obj = { .id = 9, .type = WIRE_OBJ_EXE, .path = "/opt/a/x",
                     .pid = 300 };
    wire_uframe_t uf[1] = { { 9, 0x1000 } };
    batcher_sample_t s = { .pid = 300, .tid = 300, .nu = 1, .uframes = uf,
                           .count = 1, .weight_ns = 1 };
    batcher_flush_stats_t fs = { 0 };

    ck_assert_int_eq(batcher_note_proc(b, &proc), 0);
    ck_assert_int_eq(batcher_note_object(b, &obj), 0);
    ck_assert_int_eq(batcher_add(b, &s), 0);
    obj.pid = 301;              /* 300 exited; 301 maps the file */
    obj.path = "/x";            /* as 301 sees it */
    proc.pid = s.pid = s.tid = 301;
    ck_assert_int_eq(batcher_note_proc(b, &proc), 0);
    ck_assert_int_eq(batcher_note_object(b, &obj), 0);
    ck_assert_int_eq(batcher_add(b, &s), 0);
    batcher_flush(b, s_capture_object, &oc, &fs);
    ck_assert_uint_ge(oc.nobjects, 1);
    ck_assert_uint_eq(oc.pid, 301);
    ck_assert_str_eq(oc.path, "/x");
    batcher_destroy(&b);
}
END_TEST

/* The batch's task table lists exactly the tasks its samples name. */
typedef struct {
    int ok;
    char names[4][32];
    uint32_t nnames;
} task_capture_t;

static int s_capture_tasks(void *arg, const char *topic,
                           wire_raw_batch_t *batch)
{
    task_capture_t *tc = arg;

    tc->ok = batch->nsamples == 1 && batch->samples[0].ntasks == 2;
    tc->nnames = batch->ntask_ids;
    for (uint32_t i = 0; i < batch->ntask_ids && i < 4; i++)
        snprintf(tc->names[i], 32, "%s", batch->task_ids[i]);
    if (tc->ok) {
        const wire_raw_sample_t *s = &batch->samples[0];
        tc->ok = strcmp(batch->task_ids[s->tasks[0]], "t1") == 0 &&
                 strcmp(batch->task_ids[s->tasks[1]], "t2") == 0;
    }
    return 0;
}

START_TEST(test_batcher_task_table)
{
    batcher_t *b = batcher_new(100, 0);
    task_capture_t tc = { 0 };
    proc_t proc = { .pid = 4242 };
    const char *tasks[] = { "t1", "t2" };
    uint64_t kf[1] = { 0xffffffff81234567ull };
    batcher_sample_t s = { .pid = 4242, .tid = 4243, .nk = 1, .kframes = kf,
                           .ntasks = 2, .tasks = tasks, .count = 1,
                           .weight_ns = 1 };
    batcher_flush_stats_t fs = { 0 };

    batcher_note_proc(b, &proc);
    ck_assert_int_eq(batcher_add(b, &s), 0);
    batcher_flush(b, s_capture_tasks, &tc, &fs);
    ck_assert(tc.ok);
    ck_assert_uint_eq(tc.nnames, 2);
    batcher_destroy(&b);
}
END_TEST

/* --------------------------------------------------------------- tasks */

START_TEST(test_tasks_reconcile)
{
    activetasks_t *t = activetasks_new();
    uint32_t pids_a[] = { 30, 10, 20 };
    uint32_t pids_b[] = { 20 };
    wire_task_t tasks[3] = {
        { .task_id = "A", .target = WIRE_TARGET_ON_CPU, .start_ms = 1000,
          .duration_ms = 500, .npids = 3, .pids = pids_a },
        { .task_id = "B", .target = WIRE_TARGET_ON_CPU, .start_ms = 0,
          .duration_ms = 2000, .npids = 1, .pids = pids_b },
        { .task_id = "C", .target = WIRE_TARGET_OFF_CPU, .start_ms = 0,
          .duration_ms = 0, .npids = 1, .pids = pids_b },
    };
    const uint32_t *pids;
    const char *ids[8];

    wire_task_set_t set = th_task_set("policy/x", 5, 3, tasks, 3);
    ck_assert_int_eq(activetasks_apply(t, &set, 900), 0);
    ck_assert_int_eq(activetasks_refresh(t, 900), 1);
    /* Only B (as soon as received) is active; C is not on-CPU. */
    ck_assert_uint_eq(activetasks_active_pids(t, &pids), 1);
    ck_assert_uint_eq(pids[0], 20);
    ck_assert_int_eq(activetasks_refresh(t, 950), 0);
    ck_assert_int_eq(activetasks_refresh(t, 1000), 1);
    ck_assert_uint_eq(activetasks_active_pids(t, &pids), 3);
    ck_assert_uint_eq(pids[0], 10);
    ck_assert_uint_eq(pids[2], 30);
    ck_assert_uint_eq(activetasks_for_pid(t, 20, ids, 8), 2);
    ck_assert_uint_eq(activetasks_for_pid(t, 30, ids, 8), 1);
    ck_assert_str_eq(ids[0], "A");
    ck_assert_uint_eq(activetasks_for_pid(t, 31, ids, 8), 0);

    /* Republished later: B keeps its first-seen start, so it ends 2 s
     * after 900, not after the republication. */
    set = th_task_set("policy/x", 6, 3, tasks, 3);
    ck_assert_int_eq(activetasks_apply(t, &set, 1400), 0);
    activetasks_refresh(t, 1400);
    ck_assert_uint_eq(activetasks_active_pids(t, &pids), 3);
    activetasks_refresh(t, 2899);
    ck_assert_uint_eq(activetasks_for_pid(t, 20, ids, 8), 1);
    ck_assert_str_eq(ids[0], "B");
    ck_assert_int_eq(activetasks_refresh(t, 2900), 1);
    ck_assert_uint_eq(activetasks_active_pids(t, &pids), 0);

    /* An older generation from the same publisher run is stale... */
    set = th_task_set("policy/x", 7, 2, tasks, 1);
    ck_assert_int_eq(activetasks_apply(t, &set, 1000), 1);
    ck_assert_uint_eq(activetasks_generation(t), 3);
    /* ...but after a publisher restart (sequence back to 1) it is not. */
    set = th_task_set("policy/x", 1, 1, tasks, 1);
    ck_assert_int_eq(activetasks_apply(t, &set, 1000), 0);
    ck_assert_uint_eq(activetasks_generation(t), 1);
    ck_assert_int_eq(activetasks_refresh(t, 1200), 1);
    ck_assert_uint_eq(activetasks_active_pids(t, &pids), 3);
    /* An empty set ends everything. */
    set = th_task_set("policy/x", 2, 2, NULL, 0);
    ck_assert_int_eq(activetasks_apply(t, &set, 1200), 0);
    ck_assert_int_eq(activetasks_refresh(t, 1200), 1);
    ck_assert_uint_eq(activetasks_active_pids(t, &pids), 0);
    activetasks_destroy(&t);
    ck_assert_ptr_null(t);
}
END_TEST

/* ------------------------------------------------------- container ids */

START_TEST(test_container_id)
{
    char id[CGROUP_ID_LEN];
    const char *hex =
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char text[512];

    snprintf(text, sizeof(text),
             "0::/system.slice/docker-%s.scope\n", hex);
    cgroup_container_id(text, id, sizeof(id));
    ck_assert_str_eq(id, hex);
    snprintf(text, sizeof(text),
             "12:cpu:/kubepods/burstable/pod1234/%s\n", hex);
    cgroup_container_id(text, id, sizeof(id));
    ck_assert_str_eq(id, hex);
    cgroup_container_id("0::/user.slice/user-0.slice/session-3.scope\n",
                                id, sizeof(id));
    ck_assert_str_eq(id, "");
    /* 65 hex digits is not an id. */
    snprintf(text, sizeof(text), "0::/x/%sa\n", hex);
    cgroup_container_id(text, id, sizeof(id));
    ck_assert_str_eq(id, "");

    uint32_t nspid = 0, tgid = 0;
    ck_assert_int_eq(procfacts_status(NULL, (uint32_t)getpid(), &nspid, &tgid), 0);
    ck_assert_uint_eq(tgid, (uint32_t)getpid());
    ck_assert_uint_gt(nspid, 0);
    char cmdline[256];
    ck_assert_int_eq(procfacts_cmdline(NULL, (uint32_t)getpid(), cmdline,
                                       sizeof(cmdline)), 0);
    ck_assert_ptr_nonnull(strstr(cmdline, "test_collector"));
}
END_TEST

/* -------------------------------------------------------------- options */

static int s_options_from_yaml(const char *yaml, collector_options_t *o,
                               char *err, size_t errlen)
{
    char *dir = tu_mkdtemp();
    char path[512];
    snprintf(path, sizeof(path), "%s/c.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs(yaml, f);
    fclose(f);
    char cerr[512] = "";
    config_t *cfg = config_load(path, cerr, sizeof(cerr));
    int rc = -1;
    if (!cfg)
        snprintf(err, errlen, "%s", cerr);
    else
        rc = collector_options_from_config(cfg, o, err, errlen);
    config_destroy(&cfg);
    tu_rmtree(dir);
    free(dir);
    return rc;
}

START_TEST(test_options)
{
    collector_options_t o;
    char err[512] = "";

    ck_assert_int_eq(s_options_from_yaml("collector:\n  host_period: 20ms\n"
                                         "profiling:\n  task:\n    on_cpu:\n"
                                         "      dump_period: 10ms\n",
                                         &o, err, sizeof(err)), 0);
    ck_assert_uint_eq(o.period_ns, 10000000);
    ck_assert_uint_eq(o.host_every, 2);
    ck_assert_int_eq(s_options_from_yaml("collector:\n  ringbuf_size: 3MB\n",
                                         &o, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "collector.ringbuf_size"));
    ck_assert_int_eq(s_options_from_yaml("collector:\n  host_period: 1ms\n",
                                         &o, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "collector.host_period"));
    ck_assert_int_eq(s_options_from_yaml("collector:\n  host_period: 12ms\n",
                                         &o, err, sizeof(err)), 0);
    ck_assert_uint_eq(o.host_period_ns, 12000000);
    ck_assert_int_eq(o.sampler, COLLECTOR_SAMPLER_AUTO);
    ck_assert_int_eq(s_options_from_yaml("collector:\n  sampler: hpet\n",
                                         &o, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "collector.sampler"));
    ck_assert_int_eq(s_options_from_yaml("collector:\n  sampler: tick\n"
                                         "  offcpu_sample_every: 4\n"
                                         "  offcpu_long_period: 2ms\n",
                                         &o, err, sizeof(err)), 0);
    ck_assert_int_eq(o.sampler, COLLECTOR_SAMPLER_TICK);
    ck_assert_uint_eq(o.offcpu_sample_every, 4);
    ck_assert_uint_eq(o.offcpu_long_ns, 2000000);
    ck_assert_int_eq(s_options_from_yaml("collector:\n"
                                         "  offcpu_sample_every: 0\n",
                                         &o, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "offcpu_sample_every"));
    ck_assert_int_eq(s_options_from_yaml("collector:\n"
                                         "  max_batch_samples: 0\n",
                                         &o, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "max_batch_samples"));
    collector_options_default(&o);
    ck_assert_int_eq(collector_options_validate(&o, err, sizeof(err)), 0);
    o.period_ns = 10;
    ck_assert_int_eq(collector_options_validate(&o, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "dump_period"));
}
END_TEST

START_TEST(test_symcheck)
{
    symcheck_t *sc = symcheck_new("/nonexistent-debug");
    ck_assert_ptr_nonnull(sc);
    /* This test binary is built with symbols. */
    ck_assert(symcheck_has_symbols(sc, "/proc/self/exe"));
    ck_assert(symcheck_has_symbols(sc, "/proc/self/exe"));   /* cached */
    ck_assert(!symcheck_has_symbols(sc, "/etc/passwd"));
    ck_assert(!symcheck_has_symbols(sc, "/nonexistent/binary"));
    ck_assert(!symcheck_has_symbols(sc, "/proc"));
    /* A FIFO named as an executable: answered at once, not blocked on
     * waiting for a writer. */
    char *dir = tu_mkdtemp();
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s/exe", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert(!symcheck_has_symbols(sc, fifo));
    tu_rmtree(dir);
    free(dir);
    symcheck_destroy(&sc);
    ck_assert_ptr_null(sc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("collector");
    TCase *tc = tcase_create("unit");

    tcase_add_test(tc, test_buildid_synthetic);
    tcase_add_test(tc, test_buildid_matches_readelf);
    tcase_add_test(tc, test_maps_parse);
    tcase_add_test(tc, test_resolve_self);
    tcase_add_test(tc, test_zombie_keeps_maps);
    tcase_add_test(tc, test_symcheck);
    tcase_add_test(tc, test_resolve_special);
    tcase_add_test(tc, test_proctab_grace_and_bound);
    tcase_add_test(tc, test_objects_identity);
    tcase_add_test(tc, test_objects_named_by_container_ancestor);
    tcase_add_test(tc, test_batcher_dedup_and_split);
    tcase_add_test(tc, test_batcher_task_table);
    tcase_add_test(tc, test_batcher_object_process_follows);
    tcase_add_test(tc, test_tasks_reconcile);
    tcase_add_test(tc, test_container_id);
    tcase_add_test(tc, test_options);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
