/* analysis: read-outs and metrics of a fitted model, as pure maths (no MPI,
 * no files). Metrics over many rows work on summed moments (fr_moments), so
 * a distributed caller accumulates its own rows, MPI_Allreduces the flat
 * buffer, and calls the *_from_moments function on every rank.
 * Nothing here is collective.
 */
#ifndef FACRNN_ANALYSIS_H
#define FACRNN_ANALYSIS_H

#include <stddef.h>

#include "facrnn/common.h"

/* ---- assignment ------------------------------------------------------------
 * Maximum-total-score assignment (Hungarian, O(n^3)); rectangular allowed:
 * min(nr, nc) pairs are made. assign[i] = matched column of row i, or -1. */
fr_err fr_hungarian_max(int nr, int nc, const double *score /* (nr, nc) */, int *assign /* (nr) */);

/* ---- moments ---------------------------------------------------------------
 * Sums over rows of a d-dimensional vector v: count, sum v, and sum v v^T.
 * All three live in one flat buffer `buf` of `len` doubles (count first),
 * so one MPI_Allreduce(SUM) over buf combines ranks. */
typedef struct {
    int d;
    size_t len;
    double *buf; /* (len) = [n, s (d), S (d, d)] */
    double *n;   /* row count */
    double *s;   /* (d) */
    double *S;   /* (d, d), full symmetric */
} fr_moments;

fr_err fr_moments_init(fr_moments *m, int d);
void fr_moments_free(fr_moments *m);
void fr_moments_clear(fr_moments *m);
/* Add rows v = [x, y] (x: (n, dx), y: (n, dy), dx + dy = d; y may be NULL
 * with dy = 0). Rows containing a NaN in any coordinate are skipped (the
 * results file marks context bins with NaN latents). */
fr_err fr_moments_add(fr_moments *m, long long n, int dx, const double *x, int dy, const double *y);

/* ---- affine least squares --------------------------------------------------
 * Fit y ~ W^T x + b over the rows summarised in m, with predictors the
 * coordinates xi[0..nx-1] and targets yi[0..ny-1] of v. The ridge adds
 * ridge * trace(Cxx) / nx to the diagonal of the centred predictor
 * covariance Cxx (scale-free; the intercept is not penalised). */
fr_err fr_affine_fit_moments(const fr_moments *m, int nx, const int *xi, int ny, const int *yi, double ridge,
                             double *W /* (nx, ny) */, double *b /* (ny) */);
/* Score a map on (possibly other) rows m: per-dimension R^2 = 1 - SSE/SST
 * (SST about these rows' mean; a target dimension with zero variance scores
 * 0) and their uniform mean. r2 may be NULL. */
fr_err fr_affine_score_moments(const fr_moments *m, int nx, const int *xi, int ny, const int *yi,
                               const double *W, const double *b, double *r2 /* (ny) */, double *r2_mean);
/* The tiny relative ridge used for in-sample latent R^2. */
#define FR_AN_TINY_RIDGE 1e-10

/* ---- latent R^2 against ground truth (docs/model.md, "Metrics") -------------
 * m summarises v = [z (K_fit), z* (K_true)] (fitted latents first). For each
 * (true group a, fitted group b) an affine map z_b -> z*_a is fitted in-sample
 * and its R^2 (uniform over a's dims) is r2_matrix[a][b]. The Hungarian
 * assignment maximises sum_a H*_a r2[a][assign[a]] (= the reported number).
 * The result is the R^2 of the concatenated matched predictions, uniform over
 * the K_true dimensions: sum_a H*_a r2[a][assign[a]] / K_true. A true group
 * left unmatched (G_true > G_fit) counts as R^2 = 0 for its dims: e.g. one
 * fitted group of 6 against true 3+3 can explain only one true group, 0.5.
 * r2_matrix and assign may be NULL. */
fr_err fr_latent_r2_from_moments(const fr_moments *m, int K_fit, int G_fit, const int *fit_groups, int K_true,
                                 int G_true, const int *true_groups, double *r2_matrix /* (G_true, G_fit) */,
                                 int *assign /* (G_true) */, double *r2);
