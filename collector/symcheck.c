/* Symbol availability check over lib/elfid.h: see symcheck.h. */
#include "symcheck.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfid.h"
#include "hashmap.h"
#include "safe_open.h"

/* Answers cached; when full the cache starts over (answers are cheap to
 * recompute and the set of distinct executables on a host is small). */
#define SYMCHECK_CACHED 3072

typedef struct {
    uint64_t dev, ino;
    bool answer;
} s_answer_t;

struct symcheck {
    char *debug_dir;
    hashmap_t *cache;          /* (dev, inode) -> s_answer_t */
};

static int
s_same_file(const void *item, const void *key)
{
    const s_answer_t *a = item, *k = key;
    return a->dev == k->dev && a->ino == k->ino;
}

static uint64_t
s_file_hash(const s_answer_t *k)
{
    return hash_split64(k->dev * 0x9e3779b97f4a7c15ull ^ k->ino);
}

static void
s_forget_all(symcheck_t *self)
{
    size_t cursor = 0;
    s_answer_t *a;
    while ((a = hashmap_next(self->cache, &cursor)))
        free(a);
    hashmap_clear(self->cache);
}

symcheck_t *
symcheck_new(const char *debug_dir)
{
    symcheck_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->debug_dir = strdup(debug_dir && *debug_dir ? debug_dir
                                                     : "/usr/lib/debug");
    self->cache = hashmap_new(s_same_file);
    if (!self->debug_dir || !self->cache)
        symcheck_destroy(&self);
    return self;
}

void
symcheck_destroy(symcheck_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    symcheck_t *self = *self_p;
    if (self->cache)
        s_forget_all(self);
    hashmap_destroy(&self->cache);
    free(self->debug_dir);
    free(self);
    *self_p = NULL;
}

/* A host debug file: opened, not just stat()ed, so what counts is a
 * regular file reached without magic links. */
static bool
s_exists(const char *path)
{
    int fd = safe_open_host(path, 0, NULL);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* <debug_dir>/.build-id/xx/yyyy.debug */
static bool
s_build_id_debug_file(symcheck_t *self, const elfid_t *id)
{
    char hex[2 * ELFID_BUILD_ID_MAX + 1];
    char path[PATH_MAX];
    if (id->build_id_len < 2)
        return false;
    for (size_t i = 0; i < id->build_id_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", id->build_id[i]);
    int n = snprintf(path, sizeof path, "%s/.build-id/%.2s/%s.debug",
                     self->debug_dir, hex, hex + 2);
    return n > 0 && (size_t)n < sizeof path && s_exists(path);
}

/* <dir of exe>/.debug/<name>, then <debug_dir><dir of exe>/<name>. */
static bool
s_debuglink_file(symcheck_t *self, const char *name, const char *exe_path)
{
    char dir[PATH_MAX], path[PATH_MAX];
    if (!name[0] || !realpath(exe_path, dir))
        return false;
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    /* Truncated paths would name some other file: treat as absent. */
    int n = snprintf(path, sizeof path, "%s/.debug/%s", dir, name);
    if (n > 0 && (size_t)n < sizeof path && s_exists(path))
        return true;
    n = snprintf(path, sizeof path, "%s%s/%s", self->debug_dir, dir, name);
    return n > 0 && (size_t)n < sizeof path && s_exists(path);
}

static bool
s_inspect(symcheck_t *self, int fd, const char *path)
{
    elfid_t id;
    if (elfid_read_fd(fd, &id) != 0)
        return false;
    return id.has_functions || s_build_id_debug_file(self, &id) ||
           s_debuglink_file(self, id.debuglink, path);
}

bool
symcheck_has_symbols(symcheck_t *self, const char *path)
{
    bool answer = false;
    struct stat st;
    /* /proc/PID/exe is the kernel's link to the very executable; any
     * other path is taken as a host path, without magic links. Either
     * way only a regular file is opened. */
    int fd = strncmp(path, "/proc/", 6) == 0
                 ? safe_open_proc_link(path, 0, &st)
                 : safe_open_host(path, 0, &st);
    if (fd < 0)
        goto cleanup;
    s_answer_t key = { (uint64_t)st.st_dev, (uint64_t)st.st_ino, false };
    uint64_t hash = s_file_hash(&key);
    const s_answer_t *known = hashmap_find(self->cache, hash, &key);
    if (known) {
        answer = known->answer;
        goto cleanup;
    }
    answer = s_inspect(self, fd, path);
    if (hashmap_size(self->cache) >= SYMCHECK_CACHED)
        s_forget_all(self);
    s_answer_t *a = malloc(sizeof *a);
    if (a) {
        *a = key;
        a->answer = answer;
        if (hashmap_insert(self->cache, hash, a) != 0)
            free(a);   /* uncached: asked again next time */
    }
cleanup:
    if (fd >= 0)
        close(fd);
    return answer;
}
