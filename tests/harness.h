/* Pieces shared by the multi-process tests: publishing raw batches on the
 * bus as the collector would, finding a function's file offset, reading
 * Prometheus text. */
#ifndef SKYPROF_TEST_HARNESS_H
#define SKYPROF_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* File offset (+4, inside the function) of func in the ELF file at path;
 * 0 when not found. */
uint64_t th_func_offset(const char *path, const char *func);

/* Sum of every sample line of a metric family in exposition text. With a
 * non-NULL label, only lines whose labels contain it (e.g.
 * "instance=\"s1\""). */
double th_metric_sum(const char *text, const char *family, const char *label);

typedef struct th_pub th_pub_t;

/* A PUB socket connected to the broker's input endpoint. */
th_pub_t *th_pub_new(const char *endpoint);
void th_pub_destroy(th_pub_t **self_p);
/* Raw bytes on a topic (for malformed-input tests). */
void th_pub_send(th_pub_t *self, const char *topic, const void *data,
                 size_t len);
/* One raw batch with a single on-CPU sample for pid: the stack
 * main <- sky_run <- sky_alpha_outer <- sky_alpha_leaf of the cpu_workload
 * test program, count samples. The process name is "pid_<pid>". */
void th_pub_workload_batch(th_pub_t *self, uint32_t pid, uint64_t count);

#endif
