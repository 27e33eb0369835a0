/* The symbolizer: finds, verifies, loads and caches the symbol table of
 * each object, and answers frame lookups from it. */
#include "symbolizer/symbolize.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "safe_open.h"
#include "symbolizer/debugfile.h"
#include "symbolizer/elfobj.h"
#include "symbolizer/framememo.h"
#include "symbolizer/kallsyms.h"
#include "symbolizer/objcache.h"
#include "symbolizer/perfmap.h"
#include "symbolizer/symtab.h"

#define SYM_PATH_MAX 4096
/* Key: one kind byte + up to a pid and a path. */
#define SYM_KEY_MAX (1 + 4 + SYM_PATH_MAX)
/* Process roots a missing file is looked for in per retry window (see
 * s_untried_root). */
#define SYM_ROOTS_TRIED 8

enum symobj_state {
    SYMOBJ_OK = 0,
    SYMOBJ_UNREADABLE = 1,   /* no usable file: retry later */
    SYMOBJ_TOO_LARGE = 2,    /* loaded, but bigger than the whole cache */
};

/* The process roots a missing file was looked for in, this window. */
typedef struct {
    uint8_t n;
    uint32_t pids[SYM_ROOTS_TRIED];
} roots_tried_t;

/* What the cache holds per object. */
typedef struct {
    uint8_t state;
    uint8_t obj_type;            /* enum wire_object_type */
    uint64_t serial;             /* frame memo key; never reused */
    uint64_t retry_at_ms;        /* for UNREADABLE and TOO_LARGE */
    bool missing;                /* UNREADABLE: no root held the file */
    roots_tried_t tried;         /* ... of these processes' */
    symtab_t *syms;              /* SYMOBJ_OK only */
    elf_load_t loads[ELFOBJ_MAX_LOADS];
    size_t nloads;
    char *map_path;              /* JIT: the perf map read */
    uint32_t map_root_pid;       /* JIT: whose root map_path is in */
    perfmap_stamp_t stamp;       /* JIT: version read */
} symobj_t;

struct symbolizer {
    symbolizer_opts_t opts;
    char *debug_dirs;
    char *kallsyms_path;
    objcache_t *cache;
    framememo_t *memo;           /* NULL when the cache is too small */
    uint64_t next_serial;        /* of loaded tables; 0 = none */

    symtab_t *ksyms;
    uint64_t ksyms_serial;
    uint64_t ksyms_loaded_ms;
    bool ksyms_tried;
    bool ksyms_restricted;
    bool ksyms_warned;

    /* The object of the previous lookup: frames come in runs of the same
     * object, so most lookups skip hashing. Valid while the cache's
     * generation is unchanged (nothing was removed since). */
    unsigned char last_key[SYM_KEY_MAX];
    size_t last_keylen;
    objcache_entry_t *last_entry;
    uint64_t last_generation;

    symbolizer_stats_t st;
    log_ratelimit_t perfmap_rl;
    char name_buf[WIRE_MAX_STR];
};

void
symbolizer_opts_default(symbolizer_opts_t *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->cache_size = 64u << 20;
    opts->debug_dirs = "/usr/lib/debug";
    opts->kallsyms_path = "/proc/kallsyms";
    opts->retry_ms = 60000;
    opts->kernel_refresh_ms = 30000;
    opts->perfmap_max_size = 32u << 20;
    opts->debug_crc_max_size = 256u << 20;
}

static void
s_symobj_free(void *value)
{
    symobj_t *so = value;
    if (!so)
        return;
    symtab_destroy(&so->syms);
    free(so->map_path);
    free(so);
}

static size_t
s_symobj_bytes(const symobj_t *so)
{
    size_t bytes = sizeof(*so);
    if (so->syms)
        bytes += symtab_bytes(so->syms);
    if (so->map_path)
        bytes += strlen(so->map_path) + 1;
    return bytes;
}

