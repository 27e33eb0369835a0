#include "continuous.h"

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "names.h"

typedef struct {
    uint8_t target;
    uint8_t monitor;
    double threshold;
    uint32_t period;
    uint32_t count;
    uint8_t uri_kind;                    /* HTTP monitors: enum s_uri_kind */
    char uri[128];
} cont_item_t;

/* Which requests an HTTP policy item watches. */
enum s_uri_kind { URI_GLOBAL = 0, URI_REGEX = 1, URI_PATH = 2 };

typedef struct {
    char name[128];
    char uuid[64];
    cont_item_t items[CONT_MAX_ITEMS];
    size_t nitems;
    uint32_t max_period;
} cont_service_t;

/* Per-process readings: one ring of one-second slots per policy item of
 * its service (an HTTP item's value depends on its URIs). */
typedef struct {
    uint32_t pid;
    char service[128];
    uint64_t last_seen_s;
    uint32_t ring;                       /* slots per item */
    size_t nitems;                       /* rings */
    double *values;                      /* [item][ring] */
    uint64_t *stamps;                    /* second each slot holds, +1 */
    double latest[CONT_MAX_ITEMS];
    uint64_t quiet_until_ms[WIRE_TARGET_MAX + 1];
} cont_proc_t;

struct continuous {
    continuous_options_t o;
    cont_service_t services[CONT_MAX_SERVICES];
    size_t nservices;
    cont_proc_t *procs;
    size_t nprocs;
};

continuous_t *continuous_new(const continuous_options_t *opts)
{
    continuous_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->o = *opts;
    self->procs = calloc(CONT_MAX_PROCS, sizeof *self->procs);
    if (!self->procs)
        continuous_destroy(&self);
    return self;
}

static void s_proc_free(cont_proc_t *p)
{
    free(p->values);
    free(p->stamps);
    memset(p, 0, sizeof *p);
}

void continuous_destroy(continuous_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    continuous_t *self = *self_p;
    for (size_t i = 0; self->procs && i < self->nprocs; i++)
        s_proc_free(&self->procs[i]);
    free(self->procs);
    free(self);
    *self_p = NULL;
}

/* ------------------------------------------------------------- policies */

/* A JSON number or a numeric string (Threshold is a string on the wire,
 * Period and Count are numbers; accept either for all). */
static int s_number(const json_value_t *v, double *out)
{
    if (!v)
        return -1;
    if (v->type == JSON_NUMBER) {
        *out = v->number;
        return 0;
    }
    if (v->type == JSON_STRING && v->str[0]) {
        char *end;
        *out = strtod(v->str, &end);
        return *end ? -1 : 0;
    }
    return -1;
}

static int s_parse_item(const json_value_t *cfg, uint8_t target,
                        uint8_t monitor, cont_item_t *item, char *why,
                        size_t whylen)
{
    double threshold, period, count;
    if (!cfg || cfg->type != JSON_OBJECT) {
        snprintf(why, whylen, "policy must be an object");
        return -1;
    }
    const json_value_t *th = json_get(cfg, "Threshold");
    if (!th || (th->type == JSON_STRING && !th->str[0]) ||
        s_number(th, &threshold) || !isfinite(threshold)) {
        snprintf(why, whylen, "Threshold must be a non-empty finite number");
        return -1;
    }
    /* Range checks written so NaN fails them: it must never reach the
     * integer conversions below. */
    if (s_number(json_get(cfg, "Period"), &period) ||
        !(period >= 1 && period <= CONT_MAX_PERIOD) ||
        period != (double)(uint32_t)period) {
        snprintf(why, whylen, "Period must be an integer in 1..%d",
                 CONT_MAX_PERIOD);
        return -1;
    }
    if (s_number(json_get(cfg, "Count"), &count) ||
        !(count >= 1 && count <= period) ||
        count != (double)(uint32_t)count) {
        snprintf(why, whylen, "Count must be an integer in 1..Period");
        return -1;
    }
    memset(item, 0, sizeof *item);
    item->target = target;
    item->monitor = monitor;
    item->threshold = threshold;
    item->period = (uint32_t)period;
    item->count = (uint32_t)count;
    return 0;
}

/* An HTTP monitor's URIs (as the reference agent): each path of URIList
 * is an item of its own, else URIRegex (POSIX extended) filters the
 * requests, else the item watches all of them. Appends to out->items
 * from base; -1 with why. */
