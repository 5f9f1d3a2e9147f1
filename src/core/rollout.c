/* rollout: the pure maths of generative rollouts and perturbations (see
 * simulate.h): one trial at a time, a BLAS version and a plain-loop
 * reference that the tests hold against each other. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/rng.h"
#include "facrnn/simulate.h"

struct fr_sim_ws {
    long long T_max;
    double *sx;  /* (T_max, N) sigma(xhat), silenced channels 0 */
    double *h;   /* (N) */
    double *z;   /* (K) */
    double *eta; /* (N) */
    double psi[FR_MAX_LAGS];
};

fr_err fr_sim_ws_create(const fr_model *m, long long T_max, fr_sim_ws **ws)
{
    int N = m->spec.N, K = m->spec.K;
    fr_sim_ws *w;
    TRY(FR_CALLOC(w, 1));
    w->T_max = T_max;
    fr_err rc = FR_CALLOC(w->sx, (size_t)(T_max > 0 ? T_max : 1) * N);
    if (rc == FR_OK) rc = FR_CALLOC(w->h, N);
    if (rc == FR_OK) rc = FR_CALLOC(w->z, K);
    if (rc == FR_OK) rc = FR_CALLOC(w->eta, N);
    if (rc != FR_OK) {
        fr_sim_ws_free(w);
        return rc;
    }
    *ws = w;
    return FR_OK;
}

void fr_sim_ws_free(fr_sim_ws *ws)
{
    if (!ws) return;
    free(ws->sx);
    free(ws->h);
    free(ws->z);
    free(ws->eta);
    free(ws);
}

double fr_sim_poisson(double lambda, uint64_t seed, uint32_t a, uint64_t b)
{
    return fr_rng_poisson(lambda, seed, FR_STREAM_SIM, a, b);
}

/* Counter of draw `idx` (latent j: idx = j; channel n: idx = K + n) at bin t. */
static inline uint64_t sim_ctr(const fr_model *m, long long t, int idx)
{
    return (uint64_t)t * (uint64_t)(m->spec.K + m->spec.N) + (uint64_t)idx;
}

/* The fed-back / written value of channel n from its linear predictor. */
static double observe(const fr_model *m, const fr_view *v, const fr_sim_opts *o, long long trial, long long t, int n,
                      double eta)
{
    if (o->mode == FR_SIM_MEAN) return fr_model_mean(m, eta);
    uint64_t b = sim_ctr(m, t, m->spec.K + n);
    if (m->spec.obs == FR_OBS_GAUSSIAN) return eta + exp(v->s[n]) * fr_rng_normal(o->seed, FR_STREAM_SIM, (uint32_t)trial, b);
    return fr_sim_poisson(fr_model_mean(m, eta), o->seed, (uint32_t)trial, b);
}

static inline double sigma(const fr_model *m, double x) { return m->spec.nonlin == FR_NL_TANH ? tanh(x) : x; }

static fr_err check_args(const fr_model *m, long long T, const double *u)
{
    if (T <= m->spec.L)
        return FR_FAIL(FR_EINVAL, "rollout: a trial of %lld bins has no bin after the %d context bins", T, m->spec.L);
    if (m->spec.D > 0 && !u) return FR_FAIL(FR_EINVAL, "rollout: the model has %d inputs but none were given", m->spec.D);
    return FR_OK;
}

fr_err fr_sim_trial(const fr_model *m, const double *params, const fr_sim_opts *o, long long trial, long long T,
                    const double *x, const double *u, double *xhat, fr_sim_ws *ws)
{
    TRY(check_args(m, T, u));
    if (T > ws->T_max) return FR_FAIL(FR_EINTERNAL, "rollout: trial of %lld bins exceeds workspace (%lld)", T, ws->T_max);
    int N = m->spec.N, K = m->spec.K, D = m->spec.D, L = m->spec.L;
    fr_view v = fr_model_view(m, (double *)params);
    fr_model_psi(m, params, ws->psi);
    const unsigned char *sil = o->silence;
    for (long long t = 0; t < L; ++t)
        for (int n = 0; n < N; ++n) {
            double val = sil && sil[n] ? 0.0 : x[t * N + n];
            xhat[t * N + n] = val;
            ws->sx[t * N + n] = sigma(m, val);
        }
    for (long long t = L; t < T; ++t) {
        memset(ws->h, 0, (size_t)N * sizeof(double));
        for (int l = 1; l <= L; ++l) cblas_daxpy(N, ws->psi[l - 1], ws->sx + (t - l) * N, 1, ws->h, 1);
        for (int q = 0; q < m->spec.n_skip; ++q) ws->h[m->spec.skip[q]] = 0.0; /* co-smoothing: never read */
        /* z = B h + d (+ s_enc eps) */
        memcpy(ws->z, v.d, (size_t)K * sizeof(double));
        cblas_dgemv(CblasRowMajor, CblasNoTrans, K, N, 1.0, v.B, N, ws->h, 1, 1.0, ws->z, 1);
        if (o->mode == FR_SIM_SAMPLED)
            for (int j = 0; j < K; ++j)
                ws->z[j] += m->s_enc * fr_rng_normal(o->seed, FR_STREAM_SIM, (uint32_t)trial, sim_ctr(m, t, j));
        /* eta = A z + c + E u_t */
        memcpy(ws->eta, v.c, (size_t)N * sizeof(double));
        cblas_dgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0, v.A, K, ws->z, 1, 1.0, ws->eta, 1);
        if (D > 0) cblas_dgemv(CblasRowMajor, CblasNoTrans, N, D, 1.0, v.E, D, u + t * D, 1, 1.0, ws->eta, 1);
        for (int n = 0; n < N; ++n) {
            double val = sil && sil[n] ? 0.0 : observe(m, &v, o, trial, t, n, ws->eta[n]);
            xhat[t * N + n] = val;
            ws->sx[t * N + n] = sil && sil[n] ? 0.0 : sigma(m, val);
        }
    }
    return FR_OK;
}

