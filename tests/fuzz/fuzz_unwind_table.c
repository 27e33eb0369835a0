/* Unwind tables (lib/unwind_table.c): an ELF file's .eh_frame and
 * .debug_frame interpreted into rows, as the collector will do for every
 * object a profiled process maps, including files a hostile container
 * ships. The input is the file (on a memfd, read with pread) and the
 * same bytes in memory; both must give the same table, within the row
 * limit, sorted, merged, and every lookup must land on a row. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "unwind_table.h"

#define MAX_ROWS 4096

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_unwind_table", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    unwind_limits_t lim = { .max_rows = MAX_ROWS, .max_fdes = 1024,
                            .max_section_bytes = 1 << 20 };
    unwind_table_t *a = unwind_table_new_fd(fd, &lim);
    unwind_table_t *b = unwind_table_new_mem(data, size, &lim);
    close(fd);
    if (!a || !b)
        abort();
    unwind_summary_t sa, sb;
    unwind_table_summary(a, &sa);
    unwind_table_summary(b, &sb);
    if (memcmp(&sa, &sb, sizeof sa) != 0)
        abort();                      /* a file and its image are one ELF */
    const unwind_row_t *ra, *rb;
    size_t n = unwind_table_rows(a, &ra);
    if (n != unwind_table_rows(b, &rb) || n > MAX_ROWS ||
        (n && memcmp(ra, rb, n * sizeof *ra) != 0))
        abort();
    for (size_t i = 0; i < n; i++) {
        if (i && (ra[i].pc <= ra[i - 1].pc ||
                  memcmp(&ra[i].cfa_off, &ra[i - 1].cfa_off, 8) == 0))
            abort();                  /* sorted, merged */
        if (ra[i].cfa_kind > UNWIND_CFA_SIGNAL ||
            ra[i].rbp_kind > UNWIND_RBP_UNKNOWN)
            abort();
        const unwind_row_t *r = unwind_table_lookup(a, ra[i].pc);
        if (ra[i].cfa_kind == UNWIND_CFA_NONE ? r != NULL : r != &ra[i])
            abort();
    }
    unwind_table_destroy(&a);
    unwind_table_destroy(&b);
    return 0;
}
