/* The bounded buffer of profiling data waiting for the OAP: encoded
 * EBPFProfilingData messages (without task metadata, which is added when a
 * stream is built) in arrival order. Holds at most `cap` bytes counting
 * each item's payload, strings and bookkeeping; pushing past the cap drops
 * the oldest items first, so memory stays bounded however long the OAP is
 * away and the newest profiles survive. */
#ifndef SKYPROF_UPLINK_DATABUF_H
#define SKYPROF_UPLINK_DATABUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct databuf_item {
    struct databuf_item *next;
    const char *task_id;
    const char *process_id;    /* "" : resolve by pid when sending */
    uint32_t pid;
    uint64_t start_ms;         /* profilingStartTime */
    size_t len;
    size_t cost;               /* bytes charged against the cap */
    const uint8_t *data;
} databuf_item_t;

typedef struct databuf databuf_t;

databuf_t *databuf_new(size_t cap);
void databuf_destroy(databuf_t **self_p);

/* Appends a copy. Returns how many older items were dropped to make room
 * (0 or more), or -1 when the item itself cannot be kept (larger than the
 * cap, or out of memory); the caller counts both as drops. */
int databuf_push(databuf_t *self, const char *task_id, const char *process_id,
                 uint32_t pid, uint64_t start_ms, const void *data,
                 size_t len);

databuf_item_t *databuf_head(const databuf_t *self);
void databuf_pop(databuf_t *self);

size_t databuf_bytes(const databuf_t *self);
size_t databuf_count(const databuf_t *self);
size_t databuf_cap(const databuf_t *self);

#endif
