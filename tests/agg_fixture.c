#include "agg_fixture.h"

#include <string.h>

enum { F_KLEAF, F_KSYS, F_ULEAF, F_LIBC, F_MAIN, NFRAMES };

static const wire_frame_t s_frames[NFRAMES] = {
    { "k_leaf", WIRE_FRAME_KERNEL }, { "k_sys", WIRE_FRAME_KERNEL },
    { "u_leaf", WIRE_FRAME_USER },   { "libc_read", WIRE_FRAME_LIB },
    { "main", WIRE_FRAME_USER },
};
static const uint32_t s_stack_a[] = { F_KLEAF, F_KSYS, F_ULEAF, F_LIBC,
                                      F_MAIN };
static const uint32_t s_stack_b[] = { F_ULEAF, F_MAIN };
static const uint32_t s_stack_c[] = { F_KSYS, F_MAIN };
static const uint32_t s_task0[] = { 0 };
static const char *const s_task_ids[] = { "t1" };
static const wire_proc_t s_procs[] = { { 100, 100, "app", "" },
                                       { 200, 200, "db", "" } };

/* pid 100 "app" thread "worker": 3 on-CPU samples (30 ms) of stack A for
 * task t1 and 4 off-CPU switches (4 ms) of stack C for t1; pid 200 "db":
 * 2 on-CPU samples (20 ms) of stack B, no task. */
void agg_fixture_batch(wire_sym_batch_t *b,
                       wire_sym_sample_t samples[AGG_FIXTURE_SAMPLES])
{
    memset(b, 0, sizeof(*b));
    memset(samples, 0, AGG_FIXTURE_SAMPLES * sizeof(*samples));
    wire_header_set(&b->hdr, "symbolizer/test", 1);
    b->nframes = NFRAMES;
    b->frames = s_frames;
    b->nprocs = 2;
    b->procs = s_procs;
    b->ntask_ids = 1;
    b->task_ids = s_task_ids;
    samples[0] = (wire_sym_sample_t){ .pid = 100, .tid = 101,
        .kind = WIRE_KIND_ON_CPU, .count = 3, .weight_ns = 30000000,
        .comm = "worker", .nframes = 5, .frames = s_stack_a, .nkernel = 2,
        .ntasks = 1, .tasks = s_task0 };
    samples[1] = (wire_sym_sample_t){ .pid = 200, .tid = 200,
        .kind = WIRE_KIND_ON_CPU, .count = 2, .weight_ns = 20000000,
        .comm = "db", .nframes = 2, .frames = s_stack_b, .nkernel = 0 };
    samples[2] = (wire_sym_sample_t){ .pid = 100, .tid = 102,
        .kind = WIRE_KIND_OFF_CPU, .count = 4, .weight_ns = 4000000,
        .comm = "worker", .nframes = 2, .frames = s_stack_c, .nkernel = 1,
        .ntasks = 1, .tasks = s_task0 };
    b->nsamples = AGG_FIXTURE_SAMPLES;
    b->samples = samples;
}

