/* Deadline-bounded socket I/O; see netio.h. */
#include "netio.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "log.h"

int netio_wait(int fd, short events, int wake_fd, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = now_mono_ms();
        if (now >= deadline_ms)
            return NETIO_TIMEOUT;
        struct pollfd pfd[2] = {
            {.fd = fd, .events = events},
            {.fd = wake_fd, .events = POLLIN},
        };
        int n = poll(pfd, 2, (int)(deadline_ms - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || pfd[1].revents)
            return NETIO_STOP;
        if (n > 0 && pfd[0].revents)
            return NETIO_READY;
    }
}

int netio_send_all(int fd, const void *buf, size_t len, int flags,
                   int wake_fd, uint64_t deadline_ms)
{
    const char *p = buf;
    size_t done = 0;

    while (done < len) {
        ssize_t n = send(fd, p + done, len - done, flags | MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = netio_wait(fd, POLLOUT, wake_fd, deadline_ms);
            if (w == NETIO_READY)
                continue;
            errno = w == NETIO_TIMEOUT ? ETIMEDOUT : ECANCELED;
        } else if (n == 0) {
            errno = EPIPE;
        }
        return -1;  /* peer gone, timed out, or stopping */
    }
    return 0;
}
