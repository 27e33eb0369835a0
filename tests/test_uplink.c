/* The uplink against a fake OAP (tests/fake_oap/fake_oap.py, python3-grpcio):
 * the uplink's logic runs in-process with a simulated clock, the fake
 * records every request message as raw protobuf, and the tests decode them
 * with protobuf-c and assert on the content. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "Command.pb-c.h"
#include "Continuous.pb-c.h"
#include "Meter.pb-c.h"
#include "Process.pb-c.h"
#include "Profiling.pb-c.h"
#include "Logging.pb-c.h"
#include "SpanAttachedEvent.pb-c.h"
#include "bus.h"
#include "log.h"
#include "stats.h"
#include "testutil.h"
#include "uplink/commands.h"
#include "uplink/contproto.h"
#include "uplink/databuf.h"
#include "uplink/netproto.h"
#include "uplink/finder.h"
#include "uplink/policybook.h"
#include "uplink/profdata.h"
#include "uplink/seenprocs.h"
#include "procfeed.h"
#include "uplink/uplink.h"
#include "wire.h"

#define PYTHON "/usr/bin/python3"
#define T0 1000000u            /* simulated monotonic start, ms */
#define NPROCS 3

extern char **environ;

/* ------------------------------------------------------------ fake OAP */
typedef struct {
    char *dir;
    pid_t pid;
    int port;
    char addr[64];
} fake_t;

static int
s_file_exists(void *arg)
{
    struct stat st;
    return stat((const char *)arg, &st) == 0;
}

/* posix_spawn, not fork: the test process may have grpc running. */
static pid_t
s_spawn(char *const argv[])
{
    pid_t pid;
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    return pid;
}

static int
s_fake_start_tls(fake_t *f, const char *token, int record_data,
                 const char *cert, const char *key)
{
    char ready[512], port[16], script[512];
    snprintf(ready, sizeof ready, "%s/ready", f->dir);
    unlink(ready);
    snprintf(port, sizeof port, "%d", f->port);
    snprintf(script, sizeof script, "tests/fake_oap/fake_oap.py");
    char *argv[14];
    int n = 0;
    argv[n++] = PYTHON;
    argv[n++] = script;
    argv[n++] = "--dir";
    argv[n++] = f->dir;
    argv[n++] = "--port";
    argv[n++] = port;
    if (token) {
        argv[n++] = "--token";
        argv[n++] = (char *)token;
    }
    if (!record_data)
        argv[n++] = "--no-record-data";
    if (cert) {
        argv[n++] = "--tls-cert";
        argv[n++] = (char *)cert;
        argv[n++] = "--tls-key";
        argv[n++] = (char *)key;
    }
    argv[n] = NULL;
    f->pid = s_spawn(argv);
    if (f->pid < 0 || !tu_wait_until(s_file_exists, ready, 20000))
        return -1;
    char path[512];
    snprintf(path, sizeof path, "%s/port", f->dir);
    char *text = tu_read_file(path, NULL);
    if (!text)
        return -1;
    f->port = atoi(text);
    free(text);
    snprintf(f->addr, sizeof f->addr, "127.0.0.1:%d", f->port);
    return 0;
}

static int
s_fake_start(fake_t *f, const char *token, int record_data)
{
    return s_fake_start_tls(f, token, record_data, NULL, NULL);
}

static void
s_fake_kill(fake_t *f, int sig)
{
    if (f->pid > 0) {
        kill(f->pid, sig);
        waitpid(f->pid, NULL, 0);
        f->pid = -1;
    }
}

static pid_t
s_spawn_log(char *const argv[], const char *log)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND,
                                     0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : -1;
}

static int
s_python_grpc_ok(const char *name)
{
    struct stat st;
    if (stat(PYTHON, &st) != 0)
        return tu_skip(name, "%s not installed", PYTHON);
    char *argv[] = { PYTHON, "-c", "import grpc", NULL };
    pid_t pid = s_spawn(argv);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return tu_skip(name, "python3-grpcio missing (make deps)");
    return 1;
}

static int
s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted request files of one method (oldest first). */
static size_t
s_requests(const fake_t *f, const char *method, char ***names)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/req/%s", f->dir, method);
    *names = NULL;
    size_t n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        *names = realloc(*names, (n + 1) * sizeof **names);
        ck_assert_ptr_nonnull(*names);
        size_t len = strlen(dir) + strlen(de->d_name) + 2;
        (*names)[n] = malloc(len);
        snprintf((*names)[n], len, "%s/%s", dir, de->d_name);
        n++;
    }
    closedir(d);
    if (n)                      /* an empty directory leaves *names NULL */
        qsort(*names, n, sizeof **names, s_cmp_str);
    return n;
}

static void
s_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static uint8_t *
s_last_request(const fake_t *f, const char *method, size_t *len)
{
    char **names;
    size_t n = s_requests(f, method, &names);
    uint8_t *data = n ? (uint8_t *)tu_read_file(names[n - 1], len) : NULL;
    s_free_names(names, n);
    return data;
}

static size_t
s_count_lines(const fake_t *f, const char *file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/req/%s", f->dir, file);
    char *text = tu_read_file(path, NULL);
    size_t n = 0;
    for (char *c = text; c && *c; c++)
        n += *c == '\n';
    free(text);
    return n;
}

static void
s_write_reply(const fake_t *f, const char *method, int once,
              const void *data, size_t len)
{
    char dir[512], path[600], tmp[640];
    snprintf(dir, sizeof dir, "%s/reply", f->dir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/%s%s.bin", dir, method, once ? ".once" : "");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(data, 1, len, fp), len);
    fclose(fp);
    ck_assert_int_eq(rename(tmp, path), 0);
}

/* --------------------------------------------------------- workloads */
typedef struct {
    pid_t pids[NPROCS];
    char marker[64];
    char regex[96];
} procs_t;

static int
s_cmdline_ready(void *arg)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", *(pid_t *)arg);
    size_t len = 0;
    char *text = tu_read_file(path, &len);
    int ok = text && len > 0 && memmem(text, len, "--idle", 6) != NULL;
    free(text);
    return ok;
}

static void
s_procs_start(procs_t *p)
{
    /* Copies of this test binary (it has symbols, unlike Debian's stripped
     * /bin/sleep) idling with a unique marker in their command line. */
    snprintf(p->marker, sizeof p->marker, "86400.%d", (int)getpid());
    snprintf(p->regex, sizeof p->regex, "--idle 86400\\.%d$", (int)getpid());
    /* /proc/self/exe still works when a rebuild replaced the file. */
    for (int i = 0; i < NPROCS; i++) {
        char *argv[] = { "/proc/self/exe", "--idle", p->marker, NULL };
        p->pids[i] = s_spawn(argv);
        ck_assert_int_gt(p->pids[i], 0);
        /* posix_spawn returns while the kernel is still finishing the
         * exec: the command line shows up a moment later. */
        ck_assert(tu_wait_until(s_cmdline_ready, &p->pids[i], 10000));
    }
}

static void
s_procs_stop(procs_t *p)
{
    for (int i = 0; i < NPROCS; i++) {
        if (p->pids[i] > 0) {
            kill(p->pids[i], SIGKILL);
            waitpid(p->pids[i], NULL, 0);
        }
    }
}

/* ---------------------------------------------------------- the uplink */
typedef struct {
    uint8_t *data[16];
    size_t len[16];
    size_t n;
} capture_t;

static capture_t s_captured;

/* Everything else the uplink publishes (proc.ids, policy.update), newest
 * kept per topic, with a count; refuse_policy makes policy.update fail as
 * a full bus would. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t count;
} topic_capture_t;

static topic_capture_t s_proc_ids, s_policy;
static bool s_refuse_policy;

static int
s_capture_topic(topic_capture_t *c, const void *data, size_t len)
{
    free(c->data);
    c->data = malloc(len);
    ck_assert_ptr_nonnull(c->data);
    memcpy(c->data, data, len);
    c->len = len;
    c->count++;
    return 0;
}

static void
s_captures_clear(void)
{
    free(s_proc_ids.data);
    free(s_policy.data);
    memset(&s_proc_ids, 0, sizeof s_proc_ids);
    memset(&s_policy, 0, sizeof s_policy);
    s_refuse_policy = false;
}

/* Stands for the bus: encodes what the uplink sends and numbers it per
 * topic, as bus_send would (a message the bus then drops keeps its
 * number, so receivers count it lost). */
static int
s_capture(void *arg, msg_id_t id, void *body)
{
    static uint64_t seq[MSG_COUNT];
    wire_buf_t buf;
    int rc = -1;
    wire_buf_init(&buf);
    if (msg_encode(id, body, "uplink/test", seq[id] + 1, &buf) != 0) {
        rc = BUS_TOO_BIG;
        goto cleanup;
    }
    seq[id]++;
    if (id == MSG_PROC_IDS)
        rc = s_capture_topic(&s_proc_ids, buf.data, buf.len);
    else if (id == MSG_POLICY_UPDATE)
        rc = s_refuse_policy ? -1
                             : s_capture_topic(&s_policy, buf.data, buf.len);
    else if (id == MSG_TASK_REQUEST && s_captured.n < 16) {
        s_captured.data[s_captured.n] = malloc(buf.len);
        memcpy(s_captured.data[s_captured.n], buf.data, buf.len);
        s_captured.len[s_captured.n++] = buf.len;
        rc = 0;
    }
cleanup:
    wire_buf_release(&buf);
    return rc;
}

typedef struct {
    fake_t fake;
    procs_t procs;
    stats_t *stats;
    uplink_t *up;
    uint64_t now;
} env_t;

/* The uplink learns processes only from proc.events: s_tick plays the
 * collector first (an alive event per running process, an exit per one
 * gone), for every uplink but those made with scan false, whose tests
 * send their own events. */
static tu_procfeed_t s_feed;
static uplink_t *s_unfed[4];

static void
s_set_fed(uplink_t *up, bool fed)
{
    for (size_t i = 0; i < 4; i++)
        if (s_unfed[i] == up)
            s_unfed[i] = NULL;
    for (size_t i = 0; !fed && i < 4; i++) {
        if (!s_unfed[i]) {
            s_unfed[i] = up;
            break;
        }
    }
}

static void
s_feed_procs(uplink_t *up, uint64_t now)
{
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(tu_procfeed_encode(&s_feed, &buf), 0);
    ck_assert_int_eq(uplink_handle(up, TOPIC_PROC_EVENTS, buf.data, buf.len,
                                   now), 0);
    wire_buf_release(&buf);
}

static void
s_tick(uplink_t *up, uint64_t now)
{
    bool fed = true;
    for (size_t i = 0; i < 4; i++)
        if (s_unfed[i] == up)
            fed = false;
    if (fed)
        s_feed_procs(up, now);
    uplink_tick(up, now);
}

static uplink_t *
s_uplink_instance(env_t *e, const char *token, uint64_t buffer_size,
                  bool scan, const char *regex, const char *instance)
{
    uplink_options_t o;
    uplink_options_defaults(&o);
    o.addr = e->fake.addr;
    o.auth_token = token ? token : "";
    o.timeout_ms = 3000;
    o.buffer_size = buffer_size;
    o.agent_id = "agent-test";
    /* Without the stand-in collector nothing republishes the processes a
     * test sent events for: keep them. */
    if (!scan)
        o.proc_stale_ms = 0;
    o.publish = s_capture;
    finder_set_t *finders = finder_set_new();
    finder_spec_t spec = { regex, "OS_LINUX", "svc-test", instance,
                           "{{.Process.ExeName}}-{{.Process.Pid}}", "a, b",
                           { NULL }, 0 };
    char err[256];
    ck_assert_msg(finder_set_add(finders, &spec, err, sizeof err) == 0, "%s",
                  err);
    uplink_t *up = uplink_new(&o, finders, e->stats);
    s_set_fed(up, scan);
    return up;
}

static uplink_t *
s_uplink(env_t *e, const char *token, uint64_t buffer_size, bool scan,
         const char *regex)
{
    return s_uplink_instance(e, token, buffer_size, scan, regex,
                             "{{.Rover.HostName}}");
}

static void
s_env_start(env_t *e, const char *fake_token, const char *token,
            uint64_t buffer_size)
{
    memset(e, 0, sizeof *e);
    memset(&s_captured, 0, sizeof s_captured);
    e->fake.dir = tu_mkdtemp();
    ck_assert_ptr_nonnull(e->fake.dir);
    ck_assert_int_eq(s_fake_start(&e->fake, fake_token, 1), 0);
    s_procs_start(&e->procs);
    e->stats = stats_new("uplink", "test");
    e->up = s_uplink(e, token, buffer_size, true, e->procs.regex);
    ck_assert_ptr_nonnull(e->up);
    e->now = T0;
}

static void
s_env_stop(env_t *e)
{
    uplink_destroy(&e->up);
    tu_procfeed_release(&s_feed);
    stats_destroy(&e->stats);
    s_fake_kill(&e->fake, SIGTERM);
    s_procs_stop(&e->procs);
    tu_rmtree(e->fake.dir);
    free(e->fake.dir);
    for (size_t i = 0; i < s_captured.n; i++)
        free(s_captured.data[i]);
    memset(&s_captured, 0, sizeof s_captured);
    s_captures_clear();
}

static double
s_metric(env_t *e, const char *name, const char *labels)
{
    return stats_value(stats_counter(e->stats, name, labels, NULL));
}

static double
s_gauge(env_t *e, const char *name)
{
    return stats_value(stats_gauge(e->stats, name, NULL, NULL));
}

static const char *
s_prop(Skywalking__V3__KeyStringValuePair **kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kv[i]->key, key))
            return kv[i]->value;
    return NULL;
}

static int
s_is_our_pid(const procs_t *p, int32_t pid)
{
    for (int i = 0; i < NPROCS; i++)
        if (p->pids[i] == pid)
            return 1;
    return 0;
}

/* -------------------------------------------------- Commands building */
typedef struct {
    const char *name;
    const char *kv[20];        /* key, value, ..., NULL */
} cmd_spec_t;

static uint8_t *
s_commands(const cmd_spec_t *specs, size_t n, size_t *len)
{
    Skywalking__V3__Commands cmds = SKYWALKING__V3__COMMANDS__INIT;
    Skywalking__V3__Command *cs = calloc(n, sizeof *cs);
    Skywalking__V3__Command **pcs = calloc(n, sizeof *pcs);
    Skywalking__V3__KeyStringValuePair *kvs = calloc(n * 10, sizeof *kvs);
    Skywalking__V3__KeyStringValuePair **pkvs = calloc(n * 10, sizeof *pkvs);
    for (size_t i = 0; i < n; i++) {
        skywalking__v3__command__init(&cs[i]);
        cs[i].command = (char *)specs[i].name;
        cs[i].args = &pkvs[i * 10];
        for (size_t a = 0; specs[i].kv[2 * a]; a++) {
            Skywalking__V3__KeyStringValuePair *kv = &kvs[i * 10 + a];
            skywalking__v3__key_string_value_pair__init(kv);
            kv->key = (char *)specs[i].kv[2 * a];
            kv->value = (char *)specs[i].kv[2 * a + 1];
            pkvs[i * 10 + a] = kv;
            cs[i].n_args++;
        }
        pcs[i] = &cs[i];
    }
    cmds.n_commands = n;
    cmds.commands = pcs;
    *len = skywalking__v3__commands__get_packed_size(&cmds);
    uint8_t *out = malloc(*len ? *len : 1);
    skywalking__v3__commands__pack(&cmds, out);
    free(cs);
    free(pcs);
    free(kvs);
    free(pkvs);
    return out;
}

/* ------------------------------------------------- profile publishing */
static const char *s_k1[] = { "k_leaf", "k_root" };
static const char *s_u1[] = { "u_leaf", "main" };
static const char *s_u2[] = { "other", "main" };

static int
s_handle_profiles(env_t *e, const wire_task_profile_t *profiles, uint32_t n)
{
    static uint64_t seq;
    wire_profile_batch_t b;
    memset(&b, 0, sizeof b);
    wire_header_set(&b.hdr, "aggregator/test", ++seq);
    b.nprofiles = n;
    b.profiles = profiles;
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_profile_batch(&b, &buf), 0);
    int rc = uplink_handle(e->up, TOPIC_AGG_PROFILE, buf.data, buf.len,
                           e->now);
    wire_buf_release(&buf);
    return rc;
}

/* One on-CPU profile of pid with a single stack of `count` samples. */
static int
s_publish_count(env_t *e, const char *task, uint32_t pid, uint64_t count)
{
    wire_prof_stack_t st = { 2, s_k1, 2, s_u1, count, 0 };
    wire_task_profile_t p = { task, pid, "", WIRE_TARGET_ON_CPU, 1700000000000u,
                              0, 0, 1, &st };
    return s_handle_profiles(e, &p, 1);
}

typedef struct {
    uint64_t dump_total;
    size_t messages, with_meta;
} data_sum_t;

static void
s_sum_data(const fake_t *f, data_sum_t *sum)
{
    memset(sum, 0, sizeof *sum);
    char **names;
    size_t n = s_requests(f, "collectProfilingData", &names);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *raw = (uint8_t *)tu_read_file(names[i], &len);
        Skywalking__V3__EBPFProfilingData *d =
            skywalking__v3__ebpfprofiling_data__unpack(NULL, len, raw);
        ck_assert_ptr_nonnull(d);
        sum->messages++;
        sum->with_meta += d->task != NULL;
        if (d->profiling_case ==
            SKYWALKING__V3__EBPFPROFILING_DATA__PROFILING_ON_CPU)
            sum->dump_total += (uint64_t)d->oncpu->dumpcount;
        skywalking__v3__ebpfprofiling_data__free_unpacked(d, NULL);
        free(raw);
    }
    s_free_names(names, n);
}

