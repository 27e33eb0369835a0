/* skyprof-broker: the bus's meeting point. Binds an XSUB socket that every
 * publisher connects to and an XPUB socket that every subscriber connects
 * to, and forwards messages one way and subscriptions the other. Stages and
 * their replicas therefore only need these two endpoints; a new replica
 * joins by connecting, with no change to any other stage.
 *
 * The XPUB side is lossy: a slow subscriber loses messages at its
 * high-water mark without stalling the others, and the receivers count the
 * gaps through the sequence numbers in every payload.
 *
 * On tcp:// with bus.curve_secret_key_file set, both sockets are CURVE
 * servers and a ZAP handler served from this loop admits only the
 * authorized client keys (bus_curve.h); every socket refuses frames over
 * the bus's size bound. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "stage.h"

typedef struct {
    stage_t *stage;
    void *xsub;
    void *xpub;
    bus_zap_t *zap;
    stats_metric_t *msgs_forwarded;
    stats_metric_t *bytes_forwarded;
    stats_metric_t *subscriptions;
    stats_metric_t *errors;
} broker_main_t;

static const stage_desc_t s_desc = {
    .name = "broker",
    .summary = "skyprof bus broker: forwards every stage's messages to its "
               "subscribers (XSUB/XPUB).",
    .extra_help = "Binds bus.in (publishers connect) and bus.out (subscribers "
                  "connect).",
};

/* Moves one whole multipart message from one socket to the other. */
static int s_forward(broker_main_t *self, void *from, void *to, int count_data)
{
    for (;;) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, from, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            return errno == EAGAIN ? 0 : -1;
        }
        int more = zmq_msg_more(&part);
        size_t size = zmq_msg_size(&part);
        if (zmq_msg_send(&part, to, (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            stats_inc(self->errors);
        }
        if (count_data)
            stats_add(self->bytes_forwarded, size);
        if (!more)
            break;
    }
    if (count_data)
        stats_inc(self->msgs_forwarded);
    else
        stats_inc(self->subscriptions);
    return 1;
}

static int s_on_xsub(loop_t *loop, void *socket, void *arg)
{
    broker_main_t *self = arg;
    /* Bounded batch per wakeup so subscriptions are not starved. */
    for (int i = 0; i < 1024; i++)
        if (s_forward(self, self->xsub, self->xpub, 1) <= 0)
            break;
    return 0;
}

static int s_on_xpub(loop_t *loop, void *socket, void *arg)
{
    broker_main_t *self = arg;
    for (int i = 0; i < 1024; i++)
        if (s_forward(self, self->xpub, self->xsub, 0) <= 0)
            break;
    return 0;
}

static int s_on_zap(loop_t *loop, void *socket, void *arg)
{
    broker_main_t *self = arg;
    (void)loop;
    (void)socket;
    bus_zap_handle(self->zap);  /* failures are logged */
    return 0;
}

static void *s_bind(void *ctx, int type, const char *endpoint, int hwm,
                    const bus_curve_t *curve)
{
    void *sock = zmq_socket(ctx, type);
    int linger = 0;
    if (!sock)
        return NULL;
    if (strchr(endpoint, ',')) {
        log_error("the broker binds one endpoint, not a list: %s", endpoint);
        zmq_close(sock);
        return NULL;
    }
    if (zmq_setsockopt(sock, type == ZMQ_XSUB ? ZMQ_RCVHWM : ZMQ_SNDHWM, &hwm,
                       sizeof hwm) ||
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) ||
        bus_limit_msg_size(sock) ||
        (curve->enabled && bus_curve_applies(endpoint) &&
         bus_curve_server(sock, curve)) ||
        zmq_bind(sock, endpoint) != 0) {
        log_error("cannot bind %s: %s", endpoint, zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

int main(int argc, char **argv)
{
    int rc = 1;
    broker_main_t self = {0};
    self.stage = stage_new(&s_desc, argc, argv, &rc);
    if (!self.stage)
        return rc;
    rc = 1;
    char in[512], out[512];
    stage_endpoints(self.stage->cfg, in, sizeof in, out, sizeof out);
    int hwm = (int)config_int(self.stage->cfg, "bus.hwm");
    const bus_curve_t *curve = self.stage->curve;
    if (curve->enabled && (bus_curve_applies(in) || bus_curve_applies(out))) {
        /* Before the binds: libzmq asks it about every CURVE client. */
        self.zap = bus_zap_new(self.stage->zmq_ctx, curve, self.stage->stats);
        if (!self.zap ||
            loop_add_socket(self.stage->loop, bus_zap_socket(self.zap),
                            s_on_zap, &self) < 0)
            goto cleanup;
        log_info("CURVE on tcp:// endpoints, %zu client key(s) authorized",
                 curve->nclients);
    }
    self.xsub = s_bind(self.stage->zmq_ctx, ZMQ_XSUB, in, hwm, curve);
    self.xpub = s_bind(self.stage->zmq_ctx, ZMQ_XPUB, out, hwm, curve);
    if (!self.xsub || !self.xpub)
        goto cleanup;
    stats_t *st = self.stage->stats;
    self.msgs_forwarded = stats_counter(st, "forwarded_total", "",
                                        "messages forwarded to subscribers");
    self.bytes_forwarded = stats_counter(st, "forwarded_bytes_total", "",
                                         "bytes forwarded");
    self.subscriptions = stats_counter(st, "subscription_changes_total", "",
                                       "subscribe/unsubscribe messages");
    self.errors = stats_counter(st, "errors_total", "", "forwarding errors");
    loop_add_socket(self.stage->loop, self.xsub, s_on_xsub, &self);
    loop_add_socket(self.stage->loop, self.xpub, s_on_xpub, &self);
    log_info("forwarding %s -> %s", in, out);
    rc = loop_run(self.stage->loop) == 0 ? 0 : 1;
    log_info("stopping (signal %d)", loop_stop_signal(self.stage->loop));
cleanup:
    if (self.xsub)
        zmq_close(self.xsub);
    if (self.xpub)
        zmq_close(self.xpub);
    bus_zap_destroy(&self.zap);
    stage_destroy(&self.stage);
    return rc;
}