static int s_parse_uris(const json_value_t *cfg, const cont_item_t *base,
                        cont_service_t *out, char *why, size_t whylen)
{
    const json_value_t *re = json_get(cfg, "URIRegex");
    const json_value_t *list = json_get(cfg, "URIList");
    size_t nlist = list && list->type == JSON_ARRAY ? list->n : 0;
    size_t nnew = nlist ? nlist : 1;
    if (out->nitems + nnew > CONT_MAX_ITEMS) {
        snprintf(why, whylen, "more than %d policies (URIs count)",
                 CONT_MAX_ITEMS);
        return -1;
    }
    for (size_t i = 0; i < nlist; i++) {
        const json_value_t *u = list->items[i];
        if (u->type != JSON_STRING || !u->str[0] ||
            strlen(u->str) >= sizeof base->uri) {
            snprintf(why, whylen, "URIList[%zu] must be a path of 1..%zu "
                     "characters", i, sizeof base->uri - 1);
            return -1;
        }
        cont_item_t *it = &out->items[out->nitems++];
        *it = *base;
        it->uri_kind = URI_PATH;
        snprintf(it->uri, sizeof it->uri, "%s", u->str);
    }
    if (nlist)
        return 0;
    cont_item_t *it = &out->items[out->nitems];
    *it = *base;
    if (re && re->type == JSON_STRING && re->str[0]) {
        regex_t rx;
        if (strlen(re->str) >= sizeof it->uri ||
            regcomp(&rx, re->str, REG_EXTENDED | REG_NOSUB) != 0) {
            snprintf(why, whylen, "URIRegex is not a POSIX extended regular "
                     "expression of at most %zu characters",
                     sizeof it->uri - 1);
            return -1;
        }
        regfree(&rx);
        it->uri_kind = URI_REGEX;
        snprintf(it->uri, sizeof it->uri, "%s", re->str);
    }
    out->nitems++;
    return 0;
}

static int s_parse_service(const json_value_t *sv, cont_service_t *out,
                           char *err, size_t errlen)
{
    char why[160] = "";
    memset(out, 0, sizeof *out);
    const json_value_t *name = json_get(sv, "ServiceName");
    const json_value_t *uuid = json_get(sv, "UUID");
    if (!name || name->type != JSON_STRING || !name->str[0] ||
        strlen(name->str) >= sizeof out->name) {
        snprintf(err, errlen, "ServiceName must be a non-empty string");
        return -1;
    }
    snprintf(out->name, sizeof out->name, "%s", name->str);
    if (uuid && uuid->type == JSON_STRING)
        snprintf(out->uuid, sizeof out->uuid, "%s", uuid->str);
    const json_value_t *prof = json_get(sv, "Profiling");
    if (!prof || prof->type == JSON_NULL)
        return 0;
    if (prof->type != JSON_OBJECT) {
        snprintf(err, errlen, "service %s: Profiling must be an object",
                 out->name);
        return -1;
    }
    for (size_t t = 0; t < prof->n; t++) {
        int target = names_target_parse(prof->keys[t], NAMES_EXACT);
        const json_value_t *monitors = prof->items[t];
        if (target < 0 || monitors->type != JSON_OBJECT) {
            snprintf(err, errlen, "service %s: unknown profiling target '%s'",
                     out->name, prof->keys[t]);
            return -1;
        }
        for (size_t m = 0; m < monitors->n; m++) {
            int monitor = monitors_parse(monitors->keys[m]);
            if (monitor < 0) {
                snprintf(err, errlen, "service %s: unknown monitor '%s'",
                         out->name, monitors->keys[m]);
                return -1;
            }
            if (out->nitems == CONT_MAX_ITEMS) {
                snprintf(err, errlen, "service %s: more than %d policies",
                         out->name, CONT_MAX_ITEMS);
                return -1;
            }
            cont_item_t item;
            int bad = s_parse_item(monitors->items[m], (uint8_t)target,
                                   (uint8_t)monitor, &item, why, sizeof why);
            if (!bad && monitors_get((unsigned)monitor)->cause ==
                            MONITOR_CAUSE_URI)
                bad = s_parse_uris(monitors->items[m], &item, out, why,
                                   sizeof why);
            else if (!bad)
                out->items[out->nitems++] = item;
            if (bad) {
                snprintf(err, errlen, "service %s, %s/%s: %s", out->name,
                         prof->keys[t], monitors->keys[m], why);
                return -1;
            }
            if (item.period > out->max_period)
                out->max_period = item.period;
        }
    }
    return 0;
}

