/* Foreground logging with levels, to stderr, one line per event. */
#ifndef SKYPROF_LOG_H
#define SKYPROF_LOG_H

#include <stdint.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Name shown in every line ("collector", "symbolizer", ...). */
void log_init(const char *ident, int level);
void log_set_level(int level);
int log_get_level(void);
/* Parse "error", "warn", "info", "debug"; -1 when unknown. */
int log_level_parse(const char *name);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs at error level and exits 1. Only for start-up failures. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Rate limiter for log lines about bad input: at most `burst` lines per
 * `interval_ms`; the suppressed count is reported with the next line. */
typedef struct {
    uint64_t window_start_ms;
    uint32_t in_window;
    uint32_t suppressed;
    uint32_t burst;
    uint32_t interval_ms;
} log_ratelimit_t;

#define LOG_RATELIMIT_INIT(burst_, interval_ms_) \
    { 0, 0, 0, (burst_), (interval_ms_) }

/* Returns the number of lines suppressed since the last allowed one plus 1
 * when the caller may log now, 0 when it must stay quiet. */
uint32_t log_ratelimit_allow(log_ratelimit_t *rl);

#define log_warn_rl(rl, fmt, ...)                                           \
    do {                                                                    \
        uint32_t s_allow_ = log_ratelimit_allow(rl);                        \
        if (s_allow_ > 1)                                                   \
            log_warn(fmt " (%u similar suppressed)", ##__VA_ARGS__,         \
                     s_allow_ - 1);                                         \
        else if (s_allow_)                                                  \
            log_warn(fmt, ##__VA_ARGS__);                                   \
    } while (0)

/* Monotonic and wall clocks. */
uint64_t now_mono_ms(void);
uint64_t now_mono_ns(void);
uint64_t now_wall_ms(void);

#endif
