/* dist_linalg: BLACS process grids, the block-cyclic layout and ScaLAPACK
 * eigensolvers. This is the only module that knows about BLACS contexts,
 * column-major storage and block-cyclic distribution; everything it takes
 * and returns is plain row-major C arrays.
 *
 * Any MPI communicator works (a sweep team's sub-communicator as well as
 * MPI_COMM_WORLD): the grid is built on the communicator itself.
 */
#ifndef FACRNN_DIST_LINALG_H
#define FACRNN_DIST_LINALG_H

#include "facrnn/comm.h"

#include "facrnn/common.h"

/* Block size of the block-cyclic layout. */
#define FR_DL_NB 64

/* Above this N, fr_dl_pca assembles the covariance directly in
 * block-cyclic form (no rank ever holds the N x N matrix); at or below it the
 * full Gram matrix is summed with one Allreduce. Default 2000. Process-wide;
 * every rank of a communicator must use the same value. */
extern int fr_dl_replicate_limit;

/* A near-square nprow x npcol BLACS grid with nprow * npcol = size(comm). */
typedef struct {
    MPI_Comm comm;
    MPI_Comm blacs_comm;   /* BLACS's own duplicate of comm (errors abort: BLACS checks no MPI return code) */
    int sys_handle;        /* BLACS system handle of blacs_comm */
    int ctxt;              /* BLACS context */
    int nprow, npcol;      /* grid shape */
    int myrow, mycol;      /* this rank's place */
    int nb;                /* block size */
} fr_dl_grid;

/* Build the grid over `comm` with block size nb. Collective over comm. */
fr_err fr_dl_grid_init(MPI_Comm comm, int nb, fr_dl_grid *g);
/* Release the grid and BLACS's duplicate (comm stays the caller's). Collective. */
void fr_dl_grid_free(fr_dl_grid *g);

/* Eigen-decomposition of a symmetric N x N matrix that every rank holds
 * (used by selftest and as the small-N path): the matrix is scattered into
 * block-cyclic form, solved with pdsyevd, and the result replicated.
 * evals come out in DESCENDING order; column j of evecs is the eigenvector
 * of evals[j], with the sign chosen so that its entry of largest magnitude
 * is positive. Collective over comm. */
fr_err fr_dl_eigh_replicated(MPI_Comm comm, int N, const double *S /* (N, N) */,
                             double *evals /* (N) */, double *evecs /* (N, N) */);

/* Distributed PCA. Each rank passes its own rows X_local (n_local may be 0
 * on some ranks). Computes the mean over all ranks' rows and the sample
 * covariance C = sum_rows (x - mean)(x - mean)^T / (n_total - 1)
 * (n_total >= 2 required), eigen-decomposes it with pdsyevd, and returns on
 * every rank: mean, all N eigenvalues in descending order, and the top
 * `want` eigenvectors as the columns of evecs (same sign convention as
 * fr_dl_eigh_replicated). For N > fr_dl_replicate_limit no rank holds the
 * full covariance: per-rank memory is O(N * nb + N^2 / P + 256 * N) beyond
 * the inputs and outputs. Collective over comm. */
fr_err fr_dl_pca(MPI_Comm comm, int N, long long n_local, const double *X_local /* (n_local, N) */,
                 int want, double *mean /* (N) */, double *evals /* (N) */,
                 double *evecs /* (N, want) */);

#endif
