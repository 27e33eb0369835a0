/* Output renderers for flame trees: an interactive SVG flame graph and a
 * gzip'ed pprof profile (perftools.profiles.Profile). They only read the
 * tree, so the HTTP layer can render a merged query result without copying
 * it. The render room's one public header (aggregator/README.md).
 *
 * Results are malloc'ed and owned by the caller; NULL / -1 on failure. */
#ifndef SKYPROF_RENDER_H
#define SKYPROF_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/core/agg.h"

/* One self-contained SVG document (inline script: zoom, search, details).
 * value_is_time: widths by total_ns, else by total_count. Frames narrower
 * than 0.1% of the graph are elided and the frame count is capped, so the
 * output stays bounded for any tree. *len (optional) gets strlen. */
char *render_flame_svg(const flame_t *tree, const char *title,
                       int value_is_time, size_t *len);

/* gzip'ed profile.proto. Sample types are (samples,count),(cpu,nanoseconds)
 * on-CPU, (switches,count),(off_cpu,nanoseconds) off-CPU; one Sample per
 * node with self value (location ids leaf first, the root frame left out
 * unless it holds self value itself). start_ns is wall-clock ns since the
 * epoch; period_ns the sampling period (on-CPU). Returns 0 or -1. */
int render_pprof(const flame_t *tree, int off_cpu, uint64_t period_ns,
                 uint64_t start_ns, uint64_t duration_ns,
                 unsigned char **out, size_t *len);

#endif
