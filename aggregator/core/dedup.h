/* Remembers the origins (sender, seq) of recent symbolized batches so a
 * batch that two symbolizer replicas both produced while handing a pid
 * bucket over is counted once. Fixed memory: a ring of the last
 * DEDUP_CAPACITY origins with an open-addressing index. */
#ifndef SKYPROF_AGG_DEDUP_H
#define SKYPROF_AGG_DEDUP_H

#include <stdint.h>

#define DEDUP_CAPACITY 8192

typedef struct origin_dedup origin_dedup_t;

origin_dedup_t *origin_dedup_new(void);
void origin_dedup_destroy(origin_dedup_t **self_p);

/* Returns 1 when (topic, sender, seq) was seen among the recent origins,
 * else records it and returns 0. The topic is part of the key because a
 * sender numbers each topic on its own (a raw batch and the symbolized
 * batch made from it share the pid bucket, so the sym.stacks.BB topic
 * names the raw one). An empty sender is never a duplicate. */
int origin_dedup_check(origin_dedup_t *self, const char *topic,
                       const char *sender, uint64_t seq);

#endif
