/* Symbol availability check with libelf: see symcheck.h. */
#include "symcheck.h"

#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safe_open.h"

/* Cache slots; when full the cache starts over (answers are cheap to
 * recompute and the set of distinct executables on a host is small). */
#define SYMCHECK_SLOTS 4096
/* Symbols looked at per table before giving up: a huge table with no
 * function in its first million entries is not worth more time. */
#define SYMCHECK_MAX_SYMS (1u << 20)
/* Note and .gnu_debuglink sections (and the section name table) larger
 * than this are not read: real ones are tiny. */
#define SYMCHECK_MAX_SECTION (64u << 10)

typedef struct {
    uint64_t dev, ino;
    bool used;
    bool answer;
} s_slot_t;

struct symcheck {
    char *debug_dir;
    s_slot_t slots[SYMCHECK_SLOTS];
    size_t used;
};

symcheck_t *
symcheck_new(const char *debug_dir)
{
    symcheck_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->debug_dir = strdup(debug_dir && *debug_dir ? debug_dir
                                                     : "/usr/lib/debug");
    if (!self->debug_dir) {
        free(self);
        return NULL;
    }
    elf_version(EV_CURRENT);
    return self;
}

void
symcheck_destroy(symcheck_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->debug_dir);
    free(*self_p);
    *self_p = NULL;
}

/* Only the first SYMCHECK_MAX_SYMS entries are read (as a raw chunk, not
 * the whole section), so a header claiming a gigantic table in a sparse
 * file costs no more than a real one. */
static bool
s_has_functions(Elf *elf, Elf_Scn *scn, const GElf_Shdr *shdr)
{
    (void)scn;
    if (shdr->sh_entsize == 0 || shdr->sh_type == SHT_NOBITS)
        return false;
    size_t n = shdr->sh_size / shdr->sh_entsize;
    if (n > SYMCHECK_MAX_SYMS)
        n = SYMCHECK_MAX_SYMS;
    size_t sym_size = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
    if (n == 0 || sym_size == 0 || shdr->sh_entsize != sym_size)
        return false;
    Elf_Data *data = elf_getdata_rawchunk(elf, (int64_t)shdr->sh_offset,
                                          n * sym_size, ELF_T_SYM);
    if (!data || !data->d_buf)
        return false;
    for (size_t i = 0; i < n; i++) {
        GElf_Sym sym;
        if (!gelf_getsym(data, (int)i, &sym))
            break;
        if (GELF_ST_TYPE(sym.st_info) == STT_FUNC &&
            sym.st_shndx != SHN_UNDEF && sym.st_value != 0)
            return true;
    }
    return false;
}

/* A host debug file: opened, not just stat()ed, so what counts is a
 * regular file reached without magic links. */
