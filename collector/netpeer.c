/* Local peer processes of connections; see netpeer.h. */
#include "collector/netpeer.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hashmap.h"
#include "procfacts.h"

typedef struct {
    uint64_t conn_id;
    uint32_t pid;
    uint32_t peer_pid;
    int resolved;               /* peer_pid is an answer (0: none) */
    uint8_t attempts;           /* /proc lookups that found nothing */
    uint8_t role;               /* enum wire_net_role */
    uint64_t seen_ms;           /* last netpeer_open/netpeer_peer */
    netpeer_tuple_t t;
} conn_t;

struct netpeer {
    size_t max;
    char proc_root[256];
    hashmap_t *by_id;           /* conn_id -> conn_t */
    hashmap_t *by_tuple;        /* (proto, local, remote) -> conn_t */
    uint16_t *listen;           /* TCP ports listened on, sorted */
    size_t nlisten, listen_cap;
    uint64_t listen_ms;         /* when they were read (0: never) */
    uint64_t window_ms;         /* the second the lookups below count in */
    uint32_t window_lookups;
    netpeer_stats_t stats;
};

static uint64_t s_id_hash(uint64_t id) { return hash_split64(id); }

static uint64_t s_tuple_hash(const netpeer_tuple_t *t)
{
    return hash_bytes64(t, sizeof(*t), 0x6e6574706565ull);
}

static int s_match_id(const void *item, const void *key)
{
    return ((const conn_t *)item)->conn_id == *(const uint64_t *)key;
}

static int s_match_tuple(const void *item, const void *key)
{
    return memcmp(&((const conn_t *)item)->t, key, sizeof(netpeer_tuple_t)) == 0;
}

netpeer_t *netpeer_new(size_t max_conns, const char *proc_root)
{
    netpeer_t *self = calloc(1, sizeof(*self));

    if (!self)
        return NULL;
    self->max = max_conns;
    snprintf(self->proc_root, sizeof(self->proc_root), "%s",
             proc_root ? proc_root : "/proc");
    self->by_id = hashmap_new(s_match_id);
    self->by_tuple = hashmap_new(s_match_tuple);
    if (!self->by_id || !self->by_tuple)
        netpeer_destroy(&self);
    return self;
}

void netpeer_destroy(netpeer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    netpeer_t *self = *self_p;
    size_t cursor = 0;
    conn_t *c;

    while (self->by_id && (c = hashmap_next(self->by_id, &cursor)))
        free(c);
    hashmap_destroy(&self->by_id);
    hashmap_destroy(&self->by_tuple);
    free(self->listen);
    free(self);
    *self_p = NULL;
}

/* A tuple with zeroed padding, so it hashes and compares as bytes. */
static netpeer_tuple_t s_key(const netpeer_tuple_t *t, int reversed)
{
    netpeer_tuple_t k;

    memset(&k, 0, sizeof(k));
    k.proto = t->proto;
    memcpy(k.laddr, reversed ? t->raddr : t->laddr, 16);
    memcpy(k.raddr, reversed ? t->laddr : t->raddr, 16);
    k.lport = reversed ? t->rport : t->lport;
    k.rport = reversed ? t->lport : t->rport;
    return k;
}

/* One /proc/net line's address "HEX:PORT" into 16 bytes and a port. */
static int s_parse_addr(const char *s, uint8_t out[16], uint16_t *port)
{
    const char *colon = strchr(s, ':');
    size_t hexlen = colon ? (size_t)(colon - s) : 0;
    char chunk[9];

    memset(out, 0, 16);
    if (hexlen != 8 && hexlen != 32)
        return -1;
    for (size_t i = 0; i < hexlen / 8; i++) {
        memcpy(chunk, s + i * 8, 8);
        chunk[8] = '\0';
        uint32_t v = (uint32_t)strtoul(chunk, NULL, 16);
        /* The kernel prints each 32-bit word of the address as a host
         * integer: its memory bytes are the address bytes. */
        memcpy(out + (hexlen == 8 ? 12 : i * 4), &v, 4);
    }
    if (hexlen == 8)
        out[10] = out[11] = 0xff;
    *port = (uint16_t)strtoul(colon + 1, NULL, 16);
    return 0;
}

