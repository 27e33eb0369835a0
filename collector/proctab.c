/* Process table; see proctab.h. */
#include "collector/proctab.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "hashmap.h"
#include "log.h"
#include "procfacts.h"
#include "safe_open.h"
#include "wire.h"

#define PROCTAB_MAX_MAPS 65536          /* executable mappings per process */
#define PROCTAB_MISS_BACKOFF_MIN_MS 50
#define PROCTAB_MISS_BACKOFF_MAX_MS 10000

/* Delays after exec at which the mappings are read again: ld.so maps the
 * libraries within a few ms of the exec event, and a process may be gone
 * before its samples are drained.  The 1 and 2 ms reads put the loader's
 * libraries in the unwinder's entry before most samples of a 40 ms process
 * (issue 15: misses were frames whose object had no table yet). */
static const uint32_t s_rescan_delays_ms[] = { 1, 2, 5, 25, 100 };
#define PROCTAB_RESCANS (sizeof(s_rescan_delays_ms) / sizeof(s_rescan_delays_ms[0]))

struct proctab {
    objreg_t *objects;
    hashmap_t *by_pid;
    size_t max_procs;
    uint64_t grace_ms;
    proc_t *exit_head, *exit_tail;   /* exited, oldest first */
    proc_t *rescan_head;
    proctab_stats_t stats;
    proctab_hooks_t hooks;
};

static int s_pid_match(const void *item, const void *key)
{
    return ((const proc_t *)item)->pid == *(const uint32_t *)key;
}

static uint64_t s_pid_hash(uint32_t pid)
{
    return hash_split64(pid);
}

proctab_t *proctab_new(objreg_t *objects, size_t max_procs,
                       uint64_t grace_ms)
{
    proctab_t *self = calloc(1, sizeof(*self));

    if (!self)
        return NULL;
    self->by_pid = hashmap_new(s_pid_match);
    if (!self->by_pid) {
        free(self);
        return NULL;
    }
    self->objects = objects;
    self->max_procs = max_procs ? max_procs : 32768;
    self->grace_ms = grace_ms;
    return self;
}

void proctab_set_hooks(proctab_t *self, const proctab_hooks_t *hooks)
{
    if (hooks)
        self->hooks = *hooks;
    else
        memset(&self->hooks, 0, sizeof(self->hooks));
}

static void s_maps_changed(proctab_t *self, const proc_t *proc)
{
    if (self->hooks.maps_changed)
        self->hooks.maps_changed(self->hooks.arg, proc);
}

static void s_gone(proctab_t *self, uint32_t pid)
{
    if (self->hooks.gone)
        self->hooks.gone(self->hooks.arg, pid);
}

static void s_drop_maps(proctab_t *self, proc_t *proc)
{
    for (uint32_t i = 0; i < proc->nmaps; i++)
        objreg_unref(self->objects, &proc->maps[i].obj);
    free(proc->maps);
    proc->maps = NULL;
    proc->nmaps = 0;
    proc->maps_loaded = false;
}

static void s_exit_list_remove(proctab_t *self, proc_t *proc)
{
    proc_t *prev = NULL;

    for (proc_t *p = self->exit_head; p; prev = p, p = p->exit_next) {
        if (p != proc)
            continue;
        if (prev)
            prev->exit_next = p->exit_next;
        else
            self->exit_head = p->exit_next;
        if (self->exit_tail == p)
            self->exit_tail = prev;
        p->exit_next = NULL;
        return;
    }
}

static void s_rescan_list_remove(proctab_t *self, proc_t *proc)
{
    if (!proc->on_rescan_list)
        return;
    for (proc_t **pp = &self->rescan_head; *pp; pp = &(*pp)->rescan_next) {
        if (*pp == proc) {
            *pp = proc->rescan_next;
            break;
        }
    }
    proc->rescan_next = NULL;
    proc->on_rescan_list = false;
}

/* Frees what the entry owns, and the entry; the indexes are the
 * caller's. */
static void s_proc_release(proctab_t *self, proc_t *proc)
{
    s_drop_maps(self, proc);
    free(proc->exec_path);
    free(proc);
}

