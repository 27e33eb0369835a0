/* A stand-in for the collector's side of proc.events in tests of the
 * uplink, which learns processes only from the bus: reads /proc as the
 * collector does (exe, command line, comm, container id, whether the
 * binary has symbols) and encodes one message with an alive event per
 * running process and an exit event per process gone since the last
 * call. */
#ifndef SKYPROF_TESTS_PROCFEED_H
#define SKYPROF_TESTS_PROCFEED_H

#include <stddef.h>
#include <stdint.h>

#include "collector/symcheck.h"
#include "wire.h"

/* Start zeroed. */
typedef struct {
    uint32_t *pids;          /* alive at the last call */
    size_t npids;
    uint64_t seq;
    symcheck_t *symcheck;    /* cached across calls, as the collector's */
} tu_procfeed_t;

/* 0 with the message in out, -1 when /proc cannot be listed or it does
 * not encode. */
int tu_procfeed_encode(tu_procfeed_t *self, wire_buf_t *out);
void tu_procfeed_release(tu_procfeed_t *self);

/* The same on a bus, as a collector would: a thread with a bus of its
 * own (sender "collector/procfeed") publishes the message every
 * interval_ms until stopped. NULL when it cannot start. */
typedef struct tu_procfeed_thread tu_procfeed_thread_t;
tu_procfeed_thread_t *tu_procfeed_start(const char *bus_in,
                                        const char *bus_out,
                                        int interval_ms);
void tu_procfeed_stop(tu_procfeed_thread_t **self_p);

#endif
