/* Object registry; see objects.h. */
#include "collector/objreg.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hashmap.h"
#include "log.h"
#include "procfacts.h"
#include "safe_open.h"
#include "wire.h"

/* Ancestors looked at for one that shares a process's root (s_holder). */
#define OBJREG_HOLDER_DEPTH 8

struct objreg {
    hashmap_t *by_file;      /* (dev, ino) alias -> object */
    hashmap_t *by_build_id;  /* build-id -> object */
    hashmap_t *by_special;   /* (type, owner pid) -> vdso/JIT/anon object */
    uint32_t next_id;
    object_t *all;        /* every object, for teardown */
    size_t count;
};

typedef struct {
    uint64_t dev, ino;
} file_key_t;

typedef struct {
    const uint8_t *bytes;
    uint8_t len;
} build_id_key_t;

typedef struct {
    uint8_t type;
    uint32_t pid;
} special_key_t;

static uint64_t s_file_hash(uint64_t dev, uint64_t ino)
{
    return hash_split64(dev * 0x9e3779b97f4a7c15ull ^ hash_split64(ino));
}

static int s_file_match(const void *item, const void *key)
{
    const object_t *obj = item;
    const file_key_t *k = key;

    for (uint32_t i = 0; i < obj->naliases; i++)
        if (obj->aliases[i][0] == k->dev && obj->aliases[i][1] == k->ino)
            return 1;
    return 0;
}

static int s_build_id_match(const void *item, const void *key)
{
    const object_t *obj = item;
    const build_id_key_t *k = key;

    return obj->build_id_len == k->len &&
           memcmp(obj->build_id, k->bytes, k->len) == 0;
}

static uint64_t s_special_hash(uint8_t type, uint32_t pid)
{
    return hash_split64(((uint64_t)type << 32) | pid);
}

static int s_special_match(const void *item, const void *key)
{
    const object_t *obj = item;
    const special_key_t *k = key;

    return obj->type == k->type && obj->owner_pid == k->pid;
}

objreg_t *objreg_new(void)
{
    objreg_t *self = calloc(1, sizeof(*self));

    if (!self)
        return NULL;
    self->by_file = hashmap_new(s_file_match);
    self->by_build_id = hashmap_new(s_build_id_match);
    self->by_special = hashmap_new(s_special_match);
    if (!self->by_file || !self->by_build_id || !self->by_special) {
        objreg_destroy(&self);
        return NULL;
    }
    self->next_id = 1;
    return self;
}

static void s_object_free(object_t *obj)
{
    if (!obj)
        return;
    free(obj->path);
    free(obj->aliases);
    free(obj);
}

void objreg_destroy(objreg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    objreg_t *self = *self_p;
    while (self->all) {
        object_t *obj = self->all;
        self->all = obj->next;
        s_object_free(obj);
    }
    hashmap_destroy(&self->by_file);
    hashmap_destroy(&self->by_build_id);
    hashmap_destroy(&self->by_special);
    free(self);
    *self_p = NULL;
}

static void s_link(objreg_t *self, object_t *obj)
{
    obj->prev = NULL;
    obj->next = self->all;
    if (self->all)
        self->all->prev = obj;
    self->all = obj;
    self->count++;
}

static void s_unlink(objreg_t *self, object_t *obj)
{
    if (obj->prev)
        obj->prev->next = obj->next;
    else
        self->all = obj->next;
    if (obj->next)
        obj->next->prev = obj->prev;
    self->count--;
}

static int s_add_alias(objreg_t *self, object_t *obj, uint64_t dev,
                       uint64_t ino)
{
    uint64_t(*grown)[2] =
        realloc(obj->aliases, (obj->naliases + 1) * sizeof(*obj->aliases));
    if (!grown)
        return -1;
    obj->aliases = grown;
    obj->aliases[obj->naliases][0] = dev;
    obj->aliases[obj->naliases][1] = ino;
    obj->naliases++;
    if (hashmap_insert(self->by_file, s_file_hash(dev, ino), obj) < 0) {
        obj->naliases--;
        return -1;
    }
    return 0;
}

