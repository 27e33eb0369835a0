/* Process finders and entity templates: see finder.h. */
#include "finder.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FINDER_MAX          64      /* finders in one configuration */
#define FINDER_MAX_NAME     1024    /* bytes of one rendered name */
#define FINDER_MAX_LABELS   32

typedef struct {
    regex_t regex;
    bool compiled;              /* regex needs regfree */
    char *layer;
    char *service;
    char *instance;
    char *process;
    char **labels;
    size_t nlabels;
} finder_t;

struct finder_set {
    finder_t items[FINDER_MAX];
    size_t count;
};

/* ------------------------------------------------------- growable text */
typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} s_text_t;

static void
s_text_add(s_text_t *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > FINDER_MAX_NAME) {
        n = FINDER_MAX_NAME - 1 > t->len ? FINDER_MAX_NAME - 1 - t->len : 0;
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *grown = realloc(t->data, cap);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->data = grown;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

static const char *
s_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

void
finder_host_ipv4(const char *ifname, char *out, size_t size)
{
    struct ifaddrs *all = NULL;
    snprintf(out, size, "127.0.0.1");
    if (getifaddrs(&all) != 0)
        return;
    for (struct ifaddrs *ifa = all; ifa; ifa = ifa->ifa_next) {
        if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != AF_INET)
            continue;
        if (ifname && *ifname) {
            if (strcmp(ifa->ifa_name, ifname) != 0)
                continue;
        } else if (ifa->ifa_flags & IFF_LOOPBACK) {
            continue;
        }
        const struct sockaddr_in *sin = (const void *)ifa->ifa_addr;
        inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)size);
        break;
    }
    freeifaddrs(all);
}

/* Expands one placeholder body such as `.Process.Pid` or
 * `.Rover.HostIPV4 "eth0"`; -1 when it is unknown. */
static int
s_expand(const char *body, size_t len, const finder_proc_t *p,
         const finder_env_t *env, s_text_t *out)
{
    char expr[256];
    if (len >= sizeof expr)
        return -1;
    memcpy(expr, body, len);
    expr[len] = '\0';
    char *name = expr;
    while (*name == ' ')
        name++;
    char *arg = name + strcspn(name, " ");
    if (*arg)
        *arg++ = '\0';
    while (*arg == ' ')
        arg++;
    char *end = arg + strlen(arg);
    while (end > arg && end[-1] == ' ')
        *--end = '\0';
    if (*arg == '"' && end - arg >= 2 && end[-1] == '"') {
        end[-1] = '\0';
        arg++;
    } else if (*arg) {
        return -1;
    }

    char num[32], ip[INET_ADDRSTRLEN];
    const char *value = NULL;
    if (!strcmp(name, ".Process.ExeName")) {
        value = s_basename(*p->exe ? p->exe : p->comm);
    } else if (!strcmp(name, ".Process.ExeFilePath")) {
        value = p->exe;
    } else if (!strcmp(name, ".Process.Pid")) {
        snprintf(num, sizeof num, "%u", p->pid);
        value = num;
    } else if (!strcmp(name, ".Process.CommandLine")) {
        value = p->cmdline;
    } else if (!strcmp(name, ".Process.Comm")) {
        value = p->comm;
    } else if (!strcmp(name, ".Rover.HostIPV4") ||
               !strcmp(name, ".Rover.HostIP")) {
        if (*arg) {
            finder_host_ipv4(arg, ip, sizeof ip);
            value = ip;
        } else {
            value = env->host_ip;
        }
    } else if (!strcmp(name, ".Rover.HostName")) {
        value = env->host_name;
    } else if (!strcmp(name, ".Rover.InstanceID")) {
        value = env->agent_id;
    } else {
        return -1;
    }
    if (*arg && strcmp(name, ".Rover.HostIPV4") && strcmp(name, ".Rover.HostIP"))
        return -1;
    s_text_add(out, value ? value : "", strlen(value ? value : ""));
    return 0;
}

char *
finder_render(const char *tmpl, const finder_proc_t *p,
              const finder_env_t *env, char *err, size_t errlen)
{
    s_text_t out = { 0 };
    const char *cur = tmpl;
    s_text_add(&out, "", 0);
    while (*cur) {
        const char *open = strstr(cur, "{{");
        if (!open) {
            s_text_add(&out, cur, strlen(cur));
            break;
        }
        s_text_add(&out, cur, (size_t)(open - cur));
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            snprintf(err, errlen, "unclosed '{{' in template '%s'", tmpl);
            goto fail;
        }
        if (s_expand(open + 2, (size_t)(close - open - 2), p, env, &out) !=
            0) {
            snprintf(err, errlen, "unknown placeholder '%.*s' in template "
                     "'%s'", (int)(close - open + 2), open, tmpl);
            goto fail;
        }
        cur = close + 2;
    }
    if (out.failed) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return out.data;
fail:
    free(out.data);
    return NULL;
}

/* ------------------------------------------------------------- finders */
static void
s_finder_clear(finder_t *f)
{
    if (f->compiled)
        regfree(&f->regex);
    free(f->layer);
    free(f->service);
    free(f->instance);
    free(f->process);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->labels);
    memset(f, 0, sizeof *f);
}

finder_set_t *
finder_set_new(void)
{
    return calloc(1, sizeof(finder_set_t));
}

void
finder_set_destroy(finder_set_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    finder_set_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        s_finder_clear(&self->items[i]);
    free(self);
    *self_p = NULL;
}

size_t
finder_set_count(const finder_set_t *self)
{
    return self ? self->count : 0;
}

