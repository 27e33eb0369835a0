/* The monitor registry: see monitors.h. */
#include "monitors.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

static int s_process_cpu(const monitor_sample_t *s, double *value)
{
    if (!s->prev_at_ns || s->at_ns <= s->prev_at_ns ||
        s->cpu_ticks < s->prev_cpu_ticks || s->clk_tck <= 0 || s->ncpu <= 0)
        return -1;
    double cpu_s = (double)(s->cpu_ticks - s->prev_cpu_ticks) /
                   (double)s->clk_tck;
    double wall_s = (double)(s->at_ns - s->prev_at_ns) / 1e9;
    /* Percent of the whole host, as the reference agent reports it. */
    *value = 100.0 * cpu_s / wall_s / (double)s->ncpu;
    return 0;
}

static int s_thread_count(const monitor_sample_t *s, double *value)
{
    *value = (double)s->threads;
    return 0;
}

static int s_system_load(const monitor_sample_t *s, double *value)
{
    *value = s->load1;
    return 0;
}

static const monitor_desc_t s_monitors[MONITOR_COUNT] = {
    [MONITOR_PROCESS_CPU] = { MONITOR_PROCESS_CPU, "PROCESS_CPU",
        "process_cpu", MONITOR_CAUSE_SINGLE_VALUE, s_process_cpu },
    [MONITOR_PROCESS_THREAD_COUNT] = { MONITOR_PROCESS_THREAD_COUNT,
        "PROCESS_THREAD_COUNT", "process_thread_count",
        MONITOR_CAUSE_SINGLE_VALUE, s_thread_count },
    [MONITOR_SYSTEM_LOAD] = { MONITOR_SYSTEM_LOAD, "SYSTEM_LOAD",
        "system_load", MONITOR_CAUSE_SINGLE_VALUE, s_system_load },
    [MONITOR_HTTP_ERROR_RATE] = { MONITOR_HTTP_ERROR_RATE, "HTTP_ERROR_RATE",
        "http_error_rate", MONITOR_CAUSE_URI, NULL },
    [MONITOR_HTTP_AVG_RESPONSE_TIME] = { MONITOR_HTTP_AVG_RESPONSE_TIME,
        "HTTP_AVG_RESPONSE_TIME", "http_avg_response_time",
        MONITOR_CAUSE_URI, NULL },
};

const monitor_desc_t *monitors_get(unsigned type)
{
    return type < MONITOR_COUNT ? &s_monitors[type] : NULL;
}

const char *monitors_name(unsigned type)
{
    return type < MONITOR_COUNT ? s_monitors[type].name : "UNKNOWN";
}

int monitors_parse(const char *name)
{
    const char *names[MONITOR_COUNT];
    for (unsigned i = 0; i < MONITOR_COUNT; i++)
        names[i] = s_monitors[i].name;
    return names_index(names, MONITOR_COUNT, name, NAMES_EXACT);
}

/* A JSON string of s (policy URIs: text; control bytes are dropped). */
static void s_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s >= 0x20)
            fputc(*s, f);
    }
    fputc('"', f);
}

char *monitors_sampling_rules(const wire_cause_t *causes, uint32_t n)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f)
        return NULL;
    fputs("{\"networkSamplings\":[", f);
    int rules = 0, global = 0;
    for (uint32_t c = 0; c < n; c++) {
        const monitor_desc_t *m = monitors_get(causes[c].type);
        if (!m || m->cause != MONITOR_CAUSE_URI)
            continue;
        const char *re = causes[c].uri_regex, *path = causes[c].uri_path;
        const char *uri = re && re[0] ? re : path && path[0] ? path : "";
        if (!uri[0] && global++)
            continue;                 /* one default rule */
        fputs(rules++ ? ",{" : "{", f);
        if (uri[0]) {
            fputs("\"uriRegex\":", f);
            s_json_str(f, uri);
            fputc(',', f);
        }
        fputs("\"minDuration\":0,\"when4xx\":true,\"when5xx\":true,"
              "\"settings\":{\"requireCompleteRequest\":true,"
              "\"requireCompleteResponse\":true}}", f);
    }
    fputs("]}", f);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
