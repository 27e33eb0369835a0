/* Codec round trips for every bus message, and rejection of truncated,
 * oversized, wrongly typed and wrong-version payloads. */
#include <inttypes.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "wire.h"

static arena_t *s_arena;
static wire_buf_t s_buf;
static char s_err[256];

static void setup(void)
{
    s_arena = arena_new(1 << 20);
    wire_buf_init(&s_buf);
    s_err[0] = '\0';
}

static void teardown(void)
{
    arena_destroy(&s_arena);
    wire_buf_release(&s_buf);
}

/* A raw batch with two objects, one proc, two tasks, two samples. */
static void s_make_raw(wire_raw_batch_t *m, wire_object_t objs[2],
                       wire_raw_sample_t samples[2])
{
    static const uint64_t kf[] = {0xffffffff81000010ull, 0xffffffff81000020ull};
    static const wire_uframe_t uf[] = {{7, 0x1130}, {9, 0x2a0}, {WIRE_NO_OBJECT, 0x7f0012345678ull}};
    static const uint32_t tasks0[] = {1};
    static const char *const task_ids[] = {"task-a", "task-b"};
    static const wire_proc_t procs[] = {{4242, 12, "cpu_workload", "abc123"}};
    memset(m, 0, sizeof *m);
    memset(objs, 0, 2 * sizeof objs[0]);
    memset(samples, 0, 2 * sizeof samples[0]);
    objs[0] = (wire_object_t){.id = 7, .type = WIRE_OBJ_EXE, .build_id_len = 20,
                              .dev = 2049, .ino = 1234, .pid = 4242,
                              .path = "/usr/bin/cpu_workload"};
    memset(objs[0].build_id, 0xab, 20);
    objs[1] = (wire_object_t){.id = 9, .type = WIRE_OBJ_LIB, .dev = 2049,
                              .ino = 99, .path = "/lib/libskyload.so"};
    samples[0] = (wire_raw_sample_t){.pid = 4242, .tid = 4243, .cpu = 1,
                                     .kind = WIRE_KIND_ON_CPU, .ts_ns = 111,
                                     .count = 3, .weight_ns = 27000000,
                                     .comm = "worker", .nk = 2, .kframes = kf,
                                     .nu = 3, .uframes = uf, .ntasks = 1,
                                     .tasks = tasks0};
    samples[1] = (wire_raw_sample_t){.pid = 4242, .tid = 4242,
                                     .kind = WIRE_KIND_OFF_CPU, .count = 5,
                                     .weight_ns = 123456789, .comm = "main",
                                     .nu = 1, .uframes = uf};
    wire_header_set(&m->hdr, "collector/test", 42);
    m->nobjects = 2;
    m->objects = objs;
    m->nprocs = 1;
    m->procs = procs;
    m->ntask_ids = 2;
    m->task_ids = task_ids;
    m->nsamples = 2;
    m->samples = samples;
}

START_TEST(raw_batch_round_trip)
{
    wire_raw_batch_t in, out;
    wire_object_t objs[2];
    wire_raw_sample_t samples[2];
    s_make_raw(&in, objs, samples);
    ck_assert_int_eq(wire_encode_raw_batch(&in, &s_buf), 0);
    ck_assert_int_eq(wire_decode_raw_batch(s_buf.data, s_buf.len, s_arena,
                                           &out, s_err, sizeof s_err), 0);
    ck_assert_str_eq(out.hdr.sender, "collector/test");
    ck_assert_uint_eq(out.hdr.seq, 42);
    ck_assert_uint_eq(out.nobjects, 2);
    ck_assert_uint_eq(out.objects[0].build_id_len, 20);
    ck_assert_uint_eq(out.objects[0].build_id[19], 0xab);
    ck_assert_str_eq(out.objects[1].path, "/lib/libskyload.so");
    ck_assert_str_eq(out.procs[0].container_id, "abc123");
    ck_assert_str_eq(out.task_ids[1], "task-b");
    ck_assert_uint_eq(out.nsamples, 2);
    ck_assert_uint_eq(out.samples[0].nk, 2);
    ck_assert_uint_eq(out.samples[0].kframes[1], 0xffffffff81000020ull);
    ck_assert_uint_eq(out.samples[0].nu, 3);
    ck_assert_uint_eq(out.samples[0].uframes[1].object, 9);
    ck_assert_uint_eq(out.samples[0].uframes[2].object, WIRE_NO_OBJECT);
    ck_assert_uint_eq(out.samples[0].uframes[2].offset, 0x7f0012345678ull);
    ck_assert_uint_eq(out.samples[0].tasks[0], 1);
    ck_assert_str_eq(out.samples[0].comm, "worker");
    ck_assert_uint_eq(out.samples[1].weight_ns, 123456789);
    ck_assert_uint_eq(out.samples[1].kind, WIRE_KIND_OFF_CPU);
}
END_TEST

START_TEST(raw_batch_rejects_every_truncation)
{
    wire_raw_batch_t in, out;
    wire_object_t objs[2];
    wire_raw_sample_t samples[2];
    s_make_raw(&in, objs, samples);
    ck_assert_int_eq(wire_encode_raw_batch(&in, &s_buf), 0);
    for (size_t len = 0; len < s_buf.len; len++) {
        arena_reset(s_arena);
        s_err[0] = '\0';
        ck_assert_int_eq(wire_decode_raw_batch(s_buf.data, len, s_arena, &out,
                                               s_err, sizeof s_err), -1);
        ck_assert(s_err[0] != '\0');
    }
}
END_TEST

START_TEST(raw_batch_rejects_unknown_object_and_bad_task_index)
{
    wire_raw_batch_t in, out;
    wire_object_t objs[2];
    wire_raw_sample_t samples[2];
    s_make_raw(&in, objs, samples);
    static const wire_uframe_t bad_uf[] = {{8, 0x10}};
    samples[1].uframes = bad_uf;
    samples[1].nu = 1;
    ck_assert_int_eq(wire_encode_raw_batch(&in, &s_buf), 0);
    ck_assert_int_eq(wire_decode_raw_batch(s_buf.data, s_buf.len, s_arena,
                                           &out, s_err, sizeof s_err), -1);
    ck_assert_ptr_nonnull(strstr(s_err, "unknown object"));

    s_make_raw(&in, objs, samples);
    static const uint32_t bad_tasks[] = {2};
    samples[0].tasks = bad_tasks;
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_raw_batch(&in, &s_buf), 0);
    ck_assert_int_eq(wire_decode_raw_batch(s_buf.data, s_buf.len, s_arena,
                                           &out, s_err, sizeof s_err), -1);
    ck_assert_ptr_nonnull(strstr(s_err, "out of range"));
}
END_TEST

/* Hand-built payloads through msgpack-c's packer. */
static msgpack_sbuffer s_sb;
static msgpack_packer s_pk;

static void s_pk_begin(void)
{
    msgpack_sbuffer_init(&s_sb);
    msgpack_packer_init(&s_pk, &s_sb, msgpack_sbuffer_write);
}

static void s_pk_header(uint32_t fields, uint64_t version)
{
    msgpack_pack_array(&s_pk, fields);
    msgpack_pack_uint64(&s_pk, version);
    msgpack_pack_str(&s_pk, 1);
    msgpack_pack_str_body(&s_pk, "x", 1);
    msgpack_pack_uint64(&s_pk, 1);
    msgpack_pack_uint64(&s_pk, 1);
}

START_TEST(rejects_wrong_version)
{
    wire_proc_events_t ev;
    s_pk_begin();
    s_pk_header(5, 2);
    msgpack_pack_array(&s_pk, 0);
    ck_assert_int_eq(wire_decode_proc_events(s_sb.data, s_sb.size, s_arena,
                                             &ev, s_err, sizeof s_err), -1);
    ck_assert_ptr_nonnull(strstr(s_err, "version"));
    msgpack_sbuffer_destroy(&s_sb);

    s_pk_begin();
    s_pk_header(5, 1);
    msgpack_pack_array(&s_pk, 0);
    ck_assert_int_eq(wire_decode_proc_events(s_sb.data, s_sb.size, s_arena,
                                             &ev, s_err, sizeof s_err), 0);
    msgpack_sbuffer_destroy(&s_sb);
}
END_TEST