/* ================================================================ units */
START_TEST(test_finder_templates)
{
    finder_proc_t p = { 42, "/usr/bin/sleep", "sleep 10", "sleep",
                        NULL };
    finder_env_t env = { "agent-1", "host-a", "10.1.2.3" };
    char err[256];
    char *s = finder_render("{{.Process.ExeName}}-{{ .Process.Pid }}@"
                            "{{.Rover.HostIPV4}}/{{.Rover.InstanceID}}",
                            &p, &env, err, sizeof err);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "sleep-42@10.1.2.3/agent-1");
    free(s);
    s = finder_render("{{.Rover.HostIPV4 \"lo\"}}", &p, &env, err, sizeof err);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "127.0.0.1");
    free(s);
    ck_assert_ptr_null(finder_render("{{.Process.Nope}}", &p, &env, err,
                                     sizeof err));
    ck_assert_ptr_nonnull(strstr(err, ".Process.Nope"));
    ck_assert_ptr_null(finder_render("{{.Process.Pid", &p, &env, err,
                                     sizeof err));

    finder_set_t *set = finder_set_new();
    finder_spec_t bad_re = { .match_cmd_regex = "([a-" };
    ck_assert_int_eq(finder_set_add(set, &bad_re, err, sizeof err), -1);
    finder_spec_t bad_layer = { .match_cmd_regex = "x",
                                .layer = "os linux" };
    ck_assert_int_eq(finder_set_add(set, &bad_layer, err, sizeof err), -1);
    finder_spec_t bad_tmpl = { .match_cmd_regex = "x",
                               .service_name = "{{.Foo}}" };
    ck_assert_int_eq(finder_set_add(set, &bad_tmpl, err, sizeof err), -1);
    finder_spec_t java = { .match_cmd_regex = "java .*-jar",
                           .service_name = "svc",
                           .process_name = "{{.Process.Comm}}",
                           .labels = "x,,y " };
    finder_spec_t any = { .match_cmd_regex = "sleep",
                          .layer = "K8S_SERVICE" };
    ck_assert_int_eq(finder_set_add(set, &java, err, sizeof err), 0);
    ck_assert_int_eq(finder_set_add(set, &any, err, sizeof err), 0);
    ck_assert_uint_eq(finder_set_count(set), 2);

    proc_entity_t en;
    finder_proc_t jp = { 7, "/usr/bin/java", "java -Xmx1g -jar app.jar",
                         "java", NULL };
    ck_assert_int_eq(finder_set_match(set, &jp, &env, &en), 0);
    ck_assert_str_eq(en.layer, "OS_LINUX");
    ck_assert_str_eq(en.service, "svc");
    ck_assert_str_eq(en.instance, "10.1.2.3");
    ck_assert_str_eq(en.process, "java");
    ck_assert_uint_eq(en.nlabels, 2);
    ck_assert_str_eq(en.labels[0], "x");
    ck_assert_str_eq(en.labels[1], "y");
    proc_entity_clear(&en);
    ck_assert_int_eq(finder_set_match(set, &p, &env, &en), 1);
    ck_assert_str_eq(en.layer, "K8S_SERVICE");
    ck_assert_str_eq(en.service, "sleep");
    proc_entity_clear(&en);
    finder_proc_t none = { 8, "/bin/cat", "cat", "cat", NULL };
    ck_assert_int_eq(finder_set_match(set, &none, &env, &en), -1);
    finder_set_destroy(&set);
    ck_assert_ptr_null(set);
}
END_TEST

/* The facts proc.events gave: replace, bound, expiry, iteration. */
START_TEST(test_seenprocs)
{
    seen_procs_t *t = seen_procs_new(2);
    ck_assert_ptr_nonnull(t);
    wire_proc_event_t ev = { WIRE_PROC_START, 7, 1, 0, 1, "a", "/bin/a",
                             "a --x", "c0ffee", 1 };
    const seen_proc_t *p = seen_procs_put(t, &ev, 100);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->cmdline, "a --x");
    ck_assert_str_eq(p->container_id, "c0ffee");
    ck_assert(p->has_symbols);
    /* The same pid again replaces its facts. */
    ev.type = WIRE_PROC_EXEC;
    ev.cmdline = "b";
    ev.has_symbols = 0;
    p = seen_procs_put(t, &ev, 200);
    ck_assert_str_eq(p->cmdline, "b");
    ck_assert(!p->has_symbols);
    ck_assert_uint_eq(seen_procs_count(t), 1);
    /* No command line (a kernel thread): not kept. */
    wire_proc_event_t kt = { WIRE_PROC_ALIVE, 8, 2, 0, 1, "kworker", "", "",
                             "", 0 };
    ck_assert_ptr_null(seen_procs_put(t, &kt, 200));
    /* Bounded: a third process is refused. */
    wire_proc_event_t other = ev;
    other.pid = 9;
    ck_assert_ptr_nonnull(seen_procs_put(t, &other, 300));
    other.pid = 10;
    ck_assert_ptr_null(seen_procs_put(t, &other, 300));
    ck_assert_uint_eq(seen_procs_count(t), 2);
    /* A long command line is cut as ps does. */
    char *longcmd = malloc(SEEN_MAX_CMDLINE * 2);
    memset(longcmd, 'x', SEEN_MAX_CMDLINE * 2 - 1);
    longcmd[SEEN_MAX_CMDLINE * 2 - 1] = '\0';
    other.pid = 9;
    other.cmdline = longcmd;
    p = seen_procs_put(t, &other, 300);
    ck_assert_uint_eq(strlen(p->cmdline), SEEN_MAX_CMDLINE - 1);
    free(longcmd);
    size_t n = 0;
    size_t cursor = 0;
    while (seen_procs_next(t, &cursor))
        n++;
    ck_assert_uint_eq(n, 2);
    /* Not named since before 250: pid 7 goes, 9 stays. */
    ck_assert_uint_eq(seen_procs_expire(t, 250), 1);
    ck_assert_ptr_null(seen_procs_get(t, 7));
    ck_assert_ptr_nonnull(seen_procs_get(t, 9));
    seen_procs_remove(t, 9);
    ck_assert_uint_eq(seen_procs_count(t), 0);
    seen_procs_destroy(&t);
    seen_procs_destroy(&t);
}
END_TEST

START_TEST(test_databuf_drops_oldest)
{
    databuf_t *b = databuf_new(4096);
    uint8_t payload[200];
    int dropped = 0;
    for (int i = 0; i < 100; i++) {
        memset(payload, i, sizeof payload);
        int d = databuf_push(b, "task", "proc", 1, 5, payload, sizeof payload);
        ck_assert_int_ge(d, 0);
        dropped += d;
        ck_assert_uint_le(databuf_bytes(b), 4096);
    }
    ck_assert_int_gt(dropped, 0);
    ck_assert_uint_eq(databuf_count(b) + (size_t)dropped, 100);
    /* The survivors are the newest, in order. */
    int expect = 100 - (int)databuf_count(b);
    for (databuf_item_t *it = databuf_head(b); it; it = it->next)
        ck_assert_uint_eq(it->data[0], (uint8_t)expect++);
    ck_assert_int_eq(expect, 100);
    uint8_t big[8192] = { 0 };
    ck_assert_int_eq(databuf_push(b, "t", "p", 1, 5, big, sizeof big), -1);
    databuf_destroy(&b);
    ck_assert_ptr_null(b);
}
END_TEST

START_TEST(test_profdata_shapes)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    wire_prof_stack_t st = { 2, s_k1, 2, s_u1, 7, 99 };
    size_t len = profdata_encode_stack(WIRE_TARGET_ON_CPU, &st, &buf, &cap);
    ck_assert_uint_gt(len, 0);
    Skywalking__V3__EBPFProfilingData *d =
        skywalking__v3__ebpfprofiling_data__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_null(d->task);
    ck_assert_int_eq(d->profiling_case,
                     SKYWALKING__V3__EBPFPROFILING_DATA__PROFILING_ON_CPU);
    ck_assert_int_eq(d->oncpu->dumpcount, 7);
    ck_assert_uint_eq(d->oncpu->n_stacks, 2);
    ck_assert_int_eq(d->oncpu->stacks[0]->stacktype,
                     SKYWALKING__V3__EBPFPROFILING_STACK_TYPE__PROCESS_KERNEL_SPACE);
    ck_assert_str_eq(d->oncpu->stacks[0]->stacksymbols[0], "k_leaf");
    ck_assert_int_eq(d->oncpu->stacks[1]->stacktype,
                     SKYWALKING__V3__EBPFPROFILING_STACK_TYPE__PROCESS_USER_SPACE);
    ck_assert_str_eq(d->oncpu->stacks[1]->stacksymbols[1], "main");
    ck_assert_int_eq(d->oncpu->stacks[1]->stackid,
                     profdata_stack_id(2, s_u1));
    ck_assert_int_ne(profdata_stack_id(2, s_u1), profdata_stack_id(2, s_u2));
    ck_assert_int_gt(profdata_stack_id(2, s_u1), 0);
    skywalking__v3__ebpfprofiling_data__free_unpacked(d, NULL);

    /* Metadata + body concatenated parse as one message with both. */
    size_t blen = profdata_encode_stack(WIRE_TARGET_OFF_CPU, &st, &buf, &cap);
    uint8_t *body = malloc(blen);
    memcpy(body, buf, blen);
    size_t mlen = profdata_encode_meta("t1", "p1", 11, 22, &buf, &cap);
    uint8_t *both = malloc(mlen + blen);
    memcpy(both, buf, mlen);
    memcpy(both + mlen, body, blen);
    d = skywalking__v3__ebpfprofiling_data__unpack(NULL, mlen + blen, both);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(d->task->taskid, "t1");
    ck_assert_str_eq(d->task->processid, "p1");
    ck_assert_int_eq(d->task->profilingstarttime, 11);
    ck_assert_int_eq(d->task->currenttime, 22);
    ck_assert_int_eq(d->profiling_case,
                     SKYWALKING__V3__EBPFPROFILING_DATA__PROFILING_OFF_CPU);
    ck_assert_int_eq(d->offcpu->switchcount, 7);
    ck_assert_int_eq(d->offcpu->duration, 99);
    skywalking__v3__ebpfprofiling_data__free_unpacked(d, NULL);
    ck_assert_uint_eq(profdata_encode_stack(WIRE_TARGET_NETWORK, &st, &buf,
                                            &cap), 0);
    free(both);
    free(body);
    free(buf);
}
END_TEST

static uint32_t
s_fake_pid_of(void *arg, const char *id)
{
    if (!strncmp(id, "proc-", 5))
        return (uint32_t)atoi(id + 5);
    return 0;
}

START_TEST(test_commands_parse)
{
    cmd_spec_t specs[] = {
        { "EBPFProfilingTaskQuery",
          { "SerialNumber", "1", "TaskId", "t1", "ProcessId", "proc-10, proc-11",
            "TaskUpdateTime", "500", "TriggerType", "FIXED_TIME",
            "TargetType", "OFF_CPU", "TaskStartTime", "400",
            "ExtensionConfigJSON", "null", "FixedTriggerDuration", "30",
            NULL } },
        /* the same task for another process merges */
        { "EBPFProfilingTaskQuery",
          { "TaskId", "t1", "ProcessId", "proc-12", "TaskUpdateTime", "600",
            "TriggerType", "FIXED_TIME", "TargetType", "OFF_CPU",
            "TaskStartTime", "400", "ExtensionConfigJSON", "{\"a\":1}",
            "FixedTriggerDuration", "30", NULL } },
        { "EBPFProfilingTaskQuery",     /* no TaskId */
          { "ProcessId", "proc-1", "TaskUpdateTime", "1", NULL } },
        { "EBPFProfilingTaskQuery",     /* unknown target */
          { "TaskId", "t3", "ProcessId", "proc-1", "TaskUpdateTime", "1",
            "TriggerType", "FIXED_TIME", "TargetType", "GPU",
            "TaskStartTime", "1", "FixedTriggerDuration", "1", NULL } },
        { "EBPFProfilingTaskQuery",     /* bad number */
          { "TaskId", "t4", "ProcessId", "proc-1", "TaskUpdateTime", "12x",
            "TriggerType", "FIXED_TIME", "TargetType", "ON_CPU",
            "TaskStartTime", "1", "FixedTriggerDuration", "1", NULL } },
        { "EBPFProfilingTaskQuery",     /* processes we do not know */
          { "TaskId", "t5", "ProcessId", "other-1", "TaskUpdateTime", "450",
            "TriggerType", "CONTINUOUS_PROFILING", "TargetType", "ON_CPU",
            "TaskStartTime", "1", NULL } },
        { "ContinuousProfilingPolicyQuery",
          { "ServiceWithPolicyJSON", "[]", NULL } },
    };
    size_t len;
    uint8_t *raw = s_commands(specs, sizeof specs / sizeof specs[0], &len);
    arena_t *arena = arena_new(0);
    log_ratelimit_t rl = LOG_RATELIMIT_INIT(100, 1000);
    commands_tasks_t ct;
    ck_assert_int_eq(commands_parse_tasks(raw, len, arena, s_fake_pid_of,
                                          NULL, &ct, &rl), 0);
    ck_assert_uint_eq(ct.invalid, 3);
    ck_assert_uint_eq(ct.unmapped, 1);
    ck_assert_uint_eq(ct.ntasks, 1);
    const wire_task_t *t = &ct.tasks[0];
    ck_assert_str_eq(t->task_id, "t1");
    ck_assert_uint_eq(t->target, WIRE_TARGET_OFF_CPU);
    ck_assert_uint_eq(t->trigger, WIRE_TRIGGER_FIXED_TIME);
    ck_assert_uint_eq(t->source, WIRE_SRC_OAP);
    ck_assert_uint_eq(t->start_ms, 400);
    ck_assert_uint_eq(t->duration_ms, 30000);
    ck_assert_uint_eq(t->update_ms, 600);
    /* The newer command's extension. */
    ck_assert_str_eq(t->extension_json, "{\"a\":1}");
    ck_assert_uint_eq(t->npids, 3);
    ck_assert_uint_eq(t->pids[0], 10);
    ck_assert_uint_eq(t->pids[1], 11);
    ck_assert_uint_eq(t->pids[2], 12);
    ck_assert_str_eq(t->process_ids[2], "proc-12");
    /* The unmapped task at 450 holds latestUpdateTime below it. */
    ck_assert_int_eq(ct.next_update_ms, 449);
    free(raw);

    static const uint8_t garbage[] = { 0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01 };
    ck_assert_int_eq(commands_parse_tasks(garbage, sizeof garbage, arena,
                                          s_fake_pid_of, NULL, &ct, &rl), -1);
    ck_assert_int_eq(commands_parse_tasks(NULL, 0, arena, s_fake_pid_of,
                                          NULL, &ct, &rl), 0);
    ck_assert_uint_eq(ct.ntasks, 0);
    arena_destroy(&arena);
}
END_TEST

/* A NETWORK task as the OAP writes it for a service instance: one command
 * naming all its processes, a 600 s window, sampling rules in camelCase;
 * its keep re-sends it with a longer duration and an empty extension. */
START_TEST(test_commands_network)
{
    const char *rules = "{\"networkSamplings\":[{\"uriRegex\":\"/api.*\","
                        "\"minDuration\":100,\"when5xx\":true}]}";
    cmd_spec_t specs[] = {
        { "EBPFProfilingTaskQuery",
          { "SerialNumber", "9", "TaskId", "net-1", "ProcessId",
            "proc-10,proc-11,proc-12", "TaskUpdateTime", "1000",
            "TriggerType", "FIXED_TIME", "TargetType", "NETWORK",
            "TaskStartTime", "900", "FixedTriggerDuration", "600",
            "ExtensionConfigJSON", rules, NULL } },
        { "EBPFProfilingTaskQuery",
          { "TaskId", "net-2", "ProcessId", "proc-13", "TaskUpdateTime",
            "2000", "TriggerType", "FIXED_TIME", "TargetType", "NETWORK",
            "TaskStartTime", "900", "FixedTriggerDuration", "1200",
            "ExtensionConfigJSON", "", NULL } },
    };
    size_t len;
    uint8_t *raw = s_commands(specs, 2, &len);
    arena_t *arena = arena_new(0);
    log_ratelimit_t rl = LOG_RATELIMIT_INIT(100, 1000);
    commands_tasks_t ct;
    ck_assert_int_eq(commands_parse_tasks(raw, len, arena, s_fake_pid_of,
                                          NULL, &ct, &rl), 0);
    free(raw);
    ck_assert_uint_eq(ct.invalid, 0);
    ck_assert_uint_eq(ct.ntasks, 2);
    ck_assert_str_eq(ct.tasks[0].task_id, "net-1");
    ck_assert_uint_eq(ct.tasks[0].target, WIRE_TARGET_NETWORK);
    ck_assert_uint_eq(ct.tasks[0].npids, 3);
    ck_assert_uint_eq(ct.tasks[0].pids[2], 12);
    ck_assert_uint_eq(ct.tasks[0].duration_ms, 600000);
    ck_assert_str_eq(ct.tasks[0].extension_json, rules);
    ck_assert_uint_eq(ct.tasks[1].duration_ms, 1200000);
    ck_assert_str_eq(ct.tasks[1].extension_json, "");
    arena_destroy(&arena);
}
END_TEST

START_TEST(test_idle_without_oap)
{
    uplink_options_t o;
    uplink_options_defaults(&o);
    stats_t *stats = stats_new("uplink", "test");
    uplink_t *up = uplink_new(&o, finder_set_new(), stats);
    ck_assert_ptr_nonnull(up);
    ck_assert(!uplink_active(up));
    s_tick(up, T0);
    s_tick(up, T0 + 60000);
    ck_assert_uint_eq(uplink_process_count(up), 0);
    ck_assert_int_eq(uplink_handle(up, TOPIC_AGG_PROFILE, "\x01\x02", 2, T0),
                     -1);
    uplink_destroy(&up);
    stats_destroy(&stats);
    tu_procfeed_release(&s_feed);
}
END_TEST

