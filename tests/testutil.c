#include "testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int tu_skip(const char *name, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    printf("SKIP: %s: %s\n", name, why);
    fflush(stdout);
    return 0;
}

int tu_require_bpf(const char *name)
{
    if (getenv("SKYPROF_TEST_NO_BPF"))
        return tu_skip(name, "SKYPROF_TEST_NO_BPF is set");
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
        return tu_skip(name, "no kernel BTF at /sys/kernel/btf/vmlinux");
    /* A software perf event is what the sampler needs; opening one tells
     * whether perf_event_paranoid / capabilities allow it. */
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.sample_period = 10000000;
    int fd = (int)syscall(__NR_perf_event_open, &attr, -1, 0, -1, 0);
    if (fd < 0)
        return tu_skip(name, "perf_event_open on CPU 0 failed: %s",
                       strerror(errno));
    close(fd);
    /* BPF itself: the bpf syscall with an invalid command says EPERM when
     * we lack the capability and EINVAL when we have it. */
    long r = syscall(__NR_bpf, 0xffff, NULL, 0);
    if (r < 0 && errno == EPERM)
        return tu_skip(name, "no permission to use bpf() (need root or "
                             "CAP_BPF+CAP_PERFMON)");
    return 1;
}

int tu_require_tool(const char *name, const char *tool)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    if (system(cmd) != 0)
        return tu_skip(name, "%s is not installed", tool);
    return 1;
}

int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

const char *tu_build_dir(void)
{
    const char *b = getenv("SKYPROF_BUILD");
    return b && b[0] ? b : "build";
}

const char *tu_build_path(const char *rel)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", tu_build_dir(), rel);
    return b;
}

char *tu_mkdtemp(void)
{
    char tmpl[] = "/tmp/skyprof-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

void tu_rmtree(const char *path)
{
    if (!path || strncmp(path, "/tmp/", 5) != 0)
        return;
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "tu_rmtree: could not remove %s\n", path);
}

pid_t tu_spawn(char *const argv[], const char *log_path)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* The test binary may run with signals blocked (check's fork mode
         * does not, but a stage loop in-process would): start clean. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        /* A failed assertion ends the test process without cleanup:
         * whatever it started must not outlive it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
        }
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

int tu_stop(pid_t pid, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    int status = 0;
    kill(pid, SIGTERM);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    if (waitpid(pid, &status, 0) == pid)
        return status;
    return -1;
}

void tu_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (used + 1 >= cap) {
            char *grown = realloc(buf, cap * 2);
            if (!grown) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t n = fread(buf + used, 1, cap - used - 1, f);
        if (n == 0)
            break;
        used += n;
    }
    fclose(f);
    if (buf) {
        buf[used] = '\0';
        if (len)
            *len = used;
    }
    return buf;
}

char *tu_http(const char *method, const char *host, int port,
              const char *path, const char *body, int *status, size_t *len)
{
    return tu_http_with(method, host, port, path, NULL, body, status, len);
}

char *tu_http_with(const char *method, const char *host, int port,
                   const char *path, const char *headers, const char *body,
                   int *status, size_t *len)
{
    size_t blen = body ? strlen(body) : 0, used = 0;
    size_t hcap = 2048 + (headers ? strlen(headers) : 0) + blen;
    char *req = malloc(hcap);
    if (!req)
        return NULL;
    int hl = snprintf(req, hcap,
                      "%s %s HTTP/1.0\r\nHost: %s\r\n%sContent-Type: "
                      "application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n%s",
                      method, path, host, headers ? headers : "", blen,
                      body ? body : "");
    char *resp = hl > 0 && (size_t)hl < hcap
                     ? tu_http_raw(host, port, req, (size_t)hl, status, &used)
                     : NULL;
    free(req);
    if (!resp)
        return NULL;
    char *sep = strstr(resp, "\r\n\r\n");
    const char *b = sep ? sep + 4 : resp + used;
    size_t bl = (size_t)(resp + used - b);
    char *out = malloc(bl + 1);
    if (out) {
        memcpy(out, b, bl + 1);
        if (len)
            *len = bl;
    }
    free(resp);
    return out;
}

char *tu_http_raw(const char *host, int port, const char *request,
                  size_t reqlen, int *status, size_t *resp_len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return NULL;
    }
    /* A server may answer before reading everything (a refusal): the
     * answer still counts. */
    if (send(fd, request, reqlen, MSG_NOSIGNAL) < 0 && errno != EPIPE &&
        errno != ECONNRESET) {
        close(fd);
        return NULL;
    }
    size_t cap = 65536, used = 0;
    char *resp = malloc(cap);
    for (;;) {
        if (!resp)
            break;
        if (used + 1 >= cap) {
            char *grown = realloc(resp, cap * 2);
            if (!grown) {
                free(resp);
                resp = NULL;
                break;
            }
            resp = grown;
            cap *= 2;
        }
        ssize_t n = read(fd, resp + used, cap - used - 1);
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    if (!resp)
        return NULL;
    resp[used] = '\0';
    if (used == 0) {
        free(resp);
        return NULL;
    }
    int code = 0;
    sscanf(resp, "HTTP/%*s %d", &code);
    if (status)
        *status = code;
    if (resp_len)
        *resp_len = used;
    return resp;
}

int tu_wait_until(int (*fn)(void *arg), void *arg, int timeout_ms)
{
    int r = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        r = fn(arg);
        if (r)
            return r;
        usleep(50000);
    }
    return r;
}

uint64_t tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
