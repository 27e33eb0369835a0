/* TLS library uprobes per traced process; see netssl.h. */
#include "collector/netssl.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

#define NETSSL_LINKS 8   /* 4 entries, 4 returns */

/* One library of one process, attached. */
typedef struct lib {
    uint32_t pid;
    uint64_t dev, ino;
    struct bpf_link *links[NETSSL_LINKS];
    struct lib *next;
} lib_t;

struct netssl {
    netssl_progs_t progs;
    char proc_root[256];
    lib_t *libs;
    netssl_stats_t st;
    log_ratelimit_t rl;
};

netssl_t *netssl_new(const netssl_progs_t *progs, const char *proc_root)
{
    netssl_t *self = calloc(1, sizeof(*self));

    if (!self)
        return NULL;
    self->progs = *progs;
    snprintf(self->proc_root, sizeof(self->proc_root), "%s",
             proc_root ? proc_root : "/proc");
    self->rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);
    return self;
}

static void s_free_lib(lib_t *l)
{
    for (int i = 0; i < NETSSL_LINKS; i++)
        bpf_link__destroy(l->links[i]);
    free(l);
}

void netssl_destroy(netssl_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    netssl_t *self = *self_p;
    while (self->libs) {
        lib_t *next = self->libs->next;
        s_free_lib(self->libs);
        self->libs = next;
    }
    free(self);
    *self_p = NULL;
}

static int s_is_libssl(const char *path)
{
    const char *base = strrchr(path, '/');

    base = base ? base + 1 : path;
    return !strncmp(base, "libssl.so.3", 11) ||
           !strncmp(base, "libssl.so.1.1", 13);
}

static int s_known(const netssl_t *self, uint32_t pid, uint64_t dev,
                   uint64_t ino)
{
    for (const lib_t *l = self->libs; l; l = l->next)
        if (l->pid == pid && l->dev == dev && l->ino == ino)
            return 1;
    return 0;
}

/* The eight probes of one library file for pid. */
static int s_attach(netssl_t *self, uint32_t pid, const char *file, lib_t *l)
{
    const struct {
        struct bpf_program *prog;
        const char *func;
        int ret;
    } at[NETSSL_LINKS] = {
        { self->progs.write, "SSL_write", 0 },
        { self->progs.ret, "SSL_write", 1 },
        { self->progs.read, "SSL_read", 0 },
        { self->progs.ret, "SSL_read", 1 },
        { self->progs.write_ex, "SSL_write_ex", 0 },
        { self->progs.ret, "SSL_write_ex", 1 },
        { self->progs.read_ex, "SSL_read_ex", 0 },
        { self->progs.ret, "SSL_read_ex", 1 },
    };

    for (int i = 0; i < NETSSL_LINKS; i++) {
        LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = at[i].func,
                    .retprobe = at[i].ret != 0);
        l->links[i] = bpf_program__attach_uprobe_opts(at[i].prog, (pid_t)pid,
                                                      file, 0, &opts);
        /* libssl 1.1.0 has no _ex functions: the plain ones suffice. */
        if (!l->links[i] && i < 4)
            return -1;
    }
    return 0;
}

int netssl_scan(netssl_t *self, uint32_t pid)
{
    char path[512], line[1024], file[1400];
    int attached = 0, rc = 0;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%" PRIu32 "/maps", self->proc_root, pid);
    fp = fopen(path, "r");
    if (!fp)
        return 0;   /* gone: nothing to attach */
    while (fgets(line, sizeof(line), fp)) {
        char lib[1024] = "";
        struct stat sb;
        if (sscanf(line, "%*s %*s %*s %*s %*s %1023[^\n]", lib) != 1 ||
            lib[0] != '/' || !s_is_libssl(lib) || strstr(lib, " (deleted)"))
            continue;
        /* Through the process's root: the library of its container. */
        snprintf(file, sizeof(file), "%s/%" PRIu32 "/root%s", self->proc_root,
                 pid, lib);
        if (stat(file, &sb) != 0 ||
            s_known(self, pid, (uint64_t)sb.st_dev, (uint64_t)sb.st_ino))
            continue;
        lib_t *l = calloc(1, sizeof(*l));
        if (!l) {
            rc = -1;
            break;
        }
        l->pid = pid;
        l->dev = (uint64_t)sb.st_dev;
        l->ino = (uint64_t)sb.st_ino;
        if (s_attach(self, pid, file, l) < 0) {
            self->st.attach_errors++;
            if (log_ratelimit_allow(&self->rl))
                log_warn("TLS capture: cannot attach to %s of %" PRIu32
                         ": %s", lib, pid, strerror(errno));
            s_free_lib(l);
            rc = -1;
            continue;
        }
        l->next = self->libs;
        self->libs = l;
        self->st.libraries++;
        attached++;
        log_info("TLS capture: %s of process %" PRIu32, lib, pid);
    }
    fclose(fp);
    return rc < 0 && !attached ? -1 : attached;
}

void netssl_forget(netssl_t *self, uint32_t pid)
{
    lib_t **pp = &self->libs;

    while (*pp) {
        lib_t *l = *pp;
        if (l->pid == pid) {
            *pp = l->next;
            s_free_lib(l);
            self->st.libraries--;
        } else {
            pp = &l->next;
        }
    }
}

void netssl_stats(const netssl_t *self, netssl_stats_t *out)
{
    *out = self->st;
}
