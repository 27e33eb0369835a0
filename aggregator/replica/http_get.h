/* A minimal HTTP/1.0 GET over a plain socket, for asking peer replicas for
 * their part of a query: one deadline covers connect, send and receive,
 * and the reply is bounded in size. Name resolution (getaddrinfo) is not
 * covered by the deadline; peers advertise names their network resolves
 * locally (compose service DNS, pod IPs). */
#ifndef SKYPROF_AGG_HTTP_GET_H
#define SKYPROF_AGG_HTTP_GET_H

#include <stddef.h>
#include <stdint.h>

#define AGG_HTTP_MAX_HEADER 16384u

/* addr "host:port" or "[v6]:port"; path starts with '/'; bearer, when
 * not NULL or "", is sent as "Authorization: Bearer ...". 0 with *status
 * and *body (malloc'ed, NUL-terminated, *len bytes), or -1 with a reason
 * in err (nothing allocated). A body over max_body fails. */
int agg_http_get(const char *addr, const char *path, const char *bearer,
                 uint64_t timeout_ms, size_t max_body, int *status,
                 char **body, size_t *len, char *err, size_t errlen);

#endif
