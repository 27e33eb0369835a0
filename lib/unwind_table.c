/* Unwind tables from .eh_frame / .debug_frame for x86-64: see
 * unwind_table.h. The ELF part finds the section by name through the
 * section headers; the CFI part walks CIEs and FDEs with a cursor that
 * never reads past its record, and interprets the DW_CFA program of each
 * FDE into rows. */
#include "unwind_table.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MAX_SECTION (256u << 20)
#define DEFAULT_MAX_ROWS    (8u << 20)
#define DEFAULT_MAX_FDES    (4u << 20)
#define STATE_STACK_MAX     16      /* remember_state depth */
#define SHNUM_MAX           65535
#define CIE_CACHE           16      /* direct-mapped parsed CIEs */

/* DWARF register numbers of x86-64. */
#define REG_RBX 3
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA  16

struct unwind_table_t {
    unwind_row_t *rows;
    size_t count, cap;
    unwind_limits_t lim;
    unwind_summary_t sum;
};

/* ------------------------------------------------------------ input */

typedef struct {
    int fd;
    const uint8_t *mem;
    uint64_t size;
} s_input_t;

static int s_read(const s_input_t *in, uint64_t off, void *buf, size_t len)
{
    if (off > in->size || len > in->size - off)
        return -1;
    if (in->mem) {
        memcpy(buf, in->mem + off, len);
        return 0;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(in->fd, (char *)buf + done, len - done,
                          (off_t)(off + done));
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------ cursor */

typedef struct {
    const uint8_t *p, *end;
    int bad;                        /* a read ran past end */
} s_cur_t;

static uint64_t s_un(s_cur_t *c, size_t n)
{
    uint64_t v = 0;
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = 1;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)c->p[i] << (8 * i);
    c->p += n;
    return v;
}

static uint64_t s_uleb(s_cur_t *c)
{
    uint64_t v = 0;
    unsigned shift = 0;
    while (!c->bad) {
        if (c->p >= c->end) {
            c->bad = 1;
            break;
        }
        uint8_t b = *c->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            break;
    }
    return v;
}

static int64_t s_sleb(s_cur_t *c)
{
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b = 0;
    while (!c->bad) {
        if (c->p >= c->end) {
            c->bad = 1;
            return 0;
        }
        b = *c->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            break;
    }
    if (shift < 64 && (b & 0x40))
        v |= ~(uint64_t)0 << shift;
    return (int64_t)v;
}

/* A DW_EH_PE encoded pointer; section_addr + offset of the field is the
 * base of pcrel. Returns -1 for encodings we do not support. */
static int s_ptr(s_cur_t *c, uint8_t enc, uint64_t field_addr, uint64_t *out)
{
    uint64_t v;
    if (enc == 0xff)
        return -1;
    switch (enc & 0x0f) {
    case 0x00: v = s_un(c, 8); break;
    case 0x01: v = s_uleb(c); break;
    case 0x02: v = s_un(c, 2); break;
    case 0x03: v = s_un(c, 4); break;
    case 0x04: v = s_un(c, 8); break;
    case 0x09: v = (uint64_t)s_sleb(c); break;
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)s_un(c, 2); break;
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)s_un(c, 4); break;
    case 0x0c: v = s_un(c, 8); break;
    default: return -1;
    }
    switch (enc & 0x70) {
    case 0x00: break;
    case 0x10: v += field_addr; break;
    default: return -1;                 /* datarel/textrel/funcrel */
    }
    if (enc & 0x80)
        return -1;                      /* indirect: not for pc ranges */
    *out = v;
    return 0;
}

/* ------------------------------------------------------------ rules */

/* factor * align, saturated: an absurd offset stays absurd (and is
   refused later) instead of overflowing. */
static int64_t s_mul(int64_t factor, int64_t align)
{
    int64_t v;
    if (__builtin_mul_overflow(factor, align, &v))
        return INT64_MAX;
    return v;
}

static int64_t s_ufactor(uint64_t factor)
{
    return factor > INT64_MAX ? INT64_MAX : (int64_t)factor;
}

enum { R_SAME = 0, R_AT_CFA, R_AT_RSP, R_UNDEF, R_OTHER };

typedef struct {
    uint8_t cfa_kind;                   /* unwind_cfa_kind_t; NONE = bad */
    uint8_t cfa_reg;
    int64_t cfa_off;
    int64_t plt_threshold;
    uint8_t rbp_rule, ra_rule, rbx_rule;
    int64_t rbp_off, ra_off, rbx_off;
} s_state_t;

