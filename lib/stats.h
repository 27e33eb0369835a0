/* Prometheus-style counters and gauges. Values are updated by the owning
 * thread and read by the HTTP thread with relaxed atomics. */
#ifndef SKYPROF_STATS_H
#define SKYPROF_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct stats stats_t;
typedef struct stats_metric stats_metric_t;

stats_t *stats_new(const char *stage, const char *instance);
void stats_destroy(stats_t **self_p);

/* Returns the metric with this name and label body (e.g. `topic="raw"`),
 * creating it on first use; the pointer stays valid for the life of the
 * registry. name gets the "skyprof_<stage>_" prefix added. */
stats_metric_t *stats_counter(stats_t *self, const char *name,
                              const char *labels, const char *help);
stats_metric_t *stats_gauge(stats_t *self, const char *name,
                            const char *labels, const char *help);

/* Drops a metric (e.g. a per-process gauge of a process that exited);
 * the pointer is invalid afterwards. */
void stats_remove(stats_t *self, stats_metric_t *m);

void stats_add(stats_metric_t *m, uint64_t n);
void stats_inc(stats_metric_t *m);
void stats_set(stats_metric_t *m, double value);
double stats_value(const stats_metric_t *m);

/* Render the exposition text format into a malloc'ed string. */
char *stats_render(stats_t *self, size_t *len);

/* Iterate for publishing on the bus. */
size_t stats_count(stats_t *self);
void stats_get(stats_t *self, size_t i, const char **name,
               const char **labels, int *type, double *value);

const char *stats_stage(const stats_t *self);
const char *stats_instance(const stats_t *self);

#endif
