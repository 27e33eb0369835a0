/* ELF reading through libelf (gelf). Files are opened with ELF_C_READ, not
 * ELF_C_READ_MMAP: libelf then pread()s only the sections asked for, and a
 * binary truncated by someone else while we read it gives a read error
 * instead of a SIGBUS. */
#include "symbolizer/elfobj.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfid.h"
#include "log.h"

struct elfobj {
    int fd;
    Elf *elf;
    elfid_t id;                 /* build-id and debuglink (lib/elfid.h) */
    elf_load_t loads[ELFOBJ_MAX_LOADS];
    size_t nloads;
};

static int
s_libelf_ready(void)
{
    static int state = 0;   /* 0 unknown, 1 ok, -1 unusable */
    if (state == 0)
        state = elf_version(EV_CURRENT) == EV_NONE ? -1 : 1;
    return state == 1 ? 0 : -1;
}

static void
s_read_loads(elfobj_t *self)
{
    size_t nph = 0;
    if (elf_getphdrnum(self->elf, &nph) != 0)
        return;
    for (size_t i = 0; i < nph && self->nloads < ELFOBJ_MAX_LOADS; i++) {
        GElf_Phdr phdr;
        if (!gelf_getphdr(self->elf, (int)i, &phdr) || phdr.p_type != PT_LOAD)
            continue;
        elf_load_t *l = &self->loads[self->nloads++];
        l->offset = phdr.p_offset;
        l->filesz = phdr.p_filesz;
        l->vaddr = phdr.p_vaddr;
    }
}

/* Takes ownership of fd and elf: both are released on failure. id is
 * what lib/elfid.h read from the same file or image. */
static elfobj_t *
s_open(int fd, Elf *elf, const elfid_t *id, const char *what)
{
    elfobj_t *self = NULL;
    GElf_Ehdr ehdr;
    if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &ehdr)) {
        log_debug("symbolizer: %s: not an ELF file", what);
        goto cleanup;
    }
    if (ehdr.e_type != ET_EXEC && ehdr.e_type != ET_DYN) {
        log_debug("symbolizer: %s: ELF type %u is not loadable", what,
                  (unsigned)ehdr.e_type);
        goto cleanup;
    }
    self = calloc(1, sizeof(*self));
    if (!self)
        goto cleanup;
    self->fd = fd;
    self->elf = elf;
    self->id = *id;
    s_read_loads(self);
cleanup:
    if (!self) {
        if (elf)
            elf_end(elf);
        if (fd >= 0)
            close(fd);
    }
    return self;
}

/* libelf sizes its section array from the header before anything can be
 * checked: e_shnum is at most 65535, but extended numbering (e_shnum 0,
 * the count in section 0) or PN_XNUM program headers may claim billions,
 * bounded only by the file size, which a sparse file makes huge. No
 * executable or shared library needs either, so both are refused. */
static int
s_header_sane(int fd, const char *what)
{
    union {
        unsigned char ident[EI_NIDENT];
        Elf32_Ehdr e32;
        Elf64_Ehdr e64;
    } h;
    ssize_t n = pread(fd, &h, sizeof(h), 0);
    if (n < (ssize_t)EI_NIDENT || memcmp(h.ident, ELFMAG, SELFMAG) != 0)
        return 0;                 /* not ELF: libelf says so cheaply */
    bool is64 = h.ident[EI_CLASS] == ELFCLASS64;
    if (n < (ssize_t)(is64 ? sizeof(h.e64) : sizeof(h.e32)))
        return 0;
    bool swap = h.ident[EI_DATA] ==
                (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2MSB
                                                           : ELFDATA2LSB);
    uint16_t shnum = is64 ? h.e64.e_shnum : h.e32.e_shnum;
    uint16_t phnum = is64 ? h.e64.e_phnum : h.e32.e_phnum;
    uint64_t shoff = is64 ? h.e64.e_shoff : h.e32.e_shoff;
    if (swap) {
        shnum = __builtin_bswap16(shnum);
        phnum = __builtin_bswap16(phnum);
    }
    if ((shnum == 0 && shoff != 0) || phnum == PN_XNUM) {
        log_debug("symbolizer: %s: extended section/segment numbering, "
                  "refused", what);
        return -1;
    }
    return 0;
}

elfobj_t *
elfobj_open_fd(int fd, const char *what)
{
    if (fd < 0)
        return NULL;
    if (s_libelf_ready() < 0 || s_header_sane(fd, what) < 0) {
        close(fd);
        return NULL;
    }
    elfid_t id;
    elfid_read_fd(fd, &id);   /* not ELF: zeroed, and libelf says so too */
    return s_open(fd, elf_begin(fd, ELF_C_READ, NULL), &id, what);
}