/* ======================================================= with the OAP */
START_TEST(test_report_keepalive_and_tasks)
{
    if (!s_python_grpc_ok("test_report_keepalive_and_tasks"))
        return;
    env_t e;
    s_env_start(&e, NULL, NULL, 4u << 20);
    s_tick(e.up, e.now);

    size_t len;
    uint8_t *raw = s_last_request(&e.fake, "reportProcesses", &len);
    ck_assert_ptr_nonnull(raw);
    Skywalking__V3__EBPFProcessReportList *rep =
        skywalking__v3__ebpfprocess_report_list__unpack(NULL, len, raw);
    ck_assert_ptr_nonnull(rep);
    ck_assert_str_eq(rep->ebpfagentid, "agent-test");
    ck_assert_uint_eq(rep->n_processes, NPROCS);
    char host[256];
    gethostname(host, sizeof host);
    for (size_t i = 0; i < rep->n_processes; i++) {
        const Skywalking__V3__EBPFProcessProperties *pp = rep->processes[i];
        ck_assert_int_eq(pp->metadata_case,
            SKYWALKING__V3__EBPFPROCESS_PROPERTIES__METADATA_HOST_PROCESS);
        const Skywalking__V3__EBPFHostProcessMetadata *h = pp->hostprocess;
        ck_assert(s_is_our_pid(&e.procs, h->pid));
        ck_assert_str_eq(h->entity->layer, "OS_LINUX");
        ck_assert_str_eq(h->entity->servicename, "svc-test");
        ck_assert_str_eq(h->entity->instancename, host);
        char want[64];
        snprintf(want, sizeof want, "test_uplink-%d", h->pid);
        ck_assert_str_eq(h->entity->processname, want);
        ck_assert_uint_eq(h->entity->n_labels, 2);
        ck_assert_str_eq(h->entity->labels[1], "b");
        snprintf(want, sizeof want, "%d", h->pid);
        ck_assert_str_eq(s_prop(h->properties, h->n_properties, "pid"), want);
        ck_assert_ptr_nonnull(strstr(s_prop(h->properties, h->n_properties,
                                            "command_line"), e.procs.marker));
        ck_assert_ptr_nonnull(s_prop(h->properties, h->n_properties,
                                     "host_ip"));
        ck_assert_str_eq(s_prop(h->properties, h->n_properties,
                                "support_ebpf_profiling"), "true");
        snprintf(want, sizeof want, "proc-%d", h->pid);
        ck_assert_str_eq(uplink_process_id(e.up, (uint32_t)h->pid), want);
    }
    skywalking__v3__ebpfprocess_report_list__free_unpacked(rep, NULL);
    free(raw);
    ck_assert(s_metric(&e, "processes_reported", NULL) == NPROCS);

    raw = s_last_request(&e.fake, "queryTasks", &len);
    ck_assert_ptr_nonnull(raw);
    Skywalking__V3__EBPFProfilingTaskQuery *q =
        skywalking__v3__ebpfprofiling_task_query__unpack(NULL, len, raw);
    ck_assert_ptr_nonnull(q);
    ck_assert_str_eq(q->roverinstanceid, "agent-test");
    ck_assert_int_eq(q->latestupdatetime, 0);
    skywalking__v3__ebpfprofiling_task_query__free_unpacked(q, NULL);
    free(raw);

    /* Schedule two tasks on the OAP. */
    char ids[64], id2[32];
    snprintf(ids, sizeof ids, "proc-%d,proc-%d", e.procs.pids[0],
             e.procs.pids[1]);
    snprintf(id2, sizeof id2, "proc-%d", e.procs.pids[2]);
    cmd_spec_t specs[] = {
        { "EBPFProfilingTaskQuery",
          { "SerialNumber", "s1", "TaskId", "task-on", "ProcessId", ids,
            "TaskUpdateTime", "1700000000123", "TriggerType", "FIXED_TIME",
            "TargetType", "ON_CPU", "TaskStartTime", "1700000000000",
            "ExtensionConfigJSON", "null", "FixedTriggerDuration", "60",
            NULL } },
        { "EBPFProfilingTaskQuery",
          { "SerialNumber", "s2", "TaskId", "task-off", "ProcessId", id2,
            "TaskUpdateTime", "1700000000100", "TriggerType", "FIXED_TIME",
            "TargetType", "OFF_CPU", "TaskStartTime", "1700000000050",
            "ExtensionConfigJSON", "{\"NetworkSamplings\":[]}",
            "FixedTriggerDuration", "120", NULL } },
    };
    uint8_t *cmds = s_commands(specs, 2, &len);
    s_write_reply(&e.fake, "queryTasks", 1, cmds, len);
    free(cmds);
    e.now += 10000;                             /* check_interval */
    s_tick(e.up, e.now);

    ck_assert_uint_eq(s_captured.n, 1);
    arena_t *arena = arena_new(0);
    wire_task_set_t set;
    char err[256];
    ck_assert_int_eq(wire_decode_task_set(s_captured.data[0],
                                          s_captured.len[0], arena, &set,
                                          err, sizeof err), 0);
    ck_assert_uint_eq(set.ntasks, 2);
    for (uint32_t i = 0; i < 2; i++) {
        const wire_task_t *t = &set.tasks[i];
        ck_assert_uint_eq(t->source, WIRE_SRC_OAP);
        ck_assert_uint_eq(t->trigger, WIRE_TRIGGER_FIXED_TIME);
        ck_assert_ptr_nonnull(t->process_ids);
        if (!strcmp(t->task_id, "task-on")) {
            ck_assert_uint_eq(t->target, WIRE_TARGET_ON_CPU);
            ck_assert_uint_eq(t->start_ms, 1700000000000ull);
            ck_assert_uint_eq(t->update_ms, 1700000000123ull);
            ck_assert_uint_eq(t->duration_ms, 60000);
            ck_assert_str_eq(t->extension_json, "");
            ck_assert_uint_eq(t->npids, 2);
            ck_assert_uint_eq(t->pids[0], (uint32_t)e.procs.pids[0]);
            ck_assert_uint_eq(t->pids[1], (uint32_t)e.procs.pids[1]);
            char want[32];
            snprintf(want, sizeof want, "proc-%d", e.procs.pids[1]);
            ck_assert_str_eq(t->process_ids[1], want);
        } else {
            ck_assert_str_eq(t->task_id, "task-off");
            ck_assert_uint_eq(t->target, WIRE_TARGET_OFF_CPU);
            ck_assert_uint_eq(t->start_ms, 1700000000050ull);
            ck_assert_uint_eq(t->duration_ms, 120000);
            ck_assert_str_eq(t->extension_json, "{\"NetworkSamplings\":[]}");
            ck_assert_uint_eq(t->npids, 1);
            ck_assert_uint_eq(t->pids[0], (uint32_t)e.procs.pids[2]);
        }
    }
    arena_destroy(&arena);
    ck_assert(s_metric(&e, "tasks_received", NULL) == 2);

    /* Next round: latestUpdateTime is the largest TaskUpdateTime, and the
     * heartbeat keeps every reported process alive. */
    e.now += 10000;
    s_tick(e.up, e.now);
    raw = s_last_request(&e.fake, "queryTasks", &len);
    q = skywalking__v3__ebpfprofiling_task_query__unpack(NULL, len, raw);
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(q->latestupdatetime, 1700000000123ll);
    skywalking__v3__ebpfprofiling_task_query__free_unpacked(q, NULL);
    free(raw);
    ck_assert_uint_eq(s_captured.n, 1);       /* empty reply: nothing new */

    raw = s_last_request(&e.fake, "keepAlive", &len);
    ck_assert_ptr_nonnull(raw);
    Skywalking__V3__EBPFProcessPingPkgList *ka =
        skywalking__v3__ebpfprocess_ping_pkg_list__unpack(NULL, len, raw);
    ck_assert_ptr_nonnull(ka);
    ck_assert_str_eq(ka->ebpfagentid, "agent-test");
    ck_assert_uint_eq(ka->n_processes, NPROCS);
    for (size_t i = 0; i < ka->n_processes; i++) {
        ck_assert_str_eq(ka->processes[i]->entitymetadata->servicename,
                         "svc-test");
        ck_assert_ptr_nonnull(strstr(
            ka->processes[i]->entitymetadata->processname, "test_uplink-"));
        ck_assert_uint_eq(ka->processes[i]->n_properties, 1);
        ck_assert_str_eq(ka->processes[i]->properties[0]->key,
                         "support_ebpf_profiling");
        ck_assert_str_eq(ka->processes[i]->properties[0]->value, "true");
    }
    skywalking__v3__ebpfprocess_ping_pkg_list__free_unpacked(ka, NULL);
    free(raw);

    /* A process that exits stops being kept alive. */
    kill(e.procs.pids[2], SIGKILL);
    waitpid(e.procs.pids[2], NULL, 0);
    e.procs.pids[2] = -1;
    e.now += 20000;
    s_tick(e.up, e.now);
    raw = s_last_request(&e.fake, "keepAlive", &len);
    ka = skywalking__v3__ebpfprocess_ping_pkg_list__unpack(NULL, len, raw);
    ck_assert_ptr_nonnull(ka);
    ck_assert_uint_eq(ka->n_processes, NPROCS - 1);
    skywalking__v3__ebpfprocess_ping_pkg_list__free_unpacked(ka, NULL);
    free(raw);
    ck_assert(s_metric(&e, "calls",
                       "method=\"keepAlive\",status=\"OK\"") == 2);
    s_env_stop(&e);
}
END_TEST

START_TEST(test_profiling_data)
{
    if (!s_python_grpc_ok("test_profiling_data"))
        return;
    env_t e;
    s_env_start(&e, NULL, NULL, 4u << 20);
    s_tick(e.up, e.now);
    uint32_t p0 = (uint32_t)e.procs.pids[0], p1 = (uint32_t)e.procs.pids[1],
             p2 = (uint32_t)e.procs.pids[2];
    char id1[32];
    snprintf(id1, sizeof id1, "proc-%u", p1);

    wire_prof_stack_t s0[] = { { 2, s_k1, 2, s_u1, 7, 0 },
                               { 0, NULL, 2, s_u2, 5, 0 } };
    wire_prof_stack_t s1[] = { { 2, s_k1, 2, s_u1, 11, 0 } };
    wire_prof_stack_t s2[] = { { 2, s_k1, 2, s_u2, 3, 123456789 } };
    wire_task_profile_t profiles[] = {
        { "task-on", p0, "", WIRE_TARGET_ON_CPU, 1700000000000u, 0, 0, 2, s0 },
        /* process id given by the aggregator is used as is */
        { "task-on", p1, id1, WIRE_TARGET_ON_CPU, 1700000000000u, 0, 0, 1, s1 },
        { "task-off", p2, "", WIRE_TARGET_OFF_CPU, 1700000000050u, 0, 0, 1,
          s2 },
    };
    ck_assert_int_eq(s_handle_profiles(&e, profiles, 3), 0);
    ck_assert_uint_gt(uplink_buffer_bytes(e.up), 0);
    uint64_t wall_before = now_wall_ms();
    e.now += 5000;                               /* flush_interval */
    s_tick(e.up, e.now);
    ck_assert_uint_eq(uplink_buffer_bytes(e.up), 0);

    char **names;
    size_t n = s_requests(&e.fake, "collectProfilingData", &names);
    ck_assert_uint_eq(n, 4);                     /* one per distinct stack */
    const char *cur_task = NULL;
    char cur_proc[32] = "";
    uint64_t dump[2] = { 0, 0 }, with_meta = 0;
    int32_t stack_id_first = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *raw = (uint8_t *)tu_read_file(names[i], &len);
        Skywalking__V3__EBPFProfilingData *d =
            skywalking__v3__ebpfprofiling_data__unpack(NULL, len, raw);
        ck_assert_ptr_nonnull(d);
        if (d->task) {
            with_meta++;
            cur_task = !strcmp(d->task->taskid, "task-on") ? "task-on"
                                                           : "task-off";
            snprintf(cur_proc, sizeof cur_proc, "%s", d->task->processid);
            ck_assert_int_eq(d->task->profilingstarttime,
                             !strcmp(cur_task, "task-on") ? 1700000000000ll
                                                          : 1700000000050ll);
            ck_assert_int_ge(d->task->currenttime, (int64_t)wall_before);
            ck_assert_int_le(d->task->currenttime,
                             (int64_t)now_wall_ms());
        }
        ck_assert_ptr_nonnull(cur_task);         /* first message has it */
        if (!strcmp(cur_task, "task-on")) {
            ck_assert_int_eq(d->profiling_case,
                SKYWALKING__V3__EBPFPROFILING_DATA__PROFILING_ON_CPU);
            ck_assert_uint_eq(d->oncpu->n_stacks, 2);
            const Skywalking__V3__EBPFProfilingStackMetadata *k =
                d->oncpu->stacks[0], *u = d->oncpu->stacks[1];
            ck_assert_int_eq(k->stacktype,
                SKYWALKING__V3__EBPFPROFILING_STACK_TYPE__PROCESS_KERNEL_SPACE);
            ck_assert_int_eq(u->stacktype,
                SKYWALKING__V3__EBPFPROFILING_STACK_TYPE__PROCESS_USER_SPACE);
            ck_assert_uint_eq(u->n_stacksymbols, 2);
            ck_assert_str_eq(u->stacksymbols[1], "main");
            if (d->oncpu->dumpcount == 7) {
                ck_assert_uint_eq(k->n_stacksymbols, 2);
                ck_assert_str_eq(k->stacksymbols[0], "k_leaf");
                ck_assert_str_eq(k->stacksymbols[1], "k_root");
                ck_assert_str_eq(u->stacksymbols[0], "u_leaf");
                stack_id_first = u->stackid;
            } else if (d->oncpu->dumpcount == 5) {
                ck_assert_uint_eq(k->n_stacksymbols, 0);
                ck_assert_str_eq(u->stacksymbols[0], "other");
            }
            char want[32];
            snprintf(want, sizeof want, "proc-%u",
                     d->oncpu->dumpcount == 11 ? p1 : p0);
            ck_assert_str_eq(cur_proc, want);
            dump[d->oncpu->dumpcount == 11] += (uint64_t)d->oncpu->dumpcount;
        } else {
            ck_assert_int_eq(d->profiling_case,
                SKYWALKING__V3__EBPFPROFILING_DATA__PROFILING_OFF_CPU);
            ck_assert_int_eq(d->offcpu->switchcount, 3);
            ck_assert_int_eq(d->offcpu->duration, 123456789);
            ck_assert_str_eq(d->offcpu->stacks[1]->stacksymbols[0], "other");
            char want[32];
            snprintf(want, sizeof want, "proc-%u", p2);
            ck_assert_str_eq(cur_proc, want);
        }
        skywalking__v3__ebpfprofiling_data__free_unpacked(d, NULL);
        free(raw);
    }
    s_free_names(names, n);
    ck_assert_uint_eq(with_meta, 3);             /* per task and process */
    ck_assert_uint_eq(dump[0], 12);
    ck_assert_uint_eq(dump[1], 11);
    ck_assert_int_ne(stack_id_first, 0);
    ck_assert(s_metric(&e, "calls",
              "method=\"collectProfilingData\",status=\"OK\"") == 1);
    ck_assert(s_metric(&e, "messages_sent", NULL) >= 4);

    /* Same stack in a later flush: same stackId. */
    ck_assert_int_eq(s_publish_count(&e, "task-on", p0, 1), 0);
    e.now += 5000;
    s_tick(e.up, e.now);
    size_t len;
    uint8_t *raw = s_last_request(&e.fake, "collectProfilingData", &len);
    Skywalking__V3__EBPFProfilingData *d =
        skywalking__v3__ebpfprofiling_data__unpack(NULL, len, raw);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(d->task);              /* new stream, new meta */
    ck_assert_int_eq(d->oncpu->stacks[1]->stackid, stack_id_first);
    skywalking__v3__ebpfprofiling_data__free_unpacked(d, NULL);
    free(raw);
    s_env_stop(&e);
}
END_TEST

START_TEST(test_auth_token)
{
    if (!s_python_grpc_ok("test_auth_token"))
        return;
    env_t e;
    s_env_start(&e, "s3cret", "s3cret", 4u << 20);
    s_tick(e.up, e.now);
    ck_assert(uplink_connected(e.up));
    ck_assert(s_metric(&e, "calls",
                       "method=\"reportProcesses\",status=\"OK\"") == 1);
    ck_assert_uint_eq(s_count_lines(&e.fake, "reportProcesses.denied"), 0);
    uplink_destroy(&e.up);

    /* A wrong token: one clear failure, then a long wait, not a storm. */
    e.up = s_uplink(&e, "wrong", 4u << 20, true, e.procs.regex);
    ck_assert_ptr_nonnull(e.up);
    for (int i = 0; i < 120; i++)               /* two simulated minutes */
        s_tick(e.up, e.now + (uint64_t)i * 1000);
    ck_assert(!uplink_connected(e.up));
    ck_assert_uint_eq(s_count_lines(&e.fake, "reportProcesses.denied"), 1);
    ck_assert(s_metric(&e, "calls", "method=\"reportProcesses\","
                       "status=\"UNAUTHENTICATED\"") == 1);
    /* After the auth backoff (5 min) it tries once more. */
    s_tick(e.up, e.now + 301000);
    ck_assert_uint_eq(s_count_lines(&e.fake, "reportProcesses.denied"), 2);
    s_env_stop(&e);
}
END_TEST

START_TEST(test_oap_restart_loses_nothing)
{
    if (!s_python_grpc_ok("test_oap_restart_loses_nothing"))
        return;
    env_t e;
    s_env_start(&e, NULL, NULL, 4u << 20);
    s_tick(e.up, e.now);
    uint32_t p0 = (uint32_t)e.procs.pids[0];
    ck_assert_int_eq(s_publish_count(&e, "task-on", p0, 10), 0);
    e.now += 5000;
    s_tick(e.up, e.now);
    data_sum_t sum;
    s_sum_data(&e.fake, &sum);
    ck_assert_uint_eq(sum.dump_total, 10);

    s_fake_kill(&e.fake, SIGKILL);
    ck_assert_int_eq(s_publish_count(&e, "task-on", p0, 20), 0);
    e.now += 5000;
    s_tick(e.up, e.now);                   /* fails: OAP gone */
    ck_assert(!uplink_connected(e.up));
    ck_assert_uint_gt(uplink_buffer_bytes(e.up), 0);
    ck_assert_int_eq(s_publish_count(&e, "task-on", p0, 30), 0);
    for (int i = 0; i < 5; i++) {               /* retries back off */
        e.now += 1000;
        s_tick(e.up, e.now);
    }
    ck_assert(!uplink_connected(e.up));
    uint64_t failures = (uint64_t)(
        s_metric(&e, "calls", "method=\"queryTasks\",status=\"UNAVAILABLE\"") +
        s_metric(&e, "calls", "method=\"reportProcesses\",status=\"UNAVAILABLE\"") +
        s_metric(&e, "calls", "method=\"collectProfilingData\",status=\"UNAVAILABLE\""));
    ck_assert_uint_ge(failures, 2);
    ck_assert_uint_le(failures, 4);             /* 1 s, 2 s, 4 s backoff */

    ck_assert_int_eq(s_fake_start(&e.fake, NULL, 1), 0);
    e.now += 30000;                             /* past any backoff */
    s_tick(e.up, e.now);
    ck_assert(uplink_connected(e.up));
    ck_assert(s_metric(&e, "reconnects", NULL) == 1);
    ck_assert_uint_eq(uplink_buffer_bytes(e.up), 0);
    s_sum_data(&e.fake, &sum);
    ck_assert_uint_eq(sum.dump_total, 60);      /* 10 + 20 + 30 */
    ck_assert(s_metric(&e, "buffer_dropped", NULL) == 0);

    /* Every process was re-reported to the restarted OAP. */
    char **names;
    size_t n = s_requests(&e.fake, "reportProcesses", &names);
    ck_assert_uint_ge(n, 2);
    size_t len;
    uint8_t *raw = (uint8_t *)tu_read_file(names[n - 1], &len);
    Skywalking__V3__EBPFProcessReportList *rep =
        skywalking__v3__ebpfprocess_report_list__unpack(NULL, len, raw);
    ck_assert_ptr_nonnull(rep);
    ck_assert_uint_eq(rep->n_processes, NPROCS);
    skywalking__v3__ebpfprocess_report_list__free_unpacked(rep, NULL);
    free(raw);
    s_free_names(names, n);
    s_env_stop(&e);
}
END_TEST

START_TEST(test_buffer_bound_while_down)
{
    if (!s_python_grpc_ok("test_buffer_bound_while_down"))
        return;
    env_t e;
    const uint64_t cap = 32768;
    s_env_start(&e, NULL, NULL, cap);
    s_tick(e.up, e.now);
    s_fake_kill(&e.fake, SIGKILL);
    uint32_t p0 = (uint32_t)e.procs.pids[0];
    const size_t published = 600;
    for (size_t i = 0; i < published; i++) {
        ck_assert_int_eq(s_publish_count(&e, "task-on", p0, i + 1), 0);
        ck_assert_uint_le(uplink_buffer_bytes(e.up), cap);
        if (i % 50 == 0) {
            e.now += 5000;
            s_tick(e.up, e.now);
        }
    }
    double dropped = s_metric(&e, "buffer_dropped", NULL);
    ck_assert(dropped > 0);
    ck_assert(s_gauge(&e, "buffer_bytes") <= (double)cap);

    ck_assert_int_eq(s_fake_start(&e.fake, NULL, 1), 0);
    e.now += 60000;
    s_tick(e.up, e.now);
    ck_assert(uplink_connected(e.up));
    data_sum_t sum;
    s_sum_data(&e.fake, &sum);
    ck_assert_uint_eq(sum.messages + (size_t)dropped, published);
    /* The newest survived: counts kept are the last ones, 1..600 summed
     * from (dropped+1). */
    uint64_t want = 0;
    for (size_t i = (size_t)dropped + 1; i <= published; i++)
        want += i;
    ck_assert_uint_eq(sum.dump_total, want);
    ck_assert_uint_eq(sum.with_meta, 1);
    s_env_stop(&e);
}
END_TEST