symbolizer_t *
symbolizer_new(const symbolizer_opts_t *opts)
{
    symbolizer_t *self = calloc(1, sizeof(*self));
    if (!self)
        goto cleanup;
    symbolizer_opts_default(&self->opts);
    if (opts)
        self->opts = *opts;
    self->debug_dirs = strdup(self->opts.debug_dirs ? self->opts.debug_dirs
                                                    : "");
    self->kallsyms_path = strdup(self->opts.kallsyms_path
                                 ? self->opts.kallsyms_path
                                 : "/proc/kallsyms");
    self->cache = objcache_new(self->opts.cache_size, s_symobj_free);
    /* The memo gets a quarter of the cache's budget on top of it; a
     * cache too small for a useful memo runs without one. */
    self->memo = framememo_new(self->opts.cache_size / 4);
    self->perfmap_rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 60000);
    if (!self->debug_dirs || !self->kallsyms_path || !self->cache) {
        symbolizer_destroy(&self);
        goto cleanup;
    }
    /* The copies own the strings now; callers' buffers may go away. */
    self->opts.debug_dirs = self->debug_dirs;
    self->opts.kallsyms_path = self->kallsyms_path;
cleanup:
    return self;
}

void
symbolizer_destroy(symbolizer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    symbolizer_t *self = *self_p;
    objcache_destroy(&self->cache);
    framememo_destroy(&self->memo);
    symtab_destroy(&self->ksyms);
    free(self->debug_dirs);
    free(self->kallsyms_path);
    free(self);
    *self_p = NULL;
}

/* ------------------------------------------------------------ naming */

static const char *
s_set_name(symbolizer_t *self, const char *name)
{
    size_t len = strnlen(name, sizeof(self->name_buf) - 1);
    memcpy(self->name_buf, name, len);
    self->name_buf[len] = '\0';
    return self->name_buf;
}

static const char *
s_unknown_user(symbolizer_t *self, const wire_object_t *obj, uint64_t offset)
{
    const char *path = obj->path && obj->path[0] ? obj->path : "[anon]";
    /* Leave room for "+0x" and 16 digits within the wire's string bound. */
    snprintf(self->name_buf, sizeof(self->name_buf), "%.*s+0x%" PRIx64,
             (int)(sizeof(self->name_buf) - 32), path, offset);
    return self->name_buf;
}

static uint8_t
s_frame_type(uint8_t obj_type)
{
    switch (obj_type) {
    case WIRE_OBJ_EXE:  return WIRE_FRAME_USER;
    case WIRE_OBJ_LIB:  return WIRE_FRAME_LIB;
    case WIRE_OBJ_VDSO: return WIRE_FRAME_LIB;
    case WIRE_OBJ_JIT:  return WIRE_FRAME_JIT;
    default:            return WIRE_FRAME_UNKNOWN;
    }
}

/* --------------------------------------------------------------- keys */

/* The cache key of an object. ELF objects are shared across processes by
 * build-id, else by device + inode; a perf map belongs to one process. */
static size_t
s_make_key(const wire_object_t *obj, unsigned char *key)
{
    size_t len = 0;
    uint32_t pid = obj->pid;
    size_t plen = obj->path ? strnlen(obj->path, SYM_PATH_MAX) : 0;
    if (obj->type == WIRE_OBJ_VDSO) {
        key[len++] = 'V';        /* one kernel, one vdso image */
    } else if (obj->type == WIRE_OBJ_JIT) {
        key[len++] = 'J';
        memcpy(key + len, &pid, sizeof(pid));
        len += sizeof(pid);
        memcpy(key + len, obj->path ? obj->path : "", plen);
        len += plen;
    } else if (obj->build_id_len && obj->build_id_len <= WIRE_MAX_BUILD_ID) {
        key[len++] = 'B';
        memcpy(key + len, obj->build_id, obj->build_id_len);
        len += obj->build_id_len;
    } else if (obj->dev || obj->ino) {
        key[len++] = 'I';
        memcpy(key + len, &obj->dev, sizeof(obj->dev));
        len += sizeof(obj->dev);
        memcpy(key + len, &obj->ino, sizeof(obj->ino));
        len += sizeof(obj->ino);
    } else {
        /* Nothing identifies the file but its name in its process. */
        key[len++] = 'P';
        memcpy(key + len, &pid, sizeof(pid));
        len += sizeof(pid);
        memcpy(key + len, obj->path ? obj->path : "", plen);
        len += plen;
    }
    return len;
}

/* ----------------------------------------------------- opening files */

/* The kernel encodes dev_t as major << 20 | minor; userspace (glibc
 * makedev) differently. The collector may send either, so accept both. */
