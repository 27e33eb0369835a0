/* Every bus message decoder of lib/wire.c. The first byte picks the
 * decoder (the topic a stage would have read the payload from), the rest
 * is the payload. A payload a decoder accepts is encoded again: whatever a
 * decoder lets through must be something the encoders can handle, since
 * stages re-publish decoded messages. What the aggregator consumes
 * (symbolized batches, process events, task sets, stats) is then also
 * ingested by an aggregator, which trusts the decoder's validation. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aggregator/agg.h"
#include "arena.h"
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

static void s_consume_sym_batch(const wire_sym_batch_t *m)
{
    (void)agg_ingest_sym(s_agg(), m);
}

static void s_consume_proc_events(const wire_proc_events_t *m)
{
    agg_ingest_proc_events(s_agg(), m);
}

static void s_consume_task_set(const wire_task_set_t *m)
{
    agg_ingest_tasks(s_agg(), m);
}

static void s_consume_stats(const wire_stats_t *m)
{
    agg_ingest_stats(s_agg(), m);
}

/* ------------------------------------------------------------ codecs */
/* One decoder and its matching encoder over a message type T, then the
 * consumer (or nothing). */
#define FUZZ_CODEC(T, name, consume)                                         \
    static void s_##name(const uint8_t *d, size_t n, arena_t *a)             \
    {                                                                        \
        T m;                                                                 \
        char err[256];                                                       \
        wire_buf_t out;                                                      \
        void (*consume_fn)(const T *) = consume;                             \
        if (wire_decode_##name(d, n, a, &m, err, sizeof err) != 0)           \
            return;                                                          \
        wire_buf_init(&out);                                                 \
        (void)wire_encode_##name(&m, &out);                                  \
        wire_buf_release(&out);                                              \
        if (consume_fn)                                                      \
            consume_fn(&m);                                                  \
    }

FUZZ_CODEC(wire_raw_batch_t, raw_batch, NULL)
FUZZ_CODEC(wire_sym_batch_t, sym_batch, s_consume_sym_batch)
FUZZ_CODEC(wire_proc_events_t, proc_events, s_consume_proc_events)
FUZZ_CODEC(wire_task_set_t, task_set, s_consume_task_set)
FUZZ_CODEC(wire_profile_batch_t, profile_batch, NULL)
FUZZ_CODEC(wire_stats_t, stats, s_consume_stats)
FUZZ_CODEC(wire_hello_t, hello, NULL)
FUZZ_CODEC(wire_agg_peer_t, agg_peer, NULL)
FUZZ_CODEC(wire_agg_release_t, agg_release, NULL)
FUZZ_CODEC(wire_proc_ids_t, proc_ids, NULL)
FUZZ_CODEC(wire_policy_update_t, policy_update, NULL)
FUZZ_CODEC(wire_trigger_t, trigger, NULL)
FUZZ_CODEC(wire_meters_t, meters, NULL)

typedef void (*fuzz_codec_fn)(const uint8_t *, size_t, arena_t *);

static const fuzz_codec_fn s_codecs[] = {
    s_raw_batch, s_sym_batch, s_proc_events, s_task_set, s_profile_batch,
    s_stats, s_hello, s_agg_peer, s_agg_release, s_proc_ids,
    s_policy_update, s_trigger, s_meters,
};
#define NCODECS (sizeof s_codecs / sizeof s_codecs[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    arena_t *arena = arena_new(FUZZ_ARENA_LIMIT);
    if (!arena)
        return 0;
    s_codecs[data[0] % NCODECS](data + 1, size - 1, arena);
    arena_destroy(&arena);
    return 0;
}
