/* multistep: the multi-step rollout term of the training loss
 * (train.rollout_steps, docs/model.md "Training for generation"). Pure C
 * over a local minibatch, no MPI or files; the trainer adds it to the
 * one-step loss of model.h and its gradient joins the one gradient
 * reduction.
 *
 * For a sample (trial with T bins, bin t >= L) and k = rollout_steps, the
 * model runs in mean mode (z = mu, no noise) from the true history before t:
 *     h_{t+j}   = sum_l psi_l sigma(x~_{t+j-l}),  x~_s = x_s for s < t,
 *                 x~_s = alpha x_s + (1 - alpha) mean(eta_s) for s >= t
 *     mu_{t+j}  = B h_{t+j} + d,   eta_{t+j} = A mu_{t+j} + c + E u_{t+j}
 * for j = 0..J, J = min(k - 1, T - 1 - t), and the sample's term is the mean
 * over j = 1..J of NLL(x_{t+j} | eta_{t+j}) (0 when J = 0: the window is cut
 * by the trial's end). alpha (generalised teacher forcing) is 1 for pure
 * teacher forcing and 0 for a free-running rollout. The loss adds
 *     weight * (1/M) sum_i mean_j NLL_ij.
 */
#ifndef FACRNN_MULTISTEP_H
#define FACRNN_MULTISTEP_H

#include "facrnn/common.h"
#include "facrnn/model.h"

typedef struct {
    int steps;     /* k >= 1; 1 = no term */
    double weight; /* lambda >= 0 */
    double alpha;  /* teacher forcing in [0, 1] */
} fr_ms_opts;

/* The local samples of a minibatch with their whole trials (trials are
 * never split over ranks, so a rollout's future bins are local). */
typedef struct {
    int m;
    const double *const *x; /* (m) each the trial's row 0: (T_i, N) */
    const double *const *u; /* (m) each (T_i, D), or NULL when D == 0 */
    const long long *t;     /* (m) the sample's bin, L <= t_i < T_i */
    const long long *T;     /* (m) the trial's number of bins */
} fr_ms_batch;

/* Teacher forcing at fraction `frac` in [0, 1) of a restart's steps: alpha
 * falls linearly from 1 to 0 over the first `anneal` of them (anneal in
 * [0, 1]; 0 = free-running from the first step). Not collective. */
double fr_ms_alpha(double anneal, double frac);

/* Scratch for rollouts of at most `steps` bins; allocate once. */
typedef struct fr_ms_ws fr_ms_ws;
fr_err fr_ms_ws_create(const fr_model *m, int steps, fr_ms_ws **ws);
void fr_ms_ws_free(fr_ms_ws *ws);

/* The term over the rows of b: *sum = sum_i mean_j NLL_ij (not weighted,
 * not divided by M), and, when grad is non-NULL, scale * d(*sum)/dparams
 * ADDED into grad (n_params); the trainer passes scale = weight / M. Not
 * collective. */
fr_err fr_ms_loss_grad(const fr_model *m, const double *params, const fr_ms_opts *o, const fr_ms_batch *b,
                       double scale, fr_ms_ws *ws, double *grad, double *sum);
/* Slow reference of fr_ms_loss_grad (same contract; plain loops, its own
 * allocations), for tests. */
fr_err fr_ms_loss_grad_ref(const fr_model *m, const double *params, const fr_ms_opts *o, const fr_ms_batch *b,
                           double scale, double *grad, double *sum);

#endif
