/* The names of the enumerations every stage speaks: profiling targets,
 * task triggers and task sources. The numbers are lib/wire.h's (they
 * travel on the bus); the names are the OAP's (EBPFProfilingTaskQuery
 * arguments, the continuous-profiling policy JSON) and the same names are
 * used on the HTTP API, in the configuration file and in logs. One table
 * per enumeration lives in names.c, checked at compile time against
 * wire.h's *_MAX, so adding a value is its number in wire.h plus one row
 * there. Monitor (cause type) names are in lib/monitors.h, which also
 * knows how each monitor is read. */
#ifndef SKYPROF_NAMES_H
#define SKYPROF_NAMES_H

/* How a name is matched: the OAP's names exactly, or in any case where a
 * human writes them (the configuration file). */
typedef enum { NAMES_EXACT = 0, NAMES_ANY_CASE = 1 } names_case_t;

/* "ON_CPU", "OFF_CPU", "NETWORK" (enum wire_target); "UNKNOWN" when out
 * of range. */
const char *names_target(unsigned target);
/* The wire_target named, or -1 when name is NULL or unknown. */
int names_target_parse(const char *name, names_case_t how);

/* "FIXED_TIME", "CONTINUOUS_PROFILING" (enum wire_trigger). */
const char *names_trigger(unsigned trigger);
int names_trigger_parse(const char *name, names_case_t how);

/* "OAP", "LOCAL", "API", "POLICY" (enum wire_task_source). */
const char *names_source(unsigned source);
int names_source_parse(const char *name, names_case_t how);

/* The lookups above over any table of names indexed by value: the index
 * of name among names[0..count), or -1. Shared with lib/monitors.c. */
int names_index(const char *const *names, unsigned count, const char *name,
                names_case_t how);

#endif
