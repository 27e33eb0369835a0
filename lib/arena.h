/* Bump allocator for decoded messages: everything a decoded batch points at
 * lives in one arena and is freed at once. Bounded: an arena refuses to grow
 * past its limit, so a hostile message cannot make a stage allocate without
 * bound. */
#ifndef SKYPROF_ARENA_H
#define SKYPROF_ARENA_H

#include <stddef.h>

typedef struct arena arena_t;

/* limit: most bytes the arena may hold in total (0 = 256 MiB). */
arena_t *arena_new(size_t limit);
void arena_destroy(arena_t **self_p);
/* Forget every allocation but keep the first block for reuse. */
void arena_reset(arena_t *self);
/* 16-byte aligned; NULL when the limit would be passed or malloc fails. */
void *arena_alloc(arena_t *self, size_t size);
void *arena_calloc(arena_t *self, size_t n, size_t size);
char *arena_strndup(arena_t *self, const char *s, size_t len);
char *arena_strdup(arena_t *self, const char *s);
size_t arena_used(const arena_t *self);

#endif