START_TEST(test_malformed_replies_survived)
{
    if (!s_python_grpc_ok("test_malformed_replies_survived"))
        return;
    env_t e;
    s_env_start(&e, NULL, NULL, 4u << 20);
    static const uint8_t garbage[] = { 0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01 };
    s_write_reply(&e.fake, "queryTasks", 1, garbage, sizeof garbage);
    s_tick(e.up, e.now);
    ck_assert(uplink_connected(e.up));
    ck_assert(s_metric(&e, "replies_invalid", NULL) == 1);

    char id0[32];
    snprintf(id0, sizeof id0, "proc-%d", e.procs.pids[0]);
    cmd_spec_t specs[] = {
        { "EBPFProfilingTaskQuery", { "ProcessId", id0, NULL } },
        { "EBPFProfilingTaskQuery",
          { "TaskId", "bad-target", "ProcessId", id0, "TaskUpdateTime", "5",
            "TriggerType", "FIXED_TIME", "TargetType", "CPU",
            "TaskStartTime", "1", "FixedTriggerDuration", "10", NULL } },
        { "EBPFProfilingTaskQuery",
          { "TaskId", "bad-json", "ProcessId", id0, "TaskUpdateTime", "5",
            "TriggerType", "FIXED_TIME", "TargetType", "ON_CPU",
            "TaskStartTime", "1", "FixedTriggerDuration", "10",
            "ExtensionConfigJSON", "[1,2", NULL } },
        { "EBPFProfilingTaskQuery",
          { "TaskId", "bad-duration", "ProcessId", id0, "TaskUpdateTime", "5",
            "TriggerType", "FIXED_TIME", "TargetType", "ON_CPU",
            "TaskStartTime", "1", "FixedTriggerDuration", "-3", NULL } },
        { "EBPFProfilingTaskQuery",
          { "TaskId", "good", "ProcessId", id0, "TaskUpdateTime", "7",
            "TriggerType", "FIXED_TIME", "TargetType", "ON_CPU",
            "TaskStartTime", "1", "FixedTriggerDuration", "10",
            "ExtensionConfigJSON", "null", NULL } },
    };
    size_t len;
    uint8_t *cmds = s_commands(specs, 5, &len);
    s_write_reply(&e.fake, "queryTasks", 1, cmds, len);
    free(cmds);
    e.now += 10000;
    s_tick(e.up, e.now);
    ck_assert(s_metric(&e, "commands_invalid", NULL) == 4);
    ck_assert_uint_eq(s_captured.n, 1);
    arena_t *arena = arena_new(0);
    wire_task_set_t set;
    char err[256];
    ck_assert_int_eq(wire_decode_task_set(s_captured.data[0],
                                          s_captured.len[0], arena, &set,
                                          err, sizeof err), 0);
    ck_assert_uint_eq(set.ntasks, 1);
    ck_assert_str_eq(set.tasks[0].task_id, "good");
    arena_destroy(&arena);

    /* A garbage process report reply and a failing status are survived. */
    s_write_reply(&e.fake, "reportProcesses", 1, garbage, sizeof garbage);
    e.now += 10000;                             /* heartbeat round 2 */
    s_tick(e.up, e.now);
    ck_assert(s_metric(&e, "replies_invalid", NULL) >= 1);
    ck_assert(uplink_connected(e.up));

    /* Malformed bus input is refused, not fatal. */
    ck_assert_int_eq(uplink_handle(e.up, TOPIC_AGG_PROFILE, garbage,
                                   sizeof garbage, e.now), -1);
    ck_assert_int_eq(uplink_handle(e.up, TOPIC_PROC_EVENTS, garbage,
                                   sizeof garbage, e.now), -1);
    ck_assert_int_eq(uplink_handle(e.up, TOPIC_PROC_EVENTS, NULL, 0, e.now),
                     -1);
    ck_assert_int_eq(s_publish_count(&e, "good", (uint32_t)e.procs.pids[0],
                                     4), 0);
    e.now += 5000;
    s_tick(e.up, e.now);
    data_sum_t sum;
    s_sum_data(&e.fake, &sum);
    ck_assert_uint_eq(sum.dump_total, 4);
    s_env_stop(&e);
}
END_TEST

START_TEST(test_process_events)
{
    if (!s_python_grpc_ok("test_process_events"))
        return;
    env_t e;
    s_env_start(&e, NULL, NULL, 4u << 20);
    /* Events only: no /proc scan. */
    uplink_destroy(&e.up);
    e.up = s_uplink(&e, NULL, 4u << 20, false, e.procs.regex);
    ck_assert_ptr_nonnull(e.up);
    char cmdline[128], exe[4096];
    snprintf(cmdline, sizeof cmdline, "test_uplink --idle %s", e.procs.marker);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    wire_proc_event_t evs[] = {
        { WIRE_PROC_START, (uint32_t)e.procs.pids[0], 1, 0, 1, "test_uplink",
          exe, cmdline, "", 1 },
        { WIRE_PROC_EXEC, (uint32_t)e.procs.pids[1], 1, 0, 1, "test_uplink",
          exe, cmdline, "", 1 },
        { WIRE_PROC_START, 999999, 1, 0, 1, "cat", "/bin/cat", "cat x", "", 0 },
    };
    wire_proc_events_t m;
    memset(&m, 0, sizeof m);
    wire_header_set(&m.hdr, "collector/test", 1);
    m.nevents = 3;
    m.events = evs;
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_proc_events(&m, &buf), 0);
    ck_assert_int_eq(uplink_handle(e.up, TOPIC_PROC_EVENTS, buf.data, buf.len,
                                   e.now), 0);
    ck_assert_uint_eq(uplink_process_count(e.up), 2);
    s_tick(e.up, e.now);
    size_t len;
    uint8_t *raw = s_last_request(&e.fake, "reportProcesses", &len);
    Skywalking__V3__EBPFProcessReportList *rep =
        skywalking__v3__ebpfprocess_report_list__unpack(NULL, len, raw);
    ck_assert_ptr_nonnull(rep);
    ck_assert_uint_eq(rep->n_processes, 2);
    skywalking__v3__ebpfprocess_report_list__free_unpacked(rep, NULL);
    free(raw);

    /* Exit of one: not kept alive on the next heartbeat. */
    wire_proc_event_t ex = { WIRE_PROC_EXIT, (uint32_t)e.procs.pids[0], 1, 0,
                             2, "sleep", "", "", "", 0 };
    m.nevents = 1;
    m.events = &ex;
    wire_buf_reset(&buf);
    ck_assert_int_eq(wire_encode_proc_events(&m, &buf), 0);
    ck_assert_int_eq(uplink_handle(e.up, TOPIC_PROC_EVENTS, buf.data, buf.len,
                                   e.now), 0);
    wire_buf_release(&buf);
    e.now += 20000;
    s_tick(e.up, e.now);
    raw = s_last_request(&e.fake, "keepAlive", &len);
    Skywalking__V3__EBPFProcessPingPkgList *ka =
        skywalking__v3__ebpfprocess_ping_pkg_list__unpack(NULL, len, raw);
    ck_assert_ptr_nonnull(ka);
    ck_assert_uint_eq(ka->n_processes, 1);
    char want[64];
    snprintf(want, sizeof want, "test_uplink-%d", e.procs.pids[1]);
    ck_assert_str_eq(ka->processes[0]->entitymetadata->processname, want);
    skywalking__v3__ebpfprocess_ping_pkg_list__free_unpacked(ka, NULL);
    free(raw);
    s_env_stop(&e);
}
END_TEST

/* One report round over TLS; returns whether it reached the OAP. */
static bool
s_tls_round(env_t *e, const char *ca, bool skip_verify)
{
    uplink_options_t o;
    uplink_options_defaults(&o);
    o.addr = e->fake.addr;
    o.tls = true;
    o.ca_path = ca;
    o.skip_verify = skip_verify;
    o.timeout_ms = 3000;
    o.agent_id = "agent-tls";
    o.publish = s_capture;
    finder_set_t *finders = finder_set_new();
    finder_spec_t spec = { .match_cmd_regex = e->procs.regex };
    char err[256];
    ck_assert_int_eq(finder_set_add(finders, &spec, err, sizeof err), 0);
    uplink_t *up = uplink_new(&o, finders, e->stats);
    ck_assert_ptr_nonnull(up);
    s_tick(up, T0);
    bool ok = uplink_connected(up) &&
              uplink_process_id(up, (uint32_t)e->procs.pids[0]) != NULL;
    uplink_destroy(&up);
    return ok;
}

START_TEST(test_tls)
{
    if (!s_python_grpc_ok("test_tls") || !tu_require_tool("test_tls",
                                                          "openssl"))
        return;
    env_t e;
    memset(&e, 0, sizeof e);
    memset(&s_captured, 0, sizeof s_captured);
    e.fake.dir = tu_mkdtemp();
    char cert[600], key[600], cmd[2048];
    snprintf(cert, sizeof cert, "%s/cert.pem", e.fake.dir);
    snprintf(key, sizeof key, "%s/key.pem", e.fake.dir);
    snprintf(cmd, sizeof cmd, "openssl req -x509 -newkey rsa:2048 -nodes "
             "-days 2 -subj /CN=localhost -addext "
             "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout %s -out %s "
             ">/dev/null 2>&1", key, cert);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(s_fake_start_tls(&e.fake, NULL, 1, cert, key), 0);
    s_procs_start(&e.procs);
    e.stats = stats_new("uplink", "test");

    ck_assert(s_tls_round(&e, cert, false));       /* our CA: verified */
    ck_assert(!s_tls_round(&e, "", false));        /* system roots: refused */
    ck_assert(s_tls_round(&e, "", true));          /* skip-verify */
    char bogus[600];
    snprintf(bogus, sizeof bogus, "%s/missing.pem", e.fake.dir);
    uplink_options_t o;
    uplink_options_defaults(&o);
    o.addr = e.fake.addr;
    o.tls = true;
    o.ca_path = bogus;
    ck_assert_ptr_null(uplink_new(&o, finder_set_new(), e.stats));
    s_env_stop(&e);
}
END_TEST

/* The real skyprof-broker and skyprof-uplink as processes, the uplink
 * talking to the fake OAP of an env_t, and a bus for the test to publish
 * and listen on. */
typedef struct {
    char broker_bin[600], uplink_bin[600];
    char cfg[600], log[600];
    pid_t broker, uplink;
    void *ctx;
    stats_t *stats;
    bus_t *bus;
    tu_procfeed_thread_t *feed;    /* the collector's proc.events */
} stage_rig_t;

/* 1 when the fake OAP and both binaries are there; else prints a SKIP. */
static int
s_rig_can_run(stage_rig_t *r, const char *test)
{
    struct stat st;
    memset(r, 0, sizeof *r);
    if (!s_python_grpc_ok(test))
        return 0;
    snprintf(r->broker_bin, sizeof r->broker_bin, "%s",
             tu_build_path("bin/skyprof-broker"));
    snprintf(r->uplink_bin, sizeof r->uplink_bin, "%s",
             tu_build_path("bin/skyprof-uplink"));
    if (stat(r->broker_bin, &st) != 0 || stat(r->uplink_bin, &st) != 0) {
        tu_skip(test, "broker or uplink not built");
        return 0;
    }
    return 1;
}

/* Writes the stages' configuration (bus_yaml: an optional "bus:" section;
 * heartbeat: process_discovery.heartbeat_period), starts both stages and
 * connects the test's bus as `sender`. */
static void
s_rig_start(stage_rig_t *r, const env_t *e, const char *bus_yaml,
            const char *heartbeat, const char *sender)
{
    char in[700], out[700];
    snprintf(r->cfg, sizeof r->cfg, "%s/skyprof.yaml", e->fake.dir);
    snprintf(r->log, sizeof r->log, "%s/stages.log", e->fake.dir);
    snprintf(in, sizeof in, "ipc://%s/bus-in", e->fake.dir);
    snprintf(out, sizeof out, "ipc://%s/bus-out", e->fake.dir);
    FILE *f = fopen(r->cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "runtime_dir: %s\n"
            "%s"
            "core:\n  backend:\n    addr: %s\n    upstream_timeout: 3s\n"
            "profiling:\n  check_interval: 1s\n  flush_interval: 1s\n"
            "process_discovery:\n  heartbeat_period: %s\n  scanner:\n"
            "    regex:\n      - match_cmd_regex: '%s'\n"
            "        service_name: stage-svc\n"
            "        process_name: \"p-{{.Process.Pid}}\"\n"
            "uplink:\n  agent_id: stage-agent\n",
            e->fake.dir, bus_yaml, e->fake.addr, heartbeat, e->procs.regex);
    fclose(f);
    char *bargv[] = { r->broker_bin, "--config", r->cfg, NULL };
    char *uargv[] = { r->uplink_bin, "--config", r->cfg, NULL };
    r->broker = s_spawn_log(bargv, r->log);
    r->uplink = s_spawn_log(uargv, r->log);
    ck_assert_int_gt(r->broker, 0);
    ck_assert_int_gt(r->uplink, 0);

    r->ctx = zmq_ctx_new();
    r->stats = stats_new("test", "t");
    bus_options_t bo = { in, out, 1000, 1000, sender, NULL };
    r->bus = bus_new(r->ctx, &bo, r->stats);
    ck_assert_ptr_nonnull(r->bus);
    r->feed = tu_procfeed_start(in, out, 300);
    ck_assert_ptr_nonnull(r->feed);
}

/* Fails the test with the stages' logs. */
static void
s_rig_fail(const stage_rig_t *r, const char *why)
{
    char *text = tu_read_file(r->log, NULL);
    fprintf(stderr, "--- stage logs ---\n%s\n", text ? text : "");
    free(text);
    ck_abort_msg("%s", why);
}

/* Stops both stages (the uplink must exit 0 on SIGTERM) and the bus. */
static void
s_rig_stop(stage_rig_t *r)
{
    tu_procfeed_stop(&r->feed);
    ck_assert_int_eq(tu_stop(r->uplink, 10000), 0);
    tu_stop(r->broker, 5000);
    bus_destroy(&r->bus);
    stats_destroy(&r->stats);
    zmq_ctx_term(r->ctx);
}

/* The real skyprof-uplink with the broker: a task scheduled on the fake
 * OAP arrives on the bus as task.request, and agg.profile published on the
 * bus reaches the OAP. */
typedef struct {
    bus_t *bus;
    arena_t *arena;
    int got_task;
    char task_id[64];
    uint32_t npids;
    uint32_t pid0;
} stage_rx_t;

static int
s_poll_task(void *arg)
{
    stage_rx_t *rx = arg;
    const char *topic;
    const void *data;
    size_t len;
    while (bus_recv(rx->bus, &topic, &data, &len) == 1) {
        wire_task_set_t set;
        char err[128];
        arena_reset(rx->arena);
        if (strcmp(topic, TOPIC_TASK_REQUEST) ||
            wire_decode_task_set(data, len, rx->arena, &set, err, sizeof err))
            continue;
        if (set.ntasks == 1) {
            snprintf(rx->task_id, sizeof rx->task_id, "%s",
                     set.tasks[0].task_id);
            rx->npids = set.tasks[0].npids;
            rx->pid0 = set.tasks[0].npids ? set.tasks[0].pids[0] : 0;
            rx->got_task = 1;
        }
    }
    return rx->got_task;
}

static int
s_has_data(void *arg)
{
    char **names;
    size_t n = s_requests(arg, "collectProfilingData", &names);
    s_free_names(names, n);
    return n > 0;
}

START_TEST(test_stage_with_broker)
{
    stage_rig_t rig;
    if (!s_rig_can_run(&rig, "test_stage_with_broker"))
        return;
    env_t e;
    memset(&e, 0, sizeof e);
    memset(&s_captured, 0, sizeof s_captured);
    e.fake.dir = tu_mkdtemp();
    ck_assert_int_eq(s_fake_start(&e.fake, NULL, 1), 0);
    s_procs_start(&e.procs);

    char ids[32];
    snprintf(ids, sizeof ids, "proc-%d", e.procs.pids[0]);
    cmd_spec_t specs[] = {
        { "EBPFProfilingTaskQuery",
          { "TaskId", "stage-task", "ProcessId", ids, "TaskUpdateTime", "9",
            "TriggerType", "FIXED_TIME", "TargetType", "ON_CPU",
            "TaskStartTime", "1", "FixedTriggerDuration", "30",
            "ExtensionConfigJSON", "null", NULL } },
    };
    size_t len;
    uint8_t *cmds = s_commands(specs, 1, &len);
    /* Every query answers with the task, so whichever comes after our
     * subscription reached the broker is seen. */
    s_write_reply(&e.fake, "queryTasks", 0, cmds, len);
    free(cmds);

    s_rig_start(&rig, &e, "", "2s", "aggregator/test");
    stage_rx_t rx = { 0 };
    rx.bus = rig.bus;
    rx.arena = arena_new(0);
    ck_assert_int_eq(bus_subscribe(rx.bus, TOPIC_TASK_REQUEST), 0);
    if (!tu_wait_until(s_poll_task, &rx, 20000))
        s_rig_fail(&rig, "no task.request from the uplink");
    ck_assert_str_eq(rx.task_id, "stage-task");
    ck_assert_uint_eq(rx.npids, 1);
    ck_assert_uint_eq(rx.pid0, (uint32_t)e.procs.pids[0]);

    /* agg.profile on the bus -> collectProfilingData at the OAP. */
    wire_prof_stack_t stk = { 2, s_k1, 2, s_u1, 42, 0 };
    wire_task_profile_t p = { "stage-task", (uint32_t)e.procs.pids[0], "",
                              WIRE_TARGET_ON_CPU, 1700000000000u, 0, 0, 1,
                              &stk };
    wire_profile_batch_t b;
    memset(&b, 0, sizeof b);
    b.nprofiles = 1;
    b.profiles = &p;
    wire_buf_t buf;
    wire_buf_init(&buf);
    for (int i = 0; i < 40 && !s_has_data(&e.fake); i++) {
        wire_header_set(&b.hdr, "aggregator/test",
                        bus_next_seq(rx.bus, TOPIC_AGG_PROFILE));
        wire_buf_reset(&buf);
        ck_assert_int_eq(wire_encode_profile_batch(&b, &buf), 0);
        bus_publish(rx.bus, TOPIC_AGG_PROFILE, buf.data, buf.len);
        tu_wait_until(s_has_data, &e.fake, 500);
    }
    wire_buf_release(&buf);
    ck_assert(s_has_data(&e.fake));
    size_t dlen;
    uint8_t *raw = s_last_request(&e.fake, "collectProfilingData", &dlen);
    Skywalking__V3__EBPFProfilingData *d =
        skywalking__v3__ebpfprofiling_data__unpack(NULL, dlen, raw);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(d->oncpu->dumpcount, 42);
    ck_assert_str_eq(d->oncpu->stacks[1]->stacksymbols[0], "u_leaf");
    skywalking__v3__ebpfprofiling_data__free_unpacked(d, NULL);
    free(raw);

    s_rig_stop(&rig);
    arena_destroy(&rx.arena);
    s_env_stop(&e);
}
END_TEST

static long
s_rss_kb(void)
{
    char *text = tu_read_file("/proc/self/status", NULL);
    char *line = text ? strstr(text, "VmRSS:") : NULL;
    long kb = line ? strtol(line + 6, NULL, 10) : -1;
    free(text);
    return kb;
}

/* 100 processes, an hour of 5 s flushes (simulated clock): prints the
 * per-flush traffic and the RSS, and checks memory stays flat. The hour is
 * for the memory check, which only a build without ASan makes (its
 * quarantine grows RSS by design): under ASan (make test) ten minutes of
 * flushes check the calls and the traffic, as exactly, in a sixth of the
 * time (the hour took 30 s of make test). */
