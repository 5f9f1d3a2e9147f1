/* fit_input: a fit's read options, data set and split, and model spec (see
 * fit_input.h). */
#include "facrnn/fit_input.h"

#include <math.h>

#include <stdlib.h>
#include <string.h>

void fr_fit_read_opts(const fr_config *cfg, fr_read_opts *ro)
{
    memset(ro, 0, sizeof *ro);
    ro->lags = cfg->lags;
    ro->poisson = !strcmp(cfg->observation, "poisson") ? 1 : (!strcmp(cfg->observation, "gaussian") ? 0 : -1);
    ro->read_inputs = cfg->inputs;
    ro->read_behavior = 1;
    ro->read_truth = 1;
}

/* "[3, 7, 11]" (at most cap bytes, cut with "...") for the log. */
static void list_text(int n, const int *v, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int q = 0; q < n && len + 16 < cap; ++q) len += (size_t)snprintf(buf + len, cap - len, "%s%d", q ? ", " : "", v[q]);
    snprintf(buf + len, cap - len, "%s]", len + 16 >= cap ? ", ..." : "");
}

fr_err fr_fit_prepare(MPI_Comm comm, fr_config *cfg, fr_dataset *ds, unsigned char **split)
{
    fr_read_opts ro;
    fr_fit_read_opts(cfg, &ro);
    TRY(fr_dataset_open(comm, cfg->data_path, &ro, ds));
    char text[256];
    if (ds->n_heldout > 0 && cfg->n_heldout_channels == 0) {
        if (ds->n_heldout > FR_CFG_MAX_HELDOUT) /* cannot happen below N <= the limit; said, not cut */
            return FR_FAIL(FR_EINVAL, "/heldout_channels: %d channels, more than data.heldout_channels holds (%d)",
                           ds->n_heldout, FR_CFG_MAX_HELDOUT);
        memcpy(cfg->heldout_channels, ds->heldout, sizeof(int) * (size_t)ds->n_heldout);
        cfg->n_heldout_channels = ds->n_heldout;
        list_text(ds->n_heldout, ds->heldout, text, sizeof text);
        LOG_INFO("data.heldout_channels: %s from the input file's /heldout_channels", text);
    } else if (cfg->n_heldout_channels > 0) {
        list_text(cfg->n_heldout_channels, cfg->heldout_channels, text, sizeof text);
        LOG_INFO("data.heldout_channels: %s from the config%s", text,
                 ds->n_heldout > 0 ? " (overrides the input file's /heldout_channels)" : "");
    }
    TRY(FR_CALLOC(*split, ds->n_trials));
    fr_err rc = fr_cv_split(ds->n_trials, ds->condition, cfg->folds, cfg->fold, FR_CV_SEED, *split);
    /* A rank without rows may hold no mask: the agreement below carries the
     * refusal to every rank. */
    if (rc == FR_OK && ds->mask && cfg->rollout_steps > 1)
        rc = FR_FAIL(FR_EINVAL,
                     "train.rollout_steps: %d with an input /mask: the rollout term does not leave missing entries "
                     "out yet; use train.rollout_steps: 1 with masked data",
                     cfg->rollout_steps);
    return fr_error_agree(&comm, rc);
}

