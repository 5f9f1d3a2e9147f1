/* comm: the MPI side of the error convention in common.h. CHECK_MPI wraps
 * every MPI call; the communicators the program uses carry MPI_ERRORS_RETURN
 * (fr_comm_errors_return), so a failing call comes back here with its
 * location instead of aborting inside the library. */
#ifndef FACRNN_COMM_H
#define FACRNN_COMM_H

#include <mpi.h>

#include "facrnn/common.h"

/* MPI_SUCCESS -> FR_OK; anything else -> FR_EMPI with "MPI call failed:
 * <what>: <MPI's error string>" recorded at file:line. Not collective. */
fr_err fr_check_mpi(int rc, const char *what, const char *file, int line);
#define CHECK_MPI(call) TRY(fr_check_mpi((call), #call, __FILE__, __LINE__))
/* The same where no fr_err can be returned: report and fr_fatal. */
#define CHECK_MPI_FATAL(call)                                                       \
    do {                                                                            \
        if (fr_check_mpi((call), #call, __FILE__, __LINE__) != FR_OK) fr_fatal(FR_EMPI); \
    } while (0)

/* Make MPI calls on `comm` return their error codes (MPI_ERRORS_RETURN)
 * instead of aborting inside the library, so CHECK_MPI sees them. main
 * installs it on MPI_COMM_WORLD and MPI_COMM_SELF; communicators derived
 * from those (split, dup) inherit it, and the program sets it again on each
 * one it creates. Not collective. */
fr_err fr_comm_errors_return(MPI_Comm comm);

/* Agree on an error across `comm` (pass &comm). Every rank passes its local code;
 * all ranks return the largest, and the message of the lowest-numbered
 * failing rank is copied to every rank, so rank 0 can print it.
 * Collective over *comm. */
fr_err fr_error_agree(const void *comm, fr_err local);

/* Complete `req` without holding a core: MPI_Test, then sleep with a
 * backoff from 20 us to 2 ms between tests. A rank that waits for others
 * (a team done before the rest of a sweep, ranks waiting for rank 0's file
 * writes) would otherwise spin inside MPI and, where ranks outnumber cores,
 * take the core from the rank being waited for. The wait adds at most the
 * last sleep (2 ms) to the completion. Local. */
fr_err fr_comm_wait_idle(MPI_Request *req, MPI_Status *status);
/* The same for a message of `tag` from `source` on `comm`: returns when one
 * can be received (MPI_Iprobe with the same backoff). Local. */
fr_err fr_comm_probe_idle(int source, int tag, MPI_Comm comm, MPI_Status *status);

/* Print the recorded error and MPI_Abort(MPI_COMM_WORLD) with the exit code
 * for `e`. Never returns. Use it when the other ranks may not know. */
_Noreturn void fr_fatal(fr_err e);

#endif
