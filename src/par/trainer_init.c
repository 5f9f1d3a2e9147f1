/* trainer_init: the starting parameters of a restart: PCA of sigma(x) on the
 * training bins with a least-squares read-out, the mode basis of the
 * latents' linear dynamics for partitioned models, random rotations for
 * later restarts, or the data set's ground truth (see trainer_internal.h;
 * model.init "uniform" is the model's own fr_model_init_params).
 */
#include "trainer_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/analysis.h"
#include "facrnn/dist_linalg.h"
#include "facrnn/modes.h"
#include "facrnn/rng.h"

/* Solve the symmetric positive (K, K) system S X^T = B^T in place of rhs
 * rows: rhs (nr, K) <- rhs S^{-1}, by Cholesky. Tiny K, so plain loops. */
static fr_err chol_solve_rows(int K, double *S /* (K, K), destroyed */, int nr, double *rhs /* (nr, K) */)
{
    for (int j = 0; j < K; ++j) {
        double dj = S[j * K + j];
        for (int p = 0; p < j; ++p) dj -= S[j * K + p] * S[j * K + p];
        if (!(dj > 0)) return FR_FAIL(FR_ENUMERIC, "PCA initialisation: latent covariance is singular");
        S[j * K + j] = sqrt(dj);
        for (int i = j + 1; i < K; ++i) {
            double v = S[i * K + j];
            for (int p = 0; p < j; ++p) v -= S[i * K + p] * S[j * K + p];
            S[i * K + j] = v / S[j * K + j];
        }
    }
    for (int r = 0; r < nr; ++r) {
        double *y = rhs + (size_t)r * K;
        for (int i = 0; i < K; ++i) { /* forward: L w = y */
            double v = y[i];
            for (int p = 0; p < i; ++p) v -= S[i * K + p] * y[p];
            y[i] = v / S[i * K + i];
        }
        for (int i = K - 1; i >= 0; --i) { /* backward: L^T x = w */
            double v = y[i];
            for (int p = i + 1; p < K; ++p) v -= S[p * K + i] * y[p];
            y[i] = v / S[i * K + i];
        }
    }
    return FR_OK;
}

/* Mode basis for partitioned models (README "Initialisation"). PCA's basis
 * of the latent subspace is arbitrary, so it mixes independent sub-systems
 * across groups. Their linear dynamics mu_{t+1} ~ F mu_t + f do not: each
 * independent sub-system is an invariant subspace of F, so F's real
 * eigenbasis (1-D modes for real eigenvalues, 2-D [Re v, Im v] for complex
 * pairs) separates them. This moves those modes into the groups with a
 * same-function change of latent basis: new mu = P (mu - mean), P = the
 * mode coordinates permuted into groups and scaled to unit variance.
 * Everything comes from one Allreduce of moments over training bins, so each
 * rank does the same K x K algebra and the result does not depend on the
 * rank count beyond summation order. A numerical failure (singular or
 * defective dynamics, NaN) logs one line and keeps the PCA basis.
 * Collective over t->comm. */
