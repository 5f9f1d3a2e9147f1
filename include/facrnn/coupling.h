/* coupling: do the fitted groups behave as independent sub-circuits over
 * time? Held-out "Granger" coupling between groups of latent trajectories:
 * how much better the latent of group g `lag` bins ahead is predicted from
 * every group's present latents than from group g's own; and how well each
 * group predicts itself (its predictability). Pure maths over
 * moments (no MPI, no files): callers sum the moments over ranks.
 * docs/selection.md explains why the sweep uses it. */
#ifndef FACRNN_COUPLING_H
#define FACRNN_COUPLING_H

#include "facrnn/analysis.h"
#include "facrnn/common.h"

/* Quadratic features (all products z_i z_j, i <= j) are used up to this K;
 * above it the features are linear (the moments grow as K^4). Any K works:
 * every buffer is sized from K (the moments take (2K)^2 doubles above it). */
#define FR_COUPLING_QUAD_MAX_K 10

/* Predictor features per latent vector: K linear (+ K (K + 1) / 2
 * products when quad). Not collective. */
int fr_coupling_nfeat(int K, int quad);

/* Feature vector of one standardised latent z (K): phi (nfeat) =
 * [z_1..z_K, z_1 z_1, z_1 z_2, ..., z_K z_K]. Not collective. */
void fr_coupling_features(int K, int quad, const double *z, double *phi);

/* Add the lagged pairs of n_trials trials to the moments: rows
 * [phi((z_t - mean) / sd), (z_{t+lag} - mean) / sd] (lag >= 1 bins, both
 * bins in the same trial) go to `train` when
 * is_train[k] and to `test` otherwise. lat (rows, K) holds the trials'
 * latents back to back, trial k in rows off[k]..off[k+1]-1 (off relative
 * to lat); rows with NaN (context bins) break no pair, they are skipped as
 * pair members. Both moments have dimension nfeat + K. Not collective. */
fr_err fr_coupling_pairs_add(fr_moments *train, fr_moments *test, int K, int quad, int lag, const double *mean /* (K) */,
                             const double *sd /* (K) */, long long n_trials, const long long *off /* (n_trials+1) */,
                             const unsigned char *is_train /* (n_trials) */, const double *lat /* (rows, K) */);

/* Coupling of each group from summed moments: fit z_g(t+lag) on the features
 * of group g alone and on the features of all groups (training pairs,
 * affine least squares with a tiny ridge), score both on the held-out
 * pairs, c_g = (SSE_own - SSE_all) / SSE_own. 0 means the other groups add
 * nothing (the group's dynamics are self-contained), 1 means they explain
 * everything its own past did not; small negative values are the noise of
 * fitting more predictors. *c_max = max_g c_g. G = 1 gives 0.
 * *pred_min (may be NULL) = min_g of the held-out R^2 of the own-features
 * fit, 1 - SSE_own / SST (SST about the held-out mean): how well the
 * weakest group predicts itself, near 0 for latents without dynamics.
 * Not collective. */
fr_err fr_coupling_from_moments(const fr_moments *train, const fr_moments *test, int K, int quad, int G,
                                const int *groups /* (G) */, double *c_group /* (G) or NULL */, double *c_max,
                                double *pred_min);

/* Slow reference: the same coupling from the pairs themselves, by explicit
 * least squares on feature matrices (normal equations per fit). For tests. */
fr_err fr_coupling_ref(int K, int quad, int lag, int G, const int *groups, long long n_trials, const long long *off,
                       const unsigned char *is_train, const double *lat, double *c_group, double *c_max,
                       double *pred_min);

#endif
