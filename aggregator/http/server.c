/* The HTTP server of the aggregator API (see api.h): libmicrohttpd,
 * admission (guard.h), bounded bodies, and dispatch through the route
 * table (routes.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "aggregator/http/guard.h"
#include "aggregator/http/request.h"
#include "aggregator/http/routes.h"
#include "aggregator/replica/replica.h"
#include "hostport.h"
#include "log.h"

/* A query that fans out holds its thread while peers answer; peers'
 * internal requests need free threads of their own. */
#define API_THREADS 4

struct agg_api {
    agg_t *agg;
    struct MHD_Daemon *daemon;
    uint16_t port;
    agg_fanout_t *fanout;
    net_t *net;
    api_guard_t *guard;
    /* http_requests{path=...}: one per path of the route table, at the
     * index of the path's first row, then "other" at api_nroutes. */
    stats_metric_t **m_requests;
    stats_metric_t *m_errors, *m_refused;
};

/* One connection's request while its body arrives. */
typedef struct {
    api_request_t req;
    char *body;
    int too_large;
} conn_t;

void
agg_api_set_fanout(agg_api_t *self, agg_fanout_t *fanout)
{
    self->fanout = fanout;
}

void
agg_api_set_net(agg_api_t *self, net_t *net)
{
    self->net = net;
}

/* --------------------------------------------------------------- routes */
/* The first row of the table with url's path, or -1. */
static int
s_path_row(const char *url)
{
    if (strcmp(url, "/index.html") == 0)
        url = "/";
    for (size_t i = 0; i < api_nroutes; i++)
        if (strcmp(url, api_routes[i].path) == 0)
            return (int)i;
    return -1;
}

/* A path is served without the token when a row says so. */
static int
s_open(int first)
{
    for (size_t i = (size_t)first; first >= 0 && i < api_nroutes; i++)
        if (strcmp(api_routes[i].path, api_routes[first].path) == 0
            && api_routes[i].open)
            return 1;
    return 0;
}

/* The row of the path at first that takes method (HEAD as GET), NULL
 * after a 405 naming the methods it takes. */
static const api_route_t *
s_method_row(int first, const char *method, api_reply_t *r)
{
    const char *path = api_routes[first].path;
    char methods[64] = "";
    int post_only = 1;
    for (size_t i = (size_t)first; i < api_nroutes; i++) {
        const api_route_t *rt = &api_routes[i];
        if (strcmp(rt->path, path) != 0)
            continue;
        if (strcmp(rt->method, method) == 0
            || (strcmp(rt->method, "GET") == 0
                && strcmp(method, "HEAD") == 0))
            return rt;
        size_t used = strlen(methods);
        snprintf(methods + used, sizeof(methods) - used, "%s%s",
                 used ? " or " : "", rt->method);
        post_only = post_only && strcmp(rt->method, "POST") == 0;
    }
    api_reply_error(r, 405, "use %s%s", methods,
                    post_only ? " with a JSON body" : "");
    return NULL;
}

static void
s_dispatch(agg_api_t *self, int first, const char *method, conn_t *c,
           api_reply_t *r)
{
    if (c->too_large) {
        api_reply_error(r, 413, "request body over %u bytes",
                        AGG_API_MAX_BODY);
        return;
    }
    if (first < 0) {
        api_reply_error(r, 404, "no such endpoint");
        return;
    }
    const api_route_t *rt = s_method_row(first, method, r);
    if (!rt)
        return;
    const char *local = api_arg(&c->req, "local");
    int fan_out = rt->fans_out && !(local && strcmp(local, "1") == 0);
    c->req.fanout = fan_out ? self->fanout : NULL;
    c->req.body = c->body;
    rt->handler(&c->req, r);
}

/* Queues r (its body is handed over) with the common headers. */
static enum MHD_Result
s_send(agg_api_t *self, struct MHD_Connection *conn, api_reply_t *r)
{
    if (!r->body)
        api_reply_error(r, 500, "out of memory");
    if (r->status >= 400)
        stats_inc(self->m_errors);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->body ? r->len : 0, r->body ? r->body : (void *)"",
        r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", r->content_type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate",
                                "Bearer realm=\"skyprof\"");
    if (r->disposition)
        MHD_add_response_header(resp, "Content-Disposition", r->disposition);
    if (r->partial[0]) {
        /* Header values end at a line break: keep them out. */
        for (char *c = r->partial; *c; c++)
            if (*c == '\r' || *c == '\n')
                *c = ' ';
        MHD_add_response_header(resp, "X-Skyprof-Partial", r->partial);
    }
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static const char *
s_header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* Runs when the request head is complete, before any body is read: a
 * refused request (guard.h), or one announcing a body over the
 * limit, is answered at once and its body never read. 0 when the
 * request may go on, else -1 with the refusal in r. */