static bool
s_same_dev(uint64_t wire_dev, dev_t st_dev)
{
    if (wire_dev == (uint64_t)st_dev)
        return true;
    dev_t kernel_form = makedev((unsigned)(wire_dev >> 20),
                                (unsigned)(wire_dev & 0xfffff));
    return kernel_form == st_dev;
}

/* Is this opened file the object the collector saw? */
static bool
s_verify(const wire_object_t *obj, const elfobj_t *elf, const struct stat *st,
         const char *path)
{
    bool ok = false;
    if (obj->build_id_len) {
        uint8_t id[ELFOBJ_MAX_BUILD_ID];
        size_t len = elfobj_build_id(elf, id);
        ok = len == obj->build_id_len && memcmp(id, obj->build_id, len) == 0;
        if (!ok)
            log_debug("symbolizer: %s: build-id differs from the mapped "
                      "object, ignored", path);
    } else if (obj->dev || obj->ino) {
        ok = (uint64_t)st->st_ino == obj->ino && s_same_dev(obj->dev, st->st_dev);
        if (!ok)
            log_debug("symbolizer: %s: device/inode differ from the mapped "
                      "object, ignored", path);
    } else {
        ok = true;
    }
    return ok;
}

/* Copies path without the " (deleted)" suffix the kernel appends to
 * mappings of unlinked files. */
static void
s_clean_path(const char *in, char *out, size_t size)
{
    static const char deleted[] = " (deleted)";
    size_t len = strnlen(in, size - 1);
    size_t dl = sizeof(deleted) - 1;
    if (len > dl && strcmp(in + len - dl, deleted) == 0)
        len -= dl;
    memcpy(out, in, len);
    out[len] = '\0';
}

/* Opens the object: in the process's root while it lives, else on the
 * host. *root_pid receives the root used (0 for the host). */
static elfobj_t *
s_open_object(const wire_object_t *obj, const char *path, uint32_t *root_pid)
{
    elfobj_t *elf = NULL;
    uint32_t roots[2];
    int nroots = 0;
    if (obj->pid)
        roots[nroots++] = obj->pid;
    roots[nroots++] = 0;
    for (int i = 0; i < nroots && !elf; i++) {
        struct stat st;
        int fd = safe_open_pid(roots[i], path, 0, &st);
        if (fd < 0)
            continue;              /* gone with its process: normal */
        char what[SYM_PATH_MAX + 64];
        if (roots[i])
            snprintf(what, sizeof(what), "%s (in the root of pid %u)", path,
                     roots[i]);
        else
            snprintf(what, sizeof(what), "%s (on the host)", path);
        elf = elfobj_open_fd(fd, what);
        if (elf && !s_verify(obj, elf, &st, what))
            elfobj_destroy(&elf);
        if (elf)
            *root_pid = roots[i];
    }
    return elf;
}

/* --------------------------------------------------------- loading */

static symobj_t *
s_symobj_new(uint8_t obj_type)
{
    symobj_t *so = calloc(1, sizeof(*so));
    if (so)
        so->obj_type = obj_type;
    return so;
}

/* Fills so->syms from an opened object, preferring its own .symtab, then
 * a separate debug file's, and always adding .dynsym. No table is read
 * that could not fit the whole cache. Returns 0, -1 on failure, or
 * ELFOBJ_TOO_LARGE. */
