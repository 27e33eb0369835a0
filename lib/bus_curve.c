/* CURVE keys and the ZAP handler for the bus (see bus_curve.h). */
#include "bus_curve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES 7          /* a CURVE request (RFC 27) */
#define ZAP_FRAME_MAX 256
#define KEY_FILE_MAX 65536    /* an authorized-keys file */

struct bus_zap {
    void *rep;
    const bus_curve_t *curve;
    stats_metric_t *refused, *admitted;
    log_ratelimit_t rl;
};

/* The whole of a small text file, NUL-terminated (malloc'ed), or NULL
 * with a reason. */
static char *s_read_small(const char *key, const char *path, char *err,
                          size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    if (!f) {
        snprintf(err, errlen, "%s: cannot open '%s': %s", key, path,
                 strerror(errno));
        return NULL;
    }
    buf = malloc(KEY_FILE_MAX + 1);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", key);
        goto cleanup;
    }
    size_t n = fread(buf, 1, KEY_FILE_MAX + 1, f);
    if (ferror(f) || n > KEY_FILE_MAX) {
        snprintf(err, errlen, "%s: '%s' unreadable or over %d bytes", key,
                 path, KEY_FILE_MAX);
        free(buf);
        buf = NULL;
        goto cleanup;
    }
    buf[n] = '\0';
cleanup:
    fclose(f);
    return buf;
}

/* One Z85 key from text (surrounding white space ignored) into out. */
static int s_parse_key(const char *text, size_t len, char *out)
{
    uint8_t raw[32];
    while (len && strchr(" \t\r\n", *text)) {
        text++;
        len--;
    }
    while (len && strchr(" \t\r\n", text[len - 1]))
        len--;
    if (len != BUS_CURVE_KEY_LEN)
        return -1;
    memcpy(out, text, len);
    out[len] = '\0';
    return zmq_z85_decode(raw, out) ? 0 : -1;
}

static int s_load_key(const config_t *cfg, const char *key, char *out,
                      char *err, size_t errlen)
{
    const char *path = config_str(cfg, key);
    char *text = s_read_small(key, path, err, errlen);
    if (!text)
        return -1;
    int rc = s_parse_key(text, strlen(text), out);
    if (rc)
        snprintf(err, errlen, "%s: '%s' does not hold a %d-character Z85 "
                 "CURVE key", key, path, BUS_CURVE_KEY_LEN);
    free(text);
    return rc;
}