static cont_service_t *s_find_in(cont_service_t *services, size_t n,
                                  const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(services[i].name, name) == 0)
            return &services[i];
    return NULL;
}

static cont_service_t *s_find_service(continuous_t *self, const char *name)
{
    return s_find_in(self->services, self->nservices, name);
}

int continuous_apply_json(continuous_t *self, const char *json, size_t len,
                          char *err, size_t errlen)
{
    int rc = -1;
    char perr[200];
    cont_service_t *parsed = NULL, *next = NULL;
    uint8_t *changed = NULL;
    arena_t *arena = arena_new(len * 8 + 65536);
    if (!arena) {
        snprintf(err, errlen, "out of memory");
        goto cleanup;
    }
    json_value_t *doc = json_parse(json, len, arena, perr, sizeof perr);
    if (!doc) {
        snprintf(err, errlen, "policy JSON: %s", perr);
        goto cleanup;
    }
    if (doc->type != JSON_ARRAY) {
        snprintf(err, errlen, "policy JSON: want an array of services");
        goto cleanup;
    }
    if (doc->n > CONT_MAX_SERVICES) {
        snprintf(err, errlen, "policy JSON: more than %d services",
                 CONT_MAX_SERVICES);
        goto cleanup;
    }
    size_t nitems = doc->n ? doc->n : 1;
    parsed = calloc(nitems, sizeof *parsed);
    changed = calloc(nitems, 1);
    next = malloc(sizeof self->services);
    if (!parsed || !changed || !next) {
        snprintf(err, errlen, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < doc->n; i++) {
        if (doc->items[i]->type != JSON_OBJECT) {
            snprintf(err, errlen, "policy JSON: entry %zu is not an object", i);
            goto cleanup;
        }
        if (s_parse_service(doc->items[i], &parsed[i], err, errlen))
            goto cleanup;
    }
    /* Every service validated: build the new table on a copy, so a check
     * that can only fail while applying (the table is full) still leaves
     * everything as it was. A service whose UUID did not change keeps its
     * policy and its processes' slots (the uplink resends every policy
     * when it sees a new policy engine). */
    memcpy(next, self->services, self->nservices * sizeof *next);
    size_t nnext = self->nservices;
    for (size_t i = 0; i < doc->n; i++) {
        cont_service_t *cur = s_find_in(next, nnext, parsed[i].name);
        if (cur && parsed[i].uuid[0] && strcmp(cur->uuid, parsed[i].uuid) == 0)
            continue;
        changed[i] = 1;
        int removal = parsed[i].nitems == 0 && parsed[i].uuid[0] == '\0';
        if (removal) {
            if (cur)
                *cur = next[--nnext];
            continue;
        }
        if (!cur) {
            if (nnext == CONT_MAX_SERVICES) {
                snprintf(err, errlen, "more than %d services with policies",
                         CONT_MAX_SERVICES);
                goto cleanup;
            }
            cur = &next[nnext++];
        }
        *cur = parsed[i];
    }
    memcpy(self->services, next, nnext * sizeof *next);
    self->nservices = nnext;
    /* Rings are sized by the service's longest period: re-create those of
     * the services that changed. */
    for (size_t i = 0; i < self->nprocs; i++) {
        int affected = 0;
        for (size_t k = 0; k < doc->n && !affected; k++)
            affected = changed[k] &&
                       strcmp(self->procs[i].service, parsed[k].name) == 0;
        if (!affected)
            continue;
        free(self->procs[i].values);
        free(self->procs[i].stamps);
        self->procs[i].values = NULL;
        self->procs[i].stamps = NULL;
        self->procs[i].ring = 0;
        self->procs[i].nitems = 0;
    }
    rc = 0;
cleanup:
    free(next);
    free(changed);
    free(parsed);
    arena_destroy(&arena);
    return rc;
}

size_t continuous_service_count(const continuous_t *self)
{
    return self->nservices;
}

const char *continuous_service_uuid(const continuous_t *self,
                                    const char *service)
{
    cont_service_t *s = s_find_service((continuous_t *)self, service);
    return s ? s->uuid : "";
}

int continuous_wants(const continuous_t *self, const char *service,
                     enum monitor_type monitor)
{
    const cont_service_t *s = s_find_service((continuous_t *)self, service);
    for (size_t i = 0; s && i < s->nitems; i++)
        if (s->items[i].monitor == monitor)
            return 1;
    return 0;
}

int continuous_wants_http(const continuous_t *self, const char *service)
{
    return continuous_wants(self, service, MONITOR_HTTP_ERROR_RATE) ||
           continuous_wants(self, service, MONITOR_HTTP_AVG_RESPONSE_TIME);
}

/* ------------------------------------------------------------- readings */

static cont_proc_t *s_proc(continuous_t *self, uint32_t pid)
{
    for (size_t i = 0; i < self->nprocs; i++)
        if (self->procs[i].pid == pid)
            return &self->procs[i];
    if (self->nprocs == CONT_MAX_PROCS)
        return NULL;
    cont_proc_t *p = &self->procs[self->nprocs++];
    memset(p, 0, sizeof *p);
    p->pid = pid;
    return p;
}

/* The process's rings fit its service's policy (sized by its longest
 * period and its item count); re-created, empty, when not. 0 or -1. */
static int s_proc_rings(cont_proc_t *p, const cont_service_t *svc)
{
    if (!strcmp(p->service, svc->name) && p->ring == svc->max_period &&
        p->nitems == svc->nitems && p->values)
        return 0;
    free(p->values);
    free(p->stamps);
    p->ring = svc->max_period;
    p->nitems = svc->nitems;
    p->values = calloc((size_t)p->ring * p->nitems, sizeof *p->values);
    p->stamps = calloc((size_t)p->ring * p->nitems, sizeof *p->stamps);
    snprintf(p->service, sizeof p->service, "%s", svc->name);
    if (p->values && p->stamps)
        return 0;
    free(p->values);
    free(p->stamps);
    p->values = NULL;
    p->stamps = NULL;
    p->ring = 0;
    p->nitems = 0;
    return -1;
}

static void s_record(cont_proc_t *p, size_t item, uint64_t sec, double v)
{
    size_t slot = item * p->ring + sec % p->ring;
    p->values[slot] = v;
    p->stamps[slot] = sec + 1;
    p->latest[item] = v;
}

/* Forgets processes that have not been seen for the longest period. */
static void s_forget_old(continuous_t *self, uint64_t now_s)
{
    for (size_t i = 0; i < self->nprocs;) {
        if (now_s > self->procs[i].last_seen_s + CONT_MAX_PERIOD) {
            s_proc_free(&self->procs[i]);
            self->procs[i] = self->procs[--self->nprocs];
            memset(&self->procs[self->nprocs], 0, sizeof self->procs[0]);
        } else {
            i++;
        }
    }
}

void continuous_observe(continuous_t *self, uint64_t now_s,
                        const cont_reading_t *readings, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const cont_reading_t *r = &readings[i];
        const cont_service_t *svc = s_find_service(self, r->service);
        if (!svc || !svc->max_period)
            continue;
        cont_proc_t *p = s_proc(self, r->pid);
        if (!p || s_proc_rings(p, svc) != 0)
            continue;
        p->last_seen_s = now_s;
        for (size_t k = 0; k < svc->nitems; k++) {
            uint8_t m = svc->items[k].monitor;
            if (m < MONITOR_COUNT && r->has[m])
                s_record(p, k, now_s, r->values[m]);
        }
    }
    s_forget_old(self, now_s);
}

