/* Unwind tables and per-process mapping tables in BPF maps; see
 * unwinder.h. */
#include "collector/unwinder.h"

#include <bpf/bpf.h>
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "hashmap.h"
#include "log.h"
#include "wire.h"

/* An evicted table is built again for a process that maps it only this
 * long after (see s_evict_one). */
#define UNWINDER_REBUILD_AFTER_NS (10ull * 1000000000ull)

/* Executable PT_LOAD segments remembered per object, for load biases. */
#define UNWINDER_SEGS_MAX 4
/* The build worker's nice value (see s_worker). */
#define UNWINDER_WORKER_NICE 10
/* Objects whose executable mapping is at most this big get their table
 * built on the caller's thread (the loop) at first sight instead of by
 * the worker, while the maps have room (see s_build_inline). */
#define UNWINDER_INLINE_MAX (256u << 10)
/* A vdso image is a few pages; anything bigger is not one. */
#define UNWINDER_VDSO_MAX (1u << 20)

typedef struct utable {
    /* key: build-id when the object has one, else dev+inode */
    uint8_t id_len;
    uint8_t id[ELFID_BUILD_ID_MAX];
    uint64_t dev, ino;
    int loaded;                   /* rows are in the kernel under slot */
    int pending;                  /* queued for unwinder_work */
    int vdso;                     /* the vdso: built from our own image */
    int no_source;                /* the process named to read it from was
                                     gone: the next one that maps it is */
    int building;                 /* with the worker (not in the queue) */
    uint64_t evicted_ns;          /* when its rows were evicted, 0: never */
    /* where to read the file: a process mapping it (for pending builds) */
    uint32_t src_pid;
    uint64_t src_start, src_end;
    char *src_path;
    struct utable *qprev, *qnext; /* build queue */
    uint32_t slot, gen;
    uint32_t first, count;        /* run in unw_rows */
    uint32_t nsegs;
    struct {
        uint64_t off, vaddr, filesz;
    } segs[UNWINDER_SEGS_MAX];
    /* the unw_files keys (kernel dev, inode) naming this loaded table */
    uint64_t (*fkeys)[2];
    uint32_t nfkeys;
    struct utable *prev, *next;   /* LRU list, most recent first */
} utable_t;

typedef struct {
    uint32_t pid;
    uint32_t slot;
    uint64_t hash;                /* of the entry last written */
    int waiting;                  /* names a table still being built */
} uproc_t;

typedef struct {
    uint32_t start, len;
} range_t;

struct unwinder {
    unwinder_maps_t maps;
    unwind_limits_t limits;
    hashmap_t *tables;            /* utable_t by key */
    utable_t *lru_head, *lru_tail;
    utable_t *queue_head, *queue_tail; /* tables to build, most recently
                                          wanted first */
    uint32_t queued;
    /* the build worker: one job in flight */
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;                     /* under mu */
    struct job *job_in, *job_out; /* under mu */
    utable_t *building;           /* the entry job_in/job_out is for */
    int efd;                      /* eventfd: a build finished */
    uint32_t *slot_gen;           /* per table slot */
    uint32_t *free_slots;         /* table slots not in use */
    uint32_t nfree_slots;
    range_t *free_rows;           /* free runs of unw_rows, by start */
    uint32_t nfree_rows;
    hashmap_t *procs;             /* uproc_t by pid */
    uint32_t *free_pslots;
    uint32_t nfree_pslots;
    int rows_mmap_logged;         /* the fallback was logged */
    log_ratelimit_t evict_rl;     /* "maps too small" warnings */
    int trim_due;                 /* builds finished since the last trim */
    struct sky_unw_proc entry;    /* scratch for unwinder_sync */
    unwinder_stats_t stats;
};

static uint64_t s_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------- keys */

typedef struct {
    uint8_t id_len;
    const uint8_t *id;
    uint64_t dev, ino;
} ukey_t;

static uint64_t s_key_hash(const ukey_t *k)
{
    if (k->id_len)
        return hash_bytes64(k->id, k->id_len, 0x75);
    return hash_split64(k->dev * 0x9e3779b97f4a7c15ull ^ k->ino);
}

static int s_key_match(const void *item, const void *key)
{
    const utable_t *t = item;
    const ukey_t *k = key;

    if (t->id_len != k->id_len)
        return 0;
    if (k->id_len)
        return memcmp(t->id, k->id, k->id_len) == 0;
    return t->dev == k->dev && t->ino == k->ino;
}

static int s_pid_match(const void *item, const void *key)
{
    return ((const uproc_t *)item)->pid == *(const uint32_t *)key;
}

/* ------------------------------------------------------------- rows */

int unwinder_pack_row(const unwind_row_t *in, struct sky_unw_row *out)
{
    int32_t cfa8 = in->cfa_off / 8;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (in->pc > UINT32_MAX)
        return -1;
    out->pc = (uint32_t)in->pc;
    if (in->cfa_kind == UNWIND_CFA_NONE)
        return 0;
    /* Offsets are multiples of 8 in code compilers emit; anything else, or
     * too far for 16 bits of eighths, is a row the kernel cannot follow. */
    if (in->cfa_off % 8 != 0 || cfa8 < INT16_MIN || cfa8 > INT16_MAX)
        return 1;
    uint8_t rbp_kind = in->rbp_kind;
    int rbp8 = 0;
    if (in->cfa_kind == UNWIND_CFA_PLT) {
        if (in->rbp_off < 0 || in->rbp_off > 15)
            return 1;
        rbp8 = in->rbp_off;          /* the (RIP & 15) threshold, as is */
    } else if (rbp_kind == UNWIND_RBP_AT_CFA ||
               rbp_kind == UNWIND_RBP_AT_RSP) {
        if (in->rbp_off % 8 != 0 || in->rbp_off / 8 < INT8_MIN ||
            in->rbp_off / 8 > INT8_MAX) {
            rbp_kind = UNWIND_RBP_UNKNOWN;
            rc = 1;
        } else {
            rbp8 = in->rbp_off / 8;
        }
    }
    out->cfa_off8 = (uint16_t)(int16_t)cfa8;
    out->rbp_off8 = (uint8_t)(int8_t)rbp8;
    out->kinds = (uint8_t)SKY_UNW_KINDS(in->cfa_kind & 7, rbp_kind & 3,
                                        in->rbx_rule & 7);
    return rc;
}

