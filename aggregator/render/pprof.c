/* pprof export: a flame tree as a gzip'ed perftools.profiles.Profile.
 *
 * Every node that holds self value becomes one Sample whose location ids
 * run from that node up to (not including) the root, leaf first. We have
 * names, not addresses, so there is one Function per distinct name and one
 * Location per Function (same id); the string table is deduplicated.
 *
 * Memory stays bounded for big trees: samples are packed in chunks, each
 * chunk serialised as a Profile holding only samples and streamed through
 * deflate. Concatenated protobuf messages parse as one message whose
 * repeated fields are appended, so the stream is a single valid Profile;
 * the last piece carries the string table, functions, locations and the
 * scalar fields. Only the deduplicated tables and one chunk are ever held. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "aggregator/render/render.h"
#include "hash.h"
#include "profile.pb-c.h"

#define S_CHUNK_SAMPLES 4096
#define S_CHUNK_LOCS (256 * 1024)

/* ------------------------------------------------------------ gzip sink */

/* A ProtobufCBuffer that deflates whatever protobuf-c appends to it. */
typedef struct {
    ProtobufCBuffer base; /* first: protobuf-c calls base.append */
    z_stream zs;
    int zs_ready;
    int failed;
    unsigned char *out;
    size_t out_len, out_cap;
} s_gzip_sink_t;

static int
s_sink_reserve(s_gzip_sink_t *sink)
{
    if (sink->out_cap - sink->out_len >= 4096)
        return 0;
    size_t cap = sink->out_cap ? sink->out_cap * 2 : 64 * 1024;
    unsigned char *grown = realloc(sink->out, cap);
    if (!grown)
        return -1;
    sink->out = grown;
    sink->out_cap = cap;
    return 0;
}

/* Runs deflate over the pending input with `flush` until it has consumed
 * it all (Z_NO_FLUSH) or finished the stream (Z_FINISH). */
static int
s_sink_deflate(s_gzip_sink_t *sink, int flush)
{
    for (;;) {
        if (s_sink_reserve(sink) != 0)
            return -1;
        sink->zs.next_out = sink->out + sink->out_len;
        sink->zs.avail_out = (uInt)(sink->out_cap - sink->out_len);
        int rc = deflate(&sink->zs, flush);
        sink->out_len = sink->out_cap - sink->zs.avail_out;
        if (rc == Z_STREAM_END)
            return 0;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return -1;
        if (flush == Z_NO_FLUSH && sink->zs.avail_in == 0)
            return 0;
    }
}

static void
s_sink_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
    s_gzip_sink_t *sink = (s_gzip_sink_t *)buffer;
    if (sink->failed)
        return;
    while (len > 0) {
        /* avail_in is a uInt: feed huge appends in slices. */
        uInt slice = len > (1u << 30) ? (1u << 30) : (uInt)len;
        sink->zs.next_in = (Bytef *)data;
        sink->zs.avail_in = slice;
        if (s_sink_deflate(sink, Z_NO_FLUSH) != 0) {
            sink->failed = 1;
            return;
        }
        data += slice;
        len -= slice;
    }
}

