/* Separate debug file lookup; see debugfile.h. */
#include "symbolizer/debugfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"
#include "safe_open.h"

#define DEBUG_PATH_MAX 4096

int
debugfile_crc32(int fd, uint32_t *crc)
{
    int rc = -1;
    unsigned char buf[65536];
    uLong c = crc32(0L, Z_NULL, 0);
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof(buf), off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto cleanup;
        }
        if (n == 0)
            break;
        c = crc32(c, buf, (uInt)n);
        off += n;
    }
    *crc = (uint32_t)c;
    rc = 0;
cleanup:
    return rc;
}

static bool
s_same_build_id(const elfobj_t *obj, const debugfile_query_t *q)
{
    uint8_t id[ELFOBJ_MAX_BUILD_ID];
    size_t len = elfobj_build_id(obj, id);
    return len == q->build_id_len && memcmp(id, q->build_id, len) == 0;
}

/* Opens path (in the root of root_pid, 0 = host) as a debug file
 * candidate. When both sides carry a build-id they must agree, and that
 * settles it; otherwise want_crc asks for the debuglink CRC, computed only
 * when the file is within q->max_crc_size. */
static elfobj_t *
s_try(const char *path, uint32_t root_pid, debugfile_query_t *q,
      bool want_crc)
{
    struct stat st;
    elfobj_t *obj = NULL;
    int fd = safe_open_pid(root_pid, path, 0, &st);
    if (fd < 0)
        goto cleanup;
    /* libelf reads through pread at explicit offsets, so the CRC below
     * may share the descriptor. */
    int crc_fd = fd;
    obj = elfobj_open_fd(fd, path);
    if (!obj)
        goto cleanup;
    uint8_t id[ELFOBJ_MAX_BUILD_ID];
    if (q->build_id_len && elfobj_build_id(obj, id)) {
        if (!s_same_build_id(obj, q)) {
            log_debug("symbolizer: %s: build-id differs, ignored", path);
            elfobj_destroy(&obj);
        }
        goto cleanup;
    }
    if (!want_crc)
        goto cleanup;
    uint32_t crc;
    if (q->max_crc_size && (uint64_t)st.st_size > q->max_crc_size) {
        log_debug("symbolizer: %s: %lld bytes, too large to check its "
                  "debuglink CRC, ignored", path, (long long)st.st_size);
        q->crc_skipped++;
        elfobj_destroy(&obj);
    } else if (debugfile_crc32(crc_fd, &crc) < 0 || crc != q->debuglink_crc) {
        log_debug("symbolizer: %s: debuglink CRC mismatch, ignored", path);
        elfobj_destroy(&obj);
    }
cleanup:
    return obj;
}

/* Tries <dir> + suffix for each dir of the colon-separated debug_dirs
 * list (suffix = suffix_fmt filled with a and b) in the root of root_pid,
 * stopping at the first accepted file. Empty elements are skipped. */
static elfobj_t *
s_each_debug_dir(debugfile_query_t *q, uint32_t root_pid,
                 const char *suffix_fmt, const char *a, const char *b,
                 bool want_crc, char *path, size_t path_size)
{
    elfobj_t *obj = NULL;
    const char *p = q->debug_dirs ? q->debug_dirs : "";
    while (*p && !obj) {
        size_t len = strcspn(p, ":");
        if (len > 0 && len < DEBUG_PATH_MAX) {
            char suffix[DEBUG_PATH_MAX];
            int n = snprintf(suffix, sizeof(suffix), suffix_fmt, a, b);
            if (n > 0 && (size_t)n < sizeof(suffix)) {
                n = snprintf(path, path_size, "%.*s%s", (int)len, p, suffix);
                if (n > 0 && (size_t)n < path_size)
                    obj = s_try(path, root_pid, q, want_crc);
            }
        }
        p += len;
        if (*p == ':')
            p++;
    }
    return obj;
}

static elfobj_t *
s_by_build_id(debugfile_query_t *q, char *path, size_t path_size)
{
    elfobj_t *obj = NULL;
    char hex[2 * ELFOBJ_MAX_BUILD_ID + 1];
    if (q->build_id_len < 2)
        goto cleanup;
    for (size_t i = 0; i < q->build_id_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", q->build_id[i]);
    char head[3] = { hex[0], hex[1], '\0' };
    /* Host debug dirs first (where an operator installs -dbg packages),
     * then the same dirs inside the process's root (a container image
     * that ships its own debug files). */
    obj = s_each_debug_dir(q, 0, "/.build-id/%s/%s.debug", head, hex + 2,
                           false, path, path_size);
    if (!obj && q->root_pid)
        obj = s_each_debug_dir(q, q->root_pid, "/.build-id/%s/%s.debug", head,
                               hex + 2, false, path, path_size);
cleanup:
    return obj;
}

static elfobj_t *
s_by_debuglink(debugfile_query_t *q, char *path, size_t path_size)
{
    elfobj_t *obj = NULL;
    char *copy = NULL;
    if (!q->debuglink || !q->debuglink[0] || !q->bin_path)
        goto cleanup;
    copy = strdup(q->bin_path);
    if (!copy)
        goto cleanup;
    const char *dir = dirname(copy);
    if (strcmp(dir, "/") == 0)
        dir = "";
    int n = snprintf(path, path_size, "%s/%s", dir, q->debuglink);
    if (n > 0 && (size_t)n < path_size)
        obj = s_try(path, q->root_pid, q, true);
    if (!obj) {
        n = snprintf(path, path_size, "%s/.debug/%s", dir, q->debuglink);
        if (n > 0 && (size_t)n < path_size)
            obj = s_try(path, q->root_pid, q, true);
    }
    if (!obj)
        obj = s_each_debug_dir(q, 0, "%s/%s", dir, q->debuglink, true, path,
                               path_size);
    if (!obj && q->root_pid)
        obj = s_each_debug_dir(q, q->root_pid, "%s/%s", dir, q->debuglink,
                               true, path, path_size);
cleanup:
    free(copy);
    return obj;
}

elfobj_t *
debugfile_find(debugfile_query_t *q, char *found_path, size_t found_size)
{
    char path[DEBUG_PATH_MAX];
    elfobj_t *obj = s_by_build_id(q, path, sizeof(path));
    if (!obj)
        obj = s_by_debuglink(q, path, sizeof(path));
    if (obj && found_path && found_size)
        snprintf(found_path, found_size, "%s", path);
    return obj;
}
