/* dataset: the input HDF5 contract (docs/formats.md, "Input"),
 * strict collective validation, the shard plan, and parallel hyperslab reads
 * of each rank's own trials. Also cross-validation folds.
 *
 * Every rank holds the small per-trial metadata (offsets, conditions), the
 * small ground-truth parameters, and only its own contiguous block of
 * trials' rows of /data, /inputs, /behavior and /truth/latents. The file is
 * read once, here: the read-outs take the ground truth from fr_dataset.
 * Nothing here knows about training.
 */
#ifndef FACRNN_DATASET_H
#define FACRNN_DATASET_H

#include "facrnn/comm.h"
#include <stdint.h>

#include "facrnn/common.h"
#include "facrnn/standardize.h"

#define FR_INPUT_FORMAT_VERSION 1

typedef struct {
    int lags;           /* L: every trial must have at least L + 1 bins */
    int poisson;        /* 1: /data must hold non-negative integers;
                           -1: take the file's `observation` attribute */
    int read_inputs;    /* read /inputs if present */
    int read_behavior;  /* read /behavior if present */
    int read_truth;     /* read the ground truth if present: /truth/latents rows and
                           the parameters /truth/A, B, c, d */
} fr_read_opts;

/* Ground-truth parameters of a synthetic file (/truth/A, B, c, d), the same
 * on every rank; absent entries are NULL. */
typedef struct {
    int N, K;
    double *A; /* (N, K) */
    double *B; /* (K, N) */
    double *c; /* (N) */
    double *d; /* (K) */
} fr_truth_params;

typedef struct {
    char path[1024];
    /* global metadata, identical on every rank */
    long long n_trials;
    long long total_bins;
    int N;                      /* channels */
    int D;                      /* inputs (0 if absent or not read) */
    int P;                      /* behaviour columns (0 if absent or not read) */
    int behavior_position;      /* /behavior attribute kind: 1 "position", 0 "velocity" or absent */
    long long *offsets;         /* (n_trials + 1) */
    int *condition;             /* (n_trials) or NULL */
    char observation[16];       /* file attribute: "gaussian", "poisson" or "" */
    double bin_size_s;          /* 0 if absent */
    uint64_t checksum;          /* FNV-1a over /data (as doubles) and /trial_offsets, see
                                   fr_dataset_checksum_serial; the same at any rank count. With a
                                   /mask, each trial's hash continues over its mask bytes, and
                                   missing entries enter /data's as 0 */
    int truth_K;                /* width of /truth/latents, 0 if absent */
    int truth_G;                /* number of true groups */
    int truth_groups[64];       /* (truth_G) true group sizes */
    fr_truth_params truth;      /* /truth/A, B, c, d when read_truth (all NULL otherwise) */

    /* this rank's shard: trials [trial_lo, trial_hi), rows [row_lo, row_hi) */
    long long trial_lo, trial_hi;
    long long row_lo, row_hi;
    double *x;                  /* (row_hi - row_lo, N) */
    double *u;                  /* (rows, D) or NULL */
    double *behavior;           /* (rows, P) or NULL */
    double *truth_latents;      /* (rows, truth_K) or NULL */
    /* /mask (docs/formats.md): (rows, N) 1 = observed, 0 = missing, or NULL
     * when the file has none (every entry observed). Missing entries of x
     * hold 0 (any NaN there is gone), and 0 again in the model's units after
     * fr_std_apply with this mask: the encoder's fill, docs/model.md
     * "Missing values". */
    unsigned char *mask;
    /* /heldout_channels (docs/formats.md): co-smoothing channels the file
     * proposes, checked like data.heldout_channels; the same on every rank */
    int n_heldout;
    int *heldout;               /* (n_heldout) or NULL */
    /* non-NULL: x already holds the data in these model units (a single fit
     * applied its data.standardize transform in place, so the trainer needs
     * no z-scored copy); NULL: x is as read */
    const fr_standardize *in_model_units;
} fr_dataset;

/* Pure shard plan: contiguous trial ranges for `nranks` ranks, balancing the
 * number of samples (T_k - lags per trial), every trial exactly once.
 * first_trial (nranks + 1): rank r owns [first_trial[r], first_trial[r+1]).
 * Not collective. */
fr_err fr_shard_plan(long long n_trials, const long long *offsets, int lags, int nranks,
                     long long *first_trial);

/* Open, validate and read this rank's shard. Collective over comm: every
 * rank returns the same error code, with a one-line message naming the
 * dataset and the first offending index (e.g. "/data: NaN at row 1234,
 * column 5"). */
fr_err fr_dataset_open(MPI_Comm comm, const char *path, const fr_read_opts *opts, fr_dataset *ds);
void fr_dataset_free(fr_dataset *ds);

/* The checksum of fr_dataset_open computed from a whole data set held in
 * memory (reference for tests and for tools): FNV-1a 64 over the per-trial
 * FNV-1a 64 hashes of each trial's rows as native doubles, in trial order,
 * followed by the offsets as int64. Not collective. */
uint64_t fr_dataset_checksum_serial(long long n_trials, const long long *offsets, int N,
                                    const double *x /* (total_bins, N) */);

/* Fold assignment seed used by fit and sweep: fixed, so every training seed
 * of a sweep sees the same folds and fold averages are comparable. */
#define FR_CV_SEED 0x5eedf01dULL

/* Cross-validation split: split[k] = 1 for training trials, 0 for held-out,
 * for `folds` folds (folds == 1: all training), holding out fold `fold`.
 * Stratified by condition when non-NULL; deterministic in seed. Pure. */
fr_err fr_cv_split(long long n_trials, const int *condition, int folds, int fold, uint64_t seed,
                   unsigned char *split /* (n_trials) */);

#endif
