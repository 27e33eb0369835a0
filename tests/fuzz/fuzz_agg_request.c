/* The request parsing the aggregator does itself (libmicrohttpd only
 * splits the request). The first byte modulo 3 picks:
 *   0 the internal fan-out query string a peer sends, parsed back into a
 *     query and encoded again;
 *   1 the JSON body of POST /api/tasks, handled by the real endpoint;
 *   2 the admission check (aggregator/http/guard.c) on header values, one
 *     a line: method, Host, Origin, Sec-Fetch-Site, Content-Type,
 *     Authorization, token cookie ("-" = absent), then the open-route
 *     flag. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/http/guard.h"
#include "aggregator/http/routes.h"
#include "aggregator/replica/replica.h"
#include "stats.h"

#define FUZZ_MAX_ARGS 32

typedef struct {
    size_t n;
    char *keys[FUZZ_MAX_ARGS];
    char *vals[FUZZ_MAX_ARGS];
    char buf[];
} qs_t;

static int s_hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes s in place, as libmicrohttpd hands arguments over. */
static void s_unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '%' && s_hex(s[1]) >= 0 && s_hex(s[2]) >= 0) {
            *o++ = (char)(s_hex(s[1]) * 16 + s_hex(s[2]));
            s += 2;
        } else {
            *o++ = *s == '+' ? ' ' : *s;
        }
    }
    *o = '\0';
}

static const char *s_arg(void *ctx, const char *name)
{
    qs_t *qs = ctx;
    for (size_t i = 0; i < qs->n; i++)
        if (strcmp(qs->keys[i], name) == 0)
            return qs->vals[i];
    return NULL;
}

static void s_query(const uint8_t *data, size_t size)
{
    qs_t *qs = calloc(1, sizeof *qs + size + 1);
    char err[256], path[4096];
    agg_query_t q;
    if (!qs)
        return;
    memcpy(qs->buf, data, size);
    for (char *save = NULL, *kv = strtok_r(qs->buf, "&", &save);
         kv && qs->n < FUZZ_MAX_ARGS; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq)
            *eq = '\0';
        s_unescape(kv);
        qs->keys[qs->n] = kv;
        qs->vals[qs->n] = eq ? eq + 1 : kv + strlen(kv);
        s_unescape(qs->vals[qs->n]);
        qs->n++;
    }
    if (agg_fanout_parse_query(s_arg, qs, &q, err, sizeof err) == 0)
        (void)agg_fanout_flame_path(&q, path, sizeof path);
    free(qs);
}

static agg_t *s_agg;
static stats_t *s_stats;

static void s_stop(void)
{
    agg_destroy(&s_agg);
    stats_destroy(&s_stats);
}

static void s_task_post(const uint8_t *data, size_t size)
{
    if (!s_agg) {
        s_stats = stats_new("aggregator", "fuzz");
        agg_options_t o = { .flush_ms = 1000,
                           .history_ms = 60000, .max_nodes = 4096,
                           .stats = s_stats};
        s_agg = s_stats ? agg_new(&o, 1000) : NULL;
        if (!s_agg)
            abort();
        atexit(s_stop);
    }
    api_reply_t r;
    api_request_t req = {.agg = s_agg, .body = (const char *)data,
                         .len = size};
    memset(&r, 0, sizeof r);
    api_tasks_post(&req, &r);
    if (!r.body || (r.status != 200 && r.status != 400 && r.status != 503))
        __builtin_trap();       /* every body gets a definite answer */
    free(r.body);
    /* Published requests leave the queue, as the stage loop does. */
    (void)agg_pump(s_agg);
}

static api_guard_t *s_guard;

static void s_guard_stop(void)
{
    api_guard_destroy(&s_guard);
}

static void s_admission(const uint8_t *data, size_t size)
{
    char err[256], why[256] = "";
    if (!s_guard) {
        s_guard = api_guard_new("127.0.0.1:8080", "agg-0.example:8080",
                                "a.example,b.example",
                                "fuzz-token-0123456789", err, sizeof err);
        if (!s_guard) {
            fprintf(stderr, "fuzz_agg_request: %s\n", err);
            abort();
        }
        atexit(s_guard_stop);
    }
    char *text = malloc(size + 1);
    const char *field[8] = {NULL};
    if (!text)
        return;
    memcpy(text, data, size);
    text[size] = '\0';
    char *line = text;
    for (int i = 0; i < 8 && line; i++) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        field[i] = strcmp(line, "-") == 0 ? NULL : line;
        line = nl ? nl + 1 : NULL;
    }
    api_guard_request_t req = {
        .method = field[0] ? field[0] : "GET", .host = field[1],
        .origin = field[2], .sec_fetch_site = field[3],
        .content_type = field[4], .authorization = field[5],
        .cookie_token = field[6], .open_route = field[7] && *field[7] == '1'};
    int verdict = api_guard_check(s_guard, &req, why, sizeof why);
    if (verdict != 0 && (!why[0] || (verdict != 400 && verdict != 401 &&
                                     verdict != 403 && verdict != 415)))
        __builtin_trap();       /* a refusal has a known status and reason */
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0: s_query(data + 1, size - 1); break;
    case 1: s_task_post(data + 1, size - 1); break;
    default: s_admission(data + 1, size - 1); break;
    }
    return 0;
}
