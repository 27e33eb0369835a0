/* The set of processes a probe follows, kept in step with the two maps of
 * bpf/pidset.bpf.h (a bitmap of tgids below 64 * its words, a hash of the
 * tgids past it). Shared by the off-CPU probe and the network capture:
 * one place for the copy of the set, the map updates and their order.
 *
 * Order of an update: new pids are added (hash) and the bitmap's words
 * are rewritten, each once with its final value, so a pid that stays in
 * the set never reads as absent; then the pids that left are deleted from
 * the hash. */
#ifndef SKYPROF_COLLECTOR_PIDSET_H
#define SKYPROF_COLLECTOR_PIDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bpf_map;

typedef struct pidset pidset_t;

pidset_t *pidset_new(void);
void pidset_destroy(pidset_t **self_p);

/* This host's pid_max (/proc/sys/kernel/pid_max) capped at 2^22, the
 * kernel's limit; 0 when unreadable. */
uint32_t pidset_pid_max(void);

/* Before the load: sizes the bitmap (an array map of u64 words) to cover
 * pid_max. 0 or the libbpf error. */
int pidset_size_bitmap(struct bpf_map *bits);

/* After the load: the maps to keep in step (bits_fd an array of nwords
 * u64, pids_fd a u32 -> u32 hash). The set starts empty, as the maps do. */
void pidset_bind(pidset_t *self, int bits_fd, uint32_t nwords, int pids_fd);
/* The maps are gone (unload): forget them and the set. */
void pidset_unbind(pidset_t *self);

typedef void (*pidset_fn)(void *arg, uint32_t pid);

/* Makes the set and the maps hold exactly pids (sorted, unique). Once the
 * maps are written, removed (if any) is called for each pid that left and
 * then added for each new one. 0, or -1 when a map update failed (errno
 * is the first failure's; the set still holds every pid asked for). */
int pidset_update(pidset_t *self, const uint32_t *pids, size_t n,
                  pidset_fn added, pidset_fn removed, void *arg);

bool pidset_has(const pidset_t *self, uint32_t pid);
size_t pidset_count(const pidset_t *self);
/* The set, sorted; valid until the next update or unbind. */
const uint32_t *pidset_pids(const pidset_t *self);

#endif
