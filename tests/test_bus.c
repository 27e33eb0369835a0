/* lib/bus.c's endpoint lists: one stage connected to two brokers (a
 * node-local and a central one) sends each topic only where it was
 * subscribed, and hears both. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bus.h"
#include "stats.h"
#include "testutil.h"

typedef struct {
    char *dir;
    void *ctx;
    stats_t *stats;
    void *xsub[2];   /* the brokers' input sides */
    void *xpub[2];   /* the brokers' output sides */
    char in[2][600], out[2][600];
} rig_t;

static void s_rig_start(rig_t *r)
{
    int linger = 0, timeout = 2000;

    r->dir = tu_mkdtemp();
    r->ctx = zmq_ctx_new();
    r->stats = stats_new("test", "t");
    ck_assert_ptr_nonnull(r->ctx);
    for (int i = 0; i < 2; i++) {
        snprintf(r->in[i], sizeof r->in[i], "ipc://%s/in%d", r->dir, i);
        snprintf(r->out[i], sizeof r->out[i], "ipc://%s/out%d", r->dir, i);
        r->xsub[i] = zmq_socket(r->ctx, ZMQ_XSUB);
        r->xpub[i] = zmq_socket(r->ctx, ZMQ_XPUB);
        ck_assert_ptr_nonnull(r->xsub[i]);
        ck_assert_ptr_nonnull(r->xpub[i]);
        zmq_setsockopt(r->xsub[i], ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(r->xpub[i], ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(r->xsub[i], ZMQ_RCVTIMEO, &timeout, sizeof timeout);
        ck_assert_int_eq(zmq_bind(r->xsub[i], r->in[i]), 0);
        ck_assert_int_eq(zmq_bind(r->xpub[i], r->out[i]), 0);
    }
}

static void s_rig_stop(rig_t *r)
{
    for (int i = 0; i < 2; i++) {
        zmq_close(r->xsub[i]);
        zmq_close(r->xpub[i]);
    }
    stats_destroy(&r->stats);
    zmq_ctx_term(r->ctx);
    tu_rmtree(r->dir);
    free(r->dir);
}

/* Broker i's subscribers want topics starting with prefix. */
static void s_subscribe_upstream(rig_t *r, int i, const char *prefix)
{
    char msg[64];
    size_t n = strlen(prefix);
    msg[0] = 1;
    memcpy(msg + 1, prefix, n);
    ck_assert_int_eq(zmq_send(r->xsub[i], msg, n + 1, 0), (int)(n + 1));
}

/* The topic frame of the next message on broker i's input, "" on
 * timeout; the rest of the message is discarded. */
static void s_next_topic(rig_t *r, int i, char *topic, size_t size)
{
    int more = 0;
    size_t more_len = sizeof more;
    int n = zmq_recv(r->xsub[i], topic, size - 1, 0);
    topic[n < 0 ? 0 : (size_t)n < size - 1 ? (size_t)n : size - 1] = '\0';
    while (n >= 0 && zmq_getsockopt(r->xsub[i], ZMQ_RCVMORE, &more,
                                    &more_len) == 0 && more) {
        char skip[256];
        n = zmq_recv(r->xsub[i], skip, sizeof skip, 0);
    }
}

START_TEST(publishes_each_topic_where_it_is_wanted)
{
    rig_t r;
    char in[1300], out[1300], topic[64];

    s_rig_start(&r);
    snprintf(in, sizeof in, "%s,%s", r.in[0], r.in[1]);
    snprintf(out, sizeof out, "%s,%s", r.out[0], r.out[1]);
    bus_options_t bo = { .in_endpoint = in, .out_endpoint = out,
                         .send_hwm = 1000, .recv_hwm = 1000,
                         .sender = "collector/test" };
    bus_t *bus = bus_new(r.ctx, &bo, r.stats);
    ck_assert_ptr_nonnull(bus);
    /* Local broker: raw stacks (its symbolizer); central: process events
     * (the central aggregators). */
    s_subscribe_upstream(&r, 0, "raw.");
    s_subscribe_upstream(&r, 1, "proc.");
    /* Subscriptions travel asynchronously: publish until both arrive. */
    int got_raw = 0, got_proc = 0;
    for (int round = 0; round < 50 && !(got_raw && got_proc); round++) {
        bus_publish(bus, "raw.stacks.01", "r", 1);
        bus_publish(bus, "proc.events", "p", 1);
        usleep(20000);
        int ev = 0;
        size_t evlen = sizeof ev;
        for (int i = 0; i < 2; i++)
            while (zmq_getsockopt(r.xsub[i], ZMQ_EVENTS, &ev, &evlen) == 0 &&
                   (ev & ZMQ_POLLIN)) {
                s_next_topic(&r, i, topic, sizeof topic);
                /* Never the other broker's topic. */
                ck_assert_str_eq(topic, i == 0 ? "raw.stacks.01"
                                               : "proc.events");
                if (i == 0)
                    got_raw = 1;
                else
                    got_proc = 1;
            }
    }
    ck_assert_msg(got_raw && got_proc, "raw %d proc %d", got_raw, got_proc);

    /* And it hears both brokers' outputs. */
    ck_assert_int_eq(bus_subscribe(bus, "ctl."), 0);
    int heard[2] = {0, 0};
    for (int round = 0; round < 100 && !(heard[0] && heard[1]); round++) {
        for (int i = 0; i < 2; i++) {
            const char *t = i ? "ctl.b" : "ctl.a";
            zmq_send(r.xpub[i], t, strlen(t), ZMQ_SNDMORE);
            zmq_send(r.xpub[i], "x", 1, 0);
        }
        usleep(20000);
        const char *t;
        const void *payload;
        size_t len;
        while (bus_recv(bus, &t, &payload, &len) == 1) {
            if (strcmp(t, "ctl.a") == 0)
                heard[0] = 1;
            if (strcmp(t, "ctl.b") == 0)
                heard[1] = 1;
        }
    }
    ck_assert_msg(heard[0] && heard[1], "heard a %d b %d", heard[0], heard[1]);
    bus_destroy(&bus);
    s_rig_stop(&r);
}
END_TEST

START_TEST(rejects_bad_endpoint_lists)
{
    rig_t r;
    char list[1300];
    static const char *const bad[] = { "", ",", "%s,", ",%s", "%s,,%s" };

    s_rig_start(&r);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(list, sizeof list, bad[i], r.in[0], r.in[1]);
        bus_options_t bo = { .in_endpoint = list, .out_endpoint = r.out[0],
                             .send_hwm = 10, .recv_hwm = 10,
                             .sender = "x/y" };
        bus_t *bus = bus_new(r.ctx, &bo, r.stats);
        ck_assert_msg(bus == NULL, "accepted '%s'", list);
    }
    s_rig_stop(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bus");
    TCase *tc = tcase_create("endpoints");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, publishes_each_topic_where_it_is_wanted);
    tcase_add_test(tc, rejects_bad_endpoint_lists);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