typedef struct {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    int has_z;
    const uint8_t *insns, *insns_end;
    uint64_t offset;                    /* in the section; ~0 = empty slot */
} s_cie_t;

static void s_count(unwind_table_t *self, unwind_error_t err)
{
    self->sum.errors[err]++;
}

/* breg7 base; breg16 0; lit15; and; litT; ge; lit3; shl; plus */
static int s_match_plt(const uint8_t *e, size_t n, int64_t *base,
                       int64_t *threshold)
{
    s_cur_t c = { e, e + n, 0 };
    if (s_un(&c, 1) != 0x77)
        return 0;
    *base = s_sleb(&c);
    if (s_un(&c, 1) != 0x80 || s_sleb(&c) != 0 || s_un(&c, 1) != 0x3f ||
        s_un(&c, 1) != 0x1a)
        return 0;
    uint64_t lit = s_un(&c, 1);
    if (lit < 0x30 || lit > 0x4f)
        return 0;
    *threshold = (int64_t)(lit - 0x30);
    return !c.bad && s_un(&c, 1) == 0x2a && s_un(&c, 1) == 0x33 &&
           s_un(&c, 1) == 0x24 && s_un(&c, 1) == 0x22 && !c.bad &&
           c.p == c.end;
}

/* breg7 off [; deref when want_deref] and nothing else */
static int s_match_breg7(const uint8_t *e, size_t n, int want_deref,
                         int64_t *off)
{
    s_cur_t c = { e, e + n, 0 };
    if (s_un(&c, 1) != 0x77)
        return 0;
    *off = s_sleb(&c);
    if (want_deref && s_un(&c, 1) != 0x06)
        return 0;
    return !c.bad && c.p == c.end;
}

/* The row a state describes (kind NONE when it cannot be followed). */
static unwind_row_t s_row_of(unwind_table_t *self, const s_state_t *st,
                             uint64_t pc, int *counted)
{
    unwind_row_t r = { .pc = pc };
    int ok = 0;
    switch (st->cfa_kind) {
    case UNWIND_CFA_RSP:
    case UNWIND_CFA_RBP:
    case UNWIND_CFA_RBX:
        ok = st->ra_rule == R_AT_CFA && st->ra_off == -8 &&
             st->cfa_off >= INT32_MIN && st->cfa_off <= INT32_MAX;
        break;
    case UNWIND_CFA_PLT:
        ok = st->ra_rule == R_AT_CFA && st->ra_off == -8 &&
             st->cfa_off >= 0 && st->cfa_off <= INT32_MAX;
        break;
    case UNWIND_CFA_SIGNAL:
        ok = st->ra_rule == R_AT_RSP && st->cfa_off >= 0 &&
             st->cfa_off <= INT32_MAX - 8 && st->ra_off == st->cfa_off + 8;
        break;
    default:
        break;
    }
    if (!ok) {
        /* RA undefined marks the outermost frame (_start): not an error */
        if (!*counted && st->cfa_kind != UNWIND_CFA_NONE &&
            st->ra_rule != R_UNDEF)
            s_count(self, UNWIND_ERR_REGISTER);
        *counted = 1;
        return r;
    }
    r.cfa_kind = st->cfa_kind;
    r.cfa_off = (int32_t)st->cfa_off;
    r.rbx_rule = UNWIND_RBX_UNKNOWN;
    if (st->rbx_rule == R_SAME)
        r.rbx_rule = UNWIND_RBX_SAME;
    else if (st->rbx_rule == R_AT_CFA && st->rbx_off % 8 == 0 &&
             st->rbx_off <= -16 &&
             st->rbx_off >= -8 * (UNWIND_RBX_SLOT_MAX + 1))
        r.rbx_rule = (uint8_t)(-st->rbx_off / 8 - 1);
    if (st->cfa_kind == UNWIND_CFA_PLT) {
        r.rbp_off = (int16_t)st->plt_threshold;
        return r;
    }
    switch (st->rbp_rule) {
    case R_SAME:
        r.rbp_kind = UNWIND_RBP_SAME;
        break;
    case R_AT_CFA:
    case R_AT_RSP:
        if (st->rbp_off < INT16_MIN || st->rbp_off > INT16_MAX) {
            r.rbp_kind = UNWIND_RBP_UNKNOWN;
            break;
        }
        r.rbp_kind = st->rbp_rule == R_AT_CFA ? UNWIND_RBP_AT_CFA
                                              : UNWIND_RBP_AT_RSP;
        r.rbp_off = (int16_t)st->rbp_off;
        break;
    default:
        r.rbp_kind = UNWIND_RBP_UNKNOWN;
    }
    return r;
}

