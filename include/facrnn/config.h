/* config: the YAML configuration of a fit or sweep. One option table (key,
 * type, default, range, help) drives parsing, `--set key=value` overrides,
 * validation, defaults and the resolved-YAML echo. Rank 0 parses; the
 * status is broadcast before the struct, so a bad config stops every rank
 * cleanly. docs/config.md documents every key; it is generated from the
 * table by `facrnn config --markdown` (fr_config_write_markdown).
 */
#ifndef FACRNN_CONFIG_H
#define FACRNN_CONFIG_H

#include "facrnn/comm.h"
#include <stdint.h>
#include <stdio.h>

#include "facrnn/common.h"
#include "facrnn/model.h"

/* Every limit below is stated once and enforced by the option table with its
 * normal one-line message; where the model has the limit, the config uses
 * the model's constant. */
#define FR_CFG_PATH_MAX 1024
#define FR_CFG_MAX_LIST 64       /* longest list (ranks, betas, seeds) */
#define FR_CFG_MAX_HELDOUT 1024  /* longest data.heldout_channels */
#define FR_CFG_MAX_PARTS 256     /* explicit sweep partitions */
#define FR_CFG_MAX_GROUPS FR_MAX_GROUPS /* groups of a model or a partition: the model's limit */
#define FR_CFG_MAX_RANK 4096     /* largest K (model.rank, sweep.ranks) and so largest group */
#define FR_CFG_YAML_MAX (1 << 18) /* a buffer this large always holds fr_config_to_yaml's output */

typedef struct {
    /* data */
    char data_path[FR_CFG_PATH_MAX];      /* data.path (required for fit/sweep) */
    char observation[16];                 /* data.observation: "", "gaussian", "poisson" ("" = file attribute) */
    char standardize[16];                 /* data.standardize: "auto" (default), "zscore", "off" */
    int sigma_cache_mb;                   /* data.sigma_cache_mb: precompute sigma(x) up to this size per rank (64) */

    int n_heldout_channels;                /* length of data.heldout_channels */
    int heldout_channels[FR_CFG_MAX_HELDOUT]; /* data.heldout_channels: channels the encoder never reads */
    /* model */
    int rank;                              /* model.rank K (default 6) */
    int n_groups;                          /* length of model.groups (0 = [K]) */
    int groups[FR_CFG_MAX_GROUPS];         /* model.groups */
    int lags;                              /* model.lags L (default 1) */
    int psi_learned;                       /* model.psi == "learned" */
    int n_psi;                             /* length of the fixed psi list (0 = uniform 1/L) */
    double psi[FR_MAX_LAGS];               /* model.psi fixed weights (one per lag) */
    char nonlinearity[16];                 /* "tanh" (default) | "identity" */
    char link[16];                         /* "softplus" (default) | "exp" */
    int inputs;                            /* model.inputs (default true) */
    double encoder_std;                    /* model.encoder_std: <= 0 means auto */
    char init[16];                         /* "uniform" | "pca" (default "pca") */

    /* train */
    char optimizer[16];                    /* "adam" | "adamw" (default adamw) */
    double lr;                             /* peak learning rate, 3e-3 */
    char lr_schedule[16];                  /* "cosine" (default) | "constant" */
    double weight_decay;                   /* 0 */
    int batch_size;                        /* M = 128 */
    int epochs;                            /* default 300 */
    double beta;                           /* 20 */
    int rollout_steps;                     /* k: multi-step rollout term, 1 = off (default) */
    double rollout_weight;                 /* lambda, 1 */
    double rollout_anneal;                 /* fraction of a restart's steps over which alpha falls 1 -> 0, 0.5 */
    long long seed;                        /* 0 */
    int eval_every;                        /* epochs, default 10 */
    int checkpoint_every;                  /* epochs, default 50 (0 = never) */
    int restarts;                          /* default 8 */
    char restart_schedule[16];             /* "halving" (default: successive halving) | "all" */
    int log_every;                         /* epochs between progress lines, default 10 */

    /* cv */
    int folds;                             /* default 5 (1 = no held-out) */
    int fold;                              /* default 0 */

    /* sweep */
    int n_sweep_ranks;
    int sweep_ranks[FR_CFG_MAX_LIST];      /* sweep.ranks */
    int sweep_partitions_all;              /* sweep.partitions == "all" */
    int n_sweep_partitions;
    int sweep_partitions[FR_CFG_MAX_PARTS][FR_CFG_MAX_GROUPS + 1]; /* each: [G, h1, ..., hG] */
    int sweep_max_groups;                  /* bound on "all" (0 = none) */
    int sweep_min_group_size;              /* bound on "all" (default 1) */
    int n_sweep_betas;
    double sweep_betas[FR_CFG_MAX_LIST];
    int n_sweep_seeds;
    long long sweep_seeds[FR_CFG_MAX_LIST];
    int sweep_fit_unpenalised;             /* sweep.fit_unpenalised_partitions: also fit beta = 0 multi-group
                                              partitions (default false) */
    int ranks_per_fit;                     /* team size (default 1) */
    /* selection rule (docs/selection.md) */
    double sweep_se_rule;                  /* sweep.se_rule: one-SE rule multiplier (1.0) */
    double sweep_min_independence;         /* sweep.min_independence: support threshold (0.5) */
    double sweep_max_coupling;             /* sweep.max_coupling: dynamical coupling threshold (0.2) */
    int n_sweep_coupling_lags;
    int sweep_coupling_lags[FR_CFG_MAX_LIST]; /* sweep.coupling_lags: horizons of the coupling, in bins */
    double sweep_min_predictability;       /* sweep.min_predictability: each group must predict itself */
    int sweep_null_samples;                /* sweep.null_samples: random rotations per run (8) */
    int sweep_null_max_points;             /* sweep.null_max_points: held-out points in the null's KDE (256) */
    int sweep_bootstrap;                   /* sweep.bootstrap: fold resamples of the selection's confidence (200) */
    int sweep_null_nmc;                    /* sweep.null_nmc: Monte-Carlo samples per point (4) */

    /* output */
    char output_path[FR_CFG_PATH_MAX];     /* output.path (default "facrnn_results.h5") */
    char checkpoint_dir[FR_CFG_PATH_MAX];  /* output.checkpoint_dir (default "<output.path>.ckpt") */
    int connectivity_max_n;                /* output.connectivity_max_n: dense W_g only when N <= this (2000) */
} fr_config;

