/* Every stage, real BPF, and the fake OAP (tests/fake_oap): the OAP's
 * fixed-time task for our workload runs and its stacks reach
 * collectProfilingData with our function names and the dumpCount the
 * aggregator counted; an OAP continuous-profiling policy fires on our CPU
 * burner, the report carries the cause, the OAP's TaskId becomes a task,
 * and its data and the meters reach the OAP. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "Command.pb-c.h"
#include "Common.pb-c.h"
#include "Continuous.pb-c.h"
#include "Meter.pb-c.h"
#include "Profiling.pb-c.h"
#include "testutil.h"

typedef struct {
    char *dir;
    char oap_dir[600];
    int oap_port, api_port;
    pid_t oap, launcher;
    char log[600];
} chain_t;

static chain_t C;

static int s_oap_ready(void *arg)
{
    char path[700];
    snprintf(path, sizeof path, "%s/ready", C.oap_dir);
    return access(path, F_OK) == 0;
}

static int s_api_up(void *arg)
{
    int status = 0;
    char *b = tu_http("GET", "127.0.0.1", C.api_port, "/healthz", NULL, &status,
                      NULL);
    free(b);
    return status == 200;
}

/* Writes a Commands reply with one command for the fake OAP. */
static void s_reply(const char *file, const char *command,
                    const char *const *kv, size_t npairs)
{
    Skywalking__V3__KeyStringValuePair pairs[16];
    Skywalking__V3__KeyStringValuePair *pp[16];
    ck_assert_uint_le(npairs, 16);
    for (size_t i = 0; i < npairs; i++) {
        skywalking__v3__key_string_value_pair__init(&pairs[i]);
        pairs[i].key = (char *)kv[2 * i];
        pairs[i].value = (char *)kv[2 * i + 1];
        pp[i] = &pairs[i];
    }
    Skywalking__V3__Command cmd = SKYWALKING__V3__COMMAND__INIT;
    cmd.command = (char *)command;
    cmd.n_args = npairs;
    cmd.args = pp;
    Skywalking__V3__Command *cp = &cmd;
    Skywalking__V3__Commands cmds = SKYWALKING__V3__COMMANDS__INIT;
    cmds.n_commands = 1;
    cmds.commands = &cp;
    size_t len = skywalking__v3__commands__get_packed_size(&cmds);
    uint8_t *buf = malloc(len ? len : 1);
    skywalking__v3__commands__pack(&cmds, buf);
    char dir[700], path[800], tmp[820];
    snprintf(dir, sizeof dir, "%s/reply", C.oap_dir);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(buf, 1, len, f);
    fclose(f);
    ck_assert_int_eq(rename(tmp, path), 0);
    free(buf);
}

static void s_start(const char *extra_yaml)
{
    C.dir = tu_mkdtemp();
    snprintf(C.oap_dir, sizeof C.oap_dir, "%s/oap", C.dir);
    mkdir(C.oap_dir, 0755);
    snprintf(C.log, sizeof C.log, "%s/run.log", C.dir);
    char *oap_argv[] = {"/usr/bin/python3", "tests/fake_oap/fake_oap.py", "--dir",
                        C.oap_dir, "--port", "0", NULL};
    C.oap = tu_spawn(oap_argv, C.log);
    ck_assert_msg(tu_wait_until(s_oap_ready, NULL, 20000), "fake OAP not ready");
    char path[700];
    snprintf(path, sizeof path, "%s/port", C.oap_dir);
    char *port = tu_read_file(path, NULL);
    ck_assert_ptr_nonnull(port);
    C.oap_port = atoi(port);
    free(port);
    C.api_port = 20000 + (int)((getpid() + 9191) % 20000);

    char config[600];
    snprintf(config, sizeof config, "%s/skyprof.yaml", C.dir);
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "runtime_dir: %s/run\n"
            "core:\n  backend:\n    addr: 127.0.0.1:%d\n    upstream_timeout: 2s\n"
            "process_discovery:\n  heartbeat_period: 2s\n  scanner:\n    regex:\n"
            "      - match_cmd_regex: \"cpu_workload\"\n"
            "        service_name: \"{{.Process.ExeName}}\"\n"
            "        process_name: \"{{.Process.ExeName}}-{{.Process.Pid}}\"\n"
            "profiling:\n  check_interval: 1s\n  flush_interval: 1s\n"
            "  continuous:\n    fetch_interval: 1s\n    check_interval: 1s\n"
            "    trigger:\n      execute_duration: 5s\n      silence_duration: 10m\n"
            "aggregator:\n  http_addr: 127.0.0.1:%d\n  store_path: \"\"\n%s",
            C.dir, C.oap_port, C.api_port, extra_yaml ? extra_yaml : "");
    fclose(f);
    char *argv[] = {(char *)tu_build_path("bin/skyprof"), "--config", config,
                    "--bin-dir", (char *)tu_build_path("bin"), NULL};
    C.launcher = tu_spawn(argv, C.log);
    ck_assert_msg(tu_wait_until(s_api_up, NULL, 20000), "API down; see %s", C.log);
}