/* First fit in the free runs; UINT32_MAX when no run is long enough. */
static uint32_t s_rows_alloc(unwinder_t *self, uint32_t n)
{
    for (uint32_t i = 0; i < self->nfree_rows; i++) {
        range_t *r = &self->free_rows[i];
        if (r->len < n)
            continue;
        uint32_t at = r->start;
        r->start += n;
        r->len -= n;
        if (r->len == 0) {
            memmove(r, r + 1, (self->nfree_rows - i - 1) * sizeof(*r));
            self->nfree_rows--;
        }
        return at;
    }
    return UINT32_MAX;
}

/* Returns a run, merged with its neighbours. The array has room: runs
 * never outnumber the tables plus one. */
static void s_rows_free(unwinder_t *self, uint32_t start, uint32_t n)
{
    uint32_t i = 0;

    if (n == 0)
        return;
    while (i < self->nfree_rows && self->free_rows[i].start < start)
        i++;
    range_t *prev = i ? &self->free_rows[i - 1] : NULL;
    range_t *next = i < self->nfree_rows ? &self->free_rows[i] : NULL;
    if (prev && prev->start + prev->len == start) {
        prev->len += n;
        if (next && start + n == next->start) {
            prev->len += next->len;
            memmove(next, next + 1,
                    (self->nfree_rows - i - 1) * sizeof(*next));
            self->nfree_rows--;
        }
        return;
    }
    if (next && start + n == next->start) {
        next->start = start;
        next->len += n;
        return;
    }
    memmove(&self->free_rows[i + 1], &self->free_rows[i],
            (self->nfree_rows - i) * sizeof(range_t));
    self->free_rows[i] = (range_t){ start, n };
    self->nfree_rows++;
}

/* ------------------------------------------------------------- LRU */

static void s_lru_unlink(unwinder_t *self, utable_t *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else if (self->lru_head == t)
        self->lru_head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else if (self->lru_tail == t)
        self->lru_tail = t->prev;
    t->prev = t->next = NULL;
}

static void s_lru_touch(unwinder_t *self, utable_t *t)
{
    s_lru_unlink(self, t);
    t->next = self->lru_head;
    if (self->lru_head)
        self->lru_head->prev = t;
    self->lru_head = t;
    if (!self->lru_tail)
        self->lru_tail = t;
}

/* --------------------------------------------------------- unw_files */

static int s_files_on(const unwinder_t *self)
{
    return self->maps.vmas_on && self->maps.files_fd >= 0;
}

/* A file's identity as bpf/unwind.bpf.h reads it from the inode: the
 * kernel's dev_t (MAJOR << 20 | MINOR), not glibc's st_dev. */
static uint64_t s_kernel_dev(uint64_t dev)
{
    return ((uint64_t)major(dev) << 20) | (minor(dev) & 0xfffff);
}

/* Names t's table under the file (dev, ino) (user-space dev; the vdso is
 * 0, 0) in unw_files, once per loaded table: walks of processes without
 * entry find the table by the inode of the mapping they meet. */
static void s_file_publish(unwinder_t *self, utable_t *t, uint64_t dev,
                           uint64_t ino)
{
    uint64_t kdev = t->vdso ? 0 : s_kernel_dev(dev);
    struct sky_unw_file_key key = { .dev = kdev, .ino = t->vdso ? 0 : ino };
    struct sky_unw_file val = { .table = t->slot, .gen = t->gen };

    for (uint32_t i = 0; i < t->nfkeys; i++)
        if (t->fkeys[i][0] == key.dev && t->fkeys[i][1] == key.ino)
            return;
    uint64_t (*grown)[2] = realloc(t->fkeys,
                                   (t->nfkeys + 1) * sizeof(*t->fkeys));
    if (!grown)
        return;
    t->fkeys = grown;
    for (uint32_t i = 0; i < t->nsegs && i < SKY_UNW_FILE_SEGS; i++) {
        val.segs[i].off = t->segs[i].off;
        val.segs[i].end = t->segs[i].off + t->segs[i].filesz;
        val.segs[i].delta = t->segs[i].off - t->segs[i].vaddr;
        val.nsegs = i + 1;
    }
    if (bpf_map_update_elem(self->maps.files_fd, &key, &val, BPF_ANY) != 0) {
        self->stats.files_refused++;   /* full: frame pointers there */
        return;
    }
    t->fkeys[t->nfkeys][0] = key.dev;
    t->fkeys[t->nfkeys][1] = key.ino;
    t->nfkeys++;
    self->stats.files++;
}

/* Every file name of t goes with its rows (unload, drop). */
static void s_files_unpublish(unwinder_t *self, utable_t *t)
{
    for (uint32_t i = 0; i < t->nfkeys; i++) {
        struct sky_unw_file_key key = { .dev = t->fkeys[i][0],
                                        .ino = t->fkeys[i][1] };
        bpf_map_delete_elem(self->maps.files_fd, &key);
        self->stats.files--;
    }
    free(t->fkeys);
    t->fkeys = NULL;
    t->nfkeys = 0;
}