static int s_cmp_u16(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* The TCP ports in LISTEN state (st 0A) of /proc/net/tcp and tcp6. */
static void s_read_listen(netpeer_t *self)
{
    static const char *const files[2] = { "net/tcp", "net/tcp6" };
    char path[512], line[512], la[64];
    unsigned st;

    self->nlisten = 0;
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof(path), "%s/%s", self->proc_root, files[f]);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue;
        while (fgets(line, sizeof(line), fp)) {
            uint8_t a[16];
            uint16_t port;
            if (sscanf(line, " %*s %63s %*s %x", la, &st) != 2 ||
                st != 0x0a || s_parse_addr(la, a, &port) < 0)
                continue;
            if (self->nlisten == self->listen_cap) {
                size_t cap = self->listen_cap ? self->listen_cap * 2 : 64;
                uint16_t *grown;
                if (cap > 65536 ||
                    !(grown = realloc(self->listen, cap * sizeof(*grown))))
                    break;
                self->listen = grown;
                self->listen_cap = cap;
            }
            self->listen[self->nlisten++] = port;
        }
        fclose(fp);
    }
    if (self->nlisten)
        qsort(self->listen, self->nlisten, sizeof(*self->listen), s_cmp_u16);
}

static int s_listening(netpeer_t *self, uint16_t port, uint64_t now_ms)
{
    if (!self->listen_ms || now_ms >= self->listen_ms + 1000) {
        s_read_listen(self);
        self->listen_ms = now_ms ? now_ms : 1;
    }
    return self->nlisten &&
           bsearch(&port, self->listen, self->nlisten, sizeof(port),
                   s_cmp_u16) != NULL;
}

uint8_t netpeer_open(netpeer_t *self, uint64_t conn_id, uint32_t pid,
                     const netpeer_tuple_t *t, uint8_t role, uint64_t now_ms)
{
    conn_t *c = hashmap_find(self->by_id, s_id_hash(conn_id), &conn_id);

    if (c)
        return c->role;
    /* 1 client, 2 server (enum wire_net_role). */
    if (!role && t->proto == 0)
        role = s_listening(self, t->lport, now_ms) ? 2 : 1;
    if (hashmap_size(self->by_id) >= self->max ||
        !(c = calloc(1, sizeof(*c)))) {
        self->stats.untracked++;
        return role;
    }
    c->conn_id = conn_id;
    c->pid = pid;
    c->role = role;
    c->seen_ms = now_ms;
    c->t = s_key(t, 0);
    if (hashmap_insert(self->by_id, s_id_hash(conn_id), c) != 0) {
        free(c);
        self->stats.untracked++;
        return role;
    }
    /* Two sockets with one tuple (a reused port before the old one's
     * close was seen): the newer one is the one the tuple finds. */
    hashmap_remove(self->by_tuple, s_tuple_hash(&c->t), &c->t);
    if (hashmap_insert(self->by_tuple, s_tuple_hash(&c->t), c) != 0) {
        hashmap_remove(self->by_id, s_id_hash(conn_id), &conn_id);
        free(c);
        self->stats.untracked++;
    }
    return role;
}

uint8_t netpeer_role(const netpeer_t *self, uint64_t conn_id)
{
    const conn_t *c = hashmap_find(self->by_id, s_id_hash(conn_id), &conn_id);

    return c ? c->role : 0;
}

void netpeer_close(netpeer_t *self, uint64_t conn_id)
{
    conn_t *c = hashmap_remove(self->by_id, s_id_hash(conn_id), &conn_id);

    if (!c)
        return;
    if (hashmap_find(self->by_tuple, s_tuple_hash(&c->t), &c->t) == c)
        hashmap_remove(self->by_tuple, s_tuple_hash(&c->t), &c->t);
    free(c);
}

static int s_is_local(const netpeer_t *self, const netpeer_tuple_t *t)
{
    static const uint8_t v6_lo[16] = {[15] = 1};
    static const uint8_t v4_prefix[12] = {[10] = 0xff, [11] = 0xff};

    if (t->proto == 2)          /* unix: always this host, no tuple */
        return 0;
    if (!memcmp(t->raddr, v6_lo, 16) ||
        (!memcmp(t->raddr, v4_prefix, 12) && t->raddr[12] == 127))
        return 1;
    /* The same address at both ends: a connection to one of our own. */
    return !memcmp(t->raddr, t->laddr, 16);
}

/* The inode of the socket whose local end is t's remote end and whose
 * remote end is t's local end; 0 when not found. */
