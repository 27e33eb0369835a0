/* gRPC core client for the OAP: see oap_conn.h. */
#include "oap_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "log.h"

/* PEM files larger than this are not certificates. */
#define OAP_MAX_PEM_BYTES (1u << 20)
/* Extra wait past the call deadline before we cancel the call ourselves:
 * grpc normally ends the call at its deadline, this only guards a stuck
 * completion. */
#define OAP_PLUCK_MARGIN_MS 2000

struct oap_conn {
    char *addr;
    char *auth_token;              /* NULL when none */
    uint64_t timeout_ms;
    grpc_channel_credentials *creds;
    grpc_channel *channel;         /* NULL until dialled / after reset */
    grpc_completion_queue *cq;
    bool grpc_started;
};

static const char *const s_status_names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"
};

const char *
oap_status_name(int status)
{
    if (status < 0 || (size_t)status >= sizeof s_status_names /
                                            sizeof s_status_names[0])
        return "UNKNOWN";
    return s_status_names[status];
}

void
oap_result_clear(oap_result_t *result)
{
    if (!result)
        return;
    free(result->reply);
    memset(result, 0, sizeof *result);
}

/* Reads a whole PEM file; NULL with a logged reason on failure. */
static char *
s_read_pem(const char *path)
{
    char *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        log_error("uplink: cannot open %s: %s", path, strerror(errno));
        goto cleanup;
    }
    text = malloc(OAP_MAX_PEM_BYTES + 1);
    if (!text) {
        log_error("uplink: out of memory reading %s", path);
        goto cleanup;
    }
    size_t n = fread(text, 1, OAP_MAX_PEM_BYTES + 1, f);
    if (n == 0 || n > OAP_MAX_PEM_BYTES) {
        log_error("uplink: %s is empty or larger than %u bytes", path,
                  OAP_MAX_PEM_BYTES);
        free(text);
        text = NULL;
        goto cleanup;
    }
    text[n] = '\0';
cleanup:
    if (f)
        fclose(f);
    return text;
}

static bool
s_set(const char *s)
{
    return s && *s;
}

/* Skip-verify uses the TLS credentials API with a no-op verifier: grpc's
 * classic SSL credentials always verify the chain, their verify_peer
 * callback only adds checks on top. */
static grpc_channel_credentials *
s_tls_credentials(const oap_conn_options_t *opts)
{
    grpc_channel_credentials *creds = NULL;
    char *ca = NULL, *cert = NULL, *key = NULL;

    if (s_set(opts->ca_path) && !(ca = s_read_pem(opts->ca_path)))
        goto cleanup;
    if (s_set(opts->cert_path) != s_set(opts->key_path)) {
        log_error("uplink: mutual TLS needs both core.backend.client_pem_path"
                  " and core.backend.client_key_path");
        goto cleanup;
    }
    if (s_set(opts->cert_path)) {
        if (!(cert = s_read_pem(opts->cert_path)) ||
            !(key = s_read_pem(opts->key_path)))
            goto cleanup;
    }
    if (!opts->skip_verify) {
        grpc_ssl_pem_key_cert_pair pair = { key, cert };
        creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL,
                                            NULL);
    } else {
        grpc_tls_credentials_options *tls = grpc_tls_credentials_options_create();
        grpc_tls_certificate_verifier *verifier =
            grpc_tls_certificate_verifier_no_op_create();
        grpc_tls_credentials_options_set_verify_server_cert(tls, 0);
        grpc_tls_credentials_options_set_check_call_host(tls, 0);
        grpc_tls_credentials_options_set_certificate_verifier(tls, verifier);
        grpc_tls_certificate_verifier_release(verifier);
        if (cert || ca) {
            grpc_tls_identity_pairs *pairs = NULL;
            if (cert) {
                pairs = grpc_tls_identity_pairs_create();
                grpc_tls_identity_pairs_add_pair(pairs, key, cert);
            }
            grpc_tls_certificate_provider *provider =
                grpc_tls_certificate_provider_static_data_create(ca, pairs);
            grpc_tls_credentials_options_set_certificate_provider(tls,
                                                                  provider);
            grpc_tls_certificate_provider_release(provider);
            if (cert)
                grpc_tls_credentials_options_watch_identity_key_cert_pairs(tls);
            if (ca)
                grpc_tls_credentials_options_watch_root_certs(tls);
        }
        creds = grpc_tls_credentials_create(tls);
    }
    if (!creds)
        log_error("uplink: grpc refused the TLS credentials");
cleanup:
    free(ca);
    free(cert);
    free(key);
    return creds;
}

oap_conn_t *
oap_conn_new(const oap_conn_options_t *opts)
{
    oap_conn_t *self = calloc(1, sizeof *self);
    if (!self)
        goto fail;
    grpc_init();
    self->grpc_started = true;
    self->addr = strdup(opts->addr ? opts->addr : "");
    if (!self->addr)
        goto fail;
    if (s_set(opts->auth_token) &&
        !(self->auth_token = strdup(opts->auth_token)))
        goto fail;
    self->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 5000;
    self->creds = opts->tls ? s_tls_credentials(opts)
                            : grpc_insecure_credentials_create();
    if (!self->creds)
        goto fail;
    self->cq = grpc_completion_queue_create_for_pluck(NULL);
    if (!self->cq)
        goto fail;
    return self;
fail:
    oap_conn_destroy(&self);
    return NULL;
}

