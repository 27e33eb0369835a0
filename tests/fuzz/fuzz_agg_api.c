/* The aggregator's HTTP API (aggregator/http/ behind libmicrohttpd), as
 * any client that reaches its port would use it: each input is one raw
 * request sent over a real connection to an API in this process serving
 * an aggregator that holds the test fixture's samples, so the query
 * argument parsing, the JSON bodies (tasks, ProfileTracing) and every
 * renderer (tree, folded, pprof, SVG, processes, internal parts) run on
 * what the fuzzer sends, behind the admission checks (Host, token,
 * JSON-only same-origin POSTs). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/agg.h"
#include "aggregator/http/api.h"
#include "agg_fixture.h"
#include "common/fuzz_http.h"
#include "log.h"
#include "stats.h"

static stats_t *s_stats;
static agg_t *s_agg;
static agg_api_t *s_api;

static void s_stop(void)
{
    agg_api_destroy(&s_api);
    agg_destroy(&s_agg);
    stats_destroy(&s_stats);
}

static void s_start(void)
{
    char err[256];
    wire_sym_batch_t b;
    wire_sym_sample_t samples[AGG_FIXTURE_SAMPLES];
    s_stats = stats_new("aggregator", "fuzz");
    agg_options_t o = { .flush_ms = 1000,
                       .history_ms = 3600000, .max_nodes = 4096,
                       .stats = s_stats};
    s_agg = s_stats ? agg_new(&o, now_wall_ms()) : NULL;
    if (!s_agg)
        abort();
    agg_fixture_batch(&b, samples);
    if (agg_ingest_sym(s_agg, &b) != 0)
        abort();
    /* With a token, so the admission checks run in full; the seeds
     * carry it and Host 127.0.0.1. */
    agg_api_options_t ao = {.addr = "127.0.0.1:0",
                            .allowed_hosts = "agg.example",
                            .auth_token = "fuzz-token-0123456789"};
    s_api = agg_api_new(s_agg, &ao, err, sizeof err);
    if (!s_api) {
        fprintf(stderr, "fuzz_agg_api: %s\n", err);
        abort();
    }
    atexit(s_stop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_api)
        s_start();
    (void)fuzz_http_exchange(agg_api_port(s_api), data, size);
    /* Task requests leave the queue, as the stage loop publishes them. */
    (void)agg_pump(s_agg);
    return 0;
}