/* Whether a request to uri counts for the item (rx: its compiled
 * URIRegex). */
static int s_uri_matches(const cont_item_t *it, const regex_t *rx,
                         const char *uri)
{
    if (it->uri_kind == URI_PATH)
        return strcmp(it->uri, uri) == 0;
    if (it->uri_kind == URI_REGEX)
        return regexec(rx, uri, 0, NULL, 0) == 0;
    return 1;
}

size_t continuous_observe_http(continuous_t *self, uint32_t pid,
                               const char *service, uint64_t from_s,
                               uint64_t to_s, const cont_http_t *rows,
                               size_t n, cont_http_value_t *out, size_t max)
{
    size_t nout = 0;
    const cont_service_t *svc = s_find_service(self, service);
    if (!svc || !svc->max_period || to_s <= from_s ||
        !continuous_wants_http(self, service))
        return 0;
    cont_proc_t *p = s_proc(self, pid);
    if (!p || s_proc_rings(p, svc) != 0)
        return 0;
    p->last_seen_s = to_s;
    if (to_s - from_s > p->ring)
        from_s = to_s - p->ring;
    for (size_t k = 0; k < svc->nitems; k++) {
        const cont_item_t *it = &svc->items[k];
        if (monitors_get(it->monitor)->cause != MONITOR_CAUSE_URI)
            continue;
        regex_t rx;
        if (it->uri_kind == URI_REGEX &&
            regcomp(&rx, it->uri, REG_EXTENDED | REG_NOSUB) != 0)
            continue;              /* checked when the policy came */
        uint64_t requests = 0, errors = 0;
        double ms = 0;
        for (size_t i = 0; i < n; i++) {
            if (!rows[i].uri || !s_uri_matches(it, &rx, rows[i].uri))
                continue;
            requests += rows[i].requests;
            errors += rows[i].errors;
            ms += rows[i].duration_ms_sum;
        }
        if (it->uri_kind == URI_REGEX)
            regfree(&rx);
        if (!requests)
            continue;
        double v = it->monitor == MONITOR_HTTP_ERROR_RATE
                       ? 100.0 * (double)errors / (double)requests
                       : ms / (double)requests;
        for (uint64_t sec = from_s + 1; sec <= to_s; sec++)
            s_record(p, k, sec, v);
        const char *uri = it->uri_kind == URI_GLOBAL ? "global" : it->uri;
        int dup = 0;
        for (size_t o = 0; o < nout && !dup; o++)
            dup = out[o].monitor == it->monitor && !strcmp(out[o].uri, uri);
        if (dup || nout == max)
            continue;
        out[nout].monitor = it->monitor;
        snprintf(out[nout].uri, sizeof out[nout].uri, "%s", uri);
        out[nout].value = v;
        nout++;
    }
    return nout;
}

