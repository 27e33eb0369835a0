/* offcpu_workload SECONDS: threads that block in known ways for known
 * shares of wall time, for the off-CPU profiler's tests.
 *
 *   2 x sky_sleeper_thread -> sky_off_sleep       nanosleep 50 ms, looping
 *   1 x sky_reader_thread  -> sky_off_pipe_read   read() on a pipe that
 *       sky_writer_thread writes to every 50 ms (sleeping in
 *       sky_writer_pause in between)
 *   1 x sky_waiter_thread  -> sky_off_mutex_wait  a futex mutex that
 *       sky_holder_thread holds nearly all the time (it sleeps in
 *       sky_holder_hold while holding it and relocks at once)
 *   1 x sky_spin_thread    -> sky_on_spin         burns a CPU: never
 *       blocks, so it must not show up off CPU (preemption is not counted)
 *   main                   -> sky_main_wait       sleeps until the end
 *
 * Every thread but the spinner is off CPU nearly all the time, so over any
 * window the off-CPU time of the process splits into about 1/7 per
 * blocking thread: sky_off_sleep 2/7, sky_off_pipe_read 1/7,
 * sky_off_mutex_wait 1/7.
 *
 * The blocking system calls are made inline (no libc wrapper) from the
 * noinline sky_off_* functions: glibc is built without frame pointers, and
 * a leaf libc function would hide its caller from a frame-pointer unwinder.
 *
 * offcpu_workload pingpong ROUNDS [DELAY_S [SLEEPS]]: two processes bounce
 * a byte over a pair of pipes ROUNDS times (4 context switches per round)
 * after sleeping DELAY_S, and print the elapsed wall time; used to measure
 * the off-CPU probe's cost per context switch. Then the parent sleeps
 * 50 ms SLEEPS times: long periods after many short ones. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SKY_NOINLINE __attribute__((noinline))
#define SKY_PERIOD_NS 50000000L   /* 50 ms */

static atomic_int s_stop;
static int s_pipe[2];
static atomic_int s_lock;          /* 0 free, 1 locked, 2 locked+waiters */
static volatile uint64_t s_sink;

/* ------------------------------------------------ raw system calls */

#if defined(__x86_64__)
static inline __attribute__((always_inline)) long
sky_syscall4(long nr, long a, long b, long c, long d)
{
    long ret;
    register long r10 __asm__("r10") = d;

    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}
#else
static inline __attribute__((always_inline)) long
sky_syscall4(long nr, long a, long b, long c, long d)
{
    return syscall(nr, a, b, c, d);
}
#endif

static inline __attribute__((always_inline)) void sky_raw_nanosleep(long ns)
{
    struct timespec ts = { .tv_sec = ns / 1000000000L,
                           .tv_nsec = ns % 1000000000L };

    sky_syscall4(SYS_nanosleep, (long)&ts, 0, 0, 0);
}

/* ------------------------------------------------------- the paths */

SKY_NOINLINE void sky_off_sleep(void)
{
    sky_raw_nanosleep(SKY_PERIOD_NS);
}

SKY_NOINLINE long sky_off_pipe_read(void)
{
    char buf[64];

    return sky_syscall4(SYS_read, s_pipe[0], (long)buf, sizeof(buf), 0);
}

/* A futex mutex (Drepper's "Futexes are tricky", mutex 2): the waiter
 * sleeps in the kernel inside this function. */
SKY_NOINLINE void sky_off_mutex_wait(void)
{
    int c = 0;

    if (atomic_compare_exchange_strong(&s_lock, &c, 1))
        return;
    if (c != 2)
        c = atomic_exchange(&s_lock, 2);
    while (c != 0) {
        sky_syscall4(SYS_futex, (long)&s_lock, FUTEX_WAIT_PRIVATE, 2, 0);
        c = atomic_exchange(&s_lock, 2);
    }
}

static SKY_NOINLINE void sky_lock(void)
{
    sky_off_mutex_wait();
}

static SKY_NOINLINE void sky_unlock(void)
{
    if (atomic_fetch_sub(&s_lock, 1) != 1) {
        atomic_store(&s_lock, 0);
        sky_syscall4(SYS_futex, (long)&s_lock, FUTEX_WAKE_PRIVATE, 1, 0);
    }
}

SKY_NOINLINE void sky_holder_hold(void)
{
    sky_raw_nanosleep(SKY_PERIOD_NS);
}

SKY_NOINLINE void sky_writer_pause(void)
{
    sky_raw_nanosleep(SKY_PERIOD_NS);
}

SKY_NOINLINE void sky_main_wait(void)
{
    sky_raw_nanosleep(SKY_PERIOD_NS);
}

SKY_NOINLINE void sky_on_spin(void)
{
    volatile uint64_t acc = 1;

    for (int i = 0; i < 200000; i++)
        acc = acc * 6364136223846793005ull + 1442695040888963407ull;
    s_sink += acc;
}

