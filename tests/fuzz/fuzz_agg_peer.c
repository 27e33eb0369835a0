/* What a peer aggregator replica answers a fan-out with
 * (aggregator/replica/fanout.c): a flame blob (first byte even) or process rows
 * (odd), decoded with the same kind of limits a fan-out uses, then merged
 * the way an answer is built. Whatever the wire says, a part must stay
 * within its node and row limits. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aggregator/core/agg.h"
#include "aggregator/core/flame_blob.h"

#define FUZZ_MAX_NODES 4096
#define FUZZ_MAX_ROWS 1024

static void s_flame(const uint8_t *data, size_t size)
{
    char err[256];
    flame_blob_limits_t lim = {FUZZ_MAX_NODES * FLAME_BLOB_NODE_BYTES,
                               FUZZ_MAX_NODES};
    flame_t *part = flame_blob_decode_bounded(data, size, &lim, err,
                                              sizeof err);
    if (!part)
        return;
    if (flame_node_count(part) > FUZZ_MAX_NODES)
        __builtin_trap();
    /* The answer: a local tree merged with the part, as the API sends
     * it on (encoded again for the history store). */
    flame_t *out = flame_new("Total", FUZZ_MAX_NODES);
    unsigned char *blob = NULL;
    size_t len = 0;
    if (out && flame_merge(out, part) == 0 &&
        flame_blob_encode(out, &blob, &len) == 0) {
        flame_t *back = flame_blob_decode_bounded(blob, len, &lim, err,
                                                  sizeof err);
        if (!back)
            __builtin_trap();   /* our own encoding must decode */
        flame_destroy(&back);
    }
    free(blob);
    flame_destroy(&out);
    flame_destroy(&part);
}

static void s_rows(const uint8_t *data, size_t size)
{
    agg_prows_t rows;
    agg_buf_t b;
    agg_prows_init(&rows);
    if (agg_prows_parse(&rows, (const char *)data, size, FUZZ_MAX_ROWS) == 0) {
        if (rows.n > FUZZ_MAX_ROWS)
            __builtin_trap();
        agg_prows_merge(&rows);
        agg_buf_init(&b, 1u << 24);
        agg_prows_json(&rows, "", &b);
        agg_prows_text(&rows, &b);
        agg_buf_release(&b);
    }
    agg_prows_release(&rows);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        s_rows(data + 1, size - 1);
    else
        s_flame(data + 1, size - 1);
    return 0;
}
