/* multistep: the multi-step rollout term of the loss and its exact gradient
 * by backpropagation through the rollout (see multistep.h), a BLAS version
 * for training and a plain-loop reference that the tests hold against it
 * and against finite differences.
 *
 * Kept apart from model.c so the one-step loss (and its bits) is untouched:
 * with train.rollout_steps = 1 nothing here runs.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/multistep.h"
#include "model_internal.h"

double fr_ms_alpha(double anneal, double frac)
{
    if (!(anneal > 0)) return 0.0;
    double a = 1.0 - frac / anneal;
    return a > 0 ? (a < 1 ? a : 1.0) : 0.0;
}

struct fr_ms_ws {
    int steps;
    double psi[FR_MAX_LAGS];
    double *hist;     /* (L, N) sigma(x_s) of the true history s = t-L..t-1 */
    double *sg, *sp;  /* (steps, N) sigma(x~_{t+j}) and sigma'(x~_{t+j}), j < J */
    double *mp;       /* (steps, N) d mean / d eta at bin t+j */
    double *H;        /* (steps, N) h_{t+j} */
    double *MU;       /* (steps, K) mu_{t+j} */
    double *ETA;      /* (steps, N) eta_{t+j} */
    double *dS;       /* (steps, N) d loss / d sigma(x~_{t+j}) */
    double *DE, *DSG; /* (steps, N) dNLL/deta and dNLL/ds at bin t+j, kept from the forward pass */
    double *deta, *dh; /* (N) */
    double *dmu;      /* (K) */
};

fr_err fr_ms_ws_create(const fr_model *m, int steps, fr_ms_ws **out)
{
    *out = NULL;
    if (steps < 1) return FR_FAIL(FR_EINVAL, "train.rollout_steps: must be >= 1, got %d", steps);
    size_t N = (size_t)m->spec.N, K = (size_t)m->spec.K, L = (size_t)m->spec.L, k = (size_t)steps;
    fr_ms_ws *w = NULL;
    fr_err rc = FR_OK;
    TRY(FR_CALLOC(w, 1));
    w->steps = steps;
    TRY_GOTO(rc, FR_CALLOC(w->hist, L * N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->sg, k * N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->sp, k * N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->mp, k * N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->H, k * N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->MU, k * K), fail);
    TRY_GOTO(rc, FR_CALLOC(w->ETA, k * N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->dS, k * N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->DE, k * N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->DSG, k * N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->deta, N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->dh, N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->dmu, K), fail);
    *out = w;
    return FR_OK;
fail:
    fr_ms_ws_free(w);
    return rc;
}

void fr_ms_ws_free(fr_ms_ws *w)
{
    if (!w) return;
    free(w->hist), free(w->sg), free(w->sp), free(w->mp), free(w->H), free(w->MU), free(w->ETA), free(w->dS);
    free(w->DE), free(w->DSG);
    free(w->deta), free(w->dh), free(w->dmu);
    free(w);
}

/* One entry of the rollout: the NLL of x under eta with dNLL/deta (and
 * dNLL/ds for Gaussian), and the observation model's mean with its
 * derivative, sharing the transcendental calls (one exp, one log1p and one
 * log for the softplus link). The same formulas as fr_obs_nll and
 * fr_model_mean; the tests hold them against the reference. */
static double entry(const fr_model *m, const double *s, int n, double x, double eta, double *de, double *ds,
                    double *mean, double *dmean)
{
    if (m->spec.obs == FR_OBS_GAUSSIAN) {
        *mean = eta, *dmean = 1.0;
        return fr_obs_nll(m, s, n, x, eta, de, ds);
    }
    double lam, dl;
    if (m->spec.link == FR_LINK_EXP) lam = dl = exp(eta);
    else {
        double e = exp(-fabs(eta));
        lam = (eta > 0 ? eta : 0.0) + log1p(e);
        dl = eta >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e); /* sigmoid */
    }
    if (lam < FR_POISSON_RATE_FLOOR) lam = FR_POISSON_RATE_FLOOR, dl = 0.0;
    *mean = lam, *dmean = dl;
    *de = (1.0 - x / lam) * dl;
    *ds = 0.0;
    return lam - x * log(lam) + fr_ln_factorial(x);
}

