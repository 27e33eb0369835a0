/* The request parsing the aggregator does itself (libmicrohttpd only
 * splits the request): the internal fan-out query string a peer sends
 * (first byte even), parsed back into a query and encoded again, and the
 * JSON body of POST /api/tasks (odd), handled by the real endpoint. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/api_int.h"
#include "aggregator/fanout.h"
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
        agg_options_t o = {.sender = "aggregator/fuzz", .flush_ms = 1000,
                           .history_ms = 60000, .max_nodes = 4096,
                           .stats = s_stats};
        s_agg = s_stats ? agg_new(&o, 1000) : NULL;
        if (!s_agg)
            abort();
        atexit(s_stop);
    }
    api_reply_t r;
    memset(&r, 0, sizeof r);
    api_tasks_post(s_agg, (const char *)data, size, &r);
    if (!r.body || (r.status != 200 && r.status != 400 && r.status != 503))
        __builtin_trap();       /* every body gets a definite answer */
    free(r.body);
    /* Published requests leave the queue, as the stage loop does. */
    (void)agg_pump(s_agg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        s_task_post(data + 1, size - 1);
    else
        s_query(data + 1, size - 1);
    return 0;
}
