/* The identity of an ELF file, as every stage that meets a binary needs
 * it: its GNU build-id, whether it carries function symbols (.symtab or
 * .dynsym with a defined function), and its .gnu_debuglink (the separate
 * debug file's name and CRC). The collector names objects by build-id,
 * the symbolizer finds debug files by build-id and debuglink, the uplink
 * tells the OAP whether a process can be profiled usefully.
 *
 * Written against the ELF gABI with pread (or a bounds-checked memory
 * image, for the vdso), no libelf: 32 and 64 bit, either byte order. The
 * input may be truncated, still being written, or hostile, so every count
 * and offset read from it is checked and every read is bounded whatever
 * the headers claim (headers walked, note bytes, symbols looked at, name
 * lengths); memory use is a fixed few KiB. */
#ifndef SKYPROF_ELFID_H
#define SKYPROF_ELFID_H

#include <stddef.h>
#include <stdint.h>

#define ELFID_BUILD_ID_MAX 64
#define ELFID_DEBUGLINK_MAX 256   /* with the NUL; longer names are ignored */

typedef struct {
    uint8_t build_id[ELFID_BUILD_ID_MAX];
    size_t build_id_len;              /* 0: none */
    int has_functions;                /* 1: a .symtab or .dynsym defines a
                                         function (STT_FUNC, address != 0) */
    char debuglink[ELFID_DEBUGLINK_MAX]; /* a plain file name, "" if none */
    uint32_t debuglink_crc;
} elfid_t;

/* The NT_GNU_BUILD_ID note of the ELF file open on fd, from its PT_NOTE
 * segments, else its SHT_NOTE sections. Returns the id length
 * (1..ELFID_BUILD_ID_MAX) with the bytes in out, 0 when the file is ELF
 * without a build-id, -1 when it is not a readable ELF file. The cheap
 * call for hot paths: only the notes are read. */
int elfid_build_id_fd(int fd, uint8_t out[ELFID_BUILD_ID_MAX]);
/* The same for a host path, opened with lib/safe_open.h (regular files
 * only, no magic links). */
int elfid_build_id_path(const char *path, uint8_t out[ELFID_BUILD_ID_MAX]);

/* Everything above, for the file open on fd / an image in memory. 0 and
 * *out filled, -1 (and *out zeroed) when it is not a readable ELF file. */
int elfid_read_fd(int fd, elfid_t *out);
int elfid_read_mem(const void *image, size_t size, elfid_t *out);

#endif
