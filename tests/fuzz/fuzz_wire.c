/* Every bus message of the table (lib/msg_table.h), decoded as a stage's
 * bus does (lib/msg.c: the topic's codec, then the header checks). The
 * first byte picks the message type, the rest is the payload. A payload
 * that decodes is encoded again: whatever a decoder lets through must be
 * something the encoders can handle, since stages re-publish decoded
 * messages. Then the aggregator takes it as its bus handler would (what
 * it consumes: symbolized batches, process events, Kubernetes
 * containers, task sets, stats), trusting the decoder's validation. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aggregator/core/agg.h"
#include "arena.h"
#include "msg.h"
#include "wire.h"

#define FUZZ_ARENA_LIMIT (16u << 20)

/* ------------------------------------------------ the consuming stage */
static stats_t *s_agg_stats;
static agg_t *s_aggregator;
static uint64_t s_clock_ms = 1700000000000ull;

static void s_stop(void)
{
    agg_destroy(&s_aggregator);
    stats_destroy(&s_agg_stats);
}

/* One aggregator for the whole run; its clock moves a second every 64
 * messages so windows flush and history expires as in a stage. */
static agg_t *s_agg(void)
{
    static unsigned calls;
    if (!s_aggregator) {
        s_agg_stats = stats_new("aggregator", "fuzz");
        agg_options_t o = { .flush_ms = 1000,
                           .history_ms = 10000, .max_nodes = 4096,
                           .stats = s_agg_stats};
        s_aggregator = s_agg_stats ? agg_new(&o, s_clock_ms) : NULL;
        if (!s_aggregator)
            abort();
        atexit(s_stop);
    }
    if (++calls % 64 == 0) {
        s_clock_ms += 1000;
        (void)agg_flush(s_aggregator, s_clock_ms);
    }
    return s_aggregator;
}

/* ------------------------------------------------------------ codecs */
static void s_codec(msg_id_t id, const uint8_t *d, size_t n, arena_t *a)
{
    char topic[64], err[256];
    msg_decoded_t m;
    wire_buf_t out;

    int rc = msg_desc(id)->shape == MSG_SHAPE_SUFFIX
                 ? msg_topic_for_name(id, "fuzz", topic, sizeof topic)
                 : msg_topic_for_pid(id, 4242, topic, sizeof topic);
    if (rc != 0)
        abort();
    if (msg_decode(topic, d, n, a, &m, err, sizeof err) != 0)
        return;
    wire_buf_init(&out);
    (void)msg_desc(id)->encode(m.body, &out);
    wire_buf_release(&out);
    (void)agg_on_msg(s_agg(), &m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    arena_t *arena = arena_new(FUZZ_ARENA_LIMIT);
    if (!arena)
        return 0;
    s_codec((msg_id_t)(data[0] % MSG_COUNT), data + 1, size - 1, arena);
    arena_destroy(&arena);
    return 0;
}
