/* modes: the real eigenbasis ("dynamical modes") of a small linear latent
 * dynamics matrix F, the assignment of those modes to the model's groups,
 * and the same-function change of latent basis that puts them there. Used
 * by the PCA initialisation of partitioned models (docs/model.md, "Initialisation"):
 * independent linear sub-systems are invariant subspaces of F, so its real
 * eigenbasis separates them where a PCA basis mixes them arbitrarily.
 * Pure maths: no MPI, no files. Nothing here is collective.
 */
#ifndef FACRNN_MODES_H
#define FACRNN_MODES_H

#include "facrnn/common.h"

/* Real eigenbasis of F: with the real eigenvector matrix
 * V = [v (real eigenvalue) ..., Re v, Im v (complex pair) ...], T = V^{-1},
 * so the rows of T are the mode coordinates and T F T^{-1} is block diagonal
 * with a 1x1 block per real eigenvalue and a 2x2 block per complex-conjugate
 * pair (its two coordinates adjacent). Modes are ordered by decreasing
 * |lambda|, ties by increasing arg(lambda) in (-pi, pi] (a pair is
 * represented by its member with Im > 0), then by LAPACK's order. Each
 * column of V is scaled to unit norm and a real eigenvector's sign is fixed
 * by making its largest-magnitude entry positive, so equal F give equal T.
 * mode_size[i] (1 or 2) is the size of mode i, n_modes their number.
 * Fails with FR_ENUMERIC when F is not finite or V is numerically singular
 * (defective F: reciprocal condition number below 1e-12). Not collective. */
fr_err fr_modes_basis(int K, const double *F /* (K, K) row-major */, double *T /* (K, K) */,
                      int *mode_size /* (K) */, int *n_modes);

/* Assign modes (sizes 1 or 2, sum K) to G groups of sizes groups[g]
 * (sum K) so that every group is filled exactly and no 2-D mode is split:
 * backtracking first fit, modes in order, groups tried in order, so the
 * result is deterministic and the leading modes land in the first groups.
 * When no such assignment exists (e.g. groups [1, 1] with one complex
 * pair), 2-D modes are split into their two 1-D coordinates as a fallback,
 * starting from the last (smallest |lambda|) pair, one more pair at a time
 * until an assignment exists; *n_split (may be NULL) counts them.
 * The output is per coordinate: coord_group[i] is the group of coordinate i
 * of the mode basis (mode i's coordinates in order). Fails with FR_EINVAL
 * when the sizes do not add up (no assignment exists even with every pair
 * split). Not collective. */
fr_err fr_modes_assign(int n_modes, const int *mode_size /* (n_modes) */, int G, const int *groups /* (G) */,
                       int *coord_group /* (K) */, int *n_split);

/* Inverse of a small general matrix by LU (dgesv). FR_ENUMERIC when M is
 * exactly singular. Not collective. */
fr_err fr_modes_inverse(int K, const double *M /* (K, K) */, double *Minv /* (K, K) */);

/* Change of latent basis that leaves the model function unchanged: with
 * new latents mu' = P (mu - m) where mu = B h + d,
 *   B <- P B,  d <- P (d - m),  A <- A P^{-1},  c <- c + A m,
 * so A' mu' + c' = A mu + c for every h. Pinv = P^{-1}. Not collective. */
fr_err fr_modes_change_basis(int N, int K, const double *P /* (K, K) */, const double *Pinv /* (K, K) */,
                             const double *m /* (K) */, double *B /* (K, N) */, double *d /* (K) */,
                             double *A /* (N, K) */, double *c /* (N) */);

#endif
