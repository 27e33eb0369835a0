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
    char *filters[FINDER_MAX_FILTERS];
    size_t nfilters;
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

/* ------------------------------------------------ template expressions
 * What sits between {{ and }} (and a whole analyzer filter) is a small
 * subset of Go templates: a placeholder with its quoted arguments
 * (`.Pod.LabelValue "app" "none"`), a quoted string, `eq A B`, `ne A B`,
 * `not A`, `and A B`, `or A B`, and parentheses. Booleans are the strings
 * "true" and "false"; a value is true unless empty or "false". */
typedef struct {
    const char *cur, *end;
    const finder_proc_t *p;
    const finder_env_t *env;
    char *err;
    size_t errlen;
} s_expr_t;

typedef struct {
    const char *start;
    size_t len;
    char kind;                 /* 'w' word, 's' string, '(' , ')', 0 end */
} s_token_t;

static s_token_t
s_peek(const s_expr_t *x)
{
    const char *c = x->cur;
    while (c < x->end && (*c == ' ' || *c == '\t'))
        c++;
    s_token_t t = { c, 0, 0 };
    if (c >= x->end)
        return t;
    if (*c == '(' || *c == ')') {
        t.kind = *c;
        t.len = 1;
    } else if (*c == '"') {
        const char *q = c + 1;
        while (q < x->end && *q != '"')
            q += (*q == '\\' && q + 1 < x->end) ? 2 : 1;
        t.kind = q < x->end ? 's' : '?';
        t.len = (size_t)(q - c) + (q < x->end);
    } else {
        const char *q = c;
        while (q < x->end && *q != ' ' && *q != '\t' && *q != '(' &&
               *q != ')' && *q != '"')
            q++;
        t.kind = 'w';
        t.len = (size_t)(q - c);
    }
    return t;
}

static void
s_take(s_expr_t *x, s_token_t t)
{
    x->cur = t.start + t.len;
}

static bool
s_word_is(s_token_t t, const char *w)
{
    return t.kind == 'w' && t.len == strlen(w) && !memcmp(t.start, w, t.len);
}

/* The unescaped text of a string token into out (bounded). */
static void
s_string_value(s_token_t t, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 1; i + 1 < t.len && n + 1 < size; i++) {
        if (t.start[i] == '\\' && i + 2 < t.len)
            i++;
        out[n++] = t.start[i];
    }
    out[n] = '\0';
}

static bool
s_truthy(const char *v)
{
    return v && *v && strcmp(v, "false") != 0;
}

static void
s_text_bool(s_text_t *out, bool v)
{
    const char *s = v ? "true" : "false";
    s_text_add(out, s, strlen(s));
}

static int s_eval(s_expr_t *x, s_text_t *out);

static int
s_fail_at(s_expr_t *x, s_token_t t, const char *why)
{
    snprintf(x->err, x->errlen, "%s '%.*s'", why,
             (int)(t.len ? t.len : 1), t.kind ? t.start : "?");
    return -1;
}

/* A pod placeholder (name without ".Pod."/".Container." checked by the
 * caller); -1 when unknown. */
static int
s_pod_value(const finder_pod_t *fp, const char *name, char args[][256],
            int nargs, s_text_t *out)
{
    const k8s_pod_t *pod = fp->pod;
    const char *v = NULL;
    if (!strcmp(name, ".Pod.Name") && nargs == 0)
        v = pod->name;
    else if (!strcmp(name, ".Pod.Namespace") && nargs == 0)
        v = pod->ns;
    else if (!strcmp(name, ".Pod.ServiceName") && nargs == 0)
        v = fp->service;
    else if (!strcmp(name, ".Pod.HasServiceName") && nargs == 0)
        v = fp->service && *fp->service ? "true" : "false";
    else if (!strcmp(name, ".Pod.IP") && nargs == 0)
        v = pod->ip;
    else if ((!strcmp(name, ".Pod.ContainerName") ||
              !strcmp(name, ".Container.Name")) && nargs == 0)
        v = fp->container < pod->ncontainers
                ? pod->containers[fp->container].name : "";
    else if (!strcmp(name, ".Pod.HasContainer") && nargs == 1) {
        v = "false";
        for (size_t i = 0; i < pod->ncontainers; i++)
            if (!strcmp(pod->containers[i].name, args[0]))
                v = "true";
    } else if (!strcmp(name, ".Pod.LabelValue") && nargs >= 1) {
        /* The first of the comma-separated keys the pod has. */
        v = nargs == 2 ? args[1] : "";
        char *save = NULL;
        for (char *k = strtok_r(args[0], ",", &save); k;
             k = strtok_r(NULL, ",", &save)) {
            const char *l = k8s_pod_label(pod, k);
            if (l) {
                v = l;
                break;
            }
        }
    } else {
        return -1;
    }
    s_text_add(out, v ? v : "", strlen(v ? v : ""));
    return 0;
}

