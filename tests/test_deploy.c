/* Deployment test: the container images and the compose stack.
 *
 * Builds the images from the build under test (deploy/images/build.sh, tag
 * "test"), brings deploy/compose/docker-compose.yml up with podman-compose,
 * runs our workload on the host and finds its functions through the
 * published API, scales the symbolizer to two replicas and shows both take
 * pid buckets and batches, kills a symbolizer replica and then the broker
 * (SIGKILL from the host, as a crash) and shows the stack recovers, adds
 * an aggregator replica (SKYPROF_EXTRA_AGGREGATORS=1) and shows both
 * aggregators own buckets and take batches and that the published port's
 * fan-out answer is exactly the sum of both parts, stops the replica and
 * shows the published one takes every bucket back, checks that no
 * container but the two it killed was ever restarted, and tears everything
 * down. Then runs the Kubernetes node layout's pod with
 * `podman kube play` and finds the workload through its API (no container
 * restarted there either), and checks
 * the manifests offline (deploy/k8s/validate.py).
 *
 * Skips when podman or podman-compose is missing, when not root, when BPF
 * cannot be loaded, or when a container cannot run here. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "testutil.h"

/* Names carry the test process's pid: `make test` and a developer's run
 * may overlap, and each must only touch its own stack, pod and images. */
#define PROJECT_PREFIX "skyprofdeploytest"
static char s_project[48]; /* PROJECT_PREFIX<pid>: compose project */
static char s_tag[32];     /* test-<pid>: image tag */
static char s_pod[64];     /* <project>-node: kube play pod */
#define COMPOSE_FILE "deploy/compose/docker-compose.yml"
#define STAGE_CONTAINERS 6 /* broker collector symbolizer aggregator policy uplink */
/* The Kubernetes node pod: the same but the uplink, which has a pod of its
 * own there (deploy/k8s/node/uplink.yaml: hostPID is pod-wide). */
#define NODE_POD_CONTAINERS 5
#define SHARD_BUCKETS 64
#define CMD_OUTPUT_MAX (1 << 20)

static int s_port;           /* published aggregator API port */
static int s_build_rc = -1;  /* deploy/images/build.sh exit status */
static char s_build_log[4096];

/* ------------------------------------------------------------ commands */

/* Runs a shell command (stdout and stderr captured, bounded) and returns
 * its exit status, -1 when it could not run or died of a signal. The
 * caller frees *out when out is not NULL. */
static int s_sh(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int s_sh(char **out, const char *fmt, ...)
{
    char cmd[4096];
    char *buf = NULL;
    size_t len = 0;
    int rc = -1;
    FILE *pipe = NULL;
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd - 8, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd - 8)
        goto cleanup;
    strcat(cmd, " 2>&1");
    buf = malloc(CMD_OUTPUT_MAX + 1);
    if (!buf)
        goto cleanup;
    pipe = popen(cmd, "r");
    if (!pipe)
        goto cleanup;
    size_t got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof chunk, pipe)) > 0) {
        size_t room = CMD_OUTPUT_MAX - len;
        memcpy(buf + len, chunk, got < room ? got : room);
        len += got < room ? got : room;
    }
    buf[len] = '\0';
    int status = pclose(pipe);
    pipe = NULL;
    if (status != -1 && WIFEXITED(status))
        rc = WEXITSTATUS(status);
cleanup:
    if (pipe)
        pclose(pipe);
    if (out) {
        *out = buf;
        buf = NULL;
    }
    free(buf);
    return rc;
}

/* The same podman-compose invocation every step uses: the project name
 * keeps our containers apart from a user's stack; the replica count is part
 * of the desired state, so `up` and `down` both need it. */
static int s_compose(int symbolizers, int extra_aggregators, const char *args,
                     char **out)
{
    return s_sh(out,
                "SKYPROF_SYMBOLIZERS=%d SKYPROF_EXTRA_AGGREGATORS=%d"
                " podman-compose -p %s -f " COMPOSE_FILE " %s",
                symbolizers, extra_aggregators, s_project, args);
}

/* Whether a compose project still has containers. Tearing down one that
 * has none (the test's own `down` passed) costs podman-compose a stop and
 * an rm per service, seconds for nothing. */
static int s_project_has_containers(const char *project)
{
    char *out = NULL;
    int has = s_sh(&out, "podman ps -aq --filter label=io.podman.compose.project=%s",
                   project) != 0 || !out || out[0] != '\0';
    free(out);
    return has;
}

/* Removes one run's pod, stack and images; names are that run's. */
static void s_teardown_run(const char *project, const char *pod, const char *tag)
{
    s_sh(NULL, "podman pod rm -f -t 2 %s", pod);
    s_sh(NULL, "podman volume rm -f %s-config", pod);
    if (s_project_has_containers(project)) {
        s_sh(NULL, "SKYPROF_IMAGE_TAG=%s SKYPROF_SYMBOLIZERS=2 SKYPROF_EXTRA_AGGREGATORS=1"
                   " podman-compose -p %s -f "
                   COMPOSE_FILE " down -v -t 2", tag, project);
        /* Whatever a failed `up` or an interrupted run left behind. */
        s_sh(NULL, "podman ps -aq --filter label=io.podman.compose.project=%s"
                   " | xargs -r podman rm -f -t 0", project);
    }
    s_sh(NULL, "podman network rm -f %s_skyprof", project);
    s_sh(NULL, "podman volume rm -f %s_history", project);
    s_sh(NULL, "podman images --format '{{.Repository}}:{{.Tag}}'"
               " | grep -E '^localhost/skyprof(-[a-z]+)?:%s$' | xargs -r podman rmi",
         tag);
}

static void s_teardown_pod(void)
{
    s_sh(NULL, "podman pod rm -f -t 2 %s", s_pod);
    s_sh(NULL, "podman volume rm -f %s-config", s_pod);
}

