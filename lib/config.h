/* One YAML file for all stages, each reading its section, with environment
 * overrides. Every key skyprof knows is declared once in config_keys.h with
 * its type, default and environment names (SKYPROF_<KEY>, plus the
 * reference agent's ROVER_<KEY> where the meaning matches). Values are
 * validated when the file is loaded, so a bad value is an error naming the
 * key and the value before anything touches the kernel.
 *
 * Sequences flatten to indexed keys: `a.b[0].c`. Keys under a section that
 * skyprof does not know are warned about, not fatal, so a reference-agent
 * file with extra modules still loads. */
#ifndef SKYPROF_CONFIG_H
#define SKYPROF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct config config_t;

/* path may be NULL: defaults plus environment. On failure returns NULL and
 * writes a message naming the key and the value into err. */
config_t *config_load(const char *path, char *err, size_t errlen);
void config_destroy(config_t **self_p);

/* Typed getters for declared keys; a key that is not declared is a
 * programming error and aborts. */
const char *config_str(const config_t *self, const char *key);
bool config_bool(const config_t *self, const char *key);
int64_t config_int(const config_t *self, const char *key);
uint64_t config_duration_ms(const config_t *self, const char *key);
uint64_t config_duration_ns(const config_t *self, const char *key);
uint64_t config_size(const config_t *self, const char *key);

/* Raw lookups for list-shaped keys (process finders, local tasks):
 * NULL when absent. config_list_len("a.b") counts a.b[0], a.b[1], ... */
const char *config_raw(const config_t *self, const char *key);
size_t config_list_len(const config_t *self, const char *key);

/* Where a value came from, for --print-config and error messages. */
const char *config_origin(const config_t *self, const char *key);
const char *config_path(const config_t *self);

/* Value parsers shared with the HTTP API (0 ok, -1 bad). */
int config_parse_duration_ns(const char *s, uint64_t *out);
int config_parse_size(const char *s, uint64_t *out);
int config_parse_bool(const char *s, bool *out);
int config_parse_int(const char *s, int64_t *out);

/* Writes every declared key with its value and origin to stdout. */
void config_dump(const config_t *self);

#endif
