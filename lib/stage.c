#include "stage.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "health_http.h"
#include "log.h"
#include "wire.h"

#define STAGE_BEAT_MS 5000

static void s_usage(const stage_desc_t *desc, FILE *out)
{
    fprintf(out,
            "usage: skyprof-%s [--config FILE] [-v] [--instance NAME] "
            "[--print-config]\n\n"
            "%s\n\n"
            "  -c, --config FILE   YAML configuration (section per stage; "
            "SKYPROF_* and\n"
            "                      ROVER_* environment variables override)\n"
            "  -v, --verbose       more logging (repeat for debug)\n"
            "  -q, --quiet         only warnings and errors\n"
            "  -i, --instance NAME replica name (default: hostname-pid)\n"
            "      --print-config  print every key with its value and origin\n"
            "  -h, --help          this text\n",
            desc->name, desc->summary);
    if (desc->extra_help)
        fprintf(out, "\n%s\n", desc->extra_help);
    fprintf(out,
            "\nCounters: published on the bus as stats.%s (served by the "
            "aggregator's\n/metrics) and on %s.http_addr when set.\n",
            desc->name, desc->name);
}

static int s_publish_stats(loop_t *loop, void *arg)
{
    stage_t *self = arg;
    size_t n = stats_count(self->stats);
    if (n > WIRE_MAX_METRICS)
        n = WIRE_MAX_METRICS;
    wire_metric_t *metrics = calloc(n ? n : 1, sizeof *metrics);
    if (!metrics)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int type = 0;
        stats_get(self->stats, i, &metrics[i].name, &metrics[i].labels, &type,
                  &metrics[i].value);
        metrics[i].type = (uint8_t)type;
    }
    char topic[64];
    wire_stats_t msg = {
        .stage = self->desc->name,
        .instance = self->instance,
        .nmetrics = (uint32_t)n,
        .metrics = metrics,
    };
    if (msg_topic_for_name(MSG_STATS, self->desc->name, topic,
                           sizeof topic) == 0)
        bus_send_on(self->bus, MSG_STATS, topic, &msg);
    free(metrics);
    return 0;
}

static int s_beat(loop_t *loop, void *arg)
{
    stage_t *self = arg;
    health_http_beat(self->http);
    return 0;
}

static int s_ensure_runtime_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    /* Parent missing (e.g. /run/skyprof under a fresh tmpfs root). */
    char parent[512];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (s_ensure_runtime_dir(parent) == 0 && mkdir(dir, 0700) == 0)
            return 0;
    }
    log_error("cannot create runtime directory %s: %s", dir, strerror(errno));
    return -1;
}

/* Default endpoints live in the runtime directory, so only the agent's
 * user (mode 0700) can open them. */
static void s_endpoint(const config_t *cfg, const char *key, const char *file,
                       char *out, size_t size)
{
    const char *v = config_str(cfg, key);
    if (v[0])
        snprintf(out, size, "%s", v);
    else
        snprintf(out, size, "ipc://%s/%s", config_str(cfg, "runtime_dir"),
                 file);
}

void stage_endpoints(const config_t *cfg, char *in, size_t in_size, char *out,
                     size_t out_size)
{
    s_endpoint(cfg, "bus.in", "bus-in", in, in_size);
    s_endpoint(cfg, "bus.out", "bus-out", out, out_size);
}

