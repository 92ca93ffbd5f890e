/* What src/dist/dist.c needs from a message-passing library: dist_mpi.c when
 * anygrad is built with MPI, dist_none.c (a job of one process) without. All
 * calls come from one thread; waits end after AG_DIST_TIMEOUT seconds. */
#ifndef AG_DIST_TRANSPORT_H
#define AG_DIST_TRANSPORT_H

#include <stddef.h>

#include "anygrad.h"

bool agd_available(void);
ag_status agd_init(void);
bool agd_ready(void);                 /* after a successful agd_init */
int agd_rank(void);
int agd_size(void);
int agd_local_rank(void);
int agd_local_size(void);
/* Sums n floats in place over the ranks. */
ag_status agd_sum_f32(float *buf, size_t n, double timeout_s);
ag_status agd_sum_f64(double *v, int n, double timeout_s);
ag_status agd_broadcast(void *buf, size_t bytes, int root, double timeout_s);
ag_status agd_barrier(double timeout_s);
void agd_abort(int code);
ag_status agd_finalize(void);

#endif
