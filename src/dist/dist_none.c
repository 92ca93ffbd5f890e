/* The transport of a build without MPI: a job of one process. Sums and
 * broadcasts over one rank change nothing; ag_dist_init says what is missing. */
#include "transport.h"

#include "base.h"

bool agd_available(void) { return false; }

ag_status agd_init(void)
{
    return ag_set_error(AG_ERR_UNSUPPORTED, "ag_dist_init: this anygrad was built without MPI "
                                            "(install libopenmpi-dev and rebuild with -Dmpi=enabled)");
}

bool agd_ready(void) { return false; }
int agd_rank(void) { return 0; }
int agd_size(void) { return 1; }
int agd_local_rank(void) { return 0; }
int agd_local_size(void) { return 1; }

ag_status agd_sum_f32(float *buf, size_t n, double timeout_s)
{
    (void)buf;
    (void)n;
    (void)timeout_s;
    return AG_OK;
}

ag_status agd_sum_f64(double *v, int n, double timeout_s)
{
    (void)v;
    (void)n;
    (void)timeout_s;
    return AG_OK;
}

ag_status agd_broadcast(void *buf, size_t bytes, int root, double timeout_s)
{
    (void)buf;
    (void)bytes;
    (void)root;
    (void)timeout_s;
    return AG_OK;
}

ag_status agd_barrier(double timeout_s)
{
    (void)timeout_s;
    return AG_OK;
}

void agd_abort(int code) { (void)code; }
ag_status agd_finalize(void) { return AG_OK; }