/* Removes the entry from every index and frees it. */
static void s_proc_free(proctab_t *self, proc_t *proc)
{
    s_gone(self, proc->pid);
    hashmap_remove(self->by_pid, s_pid_hash(proc->pid), &proc->pid);
    if (proc->exited_ms)
        s_exit_list_remove(self, proc);
    s_rescan_list_remove(self, proc);
    s_proc_release(self, proc);
}

void proctab_destroy(proctab_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    proctab_t *self = *self_p;
    size_t cursor = 0;
    proc_t *proc;
    /* Free without touching the map while walking it. */
    while ((proc = hashmap_next(self->by_pid, &cursor)))
        s_proc_release(self, proc);
    hashmap_destroy(&self->by_pid);
    free(self);
    *self_p = NULL;
}

proc_t *proctab_find(proctab_t *self, uint32_t pid)
{
    return hashmap_find(self->by_pid, s_pid_hash(pid), &pid);
}

static void s_mark_exited(proctab_t *self, proc_t *proc, uint64_t now_ms)
{
    if (proc->exited_ms)
        return;
    proc->exited_ms = now_ms ? now_ms : 1;
    s_gone(self, proc->pid);
    proc->exit_next = NULL;
    if (self->exit_tail)
        self->exit_tail->exit_next = proc;
    else
        self->exit_head = proc;
    self->exit_tail = proc;
    s_rescan_list_remove(self, proc);
}

/* Makes room for one more entry: the oldest exited process goes first;
 * with none exited the table refuses. */
static int s_make_room(proctab_t *self)
{
    if (hashmap_size(self->by_pid) < self->max_procs)
        return 0;
    if (!self->exit_head) {
        self->stats.procs_refused++;
        return -1;
    }
    s_proc_free(self, self->exit_head);
    return 0;
}

static void s_read_identity(proc_t *proc)
{
    procfacts_stat_t st;

    if (procfacts_stat(NULL, proc->pid, &st) == 0)
        proc->start_ticks = st.start_ticks;
    procfacts_status(NULL, proc->pid, &proc->nspid, NULL);
    procfacts_container_id(NULL, proc->pid, proc->container_id,
                           sizeof(proc->container_id));
}

static proc_t *s_create(proctab_t *self, uint32_t pid)
{
    proc_t *proc;

    if (s_make_room(self) < 0)
        return NULL;
    proc = calloc(1, sizeof(*proc));
    if (!proc)
        return NULL;
    proc->pid = pid;
    proc->refresh_backoff_ms = PROCTAB_MISS_BACKOFF_MIN_MS;
    if (hashmap_insert(self->by_pid, s_pid_hash(pid), proc) < 0) {
        free(proc);
        return NULL;
    }
    return proc;
}

proc_t *proctab_get(proctab_t *self, uint32_t pid, const char *comm_hint)
{
    proc_t *proc = proctab_find(self, pid);

    if (proc)
        return proc;
    proc = s_create(self, pid);
    if (!proc)
        return NULL;
    if (procfacts_comm(NULL, pid, proc->comm, sizeof(proc->comm)) < 0) {
        /* Already gone: remember it as exited so its remaining samples
         * do not each try /proc again. */
        if (comm_hint)
            snprintf(proc->comm, sizeof(proc->comm), "%s", comm_hint);
        s_mark_exited(self, proc, now_mono_ms());
        return proc;
    }
    s_read_identity(proc);
    return proc;
}

proc_t *proctab_on_fork(proctab_t *self, uint32_t pid, uint32_t ppid,
                        const char *comm)
{
    proc_t *old = proctab_find(self, pid);

    /* A pid seen again after its exit belongs to a new process. */
    if (old && old->exited_ms)
        s_proc_free(self, old);
    else if (old)
        return old;
    proc_t *proc = s_create(self, pid);
    if (!proc)
        return NULL;
    proc->ppid = ppid;
    snprintf(proc->comm, sizeof(proc->comm), "%s", comm ? comm : "");
    s_read_identity(proc);
    /* The child starts with a copy of its parent's address space: share
     * the parent's mappings rather than read /proc for them. */
    proc_t *parent = ppid ? proctab_find(self, ppid) : NULL;
    if (parent && parent->maps_loaded && parent->nmaps) {
        proc->maps = malloc(parent->nmaps * sizeof(*proc->maps));
        if (proc->maps) {
            memcpy(proc->maps, parent->maps,
                   parent->nmaps * sizeof(*proc->maps));
            proc->nmaps = parent->nmaps;
            for (uint32_t i = 0; i < proc->nmaps; i++)
                objreg_ref(proc->maps[i].obj);
            proc->maps_loaded = true;
            s_maps_changed(self, proc);
        }
    }
    return proc;
}

