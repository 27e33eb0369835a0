/* A small JSON reader for documents that come from outside (the OAP's
 * policy and extension JSON, local policy files): a DOM built in a caller's
 * arena, with bounded depth, so a hostile document fails with a reason and
 * cannot exhaust memory (the arena has a limit) or the stack. */
#ifndef SKYPROF_JSON_H
#define SKYPROF_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

#define JSON_MAX_DEPTH 32

typedef enum {
    JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT
} json_type_t;

typedef struct json_value json_value_t;

struct json_value {
    json_type_t type;
    int boolean;
    double number;
    const char *str;            /* JSON_STRING, unescaped, NUL terminated */
    size_t n;                   /* items of an array, members of an object */
    json_value_t **items;       /* array items, or object values */
    const char **keys;          /* object keys */
};

/* Parses one value filling the whole text (whitespace around allowed).
 * NULL with a reason ("at byte 12: expected ':'") in err. */
json_value_t *json_parse(const char *text, size_t len, arena_t *arena,
                         char *err, size_t errlen);

/* Member of an object by key, or NULL (also when v is not an object). */
const json_value_t *json_get(const json_value_t *v, const char *key);

#endif
