/* lib/msg.c's message table and lib/bus.c's typed edges built on it:
 * every message type has a topic, a codec and a round trip; a malformed
 * payload of every type is counted invalid exactly once and never reaches
 * its handler; sequence numbers count a gap as lost and a restarted
 * sender (seq back to 1) as nothing lost; bus_send numbers with the one
 * scheme. The test plays the broker: it binds the XPUB side the bus
 * subscribes to and the XSUB side it publishes to. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "arena.h"
#include "bus.h"
#include "msg.h"
#include "stats.h"
#include "testutil.h"
#include "wire.h"

/* ------------------------------------------------------------ helpers */

/* A topic of each message type as a stage would use it. */
static void s_topic(msg_id_t id, char *out, size_t size)
{
    const msg_desc_t *d = msg_desc(id);
    if (d->shape == MSG_SHAPE_SUFFIX)
        ck_assert_int_eq(msg_topic_for_name(id, "test", out, size), 0);
    else
        ck_assert_int_eq(msg_topic_for_pid(id, 4242, out, size), 0);
}

/* A body of each type that encodes: zeroed, with the strings an encoder
 * requires. Lives in arena. */
static void *s_body(msg_id_t id, arena_t *arena)
{
    void *body = arena_calloc(arena, 1, msg_desc(id)->size);
    ck_assert_ptr_nonnull(body);
    switch (id) {
    case MSG_STATS: {
        wire_stats_t *m = body;
        m->stage = "test";
        m->instance = "t";
        break;
    }
    case MSG_HELLO: {
        wire_hello_t *m = body;
        m->role = "test";
        m->instance = "t";
        break;
    }
    case MSG_AGG_PEER: {
        wire_agg_peer_t *m = body;
        m->instance = "t";
        m->addr = "127.0.0.1:1";
        break;
    }
    case MSG_AGG_CLAIM:
    case MSG_AGG_RELEASE: {
        wire_agg_release_t *m = body;
        m->instance = "t";
        break;
    }
    case MSG_AGG_IDLE: {
        wire_agg_idle_t *m = body;
        m->instance = "t";
        break;
    }
    case MSG_K8S_CONTAINERS: {
        wire_k8s_containers_t *m = body;
        m->node = "n";
        break;
    }
    case MSG_POLICY_UPDATE: {
        wire_policy_update_t *m = body;
        m->json = "[]";
        break;
    }
    case MSG_TRIGGER: {
        wire_trigger_t *m = body;
        m->service = "s";
        break;
    }
    default:
        break;
    }
    return body;
}

typedef struct {
    char *dir;
    void *ctx;
    stats_t *stats;
    void *xpub;      /* what the bus hears */
    void *xsub;      /* what the bus says */
    bus_t *bus;
} rig_t;