static void s_schedule_rescans(proctab_t *self, proc_t *proc,
                               uint64_t now_ms)
{
    proc->rescans_left = PROCTAB_RESCANS;
    proc->next_rescan_ms = now_ms + s_rescan_delays_ms[0];
    if (!proc->on_rescan_list) {
        proc->rescan_next = self->rescan_head;
        self->rescan_head = proc;
        proc->on_rescan_list = true;
    }
}

/* The exec's file name made absolute (malloc'ed), or NULL. A relative
 * one is relative to the working directory of the exec: the process's
 * own while it lives, else its parent's, which it inherited unless it
 * moved (s_recorded_exe checks (dev, inode) before it trusts the guess).
 * A failed allocation only loses the hint. */
static char *s_exec_path(const proc_t *proc, const char *path)
{
    const uint32_t whose[2] = { proc->pid, proc->ppid };
    char link[64], cwd[PATH_MAX];

    if (!path || !path[0])
        return NULL;
    if (path[0] == '/')
        return strdup(path);
    for (int i = 0; i < 2; i++) {
        if (whose[i] == 0)
            continue;
        snprintf(link, sizeof(link), "/proc/%u/cwd", whose[i]);
        ssize_t n = readlink(link, cwd, sizeof(cwd) - 1);
        if (n <= 0)
            continue;
        cwd[n] = '\0';
        size_t len = (size_t)n + 1 + strlen(path) + 1;
        char *abs = malloc(len);
        if (abs)
            snprintf(abs, len, "%s/%s", cwd, path);
        return abs;
    }
    return NULL;
}

proc_t *proctab_on_exec(proctab_t *self, uint32_t pid, const char *comm,
                        const char *exe_path)
{
    proc_t *proc = proctab_find(self, pid);

    if (proc && proc->exited_ms) {
        s_proc_free(self, proc);
        proc = NULL;
    }
    if (!proc) {
        proc = proctab_get(self, pid, comm);
        if (!proc)
            return NULL;
    }
    if (comm && comm[0])
        snprintf(proc->comm, sizeof(proc->comm), "%s", comm);
    free(proc->exec_path);
    proc->exec_path = s_exec_path(proc, exe_path);
    /* exec replaced the whole address space. Re-read rather than drop
     * first: a sample may already have loaded the new image, and its
     * objects must keep their ids across the swap. */
    if (proc->exited_ms || proctab_load_maps(self, proc) < 0)
        s_drop_maps(self, proc);
    else
        s_schedule_rescans(self, proc, now_mono_ms());
    proc->refresh_backoff_ms = PROCTAB_MISS_BACKOFF_MIN_MS;
    proc->next_refresh_ms = 0;
    proc->recorded_tried = false;
    return proc;
}

void proctab_on_exit(proctab_t *self, uint32_t pid)
{
    proc_t *proc = proctab_find(self, pid);

    if (proc)
        s_mark_exited(self, proc, now_mono_ms());
}

int proctab_parse_maps_line(const char *line, maps_line_t *out)
{
    unsigned long long start, end, pgoff, ino;
    unsigned int major, minor;
    char perms[5];
    int consumed = 0;

    memset(out, 0, sizeof(*out));
    if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu%n", &start, &end,
               perms, &pgoff, &major, &minor, &ino, &consumed) != 7)
        return -1;
    if (end <= start || strlen(perms) != 4)
        return -1;
    out->start = start;
    out->end = end;
    out->pgoff = pgoff;
    out->dev = makedev(major, minor);
    out->ino = ino;
    out->exec = perms[2] == 'x';
    const char *p = line + consumed;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strcspn(p, "\n");
    static const char deleted[] = " (deleted)";
    if (len >= sizeof(deleted) - 1 &&
        memcmp(p + len - (sizeof(deleted) - 1), deleted,
               sizeof(deleted) - 1) == 0)
        len -= sizeof(deleted) - 1;
    out->path = p;
    out->path_len = len;
    return 0;
}

/* JIT runtimes (perf-map-agent, node --perf-basic-prof) write their code
 * addresses to /tmp/perf-PID.map with PID as the process sees itself. */