static void s_teardown_stack(void)
{
    s_teardown_pod();
    if (s_project_has_containers(s_project)) {
        s_compose(2, 1, "down -v -t 2", NULL);
        s_sh(NULL, "podman ps -aq --filter label=io.podman.compose.project=%s"
                   " | xargs -r podman rm -f -t 0", s_project);
    }
    s_sh(NULL, "podman network rm -f %s_skyprof", s_project);
    s_sh(NULL, "podman volume rm -f %s_history", s_project);
}

/* Runs whose test process is gone (killed by a timeout, say) leave their
 * containers, pod and images; their names carry the dead pid. */
static void s_reap_stale_runs(void)
{
    char *out = NULL;
    if (s_sh(&out, "{ podman ps -a --format '{{index .Labels \"io.podman.compose.project\"}}';"
                   " podman pod ps --format '{{.Name}}';"
                   " podman images --format 'test-{{.Tag}}' | sed 's/^test-test-/"
                   PROJECT_PREFIX "/'; }"
                   " | grep -o -E '^" PROJECT_PREFIX "[0-9]+' | sort -u") != 0 || !out) {
        free(out);
        return;
    }
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        long pid = strtol(line + strlen(PROJECT_PREFIX), NULL, 10);
        if (pid <= 0 || pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char project[48], pod[64], tag[32];
        snprintf(project, sizeof project, PROJECT_PREFIX "%ld", pid);
        snprintf(pod, sizeof pod, "%s-node", project);
        snprintf(tag, sizeof tag, "test-%ld", pid);
        s_teardown_run(project, pod, tag);
    }
    free(out);
}

/* ------------------------------------------------------ container state */

typedef struct {
    char instance[64]; /* what the stage calls itself: hostname-pid */
    int pid;           /* host pid (the stack runs in the host pid ns) */
    int running;
} replica_t;

/* Reads a container's stage instance name. The hostname podman gives a
 * container is the first 12 characters of its id, and the stages name
 * themselves hostname-pid. */
static int s_replica(const char *container, replica_t *r)
{
    char *out = NULL;
    char id[80] = "", running[16] = "";
    int rc = -1;
    memset(r, 0, sizeof *r);
    if (s_sh(&out, "podman inspect -f '{{.Id}} {{.State.Pid}} {{.State.Running}}' %s",
             container) != 0)
        goto cleanup;
    if (sscanf(out, "%79s %d %15s", id, &r->pid, running) != 3 ||
        strlen(id) < 12)
        goto cleanup;
    r->running = strcmp(running, "true") == 0 && r->pid > 0;
    snprintf(r->instance, sizeof r->instance, "%.12s-%d", id, r->pid);
    rc = 0;
cleanup:
    free(out);
    return rc;
}

static int s_running_containers(void)
{
    char *out = NULL;
    int n = 0;
    if (s_sh(&out, "podman ps -q --filter label=io.podman.compose.project=%s",
             s_project) == 0)
        for (const char *p = out; *p; p++)
            n += *p == '\n';
    free(out);
    return n;
}

/* How often a container's restart policy brought it back (podman's
 * RestartCount), -1 when it cannot be read. */
static int s_restart_count(const char *container)
{
    char *out = NULL;
    int n = -1;
    if (s_sh(&out, "podman inspect -f '{{.RestartCount}}' %s", container) == 0 &&
        out && sscanf(out, "%d", &n) != 1)
        n = -1;
    free(out);
    return n;
}

/* A stage that dies is brought back by the restart policy, and checks of
 * the stack's state mostly pass around it: a crash loop once hid this way
 * (the sanitizer collector, OOM-killed by its memory limit every few
 * seconds) and only made other checks fail now and then. */
static void s_assert_restarts(const char *service, int want)
{
    char name[128];
    snprintf(name, sizeof name, "%s_%s", s_project, service);
    int n = s_restart_count(name);
    ck_assert_msg(n == want, "%s restarted %d times during the run, want %d"
                  " (podman inspect RestartCount; OOM kills show in dmesg)",
                  name, n, want);
}

/* Polls fn every 250 ms until it returns non-zero or timeout_ms have passed
 * by the clock. Most checks here start podman (a process and a database
 * read each); tu_wait_until's 50 ms polling would keep a small machine's
 * CPUs busy with them, away from the stack under test. */
static int s_wait(int (*fn)(void *arg), void *arg, int timeout_ms)
{
    uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;
    int r;
    while (!(r = fn(arg)) && tu_now_ms() < deadline)
        usleep(250 * 1000);
    return r;
}

/* ------------------------------------------------------------- the API */

static char *s_get(const char *path, int *status)
{
    size_t len = 0;
    *status = 0;
    return tu_http("GET", "127.0.0.1", s_port, path, NULL, status, &len);
}

static int s_api_healthy(void *arg)
{
    int status;
    char *body = s_get("/healthz", &status);
    free(body);
    return body && status == 200;
}

/* Value of `name{...instance="X"...} V` in the aggregator's /metrics, which
 * carries every stage's counters as they are published on the bus. */
