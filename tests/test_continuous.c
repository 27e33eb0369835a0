/* Continuous profiling logic: policy JSON validation (a bad document keeps
 * the previous policy), per-second slots, Count-of-Period firing, causes,
 * silence, deletion by empty UUID. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy-engine/continuous.h"
#include "testutil.h"

static const char *s_policy =
    "[{\"ServiceName\":\"svc\",\"UUID\":\"u1\","
    "\"Profiling\":{\"ON_CPU\":{\"PROCESS_CPU\":{\"Threshold\":\"50\","
    "\"Period\":10,\"Count\":3}},"
    "\"OFF_CPU\":{\"PROCESS_THREAD_COUNT\":{\"Threshold\":\"100\","
    "\"Period\":5,\"Count\":5}},"
    "\"NETWORK\":{\"HTTP_ERROR_RATE\":{\"Threshold\":\"15\",\"Period\":10,"
    "\"Count\":3,\"URIList\":[\"/a\"],\"URIRegex\":\"\"}}}}]";

static continuous_t *s_new(void)
{
    continuous_options_t o = {.execute_ms = 600000, .silence_ms = 1200000};
    continuous_t *c = continuous_new(&o);
    ck_assert_ptr_nonnull(c);
    char err[256];
    ck_assert_msg(continuous_apply_json(c, s_policy, strlen(s_policy), err,
                                        sizeof err) == 0, "%s", err);
    return c;
}

static void s_feed(continuous_t *c, uint64_t sec, uint32_t pid, double cpu,
                   double threads)
{
    cont_reading_t r = {.pid = pid, .service = "svc"};
    r.values[MONITOR_PROCESS_CPU] = cpu;
    r.has[MONITOR_PROCESS_CPU] = 1;
    r.values[MONITOR_PROCESS_THREAD_COUNT] = threads;
    r.has[MONITOR_PROCESS_THREAD_COUNT] = 1;
    continuous_observe(c, sec, &r, 1);
}

START_TEST(fires_after_count_slots_within_period)
{
    continuous_t *c = s_new();
    cont_trigger_t t[4];
    uint64_t base = 1700000000;
    /* Two slots over the threshold: not yet. */
    s_feed(c, base + 0, 42, 80, 1);
    s_feed(c, base + 1, 42, 10, 1);
    s_feed(c, base + 2, 42, 90, 1);
    ck_assert_uint_eq(continuous_check(c, (base + 2) * 1000, t, 4), 0);
    /* The third within the 10 s period: fires, ON_CPU, with the cause. */
    s_feed(c, base + 3, 42, 70, 1);
    ck_assert_uint_eq(continuous_check(c, (base + 3) * 1000, t, 4), 1);
    ck_assert_uint_eq(t[0].pid, 42);
    ck_assert_uint_eq(t[0].target, WIRE_TARGET_ON_CPU);
    ck_assert_uint_eq(t[0].ncauses, 1);
    ck_assert_uint_eq(t[0].causes[0].monitor, MONITOR_PROCESS_CPU);
    ck_assert_double_eq(t[0].causes[0].threshold, 50);
    ck_assert_double_eq(t[0].causes[0].current, 70);
    ck_assert_uint_eq(t[0].duration_ms, 600000);
    ck_assert_str_eq(t[0].service, "svc");
    /* Silence: still hot, but quiet for execute + silence. */
    for (uint64_t s = 4; s < 20; s++)
        s_feed(c, base + s, 42, 99, 1);
    ck_assert_uint_eq(continuous_check(c, (base + 20) * 1000, t, 4), 0);
    ck_assert_uint_eq(continuous_check(c, (base + 3) * 1000 + 1799999, t, 4), 0);
    s_feed(c, base + 1803, 42, 99, 1);
    s_feed(c, base + 1804, 42, 99, 1);
    s_feed(c, base + 1805, 42, 99, 1);
    ck_assert_uint_eq(continuous_check(c, (base + 1805) * 1000, t, 4), 1);
    continuous_destroy(&c);
    ck_assert_ptr_null(c);
}
END_TEST

