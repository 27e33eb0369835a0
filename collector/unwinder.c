/* Unwind tables and per-process mapping tables in BPF maps; see
 * unwinder.h. */
#include "collector/unwinder.h"

#include <bpf/bpf.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hashmap.h"
#include "log.h"
#include "wire.h"

/* Executable PT_LOAD segments remembered per object, for load biases. */
#define UNWINDER_SEGS_MAX 4

typedef struct utable {
    /* key: build-id when the object has one, else dev+inode */
    uint8_t id_len;
    uint8_t id[ELFID_BUILD_ID_MAX];
    uint64_t dev, ino;
    int loaded;                   /* rows are in the kernel under slot */
    uint32_t slot, gen;
    uint32_t first, count;        /* run in unw_rows */
    uint32_t nsegs;
    struct {
        uint64_t off, vaddr, filesz;
    } segs[UNWINDER_SEGS_MAX];
    struct utable *prev, *next;   /* LRU list, most recent first */
} utable_t;

typedef struct {
    uint32_t pid;
    uint32_t slot;
    uint64_t hash;                /* of the entry last written */
} uproc_t;

typedef struct {
    uint32_t start, len;
} range_t;

struct unwinder {
    unwinder_maps_t maps;
    unwind_limits_t limits;
    hashmap_t *tables;            /* utable_t by key */
    utable_t *lru_head, *lru_tail;
    uint32_t *slot_gen;           /* per table slot */
    uint32_t *free_slots;         /* table slots not in use */
    uint32_t nfree_slots;
    range_t *free_rows;           /* free runs of unw_rows, by start */
    uint32_t nfree_rows;
    hashmap_t *procs;             /* uproc_t by pid */
    uint32_t *free_pslots;
    uint32_t nfree_pslots;
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
    out->kinds = (uint8_t)((in->cfa_kind & 15) | (rbp_kind << 4));
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

/* Takes a table's rows and slot back; the kernel notices through the
 * slot's generation. */
static void s_unload(unwinder_t *self, utable_t *t)
{
    if (!t->loaded)
        return;
    struct sky_unw_table none = { 0 };
    bpf_map_update_elem(self->maps.tables_fd, &t->slot, &none, BPF_ANY);
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
    free(t);
}

/* Evicts the least recently used loaded table other than keep. 0, or -1
 * when there is none. */
static int s_evict_one(unwinder_t *self, const utable_t *keep)
{
    for (utable_t *t = self->lru_tail; t; t = t->prev)
        if (t->loaded && t != keep) {
            s_drop(self, t);
            self->stats.tables_evicted++;
            return 0;
        }
    return -1;
}

/* ------------------------------------------------------------- build */

/* The executable PT_LOAD segments of the file (for load biases). 0, or
 * -1 when it is not an x86-64 ELF64 file. */
static int s_read_segments(int fd, utable_t *t)
{
    Elf64_Ehdr eh;

    if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256)
        return -1;
    for (uint32_t i = 0; i < eh.e_phnum && t->nsegs < UNWINDER_SEGS_MAX;
         i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) !=
            (ssize_t)sizeof(ph))
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

/* Rows into the kernel's form, consecutive equal ones merged. The count,
 * or -1 when the object cannot be expressed (code above 4 GiB). */
static long s_pack(unwinder_t *self, const unwind_row_t *rows, size_t n,
                   struct sky_unw_row *out)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        struct sky_unw_row r;
        int rc = unwinder_pack_row(&rows[i], &r);
        if (rc < 0)
            return -1;
        if (rc > 0)
            self->stats.rows_unencodable++;
        if (k && memcmp(&out[k - 1].cfa_off8, &r.cfa_off8, 4) == 0)
            continue;
        out[k++] = r;
    }
    return (long)k;
}

/* Writes rows [first, first + n) of unw_rows: in one batch where the
 * kernel can, else one by one. 0 or -1. */
static int s_write_rows(unwinder_t *self, uint32_t first,
                        const struct sky_unw_row *rows, uint32_t n)
{
    uint32_t *keys = malloc((n ? n : 1) * sizeof(*keys));
    int rc = -1;

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
    return rc;
}

/* Builds the object's table and loads it. The entry stays (unloaded) when
 * it cannot be: the object is not retried until it is evicted. */
