/* Task metadata for the listing and for agg.profile: the desired set last
 * published on ctl.tasks (state "active"), tasks asked for through the API
 * and not yet in that set ("requested"), and a short memory of tasks that
 * left the set ("finished"). Not thread-safe: the caller locks. */
#ifndef SKYPROF_AGG_TASKS_H
#define SKYPROF_AGG_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/core/buf.h"
#include "wire.h"

#define AGG_TASKS_MAX_PIDS 65536      /* pids kept over the whole set */
#define AGG_TASKS_FINISHED 128
#define AGG_TASKS_REQUESTED 64
#define AGG_TASKS_REQUEST_TTL_MS (5 * 60 * 1000)

enum agg_task_state { AGG_TASK_ACTIVE, AGG_TASK_REQUESTED, AGG_TASK_FINISHED };

typedef struct {
    char *task_id;
    uint8_t target, trigger, source;
    uint64_t start_ms, duration_ms, update_ms;
    uint32_t npids;
    uint32_t *pids;
    char **process_ids;       /* NULL when local */
    int state;
    uint64_t seen_ms;
} agg_task_t;

typedef struct agg_tasks agg_tasks_t;

agg_tasks_t *agg_tasks_new(void);
void agg_tasks_destroy(agg_tasks_t **self_p);

/* Replaces the active set. Returns pids left out by the bound. */
size_t agg_tasks_set(agg_tasks_t *self, const wire_task_set_t *set,
                     uint64_t now_ms);
int agg_tasks_request(agg_tasks_t *self, const wire_task_t *task,
                      uint64_t now_ms);
const agg_task_t *agg_tasks_find(const agg_tasks_t *self, const char *id);
/* The OAP process id of pid in task, or "" */
const char *agg_task_process_id(const agg_task_t *task, uint32_t pid);

void agg_tasks_json(const agg_tasks_t *self, agg_buf_t *b);

#endif