static int s_push(unwind_table_t *self, const unwind_row_t *r)
{
    if (self->count >= self->lim.max_rows)
        return -1;
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 1024;
        if (cap > self->lim.max_rows)
            cap = self->lim.max_rows;
        unwind_row_t *rows = realloc(self->rows, cap * sizeof *rows);
        if (!rows)
            return -1;
        self->rows = rows;
        self->cap = cap;
    }
    self->rows[self->count++] = *r;
    return 0;
}

/* Runs a DW_CFA program over st. For an FDE (emit set) rows for
 * [*loc, end) are appended as the location advances. Returns 0, or the
 * error that ends the FDE. */
static int s_run(unwind_table_t *self, const s_cie_t *cie, s_cur_t *c,
                 s_state_t *st, const s_state_t *initial, uint64_t *loc,
                 uint64_t end, int emit, uint64_t sect_addr,
                 const uint8_t *sect)
{
    s_state_t stack[STATE_STACK_MAX];
    size_t depth = 0;
    int reg_counted = 0;
    while (c->p < c->end) {
        uint8_t op = (uint8_t)s_un(c, 1);
        uint64_t reg = 0, adv = 0, newloc = *loc;
        int64_t off = 0;
        int rule = -1;                          /* set a register rule */
        /* decode the operands, then act on the state below */
        enum { A_NONE, A_ADVANCE, A_RULE, A_RESTORE, A_DEF_CFA } act = A_NONE;
        switch (op & 0xc0) {
        case 0x40:
            adv = (op & 0x3f) * cie->code_align;
            act = A_ADVANCE;
            break;
        case 0x80:
            reg = op & 0x3f;
            off = s_mul(s_ufactor(s_uleb(c)), cie->data_align);
            rule = R_AT_CFA;
            act = A_RULE;
            break;
        case 0xc0:
            reg = op & 0x3f;
            act = A_RESTORE;
            break;
        default:
            break;
        }
        if (act == A_NONE) switch (op) {
        case 0x00:                               /* nop */
            continue;
        case 0x01: {                             /* set_loc */
            uint64_t field = sect_addr + (uint64_t)(c->p - sect);
            if (s_ptr(c, cie->fde_enc, field, &newloc) != 0)
                return c->bad ? UNWIND_ERR_TRUNCATED : UNWIND_ERR_ENCODING;
            if (newloc < *loc)
                return UNWIND_ERR_STATE;
            adv = newloc - *loc;
            act = A_ADVANCE;
            break;
        }
        case 0x02: adv = s_un(c, 1) * cie->code_align; act = A_ADVANCE;
            break;
        case 0x03: adv = s_un(c, 2) * cie->code_align; act = A_ADVANCE;
            break;
        case 0x04: adv = s_un(c, 4) * cie->code_align; act = A_ADVANCE;
            break;
        case 0x05:                               /* offset_extended */
            reg = s_uleb(c);
            off = s_mul(s_ufactor(s_uleb(c)), cie->data_align);
            rule = R_AT_CFA;
            act = A_RULE;
            break;
        case 0x06: reg = s_uleb(c); act = A_RESTORE;
            break;
        case 0x07:                               /* undefined */
        case 0x08:                               /* same_value */
            reg = s_uleb(c);
            rule = op == 0x08 ? R_SAME : R_UNDEF;
            act = A_RULE;
            break;
        case 0x09:                               /* register */
            reg = s_uleb(c);
            (void)s_uleb(c);
            rule = R_OTHER;
            act = A_RULE;
            break;
        case 0x0a:
            if (depth >= STATE_STACK_MAX)
                return UNWIND_ERR_STATE;
            stack[depth++] = *st;
            continue;
        case 0x0b:
            if (depth == 0)
                return UNWIND_ERR_STATE;
            /* restore_state keeps nothing of the location */
            *st = stack[--depth];
            continue;
        case 0x0c:                               /* def_cfa */
            st->cfa_reg = (uint8_t)(reg = s_uleb(c));
            st->cfa_off = s_ufactor(s_uleb(c));
            act = A_DEF_CFA;
            break;
        case 0x12:                               /* def_cfa_sf */
            st->cfa_reg = (uint8_t)(reg = s_uleb(c));
            st->cfa_off = s_mul(s_sleb(c), cie->data_align);
            act = A_DEF_CFA;
            break;
        case 0x0d:                               /* def_cfa_register */
            st->cfa_reg = (uint8_t)(reg = s_uleb(c));
            act = A_DEF_CFA;
            break;
        case 0x0e:                               /* def_cfa_offset */
            st->cfa_off = s_ufactor(s_uleb(c));
            reg = st->cfa_reg;
            act = A_DEF_CFA;
            break;
        case 0x13:                               /* def_cfa_offset_sf */
            st->cfa_off = s_mul(s_sleb(c), cie->data_align);
            reg = st->cfa_reg;
            act = A_DEF_CFA;
            break;
        case 0x0f: {                             /* def_cfa_expression */
            uint64_t n = s_uleb(c);
            if (c->bad || n > (uint64_t)(c->end - c->p))
                return UNWIND_ERR_TRUNCATED;
            int64_t base = 0, thr = 0;
            if (s_match_plt(c->p, n, &base, &thr)) {
                st->cfa_kind = UNWIND_CFA_PLT;
                st->cfa_off = base;
                st->plt_threshold = thr;
            } else if (s_match_breg7(c->p, n, 1, &base)) {
                st->cfa_kind = UNWIND_CFA_SIGNAL;
                st->cfa_off = base;
            } else {
                s_count(self, UNWIND_ERR_EXPRESSION);
                st->cfa_kind = UNWIND_CFA_NONE;
                reg_counted = 1;
            }
            st->cfa_reg = 0xff;
            c->p += n;
            continue;
        }
        case 0x10:                               /* expression */
        case 0x16: {                             /* val_expression */
            reg = s_uleb(c);
            uint64_t n = s_uleb(c);
            if (c->bad || n > (uint64_t)(c->end - c->p))
                return UNWIND_ERR_TRUNCATED;
            rule = R_OTHER;
            if (op == 0x10 && s_match_breg7(c->p, n, 0, &off))
                rule = R_AT_RSP;
            c->p += n;
            act = A_RULE;
            break;
        }
        case 0x11:                               /* offset_extended_sf */
            reg = s_uleb(c);
            off = s_mul(s_sleb(c), cie->data_align);
            rule = R_AT_CFA;
            act = A_RULE;
            break;
        case 0x14:                               /* val_offset */
        case 0x15:                               /* val_offset_sf */
            reg = s_uleb(c);
            if (op == 0x14)
                (void)s_uleb(c);
            else
                (void)s_sleb(c);
            rule = R_OTHER;
            act = A_RULE;
            break;
        case 0x2e:                               /* GNU_args_size */
            (void)s_uleb(c);
            continue;
        case 0x2f:                               /* GNU_negative_offset_ext */
            reg = s_uleb(c);
            off = s_mul(-s_ufactor(s_uleb(c)), cie->data_align);
            rule = R_AT_CFA;
            act = A_RULE;
            break;
        default:
            return UNWIND_ERR_OPCODE;
        }
        if (c->bad)
            return UNWIND_ERR_TRUNCATED;
        switch (act) {
        case A_DEF_CFA:
            st->cfa_kind = reg == REG_RSP ? UNWIND_CFA_RSP
                     : reg == REG_RBP ? UNWIND_CFA_RBP
                     : reg == REG_RBX ? UNWIND_CFA_RBX : UNWIND_CFA_NONE;
            if (st->cfa_kind == UNWIND_CFA_NONE && !reg_counted) {
                s_count(self, UNWIND_ERR_REGISTER);
                reg_counted = 1;
            }
            break;
        case A_RESTORE:
            if (initial && reg == REG_RBP) {
                st->rbp_rule = initial->rbp_rule;
                st->rbp_off = initial->rbp_off;
            } else if (initial && reg == REG_RA) {
                st->ra_rule = initial->ra_rule;
                st->ra_off = initial->ra_off;
            } else if (initial && reg == REG_RBX) {
                st->rbx_rule = initial->rbx_rule;
                st->rbx_off = initial->rbx_off;
            }
            break;
        case A_RULE:
            if (reg == REG_RBP) {
                st->rbp_rule = (uint8_t)rule;
                st->rbp_off = off;
            } else if (reg == REG_RA) {
                st->ra_rule = (uint8_t)rule;
                st->ra_off = off;
            } else if (reg == REG_RBX) {
                st->rbx_rule = (uint8_t)rule;
                st->rbx_off = off;
            }
            break;
        case A_ADVANCE:
            if (!emit || !adv)
                break;                          /* CIE: no rows */
            if (adv > end - *loc)
                return UNWIND_ERR_STATE;
            unwind_row_t r = s_row_of(self, st, *loc, &reg_counted);
            if (s_push(self, &r) != 0)
                return UNWIND_ERR_LIMIT;
            *loc += adv;
            break;
        default:
            break;
        }
    }
    if (c->bad)
        return UNWIND_ERR_TRUNCATED;
    if (emit && *loc < end) {
        unwind_row_t r = s_row_of(self, st, *loc, &reg_counted);
        if (s_push(self, &r) != 0)
            return UNWIND_ERR_LIMIT;
    }
    return 0;
}

