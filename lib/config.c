#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "log.h"

#define CONFIG_MAX_FILE (1u << 20)
#define CONFIG_MAX_DEPTH 16
#define CONFIG_MAX_RAW 4096
/* YAML aliases (*name) re-use an anchored node (&name). A few are handy
 * in a config file; many nested ones ("billion laughs") make a small file
 * expand without end, so both their number and the nodes the file expands
 * to are bounded (docs/configuration.md). */
#define CONFIG_MAX_ALIASES 64
#define CONFIG_MAX_NODES 65536

enum cfg_type { T_STR, T_BOOL, T_INT, T_DURATION, T_SIZE, T_LEVEL };

typedef struct {
    const char *key;
    enum cfg_type type;
    const char *def;
    const char *rover_env;
    const char *help;
} cfg_decl_t;

static const cfg_decl_t s_decls[] = {
#define CFG(key, type, def, rover, help) {key, T_##type, def, rover, help},
#include "config_keys.h"
#undef CFG
};
#define NDECLS (sizeof s_decls / sizeof s_decls[0])

typedef struct {
    char *value;
    char origin[96];
    /* Parsed forms, filled at validation. */
    bool b;
    int64_t i;
    uint64_t u;
} cfg_value_t;

typedef struct {
    char *key;
    char *value;
} raw_entry_t;

struct config {
    char *path;
    cfg_value_t values[NDECLS];
    raw_entry_t *raw;
    size_t nraw, capraw;
};

/* ============================================================= parsers */

int config_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int config_parse_int(const char *s, int64_t *out)
{
    if (!*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* Go-style durations: one or more <number><unit> groups ("1m30s",
 * "250ms"); "0" alone is allowed. */
int config_parse_duration_ns(const char *s, uint64_t *out)
{
    static const struct { const char *unit; uint64_t ns; } units[] = {
        {"ns", 1}, {"us", 1000}, {"µs", 1000}, {"ms", 1000000},
        {"s", 1000000000ull}, {"m", 60000000000ull}, {"h", 3600000000000ull},
    };
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (!*s)
        return -1;
    uint64_t total = 0;
    const char *p = s;
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.')
            return -1;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (errno || end == p || v < 0)
            return -1;
        p = end;
        size_t best = 0;
        uint64_t mult = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t n = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, n) == 0 && n > best) {
                best = n;
                mult = units[i].ns;
            }
        }
        if (!best)
            return -1;
        p += best;
        double ns = v * (double)mult;
        if (ns > 1e18)
            return -1;
        total += (uint64_t)ns;
    }
    *out = total;
    return 0;
}

/* "400KB", "8MB", "64MiB", "4096": binary multiples, as the reference
 * agent's sizes are. */
int config_parse_size(const char *s, uint64_t *out)
{
    static const struct { const char *unit; uint64_t mult; } units[] = {
        {"", 1}, {"B", 1}, {"K", 1ull << 10}, {"KB", 1ull << 10},
        {"KiB", 1ull << 10}, {"M", 1ull << 20}, {"MB", 1ull << 20},
        {"MiB", 1ull << 20}, {"G", 1ull << 30}, {"GB", 1ull << 30},
        {"GiB", 1ull << 30},
    };
    if (!isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].unit) == 0) {
            if (v > UINT64_MAX / units[i].mult)
                return -1;
            *out = v * units[i].mult;
            return 0;
        }
    }
    return -1;
}

/* ============================================================== lookup */

static int s_decl_index(const char *key)
{
    for (size_t i = 0; i < NDECLS; i++)
        if (strcmp(s_decls[i].key, key) == 0)
            return (int)i;
    return -1;
}

static const cfg_value_t *s_value(const config_t *self, const char *key,
                                  enum cfg_type type)
{
    int i = s_decl_index(key);
    if (i < 0 || (s_decls[i].type != type &&
                  !(type == T_STR && s_decls[i].type == T_LEVEL))) {
        log_error("config: key '%s' read as the wrong type or not declared",
                  key);
        abort();
    }
    return &self->values[i];
}

