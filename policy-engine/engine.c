/* The policy engine's core (engine.h). */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "procfacts.h"
#include "taskset.h"

struct policy_engine {
    bus_t *bus;
    taskset_t *tasks;
    uint64_t published_generation;
    uint64_t epoch;              /* start time: makes generations monotonic
                                    across restarts of this stage */
    log_ratelimit_t rl;
    stats_metric_t *offered[TASKS_FULL + 1];
    stats_metric_t *active;
    stats_metric_t *sets_published;
    stats_metric_t *ended;
};

policy_engine_t *
policy_engine_new(bus_t *bus, stats_t *stats)
{
    policy_engine_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->bus = bus;
    self->rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);
    self->epoch = now_wall_ms() << 20;
    self->tasks = taskset_new();
    if (!self->tasks) {
        policy_engine_destroy(&self);
        return NULL;
    }
    for (int r = 0; r <= TASKS_FULL; r++) {
        char labels[64];
        snprintf(labels, sizeof labels, "result=\"%s\"",
                 taskset_offer_result_name((enum taskset_offer_result)r));
        self->offered[r] = stats_counter(stats, "tasks_offered_total", labels,
                                         "tasks received, by outcome");
    }
    self->active = stats_gauge(stats, "tasks_active", "", "tasks in the set");
    self->sets_published = stats_counter(stats, "task_sets_published_total",
                                         "", "desired task sets published");
    self->ended = stats_counter(stats, "tasks_ended_total", "",
                                "tasks that ended or lost their processes");
    return self;
}

void
policy_engine_destroy(policy_engine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    policy_engine_t *self = *self_p;
    taskset_destroy(&self->tasks);
    free(self);
    *self_p = NULL;
}

static int
s_publish(policy_engine_t *self)
{
    const wire_task_t *tasks;
    size_t n = taskset_snapshot(self->tasks, &tasks);
    wire_task_set_t msg = {
        .generation = self->epoch + taskset_generation(self->tasks),
        .ntasks = (uint32_t)n,
        .tasks = tasks,
    };
    if (bus_send(self->bus, MSG_CTL_TASKS, &msg) == BUS_TOO_BIG) {
        log_error("cannot encode the task set (%zu tasks)", n);
        return 0;
    }
    stats_inc(self->sets_published);
    stats_set(self->active, (double)n);
    self->published_generation = taskset_generation(self->tasks);
    return 0;
}

void
policy_engine_offer(policy_engine_t *self, const wire_task_t *t)
{
    enum taskset_offer_result r = taskset_offer(self->tasks, t, now_wall_ms());
    stats_inc(self->offered[r]);
    if (r == TASKS_ADDED || r == TASKS_REPLACED)
        log_info("task %s %s: target %d, %u pid(s), %llu ms", t->task_id,
                 taskset_offer_result_name(r), t->target, t->npids,
                 (unsigned long long)t->duration_ms);
    else if (r != TASKS_DUPLICATE)
        log_warn_rl(&self->rl, "task %s %s", t->task_id,
                    taskset_offer_result_name(r));
}

int
policy_engine_cancel(policy_engine_t *self, const char *task_id)
{
    if (taskset_cancel(self->tasks, task_id) != 0)
        return -1;
    stats_inc(self->ended);
    log_info("task %s withdrawn", task_id);
    return 0;
}

int
policy_engine_on_msg(void *arg, const msg_decoded_t *m)
{
    policy_engine_t *self = arg;
    if (m->id == MSG_TASK_REQUEST) {
        const wire_task_set_t *req = m->body;
        for (uint32_t i = 0; i < req->ntasks; i++)
            policy_engine_offer(self, &req->tasks[i]);
    } else if (m->id == MSG_PROC_EVENTS) {
        const wire_proc_events_t *ev = m->body;
        for (uint32_t i = 0; i < ev->nevents; i++)
            if (ev->events[i].type == WIRE_PROC_EXIT &&
                taskset_process_exited(self->tasks, ev->events[i].pid))
                stats_inc(self->ended);
    }
    return 0;
}

int
policy_engine_publish_changes(policy_engine_t *self)
{
    if (taskset_generation(self->tasks) != self->published_generation)
        return s_publish(self);
    return 0;
}

static int
s_pid_alive(uint32_t pid, void *arg)
{
    return procfacts_alive(NULL, pid);
}

int
policy_engine_tick(policy_engine_t *self)
{
    size_t ended = taskset_expire(self->tasks, now_wall_ms());
    ended += taskset_prune(self->tasks, s_pid_alive, NULL);
    stats_add(self->ended, ended);
    return s_publish(self);
}