START_TEST(rejects_huge_counts_without_allocating)
{
    /* An array header claiming 4 billion samples in a few bytes. */
    wire_raw_batch_t m;
    s_pk_begin();
    s_pk_header(8, 1);
    msgpack_pack_array(&s_pk, 0);
    msgpack_pack_array(&s_pk, 0);
    msgpack_pack_array(&s_pk, 0);
    static const char huge[] = {(char)0xdd, (char)0xff, (char)0xff,
                                (char)0xff, (char)0xff};
    msgpack_sbuffer_write(&s_sb, huge, sizeof huge);
    ck_assert_int_eq(wire_decode_raw_batch(s_sb.data, s_sb.size, s_arena, &m,
                                           s_err, sizeof s_err), -1);
    ck_assert_ptr_nonnull(strstr(s_err, "exceed"));
    ck_assert_uint_lt(arena_used(s_arena), 4096);
    msgpack_sbuffer_destroy(&s_sb);

    /* Within the bound but larger than the bytes that follow. */
    s_pk_begin();
    s_pk_header(8, 1);
    msgpack_pack_array(&s_pk, 0);
    msgpack_pack_array(&s_pk, 0);
    msgpack_pack_array(&s_pk, 0);
    msgpack_pack_array(&s_pk, 60000);
    ck_assert_int_eq(wire_decode_raw_batch(s_sb.data, s_sb.size, s_arena, &m,
                                           s_err, sizeof s_err), -1);
    ck_assert_ptr_nonnull(strstr(s_err, "cannot fit"));
    msgpack_sbuffer_destroy(&s_sb);
}
END_TEST

START_TEST(rejects_wrong_types_and_trailing_bytes)
{
    wire_task_set_t ts;
    /* generation as a string */
    s_pk_begin();
    s_pk_header(6, 1);
    msgpack_pack_str(&s_pk, 3);
    msgpack_pack_str_body(&s_pk, "abc", 3);
    msgpack_pack_array(&s_pk, 0);
    ck_assert_int_eq(wire_decode_task_set(s_sb.data, s_sb.size, s_arena, &ts,
                                          s_err, sizeof s_err), -1);
    ck_assert_ptr_nonnull(strstr(s_err, "generation"));
    msgpack_sbuffer_destroy(&s_sb);

    /* negative integer where unsigned expected */
    s_pk_begin();
    s_pk_header(6, 1);
    msgpack_pack_int64(&s_pk, -5);
    msgpack_pack_array(&s_pk, 0);
    ck_assert_int_eq(wire_decode_task_set(s_sb.data, s_sb.size, s_arena, &ts,
                                          s_err, sizeof s_err), -1);
    msgpack_sbuffer_destroy(&s_sb);

    /* valid then one extra byte */
    s_pk_begin();
    s_pk_header(6, 1);
    msgpack_pack_uint64(&s_pk, 3);
    msgpack_pack_array(&s_pk, 0);
    ck_assert_int_eq(wire_decode_task_set(s_sb.data, s_sb.size, s_arena, &ts,
                                          s_err, sizeof s_err), 0);
    ck_assert_uint_eq(ts.generation, 3);
    msgpack_pack_nil(&s_pk);
    ck_assert_int_eq(wire_decode_task_set(s_sb.data, s_sb.size, s_arena, &ts,
                                          s_err, sizeof s_err), -1);
    ck_assert_ptr_nonnull(strstr(s_err, "trailing"));
    msgpack_sbuffer_destroy(&s_sb);

    /* not even an array */
    static const char junk[] = "hello world";
    ck_assert_int_eq(wire_decode_task_set(junk, sizeof junk, s_arena, &ts,
                                          s_err, sizeof s_err), -1);
}
END_TEST

START_TEST(rejects_string_with_nul_and_oversized_string)
{
    wire_hello_t h;
    s_pk_begin();
    s_pk_header(8, 1);
    msgpack_pack_str(&s_pk, 3);
    msgpack_pack_str_body(&s_pk, "a\0b", 3);
    msgpack_pack_str(&s_pk, 1);
    msgpack_pack_str_body(&s_pk, "i", 1);
    msgpack_pack_uint64(&s_pk, 1);
    msgpack_pack_uint64(&s_pk, 0);
    ck_assert_int_eq(wire_decode_hello(s_sb.data, s_sb.size, s_arena, &h,
                                       s_err, sizeof s_err), -1);
    ck_assert_ptr_nonnull(strstr(s_err, "NUL"));
    msgpack_sbuffer_destroy(&s_sb);

    char *big = malloc(WIRE_MAX_STR + 10);
    memset(big, 'x', WIRE_MAX_STR + 10);
    s_pk_begin();
    s_pk_header(8, 1);
    msgpack_pack_str(&s_pk, WIRE_MAX_STR + 10);
    msgpack_pack_str_body(&s_pk, big, WIRE_MAX_STR + 10);
    msgpack_pack_str(&s_pk, 1);
    msgpack_pack_str_body(&s_pk, "i", 1);
    msgpack_pack_uint64(&s_pk, 1);
    msgpack_pack_uint64(&s_pk, 0);
    ck_assert_int_eq(wire_decode_hello(s_sb.data, s_sb.size, s_arena, &h,
                                       s_err, sizeof s_err), -1);
    msgpack_sbuffer_destroy(&s_sb);
    free(big);
}
END_TEST

START_TEST(sym_batch_round_trip_and_index_checks)
{
    static const wire_frame_t frames[] = {{"do_syscall_64", WIRE_FRAME_KERNEL},
                                          {"sky_alpha_leaf", WIRE_FRAME_USER},
                                          {"skylib_beta_leaf", WIRE_FRAME_LIB}};
    static const uint32_t f0[] = {0, 1};
    static const uint32_t f1[] = {2};
    static const char *const tids[] = {"t1"};
    static const uint32_t tk[] = {0};
    wire_sym_sample_t samples[2] = {
        {.pid = 1, .tid = 2, .count = 4, .weight_ns = 36000000, .comm = "a",
         .nframes = 2, .frames = f0, .nkernel = 1, .ntasks = 1, .tasks = tk},
        {.pid = 1, .tid = 3, .kind = WIRE_KIND_OFF_CPU, .count = 1,
         .weight_ns = 5, .comm = "b", .nframes = 1, .frames = f1},
    };
    wire_sym_batch_t in = {.nframes = 3, .frames = frames, .ntask_ids = 1,
                           .task_ids = tids, .nsamples = 2, .samples = samples,
                           .origin_sender = "collector/c1", .origin_seq = 77};
    wire_header_set(&in.hdr, "symbolizer/x", 7);
    wire_sym_batch_t out;
    ck_assert_int_eq(wire_encode_sym_batch(&in, &s_buf), 0);
    ck_assert_int_eq(wire_decode_sym_batch(s_buf.data, s_buf.len, s_arena,
                                           &out, s_err, sizeof s_err), 0);
    ck_assert_uint_eq(out.nframes, 3);
    ck_assert_str_eq(out.frames[2].name, "skylib_beta_leaf");
    ck_assert_uint_eq(out.frames[2].type, WIRE_FRAME_LIB);
    ck_assert_uint_eq(out.samples[0].nkernel, 1);
    ck_assert_uint_eq(out.samples[0].frames[1], 1);
    ck_assert_uint_eq(out.samples[1].weight_ns, 5);
    ck_assert_str_eq(out.origin_sender, "collector/c1");
    ck_assert_uint_eq(out.origin_seq, 77);

    /* An encoder refuses a frame index out of range. */
    static const uint32_t bad[] = {3};
    samples[1].frames = bad;
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_sym_batch(&in, &s_buf), -1);
    ck_assert_uint_eq(s_buf.len, 0);
}
END_TEST

START_TEST(task_set_round_trip)
{
    static const uint32_t pids[] = {10, 20};
    static const char *const pids_oap[] = {"p10", "p20"};
    wire_task_t tasks[2] = {
        {.task_id = "oap-1", .target = WIRE_TARGET_OFF_CPU,
         .trigger = WIRE_TRIGGER_FIXED_TIME, .source = WIRE_SRC_OAP,
         .start_ms = 1700000000000ull, .duration_ms = 60000,
         .update_ms = 1700000000001ull, .npids = 2, .pids = pids,
         .process_ids = pids_oap, .extension_json = "null"},
        {.task_id = "local-1", .source = WIRE_SRC_API, .npids = 1,
         .pids = pids, .extension_json = ""},
    };
    wire_task_set_t in = {.generation = 9, .ntasks = 2, .tasks = tasks};
    wire_header_set(&in.hdr, "policy/x", 1);
    wire_task_set_t out;
    ck_assert_int_eq(wire_encode_task_set(&in, &s_buf), 0);
    ck_assert_int_eq(wire_decode_task_set(s_buf.data, s_buf.len, s_arena,
                                          &out, s_err, sizeof s_err), 0);
    ck_assert_uint_eq(out.generation, 9);
    ck_assert_str_eq(out.tasks[0].task_id, "oap-1");
    ck_assert_uint_eq(out.tasks[0].target, WIRE_TARGET_OFF_CPU);
    ck_assert_uint_eq(out.tasks[0].duration_ms, 60000);
    ck_assert_str_eq(out.tasks[0].process_ids[1], "p20");
    ck_assert_str_eq(out.tasks[0].extension_json, "null");
    ck_assert_ptr_null(out.tasks[1].process_ids);
    ck_assert_uint_eq(out.tasks[1].pids[0], 10);

    tasks[0].target = 9; /* out of range */
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_task_set(&in, &s_buf), -1);
}
END_TEST

