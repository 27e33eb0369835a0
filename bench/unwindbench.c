/* unwindbench: what the unwind tables (lib/unwind_table) cost, for
 * bench/unwind.py.
 *
 *   unwindbench objects ROUNDS FILE...
 *       per FILE, one line: the table built ROUNDS times from the open
 *       file, the median build time and the table's size:
 *         object=<path> ms=<median> rows=<n> bytes=<n> fdes=<n>
 *         file_bytes=<n> errors=<sum of counted errors>
 *   unwindbench host
 *       every executable file mapping of every process in /proc, each
 *       object built once (keyed by device and inode, as the collector
 *       shares them between processes), and one line:
 *         processes=<n> objects=<n> rows=<n> bytes=<n> ms=<total build>
 *         failed=<objects that could not be opened>
 *
 * Times are wall clock of this process alone; the figures are meant to
 * be read against each other in one run, not as absolutes. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "unwind_table.h"

static uint64_t
s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int
s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static size_t
s_errors(const unwind_summary_t *s)
{
    size_t n = 0;
    for (int e = 0; e < UNWIND_ERR_COUNT; e++)
        n += s->errors[e];
    return n;
}

/* One object, rounds times: 0, or -1 when it cannot be opened. */
static int
s_object(const char *path, int rounds)
{
    int rc = -1;
    uint64_t *ns = calloc((size_t)rounds, sizeof *ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    unwind_summary_t sum;

    memset(&sum, 0, sizeof sum);
    if (!ns || fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "unwindbench: cannot open %s\n", path);
        goto cleanup;
    }
    for (int r = 0; r < rounds; r++) {
        uint64_t t0 = s_now_ns();
        unwind_table_t *t = unwind_table_new_fd(fd, NULL);
        ns[r] = s_now_ns() - t0;
        if (!t)
            goto cleanup;
        unwind_table_summary(t, &sum);
        unwind_table_destroy(&t);
    }
    qsort(ns, (size_t)rounds, sizeof *ns, s_cmp_u64);
    printf("object=%s ms=%.3f rows=%zu bytes=%zu fdes=%zu file_bytes=%lld "
           "errors=%zu\n", path, ns[rounds / 2] / 1e6, sum.rows, sum.bytes,
           sum.fdes, (long long)st.st_size, s_errors(&sum));
    rc = 0;
cleanup:
    if (fd >= 0)
        close(fd);
    free(ns);
    return rc;
}

typedef struct {
    dev_t dev;
    ino_t ino;
} objkey_t;

/* Every executable object mapped by a process of the host, built once. */
static int
s_host(void)
{
    int rc = -1;
    DIR *proc = opendir("/proc");
    objkey_t *seen = NULL;
    size_t nseen = 0, cap = 0, rows = 0, bytes = 0, processes = 0, failed = 0;
    uint64_t ns = 0;
    char line[4096];

    if (!proc)
        goto cleanup;
    for (struct dirent *d; (d = readdir(proc));) {
        if (!isdigit((unsigned char)d->d_name[0]))
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/%s/maps", d->d_name);
        FILE *maps = fopen(path, "r");
        if (!maps)
            continue;   /* gone, or a kernel thread we may not read */
        processes++;
        while (fgets(line, sizeof line, maps)) {
            char perms[8], file[4096] = "";
            if (sscanf(line, "%*x-%*x %7s %*x %*s %*u %4095[^\n]", perms,
                       file) != 2 || perms[2] != 'x' || file[0] != '/')
                continue;
            /* The mapped file through the process's view of it, so files
             * of other mount namespaces (containers) are found too. */
            char *start = strchr(line, ' ');
            char range[64] = "";
            if (start && (size_t)(start - line) < sizeof range)
                memcpy(range, line, (size_t)(start - line));
            char mf[400];
            snprintf(mf, sizeof mf, "/proc/%s/map_files/%s", d->d_name, range);
            int fd = open(mf, O_RDONLY | O_CLOEXEC);
            struct stat st;
            if (fd < 0 || fstat(fd, &st) != 0) {
                if (fd >= 0)
                    close(fd);
                failed++;
                continue;
            }
            size_t i = 0;
            while (i < nseen && !(seen[i].dev == st.st_dev &&
                                  seen[i].ino == st.st_ino))
                i++;
            if (i < nseen) {
                close(fd);
                continue;
            }
            if (nseen == cap) {
                size_t ncap = cap ? cap * 2 : 256;
                objkey_t *p = realloc(seen, ncap * sizeof *p);
                if (!p) {
                    close(fd);
                    fclose(maps);
                    goto cleanup;
                }
                seen = p;
                cap = ncap;
            }
            seen[nseen++] = (objkey_t){ st.st_dev, st.st_ino };
            uint64_t t0 = s_now_ns();
            unwind_table_t *t = unwind_table_new_fd(fd, NULL);
            ns += s_now_ns() - t0;
            close(fd);
            if (!t) {
                fclose(maps);
                goto cleanup;
            }
            unwind_summary_t sum;
            unwind_table_summary(t, &sum);
            rows += sum.rows;
            bytes += sum.bytes;
            unwind_table_destroy(&t);
        }
        fclose(maps);
    }
    printf("processes=%zu objects=%zu rows=%zu bytes=%zu ms=%.1f failed=%zu\n",
           processes, nseen, rows, bytes, ns / 1e6, failed);
    rc = 0;
cleanup:
    if (proc)
        closedir(proc);
    free(seen);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "objects") == 0) {
        int rounds = atoi(argv[2]);
        if (rounds < 1 || rounds > 1000)
            rounds = 5;
        int rc = 0;
        for (int i = 3; i < argc; i++)
            rc |= s_object(argv[i], rounds) != 0;
        return rc;
    }
    if (argc == 2 && strcmp(argv[1], "host") == 0)
        return s_host() == 0 ? 0 : 1;
    fprintf(stderr, "usage: unwindbench objects ROUNDS FILE... | "
                    "unwindbench host\n");
    return 2;
}
