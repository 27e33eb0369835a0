#include "stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { STATS_COUNTER = 0, STATS_GAUGE = 1 };

struct stats_metric {
    char *name;     /* full name with prefix */
    char *labels;
    char *help;
    int type;
    uint64_t bits;  /* counter value, or the bits of a double gauge */
};

struct stats {
    char *stage;
    char *instance;
    /* Registration may happen while the HTTP thread renders. */
    pthread_mutex_t lock;
    stats_metric_t **metrics;
    size_t n, cap;
};

stats_t *stats_new(const char *stage, const char *instance)
{
    stats_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->stage = strdup(stage ? stage : "unknown");
    self->instance = strdup(instance ? instance : "0");
    pthread_mutex_init(&self->lock, NULL);
    if (!self->stage || !self->instance)
        stats_destroy(&self);
    return self;
}

void stats_destroy(stats_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    stats_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++) {
        free(self->metrics[i]->name);
        free(self->metrics[i]->labels);
        free(self->metrics[i]->help);
        free(self->metrics[i]);
    }
    free(self->metrics);
    free(self->stage);
    free(self->instance);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

static stats_metric_t *s_get(stats_t *self, const char *name,
                             const char *labels, const char *help, int type)
{
    if (!self || !name)
        return NULL;
    char full[256];
    snprintf(full, sizeof full, "skyprof_%s_%s", self->stage, name);
    for (char *p = full; *p; p++)
        if (*p == '-')
            *p = '_';
    labels = labels ? labels : "";
    stats_metric_t *m = NULL;
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->n; i++) {
        if (strcmp(self->metrics[i]->name, full) == 0 &&
            strcmp(self->metrics[i]->labels, labels) == 0) {
            m = self->metrics[i];
            goto cleanup;
        }
    }
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 32;
        stats_metric_t **grown = realloc(self->metrics, cap * sizeof *grown);
        if (!grown)
            goto cleanup;
        self->metrics = grown;
        self->cap = cap;
    }
    m = calloc(1, sizeof *m);
    if (!m)
        goto cleanup;
    m->name = strdup(full);
    m->labels = strdup(labels);
    m->help = strdup(help ? help : "");
    m->type = type;
    if (!m->name || !m->labels || !m->help) {
        free(m->name);
        free(m->labels);
        free(m->help);
        free(m);
        m = NULL;
        goto cleanup;
    }
    self->metrics[self->n++] = m;
cleanup:
    pthread_mutex_unlock(&self->lock);
    return m;
}

stats_metric_t *stats_counter(stats_t *self, const char *name,
                              const char *labels, const char *help)
{
    return s_get(self, name, labels, help, STATS_COUNTER);
}

stats_metric_t *stats_gauge(stats_t *self, const char *name,
                            const char *labels, const char *help)
{
    return s_get(self, name, labels, help, STATS_GAUGE);
}

void stats_remove(stats_t *self, stats_metric_t *m)
{
    if (!self || !m)
        return;
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->n; i++) {
        if (self->metrics[i] != m)
            continue;
        memmove(&self->metrics[i], &self->metrics[i + 1],
                (self->n - i - 1) * sizeof self->metrics[0]);
        self->n--;
        free(m->name);
        free(m->labels);
        free(m->help);
        free(m);
        break;
    }
    pthread_mutex_unlock(&self->lock);
}

void stats_add(stats_metric_t *m, uint64_t n)
{
    if (m)
        __atomic_fetch_add(&m->bits, n, __ATOMIC_RELAXED);
}

void stats_inc(stats_metric_t *m) { stats_add(m, 1); }

void stats_set(stats_metric_t *m, double value)
{
    if (!m)
        return;
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    __atomic_store_n(&m->bits, bits, __ATOMIC_RELAXED);
}

double stats_value(const stats_metric_t *m)
{
    if (!m)
        return 0;
    uint64_t bits = __atomic_load_n(&m->bits, __ATOMIC_RELAXED);
    if (m->type == STATS_COUNTER)
        return (double)bits;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

char *stats_render(stats_t *self, size_t *len)
{
    size_t cap = 4096, used = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = '\0';
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->n; i++) {
        const stats_metric_t *m = self->metrics[i];
        int first = 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(self->metrics[j]->name, m->name) == 0)
                first = 0;
        char line[1024];
        int k = 0;
        if (first)
            k = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n",
                         m->name, m->help, m->name,
                         m->type == STATS_COUNTER ? "counter" : "gauge");
        k += snprintf(line + k, sizeof line - (size_t)k,
                      "%s{stage=\"%s\",instance=\"%s\"%s%s} %.17g\n", m->name,
                      self->stage, self->instance, m->labels[0] ? "," : "",
                      m->labels, stats_value(m));
        if (k >= (int)sizeof line)
            k = (int)sizeof line - 1;
        if (used + (size_t)k + 1 > cap) {
            size_t ncap = (cap + (size_t)k + 1) * 2;
            char *grown = realloc(out, ncap);
            if (!grown) {
                free(out);
                out = NULL;
                goto cleanup;
            }
            out = grown;
            cap = ncap;
        }
        memcpy(out + used, line, (size_t)k);
        used += (size_t)k;
        out[used] = '\0';
    }
cleanup:
    pthread_mutex_unlock(&self->lock);
    if (out && len)
        *len = used;
    return out;
}

size_t stats_count(stats_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t n = self->n;
    pthread_mutex_unlock(&self->lock);
    return n;
}

void stats_get(stats_t *self, size_t i, const char **name,
               const char **labels, int *type, double *value)
{
    pthread_mutex_lock(&self->lock);
    stats_metric_t *m = i < self->n ? self->metrics[i] : NULL;
    pthread_mutex_unlock(&self->lock);
    if (!m)
        return;
    *name = m->name;
    *labels = m->labels;
    *type = m->type;
    *value = stats_value(m);
}

const char *stats_stage(const stats_t *self) { return self->stage; }
const char *stats_instance(const stats_t *self) { return self->instance; }
