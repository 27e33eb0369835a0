#include "harness.h"

#include <check.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "testutil.h"
#include "wire.h"

uint64_t th_func_offset(const char *path, const char *func)
{
    uint64_t result = 0, vaddr = 0;
    elf_version(EV_CURRENT);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    Elf_Scn *scn = NULL;
    while (e && (scn = elf_nextscn(e, scn)) && !vaddr) {
        GElf_Shdr sh;
        gelf_getshdr(scn, &sh);
        if (sh.sh_type != SHT_SYMTAB || !sh.sh_entsize)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
            GElf_Sym sym;
            gelf_getsym(d, (int)i, &sym);
            const char *name = elf_strptr(e, sh.sh_link, sym.st_name);
            if (name && strcmp(name, func) == 0) {
                vaddr = sym.st_value;
                break;
            }
        }
    }
    size_t nph = 0;
    if (e && vaddr)
        elf_getphdrnum(e, &nph);
    for (size_t i = 0; i < nph; i++) {
        GElf_Phdr ph;
        gelf_getphdr(e, (int)i, &ph);
        if (ph.p_type == PT_LOAD && vaddr >= ph.p_vaddr &&
            vaddr < ph.p_vaddr + ph.p_memsz)
            result = vaddr - ph.p_vaddr + ph.p_offset + 4;
    }
    if (e)
        elf_end(e);
    close(fd);
    return result;
}

double th_metric_sum(const char *text, const char *family, const char *label)
{
    double sum = 0;
    size_t flen = strlen(family);
    for (const char *line = text; line && *line;) {
        const char *eol = strchr(line, '\n');
        if (strncmp(line, family, flen) == 0 && line[flen] == '{') {
            const char *close = strchr(line, '}');
            int match = 1;
            if (label) {
                char *l = strndup(line, close ? (size_t)(close - line) : 0);
                match = l && strstr(l, label);
                free(l);
            }
            if (close && match && (!eol || close < eol))
                sum += strtod(close + 1, NULL);
        }
        line = eol ? eol + 1 : NULL;
    }
    return sum;
}

struct th_pub {
    void *ctx;
    void *pub;
    uint64_t seq[WIRE_BUCKETS]; /* per topic, as a real collector numbers */
    char exe[4096];
    struct stat st;
    uint64_t off[4];
};

th_pub_t *th_pub_new(const char *endpoint)
{
    th_pub_t *self = calloc(1, sizeof *self);
    ck_assert_ptr_nonnull(self);
    self->ctx = zmq_ctx_new();
    self->pub = zmq_socket(self->ctx, ZMQ_PUB);
    int linger = 0, hwm = 100000;
    zmq_setsockopt(self->pub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    ck_assert_int_eq(zmq_connect(self->pub, endpoint), 0);
    ck_assert_ptr_nonnull(realpath(tu_build_path("tests/progs/cpu_workload"),
                                   self->exe));
    ck_assert_int_eq(stat(self->exe, &self->st), 0);
    static const char *funcs[4] = {"sky_alpha_leaf", "sky_alpha_outer",
                                   "sky_run", "main"};
    for (int i = 0; i < 4; i++) {
        self->off[i] = th_func_offset(self->exe, funcs[i]);
        ck_assert_msg(self->off[i], "%s not in %s", funcs[i], self->exe);
    }
    return self;
}

void th_pub_destroy(th_pub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zmq_close((*self_p)->pub);
    zmq_ctx_term((*self_p)->ctx);
    free(*self_p);
    *self_p = NULL;
}

void th_pub_send(th_pub_t *self, const char *topic, const void *data,
                 size_t len)
{
    zmq_send(self->pub, topic, strlen(topic), ZMQ_SNDMORE);
    zmq_send(self->pub, data, len, 0);
}

void th_pub_workload_batch(th_pub_t *self, uint32_t pid, uint64_t count)
{
    wire_uframe_t uf[4];
    for (int i = 0; i < 4; i++)
        uf[i] = (wire_uframe_t){1, self->off[i]};
    wire_object_t obj = {.id = 1, .type = WIRE_OBJ_EXE, .dev = self->st.st_dev,
                         .ino = self->st.st_ino, .pid = 0, .path = self->exe};
    char name[32];
    snprintf(name, sizeof name, "pid_%u", pid);
    wire_proc_t proc = {.pid = pid, .name = name, .container_id = ""};
    wire_raw_sample_t s = {.pid = pid, .tid = pid, .kind = WIRE_KIND_ON_CPU,
                           .ts_ns = 1, .count = count,
                           .weight_ns = count * 9000000, .nu = 4,
                           .uframes = uf};
    memcpy(s.comm, name, sizeof s.comm - 1);
    wire_raw_batch_t b = {.nobjects = 1, .objects = &obj, .nprocs = 1,
                          .procs = &proc, .nsamples = 1, .samples = &s};
    char topic[32];
    wire_sharded_topic(topic, sizeof topic, TOPIC_RAW_STACKS, pid);
    wire_header_set(&b.hdr, "collector/test", ++self->seq[wire_pid_bucket(pid)]);
    wire_buf_t buf;
    wire_buf_init(&buf);
    ck_assert_int_eq(wire_encode_raw_batch(&b, &buf), 0);
    th_pub_send(self, topic, buf.data, buf.len);
    wire_buf_release(&buf);
}

pid_t th_stage(const char *config, const char *log, const char *binary,
               const char *instance)
{
    char exe[256];
    snprintf(exe, sizeof exe, "bin/%s", binary);
    char *argv[] = {(char *)tu_build_path(exe), "--config", (char *)config,
                    "--instance", (char *)instance, NULL};
    pid_t pid = tu_spawn(argv, log);
    ck_assert_int_gt(pid, 0);
    return pid;
}

void th_stop_stages(const pid_t *pids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int st = tu_stop(pids[i], 10000);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "stage %d exited with status %d", (int)pids[i], st);
    }
}