fr_err fr_fit_model_spec(const fr_config *cfg, const fr_dataset *ds, long long n_train, fr_model_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->N = ds->N;
    spec->K = cfg->rank;
    spec->D = cfg->inputs ? ds->D : 0;
    spec->L = cfg->lags;
    if (cfg->n_groups > 0) {
        spec->G = cfg->n_groups;
        for (int g = 0; g < cfg->n_groups; ++g) spec->group_size[g] = cfg->groups[g];
    } else {
        spec->G = 1;
        spec->group_size[0] = cfg->rank;
    }
    const char *obs = cfg->observation[0] ? cfg->observation : ds->observation;
    if (!strcmp(obs, "poisson")) spec->obs = FR_OBS_POISSON;
    else if (!strcmp(obs, "gaussian") || !obs[0]) spec->obs = FR_OBS_GAUSSIAN;
    else return FR_FAIL(FR_EINVAL, "data.observation: unknown observation model '%s'", obs);
    spec->link = !strcmp(cfg->link, "exp") ? FR_LINK_EXP : FR_LINK_SOFTPLUS;
    spec->nonlin = !strcmp(cfg->nonlinearity, "identity") ? FR_NL_IDENTITY : FR_NL_TANH;
    spec->psi_learned = cfg->psi_learned;
    for (int l = 0; l < cfg->lags && l < FR_MAX_LAGS; ++l)
        spec->psi[l] = cfg->n_psi ? cfg->psi[l] : 1.0 / cfg->lags;
    spec->encoder_std = cfg->encoder_std;
    spec->beta = cfg->beta;
    spec->n_train = n_train;
    spec->batch_size = (int)(n_train < cfg->batch_size ? n_train : cfg->batch_size);
    spec->n_skip = cfg->n_heldout_channels;
    spec->skip = cfg->n_heldout_channels ? cfg->heldout_channels : NULL;
    /* a data-dependent limit the option table cannot state: said, not silent */
    if (spec->batch_size < cfg->batch_size)
        LOG_WARN("train.batch_size %d is more than the %lld training samples: each minibatch is the whole training set "
                 "(M = %d)",
                 cfg->batch_size, n_train, spec->batch_size);
    return FR_OK;
}

fr_err fr_fit_unobserved(MPI_Comm comm, const fr_dataset *ds, const unsigned char *split, int *n, int **list)
{
    *n = 0;
    *list = NULL;
    if (!ds->mask) return FR_OK;
    int N = ds->N;
    double *cnt = NULL;
    if (FR_CALLOC(cnt, N) != FR_OK) fr_fatal(FR_ENOMEM); /* the others are in the Allreduce */
    for (long long k = ds->trial_lo; k < ds->trial_hi; ++k) {
        if (!split[k]) continue;
        for (long long r = ds->offsets[k] - ds->row_lo; r < ds->offsets[k + 1] - ds->row_lo; ++r)
            for (int j = 0; j < N; ++j) cnt[j] += ds->mask[r * N + j];
    }
    fr_err rc = fr_check_mpi(MPI_Allreduce(MPI_IN_PLACE, cnt, N, MPI_DOUBLE, MPI_SUM, comm),
                             "MPI_Allreduce(observed entries per channel)", __FILE__, __LINE__);
    int m = 0;
    for (int j = 0; j < N && rc == FR_OK; ++j) m += cnt[j] == 0;
    if (rc == FR_OK && m > 0) {
        char text[512];
        size_t len = 0;
        rc = FR_CALLOC(*list, m);
        for (int j = 0; j < N && rc == FR_OK; ++j) {
            if (cnt[j] != 0) continue;
            (*list)[(*n)++] = j;
            if (len < sizeof text - 16)
                len += (size_t)snprintf(text + len, sizeof text - len, "%s%d", *n > 1 ? ", " : "", j);
            else if (len < sizeof text - 4)
                len += (size_t)snprintf(text + len, sizeof text - len, ", ...");
        }
        if (rc == FR_OK)
            LOG_WARN("/mask: %d channel(s) of %s have no observed entry on the training trials: %s (fitted anyway; "
                     "listed in the run's unobserved_channels)",
                     m, ds->path, text);
    }
    free(cnt);
    return rc;
}