/* Client keys, one per line; '#' starts a comment. */
static int s_load_clients(const config_t *cfg, bus_curve_t *c, char *err,
                          size_t errlen)
{
    const char *key = "bus.curve_authorized_keys_file";
    const char *path = config_str(cfg, key);
    char *text = s_read_small(key, path, err, errlen);
    int rc = -1, line = 0;
    if (!text)
        return -1;
    for (char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        char *hash = memchr(p, '#', len);
        size_t used = hash ? (size_t)(hash - p) : len;
        line++;
        if (strspn(p, " \t\r") < used) {
            if (c->nclients == BUS_CURVE_MAX_CLIENTS) {
                snprintf(err, errlen, "%s: '%s' has over %d keys", key, path,
                         BUS_CURVE_MAX_CLIENTS);
                goto cleanup;
            }
            if (s_parse_key(p, used, c->clients[c->nclients])) {
                snprintf(err, errlen, "%s: '%s' line %d is not a Z85 CURVE "
                         "public key", key, path, line);
                goto cleanup;
            }
            c->nclients++;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    rc = 0;
cleanup:
    free(text);
    return rc;
}

int bus_curve_load(const config_t *cfg, bus_curve_t *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!config_str(cfg, "bus.curve_secret_key_file")[0])
        return 0;
    if (!zmq_has("curve")) {
        snprintf(err, errlen, "bus.curve_secret_key_file is set but this "
                 "libzmq has no CURVE support");
        return -1;
    }
    if (s_load_key(cfg, "bus.curve_secret_key_file", out->secret, err,
                   errlen))
        return -1;
    if (zmq_curve_public(out->public, out->secret) != 0) {
        snprintf(err, errlen, "bus.curve_secret_key_file: cannot derive the "
                 "public key: %s", zmq_strerror(errno));
        return -1;
    }
    if (config_str(cfg, "bus.curve_server_key_file")[0]) {
        if (s_load_key(cfg, "bus.curve_server_key_file", out->server, err,
                       errlen))
            return -1;
    } else {
        memcpy(out->server, out->public, sizeof out->server);
    }
    if (config_str(cfg, "bus.curve_authorized_keys_file")[0]) {
        if (s_load_clients(cfg, out, err, errlen))
            return -1;
    } else {
        memcpy(out->clients[0], out->public, sizeof out->clients[0]);
        out->nclients = 1;
    }
    out->enabled = 1;
    return 0;
}

int bus_curve_applies(const char *endpoint)
{
    return strncmp(endpoint, "tcp://", 6) == 0;
}

static int s_setopt(void *sock, int opt, const void *value, size_t len,
                    const char *name)
{
    if (zmq_setsockopt(sock, opt, value, len) != 0) {
        log_error("bus: setsockopt %s: %s", name, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

int bus_curve_client(void *sock, const bus_curve_t *c)
{
    return s_setopt(sock, ZMQ_CURVE_SERVERKEY, c->server, BUS_CURVE_KEY_LEN,
                    "CURVE_SERVERKEY") ||
           s_setopt(sock, ZMQ_CURVE_PUBLICKEY, c->public, BUS_CURVE_KEY_LEN,
                    "CURVE_PUBLICKEY") ||
           s_setopt(sock, ZMQ_CURVE_SECRETKEY, c->secret, BUS_CURVE_KEY_LEN,
                    "CURVE_SECRETKEY")
               ? -1
               : 0;
}

int bus_curve_server(void *sock, const bus_curve_t *c)
{
    int one = 1;
    /* A ZAP domain makes libzmq ask the handler about every client. */
    return s_setopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one,
                    "CURVE_SERVER") ||
           s_setopt(sock, ZMQ_CURVE_SECRETKEY, c->secret, BUS_CURVE_KEY_LEN,
                    "CURVE_SECRETKEY") ||
           s_setopt(sock, ZMQ_ZAP_DOMAIN, "skyprof", 7, "ZAP_DOMAIN")
               ? -1
               : 0;
}

bus_zap_t *bus_zap_new(void *ctx, const bus_curve_t *c, stats_t *stats)
{
    bus_zap_t *self = calloc(1, sizeof *self);
    int linger = 0;
    if (!self)
        return NULL;
    self->curve = c;
    self->rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 60000);
    self->refused = stats_counter(stats, "bus_curve_refused_total", "",
                                  "bus clients refused: unknown CURVE key");
    self->admitted = stats_counter(stats, "bus_curve_admitted_total", "",
                                   "bus clients admitted by CURVE key");
    self->rep = zmq_socket(ctx, ZMQ_REP);
    if (!self->rep ||
        s_setopt(self->rep, ZMQ_LINGER, &linger, sizeof linger, "LINGER") ||
        zmq_bind(self->rep, ZAP_ENDPOINT) != 0) {
        log_error("bus: ZAP handler on %s: %s", ZAP_ENDPOINT,
                  zmq_strerror(errno));
        bus_zap_destroy(&self);
    }
    return self;
}

void bus_zap_destroy(bus_zap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->rep)
        zmq_close((*self_p)->rep);
    free(*self_p);
    *self_p = NULL;
}

void *bus_zap_socket(bus_zap_t *self) { return self->rep; }

static int s_admitted(const bus_zap_t *self, const char *mechanism,
                      const uint8_t *key, size_t key_len)
{
    char z85[BUS_CURVE_KEY_LEN + 1];
    if (strcmp(mechanism, "CURVE") != 0 || key_len != 32 ||
        !zmq_z85_encode(z85, key, 32))
        return 0;
    for (size_t i = 0; i < self->curve->nclients; i++)
        if (strcmp(self->curve->clients[i], z85) == 0)
            return 1;
    return 0;
}

/* Reads one request's frames (at most ZAP_FRAMES kept, each bounded);
 * returns how many, 0 when none waits, -1 on error. */
static int s_recv_request(void *rep, char frames[ZAP_FRAMES][ZAP_FRAME_MAX],
                          size_t *lens)
{
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, rep, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            return n == 0 && errno == EAGAIN ? 0 : -1;
        }
        more = zmq_msg_more(&m);
        if (n < ZAP_FRAMES) {
            size_t len = zmq_msg_size(&m);
            lens[n] = len < ZAP_FRAME_MAX - 1 ? len : ZAP_FRAME_MAX - 1;
            memcpy(frames[n], zmq_msg_data(&m), lens[n]);
            frames[n][lens[n]] = '\0';
        }
        n++;
        zmq_msg_close(&m);
    }
    return n;
}

int bus_zap_handle(bus_zap_t *self)
{
    char frames[ZAP_FRAMES][ZAP_FRAME_MAX];
    size_t lens[ZAP_FRAMES];
    for (;;) {
        int n = s_recv_request(self->rep, frames, lens);
        if (n <= 0)
            return n;
        /* version, request id, domain, address, identity, mechanism,
         * credentials (the client's public key) */
        int ok = n == ZAP_FRAMES &&
                 s_admitted(self, frames[5], (const uint8_t *)frames[6],
                            lens[6]);
        if (ok) {
            stats_inc(self->admitted);
        } else {
            stats_inc(self->refused);
            log_warn_rl(&self->rl, "bus: refused a %s client from %s: key "
                        "not authorized", n > 5 ? frames[5] : "?",
                        n > 3 ? frames[3] : "?");
        }
        const char *status = ok ? "200" : "400";
        const char *text = ok ? "OK" : "key not authorized";
        if (zmq_send(self->rep, "1.0", 3, ZMQ_SNDMORE) < 0 ||
            zmq_send(self->rep, frames[1], n > 1 ? lens[1] : 0,
                     ZMQ_SNDMORE) < 0 ||
            zmq_send(self->rep, status, 3, ZMQ_SNDMORE) < 0 ||
            zmq_send(self->rep, text, strlen(text), ZMQ_SNDMORE) < 0 ||
            zmq_send(self->rep, "", 0, ZMQ_SNDMORE) < 0 ||
            zmq_send(self->rep, "", 0, 0) < 0) {
            log_error("bus: ZAP reply: %s", zmq_strerror(errno));
            return -1;
        }
    }
}
