/* Reads the GNU build-id note of an ELF file. */
#ifndef SKYPROF_COLLECTOR_BUILDID_H
#define SKYPROF_COLLECTOR_BUILDID_H

#include <stddef.h>
#include <stdint.h>

#define BUILDID_MAX 64

/* Reads the NT_GNU_BUILD_ID note of the ELF file open on fd (32 or 64 bit,
 * either byte order) from its PT_NOTE segments, else its SHT_NOTE
 * sections. Returns the id length (1..BUILDID_MAX) with the bytes in out,
 * 0 when the file is ELF without a build-id, -1 when it is not a readable
 * ELF file. Reads at most a bounded amount whatever the headers claim. */
int buildid_read_fd(int fd, uint8_t out[BUILDID_MAX]);
/* The same for a host path, opened with lib/safe_open.h (regular files
 * only, no magic links). */
int buildid_read_path(const char *path, uint8_t out[BUILDID_MAX]);

#endif
