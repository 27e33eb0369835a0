/* Bounded FIFO of encoded profiling data: see databuf.h. */
#include "databuf.h"

#include <stdlib.h>
#include <string.h>

struct databuf {
    databuf_item_t *head, *tail;
    size_t bytes, count, cap;
};

databuf_t *
databuf_new(size_t cap)
{
    databuf_t *self = calloc(1, sizeof *self);
    if (self)
        self->cap = cap ? cap : (4u << 20);
    return self;
}

void
databuf_destroy(databuf_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    databuf_t *self = *self_p;
    while (self->head)
        databuf_pop(self);
    free(self);
    *self_p = NULL;
}

int
databuf_push(databuf_t *self, const char *task_id, const char *process_id,
             uint32_t pid, uint64_t start_ms, const void *data, size_t len)
{
    size_t tlen = strlen(task_id), plen = strlen(process_id);
    /* One allocation per item: header, payload, then both strings. */
    size_t cost = sizeof(databuf_item_t) + len + tlen + plen + 2;
    if (cost > self->cap)
        return -1;
    databuf_item_t *item = malloc(cost);
    if (!item)
        return -1;
    uint8_t *payload = (uint8_t *)(item + 1);
    char *tid = (char *)payload + len;
    char *prid = tid + tlen + 1;
    memcpy(payload, data, len);
    memcpy(tid, task_id, tlen + 1);
    memcpy(prid, process_id, plen + 1);
    *item = (databuf_item_t){ NULL, tid, prid, pid, start_ms, len, cost,
                              payload };
    int dropped = 0;
    while (self->bytes + cost > self->cap && self->head) {
        databuf_pop(self);
        dropped++;
    }
    if (self->tail)
        self->tail->next = item;
    else
        self->head = item;
    self->tail = item;
    self->bytes += cost;
    self->count++;
    return dropped;
}

databuf_item_t *
databuf_head(const databuf_t *self)
{
    return self->head;
}

void
databuf_pop(databuf_t *self)
{
    databuf_item_t *item = self->head;
    if (!item)
        return;
    self->head = item->next;
    if (!self->head)
        self->tail = NULL;
    self->bytes -= item->cost;
    self->count--;
    free(item);
}

size_t
databuf_bytes(const databuf_t *self)
{
    return self->bytes;
}

size_t
databuf_count(const databuf_t *self)
{
    return self->count;
}

size_t
databuf_cap(const databuf_t *self)
{
    return self->cap;
}