/* ------------------------------------------------------------ records */

/* The record at off: its body [*body, *rec_end), the offset of its id
 * field and the id. -1 at the end or when the framing is broken. */
static int s_record(const uint8_t *sect, size_t size, size_t off,
                    int is_eh, const uint8_t **body, size_t *rec_end,
                    size_t *id_off, uint64_t *id, int *terminator)
{
    s_cur_t c = { sect + off, sect + size, 0 };
    *terminator = 0;
    uint64_t len = s_un(&c, 4);
    int dwarf64 = 0;
    if (len == 0xffffffffu) {
        len = s_un(&c, 8);
        dwarf64 = 1;
    }
    if (c.bad)
        return -1;
    if (len == 0 && is_eh) {
        *terminator = 1;
        return -1;
    }
    size_t start = (size_t)(c.p - sect);
    if (len > size - start || len < (dwarf64 ? 8u : 4u))
        return -1;
    *rec_end = start + (size_t)len;
    *id_off = start;
    c.end = sect + *rec_end;
    *id = s_un(&c, dwarf64 && !is_eh ? 8 : 4);   /* eh: always 4 */
    if (!dwarf64 && !is_eh && *id == 0xffffffffu)
        *id = ~(uint64_t)0;
    *body = c.p;
    return 0;
}

