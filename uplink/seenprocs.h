/* Every live process the collector told us about on proc.events: pid ->
 * the facts a finder or a Kubernetes analyzer matches on (exe, command
 * line, comm, container id) and whether its binary has usable symbols.
 * The uplink builds its process table from these instead of reading /proc
 * and ELF files itself, so it needs neither the host PID namespace nor
 * capabilities. Processes that did not match are kept too: a changed pod
 * table or a restart can make them match later.
 *
 * Bounded: past `max` entries new processes are refused (the caller
 * counts them). An entry no event named for a while (the collector
 * republishes every live process periodically) is dropped by
 * seen_procs_expire, so a lost exit event does not keep a ghost. */
#ifndef SKYPROF_UPLINK_SEENPROCS_H
#define SKYPROF_UPLINK_SEENPROCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* Longest command line kept (longer ones are cut, as ps does). */
#define SEEN_MAX_CMDLINE 4096

typedef struct {
    uint32_t pid;
    char *exe;                 /* "" when unknown */
    char *cmdline;             /* arguments joined by spaces, never "";
                                  at most SEEN_MAX_CMDLINE - 1 bytes */
    char *comm;
    char *container_id;        /* "" on the host */
    bool has_symbols;          /* support_ebpf_profiling */
    uint64_t seen_ms;          /* uplink clock of the last event naming it */
} seen_proc_t;

typedef struct seen_procs seen_procs_t;

seen_procs_t *seen_procs_new(size_t max);
void seen_procs_destroy(seen_procs_t **self_p);

/* Records (or replaces) the facts of a start, exec or alive event with a
 * command line. The entry, or NULL when the table is full or memory ran
 * out (the old facts of that pid, if any, are dropped). */
const seen_proc_t *seen_procs_put(seen_procs_t *self,
                                  const wire_proc_event_t *ev,
                                  uint64_t now_ms);
void seen_procs_remove(seen_procs_t *self, uint32_t pid);
const seen_proc_t *seen_procs_get(const seen_procs_t *self, uint32_t pid);
size_t seen_procs_count(const seen_procs_t *self);

/* Drops the entries no event named since cutoff_ms; how many. */
size_t seen_procs_expire(seen_procs_t *self, uint64_t cutoff_ms);

/* Iteration: start with *cursor = 0; NULL at the end. The table must not
 * change during an iteration. */
const seen_proc_t *seen_procs_next(const seen_procs_t *self, size_t *cursor);

#endif