START_TEST(profile_batch_round_trip)
{
    static const char *const kf[] = {"finish_task_switch", "schedule"};
    static const char *const uf[] = {"sky_alpha_leaf", "main"};
    wire_prof_stack_t stacks[1] = {{.nk = 2, .kframes = kf, .nu = 2,
                                    .uframes = uf, .count = 17,
                                    .duration_ns = 999}};
    wire_task_profile_t profs[1] = {{.task_id = "t", .pid = 5,
                                     .process_id = "oap-p", .start_ms = 3,
                                     .window_start_ms = 4, .window_end_ms = 5,
                                     .nstacks = 1, .stacks = stacks}};
    wire_profile_batch_t in = {.nprofiles = 1, .profiles = profs};
    wire_header_set(&in.hdr, "aggregator/x", 1);
    wire_profile_batch_t out;
    ck_assert_int_eq(wire_encode_profile_batch(&in, &s_buf), 0);
    ck_assert_int_eq(wire_decode_profile_batch(s_buf.data, s_buf.len, s_arena,
                                               &out, s_err, sizeof s_err), 0);
    ck_assert_str_eq(out.profiles[0].process_id, "oap-p");
    ck_assert_uint_eq(out.profiles[0].stacks[0].count, 17);
    ck_assert_str_eq(out.profiles[0].stacks[0].uframes[0], "sky_alpha_leaf");
    ck_assert_str_eq(out.profiles[0].stacks[0].kframes[1], "schedule");
}
END_TEST

START_TEST(stats_hello_proc_events_round_trip)
{
    wire_metric_t metrics[2] = {{"skyprof_x_a_total", "topic=\"raw\"", 0, 12},
                                {"skyprof_x_g", "", 1, 0.25}};
    wire_stats_t st = {.stage = "collector", .instance = "i1", .nmetrics = 2,
                       .metrics = metrics};
    wire_header_set(&st.hdr, "collector/i1", 1);
    wire_stats_t sto;
    ck_assert_int_eq(wire_encode_stats(&st, &s_buf), 0);
    ck_assert_int_eq(wire_decode_stats(s_buf.data, s_buf.len, s_arena, &sto,
                                       s_err, sizeof s_err), 0);
    ck_assert_double_eq(sto.metrics[1].value, 0.25);
    ck_assert_str_eq(sto.metrics[0].labels, "topic=\"raw\"");

    wire_hello_t h = {.role = "symbolizer", .instance = "s2", .started_ms = 5,
                      .leaving = 1}, ho;
    wire_header_set(&h.hdr, "symbolizer/s2", 1);
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_hello(&h, &s_buf), 0);
    ck_assert_int_eq(wire_decode_hello(s_buf.data, s_buf.len, s_arena, &ho,
                                       s_err, sizeof s_err), 0);
    ck_assert_str_eq(ho.instance, "s2");
    ck_assert_uint_eq(ho.leaving, 1);

    wire_proc_event_t evs[1] = {{.type = WIRE_PROC_EXIT, .pid = 77, .ppid = 1,
                                 .comm = "sh", .exe = "/bin/sh",
                                 .cmdline = "sh -c true", .container_id = ""}};
    wire_proc_events_t pe = {.nevents = 1, .events = evs}, peo;
    wire_header_set(&pe.hdr, "collector/i1", 2);
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_proc_events(&pe, &s_buf), 0);
    ck_assert_int_eq(wire_decode_proc_events(s_buf.data, s_buf.len, s_arena,
                                             &peo, s_err, sizeof s_err), 0);
    ck_assert_uint_eq(peo.events[0].type, WIRE_PROC_EXIT);
    ck_assert_str_eq(peo.events[0].cmdline, "sh -c true");
}
END_TEST

/* has_symbols and the alive type: round trip; an event of 9 fields (a
 * collector from before has_symbols) decodes with has_symbols 0; other
 * lengths and values out of range are refused. */
static void s_pk_event(uint32_t fields, uint64_t type, uint64_t has_symbols)
{
    msgpack_pack_array(&s_pk, fields);
    msgpack_pack_uint64(&s_pk, type);
    for (int i = 0; i < 4; i++)
        msgpack_pack_uint64(&s_pk, 5);
    for (int i = 0; i < 4; i++) {
        msgpack_pack_str(&s_pk, 1);
        msgpack_pack_str_body(&s_pk, "x", 1);
    }
    if (fields >= 10)
        msgpack_pack_uint64(&s_pk, has_symbols);
    if (fields >= 11)
        msgpack_pack_uint64(&s_pk, 0);
}

START_TEST(proc_events_has_symbols_and_alive)
{
    wire_proc_event_t evs[2] = {
        {.type = WIRE_PROC_ALIVE, .pid = 7, .comm = "burn", .exe = "/bin/burn",
         .cmdline = "burn 1", .container_id = "c1", .has_symbols = 1},
        {.type = WIRE_PROC_START, .pid = 8, .comm = "sleep",
         .exe = "/bin/sleep", .cmdline = "sleep 9", .container_id = ""}};
    wire_proc_events_t pe = {.nevents = 2, .events = evs}, peo;
    wire_header_set(&pe.hdr, "collector/i1", 3);
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_proc_events(&pe, &s_buf), 0);
    ck_assert_int_eq(wire_decode_proc_events(s_buf.data, s_buf.len, s_arena,
                                             &peo, s_err, sizeof s_err), 0);
    ck_assert_uint_eq(peo.events[0].type, WIRE_PROC_ALIVE);
    ck_assert_uint_eq(peo.events[0].has_symbols, 1);
    ck_assert_str_eq(peo.events[0].container_id, "c1");
    ck_assert_uint_eq(peo.events[1].has_symbols, 0);

    /* An older collector's 9 fields. */
    s_pk_begin();
    s_pk_header(5, 1);
    msgpack_pack_array(&s_pk, 1);
    s_pk_event(9, WIRE_PROC_EXEC, 0);
    ck_assert_int_eq(wire_decode_proc_events(s_sb.data, s_sb.size, s_arena,
                                             &peo, s_err, sizeof s_err), 0);
    ck_assert_uint_eq(peo.events[0].type, WIRE_PROC_EXEC);
    ck_assert_uint_eq(peo.events[0].has_symbols, 0);
    msgpack_sbuffer_destroy(&s_sb);

    const struct { uint32_t fields; uint64_t type, has_symbols; } bad[] = {
        { 8, 0, 0 }, { 11, 0, 0 }, { 10, 0, 2 }, { 10, 4, 1 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_pk_begin();
        s_pk_header(5, 1);
        msgpack_pack_array(&s_pk, 1);
        s_pk_event(bad[i].fields, bad[i].type, bad[i].has_symbols);
        ck_assert_msg(wire_decode_proc_events(s_sb.data, s_sb.size, s_arena,
                                              &peo, s_err, sizeof s_err) == -1,
                      "case %zu accepted", i);
        msgpack_sbuffer_destroy(&s_sb);
    }
    wire_proc_event_t bad_type = {.type = WIRE_PROC_EVENT_MAX + 1};
    wire_proc_events_t pb = {.nevents = 1, .events = &bad_type};
    ck_assert_int_eq(wire_encode_proc_events(&pb, &s_buf), -1);
}
END_TEST

/* ------------------------------------------------ net.events (issue 14) */
/* Three events of one connection: an OPEN with its 4-tuple, a DATA with a
 * captured prefix shorter than the call, a CLOSE with the kernel totals. */
