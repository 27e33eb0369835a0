/* SkyWalking profiling data from the aggregator's per-task profiles:
 * one EBPFProfilingData per distinct stack, carrying one
 * EBPFProfilingStackMetadata for the kernel part (PROCESS_KERNEL_SPACE)
 * and one for the user part (PROCESS_USER_SPACE), symbols leaf first, and
 * dumpCount (on-CPU) or switchCount + duration (off-CPU).
 *
 * The task metadata is encoded separately: protobuf messages concatenate
 * (fields of both halves merge), so a stream prefixes the metadata to the
 * first message of each task when it is sent, with the send time as
 * currentTime. */
#ifndef SKYPROF_UPLINK_PROFDATA_H
#define SKYPROF_UPLINK_PROFDATA_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* Stable id of a stack part: a hash of its symbols, non-negative int32
 * (0 for an empty part). */
int32_t profdata_stack_id(uint32_t n, const char *const *symbols);

/* Encodes the stack into *buf (grown with realloc as needed). Returns the
 * length, or 0 when the target has no stack shape (NETWORK) or memory ran
 * out. */
size_t profdata_encode_stack(uint8_t target, const wire_prof_stack_t *stack,
                             uint8_t **buf, size_t *cap);

/* Encodes EBPFProfilingData{task} into *buf; length or 0. */
size_t profdata_encode_meta(const char *task_id, const char *process_id,
                            uint64_t start_ms, uint64_t now_ms,
                            uint8_t **buf, size_t *cap);

#endif
