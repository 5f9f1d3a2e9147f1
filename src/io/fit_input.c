/* fit_input: a fit's read options, data set and split, and model spec (see
 * fit_input.h). */
#include "facrnn/fit_input.h"

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

fr_err fr_fit_prepare(MPI_Comm comm, const fr_config *cfg, fr_dataset *ds, unsigned char **split)
{
    fr_read_opts ro;
    fr_fit_read_opts(cfg, &ro);
    TRY(fr_dataset_open(comm, cfg->data_path, &ro, ds));
    TRY(FR_CALLOC(*split, ds->n_trials));
    fr_err rc = fr_cv_split(ds->n_trials, ds->condition, cfg->folds, cfg->fold, FR_CV_SEED, *split);
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
    /* a data-dependent limit the option table cannot state: said, not silent */
    if (spec->batch_size < cfg->batch_size)
        LOG_WARN("train.batch_size %d is more than the %lld training samples: each minibatch is the whole training set "
                 "(M = %d)",
                 cfg->batch_size, n_train, spec->batch_size);
    return FR_OK;
}