stage_t *stage_new(const stage_desc_t *desc, int argc, char **argv,
                   int *exit_code)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"instance", required_argument, NULL, 'i'},
        {"print-config", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_file = NULL, *instance = getenv("SKYPROF_INSTANCE");
    int verbose = 0, quiet = 0, print_config = 0, c;
    char err[512] = "";
    stage_t *self = NULL;

    *exit_code = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:vqi:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_file = optarg; break;
        case 'v': verbose++; break;
        case 'q': quiet = 1; break;
        case 'i': instance = optarg; break;
        case 'P': print_config = 1; break;
        case 'h':
            s_usage(desc, stdout);
            *exit_code = 0;
            return NULL;
        default:
            s_usage(desc, stderr);
            *exit_code = 2;
            return NULL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "skyprof-%s: unexpected argument '%s'\n", desc->name,
                argv[optind]);
        *exit_code = 2;
        return NULL;
    }
    log_init(desc->name, LOG_LVL_INFO);
    if (!config_file)
        config_file = getenv("SKYPROF_CONFIG");

    self = calloc(1, sizeof *self);
    if (!self)
        goto fail;
    self->desc = desc;
    self->verbose = verbose;
    self->cfg = config_load(config_file, err, sizeof err);
    if (!self->cfg) {
        log_error("%s", err);
        *exit_code = 2;
        goto fail;
    }
    if (print_config) {
        config_dump(self->cfg);
        *exit_code = 0;
        goto fail;
    }
    int level = log_level_parse(config_str(self->cfg, "log.level"));
    if (quiet)
        level = LOG_LVL_WARN;
    level += verbose;
    log_set_level(level);

    if (instance && instance[0]) {
        snprintf(self->instance, sizeof self->instance, "%s", instance);
    } else {
        char host[40] = "host";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(self->instance, sizeof self->instance, "%s-%d", host,
                 (int)getpid());
    }
    /* The sender names this process start, not just the replica: a stage
     * restarted under the same instance name (a container keeps its
     * hostname) numbers its messages from 1 again, and receivers must not
     * take those for repeats of the previous run's. */
    uint32_t nonce = 0;
    if (getrandom(&nonce, sizeof nonce, GRND_NONBLOCK) != sizeof nonce)
        nonce = (uint32_t)(now_mono_ns() ^ ((uint64_t)getpid() << 16));
    snprintf(self->sender, sizeof self->sender, "%s/%.40s.%08x", desc->name,
             self->instance, nonce);

    char in[512], out[512];
    stage_endpoints(self->cfg, in, sizeof in, out, sizeof out);
    if ((strncmp(in, "ipc://", 6) == 0 || strncmp(out, "ipc://", 6) == 0) &&
        s_ensure_runtime_dir(config_str(self->cfg, "runtime_dir")) != 0)
        goto fail;

    /* The loop blocks the termination signals before the ZeroMQ context
     * starts its I/O threads, so they inherit the mask. */
    self->loop = loop_new();
    if (!self->loop)
        goto fail;
    self->zmq_ctx = zmq_ctx_new();
    self->stats = stats_new(desc->name, self->instance);
    if (!self->zmq_ctx || !self->stats)
        goto fail;
    self->curve = calloc(1, sizeof *self->curve);
    if (!self->curve) {
        log_error("out of memory at start");
        goto fail;
    }
    if (bus_curve_load(self->cfg, self->curve, err, sizeof err) != 0) {
        log_error("%s", err);
        *exit_code = 2;
        goto fail;
    }
    int hwm = (int)config_int(self->cfg, "bus.hwm");
    bus_options_t bo = {
        .in_endpoint = in,
        .out_endpoint = out,
        .send_hwm = hwm,
        .recv_hwm = hwm,
        .sender = self->sender,
        .curve = self->curve,
    };
    self->bus = bus_new(self->zmq_ctx, &bo, self->stats);
    if (!self->bus)
        goto fail;

    char key[96];
    snprintf(key, sizeof key, "%s.http_addr", desc->name);
    const char *http_addr = config_raw(self->cfg, key);
    if (http_addr && http_addr[0] && strcmp(desc->name, "aggregator") != 0) {
        self->http = health_http_new(http_addr, self->stats);
        if (!self->http)
            goto fail;
        loop_add_timer(self->loop, STAGE_BEAT_MS, s_beat, self);
    }
    loop_add_timer(self->loop, config_duration_ms(self->cfg, "bus.stats_interval"),
                   s_publish_stats, self);
    log_info("started (instance %s, bus in %s out %s, config %s)",
             self->instance, in, out, config_path(self->cfg));
    *exit_code = 0;
    return self;
fail:
    stage_destroy(&self);
    return NULL;
}

void stage_destroy(stage_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    stage_t *self = *self_p;
    health_http_destroy((health_http_t **)&self->http);
    /* The counters one last time, after the stage's final work (the
     * collector's last drain): what it did since the last periodic
     * message is not lost, and a stage stopped on purpose leaves exact
     * totals behind (the soak's accounting relies on it). The bus's
     * LINGER gives the message time to leave. */
    if (self->bus && self->stats)
        s_publish_stats(self->loop, self);
    bus_destroy(&self->bus);
    free(self->curve);
    if (self->zmq_ctx)
        zmq_ctx_term(self->zmq_ctx);
    stats_destroy(&self->stats);
    loop_destroy(&self->loop);
    config_destroy(&self->cfg);
    free(self);
    *self_p = NULL;
}
