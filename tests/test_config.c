/* Configuration: defaults, file, environment override, ROVER_* alias,
 * ${VAR:default} expansion, list keys, and every kind of bad value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "testutil.h"

static char s_path[256];
static char s_err[512];

static const char *s_write(const char *text)
{
    snprintf(s_path, sizeof s_path, "/tmp/skyprof-cfg-%d.yaml", (int)getpid());
    FILE *f = fopen(s_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return s_path;
}

static void teardown(void)
{
    unlink(s_path);
    unsetenv("SKYPROF_PROFILING_FLUSH_INTERVAL");
    unsetenv("ROVER_PROFILING_FLUSH_INTERVAL");
    unsetenv("ROVER_CORE_BACKEND_ADDR");
    unsetenv("SKYPROF_CORE_BACKEND_ADDR");
    unsetenv("SKYPROF_TEST_OAP");
}

START_TEST(defaults_match_the_reference_agent)
{
    config_t *c = config_load(NULL, s_err, sizeof s_err);
    ck_assert_msg(c != NULL, "%s", s_err);
    ck_assert_uint_eq(config_duration_ms(c, "profiling.check_interval"), 10000);
    ck_assert_uint_eq(config_duration_ms(c, "profiling.flush_interval"), 5000);
    ck_assert_uint_eq(config_duration_ns(c, "profiling.task.on_cpu.dump_period"),
                      9000000);
    ck_assert_str_eq(config_str(c, "profiling.continuous.meter_prefix"),
                     "rover_con_p");
    ck_assert_uint_eq(config_duration_ms(c, "profiling.continuous.trigger.execute_duration"),
                      600000);
    ck_assert_uint_eq(config_duration_ms(c, "profiling.continuous.trigger.silence_duration"),
                      1200000);
    ck_assert_str_eq(config_str(c, "core.backend.addr"), "");
    ck_assert(config_bool(c, "profiling.active"));
    ck_assert_str_eq(config_origin(c, "profiling.flush_interval"), "default");
    config_destroy(&c);
    ck_assert_ptr_null(c);
    config_destroy(NULL);
}
END_TEST

START_TEST(file_values_and_lists)
{
    const char *p = s_write(
        "profiling:\n"
        "  flush_interval: 2s\n"
        "  task:\n"
        "    on_cpu:\n"
        "      dump_period: 10ms\n"
        "core:\n"
        "  backend:\n"
        "    addr: oap.example:11800\n"
        "    buffer_size: 400KB\n"
        "collector:\n"
        "  host_period: 1m30s\n"
        "process_discovery:\n"
        "  scanner:\n"
        "    regex:\n"
        "      - match_cmd_regex: ^/usr/bin/foo\n"
        "        layer: OS_LINUX\n"
        "      - match_cmd_regex: bar\n");
    config_t *c = config_load(p, s_err, sizeof s_err);
    ck_assert_msg(c != NULL, "%s", s_err);
    ck_assert_uint_eq(config_duration_ms(c, "profiling.flush_interval"), 2000);
    ck_assert_uint_eq(config_duration_ns(c, "profiling.task.on_cpu.dump_period"),
                      10000000);
    ck_assert_str_eq(config_str(c, "core.backend.addr"), "oap.example:11800");
    ck_assert_uint_eq(config_size(c, "core.backend.buffer_size"), 400 * 1024);
    ck_assert_uint_eq(config_duration_ms(c, "collector.host_period"), 90000);
    ck_assert_uint_eq(config_list_len(c, "process_discovery.scanner.regex"), 2);
    ck_assert_str_eq(config_raw(c, "process_discovery.scanner.regex[0].match_cmd_regex"),
                     "^/usr/bin/foo");
    ck_assert_str_eq(config_raw(c, "process_discovery.scanner.regex[1].match_cmd_regex"),
                     "bar");
    ck_assert_ptr_null(config_raw(c, "process_discovery.scanner.regex[2].match_cmd_regex"));
    ck_assert_str_eq(config_origin(c, "profiling.flush_interval"), "file");
    config_destroy(&c);
}
END_TEST

START_TEST(env_overrides_file_and_rover_alias)
{
    const char *p = s_write("profiling:\n  flush_interval: 2s\n");
    setenv("ROVER_PROFILING_FLUSH_INTERVAL", "7s", 1);
    config_t *c = config_load(p, s_err, sizeof s_err);
    ck_assert_msg(c != NULL, "%s", s_err);
    ck_assert_uint_eq(config_duration_ms(c, "profiling.flush_interval"), 7000);
    ck_assert_str_eq(config_origin(c, "profiling.flush_interval"),
                     "env ROVER_PROFILING_FLUSH_INTERVAL");
    config_destroy(&c);

    /* The SKYPROF_ name wins over the alias. */
    setenv("SKYPROF_PROFILING_FLUSH_INTERVAL", "3s", 1);
    c = config_load(p, s_err, sizeof s_err);
    ck_assert_msg(c != NULL, "%s", s_err);
    ck_assert_uint_eq(config_duration_ms(c, "profiling.flush_interval"), 3000);
    config_destroy(&c);

    setenv("ROVER_CORE_BACKEND_ADDR", "10.0.0.1:11800", 1);
    c = config_load(NULL, s_err, sizeof s_err);
    ck_assert_str_eq(config_str(c, "core.backend.addr"), "10.0.0.1:11800");
    config_destroy(&c);
}
END_TEST

