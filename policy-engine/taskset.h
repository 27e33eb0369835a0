/* The task table: the single owner of which profiling tasks exist.
 *
 * Every source (OAP via uplink, local config, HTTP API, continuous
 * triggers) feeds tasks through taskset_offer(); the table decides whether a
 * task is new, a duplicate, a replacement or already over, and the policy
 * engine republishes taskset_snapshot() as the desired state. Pure logic with
 * the clock passed in, so the lifecycle is testable without sleeping. */
#ifndef SKYPROF_POLICY_TASKSET_H
#define SKYPROF_POLICY_TASKSET_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define TASKS_MAX 1024

typedef struct taskset taskset_t;

enum taskset_offer_result {
    TASKS_ADDED = 0,      /* new task */
    TASKS_DUPLICATE,      /* same id and update time: kept as it was */
    TASKS_REPLACED,       /* same id, newer update time: replaced */
    TASKS_STALE,          /* same id, older update time: ignored */
    TASKS_EXPIRED,        /* its window is already over: skipped */
    TASKS_INVALID,        /* no pids, zero duration, ...: skipped */
    TASKS_FULL,           /* table at TASKS_MAX */
};

taskset_t *taskset_new(void);
void taskset_destroy(taskset_t **self_p);

/* Copies the task in. start_ms 0 means "now". */
enum taskset_offer_result taskset_offer(taskset_t *self, const wire_task_t *task,
                                    uint64_t now_ms);
const char *taskset_offer_result_name(enum taskset_offer_result r);

/* Removes tasks whose window ended; returns how many. */
size_t taskset_expire(taskset_t *self, uint64_t now_ms);

/* A process exited: drop its pid from every task; a task left without
 * pids ends. Returns the number of tasks changed. */
size_t taskset_process_exited(taskset_t *self, uint32_t pid);

/* Calls alive(pid) for every pid of every task; pids it says are gone are
 * dropped as by taskset_process_exited. */
size_t taskset_prune(taskset_t *self, int (*alive)(uint32_t pid, void *arg),
                   void *arg);

/* Cancel a task by id; 0 if removed, -1 if unknown. */
int taskset_cancel(taskset_t *self, const char *task_id);

/* Increases whenever the set changed. */
uint64_t taskset_generation(const taskset_t *self);
size_t taskset_count(const taskset_t *self);

/* The current set as wire tasks (pointers valid until the next change). */
size_t taskset_snapshot(const taskset_t *self, const wire_task_t **out);

#endif
