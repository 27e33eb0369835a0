/* skyprof: the local launcher behind `make run`. Starts the broker and the
 * five stages with one configuration file, restarts a stage that dies
 * (exponential backoff, logged), and stops everything on Ctrl-C/SIGTERM.
 *
 * It writes <runtime_dir>/launcher.status (one "name pid restarts" line
 * per stage) whenever a stage starts, so tools and tests can see restarts.
 * The launcher itself uses no ZeroMQ: it only forks and execs. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define STABLE_AFTER_MS 60000
#define STOP_TIMEOUT_MS 5000

typedef struct {
    const char *name;     /* stage name, also the binary suffix */
    const char *binary;
    pid_t pid;
    unsigned restarts;
    uint64_t started_ms;
    uint64_t next_start_ms;
    uint64_t backoff_ms;
    int enabled;
} child_t;

static volatile sig_atomic_t s_stop_signal;

static void s_on_signal(int sig) { s_stop_signal = sig; }
static void s_on_child(int sig) { (void)sig; }

static child_t s_children[] = {
    {.name = "broker", .binary = "skyprof-broker"},
    {.name = "collector", .binary = "skyprof-collector"},
    {.name = "symbolizer", .binary = "skyprof-symbolizer"},
    {.name = "aggregator", .binary = "skyprof-aggregator"},
    {.name = "policy", .binary = "skyprof-policy"},
    {.name = "uplink", .binary = "skyprof-uplink"},
};
#define NCHILDREN (sizeof s_children / sizeof s_children[0])

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: skyprof [--config FILE] [--bin-dir DIR] [-v] "
            "[--without STAGE]...\n\n"
            "Starts the skyprof pipeline on this host: broker, collector, "
            "symbolizer,\naggregator, policy engine and, when core.backend.addr "
            "names an OAP, the\nuplink, restarting any that dies.\n\n"
            "  -c, --config FILE    configuration passed to every stage\n"
            "  -b, --bin-dir DIR    where the skyprof-* binaries are "
            "(default: beside this one)\n"
            "  -w, --without STAGE  do not start STAGE (repeatable)\n"
            "  -v, --verbose        pass -v to every stage\n"
            "  -h, --help           this text\n");
}

static void s_write_status(const char *runtime_dir)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 48];
    snprintf(path, sizeof path, "%s/launcher.status", runtime_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    for (size_t i = 0; i < NCHILDREN; i++)
        if (s_children[i].enabled)
            fprintf(f, "%s %d %u\n", s_children[i].name, (int)s_children[i].pid,
                    s_children[i].restarts);
    fclose(f);
    rename(tmp, path);
}