void
oap_conn_destroy(oap_conn_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    oap_conn_t *self = *self_p;
    oap_conn_reset(self);
    if (self->cq) {
        grpc_completion_queue_shutdown(self->cq);
        /* Drain until the shutdown event: nothing is outstanding because
         * every call is waited for, so this returns at once. */
        for (;;) {
            grpc_event ev = grpc_completion_queue_pluck(
                self->cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            if (ev.type == GRPC_QUEUE_SHUTDOWN)
                break;
        }
        grpc_completion_queue_destroy(self->cq);
    }
    if (self->creds)
        grpc_channel_credentials_release(self->creds);
    free(self->addr);
    free(self->auth_token);
    if (self->grpc_started)
        grpc_shutdown();
    free(self);
    *self_p = NULL;
}

void
oap_conn_reset(oap_conn_t *self)
{
    if (self && self->channel) {
        grpc_channel_destroy(self->channel);
        self->channel = NULL;
    }
}

static int
s_dial(oap_conn_t *self)
{
    /* Our reconnect backoff is the one that matters; keep grpc's own
     * bounded by the same ~30 s cap, and never let grpc retry a call by
     * itself (a retried stream would duplicate profiling data). */
    grpc_arg args[] = {
        { .type = GRPC_ARG_INTEGER,
          .key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
          .value.integer = 30000 },
        { .type = GRPC_ARG_INTEGER,
          .key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
          .value.integer = 1000 },
        { .type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_ENABLE_RETRIES,
          .value.integer = 0 },
    };
    grpc_channel_args chargs = { sizeof args / sizeof args[0], args };
    self->channel = grpc_channel_create(self->addr, self->creds, &chargs);
    return self->channel ? 0 : -1;
}

static gpr_timespec
s_deadline(uint64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_millis((int64_t)ms, GPR_TIMESPAN));
}

/* Waits for one tag; on a stuck completion cancels the call and waits for
 * the tag anyway, since a completion queue must see every tag it was
 * given. Returns the batch's success flag. */
