/* The uplink's readers of OAP replies (protobuf-c unpacking and what the
 * uplink does with the result). The first byte picks the reply:
 *   0 queryTasks Commands -> tasks (uplink/commands.c)
 *   1 queryPolicies Commands -> each ServiceWithPolicyJSON document, read
 *     by the policy book as the uplink does (uplink/contproto.c,
 *     uplink/policybook.c)
 *   2 reportProfilingTask Commands -> the task id
 *   3 reportProcesses EBPFReportProcessDownstream -> process ids */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "Process.pb-c.h"
#include "arena.h"
#include "log.h"
#include "uplink/commands.h"
#include "uplink/contproto.h"
#include "uplink/policybook.h"

static uint32_t s_pid_of(void *arg, const char *process_id)
{
    (void)arg;
    /* Some ids map, some do not, as against a real process table. */
    uint32_t h = 0;
    for (const char *p = process_id; *p; p++)
        h = h * 31 + (unsigned char)*p;
    return h % 3 ? h % 100000 + 1 : 0;
}

static void s_tasks(const uint8_t *data, size_t size)
{
    log_ratelimit_t rl = LOG_RATELIMIT_INIT(0, 1000);
    commands_tasks_t out;
    arena_t *arena = arena_new(16u << 20);
    if (!arena)
        return;
    if (commands_parse_tasks(data, size, arena, s_pid_of, NULL, &out,
                             &rl) == 0) {
        for (uint32_t i = 0; i < out.ntasks; i++) {
            const wire_task_t *t = &out.tasks[i];
            (void)strlen(t->task_id);
            if (t->npids > WIRE_MAX_PIDS)
                __builtin_trap();
        }
    }
    arena_destroy(&arena);
}

static void s_learn(void *arg, const char *json)
{
    policy_book_t *book = arg;
    char err[256];
    size_t len = strlen(json);
    int checked = policy_book_learn(book, json, len, false, err, sizeof err);
    int applied = policy_book_learn(book, json, len, true, err, sizeof err);
    if (checked != applied)
        __builtin_trap();   /* checking and applying agree on a document */
}

static void s_policies(const uint8_t *data, size_t size)
{
    uint32_t invalid;
    policy_book_t *book = policy_book_new(64);
    if (!book)
        return;
    policy_book_want(book, "svc-a", 1);
    policy_book_want(book, "svc-b", 1);
    (void)contproto_each_policy(data, size, s_learn, book, &invalid);
    policy_book_destroy(&book);
}

static void s_report_task(const uint8_t *data, size_t size)
{
    char id[128];
    if (contproto_report_task_id(data, size, id, sizeof id) == 0 &&
        strnlen(id, sizeof id) == sizeof id)
        __builtin_trap();
}

static void s_process_ids(const uint8_t *data, size_t size)
{
    Skywalking__V3__EBPFReportProcessDownstream *down =
        skywalking__v3__ebpfreport_process_downstream__unpack(NULL, size,
                                                              data);
    if (!down)
        return;
    for (size_t i = 0; i < down->n_processes; i++) {
        const Skywalking__V3__EBPFProcessDownstream *d = down->processes[i];
        if (d && d->processid)
            (void)strlen(d->processid);
    }
    skywalking__v3__ebpfreport_process_downstream__free_unpacked(down, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 4) {
    case 0: s_tasks(data + 1, size - 1); break;
    case 1: s_policies(data + 1, size - 1); break;
    case 2: s_report_task(data + 1, size - 1); break;
    default: s_process_ids(data + 1, size - 1); break;
    }
    return 0;
}
