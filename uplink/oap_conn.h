/* One gRPC channel to the SkyWalking OAP and the two call shapes the
 * protocol needs (unary and client streaming), driven synchronously on a
 * pluck completion queue with a per-call deadline.
 *
 * The calls block the calling thread for at most the configured deadline;
 * the uplink runs them from its loop thread (see uplink/README.md for why that
 * is acceptable). Messages go in and out as serialized protobuf bytes so
 * this file knows nothing about the schemas. */
#ifndef SKYPROF_UPLINK_OAP_CONN_H
#define SKYPROF_UPLINK_OAP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct oap_conn oap_conn_t;

typedef struct {
    const char *addr;          /* host:port */
    bool tls;
    const char *ca_path;       /* "" or NULL: system roots */
    const char *cert_path;     /* client certificate (mTLS), optional */
    const char *key_path;
    bool skip_verify;
    const char *auth_token;    /* "" or NULL: no authentication metadata */
    uint64_t timeout_ms;       /* deadline of each call */
} oap_conn_options_t;

/* Status of a call that never reached the transport (no channel, bad
 * credentials): reported like UNAVAILABLE by callers. */
#define OAP_STATUS_LOCAL_FAILURE 14

/* Fills the next message of a client stream: 1 with data/len set (valid
 * until the next call), 0 at the end of the stream, -1 to abort. */
typedef int (*oap_next_msg_fn)(void *arg, const void **data, size_t *len);

typedef struct {
    int status;                /* grpc_status_code */
    char details[256];
    uint8_t *reply;            /* malloc'ed response message or NULL */
    size_t reply_len;
    size_t messages_sent;
    size_t bytes_sent;
} oap_result_t;

/* Returns NULL when the options are unusable (unreadable PEM files). The
 * channel itself connects lazily. */
oap_conn_t *oap_conn_new(const oap_conn_options_t *opts);
void oap_conn_destroy(oap_conn_t **self_p);

/* Forget the channel: the next call dials afresh. Used after a failure so
 * the uplink's own backoff, not grpc's internal one, paces reconnects. */
void oap_conn_reset(oap_conn_t *self);

/* Both return 0 when the call completed with status OK, -1 otherwise;
 * result holds the status either way. Free result->reply with
 * oap_result_clear. method is the full path "/pkg.Service/Method". */
int oap_conn_unary(oap_conn_t *self, const char *method, const void *req,
                   size_t req_len, oap_result_t *result);
int oap_conn_stream(oap_conn_t *self, const char *method,
                    oap_next_msg_fn next, void *arg, oap_result_t *result);

void oap_result_clear(oap_result_t *result);

/* "OK", "UNAVAILABLE", ... for counters and logs. */
const char *oap_status_name(int status);

#endif
