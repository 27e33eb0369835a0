/* Every bus message decoder of lib/wire.c. The first byte picks the
 * decoder (the topic a stage would have read the payload from), the rest
 * is the payload. A payload a decoder accepts is encoded again: whatever a
 * decoder lets through must be something the encoders can handle, since
 * stages re-publish decoded messages. */
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "wire.h"

#define FUZZ_ARENA_LIMIT (16u << 20)

/* One decoder and its matching encoder, over a message type T. */
#define FUZZ_CODEC(T, name)                                                  \
    static void s_##name(const uint8_t *d, size_t n, arena_t *a)             \
    {                                                                        \
        T m;                                                                 \
        char err[256];                                                       \
        wire_buf_t out;                                                      \
        if (wire_decode_##name(d, n, a, &m, err, sizeof err) != 0)           \
            return;                                                          \
        wire_buf_init(&out);                                                 \
        (void)wire_encode_##name(&m, &out);                                  \
        wire_buf_release(&out);                                              \
    }

FUZZ_CODEC(wire_raw_batch_t, raw_batch)
FUZZ_CODEC(wire_sym_batch_t, sym_batch)
FUZZ_CODEC(wire_proc_events_t, proc_events)
FUZZ_CODEC(wire_task_set_t, task_set)
FUZZ_CODEC(wire_profile_batch_t, profile_batch)
FUZZ_CODEC(wire_stats_t, stats)
FUZZ_CODEC(wire_hello_t, hello)
FUZZ_CODEC(wire_agg_peer_t, agg_peer)
FUZZ_CODEC(wire_agg_release_t, agg_release)
FUZZ_CODEC(wire_proc_ids_t, proc_ids)
FUZZ_CODEC(wire_policy_update_t, policy_update)
FUZZ_CODEC(wire_trigger_t, trigger)
FUZZ_CODEC(wire_meters_t, meters)

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