static bool
s_layer_ok(const char *layer)
{
    if (!*layer)
        return false;
    for (const char *c = layer; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_'))
            return false;
    return true;
}

static int
s_split_labels(finder_t *f, const char *labels)
{
    const char *cur = labels;
    while (cur && *cur) {
        const char *comma = strchr(cur, ',');
        size_t len = comma ? (size_t)(comma - cur) : strlen(cur);
        while (len && *cur == ' ') {
            cur++;
            len--;
        }
        while (len && cur[len - 1] == ' ')
            len--;
        if (len) {
            if (f->nlabels == FINDER_MAX_LABELS)
                return -1;
            char **grown = realloc(f->labels,
                                   (f->nlabels + 1) * sizeof *f->labels);
            if (!grown)
                return -1;
            f->labels = grown;
            if (!(f->labels[f->nlabels] = strndup(cur, len)))
                return -1;
            f->nlabels++;
        }
        cur = comma ? comma + 1 : NULL;
    }
    return 0;
}

static const char *
s_or(const char *s, const char *fallback)
{
    return s && *s ? s : fallback;
}

int
finder_set_add(finder_set_t *self, const finder_spec_t *spec, char *err,
               size_t errlen)
{
    int rc = -1;
    finder_t f;
    memset(&f, 0, sizeof f);
    if (self->count == FINDER_MAX) {
        snprintf(err, errlen, "more than %d process finders", FINDER_MAX);
        goto cleanup;
    }
    if (!spec->match_cmd_regex || !*spec->match_cmd_regex) {
        snprintf(err, errlen, "match_cmd_regex is empty");
        goto cleanup;
    }
    int rerr = regcomp(&f.regex, spec->match_cmd_regex,
                       REG_EXTENDED | REG_NOSUB);
    if (rerr != 0) {
        char why[128];
        regerror(rerr, &f.regex, why, sizeof why);
        snprintf(err, errlen, "match_cmd_regex '%s': %s",
                 spec->match_cmd_regex, why);
        goto cleanup;
    }
    f.compiled = true;
    const char *layer = s_or(spec->layer, "OS_LINUX");
    if (!s_layer_ok(layer)) {
        snprintf(err, errlen, "layer '%s' is not a SkyWalking layer name "
                 "(e.g. OS_LINUX)", layer);
        goto cleanup;
    }
    f.layer = strdup(layer);
    f.service = strdup(s_or(spec->service_name, "{{.Process.ExeName}}"));
    f.instance = strdup(s_or(spec->instance_name, "{{.Rover.HostIPV4}}"));
    f.process = strdup(s_or(spec->process_name, "{{.Process.ExeName}}"));
    if (!f.layer || !f.service || !f.instance || !f.process ||
        s_split_labels(&f, spec->labels) != 0) {
        snprintf(err, errlen, "out of memory or too many labels");
        goto cleanup;
    }
    /* Render once against a dummy process so a typo in a placeholder is a
     * start-up error, not a silent empty name later. */
    finder_proc_t probe = { 1, "/bin/probe", "probe", "probe" };
    finder_env_t env = { "agent", "host", "127.0.0.1" };
    const char *tmpls[] = { f.service, f.instance, f.process };
    for (size_t i = 0; i < 3; i++) {
        char *r = finder_render(tmpls[i], &probe, &env, err, errlen);
        if (!r)
            goto cleanup;
        free(r);
    }
    self->items[self->count++] = f;
    memset(&f, 0, sizeof f);       /* ownership moved to the set */
    rc = 0;
cleanup:
    s_finder_clear(&f);
    return rc;
}

void
proc_entity_clear(proc_entity_t *entity)
{
    if (!entity)
        return;
    free(entity->layer);
    free(entity->service);
    free(entity->instance);
    free(entity->process);
    for (size_t i = 0; i < entity->nlabels; i++)
        free(entity->labels[i]);
    free(entity->labels);
    memset(entity, 0, sizeof *entity);
}

static int
s_streq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

int
proc_entity_equal(const proc_entity_t *a, const proc_entity_t *b)
{
    if (!s_streq(a->layer, b->layer) || !s_streq(a->service, b->service) ||
        !s_streq(a->instance, b->instance) ||
        !s_streq(a->process, b->process) || a->nlabels != b->nlabels)
        return 0;
    for (size_t i = 0; i < a->nlabels; i++)
        if (!s_streq(a->labels[i], b->labels[i]))
            return 0;
    return 1;
}

int
finder_set_match(const finder_set_t *self, const finder_proc_t *p,
                 const finder_env_t *env, proc_entity_t *entity)
{
    memset(entity, 0, sizeof *entity);
    for (size_t i = 0; self && i < self->count; i++) {
        const finder_t *f = &self->items[i];
        if (regexec(&f->regex, p->cmdline, 0, NULL, 0) != 0)
            continue;
        char err[256];
        entity->layer = strdup(f->layer);
        entity->service = finder_render(f->service, p, env, err, sizeof err);
        entity->instance = finder_render(f->instance, p, env, err,
                                         sizeof err);
        entity->process = finder_render(f->process, p, env, err, sizeof err);
        if (f->nlabels &&
            (entity->labels = calloc(f->nlabels, sizeof(char *)))) {
            for (size_t l = 0; l < f->nlabels; l++) {
                if (!(entity->labels[l] = strdup(f->labels[l])))
                    break;
                entity->nlabels++;
            }
        }
        if (!entity->layer || !entity->service || !entity->instance ||
            !entity->process || entity->nlabels != f->nlabels) {
            proc_entity_clear(entity);
            return -1;
        }
        return (int)i;
    }
    return -1;
}