static const uint8_t s_net_payload[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";

static void s_make_net(wire_net_batch_t *m, wire_net_event_t ev[3])
{
    static const uint8_t lo[16] = {[10] = 0xff, [11] = 0xff, [12] = 127,
                                   [15] = 1};
    memset(m, 0, sizeof *m);
    memset(ev, 0, 3 * sizeof ev[0]);
    ev[0] = (wire_net_event_t){.kind = WIRE_NET_OPEN, .pid = 4242, .tid = 4243,
                               .conn_id = 0x1234567890abull, .ts_ns = 100,
                               .proto = WIRE_NET_TCP,
                               .role = WIRE_NET_ROLE_CLIENT, .pre_existing = 1,
                               .local_port = 51000, .remote_port = 8080,
                               .peer_pid = 4300, .dur_ns = 55000};
    memcpy(ev[0].local_addr, lo, 16);
    memcpy(ev[0].remote_addr, lo, 16);
    ev[0].remote_addr[15] = 2;
    ev[1] = (wire_net_event_t){.kind = WIRE_NET_DATA, .pid = 4242, .tid = 4243,
                               .conn_id = 0x1234567890abull, .ts_ns = 200,
                               .dir = WIRE_NET_OUT, .is_ssl = 1,
                               .bytes = 1u << 20, .rtt_us = 31,
                               .ncaptured = sizeof s_net_payload - 1,
                               .payload = s_net_payload, .dur_ns = 7000};
    ev[2] = (wire_net_event_t){.kind = WIRE_NET_CLOSE, .pid = 4242,
                               .conn_id = 0x1234567890abull, .ts_ns = 300,
                               .proto = WIRE_NET_UNIX,
                               .role = WIRE_NET_ROLE_SERVER,
                               .bytes_sent = 1u << 20, .bytes_received = 99,
                               .count = 3, .local_port = 65535};
    wire_header_set(&m->hdr, "collector/test", 9);
    m->nevents = 3;
    m->events = ev;
    m->lost = 17;
    m->node = "node-a";
}

START_TEST(net_batch_round_trip)
{
    wire_net_batch_t in, out;
    wire_net_event_t ev[3];
    s_make_net(&in, ev);
    ck_assert_int_eq(wire_encode_net_batch(&in, &s_buf), 0);
    ck_assert_int_eq(wire_decode_net_batch(s_buf.data, s_buf.len, s_arena,
                                           &out, s_err, sizeof s_err), 0);
    ck_assert_uint_eq(out.nevents, 3);
    ck_assert_uint_eq(out.lost, 17);
    ck_assert_str_eq(out.node, "node-a");
    ck_assert_uint_eq(out.hdr.seq, 9);
    for (int i = 0; i < 3; i++) {
        const wire_net_event_t *a = &ev[i], *b = &out.events[i];
        ck_assert_uint_eq(a->kind, b->kind);
        ck_assert_uint_eq(a->pid, b->pid);
        ck_assert_uint_eq(a->tid, b->tid);
        ck_assert_uint_eq(a->conn_id, b->conn_id);
        ck_assert_uint_eq(a->ts_ns, b->ts_ns);
        ck_assert_uint_eq(a->proto, b->proto);
        ck_assert_uint_eq(a->role, b->role);
        ck_assert_uint_eq(a->pre_existing, b->pre_existing);
        ck_assert_mem_eq(a->local_addr, b->local_addr, 16);
        ck_assert_mem_eq(a->remote_addr, b->remote_addr, 16);
        ck_assert_uint_eq(a->local_port, b->local_port);
        ck_assert_uint_eq(a->remote_port, b->remote_port);
        ck_assert_uint_eq(a->peer_pid, b->peer_pid);
        ck_assert_uint_eq(a->dur_ns, b->dur_ns);
        ck_assert_uint_eq(a->dir, b->dir);
        ck_assert_uint_eq(a->is_ssl, b->is_ssl);
        ck_assert_uint_eq(a->bytes, b->bytes);
        ck_assert_uint_eq(a->rtt_us, b->rtt_us);
        ck_assert_uint_eq(a->ncaptured, b->ncaptured);
        ck_assert_uint_eq(a->bytes_sent, b->bytes_sent);
        ck_assert_uint_eq(a->bytes_received, b->bytes_received);
        ck_assert_uint_eq(a->count, b->count);
    }
    ck_assert_ptr_null(out.events[0].payload);
    ck_assert_mem_eq(out.events[1].payload, s_net_payload,
                     sizeof s_net_payload - 1);
    /* The payload is the arena's copy, not a pointer into the message. */
    ck_assert(out.events[1].payload < (const uint8_t *)s_buf.data ||
              out.events[1].payload >= (const uint8_t *)s_buf.data + s_buf.len);

    /* Without a node the version-1 layout: 2 body fields. */
    in.node = "";
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_net_batch(&in, &s_buf), 0);
    ck_assert_uint_eq((uint8_t)s_buf.data[0], 0x96);
    ck_assert_int_eq(wire_decode_net_batch(s_buf.data, s_buf.len, s_arena,
                                           &out, s_err, sizeof s_err), 0);
    ck_assert_str_eq(out.node, "");

    /* Every truncation is refused with a reason. */
    for (size_t len = 0; len < s_buf.len; len++) {
        arena_reset(s_arena);
        s_err[0] = '\0';
        ck_assert_int_eq(wire_decode_net_batch(s_buf.data, len, s_arena, &out,
                                               s_err, sizeof s_err), -1);
        ck_assert(s_err[0] != '\0');
    }
}
END_TEST

/* The encoder refuses every bound the decoder enforces (nothing appended). */
START_TEST(net_batch_encoder_refuses_bounds)
{
    static uint8_t big[WIRE_MAX_NET_PAYLOAD + 1];
    wire_net_batch_t in;
    wire_net_event_t ev[3];
    for (int c = 0; c < 11; c++) {
        s_make_net(&in, ev);
        wire_net_event_t *e = &ev[1];
        switch (c) {
        case 0: e->kind = WIRE_NET_KIND_MAX + 1; break;
        case 1: e->proto = WIRE_NET_PROTO_MAX + 1; break;
        case 2: e->role = WIRE_NET_ROLE_MAX + 1; break;
        case 3: e->dir = WIRE_NET_DIR_MAX + 1; break;
        case 4: e->pre_existing = 2; break;
        case 5: e->is_ssl = 2; break;
        case 6: e->bytes = e->ncaptured - 1; break;
        case 7: e->payload = big; e->bytes = sizeof big;
                e->ncaptured = sizeof big; break;
        case 8: e->payload = NULL; break;
        case 9: in.nevents = WIRE_MAX_NET_EVENTS + 1; break;
        default: {
            static char node[WIRE_MAX_NODE + 2];
            memset(node, 'n', sizeof node - 1);
            in.node = node;
        }
        }
        wire_buf_reset(&s_buf);
        ck_assert_msg(wire_encode_net_batch(&in, &s_buf) == -1,
                      "case %d accepted", c);
        ck_assert_uint_eq(s_buf.len, 0);
    }
    /* At the bound itself: accepted. */
    s_make_net(&in, ev);
    ev[1].payload = big;
    ev[1].bytes = ev[1].ncaptured = WIRE_MAX_NET_PAYLOAD;
    ck_assert_int_eq(wire_encode_net_batch(&in, &s_buf), 0);
}
END_TEST

/* A hand-packed event of `fields` fields where field `bad` (or none, -1)
 * carries `value`; fields 8 and 9 are the addresses (bin of addr_len),
 * field 18 the payload (bin of ncap bytes). */
static void s_pk_net_event(uint32_t fields, int bad, uint64_t value,
                           uint32_t addr_len, uint32_t ncap)
{
    static const uint8_t zero[WIRE_MAX_NET_PAYLOAD + 8];
    msgpack_pack_array(&s_pk, fields);
    for (uint32_t f = 0; f < fields; f++) {
        if (f == 8 || f == 9) {
            msgpack_pack_bin(&s_pk, addr_len);
            msgpack_pack_bin_body(&s_pk, zero, addr_len);
        } else if (f == 18) {
            msgpack_pack_bin(&s_pk, ncap);
            msgpack_pack_bin_body(&s_pk, zero, ncap);
        } else if ((int)f == bad) {
            msgpack_pack_uint64(&s_pk, value);
        } else {
            msgpack_pack_uint64(&s_pk, f == 16 ? 100 : 0); /* bytes = 100 */
        }
    }
}

static int s_decode_net_pk(void)
{
    wire_net_batch_t out;
    arena_reset(s_arena);
    s_err[0] = '\0';
    int rc = wire_decode_net_batch(s_sb.data, s_sb.size, s_arena, &out, s_err,
                                   sizeof s_err);
    msgpack_sbuffer_destroy(&s_sb);
    return rc;
}

