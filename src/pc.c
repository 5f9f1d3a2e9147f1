/* pc: the partial-correlation (PC) penalty of the model spec.
 *  - fr_pc_rows:     the training minibatch estimator for a block of rows i
 *                    against all M columns j, with gradients w.r.t. the
 *                    rows' samples z_i and every mean mu_j (fast kernel).
 *  - fr_pc_rows_ref: the same, computed literally from the formula (tests).
 *  - fr_pc_eval:     the evaluation estimator (equal-weight KDE, no grads).
 *
 * The Gaussian normalisers (-1/2 ln 2 pi - ln s_enc per dimension) appear K
 * times in ln q(z_i) and sum_g H_g = K times in sum_g ln q(z_ig), so they
 * cancel exactly; the fast kernels drop them (the reference keeps them).
 *
 * Bias: at finite M the minibatch estimator is biased even for independent
 * groups. With n_train comparable to M it is biased upward (the self term
 * j = i weighs more in the joint KDE than in the smoother product of the
 * marginal KDEs): for two independent 3-D Gaussian groups about 0.35-0.38
 * at M = n = 128 and 0.17 at M = n = 4096. With n_train >> M the weights
 * (n-1)/(M-1) swamp the self term and the joint KDE over M points in K
 * dimensions is too sparse, so the bias turns negative (about -1.0 at
 * M = 128, n = 1e5). Compare PC values only at equal M and n_train.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/model.h"
#include "facrnn/rng.h"
#include "model_internal.h"

static fr_err check_rows(const fr_model *m, int M, int row0, int nrows)
{
    if (M < 1) return FR_FAIL(FR_EINVAL, "pc: minibatch size M must be >= 1, got %d", M);
    if (m->spec.G > 1 && M < 2) return FR_FAIL(FR_EINVAL, "pc: minibatch size M must be >= 2 when G > 1, got %d", M);
    if (row0 < 0 || nrows < 0 || row0 + nrows > M)
        return FR_FAIL(FR_EINVAL, "pc: rows [%d, %d) outside the minibatch [0, %d)", row0, row0 + nrows, M);
    return FR_OK;
}

/* In place: a (M) -> softmax(a); returns LSE(a). Max subtraction keeps it
 * finite for any finite a. */
static double softmax_lse(double *a, int M)
{
    double mx = a[0], sum = 0.0;
    for (int j = 1; j < M; ++j) mx = a[j] > mx ? a[j] : mx;
    for (int j = 0; j < M; ++j) sum += (a[j] = exp(a[j] - mx));
    double inv = 1.0 / sum;
    for (int j = 0; j < M; ++j) a[j] *= inv;
    return mx + log(sum);
}

fr_err fr_pc_rows(const fr_model *m, int M, const double *mu_all, const double *z_all, int row0, int nrows,
                  double scale, double *pc_sum, double *dz_rows, double *dmu_all, fr_ws *ws)
{
    *pc_sum = 0.0;
    TRY(check_rows(m, M, row0, nrows));
    if (M > ws->M_max) return FR_FAIL(FR_EINVAL, "pc: minibatch of %d exceeds the workspace (%d)", M, ws->M_max);
    int G = m->spec.G, K = m->spec.K;
    if (G == 1) return FR_OK; /* ln q(z) - ln q(z_1) == 0 identically */
    const int *off = m->group_off;
    double s2inv = 1.0 / (m->s_enc * m->s_enc);
    double n = (double)m->spec.n_train;
    double lnw = log((n - 1.0) / (M - 1.0)), lnn = log(n);
    double *a = ws->pc_a; /* (G + 1, M): row 0 joint, row g + 1 group g */
    double acc = 0.0;
    for (int i = row0; i < row0 + nrows; ++i) {
        const double *zi = z_all + (size_t)i * K;
        for (int j = 0; j < M; ++j) {
            const double *muj = mu_all + (size_t)j * K;
            double w = j == i ? 0.0 : lnw, tot = 0.0;
            /* per-dimension log-kernels, summed once into each group and
             * the group sums reused for the joint */
            for (int g = 0; g < G; ++g) {
                double sg = 0.0;
                for (int k = off[g]; k < off[g + 1]; ++k) {
                    double dl = zi[k] - muj[k];
                    sg -= dl * dl;
                }
                sg *= 0.5 * s2inv;
                a[(size_t)(g + 1) * M + j] = sg + w;
                tot += sg;
            }
            a[j] = tot + w;
        }
        double row = softmax_lse(a, M) + (G - 1) * lnn;
        for (int g = 0; g < G; ++g) row -= softmax_lse(a + (size_t)(g + 1) * M, M);
        acc += row;
        if (scale == 0.0) continue;
        /* dR/dz_ik = -sum_j (p_j - p^g_j) (z_ik - mu_jk) / s^2, dR/dmu_jk the negative term. */
        double *dzi = dz_rows + (size_t)(i - row0) * K;
        for (int j = 0; j < M; ++j) {
            const double *muj = mu_all + (size_t)j * K;
            double *dmuj = dmu_all + (size_t)j * K;
            for (int g = 0; g < G; ++g) {
                double coef = scale * s2inv * (a[j] - a[(size_t)(g + 1) * M + j]);
                for (int k = off[g]; k < off[g + 1]; ++k) {
                    double t = coef * (zi[k] - muj[k]);
                    dzi[k] -= t;
                    dmuj[k] += t;
                }
            }
        }
    }
    *pc_sum = acc;
    return FR_OK;
}

