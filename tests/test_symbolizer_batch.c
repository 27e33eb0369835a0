/* Symbolizer stage tests: the raw -> symbolized batch conversion (frame
 * order, interning, unknown frames, pass-through fields, codec round trip)
 * and the stage binary end to end through a real broker. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "arena.h"
#include "bus.h"
#include "stats.h"
#include "symbolizer/symbatch.h"
#include "symbolizer/symbolize.h"
#include "testutil.h"
#include "wire.h"

/* ------------------------------------------------------------ fixture */

typedef struct {
    char *dir;
    char prog[512];
    char kallsyms[512];
    uint64_t off_alpha, off_beta, off_main;
} fixture_t;

/* Reference offsets, computed here from the ELF independently of the
 * symbolizer. */
static uint64_t
s_func_offset(const char *path, const char *name)
{
    uint64_t found = 0;
    elf_version(EV_CURRENT);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    Elf_Scn *scn = NULL;
    while (!found && (scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        for (size_t i = 0; d && i < d->d_size / sh.sh_entsize; i++) {
            GElf_Sym sym;
            gelf_getsym(d, (int)i, &sym);
            const char *n = elf_strptr(elf, sh.sh_link, sym.st_name);
            if (!n || strcmp(n, name) != 0)
                continue;
            size_t nph;
            elf_getphdrnum(elf, &nph);
            for (size_t j = 0; j < nph; j++) {
                GElf_Phdr ph;
                gelf_getphdr(elf, (int)j, &ph);
                if (ph.p_type == PT_LOAD && sym.st_value >= ph.p_vaddr &&
                    sym.st_value < ph.p_vaddr + ph.p_filesz)
                    found = sym.st_value - ph.p_vaddr + ph.p_offset;
            }
        }
    }
    elf_end(elf);
    close(fd);
    ck_assert_msg(found, "%s not in %s", name, path);
    return found;
}

static void
s_fixture(fixture_t *fx)
{
    memset(fx, 0, sizeof(*fx));
    fx->dir = tu_mkdtemp();
    char src[512], cmd[2048];
    snprintf(src, sizeof(src), "%s/prog.c", fx->dir);
    snprintf(fx->prog, sizeof(fx->prog), "%s/prog", fx->dir);
    tu_write_file(src,
            "__attribute__((noinline)) int skyt_alpha(int x)"
            " { return x * 5 + 1; }\n"
            "__attribute__((noinline)) int skyt_beta(int x)"
            " { return skyt_alpha(x) - 2; }\n"
            "int main(int argc, char **argv)"
            " { (void)argv; return skyt_beta(argc); }\n");
    snprintf(cmd, sizeof(cmd), "gcc -O1 -fPIE -pie -o %s %s", fx->prog, src);
    ck_assert_int_eq(system(cmd), 0);
    fx->off_alpha = s_func_offset(fx->prog, "skyt_alpha");
    fx->off_beta = s_func_offset(fx->prog, "skyt_beta");
    fx->off_main = s_func_offset(fx->prog, "main");
    snprintf(fx->kallsyms, sizeof(fx->kallsyms), "%s/kallsyms", fx->dir);
    tu_write_file(fx->kallsyms, "ffffffff81000000 T skyt_k_entry\n"
                          "ffffffff81000100 T skyt_k_sched\n"
                          "ffffffff81000200 T skyt_k_end\n");
}

static void
s_fixture_free(fixture_t *fx)
{
    tu_rmtree(fx->dir);
    free(fx->dir);
}

/* A raw batch: two processes running the same binary, one JIT-less stack
 * each plus odd frames. Everything points at static storage or fx. */
static void
s_raw_batch(const fixture_t *fx, wire_raw_batch_t *b, wire_object_t objs[2],
            wire_proc_t procs[2], wire_raw_sample_t samples[2],
            uint64_t kf[2][2], wire_uframe_t uf[2][4],
            const char *task_ids[1], uint32_t tasks[1])
{
    memset(b, 0, sizeof(*b));
    memset(objs, 0, 2 * sizeof(*objs));
    objs[0].id = 7;
    objs[0].type = WIRE_OBJ_EXE;
    objs[0].path = fx->prog;
    objs[1].id = 9;
    objs[1].type = WIRE_OBJ_LIB;
    objs[1].path = "/nonexistent/libgone.so";
    procs[0] = (wire_proc_t){ 100, 100, "prog", "" };
    procs[1] = (wire_proc_t){ 200, 5, "prog", "c0ffee" };
    task_ids[0] = "task-1";
    tasks[0] = 0;

    kf[0][0] = 0xffffffff81000110ull;   /* skyt_k_sched (leaf) */
    kf[0][1] = 0xffffffff81000010ull;   /* skyt_k_entry */
    kf[1][0] = 0xffffffff81000120ull;   /* skyt_k_sched again */
    kf[1][1] = 0xffff000000000000ull;   /* nowhere */
    uf[0][0] = (wire_uframe_t){ 7, fx->off_alpha + 1 };
    uf[0][1] = (wire_uframe_t){ 7, fx->off_beta + 1 };
    uf[0][2] = (wire_uframe_t){ 7, fx->off_main + 1 };
    uf[0][3] = (wire_uframe_t){ WIRE_NO_OBJECT, 0x7fff12345678ull };
    uf[1][0] = (wire_uframe_t){ 7, fx->off_alpha };      /* same name */
    uf[1][1] = (wire_uframe_t){ 9, 0x1234 };             /* unreadable */
    uf[1][2] = (wire_uframe_t){ 4242, 0x99 };            /* no such id */
    uf[1][3] = (wire_uframe_t){ 7, fx->off_main };

    memset(samples, 0, 2 * sizeof(*samples));
    for (int i = 0; i < 2; i++) {
        samples[i].pid = procs[i].pid;
        samples[i].tid = procs[i].pid + 1;
        samples[i].cpu = (uint32_t)i;
        samples[i].kind = (uint8_t)i;
        samples[i].ts_ns = 1000 + (uint64_t)i;
        samples[i].count = 3 + (uint64_t)i;
        samples[i].weight_ns = 5000000 * (uint64_t)(i + 1);
        snprintf(samples[i].comm, sizeof(samples[i].comm), "worker-%c", '0' + i);
        samples[i].nk = 2;
        samples[i].kframes = kf[i];
        samples[i].nu = 4;
        samples[i].uframes = uf[i];
        samples[i].ntasks = 1;
        samples[i].tasks = tasks;
    }
    b->nobjects = 2;
    b->objects = objs;
    b->nprocs = 2;
    b->procs = procs;
    b->ntask_ids = 1;
    b->task_ids = task_ids;
    b->nsamples = 2;
    b->samples = samples;
}

static const char *
s_name(const wire_sym_batch_t *b, uint32_t sample, uint32_t frame)
{
    return b->frames[b->samples[sample].frames[frame]].name;
}

static uint8_t
s_type(const wire_sym_batch_t *b, uint32_t sample, uint32_t frame)
{
    return b->frames[b->samples[sample].frames[frame]].type;
}

static void
s_check_sym_batch(const fixture_t *fx, const wire_sym_batch_t *out)
{
    char want[600];
    ck_assert_uint_eq(out->nsamples, 2);
    ck_assert_uint_eq(out->nprocs, 2);
    ck_assert_uint_eq(out->procs[1].nspid, 5);
    ck_assert_str_eq(out->procs[1].container_id, "c0ffee");
    ck_assert_uint_eq(out->ntask_ids, 1);
    ck_assert_str_eq(out->task_ids[0], "task-1");

    const wire_sym_sample_t *s0 = &out->samples[0], *s1 = &out->samples[1];
    ck_assert_uint_eq(s0->nframes, 6);
    ck_assert_uint_eq(s0->nkernel, 2);
    ck_assert_str_eq(s_name(out, 0, 0), "skyt_k_sched");
    ck_assert_int_eq(s_type(out, 0, 0), WIRE_FRAME_KERNEL);
    ck_assert_str_eq(s_name(out, 0, 1), "skyt_k_entry");
    ck_assert_str_eq(s_name(out, 0, 2), "skyt_alpha");
    ck_assert_int_eq(s_type(out, 0, 2), WIRE_FRAME_USER);
    ck_assert_str_eq(s_name(out, 0, 3), "skyt_beta");
    ck_assert_str_eq(s_name(out, 0, 4), "main");
    ck_assert_str_eq(s_name(out, 0, 5), "[unknown] 0x00007fff12345678");
    ck_assert_int_eq(s_type(out, 0, 5), WIRE_FRAME_UNKNOWN);

    ck_assert_str_eq(s_name(out, 1, 1), "[k] 0xffff000000000000");
    ck_assert_str_eq(s_name(out, 1, 2), "skyt_alpha");
    ck_assert_str_eq(s_name(out, 1, 3), "/nonexistent/libgone.so+0x1234");
    ck_assert_int_eq(s_type(out, 1, 3), WIRE_FRAME_UNKNOWN);
    ck_assert_str_eq(s_name(out, 1, 4), "[unknown] 0x0000000000000099");
    snprintf(want, sizeof(want), "main");
    ck_assert_str_eq(s_name(out, 1, 5), want);

    /* Interned: both samples' leaf kernel frame and skyt_alpha are the
     * same table entry, and no (name, type) appears twice. */
    ck_assert_uint_eq(s0->frames[0], s1->frames[0]);
    ck_assert_uint_eq(s0->frames[2], s1->frames[2]);
    for (uint32_t i = 0; i < out->nframes; i++)
        for (uint32_t j = i + 1; j < out->nframes; j++)
            ck_assert(!(out->frames[i].type == out->frames[j].type &&
                        strcmp(out->frames[i].name, out->frames[j].name) == 0));
    /* Distinct: 2 kernel names, [k] 0x.., alpha, beta, main, 2 raw
     * addresses, libgone+0x1234. */
    ck_assert_uint_eq(out->nframes, 9);

    ck_assert_uint_eq(s1->pid, 200);
    ck_assert_uint_eq(s1->tid, 201);
    ck_assert_uint_eq(s1->cpu, 1);
    ck_assert_uint_eq(s1->kind, 1);
    ck_assert_uint_eq(s1->ts_ns, 1001);
    ck_assert_uint_eq(s1->count, 4);
    ck_assert_uint_eq(s1->weight_ns, 10000000);
    ck_assert_str_eq(s1->comm, "worker-1");
    ck_assert_uint_eq(s1->ntasks, 1);
    ck_assert_uint_eq(s1->tasks[0], 0);
    (void)fx;
}

static symbolizer_t *
s_symbolizer(const fixture_t *fx)
{
    symbolizer_opts_t o;
    symbolizer_opts_default(&o);
    o.debug_dirs = "";
    o.kallsyms_path = fx->kallsyms;
    symbolizer_t *s = symbolizer_new(&o);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* -------------------------------------------------------------- tests */

START_TEST(test_batch_conversion)
{
    fixture_t fx;
    s_fixture(&fx);
    wire_raw_batch_t raw;
    wire_object_t objs[2];
    wire_proc_t procs[2];
    wire_raw_sample_t samples[2];
    uint64_t kf[2][2];
    wire_uframe_t uf[2][4];
    const char *task_ids[1];
    uint32_t tasks[1];
    s_raw_batch(&fx, &raw, objs, procs, samples, kf, uf, task_ids, tasks);

    symbolizer_t *sym = s_symbolizer(&fx);
    symbatch_t *sb = symbatch_new();
    ck_assert_ptr_nonnull(sb);
    wire_sym_batch_t out;
    symbatch_counts_t counts;
    ck_assert_int_eq(symbatch_build(sb, sym, &raw, &out, &counts), 0);
    s_check_sym_batch(&fx, &out);
    ck_assert_uint_eq(counts.frames_resolved + counts.frames_unknown, 12);
    ck_assert_uint_eq(counts.frames_unknown, 4);
    /* Every frame has a distinct (object, offset) here: no memo hits. */
    ck_assert_uint_eq(counts.lookups, 12);

    /* The wire codec accepts the result and gives it back unchanged. */
    wire_buf_t buf;
    wire_buf_init(&buf);
    wire_header_set(&out.hdr, "symbolizer/test", 1);
    ck_assert_int_eq(wire_encode_sym_batch(&out, &buf), 0);
    arena_t *arena = arena_new(0);
    wire_sym_batch_t back;
    char err[256];
    ck_assert_msg(wire_decode_sym_batch(buf.data, buf.len, arena, &back, err,
                                        sizeof(err)) == 0, "%s", err);
    s_check_sym_batch(&fx, &back);
    arena_destroy(&arena);
    wire_buf_release(&buf);

    /* Reuse: a second build with the same input gives the same result and
     * now the memo serves repeats within the batch. */
    samples[1].uframes = uf[0];
    ck_assert_int_eq(symbatch_build(sb, sym, &raw, &out, &counts), 0);
    ck_assert_uint_eq(out.samples[1].frames[2], out.samples[0].frames[2]);
    ck_assert_uint_eq(counts.lookups, 8);   /* 6 + the 2 other kernel */

    /* An empty batch. */
    raw.nsamples = 0;
    ck_assert_int_eq(symbatch_build(sb, sym, &raw, &out, &counts), 0);
    ck_assert_uint_eq(out.nsamples, 0);
    ck_assert_uint_eq(out.nframes, 0);

    symbatch_destroy(&sb);
    ck_assert_ptr_null(sb);
    symbolizer_destroy(&sym);
    s_fixture_free(&fx);
}
END_TEST

/* ---------------------------------------------------- stage end to end */

typedef struct {
    bus_t *bus;
    arena_t *arena;
    wire_sym_batch_t got;
    char topic[64];
    int received;
} receiver_t;

static int
s_poll_sym(void *arg)
{
    receiver_t *r = arg;
    const char *topic;
    const void *data;
    size_t len;
    while (!r->received && bus_recv(r->bus, &topic, &data, &len) == 1) {
        char err[256];
        if (strncmp(topic, TOPIC_SYM_STACKS, strlen(TOPIC_SYM_STACKS)) != 0)
            continue;
        arena_reset(r->arena);
        if (wire_decode_sym_batch(data, len, r->arena, &r->got, err,
                                  sizeof(err)) == 0) {
            snprintf(r->topic, sizeof(r->topic), "%s", topic);
            r->received = 1;
        }
    }
    return r->received;
}

/* Like tu_spawn, but the child dies with the test process: a failed
 * assertion ends the test without running any cleanup, and the stage
 * processes must not outlive it. */
static pid_t
s_spawn(char *const argv[], const char *log_path)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    execv(argv[0], argv);
    _exit(127);
}

START_TEST(test_stage_end_to_end)
{
    fixture_t fx;
    s_fixture(&fx);
    char in[600], out[600], cfg[600], log_path[600];
    snprintf(in, sizeof(in), "ipc://%s/bus-in", fx.dir);
    snprintf(out, sizeof(out), "ipc://%s/bus-out", fx.dir);
    snprintf(cfg, sizeof(cfg), "%s/skyprof.yaml", fx.dir);
    snprintf(log_path, sizeof(log_path), "%s/stage.log", fx.dir);
    char yaml[2400];
    snprintf(yaml, sizeof(yaml),
             "runtime_dir: %s\nbus:\n  in: %s\n  out: %s\n"
             "symbolizer:\n  cache_size: 8MB\n  debug_dirs: \"\"\n",
             fx.dir, in, out);
    tu_write_file(cfg, yaml);

    char broker[600], symb[600];
    snprintf(broker, sizeof(broker), "%s", tu_build_path("bin/skyprof-broker"));
    snprintf(symb, sizeof(symb), "%s",
             tu_build_path("bin/skyprof-symbolizer"));
    char *bargv[] = { broker, "--config", cfg, NULL };
    char *sargv[] = { symb, "--config", cfg, NULL };
    pid_t bpid = s_spawn(bargv, log_path);
    pid_t spid = s_spawn(sargv, log_path);
    ck_assert_int_gt(bpid, 0);
    ck_assert_int_gt(spid, 0);

    void *ctx = zmq_ctx_new();
    stats_t *stats = stats_new("test", "t");
    bus_options_t bo = { in, out, 1000, 1000, "collector/test", NULL };
    receiver_t r = { 0 };
    r.bus = bus_new(ctx, &bo, stats);
    r.arena = arena_new(0);
    ck_assert_ptr_nonnull(r.bus);
    ck_assert_int_eq(bus_subscribe(r.bus, TOPIC_SYM_STACKS), 0);

    /* Both pids in one bucket, as the collector would batch them. */
    wire_raw_batch_t raw;
    wire_object_t objs[2];
    wire_proc_t procs[2];
    wire_raw_sample_t samples[2];
    uint64_t kf[2][2];
    wire_uframe_t uf[2][4];
    const char *task_ids[1];
    uint32_t tasks[1];
    s_raw_batch(&fx, &raw, objs, procs, samples, kf, uf, task_ids, tasks);
    /* The decoder refuses frames naming objects outside the table. */
    uf[1][2] = (wire_uframe_t){ WIRE_NO_OBJECT, 0x99 };
    uint32_t pid2 = 201;
    while (wire_pid_bucket(pid2) != wire_pid_bucket(100))
        pid2++;
    samples[1].pid = procs[1].pid = pid2;
    char raw_topic[32], want_topic[32];
    wire_sharded_topic(raw_topic, sizeof(raw_topic), TOPIC_RAW_STACKS, 100);
    wire_sharded_topic(want_topic, sizeof(want_topic), TOPIC_SYM_STACKS, 100);

    /* Also a malformed payload first: it must be dropped, not crash. */
    wire_buf_t buf;
    wire_buf_init(&buf);
    /* Subscriptions travel through the broker asynchronously: publish
     * until the symbolizer answers (bounded by the wait below). */
    for (int attempt = 0; attempt < 100 && !r.received; attempt++) {
        bus_publish(r.bus, raw_topic, "\x93\x01\x02", 3);
        wire_buf_reset(&buf);
        wire_header_set(&raw.hdr, "collector/test",
                        bus_next_seq(r.bus, raw_topic));
        ck_assert_int_eq(wire_encode_raw_batch(&raw, &buf), 0);
        bus_publish(r.bus, raw_topic, buf.data, buf.len);
        tu_wait_until(s_poll_sym, &r, 200);
    }
    wire_buf_release(&buf);
    ck_assert_msg(r.received, "no symbolized batch came back");
    ck_assert_str_eq(r.topic, want_topic);
    ck_assert_uint_eq(r.got.nsamples, 2);
    const wire_sym_sample_t *s0 = &r.got.samples[0];
    ck_assert_uint_eq(s0->nframes, 6);
    ck_assert_uint_eq(s0->nkernel, 2);
    ck_assert_str_eq(r.got.frames[s0->frames[2]].name, "skyt_alpha");
    ck_assert_str_eq(r.got.frames[s0->frames[3]].name, "skyt_beta");
    ck_assert_str_eq(r.got.frames[s0->frames[5]].name,
                     "[unknown] 0x00007fff12345678");
    ck_assert_str_eq(r.got.task_ids[0], "task-1");

    /* Clean exit on SIGTERM. */
    ck_assert_int_eq(tu_stop(spid, 10000), 0);
    tu_stop(bpid, 10000);
    bus_destroy(&r.bus);
    arena_destroy(&r.arena);
    stats_destroy(&stats);
    zmq_ctx_term(ctx);
    s_fixture_free(&fx);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("symbolizer_batch");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_batch_conversion);
    if (access(tu_build_path("bin/skyprof-symbolizer"), X_OK) == 0 &&
        access(tu_build_path("bin/skyprof-broker"), X_OK) == 0)
        tcase_add_test(tc, test_stage_end_to_end);
    else
        tu_skip("test_stage_end_to_end", "skyprof-symbolizer or "
                "skyprof-broker not built");
    suite_add_tcase(s, tc);
    return tu_run(s);
}