START_TEST(net_batch_rejects_malformed)
{
    /* The hand packer itself produces a valid batch. */
    s_pk_begin();
    s_pk_header(6, 1);
    msgpack_pack_array(&s_pk, 1);
    s_pk_net_event(22, -1, 0, 16, 100);
    msgpack_pack_uint64(&s_pk, 0);
    ck_assert_msg(s_decode_net_pk() == 0, "%s", s_err);

    const struct {
        uint32_t fields;
        int bad;
        uint64_t value;
        uint32_t addr_len, ncap;
    } bad[] = {
        {21, -1, 0, 16, 0},                       /* too few fields */
        {23, -1, 0, 16, 0},                       /* too many */
        {22, 0, WIRE_NET_KIND_MAX + 1, 16, 0},    /* kind */
        {22, 1, 1ull << 32, 16, 0},               /* pid */
        {22, 5, WIRE_NET_PROTO_MAX + 1, 16, 0},   /* proto */
        {22, 6, WIRE_NET_ROLE_MAX + 1, 16, 0},    /* role */
        {22, 7, 2, 16, 0},                        /* pre_existing */
        {22, -1, 0, 15, 0},                       /* short address */
        {22, -1, 0, 17, 0},                       /* long address */
        {22, 10, 65536, 16, 0},                   /* local port */
        {22, 11, 65536, 16, 0},                   /* remote port */
        {22, 14, WIRE_NET_DIR_MAX + 1, 16, 0},    /* dir */
        {22, 15, 2, 16, 0},                       /* is_ssl */
        {22, -1, 0, 16, 101},                     /* captured > bytes */
        {22, 16, WIRE_MAX_NET_PAYLOAD + 8, 16,
         WIRE_MAX_NET_PAYLOAD + 1},               /* payload over bound */
        {22, 17, 1ull << 32, 16, 0},              /* rtt_us */
        {22, 21, 1ull << 32, 16, 0},              /* count */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_pk_begin();
        s_pk_header(6, 1);
        msgpack_pack_array(&s_pk, 1);
        s_pk_net_event(bad[i].fields, bad[i].bad, bad[i].value,
                       bad[i].addr_len, bad[i].ncap);
        msgpack_pack_uint64(&s_pk, 0);
        ck_assert_msg(s_decode_net_pk() == -1, "case %zu accepted", i);
        ck_assert_msg(s_err[0] != '\0', "case %zu: no reason", i);
    }

    /* A wrong type for `lost`, a count beyond the bound, trailing bytes. */
    s_pk_begin();
    s_pk_header(6, 1);
    msgpack_pack_array(&s_pk, 0);
    msgpack_pack_str(&s_pk, 1);
    msgpack_pack_str_body(&s_pk, "x", 1);
    ck_assert_int_eq(s_decode_net_pk(), -1);

    s_pk_begin();
    s_pk_header(6, 1);
    msgpack_pack_array(&s_pk, WIRE_MAX_NET_EVENTS + 1);
    ck_assert_int_eq(s_decode_net_pk(), -1);
    ck_assert_ptr_nonnull(strstr(s_err, "events"));

    s_pk_begin();
    s_pk_header(6, 1);
    msgpack_pack_array(&s_pk, 0);
    msgpack_pack_uint64(&s_pk, 0);
    msgpack_pack_nil(&s_pk);
    ck_assert_int_eq(s_decode_net_pk(), -1);
}
END_TEST

START_TEST(continuous_messages_round_trip)
{
    wire_proc_entity_t ents[1] = {{.pid = 9, .process_id = "p-9",
                                   .layer = "OS_LINUX", .service = "svc",
                                   .instance = "inst", .process_name = "burn"}};
    wire_proc_ids_t ids = {.nentities = 1, .entities = ents}, ido;
    wire_header_set(&ids.hdr, "uplink/u", 1);
    ck_assert_int_eq(wire_encode_proc_ids(&ids, &s_buf), 0);
    ck_assert_int_eq(wire_decode_proc_ids(s_buf.data, s_buf.len, s_arena, &ido,
                                          s_err, sizeof s_err), 0);
    ck_assert_str_eq(ido.entities[0].process_id, "p-9");
    ck_assert_str_eq(ido.entities[0].process_name, "burn");

    wire_policy_update_t pu = {.json = "[{\"ServiceName\":\"svc\"}]"}, puo;
    wire_header_set(&pu.hdr, "uplink/u", 2);
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_policy_update(&pu, &s_buf), 0);
    ck_assert_int_eq(wire_decode_policy_update(s_buf.data, s_buf.len, s_arena,
                                               &puo, s_err, sizeof s_err), 0);
    ck_assert_str_eq(puo.json, pu.json);

    wire_cause_t causes[2] = {{.type = 0, .threshold = 50, .current = 87.5,
                               .uri_regex = "", .uri_path = ""},
                              {.type = 3, .threshold = 15, .current = 40,
                               .uri_regex = "/api.*", .uri_path = ""}};
    wire_trigger_t tr = {.pid = 9, .target = WIRE_TARGET_ON_CPU,
                         .duration_ms = 600000, .service = "svc",
                         .ncauses = 2, .causes = causes}, tro;
    wire_header_set(&tr.hdr, "policy/p", 3);
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_trigger(&tr, &s_buf), 0);
    ck_assert_int_eq(wire_decode_trigger(s_buf.data, s_buf.len, s_arena, &tro,
                                         s_err, sizeof s_err), 0);
    ck_assert_uint_eq(tro.ncauses, 2);
    ck_assert_double_eq(tro.causes[0].current, 87.5);
    ck_assert_str_eq(tro.causes[1].uri_regex, "/api.*");
    ck_assert_uint_eq(tro.duration_ms, 600000);
    causes[1].type = 9;
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_trigger(&tr, &s_buf), -1);

    wire_meter_t ms[1] = {{.name = "rover_con_p_process_cpu", .value = 42.5,
                           .pid = 9, .process_name = "burn",
                           .layer = "OS_LINUX", .uri = ""}};
    wire_meters_t mm = {.ts_ms = 123, .nmeters = 1, .meters = ms}, mmo;
    wire_header_set(&mm.hdr, "policy/p", 4);
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_meters(&mm, &s_buf), 0);
    ck_assert_int_eq(wire_decode_meters(s_buf.data, s_buf.len, s_arena, &mmo,
                                        s_err, sizeof s_err), 0);
    ck_assert_double_eq(mmo.meters[0].value, 42.5);
    ck_assert_str_eq(mmo.meters[0].name, "rover_con_p_process_cpu");
}
END_TEST

START_TEST(arena_limit_bounds_decoding)
{
    /* A valid batch that needs more than the arena allows fails cleanly. */
    wire_raw_batch_t in, out;
    wire_object_t objs[2];
    wire_raw_sample_t samples[2];
    s_make_raw(&in, objs, samples);
    ck_assert_int_eq(wire_encode_raw_batch(&in, &s_buf), 0);
    arena_t *tiny = arena_new(64);
    ck_assert_int_eq(wire_decode_raw_batch(s_buf.data, s_buf.len, tiny, &out,
                                           s_err, sizeof s_err), -1);
    ck_assert_ptr_nonnull(strstr(s_err, "arena"));
    arena_destroy(&tiny);
    ck_assert_ptr_null(tiny);
}
END_TEST

/* The optional node name: present on raw, sym and proc.events messages
 * when the sender has one, "" when a message leaves it out. */
START_TEST(node_field_round_trip_and_optional)
{
    wire_raw_batch_t in, out;
    wire_object_t objs[2];
    wire_raw_sample_t samples[2];
    s_make_raw(&in, objs, samples);
    ck_assert_int_eq(wire_encode_raw_batch(&in, &s_buf), 0);
    size_t without = s_buf.len;
    ck_assert_int_eq(wire_decode_raw_batch(s_buf.data, s_buf.len, s_arena,
                                           &out, s_err, sizeof s_err), 0);
    ck_assert_str_eq(out.node, "");

    in.node = "node-a.example";
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_raw_batch(&in, &s_buf), 0);
    ck_assert_uint_gt(s_buf.len, without);
    ck_assert_int_eq(wire_decode_raw_batch(s_buf.data, s_buf.len, s_arena,
                                           &out, s_err, sizeof s_err), 0);
    ck_assert_str_eq(out.node, "node-a.example");
    ck_assert_uint_eq(out.nsamples, 2);
    ck_assert_uint_eq(out.samples[1].pid, 4242);
    /* Every truncation of the longer form still fails. */
    for (size_t len = 0; len < s_buf.len; len++)
        ck_assert_int_eq(wire_decode_raw_batch(s_buf.data, len, s_arena, &out,
                                               s_err, sizeof s_err), -1);

    static const wire_frame_t frames[] = {{"f", WIRE_FRAME_USER}};
    static const uint32_t f0[] = {0};
    wire_sym_sample_t ss = {.pid = 9, .tid = 9, .count = 1, .comm = "c",
                            .nframes = 1, .frames = f0};
    wire_sym_batch_t sin = {.nframes = 1, .frames = frames, .nsamples = 1,
                            .samples = &ss, .origin_sender = "collector/c",
                            .origin_seq = 3, .node = "node-b"};
    wire_sym_batch_t sout;
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_sym_batch(&sin, &s_buf), 0);
    ck_assert_int_eq(wire_decode_sym_batch(s_buf.data, s_buf.len, s_arena,
                                           &sout, s_err, sizeof s_err), 0);
    ck_assert_str_eq(sout.node, "node-b");
    ck_assert_uint_eq(sout.origin_seq, 3);
    sin.node = NULL;
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_sym_batch(&sin, &s_buf), 0);
    ck_assert_int_eq(wire_decode_sym_batch(s_buf.data, s_buf.len, s_arena,
                                           &sout, s_err, sizeof s_err), 0);
    ck_assert_str_eq(sout.node, "");

    wire_proc_event_t ev = {.type = WIRE_PROC_EXEC, .pid = 9, .comm = "c",
                            .exe = "/bin/c", .cmdline = "c",
                            .container_id = ""};
    wire_proc_events_t pin = {.nevents = 1, .events = &ev, .node = "node-c"};
    wire_proc_events_t pout;
    wire_buf_reset(&s_buf);
    ck_assert_int_eq(wire_encode_proc_events(&pin, &s_buf), 0);
    ck_assert_int_eq(wire_decode_proc_events(s_buf.data, s_buf.len, s_arena,
                                             &pout, s_err, sizeof s_err), 0);
    ck_assert_str_eq(pout.node, "node-c");
    ck_assert_uint_eq(pout.events[0].pid, 9);
}
END_TEST

