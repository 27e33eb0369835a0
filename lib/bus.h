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

/* Next sequence number for a topic (fill wire_header_t.seq with it). */
uint64_t bus_next_seq(bus_t *self, const char *topic);

/* 0 sent, -1 dropped (counted) or failed. */
int bus_publish(bus_t *self, const char *topic, const void *data, size_t len);

/* The SUB socket, for zmq_poll. */
void *bus_sub_socket(bus_t *self);

/* Receive one message without blocking. Returns 1 with topic and payload
 * set (payload valid until the next bus_recv), 0 when nothing is waiting,
 * -1 on a malformed envelope (counted). */
int bus_recv(bus_t *self, const char **topic, const void **payload,
             size_t *len);

/* Tell the bus a payload's header decoded: tracks the sequence number per
 * (sender, topic) and counts gaps as lost. */
void bus_note_seq(bus_t *self, const char *topic, const char *sender,
                  uint64_t seq);

/* Count a message that failed validation (topic class label). */
void bus_count_invalid(bus_t *self, const char *topic);

#endif