#ifdef __SANITIZE_ADDRESS__
#define S_HOUR_FLUSHES 120
#else
#define S_HOUR_FLUSHES 720
#endif
START_TEST(test_hour_of_flushes_100_processes)
{
    if (!s_python_grpc_ok("test_hour_of_flushes_100_processes"))
        return;
    enum { NP = 100, NSTACKS = 5, FLUSHES = S_HOUR_FLUSHES };
    env_t e;
    memset(&e, 0, sizeof e);
    memset(&s_captured, 0, sizeof s_captured);
    e.fake.dir = tu_mkdtemp();
    ck_assert_int_eq(s_fake_start(&e.fake, NULL, 0), 0);
    e.stats = stats_new("uplink", "test");
    e.up = s_uplink(&e, NULL, 4u << 20, false, "^/usr/bin/fakeproc ");
    ck_assert_ptr_nonnull(e.up);
    e.now = T0;

    wire_proc_event_t evs[NP];
    char cmd[NP][64];
    for (int i = 0; i < NP; i++) {
        snprintf(cmd[i], sizeof cmd[i], "/usr/bin/fakeproc --id %d", i);
        evs[i] = (wire_proc_event_t){ WIRE_PROC_START, 3000000u + (uint32_t)i,
                                      1, 0, 1, "fakeproc", "/bin/sleep",
                                      cmd[i], "", 1 };
    }
    wire_proc_events_t m;
    memset(&m, 0, sizeof m);
    wire_header_set(&m.hdr, "collector/test", 1);
    m.nevents = NP;
    m.events = evs;
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_proc_events(&m, &buf), 0);
    ck_assert_int_eq(uplink_handle(e.up, TOPIC_PROC_EVENTS, buf.data, buf.len,
                                   e.now), 0);
    wire_buf_release(&buf);

    /* Distinct stacks per process: 5 stacks of 12 user frames, 4 kernel. */
    static const char *kf[] = { "finish_task_switch", "schedule",
                                "do_nanosleep", "entry_SYSCALL_64" };
    static char uname[NSTACKS][12][80];
    static const char *uf[NSTACKS][12];
    for (int s = 0; s < NSTACKS; s++)
        for (int f = 0; f < 12; f++) {
            snprintf(uname[s][f], sizeof uname[s][f],
                     "app::module%d::function_%d_%d(int)", f, s, f);
            uf[s][f] = uname[s][f];
        }
    wire_prof_stack_t stacks[NSTACKS];
    for (int s = 0; s < NSTACKS; s++)
        stacks[s] = (wire_prof_stack_t){ 4, kf, 12, uf[s], 10 + s, 0 };
    wire_task_profile_t profiles[NP];
    for (int i = 0; i < NP; i++)
        profiles[i] = (wire_task_profile_t){ "task-host", 3000000u + (uint32_t)i,
                                             "", WIRE_TARGET_ON_CPU,
                                             1700000000000u, 0, 0, NSTACKS,
                                             stacks };
    s_tick(e.up, e.now);
    ck_assert_uint_eq(uplink_process_count(e.up), NP);
    ck_assert_ptr_nonnull(uplink_process_id(e.up, 3000000u));

    long rss_early = 0;
    double msgs0 = 0, bytes0 = 0;
    for (int f = 1; f <= FLUSHES; f++) {
        ck_assert_int_eq(s_handle_profiles(&e, profiles, NP), 0);
        if (f == 61) {
            rss_early = s_rss_kb();
            msgs0 = s_metric(&e, "messages_sent", NULL);
            bytes0 = s_metric(&e, "bytes_sent", NULL);
        }
        e.now += 5000;
        s_tick(e.up, e.now);
        ck_assert_uint_eq(uplink_buffer_bytes(e.up), 0);
    }
    long rss_late = s_rss_kb();
    double flushes = FLUSHES - 60;
    double msgs = (s_metric(&e, "messages_sent", NULL) - msgs0) / flushes;
    double bytes = (s_metric(&e, "bytes_sent", NULL) - bytes0) / flushes;
    printf("uplink: %d processes x %d stacks: %.1f messages and %.0f bytes "
           "sent per 5 s flush (all calls); RSS %ld kB after 60 flushes, "
           "%ld kB after %d\n", NP, NSTACKS, msgs, bytes, rss_early,
           rss_late, FLUSHES);
    ck_assert(s_metric(&e, "calls",
              "method=\"collectProfilingData\",status=\"OK\"") == FLUSHES);
    ck_assert(msgs >= NP * NSTACKS);
    ck_assert_uint_eq(uplink_process_count(e.up), NP);
#ifndef __SANITIZE_ADDRESS__
    /* ASan's quarantine grows RSS by design; judge only normal builds. */
    ck_assert_int_lt(rss_late - rss_early, 8 * 1024);
#endif
    s_env_stop(&e);
}
END_TEST

/* ============================================== continuous profiling */
static void
s_set_status(const fake_t *f, const char *method, const char *code)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/status", f->dir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/%s", dir, method);
    if (!code) {
        unlink(path);
        return;
    }
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs(code, fp);
    fclose(fp);
}

static size_t
s_request_count(const fake_t *f, const char *method)
{
    char **names;
    size_t n = s_requests(f, method, &names);
    s_free_names(names, n);
    return n;
}

START_TEST(test_policy_book)
{
    policy_book_t *book = policy_book_new(3);
    ck_assert_ptr_nonnull(book);
    ck_assert_int_eq(policy_book_want(book, "a", 1), 0);
    ck_assert_int_eq(policy_book_want(book, "b", 1), 0);
    ck_assert_int_eq(policy_book_want(book, "a", 1), 0);
    ck_assert_uint_eq(policy_book_count(book), 2);
    ck_assert_str_eq(policy_book_uuid(book, "a"), "");
    ck_assert_ptr_null(policy_book_uuid(book, "zz"));

    char err[256];
    const char *doc = "[{\"ServiceName\":\"a\",\"UUID\":\"u-a\",\"Profiling\":"
                      "{\"ON_CPU\":{\"PROCESS_CPU\":{\"Threshold\":\"10\","
                      "\"Period\":10,\"Count\":3}}}},"
                      "{\"ServiceName\":\"not-asked\",\"UUID\":\"u-x\"}]";
    /* A check changes nothing; applying records only services asked. */
    ck_assert_int_eq(policy_book_learn(book, doc, strlen(doc), false, err,
                                       sizeof err), 2);
    ck_assert_str_eq(policy_book_uuid(book, "a"), "");
    ck_assert_int_eq(policy_book_learn(book, doc, strlen(doc), true, err,
                                       sizeof err), 2);
    ck_assert_str_eq(policy_book_uuid(book, "a"), "u-a");
    ck_assert_str_eq(policy_book_uuid(book, "b"), "");
    ck_assert_ptr_null(policy_book_uuid(book, "not-asked"));

    /* A deleted policy comes back with no UUID. */
    const char *del = "[{\"ServiceName\":\"a\",\"UUID\":\"\"}]";
    ck_assert_int_eq(policy_book_learn(book, del, strlen(del), true, err,
                                       sizeof err), 1);
    ck_assert_str_eq(policy_book_uuid(book, "a"), "");

    /* Malformed documents fail whole, with a reason, recording nothing. */
    const char *bad[] = {
        "{\"ServiceName\":\"a\"}", "[{\"ServiceName\":\"b\",\"UUID\":\"u\"}",
        "[{\"ServiceName\":\"b\",\"UUID\":\"u\"},{\"UUID\":\"v\"}]",
        "[{\"ServiceName\":\"b\",\"UUID\":7}]", "[1]", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_int_eq(policy_book_learn(book, bad[i], strlen(bad[i]), true,
                                           err, sizeof err), -1);
        ck_assert_msg(err[0] != '\0', "no reason for %s", bad[i]);
        ck_assert_str_eq(policy_book_uuid(book, "b"), "");
    }

    /* Bounded, and pruned to the services of the current round. */
    ck_assert_int_eq(policy_book_want(book, "c", 1), 0);
    ck_assert_int_eq(policy_book_want(book, "d", 1), -1);
    ck_assert_int_eq(policy_book_want(book, "b", 2), 0);
    policy_book_prune(book, 2);
    ck_assert_uint_eq(policy_book_count(book), 1);
    ck_assert_ptr_null(policy_book_uuid(book, "a"));
    size_t cursor = 0;
    const char *svc, *uuid;
    ck_assert(policy_book_next(book, &cursor, &svc, &uuid));
    ck_assert_str_eq(svc, "b");
    ck_assert(!policy_book_next(book, &cursor, &svc, &uuid));

    /* Many services: the index grows and prunes stay consistent. */
    char name[32];
    policy_book_destroy(&book);
    book = policy_book_new(5000);
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "svc-%d", i);
        ck_assert_int_eq(policy_book_want(book, name, (uint64_t)(i % 2) + 1),
                         0);
    }
    policy_book_prune(book, 2);
    ck_assert_uint_eq(policy_book_count(book), 1500);
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "svc-%d", i);
        if (i % 2)
            ck_assert_str_eq(policy_book_uuid(book, name), "");
        else
            ck_assert_ptr_null(policy_book_uuid(book, name));
    }
    policy_book_destroy(&book);
    policy_book_destroy(&book);
}
END_TEST

static Skywalking__V3__ContinuousProfilingReport *
s_unpack_report(const uint8_t *buf, size_t len)
{
    Skywalking__V3__ContinuousProfilingReport *r =
        skywalking__v3__continuous_profiling_report__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(r);
    return r;
}

START_TEST(test_contproto_shapes)
{
    char *labels[] = { "l" };
    proc_entity_t en = { "OS_LINUX", "svc", "inst", "proc-a", labels, 1 };
    wire_cause_t causes[] = {
        { 0, 10.0, 55.5, "", "" },
        { 3, 15.0, 40.0, "/api.*", "" },
        { 4, 100.0, 250.0, "", "/x" },
        { 3, 15.0, 30.0, "/api.*", "" },
        { 1, 50.0, 80.0, "", "" },
    };
    wire_trigger_t t;
    memset(&t, 0, sizeof t);
    t.pid = 42;
    t.target = WIRE_TARGET_NETWORK;
    t.duration_ms = 60500;
    t.service = "svc";
    t.ncauses = 5;
    t.causes = causes;
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    ck_assert_int_eq(contproto_encode_report(&t, &en, &buf, &cap, &len), 0);
    Skywalking__V3__ContinuousProfilingReport *r = s_unpack_report(buf, len);
    ck_assert_str_eq(r->layer, "OS_LINUX");
    ck_assert_str_eq(r->servicename, "svc");
    ck_assert_str_eq(r->instancename, "inst");
    ck_assert_str_eq(r->processname, "proc-a");
    ck_assert_int_eq(r->duration, 61);           /* rounded up */
    ck_assert_uint_eq(r->n_causes, 5);
    ck_assert_int_eq(r->causes[0]->type, 0);
    ck_assert_int_eq(r->causes[0]->cause_case,
        SKYWALKING__V3__CONTINUOUS_PROFILING_CAUSE__CAUSE_SINGLE_VALUE);
    ck_assert(r->causes[0]->singlevalue->threshold == 10.0);
    ck_assert(r->causes[0]->singlevalue->current == 55.5);
    ck_assert_int_eq(r->causes[1]->type, 3);
    ck_assert_int_eq(r->causes[1]->cause_case,
                     SKYWALKING__V3__CONTINUOUS_PROFILING_CAUSE__CAUSE_URI);
    ck_assert_int_eq(r->causes[1]->uri->uri_case,
                     SKYWALKING__V3__CONTINUOUS_PROFILING_URICAUSE__URI_REGEX);
    ck_assert_str_eq(r->causes[1]->uri->regex, "/api.*");
    ck_assert(r->causes[1]->uri->current == 40.0);
    ck_assert_int_eq(r->causes[2]->uri->uri_case,
                     SKYWALKING__V3__CONTINUOUS_PROFILING_URICAUSE__URI_PATH);
    ck_assert_str_eq(r->causes[2]->uri->path, "/x");
    ck_assert(r->causes[2]->uri->threshold == 100.0);
    ck_assert_int_eq(r->causes[4]->type, 1);
    ck_assert(r->causes[4]->singlevalue->current == 80.0);
    ck_assert_int_eq(r->target_task_case,
        SKYWALKING__V3__CONTINUOUS_PROFILING_REPORT__TARGET_TASK_NETWORK);
    /* The distinct regexes the HTTP causes watched. */
    ck_assert_uint_eq(r->network->n_samplinguriregexes, 1);
    ck_assert_str_eq(r->network->samplinguriregexes[0], "/api.*");
    skywalking__v3__continuous_profiling_report__free_unpacked(r, NULL);

    t.target = WIRE_TARGET_OFF_CPU;
    t.duration_ms = 30000;
    t.ncauses = 1;
    ck_assert_int_eq(contproto_encode_report(&t, &en, &buf, &cap, &len), 0);
    r = s_unpack_report(buf, len);
    ck_assert_int_eq(r->duration, 30);
    ck_assert_int_eq(r->target_task_case,
        SKYWALKING__V3__CONTINUOUS_PROFILING_REPORT__TARGET_TASK_OFF_CPU);
    skywalking__v3__continuous_profiling_report__free_unpacked(r, NULL);
    t.target = WIRE_TARGET_ON_CPU;
    ck_assert_int_eq(contproto_encode_report(&t, &en, &buf, &cap, &len), 0);
    r = s_unpack_report(buf, len);
    ck_assert_int_eq(r->target_task_case,
        SKYWALKING__V3__CONTINUOUS_PROFILING_REPORT__TARGET_TASK_ON_CPU);
    skywalking__v3__continuous_profiling_report__free_unpacked(r, NULL);

    /* Meters: labels, and the entity on the first MeterData only. */
    contproto_meter_t ms[] = {
        { "rover_con_p_process_cpu", 12.5, "proc-a", "OS_LINUX", "" },
        { "rover_con_p_http_error_rate", 3.0, "proc-a", "OS_LINUX", "/api" },
    };
    ck_assert_int_eq(contproto_encode_meters(ms, 2, "svc", "inst",
                                             1700000000123, &buf, &cap, &len),
                     0);
    Skywalking__V3__MeterDataCollection *col =
        skywalking__v3__meter_data_collection__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(col);
    ck_assert_uint_eq(col->n_meterdata, 2);
    ck_assert_str_eq(col->meterdata[0]->service, "svc");
    ck_assert_str_eq(col->meterdata[0]->serviceinstance, "inst");
    ck_assert_int_eq(col->meterdata[0]->timestamp, 1700000000123);
    ck_assert_str_eq(col->meterdata[1]->service, "");
    ck_assert_int_eq(col->meterdata[1]->timestamp, 0);
    const Skywalking__V3__MeterSingleValue *v = col->meterdata[0]->singlevalue;
    ck_assert_str_eq(v->name, "rover_con_p_process_cpu");
    ck_assert(v->value == 12.5);
    ck_assert_uint_eq(v->n_labels, 2);
    ck_assert_str_eq(v->labels[0]->name, "process_name");
    ck_assert_str_eq(v->labels[0]->value, "proc-a");
    ck_assert_str_eq(v->labels[1]->name, "layer");
    v = col->meterdata[1]->singlevalue;
    ck_assert_uint_eq(v->n_labels, 3);
    ck_assert_str_eq(v->labels[2]->name, "uri");
    ck_assert_str_eq(v->labels[2]->value, "/api");
    skywalking__v3__meter_data_collection__free_unpacked(col, NULL);

    /* Replies: the TaskId, or why not. */
    char id[64];
    cmd_spec_t ok[] = {
        { "SomethingElse", { "TaskId", "nope", NULL } },
        { "ContinuousProfilingReportTask",
          { "SerialNumber", "s", "TaskId", "t-1", NULL } },
    };
    size_t rlen;
    uint8_t *reply = s_commands(ok, 2, &rlen);
    ck_assert_int_eq(contproto_report_task_id(reply, rlen, id, sizeof id), 0);
    ck_assert_str_eq(id, "t-1");
    free(reply);
    cmd_spec_t no_id[] = {
        { "ContinuousProfilingReportTask", { "SerialNumber", "s", NULL } },
        { "ContinuousProfilingReportTask", { "TaskId", "", NULL } },
    };
    reply = s_commands(no_id, 2, &rlen);
    ck_assert_int_eq(contproto_report_task_id(reply, rlen, id, sizeof id), 1);
    free(reply);
    ck_assert_int_eq(contproto_report_task_id(NULL, 0, id, sizeof id), 1);
    static const uint8_t garbage[] = { 0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01 };
    ck_assert_int_eq(contproto_report_task_id(garbage, sizeof garbage, id,
                                              sizeof id), -1);
    free(buf);
}
END_TEST

static int
s_decode_proc_ids(arena_t *arena, wire_proc_ids_t *m)
{
    char err[256];
    ck_assert_uint_gt(s_proc_ids.count, 0);
    int rc = wire_decode_proc_ids(s_proc_ids.data, s_proc_ids.len, arena, m,
                                  err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    return rc;
}

START_TEST(test_proc_ids_published)
{
    if (!s_python_grpc_ok("test_proc_ids_published"))
        return;
    env_t e;
    s_env_start(&e, NULL, NULL, 4u << 20);
    s_tick(e.up, e.now);
    ck_assert_uint_eq(s_proc_ids.count, 1);
    arena_t *arena = arena_new(0);
    wire_proc_ids_t m;
    s_decode_proc_ids(arena, &m);
    ck_assert_str_eq(m.hdr.sender, "uplink/test");
    ck_assert_uint_eq(m.hdr.seq, 1);
    ck_assert_uint_eq(m.nentities, NPROCS);
    char host[256];
    gethostname(host, sizeof host);
    for (uint32_t i = 0; i < m.nentities; i++) {
        const wire_proc_entity_t *en = &m.entities[i];
        ck_assert(s_is_our_pid(&e.procs, (int32_t)en->pid));
        char want[64];
        snprintf(want, sizeof want, "proc-%u", en->pid);
        ck_assert_str_eq(en->process_id, want);
        ck_assert_str_eq(en->layer, "OS_LINUX");
        ck_assert_str_eq(en->service, "svc-test");
        ck_assert_str_eq(en->instance, host);
        snprintf(want, sizeof want, "test_uplink-%u", en->pid);
        ck_assert_str_eq(en->process_name, want);
    }

    /* Nothing changed: nothing republished until the heartbeat. */
    e.now += 1000;
    s_tick(e.up, e.now);
    e.now += 1000;
    s_tick(e.up, e.now);
    ck_assert_uint_eq(s_proc_ids.count, 1);
    e.now += 20000;
    s_tick(e.up, e.now);
    ck_assert_uint_eq(s_proc_ids.count, 2);
    arena_reset(arena);
    s_decode_proc_ids(arena, &m);
    ck_assert_uint_eq(m.hdr.seq, 2);
    ck_assert_uint_eq(m.nentities, NPROCS);

    /* A process that exits is gone from the next state. */
    pid_t gone = e.procs.pids[1];
    kill(gone, SIGKILL);
    waitpid(gone, NULL, 0);
    e.procs.pids[1] = -1;
    wire_proc_event_t ev = { WIRE_PROC_EXIT, (uint32_t)gone, 1, 0, 1, "x",
                             "", "", "", 0 };
    wire_proc_events_t pe;
    memset(&pe, 0, sizeof pe);
    wire_header_set(&pe.hdr, "collector/test", 1);
    pe.nevents = 1;
    pe.events = &ev;
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_proc_events(&pe, &buf), 0);
    ck_assert_int_eq(uplink_handle(e.up, TOPIC_PROC_EVENTS, buf.data, buf.len,
                                   e.now), 0);
    wire_buf_release(&buf);
    e.now += 1000;
    s_tick(e.up, e.now);
    ck_assert_uint_eq(s_proc_ids.count, 3);
    arena_reset(arena);
    s_decode_proc_ids(arena, &m);
    ck_assert_uint_eq(m.nentities, NPROCS - 1);
    for (uint32_t i = 0; i < m.nentities; i++)
        ck_assert_uint_ne(m.entities[i].pid, (uint32_t)gone);

    /* The OAP away: the state is still published on the heartbeat. */
    s_fake_kill(&e.fake, SIGKILL);
    e.now += 20000;
    s_tick(e.up, e.now);
    ck_assert_uint_eq(s_proc_ids.count, 4);
    ck_assert(s_metric(&e, "proc_ids_published", NULL) == 4);
    arena_destroy(&arena);
    s_env_stop(&e);
}
END_TEST

