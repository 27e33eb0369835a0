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

/* 0 and the stamp of path, -1 when it cannot be stat'ed. */
int perfmap_stamp(const char *path, perfmap_stamp_t *out);

/* Reads the map into a new table. stamp (optional) receives the stamp of
 * the version read. NULL when the file cannot be read. Malformed lines are
 * skipped and counted in *bad_lines (optional). */
symtab_t *perfmap_load(const char *path, perfmap_stamp_t *stamp,
                       uint64_t *bad_lines);

#endif
