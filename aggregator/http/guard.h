/* Who may talk to the aggregator's HTTP API: the checks every request
 * passes before its route runs, kept apart from libmicrohttpd so they can
 * be reasoned about (and tested) on plain header values.
 *
 *   - Host must name this server: an IP literal, "localhost", the host of
 *     the listen or advertised address, or an entry of
 *     aggregator.allowed_hosts. A DNS name an attacker controls and points
 *     at us (DNS rebinding) is refused.
 *   - With aggregator.auth_token set, every route but the page shell (/)
 *     and /healthz needs "Authorization: Bearer TOKEN" or the cookie
 *     skyprof_token=TOKEN (what the page sets from its #token= fragment,
 *     SameSite=Strict).
 *   - A request that is not GET or HEAD (POST /api/tasks, ProfileTracing)
 *     needs Content-Type: application/json, and an Origin, when sent, of
 *     this very Host; Sec-Fetch-Site other than same-origin or none is
 *     refused. Browsers cannot send such a request cross-site without a
 *     CORS preflight, which this server never grants. */
#ifndef SKYPROF_AGG_API_GUARD_H
#define SKYPROF_AGG_API_GUARD_H

#include <stddef.h>

#define API_GUARD_COOKIE "skyprof_token"

typedef struct api_guard api_guard_t;

/* listen_addr and advertise_addr ("host:port", either may be NULL or
 * ""), allowed_hosts (comma-separated names, "*" = any Host) and
 * auth_token ("" or NULL = none). NULL with a reason in err. */
api_guard_t *api_guard_new(const char *listen_addr, const char *advertise_addr,
                           const char *allowed_hosts, const char *auth_token,
                           char *err, size_t errlen);
void api_guard_destroy(api_guard_t **self_p);

/* The headers a verdict depends on (NULL when absent). */
typedef struct {
    const char *method;
    const char *host;
    const char *origin;
    const char *sec_fetch_site;
    const char *content_type;
    const char *authorization;
    const char *cookie_token;  /* value of the skyprof_token cookie */
    int open_route;            /* "/" or /healthz: no token needed */
} api_guard_request_t;

/* 0 when the request may proceed, else the HTTP status to refuse it with
 * (400, 401, 403 or 415) and a reason in why. */
int api_guard_check(const api_guard_t *self, const api_guard_request_t *req,
                    char *why, size_t whylen);

/* Whether a token is configured (the refusal then asks for Bearer). */
int api_guard_has_token(const api_guard_t *self);

#endif
