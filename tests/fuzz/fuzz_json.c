/* lib/json.c, the reader of the OAP's policy documents, local policy
 * files and HTTP request bodies: any text either parses into a DOM every
 * value of which can be walked, or fails with a reason (strictly, and
 * again with trailing commas allowed, as for request bodies); never more
 * memory than the arena allows, never deeper than JSON_MAX_DEPTH. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "json.h"

/* Reads every value, as consumers do, so a dangling pointer or a count
 * larger than its array shows up here. */
static void s_walk(const json_value_t *v, int depth)
{
    if (depth > JSON_MAX_DEPTH + 1)
        __builtin_trap();
    switch (v->type) {
    case JSON_STRING:
        (void)strlen(v->str);
        break;
    case JSON_OBJECT:
        for (size_t i = 0; i < v->n; i++) {
            if (json_get(v, v->keys[i]) == NULL)
                __builtin_trap();   /* a member must be found by its key */
            s_walk(v->items[i], depth + 1);
        }
        break;
    case JSON_ARRAY:
        for (size_t i = 0; i < v->n; i++)
            s_walk(v->items[i], depth + 1);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    /* The policy engine's budget for a document of this size. */
    arena_t *arena = arena_new(size * 8 + 65536);
    if (!arena)
        return 0;
    json_value_t *v = json_parse((const char *)data, size, arena, err,
                                 sizeof err);
    if (v)
        s_walk(v, 0);
    else if (!err[0])
        __builtin_trap();           /* a failure always says why */
    /* The same bytes as an HTTP request body (trailing commas allowed):
     * whatever strict JSON accepts it accepts too. */
    arena_reset(arena);
    json_value_t *lenient = json_parse_opts((const char *)data, size, arena,
                                            JSON_TRAILING_COMMAS, err,
                                            sizeof err);
    if (lenient)
        s_walk(lenient, 0);
    else if (v || !err[0])
        __builtin_trap();
    arena_destroy(&arena);
    return 0;
}
