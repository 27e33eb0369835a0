/* Perf map parsing; see perfmap.h. */
#include "symbolizer/perfmap.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "safe_open.h"

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
perfmap_stamp(const perfmap_src_t *src, perfmap_stamp_t *out)
{
    struct stat st;
    int fd = safe_open_pid(src->root_pid, src->path, 0, &st);
    if (fd < 0)
        return -1;
    close(fd);
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
perfmap_load_fd(int fd, const perfmap_src_t *src, perfmap_stamp_t *stamp,
                uint64_t *bad_lines, perfmap_status_t *status)
{
    symtab_t *tab = NULL;
    FILE *f = NULL;
    char *line = NULL;
    uint64_t bad = 0;
    perfmap_status_t rc = PERFMAP_UNREADABLE;
    struct stat st;
    if (fd < 0)
        goto cleanup;
    if (fstat(fd, &st) < 0 || !(f = fdopen(fd, "r"))) {
        close(fd);
        goto cleanup;
    }
    if (src->max_size && (uint64_t)st.st_size > src->max_size) {
        rc = PERFMAP_TOO_LARGE;
        goto cleanup;
    }
    rc = PERFMAP_NO_MEMORY;
    line = malloc(PERFMAP_LINE_MAX);
    tab = symtab_new();
    if (!line || !tab)
        goto fail;
    int skipping = 0;   /* inside an over-long line */
    while (fgets(line, PERFMAP_LINE_MAX, f)) {
        size_t len = strlen(line);
        /* The JIT may keep appending while we read: take no more than the
         * bound whatever the size was when we looked. */
        off_t taken = ftello(f);
        if (src->max_size && (taken < 0 || (uint64_t)taken > src->max_size)) {
            rc = PERFMAP_TOO_LARGE;
            goto fail;
        }
        int complete = (len && line[len - 1] == '\n') || feof(f);
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
        if (src->max_table && symtab_bytes(tab) > src->max_table) {
            rc = PERFMAP_TOO_LARGE;
            goto fail;
        }
    }
    if (ferror(f)) {
        rc = PERFMAP_UNREADABLE;
        goto fail;
    }
    /* JITs reuse freed code memory: the line written last describes what
     * is at an address now. */
    if (symtab_finish(tab, 1) < 0)
        goto fail;
    if (stamp)
        s_stamp_of(&st, stamp);
    rc = PERFMAP_OK;
    goto cleanup;
fail:
    symtab_destroy(&tab);
cleanup:
    if (rc == PERFMAP_TOO_LARGE)
        log_debug("symbolizer: %s: perf map over its bounds (%llu bytes of "
                  "map, %llu of table), refused", src->path,
                  (unsigned long long)src->max_size,
                  (unsigned long long)src->max_table);
    if (bad_lines)
        *bad_lines = bad;
    if (status)
        *status = rc;
    free(line);
    if (f)
        fclose(f);
    return tab;
}

symtab_t *
perfmap_load(const perfmap_src_t *src, perfmap_stamp_t *stamp,
             uint64_t *bad_lines, perfmap_status_t *status)
{
    /* The size bound is applied after the open (perfmap_load_fd), where
     * the refusal is reported as PERFMAP_TOO_LARGE. */
    int fd = safe_open_pid(src->root_pid, src->path, 0, NULL);
    return perfmap_load_fd(fd, src, stamp, bad_lines, status);
}
