/* The processes the uplink reports: pid -> what the OAP knows of it (the
 * entity a finder rendered, its properties, the processId the OAP
 * assigned). Bounded: past `max` entries new processes are refused and
 * counted by the caller. */
#ifndef SKYPROF_UPLINK_PROCTABLE_H
#define SKYPROF_UPLINK_PROCTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "finder.h"
#include "k8s_disc.h"

typedef struct proc_entry {
    uint32_t pid;
    char *exe;                 /* "" when unknown */
    char *cmdline;
    char *comm;
    proc_entity_t entity;
    k8s_identity_t *k8s;       /* NULL: a host process; else its pod,
                                  reported as a k8sProcess */
    uint64_t k8s_gen;          /* discovery generation it was matched at */
    bool support_ebpf;
    char *process_id;          /* assigned by the OAP; NULL until then */
    bool needs_report;         /* new or changed since the last report */
    bool exited;
    uint64_t exited_ms;        /* uplink clock when it was seen gone */
    uint64_t seen_scan;        /* last /proc scan generation that saw it */
    uint64_t reported_round;   /* heartbeat round of the last report */
    struct proc_entry *next;   /* hash chain (private) */
} proc_entry_t;

typedef struct proc_table proc_table_t;

proc_table_t *proc_table_new(size_t max);
void proc_table_destroy(proc_table_t **self_p);

proc_entry_t *proc_table_get(const proc_table_t *self, uint32_t pid);
/* Takes ownership of entry (allocated with proc_entry_new), replacing and
 * freeing any entry with the same pid. -1 when the table is full (the
 * entry is freed). */
int proc_table_put(proc_table_t *self, proc_entry_t *entry);
void proc_table_remove(proc_table_t *self, uint32_t pid);
size_t proc_table_count(const proc_table_t *self);

/* Iteration: start with a zeroed iterator; returns NULL at the end. The
 * table must not change during an iteration. */
typedef struct {
    size_t bucket;
    proc_entry_t *at;
} proc_iter_t;
proc_entry_t *proc_table_next(const proc_table_t *self, proc_iter_t *it);

/* The entry the OAP gave this processId (exited ones included). */
proc_entry_t *proc_table_find_id(const proc_table_t *self,
                                 const char *process_id);

/* All fields copied; NULL when out of memory. entity is moved in. */
proc_entry_t *proc_entry_new(uint32_t pid, const char *exe,
                             const char *cmdline, const char *comm,
                             proc_entity_t *entity);
void proc_entry_free(proc_entry_t *entry);
int proc_entry_set_id(proc_entry_t *entry, const char *process_id);
/* Copies id in (NULL: a host process); -1 when out of memory. */
int proc_entry_set_k8s(proc_entry_t *entry, const k8s_identity_t *id);

#endif
