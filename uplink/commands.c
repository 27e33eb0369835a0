/* Commands -> tasks: see commands.h. */
#include "commands.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "Command.pb-c.h"
#include "names.h"

#define CMD_TASK_QUERY "EBPFProfilingTaskQuery"
/* Processes one command may name; the OAP sends one per process (or one
 * per instance for network tasks), so this is generous. */
#define CMD_MAX_IDS 4096

const char *
commands_arg(const Skywalking__V3__Command *cmd, const char *key)
{
    for (size_t i = 0; i < cmd->n_args; i++) {
        const Skywalking__V3__KeyStringValuePair *kv = cmd->args[i];
        if (kv && kv->key && !strcmp(kv->key, key))
            return kv->value ? kv->value : "";
    }
    return NULL;
}

static int
s_parse_ms(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

/* The OAP's name of a target or trigger -> its wire value. */
static int
s_enum(int value, uint8_t *out)
{
    if (value < 0)
        return -1;
    *out = (uint8_t)value;
    return 0;
}

/* Working state of one task while commands merge into it. */
typedef struct {
    wire_task_t task;
    uint32_t *pids;
    const char **ids;
    uint32_t npids, cap;
} s_task_t;

static int
s_add_pid(arena_t *arena, s_task_t *t, uint32_t pid, const char *id)
{
    for (uint32_t i = 0; i < t->npids; i++)
        if (t->pids[i] == pid)
            return 0;
    if (t->npids == WIRE_MAX_PIDS)
        return -1;
    if (t->npids == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 8;
        uint32_t *pids = arena_alloc(arena, cap * sizeof *pids);
        const char **ids = arena_alloc(arena, cap * sizeof *ids);
        if (!pids || !ids)
            return -1;
        if (t->npids) {
            memcpy(pids, t->pids, t->npids * sizeof *pids);
            memcpy(ids, t->ids, t->npids * sizeof *ids);
        }
        t->pids = pids;
        t->ids = ids;
        t->cap = cap;
    }
    if (!(t->ids[t->npids] = arena_strdup(arena, id)))
        return -1;
    t->pids[t->npids++] = pid;
    return 0;
}

/* Validates one EBPFProfilingTaskQuery command into `parsed` (strings
 * still pointing into the protobuf message). NULL ok, else the reason. */
static const char *
s_validate(const Skywalking__V3__Command *cmd, wire_task_t *parsed,
           const char **process_ids, const char **extension)
{
    int64_t update, start, duration = 0;
    memset(parsed, 0, sizeof *parsed);
    const char *task_id = commands_arg(cmd, "TaskId");
    if (!task_id || !*task_id || strlen(task_id) > WIRE_MAX_STR)
        return "TaskId missing or too long";
    parsed->task_id = task_id;
    *process_ids = commands_arg(cmd, "ProcessId");
    if (!*process_ids || !**process_ids)
        return "ProcessId missing";
    if (s_parse_ms(commands_arg(cmd, "TaskUpdateTime"), &update) != 0)
        return "TaskUpdateTime is not a number of ms";
    if (s_parse_ms(commands_arg(cmd, "TaskStartTime"), &start) != 0)
        return "TaskStartTime is not a number of ms";
    if (s_enum(names_target_parse(commands_arg(cmd, "TargetType"),
                                  NAMES_EXACT), &parsed->target) != 0)
        return "TargetType is not ON_CPU, OFF_CPU or NETWORK";
    if (s_enum(names_trigger_parse(commands_arg(cmd, "TriggerType"),
                                   NAMES_EXACT), &parsed->trigger) != 0)
        return "TriggerType is not FIXED_TIME or CONTINUOUS_PROFILING";
    const char *fixed = commands_arg(cmd, "FixedTriggerDuration");
    if (parsed->trigger == WIRE_TRIGGER_FIXED_TIME || fixed) {
        if (s_parse_ms(fixed, &duration) != 0 || duration == 0 ||
            duration > 7 * 24 * 3600)
            return "FixedTriggerDuration is not a number of seconds";
    }
    const char *ext = commands_arg(cmd, "ExtensionConfigJSON");
    if (!ext || !strcmp(ext, "null") || !*ext)
        ext = "";
    else if (ext[0] != '{' || strlen(ext) > WIRE_MAX_LONG_STR)
        return "ExtensionConfigJSON is not a JSON object";
    *extension = ext;
    parsed->source = WIRE_SRC_OAP;
    parsed->start_ms = (uint64_t)start;
    parsed->duration_ms = (uint64_t)duration * 1000;
    parsed->update_ms = (uint64_t)update;
    return NULL;
}

int
commands_parse_tasks(const uint8_t *reply, size_t len, arena_t *arena,
                     commands_pid_fn pid_of, void *arg,
                     commands_tasks_t *out, log_ratelimit_t *rl)
{
    int rc = -1;
    memset(out, 0, sizeof *out);
    out->next_update_ms = -1;
    int64_t cap_update = INT64_MAX;
    s_task_t *work = NULL;
    uint32_t nwork = 0;
    Skywalking__V3__Commands *cmds =
        skywalking__v3__commands__unpack(NULL, len, reply);
    if (!cmds)
        goto cleanup;
    rc = 0;
    size_t ncmds = cmds->n_commands;
    if (ncmds > WIRE_MAX_TASKS)
        ncmds = WIRE_MAX_TASKS;
    if (ncmds && !(work = calloc(ncmds, sizeof *work))) {
        rc = -1;
        goto cleanup;
    }
    for (size_t c = 0; c < ncmds; c++) {
        const Skywalking__V3__Command *cmd = cmds->commands[c];
        if (!cmd || !cmd->command || strcmp(cmd->command, CMD_TASK_QUERY))
            continue;
        wire_task_t parsed;
        const char *ids = NULL, *ext = NULL;
        const char *why = s_validate(cmd, &parsed, &ids, &ext);
        if (why) {
            out->invalid++;
            log_warn_rl(rl, "uplink: skipping malformed %s command: %s",
                        CMD_TASK_QUERY, why);
            continue;
        }
        s_task_t *t = NULL;
        for (uint32_t i = 0; i < nwork; i++)
            if (!strcmp(work[i].task.task_id, parsed.task_id))
                t = &work[i];
        if (!t) {
            t = &work[nwork++];
            t->task = parsed;
            t->task.task_id = arena_strdup(arena, parsed.task_id);
            t->task.extension_json = arena_strdup(arena, ext);
            if (!t->task.task_id || !t->task.extension_json) {
                rc = -1;
                goto cleanup;
            }
        } else if (parsed.update_ms >= t->task.update_ms) {
            t->task.update_ms = parsed.update_ms;
            /* The newest command's rules win; an empty one keeps them
             * (as the task table does for a re-sent NETWORK task). */
            if (*ext && !(t->task.extension_json = arena_strdup(arena, ext))) {
                rc = -1;
                goto cleanup;
            }
        }
        /* Walk the comma-separated ids without copying the whole list. */
        bool unmapped = false;
        uint32_t nids = 0;
        const char *cur = ids;
        while (*cur && nids < CMD_MAX_IDS) {
            size_t n = strcspn(cur, ",");
            const char *s = cur;
            while (n && *s == ' ') {
                s++;
                n--;
            }
            while (n && s[n - 1] == ' ')
                n--;
            if (n && n < 256) {
                char id[256];
                memcpy(id, s, n);
                id[n] = '\0';
                nids++;
                uint32_t pid = pid_of(arg, id);
                if (!pid)
                    unmapped = true;
                else if (s_add_pid(arena, t, pid, id) != 0) {
                    rc = -1;
                    goto cleanup;
                }
            }
            cur += strcspn(cur, ",");
            if (*cur == ',')
                cur++;
        }
        if (unmapped) {
            out->unmapped++;
            if ((int64_t)parsed.update_ms - 1 < cap_update)
                cap_update = (int64_t)parsed.update_ms - 1;
        }
        if ((int64_t)parsed.update_ms > out->next_update_ms)
            out->next_update_ms = (int64_t)parsed.update_ms;
    }
    if (out->next_update_ms > cap_update)
        out->next_update_ms = cap_update;

    /* Keep the tasks that name at least one process we know. */
    if (nwork && !(out->tasks = arena_calloc(arena, nwork,
                                             sizeof *out->tasks))) {
        rc = -1;
        goto cleanup;
    }
    for (uint32_t i = 0; i < nwork; i++) {
        if (!work[i].npids)
            continue;
        wire_task_t *t = &out->tasks[out->ntasks++];
        *t = work[i].task;
        t->npids = work[i].npids;
        t->pids = work[i].pids;
        t->process_ids = (const char *const *)work[i].ids;
    }
cleanup:
    if (rc != 0)
        out->ntasks = 0;
    free(work);
    if (cmds)
        skywalking__v3__commands__free_unpacked(cmds, NULL);
    return rc;
}
