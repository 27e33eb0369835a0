/* A small JSON reader for documents that come from outside (the OAP's
 * policy and extension JSON, local policy files, Kubernetes objects, HTTP
 * request bodies): a DOM built in a caller's arena, with bounded depth, so
 * a hostile document fails with a reason and cannot exhaust memory (the
 * arena has a limit) or the stack. */
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

/* 48 bytes on 64-bit hosts: callers size their arenas by it. */
struct json_value {
    json_type_t type;
    unsigned char boolean;
    unsigned char is_int;       /* JSON_NUMBER written as an integer (no
                                   fraction, no exponent) below 2^53 in size,
                                   so number holds it exactly */
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

/* What json_parse_opts may accept beyond RFC 8259. */
enum {
    /* A comma before ']' or '}' ("[1,2,]", {"a":1,}): some HTTP API
     * clients (and the profiling-query examples they copy) write them. */
    JSON_TRAILING_COMMAS = 1
};
json_value_t *json_parse_opts(const char *text, size_t len, arena_t *arena,
                              unsigned flags, char *err, size_t errlen);

/* 0 and *out when v is a number written as an integer (is_int), -1 for
 * anything else (NULL, another type, 1.5, 1e3, 2^53 or more in size). */
int json_int(const json_value_t *v, int64_t *out);

/* Member of an object by key, or NULL (also when v is not an object). */
const json_value_t *json_get(const json_value_t *v, const char *key);

#endif