START_TEST(old_slots_fall_out_of_the_period)
{
    continuous_t *c = s_new();
    cont_trigger_t t[4];
    uint64_t base = 1700000000;
    s_feed(c, base + 0, 7, 80, 1);
    s_feed(c, base + 1, 7, 80, 1);
    /* 12 s later those two are outside the 10 s period. */
    s_feed(c, base + 13, 7, 80, 1);
    ck_assert_uint_eq(continuous_check(c, (base + 13) * 1000, t, 4), 0);
    /* Below the threshold: never. */
    for (uint64_t s = 20; s < 40; s++)
        s_feed(c, base + s, 8, 49.9, 1);
    ck_assert_uint_eq(continuous_check(c, (base + 39) * 1000, t, 4), 0);
    /* The OFF_CPU item needs all 5 of 5 slots. */
    for (uint64_t s = 50; s < 54; s++)
        s_feed(c, base + s, 9, 0, 150);
    ck_assert_uint_eq(continuous_check(c, (base + 53) * 1000, t, 4), 0);
    s_feed(c, base + 54, 9, 0, 150);
    ck_assert_uint_eq(continuous_check(c, (base + 54) * 1000, t, 4), 1);
    ck_assert_uint_eq(t[0].target, WIRE_TARGET_OFF_CPU);
    ck_assert_uint_eq(t[0].causes[0].monitor, MONITOR_PROCESS_THREAD_COUNT);
    continuous_destroy(&c);
}
END_TEST

START_TEST(resent_policy_keeps_the_slots)
{
    continuous_t *c = s_new();
    cont_trigger_t t[4];
    uint64_t base = 1700000000;
    s_feed(c, base + 0, 42, 80, 1);
    s_feed(c, base + 1, 42, 80, 1);
    /* The same document again (same UUID): the two hot slots stay. */
    char err[256];
    ck_assert_int_eq(continuous_apply_json(c, s_policy, strlen(s_policy), err,
                                           sizeof err), 0);
    s_feed(c, base + 2, 42, 80, 1);
    ck_assert_uint_eq(continuous_check(c, (base + 2) * 1000, t, 4), 1);
    continuous_destroy(&c);
}
END_TEST

