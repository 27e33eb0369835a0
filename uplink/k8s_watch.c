/* Kubernetes list + watch over libcurl's multi interface: see
 * k8s_watch.h. One request per resource at a time; each request's bytes
 * go to that resource's buffer (a list reply whole, a watch stream one
 * line at a time) and are parsed into a reused arena. */
#include "k8s_watch.h"

#include <curl/curl.h>
#include <errno.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "hostport.h"
#include "log.h"

#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define K8S_MAX_TOKEN 16384
/* A parsed document takes a few times its text in DOM nodes. */
#define K8S_ARENA_LIMIT ((size_t)K8S_MAX_LIST_BYTES * 4)
#define K8S_CONNECT_TIMEOUT_MS 5000
#define K8S_LIST_TIMEOUT_MS 60000
#define K8S_FIRST_BACKOFF_MS 1000

typedef enum { W_IDLE, W_LIST, W_WATCH } s_state_t;

typedef struct {
    k8s_client_t *client;
    k8s_kind_t kind;
    const char *name;          /* "pods", for logs and counters */
    char *path;                /* "/api/v1/pods?fieldSelector=..." */
    s_state_t state;
    CURL *easy;                /* set while a request runs */
    struct curl_slist *headers;
    char *buf;
    size_t len, cap;
    bool overflow;             /* a reply or an event was too big */
    bool gone;                 /* the watch said 410 Gone */
    bool synced;               /* listed at least once */
    bool need_list;            /* next request is a (re)list */
    char rv[128];              /* resourceVersion to watch from */
    uint64_t next_ms;          /* when IDLE: when to start again */
    uint32_t backoff_ms;
    bool warned;               /* this outage was logged */
    char errbuf[CURL_ERROR_SIZE];
} s_watch_t;

struct k8s_client {
    CURLM *multi;
    char server[512];
    char *token_file, *ca_file;
    uint32_t max_backoff_ms, watch_timeout_s;
    k8s_event_fn fn;
    void *arg;
    arena_t *arena;
    s_watch_t watches[K8S_KINDS];
    stats_metric_t *m_lists, *m_events, *m_gone, *m_failures, *m_invalid,
        *m_synced;
    log_ratelimit_t rl;
};

/* -------------------------------------------------------------- config */
int
k8s_client_server(const char *api_server, char *out, size_t size)
{
    if (api_server && *api_server) {
        snprintf(out, size, "%s", api_server);
    } else {
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        const char *port = getenv("KUBERNETES_SERVICE_PORT");
        if (!host || !*host)
            return -1;
        char hostport[HOSTPORT_HOST_MAX + 16];
        if (hostport_format(host, port && *port ? port : "443", hostport,
                            sizeof hostport) != 0)
            return -1;
        snprintf(out, size, "https://%s", hostport);
    }
    /* No trailing slash: paths start with one. */
    size_t n = strlen(out);
    while (n && out[n - 1] == '/')
        out[--n] = '\0';
    return n ? 0 : -1;
}

/* The bearer token, re-read at every request: projected service-account
 * tokens rotate. "" when the file is absent (an API server that wants no
 * token, as in tests of the warning path). */
static void
s_read_token(const char *path, char *out, size_t size)
{
    out[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    size_t n = fread(out, 1, size - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' ||
                 out[n - 1] == ' '))
        out[--n] = '\0';
}

/* -------------------------------------------------------------- events */
static void
s_count_invalid(s_watch_t *w, const char *why)
{
    stats_inc(w->client->m_invalid);
    log_warn_rl(&w->client->rl, "kubernetes: %s: %s", w->name, why);
}

static void
s_note_rv(s_watch_t *w, const json_value_t *obj)
{
    const json_value_t *rv = json_get(json_get(obj, "metadata"),
                                      "resourceVersion");
    if (rv && rv->type == JSON_STRING && strlen(rv->str) < sizeof w->rv)
        snprintf(w->rv, sizeof w->rv, "%s", rv->str);
}