fr_err fr_fit_standardize(MPI_Comm comm, const fr_config *cfg, const fr_dataset *ds, const unsigned char *split,
                          fr_standardize *st)
{
    memset(st, 0, sizeof *st);
    const char *obs = cfg->observation[0] ? cfg->observation : ds->observation;
    int poisson = !strcmp(obs, "poisson");
    fr_std_mode mode = FR_STD_OFF;
    if (!strcmp(cfg->standardize, "zscore")) {
        if (poisson)
            return FR_FAIL(FR_EINVAL, "data.standardize: zscore is for Gaussian data; Poisson counts must stay counts "
                                      "(use auto or off)");
        mode = FR_STD_ZSCORE;
    } else if (!strcmp(cfg->standardize, "auto")) {
        mode = poisson || !strcmp(cfg->init, "truth") ? FR_STD_OFF : FR_STD_ZSCORE;
    }
    int autoscale = mode == FR_STD_ZSCORE && !strcmp(cfg->standardize, "auto");
    /* the refusal under off only concerns what tanh would see */
    int check = mode == FR_STD_OFF && !poisson && strcmp(cfg->nonlinearity, "identity");
    if (mode == FR_STD_OFF && !check) return fr_std_init(st, FR_STD_OFF, ds->N, NULL);
    int N = ds->N;
    double *acc = NULL;
    if (FR_CALLOC(acc, FR_STD_ACC_LEN(N)) != FR_OK) fr_fatal(FR_ENOMEM); /* the others are in the Allreduce */
    for (long long k = ds->trial_lo; k < ds->trial_hi; ++k) {
        if (!split[k]) continue;
        long long a = ds->offsets[k] - ds->row_lo, e = ds->offsets[k + 1] - ds->row_lo;
        fr_std_accumulate(N, e - a, ds->x + a * N, ds->mask ? ds->mask + a * N : NULL, acc);
    }
    fr_err rc = fr_check_mpi(MPI_Allreduce(MPI_IN_PLACE, acc, (int)FR_STD_ACC_LEN(N), MPI_DOUBLE, MPI_SUM, comm),
                             "MPI_Allreduce(standardize)", __FILE__, __LINE__);
    if (rc == FR_OK && autoscale) {
        /* auto leaves data that are already on the scale tanh reads as they
         * are: centring unit-scale channels moves tanh's operating point and
         * cost 0.1 of held-out group latent R^2 on lorenz-thomas (0.93 ->
         * 0.83, docs/model.md "Scale of the data"). */
        int bad = -1;
        double bm = 0, bs = 0;
        for (int j = 0; j < N && bad < 0; ++j) {
            double n = acc[2 + 2 * N + j]; /* observed training entries of channel j */
            if (!(n > 0)) continue;   /* never observed: no scale to judge */
            double m = acc[2 + j] / n, v = acc[2 + N + j] / n - m * m, s = sqrt(v > 0 ? v : 0);
            if (fabs(m) > FR_STD_AUTO_MEAN || s < FR_STD_AUTO_SD_LO || s > FR_STD_AUTO_SD_HI) bad = j, bm = m, bs = s;
        }
        if (bad < 0) {
            mode = FR_STD_OFF;
            LOG_INFO("data.standardize: auto: every channel is on tanh's scale (|mean| <= %g, std %g..%g over the "
                     "training trials): the data are used as they are",
                     FR_STD_AUTO_MEAN, FR_STD_AUTO_SD_LO, FR_STD_AUTO_SD_HI);
        } else {
            LOG_INFO("data.standardize: auto: channel %d has mean %.4g and std %.4g over the training trials "
                     "(outside |mean| <= %g, std %g..%g): every channel is z-scored",
                     bad, bm, bs, FR_STD_AUTO_MEAN, FR_STD_AUTO_SD_LO, FR_STD_AUTO_SD_HI);
        }
    }
    if (rc == FR_OK && check) {
        double entries = 0;
        for (int j = 0; j < N; ++j) entries += acc[2 + 2 * N + j]; /* observed training entries */
        double frac = entries > 0 ? acc[1] / entries : 0;
        if (frac > 0.5)
            rc = FR_FAIL(FR_EINVAL,
                         "%s: data.standardize is off but %.0f%% of the training entries of /data have |x| > %g, "
                         "which saturates tanh: set data.standardize: auto (or rescale the data)",
                         ds->path, 100 * frac, FR_STD_SATURATE);
        if (rc == FR_OK) rc = fr_std_init(st, FR_STD_OFF, N, NULL);
    } else if (rc == FR_OK) {
        rc = fr_std_init(st, mode, N, acc);
        if (rc == FR_OK && st->n_flat)
            LOG_WARN("data.standardize: %d channel(s) of %s have no spread over the training trials; they are only "
                     "centred",
                     st->n_flat, ds->path);
    }
    free(acc);
    return rc;
}