START_TEST(bad_documents_keep_the_previous_policy)
{
    continuous_t *c = s_new();
    static const char *bad[] = {
        "not json",
        "{\"ServiceName\":\"svc\"}",
        "[{\"ServiceName\":\"svc\",\"UUID\":\"u2\",\"Profiling\":{\"ON_CPU\":"
        "{\"PROCESS_CPU\":{\"Threshold\":\"\",\"Period\":10,\"Count\":3}}}}]",
        "[{\"ServiceName\":\"svc\",\"UUID\":\"u2\",\"Profiling\":{\"ON_CPU\":"
        "{\"PROCESS_CPU\":{\"Threshold\":\"5\",\"Period\":0,\"Count\":3}}}}]",
        "[{\"ServiceName\":\"svc\",\"UUID\":\"u2\",\"Profiling\":{\"ON_CPU\":"
        "{\"PROCESS_CPU\":{\"Threshold\":\"5\",\"Period\":3,\"Count\":4}}}}]",
        "[{\"ServiceName\":\"svc\",\"UUID\":\"u2\",\"Profiling\":{\"ON_CPU\":"
        "{\"PROCESS_CPU\":{\"Threshold\":\"5\",\"Period\":3,\"Count\":0}}}}]",
        "[{\"ServiceName\":\"svc\",\"UUID\":\"u2\",\"Profiling\":{\"GPU\":"
        "{\"PROCESS_CPU\":{\"Threshold\":\"5\",\"Period\":3,\"Count\":1}}}}]",
        "[{\"ServiceName\":\"svc\",\"UUID\":\"u2\",\"Profiling\":{\"ON_CPU\":"
        "{\"DISK_IO\":{\"Threshold\":\"5\",\"Period\":3,\"Count\":1}}}}]",
        /* a valid first service does not apply when the second is bad */
        "[{\"ServiceName\":\"other\",\"UUID\":\"x\",\"Profiling\":{}},"
        "{\"ServiceName\":\"\",\"UUID\":\"u2\"}]",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        /* NaN and infinities fail their range checks (before any integer
         * conversion: the sanitizer build flags one that happens) */
        "[{\"ServiceName\":\"svc\",\"UUID\":\"u2\",\"Profiling\":{\"ON_CPU\":"
        "{\"PROCESS_CPU\":{\"Threshold\":\"5\",\"Period\":\"nan\",\"Count\":1}}}}]",
        "[{\"ServiceName\":\"svc\",\"UUID\":\"u2\",\"Profiling\":{\"ON_CPU\":"
        "{\"PROCESS_CPU\":{\"Threshold\":\"5\",\"Period\":3,\"Count\":\"NaN\"}}}}]",
        "[{\"ServiceName\":\"svc\",\"UUID\":\"u2\",\"Profiling\":{\"ON_CPU\":"
        "{\"PROCESS_CPU\":{\"Threshold\":\"nan\",\"Period\":3,\"Count\":1}}}}]",
        "[{\"ServiceName\":\"svc\",\"UUID\":\"u2\",\"Profiling\":{\"ON_CPU\":"
        "{\"PROCESS_CPU\":{\"Threshold\":\"-inf\",\"Period\":3,\"Count\":1}}}}]",
        "[{\"ServiceName\":\"svc\",\"UUID\":\"u2\",\"Profiling\":{\"ON_CPU\":"
        "{\"PROCESS_CPU\":{\"Threshold\":\"5\",\"Period\":1e300,\"Count\":1}}}}]",
        "[{\"ServiceName\":\"svc\",\"UUID\":\"u2\",\"Profiling\":{\"ON_CPU\":"
        "{\"PROCESS_CPU\":{\"Threshold\":\"5\",\"Period\":3,\"Count\":\"-1e300\"}}}}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        ck_assert_msg(continuous_apply_json(c, bad[i], strlen(bad[i]), err,
                                            sizeof err) == -1,
                      "accepted: %s", bad[i]);
        ck_assert_msg(err[0], "no reason for %s", bad[i]);
        ck_assert_str_eq(continuous_service_uuid(c, "svc"), "u1");
        ck_assert_uint_eq(continuous_service_count(c), 1);
    }
    /* Deletion: empty UUID, no Profiling. */
    const char *del = "[{\"ServiceName\":\"svc\",\"UUID\":\"\"}]";
    char err[256];
    ck_assert_int_eq(continuous_apply_json(c, del, strlen(del), err, sizeof err), 0);
    ck_assert_uint_eq(continuous_service_count(c), 0);
    ck_assert_int_eq(continuous_wants(c, "svc", MONITOR_PROCESS_CPU), 0);
    continuous_destroy(&c);
}
END_TEST

/* A document of n services named <prefix>0.. with UUID <uuid>, each with
 * one ON_CPU policy; the caller frees it. */
static char *s_services_doc(const char *first, const char *prefix, int n,
                            const char *uuid)
{
    size_t cap = 256 + (size_t)n * 256 + (first ? strlen(first) : 0);
    char *doc = malloc(cap);
    ck_assert_ptr_nonnull(doc);
    size_t len = (size_t)snprintf(doc, cap, "[%s", first ? first : "");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(
            doc + len, cap - len,
            "%s{\"ServiceName\":\"%s%d\",\"UUID\":\"%s\",\"Profiling\":"
            "{\"ON_CPU\":{\"PROCESS_CPU\":{\"Threshold\":\"1\",\"Period\":2,"
            "\"Count\":1}}}}", (i || first) ? "," : "", prefix, i, uuid);
    snprintf(doc + len, cap - len, "]");
    return doc;
}

/* The table holds at most CONT_MAX_SERVICES services: a document that
 * would pass it is refused as a whole, also the changes it lists before
 * the service that does not fit (and nothing leaks on the way). */
