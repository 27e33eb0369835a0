/* Reading the OAP's Commands replies. queryTasks answers with
 * EBPFProfilingTaskQuery commands (written by the OAP's
 * EBPFProfilingTaskCommand, apache/skywalking apm-protocol/apm-network;
 * arguments listed in uplink/README.md "Failures"); each becomes a
 * wire_task_t for the policy-engine, with the OAP's comma-separated
 * processIds mapped back to pids. Commands for the same TaskId (the OAP
 * sends one per process) merge into one task. A malformed command is
 * skipped and counted, never fatal. */
#ifndef SKYPROF_UPLINK_COMMANDS_H
#define SKYPROF_UPLINK_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "log.h"
#include "wire.h"

/* pid the OAP's processId names, 0 when unknown. */
typedef uint32_t (*commands_pid_fn)(void *arg, const char *process_id);

typedef struct {
    wire_task_t *tasks;        /* in the arena */
    uint32_t ntasks;
    uint32_t invalid;          /* malformed commands skipped */
    uint32_t unmapped;         /* commands naming no process we know */
    /* The largest TaskUpdateTime seen, lowered below the update time of
     * any command with unknown processIds so the OAP offers it again once
     * those processes are mapped. -1 when nothing moved it. */
    int64_t next_update_ms;
} commands_tasks_t;

/* -1 when reply is not a Commands message at all. */
int commands_parse_tasks(const uint8_t *reply, size_t len, arena_t *arena,
                         commands_pid_fn pid_of, void *arg,
                         commands_tasks_t *out, log_ratelimit_t *rl);

/* The value of a Command's argument (KeyStringValuePair) named key: ""
 * when its value is absent, NULL when there is no such argument. Every
 * reader of the OAP's Commands replies goes through it. */
struct Skywalking__V3__Command;
const char *commands_arg(const struct Skywalking__V3__Command *cmd,
                         const char *key);

#endif
