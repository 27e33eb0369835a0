/* The collector's own GNU build-id reader (collector/buildid.c), which
 * parses ELF headers and notes with pread and no libelf: the input is the
 * file, on a memfd as the collector reads /proc/PID/map_files/... */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "collector/buildid.h"

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
    uint8_t id[BUILDID_MAX];
    int n = buildid_read_fd(fd, id);
    if (n > BUILDID_MAX || n < -1)
        abort();      /* the documented range is 1..BUILDID_MAX, 0 or -1 */
    close(fd);
    return 0;
}