/* A placeholder and its quoted arguments. */
static int
s_placeholder(s_expr_t *x, s_token_t t, s_text_t *out)
{
    char name[128], args[2][256];
    int nargs = 0;
    if (t.len >= sizeof name)
        return s_fail_at(x, t, "unknown placeholder");
    memcpy(name, t.start, t.len);
    name[t.len] = '\0';
    int max_args = !strcmp(name, ".Pod.LabelValue") ? 2
                   : (!strcmp(name, ".Pod.HasContainer") ||
                      !strcmp(name, ".Rover.HostIPV4") ||
                      !strcmp(name, ".Rover.HostIP")) ? 1 : 0;
    s_token_t a;
    while (nargs < max_args && (a = s_peek(x)).kind == 's') {
        s_take(x, a);
        s_string_value(a, args[nargs++], sizeof args[0]);
    }
    const finder_proc_t *p = x->p;
    const finder_env_t *env = x->env;
    char num[32], ip[INET_ADDRSTRLEN];
    const char *value = NULL;
    if (!strncmp(name, ".Pod.", 5) || !strncmp(name, ".Container.", 11)) {
        if (!p->pod || s_pod_value(p->pod, name, args, nargs, out) != 0)
            return s_fail_at(x, t, p->pod ? "unknown placeholder"
                             : "pod placeholder outside Kubernetes discovery");
        return 0;
    }
    if (nargs && strcmp(name, ".Rover.HostIPV4") && strcmp(name, ".Rover.HostIP"))
        return s_fail_at(x, t, "unexpected argument to");
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
        if (nargs) {
            finder_host_ipv4(args[0], ip, sizeof ip);
            value = ip;
        } else {
            value = env->host_ip;
        }
    } else if (!strcmp(name, ".Rover.HostName")) {
        value = env->host_name;
    } else if (!strcmp(name, ".Rover.InstanceID")) {
        value = env->agent_id;
    } else {
        return s_fail_at(x, t, "unknown placeholder");
    }
    s_text_add(out, value ? value : "", strlen(value ? value : ""));
    return 0;
}

/* Evaluates one operand into a fresh text (for the operators). */
static int
s_eval_operand(s_expr_t *x, s_text_t *v)
{
    memset(v, 0, sizeof *v);
    s_text_add(v, "", 0);
    int rc = s_eval(x, v);
    if (rc == 0 && v->failed) {
        snprintf(x->err, x->errlen, "out of memory");
        rc = -1;
    }
    return rc;
}

static int
s_eval(s_expr_t *x, s_text_t *out)
{
    s_token_t t = s_peek(x);
    s_take(x, t);
    switch (t.kind) {
    case 0:
        snprintf(x->err, x->errlen, "missing operand");
        return -1;
    case 's': {
        char v[FINDER_MAX_NAME];
        s_string_value(t, v, sizeof v);
        s_text_add(out, v, strlen(v));
        return 0;
    }
    case '(': {
        if (s_eval(x, out) != 0)
            return -1;
        s_token_t close = s_peek(x);
        if (close.kind != ')')
            return s_fail_at(x, close, "expected ')' at");
        s_take(x, close);
        return 0;
    }
    case 'w':
        break;
    default:
        return s_fail_at(x, t, "unexpected");
    }
    if (t.start[0] == '.')
        return s_placeholder(x, t, out);
    int arity = s_word_is(t, "not") ? 1
                : (s_word_is(t, "eq") || s_word_is(t, "ne") ||
                   s_word_is(t, "and") || s_word_is(t, "or")) ? 2 : 0;
    if (!arity)
        return s_fail_at(x, t, "unknown function");
    s_text_t a, b = { 0 };
    int rc = -1;
    if (s_eval_operand(x, &a) != 0 ||
        (arity == 2 && s_eval_operand(x, &b) != 0))
        goto cleanup;
    if (s_word_is(t, "not"))
        s_text_bool(out, !s_truthy(a.data));
    else if (s_word_is(t, "eq"))
        s_text_bool(out, !strcmp(a.data, b.data));
    else if (s_word_is(t, "ne"))
        s_text_bool(out, strcmp(a.data, b.data) != 0);
    else if (s_word_is(t, "and"))
        s_text_bool(out, s_truthy(a.data) && s_truthy(b.data));
    else
        s_text_bool(out, s_truthy(a.data) || s_truthy(b.data));
    rc = 0;
cleanup:
    free(a.data);
    free(b.data);
    return rc;
}

/* One whole expression (a placeholder body or a filter); -1 with the
 * reason in err. */
static int
s_expand(const char *body, size_t len, const finder_proc_t *p,
         const finder_env_t *env, s_text_t *out, char *err, size_t errlen)
{
    s_expr_t x = { body, body + len, p, env, err, errlen };
    if (s_eval(&x, out) != 0)
        return -1;
    s_token_t rest = s_peek(&x);
    if (rest.kind)
        return s_fail_at(&x, rest, "unexpected");
    return 0;
}