static int s_metric(const char *metrics, const char *name,
                    const char *instance, double *value)
{
    char label[96];
    size_t nlen = strlen(name);
    snprintf(label, sizeof label, "instance=\"%s\"", instance);
    for (const char *line = metrics; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t llen = eol ? (size_t)(eol - line) : strlen(line);
        if (llen > nlen && strncmp(line, name, nlen) == 0 && line[nlen] == '{') {
            const char *close = memchr(line, '}', llen);
            const char *lab = strstr(line, label);
            if (close && lab && lab < close) {
                *value = strtod(close + 1, NULL);
                return 0;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return -1;
}

typedef struct {
    const char *containers[2];
    double owned[2];
    double batches[2];
    int ok[2];
} shard_view_t;

/* Reads both symbolizer replicas' share of the pid buckets and their batch
 * counters. A replica that restarted has a new instance name, so names are
 * looked up afresh each time. */
static int s_shard_view(shard_view_t *v)
{
    int status;
    char *metrics = s_get("/metrics", &status);
    if (!metrics || status != 200) {
        free(metrics);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        replica_t r;
        v->ok[i] = s_replica(v->containers[i], &r) == 0 && r.running &&
                   s_metric(metrics, "skyprof_symbolizer_shard_buckets_owned",
                            r.instance, &v->owned[i]) == 0 &&
                   s_metric(metrics, "skyprof_symbolizer_batches_in",
                            r.instance, &v->batches[i]) == 0;
    }
    free(metrics);
    return 0;
}

/* Both replicas' batch counters moved past `before`. */
typedef struct {
    shard_view_t *view;
    double before[2];
} shard_work_t;

static int s_both_took_work(void *arg)
{
    shard_work_t *sw = arg;
    shard_view_t *v = sw->view;
    return s_shard_view(v) == 0 && v->ok[0] && v->ok[1] &&
           v->batches[0] > sw->before[0] && v->batches[1] > sw->before[1];
}

/* Both replicas report, each owns some buckets, together all of them. */
static int s_shards_split(void *arg)
{
    shard_view_t *v = arg;
    if (s_shard_view(v) != 0 || !v->ok[0] || !v->ok[1])
        return 0;
    return v->owned[0] > 0 && v->owned[1] > 0 &&
           v->owned[0] + v->owned[1] == SHARD_BUCKETS;
}

typedef struct {
    char path[256];
    const char *must[3];
} folded_wait_t;

static int s_folded_has(void *arg)
{
    folded_wait_t *w = arg;
    int status, ok = 1;
    char *body = s_get(w->path, &status);
    if (!body || status != 200) {
        free(body);
        return 0;
    }
    for (size_t i = 0; i < 3 && w->must[i]; i++)
        ok = ok && strstr(body, w->must[i]) != NULL;
    free(body);
    return ok;
}

/* ------------------------------------------------------------ workloads */

#define MAX_WORKLOADS 8

typedef struct {
    pid_t pids[MAX_WORKLOADS];
    int n;
} workloads_t;

static void s_workloads_start(workloads_t *w, int n, const char *seconds)
{
    char *argv[] = {(char *)tu_build_path("tests/progs/cpu_workload"),
                    (char *)seconds, NULL};
    w->n = 0;
    for (int i = 0; i < n && i < MAX_WORKLOADS; i++) {
        pid_t pid = tu_spawn(argv, NULL);
        ck_assert_int_gt(pid, 0);
        w->pids[w->n++] = pid;
    }
}

static void s_workloads_stop(workloads_t *w)
{
    for (int i = 0; i < w->n; i++)
        tu_stop(w->pids[i], 2000);
    w->n = 0;
}

/* Fresh samples of the workload reach the API after `since` (unix s):
 * the whole pipeline works again. */
static void s_assert_fresh_profile(const char *what, uint64_t since)
{
    workloads_t w;
    folded_wait_t fw = {.must = {"sky_alpha_leaf", "skylib_beta_leaf"}};
    snprintf(fw.path, sizeof fw.path,
             "/api/folded?app_service=cpu_workload&start=%llu",
             (unsigned long long)since);
    s_workloads_start(&w, 1, "20");
    int ok = s_wait(s_folded_has, &fw, 90000);
    s_workloads_stop(&w);
    ck_assert_msg(ok, "%s: no fresh cpu_workload frames in %s", what, fw.path);
}

typedef struct {
    const char *container;
    int old_pid;
} restart_wait_t;

static int s_restarted(void *arg)
{
    restart_wait_t *rw = arg;
    replica_t r;
    return s_replica(rw->container, &r) == 0 && r.running &&
           r.pid != rw->old_pid;
}

/* Kills a container's stage process from the host, as a crash would, and
 * waits for the restart policy to bring it back. */
static void s_crash(const char *container)
{
    replica_t r;
    ck_assert_int_eq(s_replica(container, &r), 0);
    ck_assert_msg(r.running, "%s is not running", container);
    ck_assert_int_eq(kill(r.pid, SIGKILL), 0);
    restart_wait_t rw = {container, r.pid};
    ck_assert_msg(s_wait(s_restarted, &rw, 60000),
                  "%s was not restarted after SIGKILL", container);
}

/* ------------------------------------------------- aggregator replicas */

/* An aggregator's own API: the published one on the host's port, an
 * unpublished replica on its container address (a rootful podman network
 * is routed from the host). Reading each one's own /metrics gives its
 * counters as they are now, not as last published on the bus. */
typedef struct {
    const char *container;
    char host[64];
    int port;
} agg_addr_t;

static int s_container_ip(const char *container, char *ip, size_t cap)
{
    char *out = NULL;
    char first[64] = "";
    int rc = -1;
    if (s_sh(&out, "podman inspect -f"
                   " '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' %s",
             container) != 0)
        goto cleanup;
    if (sscanf(out, "%63s", first) != 1 || strchr(first, '.') == NULL)
        goto cleanup;
    snprintf(ip, cap, "%s", first);
    rc = 0;
cleanup:
    free(out);
    return rc;
}

static char *s_agg_get(const agg_addr_t *a, const char *path, int *status)
{
    size_t len = 0;
    *status = 0;
    return tu_http("GET", a->host, a->port, path, NULL, status, &len);
}

#define AGGS 2 /* [0] the published aggregator, [1] the replica */

typedef struct {
    const agg_addr_t *aggs[AGGS];
    double counting[AGGS]; /* handover_buckets_counting */
    double waiting[AGGS];  /* handover_buckets_waiting */
    double batches[AGGS];  /* batches_in */
    double applied[AGGS];  /* releases_applied */
    double timeouts[AGGS]; /* handover_timeouts */
    int ok[AGGS];          /* running, and every counter read */
} agg_view_t;

/* Each aggregator's counters from its own /metrics, under the instance
 * name it has now (a restart changes it). */
static void s_agg_view(agg_view_t *v)
{
    static const char *const names[] = {
        "skyprof_aggregator_handover_buckets_counting",
        "skyprof_aggregator_handover_buckets_waiting",
        "skyprof_aggregator_batches_in",
        "skyprof_aggregator_releases_applied",
        "skyprof_aggregator_handover_timeouts",
    };
    for (int i = 0; i < AGGS; i++) {
        double *dst[] = {&v->counting[i], &v->waiting[i], &v->batches[i],
                         &v->applied[i], &v->timeouts[i]};
        replica_t r;
        int status;
        char *metrics = NULL;
        v->ok[i] = 0;
        if (s_replica(v->aggs[i]->container, &r) != 0 || !r.running)
            continue;
        metrics = s_agg_get(v->aggs[i], "/metrics", &status);
        if (metrics && status == 200) {
            v->ok[i] = 1;
            for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
                v->ok[i] = v->ok[i] &&
                           s_metric(metrics, names[k], r.instance, dst[k]) == 0;
        }
        free(metrics);
    }
}

/* Both aggregators count some buckets, together every bucket, and none is
 * parked or in grace: the hand-over has settled. */
static int s_aggs_split(void *arg)
{
    agg_view_t *v = arg;
    s_agg_view(v);
    return v->ok[0] && v->ok[1] && v->counting[0] > 0 && v->counting[1] > 0 &&
           v->counting[0] + v->counting[1] == SHARD_BUCKETS &&
           v->waiting[0] == 0 && v->waiting[1] == 0;
}

/* The published aggregator alone counts every bucket. */
static int s_agg_alone(void *arg)
{
    agg_view_t *v = arg;
    s_agg_view(v);
    return v->ok[0] && v->counting[0] == SHARD_BUCKETS && v->waiting[0] == 0;
}

/* A folded answer as (stack, count) pairs; the stack ends at the line's
 * last space (labels such as "[t] name" contain spaces). */
typedef struct {
    char *stack;
    unsigned long long count;
} folded_line_t;

typedef struct {
    folded_line_t *lines;
    size_t n;
    unsigned long long total;
} folded_t;

static void s_folded_release(folded_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->lines[i].stack);
    free(f->lines);
    memset(f, 0, sizeof *f);
}

static unsigned long long s_folded_count(const folded_t *f, const char *stack)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->lines[i].stack, stack) == 0)
            return f->lines[i].count;
    return 0;
}