elfobj_t *
elfobj_open_mem(const void *image, size_t size, const char *what)
{
    elfid_t id;
    if (!image || size == 0 || s_libelf_ready() < 0)
        return NULL;
    elfid_read_mem(image, size, &id);
    /* libelf wants a mutable pointer but only reads in ELF_C_READ mode. */
    return s_open(-1, elf_memory((char *)(uintptr_t)image, size), &id, what);
}

void
elfobj_destroy(elfobj_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    elfobj_t *self = *self_p;
    elf_end(self->elf);
    if (self->fd >= 0)
        close(self->fd);
    free(self);
    *self_p = NULL;
}

size_t
elfobj_build_id(const elfobj_t *self, uint8_t *out)
{
    memcpy(out, self->id.build_id, self->id.build_id_len);
    return self->id.build_id_len;
}

const char *
elfobj_debuglink(const elfobj_t *self, uint32_t *crc)
{
    if (crc)
        *crc = self->id.debuglink_crc;
    return self->id.debuglink[0] ? self->id.debuglink : NULL;
}

size_t
elfobj_loads(const elfobj_t *self, elf_load_t *out, size_t max)
{
    size_t n = self->nloads < max ? self->nloads : max;
    memcpy(out, self->loads, n * sizeof(*out));
    return n;
}

static bool
s_is_function(const GElf_Sym *sym)
{
    int type = GELF_ST_TYPE(sym->st_info);
    return (type == STT_FUNC || type == STT_GNU_IFUNC) &&
           sym->st_shndx != SHN_UNDEF && sym->st_shndx < SHN_LORESERVE &&
           sym->st_value != 0;
}

static bool
s_within(uint64_t size, uint64_t max_bytes)
{
    return max_bytes == 0 || size <= max_bytes;
}

int
elfobj_has_full_symtab(const elfobj_t *self, uint64_t max_bytes)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(self->elf, scn))) {
        GElf_Shdr shdr;
        if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_SYMTAB ||
            shdr.sh_entsize == 0 || !s_within(shdr.sh_size, max_bytes))
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        if (!data)
            continue;
        size_t n = data->d_size / shdr.sh_entsize;
        for (size_t i = 0; i < n; i++) {
            GElf_Sym sym;
            if (gelf_getsym(data, (int)i, &sym) && s_is_function(&sym))
                return 1;
        }
    }
    return 0;
}

static int
s_rank(const GElf_Sym *sym)
{
    switch (GELF_ST_BIND(sym->st_info)) {
    case STB_GLOBAL: return SYMTAB_RANK_GLOBAL;
    case STB_WEAK:   return SYMTAB_RANK_WEAK;
    default:         return SYMTAB_RANK_LOCAL;
    }
}

/* Symbols of one symbol-table section. section_end[i] is the end address
 * of section i: the bound for symbols whose size is 0. */
static long
s_add_section(const elfobj_t *self, Elf_Scn *scn, const GElf_Shdr *shdr,
              const uint64_t *section_end, size_t nsections, symtab_t *tab,
              uint64_t max_bytes)
{
    long added = 0;
    GElf_Shdr strtab;
    /* Both tables are read whole by libelf: refuse before, not after. */
    if (!s_within(shdr->sh_size, max_bytes) ||
        (gelf_getshdr(elf_getscn(self->elf, shdr->sh_link), &strtab) &&
         !s_within(strtab.sh_size, max_bytes))) {
        added = ELFOBJ_TOO_LARGE;
        goto cleanup;
    }
    Elf_Data *data = elf_getdata(scn, NULL);
    if (!data || shdr->sh_entsize == 0)
        goto cleanup;
    size_t n = data->d_size / shdr->sh_entsize;
    for (size_t i = 0; i < n; i++) {
        GElf_Sym sym;
        if (!gelf_getsym(data, (int)i, &sym) || !s_is_function(&sym))
            continue;
        const char *name = elf_strptr(self->elf, shdr->sh_link, sym.st_name);
        if (!name || !name[0])
            continue;
        uint64_t limit = sym.st_shndx < nsections ? section_end[sym.st_shndx]
                                                  : sym.st_value + 1;
        if (symtab_add(tab, sym.st_value, sym.st_size, limit, name,
                       strlen(name), s_rank(&sym)) < 0) {
            added = -1;
            goto cleanup;
        }
        if (!s_within(symtab_bytes(tab), max_bytes)) {
            added = ELFOBJ_TOO_LARGE;
            goto cleanup;
        }
        added++;
    }
cleanup:
    return added;
}

