/* lib/names: every value of every bus enumeration has a name that parses
 * back to it; unknown, empty and NULL names are refused; case is ignored
 * only when asked. */
#include <stdio.h>
#include <string.h>

#include "names.h"
#include "testutil.h"
#include "wire.h"

typedef struct {
    const char *(*name)(unsigned);
    int (*parse)(const char *, names_case_t);
    unsigned max;
    const char *first;   /* the name of value 0, as the OAP spells it */
} enum_case_t;

static const enum_case_t s_enums[] = {
    { names_target, names_target_parse, WIRE_TARGET_MAX, "ON_CPU" },
    { names_trigger, names_trigger_parse, WIRE_TRIGGER_MAX, "FIXED_TIME" },
    { names_source, names_source_parse, WIRE_SRC_MAX, "OAP" },
};

START_TEST(test_round_trip)
{
    const enum_case_t *e = &s_enums[_i];
    ck_assert_str_eq(e->name(0), e->first);
    for (unsigned v = 0; v <= e->max; v++) {
        const char *n = e->name(v);
        ck_assert_str_ne(n, "UNKNOWN");
        ck_assert_int_eq(e->parse(n, NAMES_EXACT), (int)v);
        ck_assert_int_eq(e->parse(n, NAMES_ANY_CASE), (int)v);
        /* names are distinct */
        for (unsigned w = 0; w < v; w++)
            ck_assert_str_ne(e->name(w), n);
    }
    ck_assert_str_eq(e->name(e->max + 1), "UNKNOWN");
    ck_assert_str_eq(e->name(~0u), "UNKNOWN");
}
END_TEST

START_TEST(test_unknown_rejected)
{
    const enum_case_t *e = &s_enums[_i];
    ck_assert_int_eq(e->parse(NULL, NAMES_EXACT), -1);
    ck_assert_int_eq(e->parse(NULL, NAMES_ANY_CASE), -1);
    ck_assert_int_eq(e->parse("", NAMES_EXACT), -1);
    ck_assert_int_eq(e->parse("UNKNOWN", NAMES_ANY_CASE), -1);
    ck_assert_int_eq(e->parse("NO_SUCH_THING", NAMES_ANY_CASE), -1);
    char buf[64];
    /* a prefix or an extension of a real name is not that name */
    snprintf(buf, sizeof buf, "%s ", e->first);
    ck_assert_int_eq(e->parse(buf, NAMES_ANY_CASE), -1);
    snprintf(buf, sizeof buf, "%.*s", (int)strlen(e->first) - 1, e->first);
    ck_assert_int_eq(e->parse(buf, NAMES_ANY_CASE), -1);
}
END_TEST

START_TEST(test_case)
{
    ck_assert_int_eq(names_target_parse("off_cpu", NAMES_EXACT), -1);
    ck_assert_int_eq(names_target_parse("off_cpu", NAMES_ANY_CASE),
                     WIRE_TARGET_OFF_CPU);
    ck_assert_int_eq(names_trigger_parse("Continuous_Profiling",
                                         NAMES_ANY_CASE),
                     WIRE_TRIGGER_CONTINUOUS);
    ck_assert_int_eq(names_source_parse("policy", NAMES_EXACT), -1);
    ck_assert_int_eq(names_source_parse("policy", NAMES_ANY_CASE),
                     WIRE_SRC_POLICY);
    ck_assert_str_eq(names_target(WIRE_TARGET_NETWORK), "NETWORK");
    ck_assert_str_eq(names_trigger(WIRE_TRIGGER_CONTINUOUS),
                     "CONTINUOUS_PROFILING");
}
END_TEST

START_TEST(test_index_skips_holes)
{
    static const char *const t[] = { "A", NULL, "C" };
    ck_assert_int_eq(names_index(t, 3, "C", NAMES_EXACT), 2);
    ck_assert_int_eq(names_index(t, 3, "c", NAMES_ANY_CASE), 2);
    ck_assert_int_eq(names_index(t, 3, "B", NAMES_EXACT), -1);
    ck_assert_int_eq(names_index(t, 0, "A", NAMES_EXACT), -1);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("core");
    int n = (int)(sizeof(s_enums) / sizeof(s_enums[0]));
    tcase_add_loop_test(tc, test_round_trip, 0, n);
    tcase_add_loop_test(tc, test_unknown_rejected, 0, n);
    tcase_add_test(tc, test_case);
    tcase_add_test(tc, test_index_skips_holes);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
