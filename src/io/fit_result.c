/* fit_result: the metrics table, the helpers of the fit result types and
 * the phase clock of a fit (see fit_result.h). */
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
    MDEF(behavior_align_r2, "aligned behaviour R2", "%.4g"),
    MDEF(behavior_align_all_r2, "aligned behaviour R2 (all latents)", "%.4g"),
    MDEF(co_bps, "co-bps", "%.4g"),
    MDEF(co_r2, "co-R2", "%.4g"),
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
    free(r->unobserved);
    fr_std_free(&r->standardize);
    memset(r, 0, sizeof *r);
}