START_TEST(node_field_rejects_bad_names)
{
    /* Encoders refuse a name longer than WIRE_MAX_NODE. */
    char *long_name = malloc(WIRE_MAX_NODE + 2);
    memset(long_name, 'n', WIRE_MAX_NODE + 1);
    long_name[WIRE_MAX_NODE + 1] = '\0';
    wire_proc_events_t pin = {.nevents = 0, .node = long_name};
    ck_assert_int_eq(wire_encode_proc_events(&pin, &s_buf), -1);
    ck_assert_uint_eq(s_buf.len, 0);
    wire_raw_batch_t rin = {.node = long_name};
    ck_assert_int_eq(wire_encode_raw_batch(&rin, &s_buf), -1);
    wire_sym_batch_t sin = {.origin_sender = "", .node = long_name};
    ck_assert_int_eq(wire_encode_sym_batch(&sin, &s_buf), -1);
    ck_assert_uint_eq(s_buf.len, 0);
    long_name[WIRE_MAX_NODE] = '\0';
    ck_assert_int_eq(wire_encode_proc_events(&pin, &s_buf), 0);

    /* Decoders refuse a too long name, one with a NUL, a non-string and
     * more trailing fields than the one optional name. */
    wire_proc_events_t pout;
    s_pk_begin();
    s_pk_header(6, 1);
    msgpack_pack_array(&s_pk, 0);
    msgpack_pack_str(&s_pk, WIRE_MAX_NODE + 1);
    msgpack_pack_str_body(&s_pk, long_name, WIRE_MAX_NODE + 1);
    ck_assert_int_eq(wire_decode_proc_events(s_sb.data, s_sb.size, s_arena,
                                             &pout, s_err, sizeof s_err), -1);
    ck_assert_ptr_nonnull(strstr(s_err, "node"));
    msgpack_sbuffer_destroy(&s_sb);

    s_pk_begin();
    s_pk_header(6, 1);
    msgpack_pack_array(&s_pk, 0);
    msgpack_pack_str(&s_pk, 3);
    msgpack_pack_str_body(&s_pk, "a\0b", 3);
    ck_assert_int_eq(wire_decode_proc_events(s_sb.data, s_sb.size, s_arena,
                                             &pout, s_err, sizeof s_err), -1);
    ck_assert_ptr_nonnull(strstr(s_err, "NUL"));
    msgpack_sbuffer_destroy(&s_sb);

    s_pk_begin();
    s_pk_header(6, 1);
    msgpack_pack_array(&s_pk, 0);
    msgpack_pack_uint64(&s_pk, 7);
    ck_assert_int_eq(wire_decode_proc_events(s_sb.data, s_sb.size, s_arena,
                                             &pout, s_err, sizeof s_err), -1);
    msgpack_sbuffer_destroy(&s_sb);

    s_pk_begin();
    s_pk_header(7, 1);
    msgpack_pack_array(&s_pk, 0);
    msgpack_pack_str(&s_pk, 1);
    msgpack_pack_str_body(&s_pk, "a", 1);
    msgpack_pack_str(&s_pk, 1);
    msgpack_pack_str_body(&s_pk, "b", 1);
    ck_assert_int_eq(wire_decode_proc_events(s_sb.data, s_sb.size, s_arena,
                                             &pout, s_err, sizeof s_err), -1);
    ck_assert_ptr_nonnull(strstr(s_err, "fields"));
    msgpack_sbuffer_destroy(&s_sb);

    /* At the limit it is accepted. */
    s_pk_begin();
    s_pk_header(6, 1);
    msgpack_pack_array(&s_pk, 0);
    msgpack_pack_str(&s_pk, WIRE_MAX_NODE);
    msgpack_pack_str_body(&s_pk, long_name, WIRE_MAX_NODE);
    ck_assert_int_eq(wire_decode_proc_events(s_sb.data, s_sb.size, s_arena,
                                             &pout, s_err, sizeof s_err), 0);
    ck_assert_uint_eq(strlen(pout.node), WIRE_MAX_NODE);
    msgpack_sbuffer_destroy(&s_sb);
    free(long_name);
}
END_TEST

/* The aggregator replicas' control messages: round trips, then what a
 * replica must refuse (bucket out of range, empty names, a huge claimed
 * mark count, marks of the wrong shape). */
START_TEST(agg_control_messages)
{
    wire_agg_peer_t p = {.instance = "a1", .addr = "10.0.0.7:8080",
                         .leaving = 1}, po;
    ck_assert_int_eq(wire_encode_agg_peer(&p, &s_buf), 0);
    ck_assert_int_eq(wire_decode_agg_peer(s_buf.data, s_buf.len, s_arena, &po,
                                          s_err, sizeof s_err), 0);
    ck_assert_str_eq(po.instance, "a1");
    ck_assert_str_eq(po.addr, "10.0.0.7:8080");
    ck_assert_uint_eq(po.leaving, 1);
    /* A peer message is not a release. */
    wire_agg_release_t not_release;
    ck_assert_int_eq(wire_decode_agg_release(s_buf.data, s_buf.len, s_arena,
                                             &not_release, s_err,
                                             sizeof s_err), -1);

    static const wire_agg_mark_t marks[] = {{"collector/n1.ab", 41},
                                            {"collector/n2.cd", 7}};
    wire_agg_release_t r = {.instance = "a2", .bucket = 63, .nmarks = 2,
                            .marks = marks}, ro;
    s_buf.len = 0;
    ck_assert_int_eq(wire_encode_agg_release(&r, &s_buf), 0);
    ck_assert_int_eq(wire_decode_agg_release(s_buf.data, s_buf.len, s_arena,
                                             &ro, s_err, sizeof s_err), 0);
    ck_assert_str_eq(ro.instance, "a2");
    ck_assert_uint_eq(ro.bucket, 63);
    ck_assert_uint_eq(ro.nmarks, 2);
    ck_assert_str_eq(ro.marks[1].sender, "collector/n2.cd");
    ck_assert_uint_eq(ro.marks[0].seq, 41);
    /* Every truncation is refused. */
    for (size_t cut = 0; cut < s_buf.len; cut++)
        ck_assert_int_eq(wire_decode_agg_release(s_buf.data, cut, s_arena,
                                                 &ro, s_err, sizeof s_err), -1);

    /* The encoder refuses what the decoder would. */
    r.bucket = WIRE_BUCKETS;
    ck_assert_int_eq(wire_encode_agg_release(&r, &s_buf), -1);
    r.bucket = 1;
    r.instance = "";
    ck_assert_int_eq(wire_encode_agg_release(&r, &s_buf), -1);

    /* Bucket out of range on the wire. */
    s_pk_begin();
    s_pk_header(7, 1);
    msgpack_pack_str(&s_pk, 2);
    msgpack_pack_str_body(&s_pk, "a3", 2);
    msgpack_pack_uint64(&s_pk, WIRE_BUCKETS);
    msgpack_pack_array(&s_pk, 0);
    ck_assert_int_eq(wire_decode_agg_release(s_sb.data, s_sb.size, s_arena,
                                             &ro, s_err, sizeof s_err), -1);
    msgpack_sbuffer_destroy(&s_sb);

    /* Four billion marks claimed in a few bytes: refused, nothing taken. */
    size_t used = arena_used(s_arena);
    s_pk_begin();
    s_pk_header(7, 1);
    msgpack_pack_str(&s_pk, 2);
    msgpack_pack_str_body(&s_pk, "a3", 2);
    msgpack_pack_uint64(&s_pk, 3);
    static const char huge[] = {(char)0xdd, (char)0xff, (char)0xff,
                                (char)0xff, (char)0xff};
    msgpack_sbuffer_write(&s_sb, huge, sizeof huge);
    ck_assert_int_eq(wire_decode_agg_release(s_sb.data, s_sb.size, s_arena,
                                             &ro, s_err, sizeof s_err), -1);
    ck_assert_uint_lt(arena_used(s_arena) - used, 4096);
    msgpack_sbuffer_destroy(&s_sb);

    /* A mark that is not [sender, seq]. */
    s_pk_begin();
    s_pk_header(7, 1);
    msgpack_pack_str(&s_pk, 2);
    msgpack_pack_str_body(&s_pk, "a3", 2);
    msgpack_pack_uint64(&s_pk, 3);
    msgpack_pack_array(&s_pk, 1);
    msgpack_pack_array(&s_pk, 1);
    msgpack_pack_uint64(&s_pk, 9);
    ck_assert_int_eq(wire_decode_agg_release(s_sb.data, s_sb.size, s_arena,
                                             &ro, s_err, sizeof s_err), -1);
    msgpack_sbuffer_destroy(&s_sb);

    /* A peer with an empty instance. */
    s_pk_begin();
    s_pk_header(7, 1);
    msgpack_pack_str(&s_pk, 0);
    msgpack_pack_str_body(&s_pk, "", 0);
    msgpack_pack_str(&s_pk, 1);
    msgpack_pack_str_body(&s_pk, "x", 1);
    msgpack_pack_uint64(&s_pk, 0);
    ck_assert_int_eq(wire_decode_agg_peer(s_sb.data, s_sb.size, s_arena, &po,
                                          s_err, sizeof s_err), -1);
    msgpack_sbuffer_destroy(&s_sb);
}
END_TEST