int
finder_eval(const char *expr, const finder_proc_t *p,
            const finder_env_t *env, bool *result, char *err, size_t errlen)
{
    s_text_t out = { 0 };
    s_text_add(&out, "", 0);
    int rc = s_expand(expr, strlen(expr), p, env, &out, err, errlen);
    if (rc == 0 && out.failed) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (rc == 0)
        *result = s_truthy(out.data);
    free(out.data);
    return rc;
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
        char why[200];
        if (s_expand(open + 2, (size_t)(close - open - 2), p, env, &out, why,
                     sizeof why) != 0) {
            snprintf(err, errlen, "%s in template '%s'", why, tmpl);
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
    for (size_t i = 0; i < f->nfilters; i++)
        free(f->filters[i]);
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

/* A made-up process in a made-up pod: templates and filters are checked
 * against it at start. */
static char *s_probe_keys[] = { "app" }, *s_probe_values[] = { "probe" };
static k8s_container_t s_probe_container = { "probe", "" };
static const k8s_pod_t s_probe_k8s = {
    .uid = "uid", .ns = "ns", .name = "pod", .ip = "10.0.0.1",
    .host_ip = "10.0.0.2", .nlabels = 1, .label_keys = s_probe_keys,
    .label_values = s_probe_values, .ncontainers = 1,
    .containers = &s_probe_container };
static const finder_pod_t s_probe_pod = { &s_probe_k8s, 0, "svc" };
static const finder_proc_t s_probe = { 1, "/bin/probe", "probe", "probe",
                                       NULL };
static const finder_env_t s_probe_env = { "agent", "host", "127.0.0.1" };

bool
finder_template_ok(const char *tmpl, char *err, size_t errlen)
{
    finder_proc_t probe = s_probe;
    probe.pod = &s_probe_pod;
    char *r = finder_render(tmpl, &probe, &s_probe_env, err, errlen);
    free(r);
    return r != NULL;
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
    bool has_regex = spec->match_cmd_regex && *spec->match_cmd_regex;
    if (!has_regex && !spec->nfilters) {
        snprintf(err, errlen, "match_cmd_regex is empty");
        goto cleanup;
    }
    if (spec->nfilters > FINDER_MAX_FILTERS) {
        snprintf(err, errlen, "more than %d filters", FINDER_MAX_FILTERS);
        goto cleanup;
    }
    int rerr = has_regex ? regcomp(&f.regex, spec->match_cmd_regex,
                                   REG_EXTENDED | REG_NOSUB) : 0;
    if (rerr != 0) {
        char why[128];
        regerror(rerr, &f.regex, why, sizeof why);
        snprintf(err, errlen, "match_cmd_regex '%s': %s",
                 spec->match_cmd_regex, why);
        goto cleanup;
    }
    f.compiled = has_regex;
    for (size_t i = 0; i < spec->nfilters; i++) {
        if (!(f.filters[i] = strdup(spec->filters[i] ? spec->filters[i]
                                                     : ""))) {
            snprintf(err, errlen, "out of memory");
            goto cleanup;
        }
        f.nfilters = i + 1;
    }
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
    /* Render once against a dummy process (in a dummy pod when filters
     * make this an analyzer) so a typo in a placeholder is a start-up
     * error, not a silent empty name later. */
    finder_proc_t probe = s_probe;
    probe.pod = f.nfilters ? &s_probe_pod : NULL;
    finder_env_t env = s_probe_env;
    for (size_t i = 0; i < f.nfilters; i++) {
        bool ignored;
        char why[200];
        if (finder_eval(f.filters[i], &probe, &env, &ignored, why,
                        sizeof why) != 0) {
            snprintf(err, errlen, "filters[%zu] '%s': %s", i, f.filters[i],
                     why);
            goto cleanup;
        }
    }
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

/* Every filter true; an analyzer never matches a host process. */
static bool
s_filters_pass(const finder_t *f, const finder_proc_t *p,
               const finder_env_t *env)
{
    if (!p->pod)
        return false;
    for (size_t i = 0; i < f->nfilters; i++) {
        bool pass = false;
        char err[200];
        if (finder_eval(f->filters[i], p, env, &pass, err, sizeof err) != 0 ||
            !pass)
            return false;
    }
    return true;
}

int
finder_set_match(const finder_set_t *self, const finder_proc_t *p,
                 const finder_env_t *env, proc_entity_t *entity)
{
    memset(entity, 0, sizeof *entity);
    for (size_t i = 0; self && i < self->count; i++) {
        const finder_t *f = &self->items[i];
        if (f->compiled && regexec(&f->regex, p->cmdline, 0, NULL, 0) != 0)
            continue;
        if (f->nfilters && !s_filters_pass(f, p, env))
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
