/* The continuous-profiling policy versions this agent holds: service name
 * -> the policy UUID the OAP last sent for it ("" until one arrives).
 * queryPolicies carries one (service, UUID) pair per service the agent
 * has processes for, so the OAP answers only for services whose policy
 * changed (ContinuousProfilingPolicyQuery in proto/Continuous.proto).
 *
 * The book only reads a ServiceWithPolicyJSON document as far as it needs
 * to learn ServiceName -> UUID; the policy engine validates the policies
 * themselves. Bounded: services are marked per query round and those no
 * process uses any more are pruned, and at most `max` are held. */
#ifndef SKYPROF_UPLINK_POLICYBOOK_H
#define SKYPROF_UPLINK_POLICYBOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct policy_book policy_book_t;

policy_book_t *policy_book_new(size_t max);
void policy_book_destroy(policy_book_t **self_p);

/* Marks service as wanted in this round, adding it with UUID "" when new.
 * 0, or -1 when the book is full or memory ran out. */
int policy_book_want(policy_book_t *self, const char *service,
                     uint64_t round);
/* Forgets every service not wanted in round. */
void policy_book_prune(policy_book_t *self, uint64_t round);
size_t policy_book_count(const policy_book_t *self);

/* The UUID held for service: "" before any policy, NULL when the service
 * is not in the book. */
const char *policy_book_uuid(const policy_book_t *self, const char *service);

/* Iteration over (service, uuid); start with *cursor = 0. Returns false
 * at the end. The book must not change during an iteration. */
bool policy_book_next(const policy_book_t *self, size_t *cursor,
                      const char **service, const char **uuid);

/* Sets every UUID back to "", so the next query makes the OAP send every
 * service's policy again (after the policy engine restarted and lost
 * them). */
void policy_book_forget_uuids(policy_book_t *self);

/* Reads a ServiceWithPolicyJSON document: an array of objects, each with
 * a string ServiceName and an optional string UUID (absent = ""). With
 * apply false it only checks the document; with apply true it also
 * records the UUID of every listed service that is in the book (others
 * are ignored: the OAP only answers for services we asked about).
 * Returns the number of services listed, or -1 with a reason in err when
 * the document is not of that shape (nothing is recorded then). */
int policy_book_learn(policy_book_t *self, const char *json, size_t len,
                      bool apply, char *err, size_t errlen);

#endif