static int
s_load_symbols(symbolizer_t *self, symobj_t *so, elfobj_t *elf,
               const wire_object_t *obj, uint32_t root_pid, const char *path)
{
    int rc = -1;
    uint64_t max = self->opts.cache_size;
    elfobj_t *debug = NULL;
    so->nloads = elfobj_loads(elf, so->loads, ELFOBJ_MAX_LOADS);
    so->syms = symtab_new();
    if (!so->syms)
        goto cleanup;
    if (!elfobj_has_full_symtab(elf, max) && obj->type != WIRE_OBJ_VDSO) {
        uint8_t id[ELFOBJ_MAX_BUILD_ID];
        debugfile_query_t q = {
            .debug_dirs = self->debug_dirs,
            .root_pid = root_pid,
            .bin_path = path,
            .build_id = id,
            .build_id_len = elfobj_build_id(elf, id),
            .max_crc_size = self->opts.debug_crc_max_size,
        };
        q.debuglink = elfobj_debuglink(elf, &q.debuglink_crc);
        char found[SYM_PATH_MAX];
        debug = debugfile_find(&q, found, sizeof(found));
        self->st.debug_crc_skipped += q.crc_skipped;
        if (debug && !elfobj_has_full_symtab(debug, max))
            elfobj_destroy(&debug);
        if (debug) {
            log_debug("symbolizer: %s: symbols from %s", path, found);
            long n = elfobj_add_symbols(debug, so->syms, max);
            if (n < 0) {
                rc = (int)n;
                goto cleanup;
            }
        }
    }
    long added = elfobj_add_symbols(elf, so->syms, max);
    if (added < 0) {
        rc = (int)added;
        goto cleanup;
    }
    if (obj->type != WIRE_OBJ_VDSO &&
        elfobj_add_entry_label(elf, so->syms) < 0)
        goto cleanup;
    if (symtab_finish(so->syms, 0) < 0)
        goto cleanup;
    if (symtab_count(so->syms) == 0)
        log_debug("symbolizer: %s: no function symbols (stripped, no debug "
                  "file found)", path);
    rc = 0;
cleanup:
    elfobj_destroy(&debug);
    return rc;
}

static const void *
s_vdso_image(size_t *size)
{
    const void *image = (const void *)(uintptr_t)getauxval(AT_SYSINFO_EHDR);
    *size = 0;
    if (!image)
        goto cleanup;
    /* The vdso's extent is in our own maps. */
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];
    while (f && fgets(line, sizeof(line), f)) {
        unsigned long start, end;
        if (strstr(line, "[vdso]") &&
            sscanf(line, "%lx-%lx", &start, &end) == 2 &&
            start == (uintptr_t)image && end > start) {
            *size = end - start;
            break;
        }
    }
    if (f)
        fclose(f);
cleanup:
    return *size ? image : NULL;
}

static symobj_t *
s_load_elf(symbolizer_t *self, const wire_object_t *obj)
{
    symobj_t *so = s_symobj_new(obj->type);
    elfobj_t *elf = NULL;
    char path[SYM_PATH_MAX];
    uint32_t root_pid = 0;
    if (!so)
        goto cleanup;
    if (obj->type == WIRE_OBJ_VDSO) {
        size_t size;
        const void *image = s_vdso_image(&size);
        snprintf(path, sizeof(path), "[vdso]");
        elf = image ? elfobj_open_mem(image, size, "[vdso]") : NULL;
    } else if (obj->path && obj->path[0] == '/') {
        s_clean_path(obj->path, path, sizeof(path));
        /* A debug file alone cannot stand in for a vanished binary: its
         * PT_LOAD headers lose the file offsets we translate from. */
        elf = s_open_object(obj, path, &root_pid);
    }
    if (!elf) {
        so->state = SYMOBJ_UNREADABLE;
        so->missing = obj->type != WIRE_OBJ_VDSO;
        goto cleanup;
    }
    int rc = s_load_symbols(self, so, elf, obj, root_pid, path);
    if (rc < 0) {
        symtab_destroy(&so->syms);
        so->state = rc == ELFOBJ_TOO_LARGE ? SYMOBJ_TOO_LARGE
                                           : SYMOBJ_UNREADABLE;
        if (rc == ELFOBJ_TOO_LARGE)
            log_warn("symbolizer: %s: a symbol table larger than "
                     "symbolizer.cache_size (%" PRIu64 " bytes), refused "
                     "before reading it; its frames stay unresolved", path,
                     self->opts.cache_size);
    }
cleanup:
    elfobj_destroy(&elf);
    return so;
}

/* The perf map of a process: named after its pid in its own namespace,
 * in /tmp of its own root. The collector names it in obj->path (as the
 * process sees it); without that, build the name from nspid. After the
 * process is gone its root is too; a host process (the map's pid is its
 * host pid) still has the map at the same host path. Fills so->map_path
 * and so->map_root_pid; -1 when there is no map to read. */
