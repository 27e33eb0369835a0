/* ELF identity (lib/elfid.c: build-id, function symbols, .gnu_debuglink),
 * which parses ELF headers, notes, symbol tables and section names with
 * pread and no libelf: the input is the file, on a memfd as the collector
 * reads /proc/PID/map_files/..., and the same bytes as a memory image as
 * the symbolizer reads the vdso. Both paths must agree. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elfid.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_buildid", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    uint8_t id[ELFID_BUILD_ID_MAX];
    int n = elfid_build_id_fd(fd, id);
    if (n > ELFID_BUILD_ID_MAX || n < -1)
        abort();      /* the documented range is 1..ELFID_BUILD_ID_MAX, 0, -1 */
    elfid_t from_fd, from_mem;
    int rc_fd = elfid_read_fd(fd, &from_fd);
    int rc_mem = elfid_read_mem(data, size, &from_mem);
    if (rc_fd != rc_mem || (rc_fd == 0 && memcmp(&from_fd, &from_mem,
                                                 sizeof from_fd) != 0))
        abort();      /* a file and its image are the same ELF */
    if (rc_fd == 0 && (from_fd.build_id_len != (size_t)(n > 0 ? n : 0) ||
                       from_fd.build_id_len > ELFID_BUILD_ID_MAX ||
                       memchr(from_fd.debuglink, '/',
                              strnlen(from_fd.debuglink,
                                      sizeof from_fd.debuglink)) ||
                       !memchr(from_fd.debuglink, '\0',
                               sizeof from_fd.debuglink)))
        abort();
    close(fd);
    return 0;
}
