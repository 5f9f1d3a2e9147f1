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

/* Moments of the alignment rows [C (K), Y (P)] (fr_align_cumulate) of the
 * local trials: training trials into at, held-out trials into ah. */
static fr_err add_align_rows(const fr_dataset *ds, const unsigned char *split, int L, int K, const double *lat,
                             fr_moments *at, fr_moments *ah)
{
    int P = ds->P;
    long long tmax = 1;
    for (long long k = ds->trial_lo; k < ds->trial_hi; ++k)
        if (ds->offsets[k + 1] - ds->offsets[k] > tmax) tmax = ds->offsets[k + 1] - ds->offsets[k];
    double *C = NULL, *Y = NULL;
    fr_err rc = FR_CALLOC(C, (size_t)tmax * K);
    if (rc == FR_OK) rc = FR_CALLOC(Y, (size_t)tmax * P);
    for (long long k = ds->trial_lo; k < ds->trial_hi && rc == FR_OK; ++k) {
        long long a = ds->offsets[k] - ds->row_lo, T = ds->offsets[k + 1] - ds->offsets[k];
        fr_align_cumulate(T, L, K, lat + a * K, P, ds->behavior + a * P, ds->behavior_position, C, Y);
        rc = fr_moments_add(split[k] ? at : ah, T - L, K, C, P, Y);
    }
    free(C);
    free(Y);
    return rc;
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
        /* [behaviour train, held-out, alignment train, held-out]: local
         * sums, then one reduction of the four packed buffers */
        fr_moments mo[4];
        int nmo = 0;
        for (; nmo < 4 && rc == FR_OK; ++nmo) rc = fr_moments_init(&mo[nmo], K + ds->P);
        if (rc != FR_OK) --nmo;
        if (rc == FR_OK) rc = add_rows(ds, split, 1, K, latents, ds->P, ds->behavior, &mo[0]);
        if (rc == FR_OK) rc = add_rows(ds, split, 0, K, latents, ds->P, ds->behavior, &mo[1]);
        if (rc == FR_OK) rc = add_align_rows(ds, split, m->spec.L, K, latents, &mo[2], &mo[3]);
        rc = fr_error_agree(&comm, rc);
        if (rc == FR_OK) {
            size_t tot = 0;
            for (int i = 0; i < 4; ++i) tot += mo[i].len;
            double *all = NULL;
            rc = FR_CALLOC(all, tot);
            rc = fr_error_agree(&comm, rc);
            if (rc == FR_OK) {
                for (size_t i = 0, o = 0; i < 4; o += mo[i++].len) memcpy(all + o, mo[i].buf, mo[i].len * sizeof *all);
                rc = fr_check_mpi(MPI_Allreduce(MPI_IN_PLACE, all, (int)tot, MPI_DOUBLE, MPI_SUM, comm),
                                  "MPI_Allreduce(behaviour moments)", __FILE__, __LINE__);
                for (size_t i = 0, o = 0; i < 4; o += mo[i++].len) memcpy(mo[i].buf, all + o, mo[i].len * sizeof *all);
            }
            free(all);
        }
        /* a small relative ridge: the decoders are scored on other trials */
        fr_moments *mt = &mo[0], *mh = &mo[1], *at = &mo[2], *ah = &mo[3];
        if (rc == FR_OK && *mt->n > K + 1) rc = fr_behavior_r2_from_moments(mt, mt, K, ds->P, 1e-6, NULL, &train->behavior_r2);
        if (rc == FR_OK && heldout_any && *mt->n > K + 1 && *mh->n > 1)
            rc = fr_behavior_r2_from_moments(mt, mh, K, ds->P, 1e-6, NULL, &heldout->behavior_r2);
        if (rc == FR_OK && *at->n > K + 1)
            rc = fr_behavior_align_r2_from_moments(at, at, K, m->spec.G, m->spec.group_size, ds->P, 1e-6, NULL, NULL,
                                                   &train->behavior_align_r2, &train->behavior_align_all_r2);
        if (rc == FR_OK && heldout_any && *at->n > K + 1 && *ah->n > 1)
            rc = fr_behavior_align_r2_from_moments(at, ah, K, m->spec.G, m->spec.group_size, ds->P, 1e-6, NULL, NULL,
                                                   &heldout->behavior_align_r2, &heldout->behavior_align_all_r2);
        for (int i = 0; i < nmo; ++i) fr_moments_free(&mo[i]);
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
