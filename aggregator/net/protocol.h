/* One application protocol of the network room: the interface every
 * module implements, and the table that lists them (protocols.c). A
 * connection tries the modules' detect in table order on its first
 * captured bytes; the first that says yes gets the connection's streams
 * (feed, skip), pairs requests with responses and records what it pairs
 * (metrics of its own per traffic, endpoint rows, sample offers) through
 * the room's hooks in net_int.h. Adding a protocol: a file with its
 * net_protocol_t and one row in protocols.c. */
#ifndef SKYPROF_AGG_NET_PROTOCOL_H
#define SKYPROF_AGG_NET_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct net net_t;
typedef struct net_conn net_conn_t;
typedef struct net_traffic net_traffic_t;
typedef struct net_report_builder net_report_builder_t;

typedef enum {
    NET_DETECT_NO = 0,   /* not this protocol */
    NET_DETECT_MORE,     /* could be: needs more bytes */
    NET_DETECT_YES
} net_detect_t;

typedef struct net_protocol {
    const char *name;          /* the meters' "protocol" label */
    /* The first captured bytes of a direction (dir: enum wire_net_dir). */
    net_detect_t (*detect)(const uint8_t *buf, size_t len, uint8_t dir);
    /* Parser state for conn; NULL without memory. */
    void *(*open)(net_t *room, net_conn_t *conn);
    /* Captured bytes, then bytes gone by uncaptured; 0 while analysed,
     * -1 once the stream stopped being this protocol (counted by the
     * module). */
    int (*feed)(void *st, uint8_t dir, const uint8_t *buf, size_t len,
                uint64_t ts_ns);
    int (*skip)(void *st, uint8_t dir, uint64_t n, uint64_t ts_ns);
    /* The connection closed or was evicted: pair what can be, then free;
     * the module adds its per-connection counters to the room's. */
    void (*close)(void *st);
    size_t (*memory)(const void *st);
    /* Meters of one traffic over the interval: state, report, reset. */
    void *(*meters_new)(void);
    void (*meters_free)(void *m);
    int (*meters_report)(void *m, const net_traffic_t *t,
                         net_report_builder_t *b);
    /* 1 when the traffic's meters hold nothing since the last report. */
    int (*meters_empty)(const void *m);
} net_protocol_t;

/* The table, in detection order, and its length. */
extern const net_protocol_t *const net_protocols[];
extern const size_t net_nprotocols;

/* HTTP/1.x over lib/http1 (proto_http1.c). */
extern const net_protocol_t net_proto_http1;

#endif