/* ---- reference: the formula as written ------------------------------------------ */

/* sum_{k in group g (g < 0: all)} ln N(z_ik; mu_jk, s^2) + ln w_ij */
static double ref_term(const fr_model *m, int M, const double *mu_all, const double *z_all, int i, int j, int g)
{
    int K = m->spec.K, k0 = g < 0 ? 0 : m->group_off[g], k1 = g < 0 ? K : m->group_off[g + 1];
    double s = m->s_enc, n = (double)m->spec.n_train, acc = 0.0;
    for (int k = k0; k < k1; ++k) {
        double dl = z_all[(size_t)i * K + k] - mu_all[(size_t)j * K + k];
        acc += -0.5 * FR_LN_2PI - log(s) - 0.5 * dl * dl / (s * s);
    }
    return acc + (j == i ? 0.0 : log((n - 1.0) / (M - 1.0)));
}

static double ref_lse(const fr_model *m, int M, const double *mu_all, const double *z_all, int i, int g)
{
    double mx = -INFINITY, sum = 0.0;
    for (int j = 0; j < M; ++j) {
        double t = ref_term(m, M, mu_all, z_all, i, j, g);
        mx = t > mx ? t : mx;
    }
    for (int j = 0; j < M; ++j) sum += exp(ref_term(m, M, mu_all, z_all, i, j, g) - mx);
    return mx + log(sum);
}

fr_err fr_pc_rows_ref(const fr_model *m, int M, const double *mu_all, const double *z_all, int row0, int nrows,
                      double scale, double *pc_sum, double *dz_rows, double *dmu_all)
{
    *pc_sum = 0.0;
    TRY(check_rows(m, M, row0, nrows));
    int G = m->spec.G, K = m->spec.K;
    double lnn = log((double)m->spec.n_train), s2 = m->s_enc * m->s_enc, acc = 0.0;
    double lse_g[FR_MAX_GROUPS];
    for (int i = row0; i < row0 + nrows; ++i) {
        double lse = ref_lse(m, M, mu_all, z_all, i, -1);
        double lq = lse - lnn, lqg = 0.0;
        for (int g = 0; g < G; ++g) {
            lse_g[g] = ref_lse(m, M, mu_all, z_all, i, g);
            lqg += lse_g[g] - lnn;
        }
        acc += lq - lqg;
        for (int g = 0; g < G; ++g)
            for (int k = m->group_off[g]; k < m->group_off[g + 1]; ++k)
                for (int j = 0; j < M; ++j) {
                    double p = exp(ref_term(m, M, mu_all, z_all, i, j, -1) - lse);
                    double pg = exp(ref_term(m, M, mu_all, z_all, i, j, g) - lse_g[g]);
                    double dl = z_all[(size_t)i * K + k] - mu_all[(size_t)j * K + k];
                    /* d ln N(z; mu, s^2)/dz = -(z - mu)/s^2, d/dmu = +(z - mu)/s^2 */
                    dz_rows[(size_t)(i - row0) * K + k] += scale * (p - pg) * (-dl / s2);
                    dmu_all[(size_t)j * K + k] += scale * (p - pg) * (dl / s2);
                }
    }
    *pc_sum = acc;
    return FR_OK;
}

