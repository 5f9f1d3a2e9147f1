/* fitted: one fitted run read back from a results file (fit or sweep), and
 * the exact model it was fitted with, for `facrnn eval` and
 * `facrnn simulate`. Rank 0 reads the file with serial HDF5 and broadcasts,
 * so the file is opened once whatever the number of ranks.
 *
 * The run's configuration is the root attribute `config` (resolved YAML)
 * with the run's own K, groups, beta, seed and fold laid over it from
 * /runs/<id>/metrics (a sweep stores its base config at the root). The
 * encoder std is the stored metrics attribute `encoder_std`, so the rebuilt
 * model is identical whatever data it is then applied to.
 */
#ifndef FACRNN_FITTED_H
#define FACRNN_FITTED_H

#include "facrnn/comm.h"
#include <stddef.h>

#include "facrnn/config.h"
#include "facrnn/dataset.h"
#include "facrnn/model.h"
#include "facrnn/fit_result.h"
#include "facrnn/standardize.h"

#define FR_RUN_ID_MAX 256

typedef struct {
    fr_config cfg;              /* the run's resolved configuration */
    char run_id[FR_RUN_ID_MAX];
    char input_checksum[32];    /* root attribute, "" if absent */
    double encoder_std;         /* metrics attribute encoder_std (> 0) */
    int N, K, D;                /* from params/A and params/E (D = 0 if absent) */
    size_t n_flat;
    double *flat;               /* (n_flat) params/flat */
    long long n_split;          /* 0 if /runs/<id>/split is absent */
    unsigned char *split;       /* (n_split) 1 = training trial */
    int std_zscore;             /* /runs/<id>/standardize attribute mode is "zscore" (absent: off) */
    double *std_mean, *std_std; /* (N each) its mean and std, or NULL under off */
    /* metrics stored by fit (NaN where absent) */
    fr_fit_metrics stored_train, stored_heldout;
    double stored_conn_r_W;
    double stored_conn_r_groups[FR_MAX_GROUPS]; /* (G) */
    int stored_conn_have;
} fr_fitted_run;

/* Read run `run_id` (NULL: the only run in the file; an error listing the
 * runs when there are several) from results file `path`. Collective over
 * comm (rank 0 reads, everyone receives). */
fr_err fr_fitted_run_load(MPI_Comm comm, const char *path, const char *run_id, fr_fitted_run *r);
void fr_fitted_run_free(fr_fitted_run *r);

/* The run's scale transform (its stored /runs/<id>/standardize; identity
 * for a results file without one). Allocates st. Not collective. */
fr_err fr_fitted_standardize(const fr_fitted_run *r, fr_standardize *st);

/* Data-set read options matching the run's config (as fit reads its data).
 * Not collective. */
void fr_fitted_read_opts(const fr_fitted_run *r, fr_read_opts *ro);

/* Does `ds` hold the data the run was fitted on (same checksum and trial
 * count as the stored split)? Not collective (every rank agrees: the
 * checksum is global). */
int fr_fitted_same_data(const fr_fitted_run *r, const fr_dataset *ds);

/* Build the run's model for data set `ds` with `n_train` training samples
 * (only the minibatch-size check depends on it; the encoder std is the
 * stored one), and check that params/flat fits it and that N and D of the
 * data match the fit. Not collective (the inputs are identical on every
 * rank, so every rank returns the same code). */
fr_err fr_fitted_model(const fr_fitted_run *r, const fr_dataset *ds, long long n_train, fr_model *m);

/* A fitted run applied to a data file: what eval, simulate and transform
 * all start from. */
typedef struct {
    fr_fitted_run run;
    fr_dataset ds;          /* sharded over the ranks like fit */
    unsigned char *split;   /* (n_trials) the stored split on the training data, else every trial 1 */
    int same;               /* ds is the data the run was fitted on */
    int heldout_any;        /* some trial of split is 0 */
    long long n_train;      /* samples of the split's training trials */
    long long Tmax;         /* longest trial */
    fr_model m;             /* the run's model */
    fr_standardize st;      /* the run's stored transform of the data (off for older files) */
} fr_fitted_data;

enum {
    FR_FD_ALL_INPUTS = 1,   /* read /inputs whether or not the model uses them */
    FR_FD_NO_TRUTH = 2,     /* do not read the ground truth */
    FR_FD_MODEL_UNITS = 4   /* apply st to ds.x in place: the data as the model saw it */
};

/* Load run run_id (NULL: the only one) of `results`, open `data` with the
 * run's read options (flags: FR_FD_*), the split, the model and the stored
 * standardisation (applied to ds.x with FR_FD_MODEL_UNITS). Collective over
 * comm (errors agreed); free with fr_fitted_data_free whatever it
 * returned. */
fr_err fr_fitted_data_open(MPI_Comm comm, const char *results, const char *run_id, const char *data, int flags,
                           fr_fitted_data *o);
void fr_fitted_data_free(fr_fitted_data *o);

#endif