static fr_err check_opts(const fr_model *m, const fr_ms_opts *o, const fr_ms_batch *b)
{
    if (o->steps < 1) return FR_FAIL(FR_EINVAL, "train.rollout_steps: must be >= 1, got %d", o->steps);
    if (!(o->weight >= 0) || !isfinite(o->weight))
        return FR_FAIL(FR_EINVAL, "train.rollout_weight: must be finite and >= 0, got %g", o->weight);
    if (!(o->alpha >= 0 && o->alpha <= 1))
        return FR_FAIL(FR_EINVAL, "rollout: teacher forcing alpha must be in [0, 1], got %g", o->alpha);
    if (m->spec.D > 0 && b->m > 0 && !b->u)
        return FR_FAIL(FR_EINVAL, "rollout: the model has %d inputs but the batch has none", m->spec.D);
    for (int i = 0; i < b->m; ++i)
        if (b->t[i] < m->spec.L || b->t[i] >= b->T[i])
            return FR_FAIL(FR_EINVAL, "rollout: sample %d at bin %lld is outside [%d, %lld)", i, b->t[i], m->spec.L,
                           b->T[i]);
    return FR_OK;
}

fr_err fr_ms_loss_grad(const fr_model *m, const double *params, const fr_ms_opts *o, const fr_ms_batch *b,
                       double scale, fr_ms_ws *ws, double *grad, double *sum)
{
    *sum = 0.0;
    TRY(check_opts(m, o, b));
    if (o->steps > ws->steps)
        return FR_FAIL(FR_EINVAL, "rollout: %d steps exceed the workspace (%d)", o->steps, ws->steps);
    if (o->steps == 1) return FR_OK;
    const fr_model_spec *s = &m->spec;
    int N = s->N, K = s->K, D = s->D, L = s->L;
    fr_view v = fr_model_view(m, (double *)params);
    fr_view gv = grad ? fr_model_view(m, grad) : (fr_view){0};
    fr_model_psi(m, params, ws->psi);
    const double *psi = ws->psi, alpha = o->alpha;
    double dpsi[FR_MAX_LAGS] = {0}, total = 0.0;
    for (int i = 0; i < b->m; ++i) {
        long long t = b->t[i], T = b->T[i];
        int J = (int)(T - 1 - t < o->steps - 1 ? T - 1 - t : o->steps - 1);
        if (J < 1) continue;
        const double *X = b->x[i], *U = D > 0 ? b->u[i] : NULL;
        for (int l = 1; l <= L; ++l) /* hist row L - l holds sigma(x_{t-l}) */
            for (int n = 0; n < N; ++n) {
                double xv = X[(t - l) * N + n];
                ws->hist[(size_t)(L - l) * N + n] = s->nonlin == FR_NL_TANH ? tanh(xv) : xv;
            }
#define SIG_ROW(sidx) ((sidx) < t ? ws->hist + (size_t)((sidx) - (t - L)) * N : ws->sg + (size_t)((sidx) - t) * N)
        /* forward */
        double nll = 0.0;
        for (int j = 0; j <= J; ++j) {
            double *h = ws->H + (size_t)j * N, *mu = ws->MU + (size_t)j * K, *eta = ws->ETA + (size_t)j * N;
            memset(h, 0, sizeof(double) * (size_t)N);
            for (int l = 1; l <= L; ++l) cblas_daxpy(N, psi[l - 1], SIG_ROW(t + j - l), 1, h, 1);
            for (int q = 0; q < s->n_skip; ++q) h[s->skip[q]] = 0.0;
            memcpy(mu, v.d, sizeof(double) * (size_t)K);
            cblas_dgemv(CblasRowMajor, CblasNoTrans, K, N, 1.0, v.B, N, h, 1, 1.0, mu, 1);
            memcpy(eta, v.c, sizeof(double) * (size_t)N);
            cblas_dgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0, v.A, K, mu, 1, 1.0, eta, 1);
            if (D > 0) cblas_dgemv(CblasRowMajor, CblasNoTrans, N, D, 1.0, v.E, D, U + (t + j) * D, 1, 1.0, eta, 1);
            const double *xr = X + (t + j) * N;
            /* NLL (j >= 1) and its derivatives, kept for the backward pass,
             * and the fed-back mean (j < J) in one pass over the entries */
            double *de = ws->DE + (size_t)j * N, *dsg = ws->DSG + (size_t)j * N, *mp = ws->mp + (size_t)j * N;
            double *mn = ws->dS + (size_t)j * N; /* the means, until the backward pass clears dS */
            for (int n = 0; n < N; ++n) {
                double e = entry(m, v.s, n, xr[n], eta[n], &de[n], &dsg[n], &mn[n], &mp[n]);
                if (j >= 1) nll += e;
            }
            if (j < J) {
                double *sg = ws->sg + (size_t)j * N, *sp = ws->sp + (size_t)j * N;
                for (int n = 0; n < N; ++n) {
                    double xt = alpha * xr[n] + (1.0 - alpha) * mn[n];
                    if (s->nonlin == FR_NL_TANH) {
                        sg[n] = tanh(xt);
                        sp[n] = 1.0 - sg[n] * sg[n];
                    } else {
                        sg[n] = xt;
                        sp[n] = 1.0;
                    }
                }
            }
        }
        total += nll / J;
        if (!grad) continue;
        /* backward, j = J .. 0: dS of bin t+j is complete once every later
         * step has been processed (only later steps read it). */
        double w = scale / J, fb = 1.0 - alpha;
        memset(ws->dS, 0, sizeof(double) * (size_t)J * N);
        for (int j = J; j >= 0; --j) {
            double *deta = ws->deta, *h = ws->H + (size_t)j * N, *mu = ws->MU + (size_t)j * K;
            if (j == 0 && fb == 0.0) break; /* bin t feeds nothing back */
            for (int n = 0; n < N; ++n) deta[n] = 0.0;
            if (j >= 1) {
                const double *de = ws->DE + (size_t)j * N, *dsg = ws->DSG + (size_t)j * N;
                for (int n = 0; n < N; ++n) deta[n] = w * de[n];
                if (gv.s)
                    for (int n = 0; n < N; ++n) gv.s[n] += w * dsg[n];
            }
            if (j < J && fb != 0.0) {
                const double *dS = ws->dS + (size_t)j * N, *sp = ws->sp + (size_t)j * N, *mp = ws->mp + (size_t)j * N;
                for (int n = 0; n < N; ++n) deta[n] += fb * dS[n] * sp[n] * mp[n];
            }
            for (int n = 0; n < N; ++n) gv.c[n] += deta[n];
            cblas_dger(CblasRowMajor, N, K, 1.0, deta, 1, mu, 1, gv.A, K);
            if (D > 0) cblas_dger(CblasRowMajor, N, D, 1.0, deta, 1, U + (t + j) * D, 1, gv.E, D);
            /* dmu = A^T deta */
            cblas_dgemv(CblasRowMajor, CblasTrans, N, K, 1.0, v.A, K, deta, 1, 0.0, ws->dmu, 1);
            for (int q = 0; q < K; ++q) gv.d[q] += ws->dmu[q];
            cblas_dger(CblasRowMajor, K, N, 1.0, ws->dmu, 1, h, 1, gv.B, N);
            int need_dh = gv.psi || (fb != 0.0 && j >= 1);
            if (!need_dh) continue;
            cblas_dgemv(CblasRowMajor, CblasTrans, K, N, 1.0, v.B, N, ws->dmu, 1, 0.0, ws->dh, 1);
            for (int q = 0; q < s->n_skip; ++q) ws->dh[s->skip[q]] = 0.0;
            for (int l = 1; l <= L; ++l) {
                if (gv.psi) dpsi[l - 1] += cblas_ddot(N, ws->dh, 1, SIG_ROW(t + j - l), 1);
                if (fb != 0.0 && l <= j) cblas_daxpy(N, psi[l - 1], ws->dh, 1, ws->dS + (size_t)(j - l) * N, 1);
            }
        }
#undef SIG_ROW
    }
    if (grad && gv.psi) {
        double dot = 0.0;
        for (int l = 0; l < L; ++l) dot += psi[l] * dpsi[l];
        for (int l = 0; l < L; ++l) gv.psi[l] += psi[l] * (dpsi[l] - dot);
    }
    *sum = total;
    return FR_OK;
}

