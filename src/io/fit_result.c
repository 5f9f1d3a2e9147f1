/* fit_result: the metrics table and the helpers of the fit result types
 * (see fit_result.h). */
#include "facrnn/fit_result.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MDEF(field, label, fmt) {#field, label, fmt, offsetof(fr_fit_metrics, field), 0}
const fr_metric_def fr_metric_defs[FR_N_METRICS] = {
    MDEF(nll_per_bin, "nll/bin", "%.5g"),
    MDEF(r2, "R2", "%.4f"),
    MDEF(bits_per_spike, "bits/spike", "%.4g"),
    MDEF(pc, "PC", "%.4f"),
    MDEF(tc, "TC", "%.4f"),
    MDEF(group_latent_r2, "group-latent R2", "%.4f"),
    MDEF(component_latent_r2, "component R2", "%.4f"),
    MDEF(behavior_r2, "behaviour R2", "%.4g"),
    {"n_samples", "samples", "%.0f", offsetof(fr_fit_metrics, n_samples), 1},
};
#undef MDEF

double fr_metric_get(const fr_fit_metrics *m, int i)
{
    const char *p = (const char *)m + fr_metric_defs[i].off;
    if (fr_metric_defs[i].is_count) return (double)*(const long long *)p;
    return *(const double *)p;
}

void fr_metric_set(fr_fit_metrics *m, int i, double v)
{
    char *p = (char *)m + fr_metric_defs[i].off;
    if (fr_metric_defs[i].is_count) *(long long *)p = isfinite(v) ? (long long)llround(v) : 0;
    else *(double *)p = v;
}

void fr_metrics_text(const fr_fit_metrics *m, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < FR_N_METRICS && len < cap; ++i) {
        char v[64];
        snprintf(v, sizeof v, fr_metric_defs[i].fmt, fr_metric_get(m, i));
        len += (size_t)snprintf(buf + len, cap - len, "%s%s %s", i ? "  " : "", fr_metric_defs[i].label, v);
    }
}

void fr_fit_metrics_nan(fr_fit_metrics *m)
{
    for (int i = 0; i < FR_N_METRICS; ++i) fr_metric_set(m, i, NAN);
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