/* 0, or -1 on a line that is not `stack N` or out of memory. Repeated
 * stacks are summed, so the comparison below does not depend on how an
 * answer happens to be laid out. */
static int s_folded_parse(const char *body, folded_t *f)
{
    char *copy = strdup(body);
    int rc = -1;
    memset(f, 0, sizeof *f);
    if (!copy)
        goto cleanup;
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        char *space = strrchr(line, ' ');
        char *end = NULL;
        if (!space || space == line)
            goto cleanup;
        *space = '\0';
        unsigned long long count = strtoull(space + 1, &end, 10);
        if (end == space + 1 || *end != '\0')
            goto cleanup;
        f->total += count;
        size_t i;
        for (i = 0; i < f->n; i++)
            if (strcmp(f->lines[i].stack, line) == 0)
                break;
        if (i < f->n) {
            f->lines[i].count += count;
            continue;
        }
        folded_line_t *grown = realloc(f->lines, (f->n + 1) * sizeof *grown);
        if (!grown)
            goto cleanup;
        f->lines = grown;
        f->lines[f->n].stack = strdup(line);
        if (!f->lines[f->n].stack)
            goto cleanup;
        f->lines[f->n++].count = count;
    }
    rc = 0;
cleanup:
    free(copy);
    if (rc != 0)
        s_folded_release(f);
    return rc;
}

static int s_folded_same(const folded_t *a, const folded_t *b)
{
    if (a->n != b->n || a->total != b->total)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (s_folded_count(b, a->lines[i].stack) != a->lines[i].count)
            return 0;
    return 1;
}

static int s_folded_fetch(const agg_addr_t *a, const char *path, folded_t *f)
{
    int status, rc = -1;
    char *body = s_agg_get(a, path, &status);
    if (body && status == 200)
        rc = s_folded_parse(body, f);
    free(body);
    return rc;
}

/* The workload's folded stacks three ways over one range: fan-out through
 * the published port (all), and each aggregator's own part (local=1). */
typedef struct {
    const agg_addr_t *aggs[AGGS];
    char path[256]; /* without local=1 */
    folded_t all, part[AGGS];
    char all_body_has_frames; /* the published answer names the functions */
} fanout_check_t;

static void s_fanout_release(fanout_check_t *c)
{
    s_folded_release(&c->all);
    for (int i = 0; i < AGGS; i++)
        s_folded_release(&c->part[i]);
}

/* A consistent view: the parts read before and after the fan-out query are
 * the same, so the fan-out saw exactly those parts (windows close while we
 * read; a view spanning a close is retried). Ready once both parts hold
 * some of the workload's samples. */
static int s_fanout_ready(void *arg)
{
    fanout_check_t *c = arg;
    folded_t again[AGGS] = {{0}};
    char local[300];
    int stable = 1, status;
    s_fanout_release(c);
    snprintf(local, sizeof local, "%s&local=1", c->path);
    for (int i = 0; i < AGGS; i++)
        if (s_folded_fetch(c->aggs[i], local, &c->part[i]) != 0)
            stable = 0;
    char *body = s_agg_get(c->aggs[0], c->path, &status);
    c->all_body_has_frames = body && strstr(body, "sky_alpha_leaf") &&
                             strstr(body, "skylib_beta_leaf");
    if (!body || status != 200 || s_folded_parse(body, &c->all) != 0)
        stable = 0;
    free(body);
    for (int i = 0; i < AGGS; i++) {
        if (s_folded_fetch(c->aggs[i], local, &again[i]) != 0 ||
            !s_folded_same(&c->part[i], &again[i]))
            stable = 0;
        s_folded_release(&again[i]);
    }
    return stable && c->part[0].total > 0 && c->part[1].total > 0;
}

/* The replica phase: one more aggregator joins the running stack, takes
 * its share of the buckets and batches, the published port answers for
 * both (fan-out = own part + replica's part, exactly), and when the
 * replica stops the published one takes every bucket back through the
 * exact hand-over and profiles keep arriving. */
