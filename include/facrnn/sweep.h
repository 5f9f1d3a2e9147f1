/* sweep: cross-validated sweeps over K, partitions, beta, seeds and folds,
 * and model selection. Owns the run list (pure), integer partitions, the
 * cost estimate and work-queue order, slices for job arrays, the manifest
 * of finished runs, the held-out independence null, and the selection rule.
 * The `facrnn sweep` command (teams, coordinator, assembly of the results
 * file) lives in sweep.c; everything declared here except fr_cmd_sweep is
 * pure (no MPI) so it can be unit-tested alone. Design: docs/selection.md.
 */
#ifndef FACRNN_SWEEP_H
#define FACRNN_SWEEP_H

#include <stdint.h>

#include "facrnn/common.h"
#include "facrnn/config.h"

#define FR_SWEEP_MAX_RUNS 100000  /* refuse larger sweeps (they are configuration mistakes) */
#define FR_SWEEP_ID_MAX 128
#define FR_SWEEP_REASON_MAX 256

/* ---- integer partitions ---------------------------------------------------
 * Every partition of K into non-increasing parts, in reverse lexicographic
 * order ([K], [K-1,1], ..., [1,...,1]), keeping those with at most
 * max_groups parts (0 = no bound) and every part >= min_size. Each partition
 * is written as [G, h1, ..., hG] into a row of `parts` (cap rows of
 * FR_CFG_MAX_GROUPS + 1 ints); parts may be NULL to count only. Fails when
 * more than `cap` partitions qualify or a partition has more than
 * FR_CFG_MAX_GROUPS parts. Not collective. */
fr_err fr_sweep_partitions(int K, int max_groups, int min_size, int (*parts)[FR_CFG_MAX_GROUPS + 1], int cap,
                           int *n);

/* ---- run list ------------------------------------------------------------- */
typedef struct {
    int index;                      /* position in the canonical run list */
    int K, G;
    int groups[FR_CFG_MAX_GROUPS];  /* (G) group sizes, sum K */
    double beta;
    long long seed;
    int fold;
    double cost;                    /* relative cost estimate (K^2 epochs restarts) */
    char id[FR_SWEEP_ID_MAX];       /* fr_run_id of the resolved run config */
} fr_sweep_run;

/* Expand the sweep keys of `base` into the canonical run list: for K in
 * sweep.ranks (as listed) x partitions of K (explicit lists in listed order,
 * or `all`, or model.groups / [K] when unset) x beta x seed x fold
 * 0..cv.folds-1, leaving out the runs no rule reads: the one-group
 * partition is planned at the smallest beta only (beta does not change it),
 * and multi-group partitions at beta = 0 only with
 * sweep.fit_unpenalised_partitions or at a K without the one-group
 * partition (docs/selection.md). Validates (empty lists, repeated K or
 * beta, partitions not summing to any K, a K with no partition, duplicate
 * runs, too many runs) before any work. *runs is allocated (free()). Not
 * collective. */
fr_err fr_sweep_expand(const fr_config *base, fr_sweep_run **runs, int *n);

/* The resolved configuration of one run: base with model.rank, model.groups,
 * train.beta, train.seed and cv.fold set. Not collective. */
void fr_sweep_run_config(const fr_config *base, const fr_sweep_run *run, fr_config *out);

/* Work-queue order: indices of runs sorted by cost, longest first, ties by
 * canonical index. order (n). Not collective. */
void fr_sweep_queue_order(const fr_sweep_run *runs, int n, int *order);

/* Slice I of N (0 <= I < N) of a run list, for job arrays: run `index` is in
 * the slice when index % N == I. Not collective. */
int fr_sweep_in_slice(int index, int slice_i, int slice_n);

/* ---- per-run records and the manifest ------------------------------------- */
typedef enum { FR_RUN_PENDING = 0, FR_RUN_DONE = 1, FR_RUN_FAILED = 2 } fr_run_status;

