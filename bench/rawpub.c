/* rawpub: a synthetic collector for the pipeline throughput benchmark.
 *
 *   rawpub ENDPOINT SENDER RATE SECONDS BATCH OBJECT...
 *
 * Publishes raw stack batches (lib/wire.h) on the broker's input ENDPOINT
 * at RATE samples per second for SECONDS, BATCH samples per message, as
 * SENDER. Stacks are drawn from a fixed pool of 4096 distinct stacks whose
 * user frames are real function offsets in the given OBJECTs (so the
 * symbolizer does real lookups) and whose kernel frames are real text
 * addresses from /proc/kallsyms. 256 pids spread over every bucket; a
 * batch holds one bucket's pids, as the collector's do. Every sample has
 * count 1, the worst case (the collector merges identical stacks).
 *
 * Prints "published_samples=N batches=N seconds=S send_failures=N" at the
 * end; the achieved rate tells whether this driver kept up. */
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "wire.h"

#define POOL_STACKS 4096
#define KFRAMES 6
#define UFRAMES 14
#define NPIDS 256
#define MAX_OBJECTS 8
#define MAX_FUNCS_PER_OBJECT 4096

typedef struct {
    wire_object_t obj;
    char path[4096];
    uint64_t offsets[MAX_FUNCS_PER_OBJECT]; /* file offsets inside funcs */
    size_t noffsets;
} object_t;

typedef struct {
    uint64_t kframes[KFRAMES];
    wire_uframe_t uframes[UFRAMES];
} stack_t_;

static uint64_t s_rng = 0x243f6a8885a308d3ull;

static uint64_t s_rand(void)
{
    /* xorshift64*: fixed seed so every run sends the same stacks */
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return s_rng * 2685821657736338717ull;
}

static uint64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* File offsets of up to MAX_FUNCS_PER_OBJECT sized functions of path,
 * through the PT_LOAD that maps each. */
static int s_load_object(object_t *o, uint32_t id, const char *path)
{
    int rc = -1;
    Elf *elf = NULL;
    int fd = open(path, O_RDONLY);
    struct stat st;
    size_t nph = 0;
    if (fd < 0 || fstat(fd, &st) < 0 || !realpath(path, o->path) ||
        !(elf = elf_begin(fd, ELF_C_READ, NULL)) ||
        elf_getphdrnum(elf, &nph) != 0)
        goto cleanup;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) &&
           o->noffsets < MAX_FUNCS_PER_OBJECT) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) ||
            (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) ||
            !sh.sh_entsize)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        for (size_t i = 0; d && i < d->d_size / sh.sh_entsize &&
                           o->noffsets < MAX_FUNCS_PER_OBJECT; i++) {
            GElf_Sym sym;
            if (!gelf_getsym(d, (int)i, &sym) ||
                GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
                sym.st_shndx == SHN_UNDEF || !sym.st_value || !sym.st_size)
                continue;
            uint64_t va = sym.st_value + s_rand() % sym.st_size;
            for (size_t p = 0; p < nph; p++) {
                GElf_Phdr ph;
                if (gelf_getphdr(elf, (int)p, &ph) && ph.p_type == PT_LOAD &&
                    va >= ph.p_vaddr && va < ph.p_vaddr + ph.p_filesz) {
                    o->offsets[o->noffsets++] = va - ph.p_vaddr + ph.p_offset;
                    break;
                }
            }
        }
    }
    if (!o->noffsets)
        goto cleanup;
    o->obj.id = id;
    o->obj.type = WIRE_OBJ_LIB;
    o->obj.dev = (uint64_t)st.st_dev;
    o->obj.ino = (uint64_t)st.st_ino;
    o->obj.path = o->path;
    rc = 0;
