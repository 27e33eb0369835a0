/* lib/json: the DOM of a document with every kind of value, integers told
 * from other numbers, the reasons of refusals, the depth and arena bounds, and trailing
 * commas only when asked. */
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "json.h"
#include "testutil.h"

static arena_t *s_arena;
static char s_err[200];

static void s_setup(void)
{
    s_arena = arena_new(1 << 20);
}

static void s_teardown(void)
{
    arena_destroy(&s_arena);
}

static json_value_t *s_parse(const char *text, unsigned flags)
{
    return json_parse_opts(text, strlen(text), s_arena, flags, s_err,
                           sizeof s_err);
}

START_TEST(test_document)
{
    const char *text =
        " {\"name\": \"a\\u00e9\\n\\\"b\", \"pid\": 1234, \"neg\": -7,"
        "  \"ms\": 9007199254740993, \"ratio\": 0.25, \"exp\": 1e3,"
        "  \"ok\": true, \"no\": false, \"nil\": null,"
        "  \"list\": [1, [2], {\"x\": []}], \"empty\": {}} ";
    json_value_t *v = json_parse(text, strlen(text), s_arena, s_err,
                                 sizeof s_err);
    ck_assert_msg(v != NULL, "%s", s_err);
    ck_assert_int_eq(v->type, JSON_OBJECT);
    ck_assert_uint_eq(v->n, 11);
    ck_assert_str_eq(json_get(v, "name")->str, "a\xc3\xa9\n\"b");
    int64_t i = 0;
    ck_assert_int_eq(json_int(json_get(v, "pid"), &i), 0);
    ck_assert_int_eq(i, 1234);
    ck_assert_int_eq(json_int(json_get(v, "neg"), &i), 0);
    ck_assert_int_eq(i, -7);
    ck_assert_int_eq(json_int(json_get(v, "ms2"), &i), -1);   /* absent */
    /* above 2^53 a double is no longer exact: not an integer */
    ck_assert_int_eq(json_int(json_get(v, "ms"), &i), -1);
    ck_assert(json_get(v, "ms")->number > 9e15);
    ck_assert_int_eq(json_int(json_get(v, "ratio"), &i), -1);
    ck_assert(json_get(v, "ratio")->number == 0.25);
    ck_assert_int_eq(json_int(json_get(v, "exp"), &i), -1);
    ck_assert(json_get(v, "exp")->number == 1000);
    ck_assert_int_eq(json_int(json_get(v, "name"), &i), -1);
    ck_assert_int_eq(json_int(NULL, &i), -1);
    ck_assert_int_eq(json_get(v, "ok")->boolean, 1);
    ck_assert_int_eq(json_get(v, "no")->boolean, 0);
    ck_assert_int_eq(json_get(v, "nil")->type, JSON_NULL);
    const json_value_t *list = json_get(v, "list");
    ck_assert_uint_eq(list->n, 3);
    ck_assert_int_eq(list->items[1]->type, JSON_ARRAY);
    ck_assert_uint_eq(json_get(list->items[2], "x")->n, 0);
    ck_assert_uint_eq(json_get(v, "empty")->n, 0);
    ck_assert_ptr_null(json_get(v, "absent"));
    ck_assert_ptr_null(json_get(list, "x"));      /* not an object */
    ck_assert_ptr_null(json_get(NULL, "x"));
    /* an integer too large for int64 is still a number */
    v = s_parse("99999999999999999999", 0);
    ck_assert_ptr_nonnull(v);
    ck_assert(!v->is_int && v->number > 9e19);
    v = s_parse("9007199254740991", 0);
    int64_t top = 0;
    ck_assert_int_eq(json_int(v, &top), 0);
    ck_assert(top == 9007199254740991LL);
    ck_assert_int_eq(json_int(s_parse("-9007199254740992", 0), &top), -1);
    v = s_parse("-0", 0);
    ck_assert_int_eq(json_int(v, &top), 0);
    ck_assert(top == 0);
}
END_TEST

START_TEST(test_refusals)
{
    static const struct {
        const char *text, *why;
    } bad[] = {
        { "", "unexpected end" },
        { "{\"a\" 1}", "expected ':'" },
        { "{\"a\":1 \"b\":2}", "expected ',' or '}'" },
        { "[1 2]", "expected ',' or ']'" },
        { "{1:2}", "expected a member name" },
        { "[1,]", "unexpected character" },
        { "{\"a\":1,}", "expected a member name" },
        { "[,]", "unexpected character" },
        { "tru", "unexpected character" },
        { "{} x", "trailing characters" },
        { "-", "unexpected character" },
        { "1.2.3", "bad number" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(s_parse(bad[i].text, 0) == NULL, "'%s' accepted",
                      bad[i].text);
        ck_assert_msg(strstr(s_err, bad[i].why), "'%s': '%s' lacks '%s'",
                      bad[i].text, s_err, bad[i].why);
        ck_assert_ptr_eq(strstr(s_err, "at byte "), s_err);
    }
    ck_assert_ptr_null(json_parse(NULL, 0, s_arena, s_err, sizeof s_err));
    ck_assert_ptr_null(json_parse("1", 1, NULL, NULL, 0));
}
END_TEST

START_TEST(test_trailing_commas)
{
    json_value_t *v = s_parse("{\"a\": [1, 2, ], \"b\": {\"c\": 3,} ,}",
                              JSON_TRAILING_COMMAS);
    ck_assert_msg(v != NULL, "%s", s_err);
    ck_assert_uint_eq(v->n, 2);
    ck_assert_uint_eq(json_get(v, "a")->n, 2);
    ck_assert(json_get(json_get(v, "b"), "c")->number == 3);
    /* one comma ends a list, it does not stand for a value */
    ck_assert_ptr_null(s_parse("[1,,]", JSON_TRAILING_COMMAS));
    ck_assert_ptr_null(s_parse("[,]", JSON_TRAILING_COMMAS));
    ck_assert_ptr_null(s_parse("{,}", JSON_TRAILING_COMMAS));
    ck_assert_ptr_null(s_parse("[1,", JSON_TRAILING_COMMAS));
}
END_TEST

START_TEST(test_bounds)
{
    char deep[2 * JSON_MAX_DEPTH + 8];
    size_t n = JSON_MAX_DEPTH + 2;
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    ck_assert_ptr_null(s_parse(deep, 0));
    ck_assert_ptr_nonnull(strstr(s_err, "nested deeper"));
    n = JSON_MAX_DEPTH;
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    ck_assert_msg(s_parse(deep, 0) != NULL, "%s", s_err);
    /* the arena's limit bounds the DOM */
    arena_t *tiny = arena_new(1024);
    char big[8192];
    size_t at = 0;
    big[at++] = '[';
    while (at < sizeof big - 4) {
        big[at++] = '1';
        big[at++] = ',';
    }
    big[at - 1] = ']';
    big[at] = '\0';
    ck_assert_ptr_null(json_parse(big, at, tiny, s_err, sizeof s_err));
    ck_assert_ptr_nonnull(strstr(s_err, "too large"));
    arena_destroy(&tiny);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_document);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_trailing_commas);
    tcase_add_test(tc, test_bounds);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