static uint8_t *
s_policy_reply(const char *json, size_t *len)
{
    cmd_spec_t specs[] = {
        { "ContinuousProfilingPolicyQuery",
          { "SerialNumber", "s-1", "ServiceWithPolicyJSON", json, NULL } },
    };
    return s_commands(specs, 1, len);
}

/* The (service, uuid) pairs of the newest queryPolicies request. */
static Skywalking__V3__ContinuousProfilingPolicyQuery *
s_last_policy_query(env_t *e)
{
    size_t len;
    uint8_t *raw = s_last_request(&e->fake, "queryPolicies", &len);
    ck_assert_ptr_nonnull(raw);
    Skywalking__V3__ContinuousProfilingPolicyQuery *q =
        skywalking__v3__continuous_profiling_policy_query__unpack(NULL, len,
                                                                   raw);
    free(raw);
    ck_assert_ptr_nonnull(q);
    return q;
}

START_TEST(test_policies_query_and_update)
{
    if (!s_python_grpc_ok("test_policies_query_and_update"))
        return;
    env_t e;
    s_env_start(&e, NULL, NULL, 4u << 20);
    s_tick(e.up, e.now);
    Skywalking__V3__ContinuousProfilingPolicyQuery *q = s_last_policy_query(&e);
    ck_assert_uint_eq(q->n_policies, 1);        /* one service, 3 procs */
    ck_assert_str_eq(q->policies[0]->servicename, "svc-test");
    ck_assert_str_eq(q->policies[0]->uuid, "");
    skywalking__v3__continuous_profiling_policy_query__free_unpacked(q, NULL);
    ck_assert_uint_eq(s_policy.count, 0);       /* empty reply: no change */

    const char *json =
        "[{\"ServiceName\":\"svc-test\",\"UUID\":\"uuid-1\",\"Profiling\":"
        "{\"ON_CPU\":{\"PROCESS_CPU\":{\"Threshold\":\"10\",\"Period\":10,"
        "\"Count\":3}},\"NETWORK\":{\"HTTP_ERROR_RATE\":{\"Threshold\":\"15\","
        "\"Period\":10,\"Count\":3,\"URIList\":[\"/a\"],\"URIRegex\":\"\"}}}}]";
    size_t len;
    uint8_t *reply = s_policy_reply(json, &len);
    s_write_reply(&e.fake, "queryPolicies", 1, reply, len);
    free(reply);
    e.now += 10000;
    s_tick(e.up, e.now);
    ck_assert_uint_eq(s_policy.count, 1);
    arena_t *arena = arena_new(0);
    wire_policy_update_t pu;
    char err[256];
    ck_assert_int_eq(wire_decode_policy_update(s_policy.data, s_policy.len,
                                               arena, &pu, err, sizeof err),
                     0);
    ck_assert_str_eq(pu.json, json);           /* unchanged */
    ck_assert_uint_eq(pu.hdr.seq, 1);
    ck_assert(s_metric(&e, "policies_received", NULL) == 1);

    /* The next query carries the UUID received. */
    e.now += 10000;
    s_tick(e.up, e.now);
    q = s_last_policy_query(&e);
    ck_assert_uint_eq(q->n_policies, 1);
    ck_assert_str_eq(q->policies[0]->uuid, "uuid-1");
    skywalking__v3__continuous_profiling_policy_query__free_unpacked(q, NULL);
    ck_assert_uint_eq(s_policy.count, 1);

    /* A malformed document is counted and changes nothing. */
    double invalid0 = s_metric(&e, "commands_invalid", NULL);
    reply = s_policy_reply("[{\"ServiceName\":\"svc-test\",\"UUID\":", &len);
    s_write_reply(&e.fake, "queryPolicies", 1, reply, len);
    free(reply);
    e.now += 10000;
    s_tick(e.up, e.now);
    ck_assert(s_metric(&e, "commands_invalid", NULL) == invalid0 + 1);
    ck_assert_uint_eq(s_policy.count, 1);
    ck_assert(uplink_connected(e.up));

    /* A document the bus refused is not recorded: asked for again. */
    const char *json2 = "[{\"ServiceName\":\"svc-test\",\"UUID\":\"uuid-2\","
                        "\"Profiling\":{}}]";
    reply = s_policy_reply(json2, &len);
    s_write_reply(&e.fake, "queryPolicies", 1, reply, len);
    free(reply);
    s_refuse_policy = true;
    e.now += 10000;
    s_tick(e.up, e.now);
    s_refuse_policy = false;
    e.now += 10000;
    s_tick(e.up, e.now);
    q = s_last_policy_query(&e);
    ck_assert_str_eq(q->policies[0]->uuid, "uuid-1");
    skywalking__v3__continuous_profiling_policy_query__free_unpacked(q, NULL);

    /* Deleted: UUID "" comes back, is passed on, and is what we ask with. */
    const char *del = "[{\"ServiceName\":\"svc-test\",\"UUID\":\"\"}]";
    reply = s_policy_reply(del, &len);
    s_write_reply(&e.fake, "queryPolicies", 1, reply, len);
    free(reply);
    e.now += 10000;
    s_tick(e.up, e.now);
    ck_assert_uint_eq(s_policy.count, 2);
    arena_reset(arena);
    ck_assert_int_eq(wire_decode_policy_update(s_policy.data, s_policy.len,
                                               arena, &pu, err, sizeof err),
                     0);
    ck_assert_str_eq(pu.json, del);
    /* Number 2 went to the document the bus refused. */
    ck_assert_uint_eq(pu.hdr.seq, 3);
    e.now += 10000;
    s_tick(e.up, e.now);
    q = s_last_policy_query(&e);
    ck_assert_str_eq(q->policies[0]->uuid, "");
    skywalking__v3__continuous_profiling_policy_query__free_unpacked(q, NULL);
    arena_destroy(&arena);
    s_env_stop(&e);
}
END_TEST

static void
s_handle_ctl_tasks(env_t *e, const char *sender, uint64_t seq)
{
    uint32_t pid = 1;
    wire_task_t task = { "t", WIRE_TARGET_ON_CPU, WIRE_TRIGGER_FIXED_TIME,
                         WIRE_SRC_LOCAL, 0, 1000, 1, 1, &pid, NULL, "" };
    wire_task_set_t set;
    memset(&set, 0, sizeof set);
    wire_header_set(&set.hdr, sender, seq);
    set.generation = 3;
    set.ntasks = 1;
    set.tasks = &task;
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_task_set(&set, &buf), 0);
    ck_assert_int_eq(uplink_handle(e->up, TOPIC_CTL_TASKS, buf.data, buf.len,
                                   e->now), 0);
    wire_buf_release(&buf);
}

static void
s_assert_query_uuid(env_t *e, const char *uuid)
{
    Skywalking__V3__ContinuousProfilingPolicyQuery *q = s_last_policy_query(e);
    ck_assert_uint_eq(q->n_policies, 1);
    ck_assert_str_eq(q->policies[0]->uuid, uuid);
    skywalking__v3__continuous_profiling_policy_query__free_unpacked(q, NULL);
}

/* A policy engine that starts (or restarts) after the policies went out
 * gets them again: the uplink forgets the UUIDs and asks at once. */
START_TEST(test_policy_engine_restart)
{
    if (!s_python_grpc_ok("test_policy_engine_restart"))
        return;
    env_t e;
    s_env_start(&e, NULL, NULL, 4u << 20);
    const char *json = "[{\"ServiceName\":\"svc-test\",\"UUID\":\"uuid-1\","
                       "\"Profiling\":{\"ON_CPU\":{\"PROCESS_CPU\":{"
                       "\"Threshold\":\"10\",\"Period\":10,\"Count\":3}}}}]";
    size_t len;
    uint8_t *reply = s_policy_reply(json, &len);
    s_write_reply(&e.fake, "queryPolicies", 1, reply, len);
    s_tick(e.up, e.now);
    ck_assert_uint_eq(s_policy.count, 1);
    e.now += 10000;
    s_tick(e.up, e.now);
    s_assert_query_uuid(&e, "uuid-1");
    size_t queries = s_request_count(&e.fake, "queryPolicies");

    /* First sighting of the engine: asked again at the next tick, long
     * before the check interval. */
    s_handle_ctl_tasks(&e, "policy-engine/0", 3);
    s_write_reply(&e.fake, "queryPolicies", 1, reply, len);
    e.now += 1000;
    s_tick(e.up, e.now);
    ck_assert_uint_eq(s_request_count(&e.fake, "queryPolicies"), queries + 1);
    s_assert_query_uuid(&e, "");
    ck_assert_uint_eq(s_policy.count, 2);

    /* The same engine running on: nothing more. */
    s_handle_ctl_tasks(&e, "policy-engine/0", 4);
    e.now += 1000;
    s_tick(e.up, e.now);
    ck_assert_uint_eq(s_request_count(&e.fake, "queryPolicies"), queries + 1);

    /* Restarted: its sequence starts over. */
    s_handle_ctl_tasks(&e, "policy-engine/0", 1);
    e.now += 1000;
    s_tick(e.up, e.now);
    ck_assert_uint_eq(s_request_count(&e.fake, "queryPolicies"), queries + 2);
    s_assert_query_uuid(&e, "");
    free(reply);
    s_env_stop(&e);
}
END_TEST

static int
s_handle_trigger(env_t *e, uint32_t pid, uint8_t target, uint64_t duration_ms,
                 const wire_cause_t *causes, uint32_t ncauses)
{
    static uint64_t seq;
    wire_trigger_t t;
    memset(&t, 0, sizeof t);
    wire_header_set(&t.hdr, "policy/test", ++seq);
    t.pid = pid;
    t.target = target;
    t.duration_ms = duration_ms;
    t.service = "svc-test";
    t.ncauses = ncauses;
    t.causes = causes;
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_trigger(&t, &buf), 0);
    int rc = uplink_handle(e->up, TOPIC_TRIGGER, buf.data, buf.len, e->now);
    wire_buf_release(&buf);
    return rc;
}

static void
s_write_task_reply(env_t *e, const char *task_id, int once)
{
    cmd_spec_t specs[] = {
        { "ContinuousProfilingReportTask",
          { "SerialNumber", "s-9", "TaskId", task_id, NULL } },
    };
    size_t len;
    uint8_t *reply = s_commands(specs, 1, &len);
    s_write_reply(&e->fake, "reportProfilingTask", once, reply, len);
    free(reply);
}

START_TEST(test_trigger_report_to_task)
{
    if (!s_python_grpc_ok("test_trigger_report_to_task"))
        return;
    env_t e;
    s_env_start(&e, NULL, NULL, 4u << 20);
    s_tick(e.up, e.now);
    uint32_t pid = (uint32_t)e.procs.pids[1];
    s_write_task_reply(&e, "cont-task-1", 1);
    wire_cause_t causes[] = {
        { 0, 10.0, 55.5, "", "" },
        { 3, 15.0, 40.0, "/api.*", "" },
    };
    uint64_t before = now_wall_ms();
    ck_assert_int_eq(s_handle_trigger(&e, pid, WIRE_TARGET_NETWORK, 60000,
                                      causes, 2), 0);
    uint64_t after = now_wall_ms();

    size_t len;
    uint8_t *raw = s_last_request(&e.fake, "reportProfilingTask", &len);
    ck_assert_ptr_nonnull(raw);
    Skywalking__V3__ContinuousProfilingReport *r = s_unpack_report(raw, len);
    free(raw);
    char host[256], want[64];
    gethostname(host, sizeof host);
    snprintf(want, sizeof want, "test_uplink-%u", pid);
    ck_assert_str_eq(r->layer, "OS_LINUX");
    ck_assert_str_eq(r->servicename, "svc-test");
    ck_assert_str_eq(r->instancename, host);
    ck_assert_str_eq(r->processname, want);
    ck_assert_int_eq(r->duration, 60);
    ck_assert_uint_eq(r->n_causes, 2);
    ck_assert(r->causes[0]->singlevalue->threshold == 10.0);
    ck_assert(r->causes[0]->singlevalue->current == 55.5);
    ck_assert_int_eq(r->causes[1]->type, 3);
    ck_assert_str_eq(r->causes[1]->uri->regex, "/api.*");
    ck_assert(r->causes[1]->uri->current == 40.0);
    ck_assert_int_eq(r->target_task_case,
        SKYWALKING__V3__CONTINUOUS_PROFILING_REPORT__TARGET_TASK_NETWORK);
    ck_assert_uint_eq(r->network->n_samplinguriregexes, 1);
    skywalking__v3__continuous_profiling_report__free_unpacked(r, NULL);

    /* The OAP's task goes to the policy engine. */
    ck_assert_uint_eq(s_captured.n, 1);
    arena_t *arena = arena_new(0);
    wire_task_set_t set;
    char err[256];
    ck_assert_int_eq(wire_decode_task_set(s_captured.data[0],
                                          s_captured.len[0], arena, &set,
                                          err, sizeof err), 0);
    ck_assert_uint_eq(set.ntasks, 1);
    const wire_task_t *t = &set.tasks[0];
    ck_assert_str_eq(t->task_id, "cont-task-1");
    ck_assert_uint_eq(t->target, WIRE_TARGET_NETWORK);
    ck_assert_uint_eq(t->trigger, WIRE_TRIGGER_CONTINUOUS);
    ck_assert_uint_eq(t->source, WIRE_SRC_OAP);
    ck_assert_uint_eq(t->duration_ms, 60000);
    ck_assert_uint_ge(t->start_ms, before);
    ck_assert_uint_le(t->start_ms, after);
    ck_assert_uint_eq(t->npids, 1);
    ck_assert_uint_eq(t->pids[0], pid);
    ck_assert_ptr_nonnull(t->process_ids);
    snprintf(want, sizeof want, "proc-%u", pid);
    ck_assert_str_eq(t->process_ids[0], want);
    /* It samples the URI that fired, as the reference agent's task. */
    ck_assert_str_eq(t->extension_json,
                     "{\"networkSamplings\":[{\"uriRegex\":\"/api.*\","
                     "\"minDuration\":0,\"when4xx\":true,\"when5xx\":true,"
                     "\"settings\":{\"requireCompleteRequest\":true,"
                     "\"requireCompleteResponse\":true}}]}");
    ck_assert(s_metric(&e, "triggers_reported", NULL) == 1);

    /* An on-CPU trigger: its own target and duration. */
    s_write_task_reply(&e, "cont-task-2", 1);
    ck_assert_int_eq(s_handle_trigger(&e, pid, WIRE_TARGET_ON_CPU, 5000,
                                      causes, 1), 0);
    ck_assert_uint_eq(s_captured.n, 2);
    arena_reset(arena);
    ck_assert_int_eq(wire_decode_task_set(s_captured.data[1],
                                          s_captured.len[1], arena, &set,
                                          err, sizeof err), 0);
    ck_assert_str_eq(set.tasks[0].task_id, "cont-task-2");
    ck_assert_uint_eq(set.tasks[0].target, WIRE_TARGET_ON_CPU);
    ck_assert_uint_eq(set.tasks[0].duration_ms, 5000);

    /* A pid the OAP does not know: dropped without a call. */
    size_t calls = s_request_count(&e.fake, "reportProfilingTask");
    ck_assert_int_eq(s_handle_trigger(&e, 4000000u, WIRE_TARGET_ON_CPU,
                                      5000, causes, 1), 0);
    ck_assert_uint_eq(s_request_count(&e.fake, "reportProfilingTask"), calls);
    ck_assert(s_metric(&e, "triggers_dropped",
                       "reason=\"unknown_process\"") == 1);

    /* A reply without a task: counted, no task. */
    ck_assert_int_eq(s_handle_trigger(&e, pid, WIRE_TARGET_ON_CPU, 5000,
                                      causes, 1), 0);
    ck_assert(s_metric(&e, "triggers_dropped", "reason=\"no_task\"") == 1);
    ck_assert_uint_eq(s_captured.n, 2);

    /* Malformed trigger messages are refused and survived. */
    static const uint8_t garbage[] = { 0x95, 0x01, 0xa1, 0x78, 0x01, 0x02 };
    ck_assert_int_eq(uplink_handle(e.up, TOPIC_TRIGGER, garbage,
                                   sizeof garbage, e.now), -1);
    ck_assert_int_eq(uplink_handle(e.up, TOPIC_TRIGGER, NULL, 0, e.now), -1);
    wire_cause_t bad_type[] = { { 4, 1, 2, "", "" } };
    wire_trigger_t bt;
    memset(&bt, 0, sizeof bt);
    wire_header_set(&bt.hdr, "policy/test", 99);
    bt.pid = pid;
    bt.service = "svc-test";
    bt.ncauses = 1;
    bt.causes = bad_type;
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_trigger(&bt, &buf), 0);
    /* Push the cause type ([4, threshold double, ...]) past its range. */
    uint8_t *p = memmem(buf.data, buf.len, "\x95\x04\xcb", 3);
    ck_assert_ptr_nonnull(p);
    p[1] = 0x09;
    ck_assert_int_eq(uplink_handle(e.up, TOPIC_TRIGGER, buf.data, buf.len,
                                   e.now), -1);
    wire_buf_release(&buf);
    s_write_task_reply(&e, "cont-task-3", 1);
    ck_assert_int_eq(s_handle_trigger(&e, pid, WIRE_TARGET_OFF_CPU, 5000,
                                      causes, 1), 0);
    ck_assert_uint_eq(s_captured.n, 3);

    /* The OAP failing: dropped and counted, then no call at all while the
     * backoff runs (no retry storm). */
    s_set_status(&e.fake, "reportProfilingTask", "UNAVAILABLE");
    ck_assert_int_eq(s_handle_trigger(&e, pid, WIRE_TARGET_ON_CPU, 5000,
                                      causes, 1), 0);
    ck_assert(s_metric(&e, "triggers_dropped", "reason=\"oap_down\"") == 1);
    ck_assert(s_metric(&e, "calls", "method=\"reportProfilingTask\","
                       "status=\"UNAVAILABLE\"") == 1);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(s_handle_trigger(&e, pid, WIRE_TARGET_ON_CPU, 5000,
                                          causes, 1), 0);
    ck_assert(s_metric(&e, "triggers_dropped", "reason=\"oap_down\"") == 6);
    ck_assert(s_metric(&e, "calls", "method=\"reportProfilingTask\","
                       "status=\"UNAVAILABLE\"") == 1);
    ck_assert_uint_eq(s_captured.n, 3);

    /* Back after the backoff. */
    s_set_status(&e.fake, "reportProfilingTask", NULL);
    s_write_task_reply(&e, "cont-task-4", 1);
    e.now += 2000;
    ck_assert_int_eq(s_handle_trigger(&e, pid, WIRE_TARGET_ON_CPU, 5000,
                                      causes, 1), 0);
    ck_assert_uint_eq(s_captured.n, 4);
    ck_assert(s_metric(&e, "triggers_reported", NULL) == 4);
    arena_destroy(&arena);
    s_env_stop(&e);
}
END_TEST