static bool
s_exists(const char *path)
{
    int fd = safe_open_host(path, 0, NULL);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static bool
s_build_id_debug_file(symcheck_t *self, Elf_Scn *scn)
{
    Elf_Data *data = elf_getdata(scn, NULL);
    if (!data)
        return false;
    GElf_Nhdr nhdr;
    size_t off = 0, name_off, desc_off;
    while ((off = gelf_getnote(data, off, &nhdr, &name_off, &desc_off)) > 0) {
        if (nhdr.n_type != NT_GNU_BUILD_ID || nhdr.n_descsz < 2 ||
            nhdr.n_descsz > 64 || nhdr.n_namesz != 4 ||
            memcmp((const char *)data->d_buf + name_off, "GNU", 4) != 0)
            continue;
        const uint8_t *id = (const uint8_t *)data->d_buf + desc_off;
        char hex[129];
        for (size_t i = 0; i < nhdr.n_descsz; i++)
            snprintf(hex + 2 * i, 3, "%02x", id[i]);
        char path[PATH_MAX];
        int n = snprintf(path, sizeof path, "%s/.build-id/%.2s/%s.debug",
                         self->debug_dir, hex, hex + 2);
        return n > 0 && (size_t)n < sizeof path && s_exists(path);
    }
    return false;
}

static bool
s_debuglink_file(symcheck_t *self, Elf_Scn *scn, const char *exe_path)
{
    Elf_Data *data = elf_getdata(scn, NULL);
    if (!data || !data->d_buf || data->d_size < 2)
        return false;
    const char *name = data->d_buf;
    size_t len = strnlen(name, data->d_size);
    if (len == 0 || len == data->d_size || strchr(name, '/'))
        return false;
    char dir[PATH_MAX], path[PATH_MAX];
    if (!realpath(exe_path, dir))
        return false;
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    /* Truncated paths would name some other file: treat as absent. */
    int n = snprintf(path, sizeof path, "%s/.debug/%s", dir, name);
    if (n > 0 && (size_t)n < sizeof path && s_exists(path))
        return true;
    n = snprintf(path, sizeof path, "%s%s/%s", self->debug_dir, dir, name);
    return n > 0 && (size_t)n < sizeof path && s_exists(path);
}

static bool
s_inspect(symcheck_t *self, int fd, const char *path)
{
    bool answer = false;
    /* ELF_C_READ, not _MMAP: a file truncated by its owner while we read
     * gives a read error, not a SIGBUS. */
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    if (!elf || elf_kind(elf) != ELF_K_ELF)
        goto cleanup;
    size_t shstrndx;
    GElf_Shdr strhdr;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0 ||
        !gelf_getshdr(elf_getscn(elf, shstrndx), &strhdr) ||
        strhdr.sh_size > (1u << 20))
        goto cleanup;
    Elf_Scn *scn = NULL;
    while (!answer && (scn = elf_nextscn(elf, scn))) {
        GElf_Shdr shdr;
        if (!gelf_getshdr(scn, &shdr))
            continue;
        if (shdr.sh_type == SHT_SYMTAB || shdr.sh_type == SHT_DYNSYM) {
            answer = s_has_functions(elf, scn, &shdr);
        } else if (shdr.sh_size > SYMCHECK_MAX_SECTION) {
            continue;   /* notes and debuglinks are small; skip claims */
        } else if (shdr.sh_type == SHT_NOTE) {
            answer = s_build_id_debug_file(self, scn);
        } else if (shdr.sh_type == SHT_PROGBITS) {
            const char *name = elf_strptr(elf, shstrndx, shdr.sh_name);
            if (name && !strcmp(name, ".gnu_debuglink"))
                answer = s_debuglink_file(self, scn, path);
        }
    }
cleanup:
    if (elf)
        elf_end(elf);
    return answer;
}

bool
symcheck_has_symbols(symcheck_t *self, const char *path)
{
    bool answer = false;
    struct stat st;
    /* /proc/PID/exe is the kernel's link to the very executable; any
     * other path is taken as a host path, without magic links. Either
     * way only a regular file is opened. */
    int fd = strncmp(path, "/proc/", 6) == 0
                 ? safe_open_proc_link(path, 0, &st)
                 : safe_open_host(path, 0, &st);
    if (fd < 0)
        goto cleanup;
    uint64_t key = (uint64_t)st.st_dev * 0x9e3779b97f4a7c15ull ^
                   (uint64_t)st.st_ino;
    size_t slot = (size_t)(key % SYMCHECK_SLOTS);
    for (size_t probe = 0; probe < SYMCHECK_SLOTS; probe++) {
        s_slot_t *s = &self->slots[(slot + probe) % SYMCHECK_SLOTS];
        if (!s->used)
            break;
        if (s->dev == (uint64_t)st.st_dev && s->ino == (uint64_t)st.st_ino) {
            answer = s->answer;
            goto cleanup;
        }
    }
    answer = s_inspect(self, fd, path);
    if (self->used >= SYMCHECK_SLOTS * 3 / 4) {
        memset(self->slots, 0, sizeof self->slots);
        self->used = 0;
    }
    for (size_t probe = 0; probe < SYMCHECK_SLOTS; probe++) {
        s_slot_t *s = &self->slots[(slot + probe) % SYMCHECK_SLOTS];
        if (!s->used) {
            *s = (s_slot_t){ (uint64_t)st.st_dev, (uint64_t)st.st_ino, true,
                             answer };
            self->used++;
            break;
        }
    }
cleanup:
    if (fd >= 0)
        close(fd);
    return answer;
}
