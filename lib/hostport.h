/* host:port addresses as every configuration key and peer list writes
 * them: "name:port", "1.2.3.4:port", "[v6]:port", ":port" (no host: the
 * caller's default, usually every interface). A bare IPv6 address needs
 * its brackets, since "::1:80" could be read two ways. The port is decimal
 * 0..65535 (0: let the kernel pick, when listening).
 *
 * One parser for the HTTP listeners (lib/health_http.c, the aggregator's
 * API), the aggregator's peer client, and whoever writes an address back
 * (hostport_format brackets an IPv6 host). Parsing only: resolving is the
 * caller's, who knows whether it listens or connects. */
#ifndef SKYPROF_HOSTPORT_H
#define SKYPROF_HOSTPORT_H

#include <stddef.h>
#include <stdint.h>

#define HOSTPORT_HOST_MAX 256   /* with the NUL; DNS names are <= 253 */

/* What an address may leave out. */
enum {
    HOSTPORT_PORT_OPTIONAL = 1, /* "host" or "[v6]" alone: port 0 */
    HOSTPORT_BARE_PORT = 2      /* all digits: a port alone ("9100") */
};

typedef struct {
    char host[HOSTPORT_HOST_MAX]; /* without brackets; "" when absent */
    uint16_t port;
    int has_port;                 /* 0 only with HOSTPORT_PORT_OPTIONAL */
} hostport_t;

/* Splits s. 0 and *out, or -1 with the reason in err (errlen may be 0).
 * Refused: NULL or empty, an unclosed or unbalanced bracket, anything but
 * ':' after ']', an unbracketed host holding ':', a port that is missing,
 * empty, not decimal or above 65535, a host that is too long or holds
 * whitespace, control characters, '/' or '@'. */
int hostport_parse(const char *s, unsigned flags, hostport_t *out,
                   char *err, size_t errlen);

/* Writes "host:port", "[host]:port" when host holds ':' (IPv6), into out.
 * port NULL: the host alone (bracketed the same way). 0, or -1 when out
 * is too small (then out holds "" ). */
int hostport_format(const char *host, const char *port, char *out,
                    size_t size);

#endif
