/* lib/elfid: build-id, function symbols and .gnu_debuglink of synthetic
 * ELF files in every class and byte order, of this test binary (against
 * readelf's view), the same answers from a file and from memory, and
 * hostile headers (claims past the end, huge tables, names out of bounds)
 * answered without a crash or a large allocation. */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elfid.h"
#include "testutil.h"

/* ------------------------------------------------ a small ELF writer */

typedef struct {
    unsigned char buf[4096];
    size_t len;
    int is64, big;
} img_t;

static void s_put(img_t *m, size_t off, uint64_t v, int width)
{
    for (int i = 0; i < width; i++) {
        int shift = m->big ? 8 * (width - 1 - i) : 8 * i;
        m->buf[off + (size_t)i] = (unsigned char)(v >> shift);
    }
    if (off + (size_t)width > m->len)
        m->len = off + (size_t)width;
}

static size_t s_append(img_t *m, const void *data, size_t len)
{
    size_t off = (m->len + 7) & ~(size_t)7;
    memcpy(m->buf + off, data, len);
    m->len = off + len;
    return off;
}

typedef struct {
    int with_build_id, with_func, func_undefined, with_debuglink;
    const char *link_name;
} shape_t;

/* ELF header, sections: [0] null, [1] .shstrtab, [2] .note.gnu.build-id,
 * [3] .symtab, [4] .text, [5] .gnu_debuglink. */
static void s_build(img_t *m, int is64, int big, const shape_t *sh)
{
    memset(m, 0, sizeof *m);
    m->is64 = is64;
    m->big = big;
    size_t ehsize = is64 ? 64 : 52, shentsize = is64 ? 64 : 40;
    size_t symsz = is64 ? 24 : 16;
    m->len = ehsize;
    memcpy(m->buf, ELFMAG, SELFMAG);
    m->buf[EI_CLASS] = is64 ? ELFCLASS64 : ELFCLASS32;
    m->buf[EI_DATA] = big ? ELFDATA2MSB : ELFDATA2LSB;
    m->buf[EI_VERSION] = EV_CURRENT;

    static const char names[] = "\0.shstrtab\0.note.gnu.build-id\0.symtab"
                                "\0.text\0.gnu_debuglink\0";
    size_t names_off = s_append(m, names, sizeof names);
    /* note: namesz 4, descsz 20, type 3, "GNU\0", 20 bytes of id */
    unsigned char note[36] = { 0 };
    size_t note_off = s_append(m, note, sizeof note);
    s_put(m, note_off, 4, 4);
    s_put(m, note_off + 4, 20, 4);
    s_put(m, note_off + 8, sh->with_build_id ? NT_GNU_BUILD_ID : 99, 4);
    memcpy(m->buf + note_off + 12, "GNU", 4);
    for (int i = 0; i < 20; i++)
        m->buf[note_off + 16 + (size_t)i] = (unsigned char)(0x10 + i);
    /* symbols: null, an object, then (maybe) a function */
    unsigned char syms[72] = { 0 };
    size_t sym_off = s_append(m, syms, 3 * symsz);
    for (int k = 1; k < 3; k++) {
        size_t o = sym_off + (size_t)k * symsz;
        int func = k == 2 && sh->with_func;
        unsigned char info = (unsigned char)((STB_GLOBAL << 4) |
                                             (func ? STT_FUNC : STT_OBJECT));
        uint16_t shndx = func && sh->func_undefined ? SHN_UNDEF : 4;
        if (is64) {
            m->buf[o + 4] = info;
            s_put(m, o + 6, shndx, 2);
            s_put(m, o + 8, 0x1000 * (uint64_t)k, 8);
        } else {
            s_put(m, o + 4, 0x1000 * (uint64_t)k, 4);
            m->buf[o + 12] = info;
            s_put(m, o + 14, shndx, 2);
        }
    }
    unsigned char text[16] = { 0xc3 };
    size_t text_off = s_append(m, text, sizeof text);
    unsigned char link[64] = { 0 };
    const char *ln = sh->link_name ? sh->link_name : "app.debug";
    size_t lnlen = strlen(ln), crc_off = (lnlen + 4) & ~(size_t)3;
    memcpy(link, ln, lnlen);
    size_t link_off = s_append(m, link, crc_off + 4);
    s_put(m, link_off + crc_off, 0xdeadbeef, 4);

    size_t sh_off = (m->len + 7) & ~(size_t)7;
    struct { uint32_t name, type; size_t off, size, entsize; } secs[6] = {
        { 0, SHT_NULL, 0, 0, 0 },
        { 1, SHT_STRTAB, names_off, sizeof names, 0 },
        { 11, SHT_NOTE, note_off, sizeof note, 0 },
        { 30, SHT_SYMTAB, sym_off, 3 * symsz, symsz },
        { 38, SHT_PROGBITS, text_off, sizeof text, 0 },
        { 44, sh->with_debuglink ? SHT_PROGBITS : SHT_NULL, link_off,
          crc_off + 4, 0 },
    };
    for (size_t i = 0; i < 6; i++) {
        size_t o = sh_off + i * shentsize;
        s_put(m, o, secs[i].name, 4);
        s_put(m, o + 4, secs[i].type, 4);
        if (is64) {
            s_put(m, o + 24, secs[i].off, 8);
            s_put(m, o + 32, secs[i].size, 8);
            s_put(m, o + 48, 4, 8);                 /* addralign */
            s_put(m, o + 56, secs[i].entsize, 8);
        } else {
            s_put(m, o + 16, secs[i].off, 4);
            s_put(m, o + 20, secs[i].size, 4);
            s_put(m, o + 32, 4, 4);
            s_put(m, o + 36, secs[i].entsize, 4);
        }
    }
    m->len = sh_off + 6 * shentsize;
    /* the ELF header */
    s_put(m, 16, ET_DYN, 2);
    s_put(m, 18, is64 ? EM_X86_64 : EM_386, 2);
    s_put(m, 20, EV_CURRENT, 4);
    if (is64) {
        s_put(m, 40, sh_off, 8);                    /* e_shoff */
        s_put(m, 52, ehsize, 2);
        s_put(m, 58, shentsize, 2);
        s_put(m, 60, 6, 2);                         /* e_shnum */
        s_put(m, 62, 1, 2);                         /* e_shstrndx */
    } else {
        s_put(m, 32, sh_off, 4);
        s_put(m, 40, ehsize, 2);
        s_put(m, 46, shentsize, 2);
        s_put(m, 48, 6, 2);
        s_put(m, 50, 1, 2);
    }
}

