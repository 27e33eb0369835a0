/* Profiling data encoding: see profdata.h. */
#include "profdata.h"

#include <stdlib.h>
#include <string.h>

#include "Profiling.pb-c.h"

int32_t
profdata_stack_id(uint32_t n, const char *const *symbols)
{
    if (n == 0)
        return 0;
    uint32_t h = 2166136261u;                 /* FNV-1a */
    for (uint32_t i = 0; i < n; i++) {
        for (const unsigned char *c = (const void *)symbols[i]; *c; c++) {
            h ^= *c;
            h *= 16777619u;
        }
        h ^= 0xffu;                           /* frame separator */
        h *= 16777619u;
    }
    h &= 0x7fffffffu;
    return (int32_t)(h ? h : 1);
}

static int
s_reserve(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t want = *cap ? *cap : 1024;
    while (want < need)
        want *= 2;
    uint8_t *grown = realloc(*buf, want);
    if (!grown)
        return -1;
    *buf = grown;
    *cap = want;
    return 0;
}

static size_t
s_pack(const ProtobufCMessage *msg, uint8_t **buf, size_t *cap)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (s_reserve(buf, cap, len ? len : 1) != 0)
        return 0;
    return protobuf_c_message_pack(msg, *buf);
}

static int32_t
s_int32(uint64_t v)
{
    return v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

size_t
profdata_encode_stack(uint8_t target, const wire_prof_stack_t *stack,
                      uint8_t **buf, size_t *cap)
{
    Skywalking__V3__EBPFProfilingStackMetadata kernel =
        SKYWALKING__V3__EBPFPROFILING_STACK_METADATA__INIT;
    Skywalking__V3__EBPFProfilingStackMetadata user =
        SKYWALKING__V3__EBPFPROFILING_STACK_METADATA__INIT;
    kernel.stacktype = SKYWALKING__V3__EBPFPROFILING_STACK_TYPE__PROCESS_KERNEL_SPACE;
    kernel.stackid = profdata_stack_id(stack->nk, stack->kframes);
    kernel.n_stacksymbols = stack->nk;
    kernel.stacksymbols = (char **)stack->kframes;
    user.stacktype = SKYWALKING__V3__EBPFPROFILING_STACK_TYPE__PROCESS_USER_SPACE;
    user.stackid = profdata_stack_id(stack->nu, stack->uframes);
    user.n_stacksymbols = stack->nu;
    user.stacksymbols = (char **)stack->uframes;
    Skywalking__V3__EBPFProfilingStackMetadata *parts[2] = { &kernel, &user };

    Skywalking__V3__EBPFProfilingData data =
        SKYWALKING__V3__EBPFPROFILING_DATA__INIT;
    Skywalking__V3__EBPFOnCPUProfiling on =
        SKYWALKING__V3__EBPFON_CPUPROFILING__INIT;
    Skywalking__V3__EBPFOffCPUProfiling off =
        SKYWALKING__V3__EBPFOFF_CPUPROFILING__INIT;
    if (target == WIRE_TARGET_ON_CPU) {
        on.n_stacks = 2;
        on.stacks = parts;
        on.dumpcount = s_int32(stack->count);
        data.profiling_case = SKYWALKING__V3__EBPFPROFILING_DATA__PROFILING_ON_CPU;
        data.oncpu = &on;
    } else if (target == WIRE_TARGET_OFF_CPU) {
        off.n_stacks = 2;
        off.stacks = parts;
        off.switchcount = s_int32(stack->count);
        off.duration = stack->duration_ns > INT64_MAX
                           ? INT64_MAX : (int64_t)stack->duration_ns;
        data.profiling_case = SKYWALKING__V3__EBPFPROFILING_DATA__PROFILING_OFF_CPU;
        data.offcpu = &off;
    } else {
        return 0;
    }
    return s_pack(&data.base, buf, cap);
}

size_t
profdata_encode_meta(const char *task_id, const char *process_id,
                     uint64_t start_ms, uint64_t now_ms, uint8_t **buf,
                     size_t *cap)
{
    Skywalking__V3__EBPFProfilingTaskMetadata meta =
        SKYWALKING__V3__EBPFPROFILING_TASK_METADATA__INIT;
    meta.taskid = (char *)task_id;
    meta.processid = (char *)process_id;
    meta.profilingstarttime = (int64_t)start_ms;
    meta.currenttime = (int64_t)now_ms;
    Skywalking__V3__EBPFProfilingData data =
        SKYWALKING__V3__EBPFPROFILING_DATA__INIT;
    data.task = &meta;
    return s_pack(&data.base, buf, cap);
}
