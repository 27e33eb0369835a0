#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char s_ident[32] = "skyprof";
static int s_level = LOG_LVL_INFO;
static const char *const s_level_names[] = {"error", "warn", "info", "debug"};

void log_init(const char *ident, int level)
{
    snprintf(s_ident, sizeof s_ident, "%s", ident ? ident : "skyprof");
    log_set_level(level);
}

void log_set_level(int level)
{
    if (level < LOG_LVL_ERROR)
        level = LOG_LVL_ERROR;
    if (level > LOG_LVL_DEBUG)
        level = LOG_LVL_DEBUG;
    s_level = level;
}

int log_get_level(void) { return s_level; }

int log_level_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i <= LOG_LVL_DEBUG; i++)
        if (strcasecmp(name, s_level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return LOG_LVL_WARN;
    return -1;
}

static void s_vlog(int level, const char *fmt, va_list ap)
{
    if (level > s_level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* One fprintf per line so lines from concurrent stages sharing a
     * terminal do not interleave mid-line. */
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s[%d]: %s\n",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
            tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            s_level_names[level], s_ident, (int)getpid(), msg);
}

#define DEFINE_LOG_FN(fn, level)                                           \
    void fn(const char *fmt, ...)                                          \
    {                                                                      \
        va_list ap;                                                        \
        va_start(ap, fmt);                                                 \
        s_vlog(level, fmt, ap);                                            \
        va_end(ap);                                                        \
    }
DEFINE_LOG_FN(log_error, LOG_LVL_ERROR)
DEFINE_LOG_FN(log_warn, LOG_LVL_WARN)
DEFINE_LOG_FN(log_info, LOG_LVL_INFO)
DEFINE_LOG_FN(log_debug, LOG_LVL_DEBUG)

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vlog(LOG_LVL_ERROR, fmt, ap);
    va_end(ap);
    exit(1);
}

uint32_t log_ratelimit_allow(log_ratelimit_t *rl)
{
    uint64_t now = now_mono_ms();
    if (now - rl->window_start_ms >= rl->interval_ms || rl->window_start_ms == 0) {
        rl->window_start_ms = now ? now : 1;
        rl->in_window = 0;
    }
    if (rl->in_window >= rl->burst) {
        rl->suppressed++;
        return 0;
    }
    rl->in_window++;
    uint32_t result = rl->suppressed + 1;
    rl->suppressed = 0;
    return result;
}

static uint64_t s_clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t now_mono_ns(void) { return s_clock_ns(CLOCK_MONOTONIC); }
uint64_t now_mono_ms(void) { return now_mono_ns() / 1000000ull; }
uint64_t now_wall_ms(void) { return s_clock_ns(CLOCK_REALTIME) / 1000000ull; }
