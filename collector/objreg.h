/* The collector's object registry: every executable file (and the vdso,
 * JIT and anonymous code regions) some sampled process has mapped, with a
 * collector-wide stable id that user frames refer to.
 *
 * A file is identified by its GNU build-id when it has one (two copies of
 * one binary in two containers are one object), else by dev+inode.
 * Objects are reference counted by the mappings that use them and freed
 * when the last mapping goes, so memory follows the live process set. */
#ifndef SKYPROF_COLLECTOR_OBJREG_H
#define SKYPROF_COLLECTOR_OBJREG_H

#include <stddef.h>
#include <stdint.h>

#include "elfid.h"

typedef struct objreg objreg_t;

typedef struct object {
    uint32_t id;
    uint8_t type;            /* enum wire_object_type */
    uint8_t build_id_len;
    uint8_t build_id[ELFID_BUILD_ID_MAX];
    uint64_t dev, ino;       /* of the file `pid` maps */
    uint32_t pid;            /* a process whose /proc/PID/root reaches it:
                                one that maps it or, in a container, its
                                oldest ancestor there; replaced by a live
                                one when it exits */
    char *path;              /* as that process sees it */
    uint32_t refs;
    /* registry bookkeeping */
    uint32_t owner_pid;      /* JIT/ANON: the process the region is in */
    uint32_t naliases;
    uint64_t (*aliases)[2];  /* every (dev, ino) resolving to this object */
    struct object *prev, *next; /* all objects, for teardown */
} object_t;

objreg_t *objreg_new(void);
void objreg_destroy(objreg_t **self_p);

/* Returns the object for a file-backed mapping of `pid` at [start, end)
 * with a reference taken, creating it (and reading its build-id through
 * /proc/PID/map_files, else /proc/PID/root/PATH) on first sight. type is
 * WIRE_OBJ_EXE or WIRE_OBJ_LIB. NULL only when out of memory. */
object_t *objreg_get_file(objreg_t *self, uint32_t pid, uint64_t dev,
                           uint64_t ino, const char *path, uint64_t start,
                           uint64_t end, uint8_t type);

/* The object some mapping already registered under the file (dev, ino),
 * with a reference taken; NULL when no mapping known has that file. For
 * a process gone before its mappings could be read. */
object_t *objreg_find_file(objreg_t *self, uint64_t dev, uint64_t ino);

/* The vdso (one object for the host) or a process's JIT or anonymous code
 * (one object per process: frames keep their raw address as offset). */
object_t *objreg_get_special(objreg_t *self, uint32_t pid, uint8_t type,
                              const char *path);

/* Opens (read-only) the file `pid` maps at [start, end): through
 * /proc/PID/map_files, else `path` resolved inside the process's root.
 * The fd, or -1. */
int objreg_open_file(uint32_t pid, const char *path, uint64_t start,
                     uint64_t end);

void objreg_ref(object_t *obj);
/* Drops a reference and frees the object with its last; clears *obj_p. */
void objreg_unref(objreg_t *self, object_t **obj_p);

size_t objreg_count(const objreg_t *self);

#endif
