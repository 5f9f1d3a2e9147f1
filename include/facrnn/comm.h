/* comm: the MPI side of the error convention in common.h. CHECK_MPI wraps
 * every MPI call; the communicators the program uses carry MPI_ERRORS_RETURN
 * (fr_comm_errors_return), so a failing call comes back here with its
 * location instead of aborting inside the library. */
#ifndef FACRNN_COMM_H
#define FACRNN_COMM_H

#include <mpi.h>

#include "facrnn/common.h"

fr_err fr_check_mpi(int rc, const char *what, const char *file, int line);
#define CHECK_MPI(call) TRY(fr_check_mpi((call), #call, __FILE__, __LINE__))

/* Agree on an error across `comm` (pass &comm). Every rank passes its local code;
 * all ranks return the largest, and the message of the lowest-numbered
 * failing rank is copied to every rank, so rank 0 can print it.
 * Collective over *comm. */
fr_err fr_error_agree(const void *comm, fr_err local);

/* Print the recorded error and MPI_Abort(MPI_COMM_WORLD) with the exit code
 * for `e`. Never returns. Use it when the other ranks may not know. */
_Noreturn void fr_fatal(fr_err e);

#endif
