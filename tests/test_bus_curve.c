/* The bus on tcp:// with CURVE (lib/bus_curve.c, the real skyprof-broker):
 * a stage holding the shared key pair publishes and subscribes through
 * the broker; a plain publisher, a publisher with a key the broker was
 * not given, and a plain subscriber get nothing through, and the broker
 * counts the unknown key. On ipc:// the same configuration stays plain.
 * Every bus socket carries the message-size bound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bus.h"
#include "config.h"
#include "harness.h"
#include "testutil.h"
#include "wire.h"

typedef struct {
    char *dir;
    char config[512], log[512];
    char in[64], out[64];
    int http_port;
    pid_t broker;
    config_t *cfg;
    bus_curve_t curve;
    void *ctx;
    stats_t *stats;
} rig_t;

static void s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void s_rig_start(rig_t *r, int tcp)
{
    char pub[41], sec[41], path[600], yaml[2048], err[512];
    memset(r, 0, sizeof *r);
    r->dir = tu_mkdtemp();
    ck_assert_int_eq(zmq_curve_keypair(pub, sec), 0);
    snprintf(path, sizeof path, "%s/bus.key", r->dir);
    s_write(path, sec);
    if (tcp) {
        snprintf(r->in, sizeof r->in, "tcp://127.0.0.1:%d", th_free_port());
        snprintf(r->out, sizeof r->out, "tcp://127.0.0.1:%d", th_free_port());
    } else {
        snprintf(r->in, sizeof r->in, "ipc://%s/in", r->dir);
        snprintf(r->out, sizeof r->out, "ipc://%s/out", r->dir);
    }
    r->http_port = th_free_port();
    snprintf(yaml, sizeof yaml,
             "runtime_dir: %s/run\n"
             "bus:\n  in: %s\n  out: %s\n  curve_secret_key_file: %s\n"
             "broker:\n  http_addr: 127.0.0.1:%d\n",
             r->dir, r->in, r->out, path, r->http_port);
    snprintf(r->config, sizeof r->config, "%s/skyprof.yaml", r->dir);
    snprintf(r->log, sizeof r->log, "%s/broker.log", r->dir);
    s_write(r->config, yaml);
    r->cfg = config_load(r->config, err, sizeof err);
    ck_assert_msg(r->cfg != NULL, "%s", err);
    ck_assert_msg(bus_curve_load(r->cfg, &r->curve, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(r->curve.enabled, 1);
    ck_assert_str_eq(r->curve.public, pub);
    char *argv[] = {(char *)tu_build_path("bin/skyprof-broker"), "--config",
                    r->config, "--instance", "b", NULL};
    r->broker = tu_spawn(argv, r->log);
    ck_assert_int_gt(r->broker, 0);
    r->ctx = zmq_ctx_new();
    r->stats = stats_new("test", "t");
}

static void s_rig_stop(rig_t *r)
{
    if (r->broker > 0)
        tu_stop(r->broker, 5000);
    stats_destroy(&r->stats);
    zmq_ctx_term(r->ctx);
    config_destroy(&r->cfg);
    tu_rmtree(r->dir);
    free(r->dir);
}

static bus_t *s_bus(rig_t *r, const char *sender)
{
    bus_options_t bo = {.in_endpoint = r->in, .out_endpoint = r->out,
                        .send_hwm = 1000, .recv_hwm = 1000,
                        .sender = sender, .curve = &r->curve};
    bus_t *bus = bus_new(r->ctx, &bo, r->stats);
    ck_assert_ptr_nonnull(bus);
    return bus;
}

/* A raw socket connected to ep, with the given client key pair (NULL:
 * no CURVE at all). */
static void *s_raw(rig_t *r, int type, const char *ep, const char *pub,
                   const char *sec)
{
    int linger = 0;
    void *s = zmq_socket(r->ctx, type);
    ck_assert_ptr_nonnull(s);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (pub) {
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, r->curve.server, 40);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
    }
    if (type == ZMQ_SUB)
        zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
    ck_assert_int_eq(zmq_connect(s, ep), 0);
    return s;
}

