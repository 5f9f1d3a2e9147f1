/* fit_result: the two helpers of the fit result types (see fit_result.h). */
#include "facrnn/fit_result.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void fr_fit_metrics_nan(fr_fit_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->nll_per_bin = m->r2 = m->bits_per_spike = m->pc = m->tc = NAN;
    m->group_latent_r2 = m->component_latent_r2 = m->behavior_r2 = NAN;
}

void fr_fit_result_free(fr_fit_result *r)
{
    free(r->params);
    free(r->history);
    free(r->latents);
    free(r->pca_evals);
    free(r->best_heldout_params);
    free(r->objective_all);
    memset(r, 0, sizeof *r);
}