/* Takes a table's rows and slot back; the kernel notices through the
 * slot's generation. */
static void s_unload(unwinder_t *self, utable_t *t)
{
    if (!t->loaded)
        return;
    struct sky_unw_table none = { 0 };
    bpf_map_update_elem(self->maps.tables_fd, &t->slot, &none, BPF_ANY);
    /* After the slot: a walk between the two sees a stale generation
     * (a counted miss), never another object's rows. */
    s_files_unpublish(self, t);
    s_rows_free(self, t->first, t->count);
    self->free_slots[self->nfree_slots++] = t->slot;
    self->stats.tables--;
    self->stats.rows -= t->count;
    t->loaded = 0;
}

/* Forgets an entry altogether: a later sighting builds it again. */
static void s_drop(unwinder_t *self, utable_t *t)
{
    ukey_t key = { .id_len = t->id_len, .id = t->id, .dev = t->dev,
                   .ino = t->ino };

    s_unload(self, t);
    s_lru_unlink(self, t);
    hashmap_remove(self->tables, s_key_hash(&key), &key);
    free(t->fkeys);
    free(t->src_path);
    free(t);
}

/* Evicts the least recently used loaded table other than keep. 0, or -1
 * when there is none. The entry stays, marked, so that processes synced
 * again do not queue it at once: with more objects in use than room,
 * rebuilding on every sync would only evict another table. */
static int s_evict_one(unwinder_t *self, const utable_t *keep)
{
    for (utable_t *t = self->lru_tail; t; t = t->prev)
        if (t->loaded && t != keep) {
            s_unload(self, t);
            t->evicted_ns = s_now_ns();
            self->stats.tables_evicted++;
            return 0;
        }
    return -1;
}

/* ------------------------------------------------------------- build */

/* An object's bytes: a file, or the vdso's image in our own memory. */
typedef struct {
    int fd;                       /* -1: mem */
    const uint8_t *mem;
    size_t size;
} source_t;

static int s_read_at(const source_t *src, void *buf, size_t n, uint64_t off)
{
    if (src->fd >= 0)
        return pread(src->fd, buf, n, (off_t)off) == (ssize_t)n ? 0 : -1;
    if (off > src->size || n > src->size - off)
        return -1;
    memcpy(buf, src->mem + off, n);
    return 0;
}

/* The executable PT_LOAD segments of the object (for load biases). 0, or
 * -1 when it is not an x86-64 ELF64 file. */
static int s_read_segments(const source_t *src, utable_t *t)
{
    Elf64_Ehdr eh;

    t->nsegs = 0;
    if (s_read_at(src, &eh, sizeof(eh), 0) < 0 ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256)
        return -1;
    for (uint32_t i = 0; i < eh.e_phnum && t->nsegs < UNWINDER_SEGS_MAX;
         i++) {
        Elf64_Phdr ph;
        if (s_read_at(src, &ph, sizeof(ph), eh.e_phoff + i * sizeof(ph)) < 0)
            return -1;
        if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X))
            continue;
        t->segs[t->nsegs].off = ph.p_offset;
        t->segs[t->nsegs].vaddr = ph.p_vaddr;
        t->segs[t->nsegs].filesz = ph.p_filesz;
        t->nsegs++;
    }
    return t->nsegs ? 0 : -1;
}

/* Our own vdso, which is every 64-bit process's on this kernel: its image
 * (headers, code, .eh_frame, section headers) is readable where the aux
 * vector says. 0, or -1 when there is none. */
static int s_vdso_source(source_t *src)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)getauxval(AT_SYSINFO_EHDR);
    uint64_t end;

    if (!eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64)
        return -1;
    end = eh->e_shoff + (uint64_t)eh->e_shnum * eh->e_shentsize;
    if (end > UNWINDER_VDSO_MAX)
        return -1;
    src->fd = -1;
    src->mem = (const uint8_t *)eh;
    src->size = end;
    return 0;
}

/* Rows into the kernel's form, consecutive equal ones merged. The count,
 * or -1 when the object cannot be expressed (code above 4 GiB). */
static long s_pack(const unwind_row_t *rows, size_t n, struct sky_unw_row *out,
                   uint64_t *unencodable)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        struct sky_unw_row r;
        int rc = unwinder_pack_row(&rows[i], &r);
        if (rc < 0)
            return -1;
        if (rc > 0)
            (*unencodable)++;
        if (k && memcmp(&out[k - 1].cfa_off8, &r.cfa_off8, 4) == 0)
            continue;
        out[k++] = r;
    }
    return (long)k;
}

/* Writes rows [first, first + n) through a shared mapping of just the
 * pages that hold them (unw_rows is BPF_F_MMAPABLE): a memcpy instead of
 * syscalls. The window is unmapped at once: a mapping of the whole array
 * would count its 32 MiB in the collector's RSS for as long as it lives.
 * 0, or -1 when the array cannot be mapped. */