fr_err fr_sim_trial_ref(const fr_model *m, const double *params, const fr_sim_opts *o, long long trial,
                        long long T, const double *x, const double *u, double *xhat)
{
    TRY(check_args(m, T, u));
    int N = m->spec.N, K = m->spec.K, D = m->spec.D, L = m->spec.L;
    fr_view v = fr_model_view(m, (double *)params);
    double psi[FR_MAX_LAGS];
    fr_model_psi(m, params, psi);
    const unsigned char *sil = o->silence;
    double *h, *z;
    TRY(FR_CALLOC(h, N));
    fr_err rc = FR_CALLOC(z, K);
    if (rc != FR_OK) {
        free(h);
        return rc;
    }
    for (long long t = 0; t < T; ++t) {
        if (t < L) {
            for (int n = 0; n < N; ++n) xhat[t * N + n] = sil && sil[n] ? 0.0 : x[t * N + n];
            continue;
        }
        for (int n = 0; n < N; ++n) {
            h[n] = 0;
            if (sil && sil[n]) continue; /* contributes nothing */
            for (int l = 1; l <= L; ++l) h[n] += psi[l - 1] * sigma(m, xhat[(t - l) * N + n]);
        }
        for (int q = 0; q < m->spec.n_skip; ++q) h[m->spec.skip[q]] = 0; /* co-smoothing: never read */
        for (int j = 0; j < K; ++j) {
            double acc = v.d[j];
            for (int n = 0; n < N; ++n) acc += v.B[(size_t)j * N + n] * h[n];
            if (o->mode == FR_SIM_SAMPLED)
                acc += m->s_enc * fr_rng_normal(o->seed, FR_STREAM_SIM, (uint32_t)trial, sim_ctr(m, t, j));
            z[j] = acc;
        }
        for (int n = 0; n < N; ++n) {
            double eta = v.c[n];
            for (int j = 0; j < K; ++j) eta += v.A[(size_t)n * K + j] * z[j];
            for (int e = 0; e < D; ++e) eta += v.E[(size_t)n * D + e] * u[t * D + e];
            xhat[t * N + n] = sil && sil[n] ? 0.0 : observe(m, &v, o, trial, t, n, eta);
        }
    }
    free(h);
    free(z);
    return FR_OK;
}

fr_err fr_sim_remove_group(const fr_model *m, double *params, int g)
{
    if (g < 0 || g >= m->spec.G)
        return FR_FAIL(FR_EINVAL, "--remove-group %d: the model has groups 0..%d", g, m->spec.G - 1);
    int N = m->spec.N, K = m->spec.K, k0 = m->group_off[g], H = m->spec.group_size[g];
    fr_view v = fr_model_view(m, params);
    for (int n = 0; n < N; ++n)
        for (int j = k0; j < k0 + H; ++j) v.A[(size_t)n * K + j] = 0.0;
    memset(v.B + (size_t)k0 * N, 0, (size_t)H * N * sizeof(double));
    return FR_OK;
}

double fr_sim_r2(int N, long long r0, long long r1, const double *x, const double *sim,
                 const unsigned char *silence, const unsigned char *obs)
{
    double tot = 0;
    int used = 0;
    if (r1 - r0 < 1) return NAN;
    for (int n = 0; n < N; ++n) {
        if (silence && silence[n]) continue;
        double mean = 0, sst = 0, sse = 0;
        long long n_rows = 0;
        for (long long r = r0; r < r1; ++r)
            if (!obs || obs[r * N + n]) mean += x[r * N + n], ++n_rows;
        if (n_rows < 1) continue; /* never observed here */
        mean /= (double)n_rows;
        for (long long r = r0; r < r1; ++r) {
            if (obs && !obs[r * N + n]) continue;
            double a = x[r * N + n] - mean, e = x[r * N + n] - sim[r * N + n];
            sst += a * a;
            sse += e * e;
        }
        if (sst > 1e-12 * (double)n_rows * fmax(mean * mean, 1e-300)) { /* skip constant channels */
            tot += 1.0 - sse / sst;
            ++used;
        }
    }
    return used ? tot / used : NAN;
}
