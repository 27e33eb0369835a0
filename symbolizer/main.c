/* skyprof-symbolizer: subscribes to raw stack batches, resolves every
 * frame to a function name and republishes the batch as a symbolized
 * stack batch on the same pid bucket.
 *
 * Runs unprivileged; CAP_DAC_READ_SEARCH lets it read the binaries of other
 * users and containers, CAP_SYSLOG lets it see kernel addresses. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "shard.h"
#include "stage.h"
#include "symbolizer/symbatch.h"
#include "symbolizer/symbolize.h"
#include "wire.h"

/* Messages handled per wakeup, so the loop's timers (stats) still run
 * under a flood. */
#define BATCHES_PER_WAKEUP 64

typedef struct {
    stage_t *stage;
    symbolizer_t *sym;
    symbatch_t *batch;
    log_ratelimit_t rl_encode;

    stats_metric_t *batches_in;
    stats_metric_t *batches_out;
    stats_metric_t *batches_dropped;
    stats_metric_t *frames_resolved;
    stats_metric_t *frames_unknown;
    stats_metric_t *cache_hits;
    stats_metric_t *cache_misses;
    stats_metric_t *cache_bytes;
    stats_metric_t *cache_objects;
    stats_metric_t *memo_bytes;
    stats_metric_t *memo_hits;
    stats_metric_t *objects_unreadable;
    stats_metric_t *root_retries;
    stats_metric_t *objects_too_large;
    stats_metric_t *perfmaps_refused;
    stats_metric_t *debug_crc_skipped;
    stats_metric_t *files_refused;
    symbolizer_stats_t last;  /* symbolizer stats already added */
    shard_t *shard;           /* which pid buckets this replica takes */
} symbolizer_main_t;

static const stage_desc_t s_desc = {
    .name = "symbolizer",
    .summary = "skyprof symbolizer: resolves raw stacks (kernel addresses, "
               "object + file offset) to function names.",
    .extra_help = "Config: symbolizer.cache_size, symbolizer.debug_dirs, "
                  "symbolizer.perfmap_max_size,\n"
                  "symbolizer.debuglink_crc_max_size, symbolizer.http_addr, "
                  "symbolizer.sharding.\n"
                  "With symbolizer.sharding, replicas announce themselves and "
                  "share the pid\nbuckets by rendezvous hashing.\n"
                  "SIGHUP re-reads /proc/kallsyms.",
};

/* Moves the symbolizer's own counters into the stage's metrics. */
static void
s_sync_stats(symbolizer_main_t *self)
{
    symbolizer_stats_t now;
    symbolizer_get_stats(self->sym, &now);
    stats_add(self->cache_hits, now.cache_hits - self->last.cache_hits);
    stats_add(self->cache_misses, now.cache_misses - self->last.cache_misses);
    stats_add(self->objects_unreadable,
              now.objects_unreadable - self->last.objects_unreadable);
    stats_add(self->root_retries,
              now.root_retries - self->last.root_retries);
    stats_add(self->objects_too_large,
              now.objects_too_large - self->last.objects_too_large);
    stats_add(self->perfmaps_refused,
              now.perfmaps_refused - self->last.perfmaps_refused);
    stats_add(self->debug_crc_skipped,
              now.debug_crc_skipped - self->last.debug_crc_skipped);
    stats_add(self->files_refused,
              now.files_refused - self->last.files_refused);
    stats_set(self->cache_bytes, (double)now.cache_bytes);
    stats_set(self->cache_objects, (double)now.cache_objects);
    stats_set(self->memo_bytes, (double)now.memo_bytes);
    stats_add(self->memo_hits, now.memo_hits - self->last.memo_hits);
    self->last = now;
}

/* raw.stacks.BB, decoded by the bus: symbolized and republished on the
 * same bucket of sym.stacks. */
static int
s_on_raw(void *arg, const msg_decoded_t *m)
{
    symbolizer_main_t *self = arg;
    const wire_raw_batch_t *raw = m->body;
    wire_sym_batch_t sym;
    symbatch_counts_t counts;
    char out_topic[32];
    int rc;

    stats_inc(self->batches_in);
    if (raw->nsamples == 0)
        goto cleanup;

    if (symbatch_build(self->batch, self->sym, raw, &sym, &counts) < 0) {
        stats_inc(self->batches_dropped);
        log_warn_rl(&self->rl_encode, "out of memory symbolizing a batch of "
                    "%u samples; dropped", raw->nsamples);
        goto cleanup;
    }
    stats_add(self->frames_resolved, counts.frames_resolved);
    stats_add(self->frames_unknown, counts.frames_unknown);

    /* A raw batch holds one bucket's pids, so the first sample names the
     * bucket of all of them. Lets the aggregator drop a copy a second
     * replica made of the same raw batch while a bucket changes hands. */
    msg_topic_for_pid(MSG_SYM_STACKS, raw->samples[0].pid, out_topic,
                      sizeof(out_topic));
    sym.origin_sender = raw->hdr.sender;
    sym.origin_seq = raw->hdr.seq;
    rc = bus_send_on(self->stage->bus, MSG_SYM_STACKS, out_topic, &sym);
    if (rc == 0)
        stats_inc(self->batches_out);
    else if (rc == BUS_TOO_BIG)
        stats_inc(self->batches_dropped);
cleanup:
    return 0;
}