static int
s_wait(oap_conn_t *self, grpc_call *call, void *tag)
{
    gpr_timespec until = s_deadline(self->timeout_ms + OAP_PLUCK_MARGIN_MS);
    grpc_event ev = grpc_completion_queue_pluck(self->cq, tag, until, NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) {
        grpc_call_cancel(call, NULL);
        ev = grpc_completion_queue_pluck(
            self->cq, tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    }
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static grpc_call *
s_new_call(oap_conn_t *self, const char *method)
{
    if (!self->channel && s_dial(self) != 0)
        return NULL;
    grpc_slice path = grpc_slice_from_copied_string(method);
    grpc_call *call = grpc_channel_create_call(
        self->channel, NULL, GRPC_PROPAGATE_DEFAULTS, self->cq, path, NULL,
        s_deadline(self->timeout_ms), NULL);
    grpc_slice_unref(path);
    return call;
}

static void
s_fill_metadata(oap_conn_t *self, grpc_metadata *md, size_t *count)
{
    *count = 0;
    if (self->auth_token) {
        memset(md, 0, sizeof *md);
        md->key = grpc_slice_from_static_string("authentication");
        md->value = grpc_slice_from_static_string(self->auth_token);
        *count = 1;
    }
}

static grpc_byte_buffer *
s_buffer_from(const void *data, size_t len)
{
    grpc_slice slice = grpc_slice_from_copied_buffer(data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

/* Copies a received message out of grpc; leaves reply NULL when there is
 * none (a failed call). Returns -1 only when out of memory. */
static int
s_take_reply(grpc_byte_buffer *bb, oap_result_t *result)
{
    if (!bb)
        return 0;
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return 0;
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    size_t len = GRPC_SLICE_LENGTH(all);
    int rc = 0;
    result->reply = malloc(len ? len : 1);
    if (result->reply) {
        memcpy(result->reply, GRPC_SLICE_START_PTR(all), len);
        result->reply_len = len;
    } else {
        rc = -1;
    }
    grpc_slice_unref(all);
    grpc_byte_buffer_reader_destroy(&reader);
    return rc;
}

static void
s_take_details(grpc_slice details, oap_result_t *result)
{
    size_t len = GRPC_SLICE_LENGTH(details);
    if (len >= sizeof result->details)
        len = sizeof result->details - 1;
    memcpy(result->details, GRPC_SLICE_START_PTR(details), len);
    result->details[len] = '\0';
}

int
oap_conn_unary(oap_conn_t *self, const char *method, const void *req,
               size_t req_len, oap_result_t *result)
{
    memset(result, 0, sizeof *result);
    result->status = OAP_STATUS_LOCAL_FAILURE;
    grpc_metadata md;
    size_t nmd;
    grpc_metadata_array initial_md, trailing_md;
    grpc_byte_buffer *send_bb = NULL, *recv_bb = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);

    grpc_call *call = s_new_call(self, method);
    if (!call) {
        snprintf(result->details, sizeof result->details,
                 "cannot create a call to %s", self->addr);
        goto cleanup;
    }
    send_bb = s_buffer_from(req, req_len);
    s_fill_metadata(self, &md, &nmd);

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = nmd;
    ops[0].data.send_initial_metadata.metadata = nmd ? &md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;

    void *tag = (void *)(uintptr_t)1;
    if (grpc_call_start_batch(call, ops, 6, tag, NULL) != GRPC_CALL_OK) {
        snprintf(result->details, sizeof result->details,
                 "grpc refused the call batch");
        goto cleanup;
    }
    s_wait(self, call, tag);
    result->status = (int)status;
    s_take_details(details, result);
    if (status == GRPC_STATUS_OK) {
        result->messages_sent = 1;
        result->bytes_sent = req_len;
        if (s_take_reply(recv_bb, result) != 0) {
            result->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
            snprintf(result->details, sizeof result->details,
                     "out of memory copying the reply");
        }
    }
cleanup:
    if (send_bb)
        grpc_byte_buffer_destroy(send_bb);
    if (recv_bb)
        grpc_byte_buffer_destroy(recv_bb);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    if (call)
        grpc_call_unref(call);
    return result->status == GRPC_STATUS_OK ? 0 : -1;
}

int
oap_conn_stream(oap_conn_t *self, const char *method, oap_next_msg_fn next,
                void *arg, oap_result_t *result)
{
    memset(result, 0, sizeof *result);
    result->status = OAP_STATUS_LOCAL_FAILURE;
    grpc_metadata md;
    size_t nmd;
    grpc_metadata_array initial_md, trailing_md;
    grpc_byte_buffer *recv_bb = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    bool status_started = false, aborted = false;
    void *const tag_status = (void *)(uintptr_t)1;
    void *const tag_step = (void *)(uintptr_t)2;
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);

    grpc_call *call = s_new_call(self, method);
    if (!call) {
        snprintf(result->details, sizeof result->details,
                 "cannot create a call to %s", self->addr);
        goto cleanup;
    }
    s_fill_metadata(self, &md, &nmd);

    /* The status batch runs on its own so the call's end is always
     * observed, whatever happens to the sends. */
    grpc_op op_status;
    memset(&op_status, 0, sizeof op_status);
    op_status.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op_status.data.recv_status_on_client.trailing_metadata = &trailing_md;
    op_status.data.recv_status_on_client.status = &status;
    op_status.data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(call, &op_status, 1, tag_status, NULL) !=
        GRPC_CALL_OK)
        goto cleanup;
    status_started = true;

    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    op.data.send_initial_metadata.count = nmd;
    op.data.send_initial_metadata.metadata = nmd ? &md : NULL;
    bool ok = grpc_call_start_batch(call, &op, 1, tag_step, NULL) ==
                  GRPC_CALL_OK &&
              s_wait(self, call, tag_step);

    size_t sent = 0, bytes = 0;
    while (ok) {
        const void *data;
        size_t len;
        int more = next(arg, &data, &len);
        if (more <= 0) {
            aborted = more < 0;
            break;
        }
        grpc_byte_buffer *bb = s_buffer_from(data, len);
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_SEND_MESSAGE;
        op.data.send_message.send_message = bb;
        ok = grpc_call_start_batch(call, &op, 1, tag_step, NULL) ==
                 GRPC_CALL_OK &&
             s_wait(self, call, tag_step);
        grpc_byte_buffer_destroy(bb);
        if (ok) {
            sent++;
            bytes += len;
        }
    }
    if (aborted) {
        grpc_call_cancel(call, NULL);
    } else if (ok) {
        grpc_op fin[3];
        memset(fin, 0, sizeof fin);
        fin[0].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        fin[1].op = GRPC_OP_RECV_INITIAL_METADATA;
        fin[1].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
        fin[2].op = GRPC_OP_RECV_MESSAGE;
        fin[2].data.recv_message.recv_message = &recv_bb;
        if (grpc_call_start_batch(call, fin, 3, tag_step, NULL) ==
            GRPC_CALL_OK)
            s_wait(self, call, tag_step);
        else
            grpc_call_cancel(call, NULL);
    } else {
        grpc_call_cancel(call, NULL);
    }
    s_wait(self, call, tag_status);
    result->status = aborted ? GRPC_STATUS_CANCELLED : (int)status;
    s_take_details(details, result);
    result->messages_sent = sent;
    result->bytes_sent = bytes;
    if (result->status == GRPC_STATUS_OK &&
        s_take_reply(recv_bb, result) != 0)
        result->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
    status_started = false;
cleanup:
    if (status_started) {
        grpc_call_cancel(call, NULL);
        s_wait(self, call, tag_status);
    }
    if (recv_bb)
        grpc_byte_buffer_destroy(recv_bb);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    if (call)
        grpc_call_unref(call);
    return result->status == GRPC_STATUS_OK ? 0 : -1;
}
