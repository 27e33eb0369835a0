/* The reader of the API's JSON request bodies (see reqjson.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/http/reqjson.h"

#define JSON_MAX_DEPTH 32

/* --------------------------------------------------------------- parser */
typedef struct {
    const char *p, *end;
    char *out;            /* scratch write position */
    const char *err;
} parser_t;

static void
s_ws(parser_t *ps)
{
    while (ps->p < ps->end
           && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n'
               || *ps->p == '\r'))
        ps->p++;
}

static int
s_hex4(parser_t *ps, unsigned *v)
{
    *v = 0;
    if (ps->end - ps->p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        char c = *ps->p++;
        *v <<= 4;
        if (c >= '0' && c <= '9')
            *v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            *v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            *v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    return 0;
}

static void
s_put_utf8(parser_t *ps, unsigned cp)
{
    if (cp < 0x80) {
        *ps->out++ = (char)cp;
    } else if (cp < 0x800) {
        *ps->out++ = (char)(0xc0 | (cp >> 6));
        *ps->out++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *ps->out++ = (char)(0xe0 | (cp >> 12));
        *ps->out++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *ps->out++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *ps->out++ = (char)(0xf0 | (cp >> 18));
        *ps->out++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *ps->out++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *ps->out++ = (char)(0x80 | (cp & 0x3f));
    }
}

/* Parses a string at ps->p (on the quote) into scratch; the unescaped
 * form is never longer than the escaped one, so scratch (len + 1) holds
 * every string of the text. */
static const char *
s_string(parser_t *ps)
{
    char *start = ps->out;
    ps->p++;
    while (ps->p < ps->end && *ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p++;
        if (c < 0x20) {
            ps->err = "control character in string";
            return NULL;
        }
        if (c != '\\') {
            *ps->out++ = (char)c;
            continue;
        }
        if (ps->p >= ps->end)
            break;
        char e = *ps->p++;
        unsigned cp;
        switch (e) {
        case '"': case '\\': case '/': *ps->out++ = e; break;
        case 'b': *ps->out++ = '\b'; break;
        case 'f': *ps->out++ = '\f'; break;
        case 'n': *ps->out++ = '\n'; break;
        case 'r': *ps->out++ = '\r'; break;
        case 't': *ps->out++ = '\t'; break;
        case 'u':
            if (s_hex4(ps, &cp)) {
                ps->err = "bad \\u escape";
                return NULL;
            }
            if (cp == 0) {
                ps->err = "NUL in string";
                return NULL;
            }
            /* Lone surrogates become U+FFFD: strings stay valid UTF-8. */
            if (cp >= 0xd800 && cp <= 0xdbff && ps->end - ps->p >= 6
                && ps->p[0] == '\\' && ps->p[1] == 'u') {
                unsigned lo;
                const char *save = ps->p;
                ps->p += 2;
                if (!s_hex4(ps, &lo) && lo >= 0xdc00 && lo <= 0xdfff)
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                else {
                    ps->p = save;
                    cp = 0xfffd;
                }
            } else if (cp >= 0xd800 && cp <= 0xdfff) {
                cp = 0xfffd;
            }
            s_put_utf8(ps, cp);
            break;
        default:
            ps->err = "bad escape";
            return NULL;
        }
    }
    if (ps->p >= ps->end) {
        ps->err = "unterminated string";
        return NULL;
    }
    ps->p++;
    *ps->out++ = '\0';
    return start;
}

static int s_value(parser_t *ps, agg_json_field_t *f, int depth);

static int
s_skip_container(parser_t *ps, int depth)
{
    char close = *ps->p == '{' ? '}' : ']';
    int is_obj = close == '}';
    if (depth >= JSON_MAX_DEPTH) {
        ps->err = "nesting too deep";
        return -1;
    }
    ps->p++;
    for (;;) {
        s_ws(ps);
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return 0;
        }
        if (is_obj) {
            if (ps->p >= ps->end || *ps->p != '"' || !s_string(ps)) {
                if (!ps->err)
                    ps->err = "expected a key";
                return -1;
            }
            s_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                ps->err = "expected ':'";
                return -1;
            }
            ps->p++;
        }
        agg_json_field_t dummy;
        if (s_value(ps, &dummy, depth + 1))
            return -1;
        s_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return 0;
        }
        ps->err = "expected ',' or end of container";
        return -1;
    }
}