static int s_perf_map_path(const proc_t *proc, char *out, size_t size)
{
    char path[40];
    uint32_t ids[2] = { proc->nspid ? proc->nspid : proc->pid, proc->pid };

    /* Looked up the way the symbolizer will read it: confined to the
     * process's root, a regular file only. */
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "/tmp/perf-%u.map", ids[i]);
        int fd = safe_open_pid(proc->pid, path, 0, NULL);
        if (fd >= 0) {
            close(fd);
            snprintf(out, size, "%s", path);
            return 0;
        }
    }
    return -1;
}

int proctab_load_maps(proctab_t *self, proc_t *proc)
{
    char path[64], exe[4096];
    char *line = NULL;
    size_t line_cap = 0;
    mapping_t *maps = NULL;
    uint32_t nmaps = 0, cap = 0;
    int perf_map_state = 0; /* 0 unknown, 1 present, -1 absent */
    char perf_map[64] = "";
    bool any_line = false;
    int rc = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%u/maps", proc->pid);
    f = fopen(path, "re");
    if (!f)
        goto cleanup;
    self->stats.maps_refreshes++;
    if (procfacts_exe(NULL, proc->pid, exe, sizeof(exe)) == 0)
        procfacts_exe_undelete(exe);
    while (getline(&line, &line_cap, f) > 0) {
        maps_line_t ml;
        object_t *obj = NULL;
        any_line = true;
        if (proctab_parse_maps_line(line, &ml) < 0 || !ml.exec)
            continue;
        if (nmaps >= PROCTAB_MAX_MAPS)
            break;
        char objpath[4096];
        size_t plen = ml.path_len < sizeof(objpath) - 1 ? ml.path_len
                                                       : sizeof(objpath) - 1;
        memcpy(objpath, ml.path, plen);
        objpath[plen] = '\0';
        if (objpath[0] == '/' && ml.ino != 0) {
            uint8_t type = strcmp(objpath, exe) == 0 ? WIRE_OBJ_EXE
                                                     : WIRE_OBJ_LIB;
            obj = objreg_get_file(self->objects, proc->pid, ml.dev, ml.ino,
                                   objpath, ml.start, ml.end, type);
        } else if (strcmp(objpath, "[vdso]") == 0) {
            obj = objreg_get_special(self->objects, proc->pid,
                                      WIRE_OBJ_VDSO, "[vdso]");
        } else if (strcmp(objpath, "[vsyscall]") == 0) {
            continue; /* fixed legacy page, not per-process code */
        } else {
            if (perf_map_state == 0)
                perf_map_state =
                    s_perf_map_path(proc, perf_map, sizeof(perf_map)) == 0
                        ? 1 : -1;
            if (perf_map_state > 0)
                obj = objreg_get_special(self->objects, proc->pid,
                                          WIRE_OBJ_JIT, perf_map);
            else
                obj = objreg_get_special(self->objects, proc->pid,
                                          WIRE_OBJ_ANON,
                                          objpath[0] ? objpath : "[anon]");
        }
        if (!obj)
            continue;
        if (nmaps == cap) {
            uint32_t ncap = cap ? cap * 2 : 16;
            mapping_t *grown = realloc(maps, ncap * sizeof(*maps));
            if (!grown) {
                objreg_unref(self->objects, &obj);
                break;
            }
            maps = grown;
            cap = ncap;
        }
        maps[nmaps].start = ml.start;
        maps[nmaps].end = ml.end;
        maps[nmaps].pgoff = ml.pgoff;
        maps[nmaps].obj = obj;
        nmaps++;
    }
    /* No mapping at all (not even the stack): a zombie, whose maps file
     * still opens until its parent reaps it, or a kernel thread. Keep
     * what was read while it lived: an empty table would hide it from
     * the walker's record of it and leave its samples unresolved. */
    if (!any_line)
        goto cleanup;
    /* The kernel lists mappings in address order; binary search relies
     * on it, so refuse anything else rather than mis-resolve. */
    for (uint32_t i = 1; i < nmaps; i++) {
        if (maps[i].start < maps[i - 1].end) {
            for (uint32_t j = 0; j < nmaps; j++)
                objreg_unref(self->objects, &maps[j].obj);
            nmaps = 0;
            break;
        }
    }
    /* Swap only now: the objects still mapped kept their reference, so
     * nothing is re-read. */
    s_drop_maps(self, proc);
    proc->maps = maps;
    proc->nmaps = nmaps;
    proc->maps_loaded = true;
    maps = NULL;
    s_maps_changed(self, proc);
    rc = 0;
cleanup:
    if (f)
        fclose(f);
    free(line);
    free(maps);
    return rc;
}

