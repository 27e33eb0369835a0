/* The bus: ZeroMQ PUB/SUB through the broker (skyprof-broker), which binds
 * an XSUB "in" endpoint every publisher connects to and an XPUB "out"
 * endpoint every subscriber connects to. Replicas of a stage therefore only
 * need the two broker endpoints.
 *
 * Messages are two frames: topic, msgpack payload. Publishing never blocks:
 * at the high-water mark the message is dropped and counted per topic
 * class. Receivers check each (sender, topic) sequence number and count the
 * gaps as lost, so drops anywhere on the path show up somewhere. */
#ifndef SKYPROF_BUS_H
#define SKYPROF_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "bus_curve.h"
#include "msg.h"
#include "stats.h"

typedef struct bus bus_t;

typedef struct {
    const char *in_endpoint;   /* broker XSUB, publishers connect */
    const char *out_endpoint;  /* broker XPUB, subscribers connect */
    int send_hwm;              /* messages */
    int recv_hwm;
    const char *sender;        /* "<stage>/<instance>" */
    /* CURVE keys for tcp:// endpoints; NULL or not enabled = plain. */
    const bus_curve_t *curve;
} bus_options_t;

bus_t *bus_new(void *zmq_ctx, const bus_options_t *opts, stats_t *stats);

/* Every bus socket (the broker's too) refuses frames over WIRE_MAX_PAYLOAD,
 * the most any decoder accepts: a peer that sends one is disconnected
 * before the frame is buffered. 0 or -1 (logged). */
int bus_limit_msg_size(void *sock);
void bus_destroy(bus_t **self_p);

int bus_subscribe(bus_t *self, const char *prefix);
int bus_unsubscribe(bus_t *self, const char *prefix);

/* ------------------------------------------------------- typed edges
 * What every stage uses: messages of the table (lib/msg_table.h) by type.
 * Receiving decodes, checks the header, notes the sequence number and
 * counts what is malformed, once for every message type; sending fills
 * the header with the one sequence scheme (bus_next_seq), encodes and
 * publishes. */

/* A stage's handler for one message type: m->body is the decoded
 * structure (m->desc->type), valid during the call. Returns 0, or -1 when
 * the stage rejects the message (the bus counts it invalid; the handler
 * logs why). */
typedef int (*bus_handler_fn)(void *arg, const msg_decoded_t *m);

/* Told of every rejected message of a type, after the bus counted it in
 * bus_invalid_total{topic} (and logged a decode failure). */
typedef void (*bus_invalid_fn)(void *arg, msg_id_t id, const char *topic,
                               const char *err);

/* Hands every message of type id that bus_dispatch receives to fn
 * (replacing an earlier handler) and subscribes to its topic when the
 * topic is EXACT; a BUCKET or SUFFIX topic is subscribed by the caller
 * for the buckets or names it wants (lib/shard.h does buckets). 0 or -1. */
int bus_on(bus_t *self, msg_id_t id, bus_handler_fn fn, void *arg);
void bus_on_invalid(bus_t *self, msg_id_t id, bus_invalid_fn fn, void *arg);

/* Receives up to max messages without blocking (bounded so one busy
 * socket cannot starve the rest of the loop) and hands each one to its
 * handler. Messages without a handler are received and ignored. Returns
 * how many were received. */
int bus_dispatch(bus_t *self, int max);

/* Sends body, the structure of message type id, on the type's topic
 * (bus_send: EXACT topics) or on a topic of its shape (bus_send_on: a
 * bucket or a suffix, see msg_topic_for_pid). Fills body's header.
 * 0 sent; -1 dropped at the high-water mark (counted) or failed;
 * BUS_TOO_BIG when the body breaks a wire bound (logged, nothing sent). */
#define BUS_TOO_BIG (-2)
int bus_send(bus_t *self, msg_id_t id, void *body);
int bus_send_on(bus_t *self, msg_id_t id, const char *topic, void *body);

/* The SUB socket, for zmq_poll (call bus_dispatch when readable). */
void *bus_sub_socket(bus_t *self);

/* --------------------------------------------------------- raw edges
 * Under the typed edges; for the broker-level tests and tools. */

/* Next sequence number for a topic (from the numbering bus_send uses). */
uint64_t bus_next_seq(bus_t *self, const char *topic);

/* 0 sent, -1 dropped (counted) or failed. */
int bus_publish(bus_t *self, const char *topic, const void *data, size_t len);

/* Receive one message without blocking. Returns 1 with topic and payload
 * set (payload valid until the next bus_recv), 0 when nothing is waiting,
 * -1 on a malformed envelope (counted). */
int bus_recv(bus_t *self, const char **topic, const void **payload,
             size_t *len);


#endif