static int s_parse_cie(const uint8_t *sect, size_t size, size_t off,
                       int is_eh, s_cie_t *cie)
{
    const uint8_t *body;
    size_t end, id_off;
    uint64_t id;
    int term;
    if (s_record(sect, size, off, is_eh, &body, &end, &id_off, &id,
                 &term) != 0)
        return UNWIND_ERR_TRUNCATED;
    if (is_eh ? id != 0 : id != ~(uint64_t)0)
        return UNWIND_ERR_BAD_CIE;
    s_cur_t c = { body, sect + end, 0 };
    memset(cie, 0, sizeof *cie);
    cie->offset = off;
    cie->fde_enc = 0x00;                        /* absptr, 8 bytes */
    uint64_t version = s_un(&c, 1);
    if (version != 1 && version != 3 && version != 4)
        return UNWIND_ERR_BAD_CIE;
    const uint8_t *aug = c.p;
    while (c.p < c.end && *c.p)
        c.p++;
    if (c.p >= c.end)
        return UNWIND_ERR_TRUNCATED;
    size_t aug_len = (size_t)(c.p - aug);
    c.p++;
    if (version == 4) {
        if (s_un(&c, 1) != 8 || s_un(&c, 1) != 0)
            return c.bad ? UNWIND_ERR_TRUNCATED : UNWIND_ERR_ENCODING;
    }
    cie->code_align = s_uleb(&c);
    cie->data_align = s_sleb(&c);
    cie->ra_reg = version == 1 ? s_un(&c, 1) : s_uleb(&c);
    if (c.bad)
        return UNWIND_ERR_TRUNCATED;
    if (cie->code_align == 0 || cie->code_align > 64 ||
        cie->data_align < -64 || cie->data_align > 64 ||
        cie->ra_reg != REG_RA)
        return UNWIND_ERR_ENCODING;
    if (aug_len && aug[0] == 'z') {
        cie->has_z = 1;
        uint64_t n = s_uleb(&c);
        if (c.bad || n > (uint64_t)(c.end - c.p))
            return UNWIND_ERR_TRUNCATED;
        s_cur_t a = { c.p, c.p + n, 0 };
        for (size_t i = 1; i < aug_len; i++) {
            uint64_t skip;
            switch (aug[i]) {
            case 'R': cie->fde_enc = (uint8_t)s_un(&a, 1); break;
            case 'L': (void)s_un(&a, 1); break;
            case 'P': {
                /* only its size matters: read it as an absolute value */
                uint8_t enc = (uint8_t)s_un(&a, 1);
                if (s_ptr(&a, enc & 0x0f, 0, &skip) != 0 && !a.bad)
                    return UNWIND_ERR_ENCODING;
                break;
            }
            case 'S': case 'B': case 'G': break;
            default:            /* 'R' could follow it: refuse the CIE */
                return UNWIND_ERR_ENCODING;
            }
        }
        if (a.bad)
            return UNWIND_ERR_TRUNCATED;
        c.p += n;
    } else if (aug_len) {
        return UNWIND_ERR_ENCODING;
    }
    cie->insns = c.p;
    cie->insns_end = c.end;
    return 0;
}

