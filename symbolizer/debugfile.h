/* Finding the separate debug file of a stripped binary: by build-id
 * (<debug_dir>/.build-id/xx/rest.debug) and by .gnu_debuglink (next to the
 * binary, in its .debug/ directory, and under <debug_dir>/<binary's dir>),
 * the way gdb and elfutils look. A candidate is accepted only if it is the
 * debug file of *this* binary: same build-id, and for debuglink matches the
 * CRC32 recorded in the binary. */
#ifndef SKYPROF_SYMBOLIZER_DEBUGFILE_H
#define SKYPROF_SYMBOLIZER_DEBUGFILE_H

#include <stddef.h>
#include <stdint.h>

#include "symbolizer/elfobj.h"

typedef struct {
    const char *debug_dirs;  /* colon separated host directories */
    uint32_t root_pid;       /* process whose root the binary was opened in
                                (0: the host); paths below resolve in it */
    const char *bin_path;    /* the binary as its process sees it */
    const uint8_t *build_id; /* may be NULL */
    size_t build_id_len;
    const char *debuglink;   /* may be NULL */
    uint32_t debuglink_crc;
    uint64_t max_crc_size;   /* larger candidates are not CRC'd (0: any) */
    uint64_t crc_skipped;    /* out: candidates too large to CRC */
} debugfile_query_t;

/* Returns the opened debug file, or NULL when none is found. found_path
 * (optional, size found_size) receives its path for log lines. Candidates
 * are opened with lib/safe_open.h: inside the process's root they cannot
 * lead out of it. A debuglink candidate whose build-id matches the
 * binary's needs no CRC; the CRC (a read of the whole file, on the only
 * symbolizer thread) is computed only for files within max_crc_size. */
elfobj_t *debugfile_find(debugfile_query_t *q, char *found_path,
                         size_t found_size);

/* CRC32 (zlib) of a whole file; 0 and *crc, or -1 on read error. */
int debugfile_crc32(int fd, uint32_t *crc);

#endif