static void s_check_aggregator_replica(int symbolizers, int containers_before)
{
    char *out = NULL;
    char names[AGGS][96];
    agg_addr_t aggs[AGGS];
    snprintf(names[0], sizeof names[0], "%s_aggregator_1", s_project);
    snprintf(names[1], sizeof names[1], "%s_aggregator-replica_1", s_project);
    for (int i = 0; i < AGGS; i++)
        aggs[i].container = names[i];
    snprintf(aggs[0].host, sizeof aggs[0].host, "127.0.0.1");
    aggs[0].port = s_port;

    int rc = s_compose(symbolizers, 1, "up -d aggregator-replica", &out);
    free(out);
    out = NULL;
    ck_assert_int_eq(s_running_containers(), containers_before + 1);
    ck_assert_msg(s_container_ip(names[1], aggs[1].host, sizeof aggs[1].host) == 0,
                  "no address for %s (up: %d)", names[1], rc);
    aggs[1].port = 8080;

    /* The join: both own buckets, 64 together, nothing left parked. */
    agg_view_t v = {.aggs = {&aggs[0], &aggs[1]}};
    ck_assert_msg(s_wait(s_aggs_split, &v, 60000),
                  "aggregators did not split the buckets: counting %g + %g,"
                  " waiting %g + %g (read: %d %d)", v.counting[0],
                  v.counting[1], v.waiting[0], v.waiting[1], v.ok[0], v.ok[1]);
    double batches_before[AGGS] = {v.batches[0], v.batches[1]};

    /* Workloads (new pids, spread over the buckets) until both parts hold
     * some of cpu_workload's samples; a round whose pids all fell to one
     * aggregator is followed by another with more pids. */
    fanout_check_t c = {.aggs = {&aggs[0], &aggs[1]}};
    snprintf(c.path, sizeof c.path, "/api/folded?app_service=cpu_workload&start=%llu",
             (unsigned long long)time(NULL));
    int ready = 0;
    for (int round = 0; round < 4 && !ready; round++) {
        workloads_t w;
        s_workloads_start(&w, 4, "4");
        for (int i = 0; i < w.n; i++)
            waitpid(w.pids[i], NULL, 0);
        w.n = 0;
        ready = s_wait(s_fanout_ready, &c, 30000);
    }
    ck_assert_msg(ready, "no consistent view with cpu_workload samples in both"
                  " parts: published %llu, replica %llu, fan-out %llu",
                  c.part[0].total, c.part[1].total, c.all.total);

    /* The fan-out answer is exactly the published part plus the replica's
     * part, stack by stack; both parts are non-empty, so it is more than
     * either alone. */
    ck_assert_msg(c.all.total == c.part[0].total + c.part[1].total,
                  "fan-out %llu samples != published part %llu + replica part %llu",
                  c.all.total, c.part[0].total, c.part[1].total);
    for (size_t i = 0; i < c.all.n; i++) {
        const char *stack = c.all.lines[i].stack;
        unsigned long long sum = s_folded_count(&c.part[0], stack) +
                                 s_folded_count(&c.part[1], stack);
        ck_assert_msg(c.all.lines[i].count == sum,
                      "fan-out %llu != parts %llu for %s",
                      c.all.lines[i].count, sum, stack);
    }
    ck_assert_msg(c.all_body_has_frames,
                  "cpu_workload functions not in the published answer %s", c.path);

    /* Both took batches since the split. */
    s_agg_view(&v);
    ck_assert_msg(v.ok[0] && v.ok[1] && v.batches[0] > batches_before[0] &&
                      v.batches[1] > batches_before[1],
                  "not both aggregators took batches: %g->%g, %g->%g",
                  batches_before[0], v.batches[0], batches_before[1], v.batches[1]);
    fprintf(stderr, "aggregators: buckets %g + %g; batches since the split"
                    " %g + %g; cpu_workload samples: published part %llu +"
                    " replica part %llu = fan-out %llu (%zu stacks)\n",
            v.counting[0], v.counting[1], v.batches[0] - batches_before[0],
            v.batches[1] - batches_before[1], c.part[0].total,
            c.part[1].total, c.all.total, c.all.n);
    s_fanout_release(&c);

    /* The replica stops (SIGTERM, as `podman stop` and scaling down do):
     * it releases each of its buckets to the published one, which then
     * counts all 64, and new profiles arrive on the published port. */
    double replica_owned = v.counting[1], applied_before = v.applied[0];
    double timeouts_before = v.timeouts[0];
    rc = s_sh(&out, "podman stop -t 20 %s", names[1]);
    ck_assert_msg(rc == 0, "podman stop %s: %s", names[1], out);
    free(out);
    out = NULL;
    ck_assert_int_eq(s_running_containers(), containers_before);
    ck_assert_msg(s_wait(s_agg_alone, &v, 60000),
                  "published aggregator does not count every bucket: %g,"
                  " waiting %g", v.counting[0], v.waiting[0]);
    ck_assert_msg(v.applied[0] - applied_before >= replica_owned,
                  "hand-over not exact: %g releases applied for the replica's"
                  " %g buckets (timeouts %g->%g)", v.applied[0] - applied_before,
                  replica_owned, timeouts_before, v.timeouts[0]);
    s_assert_fresh_profile("after the aggregator replica stopped",
                           (uint64_t)time(NULL));
    fprintf(stderr, "aggregator replica stopped: published counts %g buckets,"
                    " %g releases applied for the replica's %g, timeouts"
                    " %g->%g\n", v.counting[0], v.applied[0] - applied_before,
            replica_owned, timeouts_before, v.timeouts[0]);
}

/* ---------------------------------------------------------------- test */

static void s_unchecked_teardown(void)
{
    s_teardown_run(s_project, s_pod, s_tag);
}

/* What one stage's container holds, read from its main process on the
 * host: effective uid, effective capabilities, and whether it shares the
 * host's PID namespace. */
