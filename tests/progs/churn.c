/* churn RATE SECONDS PROGRAM [ARG...]: starts PROGRAM RATE times a second
 * for SECONDS (posix_spawn, paced in 10 ms slots, children reaped as they
 * exit), for the churn soak (tests/soak.py). Prints "started=N failed=N"
 * when done. */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static volatile sig_atomic_t s_stop;

static void s_on_term(int sig)
{
    (void)sig;
    s_stop = 1;
}

static uint64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void s_reap(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: churn RATE SECONDS PROGRAM [ARG...]\n");
        return 2;
    }
    long rate = atol(argv[1]);
    double seconds = atof(argv[2]);
    if (rate <= 0 || seconds <= 0) {
        fprintf(stderr, "churn: RATE and SECONDS must be positive\n");
        return 2;
    }
    signal(SIGTERM, s_on_term);
    signal(SIGINT, s_on_term);
    const uint64_t slot_ns = 10000000ull;
    uint64_t start = s_now_ns(), end = start + (uint64_t)(seconds * 1e9);
    uint64_t started = 0, failed = 0;
    while (!s_stop) {
        uint64_t now = s_now_ns();
        if (now >= end)
            break;
        /* How many should have started by now: catch up after a stall. */
        uint64_t due = (uint64_t)((double)(now - start) * (double)rate / 1e9);
        while (started + failed < due && !s_stop) {
            pid_t pid;
            if (posix_spawn(&pid, argv[3], NULL, NULL, argv + 3, environ) == 0)
                started++;
            else
                failed++;
        }
        s_reap();
        struct timespec nap = { 0, (long)slot_ns };
        nanosleep(&nap, NULL);
    }
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    printf("started=%llu failed=%llu\n", (unsigned long long)started,
           (unsigned long long)failed);
    return 0;
}