static void s_build(unwinder_t *self, utable_t *t, const proc_t *proc,
                    const mapping_t *m)
{
    uint64_t t0 = s_now_ns();
    unwind_table_t *table = NULL;
    struct sky_unw_row *packed = NULL;
    const unwind_row_t *rows;
    int fd = objreg_open_file(proc->pid, m->obj->path, m->start, m->end);

    if (fd < 0 || s_read_segments(fd, t) < 0)
        goto refused;
    table = unwind_table_new_fd(fd, &self->limits);
    if (!table)
        goto refused;
    unwind_summary_t sum;
    unwind_table_summary(table, &sum);
    for (int e = 0; e < UNWIND_ERR_COUNT; e++)
        if (e != UNWIND_ERR_NO_CFI)
            self->stats.cfi_errors += sum.errors[e];
    size_t n = unwind_table_rows(table, &rows);
    if (n == 0 || n > self->maps.max_rows)
        goto refused;
    packed = malloc(n * sizeof(*packed));
    if (!packed)
        goto refused;
    long k = s_pack(self, rows, n, packed);
    if (k <= 0)
        goto refused;
    uint32_t count = (uint32_t)k, first;
    while ((first = s_rows_alloc(self, count)) == UINT32_MAX ||
           self->nfree_slots == 0) {
        if (first != UINT32_MAX)
            s_rows_free(self, first, count);
        if (s_evict_one(self, t) < 0)
            goto refused;
    }
    t->slot = self->free_slots[--self->nfree_slots];
    t->gen = ++self->slot_gen[t->slot];
    t->first = first;
    t->count = count;
    struct sky_unw_table val = { .first = first, .count = count,
                                 .gen = t->gen };
    if (s_write_rows(self, first, packed, count) < 0 ||
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
    log_debug("unwind table of %s: %u rows (slot %u)", m->obj->path, count,
              t->slot);
    goto cleanup;
refused:
    self->stats.tables_refused++;
    log_debug("no unwind table for %s", m->obj->path);
cleanup:
    if (fd >= 0)
        close(fd);
    unwind_table_destroy(&table);
    free(packed);
    self->stats.build_ns += s_now_ns() - t0;
}

/* The table entry of a file object, built on first sight. */
static utable_t *s_table_for(unwinder_t *self, const proc_t *proc,
                             const mapping_t *m)
{
    const object_t *obj = m->obj;
    ukey_t key = { .id_len = obj->build_id_len, .id = obj->build_id,
                   .dev = obj->dev, .ino = obj->ino };
    uint64_t h = s_key_hash(&key);
    utable_t *t = hashmap_find(self->tables, h, &key);

    if (!t) {
        /* Objects without a table are remembered too (not retried on
         * every rescan), but not without bound. */
        while (hashmap_size(self->tables) >= 4 * (size_t)self->maps.max_tables &&
               self->lru_tail)
            s_drop(self, self->lru_tail);
        t = calloc(1, sizeof(*t));
        if (!t)
            return NULL;
        t->id_len = obj->build_id_len;
        memcpy(t->id, obj->build_id, obj->build_id_len);
        t->dev = obj->dev;
        t->ino = obj->ino;
        if (hashmap_insert(self->tables, h, t) < 0) {
            free(t);
            return NULL;
        }
        s_build(self, t, proc, m);
    }
    s_lru_touch(self, t);
    return t;
}

/* ------------------------------------------------------------- procs */

static void s_fill_map(unwinder_t *self, const proc_t *proc,
                       const mapping_t *m, struct sky_unw_map *out)
{
    out->start = m->start;
    out->end = m->end;
    out->bias = 0;
    out->table = 0;
    out->gen = 0;
    if (!m->obj || (m->obj->type != WIRE_OBJ_EXE &&
                    m->obj->type != WIRE_OBJ_LIB))
        return;                  /* vdso, JIT, anonymous: frame pointers */
    utable_t *t = s_table_for(self, proc, m);
    if (!t || !t->loaded)
        return;
    for (uint32_t i = 0; i < t->nsegs; i++)
        if (m->pgoff >= t->segs[i].off &&
            m->pgoff < t->segs[i].off + t->segs[i].filesz) {
            out->bias = m->start - m->pgoff + t->segs[i].off -
                        t->segs[i].vaddr;
            out->table = t->slot;
            out->gen = t->gen;
            return;
        }
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
    for (uint32_t i = 0; i < n; i++)
        s_fill_map(self, proc, &proc->maps[i], &e->maps[i]);
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
    return rc;
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

/* ------------------------------------------------------------- life */

unwinder_t *unwinder_new(const unwinder_maps_t *maps,
                         const unwind_limits_t *limits)
{
    unwinder_t *self = calloc(1, sizeof(*self));

    if (!self)
        return NULL;
    self->maps = *maps;
    if (limits)
        self->limits = *limits;
    /* A table the row array cannot hold is refused anyway. */
    if (!self->limits.max_rows || self->limits.max_rows > maps->max_rows)
        self->limits.max_rows = maps->max_rows;
    self->tables = hashmap_new(s_key_match);
    self->procs = hashmap_new(s_pid_match);
    self->slot_gen = calloc(maps->max_tables ? maps->max_tables : 1,
                            sizeof(uint32_t));
    self->free_slots = calloc(maps->max_tables ? maps->max_tables : 1,
                              sizeof(uint32_t));
    self->free_rows = calloc((size_t)maps->max_tables + 2, sizeof(range_t));
    self->free_pslots = calloc(maps->max_procs ? maps->max_procs : 1,
                               sizeof(uint32_t));
    if (!self->tables || !self->procs || !self->slot_gen ||
        !self->free_slots || !self->free_rows || !self->free_pslots) {
        unwinder_destroy(&self);
        return NULL;
    }
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
        (uint64_t)maps->max_procs * (sizeof(struct sky_unw_proc) + 8);
    return self;
}

void unwinder_destroy(unwinder_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    unwinder_t *self = *self_p;
    size_t cursor = 0;
    void *item;
    while (self->tables && (item = hashmap_next(self->tables, &cursor)))
        free(item);
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

void unwinder_stats(const unwinder_t *self, unwinder_stats_t *out)
{
    *out = self->stats;
    out->bytes = out->rows * sizeof(struct sky_unw_row) +
                 out->tables * sizeof(struct sky_unw_table) +
                 out->procs * (sizeof(struct sky_unw_proc) + 8);
}
