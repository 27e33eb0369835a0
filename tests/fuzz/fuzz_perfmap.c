/* JIT perf map parsing (symbolizer/perfmap.c) within the symbolizer's
 * bounds: the input is the map file's content, read from a memfd through
 * perfmap_load_fd as the symbolizer reads /tmp/perf-PID.map, then looked
 * up at addresses named in the input itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "symbolizer/perfmap.h"
#include "symbolizer/symtab.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_perfmap", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    lseek(fd, 0, SEEK_SET);
    /* Bounds small enough that inputs can cross them. */
    perfmap_src_t src = { .path = "fuzz", .max_size = 1 << 16,
                          .max_table = 1 << 18 };
    uint64_t bad = 0;
    perfmap_status_t status;
    symtab_t *tab = perfmap_load_fd(fd, &src, NULL, &bad, &status);
    if (tab) {
        /* Addresses from the input: every hex word it starts a line with,
         * plus one past it. */
        for (size_t i = 0; i < size; i++) {
            if (i && data[i - 1] != '\n')
                continue;
            char word[20];
            size_t n = 0;
            while (i + n < size && n < sizeof(word) - 1 &&
                   data[i + n] != ' ' && data[i + n] != '\n')
                n++;
            memcpy(word, data + i, n);
            word[n] = '\0';
            uint64_t addr = strtoull(word, NULL, 16);
            (void)symtab_lookup(tab, addr, NULL);
            (void)symtab_lookup(tab, addr + 1, NULL);
        }
        (void)symtab_count(tab);
        (void)symtab_bytes(tab);
    }
    symtab_destroy(&tab);
    return 0;
}