static void s_stop(void)
{
    int st = tu_stop(C.launcher, 20000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "launcher status %d; see %s", st, C.log);
    tu_stop(C.oap, 5000);
    tu_rmtree(C.dir);
    free(C.dir);
    memset(&C, 0, sizeof C);
}

/* Calls fn on every recorded request of a method, in file name order. */
typedef void (*req_fn)(const uint8_t *data, size_t len, void *arg);

static int s_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int s_each_request(const char *method, req_fn fn, void *arg)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/req/%s", C.oap_dir, method);
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, s_cmp);
    int count = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]->d_name);
        if (len > 4 && strcmp(names[i]->d_name + len - 4, ".bin") == 0) {
            char path[1000];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
            size_t blen = 0;
            char *data = tu_read_file(path, &blen);
            if (data) {
                fn((const uint8_t *)data, blen, arg);
                free(data);
                count++;
            }
        }
        free(names[i]);
    }
    free(names);
    return count;
}

/* Sums what collectProfilingData carried for one task. */
typedef struct {
    const char *task_id;
    char current[128];       /* task of the stream's latest metadata */
    long dumps;
    int has_alpha, has_beta, has_kernel;
    int messages;
} data_sum_t;

static void s_sum_data(const uint8_t *data, size_t len, void *arg)
{
    data_sum_t *d = arg;
    Skywalking__V3__EBPFProfilingData *m =
        skywalking__v3__ebpfprofiling_data__unpack(NULL, len, data);
    if (!m)
        return;
    if (m->task && m->task->taskid)
        snprintf(d->current, sizeof d->current, "%s", m->task->taskid);
    if (strcmp(d->current, d->task_id) == 0 &&
        m->profiling_case == SKYWALKING__V3__EBPFPROFILING_DATA__PROFILING_ON_CPU) {
        d->messages++;
        d->dumps += m->oncpu->dumpcount;
        for (size_t i = 0; i < m->oncpu->n_stacks; i++) {
            Skywalking__V3__EBPFProfilingStackMetadata *s = m->oncpu->stacks[i];
            for (size_t k = 0; k < s->n_stacksymbols; k++) {
                if (strcmp(s->stacksymbols[k], "sky_alpha_leaf") == 0)
                    d->has_alpha = 1;
                if (strcmp(s->stacksymbols[k], "skylib_beta_leaf") == 0)
                    d->has_beta = 1;
            }
            if (s->stacktype ==
                    SKYWALKING__V3__EBPFPROFILING_STACK_TYPE__PROCESS_KERNEL_SPACE &&
                s->n_stacksymbols)
                d->has_kernel = 1;
        }
    }
    skywalking__v3__ebpfprofiling_data__free_unpacked(m, NULL);
}

