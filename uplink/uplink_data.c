/* The profiling-data protocol: agg.profile stacks buffered and streamed
 * with EBPFProfilingService collectProfilingData. */
#include "uplink_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "profdata.h"

typedef struct {
    uplink_t *self;
    databuf_item_t *item;          /* next to send */
    const char *last_task, *last_proc;
    size_t unresolved;
    uint64_t now_wall;
} s_stream_t;

static const char *
s_resolve(uplink_t *self, const databuf_item_t *item)
{
    if (*item->process_id)
        return item->process_id;
    proc_entry_t *e = proc_table_get(self->procs, item->pid);
    return e ? e->process_id : NULL;
}

static int
s_next_msg(void *arg, const void **data, size_t *len)
{
    s_stream_t *st = arg;
    uplink_t *self = st->self;
    for (; st->item; st->item = st->item->next) {
        const char *proc = s_resolve(self, st->item);
        if (!proc) {
            st->unresolved++;
            continue;
        }
        databuf_item_t *item = st->item;
        st->item = item->next;
        if (st->last_task && !strcmp(st->last_task, item->task_id) &&
            !strcmp(st->last_proc, proc)) {
            *data = item->data;
            *len = item->len;
            return 1;
        }
        /* First message of this task and process in the stream: prefix
         * the metadata (concatenated protobuf messages merge). */
        size_t mlen = profdata_encode_meta(item->task_id, proc, item->start_ms,
                                           st->now_wall, &self->enc,
                                           &self->enc_cap);
        if (!mlen)
            return -1;
        if (mlen + item->len > self->msg_cap) {
            size_t cap = self->msg_cap ? self->msg_cap : 4096;
            while (cap < mlen + item->len)
                cap *= 2;
            uint8_t *grown = realloc(self->msg, cap);
            if (!grown)
                return -1;
            self->msg = grown;
            self->msg_cap = cap;
        }
        memcpy(self->msg, self->enc, mlen);
        memcpy(self->msg + mlen, item->data, item->len);
        st->last_task = item->task_id;
        st->last_proc = proc;
        *data = self->msg;
        *len = mlen + item->len;
        return 1;
    }
    return 0;
}

int
uplink_data_flush(uplink_t *self)
{
    if (self->now < self->next_flush)
        return 0;
    self->next_flush = self->now + self->opts.flush_ms;
    if (!databuf_count(self->buf))
        return 0;
    s_stream_t st = { self, databuf_head(self->buf), NULL, NULL, 0,
                      now_wall_ms() };
    oap_result_t r;
    oap_conn_stream(self->conn, M_COLLECT, s_next_msg, &st, &r);
    uplink_call_t outcome = uplink_account(self, M_COLLECT, &r);
    if (outcome != UPLINK_CALL_DOWN) {
        /* Delivered, or refused for good (resending would be refused
         * again): either way these messages are done. */
        while (databuf_count(self->buf))
            databuf_pop(self->buf);
        stats_add(self->m_no_process, st.unresolved);
        if (st.unresolved)
            log_warn_rl(&self->rl_oap, "uplink: %zu profiling message(s) "
                        "dropped: their process has no OAP id",
                        st.unresolved);
    }
    stats_set(self->m_buffer_bytes, (double)databuf_bytes(self->buf));
    oap_result_clear(&r);
    return outcome == UPLINK_CALL_DOWN ? -1 : 0;
}

void
uplink_data_take_profiles(uplink_t *self, const wire_profile_batch_t *batch)
{
    for (uint32_t p = 0; p < batch->nprofiles; p++) {
        const wire_task_profile_t *tp = &batch->profiles[p];
        if (tp->target != WIRE_TARGET_ON_CPU &&
            tp->target != WIRE_TARGET_OFF_CPU)
            continue;
        const char *proc = tp->process_id ? tp->process_id : "";
        for (uint32_t s = 0; s < tp->nstacks; s++) {
            size_t len = profdata_encode_stack(tp->target, &tp->stacks[s],
                                               &self->enc, &self->enc_cap);
            int dropped = len ? databuf_push(self->buf, tp->task_id, proc,
                                             tp->pid, tp->start_ms, self->enc,
                                             len)
                              : -1;
            if (dropped != 0) {
                stats_add(self->m_buffer_dropped,
                          dropped < 0 ? 1 : (uint64_t)dropped);
                log_warn_rl(&self->rl_input, "uplink: profiling buffer full "
                            "(%" PRIu64 " bytes): oldest data dropped",
                            self->opts.buffer_size);
            }
        }
    }
    stats_set(self->m_buffer_bytes, (double)databuf_bytes(self->buf));
}
