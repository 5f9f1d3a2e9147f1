/* fit_result: what one fit produces, independent of how it was computed or
 * where it is stored: the metrics of a set of trials, the per-epoch history
 * columns and the fit result itself. The trainer fills fr_fit_result, the
 * results writer stores it, the fitted-run reader reads the metrics back and
 * the read-outs add their entries; none of them needs the others' headers.
 */
#ifndef FACRNN_FIT_RESULT_H
#define FACRNN_FIT_RESULT_H

#include "facrnn/model.h"
#include "facrnn/standardize.h"

/* Wall-time phases of a fit, for the `phases:` line at its end:
 *   startup     process start (or the previous sweep fit's end), config, data
 *   init        the trainer's set-up, initial parameters (PCA, mode basis)
 *   training    optimisation steps, the restarts' training objectives
 *   evaluation  in-training held-out NLL, final metrics, latents, read-outs
 *   output      checkpoints and the results file
 * A clock charges the time between two switches to the phase it was in:
 * one fr_wtime() per switch, so switching per epoch costs nothing. */
enum { FR_PH_STARTUP, FR_PH_INIT, FR_PH_TRAIN, FR_PH_EVAL, FR_PH_OUTPUT, FR_PH_N };

typedef struct {
    double s[FR_PH_N]; /* seconds charged to each phase */
    int cur;           /* the phase the clock is in */
    double since;      /* fr_wtime() of the last switch */
} fr_phases;

/* Start a clock in `phase` at time t0 (an fr_wtime() value). Not collective. */
void fr_phases_start(fr_phases *p, int phase, double t0);
/* Charge the time since the last switch to the current phase, then switch
 * to `phase` (the same phase: just bring the sums up to date). Not collective. */
void fr_phases_enter(fr_phases *p, int phase);
/* Take in the sums of an inner clock q that ran while p was in its current
 * phase (fr_train's inside a command's): p's current phase keeps only the
 * time q did not account for. Not collective. */
void fr_phases_absorb(fr_phases *p, const fr_phases *q);
/* Log "phases: startup X s (a%), init ..., output V s (e%)" at INFO (rank 0
 * prints). Not collective. */
void fr_phases_log(const fr_phases *p);

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
    double behavior_align_r2;     /* cumulative latents of a group per behaviour column (NaN if no /behavior) */
    double behavior_align_all_r2; /* the same from all K latents */
    double co_bps;          /* co-smoothing, Poisson: bits/spike of the held-out channels against their mean rate */
    double co_r2;           /* co-smoothing: one-step R^2 of the held-out channels (NaN without them) */
    long long n_samples;
} fr_fit_metrics;

typedef struct {
    fr_model model;
    fr_standardize standardize; /* the data's scale transform the model was fitted in (stored with the run) */
    double *params;          /* (n_params) final parameters of the chosen restart */
    double *best_heldout_params; /* (n_params) its parameters at the best held-out NLL (eval cadence) */
    double best_heldout_nll; /* held-out NLL per bin at best_epoch (inf without held-out trials) */
    double *history;         /* (epochs, FR_H_NCOL) of the chosen restart */
    int epochs_done;
    fr_fit_metrics train, heldout;
    double objective;        /* training objective of the chosen restart's final parameters: the loss
                                averaged over one pass with fixed minibatches and noise */
    double *objective_all;   /* (restarts_done) training objective of every restart */
    int restart_chosen;
    int restarts_done;
    int best_epoch;          /* epoch of best_heldout_params */
    long long steps;
    double seconds;
    fr_phases phases;        /* fr_train's wall time by phase (no startup; output = checkpoints) */
    double *latents;         /* (ds->row_hi - ds->row_lo, K) local means, NaN in context bins */
    double *pca_evals;       /* (N) eigenvalues of cov(sigma(x)) on training rows, descending, or NULL */
    int n_unobserved;        /* channels with no observed entry (/mask) on the training trials */
    int *unobserved;         /* (n_unobserved) their indices, ascending, or NULL */
    int conn_have;           /* 1 when /truth/A and /truth/B were compared */
    double conn_r_W;         /* Pearson r of W = A B against the truth */
    double conn_r_groups[FR_MAX_GROUPS]; /* (G) r of each W_g with its matched true group */
} fr_fit_result;

/* The fit metrics, described once: the results writer and reader, eval's
 * JSON, CSV and table, and the fit's log lines all walk this table, so a
 * metric added here appears everywhere under one name. */
typedef struct {
    const char *name;  /* attribute, JSON and CSV name ("<set>_" prefixed in results files) */
    const char *label; /* in log lines */
    const char *fmt;   /* printf format of the value in log lines */
    size_t off;        /* offsetof(fr_fit_metrics, field) */
    int is_count;      /* 1: the field is a long long (n_samples), else a double */
} fr_metric_def;
enum { FR_N_METRICS = 13 };
extern const fr_metric_def fr_metric_defs[FR_N_METRICS];
/* Metric i of m as a double (counts converted). Not collective. */
double fr_metric_get(const fr_fit_metrics *m, int i);
/* Set metric i (a count is rounded; NaN stores 0). Not collective. */
void fr_metric_set(fr_fit_metrics *m, int i, double v);
/* One log line's worth of text: "label value  label value ...". Not collective. */
void fr_metrics_text(const fr_fit_metrics *m, char *buf, size_t cap);

/* Every metric NaN, n_samples 0: "not computed". Not collective. */
void fr_fit_metrics_nan(fr_fit_metrics *m);

/* Free the result's buffers and zero it. Not collective. */
void fr_fit_result_free(fr_fit_result *r);

#endif
