/* Perf map parsing; see perfmap.h. */
#include "symbolizer/perfmap.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbolizer/elfobj.h"

/* Longest line handled; longer lines (absurd names) are skipped whole. */
#define PERFMAP_LINE_MAX 4096

static void
s_stamp_of(const struct stat *st, perfmap_stamp_t *out)
{
    out->size = (uint64_t)st->st_size;
    out->ino = (uint64_t)st->st_ino;
    out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 +
                    st->st_mtim.tv_nsec;
}

int
perfmap_stamp(const char *path, perfmap_stamp_t *out)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -1;
    s_stamp_of(&st, out);
    return 0;
}

/* Parses one line; 0 ok, -1 malformed. name points into line. */
static int
s_parse_line(char *line, uint64_t *start, uint64_t *size, char **name)
{
    char *end;
    errno = 0;
    *start = strtoull(line, &end, 16);
    if (errno || end == line || !isspace((unsigned char)*end))
        return -1;
    char *p = end;
    *size = strtoull(p, &end, 16);
    if (errno || end == p || !isspace((unsigned char)*end))
        return -1;
    while (*end == ' ' || *end == '\t')
        end++;
    size_t len = strcspn(end, "\r\n");
    end[len] = '\0';
    if (len == 0)
        return -1;
    *name = end;
    return 0;
}

symtab_t *
perfmap_load(const char *path, perfmap_stamp_t *stamp, uint64_t *bad_lines)
{
    symtab_t *tab = NULL;
    FILE *f = NULL;
    char *line = NULL;
    uint64_t bad = 0;
    int fd = elf_open_regular(path);
    if (fd < 0)
        goto cleanup;
    struct stat st;
    if (fstat(fd, &st) < 0 || !(f = fdopen(fd, "r"))) {
        close(fd);
        goto cleanup;
    }
    line = malloc(PERFMAP_LINE_MAX);
    tab = symtab_new();
    if (!line || !tab)
        goto fail;
    int skipping = 0;   /* inside an over-long line */
    while (fgets(line, PERFMAP_LINE_MAX, f)) {
        int complete = strchr(line, '\n') != NULL || feof(f);
        if (skipping) {
            skipping = !complete;
            continue;
        }
        if (!complete) {
            skipping = 1;
            bad++;
            continue;
        }
        uint64_t start, size;
        char *name;
        if (s_parse_line(line, &start, &size, &name) < 0) {
            bad++;
            continue;
        }
        /* A size-0 entry covers only its start address: guessing further
         * would attribute code to a function that was never there. */
        uint64_t limit = start + (size ? size : 1);
        if (symtab_add(tab, start, size ? size : 1, limit, name, strlen(name),
                       SYMTAB_RANK_GLOBAL) < 0)
            goto fail;
    }
    if (ferror(f))
        goto fail;
    /* JITs reuse freed code memory: the line written last describes what
     * is at an address now. */
    if (symtab_finish(tab, 1) < 0)
        goto fail;
    if (stamp)
        s_stamp_of(&st, stamp);
    goto cleanup;
fail:
    symtab_destroy(&tab);
cleanup:
    if (bad_lines)
        *bad_lines = bad;
    free(line);
    if (f)
        fclose(f);
    return tab;
}
