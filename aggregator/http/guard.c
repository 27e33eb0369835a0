/* Request admission for the aggregator's HTTP API (see guard.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aggregator/http/guard.h"

#define GUARD_HOSTS_MAX 32
#define GUARD_HOST_LEN 256
/* Long enough not to be guessed; the alphabet survives a cookie and a
 * URL fragment unescaped. */
#define GUARD_TOKEN_MIN 16
#define GUARD_TOKEN_MAX 256
#define GUARD_TOKEN_CHARS \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~+/=-"

struct api_guard {
    char hosts[GUARD_HOSTS_MAX][GUARD_HOST_LEN];
    size_t nhosts;
    int any_host;
    char token[GUARD_TOKEN_MAX + 1];
};

/* The host part of "name", "name:port", "[v6]" or "[v6]:port", lower
 * case, without brackets or a trailing dot. 0, or -1 when malformed. */
static int
s_host_of(const char *hostport, char *out, size_t outlen)
{
    size_t n;
    if (hostport[0] == '[') {
        const char *close = strchr(hostport, ']');
        if (!close || (close[1] && close[1] != ':'))
            return -1;
        hostport++;
        n = (size_t)(close - hostport);
    } else {
        const char *colon = strchr(hostport, ':');
        n = colon ? (size_t)(colon - hostport) : strlen(hostport);
        if (colon && strchr(colon + 1, ':'))
            return -1;   /* a bare IPv6 address is not a Host */
    }
    if (n >= outlen)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)hostport[i];
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '@')
            return -1;
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    if (n && out[n - 1] == '.')
        n--;
    out[n] = '\0';
    return 0;
}

static int
s_is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1
           || inet_pton(AF_INET6, host, buf) == 1;
}

static int
s_add_host(api_guard_t *self, const char *name, size_t len, char *err,
           size_t errlen)
{
    char hostport[GUARD_HOST_LEN];
    if (len == 0)
        return 0;
    if (len >= sizeof(hostport) || self->nhosts == GUARD_HOSTS_MAX) {
        snprintf(err, errlen, "allowed host '%.*s' is too long or one too "
                 "many (at most %d)", (int)len, name, GUARD_HOSTS_MAX);
        return -1;
    }
    memcpy(hostport, name, len);
    hostport[len] = '\0';
    if (strcmp(hostport, "*") == 0) {
        self->any_host = 1;
        return 0;
    }
    if (s_host_of(hostport, self->hosts[self->nhosts], GUARD_HOST_LEN)) {
        snprintf(err, errlen, "'%s' is not a host name", hostport);
        return -1;
    }
    if (self->hosts[self->nhosts][0])
        self->nhosts++;
    return 0;
}

/* The host of a "host:port" address (an empty host is any address and
 * names nothing). */
static int
s_add_addr_host(api_guard_t *self, const char *addr, char *err,
                size_t errlen)
{
    if (!addr || !*addr)
        return 0;
    const char *end = addr[0] == '[' ? strchr(addr, ']') : strrchr(addr, ':');
    size_t len = end ? (size_t)(end - addr) + (addr[0] == '[') : strlen(addr);
    return s_add_host(self, addr, len, err, errlen);
}