/* Fill every field with its documented default. Not collective. */
void fr_config_defaults(fr_config *cfg);

/* Parse the YAML file `path` (NULL: defaults only), then apply `nset`
 * overrides "key=value" in order, then validate (types, ranges, partition
 * sums, required keys when `require_data`). Collective over comm: rank 0
 * parses and validates, broadcasts the status, then the struct. Errors name
 * the key, e.g. "config: unknown key 'train.lrr'". */
fr_err fr_config_load(MPI_Comm comm, const char *path, int nset, char *const *sets, int require_data,
                      fr_config *cfg);

/* Resolved configuration as YAML text (every key, in table order), written
 * to buf (cap bytes, NUL-terminated). Not collective. */
fr_err fr_config_to_yaml(const fr_config *cfg, char *buf, size_t cap);

/* Parse YAML text (for configs stored in results files). Not collective. */
fr_err fr_config_from_yaml_text(const char *text, fr_config *cfg);

/* Hash of the keys that define a fit's trajectory (data path, model, train,
 * cv), used to refuse a checkpoint from a different config. 64-bit FNV-1a
 * over the canonical "key: value" lines of every data.*, model.*, train.*
 * and cv.* key except train.eval_every, train.checkpoint_every and
 * train.log_every (cadences that do not change the trajectory). Call it on
 * a loaded (resolved) config. Not collective. */
uint64_t fr_config_fit_hash(const fr_config *cfg);

/* Print the option table (key, type, default, help) for --help, to stdout.
 * Not collective (call it on rank 0). */
void fr_config_print_help(void);
/* The same text, to any stream. Not collective. */
void fr_config_write_help(FILE *out);
/* The option table as a Markdown page (key, type, default, range, help):
 * docs/config.md is its output (`facrnn config --markdown`). Not collective. */
void fr_config_write_markdown(FILE *out);

/* Stable, readable run id from the configuration, e.g. "K6_g3+3_b20_s0_f0". Not collective. */
void fr_run_id(const fr_config *cfg, char *buf, size_t cap);

#endif