/* Slots among the last `period` seconds whose value reached threshold. */
static uint32_t s_reached(const cont_proc_t *p, size_t item,
                          const cont_item_t *it, uint64_t now_s)
{
    uint32_t reached = 0;
    for (uint32_t k = 0; k < it->period && k <= now_s; k++) {
        uint64_t sec = now_s - k;
        size_t slot = item * p->ring + sec % p->ring;
        if (p->stamps[slot] == sec + 1 && p->values[slot] >= it->threshold)
            reached++;
    }
    return reached;
}

size_t continuous_check(continuous_t *self, uint64_t now_ms,
                        cont_trigger_t *out, size_t max)
{
    size_t n = 0;
    uint64_t now_s = now_ms / 1000;
    for (size_t i = 0; i < self->nprocs && n < max; i++) {
        cont_proc_t *p = &self->procs[i];
        const cont_service_t *svc = s_find_service(self, p->service);
        if (!svc || !p->ring || p->nitems != svc->nitems)
            continue;
        for (uint8_t target = 0; target <= WIRE_TARGET_MAX && n < max;
             target++) {
            if (now_ms < p->quiet_until_ms[target])
                continue;
            cont_trigger_t *t = &out[n];
            memset(t, 0, sizeof *t);
            for (size_t k = 0; k < svc->nitems; k++) {
                const cont_item_t *it = &svc->items[k];
                if (it->target != target || it->period > p->ring ||
                    s_reached(p, k, it, now_s) < it->count ||
                    t->ncauses == MONITOR_COUNT)
                    continue;
                cont_cause_t *c = &t->causes[t->ncauses++];
                c->monitor = it->monitor;
                c->threshold = it->threshold;
                c->current = p->latest[k];
                snprintf(c->uri_regex, sizeof c->uri_regex, "%s",
                         it->uri_kind == URI_REGEX ? it->uri : "");
                snprintf(c->uri_path, sizeof c->uri_path, "%s",
                         it->uri_kind == URI_PATH ? it->uri : "");
            }
            if (!t->ncauses)
                continue;
            t->pid = p->pid;
            t->target = target;
            t->duration_ms = self->o.execute_ms;
            snprintf(t->service, sizeof t->service, "%s", p->service);
            p->quiet_until_ms[target] =
                now_ms + self->o.execute_ms + self->o.silence_ms;
            n++;
        }
    }
    return n;
}
