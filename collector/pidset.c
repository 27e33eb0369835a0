/* A probe's process set and its two maps; see pidset.h. */
#include "collector/pidset.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PID_MAX_LIMIT of 64-bit kernels: the bitmap never needs more. */
#define PIDSET_MAX_PIDS (1u << 22)

struct pidset {
    uint32_t *pids;            /* sorted */
    size_t n;
    int bits_fd, pids_fd;      /* -1: not bound */
    uint32_t nwords;           /* the bitmap covers tgids < 64 * nwords */
};

pidset_t *pidset_new(void)
{
    pidset_t *self = calloc(1, sizeof(*self));

    if (!self)
        return NULL;
    self->bits_fd = -1;
    self->pids_fd = -1;
    return self;
}

void pidset_destroy(pidset_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->pids);
    free(*self_p);
    *self_p = NULL;
}

uint32_t pidset_pid_max(void)
{
    FILE *f = fopen("/proc/sys/kernel/pid_max", "re");
    unsigned long max = 0;

    if (f) {
        if (fscanf(f, "%lu", &max) != 1)
            max = 0;
        fclose(f);
    }
    return max > PIDSET_MAX_PIDS ? PIDSET_MAX_PIDS : (uint32_t)max;
}

int pidset_size_bitmap(struct bpf_map *bits)
{
    uint32_t max = pidset_pid_max();

    /* Unknown: the map's default size; larger tgids go to the hash. */
    if (max == 0)
        return 0;
    return bpf_map__set_max_entries(bits, (max + 63) / 64);
}

void pidset_bind(pidset_t *self, int bits_fd, uint32_t nwords, int pids_fd)
{
    pidset_unbind(self);
    self->bits_fd = bits_fd;
    self->nwords = nwords;
    self->pids_fd = pids_fd;
}

void pidset_unbind(pidset_t *self)
{
    free(self->pids);
    self->pids = NULL;
    self->n = 0;
    self->bits_fd = self->pids_fd = -1;
    self->nwords = 0;
}

static bool s_contains(const uint32_t *sorted, size_t n, uint32_t pid)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] == pid)
            return true;
        if (sorted[mid] < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* The bits of the pids of sorted[*i..] that fall in word w; moves *i past
 * them. */
static uint64_t s_word_bits(const uint32_t *sorted, size_t n, size_t *i,
                            uint32_t w)
{
    uint64_t v = 0;

    for (; *i < n && sorted[*i] / 64 == w; (*i)++)
        v |= 1ull << (sorted[*i] % 64);
    return v;
}

/* Rewrites every bitmap word an old or a new pid falls in whose value
 * changes, each once. -1 if an update failed. */
static int s_write_words(pidset_t *self, const uint32_t *pids, size_t n)
{
    size_t i = 0, j = 0;
    int rc = 0;

    while (i < n || j < self->n) {
        uint32_t wi = i < n ? pids[i] / 64 : UINT32_MAX;
        uint32_t wj = j < self->n ? self->pids[j] / 64 : UINT32_MAX;
        uint32_t w = wi < wj ? wi : wj;
        if (w >= self->nwords)
            break;             /* sorted: the rest is past the bitmap */
        uint64_t now = s_word_bits(pids, n, &i, w);
        uint64_t before = s_word_bits(self->pids, self->n, &j, w);
        if (now != before &&
            bpf_map_update_elem(self->bits_fd, &w, &now, BPF_ANY) != 0 &&
            rc == 0)
            rc = -1;
    }
    return rc;
}

int pidset_update(pidset_t *self, const uint32_t *pids, size_t n,
                  pidset_fn added, pidset_fn removed, void *arg)
{
    uint32_t *copy = NULL, one = 1;
    uint64_t limit = 64ull * self->nwords;
    int rc = 0, first_errno = 0;

    if (self->bits_fd < 0 || self->pids_fd < 0) {
        first_errno = EBADF;
        rc = -1;
        goto cleanup;
    }
    if (n && !(copy = malloc(n * sizeof(*copy)))) {
        first_errno = ENOMEM;
        rc = -1;
        goto cleanup;
    }
    if (n)
        memcpy(copy, pids, n * sizeof(*copy));
    for (size_t i = 0; i < n; i++)
        if (pids[i] >= limit && !s_contains(self->pids, self->n, pids[i]) &&
            bpf_map_update_elem(self->pids_fd, &pids[i], &one, BPF_ANY) != 0 &&
            rc == 0) {
            rc = -1;
            first_errno = errno;
        }
    if (s_write_words(self, pids, n) != 0 && rc == 0) {
        rc = -1;
        first_errno = errno;
    }
    for (size_t i = 0; i < self->n; i++) {
        uint32_t pid = self->pids[i];
        if (s_contains(pids, n, pid))
            continue;
        if (pid >= limit)
            bpf_map_delete_elem(self->pids_fd, &pid);
        if (removed)
            removed(arg, pid);
    }
    for (size_t i = 0; i < n && added; i++)
        if (!s_contains(self->pids, self->n, pids[i]))
            added(arg, pids[i]);
    free(self->pids);
    self->pids = copy;
    self->n = n;
cleanup:
    if (rc != 0)
        errno = first_errno;
    return rc;
}

bool pidset_has(const pidset_t *self, uint32_t pid)
{
    return s_contains(self->pids, self->n, pid);
}

size_t pidset_count(const pidset_t *self)
{
    return self->n;
}

const uint32_t *pidset_pids(const pidset_t *self)
{
    return self->pids;
}