static int
s_perfmap_locate(symobj_t *so, const wire_object_t *obj, uint32_t nspid)
{
    char rel[128];
    const char *path = obj->path;
    perfmap_stamp_t stamp;
    if (!path || path[0] != '/') {
        snprintf(rel, sizeof(rel), "/tmp/perf-%u.map",
                 nspid ? nspid : obj->pid);
        path = rel;
    }
    if (!(so->map_path = strdup(path)))
        return -1;
    so->map_root_pid = obj->pid;
    if (obj->pid) {
        perfmap_src_t src = { .root_pid = obj->pid, .path = path };
        if (perfmap_stamp(&src, &stamp) == 0)
            return 0;
        unsigned map_pid = 0;
        if (sscanf(path, "/tmp/perf-%u.map", &map_pid) != 1 ||
            map_pid != obj->pid)
            return -1;
    }
    so->map_root_pid = 0;
    return 0;
}

/* Reads so's perf map within the configured bounds: the map's size and a
 * table no larger than the whole cache, both checked as it is read. */
static symtab_t *
s_perfmap_read(symbolizer_t *self, symobj_t *so, uint64_t *bad,
               perfmap_status_t *status)
{
    perfmap_src_t src = {
        .root_pid = so->map_root_pid,
        .path = so->map_path,
        .max_size = self->opts.perfmap_max_size,
        .max_table = self->opts.cache_size,
    };
    symtab_t *tab = perfmap_load(&src, &so->stamp, bad, status);
    if (*status == PERFMAP_TOO_LARGE) {
        self->st.perfmaps_refused++;
        char where[48] = "on the host";
        if (so->map_root_pid)
            snprintf(where, sizeof(where), "in the root of pid %u",
                     so->map_root_pid);
        log_warn_rl(&self->perfmap_rl, "symbolizer: %s (%s): perf map over "
                    "symbolizer.perfmap_max_size (%" PRIu64 " bytes) or "
                    "symbolizer.cache_size, refused; its frames stay "
                    "unresolved", so->map_path, where,
                    self->opts.perfmap_max_size);
    }
    return tab;
}

static symobj_t *
s_load_perfmap(symbolizer_t *self, const wire_object_t *obj, uint32_t nspid)
{
    symobj_t *so = s_symobj_new(obj->type);
    uint64_t bad = 0;
    perfmap_status_t status;
    if (!so)
        goto cleanup;
    so->state = SYMOBJ_UNREADABLE;
    if (s_perfmap_locate(so, obj, nspid) < 0)
        goto cleanup;
    so->syms = s_perfmap_read(self, so, &bad, &status);
    if (so->syms)
        so->state = SYMOBJ_OK;
    else if (status == PERFMAP_TOO_LARGE)
        so->state = SYMOBJ_TOO_LARGE;
    if (bad)
        log_debug("symbolizer: %s: %" PRIu64 " malformed lines skipped",
                  so->map_path, bad);
cleanup:
    return so;
}

/* A file found in no root of the processes named so far may be in this
 * one's: the first process of a container is often gone before its
 * samples arrive (its root with it), while the next one that maps the same
 * file lives. So a negative entry of a missing file is retried at once
 * for a process root not tried yet, up to SYM_ROOTS_TRIED per retry
 * window (a failed look costs two openat calls, but it must not happen on
 * every frame). */
static bool
s_untried_root(const symobj_t *so, const wire_object_t *obj, uint64_t now)
{
    if (so->state != SYMOBJ_UNREADABLE || !so->missing || obj->pid == 0 ||
        so->tried.n >= SYM_ROOTS_TRIED || now >= so->retry_at_ms)
        return false;
    for (uint8_t i = 0; i < so->tried.n; i++)
        if (so->tried.pids[i] == obj->pid)
            return false;
    return true;
}

/* Loads an object that missed the cache and inserts it (negative entries
 * too). prev: the negative entry this load retries in a new root (its
 * window and roots carry over), or NULL. Returns the entry or NULL when
 * even that failed. */