typedef struct {
    char id[FR_SWEEP_ID_MAX];
    int status;                     /* fr_run_status */
    char reason[FR_SWEEP_REASON_MAX]; /* why a run failed ("" when done) */
    double heldout_nll;             /* held-out NLL per bin */
    double heldout_r2;
    double heldout_pc;              /* evaluation PC of the held-out means (trainer's estimator) */
    double group_latent_r2;         /* held-out, NaN without ground truth */
    double train_nll;
    double pc_obs;                  /* PC of held-out means under the fitted partition (null's estimator) */
    double pc_null_mean, pc_null_sd;/* same under random rotations of the latent space */
    int epochs_done;
    double seconds;
    double objective;               /* training objective of the fit (compares seeds of one configuration) */
    double coupling;                /* held-out dynamical coupling between groups, max over groups and the rule's
                                       lags (coupling.h) */
    double predictability;          /* held-out R^2 of each group's next latent from its own present, worst group */
    double co_bps, co_r2;           /* held-out co-smoothing scores (fit metrics), NaN without held-out channels */
    double behavior_align_r2, behavior_align_all_r2; /* held-out behaviour alignment (fit metrics), NaN without /behavior */
} fr_sweep_record;

const char *fr_sweep_status_name(int status);

/* The per-run numbers of the sweep table, described once: /sweep/table
 * writes every one (after run_id, K, groups, beta, seed, fold, status), the
 * CSV those with csv = 1, in this order; a column added here appears in both
 * and in the docs' lists (docs/formats.md). */
typedef struct {
    const char *name; /* /sweep/table dataset and CSV column */
    double (*get)(const fr_sweep_run *run, const fr_sweep_record *rec);
    int is_count;     /* 1: written as an integer (epochs_done) */
    int csv;          /* 1: also a CSV column */
    const char *csv_fmt; /* printf format of the value in the CSV */
} fr_sweep_col;
enum { FR_SWEEP_NCOLS = 18 };
extern const fr_sweep_col fr_sweep_cols[FR_SWEEP_NCOLS];

/* Write records atomically (atomic.h) as a tab-separated text
 * file, one line per record, doubles printed exactly (%.17g), after a line
 * "# readout: <readout>" (fr_sweep_readout_text) naming the settings its
 * runs' selection read-outs were measured with. Not collective. */
fr_err fr_sweep_manifest_write(const char *path, const fr_sweep_record *recs, int n, const char *readout);
/* Read a manifest; a missing file gives n = 0. *recs allocated (free()).
 * readout (cap bytes, may be NULL) gets the file's readout line, "" when it
 * has none (v4 and older). Not collective. */
fr_err fr_sweep_manifest_read(const char *path, fr_sweep_record **recs, int *n, char *readout, size_t cap);
/* Match records to the run list by id: out[i] = the record of runs[i]
 * (status PENDING when absent). A done record wins over a failed one.
 * Not collective. */
void fr_sweep_records_match(const fr_sweep_run *runs, int n, const fr_sweep_record *recs, int nrec,
                            fr_sweep_record *out /* (n) */);

/* ---- held-out independence null -------------------------------------------- */
/* Selection settings, from the config keys sweep.se_rule, sweep.min_independence,
 * sweep.null_samples, sweep.null_max_points and sweep.null_nmc. */
typedef struct {
    double se_mult;          /* one-standard-error rule multiplier (1.0) */
    double min_independence; /* a partition is supported when mean - SE of its independence >= this (0.5) */
    int null_samples;        /* random rotations per run (8) */
    int null_max_points;     /* held-out points for the null's KDE (256) */
    int null_nmc;            /* Monte-Carlo samples per point (4) */
    double max_coupling;     /* a partition is supported when mean + SE of its coupling <= this (0.2) */
    int n_coupling_lags;     /* horizons of the coupling (bins); a run's coupling is the max over them */
    int coupling_lags[FR_CFG_MAX_LIST];
    double min_predictability; /* ... and mean - SE of its predictability >= this */
    int bootstrap;           /* resamples of the folds behind the selection's confidence (200; 0 = none) */
} fr_sweep_rule;
/* The documented defaults (the config's defaults). Not collective. */
void fr_sweep_rule_defaults(fr_sweep_rule *rule);
/* The rule's coupling horizons as text, joined by sep ("1, 4"). Not
 * collective. */
void fr_sweep_lags_text(const fr_sweep_rule *rule, const char *sep, char *buf, size_t cap);
/* The settings a finished run's read-outs (independence null, coupling,
 * predictability) depend on, as one line, e.g. "null_samples=8
 * null_max_points=256 null_nmc=4 coupling_lags=1,4": a sweep resumed with
 * other values would mix runs measured two ways. Not collective. */