cleanup:
    if (elf)
        elf_end(elf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Up to max kernel text addresses from kallsyms (needs root to see them). */
static size_t s_load_kernel(uint64_t *addrs, size_t max)
{
    FILE *f = fopen("/proc/kallsyms", "r");
    char line[512];
    size_t n = 0, seen = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f)) {
        uint64_t a;
        char type;
        if (sscanf(line, "%" SCNx64 " %c", &a, &type) != 2 || !a ||
            (type != 't' && type != 'T') || strchr(line, '['))
            continue;
        /* reservoir sampling: an even spread over the whole kernel */
        seen++;
        if (n < max)
            addrs[n++] = a + 4;
        else if (s_rand() % seen < max)
            addrs[s_rand() % max] = a + 4;
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    int rc = 1;
    void *ctx = NULL, *pub = NULL;
    object_t *objects = NULL;
    stack_t_ *pool = NULL;
    wire_raw_sample_t *samples = NULL;
    wire_buf_t buf;
    wire_buf_init(&buf);
    if (argc < 7) {
        fprintf(stderr, "usage: rawpub ENDPOINT SENDER RATE SECONDS BATCH "
                        "OBJECT...\n");
        goto cleanup;
    }
    const char *endpoint = argv[1], *sender = argv[2];
    double rate = atof(argv[3]), seconds = atof(argv[4]);
    long batch = atol(argv[5]);
    int nobjects = argc - 6;
    if (rate <= 0 || seconds <= 0 || batch < 1 || batch > WIRE_MAX_SAMPLES ||
        nobjects > MAX_OBJECTS) {
        fprintf(stderr, "rawpub: bad arguments\n");
        goto cleanup;
    }
    elf_version(EV_CURRENT);
    objects = calloc((size_t)nobjects, sizeof(*objects));
    pool = calloc(POOL_STACKS, sizeof(*pool));
    samples = calloc((size_t)batch, sizeof(*samples));
    if (!objects || !pool || !samples)
        goto cleanup;
    wire_object_t table[MAX_OBJECTS];
    for (int i = 0; i < nobjects; i++) {
        if (s_load_object(&objects[i], (uint32_t)i + 1, argv[6 + i]) < 0) {
            fprintf(stderr, "rawpub: no functions in %s\n", argv[6 + i]);
            goto cleanup;
        }
        table[i] = objects[i].obj;
    }
    uint64_t kaddrs[2048];
    size_t nk = s_load_kernel(kaddrs, 2048);
    for (size_t s = 0; s < POOL_STACKS; s++) {
        for (size_t k = 0; k < KFRAMES; k++)
            pool[s].kframes[k] = nk ? kaddrs[s_rand() % nk] : 0;
        for (size_t u = 0; u < UFRAMES; u++) {
            const object_t *o = &objects[s_rand() % (uint64_t)nobjects];
            pool[s].uframes[u].object = o->obj.id;
            pool[s].uframes[u].offset = o->offsets[s_rand() % o->noffsets];
        }
    }
    /* NPIDS pids, grouped by bucket so a batch takes one bucket's pids. */
    uint32_t pids[WIRE_BUCKETS][NPIDS];
    size_t npids[WIRE_BUCKETS] = {0};
    for (uint32_t pid = 4000000, made = 0; made < NPIDS; pid++) {
        uint32_t b = wire_pid_bucket(pid);
        if (npids[b] >= NPIDS / WIRE_BUCKETS)
            continue;
        pids[b][npids[b]++] = pid;
        made++;
    }
    static wire_proc_t procs[NPIDS / WIRE_BUCKETS];
    static char names[NPIDS / WIRE_BUCKETS][32];
    uint64_t seq[WIRE_BUCKETS] = {0};

    ctx = zmq_ctx_new();
    pub = ctx ? zmq_socket(ctx, ZMQ_PUB) : NULL;
    int linger = 2000, hwm = 100000;
    if (!pub || zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_connect(pub, endpoint) != 0) {
        fprintf(stderr, "rawpub: cannot connect to %s\n", endpoint);
        goto cleanup;
    }
    /* A PUB socket drops what no subscriber asked for yet: give the
     * broker time to pass the subscriptions on. */
    usleep(500000);

    uint64_t start = s_now_ns(), end = start + (uint64_t)(seconds * 1e9);
    uint64_t per_batch_ns = (uint64_t)(1e9 * (double)batch / rate);
    uint64_t published = 0, batches = 0, failures = 0;
    uint32_t bucket = 0;
    for (uint64_t due = start; due < end; due += per_batch_ns) {
        uint64_t now = s_now_ns();
        if (now < due) {
            struct timespec ts = {(time_t)((due - now) / 1000000000ull),
                                  (long)((due - now) % 1000000000ull)};
            nanosleep(&ts, NULL);
        }
        size_t np = npids[bucket];
        for (size_t i = 0; i < np; i++) {
            snprintf(names[i], sizeof names[i], "benchproc%u",
                     pids[bucket][i]);
            procs[i] = (wire_proc_t){.pid = pids[bucket][i],
                                     .name = names[i], .container_id = ""};
        }
        for (long i = 0; i < batch; i++) {
            const stack_t_ *st = &pool[s_rand() % POOL_STACKS];
            uint32_t pid = pids[bucket][(size_t)i % np];
            samples[i] = (wire_raw_sample_t){
                .pid = pid, .tid = pid, .kind = WIRE_KIND_ON_CPU,
                .ts_ns = (uint64_t)time(NULL) * 1000000000ull, .count = 1,
                .weight_ns = 10000000, .nk = nk ? KFRAMES : 0,
                .kframes = st->kframes, .nu = UFRAMES,
                .uframes = st->uframes};
            snprintf(samples[i].comm, sizeof samples[i].comm, "benchproc");
        }
        wire_raw_batch_t b = {.nobjects = (uint32_t)nobjects,
                              .objects = table, .nprocs = (uint32_t)np,
                              .procs = procs, .nsamples = (uint32_t)batch,
                              .samples = samples};
        /* Numbered per topic, as bus_next_seq does for the collector. */
        wire_header_set(&b.hdr, sender, ++seq[bucket]);
        char topic[32];
        wire_sharded_topic(topic, sizeof topic, TOPIC_RAW_STACKS,
                           pids[bucket][0]);
        wire_buf_reset(&buf);
        if (wire_encode_raw_batch(&b, &buf) < 0) {
            fprintf(stderr, "rawpub: batch does not encode\n");
            goto cleanup;
        }
        if (zmq_send(pub, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(pub, buf.data, buf.len, ZMQ_DONTWAIT) < 0)
            failures++;
        else
            published += (uint64_t)batch;
        batches++;
        bucket = (bucket + 1) % WIRE_BUCKETS;
    }
    double took = (double)(s_now_ns() - start) / 1e9;
    printf("published_samples=%" PRIu64 " batches=%" PRIu64
           " seconds=%.3f send_failures=%" PRIu64 "\n",
           published, batches, took, failures);
    rc = 0;
cleanup:
    wire_buf_release(&buf);
    if (pub)
        zmq_close(pub);
    if (ctx)
        zmq_ctx_term(ctx);
    free(samples);
    free(pool);
    free(objects);
    return rc;
}