static int s_write_rows_mmap(unwinder_t *self, uint32_t first,
                             const struct sky_unw_row *rows, uint32_t n)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t from = (uint64_t)first * sizeof(*rows);
    uint64_t to = from + (uint64_t)n * sizeof(*rows);
    uint64_t off = from & ~(page - 1);
    size_t len = (size_t)(((to + page - 1) & ~(page - 1)) - off);
    uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
                      self->maps.rows_fd, (off_t)off);

    if (p == MAP_FAILED)
        return -1;
    memcpy(p + (from - off), rows, (size_t)n * sizeof(*rows));
    munmap(p, len);
    /* The rows must be visible before the slot naming them: the slot is
     * published by a later syscall (bpf_map_update_elem on unw_tables),
     * and x86-64 keeps stores in order; the fence says so explicitly. The
     * BPF reader loads the slot, then rows at addresses computed from it. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return 0;
}

/* Writes rows [first, first + n) of unw_rows: through a mapping, else (the
 * array is not mmapable, mapping failed: counted, logged once) in one
 * batch where the kernel can, else one by one. 0 or -1. */
static int s_write_rows(unwinder_t *self, uint32_t first,
                        const struct sky_unw_row *rows, uint32_t n)
{
    uint64_t t0 = s_now_ns();
    uint32_t *keys = NULL;
    int rc = -1;

    if (n && s_write_rows_mmap(self, first, rows, n) == 0) {
        self->stats.rows_mmap = 1;
        rc = 0;
        goto cleanup;
    }
    if (n) {
        self->stats.rows_mmap = 0;
        self->stats.rows_mmap_errors++;
        if (!self->rows_mmap_logged) {
            log_warn("unw_rows cannot be mapped (%s): unwind rows are "
                     "written with bpf syscalls", strerror(errno));
            self->rows_mmap_logged = 1;
        }
    }
    keys = malloc((n ? n : 1) * sizeof(*keys));
    if (!keys)
        goto cleanup;
    for (uint32_t i = 0; i < n; i++)
        keys[i] = first + i;
    uint32_t count = n;
    if (n && bpf_map_update_batch(self->maps.rows_fd, keys, rows, &count,
                                  NULL) == 0) {
        rc = 0;
        goto cleanup;
    }
    for (uint32_t i = 0; i < n; i++)
        if (bpf_map_update_elem(self->maps.rows_fd, &keys[i], &rows[i],
                                BPF_ANY) != 0)
            goto cleanup;
    rc = 0;
cleanup:
    free(keys);
    if (rc == 0) {
        self->stats.rows_written += n;
        self->stats.rows_write_ns += s_now_ns() - t0;
    }
    return rc;
}

/* Gives the heap glibc keeps after big builds back to the system, once a
 * batch of builds is done (the queue empty). */
static void s_trim(unwinder_t *self)
{
    if (!self->trim_due || self->queue_head || self->building)
        return;
    self->trim_due = 0;
    malloc_trim(0);
    self->stats.memory_trims++;
}

/* ------------------------------------------------------------- worker */

/* One build, handed to the worker thread and back. The worker touches
 * nothing else: the entry it is for may change meanwhile. */
typedef struct job {
    /* in */
    int vdso;
    uint32_t pid;
    uint64_t start, end;
    char *path;
    unwind_limits_t limits;
    uint32_t max_rows;
    /* out */
    int status;                   /* JOB_* */
    struct sky_unw_row *rows;     /* the rows, then the page index */
    uint32_t count;               /* rows */
    uint32_t total;               /* row slots with the index */
    uint32_t nidx, min_pc, shift; /* the index (struct sky_unw_table) */
    utable_t segs;                /* only nsegs and segs are used */
    uint64_t cfi_errors, unencodable, build_ns;
} job_t;

enum { JOB_OK = 0, JOB_REFUSED = -1, JOB_NO_SOURCE = 1 };

static void s_job_free(job_t **job_p)
{
    if (!*job_p)
        return;
    free((*job_p)->path);
    free((*job_p)->rows);
    free(*job_p);
    *job_p = NULL;
}

/* The page index behind the job's rows (see struct sky_unw_table): pages
 * as small as keep the index at most half as many entries as rows (a
 * quarter of their bytes), so a lookup searches a couple of rows. Small
 * tables get none. */
static void s_index(job_t *job)
{
    struct sky_unw_row *rows = job->rows;
    uint32_t k = job->count, shift = 4, j = 0;
    uint64_t span;

    job->total = k;
    job->nidx = 0;
    if (k < 16)
        return;
    span = (uint64_t)rows[k - 1].pc - rows[0].pc + 1;
    while (shift < 31 && (span >> shift) + 1 > k / 2)
        shift++;
    uint32_t npages = (uint32_t)(span >> shift) + 1;
    if (npages > k / 2 + 1)
        return;
    for (uint32_t p = 0; p < npages; p++) {
        uint64_t start = (uint64_t)rows[0].pc + ((uint64_t)p << shift);
        while (j + 1 < k && rows[j + 1].pc <= start)
            j++;
        memcpy((uint8_t *)&rows[k + p / 2] + 4 * (p & 1), &j, sizeof(j));
    }
    job->nidx = npages;
    job->min_pc = rows[0].pc;
    job->shift = shift;
    job->total = k + (npages + 1) / 2;
}

/* Reads and packs the object's table (the slow part: a libc is a few
 * ms, a libLLVM tens). Runs on the worker thread. */