char *th_get_ok(int port, const char *path)
{
    int status = 0;
    char *body = tu_http("GET", "127.0.0.1", port, path, NULL, &status, NULL);
    if (body && status != 200) {
        free(body);
        body = NULL;
    }
    return body;
}

wire_task_set_t th_task_set(const char *sender, uint64_t seq, uint64_t gen,
                            wire_task_t *tasks, uint32_t n)
{
    wire_task_set_t set = {.generation = gen, .ntasks = n, .tasks = tasks};
    snprintf(set.hdr.sender, sizeof(set.hdr.sender), "%s", sender);
    set.hdr.seq = seq;
    return set;
}

int th_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port ? port : 20000 + (int)(getpid() % 20000);
}

static int s_api_up(void *arg)
{
    int status = 0;
    char *b = th_api(arg, "GET", "/healthz", NULL, &status);
    free(b);
    return status == 200;
}

void th_launch_start(th_launch_t *l, const char *yaml_body,
                     const char *const *extra_args)
{
    memset(l, 0, sizeof *l);
    l->dir = tu_mkdtemp();
    ck_assert_ptr_nonnull(l->dir);
    l->port = th_free_port();
    snprintf(l->config, sizeof l->config, "%s/skyprof.yaml", l->dir);
    snprintf(l->log, sizeof l->log, "%s/run.log", l->dir);
    FILE *f = fopen(l->config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\nruntime_dir: %s/run\naggregator:\n"
               "  http_addr: 127.0.0.1:%d\n  store_path: %s/history.db\n",
            yaml_body ? yaml_body : "", l->dir, l->port, l->dir);
    fclose(f);
    const char *argv[16] = {tu_build_path("bin/skyprof"), "--config",
                            l->config, "--bin-dir", tu_build_path("bin")};
    size_t n = 5;
    for (size_t i = 0; extra_args && extra_args[i] && n < 15; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;
    l->launcher = tu_spawn((char *const *)argv, l->log);
    ck_assert_int_gt(l->launcher, 0);
    ck_assert_msg(tu_wait_until(s_api_up, l, 20000),
                  "the API never answered; see %s", l->log);
}

void th_launch_stop(th_launch_t *l)
{
    if (l->launcher > 0) {
        int status = tu_stop(l->launcher, 20000);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "launcher exit status %d; see %s", status, l->log);
    }
    tu_rmtree(l->dir);
    free(l->dir);
    memset(l, 0, sizeof *l);
}

int th_collectors_ready(const char *log)
{
    char *text = tu_read_file(log, NULL);
    int n = 0;
    for (char *line = text; line && *line;) {
        char *eol = strchr(line, '\n');
        if (eol)
            *eol = '\0';
        char *c = strstr(line, " collector[");
        if (c && (strstr(c, "]: sampling ") ||
                  strstr(c, "]: profiling.active is false")))
            n++;
        line = eol ? eol + 1 : NULL;
    }
    free(text);
    return n;
}

typedef struct {
    const char *log;
    int n;
} s_ready_t;

static int s_collectors_ready(void *arg)
{
    const s_ready_t *r = arg;
    return th_collectors_ready(r->log) >= r->n;
}

void th_wait_collector(const char *log, int n, int timeout_ms)
{
    s_ready_t r = {log, n};
    ck_assert_msg(tu_wait_until(s_collectors_ready, &r, timeout_ms),
                  "the collector never started sampling; see %s", log);
}

char *th_api(const th_launch_t *l, const char *method, const char *path,
             const char *body, int *status)
{
    return tu_http(method, "127.0.0.1", l->port, path, body, status, NULL);
}

typedef struct {
    const th_launch_t *l;
    const char *path;
    const char *needle;
    char *body;
} s_wait_t;

static int s_api_has(void *arg)
{
    s_wait_t *w = arg;
    int status = 0;
    free(w->body);
    w->body = th_api(w->l, "GET", w->path, NULL, &status);
    return w->body && status == 200 && strstr(w->body, w->needle);
}

char *th_api_wait(const th_launch_t *l, const char *path, const char *needle,
                  int timeout_ms, int *found)
{
    s_wait_t w = { .l = l, .path = path, .needle = needle };
    int ok = tu_wait_until(s_api_has, &w, timeout_ms);
    if (found)
        *found = ok;
    return w.body;
}

void th_api_create_task(const th_launch_t *l, int pid, const char *target,
                        int duration_s, char *id, size_t len)
{
    char body[160];
    int status = 0;
    snprintf(body, sizeof body,
             "{\"pid\":%d,\"target\":\"%s\",\"duration\":%d}", pid,
             target, duration_s);
    char *resp = th_api(l, "POST", "/api/tasks", body, &status);
    ck_assert_msg(resp && status >= 200 && status < 300,
                  "POST /api/tasks %s: %d %s", body, status, resp ? resp : "");
    const char *p = strstr(resp, "\"task_id\"");
    ck_assert_ptr_nonnull(p);
    char fmt[32];
    snprintf(fmt, sizeof fmt, " \"%%%zu[^\"]\"", len - 1);
    id[0] = '\0';
    sscanf(strchr(p, ':') + 1, fmt, id);
    ck_assert_msg(id[0], "no task id in %s", resp);
    free(resp);
}
