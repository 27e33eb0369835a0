/* Does an executable carry symbols a profile can use? Decides the
 * `support_ebpf_profiling` property: the OAP only offers tasks for
 * processes where it is "true", so a stripped binary with no debug file is
 * reported honestly as unsupported instead of yielding empty flame graphs.
 *
 * Yes when the ELF file has a .symtab or .dynsym with at least one defined
 * function, or a separate debug file is installed (by build-id under
 * <debug_dir>/.build-id/, or by .gnu_debuglink). Answers are cached by
 * device and inode, bounded. */
#ifndef SKYPROF_COLLECTOR_SYMCHECK_H
#define SKYPROF_COLLECTOR_SYMCHECK_H

#include <stdbool.h>

typedef struct symcheck symcheck_t;

/* debug_dir: root of separate debug files ("/usr/lib/debug"). */
symcheck_t *symcheck_new(const char *debug_dir);
void symcheck_destroy(symcheck_t **self_p);

/* path is opened as given (use /proc/PID/exe to see through mount
 * namespaces). Unreadable or non-ELF files answer false. */
bool symcheck_has_symbols(symcheck_t *self, const char *path);

#endif