/* ---------------------------------------------------------- threads */

static SKY_NOINLINE void *sky_sleeper_thread(void *arg)
{
    while (!atomic_load(&s_stop))
        sky_off_sleep();
    return NULL;
}

static SKY_NOINLINE void *sky_reader_thread(void *arg)
{
    while (!atomic_load(&s_stop))
        if (sky_off_pipe_read() <= 0)
            break;
    return NULL;
}

static SKY_NOINLINE void *sky_writer_thread(void *arg)
{
    while (!atomic_load(&s_stop)) {
        sky_writer_pause();
        if (write(s_pipe[1], "x", 1) != 1)
            break;
    }
    /* Wake the reader for the last time so it sees the stop flag. */
    if (write(s_pipe[1], "x", 1) != 1)
        return NULL;
    return NULL;
}

/* Holds the lock nearly all the time: it relocks right after unlocking,
 * before the woken waiter runs, so the waiter keeps waiting. */
static SKY_NOINLINE void *sky_holder_thread(void *arg)
{
    sky_lock();
    while (!atomic_load(&s_stop)) {
        sky_holder_hold();
        sky_unlock();
        sky_lock();
    }
    sky_unlock();
    return NULL;
}

static SKY_NOINLINE void *sky_waiter_thread(void *arg)
{
    while (!atomic_load(&s_stop)) {
        sky_lock();
        sky_unlock();
    }
    return NULL;
}

static SKY_NOINLINE void *sky_spin_thread(void *arg)
{
    while (!atomic_load(&s_stop))
        sky_on_spin();
    return NULL;
}

static int s_run(double seconds)
{
    void *(*fns[])(void *) = { sky_sleeper_thread, sky_sleeper_thread,
                               sky_reader_thread,  sky_writer_thread,
                               sky_holder_thread,  sky_waiter_thread,
                               sky_spin_thread };
    const char *names[] = { "sleeper", "sleeper", "reader", "writer",
                            "holder", "waiter", "spinner" };
    enum { N = sizeof(fns) / sizeof(fns[0]) };
    pthread_t threads[N];
    struct timespec start, now;

    if (pipe(s_pipe) != 0) {
        perror("pipe");
        return 1;
    }
    /* The holder takes the lock first, so the waiter starts waiting. */
    for (int i = 0; i < N; i++) {
        if (pthread_create(&threads[i], NULL, fns[i], NULL) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
        pthread_setname_np(threads[i], names[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        double elapsed = (double)(now.tv_sec - start.tv_sec) +
                         (double)(now.tv_nsec - start.tv_nsec) / 1e9;
        if (elapsed >= seconds)
            break;
        sky_main_wait();
    }
    atomic_store(&s_stop, 1);
    for (int i = 0; i < N; i++)
        pthread_join(threads[i], NULL);
    return 0;
}

/* ------------------------------------------------------- ping-pong */

static void sky_sleep_s(double seconds)
{
    struct timespec d = { .tv_sec = (time_t)seconds,
                          .tv_nsec = (long)((seconds - (double)(time_t)seconds)
                                            * 1e9) };

    while (nanosleep(&d, &d) != 0 && errno == EINTR)
        ;
}

/* Forks at once and prints both pids, so a profiler can be pointed at
 * both before the rounds start DELAY_S later. */
static SKY_NOINLINE int sky_pingpong(long rounds, double delay_s,
                                     long sleeps)
{
    int ab[2], ba[2];
    struct timespec t0, t1;
    char c = 'p';
    pid_t child;

    if (pipe(ab) != 0 || pipe(ba) != 0) {
        perror("pipe");
        return 1;
    }
    child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        for (long i = 0; i < rounds; i++)
            if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
                _exit(1);
        _exit(0);
    }
    printf("pids %d %d\n", (int)getpid(), (int)child);
    fflush(stdout);
    if (delay_s > 0)
        sky_sleep_s(delay_s);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < rounds; i++)
        if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1) {
            kill(child, SIGKILL);
            return 1;
        }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int status;
    waitpid(child, &status, 0);
    double elapsed = (double)(t1.tv_sec - t0.tv_sec) +
                     (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("pingpong rounds=%ld elapsed_s=%.6f ns_per_round=%.1f\n", rounds,
           elapsed, elapsed * 1e9 / (double)rounds);
    for (long i = 0; i < sleeps; i++)
        sky_sleep_s(0.05);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "pingpong") == 0)
        return sky_pingpong(atol(argv[2]), argc > 3 ? atof(argv[3]) : 0,
                            argc > 4 ? atol(argv[4]) : 0);
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    if (seconds <= 0) {
        fprintf(stderr, "usage: offcpu_workload SECONDS | pingpong ROUNDS "
                        "[DELAY_S [SLEEPS]]\n");
        return 2;
    }
    return s_run(seconds);
}
