/* A growable text buffer for what the aggregator writes (HTTP answers,
 * Prometheus text, rendered documents), bounded by an optional limit past
 * which it goes oom instead of growing, with a JSON string escaper that
 * always emits valid UTF-8 (frame names are arbitrary bytes from
 * binaries). */
#ifndef SKYPROF_AGG_BUF_H
#define SKYPROF_AGG_BUF_H

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

#endif
