/* What a query fan-out takes from a peer replica (aggregator/replica/fanout.c):
 * a fake peer on loopback answers with hostile parts — a flame blob whose
 * header claims 256 MiB or whose stream expands past its claim, a valid
 * blob with more nodes than a tree may hold, more process rows than a
 * part may carry, names longer than a replica keeps — and the answer
 * leaves that peer out, says so in partial, and allocates nothing near
 * what the part claims. A view name too long to ask for also says
 * partial instead of silently skipping every peer. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "aggregator/core/agg.h"
#include "aggregator/http/api.h"
#include "aggregator/replica/replica.h"
#include "aggregator/core/flame_blob.h"
#include "testutil.h"

#define MAX_NODES 64

/* ------------------------------------------------------------ fake peer */
static struct {
    int fd;
    int port;
    pthread_t thread;
    unsigned char *body;
    size_t len;
    int requests;
    char last_path[8192];
} P;

static void *s_peer(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(P.fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char head[16384];
        size_t used = 0;
        while (used < sizeof head - 1) {
            ssize_t n = recv(c, head + used, sizeof head - 1 - used, 0);
            if (n <= 0)
                break;
            used += (size_t)n;
            head[used] = '\0';
            if (strstr(head, "\r\n\r\n"))
                break;
        }
        head[used] = '\0';
        __atomic_add_fetch(&P.requests, 1, __ATOMIC_SEQ_CST);
        sscanf(head, "GET %8191s", P.last_path);
        char reply[128];
        int hl = snprintf(reply, sizeof reply, "HTTP/1.0 200 OK\r\n"
                          "Content-Length: %zu\r\n\r\n", P.len);
        if (send(c, reply, (size_t)hl, MSG_NOSIGNAL) == hl) {
            for (size_t off = 0; off < P.len;) {
                ssize_t n = send(c, P.body + off, P.len - off, MSG_NOSIGNAL);
                if (n <= 0)
                    break;
                off += (size_t)n;
            }
        }
        close(c);
    }
}

static stats_t *s_stats;
static agg_t *s_agg;
static agg_replicas_t *s_replicas;
static agg_fanout_t *s_fanout;

