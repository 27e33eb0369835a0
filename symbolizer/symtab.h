/* A function symbol table: address ranges -> names, built once, then
 * queried many times.
 *
 * Storage is a sorted array of 16-byte entries and one string pool in
 * which every name is interned, so a table costs little more than its
 * names and a lookup is one binary search. Mangled C++/Rust names are
 * demangled the first time a lookup returns them (most symbols of a big
 * C++ library are never sampled, so demangling them all up front would
 * waste time and memory). */
#ifndef SKYPROF_SYMBOLIZER_SYMTAB_H
#define SKYPROF_SYMBOLIZER_SYMTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct symtab symtab_t;

/* Preference between symbols at the same address (aliases): the higher
 * rank wins (global over weak over local). */
enum symtab_rank { SYMTAB_RANK_LOCAL = 0, SYMTAB_RANK_WEAK = 1,
                   SYMTAB_RANK_GLOBAL = 2 };

symtab_t *symtab_new(void);
void symtab_destroy(symtab_t **self_p);

/* Adds a symbol while building. size 0 means "unknown": the symbol then
 * extends to the next symbol's start, but never past limit (the end of
 * its section, or a sane cap). A later add at the same start with the
 * same rank wins over an earlier one when `later_wins` is set at finish
 * (perf maps: newer JIT code replaces older code). Names longer than the
 * wire allows are truncated. */
int symtab_add(symtab_t *self, uint64_t start, uint64_t size, uint64_t limit,
               const char *name, size_t name_len, int rank);

/* Sorts, resolves aliases and size-0 ends, drops build-only memory.
 * After this no more symbols may be added. */
int symtab_finish(symtab_t *self, int later_wins);

/* Name of the function containing addr, or NULL. The pointer is valid
 * until the next call on this table (a lazy demangle may grow the pool).
 * start_out (optional) receives the function's start address. */
const char *symtab_lookup(symtab_t *self, uint64_t addr, uint64_t *start_out);

size_t symtab_count(const symtab_t *self);
/* Heap bytes held by the table (entries + names + bookkeeping). */
size_t symtab_bytes(const symtab_t *self);

#endif
