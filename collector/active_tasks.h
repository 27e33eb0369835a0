/* The desired task set as the collector follows it: the last good
 * ctl.tasks message, and which ON_CPU and OFF_CPU tasks are active now
 * (start <= now < start + duration) with the pids they target; the same
 * for NETWORK tasks. The policy-engine
 * republishes the full state every few seconds, so this is reconciliation,
 * not event handling: applying the same set twice changes nothing. */
#ifndef SKYPROF_COLLECTOR_ACTIVE_TASKS_H
#define SKYPROF_COLLECTOR_ACTIVE_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

typedef struct activetasks activetasks_t;

activetasks_t *activetasks_new(void);
void activetasks_destroy(activetasks_t **self_p);

/* Takes a decoded task set (copying what it keeps). Returns 0 when
 * applied, 1 when ignored as stale (an older generation from the same
 * publisher run), -1 when out of memory (the previous set stays). */
int activetasks_apply(activetasks_t *self, const wire_task_set_t *set, uint64_t now_ms);

/* Recomputes the active ON_CPU and OFF_CPU tasks at now_ms (wall clock).
 * Returns which sets of active pids changed (ACTIVETASKS_*_CHANGED bits),
 * 0 when none did. */
#define ACTIVETASKS_ON_CPU_CHANGED  0x1
#define ACTIVETASKS_OFF_CPU_CHANGED 0x2
#define ACTIVETASKS_NETWORK_CHANGED 0x4
int activetasks_refresh_targets(activetasks_t *self, uint64_t now_ms);

/* The same, returning 1 when the ON_CPU pids changed, else 0. */
int activetasks_refresh(activetasks_t *self, uint64_t now_ms);

/* Sorted, unique pids of the active ON_CPU tasks. */
size_t activetasks_active_pids(const activetasks_t *self, const uint32_t **pids);

/* Ids of the active ON_CPU tasks targeting pid (at most max); returns how
 * many. The strings live until the next activetasks_apply. */
uint32_t activetasks_for_pid(const activetasks_t *self, uint32_t pid, const char **ids,
                       uint32_t max);

/* The same for any target (WIRE_TARGET_ON_CPU, _OFF_CPU, _NETWORK). */
size_t activetasks_target_pids(const activetasks_t *self, uint8_t target,
                               const uint32_t **pids);
uint32_t activetasks_target_for_pid(const activetasks_t *self, uint8_t target,
                                    uint32_t pid, const char **ids,
                                    uint32_t max);

uint64_t activetasks_generation(const activetasks_t *self);

#endif