START_TEST(placeholder_expansion)
{
    const char *p = s_write("core:\n  backend:\n    addr: ${SKYPROF_TEST_OAP:localhost:11800}\n");
    config_t *c = config_load(p, s_err, sizeof s_err);
    ck_assert_msg(c != NULL, "%s", s_err);
    ck_assert_str_eq(config_str(c, "core.backend.addr"), "localhost:11800");
    config_destroy(&c);
    setenv("SKYPROF_TEST_OAP", "oap:1", 1);
    c = config_load(p, s_err, sizeof s_err);
    ck_assert_str_eq(config_str(c, "core.backend.addr"), "oap:1");
    config_destroy(&c);
}
END_TEST

/* Each bad value must fail and name both the key and the value. */
static void s_expect_bad(const char *yaml, const char *key, const char *value)
{
    const char *p = s_write(yaml);
    s_err[0] = '\0';
    config_t *c = config_load(p, s_err, sizeof s_err);
    ck_assert_msg(c == NULL, "accepted: %s", yaml);
    ck_assert_msg(strstr(s_err, key) != NULL, "error '%s' lacks key %s", s_err,
                  key);
    if (value)
        ck_assert_msg(strstr(s_err, value) != NULL,
                      "error '%s' lacks value %s", s_err, value);
}

START_TEST(bad_values_are_named)
{
    s_expect_bad("profiling:\n  flush_interval: soon\n",
                 "profiling.flush_interval", "soon");
    s_expect_bad("profiling:\n  flush_interval: 5\n",
                 "profiling.flush_interval", "'5'");
    s_expect_bad("profiling:\n  flush_interval: 0s\n",
                 "profiling.flush_interval", "0s");
    s_expect_bad("profiling:\n  active: maybe\n", "profiling.active", "maybe");
    s_expect_bad("bus:\n  hwm: -3\n", "bus.hwm", "-3");
    s_expect_bad("bus:\n  hwm: 12abc\n", "bus.hwm", "12abc");
    s_expect_bad("core:\n  backend:\n    buffer_size: lots\n",
                 "core.backend.buffer_size", "lots");
    s_expect_bad("log:\n  level: chatty\n", "log.level", "chatty");
    s_expect_bad("profiling:\n  task:\n    on_cpu:\n      dump_period: 100us\n",
                 "profiling.task.on_cpu.dump_period", "100us");
    s_expect_bad("collector:\n  host_period: 1ms\n", "collector.host_period",
                 "1ms");
    setenv("SKYPROF_PROFILING_FLUSH_INTERVAL", "-1s", 1);
    s_expect_bad("", "profiling.flush_interval", "env SKYPROF_PROFILING_FLUSH_INTERVAL");
}
END_TEST

START_TEST(bad_files_are_errors)
{
    s_err[0] = '\0';
    ck_assert_ptr_null(config_load("/nonexistent/skyprof.yaml", s_err, sizeof s_err));
    ck_assert_ptr_nonnull(strstr(s_err, "/nonexistent/skyprof.yaml"));
    const char *p = s_write("profiling: [unclosed\n");
    ck_assert_ptr_null(config_load(p, s_err, sizeof s_err));
    ck_assert_ptr_nonnull(strstr(s_err, p));
    p = s_write("- just\n- a list\n");
    ck_assert_ptr_null(config_load(p, s_err, sizeof s_err));
    ck_assert_ptr_nonnull(strstr(s_err, "mapping"));
    /* More than 1 MiB is refused, however it is read. */
    char *big = malloc((1u << 20) + 2);
    ck_assert_ptr_nonnull(big);
    memset(big, '#', (1u << 20) + 1);
    big[(1u << 20) + 1] = '\0';
    p = s_write(big);
    free(big);
    ck_assert_ptr_null(config_load(p, s_err, sizeof s_err));
    ck_assert_msg(strstr(s_err, "larger than 1048576 bytes"), "%s", s_err);
    /* An empty file means defaults. */
    p = s_write("");
    config_t *c = config_load(p, s_err, sizeof s_err);
    ck_assert_msg(c != NULL, "%s", s_err);
    config_destroy(&c);
}
END_TEST