static int
s_handle_meters(env_t *e, const wire_meter_t *meters, uint32_t n,
                uint64_t ts_ms)
{
    static uint64_t seq;
    wire_meters_t m;
    memset(&m, 0, sizeof m);
    wire_header_set(&m.hdr, "policy/test", ++seq);
    m.ts_ms = ts_ms;
    m.nmeters = n;
    m.meters = meters;
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_meters(&m, &buf), 0);
    int rc = uplink_handle(e->up, TOPIC_METERS, buf.data, buf.len, e->now);
    wire_buf_release(&buf);
    return rc;
}

static const char *
s_label(const Skywalking__V3__MeterSingleValue *v, const char *name)
{
    for (size_t i = 0; i < v->n_labels; i++)
        if (!strcmp(v->labels[i]->name, name))
            return v->labels[i]->value;
    return NULL;
}

START_TEST(test_meters_collect_batch)
{
    if (!s_python_grpc_ok("test_meters_collect_batch"))
        return;
    env_t e;
    /* One instance per process, so the meters of two processes go in two
     * collections. */
    memset(&e, 0, sizeof e);
    memset(&s_captured, 0, sizeof s_captured);
    e.fake.dir = tu_mkdtemp();
    ck_assert_int_eq(s_fake_start(&e.fake, NULL, 1), 0);
    s_procs_start(&e.procs);
    e.stats = stats_new("uplink", "test");
    e.up = s_uplink_instance(&e, NULL, 4u << 20, true, e.procs.regex,
                             "inst-{{.Process.Pid}}");
    ck_assert_ptr_nonnull(e.up);
    e.now = T0;
    s_tick(e.up, e.now);

    uint32_t p0 = (uint32_t)e.procs.pids[0], p1 = (uint32_t)e.procs.pids[1];
    wire_meter_t ms[] = {
        { "rover_con_p_process_cpu", 12.5, p0, "comm0", "OS_LINUX", "" },
        { "rover_con_p_process_thread_count", 7, p1, "comm1", "OS_LINUX", "" },
        { "rover_con_p_http_error_rate", 3.5, p0, "comm0", "OS_LINUX", "/api" },
        { "rover_con_p_system_load", 1.25, 4000000u, "ghost", "OS_LINUX", "" },
    };
    ck_assert_int_eq(s_handle_meters(&e, ms, 4, 1700000000123u), 0);
    ck_assert(s_metric(&e, "meters_sent", NULL) == 3);
    ck_assert(s_metric(&e, "meters_dropped", "reason=\"unknown_process\"") ==
              1);
    ck_assert(s_metric(&e, "calls", "method=\"collectBatch\",status=\"OK\"") ==
              1);

    char **names;
    size_t n = s_requests(&e.fake, "collectBatch", &names);
    ck_assert_uint_eq(n, 2);                    /* one per entity */
    size_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *raw = (uint8_t *)tu_read_file(names[i], &len);
        Skywalking__V3__MeterDataCollection *col =
            skywalking__v3__meter_data_collection__unpack(NULL, len, raw);
        free(raw);
        ck_assert_ptr_nonnull(col);
        ck_assert_uint_ge(col->n_meterdata, 1);
        const Skywalking__V3__MeterData *d0 = col->meterdata[0];
        ck_assert_str_eq(d0->service, "svc-test");
        ck_assert_int_eq(d0->timestamp, 1700000000123);
        uint32_t pid = (uint32_t)strtoul(d0->serviceinstance + 5, NULL, 10);
        char want[64];
        snprintf(want, sizeof want, "inst-%u", pid);
        ck_assert_str_eq(d0->serviceinstance, want);
        snprintf(want, sizeof want, "test_uplink-%u", pid);
        for (size_t k = 0; k < col->n_meterdata; k++) {
            const Skywalking__V3__MeterData *d = col->meterdata[k];
            ck_assert_int_eq(d->metric_case,
                             SKYWALKING__V3__METER_DATA__METRIC_SINGLE_VALUE);
            if (k > 0)
                ck_assert_str_eq(d->service, "");
            const Skywalking__V3__MeterSingleValue *v = d->singlevalue;
            /* The OAP's process entity names, not the thread name. */
            ck_assert_str_eq(s_label(v, "process_name"), want);
            ck_assert_str_eq(s_label(v, "layer"), "OS_LINUX");
            if (!strcmp(v->name, "rover_con_p_http_error_rate")) {
                ck_assert_uint_eq(pid, p0);
                ck_assert_str_eq(s_label(v, "uri"), "/api");
                ck_assert(v->value == 3.5);
            } else {
                ck_assert_ptr_null(s_label(v, "uri"));
                if (!strcmp(v->name, "rover_con_p_process_cpu")) {
                    ck_assert_uint_eq(pid, p0);
                    ck_assert(v->value == 12.5);
                } else {
                    ck_assert_str_eq(v->name,
                                     "rover_con_p_process_thread_count");
                    ck_assert_uint_eq(pid, p1);
                    ck_assert(v->value == 7);
                }
            }
            seen++;
        }
        skywalking__v3__meter_data_collection__free_unpacked(col, NULL);
    }
    s_free_names(names, n);
    ck_assert_uint_eq(seen, 3);

    /* Malformed meters are refused and survived. */
    static const uint8_t garbage[] = { 0x96, 0x01, 0xa1, 0x78, 0x01, 0x02 };
    ck_assert_int_eq(uplink_handle(e.up, TOPIC_METERS, garbage,
                                   sizeof garbage, e.now), -1);
    ck_assert_int_eq(uplink_handle(e.up, TOPIC_METERS, "\xc1", 1, e.now), -1);

    /* The OAP down: dropped and counted, bounded (no buffering), no call
     * during the backoff. */
    s_set_status(&e.fake, "collectBatch", "UNAVAILABLE");
    ck_assert_int_eq(s_handle_meters(&e, ms, 3, 1700000001123u), 0);
    ck_assert(s_metric(&e, "meters_dropped", "reason=\"oap_down\"") == 3);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(s_handle_meters(&e, ms, 3, 1700000002123u), 0);
    ck_assert(s_metric(&e, "meters_dropped", "reason=\"oap_down\"") == 33);
    ck_assert(s_metric(&e, "calls", "method=\"collectBatch\","
                       "status=\"UNAVAILABLE\"") == 1);
    s_set_status(&e.fake, "collectBatch", NULL);
    e.now += 2000;
    ck_assert_int_eq(s_handle_meters(&e, ms, 1, 1700000003123u), 0);
    ck_assert(s_metric(&e, "meters_sent", NULL) == 4);
    s_env_stop(&e);
}
END_TEST

/* The real stage through the broker: proc.ids and policy.update on the
 * bus, a trigger.report turned into a task.request, meters into
 * collectBatch, malformed messages counted (bus_invalid_total) while the
 * stage keeps working. */
typedef struct {
    bus_t *bus;
    arena_t *arena;
    uint32_t want_pid;
    int got_ids, got_policy, got_task, got_invalid_trigger,
        got_invalid_meters;
    char policy[512];
    char task_id[64], task_proc[64];
    uint32_t task_pid;
    uint8_t task_trigger;
} cont_rx_t;

static void
s_cont_rx_one(cont_rx_t *rx, const char *topic, const void *data, size_t len)
{
    char err[128];
    arena_reset(rx->arena);
    if (!strcmp(topic, TOPIC_PROC_IDS)) {
        wire_proc_ids_t m;
        if (wire_decode_proc_ids(data, len, rx->arena, &m, err, sizeof err))
            return;
        for (uint32_t i = 0; i < m.nentities; i++)
            if (m.entities[i].pid == rx->want_pid &&
                *m.entities[i].process_id)
                rx->got_ids = 1;
    } else if (!strcmp(topic, TOPIC_POLICY_UPDATE)) {
        wire_policy_update_t m;
        if (wire_decode_policy_update(data, len, rx->arena, &m, err,
                                      sizeof err))
            return;
        snprintf(rx->policy, sizeof rx->policy, "%s", m.json);
        rx->got_policy = 1;
    } else if (!strcmp(topic, TOPIC_TASK_REQUEST)) {
        wire_task_set_t set;
        if (wire_decode_task_set(data, len, rx->arena, &set, err, sizeof err) ||
            set.ntasks != 1 || set.tasks[0].npids != 1 ||
            !set.tasks[0].process_ids)
            return;
        snprintf(rx->task_id, sizeof rx->task_id, "%s", set.tasks[0].task_id);
        snprintf(rx->task_proc, sizeof rx->task_proc, "%s",
                 set.tasks[0].process_ids[0]);
        rx->task_pid = set.tasks[0].pids[0];
        rx->task_trigger = set.tasks[0].trigger;
        rx->got_task = 1;
    } else if (!strcmp(topic, "stats.uplink")) {
        wire_stats_t st;
        if (wire_decode_stats(data, len, rx->arena, &st, err, sizeof err))
            return;
        for (uint32_t i = 0; i < st.nmetrics; i++) {
            const wire_metric_t *m = &st.metrics[i];
            if (!strstr(m->name, "bus_invalid_total") || m->value < 1)
                continue;
            if (strstr(m->labels, "trigger.report"))
                rx->got_invalid_trigger = 1;
            if (strstr(m->labels, "metric.continuous"))
                rx->got_invalid_meters = 1;
        }
    }
}

static void
s_cont_rx_drain(cont_rx_t *rx)
{
    const char *topic;
    const void *data;
    size_t len;
    while (bus_recv(rx->bus, &topic, &data, &len) == 1)
        s_cont_rx_one(rx, topic, data, len);
}

static int
s_cont_rx_ids_policy(void *arg)
{
    cont_rx_t *rx = arg;
    s_cont_rx_drain(rx);
    return rx->got_ids && rx->got_policy;
}

static int
s_cont_rx_invalid(void *arg)
{
    cont_rx_t *rx = arg;
    s_cont_rx_drain(rx);
    return rx->got_invalid_trigger && rx->got_invalid_meters;
}

static int
s_has_meters(void *arg)
{
    return s_request_count(arg, "collectBatch") > 0;
}

static void
s_bus_publish_trigger(bus_t *bus, uint32_t pid)
{
    wire_cause_t cause = { 0, 10.0, 90.0, "", "" };
    wire_trigger_t t;
    memset(&t, 0, sizeof t);
    wire_header_set(&t.hdr, "policy/test", bus_next_seq(bus, TOPIC_TRIGGER));
    t.pid = pid;
    t.target = WIRE_TARGET_ON_CPU;
    t.duration_ms = 10000;
    t.service = "stage-svc";
    t.ncauses = 1;
    t.causes = &cause;
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_trigger(&t, &buf), 0);
    bus_publish(bus, TOPIC_TRIGGER, buf.data, buf.len);
    wire_buf_release(&buf);
}

static void
s_bus_publish_meter(bus_t *bus, uint32_t pid)
{
    wire_meter_t m = { "rover_con_p_process_cpu", 42.0, pid, "x", "OS_LINUX",
                       "" };
    wire_meters_t ms;
    memset(&ms, 0, sizeof ms);
    wire_header_set(&ms.hdr, "policy/test", bus_next_seq(bus, TOPIC_METERS));
    ms.ts_ms = 1700000000000u;
    ms.nmeters = 1;
    ms.meters = &m;
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_meters(&ms, &buf), 0);
    bus_publish(bus, TOPIC_METERS, buf.data, buf.len);
    wire_buf_release(&buf);
}

START_TEST(test_continuous_stage_with_broker)
{
    stage_rig_t rig;
    if (!s_rig_can_run(&rig, "test_continuous_stage_with_broker"))
        return;
    env_t e;
    memset(&e, 0, sizeof e);
    memset(&s_captured, 0, sizeof s_captured);
    e.fake.dir = tu_mkdtemp();
    ck_assert_int_eq(s_fake_start(&e.fake, NULL, 1), 0);
    s_procs_start(&e.procs);
    uint32_t p0 = (uint32_t)e.procs.pids[0];

    const char *json = "[{\"ServiceName\":\"stage-svc\",\"UUID\":\"u-7\","
                       "\"Profiling\":{\"ON_CPU\":{\"PROCESS_CPU\":{"
                       "\"Threshold\":\"10\",\"Period\":5,\"Count\":2}}}}]";
    size_t len;
    /* Every answer carries the policy and the task, so whichever call
     * comes after our subscription reached the broker is seen. */
    uint8_t *reply = s_policy_reply(json, &len);
    s_write_reply(&e.fake, "queryPolicies", 0, reply, len);
    free(reply);
    cmd_spec_t task[] = {
        { "ContinuousProfilingReportTask",
          { "SerialNumber", "s", "TaskId", "stage-cont", NULL } },
    };
    reply = s_commands(task, 1, &len);
    s_write_reply(&e.fake, "reportProfilingTask", 0, reply, len);
    free(reply);

    s_rig_start(&rig, &e, "bus:\n  stats_interval: 1s\n", "1s",
                "policy/test");
    cont_rx_t rx;
    memset(&rx, 0, sizeof rx);
    rx.want_pid = p0;
    rx.bus = rig.bus;
    rx.arena = arena_new(0);
    ck_assert_int_eq(bus_subscribe(rx.bus, TOPIC_PROC_IDS), 0);
    ck_assert_int_eq(bus_subscribe(rx.bus, TOPIC_POLICY_UPDATE), 0);
    ck_assert_int_eq(bus_subscribe(rx.bus, TOPIC_TASK_REQUEST), 0);
    ck_assert_int_eq(bus_subscribe(rx.bus, "stats.uplink"), 0);

    /* A policy engine appearing on ctl.tasks gets the policies again, so
     * this late subscriber sees them too. */
    int ok = 0;
    for (int i = 0; i < 40 && !ok; i++) {
        uint32_t one = 1;
        wire_task_t t = { "x", WIRE_TARGET_ON_CPU, WIRE_TRIGGER_FIXED_TIME,
                          WIRE_SRC_LOCAL, 0, 1000, 1, 1, &one, NULL, "" };
        wire_task_set_t set;
        memset(&set, 0, sizeof set);
        wire_header_set(&set.hdr, "policy/test",
                        bus_next_seq(rx.bus, TOPIC_CTL_TASKS));
        set.ntasks = 1;
        set.tasks = &t;
        wire_buf_t buf;
        wire_buf_init(&buf);
        ck_assert_int_eq(wire_encode_task_set(&set, &buf), 0);
        bus_publish(rx.bus, TOPIC_CTL_TASKS, buf.data, buf.len);
        wire_buf_release(&buf);
        ok = tu_wait_until(s_cont_rx_ids_policy, &rx, 500);
    }
    if (!ok)
        s_rig_fail(&rig, "no proc.ids / policy.update from the uplink");
    ck_assert_str_eq(rx.policy, json);

    /* Malformed input first: the stage must survive it. */
    static const uint8_t garbage[] = { 0x99, 0x01, 0xc1, 0x00 };
    for (int i = 0; i < 40 && !rx.got_task; i++) {
        bus_publish(rx.bus, TOPIC_TRIGGER, garbage, sizeof garbage);
        bus_publish(rx.bus, TOPIC_METERS, garbage, sizeof garbage);
        s_bus_publish_trigger(rx.bus, p0);
        for (int w = 0; w < 10 && !rx.got_task; w++) {
            usleep(50000);
            s_cont_rx_drain(&rx);
        }
    }
    ck_assert(rx.got_task);
    ck_assert_str_eq(rx.task_id, "stage-cont");
    ck_assert_uint_eq(rx.task_pid, p0);
    ck_assert_uint_eq(rx.task_trigger, WIRE_TRIGGER_CONTINUOUS);
    char want[32];
    snprintf(want, sizeof want, "proc-%u", p0);
    ck_assert_str_eq(rx.task_proc, want);

    for (int i = 0; i < 40 && !s_has_meters(&e.fake); i++) {
        s_bus_publish_meter(rx.bus, p0);
        tu_wait_until(s_has_meters, &e.fake, 500);
    }
    ck_assert(s_has_meters(&e.fake));
    ck_assert(tu_wait_until(s_cont_rx_invalid, &rx, 10000));
    ck_assert_int_eq(kill(rig.uplink, 0), 0);           /* still running */

    s_rig_stop(&rig);
    arena_destroy(&rx.arena);
    s_env_stop(&e);
}
END_TEST

/* ------------------------------------------------- network profiling */
/* A message of the table as a stage would publish it, into the uplink. */
static int
s_handle_msg(env_t *e, msg_id_t id, const char *topic, void *body)
{
    static uint64_t seq;
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(msg_encode(id, body, "stage/test", ++seq, &buf), 0);
    int rc = uplink_handle(e->up, topic, buf.data, buf.len, e->now);
    wire_buf_release(&buf);
    return rc;
}

static void
s_handle_tasks(env_t *e, const wire_task_t *tasks, uint32_t n)
{
    static uint64_t generation;
    wire_task_set_t set = { .generation = ++generation, .ntasks = n,
                            .tasks = tasks };
    ck_assert_int_eq(s_handle_msg(e, MSG_CTL_TASKS, TOPIC_CTL_TASKS, &set),
                     0);
}

static void
s_handle_net_report(env_t *e, const wire_net_report_t *r)
{
    wire_net_report_t m = *r;
    ck_assert_int_eq(s_handle_msg(e, MSG_NET_REPORT, TOPIC_NET_REPORT, &m),
                     0);
}

/* "name=value,name=value" of a meter's labels, in their order. */
static void
s_labels_text(Skywalking__V3__Label **labels, size_t n, char *out,
              size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s=%s",
                                 i ? "," : "", labels[i]->name,
                                 labels[i]->value);
}

static const char *
s_tag(Skywalking__V3__KeyStringValuePair **kv, size_t n, const char *key)
{
    return s_prop(kv, n, key);
}

/* NETWORK tasks in ctl.tasks choose whose network data goes out; a
 * net.report becomes collectBatch meters (prefix, the OAP's process ids,
 * the peer as process id / local / address, histograms), sampled-request
 * logs and span events, each decoded here; the policy engine's own
 * capture task (source POLICY) is not reported. */