static void s_job_run(job_t *job)
{
    uint64_t t0 = s_now_ns();
    unwind_table_t *table = NULL;
    const unwind_row_t *rows;
    source_t src = { .fd = -1 };
    int fd = -1;

    job->status = JOB_REFUSED;
    if (job->vdso) {
        if (s_vdso_source(&src) < 0)
            goto cleanup;
    } else {
        fd = objreg_open_file(job->pid, job->path, job->start, job->end);
        src.fd = fd;
        if (fd < 0) {
            /* Not the object's fault: a short process queued it and is
             * gone. The next process mapping it queues it again. */
            job->status = JOB_NO_SOURCE;
            goto cleanup;
        }
    }
    if (s_read_segments(&src, &job->segs) < 0)
        goto cleanup;
    table = fd >= 0 ? unwind_table_new_fd(fd, &job->limits)
                    : unwind_table_new_mem(src.mem, src.size, &job->limits);
    if (!table)
        goto cleanup;
    unwind_summary_t sum;
    unwind_table_summary(table, &sum);
    for (int e = 0; e < UNWIND_ERR_COUNT; e++)
        if (e != UNWIND_ERR_NO_CFI)
            job->cfi_errors += sum.errors[e];
    size_t n = unwind_table_rows(table, &rows);
    if (n == 0 || n > job->max_rows)
        goto cleanup;
    /* Room for the page index: at most a quarter more. */
    job->rows = malloc((n + n / 4 + 2) * sizeof(*job->rows));
    if (!job->rows)
        goto cleanup;
    long k = s_pack(rows, n, job->rows, &job->unencodable);
    if (k <= 0)
        goto cleanup;
    job->count = (uint32_t)k;
    s_index(job);
    job->status = JOB_OK;
cleanup:
    if (fd >= 0)
        close(fd);
    unwind_table_destroy(&table);
    job->build_ns = s_now_ns() - t0;
}