typedef struct {
    const char *service;
    unsigned uid;
    uint64_t caps;           /* CapEff */
} holds_t;

#define CAP_BIT(n) (1ull << (n))
#define CAP_DAC_READ_SEARCH_BIT CAP_BIT(2)
#define CAP_SYS_PTRACE_BIT CAP_BIT(19)
#define CAP_SYSLOG_BIT CAP_BIT(34)
#define CAP_PERFMON_BIT CAP_BIT(38)
#define CAP_BPF_BIT CAP_BIT(39)

static int s_holds(const char *service, unsigned *uid, uint64_t *caps,
                   int *host_pidns)
{
    char name[128], path[64], ns[64] = "", host_ns[64] = "";
    replica_t r;
    int rc = -1;
    snprintf(name, sizeof name, "%s_%s_1", s_project, service);
    if (s_replica(name, &r) != 0 || !r.running)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/status", r.pid);
    char *status = tu_read_file(path, NULL);
    if (!status)
        return -1;
    const char *u = strstr(status, "\nUid:");
    const char *c = strstr(status, "\nCapEff:");
    unsigned real = 0;
    unsigned long long eff = 0;
    if (!u || !c || sscanf(u, "\nUid: %u %u", &real, uid) != 2 ||
        sscanf(c, "\nCapEff: %llx", &eff) != 1)
        goto cleanup;
    *caps = eff;
    snprintf(path, sizeof path, "/proc/%d/ns/pid", r.pid);
    ssize_t n = readlink(path, ns, sizeof ns - 1);
    /* The test runs in the host's PID namespace (the collector's). */
    ssize_t h = readlink("/proc/self/ns/pid", host_ns, sizeof host_ns - 1);
    if (n <= 0 || h <= 0)
        goto cleanup;
    *host_pidns = strcmp(ns, host_ns) == 0;
    rc = 0;
cleanup:
    free(status);
    return rc;
}

/* Every stage holds what deploy/compose/docker-compose.yml gives it and
 * nothing more: the collector root with BPF, PERFMON, SYS_PTRACE and
 * DAC_READ_SEARCH in the host PID namespace; the symbolizer uid 10001
 * with SYS_PTRACE, DAC_READ_SEARCH and SYSLOG; the broker, aggregator,
 * policy engine and uplink uid 10001 with no capability. The uplink,
 * which talks to the network, learns processes from proc.events and sits
 * outside the host PID namespace, unless the compose tool put every
 * container there (podman-compose 1.0.3 with deploy/compose/
 * podman-compose.conf, which cannot honour pid: host per service). */
static void s_assert_holds(void)
{
    static const holds_t want[] = {
        { "collector", 0, CAP_BPF_BIT | CAP_PERFMON_BIT | CAP_SYS_PTRACE_BIT |
                          CAP_DAC_READ_SEARCH_BIT },
        { "symbolizer", 10001, CAP_SYS_PTRACE_BIT | CAP_DAC_READ_SEARCH_BIT |
                               CAP_SYSLOG_BIT },
        { "broker", 10001, 0 },
        { "aggregator", 10001, 0 },
        { "policy", 10001, 0 },
        { "uplink", 10001, 0 },
    };
    int host_ns[6] = { 0 };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        unsigned uid = 0;
        uint64_t caps = 0;
        ck_assert_msg(s_holds(want[i].service, &uid, &caps, &host_ns[i]) == 0,
                      "cannot read what %s holds", want[i].service);
        ck_assert_msg(uid == want[i].uid, "%s runs as uid %u, want %u",
                      want[i].service, uid, want[i].uid);
        ck_assert_msg(caps == want[i].caps,
                      "%s holds capabilities %#llx, want %#llx",
                      want[i].service, (unsigned long long)caps,
                      (unsigned long long)want[i].caps);
    }
    ck_assert_msg(host_ns[0], "collector outside the host PID namespace");
    /* The aggregator (index 3) has no pid key: when it shares the host's
     * namespace the tool forced it on every container. */
    if (!host_ns[3])
        ck_assert_msg(!host_ns[5], "uplink in the host PID namespace");
}