/* Decodes an idle answer packed by hand: instance, bucket (as a string
 * when bucket_as_str), and one field too many when extra. */
static int s_idle_packed(const char *instance, uint64_t bucket,
                         int bucket_as_str, int extra, wire_agg_idle_t *out)
{
    char num[24];
    size_t ilen = strlen(instance);

    s_pk_begin();
    s_pk_header(extra ? 7 : 6, 1);
    msgpack_pack_str(&s_pk, ilen);
    msgpack_pack_str_body(&s_pk, instance, ilen);
    if (bucket_as_str) {
        snprintf(num, sizeof num, "%" PRIu64, bucket);
        msgpack_pack_str(&s_pk, strlen(num));
        msgpack_pack_str_body(&s_pk, num, strlen(num));
    } else {
        msgpack_pack_uint64(&s_pk, bucket);
    }
    if (extra)
        msgpack_pack_uint64(&s_pk, 0);
    int rc = wire_decode_agg_idle(s_sb.data, s_sb.size, s_arena, out, s_err,
                                  sizeof s_err);
    msgpack_sbuffer_destroy(&s_sb);
    return rc;
}

/* The idle answer to a claim: a round trip, then what a replica must
 * refuse (a claim's or release's body, a bucket out of range, an empty
 * instance, trailing fields). */
START_TEST(agg_idle_answers)
{
    wire_agg_idle_t m = {.instance = "a2", .bucket = 63}, mo;
    s_buf.len = 0;
    ck_assert_int_eq(wire_encode_agg_idle(&m, &s_buf), 0);
    ck_assert_int_eq(wire_decode_agg_idle(s_buf.data, s_buf.len, s_arena, &mo,
                                          s_err, sizeof s_err), 0);
    ck_assert_str_eq(mo.instance, "a2");
    ck_assert_uint_eq(mo.bucket, 63);
    for (size_t cut = 0; cut < s_buf.len; cut++)
        ck_assert_int_eq(wire_decode_agg_idle(s_buf.data, cut, s_arena, &mo,
                                              s_err, sizeof s_err), -1);
    /* An idle answer is not a claim, and a claim is not an idle answer. */
    wire_agg_release_t ro;
    ck_assert_int_eq(wire_decode_agg_release(s_buf.data, s_buf.len, s_arena,
                                             &ro, s_err, sizeof s_err), -1);
    wire_agg_release_t claim = {.instance = "a2", .bucket = 3};
    s_buf.len = 0;
    ck_assert_int_eq(wire_encode_agg_release(&claim, &s_buf), 0);
    ck_assert_int_eq(wire_decode_agg_idle(s_buf.data, s_buf.len, s_arena, &mo,
                                          s_err, sizeof s_err), -1);

    /* The encoder refuses what the decoder would. */
    m.bucket = WIRE_BUCKETS;
    ck_assert_int_eq(wire_encode_agg_idle(&m, &s_buf), -1);
    m.bucket = 1;
    m.instance = "";
    ck_assert_int_eq(wire_encode_agg_idle(&m, &s_buf), -1);
    m.instance = NULL;
    ck_assert_int_eq(wire_encode_agg_idle(&m, &s_buf), -1);

    /* Hand-packed bodies the encoder would not write. */
    ck_assert_int_eq(s_idle_packed("a3", WIRE_BUCKETS, 0, 0, &mo), -1);
    ck_assert_int_eq(s_idle_packed("", 2, 0, 0, &mo), -1);
    ck_assert_int_eq(s_idle_packed("a3", 2, 1, 0, &mo), -1); /* "2" */
    ck_assert_int_eq(s_idle_packed("a3", 2, 0, 1, &mo), -1); /* + field */
    /* The same, well formed, decodes (the helpers build a valid header). */
    ck_assert_int_eq(s_idle_packed("a3", 2, 0, 0, &mo), 0);
    ck_assert_uint_eq(mo.bucket, 2);
}
END_TEST

START_TEST(pid_buckets_spread_and_topics)
{
    int seen[WIRE_BUCKETS] = {0};
    for (uint32_t pid = 1; pid <= 6400; pid++)
        seen[wire_pid_bucket(pid)]++;
    for (int b = 0; b < WIRE_BUCKETS; b++) {
        ck_assert_int_gt(seen[b], 50);
        ck_assert_int_lt(seen[b], 150);
    }
    char topic[32];
    wire_sharded_topic(topic, sizeof topic, TOPIC_RAW_STACKS, 1);
    ck_assert_int_eq(strncmp(topic, "raw.stacks.", 11), 0);
    ck_assert_uint_eq(strlen(topic), 13);
}
END_TEST

/* ----------------------------------------------- net.report (issue 14) */
/* A report with an L4 counter, an HTTP histogram, one sampled request and
 * one per-URI row, as the network room publishes it. */
static const double s_nr_bounds[3] = {0, 50, 100};
static const uint64_t s_nr_counts[3] = {1, 4, 2};
static const wire_label_t s_nr_labels[3] = {
    {"side", "server"}, {"protocol", "http"}, {"is_ssl", "false"}};
static const uint8_t s_nr_req[] = "GET /a HTTP/1.1\r\nsw8: 1-x\r\n\r\n";
static const uint8_t s_nr_resp[] = {'H', 0, 0xff, '\n'};

static void s_make_net_report(wire_net_report_t *m, wire_net_meter_t mt[2],
                              wire_net_sample_t *sm, wire_net_http_t *h)
{
    memset(m, 0, sizeof *m);
    mt[0] = (wire_net_meter_t){.name = "client_write_bytes_counter",
                               .pid = 10, .role = WIRE_NET_ROLE_CLIENT,
                               .peer_pid = 11, .peer_address = "",
                               .nlabels = 1, .labels = s_nr_labels,
                               .value = 4096};
    mt[1] = (wire_net_meter_t){.name = "http1_server_duration_histogram",
                               .pid = 11, .role = WIRE_NET_ROLE_SERVER,
                               .peer_address = "10.0.0.7:443", .nlabels = 3,
                               .labels = s_nr_labels, .nbuckets = 3,
                               .bounds = s_nr_bounds, .counts = s_nr_counts};
    *sm = (wire_net_sample_t){.pid = 11, .role = WIRE_NET_ROLE_SERVER,
                              .peer_address = "10.0.0.7:443", .is_ssl = 1,
                              .method = "GET", .uri = "/a", .status = 503,
                              .reason = "5xx", .start_ms = 1000,
                              .end_ms = 1250, .trace_provider = "skywalking",
                              .trace_id = "t1", .segment_id = "s1",
                              .span_id = "0",
                              .req_len = sizeof s_nr_req - 1, .req = s_nr_req,
                              .resp_len = sizeof s_nr_resp,
                              .resp = s_nr_resp};
    *h = (wire_net_http_t){.pid = 11, .uri = "/a", .requests = 7,
                           .errors = 2, .duration_ms_sum = 912.5};
    wire_header_set(&m->hdr, "aggregator/net", 5);
    m->ts_ms = 1700000000123ull;
    m->nmeters = 2;
    m->meters = mt;
    m->nsamples = 1;
    m->samples = sm;
    m->nhttp = 1;
    m->http = h;
}