api_guard_t *
api_guard_new(const char *listen_addr, const char *advertise_addr,
              const char *allowed_hosts, const char *auth_token, char *err,
              size_t errlen)
{
    api_guard_t *self = calloc(1, sizeof(*self));
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (s_add_addr_host(self, listen_addr, err, errlen)
        || s_add_addr_host(self, advertise_addr, err, errlen))
        goto fail;
    for (const char *p = allowed_hosts ? allowed_hosts : ""; *p;) {
        size_t len = strcspn(p, ",");
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        size_t trimmed = len;
        while (trimmed && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
            trimmed--;
        if (s_add_host(self, p, trimmed, err, errlen))
            goto fail;
        p += len;
        if (*p == ',')
            p++;
    }
    if (auth_token && *auth_token) {
        size_t n = strlen(auth_token);
        if (n < GUARD_TOKEN_MIN || n > GUARD_TOKEN_MAX
            || strspn(auth_token, GUARD_TOKEN_CHARS) != n) {
            snprintf(err, errlen, "auth token must be %d to %d characters "
                     "of A-Z a-z 0-9 . _ ~ + / = -", GUARD_TOKEN_MIN,
                     GUARD_TOKEN_MAX);
            goto fail;
        }
        memcpy(self->token, auth_token, n + 1);
    }
    return self;
fail:
    api_guard_destroy(&self);
    return NULL;
}

void
api_guard_destroy(api_guard_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

int
api_guard_has_token(const api_guard_t *self)
{
    return self->token[0] != '\0';
}

static int
s_host_allowed(const api_guard_t *self, const char *host)
{
    if (self->any_host || s_is_ip_literal(host)
        || strcmp(host, "localhost") == 0)
        return 1;
    for (size_t i = 0; i < self->nhosts; i++)
        if (strcmp(self->hosts[i], host) == 0)
            return 1;
    return 0;
}

/* Compares in time independent of where the first difference is. */
static int
s_token_equal(const char *want, const char *got)
{
    size_t wl = strlen(want), gl = strlen(got);
    unsigned char diff = wl != gl;
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)(want[i] ^ (i < gl ? got[i] : 0));
    return diff == 0;
}

static int
s_authorized(const api_guard_t *self, const api_guard_request_t *req)
{
    const char *a = req->authorization;
    if (a && strncasecmp(a, "Bearer ", 7) == 0) {
        a += 7;
        while (*a == ' ')
            a++;
        if (s_token_equal(self->token, a))
            return 1;
    }
    return req->cookie_token && s_token_equal(self->token, req->cookie_token);
}

/* "application/json", any case, parameters (charset) allowed. */
static int
s_is_json(const char *content_type)
{
    if (!content_type)
        return 0;
    while (*content_type == ' ')
        content_type++;
    size_t n = strlen("application/json");
    if (strncasecmp(content_type, "application/json", n) != 0)
        return 0;
    const char *rest = content_type + n;
    while (*rest == ' ')
        rest++;
    return *rest == '\0' || *rest == ';';
}

/* The Origin "scheme://host[:port]" names the same authority as Host. */
static int
s_same_origin(const char *origin, const char *host)
{
    const char *sep = strstr(origin, "://");
    if (!sep)
        return 0;
    return strcasecmp(sep + 3, host) == 0;
}

int
api_guard_check(const api_guard_t *self, const api_guard_request_t *req,
                char *why, size_t whylen)
{
    char host[GUARD_HOST_LEN];
    if (!req->host || s_host_of(req->host, host, sizeof(host)) || !host[0]) {
        snprintf(why, whylen, "missing or malformed Host header");
        return 400;
    }
    if (!s_host_allowed(self, host)) {
        snprintf(why, whylen, "Host '%s' does not name this server (add it "
                 "to aggregator.allowed_hosts)", host);
        return 403;
    }
    if (self->token[0] && !req->open_route && !s_authorized(self, req)) {
        snprintf(why, whylen, "missing or wrong bearer token");
        return 401;
    }
    int safe = strcmp(req->method, "GET") == 0
               || strcmp(req->method, "HEAD") == 0;
    if (safe)
        return 0;
    const char *site = req->sec_fetch_site;
    if ((site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
        || (req->origin && !s_same_origin(req->origin, req->host))) {
        snprintf(why, whylen, "cross-site %s refused (Origin %s)",
                 req->method, req->origin ? req->origin : "absent");
        return 403;
    }
    if (!s_is_json(req->content_type)) {
        snprintf(why, whylen, "%s needs Content-Type: application/json",
                 req->method);
        return 415;
    }
    return 0;
}