static objcache_entry_t *
s_load(symbolizer_t *self, const wire_object_t *obj, uint32_t nspid,
       const unsigned char *key, size_t keylen, const symobj_t *prev)
{
    objcache_entry_t *entry = NULL;
    uint64_t now = now_mono_ms();
    symobj_t *so = obj->type == WIRE_OBJ_JIT ? s_load_perfmap(self, obj, nspid)
                                             : s_load_elf(self, obj);
    if (!so)
        goto cleanup;
    so->serial = ++self->next_serial;
    if (so->state == SYMOBJ_OK) {
        entry = objcache_insert(self->cache, key, keylen, so,
                                s_symobj_bytes(so));
        if (entry)
            goto cleanup;
        log_warn("symbolizer: %s: symbol table of %zu bytes does not fit "
                 "symbolizer.cache_size (%" PRIu64 " bytes); its frames stay "
                 "unresolved", obj->path ? obj->path : "?",
                 s_symobj_bytes(so), self->opts.cache_size);
        symtab_destroy(&so->syms);
        so->state = SYMOBJ_TOO_LARGE;
    }
    if (so->state == SYMOBJ_TOO_LARGE)
        self->st.objects_too_large++;
    else
        self->st.objects_unreadable++;
    so->retry_at_ms = now + self->opts.retry_ms;
    if (so->missing && prev) {
        so->retry_at_ms = prev->retry_at_ms;
        so->tried = prev->tried;
    }
    if (so->missing && obj->pid && so->tried.n < SYM_ROOTS_TRIED)
        so->tried.pids[so->tried.n++] = obj->pid;
    entry = objcache_insert(self->cache, key, keylen, so, s_symobj_bytes(so));
cleanup:
    if (!entry)
        s_symobj_free(so);
    return entry;
}

/* A JIT address missed: if the map changed since it was read, read it
 * again. Returns the entry, or NULL when it had to be dropped. */
static objcache_entry_t *
s_refresh_perfmap(symbolizer_t *self, objcache_entry_t *entry)
{
    symobj_t *so = objcache_value(entry);
    perfmap_stamp_t now;
    uint64_t bad = 0;
    perfmap_status_t status;
    perfmap_src_t src = { .root_pid = so->map_root_pid, .path = so->map_path };
    if (!so->map_path || perfmap_stamp(&src, &now) < 0 ||
        (now.size == so->stamp.size && now.ino == so->stamp.ino &&
         now.mtime_ns == so->stamp.mtime_ns))
        goto cleanup;
    /* A map over the bound is refused from its stamp alone, and only once
     * per version: a JIT growing its map past the bound does not make us
     * read it again on every miss. */
    if (self->opts.perfmap_max_size &&
        now.size > self->opts.perfmap_max_size) {
        so->stamp = now;
        self->st.perfmaps_refused++;
        goto cleanup;
    }
    symtab_t *fresh = s_perfmap_read(self, so, &bad, &status);
    if (!fresh)
        goto cleanup;
    symtab_destroy(&so->syms);
    so->syms = fresh;
    self->st.perfmap_reloads++;
    if (objcache_resize(self->cache, entry, s_symobj_bytes(so)) < 0) {
        self->st.objects_too_large++;
        entry = NULL;
    }
cleanup:
    return entry;
}

/* Looks addr up in a cached object. The name points into the table's
 * pool, which stays put until a later call changes the cache. When the
 * table grew (lazy demangling) the cache must be told, which may evict
 * this very entry: the name is copied out first. */
static const char *
s_lookup(symbolizer_t *self, objcache_entry_t *entry, uint64_t addr)
{
    symobj_t *so = objcache_value(entry);
    size_t before = symtab_bytes(so->syms);
    const char *name = symtab_lookup(so->syms, addr, NULL);
    if (name && symtab_bytes(so->syms) != before) {
        name = s_set_name(self, name);
        if (objcache_resize(self->cache, entry, s_symobj_bytes(so)) < 0)
            self->st.objects_too_large++;
    }
    return name;
}

/* The cache entry for key: the previous lookup's when it is the same
 * object, else a cache lookup. */
static objcache_entry_t *
s_find(symbolizer_t *self, const unsigned char *key, size_t keylen)
{
    objcache_entry_t *entry;
    if (self->last_entry && keylen == self->last_keylen &&
        self->last_generation == objcache_generation(self->cache) &&
        memcmp(key, self->last_key, keylen) == 0)
        return self->last_entry;
    entry = objcache_find(self->cache, key, keylen);
    if (entry) {
        memcpy(self->last_key, key, keylen);
        self->last_keylen = keylen;
        self->last_entry = entry;
        self->last_generation = objcache_generation(self->cache);
    }
    return entry;
}