/* ---- evaluation estimator ------------------------------------------------------ */

fr_err fr_pc_eval(int K, int G, const int *group_size, int n, const double *mu, double s_enc, int n_mc,
                  int max_points, uint64_t seed, double *pc)
{
    *pc = 0.0;
    if (K < 1 || G < 1 || G > K || G > FR_MAX_GROUPS)
        return FR_FAIL(FR_EINVAL, "pc_eval: need 1 <= G <= K (and G <= %d), got K = %d, G = %d", FR_MAX_GROUPS, K, G);
    int off[FR_MAX_GROUPS + 1];
    off[0] = 0;
    for (int g = 0; g < G; ++g) {
        if (group_size[g] < 1)
            return FR_FAIL(FR_EINVAL, "pc_eval: group %d has size %d, must be >= 1", g, group_size[g]);
        off[g + 1] = off[g] + group_size[g];
    }
    if (off[G] != K) return FR_FAIL(FR_EINVAL, "pc_eval: group sizes sum to %d, but K = %d", off[G], K);
    if (n < 1 || n_mc < 1 || max_points < 1)
        return FR_FAIL(FR_EINVAL, "pc_eval: need n, n_mc, max_points >= 1, got %d, %d, %d", n, n_mc, max_points);
    if (!(s_enc > 0) || !isfinite(s_enc)) return FR_FAIL(FR_EINVAL, "pc_eval: s_enc must be > 0, got %g", s_enc);
    if (G == 1) return FR_OK;

    int np = n < max_points ? n : max_points;
    int *idx = NULL;
    double *pts = NULL, *a = NULL, *z = NULL;
    fr_err rc = FR_OK;
    TRY_GOTO(rc, FR_CALLOC(idx, n), done);
    TRY_GOTO(rc, FR_CALLOC(pts, (size_t)np * K), done);
    TRY_GOTO(rc, FR_CALLOC(a, (size_t)(G + 1) * np), done);
    TRY_GOTO(rc, FR_CALLOC(z, K), done);
    /* Subsample without replacement: partial Fisher-Yates keyed by position. */
    for (int i = 0; i < n; ++i) idx[i] = i;
    if (np < n)
        for (int p = 0; p < np; ++p) {
            int r = p + (int)(fr_rng_u64(seed, FR_STREAM_EVAL, 0, (uint64_t)p) % (uint64_t)(n - p));
            int t = idx[p];
            idx[p] = idx[r], idx[r] = t;
        }
    for (int p = 0; p < np; ++p) memcpy(pts + (size_t)p * K, mu + (size_t)idx[p] * K, sizeof(double) * K);

    double s2inv = 1.0 / (s_enc * s_enc), lnn = log((double)np), acc = 0.0;
    for (int p = 0; p < np; ++p)
        for (int r = 0; r < n_mc; ++r) {
            /* draws keyed by the original point id, so they do not depend on
             * which other points were subsampled */
            uint64_t base = ((uint64_t)idx[p] * (uint64_t)n_mc + (uint64_t)r) * (uint64_t)K;
            for (int k = 0; k < K; ++k)
                z[k] = pts[(size_t)p * K + k] + s_enc * fr_rng_normal(seed, FR_STREAM_EVAL, 1, base + (uint64_t)k);
            for (int j = 0; j < np; ++j) {
                double tot = 0.0;
                for (int g = 0; g < G; ++g) {
                    double sg = 0.0;
                    for (int k = off[g]; k < off[g + 1]; ++k) {
                        double dl = z[k] - pts[(size_t)j * K + k];
                        sg -= dl * dl;
                    }
                    sg *= 0.5 * s2inv;
                    a[(size_t)(g + 1) * np + j] = sg;
                    tot += sg;
                }
                a[j] = tot;
            }
            /* equal weights 1/np: ln q = LSE - ln np, normalisers cancel */
            double row = softmax_lse(a, np) + (G - 1) * lnn;
            for (int g = 0; g < G; ++g) row -= softmax_lse(a + (size_t)(g + 1) * np, np);
            acc += row;
        }
    *pc = acc / ((double)np * n_mc);
done:
    free(idx), free(pts), free(a), free(z);
    return rc;
}
