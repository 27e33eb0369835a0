/* ELF identity reader: see elfid.h. Every value taken from the file is
 * checked before use; reads go through s_read, which refuses anything
 * outside the file or the image. */
#include "elfid.h"

#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safe_open.h"

#define ELFID_MAX_HEADERS  1024       /* program or section headers walked */
#define ELFID_MAX_NOTE     (64u << 10) /* bytes of one note area read */
#define ELFID_MAX_SYMS     (1u << 20) /* symbols looked at per table */
#define ELFID_MAX_LINKSECT 4096       /* a .gnu_debuglink section */
#define ELFID_CHUNK        (16u << 10) /* symbols are read this much at once */

#define DEBUGLINK_NAME ".gnu_debuglink"

typedef struct {
    int fd;                     /* -1: read from mem */
    const uint8_t *mem;
    size_t mem_size;
    bool is64;
    bool swap;                  /* file byte order differs from ours */
    uint64_t phoff, shoff;
    uint32_t phnum, phentsize, shnum, shentsize, shstrndx;
} rd_t;

/* One program or section header, whatever the class. */
typedef struct {
    uint32_t type, name, link;
    uint64_t off, size, align, entsize;
} hdr_t;

static uint16_t s_u16(const rd_t *r, uint16_t v)
{
    return r->swap ? __builtin_bswap16(v) : v;
}

static uint32_t s_u32(const rd_t *r, uint32_t v)
{
    return r->swap ? __builtin_bswap32(v) : v;
}

static uint64_t s_u64(const rd_t *r, uint64_t v)
{
    return r->swap ? __builtin_bswap64(v) : v;
}

