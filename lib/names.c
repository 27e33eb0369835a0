/* Name tables of the bus enumerations: see names.h. */
#include "names.h"

#include <string.h>
#include <strings.h>

#include "wire.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const s_targets[] = {
    [WIRE_TARGET_ON_CPU] = "ON_CPU",
    [WIRE_TARGET_OFF_CPU] = "OFF_CPU",
    [WIRE_TARGET_NETWORK] = "NETWORK",
};
static const char *const s_triggers[] = {
    [WIRE_TRIGGER_FIXED_TIME] = "FIXED_TIME",
    [WIRE_TRIGGER_CONTINUOUS] = "CONTINUOUS_PROFILING",
};
static const char *const s_sources[] = {
    [WIRE_SRC_OAP] = "OAP",
    [WIRE_SRC_LOCAL] = "LOCAL",
    [WIRE_SRC_API] = "API",
    [WIRE_SRC_POLICY] = "POLICY",
};

/* A value added to wire.h without its name here fails the build. */
_Static_assert(COUNT_OF(s_targets) == WIRE_TARGET_MAX + 1,
               "every wire_target needs a name");
_Static_assert(COUNT_OF(s_triggers) == WIRE_TRIGGER_MAX + 1,
               "every wire_trigger needs a name");
_Static_assert(COUNT_OF(s_sources) == WIRE_SRC_MAX + 1,
               "every wire_task_source needs a name");

int names_index(const char *const *names, unsigned count, const char *name,
                names_case_t how)
{
    int found = -1;
    if (!name)
        goto cleanup;
    for (unsigned i = 0; i < count && found < 0; i++) {
        if (!names[i])
            continue;
        if (how == NAMES_ANY_CASE ? strcasecmp(names[i], name) == 0
                                  : strcmp(names[i], name) == 0)
            found = (int)i;
    }
cleanup:
    return found;
}

static const char *s_name(const char *const *names, unsigned count,
                          unsigned value)
{
    return value < count && names[value] ? names[value] : "UNKNOWN";
}

const char *names_target(unsigned target)
{
    return s_name(s_targets, COUNT_OF(s_targets), target);
}

int names_target_parse(const char *name, names_case_t how)
{
    return names_index(s_targets, COUNT_OF(s_targets), name, how);
}

const char *names_trigger(unsigned trigger)
{
    return s_name(s_triggers, COUNT_OF(s_triggers), trigger);
}

int names_trigger_parse(const char *name, names_case_t how)
{
    return names_index(s_triggers, COUNT_OF(s_triggers), name, how);
}

const char *names_source(unsigned source)
{
    return s_name(s_sources, COUNT_OF(s_sources), source);
}

int names_source_parse(const char *name, names_case_t how)
{
    return names_index(s_sources, COUNT_OF(s_sources), name, how);
}