START_TEST(net_report_round_trip_and_bounds)
{
    wire_net_meter_t mt[2];
    wire_net_sample_t sm;
    wire_net_http_t h;
    wire_net_report_t m, o;
    s_make_net_report(&m, mt, &sm, &h);
    ck_assert_int_eq(wire_encode_net_report(&m, &s_buf), 0);
    ck_assert_int_eq(wire_decode_net_report(s_buf.data, s_buf.len, s_arena,
                                            &o, s_err, sizeof s_err), 0);
    ck_assert_uint_eq(o.ts_ms, 1700000000123ull);
    ck_assert_uint_eq(o.nmeters, 2);
    ck_assert_str_eq(o.meters[0].name, "client_write_bytes_counter");
    ck_assert_uint_eq(o.meters[0].peer_pid, 11);
    ck_assert_double_eq(o.meters[0].value, 4096);
    ck_assert_uint_eq(o.meters[0].nbuckets, 0);
    ck_assert_uint_eq(o.meters[1].role, WIRE_NET_ROLE_SERVER);
    ck_assert_str_eq(o.meters[1].peer_address, "10.0.0.7:443");
    ck_assert_uint_eq(o.meters[1].nlabels, 3);
    ck_assert_str_eq(o.meters[1].labels[2].key, "is_ssl");
    ck_assert_str_eq(o.meters[1].labels[2].value, "false");
    ck_assert_uint_eq(o.meters[1].nbuckets, 3);
    ck_assert_double_eq(o.meters[1].bounds[1], 50);
    ck_assert_uint_eq(o.meters[1].counts[2], 2);
    ck_assert_uint_eq(o.nsamples, 1);
    ck_assert_uint_eq(o.samples[0].status, 503);
    ck_assert_uint_eq(o.samples[0].is_ssl, 1);
    ck_assert_str_eq(o.samples[0].reason, "5xx");
    ck_assert_str_eq(o.samples[0].trace_id, "t1");
    ck_assert_uint_eq(o.samples[0].end_ms, 1250);
    ck_assert_uint_eq(o.samples[0].req_len, sizeof s_nr_req - 1);
    ck_assert_mem_eq(o.samples[0].req, s_nr_req, sizeof s_nr_req - 1);
    ck_assert_uint_eq(o.samples[0].resp_len, 4);
    ck_assert_mem_eq(o.samples[0].resp, s_nr_resp, 4);
    ck_assert_uint_eq(o.nhttp, 1);
    ck_assert_str_eq(o.http[0].uri, "/a");
    ck_assert_uint_eq(o.http[0].errors, 2);
    ck_assert_double_eq(o.http[0].duration_ms_sum, 912.5);

    /* every truncation of the payload is refused */
    for (size_t n = 0; n < s_buf.len; n++)
        ck_assert_msg(wire_decode_net_report(s_buf.data, n, s_arena, &o,
                                             s_err, sizeof s_err) == -1,
                      "truncated to %zu accepted", n);

    /* the encoder refuses what the decoder would refuse; nothing appended */
    size_t before = s_buf.len;
    mt[1].counts = s_nr_counts;
    double bad_bounds[3] = {0, 50, 50};
    mt[1].bounds = bad_bounds;
    ck_assert_int_eq(wire_encode_net_report(&m, &s_buf), -1);
    mt[1].bounds = s_nr_bounds;
    mt[0].role = WIRE_NET_ROLE_MAX + 1;
    ck_assert_int_eq(wire_encode_net_report(&m, &s_buf), -1);
    mt[0].role = WIRE_NET_ROLE_CLIENT;
    mt[0].name = "";
    ck_assert_int_eq(wire_encode_net_report(&m, &s_buf), -1);
    mt[0].name = "x";
    mt[0].nlabels = WIRE_MAX_NET_LABELS + 1;
    ck_assert_int_eq(wire_encode_net_report(&m, &s_buf), -1);
    mt[0].nlabels = 1;
    h.errors = 8;
    ck_assert_int_eq(wire_encode_net_report(&m, &s_buf), -1);
    h.errors = 2;
    sm.req_len = WIRE_MAX_LONG_STR + 1;
    ck_assert_int_eq(wire_encode_net_report(&m, &s_buf), -1);
    ck_assert_uint_eq(s_buf.len, before);
}
END_TEST

/* Hand-made payloads the encoder would never write. */
START_TEST(net_report_rejects_bad_meters)
{
    static const struct {
        const char *what;
        int bounds_n, counts_n;
        double b1;
        int role;
    } cases[] = {
        {"counts differ from bounds", 2, 1, 5, 1},
        {"bounds not increasing", 2, 2, -1, 1},
        {"role out of range", 2, 2, 5, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 8);
        msgpack_pack_uint64(&pk, WIRE_VERSION);
        msgpack_pack_str_with_body(&pk, "a", 1);
        msgpack_pack_uint64(&pk, 1);
        msgpack_pack_uint64(&pk, 1);
        msgpack_pack_uint64(&pk, 99);       /* ts_ms */
        msgpack_pack_array(&pk, 1);         /* meters */
        msgpack_pack_array(&pk, 9);
        msgpack_pack_str_with_body(&pk, "m", 1);
        msgpack_pack_uint64(&pk, 1);
        msgpack_pack_uint64(&pk, (uint64_t)cases[i].role);
        msgpack_pack_uint64(&pk, 0);
        msgpack_pack_str_with_body(&pk, "", 0);
        msgpack_pack_array(&pk, 0);
        msgpack_pack_double(&pk, 1);
        msgpack_pack_array(&pk, (size_t)cases[i].bounds_n);
        msgpack_pack_double(&pk, 0);
        msgpack_pack_double(&pk, cases[i].b1);
        msgpack_pack_array(&pk, (size_t)cases[i].counts_n);
        for (int k = 0; k < cases[i].counts_n; k++)
            msgpack_pack_uint64(&pk, 1);
        msgpack_pack_array(&pk, 0);         /* samples */
        msgpack_pack_array(&pk, 0);         /* http */
        wire_net_report_t o;
        s_err[0] = '\0';
        ck_assert_msg(wire_decode_net_report(sb.data, sb.size, s_arena, &o,
                                             s_err, sizeof s_err) == -1,
                      "%s accepted", cases[i].what);
        ck_assert_msg(s_err[0] != '\0', "%s: no reason", cases[i].what);
        msgpack_sbuffer_destroy(&sb);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("codec");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, raw_batch_round_trip);
    tcase_add_test(tc, raw_batch_rejects_every_truncation);
    tcase_add_test(tc, raw_batch_rejects_unknown_object_and_bad_task_index);
    tcase_add_test(tc, rejects_wrong_version);
    tcase_add_test(tc, rejects_huge_counts_without_allocating);
    tcase_add_test(tc, rejects_wrong_types_and_trailing_bytes);
    tcase_add_test(tc, rejects_string_with_nul_and_oversized_string);
    tcase_add_test(tc, sym_batch_round_trip_and_index_checks);
    tcase_add_test(tc, task_set_round_trip);
    tcase_add_test(tc, profile_batch_round_trip);
    tcase_add_test(tc, stats_hello_proc_events_round_trip);
    tcase_add_test(tc, proc_events_has_symbols_and_alive);
    tcase_add_test(tc, net_batch_round_trip);
    tcase_add_test(tc, net_batch_encoder_refuses_bounds);
    tcase_add_test(tc, net_batch_rejects_malformed);
    tcase_add_test(tc, agg_control_messages);
    tcase_add_test(tc, agg_idle_answers);
    tcase_add_test(tc, continuous_messages_round_trip);
    tcase_add_test(tc, arena_limit_bounds_decoding);
    tcase_add_test(tc, pid_buckets_spread_and_topics);
    tcase_add_test(tc, node_field_round_trip_and_optional);
    tcase_add_test(tc, node_field_rejects_bad_names);
    tcase_add_test(tc, net_report_round_trip_and_bounds);
    tcase_add_test(tc, net_report_rejects_bad_meters);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