/* One line of a watch stream: {"type": ..., "object": {...}}. */
static void
s_watch_line(s_watch_t *w, const char *line, size_t len)
{
    k8s_client_t *c = w->client;
    char err[128];
    arena_reset(c->arena);
    json_value_t *ev = json_parse(line, len, c->arena, err, sizeof err);
    const json_value_t *type = ev ? json_get(ev, "type") : NULL;
    const json_value_t *obj = ev ? json_get(ev, "object") : NULL;
    if (!type || type->type != JSON_STRING || !obj ||
        obj->type != JSON_OBJECT) {
        s_count_invalid(w, ev ? "watch event without type or object" : err);
        return;
    }
    stats_inc(c->m_events);
    if (!strcmp(type->str, "ERROR")) {
        const json_value_t *code = json_get(obj, "code");
        if (code && code->type == JSON_NUMBER && code->number == 410)
            w->gone = true;
        else
            s_count_invalid(w, "watch ERROR event");
        return;
    }
    s_note_rv(w, obj);
    if (!strcmp(type->str, "ADDED") || !strcmp(type->str, "MODIFIED"))
        c->fn(c->arg, w->kind, K8S_EV_PUT, obj);
    else if (!strcmp(type->str, "DELETED"))
        c->fn(c->arg, w->kind, K8S_EV_DELETE, obj);
    /* BOOKMARK: only the resourceVersion. */
}

/* A whole list reply: {"metadata": {"resourceVersion"}, "items": [...]}. */
static int
s_list_done(s_watch_t *w)
{
    k8s_client_t *c = w->client;
    char err[128];
    arena_reset(c->arena);
    json_value_t *doc = json_parse(w->buf, w->len, c->arena, err, sizeof err);
    const json_value_t *items = doc ? json_get(doc, "items") : NULL;
    if (!items || (items->type != JSON_ARRAY && items->type != JSON_NULL)) {
        s_count_invalid(w, doc ? "list reply without items" : err);
        return -1;
    }
    w->rv[0] = '\0';
    s_note_rv(w, doc);
    c->fn(c->arg, w->kind, K8S_EV_LIST_BEGIN, NULL);
    for (size_t i = 0; items->type == JSON_ARRAY && i < items->n; i++)
        c->fn(c->arg, w->kind, K8S_EV_PUT, items->items[i]);
    c->fn(c->arg, w->kind, K8S_EV_LIST_END, NULL);
    stats_inc(c->m_lists);
    w->synced = true;
    w->need_list = false;
    return 0;
}

static size_t
s_on_bytes(char *data, size_t size, size_t nmemb, void *arg)
{
    s_watch_t *w = arg;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return n;              /* an error body: only the status matters */
    size_t limit = w->state == W_LIST ? K8S_MAX_LIST_BYTES
                                      : K8S_MAX_EVENT_BYTES;
    if (w->len + n + 1 > limit) {
        w->overflow = true;
        return 0;              /* aborts the transfer */
    }
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 65536;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *grown = realloc(w->buf, cap);
        if (!grown) {
            w->overflow = true;
            return 0;
        }
        w->buf = grown;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, data, n);
    w->len += n;
    w->buf[w->len] = '\0';
    if (w->state == W_WATCH) {
        size_t start = 0;
        char *nl;
        while ((nl = memchr(w->buf + start, '\n', w->len - start))) {
            size_t line = (size_t)(nl - (w->buf + start));
            if (line)
                s_watch_line(w, w->buf + start, line);
            start += line + 1;
        }
        memmove(w->buf, w->buf + start, w->len - start);
        w->len -= start;
    }
    return n;
}

/* ------------------------------------------------------------ requests */
static void
s_request_end(s_watch_t *w)
{
    if (w->easy) {
        curl_multi_remove_handle(w->client->multi, w->easy);
        curl_easy_cleanup(w->easy);
        w->easy = NULL;
    }
    curl_slist_free_all(w->headers);
    w->headers = NULL;
    w->len = 0;
    w->overflow = false;
}

static void
s_retry_later(s_watch_t *w, uint64_t now_ms, const char *why)
{
    k8s_client_t *c = w->client;
    stats_inc(c->m_failures);
    if (!w->warned)
        log_warn("kubernetes: %s %s%s: %s; retrying with backoff (host "
                 "processes are still discovered)",
                 w->need_list ? "listing" : "watching", c->server, w->path,
                 why);
    w->warned = true;
    w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : K8S_FIRST_BACKOFF_MS;
    if (w->backoff_ms > c->max_backoff_ms)
        w->backoff_ms = c->max_backoff_ms;
    w->state = W_IDLE;
    w->next_ms = now_ms + w->backoff_ms;
}

