/* Helpers shared by the check test binaries.
 *
 * Skips: a test that cannot run here (no BPF permission, no chromium) is
 * not added to its suite; tu_skip() prints "SKIP: <name>: <why>" which
 * tests/run-tests.sh counts as skipped, never as passed. */
#ifndef SKYPROF_TESTUTIL_H
#define SKYPROF_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Prints the skip line. Always returns 0 so it can end a require check. */
int tu_skip(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* 1 when BPF programs can be loaded here (root or CAP_BPF+CAP_PERFMON and
 * a perf_event program loads); otherwise prints the skip line and 0. */
int tu_require_bpf(const char *name);
/* 1 when the executable is on PATH, else skip line and 0. */
int tu_require_tool(const char *name, const char *tool);

/* Runs the suite (CK_NORMAL output, fork mode) and returns the exit code
 * for main: 0 when every test passed. */
int tu_run(Suite *s);

/* Directory of the build being tested (SKYPROF_BUILD, default "build"). */
const char *tu_build_dir(void);
/* Path of an artefact under the build dir, in a static rotating buffer. */
const char *tu_build_path(const char *rel);

/* A fresh private temporary directory (mkdtemp), removed by tu_rmtree. */
char *tu_mkdtemp(void);
void tu_rmtree(const char *path);

/* Spawn argv with stdout/stderr appended to log_path (NULL: inherit).
 * Returns the pid or -1. */
pid_t tu_spawn(char *const argv[], const char *log_path);
/* SIGTERM, then SIGKILL after timeout_ms; returns the exit status or -1. */
int tu_stop(pid_t pid, int timeout_ms);

/* Read a whole file (NUL terminated) into a malloc'ed buffer. */
char *tu_read_file(const char *path, size_t *len);
/* Write text as the whole file (created or truncated); fails the test
 * when that is impossible. */
void tu_write_file(const char *path, const char *text);

/* HTTP on loopback without libcurl: returns the body (malloc'ed) and the
 * status code, or NULL on connection failure. body may be NULL for GET. */
char *tu_http(const char *method, const char *host, int port,
              const char *path, const char *body, int *status,
              size_t *len);
/* The same with extra header lines ("Name: value\r\n" each, or NULL),
 * sent before the defaults. */
char *tu_http_with(const char *method, const char *host, int port,
                   const char *path, const char *headers, const char *body,
                   int *status, size_t *len);
/* Sends a whole raw request (head and body as given) and returns the
 * whole raw answer (NUL-terminated, *resp_len bytes), or NULL when none
 * arrived. */
char *tu_http_raw(const char *host, int port, const char *request,
                  size_t reqlen, int *status, size_t *resp_len);

/* Poll fn(arg) every 50 ms until it returns non-zero or timeout_ms passes.
 * Returns the last result. */
int tu_wait_until(int (*fn)(void *arg), void *arg, int timeout_ms);

uint64_t tu_now_ms(void);

#endif
