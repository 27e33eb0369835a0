#include "bus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "arena.h"
#include "log.h"
#include "hash.h"
#include "wire.h"

#define BUS_TOPIC_MAX 64
#define BUS_CLASSES_MAX 32
#define BUS_PUB_SEQ_SLOTS 1024
#define BUS_RECV_SEQ_SLOTS 4096
#define BUS_LINGER_MS 200

typedef struct {
    char cls[BUS_TOPIC_MAX];
    stats_metric_t *sent, *dropped, *received, *invalid, *lost, *bytes_out;
} bus_class_t;

/* Fixed-size open-addressing table from a string key to a sequence
 * number; when full it is cleared, which only costs one missed gap. */
typedef struct {
    char key[128];
    uint64_t seq;
    int used;
} seq_slot_t;

typedef struct {
    seq_slot_t *slots;
    size_t cap, n;
} seq_table_t;

/* A stage's handlers for one message type. */
typedef struct {
    bus_handler_fn fn;
    void *arg;
    bus_invalid_fn invalid_fn;
    void *invalid_arg;
} bus_route_t;

struct bus {
    void *pub;
    void *sub;
    stats_t *stats;
    char sender[64];
    bus_class_t classes[BUS_CLASSES_MAX];
    size_t nclasses;
    seq_table_t pub_seq;
    seq_table_t recv_seq;
    zmq_msg_t topic_msg, payload_msg;
    int have_msgs;
    char topic[BUS_TOPIC_MAX];
    log_ratelimit_t rl;
    /* ZeroMQ does not expose queue lengths: count how many messages were
     * waiting each time a handler drains the socket to empty. */
    uint64_t drained;
    stats_metric_t *backlog, *backlog_max;
    /* Typed edges: the handler of each message type, the arena received
     * messages are decoded into (reset for each; bounded by its default
     * limit) and the buffer sent ones are encoded into. */
    bus_route_t routes[MSG_COUNT];
    arena_t *arena;
    wire_buf_t out;
};

static int s_seq_init(seq_table_t *t, size_t cap)
{
    t->slots = calloc(cap, sizeof *t->slots);
    t->cap = cap;
    t->n = 0;
    return t->slots ? 0 : -1;
}

static uint64_t *s_seq_slot(seq_table_t *t, const char *key)
{
    if (t->n >= t->cap * 3 / 4) {
        memset(t->slots, 0, t->cap * sizeof *t->slots);
        t->n = 0;
    }
    size_t i = hash_fnv1a(key, 0) % t->cap;
    for (;;) {
        seq_slot_t *s = &t->slots[i];
        if (!s->used) {
            snprintf(s->key, sizeof s->key, "%s", key);
            s->used = 1;
            s->seq = 0;
            t->n++;
            return &s->seq;
        }
        if (strncmp(s->key, key, sizeof s->key - 1) == 0)
            return &s->seq;
        i = (i + 1) % t->cap;
    }
}

/* "raw.stacks.07" -> "raw.stacks"; "stats.collector" -> "stats". */
static void s_topic_class(const char *topic, char *out, size_t size)
{
    snprintf(out, size, "%s", topic);
    char *dot = strrchr(out, '.');
    if (!dot)
        return;
    const char *tail = dot + 1;
    int digits = *tail != '\0';
    for (const char *p = tail; *p; p++)
        if (*p < '0' || *p > '9')
            digits = 0;
    if (digits || strncmp(out, "stats.", 6) == 0 ||
        strncmp(out, "ctl.hello.", 10) == 0)
        *dot = '\0';
}

static bus_class_t *s_class(bus_t *self, const char *topic)
{
    char cls[BUS_TOPIC_MAX];
    s_topic_class(topic, cls, sizeof cls);
    for (size_t i = 0; i < self->nclasses; i++)
        if (strcmp(self->classes[i].cls, cls) == 0)
            return &self->classes[i];
    /* Unknown topics beyond the table share the last slot. */
    if (self->nclasses == BUS_CLASSES_MAX)
        return &self->classes[BUS_CLASSES_MAX - 1];
    bus_class_t *c = &self->classes[self->nclasses++];
    snprintf(c->cls, sizeof c->cls, "%s", cls);
    char labels[128];
    snprintf(labels, sizeof labels, "topic=\"%s\"", cls);
    c->sent = stats_counter(self->stats, "bus_sent_total", labels,
                            "messages published");
    c->bytes_out = stats_counter(self->stats, "bus_sent_bytes_total", labels,
                                 "payload bytes published");
    c->dropped = stats_counter(self->stats, "bus_dropped_total", labels,
                               "messages dropped at the high-water mark");
    c->received = stats_counter(self->stats, "bus_received_total", labels,
                                "messages received");
    c->invalid = stats_counter(self->stats, "bus_invalid_total", labels,
                               "messages rejected by validation");
    c->lost = stats_counter(self->stats, "bus_lost_total", labels,
                            "messages missing from a sender's sequence");
    return c;
}