START_TEST(test_compose_stack)
{
    char *out = NULL;
    ck_assert_msg(s_build_rc == 0, "make images (deploy/images/build.sh) failed:\n%s",
                  s_build_log);

    /* Up with one symbolizer: every stage's container runs. */
    int rc = s_compose(1, 0, "up -d", &out);
    ck_assert_msg(rc == 0, "podman-compose up failed (%d):\n%.3000s", rc, out);
    free(out);
    out = NULL;
    ck_assert_msg(s_wait(s_api_healthy, NULL, 60000),
                  "aggregator API not healthy on port %d", s_port);
    ck_assert_int_eq(s_running_containers(), STAGE_CONTAINERS);
    replica_t collector;
    char name[2][96];
    snprintf(name[0], sizeof name[0], "%s_collector_1", s_project);
    ck_assert_int_eq(s_replica(name[0], &collector), 0);
    rc = s_sh(&out, "grep -c '^Seccomp:[[:space:]]*2' /proc/%d/status", collector.pid);
    ck_assert_msg(rc == 0, "collector not under the seccomp filter: %s", out);
    free(out);
    out = NULL;
    s_assert_holds();

    /* Our workload on the host, its functions by name through the API:
     * collector (BPF, host pid ns) -> broker -> symbolizer (non-root,
     * reading the binary through /proc/PID/root) -> aggregator. */
    workloads_t w;
    folded_wait_t fw = {
        .path = "/api/folded?app_service=cpu_workload",
        .must = {"sky_alpha_leaf", "skylib_beta_leaf", "main;sky_run"},
    };
    s_workloads_start(&w, 1, "20");
    int found = s_wait(s_folded_has, &fw, 90000);
    s_workloads_stop(&w);
    ck_assert_msg(found, "cpu_workload frames never reached %s", fw.path);
    s_assert_restarts("collector_1", 0);

    /* Two symbolizers: `up` of that service with a replica count (the
     * whole stack's `up` would do the same and start nothing else, but
     * podman-compose 1.0.3 takes a second per service to find that out). */
    rc = s_compose(2, 0, "up -d symbolizer", &out);
    free(out);
    out = NULL;
    ck_assert_int_eq(s_running_containers(), STAGE_CONTAINERS + 1);
    snprintf(name[0], sizeof name[0], "%s_symbolizer_1", s_project);
    snprintf(name[1], sizeof name[1], "%s_symbolizer_2", s_project);
    shard_view_t v = {.containers = {name[0], name[1]}};
    ck_assert_msg(s_wait(s_shards_split, &v, 60000),
                  "replicas did not split the buckets: owned %g + %g",
                  v.owned[0], v.owned[1]);

    /* Both take work: rounds of workloads (new pids, so new buckets)
     * until each replica's batch counter has moved; a round whose pids
     * all fell to one replica is followed by another. */
    shard_work_t sw = {.view = &v, .before = {v.batches[0], v.batches[1]}};
    int both = 0;
    for (int round = 0; round < 8 && !both; round++) {
        s_workloads_start(&w, 4, "2");
        both = s_wait(s_both_took_work, &sw, 15000);
        s_workloads_stop(&w);
    }
    ck_assert_msg(both, "not both replicas took work: batches %g->%g, %g->%g",
                  sw.before[0], v.batches[0], sw.before[1], v.batches[1]);

    /* A symbolizer replica crashes: restarted by the restart policy, the
     * buckets are split again between the survivor and the new instance,
     * and new profiles flow. */
    s_crash(name[1]);
    ck_assert_msg(s_wait(s_shards_split, &v, 60000),
                  "buckets not split after the replica restart: %g + %g",
                  v.owned[0], v.owned[1]);
    s_assert_fresh_profile("after a symbolizer crash", (uint64_t)time(NULL));

    /* The broker crashes: every stage reconnects by itself. */
    char broker[96];
    snprintf(broker, sizeof broker, "%s_broker_1", s_project);
    s_crash(broker);
    s_assert_fresh_profile("after a broker crash", (uint64_t)time(NULL));
    ck_assert_int_eq(s_running_containers(), STAGE_CONTAINERS + 1);

    /* An aggregator replica joins, shares the work, answers through the
     * published one's fan-out, and leaves cleanly. */
    s_check_aggregator_replica(2, STAGE_CONTAINERS + 1);

    /* Only the two containers crashed on purpose were restarted, once
     * each; the replica stopped by podman stop was not brought back. */
    static const char *const steady[] = {
        "collector_1", "symbolizer_1", "aggregator_1", "policy_1",
        "uplink_1", "aggregator-replica_1",
    };
    for (size_t i = 0; i < sizeof steady / sizeof steady[0]; i++)
        s_assert_restarts(steady[i], 0);
    s_assert_restarts("symbolizer_2", 1);
    s_assert_restarts("broker_1", 1);

    /* Tear down: nothing of the project is left. The containers are
     * stopped together first: podman-compose 1.0.3's `down` stops them one
     * after another, ~1 s each and up to -t for the aggregator, then
     * removes what is left (and the network and volume) as it would. */
    s_sh(NULL, "podman ps -q --filter label=io.podman.compose.project=%s"
               " | xargs -r podman stop -t 2", s_project);
    rc = s_compose(2, 1, "down -v -t 2", &out);
    free(out);
    out = NULL;
    ck_assert_int_eq(s_running_containers(), 0);
    rc = s_sh(&out, "podman ps -aq --filter label=io.podman.compose.project=%s",
              s_project);
    ck_assert_msg(rc == 0 && out && out[0] == '\0', "containers left: %s", out);
    free(out);
}
END_TEST


/* The Kubernetes node layout as podman runs it: the DaemonSet's pod
 * (rendered by deploy/k8s/podman-pod.py, which translates the fields podman
 * 4.3 ignores) profiles the host through the pod-local bus, with the
 * manifest's users, capabilities and read-only roots. */
START_TEST(test_k8s_node_pod)
{
    char *out = NULL;
    char pod_file[512];
    s_teardown_stack(); /* the compose test's stack when it failed midway */
    ck_assert_msg(s_build_rc == 0, "make images (deploy/images/build.sh) failed:\n%s",
                  s_build_log);
    char *dir = tu_mkdtemp();
    ck_assert_ptr_nonnull(dir);
    snprintf(pod_file, sizeof pod_file, "%s/pod.yaml", dir);
    int rc = s_sh(&out, "python3 deploy/k8s/podman-pod.py --tag %s --name %s"
                        " --api-port %d > %s",
                  s_tag, s_pod, s_port, pod_file);
    ck_assert_msg(rc == 0, "podman-pod.py failed: %s", out);
    free(out);
    rc = s_sh(&out, "podman kube play %s", pod_file);
    ck_assert_msg(rc == 0, "podman kube play failed (%d):\n%.3000s", rc, out);
    free(out);
    out = NULL;
    ck_assert_msg(s_wait(s_api_healthy, NULL, 60000),
                  "node pod API not healthy on port %d", s_port);

    workloads_t w;
    folded_wait_t fw = {
        .path = "/api/folded?app_service=cpu_workload",
        .must = {"sky_alpha_leaf", "skylib_beta_leaf", "main;sky_run"},
    };
    s_workloads_start(&w, 1, "20");
    int found = s_wait(s_folded_has, &fw, 90000);
    s_workloads_stop(&w);
    ck_assert_msg(found, "node pod: cpu_workload frames never reached %s", fw.path);

    /* Every container of the pod still runs (none crashed meanwhile). */
    rc = s_sh(&out, "podman ps --filter pod=%s --filter status=running"
                    " --format '{{.Names}}' | grep -c '^%s-'", s_pod, s_pod);
    ck_assert_msg(rc == 0 && atoi(out) == NODE_POD_CONTAINERS,
                  "running containers in the pod: %s", out);
    free(out);
    out = NULL;
    /* ... and none was restarted by the pod's restart policy either. */
    rc = s_sh(&out, "podman ps -a --filter pod=%s --format '{{.Names}}'"
                    " | grep '^%s-' | xargs -r podman inspect"
                    " -f '{{.Name}} {{.RestartCount}}'", s_pod, s_pod);
    ck_assert_msg(rc == 0, "cannot read the pod's restart counts: %s", out);
    int seen = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char cname[128];
        int restarts = -1;
        ck_assert_msg(sscanf(line, "%127s %d", cname, &restarts) == 2,
                      "podman inspect: %s", line);
        ck_assert_msg(restarts == 0, "%s restarted %d times", cname, restarts);
        seen++;
    }
    ck_assert_int_eq(seen, NODE_POD_CONTAINERS);
    free(out);
    out = NULL;

    rc = s_sh(&out, "podman kube down %s", pod_file);
    ck_assert_msg(rc == 0, "podman kube down failed: %s", out);
    free(out);
    rc = s_sh(&out, "podman pod exists %s", s_pod);
    ck_assert_msg(rc == 1, "pod still exists after kube down: %s", out);
    free(out);
    /* The ConfigMap's volume outlives kube down in podman 4.3. */
    rc = s_sh(&out, "podman volume rm %s-config", s_pod);
    ck_assert_msg(rc == 0, "no ConfigMap volume to remove: %s", out);
    free(out);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