static void *s_worker(void *arg)
{
    unwinder_t *self = arg;
    uint64_t one = 1;

    /* Building tables is background work: it yields to the processes
     * being profiled (and to the loop) when CPUs are short. Best effort. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
                    UNWINDER_WORKER_NICE) != 0) {
        /* Not permitted: the worker runs at the collector's priority. */
    }

    pthread_mutex_lock(&self->mu);
    for (;;) {
        while (!self->stop && !self->job_in)
            pthread_cond_wait(&self->cv, &self->mu);
        if (self->stop)
            break;
        job_t *job = self->job_in;
        self->job_in = NULL;
        pthread_mutex_unlock(&self->mu);
        s_job_run(job);
        pthread_mutex_lock(&self->mu);
        self->job_out = job;
        if (write(self->efd, &one, sizeof(one)) < 0) {
            /* The counter cannot overflow at one write per build; the
             * next unwinder_work call finds the result anyway. */
        }
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

/* Loads a finished build into the kernel (main thread). */
static void s_job_finish(unwinder_t *self, utable_t *t, job_t *job)
{
    const char *path = t->src_path ? t->src_path : "";
    uint32_t count = job->total, first;

    t->building = 0;
    self->stats.cfi_errors += job->cfi_errors;
    self->stats.rows_unencodable += job->unencodable;
    self->stats.build_ns += job->build_ns;
    if (job->status == JOB_NO_SOURCE) {
        t->no_source = 1;
        return;
    }
    if (job->status != JOB_OK)
        goto refused;
    t->nsegs = job->segs.nsegs;
    memcpy(t->segs, job->segs.segs, sizeof(t->segs));
    while ((first = s_rows_alloc(self, count)) == UINT32_MAX ||
           self->nfree_slots == 0) {
        if (first != UINT32_MAX)
            s_rows_free(self, first, count);
        /* Eviction is designed for, but a host whose working set does not
         * fit walks some frames by frame pointers: say which knob. */
        log_warn_rl(&self->evict_rl,
                    "unwind maps full (%" PRIu64 " of %u rows, %u of %u "
                    "tables in use): evicting the least recently used "
                    "table for %s (%u rows); raise collector.unwind_rows "
                    "or collector.unwind_tables if this repeats",
                    self->stats.rows, self->maps.max_rows,
                    self->maps.max_tables - self->nfree_slots,
                    self->maps.max_tables, path, count);
        if (s_evict_one(self, t) < 0)
            goto refused;
    }
    t->slot = self->free_slots[--self->nfree_slots];
    t->gen = ++self->slot_gen[t->slot];
    t->first = first;
    t->count = count;
    struct sky_unw_table val = { .first = first, .count = job->count,
                                 .gen = t->gen, .nidx = job->nidx,
                                 .min_pc = job->min_pc,
                                 .shift = job->shift };
    if (s_write_rows(self, first, job->rows, count) < 0 ||
        bpf_map_update_elem(self->maps.tables_fd, &t->slot, &val,
                            BPF_ANY) != 0) {
        self->stats.update_errors++;
        s_rows_free(self, first, count);
        self->free_slots[self->nfree_slots++] = t->slot;
        goto refused;
    }
    t->loaded = 1;
    self->stats.tables_built++;
    self->stats.tables++;
    self->stats.rows += count;
    log_debug("unwind table of %s: %u rows (slot %u)", path, count, t->slot);
    return;
refused:
    self->stats.tables_refused++;
    log_debug("no unwind table for %s", path);
}

/* Where a build reads the object: this process's mapping of it. */
static int s_set_source(utable_t *t, const proc_t *proc, const mapping_t *m)
{
    char *path = strdup(m->obj->path ? m->obj->path : "");

    if (!path)
        return -1;
    free(t->src_path);
    t->src_path = path;
    t->src_pid = proc->pid;
    t->src_start = m->start;
    t->src_end = m->end;
    return 0;
}

static void s_dequeue(unwinder_t *self, utable_t *t)
{
    if (t->qprev)
        t->qprev->qnext = t->qnext;
    else
        self->queue_head = t->qnext;
    if (t->qnext)
        t->qnext->qprev = t->qprev;
    else
        self->queue_tail = t->qprev;
    t->qprev = t->qnext = NULL;
    t->pending = 0;
    self->queued--;
}

/* Queues a build, or moves a queued one, to the front: what a process
 * just exec'd or just sampled needs goes before a backlog (the objects of
 * every process found at start). */
static void s_enqueue(unwinder_t *self, utable_t *t)
{
    if (t->pending)
        s_dequeue(self, t);
    t->pending = 1;
    t->qprev = NULL;
    t->qnext = self->queue_head;
    if (self->queue_head)
        self->queue_head->qprev = t;
    else
        self->queue_tail = t;
    self->queue_head = t;
    self->queued++;
}

static job_t *s_job_for(unwinder_t *self, const utable_t *t);

/* Whether a small table fits without evicting: a free slot and a free run
 * of rows as long as a 256 KiB mapping's table can be (code compilers
 * emit gives a row per 50-60 bytes; 16 is a generous bound). When the
 * maps are full, builds go through the worker as any other: evicting on
 * the loop at every sync would only make tables evict each other. */
static int s_room_inline(const unwinder_t *self)
{
    if (self->nfree_slots == 0)
        return 0;
    for (uint32_t i = 0; i < self->nfree_rows; i++)
        if (self->free_rows[i].len >= UNWINDER_INLINE_MAX / 16)
            return 1;
    return 0;
}

/* Builds a small object's table at once, on the loop: a new small
 * program's table is in its process's first entry, written at the exec
 * event, rather than after the worker (at nice 10, behind any backlog,
 * starved on a busy host: 80-100 ms measured) got to it and the loop
 * loaded it. A small table is well under a millisecond of work. */
static void s_build_inline(unwinder_t *self, utable_t *t)
{
    job_t *job = s_job_for(self, t);

    if (!job) {
        s_enqueue(self, t);
        return;
    }
    if (t->pending)
        s_dequeue(self, t);
    s_job_run(job);
    s_job_finish(self, t, job);
    s_job_free(&job);
    self->stats.tables_inline++;
}

/* The table entry of a file object; on first sight built at once when
 * small, else queued for unwinder_work (the mapping has no table until
 * then). */
static utable_t *s_table_for(unwinder_t *self, const proc_t *proc,
                             const mapping_t *m)
{
    const object_t *obj = m->obj;
    int vdso = obj->type == WIRE_OBJ_VDSO;
    /* The vdso has no file: dev and inode 0, which no file has. */
    ukey_t key = { .id_len = vdso ? 0 : obj->build_id_len,
                   .id = obj->build_id, .dev = vdso ? 0 : obj->dev,
                   .ino = vdso ? 0 : obj->ino };
    uint64_t h = s_key_hash(&key);
    utable_t *t = hashmap_find(self->tables, h, &key);

    if (t && t->pending && !t->building && self->queue_head != t)
        s_enqueue(self, t);
    int small = m->end - m->start <= UNWINDER_INLINE_MAX &&
                s_room_inline(self);
    if (t && t->no_source && !t->pending && !t->building &&
        s_set_source(t, proc, m) == 0) {
        t->no_source = 0;
        if (small)
            s_build_inline(self, t);
        else
            s_enqueue(self, t);
    }
    if (t && !t->loaded && !t->pending && !t->building && t->evicted_ns &&
        s_now_ns() - t->evicted_ns >= UNWINDER_REBUILD_AFTER_NS) {
        s_set_source(t, proc, m);
        s_enqueue(self, t);
    }
    if (!t) {
        /* Objects without a table are remembered too (not retried on
         * every rescan), but not without bound. */
        for (utable_t *old = self->lru_tail;
             old && hashmap_size(self->tables) >=
                        4 * (size_t)self->maps.max_tables;) {
            utable_t *prev = old->prev;
            if (!old->pending && !old->building)
                s_drop(self, old);
            old = prev;
        }
        t = calloc(1, sizeof(*t));
        if (!t)
            return NULL;
        t->id_len = key.id_len;
        memcpy(t->id, obj->build_id, key.id_len);
        t->dev = key.dev;
        t->ino = key.ino;
        t->vdso = vdso;
        if (s_set_source(t, proc, m) < 0 ||
            hashmap_insert(self->tables, h, t) < 0) {
            free(t->src_path);
            free(t);
            return NULL;
        }
        if (small)
            s_build_inline(self, t);
        else
            s_enqueue(self, t);
    }
    s_lru_touch(self, t);
    return t;
}

/* ------------------------------------------------------------- procs */

static void s_feed(unwinder_t *self);

/* One kernel mapping entry; 1 when its table is still to be built. */
static int s_fill_map(unwinder_t *self, const proc_t *proc,
                      const mapping_t *m, struct sky_unw_map *out)
{
    out->start = m->start;
    out->end = m->end;
    out->bias = 0;
    out->table = 0;
    out->gen = 0;
    if (!m->obj || (m->obj->type != WIRE_OBJ_EXE &&
                    m->obj->type != WIRE_OBJ_LIB &&
                    m->obj->type != WIRE_OBJ_VDSO))
        return 0;                /* JIT, anonymous: frame pointers */
    utable_t *t = s_table_for(self, proc, m);
    if (!t || !t->loaded)
        return t && (t->pending || t->building);
    for (uint32_t i = 0; i < t->nsegs; i++)
        if (m->pgoff >= t->segs[i].off &&
            m->pgoff < t->segs[i].off + t->segs[i].filesz) {
            out->bias = m->start - m->pgoff + t->segs[i].off -
                        t->segs[i].vaddr;
            out->table = t->slot;
            out->gen = t->gen;
            if (s_files_on(self)) {
                if (t->vdso || m->obj->naliases == 0)
                    s_file_publish(self, t, m->obj->dev, m->obj->ino);
                for (uint32_t a = 0; a < m->obj->naliases; a++)
                    s_file_publish(self, t, m->obj->aliases[a][0],
                                   m->obj->aliases[a][1]);
            }
            return 0;
        }
    return 0;
}

int unwinder_sync(unwinder_t *self, const proc_t *proc)
{
    struct sky_unw_proc *e = &self->entry;
    uproc_t *p;
    uint32_t n = proc->nmaps;
    int rc = -1;

    if (proc->exited_ms || !proc->maps_loaded || n == 0) {
        unwinder_forget(self, proc->pid);
        return -1;
    }
    p = hashmap_find(self->procs, hash_split64(proc->pid), &proc->pid);
    if (!p) {
        if (self->nfree_pslots == 0) {
            self->stats.procs_refused++;
            goto cleanup;
        }
        p = calloc(1, sizeof(*p));
        if (!p)
            goto cleanup;
        p->pid = proc->pid;
        p->slot = self->free_pslots[--self->nfree_pslots];
        if (hashmap_insert(self->procs, hash_split64(p->pid), p) < 0) {
            self->free_pslots[self->nfree_pslots++] = p->slot;
            free(p);
            goto cleanup;
        }
        self->stats.procs++;
    }
    if (n > SKY_UNW_MAPS_MAX) {
        self->stats.maps_cut++;
        n = SKY_UNW_MAPS_MAX;
    }
    memset(e, 0, sizeof(*e));
    e->nmaps = n;
    p->waiting = 0;
    /* Last mapping first: each pending object moves to the queue's front,
     * so the executable's (the first mapping) is built first. */
    for (uint32_t i = n; i-- > 0;)
        p->waiting |= s_fill_map(self, proc, &proc->maps[i], &e->maps[i]);
    uint64_t h = hash_bytes64(e, sizeof(*e), 1);
    /* The rescans after exec mostly find what is loaded already. */
    if (h == p->hash) {
        rc = 0;
        goto cleanup;
    }
    /* Entry first, then the pid that points at it. */
    if (bpf_map_update_elem(self->maps.procs_fd, &p->slot, e, BPF_ANY) != 0 ||
        bpf_map_update_elem(self->maps.pids_fd, &p->pid, &p->slot,
                            BPF_ANY) != 0) {
        self->stats.update_errors++;
        unwinder_forget(self, proc->pid);
        goto cleanup;
    }
    p->hash = h;
    rc = 0;
cleanup:
    /* New objects: the worker starts on them now. */
    s_feed(self);
    return rc;
}

/* A build of t's object from its source; NULL when out of memory. */
static job_t *s_job_for(unwinder_t *self, const utable_t *t)
{
    job_t *job = calloc(1, sizeof(*job));

    if (!job)
        return NULL;
    job->vdso = t->vdso;
    job->pid = t->src_pid;
    job->start = t->src_start;
    job->end = t->src_end;
    job->path = strdup(t->src_path ? t->src_path : "");
    job->limits = self->limits;
    job->max_rows = self->maps.max_rows;
    if (!job->path)
        s_job_free(&job);
    return job;
}

/* Gives the worker the front of the queue when it is idle. */
static void s_feed(unwinder_t *self)
{
    utable_t *t = self->queue_head;
    job_t *job;

    if (self->building || !t)
        return;
    job = s_job_for(self, t);
    if (!job)
        return;
    s_dequeue(self, t);
    t->building = 1;
    self->building = t;
    pthread_mutex_lock(&self->mu);
    self->job_in = job;
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mu);
}

