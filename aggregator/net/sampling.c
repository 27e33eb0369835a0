/* Sampled requests: a NETWORK task's `networkSamplings` rules (from its
 * ExtensionConfigJSON; keys compared case-insensitively as the reference
 * agent's JSON decoding does), which rule a URI falls under, why an
 * exchange is kept, and the trace context a request carries (sw8, b3,
 * x-b3-traceid + x-b3-spanid, and W3C traceparent, which the reference
 * lacks). Only requests with a trace context are sampled. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aggregator/net/net_int.h"
#include "json.h"

#define NET_MAX_RULES 64
#define NET_RULES_ARENA (1u << 20)

struct net_rules {
    net_rule_t rules[NET_MAX_RULES];   /* with a uriRegex, in order */
    size_t n;
    net_rule_t def;
    int has_def;
};

static const char *const s_reasons[NET_REASONS] = {"status_5xx",
                                                    "status_4xx", "slow"};

const char *net_reason_name(net_reason_t r)
{
    return (unsigned)r < NET_REASONS ? s_reasons[r] : "?";
}

void net_sample_free(net_sample_t **s_p)
{
    if (!s_p || !*s_p)
        return;
    free((*s_p)->req);
    free((*s_p)->resp);
    free(*s_p);
    *s_p = NULL;
}

/* ---------------------------------------------------------------- rules */

static const json_value_t *s_get(const json_value_t *o, const char *key)
{
    if (!o || o->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcasecmp(o->keys[i], key) == 0)
            return o->items[i];
    return NULL;
}

static int s_bool(const json_value_t *v)
{
    return v && v->type == JSON_BOOL && v->boolean;
}

/* A size setting: <= 0 or absent means the room's bound. */
static uint32_t s_size(const json_value_t *v)
{
    int64_t n;
    if (json_int(v, &n) != 0 || n <= 0 || n > NET_SAMPLE_MAX)
        return NET_SAMPLE_MAX;
    return (uint32_t)n;
}

static int s_rule(const json_value_t *o, net_rule_t *r, char *err,
                  size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->min_duration_ms = -1;
    const json_value_t *re = s_get(o, "uriRegex");
    const json_value_t *md = s_get(o, "minDuration");
    if (re && re->type == JSON_STRING) {
        if (regcomp(&r->re, re->str, REG_EXTENDED | REG_NOSUB) != 0) {
            snprintf(err, errlen, "uriRegex %.64s does not compile", re->str);
            return -1;
        }
        r->has_re = 1;
    } else if (re && re->type != JSON_NULL) {
        snprintf(err, errlen, "uriRegex is not a string");
        return -1;
    }
    int64_t ms;
    if (md && md->type != JSON_NULL) {
        if (json_int(md, &ms) != 0 || ms < 0) {
            snprintf(err, errlen, "minDuration is not a count of ms");
            if (r->has_re)
                regfree(&r->re);
            return -1;
        }
        r->min_duration_ms = ms;
    }
    r->when4xx = s_bool(s_get(o, "when4xx"));
    r->when5xx = s_bool(s_get(o, "when5xx"));
    const json_value_t *st = s_get(o, "settings");
    r->want_req = s_bool(s_get(st, "requireCompleteRequest"));
    r->want_resp = s_bool(s_get(st, "requireCompleteResponse"));
    r->max_req = s_size(s_get(st, "maxRequestSize"));
    r->max_resp = s_size(s_get(st, "maxResponseSize"));
    return 0;
}

void net_rules_destroy(net_rules_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    net_rules_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++)
        regfree(&self->rules[i].re);
    free(self);
    *self_p = NULL;
}

