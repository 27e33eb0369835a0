/* JIT symbol maps (/tmp/perf-<PID>.map), written by JITs such as the JVM
 * with perf-map-agent, Node with --perf-basic-prof, .NET, LuaJIT: one line
 * per compiled function, "START SIZE name" with START and SIZE in hex.
 * Lines are appended as code is compiled, so the map is re-read when an
 * address misses and the file changed since it was read. */
#ifndef SKYPROF_SYMBOLIZER_PERFMAP_H
#define SKYPROF_SYMBOLIZER_PERFMAP_H

#include <stdint.h>

#include "symbolizer/symtab.h"

/* Identity of a file version: changes when the map grows or is rewritten. */
typedef struct {
    uint64_t size;
    uint64_t ino;
    int64_t mtime_ns;
} perfmap_stamp_t;

/* Where a map is and how much of it may be taken in. */
typedef struct {
    uint32_t root_pid;      /* path resolves in this process's root (0: the
                               host), through lib/safe_open.h */
    const char *path;       /* as that process sees it */
    uint64_t max_size;      /* larger maps are refused unread (0: any) */
    uint64_t max_table;     /* bytes the table may grow to (0: any) */
} perfmap_src_t;

typedef enum {
    PERFMAP_OK = 0,
    PERFMAP_UNREADABLE,     /* missing, not a regular file, read error */
    PERFMAP_TOO_LARGE,      /* over max_size or max_table */
    PERFMAP_NO_MEMORY,
} perfmap_status_t;

/* 0 and the stamp of the map, -1 when it cannot be opened. */
int perfmap_stamp(const perfmap_src_t *src, perfmap_stamp_t *out);

/* Reads the map into a new table; NULL and *status otherwise. stamp
 * (optional) receives the stamp of the version read. Malformed lines are
 * skipped and counted in *bad_lines (optional). */
symtab_t *perfmap_load(const perfmap_src_t *src, perfmap_stamp_t *stamp,
                       uint64_t *bad_lines, perfmap_status_t *status);

/* The same from an open fd (consumed): the parser itself, also used by the
 * fuzz harness. At most src->max_size bytes are read, whatever the file
 * grew to meanwhile; src->path only names the file in log lines. */
symtab_t *perfmap_load_fd(int fd, const perfmap_src_t *src,
                          perfmap_stamp_t *stamp, uint64_t *bad_lines,
                          perfmap_status_t *status);

#endif
