/* The symbolized batch the aggregator and API tests feed:
 * pid 100 "app" thread "worker": 3 on-CPU samples (30 ms) of stack
 * k_leaf<-k_sys<-u_leaf<-libc_read<-main for task t1, and 4 off-CPU
 * switches (4 ms) of k_sys<-main for t1; pid 200 "db": 2 on-CPU samples
 * (20 ms) of u_leaf<-main, no task. */
#ifndef SKYPROF_TEST_AGG_FIXTURE_H
#define SKYPROF_TEST_AGG_FIXTURE_H

#include "wire.h"

#define AGG_FIXTURE_SAMPLES 3

/* Fills b; samples must hold AGG_FIXTURE_SAMPLES entries. */
void agg_fixture_batch(wire_sym_batch_t *b,
                       wire_sym_sample_t samples[AGG_FIXTURE_SAMPLES]);

#endif