net_rules_t *net_rules_parse(const char *json, char *err, size_t errlen)
{
    net_rules_t *self = calloc(1, sizeof *self);
    arena_t *arena = arena_new(NET_RULES_ARENA);
    err[0] = '\0';
    if (!self || !arena) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!json || !json[0])
        goto cleanup;
    json_value_t *doc = json_parse(json, strlen(json), arena, err, errlen);
    if (!doc)
        goto fail;
    if (doc->type == JSON_NULL)
        goto cleanup;
    const json_value_t *list = s_get(doc, "networkSamplings");
    if (doc->type != JSON_OBJECT ||
        (list && list->type != JSON_ARRAY && list->type != JSON_NULL)) {
        snprintf(err, errlen, "not an object with a networkSamplings list");
        goto fail;
    }
    for (size_t i = 0; list && list->type == JSON_ARRAY && i < list->n; i++) {
        net_rule_t r;
        if (list->items[i]->type != JSON_OBJECT) {
            snprintf(err, errlen, "networkSamplings[%zu] is not an object", i);
            goto fail;
        }
        if (s_rule(list->items[i], &r, err, errlen) != 0)
            goto fail;
        if (!r.has_re) {
            /* one default rule: a second one is ignored, as the reference */
            if (!self->has_def) {
                self->def = r;
                self->has_def = 1;
            }
            continue;
        }
        if (self->n == NET_MAX_RULES) {
            regfree(&r.re);
            snprintf(err, errlen, "more than %d rules", NET_MAX_RULES);
            goto fail;
        }
        self->rules[self->n++] = r;
    }
cleanup:
    arena_destroy(&arena);
    return self;
fail:
    net_rules_destroy(&self);
    arena_destroy(&arena);
    return NULL;
}

int net_rules_any(const net_rules_t *self)
{
    return self && (self->n || self->has_def);
}

const net_rule_t *net_rules_match(const net_rules_t *self, const char *uri)
{
    if (!self)
        return NULL;
    for (size_t i = 0; i < self->n; i++)
        if (regexec(&self->rules[i].re, uri, 0, NULL, 0) == 0)
            return &self->rules[i];
    return self->has_def ? &self->def : NULL;
}

int net_rule_reason(const net_rule_t *r, int status, double dur_ms)
{
    if (!r)
        return -1;
    if (r->when5xx && status >= 500 && status < 600)
        return NET_REASON_5XX;
    if (r->when4xx && status >= 400 && status < 500)
        return NET_REASON_4XX;
    if (r->min_duration_ms >= 0 && (double)r->min_duration_ms <= dur_ms)
        return NET_REASON_SLOW;
    return -1;
}

/* -------------------------------------------------------- trace context */

/* Provider ranks: a higher one replaces a lower one. */
enum { S_NONE = 0, S_W3C, S_B3_SPLIT, S_B3, S_SW8 };

static int s_rank(const net_trace_t *t)
{
    if (!t->provider)
        return S_NONE;
    if (strcmp(t->provider, "skywalking") == 0)
        return S_SW8;
    if (strcmp(t->provider, "w3c") == 0)
        return S_W3C;
    /* zipkin: the single b3 header, or both split headers */
    return t->trace_id[0] && t->span_id[0] ? S_B3 : S_B3_SPLIT;
}

static int s_b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard base64 (with padding) into out as a string; -1 when broken,
 * too long, or the text has control bytes. */
static int s_b64(const char *in, size_t n, char *out, size_t size)
{
    size_t o = 0;
    if (n % 4)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = in[i + k] == '=' && i + 4 == n && k >= 2 ? 0
                                                            : s_b64val(in[i + k]);
            if (v[k] < 0)
                return -1;
        }
        unsigned bits = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 |
                        (unsigned)v[2] << 6 | (unsigned)v[3];
        int bytes = in[i + 2] == '=' && i + 4 == n ? 1
                  : in[i + 3] == '=' && i + 4 == n ? 2 : 3;
        for (int k = 0; k < bytes; k++) {
            unsigned char ch = (unsigned char)(bits >> (16 - 8 * k));
            if (o + 1 >= size || ch < 0x20)
                return -1;
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return 0;
}

static int s_copy(char *out, size_t size, const char *v, size_t n)
{
    if (n == 0 || n >= size)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e)
            return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

