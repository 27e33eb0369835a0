/* SQLite history store (see store.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "aggregator/core/flame_blob.h"
#include "aggregator/core/store.h"
#include "log.h"

#define STORE_SCHEMA_VERSION "1"
/* Windows deleted per prune call when over the size limit, so one flush
 * never spends long in the store. */
#define STORE_PRUNE_BATCH 64

struct agg_store {
    sqlite3 *db;
    uint64_t max_bytes;
    char *path;
};

static const char s_schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE IF NOT EXISTS windows("
    "  start_ms INTEGER PRIMARY KEY, end_ms INTEGER NOT NULL,"
    "  procs BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS windows_end ON windows(end_ms);"
    "CREATE TABLE IF NOT EXISTS trees("
    "  start_ms INTEGER NOT NULL, task TEXT NOT NULL, kind INTEGER NOT NULL,"
    "  blob BLOB NOT NULL, PRIMARY KEY(start_ms, task, kind));";

/* mkdir -p for the directory part of path. */
static int
s_mkdirs(const char *path)
{
    int rc = -1;
    char *dir = strdup(path);
    if (!dir)
        goto cleanup;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        rc = 0;
        goto cleanup;
    }
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) && errno != EEXIST)
            goto cleanup;
        *p = '/';
    }
    if (mkdir(dir, 0700) && errno != EEXIST)
        goto cleanup;
    rc = 0;
cleanup:
    free(dir);
    return rc;
}

