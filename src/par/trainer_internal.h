/* trainer_internal: the state and the internal interfaces shared by the
 * trainer's files. Not part of the public API.
 *   trainer.c         the loop: restarts, epochs, held-out tracking, the
 *                     choice of restart, signals, logging
 *   trainer_step.c    the trainer's state, the minibatch plan, one
 *                     distributed optimisation step, the training objective
 *   trainer_eval.c    evaluation: metrics and latents (fr_evaluate*)
 *   trainer_init.c    initialisation: PCA, the mode basis, the truth
 *   trainer_ckpt.c    the loop state and its checkpoint
 *   trainer_result.c  the fit result: the chosen restart and its final
 *                     evaluation
 */
#ifndef FACRNN_TRAINER_INTERNAL_H
#define FACRNN_TRAINER_INTERNAL_H

#include <math.h>
#include <string.h>

#include "facrnn/comm.h"

#include "facrnn/checkpoint.h"
#include "facrnn/config.h"
#include "facrnn/dataset.h"
#include "facrnn/fit_result.h"
#include "facrnn/model.h"
#include "facrnn/multistep.h"

/* ---- the trainer's state (trainer_step.c) ------------------------------------- */
typedef struct {
    MPI_Comm comm;
    int rank, size;
    const fr_config *cfg;
    const fr_dataset *ds;
    const unsigned char *split;
    fr_model model;
    fr_ws *ws;
    int N, K, D, L;
    long long rows;           /* local rows of data */
    double *sx;               /* (rows, N) cached sigma(x) (aliases ds->x for identity), or NULL:
                                 computed per step into sx_rows (data.sigma_cache_mb) */
    double *sx_rows;          /* (Mmax * L, N) this step's sigma(x_{t-l}) rows when sx is NULL */
    long long *sample_start;  /* (n_trials + 1) first global sample id of each trial */
    long long n_train;        /* global training samples */
    long long *train_ids;     /* (n_train) sorted global sample ids of training samples */
    long long *perm;          /* (n_train) this epoch's order */
    long long *sid_lo;        /* (size + 1) first global sample id owned by each rank */
    int M;                    /* nominal minibatch size */
    int n_batches;            /* per epoch */
    /* per-step buffers, sized for the largest minibatch (M + 1) */
    long long *batch;         /* (Mmax) sorted global sample ids */
    const double **xp, **sxp, **up; /* (Mmax), (Mmax*L), (Mmax) row pointers */
    const unsigned char **op; /* (Mmax) /mask row pointers, NULL without a mask */
    double *eps;              /* (Mmax, K) */
    double *pack_loc, *pack_all; /* (Mmax, 2K) */
    double *mu_all, *z_all, *dmu_all, *dz_rows; /* (Mmax, K) */
    int *counts, *displs;     /* (size) each rank's samples in this minibatch: count, first */
    int *pack_counts, *pack_displs; /* (size) the same in doubles of (mu|z) rows, for the Allgatherv */
    /* train.rollout_steps > 1: the rollout term (NULL/unused otherwise) */
    fr_ms_ws *ms_ws;
    double ms_alpha;          /* teacher forcing of this step, set from the step counter */
    const double **mxp, **mup; /* (Mmax) each sample's trial, row 0 of x and of u */
    long long *mt, *mT;       /* (Mmax) each sample's bin and its trial's length */
    size_t np;                /* n_params */
    double *params, *grad, *m1, *m2, *best;
    fr_adam_cfg adam;
} fr_trainer;

/* The tail of the reduced gradient buffer: loss sums and the stop flag.
 * TAIL_MS (the rollout term's sum) is last and reduced only when the term is
 * on, so a fit without it reduces exactly the buffer it always did. */
enum { TAIL_NLL, TAIL_KL, TAIL_PC, TAIL_STOP, TAIL_MS, TAIL_N };

/* The loss of one minibatch of len samples from its reduced tail sums:
 * (NLL + KL + beta PC) / len, plus lambda * rollout term / len when the
 * term is on (left out otherwise, so a fit without it computes the same
 * bits as before it existed). Not collective. */
static inline double fr_trainer_tail_loss(const fr_trainer *t, const double *tail, int len)
{
    double loss = (tail[TAIL_NLL] + tail[TAIL_KL] + t->model.spec.beta * tail[TAIL_PC]) / len;
    if (t->ms_ws) loss += t->cfg->rollout_weight * tail[TAIL_MS] / len;
    return loss;
}