long
elfobj_add_symbols(const elfobj_t *self, symtab_t *tab, uint64_t max_bytes)
{
    long total = 0;
    uint64_t *section_end = NULL;
    size_t nsections = 0;
    if (elf_getshdrnum(self->elf, &nsections) != 0 || nsections == 0)
        goto cleanup;
    /* Bound what a hostile e_shnum can make us allocate: the table needs
     * real section headers behind it, which libelf has already read. */
    if (nsections > 1u << 20)
        nsections = 1u << 20;
    section_end = calloc(nsections, sizeof(*section_end));
    if (!section_end) {
        total = -1;
        goto cleanup;
    }
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(self->elf, scn))) {
        size_t idx = elf_ndxscn(scn);
        GElf_Shdr shdr;
        if (idx < nsections && gelf_getshdr(scn, &shdr))
            section_end[idx] = shdr.sh_addr + shdr.sh_size;
    }
    scn = NULL;
    while ((scn = elf_nextscn(self->elf, scn))) {
        GElf_Shdr shdr;
        if (!gelf_getshdr(scn, &shdr) ||
            (shdr.sh_type != SHT_SYMTAB && shdr.sh_type != SHT_DYNSYM))
            continue;
        long n = s_add_section(self, scn, &shdr, section_end, nsections, tab,
                               max_bytes);
        if (n < 0) {
            total = n;
            goto cleanup;
        }
        total += n;
    }
cleanup:
    free(section_end);
    return total;
}

/* The object's DT_SONAME, or NULL (executables have none); bounded by the
 * section, like every read here. */
static const char *
s_soname(const elfobj_t *self)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(self->elf, scn))) {
        GElf_Shdr shdr;
        if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_DYNAMIC ||
            shdr.sh_entsize == 0)
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        size_t n = data ? data->d_size / shdr.sh_entsize : 0;
        for (size_t i = 0; i < n; i++) {
            GElf_Dyn dyn;
            if (!gelf_getdyn(data, (int)i, &dyn) || dyn.d_tag == DT_NULL)
                break;
            if (dyn.d_tag == DT_SONAME)
                return elf_strptr(self->elf, shdr.sh_link,
                                  (size_t)dyn.d_un.d_val);
        }
        return NULL;
    }
    return NULL;
}

/* A program's entry: an executable (ET_EXEC, or PT_INTERP without a
 * soname: libc.so.6 has an interpreter too, being runnable) or the
 * dynamic loader (glibc's ld-linux-*.so.*, musl's ld-musl-*.so.1). */
static bool
s_entry_is_process_root(const elfobj_t *self, const GElf_Ehdr *ehdr)
{
    if (ehdr->e_type == ET_EXEC)
        return true;
    const char *soname = s_soname(self);
    if (soname)
        return strncmp(soname, "ld-", 3) == 0;
    size_t nph = 0;
    if (elf_getphdrnum(self->elf, &nph) != 0)
        return false;
    for (size_t i = 0; i < nph; i++) {
        GElf_Phdr phdr;
        if (gelf_getphdr(self->elf, (int)i, &phdr) && phdr.p_type == PT_INTERP)
            return true;
    }
    return false;
}

int
elfobj_add_entry_label(const elfobj_t *self, symtab_t *tab)
{
    GElf_Ehdr ehdr;
    if (!gelf_getehdr(self->elf, &ehdr) || ehdr.e_entry == 0)
        return 0;
    if (!s_entry_is_process_root(self, &ehdr))
        return 0;
    /* Only inside the section holding the entry, and at most
     * ELFOBJ_ENTRY_LABEL_MAX bytes: past the entry code, in a stripped
     * file, an address is better left unnamed than misnamed. */
    uint64_t limit = 0;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(self->elf, scn))) {
        GElf_Shdr shdr;
        if (gelf_getshdr(scn, &shdr) && (shdr.sh_flags & SHF_EXECINSTR) &&
            ehdr.e_entry >= shdr.sh_addr &&
            ehdr.e_entry - shdr.sh_addr < shdr.sh_size) {
            limit = shdr.sh_addr + shdr.sh_size;
            break;
        }
    }
    if (limit == 0)
        return 0;
    if (limit - ehdr.e_entry > ELFOBJ_ENTRY_LABEL_MAX)
        limit = ehdr.e_entry + ELFOBJ_ENTRY_LABEL_MAX;
    /* Unsized and of the lowest rank: any real symbol at the entry wins,
     * and the next symbol after it ends the label (lib symtab rules). */
    return symtab_add(tab, ehdr.e_entry, 0, limit, "_start", 6,
                      SYMTAB_RANK_LOCAL) < 0 ? -1 : 1;
}

int
elf_offset_to_vaddr(const elf_load_t *loads, size_t nloads, uint64_t offset,
                    uint64_t *vaddr)
{
    for (size_t i = 0; i < nloads; i++) {
        const elf_load_t *l = &loads[i];
        if (offset >= l->offset && offset - l->offset < l->filesz) {
            *vaddr = offset - l->offset + l->vaddr;
            return 0;
        }
    }
    return -1;
}