/* YAML anchors and aliases: a few work as usual; nested ones that expand
 * a small file without end ("billion laughs") and files of too many
 * aliases are refused with the line, before any stage could hang. */
START_TEST(aliases_are_bounded)
{
    const char *p = s_write(
        "common: &c\n"
        "  layer: OS_LINUX\n"
        "process_discovery:\n"
        "  scanner:\n"
        "    regex:\n"
        "      - *c\n"
        "      - *c\n");
    config_t *c = config_load(p, s_err, sizeof s_err);
    ck_assert_msg(c != NULL, "%s", s_err);
    ck_assert_str_eq(config_raw(c, "process_discovery.scanner.regex[1].layer"),
                     "OS_LINUX");
    config_destroy(&c);

    /* Seven levels of nine aliases each: 63 aliases, 9^7 (4.8 million)
     * nodes once expanded, none of them a key to keep. */
    char doc[4096];
    size_t len = (size_t)snprintf(doc, sizeof doc,
                                  "l0: &l0 [{}, {}, {}, {}, {}, {}, {}, {}, {}]\n");
    for (int lvl = 1; lvl <= 7; lvl++)
        len += (size_t)snprintf(doc + len, sizeof doc - len,
                                "l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, "
                                "*l%d, *l%d, *l%d]\n", lvl, lvl, lvl - 1,
                                lvl - 1, lvl - 1, lvl - 1, lvl - 1, lvl - 1,
                                lvl - 1, lvl - 1, lvl - 1);
    p = s_write(doc);
    s_err[0] = '\0';
    ck_assert_ptr_null(config_load(p, s_err, sizeof s_err));
    ck_assert_msg(strstr(s_err, "aliases expand the file to more than"),
                  "reason: %s", s_err);
    char where[300];
    snprintf(where, sizeof where, "%s:", p);
    ck_assert_msg(strncmp(s_err, where, strlen(where)) == 0 &&
                  s_err[strlen(where)] >= '1' && s_err[strlen(where)] <= '9',
                  "no line in: %s", s_err);

    /* 65 aliases, one a line: refused at the 65th, line 67. */
    len = (size_t)snprintf(doc, sizeof doc, "x: &s v\nl:\n");
    for (int i = 0; i < 65; i++)
        len += (size_t)snprintf(doc + len, sizeof doc - len, "  - *s\n");
    p = s_write(doc);
    s_err[0] = '\0';
    ck_assert_ptr_null(config_load(p, s_err, sizeof s_err));
    snprintf(where, sizeof where, "%s:67: more than 64 aliases", p);
    ck_assert_msg(strstr(s_err, where), "reason: %s", s_err);
}
END_TEST

START_TEST(value_parsers)
{
    uint64_t v;
    ck_assert_int_eq(config_parse_duration_ns("1h2m3s", &v), 0);
    ck_assert_uint_eq(v, 3723000000000ull);
    ck_assert_int_eq(config_parse_duration_ns("1.5s", &v), 0);
    ck_assert_uint_eq(v, 1500000000ull);
    ck_assert_int_eq(config_parse_duration_ns("10", &v), -1);
    ck_assert_int_eq(config_parse_duration_ns("s", &v), -1);
    ck_assert_int_eq(config_parse_duration_ns("", &v), -1);
    ck_assert_int_eq(config_parse_size("8MB", &v), 0);
    ck_assert_uint_eq(v, 8u << 20);
    ck_assert_int_eq(config_parse_size("99999999999999999999GB", &v), -1);
    ck_assert_int_eq(config_parse_size("-1", &v), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, defaults_match_the_reference_agent);
    tcase_add_test(tc, file_values_and_lists);
    tcase_add_test(tc, env_overrides_file_and_rover_alias);
    tcase_add_test(tc, placeholder_expansion);
    tcase_add_test(tc, bad_values_are_named);
    tcase_add_test(tc, bad_files_are_errors);
    tcase_add_test(tc, aliases_are_bounded);
    tcase_add_test(tc, value_parsers);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
