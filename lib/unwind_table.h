/* Unwind tables of one ELF object for x86-64, from its call-frame
 * information (.eh_frame, else .debug_frame), in the compact form an
 * in-kernel unwinder can binary-search (issue 15): per address range, how
 * to find the canonical frame address (CFA = RSP+off or RBP+off, or one of
 * the two expression patterns x86-64 code really uses: PLT stubs and the
 * signal trampoline), that the return address is at CFA-8, and where the
 * caller's RBP was saved. Both sections are read when both are there (a
 * separate debug file has only .debug_frame; code built without unwind
 * tables has .debug_frame next to the crt files' .eh_frame).
 *
 * Our own parser rather than libdw's dwarf_getcfi_elf: the input is any
 * file a container ships, so every read is bounded by the section size
 * and every count by unwind_limits_t, failures are counted per reason
 * instead of aborting the object, and the whole reader is small enough
 * to fuzz (tests/fuzz/fuzz_unwind_table.c); we only need the x86-64 CFA
 * subset, not libdw's general register machine, and it costs no new
 * dependency. The file is read with pread (or from a memory image), no
 * libelf and no mmap. Addresses are the object's link-time virtual
 * addresses (add the mapping's load bias for runtime pcs). */
#ifndef SKYPROF_UNWIND_TABLE_H
#define SKYPROF_UNWIND_TABLE_H

#include <stddef.h>
#include <stdint.h>

/* How the CFA of a row is computed. */
typedef enum {
    UNWIND_CFA_NONE = 0,   /* no unwind information here (gap, end of a
                              function, or a rule we cannot express) */
    UNWIND_CFA_RSP,        /* CFA = RSP + cfa_off */
    UNWIND_CFA_RBP,        /* CFA = RBP + cfa_off */
    UNWIND_CFA_PLT,        /* PLT stub: CFA = RSP + cfa_off, plus 8 when
                              (RIP & 15) >= rbp_off (the lazy-binding push
                              has run); RBP unchanged */
    UNWIND_CFA_SIGNAL,     /* signal trampoline: RSP points at the kernel's
                              ucontext; the caller's RSP is saved at
                              RSP + cfa_off, its RIP at RSP + cfa_off + 8
                              and its RBP at RSP + rbp_off (its RBX right
                              above, as struct sigcontext lays them out) */
    UNWIND_CFA_RBX,        /* CFA = RBX + cfa_off: code that realigns its
                              stack and keeps the old RSP in RBX (ld.so's
                              lazy-binding trampoline
                              _dl_runtime_resolve_xsavec, under every
                              first call of a lazily bound function) */
} unwind_cfa_kind_t;

/* Where the caller's RBP is. */
typedef enum {
    UNWIND_RBP_SAME = 0,   /* not saved: RBP still holds the caller's */
    UNWIND_RBP_AT_CFA,     /* saved at CFA + rbp_off */
    UNWIND_RBP_AT_RSP,     /* saved at RSP + rbp_off (signal frames only) */
    UNWIND_RBP_UNKNOWN,    /* a rule we do not follow: the caller's RBP is
                              lost, so an RBP-based CFA above fails */
} unwind_rbp_kind_t;

/* Where the caller's RBX is, tracked only so that an RBX-based CFA
 * further up can be followed: 0 not saved (RBX still holds the caller's),
 * 1..6 saved at CFA - 8 * (rule + 1), i.e. CFA-16 .. CFA-56, where the
 * prologue pushes of gcc and clang put it; anything else is lost. */
#define UNWIND_RBX_SAME     0
#define UNWIND_RBX_SLOT_MAX 6
#define UNWIND_RBX_UNKNOWN  7

/* One row: valid from pc up to the next row's pc. The return address is
 * always at CFA - 8 (rows whose CFI says otherwise become NONE and are
 * counted), except for SIGNAL rows as described above. 16 bytes. */
typedef struct {
    uint64_t pc;
    int32_t cfa_off;
    int16_t rbp_off;       /* for PLT rows: the (RIP & 15) threshold */
    uint8_t cfa_kind;      /* unwind_cfa_kind_t */
    uint8_t rbp_kind : 4;  /* unwind_rbp_kind_t */
    uint8_t rbx_rule : 4;  /* UNWIND_RBX_* */
} unwind_row_t;

/* Why CFI (or a part of it) was not used. Each is counted; an error in an
 * FDE drops that FDE's rows, an error in the section framing ends the
 * section. */
typedef enum {
    UNWIND_ERR_NOT_ELF = 0,    /* not a readable x86-64 ELF64 LE file */
    UNWIND_ERR_NO_CFI,         /* neither .eh_frame nor .debug_frame */
    UNWIND_ERR_SECTION,        /* a section past the file's end, too big,
                                  or compressed */
    UNWIND_ERR_TRUNCATED,      /* a record or operand runs past its end */
    UNWIND_ERR_BAD_CIE,        /* FDE's CIE pointer not at a valid CIE */
    UNWIND_ERR_ENCODING,       /* unsupported pointer encoding/augmentation */
    UNWIND_ERR_OPCODE,         /* unknown DW_CFA opcode */
    UNWIND_ERR_EXPRESSION,     /* a DWARF expression of another shape */
    UNWIND_ERR_REGISTER,       /* CFA on a register other than RSP/RBP/RBX, an
                                  offset out of range, or RA not at CFA-8 */
    UNWIND_ERR_STATE,          /* remember/restore_state too deep or
                                  unbalanced; location going backwards */
    UNWIND_ERR_LIMIT,          /* max_rows or max_fdes reached */
    UNWIND_ERR_COUNT
} unwind_error_t;

typedef struct {
    size_t max_section_bytes;  /* a bigger CFI section is refused (0: 256 MiB) */
    size_t max_rows;           /* rows kept at most (0: 8 M) */
    size_t max_fdes;           /* FDEs looked at at most (0: 4 M) */
} unwind_limits_t;

typedef struct {
    size_t rows;               /* rows in the table (after merging) */
    size_t bytes;              /* memory of the rows */
    size_t cies, fdes;         /* records parsed */
    size_t fdes_used;          /* FDEs whose rows are in the table */
    int from_debug_frame;      /* 1: .debug_frame gave rows */
    size_t errors[UNWIND_ERR_COUNT];
} unwind_summary_t;

typedef struct unwind_table_t unwind_table_t;

/* The table of the ELF file open on fd (read with pread, offsets bounded
 * by its size) or of an image in memory. NULL only when out of memory; a
 * file that is not ELF or has no CFI gives an empty table with the reason
 * counted. limits may be NULL (defaults). */
unwind_table_t *unwind_table_new_fd(int fd, const unwind_limits_t *limits);
unwind_table_t *unwind_table_new_mem(const void *image, size_t size,
                                     const unwind_limits_t *limits);
void unwind_table_destroy(unwind_table_t **self_p);

/* The row covering pc (a link-time address), or NULL when there is none
 * or it is UNWIND_CFA_NONE. O(log rows). */
const unwind_row_t *unwind_table_lookup(const unwind_table_t *self,
                                        uint64_t pc);
/* All rows, sorted by pc, no two consecutive equal; returns the count. */
size_t unwind_table_rows(const unwind_table_t *self,
                         const unwind_row_t **rows);
void unwind_table_summary(const unwind_table_t *self, unwind_summary_t *out);
/* "truncated", "bad_cie", ... for counters. */
const char *unwind_error_name(unwind_error_t err);

#endif
