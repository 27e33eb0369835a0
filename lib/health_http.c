#include "health_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define HEALTH_STALE_MS 30000

struct health_http {
    struct MHD_Daemon *daemon;
    stats_t *stats;
    uint64_t last_beat_ms;
};

int health_http_parse_addr(const char *addr, struct sockaddr_in *out)
{
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    char host[64] = "";
    const char *colon = strrchr(addr, ':');
    const char *port_s = colon ? colon + 1 : addr;
    if (colon) {
        size_t hl = (size_t)(colon - addr);
        if (hl >= sizeof host)
            return -1;
        memcpy(host, addr, hl);
        host[hl] = '\0';
    }
    char *end;
    long port = strtol(port_s, &end, 10);
    if (*port_s == '\0' || *end || port < 0 || port > 65535)
        return -1;
    out->sin_port = htons((uint16_t)port);
    if (!host[0] || strcmp(host, "*") == 0)
        out->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
        out->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
        return -1;
    return 0;
}

static enum MHD_Result s_reply(struct MHD_Connection *conn, unsigned status,
                               const char *type, char *body, size_t len,
                               enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, mode);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result s_handler(void *cls, struct MHD_Connection *conn,
                                 const char *url, const char *method,
                                 const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    health_http_t *self = cls;
    if (strcmp(method, "GET") != 0)
        return s_reply(conn, 405, "text/plain", "method not allowed\n", 19,
                       MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/metrics") == 0) {
        size_t len = 0;
        char *text = stats_render(self->stats, &len);
        if (!text)
            return s_reply(conn, 500, "text/plain", "out of memory\n", 14,
                           MHD_RESPMEM_PERSISTENT);
        return s_reply(conn, 200, "text/plain; version=0.0.4", text, len,
                       MHD_RESPMEM_MUST_FREE);
    }
    if (strcmp(url, "/healthz") == 0) {
        uint64_t beat = __atomic_load_n(&self->last_beat_ms, __ATOMIC_RELAXED);
        if (now_mono_ms() - beat > HEALTH_STALE_MS)
            return s_reply(conn, 503, "text/plain", "stage loop stalled\n", 19,
                           MHD_RESPMEM_PERSISTENT);
        return s_reply(conn, 200, "text/plain", "ok\n", 3,
                       MHD_RESPMEM_PERSISTENT);
    }
    return s_reply(conn, 404, "text/plain", "not found\n", 10,
                   MHD_RESPMEM_PERSISTENT);
}

health_http_t *health_http_new(const char *addr, stats_t *stats)
{
    struct sockaddr_in sa;
    if (health_http_parse_addr(addr, &sa) != 0) {
        log_error("http: bad listen address '%s' (want host:port)", addr);
        return NULL;
    }
    health_http_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->stats = stats;
    self->last_beat_ms = now_mono_ms();
    self->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        s_handler, self, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
        MHD_OPTION_END);
    if (!self->daemon) {
        log_error("http: cannot listen on %s", addr);
        free(self);
        return NULL;
    }
    log_info("http: /metrics and /healthz on %s", addr);
    return self;
}

void health_http_destroy(health_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->daemon)
        MHD_stop_daemon((*self_p)->daemon);
    free(*self_p);
    *self_p = NULL;
}

void health_http_beat(health_http_t *self)
{
    if (self)
        __atomic_store_n(&self->last_beat_ms, now_mono_ms(), __ATOMIC_RELAXED);
}
