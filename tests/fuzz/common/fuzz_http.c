/* One HTTP exchange for server harnesses (see fuzz_http.h). */
#include "fuzz_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Bytes of a whole answer when head holds its complete header block
 * with a Content-Length, else 0 (read until the server stops). */
static size_t s_answer_len(const char *head, size_t len)
{
    const char *end = memmem(head, len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    for (const char *p = head; p < end;) {
        const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > 15 &&
            strncasecmp(p, "Content-Length:", 15) == 0)
            return (size_t)(end + 4 - head) + strtoul(p + 15, NULL, 10);
        p = eol + 2;
    }
    return 0;
}

long fuzz_http_exchange(int port, const uint8_t *data, size_t size)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_usec = 300000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    for (size_t off = 0; off < size;) {
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;          /* the server may answer and close early */
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    /* A keep-alive server holds the connection open after its answer:
     * stop at the end the answer announces, or at its first pause. */
    char head[16384], sink[4096];
    size_t got = 0, want = 0;
    while (!want || got < want) {
        char *to = got < sizeof head ? head + got : sink;
        size_t room = got < sizeof head ? sizeof head - got : sizeof sink;
        ssize_t n = recv(fd, to, room, 0);
        if (n <= 0)
            break;
        if (got == 0) {
            struct timeval pause = {.tv_usec = 100000};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &pause, sizeof pause);
        }
        got += (size_t)n;
        if (!want)
            want = s_answer_len(head, got < sizeof head ? got : sizeof head);
    }
    close(fd);
    if (got > 0 && (got < 7 || memcmp(head, "HTTP/1.", 7) != 0))
        __builtin_trap();   /* whatever comes back is an HTTP answer */
    return (long)got;
}
