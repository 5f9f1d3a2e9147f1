/* trainer: the data-parallel fitting loop around the pure model core.
 * Owns epochs, the global minibatch plan, the Allgatherv of (mu, z), the
 * small Allreduce of dL/dmu, the one Allreduce of the flat gradient, Adam,
 * held-out evaluation, signals, checkpoints and restarts. Knows nothing of
 * file layouts (results are written by the caller from fr_fit_result).
 *
 * Rank invariance: the minibatch plan is a pure function of (seed, epoch)
 * over global sample ids; a minibatch is processed in sorted sample-id
 * order, so each rank's samples form one contiguous block and every
 * per-row computation happens in the same order at any number of ranks; eps
 * is keyed by (seed, epoch, global sample id).
 */
#ifndef FACRNN_TRAINER_H
#define FACRNN_TRAINER_H

#include "facrnn/comm.h"

#include "facrnn/config.h"
#include "facrnn/dataset.h"
#include "facrnn/model.h"

/* History columns, one row per epoch. */
enum { FR_H_EPOCH, FR_H_LOSS, FR_H_NLL, FR_H_KL, FR_H_PC, FR_H_HELDOUT_NLL, FR_H_NCOL };

typedef struct {
    double nll_per_bin;     /* mean over samples of sum_n NLL */
    double r2;              /* one-step R^2, uniform over channels */
    double bits_per_spike;  /* Poisson only (NaN otherwise) */
    double pc;              /* evaluation PC estimator on the means */
    double tc;              /* same with G = K */
    double group_latent_r2; /* vs /truth/latents (NaN if absent) */
    double component_latent_r2;
    double behavior_r2;     /* NaN if no /behavior */
    long long n_samples;
} fr_fit_metrics;

typedef struct {
    fr_model model;
    double *params;          /* (n_params) final parameters of the chosen restart */
    double *best_heldout_params; /* (n_params) its parameters at the best held-out NLL (eval cadence) */
    double best_heldout_nll; /* held-out NLL per bin at best_epoch (inf without held-out trials) */
    double *history;         /* (epochs, FR_H_NCOL) of the chosen restart */
    int epochs_done;
    fr_fit_metrics train, heldout;
    double objective;        /* training objective of the chosen restart's final parameters: the loss
                                averaged over one pass with fixed minibatches and noise */
    double objective_all[64];/* per restart */
    int restart_chosen;
    int restarts_done;
    int best_epoch;          /* epoch of best_heldout_params */
    long long steps;
    double seconds;
    double *latents;         /* (ds->row_hi - ds->row_lo, K) local means, NaN in context bins */
    double *pca_evals;       /* (N) eigenvalues of cov(sigma(x)) on training rows, descending, or NULL */
    int conn_have;           /* 1 when /truth/A and /truth/B were compared */
    double conn_r_W;         /* Pearson r of W = A B against the truth */
    double conn_r_groups[FR_MAX_GROUPS]; /* (G) r of each W_g with its matched true group */
} fr_fit_result;

/* Fit one configuration. Collective over comm (all ranks hold their shard of
 * `ds`; split is identical everywhere). Resumes from ckpt_path when it exists
 * and matches; writes checkpoints there (NULL: no checkpoints). Returns
 * FR_ESIGNAL after checkpointing when SIGTERM/SIGUSR1 arrived. */
fr_err fr_train(MPI_Comm comm, const fr_config *cfg, const fr_dataset *ds, const unsigned char *split,
                const char *ckpt_path, fr_fit_result *out);
void fr_fit_result_free(fr_fit_result *r);

/* Build the model spec from config + data + training-set size. Not collective. */
fr_err fr_trainer_model_spec(const fr_config *cfg, const fr_dataset *ds, long long n_train, fr_model_spec *spec);

/* Optional hook called once after every optimisation step, on every rank of
 * every fit (NULL: none). The sweep coordinator uses it to service its work
 * queue without a thread; it must not make collective calls. Not collective. */
void fr_trainer_set_between_steps(void (*fn)(void *ctx), void *ctx);

/* Install SIGTERM/SIGUSR1 handlers that request a checkpoint-and-stop at the
 * next step boundary. Not collective. */
void fr_trainer_install_signals(void);
/* Nonzero once a stop signal arrived. */
int fr_trainer_stop_requested(void);

/* Metrics of `params` on the training (which = 1) or held-out (which = 0)
 * trials. Collective over comm. */
fr_err fr_trainer_evaluate(MPI_Comm comm, const fr_model *m, const double *params, const fr_dataset *ds,
                           const unsigned char *split, int which, fr_fit_metrics *out);

/* Encoder means mu (z = mu) for every local bin of `ds`: latents
 * (ds->row_hi - ds->row_lo, K), NaN in each trial's first L context bins;
 * the same numbers fit writes to /runs/<id>/latents. Used by `facrnn eval`.
 * Collective over comm (errors are agreed). */
fr_err fr_trainer_latents(MPI_Comm comm, const fr_model *m, const double *params, const fr_dataset *ds,
                          double *latents);

/* Load the data set (validated) and the cross-validation split for one fit
 * from the config; allocates *split (n_trials). Collective. */
fr_err fr_fit_prepare(MPI_Comm comm, const fr_config *cfg, fr_dataset *ds, unsigned char **split);

#endif
