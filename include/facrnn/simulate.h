/* simulate: generative rollouts of a fitted FacRNN and their perturbations
 * (docs/model.md, "Simulate a fitted run"). Pure maths over one trial at a
 * time, no MPI or files; `facrnn simulate` (src/cmd/simulate.c) shards trials
 * over ranks and writes the result in the input format.
 *
 * From the first L observed bins of a trial, for t = L .. T-1:
 *     h_t   = sum_l psi_l sigma(xhat_{t-l})        (silenced channels: 0)
 *     mu_t  = B h_t + d
 *     z_t   = mu_t                  (mean)   or  mu_t + s_enc eps   (sampled)
 *     eta_t = A z_t + c + E u_t
 *     xhat_t = mean(eta_t)          (mean: eta for Gaussian, the rate
 *                                    lambda = link(eta) for Poisson)
 *            or a draw of the observation model (sampled: eta + exp(s) e for
 *                                    Gaussian, Poisson(lambda) counts)
 * and xhat_t (silenced channels set to 0) is fed back. Sampled draws are
 * counter-based, keyed by (seed, global trial id, t, latent or channel), so
 * a rollout does not depend on how trials are spread over ranks.
 */
#ifndef FACRNN_SIMULATE_H
#define FACRNN_SIMULATE_H

#include <stdint.h>

#include "facrnn/common.h"
#include "facrnn/model.h"
#include "facrnn/rng.h"

typedef enum { FR_SIM_MEAN = 0, FR_SIM_SAMPLED = 1 } fr_sim_mode;

/* Poisson counts above this rate are drawn as round(max(0, lambda +
 * sqrt(lambda) e)) instead of by exact inversion (documented). */
#define FR_SIM_POISSON_NORMAL_ABOVE FR_RNG_POISSON_NORMAL_ABOVE

typedef struct {
    fr_sim_mode mode;
    uint64_t seed;                 /* sampled mode */
    const unsigned char *silence;  /* (N) 1 = channel silenced, or NULL */
} fr_sim_opts;

/* Scratch for trials of at most T_max bins; allocate once per process. */
typedef struct fr_sim_ws fr_sim_ws;
fr_err fr_sim_ws_create(const fr_model *m, long long T_max, fr_sim_ws **ws);
void fr_sim_ws_free(fr_sim_ws *ws);

/* Roll out one trial of T bins (T > L). x (T, N) observed activity (only
 * its first L rows are read), u (T, D) known inputs or NULL when D = 0,
 * trial = global trial id (rng key). Writes xhat (T, N): rows < L are the
 * observed context, later rows the rollout; silenced channels are 0
 * everywhere. Not collective. */
fr_err fr_sim_trial(const fr_model *m, const double *params, const fr_sim_opts *o, long long trial, long long T,
                    const double *x, const double *u, double *xhat, fr_sim_ws *ws);
/* Slow, direct reference of fr_sim_trial (plain loops, no BLAS, allocates);
 * same contract. For tests. */
fr_err fr_sim_trial_ref(const fr_model *m, const double *params, const fr_sim_opts *o, long long trial,
                        long long T, const double *x, const double *u, double *xhat);

/* Zero group g's sub-connectivity in params (n_params): columns A[:, g] and
 * rows B[g, :], so W_g = 0 and the group's latents no longer reach any
 * channel. FR_EINVAL when g is out of range. Not collective. */
fr_err fr_sim_remove_group(const fr_model *m, double *params, int g);

/* Poisson draw keyed by (seed, stream FR_STREAM_SIM, a, b). Not collective. */
double fr_sim_poisson(double lambda, uint64_t seed, uint32_t a, uint64_t b);

/* R^2 of sim against x over rows [r0, r1) of (rows, N) arrays, per channel
 * (1 - SSE/SST), averaged uniformly over channels that are not silenced and
 * have SST > 0; NaN when none. obs (rows, N): only entries with obs = 1
 * count (missing values), or NULL: all. Not collective. */
double fr_sim_r2(int N, long long r0, long long r1, const double *x, const double *sim,
                 const unsigned char *silence, const unsigned char *obs);

#endif
