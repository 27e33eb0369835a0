/* Minimal JSON for the HTTP API: a growable output buffer with a string
 * escaper that always emits valid UTF-8 (frame names are arbitrary bytes
 * from binaries), and a parser for the flat request objects the API takes.
 * Nested values are skipped (depth-limited), never interpreted. */
#ifndef SKYPROF_AGG_JSON_H
#define SKYPROF_AGG_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data;      /* NUL terminated while !oom */
    size_t len, cap;
    size_t limit;    /* 0 = unbounded; past it the buffer goes oom */
    int oom;
} agg_buf_t;

void agg_buf_init(agg_buf_t *b, size_t limit);
void agg_buf_release(agg_buf_t *b);
/* Hands the data over (caller frees); NULL when oom. */
char *agg_buf_take(agg_buf_t *b, size_t *len);
void agg_buf_append(agg_buf_t *b, const char *s, size_t n);
void agg_buf_puts(agg_buf_t *b, const char *s);
void agg_buf_printf(agg_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s as a quoted JSON string; invalid UTF-8 becomes U+FFFD. */
void agg_buf_json_str(agg_buf_t *b, const char *s);

enum agg_json_type {
    AGG_JSON_NULL, AGG_JSON_BOOL, AGG_JSON_NUMBER, AGG_JSON_STRING,
    AGG_JSON_OTHER  /* object or array: skipped */
};

typedef struct {
    const char *key;
    int type;
    const char *str;      /* AGG_JSON_STRING (unescaped, NUL terminated) */
    double num;           /* AGG_JSON_NUMBER */
    int is_int;           /* number had no fraction or exponent */
    int64_t i;            /* when is_int */
    int boolean;
} agg_json_field_t;

#define AGG_JSON_MAX_FIELDS 32

typedef struct {
    agg_json_field_t fields[AGG_JSON_MAX_FIELDS];
    size_t nfields;
    char *scratch;        /* unescaped keys and strings */
} agg_json_obj_t;

/* Parses one top-level object (trailing commas tolerated, as the seed's
 * own example has them). 0, or -1 with a reason in err. */
int agg_json_parse(agg_json_obj_t *obj, const char *text, size_t len,
                   char *err, size_t errlen);
void agg_json_release(agg_json_obj_t *obj);
const agg_json_field_t *agg_json_get(const agg_json_obj_t *obj,
                                     const char *key);

#endif