static uint64_t s_find_inode(const netpeer_t *self, const netpeer_tuple_t *t)
{
    const char *files[2] = { t->proto == 1 ? "net/udp" : "net/tcp",
                             t->proto == 1 ? "net/udp6" : "net/tcp6" };
    char path[512], line[512], la[64], ra[64];
    uint64_t inode = 0;

    for (int f = 0; f < 2 && !inode; f++) {
        snprintf(path, sizeof(path), "%s/%s", self->proc_root, files[f]);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue;
        while (!inode && fgets(line, sizeof(line), fp)) {
            uint8_t a[16], b[16];
            uint16_t pa, pb;
            unsigned long long ino;
            if (sscanf(line, " %*s %63s %63s %*s %*s %*s %*s %*s %*s %llu",
                       la, ra, &ino) != 3 ||
                s_parse_addr(la, a, &pa) < 0 || s_parse_addr(ra, b, &pb) < 0)
                continue;
            if (pa == t->rport && pb == t->lport && !memcmp(a, t->raddr, 16) &&
                !memcmp(b, t->laddr, 16))
                inode = ino;
        }
        fclose(fp);
    }
    return inode;
}

typedef struct {
    const netpeer_t *self;
    char want[64];
    uint32_t found;
} inode_walk_t;

static int s_pid_has(void *arg, uint32_t pid)
{
    inode_walk_t *w = arg;
    char dir[320], link[64], path[600];
    struct dirent *de;

    snprintf(dir, sizeof(dir), "%s/%" PRIu32 "/fd", w->self->proc_root, pid);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    while (!w->found && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (!strcmp(link, w->want))
            w->found = pid;
    }
    closedir(d);
    return w->found != 0;
}

static uint32_t s_proc_lookup(netpeer_t *self, const netpeer_tuple_t *t)
{
    uint64_t inode = s_find_inode(self, t);
    inode_walk_t w = { .self = self };

    self->stats.proc_lookups++;
    if (!inode)
        return 0;
    snprintf(w.want, sizeof(w.want), "socket:[%" PRIu64 "]", inode);
    procfacts_each_pid(self->proc_root, s_pid_has, &w);
    if (w.found)
        self->stats.proc_found++;
    return w.found;
}

uint32_t netpeer_peer(netpeer_t *self, uint64_t conn_id, uint64_t now_ms)
{
    conn_t *c = hashmap_find(self->by_id, s_id_hash(conn_id), &conn_id);

    if (!c)
        return 0;
    c->seen_ms = now_ms;
    if (c->resolved)
        return c->peer_pid;
    netpeer_tuple_t rev = s_key(&c->t, 1);
    conn_t *peer = hashmap_find(self->by_tuple, s_tuple_hash(&rev), &rev);
    if (peer && peer != c) {
        c->peer_pid = peer->pid;
        c->resolved = 1;
        self->stats.matched++;
        return c->peer_pid;
    }
    if (!s_is_local(self, &c->t)) {
        c->resolved = 1;
        return 0;
    }
    if (now_ms / 1000 != self->window_ms / 1000) {
        self->window_ms = now_ms;
        self->window_lookups = 0;
    }
    if (self->window_lookups >= NETPEER_PROC_LOOKUPS_PER_S) {
        self->stats.proc_deferred++;
        return 0;
    }
    self->window_lookups++;
    c->peer_pid = s_proc_lookup(self, &c->t);
    /* Not found may be early (the peer's socket still in an accept
     * queue has no file yet): tried again a few times. */
    c->resolved = c->peer_pid != 0 || ++c->attempts >= NETPEER_PROC_ATTEMPTS;
    return c->peer_pid;
}

size_t netpeer_expire(netpeer_t *self, uint64_t now_ms, uint64_t max_idle_ms)
{
    uint64_t ids[256];
    size_t n, total = 0;

    /* In rounds: the map must not change while it is walked. */
    do {
        size_t cursor = 0;
        conn_t *c;
        n = 0;
        while (n < 256 && (c = hashmap_next(self->by_id, &cursor)))
            if (now_ms > c->seen_ms + max_idle_ms)
                ids[n++] = c->conn_id;
        for (size_t i = 0; i < n; i++)
            netpeer_close(self, ids[i]);
        total += n;
    } while (n == 256);
    self->stats.expired += total;
    return total;
}

void netpeer_stats(const netpeer_t *self, netpeer_stats_t *out)
{
    *out = self->stats;
    out->conns = hashmap_size(self->by_id);
}
