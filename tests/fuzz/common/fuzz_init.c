/* Linked into every harness: libFuzzer calls this once before the first
 * input. The project logs to stderr; a fuzzer's output should show its
 * own progress and the sanitizers' reports, so only errors are logged. */
#include <stdint.h>

#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_init("fuzz", LOG_LVL_ERROR);
    return 0;
}
