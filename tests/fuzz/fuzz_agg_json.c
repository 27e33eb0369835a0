/* aggregator/http/reqjson.c, the reader of the API's JSON bodies (POST
 * /api/tasks, /api/profile/tracing): any text either parses into at most
 * AGG_JSON_MAX_FIELDS fields or fails with a reason, and the result
 * releases cleanly. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aggregator/core/buf.h"
#include "aggregator/http/reqjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agg_json_obj_t obj;
    char err[256] = "";
    if (agg_json_parse(&obj, (const char *)data, size, err, sizeof err)) {
        if (!err[0])
            __builtin_trap();       /* a failure always says why */
        return 0;
    }
    if (obj.nfields > AGG_JSON_MAX_FIELDS)
        __builtin_trap();
    for (size_t i = 0; i < obj.nfields; i++) {
        const agg_json_field_t *f = &obj.fields[i];
        (void)strlen(f->key);
        if (f->type == AGG_JSON_STRING)
            (void)strlen(f->str);
        (void)agg_json_get(&obj, f->key);
    }
    agg_json_release(&obj);
    return 0;
}
