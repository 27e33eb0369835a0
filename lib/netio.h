/* Deadline-bounded I/O on non-blocking sockets for a client that talks to
 * one peer at a time (the aggregator's fan-out client): a peer that stops
 * reading or writing costs at most the deadline. */
#ifndef SKYPROF_NETIO_H
#define SKYPROF_NETIO_H

#include <stddef.h>
#include <stdint.h>

enum { NETIO_READY = 1, NETIO_TIMEOUT = 0, NETIO_STOP = -1 };

/* Waits until fd has `events` (error and hang-up count as ready: the next
 * read or send reports them), the monotonic deadline passes, or wake_fd
 * (ignored when < 0) becomes readable. NETIO_STOP also when poll fails.
 * fd < 0 just sleeps until the deadline or the wake. */
int netio_wait(int fd, short events, int wake_fd, uint64_t deadline_ms);

/* Sends all of buf (partial sends, EINTR, a full socket buffer) before the
 * deadline, with MSG_NOSIGNAL added to flags: a peer gone away is EPIPE,
 * not SIGPIPE. 0, or -1 with errno set (ETIMEDOUT at the deadline,
 * ECANCELED when woken through wake_fd). */
int netio_send_all(int fd, const void *buf, size_t len, int flags,
                   int wake_fd, uint64_t deadline_ms);

#endif