/* Walks one CFI section. sect_addr: its link-time address (for pcrel). */
static void s_parse_section(unwind_table_t *self, const uint8_t *sect,
                            size_t size, uint64_t sect_addr, int is_eh)
{
    s_cie_t cache[CIE_CACHE];
    for (size_t i = 0; i < CIE_CACHE; i++)
        cache[i].offset = ~(uint64_t)0;
    size_t off = 0;
    while (off < size) {
        const uint8_t *body;
        size_t end, id_off;
        uint64_t id;
        int term;
        if (s_record(sect, size, off, is_eh, &body, &end, &id_off, &id,
                     &term) != 0) {
            if (!term)
                s_count(self, UNWIND_ERR_TRUNCATED);
            break;
        }
        size_t next = end;
        if (is_eh ? id == 0 : id == ~(uint64_t)0) {
            self->sum.cies++;
            off = next;
            continue;
        }
        if (self->sum.fdes >= self->lim.max_fdes) {
            s_count(self, UNWIND_ERR_LIMIT);
            break;
        }
        self->sum.fdes++;
        /* The CIE: eh_frame counts back from the id field, debug_frame
           gives a section offset. A pointer at this FDE itself or at
           another FDE fails the CIE-id check, so no loop is possible. */
        uint64_t cie_off;
        if (is_eh) {
            if (id > id_off) {
                s_count(self, UNWIND_ERR_BAD_CIE);
                off = next;
                continue;
            }
            cie_off = id_off - id;
        } else {
            cie_off = id;
        }
        if (cie_off >= size) {
            s_count(self, UNWIND_ERR_BAD_CIE);
            off = next;
            continue;
        }
        s_cie_t *cie = &cache[(cie_off / 4) % CIE_CACHE];
        if (cie->offset != cie_off) {
            int err = s_parse_cie(sect, size, (size_t)cie_off, is_eh, cie);
            if (err) {
                cie->offset = ~(uint64_t)0;
                s_count(self, (unwind_error_t)err);
                off = next;
                continue;
            }
        }
        s_cur_t c = { body, sect + end, 0 };
        uint64_t pc = 0, range = 0;
        uint8_t enc = is_eh ? cie->fde_enc : 0x00;
        uint64_t field = sect_addr + (uint64_t)(c.p - sect);
        int err = 0;
        if (s_ptr(&c, enc, field, &pc) != 0 ||
            s_ptr(&c, enc & 0x0f, 0, &range) != 0)
            err = c.bad ? UNWIND_ERR_TRUNCATED : UNWIND_ERR_ENCODING;
        if (!err && cie->has_z) {
            uint64_t n = s_uleb(&c);
            if (c.bad || n > (uint64_t)(c.end - c.p))
                err = UNWIND_ERR_TRUNCATED;
            else
                c.p += n;
        }
        if (!err && (range == 0 || pc + range < pc)) {
            off = next;                         /* empty: nothing to add */
            continue;
        }
        size_t mark = self->count;
        if (!err) {
            /* CIE initial instructions, then the FDE's own */
            s_state_t st = { .cfa_kind = UNWIND_CFA_NONE };
            s_cur_t ci = { cie->insns, cie->insns_end, 0 };
            uint64_t loc = pc;
            err = s_run(self, cie, &ci, &st, NULL, &loc, pc + range, 0,
                        sect_addr, sect);
            s_state_t initial = st;
            if (!err)
                err = s_run(self, cie, &c, &st, &initial, &loc, pc + range,
                            1, sect_addr, sect);
            if (!err) {
                unwind_row_t stop = { .pc = pc + range };
                if (s_push(self, &stop) != 0)
                    err = UNWIND_ERR_LIMIT;
            }
        }
        if (err) {
            self->count = mark;                 /* drop this FDE's rows */
            s_count(self, (unwind_error_t)err);
            if (err == UNWIND_ERR_LIMIT)
                break;
        } else {
            self->sum.fdes_used++;
        }
        off = next;
    }
}