/* Set up the state of a fit (training sample ids, model, buffers, Adam).
 * Collective over comm (one Allgather of the ranks' first sample ids); a
 * local failure is returned unagreed. */
fr_err fr_trainer_setup(fr_trainer *t, MPI_Comm comm, const fr_config *cfg, const fr_dataset *ds,
                        const unsigned char *split);
void fr_trainer_free(fr_trainer *t);
/* This epoch's order of the training samples, t->perm: a pure function of
 * (seed, epoch). Not collective. */
void fr_trainer_make_perm(fr_trainer *t, uint64_t seed, int epoch);
/* Start and length of minibatch b of an epoch in t->perm. Not collective. */
void fr_trainer_batch_bounds(const fr_trainer *t, int b, long long *start, int *len);
/* One optimisation step on minibatch t->batch[0..len) (update = 0: the loss
 * only). Returns the reduced loss sums and the stop flag in tail[].
 * Collective. */
fr_err fr_trainer_step(fr_trainer *t, int len, long step, uint64_t seed, int epoch, int update, double tail[TAIL_N]);
/* The training objective of t->params (see trainer_step.c). Collective. */
fr_err fr_trainer_objective(fr_trainer *t, double *obj);

/* ---- sigma(x) rows ------------------------------------------------------------- */
/* sigma(x) of one row, the same libm call as the cached copy, so the
 * per-step path gives bitwise the same numbers. */
static inline void fr_sigma_row(fr_nonlin nl, const double *x /* (N) */, double *out /* (N) */, int N)
{
    if (nl == FR_NL_IDENTITY) memcpy(out, x, (size_t)N * sizeof(double));
    else
        for (int n = 0; n < N; ++n) out[n] = tanh(x[n]);
}

/* Pointer to sigma(x) of local row `row`: into the cache when there is one,
 * else computed into `scratch` (N). */
static inline const double *fr_sigma_ptr(const fr_model *m, const fr_dataset *ds, const double *cache,
                                         long long row, double *scratch)
{
    int N = m->spec.N;
    if (cache) return cache + row * N;
    fr_sigma_row(m->spec.nonlin, ds->x + row * N, scratch, N);
    return scratch;
}

/* ---- evaluation (trainer_eval.c) ------------------------------------------------ */
/* Predictions of a parameter vector on a data set's local rows, chunk by
 * chunk of at most `cap` rows through a workspace of that capacity. */
typedef struct {
    const fr_model *m;
    const double *params;
    const fr_dataset *ds;
    const double *sx; /* (rows, N) sigma(x) cache, or NULL: rows computed per chunk into sx_rows */
    fr_ws *ws;
    int cap;          /* rows per chunk (ws capacity) */
    const double **xp, **sxp, **up;
    const unsigned char **op; /* (cap) /mask row pointers, NULL without a mask */
    double *sx_rows;  /* (cap * L, N) when sx is NULL */
    double *mu, *eta, *nll; /* (cap, K), (cap, N), (cap) */
    /* Poisson baseline of bits/spike: the floored mean rate of each channel
     * on the training trials of rate_split and its log, (N) each in one
     * allocation; NULL until the first full Poisson evaluation. */
    double *rate, *log_rate;
    const unsigned char *rate_split;
} fr_eval_ctx;

/* sx: the sigma(x) cache (rows, N) or NULL (rows computed per chunk). Not
 * collective. */
fr_err fr_eval_ctx_init(fr_eval_ctx *c, const fr_model *m, const double *params, const fr_dataset *ds,
                        const double *sx, fr_ws *ws, int cap);
void fr_eval_ctx_free(fr_eval_ctx *c);
/* Predict local rows [r0, r0 + n), n <= cap (all with t >= L inside one
 * trial) into c->mu, c->eta, c->nll. Not collective. */
fr_err fr_eval_chunk(fr_eval_ctx *c, long long r0, int n);
/* Means for every local bin: lat (rows, K), NaN in each trial's first L
 * context bins. Not collective. */
fr_err fr_eval_latents(fr_eval_ctx *c, double *lat);
/* Metrics on the training (which = 1) or held-out (which = 0) trials; the
 * read-out entries stay NaN. Collective over comm. */