/* A memo hit or a fresh resolution is remembered only for ELF objects:
 * perf maps change under the same key (JIT code is replaced). */
static int
s_resolve_user(symbolizer_t *self, const wire_object_t *obj, uint32_t nspid,
               uint64_t offset, const char **name, uint8_t *type,
               uint64_t *hash)
{
    int rc = -1;
    const char *resolved = NULL;
    unsigned char key[SYM_KEY_MAX];
    *type = WIRE_FRAME_UNKNOWN;
    if (!obj) {
        snprintf(self->name_buf, sizeof(self->name_buf),
                 "[unknown] 0x%016" PRIx64, offset);
        *name = self->name_buf;
        goto cleanup;
    }
    *name = NULL;
    if (obj->type > WIRE_OBJ_TYPE_MAX || obj->type == WIRE_OBJ_ANON)
        goto cleanup;

    size_t keylen = s_make_key(obj, key);
    objcache_entry_t *entry = s_find(self, key, keylen);
    symobj_t prev = { .state = SYMOBJ_OK };   /* its window and roots */
    bool retry_root = false;
    if (entry) {
        symobj_t *so = objcache_value(entry);
        uint64_t now = now_mono_ms();
        retry_root = s_untried_root(so, obj, now);
        if (so->state != SYMOBJ_OK &&
            (retry_root || now >= so->retry_at_ms)) {
            prev.retry_at_ms = so->retry_at_ms;
            prev.tried = so->tried;
            objcache_remove(self->cache, entry);
            entry = NULL;
        } else {
            self->st.cache_hits++;
        }
    }
    if (!entry) {
        self->st.cache_misses++;
        if (retry_root)
            self->st.root_retries++;
        entry = s_load(self, obj, nspid, key, keylen,
                       retry_root ? &prev : NULL);
    }
    if (!entry || ((symobj_t *)objcache_value(entry))->state != SYMOBJ_OK)
        goto cleanup;

    symobj_t *so = objcache_value(entry);
    uint64_t serial = so->serial;
    bool memoize = self->memo && obj->type != WIRE_OBJ_JIT;
    framememo_hit_t hit;
    if (memoize && framememo_get(self->memo, serial, offset, &hit) == 0) {
        *name = hit.name;
        *type = hit.type;
        if (hash)
            *hash = hit.hash;
        self->st.frames_resolved++;
        return 0;
    }
    if (obj->type == WIRE_OBJ_JIT) {
        /* JIT frames carry the absolute address. */
        resolved = s_lookup(self, entry, offset);
        if (!resolved && (entry = s_refresh_perfmap(self, entry)))
            resolved = s_lookup(self, entry, offset);
    } else {
        uint64_t vaddr;
        if (elf_offset_to_vaddr(so->loads, so->nloads, offset, &vaddr) == 0)
            resolved = s_lookup(self, entry, vaddr);
    }
    if (resolved) {
        *name = resolved;
        *type = s_frame_type(obj->type);
        rc = 0;
        if (memoize) {
            uint64_t h = hash_fnv1a(resolved, *type);
            if (framememo_put(self->memo, serial, offset, resolved, *type, h,
                              &hit) == 0)
                *name = hit.name;
            if (hash)
                *hash = h;
            hash = NULL;         /* done */
        }
    }
cleanup:
    if (!*name)
        *name = s_unknown_user(self, obj, offset);
    if (hash)
        *hash = hash_fnv1a(*name, *type);
    if (rc == 0)
        self->st.frames_resolved++;
    else
        self->st.frames_unknown++;
    return rc;
}

int
symbolizer_resolve_user(symbolizer_t *self, const wire_object_t *obj,
                        uint32_t nspid, uint64_t offset, const char **name,
                        uint8_t *type)
{
    return s_resolve_user(self, obj, nspid, offset, name, type, NULL);
}

int
symbolizer_resolve_user_h(symbolizer_t *self, const wire_object_t *obj,
                          uint32_t nspid, uint64_t offset, const char **name,
                          uint8_t *type, uint64_t *hash)
{
    return s_resolve_user(self, obj, nspid, offset, name, type, hash);
}

/* ------------------------------------------------------------ kernel */

