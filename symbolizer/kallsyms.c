/* /proc/kallsyms parsing; see kallsyms.h. */
#include "symbolizer/kallsyms.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* kallsyms has no sizes: a symbol ends where the next text symbol starts,
 * but never more than this past its start (the last symbol of a module is
 * followed by unrelated memory). */
#define KALLSYMS_MAX_FUNC (1u << 20)
#define KALLSYMS_LINE_MAX 1024

symtab_t *
kallsyms_load(const char *path, bool *restricted)
{
    symtab_t *tab = NULL;
    char line[KALLSYMS_LINE_MAX];
    uint64_t nonzero = 0, lines = 0;
    FILE *f = fopen(path, "re");
    *restricted = false;
    if (!f)
        goto cleanup;
    tab = symtab_new();
    if (!tab)
        goto cleanup;
    while (fgets(line, sizeof(line), f)) {
        /* "ffffffff81000000 T _stext" or "... t name\t[module]" */
        char *end;
        errno = 0;
        uint64_t addr = strtoull(line, &end, 16);
        if (errno || end == line || end[0] != ' ' || !end[1] || end[2] != ' ')
            continue;
        lines++;
        char type = end[1];
        if (addr)
            nonzero++;
        if (!addr || (type != 't' && type != 'T' && type != 'w' &&
                      type != 'W'))
            continue;
        char *name = end + 3;
        size_t len = strcspn(name, " \t\r\n");
        if (len == 0)
            continue;
        int rank = (type == 'T') ? SYMTAB_RANK_GLOBAL
                 : (type == 'W' || type == 'w') ? SYMTAB_RANK_WEAK
                 : SYMTAB_RANK_LOCAL;
        if (symtab_add(tab, addr, 0, addr + KALLSYMS_MAX_FUNC, name, len,
                       rank) < 0) {
            symtab_destroy(&tab);
            goto cleanup;
        }
    }
    if (ferror(f) || symtab_finish(tab, 0) < 0) {
        symtab_destroy(&tab);
        goto cleanup;
    }
    *restricted = lines > 0 && nonzero == 0;
cleanup:
    if (f)
        fclose(f);
    return tab;
}
