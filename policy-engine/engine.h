/* The policy engine's core: owns the task set and publishes it.
 *
 * Every source of tasks — the OAP through the uplink and the HTTP API
 * through the aggregator (both on task.request), the local configuration,
 * continuous-profiling triggers (watch.h) — offers them here; the engine
 * decides through the task set (taskset.h) and republishes the full desired
 * set on ctl.tasks on every change and on every tick, so a restarted
 * collector converges. Processes that exit (proc.events) end their tasks. */
#ifndef SKYPROF_POLICY_ENGINE_H
#define SKYPROF_POLICY_ENGINE_H

#include "bus.h"
#include "msg.h"
#include "stats.h"
#include "wire.h"

typedef struct policy_engine policy_engine_t;

/* Publishes on bus, counts in stats (both outlive the engine). NULL when
 * out of memory. */
policy_engine_t *policy_engine_new(bus_t *bus, stats_t *stats);
void policy_engine_destroy(policy_engine_t **self_p);

/* Offers one task (copied); counted by outcome, logged when it changes the
 * set. Published by the next policy_engine_publish_changes(). */
void policy_engine_offer(policy_engine_t *self, const wire_task_t *task);

/* Ends a task by id (a source withdrawing what it offered). 0 when it
 * was in the set, -1 when not. Published by the next
 * policy_engine_publish_changes(). */
int policy_engine_cancel(policy_engine_t *self, const char *task_id);

/* The bus handler for task.request (offers every task) and proc.events
 * (an exited process ends the tasks it was the last process of). 0. */
int policy_engine_on_msg(void *self, const msg_decoded_t *m);

/* Publishes the set when it changed since the last publication. 0. */
int policy_engine_publish_changes(policy_engine_t *self);

/* The republish tick: ends expired tasks and tasks whose processes are all
 * gone, then publishes the set, changed or not. 0. */
int policy_engine_tick(policy_engine_t *self);

#endif