const char *config_str(const config_t *self, const char *key)
{
    return s_value(self, key, T_STR)->value;
}

bool config_bool(const config_t *self, const char *key)
{
    return s_value(self, key, T_BOOL)->b;
}

int64_t config_int(const config_t *self, const char *key)
{
    return s_value(self, key, T_INT)->i;
}

uint64_t config_duration_ns(const config_t *self, const char *key)
{
    return s_value(self, key, T_DURATION)->u;
}

uint64_t config_duration_ms(const config_t *self, const char *key)
{
    uint64_t ns = config_duration_ns(self, key);
    return ns ? (ns + 999999) / 1000000 : 0;
}

uint64_t config_size(const config_t *self, const char *key)
{
    return s_value(self, key, T_SIZE)->u;
}

const char *config_raw(const config_t *self, const char *key)
{
    int i = s_decl_index(key);
    if (i >= 0)
        return self->values[i].value;
    for (size_t k = 0; k < self->nraw; k++)
        if (strcmp(self->raw[k].key, key) == 0)
            return self->raw[k].value;
    return NULL;
}

size_t config_list_len(const config_t *self, const char *key)
{
    size_t klen = strlen(key), max = 0;
    for (size_t k = 0; k < self->nraw; k++) {
        const char *rk = self->raw[k].key;
        if (strncmp(rk, key, klen) != 0 || rk[klen] != '[')
            continue;
        size_t idx = strtoul(rk + klen + 1, NULL, 10);
        if (idx + 1 > max)
            max = idx + 1;
    }
    return max;
}

const char *config_origin(const config_t *self, const char *key)
{
    int i = s_decl_index(key);
    return i >= 0 ? self->values[i].origin : "file";
}

const char *config_path(const config_t *self)
{
    return self->path ? self->path : "(none)";
}

/* ============================================================= loading */

static void s_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Expands ${NAME} and ${NAME:default} from the environment, the form the
 * reference agent's configuration files use. */
static char *s_expand(const char *in)
{
    size_t cap = strlen(in) + 1, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (const char *p = in; *p;) {
        const char *piece = p;
        size_t plen = 1;
        char *val_buf = NULL;
        if (p[0] == '$' && p[1] == '{') {
            const char *close = strchr(p + 2, '}');
            if (close) {
                size_t inner = (size_t)(close - (p + 2));
                char *name = strndup(p + 2, inner);
                if (!name) {
                    free(out);
                    return NULL;
                }
                char *colon = strchr(name, ':');
                const char *def = "";
                if (colon) {
                    *colon = '\0';
                    def = colon + 1;
                }
                const char *env = getenv(name);
                val_buf = strdup(env ? env : def);
                free(name);
                if (!val_buf) {
                    free(out);
                    return NULL;
                }
                piece = val_buf;
                plen = strlen(val_buf);
                p = close + 1;
            } else {
                p++;
            }
        } else {
            p++;
        }
        if (len + plen + 1 > cap) {
            cap = (len + plen + 1) * 2;
            char *grown = realloc(out, cap);
            if (!grown) {
                free(val_buf);
                free(out);
                return NULL;
            }
            out = grown;
        }
        memcpy(out + len, piece, plen);
        len += plen;
        free(val_buf);
    }
    out[len] = '\0';
    return out;
}

static int s_set(config_t *self, const char *key, const char *value,
                 const char *origin)
{
    char *v = s_expand(value);
    if (!v)
        return -1;
    int i = s_decl_index(key);
    if (i >= 0) {
        free(self->values[i].value);
        self->values[i].value = v;
        snprintf(self->values[i].origin, sizeof self->values[i].origin, "%s",
                 origin);
        return 0;
    }
    for (size_t k = 0; k < self->nraw; k++) {
        if (strcmp(self->raw[k].key, key) == 0) {
            free(self->raw[k].value);
            self->raw[k].value = v;
            return 0;
        }
    }
    if (self->nraw >= CONFIG_MAX_RAW) {
        free(v);
        return -1;
    }
    if (self->nraw == self->capraw) {
        size_t cap = self->capraw ? self->capraw * 2 : 32;
        raw_entry_t *grown = realloc(self->raw, cap * sizeof *grown);
        if (!grown) {
            free(v);
            return -1;
        }
        self->raw = grown;
        self->capraw = cap;
    }
    self->raw[self->nraw].key = strdup(key);
    if (!self->raw[self->nraw].key) {
        free(v);
        return -1;
    }
    self->raw[self->nraw++].value = v;
    return 0;
}

