/* Process table: a chained hash by pid. See proctable.h. */
#include "proctable.h"

#include <stdlib.h>
#include <string.h>

#define PROC_BUCKETS 4096

struct proc_table {
    proc_entry_t *buckets[PROC_BUCKETS];
    size_t count;
    size_t max;
};

static size_t
s_bucket(uint32_t pid)
{
    return (pid * 2654435761u) % PROC_BUCKETS;
}

proc_table_t *
proc_table_new(size_t max)
{
    proc_table_t *self = calloc(1, sizeof *self);
    if (self)
        self->max = max ? max : 65536;
    return self;
}

void
proc_table_destroy(proc_table_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    proc_table_t *self = *self_p;
    for (size_t b = 0; b < PROC_BUCKETS; b++) {
        proc_entry_t *e = self->buckets[b];
        while (e) {
            proc_entry_t *next = e->next;
            proc_entry_free(e);
            e = next;
        }
    }
    free(self);
    *self_p = NULL;
}

proc_entry_t *
proc_table_get(const proc_table_t *self, uint32_t pid)
{
    for (proc_entry_t *e = self->buckets[s_bucket(pid)]; e; e = e->next)
        if (e->pid == pid)
            return e;
    return NULL;
}

void
proc_table_remove(proc_table_t *self, uint32_t pid)
{
    proc_entry_t **link = &self->buckets[s_bucket(pid)];
    while (*link) {
        proc_entry_t *e = *link;
        if (e->pid == pid) {
            *link = e->next;
            proc_entry_free(e);
            self->count--;
            return;
        }
        link = &e->next;
    }
}

int
proc_table_put(proc_table_t *self, proc_entry_t *entry)
{
    proc_table_remove(self, entry->pid);
    if (self->count >= self->max) {
        proc_entry_free(entry);
        return -1;
    }
    size_t b = s_bucket(entry->pid);
    entry->next = self->buckets[b];
    self->buckets[b] = entry;
    self->count++;
    return 0;
}

size_t
proc_table_count(const proc_table_t *self)
{
    return self->count;
}

proc_entry_t *
proc_table_next(const proc_table_t *self, proc_iter_t *it)
{
    if (it->at && it->at->next)
        return it->at = it->at->next;
    size_t b = it->at ? it->bucket + 1 : it->bucket;
    for (; b < PROC_BUCKETS; b++) {
        if (self->buckets[b]) {
            it->bucket = b;
            return it->at = self->buckets[b];
        }
    }
    it->bucket = PROC_BUCKETS;
    it->at = NULL;
    return NULL;
}

proc_entry_t *
proc_table_find_id(const proc_table_t *self, const char *process_id)
{
    if (!process_id || !*process_id)
        return NULL;
    proc_iter_t it = { 0, NULL };
    proc_entry_t *e;
    while ((e = proc_table_next(self, &it)))
        if (e->process_id && !strcmp(e->process_id, process_id))
            return e;
    return NULL;
}

proc_entry_t *
proc_entry_new(uint32_t pid, const char *exe, const char *cmdline,
               const char *comm, proc_entity_t *entity)
{
    proc_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        goto fail;
    e->pid = pid;
    e->exe = strdup(exe ? exe : "");
    e->cmdline = strdup(cmdline ? cmdline : "");
    e->comm = strdup(comm ? comm : "");
    if (!e->exe || !e->cmdline || !e->comm)
        goto fail;
    if (entity) {
        e->entity = *entity;
        memset(entity, 0, sizeof *entity);
    }
    e->needs_report = true;
    return e;
fail:
    proc_entry_free(e);
    if (entity)
        proc_entity_clear(entity);
    return NULL;
}

void
proc_entry_free(proc_entry_t *e)
{
    if (!e)
        return;
    free(e->exe);
    free(e->cmdline);
    free(e->comm);
    free(e->process_id);
    free(e->k8s);
    proc_entity_clear(&e->entity);
    free(e);
}

int
proc_entry_set_id(proc_entry_t *e, const char *process_id)
{
    if (e->process_id && !strcmp(e->process_id, process_id))
        return 0;
    char *copy = strdup(process_id);
    if (!copy)
        return -1;
    free(e->process_id);
    e->process_id = copy;
    return 0;
}

int
proc_entry_set_k8s(proc_entry_t *e, const k8s_identity_t *id)
{
    free(e->k8s);
    e->k8s = NULL;
    if (!id)
        return 0;
    if (!(e->k8s = malloc(sizeof *e->k8s)))
        return -1;
    *e->k8s = *id;
    return 0;
}
