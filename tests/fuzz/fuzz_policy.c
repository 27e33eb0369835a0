/* The continuous-profiling policy document (policy-engine/continuous.c),
 * as the OAP or a local file hands it over. Each input is applied to an
 * engine that already holds policies; the header's promise is checked:
 * a rejected document changes nothing, whichever check rejects it. An
 * accepted one is then exercised with readings, HTTP figures (URIList,
 * URIRegex and global items) and a check. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy-engine/continuous.h"

static const char s_baseline[] =
    "[{\"ServiceName\":\"svc-a\",\"UUID\":\"u-a\",\"Profiling\":{\"ON_CPU\":"
    "{\"PROCESS_CPU\":{\"Threshold\":\"50\",\"Period\":5,\"Count\":2}}}},"
    "{\"ServiceName\":\"svc-b\",\"UUID\":\"u-b\",\"Profiling\":{\"OFF_CPU\":"
    "{\"PROCESS_THREAD_COUNT\":{\"Threshold\":\"10\",\"Period\":3,"
    "\"Count\":1}}}}]";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    continuous_options_t o = {.execute_ms = 10000, .silence_ms = 20000};
    continuous_t *c = continuous_new(&o);
    if (!c)
        return 0;
    if (continuous_apply_json(c, s_baseline, sizeof s_baseline - 1, err,
                              sizeof err) != 0)
        __builtin_trap();
    size_t before = continuous_service_count(c);
    if (continuous_apply_json(c, (const char *)data, size, err,
                              sizeof err) != 0) {
        /* Nothing changed: same services, same versions. */
        if (continuous_service_count(c) != before ||
            strcmp(continuous_service_uuid(c, "svc-a"), "u-a") != 0 ||
            strcmp(continuous_service_uuid(c, "svc-b"), "u-b") != 0 ||
            !err[0])
            __builtin_trap();
    } else {
        cont_reading_t r[2] = {
            {.pid = 10, .service = "svc-a", .values = {90, 3, 1, 0, 0},
             .has = {1, 1, 1, 0, 0}},
            {.pid = 11, .service = "svc-b", .values = {5, 30, 1, 0.5, 9},
             .has = {1, 1, 1, 1, 1}},
        };
        cont_trigger_t t[8];
        cont_http_t http[] = {
            {"/a", 10, 5, 300}, {"/api/x", 4, 0, 900}, {"", 1, 1, 1},
            {"/\xff\xfe", 2, 2, 2},
        };
        cont_http_value_t v[16];
        for (uint64_t s = 1000; s < 1006; s++) {
            continuous_observe(c, s, r, 2);
            (void)continuous_observe_http(c, 10, "svc-a", s - 1, s, http, 4,
                                          v, 16);
            (void)continuous_observe_http(c, 12, "svc-c", s - 2, s, http, 4,
                                          v, 16);
        }
        (void)continuous_check(c, 1006 * 1000, t, 8);
    }
    continuous_destroy(&c);
    return 0;
}