/* ---- reference ---------------------------------------------------------------- */

static double ref_sigma(const fr_model *m, double x, double *d)
{
    if (m->spec.nonlin == FR_NL_IDENTITY) {
        *d = 1.0;
        return x;
    }
    *d = 1.0 / (cosh(x) * cosh(x));
    return tanh(x);
}

/* NLL of one entry from the formulas of docs/model.md, with d/deta and d/ds. */
static double ref_nll(const fr_model *m, const double *s, int n, double x, double eta, double *deta, double *ds)
{
    *ds = 0.0;
    if (m->spec.obs == FR_OBS_GAUSSIAN) {
        double var = exp(2.0 * s[n]);
        *deta = -(x - eta) / var;
        *ds = 1.0 - (x - eta) * (x - eta) / var;
        return 0.5 * FR_LN_2PI + s[n] + 0.5 * (x - eta) * (x - eta) / var;
    }
    double lam, dlam;
    if (m->spec.link == FR_LINK_EXP) lam = dlam = exp(eta);
    else {
        lam = eta > 30 ? eta + log1p(exp(-eta)) : log1p(exp(eta));
        dlam = eta > 30 ? 1.0 / (1.0 + exp(-eta)) : exp(eta) / (1.0 + exp(eta));
    }
    if (lam < FR_POISSON_RATE_FLOOR) lam = FR_POISSON_RATE_FLOOR, dlam = 0.0;
    *deta = (1.0 - x / lam) * dlam;
    return lam - x * log(lam) + lgamma(x + 1.0);
}

