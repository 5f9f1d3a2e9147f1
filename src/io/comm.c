/* comm: the MPI side of the error convention (include/facrnn/comm.h):
 * checked MPI calls, the communicator error handler, agreement on an error
 * across ranks and the fatal exit. */
#include "facrnn/comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

fr_err fr_check_mpi(int rc, const char *what, const char *file, int line)
{
    if (rc == MPI_SUCCESS) return FR_OK;
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error code %d", rc);
    return fr_error_set(FR_EMPI, file, line, "MPI call failed: %s: %s", what, s);
}

fr_err fr_comm_errors_return(MPI_Comm comm)
{
    CHECK_MPI(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN));
    return FR_OK;
}

_Noreturn void fr_fatal(fr_err e)
{
    /* The last resort: the return codes of these calls are not checked
     * because there is nothing left to do with a failure but abort. */
    int rank = 0, inited = 0;
    MPI_Initialized(&inited);
    if (inited) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    fprintf(stderr, "facrnn: error (rank %d): %s [%s]\n", rank,
            fr_error_msg()[0] ? fr_error_msg() : "unknown error", fr_error_where());
    fflush(stderr);
    if (inited) MPI_Abort(MPI_COMM_WORLD, fr_exit_code(e));
    abort(); /* only reached without MPI: there is no other rank to hang */
}

/* ---- waiting without spinning ---------------------------------------------- */
static void idle_sleep(long *ns)
{
    struct timespec ts = {0, *ns};
    nanosleep(&ts, NULL);
    if (*ns < 2000000) *ns *= 2;
}

fr_err fr_comm_wait_idle(MPI_Request *req, MPI_Status *status)
{
    long ns = 20000;
    for (;;) {
        int done = 0;
        CHECK_MPI(MPI_Test(req, &done, status ? status : MPI_STATUS_IGNORE));
        if (done) return FR_OK;
        idle_sleep(&ns);
    }
}

fr_err fr_comm_probe_idle(int source, int tag, MPI_Comm comm, MPI_Status *status)
{
    long ns = 20000;
    for (;;) {
        int flag = 0;
        CHECK_MPI(MPI_Iprobe(source, tag, comm, &flag, status));
        if (flag) return FR_OK;
        idle_sleep(&ns);
    }
}

/* ---- collective agreement on errors ---------------------------------------- */
fr_err fr_error_agree(const void *commp, fr_err local)
{
    MPI_Comm comm = *(const MPI_Comm *)commp;
    int size, rank;
    /* A communicator that cannot agree cannot stop cleanly: abort. */
    CHECK_MPI_FATAL(MPI_Comm_size(comm, &size));
    CHECK_MPI_FATAL(MPI_Comm_rank(comm, &rank));
    int pair[2] = {(int)local, local != FR_OK ? rank : size};
    int worst = 0, first = 0;
    /* Two reductions: the worst code, and the first failing rank. The
     * first is where ranks wait for rank 0's writes: it waits idle. */
    MPI_Request req;
    CHECK_MPI_FATAL(MPI_Iallreduce(&pair[0], &worst, 1, MPI_INT, MPI_MAX, comm, &req));
    if (fr_comm_wait_idle(&req, NULL) != FR_OK) fr_fatal(FR_EMPI);
    CHECK_MPI_FATAL(MPI_Allreduce(&pair[1], &first, 1, MPI_INT, MPI_MIN, comm));
    if (worst == FR_OK) return FR_OK;
    char buf[FR_ERR_MSG_CAP + FR_ERR_WHERE_CAP];
    if (rank == first) {
        snprintf(buf, FR_ERR_MSG_CAP, "%s", fr_error_msg());
        snprintf(buf + FR_ERR_MSG_CAP, FR_ERR_WHERE_CAP, "%s", fr_error_where());
    }
    CHECK_MPI_FATAL(MPI_Bcast(buf, (int)sizeof buf, MPI_CHAR, first, comm));
    fr_error_restore(buf, buf + FR_ERR_MSG_CAP);
    return (fr_err)worst;
}