START_TEST(full_table_refuses_the_whole_document)
{
    continuous_t *c = s_new();
    char err[256];
    char *fill = s_services_doc(NULL, "fill", CONT_MAX_SERVICES - 1, "f1");
    ck_assert_msg(continuous_apply_json(c, fill, strlen(fill), err,
                                        sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(continuous_service_count(c), CONT_MAX_SERVICES);
    free(fill);

    /* An update of svc, a removal of fill0, then two new services: the
     * table would end at 257. */
    const char *first =
        "{\"ServiceName\":\"svc\",\"UUID\":\"u2\",\"Profiling\":{\"ON_CPU\":"
        "{\"PROCESS_CPU\":{\"Threshold\":\"9\",\"Period\":4,\"Count\":2}}}},"
        "{\"ServiceName\":\"fill0\",\"UUID\":\"\"}";
    char *over = s_services_doc(first, "new", 2, "n1");
    err[0] = '\0';
    ck_assert_int_eq(continuous_apply_json(c, over, strlen(over), err,
                                           sizeof err), -1);
    ck_assert_msg(strstr(err, "more than 256 services"), "reason: %s", err);
    ck_assert_str_eq(continuous_service_uuid(c, "svc"), "u1");
    ck_assert_str_eq(continuous_service_uuid(c, "fill0"), "f1");
    ck_assert_str_eq(continuous_service_uuid(c, "new0"), "");
    ck_assert_uint_eq(continuous_service_count(c), CONT_MAX_SERVICES);
    free(over);

    /* With one new service it fits (fill0 makes room) and all applies. */
    over = s_services_doc(first, "new", 1, "n1");
    ck_assert_msg(continuous_apply_json(c, over, strlen(over), err,
                                        sizeof err) == 0, "%s", err);
    ck_assert_str_eq(continuous_service_uuid(c, "svc"), "u2");
    ck_assert_str_eq(continuous_service_uuid(c, "fill0"), "");
    ck_assert_str_eq(continuous_service_uuid(c, "new0"), "n1");
    ck_assert_uint_eq(continuous_service_count(c), CONT_MAX_SERVICES);
    free(over);

    /* A document longer than the table is refused before anything. */
    char *huge = s_services_doc(NULL, "h", CONT_MAX_SERVICES + 1, "h1");
    ck_assert_int_eq(continuous_apply_json(c, huge, strlen(huge), err,
                                           sizeof err), -1);
    ck_assert_str_eq(continuous_service_uuid(c, "h0"), "");
    ck_assert_uint_eq(continuous_service_count(c), CONT_MAX_SERVICES);
    free(huge);
    continuous_destroy(&c);
}
END_TEST

/* HTTP monitors read the network room's per-URI figures: each URIList
 * path is a window of its own, URIRegex filters, no URI = global; an
 * interval's value fills each of its seconds; causes carry the URI;
 * the values come back for the meters; a bad regex is refused. */
static const char *s_http_policy =
    "[{\"ServiceName\":\"web\",\"UUID\":\"h1\",\"Profiling\":{\"NETWORK\":{"
    "\"HTTP_ERROR_RATE\":{\"Threshold\":\"10\",\"Period\":6,\"Count\":4,"
    "\"URIList\":[\"/a\",\"/b\"]},"
    "\"HTTP_AVG_RESPONSE_TIME\":{\"Threshold\":\"100\",\"Period\":6,"
    "\"Count\":4,\"URIRegex\":\"^/api/\"}}}},"
    "{\"ServiceName\":\"all\",\"UUID\":\"h2\",\"Profiling\":{\"NETWORK\":{"
    "\"HTTP_ERROR_RATE\":{\"Threshold\":\"50\",\"Period\":4,\"Count\":2}}}}]";

static const cont_http_value_t *
s_value(const cont_http_value_t *v, size_t n, int monitor, const char *uri)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].monitor == monitor && !strcmp(v[i].uri, uri))
            return &v[i];
    return NULL;
}