/* One walk over a loaded document: aliases make the same node reachable
 * from many places, so every visit counts against the budget. */
typedef struct {
    yaml_document_t *doc;
    const char *path;
    size_t visits;
} walk_t;

static int s_walk(config_t *self, walk_t *w, yaml_node_t *node,
                  const char *prefix, int depth, char *err, size_t errlen)
{
    yaml_document_t *doc = w->doc;
    if (depth > CONFIG_MAX_DEPTH) {
        s_err(err, errlen, "%s: nested deeper than %d levels", prefix,
              CONFIG_MAX_DEPTH);
        return -1;
    }
    if (++w->visits > CONFIG_MAX_NODES) {
        s_err(err, errlen, "%s:%zu: %s: aliases expand the file to more than "
              "%d nodes", w->path, node->start_mark.line + 1,
              prefix[0] ? prefix : "(top)", CONFIG_MAX_NODES);
        return -1;
    }
    char key[512];
    switch (node->type) {
    case YAML_SCALAR_NODE:
        if (!prefix[0]) {
            s_err(err, errlen, "the file must be a mapping of sections");
            return -1;
        }
        if (s_set(self, prefix, (const char *)node->data.scalar.value,
                  "file") != 0) {
            s_err(err, errlen, "%s: too many keys or out of memory", prefix);
            return -1;
        }
        return 0;
    case YAML_MAPPING_NODE:
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
             p < node->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            yaml_node_t *v = yaml_document_get_node(doc, p->value);
            if (!k || !v || k->type != YAML_SCALAR_NODE) {
                s_err(err, errlen, "%s: mapping keys must be scalars",
                      prefix[0] ? prefix : "(top)");
                return -1;
            }
            snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "",
                     (const char *)k->data.scalar.value);
            if (s_walk(self, w, v, key, depth + 1, err, errlen))
                return -1;
        }
        return 0;
    case YAML_SEQUENCE_NODE: {
        size_t idx = 0;
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             it < node->data.sequence.items.top; it++, idx++) {
            yaml_node_t *v = yaml_document_get_node(doc, *it);
            if (!v)
                continue;
            snprintf(key, sizeof key, "%s[%zu]", prefix, idx);
            if (s_walk(self, w, v, key, depth + 1, err, errlen))
                return -1;
        }
        return 0;
    }
    default:
        return 0;
    }
}

static void s_yaml_err(const yaml_parser_t *parser, const char *path,
                       char *err, size_t errlen)
{
    s_err(err, errlen, "%s:%zu:%zu: %s", path, parser->problem_mark.line + 1,
          parser->problem_mark.column + 1,
          parser->problem ? parser->problem : "YAML syntax error");
}

/* Counts the aliases of the text before libyaml resolves them (resolving
 * looks every alias up among all anchors, so a file of many costs time
 * before any walk could stop it). 0, or -1 with the line of the first
 * alias past the limit, or of a syntax error. */