static int s_memfd(const img_t *m)
{
    int fd = memfd_create("elfid", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, m->buf, m->len), (ssize_t)m->len);
    return fd;
}

/* Reads the image from a file and from memory: both must agree. */
static int s_read_both(const img_t *m, elfid_t *out)
{
    elfid_t mem;
    int fd = s_memfd(m);
    int rc = elfid_read_fd(fd, out);
    uint8_t id[ELFID_BUILD_ID_MAX];
    int n = elfid_build_id_fd(fd, id);
    close(fd);
    ck_assert_int_eq(elfid_read_mem(m->buf, m->len, &mem), rc);
    ck_assert_mem_eq(&mem, out, sizeof mem);
    if (rc == 0) {
        ck_assert_int_eq(n, (int)out->build_id_len);
        ck_assert_mem_eq(id, out->build_id, out->build_id_len);
    } else {
        ck_assert_int_eq(n, -1);
    }
    return rc;
}

/* _i: bit 0 = 64-bit, bit 1 = big endian */
START_TEST(test_everything_every_class)
{
    img_t m;
    elfid_t id;
    shape_t full = { 1, 1, 0, 1, NULL };
    s_build(&m, _i & 1, _i & 2, &full);
    ck_assert_int_eq(s_read_both(&m, &id), 0);
    ck_assert_uint_eq(id.build_id_len, 20);
    for (int i = 0; i < 20; i++)
        ck_assert_uint_eq(id.build_id[i], 0x10 + i);
    ck_assert_int_eq(id.has_functions, 1);
    ck_assert_str_eq(id.debuglink, "app.debug");
    ck_assert_uint_eq(id.debuglink_crc, 0xdeadbeef);

    shape_t none = { 0, 0, 0, 0, NULL };
    s_build(&m, _i & 1, _i & 2, &none);
    ck_assert_int_eq(s_read_both(&m, &id), 0);
    ck_assert_uint_eq(id.build_id_len, 0);
    ck_assert_int_eq(id.has_functions, 0);
    ck_assert_str_eq(id.debuglink, "");

    /* an undefined function (an import) is not a usable symbol */
    shape_t import = { 1, 1, 1, 0, NULL };
    s_build(&m, _i & 1, _i & 2, &import);
    ck_assert_int_eq(s_read_both(&m, &id), 0);
    ck_assert_int_eq(id.has_functions, 0);

    /* a debuglink naming a path is refused: it would point anywhere */
    shape_t path = { 1, 0, 0, 1, "../../etc/x" };
    s_build(&m, _i & 1, _i & 2, &path);
    ck_assert_int_eq(s_read_both(&m, &id), 0);
    ck_assert_str_eq(id.debuglink, "");
}
END_TEST

START_TEST(test_not_elf)
{
    img_t m;
    elfid_t id;
    memset(&m, 0, sizeof m);
    memcpy(m.buf, "#!/bin/sh\necho hi\n", 18);
    m.len = 18;
    ck_assert_int_eq(s_read_both(&m, &id), -1);
    m.len = 0;
    ck_assert_int_eq(elfid_read_mem(m.buf, 0, &id), -1);
    ck_assert_int_eq(elfid_read_mem(NULL, 100, &id), -1);
    ck_assert_int_eq(elfid_read_fd(-1, &id), -1);
    ck_assert_int_eq(elfid_build_id_fd(-1, id.build_id), -1);
    /* ELF magic, bad class */
    shape_t full = { 1, 1, 0, 1, NULL };
    s_build(&m, 1, 0, &full);
    m.buf[EI_CLASS] = 7;
    ck_assert_int_eq(s_read_both(&m, &id), -1);
    /* truncated inside the ELF header */
    s_build(&m, 1, 0, &full);
    m.len = 40;
    ck_assert_int_eq(s_read_both(&m, &id), -1);
}
END_TEST