static int s_setopt_int(void *sock, int opt, int value, const char *name)
{
    if (zmq_setsockopt(sock, opt, &value, sizeof value) != 0) {
        log_error("bus: setsockopt %s: %s", name, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static void s_connectable(const char *endpoint, char *out, size_t size)
{
    static const char *const wildcards[] = {"tcp://*:", "tcp://0.0.0.0:"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(wildcards[i]);
        if (strncmp(endpoint, wildcards[i], n) == 0) {
            snprintf(out, size, "tcp://127.0.0.1:%s", endpoint + n);
            return;
        }
    }
    snprintf(out, size, "%s", endpoint);
}

int bus_limit_msg_size(void *sock)
{
    int64_t max = WIRE_MAX_PAYLOAD;
    if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof max) != 0) {
        log_error("bus: setsockopt MAXMSGSIZE: %s", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

/* Connects sock to the endpoints of a comma-separated list that are
 * (tcp_pass) or are not tcp://. Several brokers let one stage publish to
 * a node-local broker and a central one at once: a PUB socket sends each
 * message only to the brokers whose subscribers asked for its topic. A
 * wildcard bind address (the broker's own setting, tcp:// on all
 * interfaces) cannot be connected to: it is reached through loopback. */
static int s_connect_pass(void *sock, const char *list, int tcp_pass)
{
    const char *p = list;

    do {
        size_t len = strcspn(p, ",");
        char one[512], ep[512];
        if (len == 0 || len >= sizeof one) {
            log_error("bus: bad endpoint list '%s': empty or over %zu bytes "
                      "entry", list, sizeof one - 1);
            return -1;
        }
        memcpy(one, p, len);
        one[len] = '\0';
        s_connectable(one, ep, sizeof ep);
        if (bus_curve_applies(ep) != tcp_pass) {
            p += len;
            continue;
        }
        if (zmq_connect(sock, ep) != 0) {
            log_error("bus: connect %s: %s", one, zmq_strerror(errno));
            return -1;
        }
        p += len;
    } while (*p++ == ',');
    return 0;
}

/* Security options apply to the connections made after they are set:
 * ipc:// endpoints first, plain, then CURVE (when configured) for tcp. */
static int s_connect_all(void *sock, const char *list,
                         const bus_curve_t *curve)
{
    static log_ratelimit_t plain_rl = LOG_RATELIMIT_INIT(1, 3600000);
    if (s_connect_pass(sock, list, 0))
        return -1;
    if (!strstr(list, "tcp://"))
        return 0;
    if (curve && curve->enabled) {
        if (bus_curve_client(sock, curve))
            return -1;
    } else {
        log_warn_rl(&plain_rl, "bus: %s is tcp:// without CURVE: anyone who "
                    "reaches it can read and publish (set "
                    "bus.curve_secret_key_file)", list);
    }
    return s_connect_pass(sock, list, 1);
}

bus_t *bus_new(void *zmq_ctx, const bus_options_t *opts, stats_t *stats)
{
    bus_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->stats = stats;
    self->rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);
    snprintf(self->sender, sizeof self->sender, "%s",
             opts->sender ? opts->sender : "unknown");
    self->backlog = stats_gauge(stats, "bus_queue_depth", "",
                                "messages that were waiting in the receive "
                                "queue at the last drain");
    self->backlog_max = stats_gauge(stats, "bus_queue_depth_max", "",
                                    "largest receive backlog seen");
    wire_buf_init(&self->out);
    self->arena = arena_new(0);
    if (!self->arena || s_seq_init(&self->pub_seq, BUS_PUB_SEQ_SLOTS) ||
        s_seq_init(&self->recv_seq, BUS_RECV_SEQ_SLOTS))
        goto fail;

    self->pub = zmq_socket(zmq_ctx, ZMQ_PUB);
    self->sub = zmq_socket(zmq_ctx, ZMQ_SUB);
    if (!self->pub || !self->sub) {
        log_error("bus: zmq_socket: %s", zmq_strerror(errno));
        goto fail;
    }
    /* NODROP makes a full queue visible as EAGAIN so drops are counted;
     * sends use ZMQ_DONTWAIT so the publisher never blocks. */
    if (s_setopt_int(self->pub, ZMQ_SNDHWM, opts->send_hwm, "SNDHWM") ||
        s_setopt_int(self->pub, ZMQ_LINGER, BUS_LINGER_MS, "LINGER") ||
        s_setopt_int(self->pub, ZMQ_XPUB_NODROP, 1, "XPUB_NODROP") ||
        s_setopt_int(self->sub, ZMQ_RCVHWM, opts->recv_hwm, "RCVHWM") ||
        s_setopt_int(self->sub, ZMQ_LINGER, 0, "LINGER") ||
        bus_limit_msg_size(self->pub) || bus_limit_msg_size(self->sub))
        goto fail;
    if (s_connect_all(self->pub, opts->in_endpoint, opts->curve) ||
        s_connect_all(self->sub, opts->out_endpoint, opts->curve))
        goto fail;
    return self;
fail:
    bus_destroy(&self);
    return NULL;
}

void bus_destroy(bus_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bus_t *self = *self_p;
    if (self->have_msgs) {
        zmq_msg_close(&self->topic_msg);
        zmq_msg_close(&self->payload_msg);
    }
    if (self->pub)
        zmq_close(self->pub);
    if (self->sub)
        zmq_close(self->sub);
    free(self->pub_seq.slots);
    free(self->recv_seq.slots);
    arena_destroy(&self->arena);
    wire_buf_release(&self->out);
    free(self);
    *self_p = NULL;
}

int bus_subscribe(bus_t *self, const char *prefix)
{
    if (zmq_setsockopt(self->sub, ZMQ_SUBSCRIBE, prefix, strlen(prefix))) {
        log_error("bus: subscribe %s: %s", prefix, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

int bus_unsubscribe(bus_t *self, const char *prefix)
{
    if (zmq_setsockopt(self->sub, ZMQ_UNSUBSCRIBE, prefix, strlen(prefix))) {
        log_error("bus: unsubscribe %s: %s", prefix, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

uint64_t bus_next_seq(bus_t *self, const char *topic)
{
    uint64_t *seq = s_seq_slot(&self->pub_seq, topic);
    return ++*seq;
}

int bus_publish(bus_t *self, const char *topic, const void *data, size_t len)
{
    bus_class_t *c = s_class(self, topic);
    size_t tlen = strlen(topic);
    if (tlen >= BUS_TOPIC_MAX)
        return -1;
    if (zmq_send(self->pub, topic, tlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        goto dropped;
    /* Once the first frame is queued the second cannot fail on HWM. */
    if (zmq_send(self->pub, data, len, ZMQ_DONTWAIT) < 0)
        goto dropped;
    stats_inc(c->sent);
    stats_add(c->bytes_out, len);
    return 0;
dropped:
    stats_inc(c->dropped);
    if (errno != EAGAIN)
        log_warn_rl(&self->rl, "bus: publish %s: %s", topic,
                    zmq_strerror(errno));
    return -1;
}

void *bus_sub_socket(bus_t *self) { return self->sub; }

static void s_drain_frames(void *sock)
{
    int more = 1;
    size_t sz = sizeof more;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
        zmq_msg_t junk;
        zmq_msg_init(&junk);
        zmq_msg_recv(&junk, sock, ZMQ_DONTWAIT);
        zmq_msg_close(&junk);
    }
}

int bus_recv(bus_t *self, const char **topic, const void **payload,
             size_t *len)
{
    if (self->have_msgs) {
        zmq_msg_close(&self->topic_msg);
        zmq_msg_close(&self->payload_msg);
        self->have_msgs = 0;
    }
    zmq_msg_init(&self->topic_msg);
    zmq_msg_init(&self->payload_msg);
    self->have_msgs = 1;
    if (zmq_msg_recv(&self->topic_msg, self->sub, ZMQ_DONTWAIT) < 0) {
        if (errno != EAGAIN)
            return -1;
        if (self->drained) {
            stats_set(self->backlog, (double)self->drained);
            if ((double)self->drained > stats_value(self->backlog_max))
                stats_set(self->backlog_max, (double)self->drained);
            self->drained = 0;
        }
        return 0;
    }
    self->drained++;
    size_t tlen = zmq_msg_size(&self->topic_msg);
    int more = zmq_msg_more(&self->topic_msg);
    if (tlen == 0 || tlen >= BUS_TOPIC_MAX || !more)
        goto invalid;
    memcpy(self->topic, zmq_msg_data(&self->topic_msg), tlen);
    self->topic[tlen] = '\0';
    if (memchr(self->topic, 0, tlen))
        goto invalid;
    if (zmq_msg_recv(&self->payload_msg, self->sub, ZMQ_DONTWAIT) < 0)
        goto invalid;
    if (zmq_msg_more(&self->payload_msg))
        goto invalid;
    stats_inc(s_class(self, self->topic)->received);
    *topic = self->topic;
    *payload = zmq_msg_data(&self->payload_msg);
    *len = zmq_msg_size(&self->payload_msg);
    return 1;
invalid:
    s_drain_frames(self->sub);
    self->topic[0] = '\0';
    stats_inc(s_class(self, "invalid.envelope")->invalid);
    log_warn_rl(&self->rl, "bus: dropped a message with a malformed envelope");
    return -1;
}


/* ------------------------------------------------------------ typed edges */

int bus_on(bus_t *self, msg_id_t id, bus_handler_fn fn, void *arg)
{
    const msg_desc_t *d = msg_desc(id);
    int rc = -1;

    if (!d)
        goto cleanup;
    self->routes[id].fn = fn;
    self->routes[id].arg = arg;
    if (d->shape == MSG_SHAPE_EXACT && bus_subscribe(self, d->topic) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    return rc;
}

void bus_on_invalid(bus_t *self, msg_id_t id, bus_invalid_fn fn, void *arg)
{
    if (!msg_desc(id))
        return;
    self->routes[id].invalid_fn = fn;
    self->routes[id].invalid_arg = arg;
}

static void s_invalid(bus_t *self, const bus_route_t *route, msg_id_t id,
                      const char *topic, const char *err)
{
    stats_inc(s_class(self, topic)->invalid);
    if (route->invalid_fn)
        route->invalid_fn(route->invalid_arg, id, topic, err);
}

/* A decoded header: tracks the sequence number per (sender, topic) and
 * counts gaps as lost. A smaller number than the last is a restarted
 * sender: counting starts over from it. */
static void s_note_seq(bus_t *self, const char *topic, const char *sender,
                       uint64_t seq)
{
    char key[128];
    snprintf(key, sizeof key, "%s|%s", sender, topic);
    uint64_t *last = s_seq_slot(&self->recv_seq, key);
    if (*last && seq > *last + 1)
        stats_add(s_class(self, topic)->lost, seq - *last - 1);
    /* A smaller seq means the sender restarted: start over from it. */
    *last = seq;
}

/* Decode, header, sequence, handler: the one receiving edge. */
static void s_deliver(bus_t *self, const char *topic, const void *payload,
                      size_t len)
{
    const msg_desc_t *d = msg_for_topic(topic);
    msg_decoded_t m;
    char err[256] = "";

    /* Subscriptions are prefixes: what no handler wants is not decoded. */
    if (!d || !self->routes[d->id].fn)
        goto cleanup;
    const bus_route_t *route = &self->routes[d->id];
    arena_reset(self->arena);
    if (msg_decode(topic, payload, len, self->arena, &m, err,
                   sizeof err) != 0) {
        log_warn_rl(&self->rl, "bus: dropped a malformed %s: %s", topic,
                    err);
        s_invalid(self, route, d->id, topic, err);
        goto cleanup;
    }
    s_note_seq(self, topic, m.hdr->sender, m.hdr->seq);
    if (route->fn(route->arg, &m) != 0)
        s_invalid(self, route, d->id, topic, "rejected by the stage");
cleanup:
    arena_reset(self->arena);
}

int bus_dispatch(bus_t *self, int max)
{
    int received = 0;

    for (int i = 0; i < max; i++) {
        const char *topic;
        const void *payload;
        size_t len;
        int r = bus_recv(self, &topic, &payload, &len);
        if (r == 0)
            break;
        if (r < 0)
            continue;
        received++;
        s_deliver(self, topic, payload, len);
    }
    return received;
}

int bus_send_on(bus_t *self, msg_id_t id, const char *topic, void *body)
{
    const msg_desc_t *d = msg_desc(id);
    int rc = -1;

    if (!d || msg_for_topic(topic) != d) {
        log_warn_rl(&self->rl, "bus: topic %s does not carry message type "
                    "%d; not sent", topic, (int)id);
        goto cleanup;
    }
    /* A body that cannot be encoded never existed for the receivers: it
     * takes no number. One dropped at the high-water mark does, so
     * receivers count it lost. */
    uint64_t *seq = s_seq_slot(&self->pub_seq, topic);
    if (msg_encode(id, body, self->sender, *seq + 1, &self->out) != 0) {
        log_warn_rl(&self->rl, "bus: a %s on %s broke a wire bound; not "
                    "sent", d->payload, topic);
        rc = BUS_TOO_BIG;
        goto cleanup;
    }
    ++*seq;
    rc = bus_publish(self, topic, self->out.data, self->out.len);
cleanup:
    return rc;
}

int bus_send(bus_t *self, msg_id_t id, void *body)
{
    const msg_desc_t *d = msg_desc(id);
    /* A bucket or a suffix is part of the topic: bus_send_on, which
     * refuses the empty topic. */
    return bus_send_on(self, id,
                       d && d->shape == MSG_SHAPE_EXACT ? d->topic : "",
                       body);
}
