/* Other stages' counters (see stagestats.h). */
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/stagestats.h"

typedef struct {
    char *name, *labels;
    uint8_t type;
    double value;
} metric_t;

typedef struct {
    char *stage, *instance;
    uint64_t seen_ms;
    metric_t *metrics;
    uint32_t nmetrics;
} instance_t;

struct agg_stagestats {
    instance_t instances[AGG_STAGESTATS_MAX];
    size_t n;
};

agg_stagestats_t *
agg_stagestats_new(void)
{
    return calloc(1, sizeof(agg_stagestats_t));
}

static void
s_metrics_free(metric_t *m, uint32_t n)
{
    for (uint32_t i = 0; m && i < n; i++) {
        free(m[i].name);
        free(m[i].labels);
    }
    free(m);
}

static void
s_instance_free(instance_t *p)
{
    free(p->stage);
    free(p->instance);
    s_metrics_free(p->metrics, p->nmetrics);
    memset(p, 0, sizeof(*p));
}

void
agg_stagestats_destroy(agg_stagestats_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    for (size_t i = 0; i < (*self_p)->n; i++)
        s_instance_free(&(*self_p)->instances[i]);
    free(*self_p);
    *self_p = NULL;
}

/* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]* */
static int
s_valid_name(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
              || (*s >= '0' && *s <= '9') || *s == '_' || *s == ':'))
            return 0;
    return 1;
}

/* Label bodies are pasted into the output, so refuse anything that could
 * break the line format. */
static int
s_valid_labels(const char *s)
{
    if (!s)
        return 1;
    for (; *s; s++)
        if (*s == '\n' || *s == '{' || *s == '}')
            return 0;
    return 1;
}

static int
s_valid_label_value(const char *s)
{
    for (; s && *s; s++)
        if (*s == '"' || *s == '\\' || *s == '\n')
            return 0;
    return 1;
}

int
agg_stagestats_update(agg_stagestats_t *self, const wire_stats_t *m, uint64_t now_ms)
{
    if (!m->stage || !m->instance || !s_valid_label_value(m->instance)
        || !s_valid_name(m->stage))
        return -1;
    for (uint32_t i = 0; i < m->nmetrics; i++)
        if (!s_valid_name(m->metrics[i].name)
            || !s_valid_labels(m->metrics[i].labels))
            return -1;
    instance_t *p = NULL;
    for (size_t i = 0; i < self->n; i++)
        if (strcmp(self->instances[i].stage, m->stage) == 0
            && strcmp(self->instances[i].instance, m->instance) == 0)
            p = &self->instances[i];
    if (!p) {
        if (self->n >= AGG_STAGESTATS_MAX)
            return -1;
        p = &self->instances[self->n];
        p->stage = strdup(m->stage);
        p->instance = strdup(m->instance);
        if (!p->stage || !p->instance) {
            s_instance_free(p);
            return -1;
        }
        self->n++;
    }
    metric_t *metrics = calloc(m->nmetrics ? m->nmetrics : 1,
                               sizeof(*metrics));
    if (!metrics)
        return -1;
    for (uint32_t i = 0; i < m->nmetrics; i++) {
        metrics[i].name = strdup(m->metrics[i].name);
        metrics[i].labels = strdup(m->metrics[i].labels
                                       ? m->metrics[i].labels : "");
        metrics[i].type = m->metrics[i].type;
        metrics[i].value = m->metrics[i].value;
        if (!metrics[i].name || !metrics[i].labels) {
            s_metrics_free(metrics, i + 1);
            return -1;
        }
    }
    s_metrics_free(p->metrics, p->nmetrics);
    p->metrics = metrics;
    p->nmetrics = m->nmetrics;
    p->seen_ms = now_ms;
    return 0;
}

void
agg_stagestats_expire(agg_stagestats_t *self, uint64_t now_ms)
{
    for (size_t i = 0; i < self->n;) {
        if (self->instances[i].seen_ms + AGG_STAGESTATS_EXPIRE_MS < now_ms) {
            s_instance_free(&self->instances[i]);
            self->instances[i] = self->instances[self->n - 1];
            memset(&self->instances[self->n - 1], 0, sizeof(instance_t));
            self->n--;
        } else {
            i++;
        }
    }
}

typedef struct {
    const instance_t *inst;
    const metric_t *metric;
    size_t order;
} line_t;

static int
s_line_cmp(const void *a, const void *b)
{
    const line_t *x = a, *y = b;
    int c = strcmp(x->metric->name, y->metric->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

void
agg_stagestats_render(const agg_stagestats_t *self, agg_buf_t *b)
{
    /* The exposition format wants every family in one group with a single
     * TYPE line, and replicas report the same names: sort by name. */
    size_t n = 0;
    for (size_t i = 0; i < self->n; i++)
        n += self->instances[i].nmetrics;
    if (!n)
        return;
    line_t *lines = malloc(n * sizeof(*lines));
    if (!lines) {
        b->oom = 1;
        return;
    }
    n = 0;
    for (size_t i = 0; i < self->n; i++)
        for (uint32_t j = 0; j < self->instances[i].nmetrics; j++) {
            lines[n].inst = &self->instances[i];
            lines[n].metric = &self->instances[i].metrics[j];
            lines[n].order = n;
            n++;
        }
    qsort(lines, n, sizeof(*lines), s_line_cmp);
    for (size_t i = 0; i < n; i++) {
        const metric_t *m = lines[i].metric;
        if (i == 0 || strcmp(lines[i - 1].metric->name, m->name) != 0)
            agg_buf_printf(b, "# TYPE %s %s\n", m->name,
                           m->type == WIRE_METRIC_GAUGE ? "gauge"
                                                        : "counter");
        /* Same labels as the aggregator's own lines: stage, instance. */
        agg_buf_printf(b, "%s{stage=\"%s\",instance=\"%s\"%s%s} %.17g\n",
                       m->name, lines[i].inst->stage, lines[i].inst->instance,
                       *m->labels ? "," : "", m->labels, m->value);
    }
    free(lines);
}
