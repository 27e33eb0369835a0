/* lib/hostport: every accepted form, every refusal, and format's brackets;
 * health_http_parse_addr keeps its forms on top of it. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "health_http.h"
#include "hostport.h"
#include "testutil.h"

static void s_ok(const char *s, unsigned flags, const char *host,
                 unsigned port, int has_port)
{
    hostport_t hp;
    char err[128] = "";
    ck_assert_msg(hostport_parse(s, flags, &hp, err, sizeof err) == 0,
                  "'%s' refused: %s", s, err);
    ck_assert_str_eq(hp.host, host);
    ck_assert_uint_eq(hp.port, port);
    ck_assert_int_eq(hp.has_port, has_port);
}

static void s_bad(const char *s, unsigned flags, const char *why)
{
    hostport_t hp;
    char err[128] = "";
    ck_assert_msg(hostport_parse(s, flags, &hp, err, sizeof err) == -1,
                  "'%s' accepted", s ? s : "(null)");
    ck_assert_msg(strstr(err, why), "'%s': error '%s' lacks '%s'",
                  s ? s : "(null)", err, why);
    ck_assert_str_eq(hp.host, "");
    ck_assert_uint_eq(hp.port, 0);
}

START_TEST(test_accepted)
{
    s_ok("localhost:8080", 0, "localhost", 8080, 1);
    s_ok("10.0.0.1:0", 0, "10.0.0.1", 0, 1);
    s_ok("oap.skywalking.svc.cluster.local:11800", 0,
         "oap.skywalking.svc.cluster.local", 11800, 1);
    s_ok("[::1]:65535", 0, "::1", 65535, 1);
    s_ok("[fe80::1%eth0]:9", 0, "fe80::1%eth0", 9, 1);
    s_ok(":9100", 0, "", 9100, 1);
    s_ok("*:1", 0, "*", 1, 1);
    s_ok("host", HOSTPORT_PORT_OPTIONAL, "host", 0, 0);
    s_ok("[::]", HOSTPORT_PORT_OPTIONAL, "::", 0, 0);
    s_ok("9101", HOSTPORT_BARE_PORT, "", 9101, 1);
    s_ok("00080", HOSTPORT_BARE_PORT, "", 80, 1);
    /* all digits without BARE_PORT is a (numeric) host name */
    s_ok("9101", HOSTPORT_PORT_OPTIONAL, "9101", 0, 0);
    char longest[HOSTPORT_HOST_MAX + 8];
    memset(longest, 'a', HOSTPORT_HOST_MAX - 1);
    strcpy(longest + HOSTPORT_HOST_MAX - 1, ":1");
    hostport_t hp;
    ck_assert_int_eq(hostport_parse(longest, 0, &hp, NULL, 0), 0);
    ck_assert_uint_eq(strlen(hp.host), HOSTPORT_HOST_MAX - 1);
}
END_TEST

START_TEST(test_refused)
{
    s_bad(NULL, 0, "empty");
    s_bad("", HOSTPORT_PORT_OPTIONAL | HOSTPORT_BARE_PORT, "empty");
    s_bad("localhost", 0, "no port");
    s_bad("[::1]", 0, "no port");
    s_bad("localhost:", 0, "not in 0..65535");
    s_bad("localhost:65536", 0, "not in 0..65535");
    s_bad("localhost:99999999999999999999", 0, "not in 0..65535");
    s_bad("localhost:-1", 0, "not in 0..65535");
    s_bad("localhost:+80", 0, "not in 0..65535");
    s_bad("localhost: 80", 0, "not in 0..65535");
    s_bad("localhost:80 ", 0, "not in 0..65535");
    s_bad("localhost:0x50", 0, "not in 0..65535");
    s_bad("localhost:http", 0, "not in 0..65535");
    s_bad("70000", HOSTPORT_BARE_PORT, "not in 0..65535");
    s_bad("::1:80", 0, "brackets");
    s_bad("::1", HOSTPORT_PORT_OPTIONAL, "brackets");
    s_bad("[::1:80", 0, "without");
    s_bad("[]:80", 0, "empty brackets");
    s_bad("[::1]80", 0, "after ']'");
    s_bad("[::1]]:80", 0, "after ']'");
    s_bad("a]:80", 0, "bad character");
    s_bad("[a[b]:80", 0, "bad character");
    s_bad("ho st:80", 0, "bad character");
    s_bad("user@host:80", 0, "bad character");
    s_bad("host/x:80", 0, "bad character");
    s_bad("ho\tst:80", 0, "bad character");
    char toolong[HOSTPORT_HOST_MAX + 8];
    memset(toolong, 'a', HOSTPORT_HOST_MAX);
    strcpy(toolong + HOSTPORT_HOST_MAX, ":1");
    s_bad(toolong, 0, "longer than");
    /* err may be omitted */
    hostport_t hp;
    ck_assert_int_eq(hostport_parse("x", 0, &hp, NULL, 0), -1);
}
END_TEST

START_TEST(test_format)
{
    char out[64];
    ck_assert_int_eq(hostport_format("10.0.0.1", "443", out, sizeof out), 0);
    ck_assert_str_eq(out, "10.0.0.1:443");
    ck_assert_int_eq(hostport_format("fd00::1", "443", out, sizeof out), 0);
    ck_assert_str_eq(out, "[fd00::1]:443");
    ck_assert_int_eq(hostport_format("fd00::1", NULL, out, sizeof out), 0);
    ck_assert_str_eq(out, "[fd00::1]");
    ck_assert_int_eq(hostport_format("name", NULL, out, sizeof out), 0);
    ck_assert_str_eq(out, "name");
    ck_assert_int_eq(hostport_format("fd00::1", "443", out, 13), -1);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(hostport_format("fd00::1", "443", out, 14), 0);
    /* what format writes, parse reads back */
    hostport_t hp;
    hostport_format("fe80::2", "8", out, sizeof out);
    ck_assert_int_eq(hostport_parse(out, 0, &hp, NULL, 0), 0);
    ck_assert_str_eq(hp.host, "fe80::2");
    ck_assert_uint_eq(hp.port, 8);
}
END_TEST

START_TEST(test_health_http_forms)
{
    /* ":port", "localhost:port" and "port" are test_health_http's */
    struct sockaddr_in sa;
    ck_assert_int_eq(health_http_parse_addr("*:7", &sa), 0);
    ck_assert_uint_eq(ntohl(sa.sin_addr.s_addr), INADDR_ANY);
    ck_assert_uint_eq(ntohs(sa.sin_port), 7);
    ck_assert_int_eq(health_http_parse_addr("127.0.0.2:5", &sa), 0);
    ck_assert_uint_eq(ntohl(sa.sin_addr.s_addr), 0x7f000002);
    ck_assert_int_eq(health_http_parse_addr("127.0.0.1:99999", &sa), -1);
    ck_assert_int_eq(health_http_parse_addr("127.0.0.1:", &sa), -1);
    ck_assert_int_eq(health_http_parse_addr("[::1]:80", &sa), -1); /* IPv4 */
    ck_assert_int_eq(health_http_parse_addr("name.example:80", &sa), -1);
    ck_assert_int_eq(health_http_parse_addr("abc", &sa), -1);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("hostport");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_accepted);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_health_http_forms);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
