/* ELF reading as the symbolizer does it (symbolizer/elfobj.c): the input
 * becomes a file (a memfd, so the fd path with its header checks is the
 * one exercised) and is opened, its build-id, .gnu_debuglink and PT_LOAD
 * segments read, its .symtab/.dynsym loaded into a table within a bound,
 * and a few addresses looked up. The same bytes also go through the
 * in-memory path used for the vdso. */
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "symbolizer/elfobj.h"
#include "symbolizer/symtab.h"

/* As the symbolizer's default cache: the bound every table is held to. */
#define FUZZ_MAX_TABLE (64u << 20)

static int
s_file_of(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_elf", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    return fd;
}

static void
s_exercise(elfobj_t *obj)
{
    uint8_t id[ELFOBJ_MAX_BUILD_ID];
    uint32_t crc;
    elf_load_t loads[ELFOBJ_MAX_LOADS];
    (void)elfobj_build_id(obj, id);
    (void)elfobj_debuglink(obj, &crc);
    size_t nloads = elfobj_loads(obj, loads, ELFOBJ_MAX_LOADS);
    (void)elfobj_has_full_symtab(obj, FUZZ_MAX_TABLE);
    symtab_t *tab = symtab_new();
    if (!tab)
        return;
    if (elfobj_add_symbols(obj, tab, FUZZ_MAX_TABLE) >= 0 &&
        elfobj_add_entry_label(obj, tab) >= 0 &&
        symtab_finish(tab, 0) == 0) {
        for (size_t i = 0; i < nloads; i++) {
            uint64_t vaddr;
            uint64_t probes[3] = { loads[i].offset,
                                   loads[i].offset + loads[i].filesz / 2,
                                   loads[i].offset + 1 };
            for (int k = 0; k < 3; k++)
                if (elf_offset_to_vaddr(loads, nloads, probes[k], &vaddr) == 0)
                    (void)symtab_lookup(tab, vaddr, NULL);
        }
    }
    symtab_destroy(&tab);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = s_file_of(data, size);
    if (fd >= 0) {
        elfobj_t *obj = elfobj_open_fd(fd, "fuzz");   /* owns fd */
        if (obj)
            s_exercise(obj);
        elfobj_destroy(&obj);
    }
    elfobj_t *mem = elfobj_open_mem(data, size, "fuzz-mem");
    if (mem)
        s_exercise(mem);
    elfobj_destroy(&mem);
    return 0;
}
