/* The stage main loop: zmq_poll over ZeroMQ sockets and plain fds (a ring
 * buffer's epoll fd, a signalfd), plus periodic timers. SIGTERM, SIGINT and
 * SIGHUP are blocked at loop_new and read from a signalfd in the same poll,
 * so no handler runs asynchronously. Call loop_new before creating the
 * ZeroMQ context so its I/O threads inherit the blocked mask. */
#ifndef SKYPROF_LOOP_H
#define SKYPROF_LOOP_H

#include <stdint.h>

typedef struct loop loop_t;

/* Handlers return 0 to continue, -1 to stop the loop with an error. */
typedef int (*loop_fd_fn)(loop_t *loop, int fd, void *arg);
typedef int (*loop_socket_fn)(loop_t *loop, void *socket, void *arg);
typedef int (*loop_timer_fn)(loop_t *loop, void *arg);

loop_t *loop_new(void);
void loop_destroy(loop_t **self_p);

int loop_add_fd(loop_t *self, int fd, loop_fd_fn fn, void *arg);
int loop_remove_fd(loop_t *self, int fd);
int loop_add_socket(loop_t *self, void *socket, loop_socket_fn fn, void *arg);
/* Returns a timer id >= 0. First fire after interval_ms. */
int loop_add_timer(loop_t *self, uint64_t interval_ms, loop_timer_fn fn,
                   void *arg);
int loop_set_timer_interval(loop_t *self, int id, uint64_t interval_ms);
void loop_remove_timer(loop_t *self, int id);

/* Runs until a termination signal, loop_stop, or a handler error.
 * Returns 0 on a clean stop, -1 on error. */
int loop_run(loop_t *self);
void loop_stop(loop_t *self);
/* The signal that stopped the loop, 0 if none. SIGHUP does not stop the
 * loop: it sets a flag read with loop_take_reload. */
int loop_stop_signal(const loop_t *self);
int loop_take_reload(loop_t *self);

#endif
