/* Shared by the harnesses of HTTP servers: one request over a real
 * loopback connection. */
#ifndef SKYPROF_FUZZ_HTTP_H
#define SKYPROF_FUZZ_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Connects to 127.0.0.1:port, sends data, stops writing and reads the
 * answer: until the end its Content-Length announces, the server closes,
 * or it pauses (300 ms before it begins, 100 ms after; a server that
 * waits for more of a request after the half-close is left waiting, its
 * own timeouts are not what a harness measures). Traps when an
 * answer comes back that does not start with "HTTP/1.". Returns the
 * bytes received, -1 when no connection could be made. */
long fuzz_http_exchange(int port, const uint8_t *data, size_t size);

#endif