/* The n-th '-'-separated part of v. */
static int s_part(const char *v, size_t n, int which, const char **p,
                  size_t *len)
{
    const char *s = v, *end = v + n;
    for (int i = 0; i < which; i++) {
        const char *dash = memchr(s, '-', (size_t)(end - s));
        if (!dash)
            return -1;
        s = dash + 1;
    }
    const char *dash = memchr(s, '-', (size_t)(end - s));
    *p = s;
    *len = (size_t)((dash ? dash : end) - s);
    return 0;
}

static size_t s_count(const char *v, size_t n, char c)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += v[i] == c;
    return k;
}

/* sw8: sample-traceId-segmentId-spanId-service-instance-endpoint-peer,
 * ids base64. */
static int s_sw8(net_trace_t *t, const char *v, size_t n)
{
    net_trace_t x;
    const char *p;
    size_t len;
    memset(&x, 0, sizeof x);
    if (s_count(v, n, '-') != 7 || s_part(v, n, 1, &p, &len) ||
        s_b64(p, len, x.trace_id, sizeof x.trace_id) || !x.trace_id[0] ||
        s_part(v, n, 2, &p, &len) ||
        s_b64(p, len, x.segment_id, sizeof x.segment_id) ||
        s_part(v, n, 3, &p, &len) ||
        s_copy(x.span_id, sizeof x.span_id, p, len))
        return -1;
    x.provider = "skywalking";
    *t = x;
    return 0;
}

/* b3: traceId-spanId[-sampled[-parentSpanId]] */
static int s_b3(net_trace_t *t, const char *v, size_t n)
{
    net_trace_t x;
    const char *p;
    size_t len;
    memset(&x, 0, sizeof x);
    if (s_count(v, n, '-') < 1 || s_part(v, n, 0, &p, &len) ||
        s_copy(x.trace_id, sizeof x.trace_id, p, len) ||
        s_part(v, n, 1, &p, &len) ||
        s_copy(x.span_id, sizeof x.span_id, p, len))
        return -1;
    x.provider = "zipkin";
    *t = x;
    return 0;
}

static int s_hex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)p[i]))
            return 0;
    return 1;
}

/* traceparent: version-traceId(32 hex)-parentId(16 hex)-flags */
static int s_w3c(net_trace_t *t, const char *v, size_t n)
{
    net_trace_t x;
    memset(&x, 0, sizeof x);
    if (n < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' ||
        !s_hex(v, 2) || !s_hex(v + 3, 32) || !s_hex(v + 36, 16) ||
        s_copy(x.trace_id, sizeof x.trace_id, v + 3, 32) ||
        s_copy(x.span_id, sizeof x.span_id, v + 36, 16))
        return -1;
    x.provider = "w3c";
    *t = x;
    return 0;
}

void net_trace_field(net_trace_t *t, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return;
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vlen = (size_t)(line + len - v);
    while (vlen && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    int rank = s_rank(t);
#define S_NAME(lit) (nlen == sizeof(lit) - 1 && strncasecmp(line, lit, nlen) == 0)
    if (S_NAME("sw8")) {
        if (rank < S_SW8)
            (void)s_sw8(t, v, vlen);
    } else if (S_NAME("b3")) {
        if (rank < S_B3)
            (void)s_b3(t, v, vlen);
    } else if (S_NAME("x-b3-traceid") || S_NAME("x-b3-spanid")) {
        /* the split pair: complete once both came (net_trace_valid) */
        if (rank != S_NONE && rank != S_B3_SPLIT && rank != S_W3C)
            return;
        if (rank == S_W3C)
            memset(t, 0, sizeof *t);
        char *dst = S_NAME("x-b3-traceid") ? t->trace_id : t->span_id;
        if (s_copy(dst, NET_TRACE_ID_MAX, v, vlen) == 0)
            t->provider = "zipkin";
    } else if (S_NAME("traceparent")) {
        if (rank == S_NONE)
            (void)s_w3c(t, v, vlen);
    }
#undef S_NAME
}

int net_trace_valid(const net_trace_t *t)
{
    return t->provider && t->trace_id[0] && t->span_id[0];
}
