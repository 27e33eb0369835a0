/* idle_workload SECONDS: sleeps for SECONDS (forever when 0) in a function
 * with a known name, costing no CPU: the process a test puts in a
 * container when only its identity matters (Kubernetes discovery), not its
 * samples. */
#include <stdlib.h>
#include <time.h>

static __attribute__((noinline)) void sky_idle_nap(long seconds)
{
    struct timespec ts = { seconds > 0 ? seconds : 3600, 0 };

    do {
        nanosleep(&ts, NULL);
    } while (seconds <= 0);
}

int main(int argc, char **argv)
{
    sky_idle_nap(argc > 1 ? atol(argv[1]) : 0);
    return 0;
}
