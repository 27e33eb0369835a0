/* Demangling of C++ (Itanium ABI) and Rust (legacy and v0) names through
 * libiberty, in the form that reads best in a flame graph: parameter types
 * kept (they tell overloads apart), Rust's legacy "::h<16 hex>" hash
 * suffix removed (it differs per build and would split one function into
 * several flame-graph nodes). */
#ifndef SKYPROF_SYMBOLIZER_DEMANGLE_H
#define SKYPROF_SYMBOLIZER_DEMANGLE_H

#include <stdbool.h>

/* Cheap test: does this name look like something sym_demangle handles? */
bool sym_is_mangled(const char *name);

/* Returns a malloc'ed demangled name, or NULL when the name is not
 * mangled or does not demangle. */
char *sym_demangle(const char *name);

#endif
