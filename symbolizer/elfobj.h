/* Reading what the symbolizer needs from one ELF image (file or memory):
 * the build-id and the .gnu_debuglink (lib/elfid.h, as every stage reads
 * them), and through libelf the PT_LOAD segments (file offset -> virtual
 * address) and the function symbols of .symtab and .dynsym. Every read is bounds-checked: a truncated or hostile file gives
 * an error, never a crash. */
#ifndef SKYPROF_SYMBOLIZER_ELFOBJ_H
#define SKYPROF_SYMBOLIZER_ELFOBJ_H

#include <stddef.h>
#include <stdint.h>

#include "elfid.h"
#include "symbolizer/symtab.h"

#define ELFOBJ_MAX_BUILD_ID ELFID_BUILD_ID_MAX
#define ELFOBJ_MAX_LOADS 16

typedef struct elfobj elfobj_t;

typedef struct {
    uint64_t offset;   /* p_offset */
    uint64_t filesz;   /* p_filesz */
    uint64_t vaddr;    /* p_vaddr */
} elf_load_t;

/* What elfobj_add_symbols returns when a table would exceed max_bytes. */
#define ELFOBJ_TOO_LARGE (-2)

/* Takes ownership of fd (closed by destroy, also on failure); open it
 * with lib/safe_open.h. what names the file in log lines. NULL when the
 * file is not a usable ELF, or uses extended section or segment numbering
 * (which would let a small sparse file make libelf allocate gigabytes
 * before any of our bounds could apply). */
elfobj_t *elfobj_open_fd(int fd, const char *what);
/* An image already in memory (the vdso); not copied, must outlive. */
elfobj_t *elfobj_open_mem(const void *image, size_t size, const char *what);
void elfobj_destroy(elfobj_t **self_p);

/* Build-id length (0 when absent); copies up to ELFOBJ_MAX_BUILD_ID. */
size_t elfobj_build_id(const elfobj_t *self, uint8_t *out);
/* The .gnu_debuglink file name and its CRC32, or NULL. */
const char *elfobj_debuglink(const elfobj_t *self, uint32_t *crc);

/* PT_LOAD segments, at most ELFOBJ_MAX_LOADS. */
size_t elfobj_loads(const elfobj_t *self, elf_load_t *out, size_t max);

/* 1 when the image has a .symtab with at least one function symbol
 * (i.e. it is not stripped), else 0. Looks at no symbol table larger than
 * max_bytes (0: no bound). */
int elfobj_has_full_symtab(const elfobj_t *self, uint64_t max_bytes);

/* Adds the function symbols (STT_FUNC, STT_GNU_IFUNC) of .symtab and
 * .dynsym to tab. Returns how many were added, -1 on allocation failure,
 * ELFOBJ_TOO_LARGE when a symbol or string table section is larger than
 * max_bytes, or tab grows past max_bytes (0: no bound) -- checked before
 * a section is read, so a header claiming gigabytes costs nothing. */
long elfobj_add_symbols(const elfobj_t *self, symtab_t *tab,
                        uint64_t max_bytes);

/* How far past the entry point the entry label reaches at most: glibc's
 * _start is 0x26 bytes on x86-64, the loader's RTLD_START (_start and
 * _dl_start_user, no symbol and no CFI in Debian's ld.so) 0x3d. */
#define ELFOBJ_ENTRY_LABEL_MAX 64

/* Names a program's entry code `_start` when no symbol does: in a
 * executable (ET_EXEC, or PT_INTERP without DT_SONAME) and in the
 * dynamic loader (DT_SONAME "ld-..."), whose entry is the root of every
 * stack taken before main. Not in other libraries (libc.so.6 has
 * PT_INTERP and an entry that prints its version: it is no process
 * root). 1 when added, 0 when
 * not, -1 on allocation failure. */
int elfobj_add_entry_label(const elfobj_t *self, symtab_t *tab);

/* File offset -> virtual address through the PT_LOAD segments; 0 and the
 * address in *vaddr, -1 when no segment holds the offset. */
int elf_offset_to_vaddr(const elf_load_t *loads, size_t nloads,
                        uint64_t offset, uint64_t *vaddr);

#endif
