/* fit_result: the helpers of the fit result types and the phase clock of
 * a fit (see fit_result.h). */
#include "facrnn/fit_result.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The phases' names, in FR_PH_* order: the log line walks this table. */
static const char *const g_phase_names[FR_PH_N] = {"startup", "init", "training", "evaluation", "output"};

void fr_phases_start(fr_phases *p, int phase, double t0)
{
    memset(p, 0, sizeof *p);
    p->cur = phase;
    p->since = t0;
}

void fr_phases_enter(fr_phases *p, int phase)
{
    double now = fr_wtime();
    p->s[p->cur] += now - p->since;
    p->since = now;
    p->cur = phase;
}

void fr_phases_absorb(fr_phases *p, const fr_phases *q)
{
    fr_phases_enter(p, p->cur);
    for (int i = 0; i < FR_PH_N; ++i) {
        p->s[p->cur] -= q->s[i];
        p->s[i] += q->s[i];
    }
}

void fr_phases_log(const fr_phases *p)
{
    char line[512];
    size_t len = 0;
    double total = 0;
    for (int i = 0; i < FR_PH_N; ++i) total += p->s[i];
    for (int i = 0; i < FR_PH_N && len < sizeof line; ++i)
        len += (size_t)snprintf(line + len, sizeof line - len, "%s%s %.3f s (%.0f%%)", i ? ", " : "", g_phase_names[i],
                                p->s[i], total > 0 ? 100 * p->s[i] / total : 0.0);
    LOG_INFO("phases: %s", line);
}

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