static int s_check_aliases(const char *path, const unsigned char *text,
                           size_t len, char *err, size_t errlen)
{
    int rc = -1;
    yaml_parser_t parser;
    yaml_event_t event;
    size_t aliases = 0;
    if (!yaml_parser_initialize(&parser)) {
        s_err(err, errlen, "libyaml initialisation failed");
        return -1;
    }
    yaml_parser_set_input_string(&parser, text, len);
    for (;;) {
        if (!yaml_parser_parse(&parser, &event)) {
            s_yaml_err(&parser, path, err, errlen);
            break;
        }
        yaml_event_type_t type = event.type;
        size_t line = event.start_mark.line + 1;
        yaml_event_delete(&event);
        if (type == YAML_ALIAS_EVENT && ++aliases > CONFIG_MAX_ALIASES) {
            s_err(err, errlen, "%s:%zu: more than %d aliases (*name) in the "
                  "file", path, line, CONFIG_MAX_ALIASES);
            break;
        }
        if (type == YAML_STREAM_END_EVENT) {
            rc = 0;
            break;
        }
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* The whole file, at most CONFIG_MAX_FILE bytes, into a new buffer that
 * grows with what is read (a config file is a few KiB). */
static unsigned char *s_read_file(const char *path, size_t *len, char *err,
                                  size_t errlen)
{
    unsigned char *buf = NULL, *out = NULL;
    size_t used = 0, cap = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        s_err(err, errlen, "cannot open config file %s: %s", path,
              strerror(errno));
        return NULL;
    }
    for (;;) {
        if (used == cap) {
            if (cap > CONFIG_MAX_FILE) {
                s_err(err, errlen, "config file %s is larger than %u bytes",
                      path, CONFIG_MAX_FILE);
                goto cleanup;
            }
            cap = cap ? cap * 2 : 16384;
            if (cap > CONFIG_MAX_FILE + 1)
                cap = CONFIG_MAX_FILE + 1;
            unsigned char *grown = realloc(buf, cap);
            if (!grown) {
                s_err(err, errlen, "out of memory");
                goto cleanup;
            }
            buf = grown;
        }
        size_t n = fread(buf + used, 1, cap - used, f);
        used += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        s_err(err, errlen, "cannot read config file %s: %s", path,
              strerror(errno));
        goto cleanup;
    }
    *len = used;
    out = buf;
    buf = NULL;
cleanup:
    fclose(f);
    free(buf);
    return out;
}

static int s_load_file(config_t *self, const char *path, char *err,
                       size_t errlen)
{
    int rc = -1;
    yaml_parser_t parser;
    yaml_document_t doc;
    int parser_ok = 0, doc_ok = 0;
    size_t len = 0;
    unsigned char *text = s_read_file(path, &len, err, errlen);

    if (!text || s_check_aliases(path, text, len, err, errlen))
        goto cleanup;
    if (!yaml_parser_initialize(&parser)) {
        s_err(err, errlen, "libyaml initialisation failed");
        goto cleanup;
    }
    parser_ok = 1;
    yaml_parser_set_input_string(&parser, text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        s_yaml_err(&parser, path, err, errlen);
        goto cleanup;
    }
    doc_ok = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) { /* empty file: defaults */
        rc = 0;
        goto cleanup;
    }
    if (root->type != YAML_MAPPING_NODE) {
        s_err(err, errlen, "%s: the file must be a mapping of sections", path);
        goto cleanup;
    }
    walk_t w = {.doc = &doc, .path = path};
    rc = s_walk(self, &w, root, "", 0, err, errlen);
cleanup:
    if (doc_ok)
        yaml_document_delete(&doc);
    if (parser_ok)
        yaml_parser_delete(&parser);
    free(text);
    return rc;
}

static void s_env_name(const char *prefix, const char *key, char *out,
                       size_t size)
{
    size_t n = (size_t)snprintf(out, size, "%s", prefix);
    for (const char *p = key; *p && n + 1 < size; p++)
        out[n++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p)
                                              : '_';
    out[n] = '\0';
}

static int s_apply_env(config_t *self)
{
    for (size_t i = 0; i < NDECLS; i++) {
        char name[160], origin[192];
        const char *val = NULL;
        s_env_name("SKYPROF_", s_decls[i].key, name, sizeof name);
        val = getenv(name);
        if (!val && s_decls[i].rover_env) {
            snprintf(name, sizeof name, "%s", s_decls[i].rover_env);
            val = getenv(name);
        }
        if (!val)
            continue;
        snprintf(origin, sizeof origin, "env %s", name);
        if (s_set(self, s_decls[i].key, val, origin) != 0)
            return -1;
    }
    return 0;
}

