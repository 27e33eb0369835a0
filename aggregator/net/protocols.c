/* The protocol table: every application protocol the network room
 * analyses, in detection order (protocol.h says how to add one). Covered
 * now: HTTP/1.x. Next (seed 003): HTTP/2, MySQL, CQL, MongoDB, Kafka, DNS. */
#include "aggregator/net/protocol.h"

const net_protocol_t *const net_protocols[] = {
    &net_proto_http1,
};
const size_t net_nprotocols = sizeof net_protocols / sizeof net_protocols[0];