/* The executable of a process gone before anyone read its mappings,
 * known to no one by (dev, inode) (its first run): the exec's file name,
 * if that path names the very file the kernel recorded (in this mount
 * namespace: a container's path names another file or none). */
static object_t *s_recorded_exe(proctab_t *self, const proc_t *proc,
                                const proctab_vma_t *v)
{
    struct stat st;

    if (!proc->exec_path || stat(proc->exec_path, &st) != 0 ||
        (uint64_t)st.st_dev != v->dev || (uint64_t)st.st_ino != v->ino)
        return NULL;
    /* Reached through our own root, where the path was checked: the
     * process is gone, so the object's owner (through whose root readers
     * open it) is this process until a live one maps the file. */
    return objreg_get_file(self->objects, (uint32_t)getpid(), v->dev, v->ino,
                           proc->exec_path, v->start, v->end, WIRE_OBJ_EXE);
}

/* A process gone before its mappings were read (a short one while the
 * collector waited for a CPU): its mappings as the BPF walks of its
 * samples found them, each object known by (dev, inode) from another
 * process that mapped the same file (the program's earlier runs, libc),
 * or, for the executable, by the exec's file name. Asked once per exec;
 * other files nobody else mapped stay unresolved. */
static void s_load_recorded(proctab_t *self, proc_t *proc)
{
    proctab_vma_t v[PROCTAB_VMAS_MAX];
    mapping_t *maps = NULL;
    uint32_t nmaps = 0;
    int n;

    proc->recorded_tried = true;
    if (!self->hooks.recorded)
        return;
    n = self->hooks.recorded(self->hooks.arg, proc->pid, v, PROCTAB_VMAS_MAX);
    if (n <= 0)
        return;
    maps = calloc((size_t)n, sizeof(*maps));
    if (!maps)
        return;
    for (int i = 0; i < n; i++) {
        object_t *obj = NULL;
        if (v[i].kind == 1) {
            obj = objreg_find_file(self->objects, v[i].dev, v[i].ino);
            if (!obj)
                obj = s_recorded_exe(self, proc, &v[i]);
        } else if (v[i].kind == 2) {
            obj = objreg_get_special(self->objects, proc->pid, WIRE_OBJ_VDSO,
                                     "[vdso]");
        }
        if (!obj)
            continue;
        maps[nmaps].start = v[i].start;
        maps[nmaps].end = v[i].end;
        maps[nmaps].pgoff = v[i].pgoff;
        maps[nmaps].obj = obj;
        nmaps++;
    }
    if (nmaps == 0) {
        free(maps);
        return;
    }
    /* Not told to the unwinder: the process is gone. */
    s_drop_maps(self, proc);
    proc->maps = maps;
    proc->nmaps = nmaps;
    proc->maps_loaded = true;
    self->stats.maps_recorded++;
}

static const mapping_t *s_lookup(const proc_t *proc, uint64_t addr)
{
    uint32_t lo = 0, hi = proc->nmaps;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const mapping_t *m = &proc->maps[mid];
        if (addr < m->start)
            hi = mid;
        else if (addr >= m->end)
            lo = mid + 1;
        else
            return m;
    }
    return NULL;
}