void fr_sweep_readout_text(const fr_sweep_rule *rule, char *buf, size_t cap);
/* The rule of a resolved config (its sweep.* selection keys). Not collective. */
void fr_sweep_rule_from_config(const fr_config *cfg, fr_sweep_rule *rule);

/* PC of the n held-out means mu (n, K) under the fitted partition (pc_obs)
 * and under `null_samples` Haar-random rotations of the latent space with
 * the same group sizes (mean and sd). Deterministic in seed. Not collective. */
fr_err fr_sweep_pc_null(int K, int G, const int *groups, int n, const double *mu, double s_enc,
                        const fr_sweep_rule *rule, uint64_t seed, double *pc_obs, double *null_mean,
                        double *null_sd);

/* Independence score of one run: (null_mean - pc_obs) / null_mean, the
 * fraction of the PC of a random basis that the fitted partition removes;
 * NaN for G = 1 (PC is 0 by construction) or no null. Not collective. */
double fr_sweep_independence(const fr_sweep_run *run, const fr_sweep_record *rec);

/* ---- selection ------------------------------------------------------------- */
typedef struct {
    int K, G;
    int groups[FR_CFG_MAX_GROUPS];
    double beta;
    int n;                  /* done runs (folds x seeds) */
    double nll_mean, nll_se;
    double ind_mean, ind_se; /* independence score over the best-objective seed of each fold, NaN for G = 1 */
    double pc_mean;
    int n_folds;            /* folds with a done run: the evidence is each fold's best-objective seed */
    double coup_mean, coup_se; /* dynamical coupling over those runs, NaN for G = 1 */
    double pred_mean, pred_se; /* predictability over those runs, NaN for G = 1 */
    int in_band;            /* at the selected K, within the SE band of that K's best */
    int supported;          /* beta > 0, multi-group, ind_mean - ind_se >= min_independence,
                               coup_mean + coup_se <= max_coupling and
                               pred_mean - pred_se >= min_predictability */
} fr_sweep_score;

typedef struct {
    int n;                  /* configurations with at least one done run */
    fr_sweep_score *ranked; /* (n) sorted by nll_mean, then canonical order */
    int chosen;             /* index into ranked, -1 when nothing finished */
    int best;               /* index of the lowest nll_mean overall */
    char rule[1600];        /* the rule in words, with its parameters */
    char why[512];          /* why the winner won */
} fr_sweep_selection;

/* Apply the selection rule to the done runs (recs[i] belongs to runs[i]).
 * Not collective. */
fr_err fr_sweep_select(const fr_sweep_run *runs, const fr_sweep_record *recs, int n, const fr_sweep_rule *rule,
                       fr_sweep_selection *sel);
void fr_sweep_selection_free(fr_sweep_selection *sel);

/* How stable the selected answer (K and partition) is:
 *  - each (fold, seed) fit alone: the rule applied to the runs of one fold
 *    and seed (one run per configuration, so no standard errors);
 *  - a bootstrap over the folds: rule->bootstrap resamples of the F folds
 *    with replacement (a fold drawn twice counts twice), the rule applied to
 *    each. The folds are disjoint blocks of trials, so this resamples
 *    held-out trials in blocks with the fitted models held fixed.
 * Deterministic in seed. Not collective. */
#define FR_ANSWER_MAX 112 /* "K=%d <groups>" */
typedef struct {
    int units, units_agree;   /* (fold, seed) pairs with done runs; how many select the same answer alone */
    int boot_n, boot_agree;   /* bootstrap resamples; how many select the same answer */
    char alt[FR_ANSWER_MAX];  /* the most frequent other answer among the resamples ("" when none) */
    int alt_count;
    char text[480];           /* one line for the log and the results file */
} fr_sweep_confidence;
fr_err fr_sweep_confidence_of(const fr_sweep_run *runs, const fr_sweep_record *recs, int n, const fr_sweep_rule *rule,
                              const fr_sweep_selection *sel, uint64_t seed, fr_sweep_confidence *out);

/* Assemble the sweep's results file and CSV from the per-run files in
 * runs_dir and the records (selection included). Rank 0 only; not
 * collective (HDF5 on MPI_COMM_SELF). */
fr_err fr_sweep_assemble(const fr_config *base, const fr_sweep_run *runs, fr_sweep_record *recs, int n,
                         const fr_sweep_rule *rule, const char *runs_dir, int n_ranks);

#endif
