/* Process rows of /api/processes: building, merging the parts replicas
 * hold, JSON, and a lossless text form replicas exchange (see agg.h).
 *
 * Text form, one row per line:
 *   pid \t cpu_ns \t samples \t off_ns \t last_end_ms \t alive \t name \t cmdline
 *   [\t node [\t namespace \t pod \t container]]   (absent = "", as
 *   replicas before node names / Kubernetes discovery wrote)
 * with '\\', tab and newline in names escaped as \\\\, \\t, \\n. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/agg.h"

#define PROWS_MAX (1u << 20)

void
agg_prows_init(agg_prows_t *s)
{
    memset(s, 0, sizeof(*s));
}

static void
s_row_free(agg_prow_t *r)
{
    free(r->node);
    free(r->name);
    free(r->cmdline);
    free(r->ns);
    free(r->pod);
    free(r->container);
}

void
agg_prows_release(agg_prows_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        s_row_free(&s->rows[i]);
    free(s->rows);
    memset(s, 0, sizeof(*s));
}

void
agg_prows_truncate(agg_prows_t *s, size_t n)
{
    while (s->n > n)
        s_row_free(&s->rows[--s->n]);
}

int
agg_prows_add(agg_prows_t *s, const agg_prow_t *row)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        if (cap > PROWS_MAX)
            return -1;
        agg_prow_t *r = realloc(s->rows, cap * sizeof(*r));
        if (!r)
            return -1;
        s->rows = r;
        s->cap = cap;
    }
    agg_prow_t copy = *row;
    copy.node = strdup(row->node ? row->node : "");
    copy.name = strdup(row->name ? row->name : "");
    copy.cmdline = strdup(row->cmdline ? row->cmdline : "");
    copy.ns = strdup(row->ns ? row->ns : "");
    copy.pod = strdup(row->pod ? row->pod : "");
    copy.container = strdup(row->container ? row->container : "");
    if (!copy.node || !copy.name || !copy.cmdline || !copy.ns || !copy.pod
        || !copy.container) {
        free(copy.node);
        free(copy.name);
        free(copy.cmdline);
        free(copy.ns);
        free(copy.pod);
        free(copy.container);
        return -1;
    }
    s->rows[s->n++] = copy;
    return 0;
}

static int
s_cmp(const void *a, const void *b)
{
    const agg_prow_t *x = a, *y = b;
    return agg_prow_order(x->pid, x->node, x->last_end_ms, y->pid, y->node,
                          y->last_end_ms);
}

int
agg_prow_order(uint32_t pid_a, const char *node_a, uint64_t end_a,
               uint32_t pid_b, const char *node_b, uint64_t end_b)
{
    if (pid_a != pid_b)
        return pid_a < pid_b ? -1 : 1;
    int c = strcmp(node_a, node_b);
    if (c)
        return c < 0 ? -1 : 1;
    return end_a < end_b ? -1 : end_a > end_b;
}

int
agg_prows_merge(agg_prows_t *s)
{
    if (s->n)
        qsort(s->rows, s->n, sizeof(*s->rows), s_cmp);
    size_t out = 0;
    for (size_t i = 0; i < s->n;) {
        agg_prow_t sum = s->rows[i];
        size_t j = i + 1;
        for (; j < s->n && s->rows[j].pid == sum.pid
               && strcmp(s->rows[j].node, sum.node) == 0;
             j++) {
            /* Sorted oldest first: the last row of a pid is the newest. */
            agg_prow_t *r = &s->rows[j];
            free(r->node);
            sum.cpu_ns += r->cpu_ns;
            sum.samples += r->samples;
            sum.off_ns += r->off_ns;
            free(sum.name);
            free(sum.cmdline);
            sum.name = r->name;
            sum.cmdline = r->cmdline;
            /* The newest pod, unless the newest part did not know it. */
            if (*r->pod) {
                free(sum.ns);
                free(sum.pod);
                free(sum.container);
                sum.ns = r->ns;
                sum.pod = r->pod;
                sum.container = r->container;
            } else {
                free(r->ns);
                free(r->pod);
                free(r->container);
            }
            sum.last_end_ms = r->last_end_ms;
            sum.alive = r->alive;
        }
        s->rows[out++] = sum;
        i = j;
    }
    s->n = out;
    return 0;
}

void
agg_prows_keep_pod(agg_prows_t *s, const char *ns, const char *pod,
                   const char *container)
{
    if (!ns && !pod && !container)
        return;
    size_t out = 0;
    for (size_t i = 0; i < s->n; i++) {
        agg_prow_t *r = &s->rows[i];
        if (*r->pod && (!ns || !strcmp(r->ns, ns))
            && (!pod || !strcmp(r->pod, pod))
            && (!container || !strcmp(r->container, container)))
            s->rows[out++] = *r;
        else
            s_row_free(r);
    }
    s->n = out;
}

