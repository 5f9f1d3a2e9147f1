/* model_ref: the slow reference of the model's loss and gradient, in plain
 * loops without BLAS or the workspace, written straight from the equations
 * of docs/model.md. Tests check the fast path (model.c, pc.c) against it. It allocates
 * freely: it is never on the training path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/model.h"

/* NLL of x_n under eta_n and its derivatives, from the formulas. */
/* Is channel n one the encoder never reads (co-smoothing)? A plain scan of
 * the list, independent of the fast path's in-place zeroing. */
static int ref_skipped(const fr_model *m, int n)
{
    for (int q = 0; q < m->spec.n_skip; ++q)
        if (m->spec.skip[q] == n) return 1;
    return 0;
}

static double ref_nll(const fr_model *m, const double *s, int n, double x, double eta, double *deta, double *ds)
{
    if (m->spec.obs == FR_OBS_GAUSSIAN) {
        double var = exp(2.0 * s[n]);
        *deta = -(x - eta) / var;
        *ds = 1.0 - (x - eta) * (x - eta) / var;
        return 0.5 * FR_LN_2PI + s[n] + 0.5 * (x - eta) * (x - eta) / var;
    }
    double lam, dlam;
    if (m->spec.link == FR_LINK_EXP) {
        lam = exp(eta), dlam = exp(eta);
    } else {
        lam = eta > 30 ? eta + log1p(exp(-eta)) : log1p(exp(eta));
        dlam = exp(eta) / (1.0 + exp(eta));
        if (eta > 30) dlam = 1.0 / (1.0 + exp(-eta));
    }
    if (lam < FR_POISSON_RATE_FLOOR) lam = FR_POISSON_RATE_FLOOR, dlam = 0.0;
    *deta = (1.0 - x / lam) * dlam;
    *ds = 0.0;
    return lam - x * log(lam) + lgamma(x + 1.0);
}

fr_err fr_model_loss_grad_ref(const fr_model *m, const double *params, const fr_batch *b, double *grad,
                              fr_terms *terms, double *loss)
{
    const fr_model_spec *sp = &m->spec;
    int M = b->m, N = sp->N, K = sp->K, D = sp->D, L = sp->L;
    if (M < 1) return FR_FAIL(FR_EINVAL, "model_ref: minibatch must have >= 1 rows, got %d", M);
    fr_view v = fr_model_view(m, (double *)params);
    fr_view gv = fr_model_view(m, grad);
    double psi[FR_MAX_LAGS];
    fr_model_psi(m, params, psi);
    double *h = NULL, *mu = NULL, *z = NULL, *dz = NULL, *dmu = NULL;
    fr_err rc = FR_OK;
    TRY_GOTO(rc, FR_CALLOC(h, (size_t)M * N), done);   /* (M, N) */
    TRY_GOTO(rc, FR_CALLOC(mu, (size_t)M * K), done);  /* (M, K) */
    TRY_GOTO(rc, FR_CALLOC(z, (size_t)M * K), done);   /* (M, K) */
    TRY_GOTO(rc, FR_CALLOC(dz, (size_t)M * K), done);  /* (M, K) dloss/dz */
    TRY_GOTO(rc, FR_CALLOC(dmu, (size_t)M * K), done); /* (M, K) dloss/dmu */

    for (int i = 0; i < M; ++i) {
        for (int n = 0; n < N; ++n)
            if (!ref_skipped(m, n))
                for (int l = 0; l < L; ++l) h[i * N + n] += psi[l] * b->sx[i * L + l][n];
        for (int k = 0; k < K; ++k) {
            double acc = v.d[k];
            for (int n = 0; n < N; ++n) acc += v.B[k * N + n] * h[i * N + n];
            mu[i * K + k] = acc;
            z[i * K + k] = acc + m->s_enc * b->eps[i * K + k];
        }
    }
    /* PC first: its gradients w.r.t. z and mu join the ones below. */
    double pc = 0.0;
    TRY_GOTO(rc, fr_pc_rows_ref(m, M, mu, z, 0, M, sp->beta / M, &pc, dz, dmu), done);

    double nll = 0.0, kl = 0.0, se = m->s_enc;
    for (int i = 0; i < M; ++i) {
        for (int n = 0; n < N; ++n) {
            double eta = v.c[n];
            for (int k = 0; k < K; ++k) eta += v.A[n * K + k] * z[i * K + k];
            for (int q = 0; q < D; ++q) eta += v.E[n * D + q] * b->u[i][q];
            if (b->obs && !b->obs[i][n]) continue; /* missing: not in the likelihood */
            double de, ds;
            nll += ref_nll(m, v.s, n, b->x[i][n], eta, &de, &ds);
            de /= M;
            if (gv.s) gv.s[n] += ds / M;
            gv.c[n] += de;
            for (int k = 0; k < K; ++k) {
                gv.A[n * K + k] += de * z[i * K + k];
                dz[i * K + k] += de * v.A[n * K + k];
            }
            for (int q = 0; q < D; ++q) gv.E[n * D + q] += de * b->u[i][q];
        }
        for (int k = 0; k < K; ++k) {
            double mk = mu[i * K + k];
            kl += 0.5 * (mk * mk + se * se - 1.0 - 2.0 * log(se));
            /* z = mu + s eps: dz flows to mu; KL adds mu / M */
            dmu[i * K + k] += dz[i * K + k] + mk / M;
        }
    }
    for (int i = 0; i < M; ++i)
        for (int k = 0; k < K; ++k) {
            gv.d[k] += dmu[i * K + k];
            for (int n = 0; n < N; ++n) gv.B[k * N + n] += dmu[i * K + k] * h[i * N + n];
        }
    if (gv.psi) {
        /* dloss/dpsi_l = sum_i sum_n (B^T dmu_i)_n sigma(x_{t-l})_n; softmax Jacobian
         * dpsi_l/dlogit_q = psi_l (delta_lq - psi_q). */
        double dpsi[FR_MAX_LAGS] = {0};
        for (int i = 0; i < M; ++i)
            for (int l = 0; l < L; ++l)
                for (int n = 0; n < N; ++n) {
                    if (ref_skipped(m, n)) continue;
                    double dh = 0.0;
                    for (int k = 0; k < K; ++k) dh += v.B[k * N + n] * dmu[i * K + k];
                    dpsi[l] += dh * b->sx[i * L + l][n];
                }
        for (int q = 0; q < L; ++q)
            for (int l = 0; l < L; ++l) gv.psi[q] += dpsi[l] * psi[l] * ((l == q) - psi[q]);
    }
    terms->nll = nll, terms->kl = kl, terms->pc = pc;
    *loss = (nll + kl) / M + sp->beta * pc / M;
done:
    free(h), free(mu), free(z), free(dz), free(dmu);
    return rc;
}