fr_err fr_eval_metrics(MPI_Comm comm, fr_eval_ctx *c, const unsigned char *split, int which, fr_fit_metrics *out);
/* The NLL per bin alone on the same trials, the same number as
 * fr_eval_metrics' nll_per_bin (the same local sums): what the held-out tracking needs during
 * training, without PC, TC, R^2 and bits/spike. Collective over comm. */
fr_err fr_eval_nll(MPI_Comm comm, fr_eval_ctx *c, const unsigned char *split, int which, double *nll_per_bin);

/* ---- initialisation (trainer_init.c) -------------------------------------------- */
/* PCA initialisation of t->params for restart `restart` (writes the PCA
 * eigenvalues (N) to evals_out when non-NULL). Collective over t->comm. */
fr_err fr_trainer_init_pca(fr_trainer *t, uint64_t seed, int restart, double *evals_out);
/* t->params from the data set's ground-truth parameters. Not collective
 * (every rank holds the same truth and returns the same code). */
fr_err fr_trainer_init_truth(fr_trainer *t);

/* ---- the loop state and its checkpoint (trainer_ckpt.c) ------------------------- */
/* The loop's counters and running sums: all doubles, so the checkpoint
 * stores them as named scalars (counters stay exact below 2^53). */
typedef struct {
    double restart, epoch, batch, step, best_score, best_epoch;
    double acc_loss, acc_nll, acc_kl, acc_pc, acc_n;
    double sel_objective, sel_restart, sel_best_epoch, steps_total, sel_best_score;
    double race_round;        /* train.restart_schedule halving: the round in progress (0 otherwise) */
} fr_loop_state;
#define FR_LOOP_NSCALAR ((int)(sizeof(fr_loop_state) / sizeof(double)))

typedef struct {
    int n_restarts;                                             /* R */
    double *history, *sel_params, *sel_history, *objective_all; /* (E*NCOL), (np), (E*NCOL), (R) */
    double *pca_evals;                                          /* (N), NaN unless model.init is pca */
    double *sel_best;                                           /* (np) best-held-out params of the chosen restart */
    /* Successive halving (train.restart_schedule halving; NULL otherwise):
     * every restart's state between rounds. */
    double *race_slots;       /* (R, 4 np) params | Adam m1 | Adam m2 | best-held-out params */
    double *race_hist;        /* (R, E * FR_H_NCOL) history */
    double *race_scal;        /* (R, FR_RS_N) the named scalars below */
} fr_loop_arrays;

/* The scalars of a restart's slot: its loop counters, best-held-out
 * tracking, its latest training objective and whether it is still in the
 * race. */
enum { FR_RS_EPOCH, FR_RS_STEP, FR_RS_BEST_SCORE, FR_RS_BEST_EPOCH, FR_RS_OBJECTIVE, FR_RS_ALIVE, FR_RS_N };

/* The loop arrays of trainer t for R restarts, with the NaNs of "not yet":
 * objective_all and pca_evals NaN; the race slots when t->cfg asks for
 * successive halving, every restart alive at epoch 0. Not collective. */
fr_err fr_loop_arrays_alloc(fr_loop_arrays *la, const fr_trainer *t, int R);
void fr_loop_arrays_free(fr_loop_arrays *la);

/* Write the loop state, the trainer's parameters and Adam moments to path
 * (NULL: no checkpoint) atomically. Collective over t->comm (rank 0 writes,
 * the status is agreed). */
fr_err fr_trainer_ckpt_save(fr_trainer *t, const char *path, const fr_ckpt_tag *tag, fr_loop_state *ls,
                            fr_loop_arrays *la);
/* Read them back; refuses a checkpoint of another config, data set or
 * layout. Collective over t->comm. */
fr_err fr_trainer_ckpt_load(fr_trainer *t, const char *path, const fr_ckpt_tag *tag, fr_loop_state *ls,
                            fr_loop_arrays *la);

/* ---- the result (trainer_result.c) --------------------------------------------- */
/* Fill out from the loop's final state: the chosen restart's arrays move
 * from la into out (heldout: some trial is held out); then the final
 * metrics, latents and read-outs. Collective over t->comm. */
fr_err fr_trainer_result(fr_trainer *t, const fr_loop_state *ls, fr_loop_arrays *la, int heldout,
                         fr_fit_result *out);

#endif