int objreg_open_file(uint32_t pid, const char *path, uint64_t start,
                     uint64_t end)
{
    char buf[128];

    /* map_files reaches the very file mapped, even when it was deleted or
     * lives in another mount namespace: a link the kernel resolves, which
     * no path inside the container can redirect. The path itself is the
     * container's to shape, so it is resolved confined to its root. */
    snprintf(buf, sizeof(buf), "/proc/%u/map_files/%" PRIx64 "-%" PRIx64,
             pid, start, end);
    int fd = safe_open_proc_link(buf, 0, NULL);
    if (fd < 0 && path && path[0] == '/')
        fd = safe_open_pid(pid, path, 0, NULL);
    return fd;
}

static int s_read_build_id(uint32_t pid, const char *path, uint64_t start,
                           uint64_t end, uint8_t out[ELFID_BUILD_ID_MAX])
{
    int n = -1;
    int fd = objreg_open_file(pid, path, start, end);

    if (fd >= 0) {
        n = elfid_build_id_fd(fd, out);
        close(fd);
    }
    return n < 0 ? 0 : n;
}

/* What makes a path name the same file for two processes: the same
 * root directory in the same mount namespace. */
typedef struct {
    dev_t dev;
    ino_t ino;
    char mnt[48];              /* "mnt:[4026531841]" */
} root_id_t;

static int s_root_id(uint32_t pid, root_id_t *out)
{
    char link[64];
    struct stat st;

    snprintf(link, sizeof(link), "/proc/%u/root", pid);
    if (stat(link, &st) != 0)
        return -1;
    snprintf(link, sizeof(link), "/proc/%u/ns/mnt", pid);
    ssize_t n = readlink(link, out->mnt, sizeof(out->mnt) - 1);
    if (n <= 0)
        return -1;
    out->mnt[n] = '\0';
    out->dev = st.st_dev;
    out->ino = st.st_ino;
    return 0;
}

static int s_same_root(const root_id_t *a, const root_id_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && strcmp(a->mnt, b->mnt) == 0;
}

/* The process to name with a file that pid maps: pid itself on our own
 * root; in a container, its oldest ancestor with the same root (up to
 * OBJREG_HOLDER_DEPTH up). A container's short-lived processes are
 * mostly children of a long-lived one in it (a shell, a server, its init)
 * whose root, where the path leads to the same file, outlives them:
 * the symbolizer can then still open the file once they are gone. */
static uint32_t s_holder(uint32_t pid)
{
    root_id_t mine, ours, up;
    uint32_t holder = pid;
    procfacts_stat_t st;

    if (s_root_id(pid, &mine) < 0 || s_root_id((uint32_t)getpid(), &ours) < 0 ||
        s_same_root(&mine, &ours))
        return pid;
    for (int i = 0; i < OBJREG_HOLDER_DEPTH; i++) {
        if (procfacts_stat(NULL, holder, &st) < 0 || st.ppid <= 1 ||
            s_root_id(st.ppid, &up) < 0 || !s_same_root(&mine, &up))
            break;
        holder = st.ppid;
    }
    return holder;
}

/* Objects name one process through whose /proc/PID/root the symbolizer
 * can reach the file (s_holder). When that process is gone, one for a
 * live process that maps the object takes its place (path as this one
 * sees it). */
static void s_refresh_owner(object_t *obj, uint32_t pid, const char *path,
                            uint64_t dev, uint64_t ino)
{
    if (obj->pid == pid || obj->pid == 0 ||
        kill((pid_t)obj->pid, 0) == 0 || errno == EPERM)
        return;
    pid = s_holder(pid);
    char *copy = strdup(path);
    if (!copy)
        return;
    free(obj->path);
    obj->path = copy;
    obj->pid = pid;
    obj->dev = dev;
    obj->ino = ino;
}