int unwinder_fd(const unwinder_t *self)
{
    return self->efd;
}

int unwinder_work(unwinder_t *self, uint64_t budget_ns,
                  unwinder_resync_fn resync, void *arg)
{
    uint64_t t0 = s_now_ns(), count;
    uint32_t done = 0, *pids = NULL;
    size_t npids = 0, cursor = 0;
    uproc_t *p;

    if (read(self->efd, &count, sizeof(count)) < 0) {
        /* Nothing signalled (EAGAIN): a result may still be there. */
    }
    /* One build is in flight at a time; each result starts the next. */
    for (;;) {
        pthread_mutex_lock(&self->mu);
        job_t *job = self->job_out;
        self->job_out = NULL;
        pthread_mutex_unlock(&self->mu);
        if (!job)
            break;
        if (self->building)
            s_job_finish(self, self->building, job);
        self->building = NULL;
        s_job_free(&job);
        done++;
        s_feed(self);
        if (s_now_ns() - t0 >= budget_ns)
            break;
    }
    s_feed(self);
    self->trim_due |= done > 0;
    s_trim(self);
    if (done == 0 || !resync)
        goto cleanup;
    /* The processes that waited for these tables: listed first, since a
     * resync may add or remove entries. */
    pids = malloc(hashmap_size(self->procs) * sizeof(*pids) + 1);
    if (!pids)
        goto cleanup;
    while ((p = hashmap_next(self->procs, &cursor)))
        if (p->waiting)
            pids[npids++] = p->pid;
    for (size_t i = 0; i < npids; i++)
        resync(arg, pids[i]);
cleanup:
    free(pids);
    return self->queue_head != NULL || self->building != NULL;
}

int unwinder_complete(const unwinder_t *self, uint32_t pid)
{
    const uproc_t *p = hashmap_find(self->procs, hash_split64(pid), &pid);

    return p && p->hash && !p->waiting;
}