START_TEST(http_monitors_per_uri_regex_and_global)
{
    continuous_options_t o = {.execute_ms = 60000, .silence_ms = 60000};
    continuous_t *c = continuous_new(&o);
    char err[256];
    ck_assert_msg(continuous_apply_json(c, s_http_policy,
                                        strlen(s_http_policy), err,
                                        sizeof err) == 0, "%s", err);
    ck_assert(continuous_wants_http(c, "web"));
    ck_assert(continuous_wants_http(c, "all"));
    ck_assert(!continuous_wants_http(c, "other"));
    cont_http_t rows[] = {
        {"/a", 10, 5, 100},          /* 50 % errors */
        {"/b", 10, 0, 100},
        {"/api/x", 2, 0, 300},       /* 150 ms on average */
        {"/api/y", 2, 2, 100},       /* with x: 100 ms on average */
        {"/other", 4, 4, 4000},
    };
    cont_http_value_t v[16];
    uint64_t base = 1700000000;
    /* First report: two seconds of one interval. */
    size_t nv = continuous_observe_http(c, 7, "web", base, base + 2, rows, 3,
                                        v, 16);
    ck_assert_uint_eq(nv, 3);
    ck_assert_double_eq(s_value(v, nv, MONITOR_HTTP_ERROR_RATE, "/a")->value,
                        50);
    ck_assert_double_eq(s_value(v, nv, MONITOR_HTTP_ERROR_RATE, "/b")->value,
                        0);
    ck_assert_double_eq(
        s_value(v, nv, MONITOR_HTTP_AVG_RESPONSE_TIME, "^/api/")->value, 150);
    cont_trigger_t t[4];
    ck_assert_uint_eq(continuous_check(c, (base + 2) * 1000, t, 4), 0);
    /* The next interval: four seconds reached, /a and the regex fire. */
    nv = continuous_observe_http(c, 7, "web", base + 2, base + 4, rows, 4, v,
                                 16);
    ck_assert_double_eq(
        s_value(v, nv, MONITOR_HTTP_AVG_RESPONSE_TIME, "^/api/")->value, 100);
    ck_assert_uint_eq(continuous_check(c, (base + 4) * 1000, t, 4), 1);
    ck_assert_uint_eq(t[0].pid, 7);
    ck_assert_uint_eq(t[0].target, WIRE_TARGET_NETWORK);
    ck_assert_uint_eq(t[0].ncauses, 2);
    for (uint32_t i = 0; i < 2; i++) {
        const cont_cause_t *cc = &t[0].causes[i];
        if (cc->monitor == MONITOR_HTTP_ERROR_RATE) {
            ck_assert_str_eq(cc->uri_path, "/a");
            ck_assert_str_eq(cc->uri_regex, "");
            ck_assert_double_eq(cc->current, 50);
        } else {
            ck_assert_uint_eq(cc->monitor, MONITOR_HTTP_AVG_RESPONSE_TIME);
            ck_assert_str_eq(cc->uri_regex, "^/api/");
            ck_assert_str_eq(cc->uri_path, "");
            ck_assert_double_eq(cc->current, 100);
        }
    }
    /* Global: every URI of the process counts; no request, no value. */
    nv = continuous_observe_http(c, 8, "all", base, base + 2, rows, 5, v, 16);
    ck_assert_uint_eq(nv, 1);
    ck_assert_str_eq(v[0].uri, "global");
    ck_assert_double_eq(v[0].value, 100.0 * 11 / 28);
    ck_assert_uint_eq(continuous_observe_http(c, 8, "all", base + 2,
                                              base + 4, rows + 4, 0, v, 16),
                      0);
    ck_assert_uint_eq(continuous_check(c, (base + 4) * 1000, t, 4), 0);
    nv = continuous_observe_http(c, 8, "all", base + 4, base + 6, rows + 4, 1,
                                 v, 16);
    ck_assert_double_eq(v[0].value, 100);
    ck_assert_uint_eq(continuous_check(c, (base + 6) * 1000, t, 4), 1);
    ck_assert_uint_eq(t[0].pid, 8);
    ck_assert_str_eq(t[0].causes[0].uri_path, "");
    ck_assert_str_eq(t[0].causes[0].uri_regex, "");

    /* A regex POSIX cannot compile: the document is refused. */
    const char *bad =
        "[{\"ServiceName\":\"web\",\"UUID\":\"h3\",\"Profiling\":{\"NETWORK\":"
        "{\"HTTP_ERROR_RATE\":{\"Threshold\":\"1\",\"Period\":2,\"Count\":1,"
        "\"URIRegex\":\"(unclosed\"}}}}]";
    ck_assert_int_eq(continuous_apply_json(c, bad, strlen(bad), err,
                                           sizeof err), -1);
    ck_assert_msg(strstr(err, "URIRegex"), "reason: %s", err);
    ck_assert_str_eq(continuous_service_uuid(c, "web"), "h1");
    continuous_destroy(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("continuous");
    TCase *tc = tcase_create("policies");
    tcase_add_test(tc, fires_after_count_slots_within_period);
    tcase_add_test(tc, old_slots_fall_out_of_the_period);
    tcase_add_test(tc, resent_policy_keeps_the_slots);
    tcase_add_test(tc, bad_documents_keep_the_previous_policy);
    tcase_add_test(tc, full_table_refuses_the_whole_document);
    tcase_add_test(tc, http_monitors_per_uri_regex_and_global);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