static int
s_sink_init(s_gzip_sink_t *sink)
{
    memset(sink, 0, sizeof(*sink));
    sink->base.append = s_sink_append;
    /* windowBits 15 + 16: a gzip header and trailer, as pprof expects. */
    if (deflateInit2(&sink->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16,
                     8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    sink->zs_ready = 1;
    return 0;
}

static void
s_sink_cleanup(s_gzip_sink_t *sink)
{
    if (sink->zs_ready)
        deflateEnd(&sink->zs);
    sink->zs_ready = 0;
    free(sink->out);
    sink->out = NULL;
}

/* ------------------------------------------------------------ builder */

typedef struct {
    size_t loc_off, nloc;
    int64_t values[2];
} s_pending_sample_t;

typedef struct {
    /* string table: strings[i] borrowed (tree names or literals) */
    const char **strings;
    size_t nstrings, strings_cap;
    uint32_t *str_hash; /* open addressing: string index + 1, 0 = empty */
    size_t str_hash_cap;
    /* function id (1-based) per string index, 0 = none yet */
    uint32_t *func_of_str;
    /* string index of each function's name, function id - 1 indexes it */
    uint32_t *func_name;
    size_t nfuncs, funcs_cap;
    /* location ids of the current path, by depth */
    uint64_t *path;
    size_t path_cap;
    /* the chunk of samples not yet packed */
    s_pending_sample_t *pending;
    size_t npending;
    uint64_t *chunk_locs;
    size_t nchunk_locs, chunk_locs_cap;
    s_gzip_sink_t sink;
    int failed;
} s_builder_t;

static int
s_str_rehash(s_builder_t *b, size_t cap)
{
    uint32_t *table = calloc(cap, sizeof(*table));
    if (!table)
        return -1;
    for (size_t i = 0; i < b->nstrings; i++) {
        size_t slot = hash_fnv1a(b->strings[i], 0) & (cap - 1);
        while (table[slot])
            slot = (slot + 1) & (cap - 1);
        table[slot] = (uint32_t)(i + 1);
    }
    free(b->str_hash);
    b->str_hash = table;
    b->str_hash_cap = cap;
    return 0;
}

/* Index of s in the string table, adding it when new; -1 on failure. */
static int64_t
s_intern(s_builder_t *b, const char *s)
{
    if (!s)
        s = "";
    if ((b->nstrings + 1) * 10 >= b->str_hash_cap * 7
        && s_str_rehash(b, b->str_hash_cap ? b->str_hash_cap * 2 : 256) != 0)
        return -1;
    size_t slot = hash_fnv1a(s, 0) & (b->str_hash_cap - 1);
    while (b->str_hash[slot]) {
        uint32_t idx = b->str_hash[slot] - 1;
        if (strcmp(b->strings[idx], s) == 0)
            return idx;
        slot = (slot + 1) & (b->str_hash_cap - 1);
    }
    if (b->nstrings >= UINT32_MAX - 1)
        return -1;
    if (b->nstrings == b->strings_cap) {
        size_t cap = b->strings_cap ? b->strings_cap * 2 : 256;
        const char **strings = realloc(b->strings, cap * sizeof(*strings));
        if (!strings)
            return -1;
        b->strings = strings;
        uint32_t *func_of_str = realloc(b->func_of_str,
                                        cap * sizeof(*func_of_str));
        if (!func_of_str)
            return -1;
        b->func_of_str = func_of_str;
        b->strings_cap = cap;
    }
    b->strings[b->nstrings] = s;
    b->func_of_str[b->nstrings] = 0;
    b->str_hash[slot] = (uint32_t)(b->nstrings + 1);
    return (int64_t)b->nstrings++;
}

/* Location id (== function id) for a frame name; 0 on failure. */
static uint64_t
s_location_of(s_builder_t *b, const char *name)
{
    int64_t idx = s_intern(b, name);
    if (idx < 0)
        return 0;
    if (b->func_of_str[idx])
        return b->func_of_str[idx];
    if (b->nfuncs == b->funcs_cap) {
        size_t cap = b->funcs_cap ? b->funcs_cap * 2 : 256;
        uint32_t *names = realloc(b->func_name, cap * sizeof(*names));
        if (!names)
            return 0;
        b->func_name = names;
        b->funcs_cap = cap;
    }
    b->func_name[b->nfuncs++] = (uint32_t)idx;
    b->func_of_str[idx] = (uint32_t)b->nfuncs;
    return b->nfuncs;
}

static int64_t
s_clamp_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* Packs the pending samples as a samples-only Profile into the sink. */
static int
s_flush_chunk(s_builder_t *b)
{
    int rc = -1;
    Perftools__Profiles__Sample *samples = NULL;
    Perftools__Profiles__Sample **sample_ptrs = NULL;

    if (b->npending == 0)
        return 0;
    samples = calloc(b->npending, sizeof(*samples));
    sample_ptrs = calloc(b->npending, sizeof(*sample_ptrs));
    if (!samples || !sample_ptrs)
        goto cleanup;
    for (size_t i = 0; i < b->npending; i++) {
        perftools__profiles__sample__init(&samples[i]);
        samples[i].n_location_id = b->pending[i].nloc;
        samples[i].location_id = b->chunk_locs + b->pending[i].loc_off;
        samples[i].n_value = 2;
        samples[i].value = b->pending[i].values;
        sample_ptrs[i] = &samples[i];
    }
    Perftools__Profiles__Profile chunk;
    perftools__profiles__profile__init(&chunk);
    chunk.n_sample = b->npending;
    chunk.sample = sample_ptrs;
    perftools__profiles__profile__pack_to_buffer(&chunk, &b->sink.base);
    if (b->sink.failed)
        goto cleanup;
    b->npending = 0;
    b->nchunk_locs = 0;
    rc = 0;
cleanup:
    free(samples);
    free(sample_ptrs);
    return rc;
}

/* Queues a sample of n locations and returns where the caller writes
 * them (leaf first), or NULL on allocation failure. */
static uint64_t *
s_add_sample(s_builder_t *b, size_t n, uint64_t count, uint64_t ns)
{
    if (b->npending >= S_CHUNK_SAMPLES
        || (b->nchunk_locs + n > S_CHUNK_LOCS && b->npending > 0)) {
        if (s_flush_chunk(b) != 0)
            return NULL;
    }
    if (b->nchunk_locs + n > b->chunk_locs_cap) {
        size_t cap = b->chunk_locs_cap ? b->chunk_locs_cap : 4096;
        while (cap < b->nchunk_locs + n)
            cap *= 2;
        uint64_t *locs = realloc(b->chunk_locs, cap * sizeof(*locs));
        if (!locs)
            return NULL;
        b->chunk_locs = locs;
        b->chunk_locs_cap = cap;
    }
    if (!b->pending) {
        b->pending = malloc(S_CHUNK_SAMPLES * sizeof(*b->pending));
        if (!b->pending)
            return NULL;
    }
    s_pending_sample_t *sample = &b->pending[b->npending++];
    sample->loc_off = b->nchunk_locs;
    sample->nloc = n;
    sample->values[0] = s_clamp_i64(count);
    sample->values[1] = s_clamp_i64(ns);
    b->nchunk_locs += n;
    return b->chunk_locs + sample->loc_off;
}

static int
s_visit_node(const flame_node_t *node, int depth, void *arg)
{
    s_builder_t *b = arg;
    if (depth < 0)
        goto fail;
    size_t d = (size_t)depth;

    if (d == 0) {
        /* The root (process, task or "Total") is a view, not a frame:
         * only a sample credited to the root itself needs it as a
         * location, so nothing is lost from the totals. */
        if (node->self_count || node->self_ns) {
            uint64_t loc = s_location_of(b, node->name);
            uint64_t *slot = loc ? s_add_sample(b, 1, node->self_count,
                                                node->self_ns)
                                 : NULL;
            if (!slot)
                goto fail;
            slot[0] = loc;
        }
        return 0;
    }
    if (d + 1 > b->path_cap) {
        size_t cap = b->path_cap ? b->path_cap * 2 : 256;
        while (cap < d + 1)
            cap *= 2;
        uint64_t *path = realloc(b->path, cap * sizeof(*path));
        if (!path)
            goto fail;
        b->path = path;
        b->path_cap = cap;
    }
    /* Pre-order: path[1..d-1] already hold this node's ancestors. */
    uint64_t loc = s_location_of(b, node->name);
    if (!loc)
        goto fail;
    b->path[d] = loc;
    if (node->self_count || node->self_ns) {
        uint64_t *slot = s_add_sample(b, d, node->self_count, node->self_ns);
        if (!slot)
            goto fail;
        for (size_t i = 0; i < d; i++)
            slot[i] = b->path[d - i];
    }
    return 0;
fail:
    b->failed = 1;
    return 1;
}

/* Packs the tables and scalar fields (everything but samples). */
static int
s_pack_tables(s_builder_t *b, const int64_t type_idx[4], uint64_t period,
              uint64_t start_ns, uint64_t duration_ns)
{
    int rc = -1;
    Perftools__Profiles__Function *funcs = NULL;
    Perftools__Profiles__Function **func_ptrs = NULL;
    Perftools__Profiles__Location *locs = NULL;
    Perftools__Profiles__Location **loc_ptrs = NULL;
    Perftools__Profiles__Line *lines = NULL;
    Perftools__Profiles__Line **line_ptrs = NULL;
    size_t n = b->nfuncs ? b->nfuncs : 1;

    funcs = calloc(n, sizeof(*funcs));
    func_ptrs = calloc(n, sizeof(*func_ptrs));
    locs = calloc(n, sizeof(*locs));
    loc_ptrs = calloc(n, sizeof(*loc_ptrs));
    lines = calloc(n, sizeof(*lines));
    line_ptrs = calloc(n, sizeof(*line_ptrs));
    if (!funcs || !func_ptrs || !locs || !loc_ptrs || !lines || !line_ptrs)
        goto cleanup;
    for (size_t i = 0; i < b->nfuncs; i++) {
        perftools__profiles__function__init(&funcs[i]);
        funcs[i].id = i + 1;
        funcs[i].name = b->func_name[i];
        funcs[i].system_name = b->func_name[i];
        func_ptrs[i] = &funcs[i];
        perftools__profiles__line__init(&lines[i]);
        lines[i].function_id = i + 1;
        line_ptrs[i] = &lines[i];
        perftools__profiles__location__init(&locs[i]);
        locs[i].id = i + 1;
        locs[i].n_line = 1;
        locs[i].line = &line_ptrs[i];
        loc_ptrs[i] = &locs[i];
    }

    Perftools__Profiles__ValueType types[2], period_type;
    Perftools__Profiles__ValueType *type_ptrs[2] = { &types[0], &types[1] };
    for (int i = 0; i < 2; i++) {
        perftools__profiles__value_type__init(&types[i]);
        types[i].type = type_idx[2 * i];
        types[i].unit = type_idx[2 * i + 1];
    }
    perftools__profiles__value_type__init(&period_type);

    Perftools__Profiles__Profile prof;
    perftools__profiles__profile__init(&prof);
    prof.n_sample_type = 2;
    prof.sample_type = type_ptrs;
    prof.n_function = b->nfuncs;
    prof.function = func_ptrs;
    prof.n_location = b->nfuncs;
    prof.location = loc_ptrs;
    /* protobuf-c wants char **; the strings are only read while packing. */
    prof.n_string_table = b->nstrings;
    prof.string_table = (char **)b->strings;
    prof.time_nanos = s_clamp_i64(start_ns);
    prof.duration_nanos = s_clamp_i64(duration_ns);
    if (period) {
        /* On-CPU: one sample per period_ns of CPU time. */
        period_type.type = type_idx[2];
        period_type.unit = type_idx[3];
        prof.period = s_clamp_i64(period);
    } else {
        /* Off-CPU: every switch is recorded; a period of one switch. */
        period_type.type = type_idx[0];
        period_type.unit = type_idx[1];
        prof.period = 1;
    }
    prof.period_type = &period_type;
    /* Viewers open on the time value, which is what people read first. */
    prof.default_sample_type = type_idx[2];
    perftools__profiles__profile__pack_to_buffer(&prof, &b->sink.base);
    rc = b->sink.failed ? -1 : 0;
cleanup:
    free(funcs);
    free(func_ptrs);
    free(locs);
    free(loc_ptrs);
    free(lines);
    free(line_ptrs);
    return rc;
}

static void
s_builder_cleanup(s_builder_t *b)
{
    free(b->strings);
    free(b->str_hash);
    free(b->func_of_str);
    free(b->func_name);
    free(b->path);
    free(b->pending);
    free(b->chunk_locs);
    s_sink_cleanup(&b->sink);
}

int
render_pprof(const flame_t *tree, int off_cpu, uint64_t period_ns,
             uint64_t start_ns, uint64_t duration_ns, unsigned char **out,
             size_t *len)
{
    int rc = -1;
    s_builder_t b;
    memset(&b, 0, sizeof(b));

    if (!tree || !out)
        return -1;
    *out = NULL;
    if (len)
        *len = 0;
    if (s_sink_init(&b.sink) != 0)
        goto cleanup;

    static const char *const on_names[4] = { "samples", "count", "cpu",
                                             "nanoseconds" };
    static const char *const off_names[4] = { "switches", "count", "off_cpu",
                                              "nanoseconds" };
    const char *const *names = off_cpu ? off_names : on_names;
    int64_t type_idx[4];
    if (s_intern(&b, "") != 0)  /* pprof requires "" at index 0 */
        goto cleanup;
    for (int i = 0; i < 4; i++) {
        type_idx[i] = s_intern(&b, names[i]);
        if (type_idx[i] < 0)
            goto cleanup;
    }

    flame_visit(tree, s_visit_node, &b);
    if (b.failed || s_flush_chunk(&b) != 0)
        goto cleanup;
    if (s_pack_tables(&b, type_idx, off_cpu ? 0 : period_ns, start_ns,
                      duration_ns) != 0)
        goto cleanup;
    b.sink.zs.next_in = NULL;
    b.sink.zs.avail_in = 0;
    if (s_sink_deflate(&b.sink, Z_FINISH) != 0)
        goto cleanup;

    *out = b.sink.out;
    if (len)
        *len = b.sink.out_len;
    b.sink.out = NULL;
    rc = 0;
cleanup:
    s_builder_cleanup(&b);
    return rc;
}