static pid_t s_spawn(const child_t *c, const char *bin_dir,
                     const char *config, int verbose)
{
    char exe[PATH_MAX + 64];
    snprintf(exe, sizeof exe, "%s/%s", bin_dir, c->binary);
    char *argv[8];
    int argc = 0;
    argv[argc++] = exe;
    if (config) {
        argv[argc++] = "--config";
        argv[argc++] = (char *)config;
    }
    if (verbose)
        argv[argc++] = "-v";
    argv[argc] = NULL;
    pid_t launcher = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork for %s: %s", c->name, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        /* Own process group: a Ctrl-C on the terminal reaches only the
         * launcher, which then stops the stages in order. */
        setpgid(0, 0);
        /* If the launcher itself is killed outright, its stages stop
         * too instead of running on unsupervised. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != launcher)
            _exit(0);
        execv(exe, argv);
        fprintf(stderr, "skyprof: exec %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    return pid;
}

static void s_describe_exit(int status, char *out, size_t size)
{
    if (WIFEXITED(status))
        snprintf(out, size, "exit code %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, size, "signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, size, "status %d", status);
}

static void s_stop_all(void)
{
    /* Reverse order: stages before the broker they talk through. */
    for (size_t i = NCHILDREN; i-- > 0;)
        if (s_children[i].pid > 0)
            kill(s_children[i].pid, SIGTERM);
    uint64_t deadline = now_mono_ms() + STOP_TIMEOUT_MS;
    for (;;) {
        int alive = 0;
        for (size_t i = 0; i < NCHILDREN; i++) {
            child_t *c = &s_children[i];
            if (c->pid <= 0)
                continue;
            int status;
            pid_t r = waitpid(c->pid, &status, WNOHANG);
            if (r == c->pid || (r < 0 && errno == ECHILD)) {
                char how[64];
                s_describe_exit(status, how, sizeof how);
                log_info("%s stopped (%s)", c->name, how);
                c->pid = 0;
            } else {
                alive++;
            }
        }
        if (!alive)
            return;
        if (now_mono_ms() > deadline) {
            for (size_t i = 0; i < NCHILDREN; i++)
                if (s_children[i].pid > 0) {
                    log_warn("%s did not stop in %d ms: killing it",
                             s_children[i].name, STOP_TIMEOUT_MS);
                    kill(s_children[i].pid, SIGKILL);
                    waitpid(s_children[i].pid, NULL, 0);
                    s_children[i].pid = 0;
                }
            return;
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"bin-dir", required_argument, NULL, 'b'},
        {"without", required_argument, NULL, 'w'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_file = NULL;
    char bin_dir[PATH_MAX] = "";
    int verbose = 0, c;
    for (size_t i = 0; i < NCHILDREN; i++)
        s_children[i].enabled = 1;
    while ((c = getopt_long(argc, argv, "c:b:w:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_file = optarg; break;
        case 'b': snprintf(bin_dir, sizeof bin_dir, "%s", optarg); break;
        case 'w': {
            int found = 0;
            for (size_t i = 0; i < NCHILDREN; i++)
                if (strcmp(s_children[i].name, optarg) == 0) {
                    s_children[i].enabled = 0;
                    found = 1;
                }
            if (!found) {
                fprintf(stderr, "skyprof: unknown stage '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'v': verbose = 1; break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    log_init("launcher", verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);

    /* Validate the configuration here too, so a bad file is one clear
     * error instead of six stages failing in a restart loop. */
    char err[512];
    config_t *cfg = config_load(config_file, err, sizeof err);
    if (!cfg) {
        log_error("%s", err);
        return 2;
    }
    char runtime_dir[PATH_MAX];
    snprintf(runtime_dir, sizeof runtime_dir, "%s",
             config_str(cfg, "runtime_dir"));
    char http_addr[256];
    snprintf(http_addr, sizeof http_addr, "%s",
             config_str(cfg, "aggregator.http_addr"));
    int local_mode = config_str(cfg, "core.backend.addr")[0] == '\0';
    config_destroy(&cfg);
    if (mkdir(runtime_dir, 0700) != 0 && errno != EEXIST) {
        log_error("cannot create runtime directory %s: %s", runtime_dir,
                  strerror(errno));
        return 1;
    }

    if (!bin_dir[0]) {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
            self[n] = '\0';
            char *slash = strrchr(self, '/');
            if (slash)
                *slash = '\0';
            snprintf(bin_dir, sizeof bin_dir, "%s", self);
        }
    }
    char abs_config[PATH_MAX];
    if (config_file && realpath(config_file, abs_config))
        config_file = abs_config;
    if (geteuid() != 0)
        log_warn("not running as root: the collector needs root or "
                 "CAP_BPF+CAP_PERFMON+CAP_SYS_PTRACE to load BPF programs");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = s_on_child;
    sigaction(SIGCHLD, &sa, NULL);

    /* The uplink only talks to an OAP: in local mode it would sit idle,
     * costing a process, its memory and its wakeups for nothing. */
    for (size_t i = 0; local_mode && i < NCHILDREN; i++)
        if (strcmp(s_children[i].name, "uplink") == 0 && s_children[i].enabled) {
            s_children[i].enabled = 0;
            log_info("local mode (no core.backend.addr): the uplink is not "
                     "started");
        }
    log_info("starting skyprof (%s mode) from %s", local_mode ? "local" : "OAP",
             bin_dir);
    log_info("flame graphs: http://%s/  (Ctrl-C stops everything)", http_addr);

    while (!s_stop_signal) {
        uint64_t now = now_mono_ms();
        int changed = 0;
        for (size_t i = 0; i < NCHILDREN; i++) {
            child_t *ch = &s_children[i];
            if (!ch->enabled)
                continue;
            if (ch->pid > 0) {
                int status;
                pid_t r = waitpid(ch->pid, &status, WNOHANG);
                if (r != ch->pid)
                    continue;
                char how[64];
                s_describe_exit(status, how, sizeof how);
                uint64_t up = now - ch->started_ms;
                if (up >= STABLE_AFTER_MS)
                    ch->backoff_ms = 0;
                ch->backoff_ms = ch->backoff_ms ? ch->backoff_ms * 2 : BACKOFF_MIN_MS;
                if (ch->backoff_ms > BACKOFF_MAX_MS)
                    ch->backoff_ms = BACKOFF_MAX_MS;
                ch->next_start_ms = now + ch->backoff_ms;
                ch->pid = 0;
                log_warn("%s died after %llu ms (%s); restarting in %llu ms",
                         ch->name, (unsigned long long)up, how,
                         (unsigned long long)ch->backoff_ms);
                changed = 1;
                continue;
            }
            if (now < ch->next_start_ms)
                continue;
            pid_t pid = s_spawn(ch, bin_dir, config_file, verbose);
            if (pid > 0) {
                if (ch->started_ms)
                    ch->restarts++;
                ch->pid = pid;
                ch->started_ms = now;
                log_info("%s started (pid %d%s)", ch->name, (int)pid,
                         ch->restarts ? ", restart" : "");
                changed = 1;
            } else {
                ch->next_start_ms = now + BACKOFF_MAX_MS;
            }
        }
        if (changed)
            s_write_status(runtime_dir);
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    log_info("received signal %d: stopping all stages", (int)s_stop_signal);
    s_stop_all();
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/launcher.status", runtime_dir);
    unlink(path);
    return 0;
}