static int
s_literal(parser_t *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return -1;
    ps->p += n;
    return 0;
}

static int
s_value(parser_t *ps, agg_json_field_t *f, int depth)
{
    s_ws(ps);
    if (ps->p >= ps->end) {
        ps->err = "expected a value";
        return -1;
    }
    char c = *ps->p;
    if (c == '"') {
        f->type = AGG_JSON_STRING;
        f->str = s_string(ps);
        return f->str ? 0 : -1;
    }
    if (c == '{' || c == '[') {
        f->type = AGG_JSON_OTHER;
        return s_skip_container(ps, depth);
    }
    if (!s_literal(ps, "true") || !s_literal(ps, "false")) {
        f->type = AGG_JSON_BOOL;
        f->boolean = c == 't';
        return 0;
    }
    if (!s_literal(ps, "null")) {
        f->type = AGG_JSON_NULL;
        return 0;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char num[64];
        size_t n = 0;
        int is_int = 1;
        while (ps->p < ps->end && n < sizeof(num) - 1
               && strchr("+-0123456789.eE", *ps->p)) {
            if (strchr(".eE", *ps->p))
                is_int = 0;
            num[n++] = *ps->p++;
        }
        num[n] = '\0';
        char *end;
        f->type = AGG_JSON_NUMBER;
        f->num = strtod(num, &end);
        if (*end || n == 0) {
            ps->err = "bad number";
            return -1;
        }
        f->is_int = is_int;
        if (is_int) {
            f->i = strtoll(num, &end, 10);
            if (*end)
                f->is_int = 0;
        }
        return 0;
    }
    ps->err = "unexpected character";
    return -1;
}

int
agg_json_parse(agg_json_obj_t *obj, const char *text, size_t len, char *err,
               size_t errlen)
{
    memset(obj, 0, sizeof(*obj));
    parser_t ps = { text, text + len, NULL, NULL };
    obj->scratch = malloc(len + 1);
    if (!obj->scratch) {
        ps.err = "out of memory";
        goto cleanup;
    }
    ps.out = obj->scratch;
    s_ws(&ps);
    if (ps.p >= ps.end || *ps.p != '{') {
        ps.err = "expected a JSON object";
        goto cleanup;
    }
    ps.p++;
    for (;;) {
        s_ws(&ps);
        if (ps.p < ps.end && *ps.p == '}') {
            ps.p++;
            break;
        }
        if (ps.p >= ps.end || *ps.p != '"') {
            ps.err = "expected a key";
            goto cleanup;
        }
        const char *key = s_string(&ps);
        if (!key)
            goto cleanup;
        s_ws(&ps);
        if (ps.p >= ps.end || *ps.p != ':') {
            ps.err = "expected ':' after a key";
            goto cleanup;
        }
        ps.p++;
        if (obj->nfields >= AGG_JSON_MAX_FIELDS) {
            ps.err = "too many fields";
            goto cleanup;
        }
        agg_json_field_t *f = &obj->fields[obj->nfields];
        memset(f, 0, sizeof(*f));
        f->key = key;
        if (s_value(&ps, f, 1))
            goto cleanup;
        obj->nfields++;
        s_ws(&ps);
        if (ps.p < ps.end && *ps.p == ',') {
            ps.p++;
            continue;
        }
        if (ps.p < ps.end && *ps.p == '}') {
            ps.p++;
            break;
        }
        ps.err = "expected ',' or '}'";
        goto cleanup;
    }
    s_ws(&ps);
    if (ps.p != ps.end)
        ps.err = "trailing characters after the object";
cleanup:
    if (ps.err) {
        snprintf(err, errlen, "bad JSON: %s at offset %zu", ps.err,
                 (size_t)(ps.p - text));
        agg_json_release(obj);
        return -1;
    }
    return 0;
}

void
agg_json_release(agg_json_obj_t *obj)
{
    free(obj->scratch);
    memset(obj, 0, sizeof(*obj));
}

const agg_json_field_t *
agg_json_get(const agg_json_obj_t *obj, const char *key)
{
    /* The last occurrence wins, as in most JSON libraries. */
    for (size_t i = obj->nfields; i-- > 0;)
        if (strcmp(obj->fields[i].key, key) == 0)
            return &obj->fields[i];
    return NULL;
}
