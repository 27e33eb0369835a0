/* lib/monitors: the registry's names round-trip, its numbers are the
 * OAP's cause types, the bus carries every registered monitor, and each
 * reader computes what the policy engine reported before the registry. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "Continuous.pb-c.h"
#include "arena.h"
#include "monitors.h"
#include "testutil.h"
#include "wire.h"

START_TEST(test_names_round_trip)
{
    for (unsigned k = 0; k < MONITOR_COUNT; k++) {
        const monitor_desc_t *m = monitors_get(k);
        ck_assert_ptr_nonnull(m);
        ck_assert_uint_eq(m->type, k);
        ck_assert_int_eq(monitors_parse(m->name), (int)k);
        ck_assert_str_eq(monitors_name(k), m->name);
        /* the meter is the name in lower case */
        ck_assert_uint_eq(strlen(m->meter), strlen(m->name));
        for (size_t i = 0; m->name[i]; i++)
            ck_assert_int_eq(m->meter[i], tolower((unsigned char)m->name[i]));
        for (unsigned j = 0; j < k; j++)
            ck_assert_str_ne(monitors_get(j)->name, m->name);
    }
    ck_assert_ptr_null(monitors_get(MONITOR_COUNT));
    ck_assert_str_eq(monitors_name(MONITOR_COUNT), "UNKNOWN");
}
END_TEST

START_TEST(test_unknown_rejected)
{
    ck_assert_int_eq(monitors_parse(NULL), -1);
    ck_assert_int_eq(monitors_parse(""), -1);
    ck_assert_int_eq(monitors_parse("process_cpu"), -1);  /* policies: exact */
    ck_assert_int_eq(monitors_parse("PROCESS_CPU_"), -1);
    ck_assert_int_eq(monitors_parse("UNKNOWN"), -1);
}
END_TEST

/* The numbers are ContinuousProfilingTriggeredMonitorType's. */
START_TEST(test_numbers_are_the_oaps)
{
    ck_assert_int_eq(MONITOR_PROCESS_CPU,
        SKYWALKING__V3__CONTINUOUS_PROFILING_TRIGGERED_MONITOR_TYPE__ProcessCPU);
    ck_assert_int_eq(MONITOR_PROCESS_THREAD_COUNT,
        SKYWALKING__V3__CONTINUOUS_PROFILING_TRIGGERED_MONITOR_TYPE__ProcessThreadCount);
    ck_assert_int_eq(MONITOR_SYSTEM_LOAD,
        SKYWALKING__V3__CONTINUOUS_PROFILING_TRIGGERED_MONITOR_TYPE__SystemLoad);
    ck_assert_int_eq(MONITOR_HTTP_ERROR_RATE,
        SKYWALKING__V3__CONTINUOUS_PROFILING_TRIGGERED_MONITOR_TYPE__HTTPErrorRate);
    ck_assert_int_eq(MONITOR_HTTP_AVG_RESPONSE_TIME,
        SKYWALKING__V3__CONTINUOUS_PROFILING_TRIGGERED_MONITOR_TYPE__HTTPAvgResponseTime);
    ck_assert_uint_eq(monitors_get(MONITOR_HTTP_ERROR_RATE)->cause,
                      MONITOR_CAUSE_URI);
    ck_assert_uint_eq(monitors_get(MONITOR_PROCESS_CPU)->cause,
                      MONITOR_CAUSE_SINGLE_VALUE);
}
END_TEST

/* trigger.report carries a cause of every registered monitor and refuses
 * a type past the registry. */