static int ref_skipped(const fr_model *m, int n)
{
    for (int q = 0; q < m->spec.n_skip; ++q)
        if (m->spec.skip[q] == n) return 1;
    return 0;
}

/* Per sample, in absolute time: xt (T, N) the fed-back trial (true before
 * t), the rollout's h, mu, eta per bin, then the adjoints of xt, eta, mu
 * and h per bin, walking time backwards. */
fr_err fr_ms_loss_grad_ref(const fr_model *m, const double *params, const fr_ms_opts *o, const fr_ms_batch *b,
                           double scale, double *grad, double *sum)
{
    *sum = 0.0;
    TRY(check_opts(m, o, b));
    if (o->steps == 1) return FR_OK;
    const fr_model_spec *sp = &m->spec;
    int N = sp->N, K = sp->K, D = sp->D, L = sp->L;
    fr_view v = fr_model_view(m, (double *)params);
    fr_view gv = grad ? fr_model_view(m, grad) : (fr_view){0};
    double psi[FR_MAX_LAGS], dpsi[FR_MAX_LAGS] = {0};
    fr_model_psi(m, params, psi);
    double total = 0.0;
    fr_err rc = FR_OK;
    for (int i = 0; i < b->m && rc == FR_OK; ++i) {
        long long t = b->t[i], T = b->T[i], end = t + o->steps - 1 < T - 1 ? t + o->steps - 1 : T - 1;
        if (end <= t) continue;
        double J = (double)(end - t);
        const double *X = b->x[i];
        double *xt = NULL, *h = NULL, *mu = NULL, *eta = NULL, *dxt = NULL, *deta = NULL, *dmu = NULL, *dh = NULL;
        size_t TN = (size_t)T * N, TK = (size_t)T * K;
        if ((rc = FR_CALLOC(xt, TN)) || (rc = FR_CALLOC(h, TN)) || (rc = FR_CALLOC(mu, TK)) ||
            (rc = FR_CALLOC(eta, TN)) || (rc = FR_CALLOC(dxt, TN)) || (rc = FR_CALLOC(deta, TN)) ||
            (rc = FR_CALLOC(dmu, TK)) || (rc = FR_CALLOC(dh, TN)))
            goto next;
        for (long long r = 0; r < t; ++r)
            for (int n = 0; n < N; ++n) xt[r * N + n] = X[r * N + n];
        double nll = 0.0;
        for (long long r = t; r <= end; ++r) {
            for (int n = 0; n < N; ++n) {
                double acc = 0.0, dd;
                if (!ref_skipped(m, n))
                    for (int l = 1; l <= L; ++l) acc += psi[l - 1] * ref_sigma(m, xt[(r - l) * N + n], &dd);
                h[r * N + n] = acc;
            }
            for (int q = 0; q < K; ++q) {
                double acc = v.d[q];
                for (int n = 0; n < N; ++n) acc += v.B[q * N + n] * h[r * N + n];
                mu[r * K + q] = acc;
            }
            for (int n = 0; n < N; ++n) {
                double acc = v.c[n];
                for (int q = 0; q < K; ++q) acc += v.A[n * K + q] * mu[r * K + q];
                for (int e = 0; e < D; ++e) acc += v.E[n * D + e] * b->u[i][r * D + e];
                eta[r * N + n] = acc;
                double de, ds, mean = fr_model_mean(m, acc);
                if (r > t) nll += ref_nll(m, v.s, n, X[r * N + n], acc, &de, &ds);
                xt[r * N + n] = o->alpha * X[r * N + n] + (1.0 - o->alpha) * mean;
            }
        }
        total += nll / J;
        if (grad) {
            double w = scale / J;
            for (long long r = end; r >= t; --r) {
                for (int n = 0; n < N; ++n) {
                    double de = 0.0, ds = 0.0;
                    if (r > t) {
                        ref_nll(m, v.s, n, X[r * N + n], eta[r * N + n], &de, &ds);
                        if (gv.s) gv.s[n] += w * ds;
                    }
                    /* d mean / d eta by the same formulas as the NLL's rate */
                    double dmean, e0 = eta[r * N + n];
                    if (sp->obs == FR_OBS_GAUSSIAN) dmean = 1.0;
                    else {
                        double lam = sp->link == FR_LINK_EXP ? exp(e0) : log1p(exp(e0));
                        dmean = sp->link == FR_LINK_EXP ? exp(e0) : 1.0 / (1.0 + exp(-e0));
                        if (lam < FR_POISSON_RATE_FLOOR) dmean = 0.0;
                    }
                    deta[r * N + n] = w * de + dxt[r * N + n] * (1.0 - o->alpha) * dmean;
                }
                for (int n = 0; n < N; ++n) {
                    double g = deta[r * N + n];
                    gv.c[n] += g;
                    for (int q = 0; q < K; ++q) gv.A[n * K + q] += g * mu[r * K + q];
                    for (int e = 0; e < D; ++e) gv.E[n * D + e] += g * b->u[i][r * D + e];
                }
                for (int q = 0; q < K; ++q) {
                    double acc = 0.0;
                    for (int n = 0; n < N; ++n) acc += v.A[n * K + q] * deta[r * N + n];
                    dmu[r * K + q] = acc;
                    gv.d[q] += acc;
                    for (int n = 0; n < N; ++n) gv.B[q * N + n] += acc * h[r * N + n];
                }
                for (int n = 0; n < N; ++n) {
                    double acc = 0.0;
                    if (!ref_skipped(m, n))
                        for (int q = 0; q < K; ++q) acc += v.B[q * N + n] * dmu[r * K + q];
                    dh[r * N + n] = acc;
                    for (int l = 1; l <= L; ++l) {
                        double ds_, sg = ref_sigma(m, xt[(r - l) * N + n], &ds_);
                        dpsi[l - 1] += acc * sg;
                        if (r - l >= t) dxt[(r - l) * N + n] += acc * psi[l - 1] * ds_;
                    }
                }
            }
        }
    next:
        free(xt), free(h), free(mu), free(eta), free(dxt), free(deta), free(dmu), free(dh);
    }
    TRY(rc);
    if (grad && gv.psi)
        for (int q = 0; q < L; ++q)
            for (int l = 0; l < L; ++l) gv.psi[q] += dpsi[l] * psi[l] * ((l == q) - psi[q]);
    *sum = total;
    return FR_OK;
}