void
agg_prows_json(const agg_prows_t *s, const char *partial, agg_buf_t *out)
{
    agg_buf_puts(out, "{\"processes\":[");
    for (size_t i = 0; i < s->n; i++) {
        const agg_prow_t *r = &s->rows[i];
        agg_buf_printf(out, "%s{\"pid\":%u,\"node\":", i ? "," : "", r->pid);
        agg_buf_json_str(out, r->node);
        agg_buf_puts(out, ",\"name\":");
        agg_buf_json_str(out, r->name);
        agg_buf_puts(out, ",\"cmdline\":");
        agg_buf_json_str(out, r->cmdline);
        if (*r->pod) {
            agg_buf_puts(out, ",\"namespace\":");
            agg_buf_json_str(out, r->ns);
            agg_buf_puts(out, ",\"pod\":");
            agg_buf_json_str(out, r->pod);
            agg_buf_puts(out, ",\"container\":");
            agg_buf_json_str(out, r->container);
        }
        agg_buf_printf(out, ",\"cpu_us\":%llu,\"samples\":%llu,"
                       "\"off_cpu_us\":%llu,\"alive\":%s}",
                       (unsigned long long)(r->cpu_ns / 1000),
                       (unsigned long long)r->samples,
                       (unsigned long long)(r->off_ns / 1000),
                       r->alive ? "true" : "false");
    }
    agg_buf_puts(out, "]");
    if (partial) {
        agg_buf_puts(out, ",\"partial\":");
        agg_buf_json_str(out, partial);
    }
    agg_buf_puts(out, "}");
}

static void
s_escaped(agg_buf_t *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            agg_buf_append(out, "\\\\", 2);
        else if (*s == '\t')
            agg_buf_append(out, "\\t", 2);
        else if (*s == '\n')
            agg_buf_append(out, "\\n", 2);
        else
            agg_buf_append(out, s, 1);
    }
}

void
agg_prows_text(const agg_prows_t *s, agg_buf_t *out)
{
    for (size_t i = 0; i < s->n; i++) {
        const agg_prow_t *r = &s->rows[i];
        agg_buf_printf(out, "%u\t%llu\t%llu\t%llu\t%llu\t%d\t", r->pid,
                       (unsigned long long)r->cpu_ns,
                       (unsigned long long)r->samples,
                       (unsigned long long)r->off_ns,
                       (unsigned long long)r->last_end_ms, r->alive ? 1 : 0);
        s_escaped(out, r->name);
        agg_buf_append(out, "\t", 1);
        s_escaped(out, r->cmdline);
        agg_buf_append(out, "\t", 1);
        s_escaped(out, r->node);
        if (*r->pod) {
            const char *pod[3] = { r->ns, r->pod, r->container };
            for (int k = 0; k < 3; k++) {
                agg_buf_append(out, "\t", 1);
                s_escaped(out, pod[k]);
            }
        }
        agg_buf_append(out, "\n", 1);
    }
}

static int
s_u64(const char *f, size_t n, uint64_t *out)
{
    char tmp[24];
    if (!n || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, f, n);
    tmp[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (tmp[i] < '0' || tmp[i] > '9')
            return -1;
    errno = 0;
    *out = strtoull(tmp, NULL, 10);
    return errno ? -1 : 0;
}

/* Unescapes field [f, f+n) into a new string of at most max bytes. */
static char *
s_unescape(const char *f, size_t n, size_t max)
{
    char *o = n <= 2 * max ? malloc(n + 1) : NULL;
    size_t k = 0;
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (f[i] != '\\') {
            o[k++] = f[i];
            continue;
        }
        if (++i == n) {
            free(o);
            return NULL;
        }
        o[k++] = f[i] == 't' ? '\t' : f[i] == 'n' ? '\n' : f[i];
    }
    o[k] = '\0';
    if (k > max) {
        free(o);
        return NULL;
    }
    return o;
}

int
agg_prows_parse(agg_prows_t *s, const char *text, size_t len,
                size_t max_rows)
{
    const char *p = text, *end = text + len;
    for (size_t nrows = 0; p < end; nrows++) {
        if (nrows == max_rows)
            return -1;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            return -1;
        const char *f[12];
        size_t flen[12], nf = 0;
        const char *q = p;
        while (nf < 12) {
            const char *tab = nf < 11 ? memchr(q, '\t', (size_t)(eol - q))
                                      : NULL;
            const char *stop = tab ? tab : eol;
            f[nf] = q;
            flen[nf++] = (size_t)(stop - q);
            if (!tab)
                break;
            q = tab + 1;
        }
        uint64_t v[6];
        if (nf != 8 && nf != 9 && nf != 12)
            return -1;
        for (int i = 0; i < 6; i++)
            if (s_u64(f[i], flen[i], &v[i]))
                return -1;
        if (v[0] == 0 || v[0] > UINT32_MAX || v[5] > 1)
            return -1;
        agg_prow_t row = { .pid = (uint32_t)v[0], .cpu_ns = v[1],
                           .samples = v[2], .off_ns = v[3],
                           .last_end_ms = v[4], .alive = (int)v[5] };
        row.name = s_unescape(f[6], flen[6], WIRE_MAX_STR);
        row.cmdline = s_unescape(f[7], flen[7], WIRE_MAX_LONG_STR);
        row.node = nf >= 9 ? s_unescape(f[8], flen[8], WIRE_MAX_NODE)
                           : strdup("");
        row.ns = nf == 12 ? s_unescape(f[9], flen[9], WIRE_MAX_STR)
                          : strdup("");
        row.pod = nf == 12 ? s_unescape(f[10], flen[10], WIRE_MAX_STR)
                           : strdup("");
        row.container = nf == 12 ? s_unescape(f[11], flen[11], WIRE_MAX_STR)
                                 : strdup("");
        int rc = row.name && row.cmdline && row.node && row.ns && row.pod
                         && row.container
                     ? agg_prows_add(s, &row) : -1;
        free(row.node);
        free(row.name);
        free(row.cmdline);
        free(row.ns);
        free(row.pod);
        free(row.container);
        if (rc)
            return -1;
        p = eol + 1;
    }
    return 0;
}