static fr_err init_modes(fr_trainer *t)
{
    const fr_dataset *ds = t->ds;
    int N = t->N, K = t->K, L = t->L, G = t->model.spec.G;
    fr_moments pair, lat; /* pair: v = [mu_t, mu_{t+1}] (2K); lat: v = mu_t (K), every latent bin */
    memset(&pair, 0, sizeof pair);
    memset(&lat, 0, sizeof lat);
    fr_eval_ctx c;
    memset(&c, 0, sizeof c);
    int cap = t->M + 1;
    double *prev = NULL, *flat = NULL, *W = NULL, *F = NULL, *T = NULL, *P = NULL, *Pinv = NULL, *mean = NULL;
    int *msize = NULL, *cgroup = NULL, *xi = NULL, *yi = NULL;
    fr_err rc = fr_moments_init(&pair, 2 * K);
    if (rc == FR_OK) rc = fr_moments_init(&lat, K);
    if (rc == FR_OK) rc = FR_CALLOC(prev, (size_t)cap * K);
    if (rc == FR_OK) rc = FR_CALLOC(flat, pair.len + lat.len);
    if (rc == FR_OK) rc = fr_eval_ctx_init(&c, &t->model, t->params, ds, t->sx, t->ws, cap);
    /* Local sums. Trials are whole on each rank, so every consecutive pair
     * of latent bins is local. prev row i holds the mean before chunk row i;
     * a NaN row (a trial's first latent bin) is skipped by the moments. */
    for (long long k = ds->trial_lo; k < ds->trial_hi && rc == FR_OK; ++k) {
        if (!t->split[k]) continue;
        long long a = ds->offsets[k] - ds->row_lo + L, e = ds->offsets[k + 1] - ds->row_lo;
        for (int p = 0; p < K; ++p) prev[p] = NAN;
        for (long long r = a; r < e && rc == FR_OK; r += cap) {
            int cnt = (int)(e - r < cap ? e - r : cap);
            rc = fr_eval_chunk(&c, r, cnt);
            if (rc != FR_OK) break;
            memcpy(prev + K, c.mu, (size_t)(cnt - 1) * K * sizeof(double));
            rc = fr_moments_add(&pair, cnt, K, prev, K, c.mu);
            if (rc == FR_OK) rc = fr_moments_add(&lat, cnt, K, c.mu, 0, NULL);
            memcpy(prev, c.mu + (size_t)(cnt - 1) * K, (size_t)K * sizeof(double));
        }
    }
    fr_eval_ctx_free(&c);
    rc = fr_error_agree(&t->comm, rc);
    if (rc != FR_OK) goto done;
    memcpy(flat, pair.buf, pair.len * sizeof(double));
    memcpy(flat + pair.len, lat.buf, lat.len * sizeof(double));
    rc = fr_check_mpi(MPI_Allreduce(MPI_IN_PLACE, flat, (int)(pair.len + lat.len), MPI_DOUBLE, MPI_SUM, t->comm),
                      "MPI_Allreduce(mode moments)", __FILE__, __LINE__);
    if (rc != FR_OK) goto done;
    memcpy(pair.buf, flat, pair.len * sizeof(double));
    memcpy(lat.buf, flat + pair.len, lat.len * sizeof(double));

    /* From here on every rank holds the same moments and does the same
     * small algebra. Numerical failures fall back to the PCA basis. */
    rc = FR_CALLOC(W, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(F, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(T, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(P, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(Pinv, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(mean, 2 * (size_t)K); /* (K) mean, then (K) intercept f */
    if (rc == FR_OK) rc = FR_CALLOC(msize, K);
    if (rc == FR_OK) rc = FR_CALLOC(cgroup, K);
    if (rc == FR_OK) rc = FR_CALLOC(xi, K);
    if (rc == FR_OK) rc = FR_CALLOC(yi, K);
    if (rc != FR_OK) goto done;
    for (int p = 0; p < K; ++p) {
        xi[p] = p;
        yi[p] = K + p;
    }
    fr_err nrc = *pair.n >= 2 * K + 1 ? FR_OK
                                      : FR_FAIL(FR_ENUMERIC, "%.0f consecutive training pairs for %d latents",
                                                *pair.n, K);
    /* mu_{t+1} ~ W^T mu_t + f, i.e. F = W^T */
    if (nrc == FR_OK) nrc = fr_affine_fit_moments(&pair, K, xi, K, yi, FR_AN_TINY_RIDGE, W, mean + K);
    for (int p = 0; p < K; ++p)
        for (int q = 0; q < K; ++q) F[p * K + q] = W[q * K + p];
    int n_modes = 0, n_split = 0;
    if (nrc == FR_OK) nrc = fr_modes_basis(K, F, T, msize, &n_modes);
    if (nrc == FR_OK) nrc = fr_modes_assign(n_modes, msize, G, t->model.spec.group_size, cgroup, &n_split);
    /* P: mode coordinate i goes to the next free coordinate of its group,
     * scaled to unit variance over training bins (var = T_i Cov(mu) T_i^T). */
    double n = *lat.n;
    for (int p = 0; p < K; ++p) mean[p] = lat.s[p] / n;
    int fill[FR_MAX_GROUPS] = {0};
    for (int i = 0; i < K && nrc == FR_OK; ++i) {
        int g = cgroup[i];
        int row = t->model.group_off[g] + fill[g]++;
        const double *ti = T + (size_t)i * K;
        double var = 0;
        for (int p = 0; p < K; ++p)
            for (int q = 0; q < K; ++q) var += ti[p] * ti[q] * (lat.S[p * K + q] / n - mean[p] * mean[q]);
        if (!(var > 0) || !isfinite(var)) {
            nrc = FR_FAIL(FR_ENUMERIC, "mode %d has variance %g", i, var);
            break;
        }
        for (int p = 0; p < K; ++p) P[(size_t)row * K + p] = ti[p] / sqrt(var);
    }
    if (nrc == FR_OK) nrc = fr_modes_inverse(K, P, Pinv);
    for (size_t i = 0; i < (size_t)K * K && nrc == FR_OK; ++i)
        if (!isfinite(P[i]) || !isfinite(Pinv[i])) nrc = FR_FAIL(FR_ENUMERIC, "mode basis is not finite");
    if (nrc != FR_OK) {
        LOG_INFO("PCA initialisation: no mode basis (%s); keeping the PCA basis", fr_error_msg());
        fr_error_clear();
        goto done;
    }
    fr_view v = fr_model_view(&t->model, t->params);
    rc = fr_modes_change_basis(N, K, P, Pinv, mean, v.B, v.d, v.A, v.c);
    if (rc != FR_OK) goto done;
    char desc[256];
    int o = 0;
    for (int i = 0, q = 0; q < n_modes && o < (int)sizeof desc - 16; i += msize[q], ++q)
        o += snprintf(desc + o, sizeof desc - (size_t)o, "%s%d->%d", q ? " " : "", msize[q], cgroup[i]);
    LOG_INFO("PCA initialisation: latent basis from the dynamics' real eigenbasis, modes (size->group) %s%s", desc,
             n_split ? ", complex pair(s) split to fill the groups" : "");
done:
    fr_moments_free(&pair);
    fr_moments_free(&lat);
    free(prev);
    free(flat);
    free(W);
    free(F);
    free(T);
    free(P);
    free(Pinv);
    free(mean);
    free(msize);
    free(cgroup);
    free(xi);
    free(yi);
    return rc;
}

/* PCA initialisation (README "Initialisation"): B whitens the top-K
 * principal components of sigma(x) on training bins, d centres them; A, c are
 * the least-squares map from those latents to the next bin (through the
 * inverse link for Poisson); Gaussian log-stds start at the residual std.
 * With G >= 2 groups, restart 0 then moves to the mode basis of the
 * latents' linear dynamics (init_modes). Restart r > 0 instead rotates the
 * PCA basis by a random orthogonal matrix, so restarts explore different
 * assignments of the subspace to groups.
 * Collective over t->comm. */
fr_err fr_trainer_init_pca(fr_trainer *t, uint64_t seed, int restart, double *evals_out)
{
    const fr_dataset *ds = t->ds;
    int N = t->N, K = t->K, L = t->L;
    if (K > N) return FR_FAIL(FR_EINVAL, "model.init: pca needs model.rank (%d) <= channels (%d)", K, N);
    long long nloc = 0;
    for (long long k = ds->trial_lo; k < ds->trial_hi; ++k)
        if (t->split[k]) nloc += ds->offsets[k + 1] - ds->offsets[k];
    double *X = NULL, *mean = NULL, *evals = NULL, *evecs = NULL;
    TRY(FR_CALLOC(X, (nloc ? nloc : 1) * N));
    TRY(FR_CALLOC(mean, N));
    TRY(FR_CALLOC(evals, N));
    TRY(FR_CALLOC(evecs, (size_t)N * K));
    long long n = 0;
    for (long long k = ds->trial_lo; k < ds->trial_hi; ++k) {
        if (!t->split[k]) continue;
        long long a = ds->offsets[k] - ds->row_lo, e = ds->offsets[k + 1] - ds->row_lo;
        for (long long r = a; r < e; ++r, ++n) {
            if (t->sx) memcpy(X + n * N, t->sx + r * N, (size_t)N * sizeof(double));
            else fr_sigma_row(t->model.spec.nonlin, ds->x + r * N, X + n * N, N);
        }
    }
    fr_err rc = fr_dl_pca(t->comm, N, nloc, X, K, mean, evals, evecs);
    free(X);
    if (rc != FR_OK) {
        free(mean); free(evals); free(evecs);
        return rc;
    }
    if (evals_out) memcpy(evals_out, evals, (size_t)N * sizeof(double));
    fr_view v = fr_model_view(&t->model, t->params);
    for (int k = 0; k < K; ++k) {
        double sc = 1.0 / sqrt(fmax(evals[k], 1e-12));
        double dk = 0;
        for (int j = 0; j < N; ++j) {
            v.B[(size_t)k * N + j] = evecs[(size_t)j * K + k] * sc;
            dk -= v.B[(size_t)k * N + j] * mean[j];
        }
        v.d[k] = dk;
    }
    free(mean); free(evals); free(evecs);
    memset(v.A, 0, (size_t)N * K * sizeof(double));
    memset(v.c, 0, (size_t)N * sizeof(double));
    if (v.E) memset(v.E, 0, (size_t)N * t->D * sizeof(double));

    /* Moments of (latent mean, target) over training samples. */
    int poisson = t->model.spec.obs == FR_OBS_POISSON;
    size_t nm = 1 + K + N + (size_t)N * K + (size_t)K * K + N;
    double *mo;
    TRY(FR_CALLOC(mo, nm));
    double *Smu = mo + 1, *Sy = Smu + K, *Syz = Sy + N, *Szz = Syz + (size_t)N * K, *Syy = Szz + (size_t)K * K;
    fr_eval_ctx c;
    memset(&c, 0, sizeof c);
    int cap = t->M + 1;
    rc = fr_eval_ctx_init(&c, &t->model, t->params, ds, t->sx, t->ws, cap);
    double *y = NULL;
    if (rc == FR_OK) rc = FR_CALLOC(y, N);
    for (long long k = ds->trial_lo; k < ds->trial_hi && rc == FR_OK; ++k) {
        if (!t->split[k]) continue;
        long long a = ds->offsets[k] - ds->row_lo + L, e = ds->offsets[k + 1] - ds->row_lo;
        for (long long r = a; r < e && rc == FR_OK; r += cap) {
            int cnt = (int)(e - r < cap ? e - r : cap);
            rc = fr_eval_chunk(&c, r, cnt);
            for (int i = 0; i < cnt && rc == FR_OK; ++i) {
                const double *x = ds->x + (r + i) * N, *mu = c.mu + (size_t)i * K;
                for (int j = 0; j < N; ++j) {
                    double xv = x[j];
                    if (poisson) /* inverse link of a smoothed count */
                        y[j] = t->model.spec.link == FR_LINK_EXP ? log(xv + 0.1) : log(expm1(xv + 0.1));
                    else
                        y[j] = xv;
                }
                mo[0] += 1;
                for (int p = 0; p < K; ++p) Smu[p] += mu[p];
                for (int j = 0; j < N; ++j) {
                    Sy[j] += y[j];
                    Syy[j] += y[j] * y[j];
                }
                cblas_dger(CblasRowMajor, N, K, 1.0, y, 1, mu, 1, Syz, K);
                cblas_dger(CblasRowMajor, K, K, 1.0, mu, 1, mu, 1, Szz, K);
            }
        }
    }
    fr_eval_ctx_free(&c);
    free(y);
    if (rc != FR_OK) fr_fatal(rc);
    CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, mo, (int)nm, MPI_DOUBLE, MPI_SUM, t->comm));
    double cnt = mo[0];
    /* centre */
    for (int p = 0; p < K; ++p)
        for (int q = 0; q < K; ++q) Szz[p * K + q] = Szz[p * K + q] / cnt - Smu[p] * Smu[q] / (cnt * cnt);
    for (int j = 0; j < N; ++j)
        for (int p = 0; p < K; ++p) Syz[(size_t)j * K + p] = Syz[(size_t)j * K + p] / cnt - Sy[j] * Smu[p] / (cnt * cnt);
    for (int p = 0; p < K; ++p) Szz[p * K + p] += 1e-9; /* guard against an exactly flat component */
    double *Scopy;
    TRY(FR_CALLOC(Scopy, (size_t)K * K));
    memcpy(v.A, Syz, (size_t)N * K * sizeof(double));
    memcpy(Scopy, Szz, (size_t)K * K * sizeof(double));
    rc = chol_solve_rows(K, Scopy, N, v.A); /* A = Cov(y, mu) Cov(mu)^-1 */
    free(Scopy);
    if (rc != FR_OK) {
        free(mo);
        return rc;
    }
    for (int j = 0; j < N; ++j) {
        double cj = Sy[j] / cnt, expl = 0;
        for (int p = 0; p < K; ++p) {
            cj -= v.A[(size_t)j * K + p] * Smu[p] / cnt;
            expl += v.A[(size_t)j * K + p] * Syz[(size_t)j * K + p];
        }
        v.c[j] = cj;
        if (v.s) {
            double var = Syy[j] / cnt - (Sy[j] / cnt) * (Sy[j] / cnt) - expl;
            v.s[j] = 0.5 * log(fmax(var, 1e-6));
        }
    }
    free(mo);
    if (restart == 0 && t->model.spec.G >= 2) TRY(init_modes(t));
    if (restart > 0) {
        double *R, *tmp;
        TRY(FR_CALLOC(R, (size_t)K * K));
        TRY(FR_CALLOC(tmp, (size_t)N * K));
        fr_rng_orthogonal(K, seed, FR_STREAM_INIT, 1000, R);
        /* B <- R B, d <- R d, A <- A R^T: the same function, rotated latents */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, N, K, 1.0, R, K, v.B, N, 0.0, tmp, N);
        memcpy(v.B, tmp, (size_t)K * N * sizeof(double));
        double *dd = tmp; /* (K), tmp (N, K) is free until A's product; N >= K */
        for (int p = 0; p < K; ++p) {
            dd[p] = 0;
            for (int q = 0; q < K; ++q) dd[p] += R[p * K + q] * v.d[q];
        }
        memcpy(v.d, dd, (size_t)K * sizeof(double));
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, K, K, 1.0, v.A, K, R, K, 0.0, tmp, K);
        memcpy(v.A, tmp, (size_t)N * K * sizeof(double));
        free(R);
        free(tmp);
    }
    return FR_OK;
}

/* Start from the generating parameters of a synthetic file (/truth/A, B, c,
 * d, read with the data set): the reference point for "did the optimiser
 * find the optimum?". */
fr_err fr_trainer_init_truth(fr_trainer *t)
{
    const fr_truth_params *tp = &t->ds->truth;
    if (!tp->A || !tp->B || !tp->c || !tp->d)
        return FR_FAIL(FR_EINVAL, "model.init: truth needs /truth/A, /truth/B, /truth/c and /truth/d in %s",
                       t->ds->path);
    if (tp->N != t->N || tp->K != t->K)
        return FR_FAIL(FR_EINVAL, "model.init: truth has N = %d, K = %d but the model has N = %d, K = %d", tp->N,
                       tp->K, t->N, t->K);
    fr_view v = fr_model_view(&t->model, t->params);
    memcpy(v.A, tp->A, (size_t)t->N * t->K * sizeof(double));
    memcpy(v.B, tp->B, (size_t)t->K * t->N * sizeof(double));
    memcpy(v.c, tp->c, (size_t)t->N * sizeof(double));
    memcpy(v.d, tp->d, (size_t)t->K * sizeof(double));
    return FR_OK;
}
