/* The MPI transport. anygrad talks on its own duplicate of MPI_COMM_WORLD, so a
 * program's own MPI traffic never meets it, with MPI_ERRORS_RETURN, so a failed
 * call is an error value here and not an exit inside MPI. Waits are nonblocking
 * collectives polled until done or AG_DIST_TIMEOUT: a rank that stopped
 * answering turns into an error on the others instead of a hang. */
#include <mpi.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "transport.h"

#include "base.h"

static MPI_Comm comm = MPI_COMM_NULL, local = MPI_COMM_NULL;
static int rank, size = 1, local_rank, local_size = 1;
static bool we_initialised;

bool agd_available(void) { return true; }
bool agd_ready(void) { return comm != MPI_COMM_NULL; }
int agd_rank(void) { return rank; }
int agd_size(void) { return size; }
int agd_local_rank(void) { return local_rank; }
int agd_local_size(void) { return local_size; }

static ag_status mpi_error(const char *what, int code)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len] = '\0';
    return ag_set_error(AG_ERR_DEVICE, "ag_dist: %s failed on rank %d: %s", what, rank,
                        len ? msg : "unknown MPI error");
}

#define CALL(what, expr) \
    do { \
        int rc_ = (expr); \
        if (rc_ != MPI_SUCCESS) return mpi_error(what, rc_); \
    } while (0)

ag_status agd_init(void)
{
    if (comm != MPI_COMM_NULL) return AG_OK;
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized) return ag_set_error(AG_ERR_STATE, "ag_dist_init: MPI was finalised already");
    if (!inited) {
        /* Open MPI's default nonblocking allreduce took 1.5x the time of its
         * ring algorithm for gradient buckets (13 MB, 2 ranks, one host: 15.7
         * against 10.6 ms); a user's own choice stays */
        setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0);
        /* only the calling thread talks to MPI (the CPU backend's threads never do) */
        int provided = 0;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return ag_set_error(AG_ERR_DEVICE, "ag_dist_init: MPI_Init_thread failed");
        we_initialised = true;
        /* errors in MPI calls become values; a program's own MPI keeps its handler */
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    }
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    if (rc != MPI_SUCCESS) {
        comm = MPI_COMM_NULL;
        return mpi_error("MPI_Comm_dup", rc);
    }
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    if ((rc = MPI_Comm_rank(comm, &rank)) != MPI_SUCCESS || (rc = MPI_Comm_size(comm, &size)) != MPI_SUCCESS ||
        (rc = MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local)) != MPI_SUCCESS ||
        (rc = MPI_Comm_rank(local, &local_rank)) != MPI_SUCCESS ||
        (rc = MPI_Comm_size(local, &local_size)) != MPI_SUCCESS) {
        ag_status s = mpi_error("setting up the communicators", rc);
        if (local != MPI_COMM_NULL) MPI_Comm_free(&local);
        MPI_Comm_free(&comm);
        comm = local = MPI_COMM_NULL;
        rank = local_rank = 0;
        size = local_size = 1;
        return s;
    }
    return AG_OK;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Polls the requests (each test also drives MPI's progress): yielding the
 * core between tests for the first 50 ms, so a rank on the same core gets it
 * at once and a reduction on one host ends within microseconds, then sleeping
 * longer and longer, up to a millisecond, so a long wait for a slow or stopped
 * rank costs no CPU. */
static ag_status wait_requests(const char *what, int n, MPI_Request *r, double timeout_s)
{
    const double t0 = now();
    long nap_ns = 0;
    for (;;) {
        int done = 0;
        CALL(what, MPI_Testall(n, r, &done, MPI_STATUSES_IGNORE));
        if (done) return AG_OK;
        const double waited = now() - t0;
        if (waited > timeout_s)
            return ag_set_error(AG_ERR_DEVICE, "ag_dist: %s: rank %d waited %.0f s for the other "
                                               "ranks (one stopped, hangs or died; "
                                               "AG_DIST_TIMEOUT sets the limit)",
                                what, rank, timeout_s);
        if (waited < 0.05) {
            sched_yield();
            continue;
        }
        nap_ns = nap_ns ? (nap_ns * 2 < 1000000 ? nap_ns * 2 : 1000000) : 10000;
        struct timespec ts = {0, nap_ns};
        nanosleep(&ts, NULL);
    }
}

/* Nonblocking sums, each polled to its end before the next bucket: Open MPI
 * 4.1 progresses a nonblocking collective only inside MPI calls, so packing
 * the next bucket meanwhile gained nothing (measured), while every wait stays
 * timed. */
ag_status agd_sum_f32(float *buf, size_t n, double timeout_s)
{
    MPI_Request r;
    /* counts are ints in MPI: dist.c keeps buckets far below 2^31 */
    CALL("MPI_Iallreduce", MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, comm, &r));
    return wait_requests("allreduce", 1, &r, timeout_s);
}

ag_status agd_sum_f64(double *v, int n, double timeout_s)
{
    MPI_Request r;
    CALL("MPI_Iallreduce", MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, comm, &r));
    return wait_requests("sum", 1, &r, timeout_s);
}

ag_status agd_broadcast(void *buf, size_t bytes, int root, double timeout_s)
{
    const size_t chunk = (size_t)1 << 30;
    for (size_t at = 0; at < bytes; at += chunk) {
        size_t n = bytes - at < chunk ? bytes - at : chunk;
        MPI_Request r;
        CALL("MPI_Ibcast", MPI_Ibcast((char *)buf + at, (int)n, MPI_BYTE, root, comm, &r));
        ag_status s = wait_requests("broadcast", 1, &r, timeout_s);
        if (s != AG_OK) return s;
    }
    return AG_OK;
}

ag_status agd_barrier(double timeout_s)
{
    MPI_Request r;
    CALL("MPI_Ibarrier", MPI_Ibarrier(comm, &r));
    return wait_requests("barrier", 1, &r, timeout_s);
}

void agd_abort(int code)
{
    MPI_Abort(comm != MPI_COMM_NULL ? comm : MPI_COMM_WORLD, code);
}

ag_status agd_finalize(void)
{
    if (comm == MPI_COMM_NULL) return AG_OK;
    MPI_Comm_free(&local);
    MPI_Comm_free(&comm);
    rank = local_rank = 0;
    size = local_size = 1;
    if (we_initialised) {
        we_initialised = false;
        CALL("MPI_Finalize", MPI_Finalize());
    }
    return AG_OK;
}
