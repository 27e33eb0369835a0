/* symbench: measures the symbolizer library on one ELF object.
 *
 *   symbench OBJECT N ROUNDS ADDR_OUT NAMES_OUT
 *
 * Picks N pseudo-random addresses inside sized function symbols of OBJECT
 * (fixed seed, so runs compare), writes them as virtual addresses to
 * ADDR_OUT (for llvm-symbolizer), resolves them through the symbolizer as
 * (object, file offset) frames like the stage does, writes the names to
 * NAMES_OUT, and prints:
 *
 *   cold_ms=<first pass, including loading the object>
 *   warm_ns_per_lookup=<mean over ROUNDS further passes>
 *   best_pass_ns_per_lookup=<the fastest of those passes>
 *   resolved=<names found in the last pass>/<N>
 */
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "symbolizer/symbolize.h"

typedef struct {
    uint64_t vaddr;
    uint64_t offset;
} addr_t;

static uint64_t
s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
s_rand(uint64_t *state)
{
    /* xorshift64*: reproducible, no libc state */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ull;
}

/* Fills addrs with n addresses inside sized function symbols. */
static int
s_pick(const char *path, addr_t *addrs, size_t n)
{
    int rc = -1;
    int fd = open(path, O_RDONLY);
    Elf *elf = NULL;
    GElf_Sym *funcs = NULL;
    size_t nfuncs = 0, cap = 0;
    GElf_Phdr loads[16];
    size_t nloads = 0, nph = 0;
    if (fd < 0 || elf_version(EV_CURRENT) == EV_NONE ||
        !(elf = elf_begin(fd, ELF_C_READ, NULL)) ||
        elf_getphdrnum(elf, &nph) != 0)
        goto cleanup;
    for (size_t i = 0; i < nph && nloads < 16; i++)
        if (gelf_getphdr(elf, (int)i, &loads[nloads]) &&
            loads[nloads].p_type == PT_LOAD)
            nloads++;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) ||
            (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        for (size_t i = 0; d && i < d->d_size / sh.sh_entsize; i++) {
            GElf_Sym sym;
            if (!gelf_getsym(d, (int)i, &sym) ||
                GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
                sym.st_shndx == SHN_UNDEF || !sym.st_value || !sym.st_size)
                continue;
            if (nfuncs == cap) {
                cap = cap ? cap * 2 : 4096;
                GElf_Sym *f = realloc(funcs, cap * sizeof(*f));
                if (!f)
                    goto cleanup;
                funcs = f;
            }
            funcs[nfuncs++] = sym;
        }
    }
    if (!nfuncs)
        goto cleanup;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        const GElf_Sym *f = &funcs[s_rand(&seed) % nfuncs];
        uint64_t va = f->st_value + s_rand(&seed) % f->st_size;
        addrs[i].vaddr = va;
        addrs[i].offset = UINT64_MAX;
        for (size_t j = 0; j < nloads; j++)
            if (va >= loads[j].p_vaddr &&
                va < loads[j].p_vaddr + loads[j].p_filesz)
                addrs[i].offset = va - loads[j].p_vaddr + loads[j].p_offset;
    }
    rc = 0;
cleanup:
    free(funcs);
    if (elf)
        elf_end(elf);
    if (fd >= 0)
        close(fd);
    return rc;
}

int
main(int argc, char **argv)
{
    int rc = 1;
    addr_t *addrs = NULL;
    symbolizer_t *sym = NULL;
    FILE *af = NULL, *nf = NULL;
    if (argc != 6) {
        fprintf(stderr, "usage: symbench OBJECT N ROUNDS ADDR_OUT NAMES_OUT\n");
        goto cleanup;
    }
    log_init("symbench", LOG_LVL_WARN);
    const char *path = argv[1];
    size_t n = strtoul(argv[2], NULL, 10);
    int rounds = atoi(argv[3]);
    addrs = calloc(n ? n : 1, sizeof(*addrs));
    if (!addrs || !n || rounds < 1 || s_pick(path, addrs, n) < 0) {
        fprintf(stderr, "symbench: no function symbols in %s\n", path);
        goto cleanup;
    }
    af = fopen(argv[4], "w");
    nf = fopen(argv[5], "w");
    if (!af || !nf)
        goto cleanup;
    for (size_t i = 0; i < n; i++)
        fprintf(af, "0x%" PRIx64 "\n", addrs[i].vaddr);

    symbolizer_opts_t o;
    symbolizer_opts_default(&o);
    o.cache_size = 1ull << 30;
    sym = symbolizer_new(&o);
    if (!sym)
        goto cleanup;
    wire_object_t obj;
    memset(&obj, 0, sizeof(obj));
    obj.type = WIRE_OBJ_LIB;
    obj.path = path;
    /* Keyed by device + inode, as collector objects without a build-id. */
    struct stat sb;
    if (stat(path, &sb) == 0) {
        obj.dev = (uint64_t)sb.st_dev;
        obj.ino = (uint64_t)sb.st_ino;
    }
    const char *name;
    uint8_t type;

    uint64_t t0 = s_now_ns();
    for (size_t i = 0; i < n; i++)
        symbolizer_resolve_user(sym, &obj, 0, addrs[i].offset, &name, &type);
    uint64_t t1 = s_now_ns();
    size_t resolved = 0;
    /* The best pass is reported besides the mean: on a shared machine the
     * mean mostly measures the neighbours. */
    uint64_t best = UINT64_MAX;
    uint64_t t2 = s_now_ns();
    for (int r = 0; r < rounds; r++) {
        uint64_t p0 = s_now_ns();
        for (size_t i = 0; i < n; i++)
            resolved += symbolizer_resolve_user(sym, &obj, 0, addrs[i].offset,
                                                &name, &type) == 0;
        uint64_t p1 = s_now_ns();
        if (p1 - p0 < best)
            best = p1 - p0;
    }
    uint64_t t3 = s_now_ns();
    for (size_t i = 0; i < n; i++) {
        symbolizer_resolve_user(sym, &obj, 0, addrs[i].offset, &name, &type);
        fprintf(nf, "%s\n", name);
    }
    symbolizer_stats_t st;
    symbolizer_get_stats(sym, &st);
    printf("cold_ms=%.2f\n", (double)(t1 - t0) / 1e6);
    printf("warm_ns_per_lookup=%.1f\n",
           (double)(t3 - t2) / ((double)n * rounds));
    printf("best_pass_ns_per_lookup=%.1f\n", (double)best / (double)n);
    printf("resolved=%zu/%zu\n", resolved / (size_t)rounds, n);
    printf("cache_bytes=%" PRIu64 "\n", st.cache_bytes);
    rc = 0;
cleanup:
    if (af)
        fclose(af);
    if (nf)
        fclose(nf);
    symbolizer_destroy(&sym);
    free(addrs);
    return rc;
}
