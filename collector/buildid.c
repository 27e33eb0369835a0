/* GNU build-id reader. Written against the ELF gABI: headers are read with
 * pread and every count and offset from the file is bounds-checked, since
 * a mapped file may be truncated, still being written, or hostile. */
#include "collector/buildid.h"

#include <elf.h>
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safe_open.h"

#define BUILDID_MAX_HEADERS 512       /* program headers or sections read */
#define BUILDID_MAX_NOTE    (64 << 10) /* bytes of one note area read */

typedef struct {
    int fd;
    bool is64;
    bool swap;   /* file byte order differs from ours */
} elf_reader_t;

static uint16_t s_u16(const elf_reader_t *r, uint16_t v)
{
    return r->swap ? __builtin_bswap16(v) : v;
}

static uint32_t s_u32(const elf_reader_t *r, uint32_t v)
{
    return r->swap ? __builtin_bswap32(v) : v;
}

static uint64_t s_u64(const elf_reader_t *r, uint64_t v)
{
    return r->swap ? __builtin_bswap64(v) : v;
}

static int s_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done,
                          (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* Walks the notes in [off, off+size) of the file; returns the build-id
 * length, 0 when absent, -1 on a read error. */
static int s_scan_notes(const elf_reader_t *r, uint64_t off, uint64_t size,
                        uint64_t align, uint8_t out[BUILDID_MAX])
{
    int rc = 0;
    unsigned char *buf = NULL;

    if (size > BUILDID_MAX_NOTE)
        size = BUILDID_MAX_NOTE;
    if (size < 12)
        goto cleanup;
    /* Notes are 4-byte aligned, or 8-byte in some 64-bit objects (the
     * descriptor then starts on an 8-byte boundary). */
    align = align == 8 ? 8 : 4;
    buf = malloc(size);
    if (!buf) {
        rc = -1;
        goto cleanup;
    }
    if (s_pread_all(r->fd, buf, size, off) < 0) {
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
            descsz <= BUILDID_MAX) {
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

/* Reads header i of a program (segments) or section header table as
 * (type, offset, size, alignment), whatever the ELF class. */
static int s_header(const elf_reader_t *r, int segments, uint64_t table,
                    uint32_t i, uint32_t entsize, uint64_t *type,
                    uint64_t *off, uint64_t *size, uint64_t *align)
{
    union {
        Elf64_Phdr p64;
        Elf32_Phdr p32;
        Elf64_Shdr s64;
        Elf32_Shdr s32;
    } h;
    size_t need = segments ? (r->is64 ? sizeof h.p64 : sizeof h.p32)
                           : (r->is64 ? sizeof h.s64 : sizeof h.s32);
    if (entsize < need ||
        s_pread_all(r->fd, &h, need, table + (uint64_t)i * entsize) < 0)
        return -1;
    if (segments && r->is64) {
        *type = s_u32(r, h.p64.p_type);
        *off = s_u64(r, h.p64.p_offset);
        *size = s_u64(r, h.p64.p_filesz);
        *align = s_u64(r, h.p64.p_align);
    } else if (segments) {
        *type = s_u32(r, h.p32.p_type);
        *off = s_u32(r, h.p32.p_offset);
        *size = s_u32(r, h.p32.p_filesz);
        *align = s_u32(r, h.p32.p_align);
    } else if (r->is64) {
        *type = s_u32(r, h.s64.sh_type);
        *off = s_u64(r, h.s64.sh_offset);
        *size = s_u64(r, h.s64.sh_size);
        *align = s_u64(r, h.s64.sh_addralign);
    } else {
        *type = s_u32(r, h.s32.sh_type);
        *off = s_u32(r, h.s32.sh_offset);
        *size = s_u32(r, h.s32.sh_size);
        *align = s_u32(r, h.s32.sh_addralign);
    }
    return 0;
}

/* Scans the PT_NOTE segments (segments = 1) or SHT_NOTE sections of a
 * header table for the build-id note. */
static int s_from_headers(const elf_reader_t *r, int segments, uint64_t table,
                          uint32_t count, uint32_t entsize,
                          uint8_t out[BUILDID_MAX])
{
    uint64_t want = segments ? PT_NOTE : SHT_NOTE;
    for (uint32_t i = 0; i < count && i < BUILDID_MAX_HEADERS; i++) {
        uint64_t type, off, size, align;
        if (s_header(r, segments, table, i, entsize, &type, &off, &size,
                     &align) < 0)
            return -1;
        if (type != want)
            continue;
        int n = s_scan_notes(r, off, size, align, out);
        if (n != 0)
            return n;
    }
    return 0;
}

int buildid_read_fd(int fd, uint8_t out[BUILDID_MAX])
{
    unsigned char ident[EI_NIDENT];
    elf_reader_t r = { .fd = fd };
    uint64_t phoff, shoff;
    uint32_t phnum, phentsize, shnum, shentsize;

    if (s_pread_all(fd, ident, sizeof(ident), 0) < 0 ||
        memcmp(ident, ELFMAG, SELFMAG) != 0)
        return -1;
    if (ident[EI_CLASS] != ELFCLASS32 && ident[EI_CLASS] != ELFCLASS64)
        return -1;
    if (ident[EI_DATA] != ELFDATA2LSB && ident[EI_DATA] != ELFDATA2MSB)
        return -1;
    r.is64 = ident[EI_CLASS] == ELFCLASS64;
#if __BYTE_ORDER == __LITTLE_ENDIAN
    r.swap = ident[EI_DATA] == ELFDATA2MSB;
#else
    r.swap = ident[EI_DATA] == ELFDATA2LSB;
#endif
    if (r.is64) {
        Elf64_Ehdr eh;
        if (s_pread_all(fd, &eh, sizeof(eh), 0) < 0)
            return -1;
        phoff = s_u64(&r, eh.e_phoff);
        phnum = s_u16(&r, eh.e_phnum);
        phentsize = s_u16(&r, eh.e_phentsize);
        shoff = s_u64(&r, eh.e_shoff);
        shnum = s_u16(&r, eh.e_shnum);
        shentsize = s_u16(&r, eh.e_shentsize);
    } else {
        Elf32_Ehdr eh;
        if (s_pread_all(fd, &eh, sizeof(eh), 0) < 0)
            return -1;
        phoff = s_u32(&r, eh.e_phoff);
        phnum = s_u16(&r, eh.e_phnum);
        phentsize = s_u16(&r, eh.e_phentsize);
        shoff = s_u32(&r, eh.e_shoff);
        shnum = s_u16(&r, eh.e_shnum);
        shentsize = s_u16(&r, eh.e_shentsize);
    }
    int n = 0;
    if (phoff && phnum)
        n = s_from_headers(&r, 1, phoff, phnum, phentsize, out);
    /* Segments are what the loader maps and are almost always there;
     * sections cover relocatable objects and odd linkers. */
    if (n <= 0 && shoff && shnum)
        n = s_from_headers(&r, 0, shoff, shnum, shentsize, out);
    return n < 0 ? 0 : n;
}

int buildid_read_path(const char *path, uint8_t out[BUILDID_MAX])
{
    int fd = safe_open_host(path, 0, NULL);

    if (fd < 0)
        return -1;
    int n = buildid_read_fd(fd, out);
    close(fd);
    return n;
}
