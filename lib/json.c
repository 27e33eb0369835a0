#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2^53: every integer below it is exact as a double, and a longer
 * integer rounds to it or above. */
#define JSON_INT_MAX 9007199254740992.0

_Static_assert(sizeof(void *) != 8 || sizeof(json_value_t) == 48,
               "json_value_t grew: arenas sized per input byte overflow");

typedef struct {
    const char *p, *start, *end;
    arena_t *arena;
    char *err;
    size_t errlen;
    int failed;
    unsigned flags;
} jp_t;

static void s_fail(jp_t *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void s_fail(jp_t *j, const char *fmt, ...)
{
    if (j->failed)
        return;
    j->failed = 1;
    if (!j->err || !j->errlen)
        return;
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(j->err, j->errlen, "at byte %zu: %s", (size_t)(j->p - j->start),
             what);
}

static void s_ws(jp_t *j)
{
    while (j->p < j->end &&
           (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static json_value_t *s_new(jp_t *j, json_type_t t)
{
    json_value_t *v = arena_calloc(j->arena, 1, sizeof *v);
    if (!v) {
        s_fail(j, "document too large");
        return NULL;
    }
    v->type = t;
    return v;
}

static int s_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t s_utf8(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string starting at the opening quote; the unescaped copy is never
 * longer than the source, which bounds the allocation. */
static const char *s_string(jp_t *j)
{
    const char *q = j->p + 1;
    const char *close = q;
    while (close < j->end && *close != '"') {
        if (*close == '\\')
            close++;
        close++;
    }
    if (close >= j->end) {
        s_fail(j, "unterminated string");
        return NULL;
    }
    char *out = arena_alloc(j->arena, (size_t)(close - q) + 1);
    if (!out) {
        s_fail(j, "document too large");
        return NULL;
    }
    size_t n = 0;
    for (const char *s = q; s < close; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20) {
            j->p = s;
            s_fail(j, "control character in a string");
            return NULL;
        }
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        s++;
        switch (*s) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            if (close - s < 5) {
                j->p = s;
                s_fail(j, "short \\u escape");
                return NULL;
            }
            uint32_t cp = 0;
            for (int k = 1; k <= 4; k++) {
                int h = s_hex(s[k]);
                if (h < 0) {
                    j->p = s;
                    s_fail(j, "bad \\u escape");
                    return NULL;
                }
                cp = cp * 16 + (uint32_t)h;
            }
            s += 4;
            /* Unpaired surrogates and NUL become U+FFFD: the result is
             * used as C strings and printed. */
            if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
                cp = 0xfffd;
            /* 6 escaped bytes always hold the at most 3 UTF-8 bytes. */
            n += s_utf8(cp, out + n);
            break;
        }
        default:
            j->p = s;
            s_fail(j, "bad escape");
            return NULL;
        }
    }
    out[n] = '\0';
    j->p = close + 1;
    return out;
}

static json_value_t *s_value(jp_t *j, int depth);

/* Grows a pointer array in the arena (old copies stay until the arena is
 * reset; the arena limit bounds the total). */
static int s_push(jp_t *j, void ***arr, size_t *n, size_t *cap, void *item)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        void **grown = arena_alloc(j->arena, ncap * sizeof *grown);
        if (!grown) {
            s_fail(j, "document too large");
            return -1;
        }
        if (*n)
            memcpy(grown, *arr, *n * sizeof *grown);
        *arr = grown;
        *cap = ncap;
    }
    (*arr)[(*n)++] = item;
    return 0;
}

/* Consumes a ',' between members; 1 when another member follows. With
 * JSON_TRAILING_COMMAS a ',' right before close ends the list instead
 * (close is left for the caller). */
static int s_comma(jp_t *j, char close)
{
    if (j->p >= j->end || *j->p != ',')
        return 0;
    j->p++;
    if (j->flags & JSON_TRAILING_COMMAS) {
        s_ws(j);
        if (j->p < j->end && *j->p == close)
            return 0;
    }
    return 1;
}

static json_value_t *s_array(jp_t *j, int depth)
{
    json_value_t *v = s_new(j, JSON_ARRAY);
    size_t cap = 0;
    if (!v)
        return NULL;
    j->p++;
    s_ws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        return v;
    }
    for (;;) {
        json_value_t *item = s_value(j, depth + 1);
        if (!item || s_push(j, (void ***)&v->items, &v->n, &cap, item))
            return NULL;
        s_ws(j);
        if (s_comma(j, ']'))
            continue;
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            return v;
        }
        s_fail(j, "expected ',' or ']'");
        return NULL;
    }
}

