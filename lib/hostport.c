/* host:port splitting: see hostport.h. */
#include "hostport.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 4)))
static int s_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* 0..65535 in decimal, nothing else (no sign, no spaces, no hex). */
static int s_port(const char *s, uint16_t *out)
{
    unsigned long v = 0;
    size_t n = 0;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        v = v * 10 + (unsigned long)(s[n] - '0');
        if (v > 65535)
            return -1;
    }
    if (n == 0 || s[n] != '\0')
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static int s_all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

int hostport_parse(const char *s, unsigned flags, hostport_t *out,
                   char *err, size_t errlen)
{
    int rc = -1;
    const char *host, *rest;
    size_t hlen;
    memset(out, 0, sizeof *out);
    if (!s || !*s) {
        s_fail(err, errlen, "empty address");
        goto cleanup;
    }
    if ((flags & HOSTPORT_BARE_PORT) && s_all_digits(s)) {
        if (s_port(s, &out->port)) {
            s_fail(err, errlen, "port '%s' is not in 0..65535", s);
            goto cleanup;
        }
        out->has_port = 1;
        rc = 0;
        goto cleanup;
    }
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close) {
            s_fail(err, errlen, "'%s': '[' without ']'", s);
            goto cleanup;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        rest = close + 1;
        if (hlen == 0) {
            s_fail(err, errlen, "'%s': empty brackets", s);
            goto cleanup;
        }
        if (*rest && *rest != ':') {
            s_fail(err, errlen, "'%s': want ':port' after ']'", s);
            goto cleanup;
        }
    } else {
        host = s;
        rest = strchr(s, ':');
        hlen = rest ? (size_t)(rest - s) : strlen(s);
        if (!rest)
            rest = s + hlen;
        if (strchr(*rest ? rest + 1 : rest, ':')) {
            s_fail(err, errlen, "'%s': an IPv6 address needs brackets "
                   "([addr]:port)", s);
            goto cleanup;
        }
    }
    if (hlen >= sizeof out->host) {
        s_fail(err, errlen, "host longer than %d bytes in '%s'",
               HOSTPORT_HOST_MAX - 1, s);
        goto cleanup;
    }
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= 0x20 || c == 0x7f || c == '/' || c == '@' || c == '[' ||
            c == ']') {
            s_fail(err, errlen, "'%s': bad character in host", s);
            goto cleanup;
        }
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    if (*rest == '\0') {
        if (!(flags & HOSTPORT_PORT_OPTIONAL)) {
            s_fail(err, errlen, "'%s' has no port (want host:port)", s);
            goto cleanup;
        }
        rc = 0;
        goto cleanup;
    }
    if (s_port(rest + 1, &out->port)) {
        s_fail(err, errlen, "'%s': port '%s' is not in 0..65535", s, rest + 1);
        goto cleanup;
    }
    out->has_port = 1;
    rc = 0;
cleanup:
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

int hostport_format(const char *host, const char *port, char *out,
                    size_t size)
{
    int v6 = strchr(host, ':') != NULL;
    int n = snprintf(out, size, "%s%s%s%s%s", v6 ? "[" : "", host,
                     v6 ? "]" : "", port ? ":" : "", port ? port : "");
    if (n < 0 || (size_t)n >= size) {
        if (size)
            out[0] = '\0';
        return -1;
    }
    return 0;
}
