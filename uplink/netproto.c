/* Network profiling protobuf shapes: see netproto.h. */
#include "netproto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "Common.pb-c.h"
#include "Logging.pb-c.h"
#include "Meter.pb-c.h"
#include "SpanAttachedEvent.pb-c.h"
#include "arena.h"
#include "contproto.h"

/* Labels one meter can carry: the local process, the peer, the room's. */
#define NETPROTO_MAX_LABELS (2 + WIRE_MAX_NET_LABELS)

const char *
netproto_role(uint8_t role)
{
    return role == WIRE_NET_ROLE_SERVER ? "server" : "client";
}

static uint8_t
s_peer_role(uint8_t role)
{
    return role == WIRE_NET_ROLE_SERVER ? WIRE_NET_ROLE_CLIENT
                                        : WIRE_NET_ROLE_SERVER;
}

/* ------------------------------------------------------------ strings */
/* Length of the valid UTF-8 sequence at p (n bytes left), 0 when the
 * bytes there are not one (overlong forms and surrogates included). NUL
 * counts as invalid: the result is a C string. */
static size_t
s_utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t cp, min;
    if (c && c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Captured bytes as valid UTF-8 in the arena: every byte that does not
 * start a valid sequence becomes U+FFFD. NULL when the arena is full. */
static char *
s_utf8(arena_t *arena, const void *data, size_t n)
{
    const uint8_t *p = data;
    char *out = arena_alloc(arena, n * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = s_utf8_seq(p + i, n - i);
        if (k) {
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

static char *
s_utf8_str(arena_t *arena, const char *s)
{
    return s_utf8(arena, s ? s : "", s ? strlen(s) : 0);
}

/* A JSON string of valid UTF-8 text s. */
static void
s_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* The peer as the reference agent names it: a process of the same
 * service instance by its id, another process of this host or a loopback
 * address as local, else its address. */
typedef struct {
    const char *process_id;     /* NULL when not named by id */
    bool local;
    const char *address;        /* "" unless neither of the above */
} s_peer_t;

/* A peer address on this host: loopback ("ip:port", IPv6 written
 * without brackets as the network room does) or a Unix socket. */
static bool
s_loopback(const char *addr)
{
    return !strncmp(addr, "127.", 4) || !strncmp(addr, "::1:", 4) ||
           !strncmp(addr, "::ffff:127.", 11) || !strcmp(addr, "unix");
}

static s_peer_t
s_peer(uint32_t peer_pid, const char *peer_address, const char *peer_id)
{
    s_peer_t p = { NULL, false, "" };
    const char *addr = peer_address ? peer_address : "";
    if (peer_id && *peer_id)
        p.process_id = peer_id;
    else if (peer_pid || s_loopback(addr))
        p.local = true;
    else
        p.address = addr;
    return p;
}

/* ------------------------------------------------------------- meters */
int
netproto_encode_meters(const netproto_meter_t *meters,
                       const netproto_proc_t *local, size_t n,
                       const char *prefix, int64_t ts_ms, uint8_t **buf,
                       size_t *cap, size_t *len)
{
    int rc = -1;
    size_t nb = 0;
    for (size_t i = 0; i < n; i++)
        nb += meters[i].m->nbuckets;
    arena_t *arena = arena_new(0);
    Skywalking__V3__MeterData *data = calloc(n ? n : 1, sizeof *data);
    Skywalking__V3__MeterData **pdata = calloc(n ? n : 1, sizeof *pdata);
    Skywalking__V3__MeterSingleValue *singles =
        calloc(n ? n : 1, sizeof *singles);
    Skywalking__V3__MeterHistogram *hists = calloc(n ? n : 1, sizeof *hists);
    Skywalking__V3__Label *labels =
        calloc(n * NETPROTO_MAX_LABELS + 1, sizeof *labels);
    Skywalking__V3__Label **plabels =
        calloc(n * NETPROTO_MAX_LABELS + 1, sizeof *plabels);
    Skywalking__V3__MeterBucketValue *buckets =
        calloc(nb + 1, sizeof *buckets);
    Skywalking__V3__MeterBucketValue **pbuckets =
        calloc(nb + 1, sizeof *pbuckets);
    if (!arena || !data || !pdata || !singles || !hists || !labels ||
        !plabels || !buckets || !pbuckets)
        goto cleanup;
    size_t bi = 0;
    for (size_t i = 0; i < n; i++) {
        const wire_net_meter_t *m = meters[i].m;
        Skywalking__V3__Label **pl = &plabels[i * NETPROTO_MAX_LABELS];
        Skywalking__V3__Label *l = &labels[i * NETPROTO_MAX_LABELS];
        size_t nl = 0;
        const char *role = netproto_role(m->role);
        const char *peer_role = netproto_role(s_peer_role(m->role));
        s_peer_t peer = s_peer(m->peer_pid, m->peer_address,
                               meters[i].peer_id);
        char *k0 = arena_alloc(arena, 48), *k1 = arena_alloc(arena, 48);
        char *name = arena_alloc(arena, strlen(prefix) + strlen(m->name) + 2);
        if (!k0 || !k1 || !name)
            goto cleanup;
        sprintf(name, "%s_%s", prefix, m->name);
        snprintf(k0, 48, "%s_process_id", role);
        const char *v1;
        if (peer.process_id) {
            snprintf(k1, 48, "%s_process_id", peer_role);
            v1 = peer.process_id;
        } else if (peer.local) {
            snprintf(k1, 48, "%s_local", peer_role);
            v1 = "true";
        } else {
            snprintf(k1, 48, "%s_address", peer_role);
            v1 = peer.address;
        }
        const char *keys[NETPROTO_MAX_LABELS] = { k0, k1 };
        const char *vals[NETPROTO_MAX_LABELS] = { local[i].process_id, v1 };
        size_t total = 2;
        for (uint32_t k = 0; k < m->nlabels && total < NETPROTO_MAX_LABELS;
             k++, total++) {
            keys[total] = m->labels[k].key;
            vals[total] = m->labels[k].value;
        }
        for (size_t k = 0; k < total; k++) {
            skywalking__v3__label__init(&l[nl]);
            l[nl].name = s_utf8_str(arena, keys[k]);
            l[nl].value = s_utf8_str(arena, vals[k]);
            if (!l[nl].name || !l[nl].value)
                goto cleanup;
            pl[nl] = &l[nl];
            nl++;
        }
        Skywalking__V3__MeterData *d = &data[i];
        skywalking__v3__meter_data__init(d);
        if (m->nbuckets) {
            Skywalking__V3__MeterHistogram *h = &hists[i];
            skywalking__v3__meter_histogram__init(h);
            h->name = name;
            h->n_labels = nl;
            h->labels = pl;
            h->values = &pbuckets[bi];
            for (uint32_t b = 0; b < m->nbuckets; b++, bi++) {
                skywalking__v3__meter_bucket_value__init(&buckets[bi]);
                buckets[bi].bucket = m->bounds[b];
                buckets[bi].count = (int64_t)m->counts[b];
                pbuckets[bi] = &buckets[bi];
            }
            h->n_values = m->nbuckets;
            d->metric_case = SKYWALKING__V3__METER_DATA__METRIC_HISTOGRAM;
            d->histogram = h;
        } else {
            Skywalking__V3__MeterSingleValue *v = &singles[i];
            skywalking__v3__meter_single_value__init(v);
            v->name = name;
            v->n_labels = nl;
            v->labels = pl;
            v->value = m->value;
            d->metric_case = SKYWALKING__V3__METER_DATA__METRIC_SINGLE_VALUE;
            d->singlevalue = v;
        }
        /* The OAP takes the entity of the whole collection from the
         * first MeterData. */
        if (i == 0) {
            d->service = local[0].entity->service;
            d->serviceinstance = local[0].entity->instance;
            d->timestamp = ts_ms;
        }
        pdata[i] = d;
    }
    Skywalking__V3__MeterDataCollection col =
        SKYWALKING__V3__METER_DATA_COLLECTION__INIT;
    col.n_meterdata = n;
    col.meterdata = pdata;
    rc = contproto_pack(&col.base, buf, cap, len);
cleanup:
    arena_destroy(&arena);
    free(data);
    free(pdata);
    free(singles);
    free(hists);
    free(labels);
    free(plabels);
    free(buckets);
    free(pbuckets);
    return rc;
}

/* --------------------------------------------------------------- logs */
static void
s_json_process(FILE *f, const char *key, const char *id, bool local,
               const char *address)
{
    fprintf(f, "\"%s\":{\"process_id\":", key);
    s_json_str(f, id ? id : "");
    fprintf(f, ",\"local\":%s,\"address\":", local ? "true" : "false");
    s_json_str(f, address);
    fputc('}', f);
}

/* The log body: the reference agent's field names and order. NULL when
 * out of memory (free the result). */
static char *
s_log_body(const wire_net_sample_t *s, const netproto_proc_t *local,
           const char *peer_id, arena_t *arena)
{
    char *text = NULL;
    size_t size = 0;
    const char *uri = s_utf8_str(arena, s->uri);
    const char *provider = s_utf8_str(arena, s->trace_provider);
    const char *reason = s_utf8_str(arena, s->reason);
    const char *addr = s_utf8_str(arena, s->peer_address);
    if (!uri || !provider || !reason || !addr)
        return NULL;
    FILE *f = open_memstream(&text, &size);
    if (!f)
        return NULL;
    s_peer_t peer = s_peer(s->peer_pid, addr, peer_id);
    bool server = s->role == WIRE_NET_ROLE_SERVER;
    int64_t latency = s->end_ms >= s->start_ms
                          ? (int64_t)(s->end_ms - s->start_ms) : 0;
    fputs("{\"uri\":", f);
    s_json_str(f, uri);
    fputs(",\"reason\":", f);
    s_json_str(f, reason);
    fprintf(f, ",\"latency\":%lld,\"trace_provider\":", (long long)latency);
    s_json_str(f, provider);
    fputc(',', f);
    if (server)
        s_json_process(f, "client_process", peer.process_id, peer.local,
                       peer.address);
    else
        s_json_process(f, "client_process", local->process_id, false, "");
    fputc(',', f);
    if (server)
        s_json_process(f, "server_process", local->process_id, false, "");
    else
        s_json_process(f, "server_process", peer.process_id, peer.local,
                       peer.address);
    fprintf(f, ",\"detect_point\":\"%s\",\"component\":\"http\","
            "\"ssl\":%s,\"status\":%u}", netproto_role(s->role),
            s->is_ssl ? "true" : "false", s->status);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

int
netproto_encode_log(const wire_net_sample_t *s, const netproto_proc_t *local,
                    const char *peer_id, int64_t ts_ms, uint8_t **buf,
                    size_t *cap, size_t *len)
{
    int rc = -1;
    char *body = NULL;
    arena_t *arena = arena_new(0);
    if (!arena || !(body = s_log_body(s, local, peer_id, arena)))
        goto cleanup;
    Skywalking__V3__KeyStringValuePair kind =
        SKYWALKING__V3__KEY_STRING_VALUE_PAIR__INIT;
    kind.key = "LOG_KIND";
    kind.value = NETPROTO_LOG_KIND;
    Skywalking__V3__KeyStringValuePair *pkind = &kind;
    Skywalking__V3__LogTags tags = SKYWALKING__V3__LOG_TAGS__INIT;
    tags.n_data = 1;
    tags.data = &pkind;
    Skywalking__V3__TraceContext trace = SKYWALKING__V3__TRACE_CONTEXT__INIT;
    trace.traceid = s_utf8_str(arena, s->trace_id);
    Skywalking__V3__JSONLog json = SKYWALKING__V3__JSONLOG__INIT;
    json.json = body;
    Skywalking__V3__LogDataBody lbody = SKYWALKING__V3__LOG_DATA_BODY__INIT;
    lbody.type = "json";
    lbody.content_case = SKYWALKING__V3__LOG_DATA_BODY__CONTENT_JSON;
    lbody.json = &json;
    Skywalking__V3__LogData log = SKYWALKING__V3__LOG_DATA__INIT;
    log.timestamp = ts_ms;
    log.service = local->entity->service;
    log.serviceinstance = local->entity->instance;
    log.layer = local->entity->layer;
    log.body = &lbody;
    log.tracecontext = &trace;
    log.tags = &tags;
    if (!trace.traceid)
        goto cleanup;
    rc = contproto_pack(&log.base, buf, cap, len);
cleanup:
    free(body);
    arena_destroy(&arena);
    return rc;
}

/* ------------------------------------------------------------- events */
/* docker/go-units BytesSize, as the reference agent writes data_size:
 * four significant digits, binary units. */
static void
s_bytes_size(char *out, size_t size, double bytes)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    size_t u = 0;
    while (bytes >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        bytes /= 1024.0;
        u++;
    }
    snprintf(out, size, "%.4g%s", bytes, units[u]);
}

static void
s_instant(Skywalking__V3__Instant *t, uint64_t ms)
{
    skywalking__v3__instant__init(t);
    t->seconds = (int64_t)(ms / 1000);
    t->nanos = (int32_t)(ms % 1000 * 1000000);
}

int
netproto_encode_event(const wire_net_sample_t *s,
                      const netproto_proc_t *local, bool response,
                      uint8_t **buf, size_t *cap, size_t *len)
{
    enum { NTAGS = 8 };
    int rc = -1;
    uint32_t n = response ? s->resp_len : s->req_len;
    const uint8_t *bytes = response ? s->resp : s->req;
    if (!n || !bytes)
        return 1;
    arena_t *arena = arena_new(0);
    if (!arena)
        return -1;
    char size[32];
    s_bytes_size(size, sizeof size, (double)n);
    /* The process's view: a server receives the request, a client sends
     * it. */
    bool inbound = (s->role == WIRE_NET_ROLE_SERVER) != response;
    const char *keys[NTAGS] = { "data_size", "data_content",
                                "data_direction", "data_type",
                                "connection_role", "service_name",
                                "service_instance_name", "process_name" };
    const char *vals[NTAGS] = { size, s_utf8(arena, bytes, n),
                                inbound ? "inbound" : "outbound",
                                response ? "response" : "request",
                                netproto_role(s->role),
                                local->entity->service,
                                local->entity->instance,
                                local->entity->process };
    Skywalking__V3__KeyStringValuePair tags[NTAGS];
    Skywalking__V3__KeyStringValuePair *ptags[NTAGS];
    for (size_t i = 0; i < NTAGS; i++) {
        skywalking__v3__key_string_value_pair__init(&tags[i]);
        tags[i].key = (char *)keys[i];
        tags[i].value = (char *)vals[i];
        ptags[i] = &tags[i];
    }
    Skywalking__V3__SpanAttachedEvent__SpanReference ref =
        SKYWALKING__V3__SPAN_ATTACHED_EVENT__SPAN_REFERENCE__INIT;
    /* SkyWalking knows its own traces and Zipkin's; a W3C trace id is
     * foreign to it like a B3 one. */
    ref.type = s->trace_provider && !strcmp(s->trace_provider, "skywalking")
                   ? SKYWALKING__V3__SPAN_ATTACHED_EVENT__SPAN_REFERENCE_TYPE__SKYWALKING
                   : SKYWALKING__V3__SPAN_ATTACHED_EVENT__SPAN_REFERENCE_TYPE__ZIPKIN;
    ref.traceid = s_utf8_str(arena, s->trace_id);
    ref.tracesegmentid = s_utf8_str(arena, s->segment_id);
    ref.spanid = s_utf8_str(arena, s->span_id);
    Skywalking__V3__Instant start, end;
    s_instant(&start, s->start_ms);
    s_instant(&end, s->end_ms);
    Skywalking__V3__SpanAttachedEvent ev =
        SKYWALKING__V3__SPAN_ATTACHED_EVENT__INIT;
    ev.starttime = &start;
    ev.endtime = &end;
    ev.event = response ? "HTTP Response Sampling" : "HTTP Request Sampling";
    ev.n_tags = NTAGS;
    ev.tags = ptags;
    ev.tracecontext = &ref;
    if (!vals[1] || !ref.traceid || !ref.tracesegmentid || !ref.spanid)
        goto cleanup;
    rc = contproto_pack(&ev.base, buf, cap, len);
cleanup:
    arena_destroy(&arena);
    return rc;
}
