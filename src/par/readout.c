/* readout: latent, behaviour and connectivity recovery metrics (see
 * readout.h). */
#include "facrnn/readout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/analysis.h"

/* Moments of [latents (K), other (d2)] over the local rows of the trials with
 * split == which (which = -1: all trials). */
static fr_err add_rows(const fr_dataset *ds, const unsigned char *split, int which, int K, const double *lat,
                       int d2, const double *other, fr_moments *mo)
{
    for (long long k = ds->trial_lo; k < ds->trial_hi; ++k) {
        if (which >= 0 && (split[k] != 0) != (which != 0)) continue;
        long long a = ds->offsets[k] - ds->row_lo, e = ds->offsets[k + 1] - ds->row_lo;
        TRY(fr_moments_add(mo, e - a, K, lat + a * K, d2, other + a * d2));
    }
    return FR_OK;
}

fr_err fr_readout_latent_metrics(MPI_Comm comm, const fr_dataset *ds, const unsigned char *split,
                                 const fr_model *m, const double *latents, fr_fit_metrics *train,
                                 fr_fit_metrics *heldout)
{
    int K = m->spec.K;
    int heldout_any = 0;
    for (long long k = 0; k < ds->n_trials; ++k) heldout_any |= !split[k];
    fr_fit_metrics *sets[2] = {heldout, train};
    fr_err rc = FR_OK;
    if (ds->truth_latents && ds->truth_K > 0) {
        for (int which = 0; which < 2 && rc == FR_OK; ++which) {
            if (which == 0 && !heldout_any) continue;
            fr_moments mo;
            TRY(fr_moments_init(&mo, K + ds->truth_K));
            rc = add_rows(ds, split, which, K, latents, ds->truth_K, ds->truth_latents, &mo);
            if (rc == FR_OK)
                rc = fr_error_agree(&comm, rc);
            if (rc == FR_OK)
                CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, mo.buf, (int)mo.len, MPI_DOUBLE, MPI_SUM, comm));
            if (rc == FR_OK && *mo.n > K + 1) {
                /* the true groups, or one group of every true latent */
                int tg = ds->truth_G > 0 ? ds->truth_G : 1;
                const int *tgroups = ds->truth_G > 0 ? ds->truth_groups : &ds->truth_K;
                rc = fr_latent_r2_from_moments(&mo, K, m->spec.G, m->spec.group_size, ds->truth_K, tg, tgroups,
                                               NULL, NULL, &sets[which]->group_latent_r2);
                if (rc == FR_OK) rc = fr_component_r2_from_moments(&mo, K, ds->truth_K, &sets[which]->component_latent_r2);
            }
            fr_moments_free(&mo);
        }
    }
    if (rc == FR_OK && ds->behavior && ds->P > 0) {
        fr_moments mt, mh;
        TRY(fr_moments_init(&mt, K + ds->P));
        TRY(fr_moments_init(&mh, K + ds->P));
        rc = add_rows(ds, split, 1, K, latents, ds->P, ds->behavior, &mt);
        if (rc == FR_OK) rc = add_rows(ds, split, 0, K, latents, ds->P, ds->behavior, &mh);
        rc = fr_error_agree(&comm, rc);
        if (rc == FR_OK) {
            /* training and held-out moments in one reduction */
            double *both = NULL;
            rc = FR_CALLOC(both, mt.len + mh.len);
            if (rc == FR_OK) {
                memcpy(both, mt.buf, mt.len * sizeof *both);
                memcpy(both + mt.len, mh.buf, mh.len * sizeof *both);
                rc = fr_check_mpi(MPI_Allreduce(MPI_IN_PLACE, both, (int)(mt.len + mh.len), MPI_DOUBLE, MPI_SUM, comm),
                                  "MPI_Allreduce(behaviour moments)", __FILE__, __LINE__);
                memcpy(mt.buf, both, mt.len * sizeof *both);
                memcpy(mh.buf, both + mt.len, mh.len * sizeof *both);
            }
            free(both);
            /* a small relative ridge: the decoder is scored on other trials */
            if (rc == FR_OK && *mt.n > K + 1) rc = fr_behavior_r2_from_moments(&mt, &mt, K, ds->P, 1e-6, NULL, &train->behavior_r2);
            if (rc == FR_OK && heldout_any && *mt.n > K + 1 && *mh.n > 1)
                rc = fr_behavior_r2_from_moments(&mt, &mh, K, ds->P, 1e-6, NULL, &heldout->behavior_r2);
        }
        fr_moments_free(&mt);
        fr_moments_free(&mh);
    }
    return rc;
}

fr_err fr_readout_connectivity_truth(const fr_dataset *ds, const fr_model *m, const double *params, int *have,
                                     double *r_W, double *r_groups)
{
    *have = 0;
    const fr_truth_params *tp = &ds->truth;
    int N = m->spec.N, K = m->spec.K, G = m->spec.G;
    if (!tp->A || !tp->B || tp->N != N) return FR_OK;
    fr_view v = fr_model_view(m, (double *)params);
    fr_err rc = fr_lowrank_pearson(N, K, v.A, K, v.B, N, tp->K, tp->A, tp->K, tp->B, N, r_W);
    /* True groups from /truth/latents' `groups` when its width matches,
     * else one group of every true latent. */
    int tg = 1, one_group = tp->K;
    const int *tgroups = &one_group;
    if (ds->truth_G > 0 && ds->truth_K == tp->K) {
        tg = ds->truth_G;
        tgroups = ds->truth_groups;
    }
    double *R = NULL;
    int *assign = NULL;
    if (rc == FR_OK) rc = FR_CALLOC(R, (size_t)G * tg);
    if (rc == FR_OK) rc = FR_CALLOC(assign, G);
    for (int g = 0, k0 = 0; g < G && rc == FR_OK; k0 += m->spec.group_size[g], ++g)
        for (int a = 0, t0 = 0; a < tg && rc == FR_OK; t0 += tgroups[a], ++a)
            rc = fr_lowrank_pearson(N, m->spec.group_size[g], v.A + k0, K, v.B + (size_t)k0 * N, N, tgroups[a],
                                    tp->A + t0, tp->K, tp->B + (size_t)t0 * N, N, &R[(size_t)g * tg + a]);
    if (rc == FR_OK) rc = fr_hungarian_max(G, tg, R, assign);
    for (int g = 0; g < G && rc == FR_OK; ++g) r_groups[g] = assign[g] >= 0 ? R[(size_t)g * tg + assign[g]] : 0.0;
    free(R);
    free(assign);
    *have = rc == FR_OK;
    return rc;
}