/* Exactly len bytes at off, or -1. */
static int s_read(const rd_t *r, void *buf, size_t len, uint64_t off)
{
    if (r->fd < 0) {
        if (off > r->mem_size || len > r->mem_size - off)
            return -1;
        memcpy(buf, r->mem + off, len);
        return 0;
    }
    if (off > (uint64_t)INT64_MAX - len)
        return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(r->fd, (char *)buf + done, len - done,
                          (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* The identification and the ELF header: -1 when not ELF. */
static int s_open(rd_t *r)
{
    unsigned char ident[EI_NIDENT];
    if (s_read(r, ident, sizeof ident, 0) < 0 ||
        memcmp(ident, ELFMAG, SELFMAG) != 0)
        return -1;
    if (ident[EI_CLASS] != ELFCLASS32 && ident[EI_CLASS] != ELFCLASS64)
        return -1;
    if (ident[EI_DATA] != ELFDATA2LSB && ident[EI_DATA] != ELFDATA2MSB)
        return -1;
    r->is64 = ident[EI_CLASS] == ELFCLASS64;
    r->swap = ident[EI_DATA] != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                                     ? ELFDATA2LSB : ELFDATA2MSB);
    if (r->is64) {
        Elf64_Ehdr eh;
        if (s_read(r, &eh, sizeof eh, 0) < 0)
            return -1;
        r->phoff = s_u64(r, eh.e_phoff);
        r->shoff = s_u64(r, eh.e_shoff);
        r->phnum = s_u16(r, eh.e_phnum);
        r->phentsize = s_u16(r, eh.e_phentsize);
        r->shnum = s_u16(r, eh.e_shnum);
        r->shentsize = s_u16(r, eh.e_shentsize);
        r->shstrndx = s_u16(r, eh.e_shstrndx);
    } else {
        Elf32_Ehdr eh;
        if (s_read(r, &eh, sizeof eh, 0) < 0)
            return -1;
        r->phoff = s_u32(r, eh.e_phoff);
        r->shoff = s_u32(r, eh.e_shoff);
        r->phnum = s_u16(r, eh.e_phnum);
        r->phentsize = s_u16(r, eh.e_phentsize);
        r->shnum = s_u16(r, eh.e_shnum);
        r->shentsize = s_u16(r, eh.e_shentsize);
        r->shstrndx = s_u16(r, eh.e_shstrndx);
    }
    /* Extended numbering (e_shnum 0 with the count in section 0, or
     * PN_XNUM) is not followed: no executable or library needs it, and
     * the walks below are bounded either way. */
    if (!r->phoff)
        r->phnum = 0;
    if (!r->shoff)
        r->shnum = 0;
    if (r->phnum > ELFID_MAX_HEADERS)
        r->phnum = ELFID_MAX_HEADERS;
    if (r->shnum > ELFID_MAX_HEADERS)
        r->shnum = ELFID_MAX_HEADERS;
    return 0;
}

/* Program header (segments = 1) or section header i. */
static int s_header(const rd_t *r, int segments, uint32_t i, hdr_t *h)
{
    union {
        Elf64_Phdr p64;
        Elf32_Phdr p32;
        Elf64_Shdr s64;
        Elf32_Shdr s32;
    } u;
    uint64_t table = segments ? r->phoff : r->shoff;
    uint32_t entsize = segments ? r->phentsize : r->shentsize;
    size_t need = segments ? (r->is64 ? sizeof u.p64 : sizeof u.p32)
                           : (r->is64 ? sizeof u.s64 : sizeof u.s32);
    memset(h, 0, sizeof *h);
    if (entsize < need || s_read(r, &u, need, table + (uint64_t)i * entsize))
        return -1;
    if (segments && r->is64) {
        h->type = s_u32(r, u.p64.p_type);
        h->off = s_u64(r, u.p64.p_offset);
        h->size = s_u64(r, u.p64.p_filesz);
        h->align = s_u64(r, u.p64.p_align);
    } else if (segments) {
        h->type = s_u32(r, u.p32.p_type);
        h->off = s_u32(r, u.p32.p_offset);
        h->size = s_u32(r, u.p32.p_filesz);
        h->align = s_u32(r, u.p32.p_align);
    } else if (r->is64) {
        h->type = s_u32(r, u.s64.sh_type);
        h->name = s_u32(r, u.s64.sh_name);
        h->link = s_u32(r, u.s64.sh_link);
        h->off = s_u64(r, u.s64.sh_offset);
        h->size = s_u64(r, u.s64.sh_size);
        h->align = s_u64(r, u.s64.sh_addralign);
        h->entsize = s_u64(r, u.s64.sh_entsize);
    } else {
        h->type = s_u32(r, u.s32.sh_type);
        h->name = s_u32(r, u.s32.sh_name);
        h->link = s_u32(r, u.s32.sh_link);
        h->off = s_u32(r, u.s32.sh_offset);
        h->size = s_u32(r, u.s32.sh_size);
        h->align = s_u32(r, u.s32.sh_addralign);
        h->entsize = s_u32(r, u.s32.sh_entsize);
    }
    return 0;
}

/* --------------------------------------------------------------- notes */

/* Walks the notes in [off, off+size); returns the build-id length, 0 when
 * absent, -1 on a read error. */
static int s_scan_notes(const rd_t *r, uint64_t off, uint64_t size,
                        uint64_t align, uint8_t out[ELFID_BUILD_ID_MAX])
{
    int rc = 0;
    unsigned char *buf = NULL;
    if (size > ELFID_MAX_NOTE)
        size = ELFID_MAX_NOTE;
    if (size < 12)
        goto cleanup;
    /* Notes are 4-byte aligned, or 8-byte in some 64-bit objects (the
     * descriptor then starts on an 8-byte boundary). */
    align = align == 8 ? 8 : 4;
    buf = malloc(size);
    if (!buf || s_read(r, buf, size, off) < 0) {
        rc = -1;
        goto cleanup;
    }
    uint64_t pos = 0;
    while (pos + 12 <= size) {
        uint32_t namesz, descsz, type;
        memcpy(&namesz, buf + pos, 4);
        memcpy(&descsz, buf + pos + 4, 4);
        memcpy(&type, buf + pos + 8, 4);
        namesz = s_u32(r, namesz);
        descsz = s_u32(r, descsz);
        type = s_u32(r, type);
        uint64_t name_off = pos + 12;
        uint64_t desc_off = (name_off + namesz + align - 1) & ~(align - 1);
        uint64_t next = (desc_off + (uint64_t)descsz + align - 1) &
                        ~(align - 1);
        if (desc_off + descsz > size || next <= pos)
            break;
        if (type == NT_GNU_BUILD_ID && namesz == 4 &&
            memcmp(buf + name_off, "GNU", 4) == 0 && descsz > 0 &&
            descsz <= ELFID_BUILD_ID_MAX) {
            memcpy(out, buf + desc_off, descsz);
            rc = (int)descsz;
            goto cleanup;
        }
        pos = next;
    }
cleanup:
    free(buf);
    return rc;
}

static int s_notes_of(const rd_t *r, int segments,
                      uint8_t out[ELFID_BUILD_ID_MAX])
{
    uint32_t count = segments ? r->phnum : r->shnum;
    uint32_t want = segments ? PT_NOTE : SHT_NOTE;
    for (uint32_t i = 0; i < count; i++) {
        hdr_t h;
        if (s_header(r, segments, i, &h) < 0)
            return -1;
        if (h.type != want)
            continue;
        int n = s_scan_notes(r, h.off, h.size, h.align, out);
        if (n != 0)
            return n;
    }
    return 0;
}

static int s_build_id(const rd_t *r, uint8_t out[ELFID_BUILD_ID_MAX])
{
    /* Segments are what the loader maps and are almost always there;
     * sections cover relocatable objects, debug files and odd linkers. */
    int n = s_notes_of(r, 1, out);
    if (n <= 0)
        n = s_notes_of(r, 0, out);
    return n < 0 ? 0 : n;
}

/* ------------------------------------------------------------- symbols */

/* Whether one symbol table section defines a function. Only the first
 * ELFID_MAX_SYMS entries are looked at, read in chunks: a header claiming
 * a gigantic table in a sparse file costs no more than a real one. */
static int s_table_has_function(const rd_t *r, const hdr_t *h)
{
    int found = 0;
    size_t symsz = r->is64 ? sizeof(Elf64_Sym) : sizeof(Elf32_Sym);
    unsigned char *buf = NULL;
    if (h->entsize != symsz)
        goto cleanup;
    uint64_t n = h->size / symsz;
    if (n > ELFID_MAX_SYMS)
        n = ELFID_MAX_SYMS;
    size_t per_chunk = ELFID_CHUNK / symsz;
    buf = malloc(per_chunk * symsz);
    if (!buf)
        goto cleanup;
    for (uint64_t i = 0; i < n && !found; i += per_chunk) {
        size_t k = n - i < per_chunk ? (size_t)(n - i) : per_chunk;
        if (s_read(r, buf, k * symsz, h->off + i * symsz) < 0)
            break;
        for (size_t j = 0; j < k && !found; j++) {
            unsigned char info;
            uint16_t shndx;
            uint64_t value;
            if (r->is64) {
                Elf64_Sym s;
                memcpy(&s, buf + j * symsz, sizeof s);
                info = s.st_info;
                shndx = s_u16(r, s.st_shndx);
                value = s_u64(r, s.st_value);
            } else {
                Elf32_Sym s;
                memcpy(&s, buf + j * symsz, sizeof s);
                info = s.st_info;
                shndx = s_u16(r, s.st_shndx);
                value = s_u32(r, s.st_value);
            }
            found = ELF64_ST_TYPE(info) == STT_FUNC && shndx != SHN_UNDEF &&
                    value != 0;
        }
    }
cleanup:
    free(buf);
    return found;
}

/* --------------------------------------------------------- debuglink */

/* Whether section h is named name: only strlen(name)+1 bytes of the
 * section name table are read. */
static int s_named(const rd_t *r, const hdr_t *strtab, const hdr_t *h,
                   const char *name)
{
    char buf[32];
    size_t len = strlen(name) + 1;
    if (len > sizeof buf || h->name >= strtab->size ||
        strtab->size - h->name < len ||
        s_read(r, buf, len, strtab->off + h->name) < 0)
        return 0;
    return memcmp(buf, name, len) == 0;
}

/* A .gnu_debuglink section: file name, NUL, padding to 4, CRC32. */
static void s_debuglink(const rd_t *r, const hdr_t *h, elfid_t *out)
{
    char buf[ELFID_MAX_LINKSECT];
    if (h->size > sizeof buf || h->size < 2 ||
        s_read(r, buf, (size_t)h->size, h->off) < 0)
        return;
    size_t size = (size_t)h->size;
    size_t len = strnlen(buf, size);
    size_t crc_off = (len + 4) & ~(size_t)3;   /* NUL, pad to 4 */
    /* A plain file name only: a path here would let a binary point us
     * anywhere on the host. */
    if (len == 0 || len >= size || len >= sizeof out->debuglink ||
        crc_off + 4 > size || memchr(buf, '/', len))
        return;
    uint32_t crc;
    memcpy(&crc, buf + crc_off, 4);
    memcpy(out->debuglink, buf, len);
    out->debuglink[len] = '\0';
    out->debuglink_crc = s_u32(r, crc);
}

/* ---------------------------------------------------------------- API */

static int s_read_all(rd_t *r, elfid_t *out)
{
    int rc = -1;
    memset(out, 0, sizeof *out);
    if (s_open(r) < 0)
        goto cleanup;
    int n = s_build_id(r, out->build_id);
    out->build_id_len = n > 0 ? (size_t)n : 0;
    hdr_t strtab;
    int have_names = r->shstrndx < r->shnum &&
                     s_header(r, 0, r->shstrndx, &strtab) == 0;
    for (uint32_t i = 0; i < r->shnum; i++) {
        hdr_t h;
        if (s_header(r, 0, i, &h) < 0)
            break;
        if ((h.type == SHT_SYMTAB || h.type == SHT_DYNSYM) &&
            !out->has_functions)
            out->has_functions = s_table_has_function(r, &h);
        else if (h.type == SHT_PROGBITS && have_names &&
                 !out->debuglink[0] && h.size <= ELFID_MAX_LINKSECT &&
                 s_named(r, &strtab, &h, DEBUGLINK_NAME))
            s_debuglink(r, &h, out);
    }
    rc = 0;
cleanup:
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

int elfid_build_id_fd(int fd, uint8_t out[ELFID_BUILD_ID_MAX])
{
    rd_t r = { .fd = fd };
    if (fd < 0 || s_open(&r) < 0)
        return -1;
    return s_build_id(&r, out);
}

int elfid_build_id_path(const char *path, uint8_t out[ELFID_BUILD_ID_MAX])
{
    int fd = safe_open_host(path, 0, NULL);
    if (fd < 0)
        return -1;
    int n = elfid_build_id_fd(fd, out);
    close(fd);
    return n;
}

int elfid_read_fd(int fd, elfid_t *out)
{
    rd_t r = { .fd = fd };
    if (fd < 0) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    return s_read_all(&r, out);
}

int elfid_read_mem(const void *image, size_t size, elfid_t *out)
{
    rd_t r = { .fd = -1, .mem = image, .mem_size = image ? size : 0 };
    return s_read_all(&r, out);
}