static int s_validate(config_t *self, char *err, size_t errlen)
{
    for (size_t i = 0; i < NDECLS; i++) {
        cfg_value_t *v = &self->values[i];
        const cfg_decl_t *d = &s_decls[i];
        const char *why = NULL;
        switch (d->type) {
        case T_STR:
            break;
        case T_LEVEL:
            if (log_level_parse(v->value) < 0)
                why = "want error, warn, info or debug";
            break;
        case T_BOOL:
            if (config_parse_bool(v->value, &v->b))
                why = "want true or false";
            break;
        case T_INT:
            if (config_parse_int(v->value, &v->i))
                why = "want an integer";
            else if (v->i <= 0 || v->i > INT32_MAX)
                why = "want an integer between 1 and 2147483647";
            break;
        case T_DURATION:
            if (config_parse_duration_ns(v->value, &v->u))
                why = "want a duration such as 9ms, 10s, 5m or 1h";
            else if (v->u == 0)
                why = "must be greater than zero";
            break;
        case T_SIZE:
            if (config_parse_size(v->value, &v->u))
                why = "want a size such as 4096, 400KB or 8MB";
            else if (v->u == 0)
                why = "must be greater than zero";
            break;
        }
        if (why) {
            s_err(err, errlen, "config key %s = '%s' (from %s): %s", d->key,
                  v->value, v->origin, why);
            return -1;
        }
    }
    /* Relations between keys. */
    uint64_t dump = config_duration_ns(self, "profiling.task.on_cpu.dump_period");
    uint64_t host = config_duration_ns(self, "collector.host_period");
    if (dump < 1000000ull) {
        s_err(err, errlen,
              "config key profiling.task.on_cpu.dump_period = '%s': must be "
              "at least 1ms", self->values[s_decl_index(
                  "profiling.task.on_cpu.dump_period")].value);
        return -1;
    }
    if (host < dump) {
        s_err(err, errlen,
              "config key collector.host_period = '%s': must not be shorter "
              "than profiling.task.on_cpu.dump_period",
              self->values[s_decl_index("collector.host_period")].value);
        return -1;
    }
    return 0;
}

/* Unknown keys are warned about (a reference-agent file carries modules
 * skyprof does not have); list-shaped keys are read by their stage. */
static void s_warn_unknown(const config_t *self)
{
    for (size_t k = 0; k < self->nraw; k++)
        if (!strchr(self->raw[k].key, '['))
            log_warn("config: unknown key %s ignored", self->raw[k].key);
}

config_t *config_load(const char *path, char *err, size_t errlen)
{
    config_t *self = calloc(1, sizeof *self);
    if (!self) {
        s_err(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < NDECLS; i++) {
        self->values[i].value = strdup(s_decls[i].def);
        snprintf(self->values[i].origin, sizeof self->values[i].origin,
                 "default");
        if (!self->values[i].value) {
            s_err(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (path) {
        self->path = strdup(path);
        if (!self->path || s_load_file(self, path, err, errlen))
            goto fail;
    }
    if (s_apply_env(self)) {
        s_err(err, errlen, "out of memory");
        goto fail;
    }
    if (s_validate(self, err, errlen))
        goto fail;
    s_warn_unknown(self);
    return self;
fail:
    config_destroy(&self);
    return NULL;
}

void config_destroy(config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    config_t *self = *self_p;
    for (size_t i = 0; i < NDECLS; i++)
        free(self->values[i].value);
    for (size_t k = 0; k < self->nraw; k++) {
        free(self->raw[k].key);
        free(self->raw[k].value);
    }
    free(self->raw);
    free(self->path);
    free(self);
    *self_p = NULL;
}

void config_dump(const config_t *self)
{
    for (size_t i = 0; i < NDECLS; i++)
        printf("%-48s %-24s # %s\n", s_decls[i].key, self->values[i].value,
               self->values[i].origin);
    for (size_t k = 0; k < self->nraw; k++)
        printf("%-48s %-24s # file\n", self->raw[k].key, self->raw[k].value);
}
