/* The connection table: (node, conn_id) -> connection, bounded, with the
 * least recently used one evicted (through the room's callback, which
 * closes its protocol state and counts it) when a new one needs room. */
#include <stdlib.h>

#include "aggregator/net/net_int.h"

struct net_conns {
    hashmap_t *map;
    size_t max;
    net_conn_t *head, *tail;   /* most / least recently used */
    net_conn_evict_fn *evict;
    void *arg;
};

typedef struct { uint64_t node_hash, conn_id; } s_key_t;

static int s_match(const void *item, const void *key)
{
    const net_conn_t *c = item;
    const s_key_t *k = key;
    return c->node_hash == k->node_hash && c->conn_id == k->conn_id;
}

static uint64_t s_hash(uint64_t node_hash, uint64_t conn_id)
{
    return hash_split64(node_hash ^ hash_split64(conn_id));
}

net_conns_t *net_conns_new(size_t max, net_conn_evict_fn *evict, void *arg)
{
    net_conns_t *self = NULL;
    if (max < 1 || !evict)
        goto cleanup;
    self = calloc(1, sizeof *self);
    if (!self)
        goto cleanup;
    self->max = max;
    self->evict = evict;
    self->arg = arg;
    self->map = hashmap_new(s_match);
    if (!self->map)
        net_conns_destroy(&self);
cleanup:
    return self;
}

void net_conns_destroy(net_conns_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    net_conns_t *self = *self_p;
    /* the owner closed every connection before; free what is left */
    net_conn_t *c = self->head;
    while (c) {
        net_conn_t *next = c->lru_next;
        free(c);
        c = next;
    }
    hashmap_destroy(&self->map);
    free(self);
    *self_p = NULL;
}

net_conn_t *net_conns_find(net_conns_t *self, uint64_t node_hash,
                           uint64_t conn_id)
{
    s_key_t k = {node_hash, conn_id};
    return hashmap_find(self->map, s_hash(node_hash, conn_id), &k);
}

static void s_unlink(net_conns_t *self, net_conn_t *c)
{
    if (c->lru_prev)
        c->lru_prev->lru_next = c->lru_next;
    else
        self->head = c->lru_next;
    if (c->lru_next)
        c->lru_next->lru_prev = c->lru_prev;
    else
        self->tail = c->lru_prev;
    c->lru_prev = c->lru_next = NULL;
}

static void s_push_front(net_conns_t *self, net_conn_t *c)
{
    c->lru_prev = NULL;
    c->lru_next = self->head;
    if (self->head)
        self->head->lru_prev = c;
    self->head = c;
    if (!self->tail)
        self->tail = c;
}

net_conn_t *net_conns_add(net_conns_t *self, uint64_t node_hash,
                          uint64_t conn_id)
{
    net_conn_t *c = NULL;
    while (hashmap_size(self->map) >= self->max && self->tail) {
        net_conn_t *old = self->tail;
        self->evict(old, self->arg); /* closes it, net_conns_remove */
        if (self->tail == old)
            goto cleanup;            /* an owner that did not: refuse */
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto cleanup;
    c->node_hash = node_hash;
    c->conn_id = conn_id;
    if (hashmap_insert(self->map, s_hash(node_hash, conn_id), c) != 0) {
        free(c);
        c = NULL;
        goto cleanup;
    }
    s_push_front(self, c);
cleanup:
    return c;
}

void net_conns_touch(net_conns_t *self, net_conn_t *c)
{
    if (self->head == c)
        return;
    s_unlink(self, c);
    s_push_front(self, c);
}

void net_conns_remove(net_conns_t *self, net_conn_t *c)
{
    s_key_t k = {c->node_hash, c->conn_id};
    hashmap_remove(self->map, s_hash(c->node_hash, c->conn_id), &k);
    s_unlink(self, c);
    free(c);
}

size_t net_conns_count(const net_conns_t *self)
{
    return hashmap_size(self->map);
}

net_conn_t *net_conns_next(const net_conns_t *self, size_t *cursor)
{
    return hashmap_next(self->map, cursor);
}