START_TEST(test_trigger_carries_every_monitor)
{
    wire_buf_t buf;
    wire_buf_init(&buf);
    arena_t *arena = arena_new(0);
    ck_assert_ptr_nonnull(arena);
    for (unsigned k = 0; k <= MONITOR_COUNT; k++) {
        wire_cause_t c = {.type = (uint8_t)k, .threshold = 1, .current = 2,
                          .uri_regex = "", .uri_path = ""};
        wire_trigger_t t = {.pid = 7, .target = WIRE_TARGET_ON_CPU,
                            .duration_ms = 1000, .service = "svc",
                            .ncauses = 1, .causes = &c};
        wire_buf_reset(&buf);
        int rc = wire_encode_trigger(&t, &buf);
        if (k == MONITOR_COUNT) {
            ck_assert_int_eq(rc, -1);
            continue;
        }
        ck_assert_int_eq(rc, 0);
        wire_trigger_t back;
        char err[128];
        arena_reset(arena);
        ck_assert_int_eq(wire_decode_trigger(buf.data, buf.len, arena, &back,
                                             err, sizeof err), 0);
        ck_assert_uint_eq(back.causes[0].type, k);
    }
    arena_destroy(&arena);
    wire_buf_release(&buf);
}
END_TEST

START_TEST(test_readers)
{
    monitor_sample_t s = {.at_ns = 3000000000ull, .cpu_ticks = 250,
                          .clk_tck = 100, .ncpu = 4, .threads = 12,
                          .load1 = 1.5};
    double v = -1;
    const monitor_desc_t *cpu = monitors_get(MONITOR_PROCESS_CPU);
    /* no previous reading: no CPU value yet */
    ck_assert_int_eq(cpu->read(&s, &v), -1);
    s.prev_at_ns = 1000000000ull;
    s.prev_cpu_ticks = 50;
    /* 2 s of CPU in 2 s of wall time on 4 CPUs: 25 % of the host */
    ck_assert_int_eq(cpu->read(&s, &v), 0);
    ck_assert(fabs(v - 25.0) < 1e-9);
    s.prev_cpu_ticks = 300;              /* ticks went back: pid reuse */
    ck_assert_int_eq(cpu->read(&s, &v), -1);
    ck_assert_int_eq(monitors_get(MONITOR_PROCESS_THREAD_COUNT)->read(&s, &v),
                     0);
    ck_assert(v == 12);
    ck_assert_int_eq(monitors_get(MONITOR_SYSTEM_LOAD)->read(&s, &v), 0);
    ck_assert(v == 1.5);
    /* HTTP monitors come with network profiling */
    ck_assert_ptr_null(monitors_get(MONITOR_HTTP_ERROR_RATE)->read);
    ck_assert_ptr_null(monitors_get(MONITOR_HTTP_AVG_RESPONSE_TIME)->read);
}
END_TEST

/* The rules of a NETWORK task a trigger starts: one per URI cause, the
 * default rule once for global causes, nothing from other monitors. */
START_TEST(test_sampling_rules)
{
    wire_cause_t causes[] = {
        {.type = MONITOR_PROCESS_CPU, .uri_regex = "", .uri_path = ""},
        {.type = MONITOR_HTTP_ERROR_RATE, .uri_regex = "", .uri_path = "/a\"b"},
        {.type = MONITOR_HTTP_AVG_RESPONSE_TIME, .uri_regex = "^/x",
         .uri_path = ""},
        {.type = MONITOR_HTTP_ERROR_RATE, .uri_regex = "", .uri_path = ""},
        {.type = MONITOR_HTTP_AVG_RESPONSE_TIME, .uri_regex = "",
         .uri_path = ""},
    };
    const char *rule = "\"minDuration\":0,\"when4xx\":true,"
                       "\"when5xx\":true,\"settings\":{"
                       "\"requireCompleteRequest\":true,"
                       "\"requireCompleteResponse\":true}}";
    char want[1024];
    snprintf(want, sizeof want, "{\"networkSamplings\":["
             "{\"uriRegex\":\"/a\\\"b\",%s,{\"uriRegex\":\"^/x\",%s,{%s]}",
             rule, rule, rule);
    char *got = monitors_sampling_rules(causes, 5);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    free(got);
    got = monitors_sampling_rules(causes, 1);
    ck_assert_str_eq(got, "{\"networkSamplings\":[]}");
    free(got);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("monitors");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_names_round_trip);
    tcase_add_test(tc, test_unknown_rejected);
    tcase_add_test(tc, test_numbers_are_the_oaps);
    tcase_add_test(tc, test_trigger_carries_every_monitor);
    tcase_add_test(tc, test_readers);
    tcase_add_test(tc, test_sampling_rules);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