/* ------------------------------------------------------------ ELF */

/* Loads the named section; NULL (error counted) when absent or bad. */
static uint8_t *s_section(unwind_table_t *self, const s_input_t *in,
                          const Elf64_Ehdr *eh, const uint8_t *shstr,
                          size_t shstr_len, const char *name,
                          size_t *len, uint64_t *addr)
{
    size_t nlen = strlen(name);
    for (size_t i = 1; i < eh->e_shnum; i++) {
        Elf64_Shdr sh;
        if (s_read(in, eh->e_shoff + i * sizeof sh, &sh, sizeof sh) != 0)
            return NULL;
        if (sh.sh_type == SHT_NOBITS || sh.sh_name >= shstr_len ||
            shstr_len - sh.sh_name <= nlen ||
            memcmp(shstr + sh.sh_name, name, nlen + 1) != 0)
            continue;
        if ((sh.sh_flags & SHF_COMPRESSED) ||
            sh.sh_size > self->lim.max_section_bytes ||
            sh.sh_offset > in->size || sh.sh_size > in->size - sh.sh_offset) {
            s_count(self, UNWIND_ERR_SECTION);
            return NULL;
        }
        uint8_t *buf = malloc(sh.sh_size ? sh.sh_size : 1);
        if (!buf || s_read(in, sh.sh_offset, buf, sh.sh_size) != 0) {
            free(buf);
            s_count(self, UNWIND_ERR_SECTION);
            return NULL;
        }
        *len = sh.sh_size;
        *addr = sh.sh_addr;
        return buf;
    }
    return NULL;
}

static int s_cmp_row(const void *a, const void *b)
{
    const unwind_row_t *x = a, *y = b;
    return x->pc < y->pc ? -1 : x->pc > y->pc;
}

/* Sorts the rows; where FDEs overlap or abut, a real row beats the
 * end-of-FDE marker at the same pc; equal neighbours merge. */
static void s_finish(unwind_table_t *self)
{
    if (self->count == 0)
        return;
    /* FDEs are usually in order already: sort only when needed */
    int sorted = 1;
    for (size_t i = 1; i < self->count && sorted; i++)
        sorted = self->rows[i - 1].pc <= self->rows[i].pc;
    if (!sorted)
        qsort(self->rows, self->count, sizeof *self->rows, s_cmp_row);
    size_t out = 0;
    for (size_t i = 0; i < self->count; i++) {
        unwind_row_t r = self->rows[i];
        if (out && self->rows[out - 1].pc == r.pc) {
            if (r.cfa_kind != UNWIND_CFA_NONE)
                self->rows[out - 1] = r;
            /* merge again with the row before, if now equal */
            if (out >= 2 && memcmp(&self->rows[out - 2].cfa_off,
                                   &self->rows[out - 1].cfa_off, 8) == 0)
                out--;
            continue;
        }
        if (out && memcmp(&self->rows[out - 1].cfa_off, &r.cfa_off, 8) == 0)
            continue;
        self->rows[out++] = r;
    }
    self->count = out;
    unwind_row_t *rows = realloc(self->rows, out * sizeof *rows);
    if (rows) {
        self->rows = rows;
        self->cap = out;
    }
}