static object_t *s_resolve(proctab_t *self, proc_t *proc, uint64_t addr,
                           uint64_t *offset, bool executed)
{
    const mapping_t *m;

    *offset = addr;
    if (!proc->maps_loaded && !proc->exited_ms)
        proctab_load_maps(self, proc);
    if (!proc->maps_loaded && !proc->recorded_tried)
        s_load_recorded(self, proc);
    m = s_lookup(proc, addr);
    if (!m && !proc->exited_ms) {
        /* A library loaded since the last read (dlopen), or a junk frame
         * from a frame-pointer walk. Re-read, backing off when re-reading
         * does not help, so junk frames cost little. A pc the CPU was
         * executing is no junk: re-read at once, at most every minimum
         * backoff, so a dlopen'd library (and its unwind table) is known
         * within a drain of its first sample. */
        uint64_t now = now_mono_ms();
        if (executed && now >= proc->next_pc_refresh_ms) {
            proctab_load_maps(self, proc);
            m = s_lookup(proc, addr);
            proc->next_pc_refresh_ms = now + PROCTAB_MISS_BACKOFF_MIN_MS;
        } else if (now >= proc->next_refresh_ms) {
            proctab_load_maps(self, proc);
            m = s_lookup(proc, addr);
            if (m)
                proc->refresh_backoff_ms = PROCTAB_MISS_BACKOFF_MIN_MS;
            else if (proc->refresh_backoff_ms < PROCTAB_MISS_BACKOFF_MAX_MS)
                proc->refresh_backoff_ms *= 2;
            proc->next_refresh_ms = now + proc->refresh_backoff_ms;
        }
    }
    if (!m) {
        self->stats.addresses_unmapped++;
        return NULL;
    }
    if (m->obj->type == WIRE_OBJ_JIT || m->obj->type == WIRE_OBJ_ANON)
        *offset = addr;  /* perf maps list absolute addresses */
    else
        *offset = addr - m->start + m->pgoff;
    return m->obj;
}

object_t *proctab_resolve(proctab_t *self, proc_t *proc, uint64_t addr,
                          uint64_t *offset)
{
    return s_resolve(self, proc, addr, offset, false);
}

object_t *proctab_resolve_pc(proctab_t *self, proc_t *proc, uint64_t addr,
                             uint64_t *offset)
{
    return s_resolve(self, proc, addr, offset, true);
}

uint64_t proctab_run_rescans(proctab_t *self, uint64_t now_ms)
{
    uint64_t next = UINT64_MAX;
    proc_t **pp = &self->rescan_head;

    while (*pp) {
        proc_t *proc = *pp;
        if (proc->next_rescan_ms <= now_ms) {
            if (proctab_load_maps(self, proc) < 0)
                proc->rescans_left = 0;   /* gone */
            else if (proc->rescans_left)
                proc->rescans_left--;
            uint32_t done = PROCTAB_RESCANS - proc->rescans_left;
            if (proc->rescans_left && done < PROCTAB_RESCANS)
                proc->next_rescan_ms = now_ms + s_rescan_delays_ms[done] -
                                       s_rescan_delays_ms[done - 1];
        }
        if (!proc->rescans_left) {
            *pp = proc->rescan_next;
            proc->rescan_next = NULL;
            proc->on_rescan_list = false;
            continue;
        }
        if (proc->next_rescan_ms < next)
            next = proc->next_rescan_ms;
        pp = &proc->rescan_next;
    }
    return next == UINT64_MAX ? next : (next > now_ms ? next - now_ms : 0);
}

static int s_still_same(const proc_t *proc)
{
    procfacts_stat_t st;

    if (procfacts_stat(NULL, proc->pid, &st) < 0)
        return 0;
    return proc->start_ticks == 0 || st.start_ticks == proc->start_ticks;
}

void proctab_gc(proctab_t *self, uint64_t now_ms, bool check_alive)
{
    while (self->exit_head &&
           now_ms - self->exit_head->exited_ms >= self->grace_ms)
        s_proc_free(self, self->exit_head);
    if (!check_alive)
        return;
    /* Exit events can be lost (event ring full); catch up from /proc.
     * Collect first: marking does not change the pid map, but keep the
     * walk independent of it anyway. */
    size_t n = hashmap_size(self->by_pid), count = 0, cursor = 0;
    proc_t **dead = calloc(n ? n : 1, sizeof(*dead));
    proc_t *proc;
    if (!dead)
        return;
    while ((proc = hashmap_next(self->by_pid, &cursor)))
        if (!proc->exited_ms && !s_still_same(proc))
            dead[count++] = proc;
    for (size_t i = 0; i < count; i++)
        s_mark_exited(self, dead[i], now_ms);
    free(dead);
}

size_t proctab_count(const proctab_t *self)
{
    return hashmap_size(self->by_pid);
}

void proctab_stats(const proctab_t *self, proctab_stats_t *out)
{
    *out = self->stats;
}

proc_t *proctab_next(proctab_t *self, size_t *cursor)
{
    return hashmap_next(self->by_pid, cursor);
}