/* The manifests and compose file pass the offline checks, and every
 * skyprof.yaml in them loads in a real stage. */
START_TEST(test_manifests_validate)
{
    char *out = NULL;
    int rc = s_sh(&out, "python3 deploy/k8s/validate.py --bin-dir %s/bin",
                  tu_build_dir());
    ck_assert_msg(rc == 0, "deploy/k8s/validate.py:\n%s", out);
    ck_assert_ptr_nonnull(strstr(out, "validate: ok"));
    free(out);
}
END_TEST

/* ---------------------------------------------------------------- main */

/* Everything the test needs from the machine; each miss is a skip. */
static int s_can_run(const char *name)
{
    char *out = NULL;
    int ok = 0;
    if (geteuid() != 0) {
        tu_skip(name, "needs root (BPF collector, rootful podman networks)");
        goto cleanup;
    }
    if (!tu_require_tool(name, "podman") ||
        !tu_require_tool(name, "podman-compose") || !tu_require_bpf(name))
        goto cleanup;
    if (access(COMPOSE_FILE, R_OK) != 0) {
        tu_skip(name, "run from the source tree (%s not found)", COMPOSE_FILE);
        goto cleanup;
    }
    if (access(tu_build_path("tests/progs/cpu_workload"), X_OK) != 0) {
        tu_skip(name, "workload %s not built", tu_build_path("tests/progs/cpu_workload"));
        goto cleanup;
    }
    if (s_sh(&out, "podman info >/dev/null") != 0) {
        tu_skip(name, "podman cannot work here: %.300s", out);
        goto cleanup;
    }
    free(out);
    out = NULL;

    /* The images come from this build (its binaries, sanitizers and all). */
    s_build_rc = s_sh(&out, "BUILD=%s SKYPROF_IMAGE_TAG=%s sh deploy/images/build.sh",
                      tu_build_dir(), s_tag);
    snprintf(s_build_log, sizeof s_build_log, "%s", out ? out : "");
    free(out);
    out = NULL;
    if (s_build_rc == 0 &&
        s_sh(&out, "podman run --rm --network none localhost/skyprof-broker:%s"
                   " --help", s_tag) != 0) {
        tu_skip(name, "containers cannot run here: %.300s", out);
        goto cleanup;
    }
    ok = 1;
cleanup:
    free(out);
    return ok;
}

int main(void)
{
    Suite *s = suite_create("deploy");
    TCase *manifests = tcase_create("manifests");
    TCase *tc = tcase_create("containers");
    tcase_set_timeout(tc, 1200);
    tcase_set_timeout(manifests, 120);
    snprintf(s_project, sizeof s_project, PROJECT_PREFIX "%d", (int)getpid());
    snprintf(s_pod, sizeof s_pod, "%s-node", s_project);
    snprintf(s_tag, sizeof s_tag, "test-%d", (int)getpid());

    /* Podman reads this for every command the test runs: runc, inherited
     * ulimits, and the host pid namespace podman-compose 1.0.3 and podman
     * 4.3's kube play cannot express per container. */
    char conf[4096];
    if (getcwd(conf, sizeof conf - 64)) {
        strcat(conf, "/deploy/compose/podman-compose.conf");
        setenv("CONTAINERS_CONF", conf, 1);
    }
    /* The compose stack runs its collector under our seccomp profile (the
     * node pod keeps the manifest's Unconfined), so both are exercised. */
    char seccomp[4096];
    if (getcwd(seccomp, sizeof seccomp - 64)) {
        strcat(seccomp, "/deploy/compose/collector-seccomp.json");
        setenv("SKYPROF_COLLECTOR_SECCOMP", seccomp, 1);
    }
    s_port = th_free_port();
    char port[16];
    snprintf(port, sizeof port, "%d", s_port);
    setenv("SKYPROF_HTTP_PORT", port, 1);
    setenv("SKYPROF_IMAGE_TAG", s_tag, 1);
    unsetenv("SKYPROF_CORE_BACKEND_ADDR");

    if (s_sh(NULL, "python3 -c 'import yaml'") != 0)
        tu_skip("test_manifests_validate", "python3 with PyYAML not available");
    else
        tcase_add_test(manifests, test_manifests_validate);

    if (s_port > 0 && s_can_run("test_compose_stack")) {
        s_reap_stale_runs();
        tcase_add_unchecked_fixture(tc, NULL, s_unchecked_teardown);
        tcase_add_test(tc, test_compose_stack);
        tcase_add_test(tc, test_k8s_node_pod);
    } else {
        tu_skip("test_k8s_node_pod", "same requirements as test_compose_stack");
    }
    suite_add_tcase(s, manifests);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
