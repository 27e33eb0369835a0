/* The output buffer of the HTTP API and the renderers (see buf.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/buf.h"

/* --------------------------------------------------------------- buffer */
void
agg_buf_init(agg_buf_t *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

void
agg_buf_release(agg_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

char *
agg_buf_take(agg_buf_t *b, size_t *len)
{
    char *d = NULL;
    if (!b->oom) {
        if (!b->data)
            agg_buf_append(b, "", 0);
        d = b->oom ? NULL : b->data;
        if (d) {
            if (len)
                *len = b->len;
            b->data = NULL;
        }
    }
    agg_buf_release(b);
    return d;
}

static int
s_reserve(agg_buf_t *b, size_t n)
{
    if (b->oom)
        return -1;
    if (b->limit && b->len + n > b->limit) {
        b->oom = 1;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = 1;
            return -1;
        }
        b->data = d;
        b->cap = cap;
    }
    return 0;
}

void
agg_buf_append(agg_buf_t *b, const char *s, size_t n)
{
    if (s_reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void
agg_buf_puts(agg_buf_t *b, const char *s)
{
    agg_buf_append(b, s, strlen(s));
}

void
agg_buf_printf(agg_buf_t *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        agg_buf_append(b, small, (size_t)n);
        return;
    }
    if (s_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of a valid UTF-8 sequence at s, 0 when invalid. */
static size_t
s_utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (s[0] == 0xe0 && s[1] < 0xa0)
            return 0;                       /* overlong */
        if (s[0] == 0xed && s[1] >= 0xa0)
            return 0;                       /* surrogates */
        return 3;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80
            || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

void
agg_buf_json_str(agg_buf_t *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    agg_buf_append(b, "\"", 1);
    while (*s) {
        const unsigned char *run = s;
        while (*s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\')
            s++;
        agg_buf_append(b, (const char *)run, (size_t)(s - run));
        if (!*s)
            break;
        if (*s == '"' || *s == '\\') {
            char esc[2] = { '\\', (char)*s };
            agg_buf_append(b, esc, 2);
            s++;
        } else if (*s < 0x20) {
            agg_buf_printf(b, "\\u%04x", *s);
            s++;
        } else {
            size_t n = s_utf8_len(s);
            if (n) {
                agg_buf_append(b, (const char *)s, n);
                s += n;
            } else {
                agg_buf_append(b, "\\ufffd", 6);
                s++;
            }
        }
    }
    agg_buf_append(b, "\"", 1);
}