static void setup(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    memset(&P, 0, sizeof P);
    P.fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(P.fd, 0);
    ck_assert_int_eq(bind(P.fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(P.fd, 8), 0);
    ck_assert_int_eq(getsockname(P.fd, (struct sockaddr *)&sa, &sl), 0);
    P.port = ntohs(sa.sin_port);
    ck_assert_int_eq(pthread_create(&P.thread, NULL, s_peer, NULL), 0);

    s_stats = stats_new("aggregator", "a1");
    agg_options_t o = { .flush_ms = 1000,
                       .history_ms = 3600000, .max_nodes = MAX_NODES,
                       .stats = s_stats};
    s_agg = agg_new(&o, tu_now_ms());
    s_replicas = agg_replicas_new("a1", 60000);
    ck_assert_ptr_nonnull(s_agg);
    ck_assert_ptr_nonnull(s_replicas);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", P.port);
    wire_agg_peer_t peer = {.instance = "a2", .addr = addr};
    ck_assert_int_eq(agg_replicas_on_peer(s_replicas, &peer, 1, 1), 0);
    s_fanout = agg_fanout_new(s_agg, s_replicas, 5000, AGG_API_MAX_REPLY,
                              NULL);
    ck_assert_ptr_nonnull(s_fanout);
}

static void teardown(void)
{
    agg_fanout_destroy(&s_fanout);
    agg_replicas_destroy(&s_replicas);
    agg_destroy(&s_agg);
    stats_destroy(&s_stats);
    free(P.body);
}

/* ------------------------------------------------------------- helpers */
static void s_put_varint(unsigned char *out, size_t *len, uint64_t v)
{
    do {
        out[(*len)++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

/* A flame blob header claiming claim raw bytes, followed by a zlib stream
 * of zeros bytes of zeros (compressed about 1000:1). */
static void s_bomb(uint64_t claim, size_t zeros)
{
    size_t cap = zeros / 500 + 4096, len = 0;
    unsigned char *blob = malloc(cap);
    static unsigned char zero[1 << 16];
    ck_assert_ptr_nonnull(blob);
    memcpy(blob, "SKFT\x01", 5);
    len = 5;
    s_put_varint(blob, &len, claim);
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(deflateInit(&z, 9), Z_OK);
    z.next_out = blob + len;
    z.avail_out = (uInt)(cap - len);
    for (size_t left = zeros; left;) {
        size_t n = left < sizeof zero ? left : sizeof zero;
        z.next_in = zero;
        z.avail_in = (uInt)n;
        ck_assert_int_eq(deflate(&z, Z_NO_FLUSH), Z_OK);
        left -= n;
    }
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    len = cap - z.avail_out;
    deflateEnd(&z);
    free(P.body);
    P.body = blob;
    P.len = len;
}

static long s_maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static flame_t *s_total(char *partial, size_t plen)
{
    agg_query_t q = {.select = AGG_SEL_TOTAL, .start_ms = 0,
                     .end_ms = UINT64_MAX / 2};
    flame_t *t = agg_fanout_query(s_fanout, &q, partial, plen);
    ck_assert_ptr_nonnull(t);
    return t;
}

/* ---------------------------------------------------------------- tests */
START_TEST(flame_blob_claims_are_not_trusted)
{
    char partial[512];
    long before = s_maxrss_kb();
    /* 255 KiB on the wire that would fill 256 MiB. */
    s_bomb(256u << 20, (256u << 20) - 1);
    ck_assert_uint_lt(P.len, 300u << 10);
    flame_t *t = s_total(partial, sizeof partial);
    ck_assert_msg(strstr(partial, "aggregator a2") &&
                  strstr(partial, "bad raw length"),
                  "partial: %s", partial);
    flame_destroy(&t);

    /* A modest claim over a stream that expands far past it. */
    s_bomb(MAX_NODES * FLAME_BLOB_NODE_BYTES, 64u << 20);
    t = s_total(partial, sizeof partial);
    ck_assert_msg(strstr(partial, "aggregator a2") &&
                  strstr(partial, "bad compressed data"),
                  "partial: %s", partial);
    flame_destroy(&t);
    ck_assert_int_eq(__atomic_load_n(&P.requests, __ATOMIC_SEQ_CST), 2);
    /* Neither part cost more than a few MiB of memory. */
    long grown_kb = s_maxrss_kb() - before;
    ck_assert_msg(grown_kb < 32 * 1024, "RSS grew by %ld KiB", grown_kb);
}
END_TEST

START_TEST(flame_blob_nodes_are_bounded)
{
    char partial[512];
    /* A well-formed blob of a tree larger than a tree here may be. */
    flame_t *big = flame_new("Total", 4 * MAX_NODES);
    for (int i = 0; i < 2 * MAX_NODES; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%d", i);
        const char *names[] = {"[p] app", name};
        uint8_t types[] = {FLAME_PROCESS, FLAME_USER};
        ck_assert_ptr_nonnull(flame_add(big, names, types, 2, 10, 1));
    }
    ck_assert_int_eq(flame_blob_encode(big, &P.body, &P.len), 0);
    flame_destroy(&big);
    flame_t *t = s_total(partial, sizeof partial);
    ck_assert_msg(strstr(partial, "more nodes than allowed"), "partial: %s",
                  partial);
    ck_assert_uint_eq(flame_node_count(t), 1);
    flame_destroy(&t);

    /* Within the bound the part is merged and the answer is whole. */
    big = flame_new("Total", MAX_NODES);
    const char *names[] = {"[p] app", "main"};
    uint8_t types[] = {FLAME_PROCESS, FLAME_USER};
    ck_assert_ptr_nonnull(flame_add(big, names, types, 2, 10, 1));
    free(P.body);
    ck_assert_int_eq(flame_blob_encode(big, &P.body, &P.len), 0);
    flame_destroy(&big);
    t = s_total(partial, sizeof partial);
    ck_assert_str_eq(partial, "");
    ck_assert_uint_eq(flame_node_count(t), 3);
    flame_destroy(&t);
}
END_TEST

/* nrows rows of "app", then one more whose name is name_len bytes. */
static void s_rows_body(size_t nrows, size_t name_len)
{
    size_t cap = (nrows + 1) * 48 + name_len, len = 0;
    char *b = malloc(cap);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i <= nrows; i++)
        len += (size_t)snprintf(b + len, cap - len, "%zu\t1\t1\t0\t5\t1\t%s",
                                i + 1, i < nrows ? "app\tcmd\tnode-b\n" : "");
    memset(b + len, 'n', name_len);
    len += name_len;
    len += (size_t)snprintf(b + len, cap - len, "\tcmd\tnode-b\n");
    free(P.body);
    P.body = (unsigned char *)b;
    P.len = len;
}

/* The merged rows of the fake peer's part; partial filled. */
static void s_processes(agg_prows_t *rows, char *partial, size_t plen)
{
    agg_prows_init(rows);
    ck_assert_int_eq(agg_fanout_processes(s_fanout, 0, UINT64_MAX / 2, rows,
                                          partial, plen), 0);
}

START_TEST(process_rows_are_bounded)
{
    char partial[512];
    agg_prows_t rows;

    /* More rows than a part may carry: the part is dropped. */
    s_rows_body(AGG_FANOUT_MAX_ROWS, 3);
    s_processes(&rows, partial, sizeof partial);
    ck_assert_msg(strstr(partial, "aggregator a2"), "partial: %s", partial);
    ck_assert_uint_eq(rows.n, 0);
    agg_prows_release(&rows);

    /* A name longer than any replica keeps: dropped too. */
    s_rows_body(0, WIRE_MAX_STR + 1);
    s_processes(&rows, partial, sizeof partial);
    ck_assert_msg(strstr(partial, "aggregator a2"), "partial: %s", partial);
    ck_assert_uint_eq(rows.n, 0);
    agg_prows_release(&rows);

    /* At the bounds the part is taken whole. */
    s_rows_body(AGG_FANOUT_MAX_ROWS - 1, WIRE_MAX_STR);
    s_processes(&rows, partial, sizeof partial);
    ck_assert_str_eq(partial, "");
    ck_assert_uint_eq(rows.n, AGG_FANOUT_MAX_ROWS);
    ck_assert_uint_eq(strlen(rows.rows[rows.n - 1].name), WIRE_MAX_STR);
    agg_prows_release(&rows);
}
END_TEST

START_TEST(long_view_names_are_asked_or_partial)
{
    char partial[512], name[AGG_FANOUT_MAX_NAME + 2];
    flame_t *empty = flame_new("app", MAX_NODES);
    ck_assert_int_eq(flame_blob_encode(empty, &P.body, &P.len), 0);
    flame_destroy(&empty);

    /* 200 bytes (over the old limit of 96): the peer is asked for it. */
    memset(name, 'x', 200);
    name[200] = '\0';
    agg_query_t q = {.select = AGG_SEL_NAME, .name = name, .start_ms = 0,
                     .end_ms = UINT64_MAX / 2};
    flame_t *t = agg_fanout_query(s_fanout, &q, partial, sizeof partial);
    ck_assert_ptr_nonnull(t);
    flame_destroy(&t);
    ck_assert_str_eq(partial, "");
    ck_assert_int_eq(__atomic_load_n(&P.requests, __ATOMIC_SEQ_CST), 1);
    ck_assert_ptr_nonnull(strstr(P.last_path, name));

    /* Too long to ask for: no request, and the answer says partial. */
    memset(name, 'y', AGG_FANOUT_MAX_NAME + 1);
    name[AGG_FANOUT_MAX_NAME + 1] = '\0';
    t = agg_fanout_query(s_fanout, &q, partial, sizeof partial);
    ck_assert_ptr_nonnull(t);
    flame_destroy(&t);
    ck_assert_msg(strstr(partial, "aggregator a2 was not asked"),
                  "partial: %s", partial);
    ck_assert_int_eq(__atomic_load_n(&P.requests, __ATOMIC_SEQ_CST), 1);
}
END_TEST

/* Parts another room merges (the network view): each peer's body goes to
 * the callback; one it refuses is named in partial. */
static int s_part_ok(void *arg, const char *body, size_t len)
{
    (void)len;
    ++*(int *)arg;
    return strncmp(body, "{\"connections\"", 14) == 0 ? 0 : -1;
}

START_TEST(parts_go_to_their_room)
{
    char partial[512];
    int calls = 0;
    free(P.body);
    P.body = (unsigned char *)strdup("{\"connections\":1}");
    P.len = strlen((char *)P.body);
    agg_fanout_each(s_fanout, "/api/network?local=1&pid=0", s_part_ok,
                    &calls, partial, sizeof partial);
    ck_assert_int_eq(calls, 1);
    ck_assert_str_eq(partial, "");
    ck_assert_str_eq(P.last_path, "/api/network?local=1&pid=0");
    free(P.body);
    P.body = (unsigned char *)strdup("not a view");
    P.len = strlen((char *)P.body);
    agg_fanout_each(s_fanout, "/api/network?local=1&pid=0", s_part_ok,
                    &calls, partial, sizeof partial);
    ck_assert_int_eq(calls, 2);
    ck_assert_msg(strstr(partial, "aggregator a2") &&
                  strstr(partial, "bad part"), "partial: %s", partial);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fanout");
    TCase *tc = tcase_create("peer parts");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, flame_blob_claims_are_not_trusted);
    tcase_add_test(tc, flame_blob_nodes_are_bounded);
    tcase_add_test(tc, process_rows_are_bounded);
    tcase_add_test(tc, long_view_names_are_asked_or_partial);
    tcase_add_test(tc, parts_go_to_their_room);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
