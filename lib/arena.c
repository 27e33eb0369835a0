#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK_MIN (64u * 1024u)
#define ARENA_DEFAULT_LIMIT ((size_t)256 << 20)

typedef struct arena_block {
    struct arena_block *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
} arena_block_t;

struct arena {
    arena_block_t *head;     /* current block, most recent first */
    size_t limit;
    size_t total;            /* bytes of all blocks */
    size_t used;             /* bytes handed out */
};

arena_t *arena_new(size_t limit)
{
    arena_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->limit = limit ? limit : ARENA_DEFAULT_LIMIT;
    return self;
}

static void s_free_blocks(arena_block_t *b)
{
    while (b) {
        arena_block_t *next = b->next;
        free(b);
        b = next;
    }
}

void arena_destroy(arena_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_free_blocks((*self_p)->head);
    free(*self_p);
    *self_p = NULL;
}

void arena_reset(arena_t *self)
{
    if (!self || !self->head)
        return;
    /* Keep only the oldest (first allocated) block if it is the default
     * size, so steady-state decoding does not call malloc at all. */
    arena_block_t *keep = self->head;
    while (keep->next)
        keep = keep->next;
    arena_block_t *b = self->head;
    while (b != keep) {
        arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    keep->used = 0;
    self->head = keep;
    self->total = keep->size;
    self->used = 0;
}

void *arena_alloc(arena_t *self, size_t size)
{
    if (!self)
        return NULL;
    size_t need = (size + 15u) & ~(size_t)15u;
    if (need < size)
        return NULL;
    if (self->used + need > self->limit || self->used + need < self->used)
        return NULL;
    arena_block_t *b = self->head;
    if (!b || b->size - b->used < need) {
        size_t bsize = need > ARENA_BLOCK_MIN ? need : ARENA_BLOCK_MIN;
        if (b && bsize < b->size * 2 && b->size * 2 <= (16u << 20))
            bsize = b->size * 2;
        arena_block_t *nb = malloc(sizeof *nb + bsize);
        if (!nb)
            return NULL;
        nb->next = b;
        nb->size = bsize;
        nb->used = 0;
        self->head = nb;
        self->total += bsize;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    self->used += need;
    return p;
}

void *arena_calloc(arena_t *self, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t bytes = n * size;
    void *p = arena_alloc(self, bytes ? bytes : 1);
    if (p)
        memset(p, 0, bytes);
    return p;
}

char *arena_strndup(arena_t *self, const char *s, size_t len)
{
    char *p = arena_alloc(self, len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *arena_strdup(arena_t *self, const char *s)
{
    return arena_strndup(self, s, strlen(s));
}

size_t arena_used(const arena_t *self) { return self ? self->used : 0; }