static void
s_load_kernel(symbolizer_t *self)
{
    bool restricted = false;
    symtab_t *tab = kallsyms_load(self->kallsyms_path, &restricted);
    self->ksyms_tried = true;
    self->ksyms_loaded_ms = now_mono_ms();
    if (!tab) {
        if (!self->ksyms_warned)
            log_warn("symbolizer: cannot read %s (%s): kernel frames stay "
                     "raw addresses", self->kallsyms_path, strerror(errno));
        self->ksyms_warned = true;
        return;
    }
    self->ksyms_restricted = restricted;
    if (restricted && !self->ksyms_warned) {
        log_warn("symbolizer: %s shows only zero addresses (kptr_restrict; "
                 "the symbolizer needs CAP_SYSLOG or kernel.kptr_restrict=0): "
                 "kernel frames stay raw addresses", self->kallsyms_path);
        self->ksyms_warned = true;
    }
    symtab_destroy(&self->ksyms);
    self->ksyms = tab;
    /* A new table may name addresses differently: new memo key. */
    self->ksyms_serial = ++self->next_serial;
    self->st.kernel_reloads++;
}

static int
s_resolve_kernel(symbolizer_t *self, uint64_t addr, const char **name,
                 uint8_t *type, uint64_t *hash)
{
    int rc = -1;
    const char *found = NULL;
    framememo_hit_t hit;
    if (!self->ksyms_tried)
        s_load_kernel(self);
    if (self->ksyms && self->memo &&
        framememo_get(self->memo, self->ksyms_serial, addr, &hit) == 0) {
        *name = hit.name;
        *type = hit.type;
        if (hash)
            *hash = hit.hash;
        self->st.frames_resolved++;
        return 0;
    }
    if (self->ksyms)
        found = symtab_lookup(self->ksyms, addr, NULL);
    /* Modules and BPF programs load after us: a miss may mean the table is
     * stale, so re-read it, but not on every miss. */
    if (!found && !self->ksyms_restricted &&
        now_mono_ms() - self->ksyms_loaded_ms >= self->opts.kernel_refresh_ms) {
        s_load_kernel(self);
        if (self->ksyms)
            found = symtab_lookup(self->ksyms, addr, NULL);
    }
    if (found) {
        *name = found;   /* the pool only changes in a later call */
        *type = WIRE_FRAME_KERNEL;
        self->st.frames_resolved++;
        rc = 0;
        /* Only hits are memoized: a miss may resolve after a reload. */
        uint64_t h = hash_fnv1a(found, WIRE_FRAME_KERNEL);
        if (self->memo &&
            framememo_put(self->memo, self->ksyms_serial, addr, found,
                          WIRE_FRAME_KERNEL, h, &hit) == 0)
            *name = hit.name;
        if (hash)
            *hash = h;
    } else {
        snprintf(self->name_buf, sizeof(self->name_buf), "[k] 0x%016" PRIx64,
                 addr);
        *name = self->name_buf;
        *type = WIRE_FRAME_UNKNOWN;
        self->st.frames_unknown++;
        if (hash)
            *hash = hash_fnv1a(*name, *type);
    }
    return rc;
}

int
symbolizer_resolve_kernel(symbolizer_t *self, uint64_t addr,
                          const char **name, uint8_t *type)
{
    return s_resolve_kernel(self, addr, name, type, NULL);
}

int
symbolizer_resolve_kernel_h(symbolizer_t *self, uint64_t addr,
                            const char **name, uint8_t *type, uint64_t *hash)
{
    return s_resolve_kernel(self, addr, name, type, hash);
}

void
symbolizer_reload_kernel(symbolizer_t *self)
{
    symtab_destroy(&self->ksyms);
    self->ksyms_tried = false;
}

void
symbolizer_get_stats(const symbolizer_t *self, symbolizer_stats_t *out)
{
    safe_open_stats_t refused;
    safe_open_get_stats(&refused);
    *out = self->st;
    out->files_refused = refused.not_regular + refused.links +
                         refused.bad_path + refused.too_large;
    out->cache_bytes = objcache_bytes(self->cache);
    out->cache_objects = objcache_count(self->cache);
    out->cache_evictions = objcache_evictions(self->cache);
    out->kernel_bytes = self->ksyms ? symtab_bytes(self->ksyms) : 0;
    out->memo_bytes = framememo_bytes(self->memo);
    out->memo_hits = framememo_hits(self->memo);
}