static int
s_request_start(s_watch_t *w)
{
    k8s_client_t *c = w->client;
    char url[2048], token[K8S_MAX_TOKEN], auth[K8S_MAX_TOKEN + 32];
    bool list = w->need_list || !w->rv[0];
    const char *sep = strchr(w->path, '?') ? "&" : "?";
    if (list)
        snprintf(url, sizeof url, "%s%s", c->server, w->path);
    else
        snprintf(url, sizeof url, "%s%s%swatch=1&allowWatchBookmarks=true"
                 "&timeoutSeconds=%u&resourceVersion=%s", c->server, w->path,
                 sep, c->watch_timeout_s, w->rv);
    w->need_list = list;
    s_read_token(c->token_file, token, sizeof token);
    if (!(w->easy = curl_easy_init()))
        return -1;
    w->headers = curl_slist_append(NULL, "Accept: application/json");
    if (*token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        struct curl_slist *h = curl_slist_append(w->headers, auth);
        if (h)
            w->headers = h;
    }
    w->errbuf[0] = '\0';
    CURL *e = w->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, w->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_on_bytes);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(e, CURLOPT_PRIVATE, w);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, w->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)K8S_CONNECT_TIMEOUT_MS);
    /* A watch ends server-side after timeoutSeconds; the client deadline
     * only catches a server that went silent. */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     list ? (long)K8S_LIST_TIMEOUT_MS
                          : (long)(c->watch_timeout_s + 30) * 1000L);
    if (*c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    memset(auth, 0, sizeof auth);
    memset(token, 0, sizeof token);
    w->len = 0;
    w->gone = false;
    w->state = list ? W_LIST : W_WATCH;
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
        return -1;
    return 0;
}

/* A request ended (result = curl's code). */
static void
s_request_done(s_watch_t *w, CURLcode result, uint64_t now_ms)
{
    long status = 0;
    curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
    char why[CURL_ERROR_SIZE + 64];
    bool ok = false;
    if (w->overflow) {
        snprintf(why, sizeof why, "reply larger than %u bytes",
                 w->state == W_LIST ? K8S_MAX_LIST_BYTES
                                    : K8S_MAX_EVENT_BYTES);
        w->need_list = true;
    } else if (status == 410 && w->state == W_WATCH) {
        stats_inc(w->client->m_gone);
        w->need_list = true;
        ok = true;             /* expected: relist at once */
    } else if (result != CURLE_OK && status != 200) {
        snprintf(why, sizeof why, "%s", *w->errbuf ? w->errbuf
                                                   : curl_easy_strerror(result));
    } else if (status != 200) {
        snprintf(why, sizeof why, "HTTP %ld%s", status,
                 status == 401 || status == 403
                     ? " (check the token and the ClusterRole: get/list/watch "
                       "pods, services, endpoints)" : "");
    } else if (w->state == W_LIST) {
        ok = result == CURLE_OK && s_list_done(w) == 0;
        snprintf(why, sizeof why, "%s", result == CURLE_OK
                 ? "malformed list reply" : curl_easy_strerror(result));
    } else {
        /* A watch that ended: by the server's timeout (clean), or cut.
         * Either way it resumes from the last resourceVersion; a 410
         * inside the stream relists. */
        if (w->gone) {
            stats_inc(w->client->m_gone);
            w->need_list = true;
        }
        ok = true;
    }
    s_request_end(w);
    if (!ok) {
        s_retry_later(w, now_ms, why);
        return;
    }
    if (w->warned)
        log_info("kubernetes: %s%s answers again", w->client->server, w->path);
    w->warned = false;
    w->backoff_ms = 0;
    w->state = W_IDLE;
    w->next_ms = now_ms;
}

/* ----------------------------------------------------------- lifecycle */
static char *
s_query_escape(const char *s)
{
    return curl_easy_escape(NULL, s, 0);
}