START_TEST(test_net_report_to_oap)
{
    if (!s_python_grpc_ok("test_net_report_to_oap"))
        return;
    env_t e;
    s_env_start(&e, NULL, NULL, 4u << 20);
    s_tick(e.up, e.now);
    uint32_t p0 = (uint32_t)e.procs.pids[0], p1 = (uint32_t)e.procs.pids[1];
    uint32_t p2 = (uint32_t)e.procs.pids[2];
    char id0[32], id1[32];
    snprintf(id0, sizeof id0, "proc-%u", p0);
    snprintf(id1, sizeof id1, "proc-%u", p1);
    ck_assert_str_eq(uplink_process_id(e.up, p0), id0);

    uint32_t oap_pids[] = { p0, p1 };
    wire_task_t tasks[] = {
        { .task_id = "net-1", .target = WIRE_TARGET_NETWORK,
          .source = WIRE_SRC_OAP, .duration_ms = 600000, .npids = 2,
          .pids = oap_pids, .extension_json = "" },
        { .task_id = "http-watch", .target = WIRE_TARGET_NETWORK,
          .trigger = WIRE_TRIGGER_CONTINUOUS, .source = WIRE_SRC_POLICY,
          .duration_ms = 600000, .npids = 1, .pids = &p2,
          .extension_json = "" },
    };
    s_handle_tasks(&e, tasks, 2);

    wire_label_t l_client[] = { { "side", "client" }, { "protocol", "http" },
                                { "is_ssl", "false" } };
    wire_label_t l_server[] = { { "side", "server" }, { "protocol", "http" },
                                { "is_ssl", "true" }, { "code", "500" } };
    double bounds[] = { 0, 50, 100 };
    uint64_t counts[] = { 1, 2, 3 };
    wire_net_meter_t meters[] = {
        { .name = "http1_request_counter", .pid = p0,
          .role = WIRE_NET_ROLE_CLIENT, .peer_pid = p1, .peer_address = "",
          .nlabels = 3, .labels = l_client, .value = 5 },
        { .name = "http1_client_duration_histogram", .pid = p0,
          .role = WIRE_NET_ROLE_CLIENT, .peer_address = "10.1.2.3:80",
          .nlabels = 3, .labels = l_client, .nbuckets = 3,
          .bounds = bounds, .counts = counts },
        { .name = "http1_response_status_counter", .pid = p1,
          .role = WIRE_NET_ROLE_SERVER, .peer_address = "127.0.0.1:40000",
          .nlabels = 4, .labels = l_server, .value = 2 },
        { .name = "http1_request_counter", .pid = p2,
          .role = WIRE_NET_ROLE_SERVER, .peer_address = "10.0.0.9:1",
          .nlabels = 3, .labels = l_client, .value = 9 },
    };
    static const uint8_t req[] = "GET /api/x HTTP/1.1\r\nsw8: 1-x\r\n\r\n";
    static const uint8_t resp[] = "HTTP/1.1 500 Oops\r\n\r\nbad \xff byte";
    wire_net_sample_t samples[] = {
        { .pid = p1, .role = WIRE_NET_ROLE_SERVER, .peer_pid = p0,
          .peer_address = "", .is_ssl = 1, .method = "GET",
          .uri = "/api/\"x\"", .status = 500, .reason = "status_5xx",
          .start_ms = 1700000000100u, .end_ms = 1700000000350u,
          .trace_provider = "skywalking", .trace_id = "trace-1",
          .segment_id = "seg-1", .span_id = "3",
          .req_len = sizeof req - 1, .resp_len = sizeof resp - 1,
          .req = req, .resp = resp },
        { .pid = p0, .role = WIRE_NET_ROLE_CLIENT, .peer_address = "8.8.8.8:80",
          .method = "GET", .uri = "/slow", .status = 200, .reason = "slow",
          .start_ms = 1700000000000u, .end_ms = 1700000001000u,
          .trace_provider = "zipkin", .trace_id = "b3-trace",
          .segment_id = "", .span_id = "b3-span" },
        { .pid = p2, .role = WIRE_NET_ROLE_SERVER, .peer_address = "",
          .method = "GET", .uri = "/hidden", .status = 500,
          .reason = "status_5xx",
          .trace_provider = "skywalking", .trace_id = "t", .segment_id = "",
          .span_id = "", .req_len = 3, .req = req },
    };
    wire_net_report_t r = { .ts_ms = 1700000002000u, .nmeters = 4,
                            .meters = meters, .nsamples = 3,
                            .samples = samples };
    s_handle_net_report(&e, &r);
    ck_assert(s_metric(&e, "net_meters_sent", NULL) == 3);
    ck_assert(s_metric(&e, "net_logs_sent", NULL) == 2);
    ck_assert(s_metric(&e, "net_events_sent", NULL) == 2);
    ck_assert(s_metric(&e, "net_dropped", "reason=\"unknown_process\"") == 2);
    ck_assert(s_metric(&e, "calls", "method=\"LogReportService.collect\","
                       "status=\"OK\"") == 1);

    /* Meters: one collection (the three processes share service and
     * instance). */
    char **names;
    size_t n = s_requests(&e.fake, "collectBatch", &names);
    ck_assert_uint_eq(n, 1);
    size_t len;
    uint8_t *raw = (uint8_t *)tu_read_file(names[0], &len);
    s_free_names(names, n);
    Skywalking__V3__MeterDataCollection *col =
        skywalking__v3__meter_data_collection__unpack(NULL, len, raw);
    free(raw);
    ck_assert_ptr_nonnull(col);
    ck_assert_uint_eq(col->n_meterdata, 3);
    ck_assert_str_eq(col->meterdata[0]->service, "svc-test");
    ck_assert_int_eq(col->meterdata[0]->timestamp, 1700000002000);
    char want[512], got[512];
    int seen = 0;
    for (size_t k = 0; k < col->n_meterdata; k++) {
        const Skywalking__V3__MeterData *d = col->meterdata[k];
        if (d->metric_case == SKYWALKING__V3__METER_DATA__METRIC_HISTOGRAM) {
            const Skywalking__V3__MeterHistogram *h = d->histogram;
            ck_assert_str_eq(h->name, "rover_net_p_http1_client_duration_histogram");
            s_labels_text(h->labels, h->n_labels, got, sizeof got);
            snprintf(want, sizeof want, "client_process_id=%s,"
                     "server_address=10.1.2.3:80,side=client,protocol=http,"
                     "is_ssl=false", id0);
            ck_assert_str_eq(got, want);
            ck_assert_uint_eq(h->n_values, 3);
            for (size_t b = 0; b < 3; b++) {
                ck_assert(h->values[b]->bucket == bounds[b]);
                ck_assert_int_eq(h->values[b]->count, (int64_t)counts[b]);
            }
            seen |= 1;
            continue;
        }
        const Skywalking__V3__MeterSingleValue *v = d->singlevalue;
        s_labels_text(v->labels, v->n_labels, got, sizeof got);
        if (!strcmp(v->name, "rover_net_p_http1_request_counter")) {
            /* The peer is a process of the same instance: by its id. */
            snprintf(want, sizeof want, "client_process_id=%s,"
                     "server_process_id=%s,side=client,protocol=http,"
                     "is_ssl=false", id0, id1);
            ck_assert_str_eq(got, want);
            ck_assert(v->value == 5);
            seen |= 2;
        } else {
            ck_assert_str_eq(v->name,
                             "rover_net_p_http1_response_status_counter");
            snprintf(want, sizeof want, "server_process_id=%s,"
                     "client_local=true,side=server,protocol=http,"
                     "is_ssl=true,code=500", id1);
            ck_assert_str_eq(got, want);
            ck_assert(v->value == 2);
            seen |= 4;
        }
    }
    ck_assert_int_eq(seen, 7);
    skywalking__v3__meter_data_collection__free_unpacked(col, NULL);

    /* Logs: the sampled requests of reported processes. */
    n = s_requests(&e.fake, "LogReportService.collect", &names);
    ck_assert_uint_eq(n, 2);
    raw = (uint8_t *)tu_read_file(names[0], &len);
    Skywalking__V3__LogData *log =
        skywalking__v3__log_data__unpack(NULL, len, raw);
    free(raw);
    ck_assert_ptr_nonnull(log);
    ck_assert_str_eq(log->service, "svc-test");
    ck_assert_str_eq(log->layer, "OS_LINUX");
    ck_assert_int_eq(log->timestamp, 1700000002000);
    ck_assert_str_eq(log->tracecontext->traceid, "trace-1");
    ck_assert_uint_eq(log->tags->n_data, 1);
    ck_assert_str_eq(log->tags->data[0]->key, "LOG_KIND");
    ck_assert_str_eq(log->tags->data[0]->value, "NET_PROFILING_SAMPLED_TRACE");
    ck_assert_str_eq(log->body->type, "json");
    ck_assert_int_eq(log->body->content_case,
                     SKYWALKING__V3__LOG_DATA_BODY__CONTENT_JSON);
    snprintf(want, sizeof want,
             "{\"uri\":\"/api/\\\"x\\\"\",\"reason\":\"status_5xx\",\"latency\":250,"
             "\"trace_provider\":\"skywalking\",\"client_process\":"
             "{\"process_id\":\"%s\",\"local\":false,\"address\":\"\"},"
             "\"server_process\":{\"process_id\":\"%s\",\"local\":false,"
             "\"address\":\"\"},\"detect_point\":\"server\","
             "\"component\":\"http\",\"ssl\":true,\"status\":500}", id0, id1);
    ck_assert_str_eq(log->body->json->json, want);
    skywalking__v3__log_data__free_unpacked(log, NULL);
    raw = (uint8_t *)tu_read_file(names[1], &len);
    log = skywalking__v3__log_data__unpack(NULL, len, raw);
    free(raw);
    ck_assert_ptr_nonnull(log);
    snprintf(want, sizeof want,
             "{\"uri\":\"/slow\",\"reason\":\"slow\",\"latency\":1000,"
             "\"trace_provider\":\"zipkin\",\"client_process\":"
             "{\"process_id\":\"%s\",\"local\":false,\"address\":\"\"},"
             "\"server_process\":{\"process_id\":\"\",\"local\":false,"
             "\"address\":\"8.8.8.8:80\"},\"detect_point\":\"client\","
             "\"component\":\"http\",\"ssl\":false,\"status\":200}", id0);
    ck_assert_str_eq(log->body->json->json, want);
    skywalking__v3__log_data__free_unpacked(log, NULL);
    s_free_names(names, n);

    /* Span events: request and response of the sample that kept bytes. */
    n = s_requests(&e.fake, "SpanAttachedEventReportService.collect", &names);
    ck_assert_uint_eq(n, 2);
    for (size_t i = 0; i < n; i++) {
        raw = (uint8_t *)tu_read_file(names[i], &len);
        Skywalking__V3__SpanAttachedEvent *ev =
            skywalking__v3__span_attached_event__unpack(NULL, len, raw);
        free(raw);
        ck_assert_ptr_nonnull(ev);
        ck_assert_str_eq(ev->event, i ? "HTTP Response Sampling"
                                      : "HTTP Request Sampling");
        ck_assert_int_eq(ev->starttime->seconds, 1700000000);
        ck_assert_int_eq(ev->starttime->nanos, 100000000);
        ck_assert_int_eq(ev->endtime->nanos, 350000000);
        ck_assert_int_eq(ev->tracecontext->type,
                         SKYWALKING__V3__SPAN_ATTACHED_EVENT__SPAN_REFERENCE_TYPE__SKYWALKING);
        ck_assert_str_eq(ev->tracecontext->traceid, "trace-1");
        ck_assert_str_eq(ev->tracecontext->tracesegmentid, "seg-1");
        ck_assert_str_eq(ev->tracecontext->spanid, "3");
        Skywalking__V3__KeyStringValuePair **t = ev->tags;
        size_t nt = ev->n_tags;
        ck_assert_str_eq(s_tag(t, nt, "data_type"), i ? "response" : "request");
        /* A server receives the request and sends the response. */
        ck_assert_str_eq(s_tag(t, nt, "data_direction"),
                         i ? "outbound" : "inbound");
        ck_assert_str_eq(s_tag(t, nt, "connection_role"), "server");
        ck_assert_str_eq(s_tag(t, nt, "service_name"), "svc-test");
        snprintf(want, sizeof want, "test_uplink-%u", p1);
        ck_assert_str_eq(s_tag(t, nt, "process_name"), want);
        if (!i) {
            ck_assert_str_eq(s_tag(t, nt, "data_content"), (const char *)req);
            ck_assert_str_eq(s_tag(t, nt, "data_size"), "33B");
        } else {
            /* Not UTF-8: replaced, so the OAP can parse the string. */
            ck_assert_str_eq(s_tag(t, nt, "data_content"),
                             "HTTP/1.1 500 Oops\r\n\r\nbad \xEF\xBF\xBD byte");
        }
        skywalking__v3__span_attached_event__free_unpacked(ev, NULL);
    }
    s_free_names(names, n);

    /* The task ends: nothing of those processes goes out any more. */
    s_handle_tasks(&e, tasks + 1, 1);
    s_handle_net_report(&e, &r);
    ck_assert(s_metric(&e, "net_meters_sent", NULL) == 3);
    ck_assert(s_metric(&e, "net_dropped", "reason=\"unknown_process\"") == 9);

    /* The OAP down: counted, no buffering. */
    s_handle_tasks(&e, tasks, 2);
    s_set_status(&e.fake, "collectBatch", "UNAVAILABLE");
    s_handle_net_report(&e, &r);
    ck_assert(s_metric(&e, "net_dropped", "reason=\"oap_down\"") >= 3);
    s_set_status(&e.fake, "collectBatch", NULL);

    /* Malformed net.report: refused, survived. */
    ck_assert_int_eq(uplink_handle(e.up, TOPIC_NET_REPORT, "\xc1", 1, e.now),
                     -1);
    s_env_stop(&e);
}
END_TEST

/* The shapes on their own: sizes as the reference agent writes them, a
 * histogram, a peer on loopback. */
START_TEST(test_netproto_shapes)
{
    proc_entity_t ent = { "OS_LINUX", "svc", "inst", "proc", NULL, 0 };
    netproto_proc_t local = { "id-1", &ent };
    wire_label_t labels[] = { { "side", "server" } };
    wire_net_meter_t m = { .name = "server_write_bytes_counter", .pid = 1,
                           .role = WIRE_NET_ROLE_SERVER,
                           .peer_address = "10.0.0.1:9", .nlabels = 1,
                           .labels = labels, .value = 4096 };
    netproto_meter_t nm = { &m, NULL };
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    ck_assert_int_eq(netproto_encode_meters(&nm, &local, 1, "pfx", 42, &buf,
                                            &cap, &len), 0);
    Skywalking__V3__MeterDataCollection *col =
        skywalking__v3__meter_data_collection__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(col);
    const Skywalking__V3__MeterSingleValue *v = col->meterdata[0]->singlevalue;
    ck_assert_str_eq(v->name, "pfx_server_write_bytes_counter");
    char got[256];
    s_labels_text(v->labels, v->n_labels, got, sizeof got);
    ck_assert_str_eq(got, "server_process_id=id-1,client_address=10.0.0.1:9,"
                          "side=server");
    ck_assert_str_eq(col->meterdata[0]->serviceinstance, "inst");
    skywalking__v3__meter_data_collection__free_unpacked(col, NULL);
    /* Loopback (IPv6 without brackets, as the room writes it) and Unix
     * sockets are local; an address merely starting like ::1 is not. */
    static const struct { const char *addr, *want; } peers[] = {
        { "::1:8080", "client_local=true" },
        { "unix", "client_local=true" },
        { "::1a:2:80", "client_address=::1a:2:80" },
        { "127.0.0.53:53", "client_local=true" },
    };
    for (size_t i = 0; i < sizeof peers / sizeof peers[0]; i++) {
        m.peer_address = peers[i].addr;
        ck_assert_int_eq(netproto_encode_meters(&nm, &local, 1, "pfx", 42,
                                                &buf, &cap, &len), 0);
        col = skywalking__v3__meter_data_collection__unpack(NULL, len, buf);
        ck_assert_ptr_nonnull(col);
        v = col->meterdata[0]->singlevalue;
        snprintf(got, sizeof got, "%s=%s", v->labels[1]->name,
                 v->labels[1]->value);
        ck_assert_str_eq(got, peers[i].want);
        skywalking__v3__meter_data_collection__free_unpacked(col, NULL);
    }

    /* A request of 1536 bytes is "1.5KiB"; no bytes kept: no event. */
    uint8_t *big = malloc(1536);
    memset(big, 'a', 1536);
    wire_net_sample_t s = { .role = WIRE_NET_ROLE_CLIENT, .uri = "/",
                            .reason = "slow", .trace_provider = "w3c",
                            .trace_id = "t", .segment_id = "", .span_id = "",
                            .req_len = 1536, .req = big, .peer_address = "" };
    ck_assert_int_eq(netproto_encode_event(&s, &local, true, &buf, &cap,
                                           &len), 1);
    ck_assert_int_eq(netproto_encode_event(&s, &local, false, &buf, &cap,
                                           &len), 0);
    Skywalking__V3__SpanAttachedEvent *ev =
        skywalking__v3__span_attached_event__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(s_tag(ev->tags, ev->n_tags, "data_size"), "1.5KiB");
    ck_assert_str_eq(s_tag(ev->tags, ev->n_tags, "data_direction"),
                     "outbound");
    ck_assert_int_eq(ev->tracecontext->type,
                     SKYWALKING__V3__SPAN_ATTACHED_EVENT__SPAN_REFERENCE_TYPE__ZIPKIN);
    skywalking__v3__span_attached_event__free_unpacked(ev, NULL);
    free(big);
    free(buf);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("uplink");
    TCase *units = tcase_create("units");
    tcase_add_test(units, test_finder_templates);
    tcase_add_test(units, test_seenprocs);
    tcase_add_test(units, test_databuf_drops_oldest);
    tcase_add_test(units, test_profdata_shapes);
    tcase_add_test(units, test_commands_parse);
    tcase_add_test(units, test_commands_network);
    tcase_add_test(units, test_idle_without_oap);
    suite_add_tcase(s, units);
    TCase *oap = tcase_create("oap");
    tcase_set_timeout(oap, 300);
    tcase_add_test(oap, test_report_keepalive_and_tasks);
    tcase_add_test(oap, test_profiling_data);
    tcase_add_test(oap, test_auth_token);
    tcase_add_test(oap, test_oap_restart_loses_nothing);
    tcase_add_test(oap, test_buffer_bound_while_down);
    tcase_add_test(oap, test_malformed_replies_survived);
    tcase_add_test(oap, test_process_events);
    tcase_add_test(oap, test_tls);
    tcase_add_test(oap, test_stage_with_broker);
    tcase_add_test(oap, test_hour_of_flushes_100_processes);
    suite_add_tcase(s, oap);
    TCase *cont = tcase_create("continuous");
    tcase_set_timeout(cont, 300);
    tcase_add_test(cont, test_policy_book);
    tcase_add_test(cont, test_contproto_shapes);
    tcase_add_test(cont, test_proc_ids_published);
    tcase_add_test(cont, test_policies_query_and_update);
    tcase_add_test(cont, test_policy_engine_restart);
    tcase_add_test(cont, test_trigger_report_to_task);
    tcase_add_test(cont, test_meters_collect_batch);
    tcase_add_test(cont, test_continuous_stage_with_broker);
    suite_add_tcase(s, cont);
    TCase *net = tcase_create("network");
    tcase_set_timeout(net, 300);
    tcase_add_test(net, test_netproto_shapes);
    tcase_add_test(net, test_net_report_to_oap);
    suite_add_tcase(s, net);
    return s;
}

int
main(int argc, char **argv)
{
    /* Workload mode: the tests spawn copies of this binary to report. */
    if (argc == 3 && !strcmp(argv[1], "--idle")) {
        for (;;)
            pause();
    }
    return tu_run(s_suite());
}
