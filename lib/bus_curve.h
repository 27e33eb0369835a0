/* ZeroMQ CURVE on the bus's tcp:// endpoints: encryption, and
 * authentication both ways. Brokers are CURVE servers; stages (and the
 * broker's own stage bus) are clients that must know the broker's public
 * key, and the broker admits only client keys it was given (a ZAP handler
 * in the broker's loop). ipc:// endpoints stay plain: their 0700 runtime
 * directory is the access control there.
 *
 * Keys are 40-character Z85 text files (zmq_curve_keypair's format), so
 * a Kubernetes Secret mounted as files can hold them. The simplest layout
 * shares one key pair: every process reads the same secret key file, the
 * broker's public key defaults to the one derived from it, and the broker
 * admits that same public key. */
#ifndef SKYPROF_BUS_CURVE_H
#define SKYPROF_BUS_CURVE_H

#include <stddef.h>

#include "config.h"
#include "stats.h"

#define BUS_CURVE_KEY_LEN 40        /* Z85 text of a 32-byte key */
#define BUS_CURVE_MAX_CLIENTS 256   /* admitted client keys */

typedef struct {
    int enabled;
    char secret[BUS_CURVE_KEY_LEN + 1];  /* this process's */
    char public[BUS_CURVE_KEY_LEN + 1];  /* derived from secret */
    char server[BUS_CURVE_KEY_LEN + 1];  /* the broker's public key */
    /* Broker side: client public keys admitted. */
    char clients[BUS_CURVE_MAX_CLIENTS][BUS_CURVE_KEY_LEN + 1];
    size_t nclients;
} bus_curve_t;

/* Reads bus.curve_secret_key_file, bus.curve_server_key_file and
 * bus.curve_authorized_keys_file. CURVE stays off (enabled 0) when no
 * secret key file is set. 0, or -1 with a reason naming the key in err. */
int bus_curve_load(const config_t *cfg, bus_curve_t *out, char *err,
                   size_t errlen);

/* Whether an endpoint is one CURVE applies to (tcp://). */
int bus_curve_applies(const char *endpoint);

/* Socket options for a client (before zmq_connect) or a server (before
 * zmq_bind). 0 or -1 (logged). */
int bus_curve_client(void *sock, const bus_curve_t *c);
int bus_curve_server(void *sock, const bus_curve_t *c);

/* The ZAP handler that admits clients by public key: a REP socket on
 * inproc://zeromq.zap.01 of ctx, to be bound before any CURVE server
 * socket and served from the owner's loop (bus_zap_handle when
 * readable). Refusals are counted (bus_curve_refused_total). */
typedef struct bus_zap bus_zap_t;
bus_zap_t *bus_zap_new(void *ctx, const bus_curve_t *c, stats_t *stats);
void bus_zap_destroy(bus_zap_t **self_p);
void *bus_zap_socket(bus_zap_t *self);
/* Answers every waiting request. 0 or -1. */
int bus_zap_handle(bus_zap_t *self);

#endif
