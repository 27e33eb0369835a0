#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#include "log.h"

#define LOOP_MAX_ITEMS 32
#define LOOP_MAX_TIMERS 32

typedef struct {
    void *socket;   /* NULL for plain fds */
    int fd;
    loop_fd_fn fd_fn;
    loop_socket_fn socket_fn;
    void *arg;
} loop_item_t;

typedef struct {
    int used;
    uint64_t interval_ms;
    uint64_t next_ms;
    loop_timer_fn fn;
    void *arg;
} loop_timer_t;

struct loop {
    int signal_fd;
    loop_item_t items[LOOP_MAX_ITEMS];
    int nitems;
    loop_timer_t timers[LOOP_MAX_TIMERS];
    int stop;
    int error;
    int stop_signal;
    int reload;
    int items_changed;  /* set when a handler removed an item */
};

loop_t *loop_new(void)
{
    loop_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    /* Blocked before any thread exists, so every thread inherits it and
     * the signals are only ever read from the signalfd below. */
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0) {
        free(self);
        return NULL;
    }
    signal(SIGPIPE, SIG_IGN);
    self->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (self->signal_fd < 0) {
        log_error("loop: signalfd: %s", strerror(errno));
        free(self);
        return NULL;
    }
    return self;
}

void loop_destroy(loop_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->signal_fd >= 0)
        close((*self_p)->signal_fd);
    free(*self_p);
    *self_p = NULL;
}

static int s_add(loop_t *self, void *socket, int fd, loop_fd_fn fd_fn,
                 loop_socket_fn socket_fn, void *arg)
{
    if (self->nitems >= LOOP_MAX_ITEMS)
        return -1;
    loop_item_t *it = &self->items[self->nitems++];
    it->socket = socket;
    it->fd = fd;
    it->fd_fn = fd_fn;
    it->socket_fn = socket_fn;
    it->arg = arg;
    return 0;
}

int loop_add_fd(loop_t *self, int fd, loop_fd_fn fn, void *arg)
{
    return s_add(self, NULL, fd, fn, NULL, arg);
}

int loop_remove_fd(loop_t *self, int fd)
{
    for (int i = 0; i < self->nitems; i++) {
        if (!self->items[i].socket && self->items[i].fd == fd) {
            memmove(&self->items[i], &self->items[i + 1],
                    (size_t)(self->nitems - i - 1) * sizeof self->items[0]);
            self->nitems--;
            self->items_changed = 1;
            return 0;
        }
    }
    return -1;
}

int loop_add_socket(loop_t *self, void *socket, loop_socket_fn fn, void *arg)
{
    return s_add(self, socket, -1, NULL, fn, arg);
}

int loop_add_timer(loop_t *self, uint64_t interval_ms, loop_timer_fn fn,
                   void *arg)
{
    for (int i = 0; i < LOOP_MAX_TIMERS; i++) {
        loop_timer_t *t = &self->timers[i];
        if (t->used)
            continue;
        t->used = 1;
        t->interval_ms = interval_ms ? interval_ms : 1;
        t->next_ms = now_mono_ms() + t->interval_ms;
        t->fn = fn;
        t->arg = arg;
        return i;
    }
    return -1;
}

int loop_set_timer_interval(loop_t *self, int id, uint64_t interval_ms)
{
    if (id < 0 || id >= LOOP_MAX_TIMERS || !self->timers[id].used)
        return -1;
    self->timers[id].interval_ms = interval_ms ? interval_ms : 1;
    self->timers[id].next_ms = now_mono_ms() + self->timers[id].interval_ms;
    return 0;
}

void loop_remove_timer(loop_t *self, int id)
{
    if (id >= 0 && id < LOOP_MAX_TIMERS)
        self->timers[id].used = 0;
}

void loop_stop(loop_t *self) { self->stop = 1; }
int loop_stop_signal(const loop_t *self) { return self->stop_signal; }

int loop_take_reload(loop_t *self)
{
    int r = self->reload;
    self->reload = 0;
    return r;
}

static void s_read_signals(loop_t *self)
{
    struct signalfd_siginfo si;
    while (read(self->signal_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            self->reload = 1;
            continue;
        }
        self->stop_signal = (int)si.ssi_signo;
        self->stop = 1;
    }
}

static int s_run_timers(loop_t *self, uint64_t now)
{
    for (int i = 0; i < LOOP_MAX_TIMERS && !self->stop; i++) {
        loop_timer_t *t = &self->timers[i];
        if (!t->used || now < t->next_ms)
            continue;
        /* Skip missed periods instead of firing a burst to catch up. */
        t->next_ms += t->interval_ms;
        if (t->next_ms <= now)
            t->next_ms = now + t->interval_ms;
        if (t->fn(self, t->arg) != 0)
            return -1;
    }
    return 0;
}

int loop_run(loop_t *self)
{
    zmq_pollitem_t items[LOOP_MAX_ITEMS + 1];
    while (!self->stop) {
        int n = self->nitems;
        for (int i = 0; i < n; i++) {
            items[i].socket = self->items[i].socket;
            items[i].fd = self->items[i].fd;
            items[i].events = ZMQ_POLLIN;
            items[i].revents = 0;
        }
        items[n].socket = NULL;
        items[n].fd = self->signal_fd;
        items[n].events = ZMQ_POLLIN;
        items[n].revents = 0;

        uint64_t now = now_mono_ms();
        long timeout = 1000;
        for (int i = 0; i < LOOP_MAX_TIMERS; i++) {
            const loop_timer_t *t = &self->timers[i];
            if (!t->used)
                continue;
            long until = t->next_ms > now ? (long)(t->next_ms - now) : 0;
            if (until < timeout)
                timeout = until;
        }
        int rc = zmq_poll(items, n + 1, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            log_error("loop: zmq_poll: %s", zmq_strerror(errno));
            return -1;
        }
        if (items[n].revents & ZMQ_POLLIN)
            s_read_signals(self);
        self->items_changed = 0;
        for (int i = 0; i < n && !self->stop && !self->items_changed; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            /* A handler may add or remove items; the copy keeps this
             * round consistent and the next round picks up changes. */
            loop_item_t it = self->items[i];
            int hrc = it.socket ? it.socket_fn(self, it.socket, it.arg)
                                : it.fd_fn(self, it.fd, it.arg);
            if (hrc != 0)
                return -1;
        }
        if (s_run_timers(self, now_mono_ms()) != 0)
            return -1;
    }
    return 0;
}