k8s_client_t *
k8s_client_new(const k8s_client_options_t *o, k8s_event_fn fn, void *arg,
               stats_t *stats, char *err, size_t errlen)
{
    k8s_client_t *self = NULL;
    char *node = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return NULL;
    }
    if (!(self = calloc(1, sizeof *self))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (k8s_client_server(o->api_server, self->server,
                          sizeof self->server) != 0) {
        snprintf(err, errlen, "no Kubernetes API server: set "
                 "process_discovery.kubernetes.api_server, or run in a pod "
                 "(KUBERNETES_SERVICE_HOST)");
        goto fail;
    }
    self->token_file = strdup(o->token_file && *o->token_file
                                  ? o->token_file : K8S_SA_DIR "/token");
    self->ca_file = strdup(o->ca_file && *o->ca_file ? o->ca_file
                                                     : K8S_SA_DIR "/ca.crt");
    self->max_backoff_ms = o->max_backoff_ms ? o->max_backoff_ms : 30000;
    self->watch_timeout_s = o->watch_timeout_s ? o->watch_timeout_s : 240;
    self->fn = fn;
    self->arg = arg;
    self->rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 60000);
    node = s_query_escape(o->node_name ? o->node_name : "");
    if (!self->token_file || !self->ca_file || !node ||
        !(self->multi = curl_multi_init()) ||
        !(self->arena = arena_new(K8S_ARENA_LIMIT))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* The CA file is optional only when the server is plain http (tests
     * of other stages) or trusted by the system roots. */
    if (access(self->ca_file, R_OK) != 0) {
        free(self->ca_file);
        self->ca_file = strdup("");
        if (!self->ca_file)
            goto fail;
    }
    char pods[512];
    snprintf(pods, sizeof pods, "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s",
             node);
    const struct { const char *name, *path; } res[K8S_KINDS] = {
        [K8S_POD] = { "pods", pods },
        [K8S_SERVICE] = { "services", "/api/v1/services" },
        [K8S_ENDPOINTS] = { "endpoints", "/api/v1/endpoints" },
    };
    for (int k = 0; k < K8S_KINDS; k++) {
        s_watch_t *w = &self->watches[k];
        w->client = self;
        w->kind = (k8s_kind_t)k;
        w->name = res[k].name;
        w->need_list = true;
        if (!(w->path = strdup(res[k].path))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    self->m_lists = stats_counter(stats, "k8s_lists", NULL,
                                  "Kubernetes resources listed");
    self->m_events = stats_counter(stats, "k8s_watch_events", NULL,
                                   "Kubernetes watch events received");
    self->m_gone = stats_counter(stats, "k8s_relists_gone", NULL,
                                 "relists after 410 Gone");
    self->m_failures = stats_counter(stats, "k8s_failures", NULL,
                                     "Kubernetes API requests that failed");
    self->m_invalid = stats_counter(stats, "k8s_objects_invalid", NULL,
                                    "malformed Kubernetes replies or events");
    self->m_synced = stats_gauge(stats, "k8s_synced", NULL,
                                 "1 once pods, services and endpoints were "
                                 "listed");
    curl_free(node);
    log_info("kubernetes: API server %s, node '%s'", self->server,
             o->node_name ? o->node_name : "");
    return self;
fail:
    curl_free(node);
    k8s_client_destroy(&self);
    if (!self)
        curl_global_cleanup();
    return NULL;
}

void
k8s_client_destroy(k8s_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    k8s_client_t *self = *self_p;
    for (int k = 0; k < K8S_KINDS; k++) {
        s_request_end(&self->watches[k]);
        free(self->watches[k].path);
        free(self->watches[k].buf);
    }
    if (self->multi)
        curl_multi_cleanup(self->multi);
    arena_destroy(&self->arena);
    free(self->token_file);
    free(self->ca_file);
    free(self);
    *self_p = NULL;
    curl_global_cleanup();
}

bool
k8s_client_synced(const k8s_client_t *self)
{
    for (int k = 0; k < K8S_KINDS; k++)
        if (!self->watches[k].synced)
            return false;
    return true;
}

void
k8s_client_poll(k8s_client_t *self, uint64_t now_ms)
{
    for (int k = 0; k < K8S_KINDS; k++) {
        s_watch_t *w = &self->watches[k];
        if (w->state == W_IDLE && now_ms >= w->next_ms &&
            s_request_start(w) != 0) {
            s_request_end(w);
            s_retry_later(w, now_ms, "cannot start a request");
        }
    }
    int running = 0;
    curl_multi_perform(self->multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(self->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        s_watch_t *w = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&w);
        if (w)
            s_request_done(w, msg->data.result, now_ms);
    }
    stats_set(self->m_synced, k8s_client_synced(self) ? 1 : 0);
}