static unwind_table_t *s_new(const s_input_t *in, const unwind_limits_t *lim)
{
    unwind_table_t *self = calloc(1, sizeof *self);
    uint8_t *shstr = NULL, *sect = NULL;
    if (!self)
        goto cleanup;
    if (lim)
        self->lim = *lim;
    if (!self->lim.max_section_bytes)
        self->lim.max_section_bytes = DEFAULT_MAX_SECTION;
    if (!self->lim.max_rows)
        self->lim.max_rows = DEFAULT_MAX_ROWS;
    if (!self->lim.max_fdes)
        self->lim.max_fdes = DEFAULT_MAX_FDES;

    Elf64_Ehdr eh;
    if (s_read(in, 0, &eh, sizeof eh) != 0 ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64 ||
        eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 ||
        eh.e_shstrndx == SHN_UNDEF || eh.e_shstrndx >= eh.e_shnum ||
        eh.e_shoff > in->size ||
        (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr) > in->size - eh.e_shoff) {
        s_count(self, UNWIND_ERR_NOT_ELF);
        goto cleanup;
    }
    Elf64_Shdr strsh;
    if (s_read(in, eh.e_shoff + (uint64_t)eh.e_shstrndx * sizeof strsh,
               &strsh, sizeof strsh) != 0 ||
        strsh.sh_size > (1u << 24) || strsh.sh_offset > in->size ||
        strsh.sh_size > in->size - strsh.sh_offset ||
        !(shstr = malloc(strsh.sh_size ? strsh.sh_size : 1)) ||
        s_read(in, strsh.sh_offset, shstr, strsh.sh_size) != 0) {
        s_count(self, UNWIND_ERR_NOT_ELF);
        goto cleanup;
    }
    size_t len = 0;
    uint64_t addr = 0;
    /* Both when both are there: gcc writes .debug_frame only for code
       built without unwind tables, while crt files still bring their
       .eh_frame; where they overlap the rows agree. */
    int found = 0;
    sect = s_section(self, in, &eh, shstr, strsh.sh_size, ".eh_frame",
                     &len, &addr);
    if (sect) {
        s_parse_section(self, sect, len, addr, 1);
        free(sect);
        found = 1;
    }
    size_t used = self->sum.fdes_used;
    sect = s_section(self, in, &eh, shstr, strsh.sh_size, ".debug_frame",
                     &len, &addr);
    if (sect) {
        s_parse_section(self, sect, len, 0, 0);
        self->sum.from_debug_frame = self->sum.fdes_used > used;
        found = 1;
    }
    if (!found)
        s_count(self, UNWIND_ERR_NO_CFI);
    s_finish(self);
cleanup:
    free(shstr);
    free(sect);
    return self;
}

/* ------------------------------------------------------------ API */

unwind_table_t *unwind_table_new_fd(int fd, const unwind_limits_t *limits)
{
    struct stat stbuf;
    s_input_t in = { .fd = fd };
    if (fd >= 0 && fstat(fd, &stbuf) == 0 && stbuf.st_size > 0)
        in.size = (uint64_t)stbuf.st_size;
    return s_new(&in, limits);
}

unwind_table_t *unwind_table_new_mem(const void *image, size_t size,
                                     const unwind_limits_t *limits)
{
    static const uint8_t empty[1];
    s_input_t in = { .fd = -1, .mem = image ? image : empty,
                     .size = image ? size : 0 };
    return s_new(&in, limits);
}

void unwind_table_destroy(unwind_table_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->rows);
    free(*self_p);
    *self_p = NULL;
}

const unwind_row_t *unwind_table_lookup(const unwind_table_t *self,
                                        uint64_t pc)
{
    if (!self || self->count == 0 || pc < self->rows[0].pc)
        return NULL;
    size_t lo = 0, hi = self->count;           /* rows[lo].pc <= pc */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->rows[mid].pc <= pc)
            lo = mid;
        else
            hi = mid;
    }
    const unwind_row_t *r = &self->rows[lo];
    return r->cfa_kind == UNWIND_CFA_NONE ? NULL : r;
}

size_t unwind_table_rows(const unwind_table_t *self,
                         const unwind_row_t **rows)
{
    if (rows)
        *rows = self ? self->rows : NULL;
    return self ? self->count : 0;
}

void unwind_table_summary(const unwind_table_t *self, unwind_summary_t *out)
{
    memset(out, 0, sizeof *out);
    if (!self)
        return;
    *out = self->sum;
    out->rows = self->count;
    out->bytes = self->count * sizeof(unwind_row_t);
}

const char *unwind_error_name(unwind_error_t err)
{
    static const char *const names[UNWIND_ERR_COUNT] = {
        [UNWIND_ERR_NOT_ELF] = "not_elf",
        [UNWIND_ERR_NO_CFI] = "no_cfi",
        [UNWIND_ERR_SECTION] = "section",
        [UNWIND_ERR_TRUNCATED] = "truncated",
        [UNWIND_ERR_BAD_CIE] = "bad_cie",
        [UNWIND_ERR_ENCODING] = "encoding",
        [UNWIND_ERR_OPCODE] = "opcode",
        [UNWIND_ERR_EXPRESSION] = "expression",
        [UNWIND_ERR_REGISTER] = "register",
        [UNWIND_ERR_STATE] = "state",
        [UNWIND_ERR_LIMIT] = "limit",
    };
    return (unsigned)err < UNWIND_ERR_COUNT ? names[err] : "unknown";
}