static long s_folded_total(const char *task_id)
{
    char path[256];
    snprintf(path, sizeof path, "/api/folded?task_id=%s&unit=count", task_id);
    int status = 0;
    char *b = tu_http("GET", "127.0.0.1", C.api_port, path, NULL, &status, NULL);
    long total = 0;
    for (char *line = b ? strtok(b, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char *sp = strrchr(line, ' ');
        if (sp)
            total += strtol(sp + 1, NULL, 10);
    }
    free(b);
    return total;
}

START_TEST(oap_fixed_time_task_runs_and_its_data_arrives)
{
    s_start(NULL);
    char *wl_argv[] = {(char *)tu_build_path("tests/progs/cpu_workload"), "8", NULL};
    pid_t wl = tu_spawn(wl_argv, NULL);
    ck_assert_int_gt(wl, 0);
    /* The fake OAP names each reported host process "proc-<pid>". */
    char pid_id[32], now_ms[32];
    snprintf(pid_id, sizeof pid_id, "proc-%d", (int)wl);
    snprintf(now_ms, sizeof now_ms, "%llu", (unsigned long long)time(NULL) * 1000);
    const char *kv[] = {"SerialNumber", "s1", "TaskId", "oap-fixed-1",
                        "ProcessId", pid_id, "TaskUpdateTime", now_ms,
                        "TriggerType", "FIXED_TIME", "TargetType", "ON_CPU",
                        "TaskStartTime", now_ms, "ExtensionConfigJSON", "null",
                        "FixedTriggerDuration", "4"};
    s_reply("queryTasks.bin", "EBPFProfilingTaskQuery", kv, 9);
    int st;
    ck_assert_int_eq(waitpid(wl, &st, 0), wl);
    sleep(4); /* last windows flushed and uploaded */

    data_sum_t d = {.task_id = "oap-fixed-1"};
    int n = s_each_request("collectProfilingData", s_sum_data, &d);
    long counted = s_folded_total("oap-fixed-1");
    fprintf(stderr, "%d data messages, %d for the task, dumpCount %ld, "
                    "aggregator %ld\n", n, d.messages, d.dumps, counted);
    ck_assert_msg(d.messages > 0, "no data for the OAP task; see %s", C.log);
    ck_assert(d.has_alpha);
    ck_assert(d.has_beta);
    ck_assert(d.has_kernel);
    ck_assert_int_gt(counted, 0);
    ck_assert_int_eq(d.dumps, counted);
    s_stop();
}
END_TEST

typedef struct {
    char process_name[64];   /* only reports for our workload count: other
                                cpu_workload processes may run on the host */
    int reports, oncpu, cpu_cause;
    double current, threshold;
    char service[64];
} report_sum_t;

static void s_sum_reports(const uint8_t *data, size_t len, void *arg)
{
    report_sum_t *r = arg;
    Skywalking__V3__ContinuousProfilingReport *m =
        skywalking__v3__continuous_profiling_report__unpack(NULL, len, data);
    if (!m)
        return;
    if (!m->processname || strcmp(m->processname, r->process_name) != 0) {
        skywalking__v3__continuous_profiling_report__free_unpacked(m, NULL);
        return;
    }
    r->reports++;
    snprintf(r->service, sizeof r->service, "%s", m->servicename);
    if (m->target_task_case ==
        SKYWALKING__V3__CONTINUOUS_PROFILING_REPORT__TARGET_TASK_ON_CPU)
        r->oncpu++;
    for (size_t i = 0; i < m->n_causes; i++)
        if (m->causes[i]->type ==
                SKYWALKING__V3__CONTINUOUS_PROFILING_TRIGGERED_MONITOR_TYPE__ProcessCPU &&
            m->causes[i]->cause_case ==
                SKYWALKING__V3__CONTINUOUS_PROFILING_CAUSE__CAUSE_SINGLE_VALUE) {
            r->cpu_cause++;
            r->current = m->causes[i]->singlevalue->current;
            r->threshold = m->causes[i]->singlevalue->threshold;
        }
    skywalking__v3__continuous_profiling_report__free_unpacked(m, NULL);
}

static int s_reported(void *arg)
{
    report_sum_t *r = arg;
    char name[64];
    snprintf(name, sizeof name, "%s", r->process_name);
    memset(r, 0, sizeof *r);
    snprintf(r->process_name, sizeof r->process_name, "%s", name);
    s_each_request("reportProfilingTask", s_sum_reports, r);
    return r->reports > 0;
}

static void s_find_meter(const uint8_t *data, size_t len, void *arg)
{
    int *found = arg;
    Skywalking__V3__MeterDataCollection *m =
        skywalking__v3__meter_data_collection__unpack(NULL, len, data);
    if (!m)
        return;
    for (size_t i = 0; i < m->n_meterdata; i++) {
        Skywalking__V3__MeterData *md = m->meterdata[i];
        if (md->metric_case == SKYWALKING__V3__METER_DATA__METRIC_SINGLE_VALUE &&
            strcmp(md->singlevalue->name, "rover_con_p_process_cpu") == 0)
            *found = 1;
    }
    skywalking__v3__meter_data_collection__free_unpacked(m, NULL);
}

START_TEST(oap_policy_triggers_reported_task_and_data)
{
    s_start(NULL);
    const char *policy[] = {
        "SerialNumber", "s2", "ServiceWithPolicyJSON",
        "[{\"ServiceName\":\"cpu_workload\",\"UUID\":\"v1\",\"Profiling\":"
        "{\"ON_CPU\":{\"PROCESS_CPU\":{\"Threshold\":\"20\",\"Period\":3,"
        "\"Count\":2}}}}]"};
    s_reply("queryPolicies.bin", "ContinuousProfilingPolicyQuery", policy, 2);
    const char *task[] = {"SerialNumber", "s3", "TaskId", "oap-cont-1"};
    s_reply("reportProfilingTask.bin", "ContinuousProfilingReportTask", task, 2);

    char *wl_argv[] = {(char *)tu_build_path("tests/progs/cpu_workload"), "12", NULL};
    pid_t wl = tu_spawn(wl_argv, NULL);
    report_sum_t r;
    snprintf(r.process_name, sizeof r.process_name, "cpu_workload-%d", (int)wl);
    ck_assert_msg(tu_wait_until(s_reported, &r, 20000),
                  "no reportProfilingTask; see %s", C.log);
    ck_assert_str_eq(r.service, "cpu_workload");
    ck_assert_int_eq(r.oncpu, r.reports);
    ck_assert_int_ge(r.cpu_cause, 1);
    ck_assert_double_eq(r.threshold, 20);
    ck_assert_double_gt(r.current, 20);
    int st;
    ck_assert_int_eq(waitpid(wl, &st, 0), wl);
    sleep(3);
    data_sum_t d = {.task_id = "oap-cont-1"};
    s_each_request("collectProfilingData", s_sum_data, &d);
    ck_assert_msg(d.messages > 0 && d.has_alpha,
                  "the OAP's continuous task sent no burner stacks; see %s",
                  C.log);
    ck_assert(s_reported(&r));
    ck_assert_int_eq(r.reports, 1); /* silence */
    int meter = 0;
    s_each_request("collectBatch", s_find_meter, &meter);
    ck_assert_msg(meter, "no rover_con_p_process_cpu meter reached the OAP");
    s_stop();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("oap_chain");
    TCase *tc = tcase_create("bpf+oap");
    tcase_set_timeout(tc, 240);
    if (tu_require_bpf("OAP chain") &&
        access("/usr/bin/python3", X_OK) == 0 &&
        system("/usr/bin/python3 -c 'import grpc' 2>/dev/null") == 0) {
        tcase_add_test(tc, oap_fixed_time_task_runs_and_its_data_arrives);
        tcase_add_test(tc, oap_policy_triggers_reported_task_and_data);
    } else if (access("/sys/kernel/btf/vmlinux", R_OK) == 0) {
        tu_skip("OAP chain", "Debian's python3-grpcio is not installed "
                             "(/usr/bin/python3 -c 'import grpc' fails)");
    }
    suite_add_tcase(s, tc);
    return tu_run(s);
}