/* Component latent R^2: the same with singleton groups on both sides. */
fr_err fr_component_r2_from_moments(const fr_moments *m, int K_fit, int K_true, double *r2);
/* Plain version on row arrays (n rows). */
fr_err fr_latent_r2(long long n, int K_fit, const double *z /* (n, K_fit) */, int G_fit, const int *fit_groups,
                    int K_true, const double *zt /* (n, K_true) */, int G_true, const int *true_groups,
                    double *r2_matrix, int *assign, double *r2);

/* ---- behaviour ---------------------------------------------------------------
 * train and test summarise v = [z (K), y (P)]. An affine ridge map z -> y is
 * fitted on train and scored on test (R^2 about the test mean, uniform over
 * the P dims). r2 may be NULL. */
fr_err fr_behavior_r2_from_moments(const fr_moments *train, const fr_moments *test, int K, int P, double ridge,
                                   double *r2 /* (P) */, double *r2_mean);

/* ---- behaviour alignment (docs/model.md, "Metrics", behavior_align_r2) -----
 * The FacRNN paper's monkey metric as this project reads it: cumulative
 * latents aligned to cumulative behaviour (hand position up to a constant).
 * fr_align_cumulate turns one trial of T bins (L context bins first) into
 * its T - L sample rows: C[t - L] = sum_{s = L..t} mu_s and, for velocity
 * behaviour (position = 0), Y[t - L] = sum_{s = L..t} b_s, for position
 * behaviour (position = 1) Y[t - L] = b_t - b_L. Rows of mu before L are
 * not read (they are NaN in the latents). */
void fr_align_cumulate(long long T, int L, int K, const double *mu /* (T, K) */, int P, const double *b /* (T, P) */,
                       int position, double *C /* (T - L, K) */, double *Y /* (T - L, P) */);
/* train and test summarise v = [C (K), Y (P)]. For every (column a, group g)
 * an affine ridge map C_g -> Y_a is fitted on train and scored on test:
 * r2_matrix[a][g]. P <= G: a Hungarian assignment (each group to at most one
 * column) maximises the summed R^2; P > G: each column takes its best group.
 * *r2 = the mean over the columns of their assigned R^2. *r2_all = the same
 * map from all K latents, mean over columns (no grouping). r2_matrix and
 * assign may be NULL. */
fr_err fr_behavior_align_r2_from_moments(const fr_moments *train, const fr_moments *test, int K, int G,
                                         const int *groups /* (G) sizes */, int P, double ridge,
                                         double *r2_matrix /* (P, G) */, int *assign /* (P) */, double *r2,
                                         double *r2_all);

/* ---- connectivity from thin factors (never forms N x N) --------------------
 * A is (N, K), B is (K, N). The block k0..k0+H-1 gives W_blk = A[:, blk] B[blk, :].
 * Thin SVD W_blk = U diag(s) V^T via QR of A[:, blk] and B[blk, :]^T and an
 * SVD of the H x H product of the R factors; s descending. U, V may be NULL.
 * With k0 = 0, H = K this is the LINT-style re-factorisation of W = A B.
 * Requires H <= N. */
fr_err fr_conn_svd(int N, int K, const double *A, const double *B, int k0, int H, double *s /* (H) */,
                   double *U /* (N, H) */, double *V /* (N, H) */);
/* Latent recurrence J = B A. */
void fr_conn_J(int N, int K, const double *A, const double *B, double *J /* (K, K) */);
/* Pearson r over the N^2 entries of W1 = A1 B1 and W2 = A2 B2, from traces of
 * small products, O(N K1 K2). lda/ldb are row strides, so a group block is
 * (A + k0, lda = K, B + k0 * N, ldb = N). r = 0 if either matrix is constant. */
fr_err fr_lowrank_pearson(int N, int K1, const double *A1, int lda1, const double *B1, int ldb1, int K2,
                          const double *A2, int lda2, const double *B2, int ldb2, double *r);
/* r of matched sub-connectivities: r[a] = Pearson(W_a of model 1, W_assign[a]
 * of model 2) for each group a of model 1; 0 where assign[a] = -1. */
fr_err fr_conn_pearson_groups(int N, int K1, const double *A1, const double *B1, int G1, const int *groups1,
                            int K2, const double *A2, const double *B2, int G2, const int *groups2,
                            const int *assign /* (G1) */, double *r /* (G1) */);

#endif
