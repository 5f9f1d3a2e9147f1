/* selftest: one end-to-end check that MPI, BLAS, ScaLAPACK, serial LAPACK
 * and parallel HDF5 work together (the `facrnn selftest` command). */
#ifndef FACRNN_SELFTEST_H
#define FACRNN_SELFTEST_H

#include "facrnn/comm.h"

#include "facrnn/common.h"

typedef struct {
    double t_blas, t_allreduce, t_pdsyevd, t_hdf5, t_lapack; /* seconds, rank 0 */
    double eval_err;  /* max |lambda - lambda_ref| / lambda_max */
    double evec_err;  /* max entry difference of eigenvectors, up to sign */
} fr_selftest_report;

/* Each rank fills rows_per_rank rows of a deterministic random N-column
 * matrix (keyed by global row id), forms its Gram matrix with cblas_dsyrk,
 * the Gram matrices are summed with MPI_Allreduce and eigen-decomposed with
 * ScaLAPACK pdsyevd; eigenvalues and eigenvectors are written collectively
 * to `h5path` with parallel HDF5, read back and checked bit for bit, and
 * compared with serial LAPACK dsyevd. Fails with FR_ENUMERIC if eval_err or
 * evec_err exceeds 1e-10. The file is left in place. Collective over comm. */
fr_err fr_selftest_run(MPI_Comm comm, int N, long long rows_per_rank, const char *h5path,
                       fr_selftest_report *rep);

#endif
