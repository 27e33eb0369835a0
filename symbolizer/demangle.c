/* Demangling through libiberty; see demangle.h for the chosen style. */
#include "symbolizer/demangle.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <libiberty/demangle.h>

bool
sym_is_mangled(const char *name)
{
    /* "_Z" is the Itanium C++ prefix, also used by legacy Rust; "_R" is
     * Rust v0. Anything else (C, kernel, Java perf-map names) is left
     * alone without calling into libiberty at all. */
    return name[0] == '_' && (name[1] == 'Z' || name[1] == 'R');
}

/* Legacy Rust names survive some demangler paths with their hash: strip a
 * trailing "::h" followed by exactly 16 hex digits. */
static void
s_strip_rust_hash(char *name)
{
    size_t len = strlen(name);
    if (len < 19)
        return;
    char *tail = name + len - 19;
    if (strncmp(tail, "::h", 3) != 0)
        return;
    for (int i = 3; i < 19; i++)
        if (!isxdigit((unsigned char)tail[i]))
            return;
    *tail = '\0';
}

char *
sym_demangle(const char *name)
{
    char *out = NULL;
    if (!sym_is_mangled(name))
        goto cleanup;
    /* DMGL_AUTO tries Rust first (which drops the legacy hash), then the
     * GNU v3 C++ demangler. */
    out = cplus_demangle(name, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
    if (out)
        s_strip_rust_hash(out);
cleanup:
    return out;
}
