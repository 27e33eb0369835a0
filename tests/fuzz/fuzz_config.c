/* Config loading (lib/config.c): every stage reads the same YAML file at
 * start, so no file may crash, hang or blow up a stage. The input is the
 * file, handed over through a memfd so nothing touches the disk. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    char path[64], err[512] = "";
    if (fd < 0) {
        fd = memfd_create("fuzz-config", MFD_CLOEXEC);
        if (fd < 0)
            return 0;
    }
    if (ftruncate(fd, 0) != 0 ||
        pwrite(fd, data, size, 0) != (ssize_t)size)
        return 0;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    config_t *cfg = config_load(path, err, sizeof err);
    if (!cfg && !err[0])
        __builtin_trap();           /* a refusal always says why */
    config_destroy(&cfg);
    return 0;
}
