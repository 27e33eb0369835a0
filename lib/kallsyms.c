/* /proc/kallsyms readers; see kallsyms.h. */
#include "kallsyms.h"

#include <stdio.h>
#include <string.h>

/* Calls fn for every "address type name" line; fn returns nonzero to
 * stop. 0, or -1 when the file cannot be read. */
static int s_each(int (*fn)(void *arg, uint64_t addr, const char *name),
                  void *arg)
{
    FILE *f = fopen("/proc/kallsyms", "re");
    char line[512], name[256];

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long addr;
        char type;
        if (sscanf(line, "%llx %c %255s", &addr, &type, name) == 3 &&
            fn(arg, addr, name))
            break;
    }
    fclose(f);
    return 0;
}

typedef struct {
    const char *const *names;
    size_t n;
    uint64_t *addrs;
} s_addrs_t;

static int s_match_addrs(void *arg, uint64_t addr, const char *name)
{
    s_addrs_t *a = arg;

    for (size_t i = 0; i < a->n; i++)
        if (!a->addrs[i] && strcmp(name, a->names[i]) == 0)
            a->addrs[i] = addr;
    return 0;
}

int kallsyms_addrs(const char *const *names, size_t n, uint64_t *addrs)
{
    s_addrs_t a = { names, n, addrs };

    memset(addrs, 0, n * sizeof(*addrs));
    return s_each(s_match_addrs, &a);
}

typedef struct {
    uint64_t lo, hi;
} s_range_t;

/* The file is not sorted by address: the lowest address above lo. */
static int s_match_above(void *arg, uint64_t addr, const char *name)
{
    s_range_t *r = arg;

    (void)name;
    if (addr > r->lo && addr < r->hi)
        r->hi = addr;
    return 0;
}

int kallsyms_range(const char *name, uint64_t *lo, uint64_t *hi)
{
    const char *names[1] = { name };
    s_range_t r = { 0, UINT64_MAX };

    if (kallsyms_addrs(names, 1, &r.lo) < 0 || !r.lo ||
        s_each(s_match_above, &r) < 0 || r.hi == UINT64_MAX)
        return -1;
    *lo = r.lo;
    *hi = r.hi;
    return 0;
}
