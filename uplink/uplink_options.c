/* The uplink's options: defaults and the configuration keys they come
 * from, including the process finders (uplink.h). */
#include "uplink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
uplink_options_defaults(uplink_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->addr = "";
    o->ca_path = o->cert_path = o->key_path = o->auth_token = "";
    o->timeout_ms = 5000;
    o->buffer_size = 4u << 20;
    o->heartbeat_ms = 20000;
    o->report_period = 10;
    o->check_ms = 10000;
    o->flush_ms = 5000;
    o->max_backoff_ms = 30000;
    o->auth_backoff_ms = 300000;
    o->agent_id = "";
    o->proc_stale_ms = 30000;
    o->net_meter_prefix = "rover_net_p";
}

static const char *
s_finder_key(char *buf, size_t size, size_t i, const char *field)
{
    snprintf(buf, size, "process_discovery.scanner.regex[%zu].%s", i, field);
    return buf;
}

/* labels may be a comma-separated string or a YAML list. */
static char *
s_finder_labels(const config_t *cfg, size_t i)
{
    char key[160];
    const char *flat = config_raw(cfg, s_finder_key(key, sizeof key, i,
                                                     "labels"));
    if (flat)
        return strdup(flat);
    size_t n = config_list_len(cfg, key);
    size_t len = 0;
    char *out = calloc(1, 1);
    for (size_t l = 0; out && l < n; l++) {
        char item[200];
        snprintf(item, sizeof item, "%s[%zu]", key, l);
        const char *v = config_raw(cfg, item);
        if (!v || !*v)
            continue;
        char *grown = realloc(out, len + strlen(v) + 2);
        if (!grown) {
            free(out);
            return NULL;
        }
        out = grown;
        len += (size_t)sprintf(out + len, "%s%s", len ? "," : "", v);
    }
    return out;
}

int
uplink_options_from_config(uplink_options_t *o, finder_set_t *finders,
                           const config_t *cfg, char *err, size_t errlen)
{
    uplink_options_defaults(o);
    o->addr = config_str(cfg, "core.backend.addr");
    o->tls = config_bool(cfg, "core.backend.enable_TLS");
    o->ca_path = config_str(cfg, "core.backend.ca_pem_path");
    o->cert_path = config_str(cfg, "core.backend.client_pem_path");
    o->key_path = config_str(cfg, "core.backend.client_key_path");
    o->skip_verify = config_bool(cfg, "core.backend.insecure_skip_verify");
    o->auth_token = config_str(cfg, "core.backend.authentication");
    o->timeout_ms = config_duration_ms(cfg, "core.backend.upstream_timeout");
    o->buffer_size = config_size(cfg, "core.backend.buffer_size");
    o->heartbeat_ms = config_duration_ms(
        cfg, "process_discovery.heartbeat_period");
    int64_t period = config_int(cfg,
                                "process_discovery.properties_report_period");
    o->check_ms = config_duration_ms(cfg, "profiling.check_interval");
    o->flush_ms = config_duration_ms(cfg, "profiling.flush_interval");
    o->agent_id = config_str(cfg, "uplink.agent_id");
    o->net_meter_prefix = config_str(cfg,
                                     "profiling.task.network.meter_prefix");
    /* Three republications of the collector, so one lost message does
     * not make a live process look gone. */
    o->proc_stale_ms = 3 * config_duration_ms(
        cfg, "collector.proc_republish_interval");

    if (period < 1 || period > 1000000) {
        snprintf(err, errlen, "config key process_discovery."
                 "properties_report_period = '%" PRId64 "': must be 1 or more",
                 period);
        return -1;
    }
    o->report_period = (uint32_t)period;
    const struct { const char *key; uint64_t v; } positive[] = {
        { "core.backend.upstream_timeout", o->timeout_ms },
        { "process_discovery.heartbeat_period", o->heartbeat_ms },
        { "profiling.check_interval", o->check_ms },
        { "profiling.flush_interval", o->flush_ms },
        { "core.backend.buffer_size", o->buffer_size },
    };
    for (size_t i = 0; i < sizeof positive / sizeof positive[0]; i++) {
        if (positive[i].v == 0) {
            snprintf(err, errlen, "config key %s = '%s': must be more than 0",
                     positive[i].key, config_str(cfg, positive[i].key));
            return -1;
        }
    }

    o->node_name = config_str(cfg, "node_name");
    size_t n = config_list_len(cfg, "process_discovery.scanner.regex");
    for (size_t i = 0; i < n; i++) {
        char k[6][160];
        finder_spec_t spec = {
            config_raw(cfg, s_finder_key(k[0], sizeof k[0], i,
                                         "match_cmd_regex")),
            config_raw(cfg, s_finder_key(k[1], sizeof k[1], i, "layer")),
            config_raw(cfg, s_finder_key(k[2], sizeof k[2], i,
                                         "service_name")),
            config_raw(cfg, s_finder_key(k[3], sizeof k[3], i,
                                         "instance_name")),
            config_raw(cfg, s_finder_key(k[4], sizeof k[4], i,
                                         "process_name")),
            NULL, { NULL }, 0,
        };
        char *labels = s_finder_labels(cfg, i);
        spec.labels = labels;
        char why[256];
        int rc = finder_set_add(finders, &spec, why, sizeof why);
        free(labels);
        if (rc != 0) {
            snprintf(err, errlen, "config key process_discovery.scanner."
                     "regex[%zu]: %s", i, why);
            return -1;
        }
    }
    return 0;
}