static void s_raw_publish(void *s, const char *topic)
{
    zmq_send(s, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(s, "x", 1, ZMQ_DONTWAIT);
}

/* Counts, over ms milliseconds of publishing from every publisher every
 * 20 ms, what the subscriber hears per topic. */
typedef struct {
    int authorized, plain, stranger;
} heard_t;

static void s_exchange(bus_t *auth_pub, void *plain_pub, void *stranger_pub,
                       bus_t *sub, int ms, heard_t *h)
{
    uint64_t end = tu_now_ms() + (uint64_t)ms;
    while (tu_now_ms() < end) {
        bus_publish(auth_pub, "t.authorized", "x", 1);
        if (plain_pub)
            s_raw_publish(plain_pub, "t.plain");
        if (stranger_pub)
            s_raw_publish(stranger_pub, "t.stranger");
        usleep(20000);
        const char *topic;
        const void *payload;
        size_t len;
        while (bus_recv(sub, &topic, &payload, &len) == 1) {
            if (strcmp(topic, "t.authorized") == 0)
                h->authorized++;
            else if (strcmp(topic, "t.plain") == 0)
                h->plain++;
            else if (strcmp(topic, "t.stranger") == 0)
                h->stranger++;
        }
    }
}

START_TEST(tcp_admits_only_authorized_keys)
{
    if (!zmq_has("curve")) {
        tu_skip("tcp_admits_only_authorized_keys",
                "this libzmq has no CURVE support");
        return;
    }
    rig_t r;
    s_rig_start(&r, 1);
    bus_t *sub = s_bus(&r, "test/sub");
    ck_assert_int_eq(bus_subscribe(sub, "t."), 0);
    bus_t *pub = s_bus(&r, "test/pub");
    char spub[41], ssec[41];
    ck_assert_int_eq(zmq_curve_keypair(spub, ssec), 0);
    void *plain = s_raw(&r, ZMQ_PUB, r.in, NULL, NULL);
    void *stranger = s_raw(&r, ZMQ_PUB, r.in, spub, ssec);
    void *eavesdropper = s_raw(&r, ZMQ_SUB, r.out, NULL, NULL);

    /* Wait until the authorized path works (subscriptions propagate),
     * then keep everyone publishing a while longer. */
    heard_t h = {0, 0, 0};
    for (int i = 0; i < 50 && h.authorized == 0; i++)
        s_exchange(pub, plain, stranger, sub, 200, &h);
    ck_assert_msg(h.authorized > 0, "authorized messages never arrived; "
                  "see %s", r.log);
    s_exchange(pub, plain, stranger, sub, 1500, &h);
    ck_assert_int_gt(h.authorized, 10);
    ck_assert_int_eq(h.plain, 0);
    ck_assert_int_eq(h.stranger, 0);
    char frame[64];
    ck_assert_int_eq(zmq_recv(eavesdropper, frame, sizeof frame,
                              ZMQ_DONTWAIT), -1);

    int status = 0;
    char *m = tu_http("GET", "127.0.0.1", r.http_port, "/metrics", NULL,
                      &status, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(status, 200);
    ck_assert_double_gt(th_metric_sum(m, "skyprof_broker_bus_curve_refused_"
                                         "total", ""), 0);
    ck_assert_double_gt(th_metric_sum(m, "skyprof_broker_bus_curve_admitted_"
                                         "total", ""), 0);
    free(m);

    zmq_close(plain);
    zmq_close(stranger);
    zmq_close(eavesdropper);
    bus_destroy(&pub);
    bus_destroy(&sub);
    s_rig_stop(&r);
}
END_TEST

START_TEST(ipc_stays_plain_and_sizes_are_bounded)
{
    rig_t r;
    s_rig_start(&r, 0);
    bus_t *sub = s_bus(&r, "test/sub");
    ck_assert_int_eq(bus_subscribe(sub, "t."), 0);
    bus_t *pub = s_bus(&r, "test/pub");
    void *plain = s_raw(&r, ZMQ_PUB, r.in, NULL, NULL);
    heard_t h = {0, 0, 0};
    for (int i = 0; i < 50 && (h.authorized == 0 || h.plain == 0); i++)
        s_exchange(pub, plain, NULL, sub, 200, &h);
    ck_assert_msg(h.authorized > 0 && h.plain > 0, "ipc: %d authorized, %d "
                  "plain; see %s", h.authorized, h.plain, r.log);

    int64_t max = 0;
    size_t sz = sizeof max;
    ck_assert_int_eq(zmq_getsockopt(bus_sub_socket(sub), ZMQ_MAXMSGSIZE, &max,
                                    &sz), 0);
    ck_assert_int_eq(max, WIRE_MAX_PAYLOAD);
    zmq_close(plain);
    bus_destroy(&pub);
    bus_destroy(&sub);
    s_rig_stop(&r);
}
END_TEST

START_TEST(bad_key_files_are_refused)
{
    char *dir = tu_mkdtemp(), path[600], yaml[1024], cfgp[600], err[512];
    bus_curve_t c;
    /* 40 characters, but '~' is not in the Z85 alphabet. */
    static const char *const bad[] = {"", "short", "not~z85~~~~~~~~~~~~~~~"
                                                  "~~~~~~~~~~~~~~~~~~"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "%s/k%zu", dir, i);
        s_write(path, bad[i]);
        snprintf(yaml, sizeof yaml, "bus:\n  curve_secret_key_file: %s\n",
                 path);
        snprintf(cfgp, sizeof cfgp, "%s/c.yaml", dir);
        s_write(cfgp, yaml);
        config_t *cfg = config_load(cfgp, err, sizeof err);
        ck_assert_ptr_nonnull(cfg);
        ck_assert_msg(bus_curve_load(cfg, &c, err, sizeof err) == -1,
                      "key file %zu accepted", i);
        ck_assert_ptr_nonnull(strstr(err, "bus.curve_secret_key_file"));
        config_destroy(&cfg);
    }
    /* A missing file names itself; no key file at all means off. */
    snprintf(yaml, sizeof yaml, "bus:\n  curve_secret_key_file: %s/none\n",
             dir);
    s_write(cfgp, yaml);
    config_t *cfg = config_load(cfgp, err, sizeof err);
    ck_assert_int_eq(bus_curve_load(cfg, &c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "/none"));
    config_destroy(&cfg);
    cfg = config_load(NULL, err, sizeof err);
    ck_assert_int_eq(bus_curve_load(cfg, &c, err, sizeof err), 0);
    ck_assert_int_eq(c.enabled, 0);
    config_destroy(&cfg);
    tu_rmtree(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bus_curve");
    TCase *tc = tcase_create("curve");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, tcp_admits_only_authorized_keys);
    tcase_add_test(tc, ipc_stays_plain_and_sizes_are_bounded);
    tcase_add_test(tc, bad_key_files_are_refused);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