START_TEST(test_hostile_headers)
{
    img_t m;
    elfid_t id;
    shape_t full = { 1, 1, 0, 1, NULL };
    size_t sh_off;

    /* truncated before the section headers: ELF, nothing found */
    s_build(&m, 1, 0, &full);
    memcpy(&sh_off, m.buf + 40, 8);
    m.len = sh_off + 10;
    ck_assert_int_eq(s_read_both(&m, &id), 0);
    ck_assert_uint_eq(id.build_id_len, 0);
    ck_assert_int_eq(id.has_functions, 0);

    /* a symbol table claiming 2^60 bytes: bounded, refused (the claim
     * runs past the end of the file), like the old libelf reader */
    s_build(&m, 1, 0, &full);
    memcpy(&sh_off, m.buf + 40, 8);
    s_put(&m, sh_off + 3 * 64 + 32, 1ull << 60, 8);
    ck_assert_int_eq(s_read_both(&m, &id), 0);
    ck_assert_int_eq(id.has_functions, 0);
    ck_assert_uint_eq(id.build_id_len, 20);

    /* wrong symbol entry size: not a symbol table we read */
    s_build(&m, 1, 0, &full);
    s_put(&m, sh_off + 3 * 64 + 56, 7, 8);
    ck_assert_int_eq(s_read_both(&m, &id), 0);
    ck_assert_int_eq(id.has_functions, 0);

    /* section name offsets past the name table, name table past EOF */
    s_build(&m, 1, 0, &full);
    s_put(&m, sh_off + 5 * 64, 0xfffffff0u, 4);
    ck_assert_int_eq(s_read_both(&m, &id), 0);
    ck_assert_str_eq(id.debuglink, "");
    s_build(&m, 1, 0, &full);
    s_put(&m, sh_off + 1 * 64 + 24, 1ull << 62, 8);
    ck_assert_int_eq(s_read_both(&m, &id), 0);
    ck_assert_str_eq(id.debuglink, "");
    ck_assert_uint_eq(id.build_id_len, 20);

    /* a debuglink section claiming more than any real one */
    s_build(&m, 1, 0, &full);
    s_put(&m, sh_off + 5 * 64 + 32, 1u << 20, 8);
    ck_assert_int_eq(s_read_both(&m, &id), 0);
    ck_assert_str_eq(id.debuglink, "");

    /* a note claiming a huge descriptor: no id, no crash */
    s_build(&m, 1, 0, &full);
    size_t note_off;
    memcpy(&note_off, m.buf + sh_off + 2 * 64 + 24, 8);
    s_put(&m, note_off + 4, 0x7fffffff, 4);
    ck_assert_int_eq(s_read_both(&m, &id), 0);
    ck_assert_uint_eq(id.build_id_len, 0);

    /* 65535 section headers claimed, entsize 0 or past EOF */
    s_build(&m, 1, 0, &full);
    s_put(&m, 60, 65535, 2);
    ck_assert_int_eq(s_read_both(&m, &id), 0);
    s_put(&m, 58, 0, 2);
    ck_assert_int_eq(s_read_both(&m, &id), 0);
    ck_assert_int_eq(id.has_functions, 0);
}
END_TEST

/* This binary: built with a build-id and symbols; readelf agrees on the
 * id when it is installed. */
START_TEST(test_self)
{
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    elfid_t id;
    ck_assert_int_eq(elfid_read_fd(fd, &id), 0);
    close(fd);
    ck_assert_int_eq(id.has_functions, 1);
    uint8_t again[ELFID_BUILD_ID_MAX];
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    ck_assert_int_eq(elfid_build_id_path(exe, again), (int)id.build_id_len);
    ck_assert_mem_eq(again, id.build_id, id.build_id_len);
    if (!id.build_id_len || !tu_require_tool("elfid_readelf", "readelf"))
        return;
    char cmd[4200], line[512], want[2 * ELFID_BUILD_ID_MAX + 1] = "";
    snprintf(cmd, sizeof cmd, "readelf -n '%s'", exe);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    while (fgets(line, sizeof line, p))
        if (sscanf(line, " Build ID: %128s", want) == 1)
            break;
    pclose(p);
    char mine[2 * ELFID_BUILD_ID_MAX + 1];
    for (size_t i = 0; i < id.build_id_len; i++)
        snprintf(mine + 2 * i, 3, "%02x", id.build_id[i]);
    ck_assert_str_eq(mine, want);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("elfid");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_everything_every_class, 0, 4);
    tcase_add_test(tc, test_not_elf);
    tcase_add_test(tc, test_hostile_headers);
    tcase_add_test(tc, test_self);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
