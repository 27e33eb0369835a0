/* The tasks protocol: EBPFProfilingService queryTasks, whose
 * EBPFProfilingTaskQuery commands become wire tasks on task.request. */
#include "uplink_internal.h"

#include <string.h>

#include "Profiling.pb-c.h"
#include "commands.h"
#include "names.h"

static uint32_t
s_pid_of(void *arg, const char *process_id)
{
    uplink_t *self = arg;
    proc_entry_t *e = proc_table_find_id(self->procs, process_id);
    return e ? e->pid : 0;
}

/* Publishes tasks on task.request. 0, or -1 when they were dropped. */
int
uplink_tasks_publish(uplink_t *self, const wire_task_t *tasks, uint32_t ntasks)
{
    wire_task_set_t set;
    memset(&set, 0, sizeof set);
    set.generation = 0;
    set.ntasks = ntasks;
    set.tasks = tasks;
    int rc = self->opts.publish
                 ? self->opts.publish(self->opts.cb_arg, MSG_TASK_REQUEST,
                                      &set)
                 : 0;
    if (rc == BUS_TOO_BIG) {
        log_warn_rl(&self->rl_oap, "uplink: %u task(s) from the OAP break "
                    "the wire bounds; dropped", ntasks);
        return -1;
    }
    if (rc != 0) {
        log_warn_rl(&self->rl_oap, "uplink: task.request dropped by the bus");
        return -1;
    }
    for (uint32_t i = 0; i < ntasks; i++)
        log_info("uplink: task %s (%s, %s, %u process(es)) from the OAP",
                 tasks[i].task_id, names_target(tasks[i].target),
                 tasks[i].trigger == WIRE_TRIGGER_CONTINUOUS ? "continuous"
                                                             : "fixed time",
                 tasks[i].npids);
    return 0;
}

int
uplink_tasks_query(uplink_t *self)
{
    if (self->now < self->next_check)
        return 0;
    self->next_check = self->now + self->opts.check_ms;
    Skywalking__V3__EBPFProfilingTaskQuery q =
        SKYWALKING__V3__EBPFPROFILING_TASK_QUERY__INIT;
    q.roverinstanceid = self->agent_id;
    q.latestupdatetime = self->latest_update_ms;
    size_t len = uplink_pack(self, &q.base);
    if (!len)
        return 0;
    oap_result_t r;
    oap_conn_unary(self->conn, M_QUERY, self->enc, len, &r);
    uplink_call_t outcome = uplink_account(self, M_QUERY, &r);
    if (outcome == UPLINK_CALL_OK) {
        commands_tasks_t ct;
        arena_reset(self->arena);
        if (commands_parse_tasks(r.reply, r.reply_len, self->arena, s_pid_of,
                                 self, &ct, &self->rl_oap) != 0) {
            stats_inc(self->m_replies_invalid);
            log_warn_rl(&self->rl_oap, "uplink: queryTasks reply is not a "
                        "Commands message (%zu bytes)", r.reply_len);
        } else {
            stats_add(self->m_cmd_invalid, ct.invalid);
            stats_add(self->m_tasks_unmapped, ct.unmapped);
            if (ct.ntasks) {
                stats_add(self->m_tasks, ct.ntasks);
                uplink_tasks_publish(self, ct.tasks, ct.ntasks);
            }
            if (ct.next_update_ms > self->latest_update_ms)
                self->latest_update_ms = ct.next_update_ms;
        }
        arena_reset(self->arena);
    }
    oap_result_clear(&r);
    return outcome == UPLINK_CALL_DOWN ? -1 : 0;
}
