/* The symbolizer library: (object, file offset) and kernel addresses ->
 * function names. Used by the stage main, the tests and the benchmark
 * driver; it knows nothing about the bus.
 *
 *   symbolizer_opts_t o;
 *   symbolizer_opts_default(&o);
 *   symbolizer_t *s = symbolizer_new(&o);
 *   const char *name; uint8_t type;
 *   symbolizer_resolve_user(s, &obj, nspid, offset, &name, &type);
 *   symbolizer_resolve_kernel(s, addr, &name, &type);
 *
 * Names are always set, resolved or not, so no frame vanishes: an
 * unresolved user frame reads "path+0xoffset", a frame without an object
 * "[unknown] 0x<address>", an unresolved kernel frame "[k] 0x<address>";
 * these come with type WIRE_FRAME_UNKNOWN. A returned name is valid until
 * the next call on the same symbolizer (copy or intern it).
 *
 * Objects are cached by build-id (else device + inode), shared across
 * processes, in an LRU bounded by cache_size bytes; objects that cannot be
 * opened are remembered as such and retried after retry_ms, or at once
 * for the root of a process not tried yet (a few per window). Resolved
 * ELF and kernel frames are memoized across calls (bounded by
 * cache_size / 4, on top of the cache; see framememo.h). Not
 * thread-safe: one symbolizer per thread. */
#ifndef SKYPROF_SYMBOLIZER_SYMBOLIZE_H
#define SKYPROF_SYMBOLIZER_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

typedef struct symbolizer symbolizer_t;

typedef struct {
    uint64_t cache_size;        /* bytes of cached object symbol tables */
    const char *debug_dirs;     /* colon separated; "" = none */
    const char *kallsyms_path;  /* "/proc/kallsyms" */
    uint64_t retry_ms;          /* retry unreadable objects after this */
    uint64_t kernel_refresh_ms; /* re-read kallsyms on a miss at most this
                                   often (modules, BPF programs come and go) */
    uint64_t perfmap_max_size;  /* larger perf maps are refused (0: any) */
    uint64_t debug_crc_max_size;/* debuglink candidates without a matching
                                   build-id are CRC'd only up to this size */
} symbolizer_opts_t;

typedef struct {
    uint64_t frames_resolved;
    uint64_t frames_unknown;
    uint64_t cache_hits;         /* object found in the cache */
    uint64_t cache_misses;       /* object had to be loaded */
    uint64_t cache_evictions;
    uint64_t objects_unreadable; /* loads that found no usable file */
    uint64_t root_retries;       /* ... retried at once for another process
                                    root (s_untried_root) */
    uint64_t objects_too_large;  /* symbol tables larger than the cache */
    uint64_t perfmaps_refused;   /* perf maps over perfmap_max_size or the
                                    cache (counted per version seen) */
    uint64_t debug_crc_skipped;  /* debuglink candidates too large to CRC */
    uint64_t files_refused;      /* process-wide lib/safe_open refusals:
                                    links out, FIFOs, devices, too large */
    uint64_t perfmap_reloads;
    uint64_t kernel_reloads;
    uint64_t cache_bytes;        /* gauge */
    uint64_t cache_objects;      /* gauge */
    uint64_t kernel_bytes;       /* gauge: the kallsyms table (not in the
                                    LRU: there is only one) */
    uint64_t memo_bytes;         /* gauge: the frame memo (slots + names),
                                    at most cache_size / 4 on top of it */
    uint64_t memo_hits;          /* frames answered by the memo */
} symbolizer_stats_t;

/* Defaults: 64 MiB cache, /usr/lib/debug, /proc/kallsyms, retry after 60 s,
 * kernel refresh at most every 30 s, perf maps up to 32 MiB, debuglink
 * CRCs of files up to 256 MiB. */
void symbolizer_opts_default(symbolizer_opts_t *opts);

symbolizer_t *symbolizer_new(const symbolizer_opts_t *opts);
void symbolizer_destroy(symbolizer_t **self_p);

/* Resolves a user frame. obj NULL means the frame had no object
 * (WIRE_NO_OBJECT) and offset is the raw address. nspid is the process's
 * pid in its own namespace (perf maps are named after it); 0 = obj->pid.
 * Returns 0 when resolved, -1 when the fallback name was produced. */
int symbolizer_resolve_user(symbolizer_t *self, const wire_object_t *obj,
                            uint32_t nspid, uint64_t offset,
                            const char **name, uint8_t *type);

/* Resolves a kernel address. Returns 0 when resolved, -1 otherwise. */
int symbolizer_resolve_kernel(symbolizer_t *self, uint64_t addr,
                              const char **name, uint8_t *type);

/* The same, also giving hash_fnv1a(*name, *type), which the frame memo
 * keeps with each name so callers interning names need not rehash them. */
int symbolizer_resolve_user_h(symbolizer_t *self, const wire_object_t *obj,
                              uint32_t nspid, uint64_t offset,
                              const char **name, uint8_t *type,
                              uint64_t *hash);
int symbolizer_resolve_kernel_h(symbolizer_t *self, uint64_t addr,
                                const char **name, uint8_t *type,
                                uint64_t *hash);

/* Drop the kernel table so the next lookup re-reads kallsyms (SIGHUP). */
void symbolizer_reload_kernel(symbolizer_t *self);

void symbolizer_get_stats(const symbolizer_t *self, symbolizer_stats_t *out);

#endif