void unwinder_forget(unwinder_t *self, uint32_t pid)
{
    uproc_t *p = hashmap_remove(self->procs, hash_split64(pid), &pid);

    if (!p)
        return;
    bpf_map_delete_elem(self->maps.pids_fd, &pid);
    self->free_pslots[self->nfree_pslots++] = p->slot;
    self->stats.procs--;
    free(p);
}

void unwinder_forget_pid(unwinder_t *self, uint32_t pid)
{
    if (hashmap_find(self->procs, hash_split64(pid), &pid))
        unwinder_forget(self, pid);
    else
        bpf_map_delete_elem(self->maps.pids_fd, &pid);
}

/* ------------------------------------------------------------- life */

unwinder_t *unwinder_new(const unwinder_maps_t *maps,
                         const unwind_limits_t *limits)
{
    unwinder_t *self = calloc(1, sizeof(*self));

    if (!self)
        return NULL;
    self->maps = *maps;
    self->evict_rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(1, 60000);
    if (limits)
        self->limits = *limits;
    /* A table the row array cannot hold is refused anyway. */
    if (!self->limits.max_rows || self->limits.max_rows > maps->max_rows)
        self->limits.max_rows = maps->max_rows;
    self->efd = -1;
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cv, NULL);
    self->tables = hashmap_new(s_key_match);
    self->procs = hashmap_new(s_pid_match);
    self->slot_gen = calloc(maps->max_tables ? maps->max_tables : 1,
                            sizeof(uint32_t));
    self->free_slots = calloc(maps->max_tables ? maps->max_tables : 1,
                              sizeof(uint32_t));
    self->free_rows = calloc((size_t)maps->max_tables + 2, sizeof(range_t));
    self->free_pslots = calloc(maps->max_procs ? maps->max_procs : 1,
                               sizeof(uint32_t));
    self->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!self->tables || !self->procs || !self->slot_gen ||
        !self->free_slots || !self->free_rows || !self->free_pslots ||
        self->efd < 0 ||
        pthread_create(&self->thread, NULL, s_worker, self) != 0) {
        unwinder_destroy(&self);
        return NULL;
    }
    self->thread_started = 1;
    /* Slot 0 of the tables means "no table"; slots are handed out lowest
     * first. */
    for (uint32_t s = maps->max_tables; s > 1; s--)
        self->free_slots[self->nfree_slots++] = s - 1;
    for (uint32_t s = maps->max_procs; s > 0; s--)
        self->free_pslots[self->nfree_pslots++] = s - 1;
    if (maps->max_rows)
        self->free_rows[self->nfree_rows++] = (range_t){ 0, maps->max_rows };
    self->stats.bytes_reserved =
        (uint64_t)maps->max_rows * sizeof(struct sky_unw_row) +
        (uint64_t)maps->max_tables * sizeof(struct sky_unw_table) +
        (uint64_t)maps->max_procs * (sizeof(struct sky_unw_proc) + 8) +
        (uint64_t)maps->max_files * (sizeof(struct sky_unw_file_key) +
                                     sizeof(struct sky_unw_file)) +
        (uint64_t)maps->max_vmas * (sizeof(struct sky_unw_vmas) + 4);
    return self;
}

void unwinder_destroy(unwinder_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    unwinder_t *self = *self_p;
    size_t cursor = 0;
    void *item;
    if (self->thread_started) {
        pthread_mutex_lock(&self->mu);
        self->stop = 1;
        pthread_cond_signal(&self->cv);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->thread, NULL);
    }
    s_job_free(&self->job_in);
    s_job_free(&self->job_out);
    if (self->efd >= 0)
        close(self->efd);
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->cv);
    while (self->tables && (item = hashmap_next(self->tables, &cursor))) {
        free(((utable_t *)item)->src_path);
        free(((utable_t *)item)->fkeys);
        free(item);
    }
    cursor = 0;
    while (self->procs && (item = hashmap_next(self->procs, &cursor)))
        free(item);
    hashmap_destroy(&self->tables);
    hashmap_destroy(&self->procs);
    free(self->slot_gen);
    free(self->free_slots);
    free(self->free_rows);
    free(self->free_pslots);
    free(self);
    *self_p = NULL;
}

int unwinder_recorded(const unwinder_t *self, uint32_t pid,
                      proctab_vma_t *out, size_t max)
{
    struct sky_unw_vmas *v = NULL;
    int n = -1;

    if (!self->maps.vmas_on || self->maps.vmas_fd < 0)
        return -1;
    v = malloc(sizeof(*v));
    if (!v || bpf_map_lookup_elem(self->maps.vmas_fd, &pid, v) != 0)
        goto cleanup;
    n = 0;
    for (uint32_t i = 0; i < v->proc.nmaps && i < SKY_UNW_VMAS_MAX &&
                         (size_t)n < max; i++) {
        const struct sky_unw_vma *r = &v->vma[i];
        out[n].start = v->proc.maps[i].start;
        out[n].end = v->proc.maps[i].end;
        out[n].pgoff = r->pgoff;
        /* back to glibc's st_dev, as /proc/PID/maps gives it */
        out[n].dev = makedev((unsigned)(r->dev >> 20),
                             (unsigned)(r->dev & 0xfffff));
        out[n].ino = r->ino;
        out[n].kind = r->kind;
        n++;
    }
cleanup:
    free(v);
    return n;
}

void unwinder_stats(const unwinder_t *self, unwinder_stats_t *out)
{
    *out = self->stats;
    out->tables_pending = self->queued;
    out->bytes = out->rows * sizeof(struct sky_unw_row) +
                 out->tables * sizeof(struct sky_unw_table) +
                 out->procs * (sizeof(struct sky_unw_proc) + 8);
}
