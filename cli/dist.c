/* `mpirun -np N anygrad train ...`: the command finds itself started by MPI,
 * joins the job, and every rank trains on its part of each global batch.
 * Rank 0 alone prints, saves and writes logs; the others keep stderr. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anygrad.h"
#include "cli.h"

static bool on;

/* The variables the launchers of Open MPI, MPICH (Hydra) and PMIx-based ones
 * give each process. */
static int launched_size(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *s = getenv(vars[i]);
        if (s && *s) return atoi(s);
    }
    return getenv("PMIX_RANK") ? 2 : 0; /* PMIx without a size: assume a real job */
}

int cli_dist_begin(const char *cmd)
{
    int n = launched_size();
    if (n <= 1) return 0;
    if (!ag_dist_available()) {
        fprintf(stderr, "anygrad %s: started by MPI as one of %d processes, but this anygrad "
                        "was built without MPI: each would train alone (install libopenmpi-dev "
                        "and rebuild)\n", cmd, n);
        return 2;
    }
    if (ag_dist_init() != AG_OK) {
        fprintf(stderr, "anygrad %s: %s\n", cmd, ag_last_error());
        return 1;
    }
    on = ag_dist_size() > 1;
    if (!on) return 0;
    /* The cores are shared: without AG_NUM_THREADS each rank takes its part. */
    const char *t = getenv("AG_NUM_THREADS");
    if (!t || !*t) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN), each = cores / ag_dist_local_size();
        char v[24];
        snprintf(v, sizeof v, "%ld", each > 0 ? each : 1);
        setenv("AG_NUM_THREADS", v, 1);
    }
    if (ag_dist_rank() != 0) {
        fflush(stdout);
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
    }
    return 0;
}

bool cli_dist_on(void) { return on; }
bool cli_dist_leader(void) { return !on || ag_dist_rank() == 0; }

int cli_dist_end(int rc)
{
    if (!on) return rc;
    if (rc != 0 && rc != 130) {
        /* the other ranks may be waiting in a collective this rank never
         * reaches: the job ends here, with this rank's status (130: Ctrl-C,
         * which every rank agreed on after the same step) */
        char why[80];
        snprintf(why, sizeof why, "failed (exit status %d); ending the job", rc);
        fflush(stdout);
        ag_dist_abort(rc, why);
    }
    ag_dist_finalize();
    on = false;
    return rc;
}

/* Several GPUs of the default device's backend on this host: local rank i
 * takes the i-th (mod their count); the CPU and a single device stay shared. */
ag_device *cli_dist_device(ag_device *dflt)
{
    if (!on || !dflt || ag_dist_local_size() < 2 || !strcmp(ag_device_backend(dflt), "cpu"))
        return dflt;
    int same[64], n = 0;
    for (int i = 0; i < ag_device_count() && n < 64; i++) {
        ag_device *d = ag_device_get(i);
        if (d && !strcmp(ag_device_backend(d), ag_device_backend(dflt))) same[n++] = i;
    }
    return n > 1 ? ag_device_get(same[ag_dist_local_rank() % n]) : dflt;
}
