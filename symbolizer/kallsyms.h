/* Kernel symbols from /proc/kallsyms, including loaded modules and BPF
 * programs. When kptr_restrict hides the addresses (every address reads 0,
 * as for a reader without CAP_SYSLOG) the table is empty and the caller
 * emits raw "[k] 0x..." frames. */
#ifndef SKYPROF_SYMBOLIZER_KALLSYMS_H
#define SKYPROF_SYMBOLIZER_KALLSYMS_H

#include <stdbool.h>

#include "symbolizer/symtab.h"

/* Reads path (normally "/proc/kallsyms"). *restricted is set when the file
 * was readable but every address was zero. NULL when it cannot be read. */
symtab_t *kallsyms_load(const char *path, bool *restricted);

#endif