static json_value_t *s_object(jp_t *j, int depth)
{
    json_value_t *v = s_new(j, JSON_OBJECT);
    size_t cap = 0, kcap = 0, nk = 0;
    if (!v)
        return NULL;
    j->p++;
    s_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return v;
    }
    for (;;) {
        s_ws(j);
        if (j->p >= j->end || *j->p != '"') {
            s_fail(j, "expected a member name");
            return NULL;
        }
        const char *key = s_string(j);
        if (!key)
            return NULL;
        s_ws(j);
        if (j->p >= j->end || *j->p != ':') {
            s_fail(j, "expected ':'");
            return NULL;
        }
        j->p++;
        json_value_t *val = s_value(j, depth + 1);
        if (!val || s_push(j, (void ***)&v->keys, &nk, &kcap, (void *)key) ||
            s_push(j, (void ***)&v->items, &v->n, &cap, val))
            return NULL;
        s_ws(j);
        if (s_comma(j, '}'))
            continue;
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            return v;
        }
        s_fail(j, "expected ',' or '}'");
        return NULL;
    }
}

static json_value_t *s_number(jp_t *j)
{
    const char *s = j->p;
    if (s < j->end && *s == '-')
        s++;
    if (s >= j->end || *s < '0' || *s > '9') {
        s_fail(j, "unexpected character");
        return NULL;
    }
    while (s < j->end && ((*s >= '0' && *s <= '9') || *s == '.' || *s == 'e' ||
                          *s == 'E' || *s == '+' || *s == '-'))
        s++;
    char buf[64];
    size_t n = (size_t)(s - j->p);
    if (n >= sizeof buf) {
        s_fail(j, "number too long");
        return NULL;
    }
    memcpy(buf, j->p, n);
    buf[n] = '\0';
    char *endp;
    double d = strtod(buf, &endp);
    if (*endp) {
        s_fail(j, "bad number");
        return NULL;
    }
    json_value_t *v = s_new(j, JSON_NUMBER);
    if (v) {
        v->number = d;
        /* Written as an integer and exact as a double: ids, counts and
         * millisecond times, which callers want whole. */
        v->is_int = !strpbrk(buf, ".eE") && d > -JSON_INT_MAX &&
                    d < JSON_INT_MAX;
    }
    j->p = s;
    return v;
}

static int s_literal(jp_t *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) >= n && memcmp(j->p, word, n) == 0) {
        j->p += n;
        return 1;
    }
    return 0;
}

static json_value_t *s_value(jp_t *j, int depth)
{
    if (depth > JSON_MAX_DEPTH) {
        s_fail(j, "nested deeper than %d", JSON_MAX_DEPTH);
        return NULL;
    }
    s_ws(j);
    if (j->p >= j->end) {
        s_fail(j, "unexpected end");
        return NULL;
    }
    json_value_t *v;
    switch (*j->p) {
    case '{': return s_object(j, depth);
    case '[': return s_array(j, depth);
    case '"': {
        const char *s = s_string(j);
        if (!s)
            return NULL;
        v = s_new(j, JSON_STRING);
        if (v)
            v->str = s;
        return v;
    }
    case 't':
    case 'f':
        if (s_literal(j, "true") || s_literal(j, "false")) {
            v = s_new(j, JSON_BOOL);
            if (v)
                v->boolean = j->p[-1] == 'e' && j->p[-2] == 'u';
            return v;
        }
        break;
    case 'n':
        if (s_literal(j, "null"))
            return s_new(j, JSON_NULL);
        break;
    default:
        return s_number(j);
    }
    s_fail(j, "unexpected character");
    return NULL;
}

json_value_t *json_parse(const char *text, size_t len, arena_t *arena,
                         char *err, size_t errlen)
{
    return json_parse_opts(text, len, arena, 0, err, errlen);
}

json_value_t *json_parse_opts(const char *text, size_t len, arena_t *arena,
                              unsigned flags, char *err, size_t errlen)
{
    jp_t j = {.p = text, .start = text, .end = text + len, .arena = arena,
              .err = err, .errlen = errlen, .flags = flags};
    if (err && errlen)
        err[0] = '\0';
    if (!text || !arena) {
        s_fail(&j, "no input");
        return NULL;
    }
    json_value_t *v = s_value(&j, 0);
    if (!v)
        return NULL;
    s_ws(&j);
    if (j.p != j.end) {
        s_fail(&j, "trailing characters");
        return NULL;
    }
    return v;
}

int json_int(const json_value_t *v, int64_t *out)
{
    if (!v || v->type != JSON_NUMBER || !v->is_int)
        return -1;
    *out = (int64_t)v->number;
    return 0;
}

const json_value_t *json_get(const json_value_t *v, const char *key)
{
    if (!v || v->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->keys[i], key) == 0)
            return v->items[i];
    return NULL;
}