static int
s_on_bus(loop_t *loop, void *socket, void *arg)
{
    symbolizer_main_t *self = arg;
    (void)loop;
    (void)socket;
    bus_dispatch(self->stage->bus, BATCHES_PER_WAKEUP);
    s_sync_stats(self);
    return 0;
}

/* Keeps the gauges fresh when no data flows, and handles SIGHUP. */
static int
s_on_tick(loop_t *loop, void *arg)
{
    symbolizer_main_t *self = arg;
    s_sync_stats(self);
    if (loop_take_reload(loop)) {
        log_info("SIGHUP: kernel symbols will be re-read");
        symbolizer_reload_kernel(self->sym);
    }
    return 0;
}

static void
s_metrics(symbolizer_main_t *self)
{
    stats_t *st = self->stage->stats;
    self->batches_in = stats_counter(st, "batches_in", "",
                                     "raw stack batches received");
    self->batches_out = stats_counter(st, "batches_out", "",
                                      "symbolized batches published");
    self->batches_dropped = stats_counter(st, "batches_dropped", "",
        "batches that could not be symbolized or encoded");
    self->frames_resolved = stats_counter(st, "frames_resolved", "",
                                          "sample frames resolved to a name");
    self->frames_unknown = stats_counter(st, "frames_unknown", "",
        "sample frames left as object+offset or raw address");
    self->cache_hits = stats_counter(st, "cache_hits", "",
                                     "frame lookups that found their object "
                                     "cached");
    self->cache_misses = stats_counter(st, "cache_misses", "",
                                       "frame lookups that loaded an object");
    self->cache_bytes = stats_gauge(st, "cache_bytes", "",
                                    "bytes of cached symbol tables");
    self->cache_objects = stats_gauge(st, "cache_objects", "",
                                      "objects in the symbol cache");
    self->memo_bytes = stats_gauge(st, "memo_bytes", "",
                                   "bytes of the cross-batch frame memo "
                                   "(at most cache_size / 4)");
    self->memo_hits = stats_counter(st, "memo_hits", "",
                                    "frame lookups answered by the memo");
    self->objects_unreadable = stats_counter(st, "objects_unreadable", "",
        "objects that could not be opened or verified");
    self->root_retries = stats_counter(st, "root_retries", "",
        "objects found in no process root so far, looked for at once in "
        "the root of another process mapping them");
    self->objects_too_large = stats_counter(st, "objects_too_large", "",
        "symbol tables refused for not fitting symbolizer.cache_size");
    self->perfmaps_refused = stats_counter(st, "perfmaps_refused", "",
        "perf map versions over symbolizer.perfmap_max_size or the cache");
    self->debug_crc_skipped = stats_counter(st, "debug_crc_skipped", "",
        "debuglink candidates over symbolizer.debuglink_crc_max_size");
    self->files_refused = stats_counter(st, "files_refused", "",
        "files of other processes refused: a link out of their root, a "
        "magic link, not a regular file (FIFO, device), a \"..\" path");
}

int
main(int argc, char **argv)
{
    int rc = 1;
    symbolizer_main_t self;
    memset(&self, 0, sizeof(self));
    self.rl_encode = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);

    self.stage = stage_new(&s_desc, argc, argv, &rc);
    if (!self.stage)
        goto cleanup;
    rc = 1;
    symbolizer_opts_t opts;
    symbolizer_opts_default(&opts);
    opts.cache_size = config_size(self.stage->cfg, "symbolizer.cache_size");
    opts.debug_dirs = config_str(self.stage->cfg, "symbolizer.debug_dirs");
    opts.perfmap_max_size = config_size(self.stage->cfg,
                                        "symbolizer.perfmap_max_size");
    opts.debug_crc_max_size = config_size(self.stage->cfg,
                                          "symbolizer.debuglink_crc_max_size");
    self.sym = symbolizer_new(&opts);
    self.batch = symbatch_new();
    if (!self.sym || !self.batch) {
        log_error("out of memory at start");
        goto cleanup;
    }
    s_metrics(&self);
    self.shard = shard_new(self.stage, "symbolizer", TOPIC_RAW_STACKS,
                           config_bool(self.stage->cfg, "symbolizer.sharding"));
    if (!self.shard) {
        log_error("cannot subscribe to %s*", TOPIC_RAW_STACKS);
        goto cleanup;
    }
    if (bus_on(self.stage->bus, MSG_RAW_STACKS, s_on_raw, &self) < 0 ||
        loop_add_socket(self.stage->loop, bus_sub_socket(self.stage->bus),
                        s_on_bus, &self) < 0 ||
        loop_add_timer(self.stage->loop, 1000, s_on_tick, &self) < 0) {
        log_error("cannot register with the loop");
        goto cleanup;
    }
    log_info("symbolizing %s* (cache %" PRIu64 " bytes, debug dirs '%s')",
             TOPIC_RAW_STACKS, opts.cache_size, opts.debug_dirs);
    rc = loop_run(self.stage->loop) == 0 ? 0 : 1;
    log_info("stopping (signal %d)", loop_stop_signal(self.stage->loop));
cleanup:
    shard_destroy(&self.shard);
    symbatch_destroy(&self.batch);
    symbolizer_destroy(&self.sym);
    stage_destroy(&self.stage);
    return rc;
}