static int
s_exec(agg_store_t *self, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(self->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_warn("store %s: %s: %s", self->path, sql,
                 msg ? msg : sqlite3_errmsg(self->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int64_t
s_pragma_int(agg_store_t *self, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) == SQLITE_OK
        && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

agg_store_t *
agg_store_open(const char *path, uint64_t max_bytes, char *err, size_t errlen)
{
    agg_store_t *self = NULL;
    sqlite3_stmt *st = NULL;
    const char *why = NULL;

    self = calloc(1, sizeof(*self));
    if (!self || !(self->path = strdup(path))) {
        why = "out of memory";
        goto cleanup;
    }
    self->max_bytes = max_bytes;
    if (s_mkdirs(path)) {
        why = strerror(errno);
        goto cleanup;
    }
    if (sqlite3_open_v2(path, &self->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                            | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        why = self->db ? sqlite3_errmsg(self->db) : "cannot open";
        goto cleanup;
    }
    sqlite3_busy_timeout(self->db, 1000);
    /* Incremental vacuum only takes effect on a new file: it lets pruning
     * return space to the file system without a full VACUUM. */
    sqlite3_exec(self->db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(self->db, "PRAGMA quick_check", -1, &st, NULL)
            != SQLITE_OK
        || sqlite3_step(st) != SQLITE_ROW) {
        why = sqlite3_errmsg(self->db);
        goto cleanup;
    }
    const unsigned char *check = sqlite3_column_text(st, 0);
    if (!check || strcmp((const char *)check, "ok") != 0) {
        why = "integrity check failed";
        goto cleanup;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (s_exec(self, "PRAGMA journal_mode=WAL")
        || s_exec(self, "PRAGMA synchronous=NORMAL")
        || s_exec(self, s_schema)) {
        why = sqlite3_errmsg(self->db);
        goto cleanup;
    }
    if (sqlite3_prepare_v2(self->db,
                           "SELECT value FROM meta WHERE key='schema'", -1,
                           &st, NULL) != SQLITE_OK) {
        why = sqlite3_errmsg(self->db);
        goto cleanup;
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        if (!v || strcmp((const char *)v, STORE_SCHEMA_VERSION) != 0) {
            why = "unknown schema version";
            goto cleanup;
        }
    } else if (s_exec(self, "INSERT INTO meta VALUES('schema','"
                            STORE_SCHEMA_VERSION "')")) {
        /* A read-only file fails here, after the checks passed. */
        why = sqlite3_errmsg(self->db);
        goto cleanup;
    }
cleanup:
    sqlite3_finalize(st);
    if (why) {
        snprintf(err, errlen, "%s: %s", path, why);
        agg_store_destroy(&self);
    }
    return self;
}

void
agg_store_destroy(agg_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    agg_store_t *self = *self_p;
    if (self->db)
        sqlite3_close(self->db);
    free(self->path);
    free(self);
    *self_p = NULL;
}

static int
s_put_tree(agg_store_t *self, sqlite3_stmt *st, int64_t start,
           const char *task, int kind, const flame_t *tree)
{
    unsigned char *blob = NULL;
    size_t len = 0;
    int rc = -1;
    if (flame_blob_encode(tree, &blob, &len))
        goto cleanup;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, start);
    sqlite3_bind_text(st, 2, task, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, kind);
    sqlite3_bind_blob(st, 4, blob, (int)len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        log_warn("store %s: %s", self->path, sqlite3_errmsg(self->db));
        goto cleanup;
    }
    rc = 0;
cleanup:
    free(blob);
    return rc;
}

int
agg_store_put(agg_store_t *self, const agg_window_t *w)
{
    int rc = -1, in_tx = 0;
    sqlite3_stmt *win = NULL, *tree = NULL;
    unsigned char *procs = NULL;
    size_t procs_len = 0;
    int64_t start = (int64_t)agg_window_start(w);

    if (agg_window_procs_encode(w, &procs, &procs_len))
        goto cleanup;
    if (s_exec(self, "BEGIN"))
        goto cleanup;
    in_tx = 1;
    if (sqlite3_prepare_v2(self->db,
                           "INSERT OR REPLACE INTO windows VALUES(?,?,?)", -1,
                           &win, NULL) != SQLITE_OK
        || sqlite3_prepare_v2(self->db,
                              "INSERT OR REPLACE INTO trees VALUES(?,?,?,?)",
                              -1, &tree, NULL) != SQLITE_OK) {
        log_warn("store %s: %s", self->path, sqlite3_errmsg(self->db));
        goto cleanup;
    }
    sqlite3_bind_int64(win, 1, start);
    sqlite3_bind_int64(win, 2, (int64_t)agg_window_end(w));
    sqlite3_bind_blob(win, 3, procs, (int)procs_len, SQLITE_STATIC);
    if (sqlite3_step(win) != SQLITE_DONE) {
        log_warn("store %s: %s", self->path, sqlite3_errmsg(self->db));
        goto cleanup;
    }
    for (int k = 0; k < AGG_KINDS; k++) {
        const flame_t *host = agg_window_host(w, k);
        /* An empty tree is implied by its absence. */
        if (flame_node_count(host) > 1
            && s_put_tree(self, tree, start, "", k, host))
            goto cleanup;
    }
    for (size_t i = 0; i < agg_window_ntasks(w); i++) {
        const agg_wtask_t *t = agg_window_task(w, i);
        for (int k = 0; k < AGG_KINDS; k++)
            if (t->tree[k]
                && s_put_tree(self, tree, start, t->task_id, k, t->tree[k]))
                goto cleanup;
    }
    if (s_exec(self, "COMMIT"))
        goto cleanup;
    in_tx = 0;
    rc = 0;
cleanup:
    sqlite3_finalize(win);
    sqlite3_finalize(tree);
    if (in_tx)
        sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
    free(procs);
    return rc;
}

uint64_t
agg_store_size(agg_store_t *self)
{
    int64_t pages = s_pragma_int(self, "PRAGMA page_count");
    int64_t free_pages = s_pragma_int(self, "PRAGMA freelist_count");
    int64_t size = s_pragma_int(self, "PRAGMA page_size");
    if (pages < 0 || size < 0)
        return 0;
    if (free_pages > 0 && free_pages <= pages)
        pages -= free_pages;
    return (uint64_t)pages * (uint64_t)size;
}

static long
s_delete_where(agg_store_t *self, const char *cond, int64_t arg)
{
    char sql[256];
    sqlite3_stmt *st = NULL;
    long deleted = -1;
    snprintf(sql, sizeof(sql),
             "DELETE FROM trees WHERE start_ms IN "
             "(SELECT start_ms FROM windows WHERE %s)", cond);
    if (sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) != SQLITE_OK)
        goto cleanup;
    sqlite3_bind_int64(st, 1, arg);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto cleanup;
    sqlite3_finalize(st);
    snprintf(sql, sizeof(sql), "DELETE FROM windows WHERE %s", cond);
    if (sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) != SQLITE_OK)
        goto cleanup;
    sqlite3_bind_int64(st, 1, arg);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto cleanup;
    deleted = sqlite3_changes(self->db);
cleanup:
    if (deleted < 0)
        log_warn("store %s: prune: %s", self->path, sqlite3_errmsg(self->db));
    sqlite3_finalize(st);
    return deleted;
}

long
agg_store_prune(agg_store_t *self, uint64_t cutoff_ms)
{
    long total = s_delete_where(self, "end_ms < ?1", (int64_t)cutoff_ms);
    if (total < 0)
        return -1;
    while (self->max_bytes && agg_store_size(self) > self->max_bytes) {
        long n = s_delete_where(self,
                                "start_ms IN (SELECT start_ms FROM windows "
                                "ORDER BY start_ms LIMIT ?1)",
                                STORE_PRUNE_BATCH);
        if (n <= 0)
            break;
        total += n;
    }
    if (total > 0)
        sqlite3_exec(self->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
    return total;
}

static void
s_load_trees(agg_store_t *self, agg_window_t *w, int64_t start,
             uint64_t *bad)
{
    sqlite3_stmt *st = NULL;
    char err[128];
    if (sqlite3_prepare_v2(self->db,
                           "SELECT task, kind, blob FROM trees "
                           "WHERE start_ms = ?", -1, &st, NULL) != SQLITE_OK) {
        (*bad)++;
        goto cleanup;
    }
    sqlite3_bind_int64(st, 1, start);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *task = (const char *)sqlite3_column_text(st, 0);
        int kind = sqlite3_column_int(st, 1);
        const void *blob = sqlite3_column_blob(st, 2);
        int len = sqlite3_column_bytes(st, 2);
        flame_t *tree = blob ? flame_blob_decode(blob, (size_t)len, err,
                                                 sizeof(err))
                             : NULL;
        if (!tree || !task || kind < 0 || kind >= AGG_KINDS) {
            log_warn("store %s: window %lld: skipped a tree: %s", self->path,
                     (long long)start, tree ? "bad key" : err);
            flame_destroy(&tree);
            (*bad)++;
            continue;
        }
        int rc = *task ? agg_window_set_task(w, task, kind, tree)
                       : agg_window_set_host(w, kind, tree);
        if (rc)
            (*bad)++;
    }
cleanup:
    sqlite3_finalize(st);
}

long
agg_store_load(agg_store_t *self, uint64_t since_ms, size_t max_nodes,
               agg_store_window_fn fn, void *arg, uint64_t *bad)
{
    sqlite3_stmt *st = NULL;
    long loaded = -1;
    if (sqlite3_prepare_v2(self->db,
                           "SELECT start_ms, end_ms, procs FROM windows "
                           "WHERE end_ms >= ? ORDER BY start_ms", -1, &st,
                           NULL) != SQLITE_OK) {
        log_warn("store %s: %s", self->path, sqlite3_errmsg(self->db));
        goto cleanup;
    }
    sqlite3_bind_int64(st, 1, (int64_t)since_ms);
    loaded = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t start = sqlite3_column_int64(st, 0);
        int64_t end = sqlite3_column_int64(st, 1);
        const void *procs = sqlite3_column_blob(st, 2);
        int plen = sqlite3_column_bytes(st, 2);
        if (start < 0 || end < start) {
            (*bad)++;
            continue;
        }
        agg_window_t *w = agg_window_new((uint64_t)start, max_nodes);
        if (!w)
            break;
        if (plen > 0 && agg_window_procs_decode(w, procs, (size_t)plen)) {
            log_warn("store %s: window %lld: bad process table", self->path,
                     (long long)start);
            (*bad)++;
        }
        s_load_trees(self, w, start, bad);
        agg_window_close(w, (uint64_t)end);
        fn(arg, w);
        loaded++;
    }
    if (step != SQLITE_DONE && step != SQLITE_ROW) {
        log_warn("store %s: load: %s", self->path, sqlite3_errmsg(self->db));
        (*bad)++;
    }
cleanup:
    sqlite3_finalize(st);
    return loaded;
}