static void s_rig_start(rig_t *r)
{
    int linger = 0, timeout = 2000;
    char in[600], out[600];

    memset(r, 0, sizeof *r);
    r->dir = tu_mkdtemp();
    r->ctx = zmq_ctx_new();
    r->stats = stats_new("test", "t");
    snprintf(in, sizeof in, "ipc://%s/in", r->dir);
    snprintf(out, sizeof out, "ipc://%s/out", r->dir);
    r->xsub = zmq_socket(r->ctx, ZMQ_XSUB);
    r->xpub = zmq_socket(r->ctx, ZMQ_XPUB);
    ck_assert_ptr_nonnull(r->xsub);
    ck_assert_ptr_nonnull(r->xpub);
    zmq_setsockopt(r->xsub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(r->xpub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(r->xsub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(r->xpub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    ck_assert_int_eq(zmq_bind(r->xsub, in), 0);
    ck_assert_int_eq(zmq_bind(r->xpub, out), 0);
    bus_options_t bo = { .in_endpoint = in, .out_endpoint = out,
                         .send_hwm = 1000, .recv_hwm = 1000,
                         .sender = "test/t" };
    r->bus = bus_new(r->ctx, &bo, r->stats);
    ck_assert_ptr_nonnull(r->bus);
}

static void s_rig_stop(rig_t *r)
{
    bus_destroy(&r->bus);
    zmq_close(r->xsub);
    zmq_close(r->xpub);
    stats_destroy(&r->stats);
    zmq_ctx_term(r->ctx);
    tu_rmtree(r->dir);
    free(r->dir);
}

/* Subscribes the bus to everything and waits until the "broker" sees it,
 * so nothing injected afterwards is lost to the slow joiner. */
static void s_rig_listen(rig_t *r)
{
    char sub[64];
    int n;
    ck_assert_int_eq(bus_subscribe(r->bus, ""), 0);
    /* bus_on's own subscriptions come first. */
    do
        n = zmq_recv(r->xpub, sub, sizeof sub, 0);
    while (n > 1);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(sub[0], 1);
}

static void s_inject(rig_t *r, const char *topic, const void *data,
                     size_t len)
{
    ck_assert_int_ge(zmq_send(r->xpub, topic, strlen(topic), ZMQ_SNDMORE),
                     0);
    ck_assert_int_ge(zmq_send(r->xpub, data, len, 0), 0);
}

/* Dispatches until n messages were received (or 2 s passed). */
static void s_dispatch(rig_t *r, int n)
{
    int got = 0;
    for (int i = 0; i < 200 && got < n; i++) {
        got += bus_dispatch(r->bus, 64);
        if (got < n)
            usleep(10000);
    }
    ck_assert_int_eq(got, n);
}

/* A bus counter by name and topic class, 0 when absent. */
static double s_counter(rig_t *r, const char *name, const char *cls)
{
    char labels[128], full[128];
    snprintf(labels, sizeof labels, "topic=\"%s\"", cls);
    snprintf(full, sizeof full, "skyprof_test_%s", name);
    for (size_t i = 0; i < stats_count(r->stats); i++) {
        const char *n, *l;
        int type;
        double v;
        stats_get(r->stats, i, &n, &l, &type, &v);
        if (strcmp(n, full) == 0 && strcmp(l, labels) == 0)
            return v;
    }
    return 0;
}

/* The class the bus counts a topic under (its prefix without the dot for
 * bucketed and suffixed topics). */
static void s_class(msg_id_t id, char *out, size_t size)
{
    const msg_desc_t *d = msg_desc(id);
    snprintf(out, size, "%s", d->topic);
    size_t n = strlen(out);
    if (d->shape != MSG_SHAPE_EXACT && n && out[n - 1] == '.')
        out[n - 1] = '\0';
}

typedef struct {
    int calls[MSG_COUNT];
    int invalid[MSG_COUNT];
    uint64_t last_seq;
    char last_sender[64];
} seen_t;

static int s_handler(void *arg, const msg_decoded_t *m)
{
    seen_t *seen = arg;
    ck_assert_ptr_eq(m->desc, msg_desc(m->id));
    ck_assert_ptr_eq((const void *)m->hdr, m->body);
    seen->calls[m->id]++;
    seen->last_seq = m->hdr->seq;
    snprintf(seen->last_sender, sizeof seen->last_sender, "%s",
             m->hdr->sender);
    return 0;
}

static void s_on_invalid(void *arg, msg_id_t id, const char *topic,
                         const char *err)
{
    seen_t *seen = arg;
    ck_assert_ptr_nonnull(topic);
    ck_assert_ptr_nonnull(err);
    seen->invalid[id]++;
}

/* -------------------------------------------------------------- table */

START_TEST(every_message_has_one_entry_and_round_trips)
{
    arena_t *arena = arena_new(0);
    wire_buf_t buf;
    char topic[64], err[256];

    wire_buf_init(&buf);
    ck_assert_ptr_null(msg_desc(MSG_COUNT));
    for (int i = 0; i < MSG_COUNT; i++) {
        const msg_desc_t *d = msg_desc((msg_id_t)i);
        ck_assert_ptr_nonnull(d);
        ck_assert_int_eq(d->id, i);
        ck_assert_ptr_nonnull(d->decode);
        ck_assert_ptr_nonnull(d->encode);
        ck_assert_uint_ge(d->size, sizeof(wire_header_t));
        /* A topic names one message type, and its own. */
        s_topic((msg_id_t)i, topic, sizeof topic);
        ck_assert_ptr_eq(msg_for_topic(topic), d);
        for (int j = 0; j < MSG_COUNT; j++)
            if (j != i)
                ck_assert_str_ne(msg_desc((msg_id_t)j)->topic, d->topic);

        void *body = s_body((msg_id_t)i, arena);
        ck_assert_int_eq(msg_encode((msg_id_t)i, body, "test/t", 7, &buf), 0);
        msg_decoded_t m;
        ck_assert_msg(msg_decode(topic, buf.data, buf.len, arena, &m, err,
                                 sizeof err) == 0, "%s: %s", topic, err);
        ck_assert_int_eq(m.id, i);
        ck_assert_str_eq(m.hdr->sender, "test/t");
        ck_assert_uint_eq(m.hdr->seq, 7);
        ck_assert_int_eq(m.bucket, d->shape == MSG_SHAPE_BUCKET
                                       ? (int)wire_pid_bucket(4242) : -1);
    }
    ck_assert_int_eq(msg_decode("no.such.topic", "", 0, arena,
                                &(msg_decoded_t){0}, err, sizeof err), 1);
    wire_buf_release(&buf);
    arena_destroy(&arena);
}
END_TEST

START_TEST(header_needs_a_sender_and_a_sequence)
{
    arena_t *arena = arena_new(0);
    wire_buf_t buf;
    char err[256];
    msg_decoded_t m;
    wire_proc_events_t ev = {0};

    wire_buf_init(&buf);
    ck_assert_int_eq(msg_encode(MSG_PROC_EVENTS, &ev, "", 1, &buf), 0);
    ck_assert_int_eq(msg_decode(TOPIC_PROC_EVENTS, buf.data, buf.len, arena,
                                &m, err, sizeof err), -1);
    ck_assert_int_eq(msg_encode(MSG_PROC_EVENTS, &ev, "c/1", 0, &buf), 0);
    ck_assert_int_eq(msg_decode(TOPIC_PROC_EVENTS, buf.data, buf.len, arena,
                                &m, err, sizeof err), -1);
    ck_assert_int_eq(msg_encode(MSG_PROC_EVENTS, &ev, "c/1", 1, &buf), 0);
    ck_assert_int_eq(msg_decode(TOPIC_PROC_EVENTS, buf.data, buf.len, arena,
                                &m, err, sizeof err), 0);
    wire_buf_release(&buf);
    arena_destroy(&arena);
}
END_TEST

/* --------------------------------------------------------- typed edges */

START_TEST(malformed_payload_of_every_type_counted_once)
{
    /* Not msgpack; msgpack but not an array; an array cut short after
     * the header; a well-formed message of another type. */
    static const char *const junk[] = { "\xc1", "\x01", "\x94\x01\xa1x\x01" };
    rig_t r;
    seen_t seen = {0};
    char topic[64], cls[64];
    wire_buf_t buf;
    arena_t *arena = arena_new(0);

    wire_buf_init(&buf);
    s_rig_start(&r);
    for (int i = 0; i < MSG_COUNT; i++) {
        ck_assert_int_eq(bus_on(r.bus, (msg_id_t)i, s_handler, &seen), 0);
        bus_on_invalid(r.bus, (msg_id_t)i, s_on_invalid, &seen);
    }
    s_rig_listen(&r);
    for (int i = 0; i < MSG_COUNT; i++) {
        s_topic((msg_id_t)i, topic, sizeof topic);
        for (size_t k = 0; k < sizeof junk / sizeof junk[0]; k++)
            s_inject(&r, topic, junk[k], strlen(junk[k]));
        /* Another type's body never decodes as this one's. */
        msg_id_t other = i == MSG_STATS ? MSG_HELLO : MSG_STATS;
        ck_assert_int_eq(msg_encode(other, s_body(other, arena), "x/1", 1,
                                    &buf), 0);
        s_inject(&r, topic, buf.data, buf.len);
        s_dispatch(&r, 4);
        ck_assert_msg(seen.calls[i] == 0, "%s delivered", topic);
        ck_assert_int_eq(seen.invalid[i], 4);
    }
    /* Counted once per message, under each topic class (two types share
     * none: ctl.agg.claim, ctl.agg.release and ctl.agg.idle are separate
     * classes). */
    for (int i = 0; i < MSG_COUNT; i++) {
        s_class((msg_id_t)i, cls, sizeof cls);
        ck_assert_msg(s_counter(&r, "bus_invalid_total", cls) == 4,
                      "%s: %g invalid", cls,
                      s_counter(&r, "bus_invalid_total", cls));
        ck_assert_double_eq(s_counter(&r, "bus_lost_total", cls), 0);
    }
    /* And a good one of every type gets through. */
    for (int i = 0; i < MSG_COUNT; i++) {
        s_topic((msg_id_t)i, topic, sizeof topic);
        ck_assert_int_eq(msg_encode((msg_id_t)i, s_body((msg_id_t)i, arena),
                                    "x/1", 1, &buf), 0);
        s_inject(&r, topic, buf.data, buf.len);
        s_dispatch(&r, 1);
        ck_assert_int_eq(seen.calls[i], 1);
        ck_assert_int_eq(seen.invalid[i], 4);
    }
    s_rig_stop(&r);
    wire_buf_release(&buf);
    arena_destroy(&arena);
}
END_TEST

static int s_refuse(void *arg, const msg_decoded_t *m)
{
    seen_t *seen = arg;
    seen->calls[m->id]++;
    return -1;
}

START_TEST(handler_rejection_counted_once)
{
    rig_t r;
    seen_t seen = {0};
    wire_buf_t buf;
    wire_proc_events_t ev = {0};

    wire_buf_init(&buf);
    s_rig_start(&r);
    ck_assert_int_eq(bus_on(r.bus, MSG_PROC_EVENTS, s_refuse, &seen), 0);
    bus_on_invalid(r.bus, MSG_PROC_EVENTS, s_on_invalid, &seen);
    s_rig_listen(&r);
    ck_assert_int_eq(msg_encode(MSG_PROC_EVENTS, &ev, "c/1", 1, &buf), 0);
    s_inject(&r, TOPIC_PROC_EVENTS, buf.data, buf.len);
    s_dispatch(&r, 1);
    ck_assert_int_eq(seen.calls[MSG_PROC_EVENTS], 1);
    ck_assert_int_eq(seen.invalid[MSG_PROC_EVENTS], 1);
    ck_assert_double_eq(s_counter(&r, "bus_invalid_total", "proc.events"), 1);
    s_rig_stop(&r);
    wire_buf_release(&buf);
}
END_TEST

static void s_inject_seq(rig_t *r, wire_buf_t *buf, const char *sender,
                         uint64_t seq)
{
    wire_proc_events_t ev = {0};
    ck_assert_int_eq(msg_encode(MSG_PROC_EVENTS, &ev, sender, seq, buf), 0);
    s_inject(r, TOPIC_PROC_EVENTS, buf->data, buf->len);
}

START_TEST(sequence_gaps_lost_restarts_not)
{
    rig_t r;
    seen_t seen = {0};
    wire_buf_t buf;

    wire_buf_init(&buf);
    s_rig_start(&r);
    ck_assert_int_eq(bus_on(r.bus, MSG_PROC_EVENTS, s_handler, &seen), 0);
    s_rig_listen(&r);
    /* 1 2 3: nothing lost. */
    for (uint64_t s = 1; s <= 3; s++)
        s_inject_seq(&r, &buf, "collector/a", s);
    s_dispatch(&r, 3);
    ck_assert_double_eq(s_counter(&r, "bus_lost_total", "proc.events"), 0);
    /* The sender restarts under the same name: 1 2 again. Not lost, and
     * later gaps are counted from the new numbering, not the old. */
    s_inject_seq(&r, &buf, "collector/a", 1);
    s_inject_seq(&r, &buf, "collector/a", 2);
    s_dispatch(&r, 2);
    ck_assert_double_eq(s_counter(&r, "bus_lost_total", "proc.events"), 0);
    ck_assert_uint_eq(seen.last_seq, 2);
    /* 2 -> 5: 3 and 4 lost. */
    s_inject_seq(&r, &buf, "collector/a", 5);
    s_dispatch(&r, 1);
    ck_assert_double_eq(s_counter(&r, "bus_lost_total", "proc.events"), 2);
    /* Another sender's numbering is its own. */
    s_inject_seq(&r, &buf, "collector/b", 9);
    s_inject_seq(&r, &buf, "collector/b", 10);
    s_dispatch(&r, 2);
    ck_assert_double_eq(s_counter(&r, "bus_lost_total", "proc.events"), 2);
    ck_assert_int_eq(seen.calls[MSG_PROC_EVENTS], 8);
    s_rig_stop(&r);
    wire_buf_release(&buf);
}
END_TEST

/* The next message the bus published: its topic and decoded header
 * (0), or -1 when none came within timeout_ms. */
static int s_next_sent(rig_t *r, int timeout_ms, char *topic, size_t tsize,
                       arena_t *arena, msg_decoded_t *m)
{
    static char data[65536];
    char err[256];
    zmq_pollitem_t item = { r->xsub, 0, ZMQ_POLLIN, 0 };

    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return -1;
    int n = zmq_recv(r->xsub, topic, tsize - 1, 0);
    ck_assert_int_gt(n, 0);
    topic[n] = '\0';
    n = zmq_recv(r->xsub, data, sizeof data, 0);
    ck_assert_int_ge(n, 0);
    ck_assert_msg(msg_decode(topic, data, (size_t)n, arena, m, err,
                             sizeof err) == 0, "%s: %s", topic, err);
    return 0;
}

START_TEST(send_numbers_each_topic_from_one)
{
    rig_t r;
    char topic[64], raw_topic[64];
    arena_t *arena = arena_new(0);
    msg_decoded_t m;
    wire_proc_events_t ev = {0};
    wire_raw_batch_t raw = {0};
    uint64_t seq = 0;

    s_rig_start(&r);
    ck_assert_int_eq(zmq_send(r.xsub, "\x01", 1, 0), 1);   /* want all */
    ck_assert_int_eq(msg_topic_for_pid(MSG_RAW_STACKS, 77, raw_topic,
                                       sizeof raw_topic), 0);
    /* The subscription travels asynchronously: send until messages
     * arrive, then take all that came. */
    for (int i = 0; i < 100 && !seq; i++) {
        ck_assert_int_eq(bus_send(r.bus, MSG_PROC_EVENTS, &ev), 0);
        while (s_next_sent(&r, seq ? 100 : 10, topic, sizeof topic, arena,
                           &m) == 0) {
            ck_assert_str_eq(topic, TOPIC_PROC_EVENTS);
            ck_assert_str_eq(m.hdr->sender, "test/t");
            ck_assert_uint_gt(m.hdr->seq, seq);
            seq = m.hdr->seq;
        }
    }
    ck_assert_uint_ge(seq, 1);
    /* Each topic numbers its own messages from 1; a bucket is its own
     * topic. */
    ck_assert_int_eq(bus_send_on(r.bus, MSG_RAW_STACKS, raw_topic, &raw), 0);
    ck_assert_int_eq(bus_send(r.bus, MSG_PROC_EVENTS, &ev), 0);
    ck_assert_int_eq(s_next_sent(&r, 2000, topic, sizeof topic, arena, &m), 0);
    ck_assert_str_eq(topic, raw_topic);
    ck_assert_uint_eq(m.hdr->seq, 1);
    ck_assert_int_eq(m.bucket, (int)wire_pid_bucket(77));
    ck_assert_int_eq(s_next_sent(&r, 2000, topic, sizeof topic, arena, &m), 0);
    ck_assert_str_eq(topic, TOPIC_PROC_EVENTS);
    ck_assert_uint_eq(m.hdr->seq, seq + 1);
    /* A topic of another type, or a bucketed type without its bucket, is
     * refused; so is a body over a wire bound. */
    ck_assert_int_eq(bus_send_on(r.bus, MSG_PROC_EVENTS, raw_topic, &ev), -1);
    ck_assert_int_eq(bus_send(r.bus, MSG_RAW_STACKS, &raw), -1);
    wire_raw_batch_t big = { .nsamples = WIRE_MAX_SAMPLES + 1 };
    ck_assert_int_eq(bus_send_on(r.bus, MSG_RAW_STACKS, raw_topic, &big),
                     BUS_TOO_BIG);
    /* What was not sent took no number. */
    ck_assert_int_eq(bus_send_on(r.bus, MSG_RAW_STACKS, raw_topic, &raw), 0);
    ck_assert_int_eq(s_next_sent(&r, 2000, topic, sizeof topic, arena, &m), 0);
    ck_assert_str_eq(topic, raw_topic);
    ck_assert_uint_eq(m.hdr->seq, 2);
    s_rig_stop(&r);
    arena_destroy(&arena);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msg");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, every_message_has_one_entry_and_round_trips);
    tcase_add_test(tc, header_needs_a_sender_and_a_sequence);
    suite_add_tcase(s, tc);
    tc = tcase_create("edges");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, malformed_payload_of_every_type_counted_once);
    tcase_add_test(tc, handler_rejection_counted_once);
    tcase_add_test(tc, sequence_gaps_lost_restarts_not);
    tcase_add_test(tc, send_numbers_each_topic_from_one);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