object_t *objreg_get_file(objreg_t *self, uint32_t pid, uint64_t dev,
                           uint64_t ino, const char *path, uint64_t start,
                           uint64_t end, uint8_t type)
{
    file_key_t fk = { dev, ino };
    object_t *obj = hashmap_find(self->by_file, s_file_hash(dev, ino), &fk);
    object_t *fresh = NULL;

    if (obj) {
        obj->refs++;
        s_refresh_owner(obj, pid, path, dev, ino);
        return obj;
    }
    uint8_t id[ELFID_BUILD_ID_MAX];
    int idlen = s_read_build_id(pid, path, start, end, id);
    if (idlen > 0) {
        build_id_key_t bk = { id, (uint8_t)idlen };
        uint64_t h = hash_bytes64(id, (size_t)idlen, 0);
        obj = hashmap_find(self->by_build_id, h, &bk);
        if (obj) {
            /* Same content under another (dev, inode): same object. */
            if (s_add_alias(self, obj, dev, ino) < 0)
                return NULL;
            obj->refs++;
            s_refresh_owner(obj, pid, path, dev, ino);
            return obj;
        }
    }
    fresh = calloc(1, sizeof(*fresh));
    if (!fresh)
        goto fail;
    fresh->path = strdup(path);
    if (!fresh->path)
        goto fail;
    fresh->id = self->next_id++;
    if (fresh->id == WIRE_NO_OBJECT)  /* wrapped after 4 billion */
        fresh->id = self->next_id++;
    fresh->type = type;
    fresh->dev = dev;
    fresh->ino = ino;
    fresh->pid = s_holder(pid);
    if (idlen > 0) {
        fresh->build_id_len = (uint8_t)idlen;
        memcpy(fresh->build_id, id, (size_t)idlen);
    }
    if (s_add_alias(self, fresh, dev, ino) < 0)
        goto fail;
    if (idlen > 0 &&
        hashmap_insert(self->by_build_id,
                    hash_bytes64(id, (size_t)idlen, 0), fresh) < 0) {
        hashmap_remove(self->by_file, s_file_hash(dev, ino), &fk);
        goto fail;
    }
    fresh->refs = 1;
    s_link(self, fresh);
    return fresh;
fail:
    s_object_free(fresh);
    return NULL;
}

object_t *objreg_find_file(objreg_t *self, uint64_t dev, uint64_t ino)
{
    file_key_t fk = { dev, ino };
    object_t *obj = hashmap_find(self->by_file, s_file_hash(dev, ino), &fk);

    if (obj)
        obj->refs++;
    return obj;
}

object_t *objreg_get_special(objreg_t *self, uint32_t pid, uint8_t type,
                              const char *path)
{
    /* One vdso image serves every process of the host. */
    uint32_t owner = type == WIRE_OBJ_VDSO ? 0 : pid;
    special_key_t sk = { type, owner };
    uint64_t h = s_special_hash(type, owner);
    object_t *obj = hashmap_find(self->by_special, h, &sk);

    if (obj) {
        obj->refs++;
        obj->pid = pid;
        return obj;
    }
    obj = calloc(1, sizeof(*obj));
    if (!obj)
        return NULL;
    obj->path = strdup(path);
    if (!obj->path || hashmap_insert(self->by_special, h, obj) < 0) {
        s_object_free(obj);
        return NULL;
    }
    obj->id = self->next_id++;
    if (obj->id == WIRE_NO_OBJECT)
        obj->id = self->next_id++;
    obj->type = type;
    obj->pid = pid;
    obj->owner_pid = owner;
    obj->refs = 1;
    s_link(self, obj);
    return obj;
}

void objreg_ref(object_t *obj)
{
    if (obj)
        obj->refs++;
}

void objreg_unref(objreg_t *self, object_t **obj_p)
{
    if (!obj_p || !*obj_p)
        return;
    object_t *obj = *obj_p;
    *obj_p = NULL;
    if (obj->refs > 1) {
        obj->refs--;
        return;
    }
    if (obj->naliases == 0) {
        special_key_t sk = { obj->type, obj->owner_pid };
        hashmap_remove(self->by_special, s_special_hash(obj->type,
                                                     obj->owner_pid), &sk);
    } else {
        for (uint32_t i = 0; i < obj->naliases; i++) {
            file_key_t fk = { obj->aliases[i][0], obj->aliases[i][1] };
            hashmap_remove(self->by_file, s_file_hash(fk.dev, fk.ino), &fk);
        }
        if (obj->build_id_len) {
            build_id_key_t bk = { obj->build_id, obj->build_id_len };
            hashmap_remove(self->by_build_id,
                        hash_bytes64(obj->build_id, obj->build_id_len, 0),
                        &bk);
        }
    }
    s_unlink(self, obj);
    s_object_free(obj);
}

size_t objreg_count(const objreg_t *self)
{
    return self->count;
}
