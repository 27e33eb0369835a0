/* A reader for the flat JSON objects the HTTP API takes as request bodies
 * (POST /v1/profile/ProfileTracing, POST /api/tasks): top-level members
 * only; nested values are skipped (depth-limited), never interpreted.
 * lib/json.c reads whole documents into a DOM; this one keeps the
 * tolerance for trailing commas that ProfileTracing clients rely on. */
#ifndef SKYPROF_AGG_REQJSON_H
#define SKYPROF_AGG_REQJSON_H

#include <stddef.h>
#include <stdint.h>

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

/* Parses one top-level object (trailing commas tolerated, as DeepFlow's
 * documented ProfileTracing request has one). 0, or -1 with a reason in
 * err. */
int agg_json_parse(agg_json_obj_t *obj, const char *text, size_t len,
                   char *err, size_t errlen);
void agg_json_release(agg_json_obj_t *obj);
const agg_json_field_t *agg_json_get(const agg_json_obj_t *obj,
                                     const char *key);

#endif