static int
s_admit(agg_api_t *self, struct MHD_Connection *conn, const char *url,
        const char *method, api_reply_t *r)
{
    api_guard_request_t g = {
        .method = method,
        .host = s_header(conn, MHD_HTTP_HEADER_HOST),
        .origin = s_header(conn, "Origin"),
        .sec_fetch_site = s_header(conn, "Sec-Fetch-Site"),
        .content_type = s_header(conn, MHD_HTTP_HEADER_CONTENT_TYPE),
        .authorization = s_header(conn, MHD_HTTP_HEADER_AUTHORIZATION),
        .cookie_token = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND,
                                                    API_GUARD_COOKIE),
        .open_route = s_open(s_path_row(url)),
    };
    char why[384];
    int status = api_guard_check(self->guard, &g, why, sizeof(why));
    if (status) {
        stats_inc(self->m_refused);
        api_reply_error(r, status, "%s", why);
        return -1;
    }
    const char *cl = s_header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t announced;
    if (cl && api_parse_u64(cl, &announced) == 0
        && announced > AGG_API_MAX_BODY) {
        api_reply_error(r, 413, "request body over %u bytes",
                        AGG_API_MAX_BODY);
        return -1;
    }
    return 0;
}

static enum MHD_Result
s_handler(void *cls, struct MHD_Connection *conn, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **con_cls)
{
    agg_api_t *self = cls;
    conn_t *c = *con_cls;
    (void)version;

    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return MHD_NO;
        c->req.conn = conn;
        c->req.agg = self->agg;
        c->req.net = self->net;
        *con_cls = c;
        api_reply_t r = { 500, "text/plain", NULL, NULL, 0, "" };
        if (s_admit(self, conn, url, method, &r))
            return s_send(self, conn, &r);
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* Bodies are bounded: past the limit the rest is discarded and
         * the request answered with 413 once complete. */
        if (!c->too_large) {
            if (c->req.len + *upload_data_size > AGG_API_MAX_BODY) {
                c->too_large = 1;
                free(c->body);
                c->body = NULL;
                c->req.len = 0;
            } else {
                char *grown = realloc(c->body,
                                      c->req.len + *upload_data_size + 1);
                if (!grown)
                    return MHD_NO;
                memcpy(grown + c->req.len, upload_data, *upload_data_size);
                c->req.len += *upload_data_size;
                grown[c->req.len] = '\0';
                c->body = grown;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    int first = s_path_row(url);
    stats_inc(self->m_requests[first < 0 ? api_nroutes : (size_t)first]);
    api_reply_t r = { 500, "text/plain", NULL, NULL, 0, "" };
    s_dispatch(self, first, method, c, &r);
    return s_send(self, conn, &r);
}

static void
s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
            enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    conn_t *c = *con_cls;
    if (c) {
        free(c->body);
        free(c);
        *con_cls = NULL;
    }
}

/* Splits "host:port" / "[v6]:port" / ":port" (lib/hostport.h) and
 * resolves it; no host listens on every address. */
static int
s_resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen,
          char *err, size_t errlen)
{
    char port[8];
    hostport_t hp;
    if (hostport_parse(addr, 0, &hp, err, errlen))
        return -1;
    snprintf(port, sizeof(port), "%u", hp.port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(hp.host[0] ? hp.host : NULL, port, &hints, &res);
    if (rc || !res) {
        snprintf(err, errlen, "cannot resolve '%s': %s", addr,
                 gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

agg_api_t *
agg_api_new(agg_t *agg, const agg_api_options_t *opts, char *err,
            size_t errlen)
{
    const char *addr = opts->addr;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    agg_api_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->agg = agg;
    self->m_requests = calloc(api_nroutes + 1, sizeof(*self->m_requests));
    if (!self->m_requests) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i <= api_nroutes; i++) {
        const char *path = i < api_nroutes ? api_routes[i].path : "other";
        char labels[96];
        if (i < api_nroutes && s_path_row(path) != (int)i)
            continue;       /* counted with the path's first row */
        snprintf(labels, sizeof(labels), "path=\"%s\"", path);
        self->m_requests[i] = stats_counter(agg_stats(agg), "http_requests",
                                            labels, "HTTP requests by path");
    }
    self->m_errors = stats_counter(agg_stats(agg), "http_errors", NULL,
                                   "HTTP requests answered with 4xx/5xx");
    self->m_refused = stats_counter(agg_stats(agg), "http_refused", NULL,
                                    "HTTP requests refused for their Host, "
                                    "token, Origin or Content-Type");
    if (s_resolve(addr, &ss, &sslen, err, errlen))
        goto fail;
    self->guard = api_guard_new(addr, opts->advertise_addr,
                                opts->allowed_hosts, opts->auth_token, err,
                                errlen);
    if (!self->guard)
        goto fail;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, s_handler, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)API_THREADS,
        MHD_OPTION_CONNECTION_LIMIT, AGG_API_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, AGG_API_CONNECTIONS_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, AGG_API_IDLE_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)AGG_API_MAX_HEAD,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_END);
    if (!self->daemon) {
        snprintf(err, errlen, "cannot listen on %s (address in use or not "
                 "permitted?)", addr);
        goto fail;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : 0;
    return self;
fail:
    agg_api_destroy(&self);
    return NULL;
}

void
agg_api_destroy(agg_api_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->daemon)
        MHD_stop_daemon((*self_p)->daemon);
    api_guard_destroy(&(*self_p)->guard);
    free((*self_p)->m_requests);
    free(*self_p);
    *self_p = NULL;
}

uint16_t
agg_api_port(const agg_api_t *self)
{
    return self->port;
}
