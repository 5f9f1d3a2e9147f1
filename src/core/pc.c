/* pc: the partial-correlation (PC) penalty of docs/model.md.
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
#include <stdint.h>
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

/* ---- fast kernel ------------------------------------------------------------------
 * Per row i the kernel needs (G + 1) M exponentials if done literally. It
 * needs only G M: with e^g_j = exp(l^g_ij) the joint kernel is the product
 * prod_g e^g_j. Every l^g_ij <= 0 (a negative squared distance), so no
 * exponential can overflow and no max pass is needed: the sums
 * S_g = sum_j w_j e^g_j and S = sum_j w_j prod_g e^g_j are formed directly.
 * The only danger is underflow (a row far from every mean, e.g. badly scaled
 * latents); when any sum falls below PC_TINY the row is recomputed by the
 * two-pass max-subtracted log-sum-exp (pc_row_safe). Above PC_TINY every
 * term that matters at double precision is a normal number, so the fast
 * path loses nothing. The exponential is a branch-free polynomial that the
 * compiler vectorises (fr_exp_poly); sums use 8 fixed partial sums so the
 * result does not depend on the instruction set the loop is compiled for.
 * Latents are handled transposed, (K, M), so every inner loop runs over the
 * M columns with unit stride. */
#define PC_TINY 1e-250
#if defined(__GNUC__) && defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define PC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#endif
#ifndef PC_CLONES
#define PC_CLONES
#endif
/* The helpers must be inlined into each clone to be compiled for its ISA. */
#if defined(__GNUC__)
#define PC_INLINE static inline __attribute__((always_inline))
#else
#define PC_INLINE static inline
#endif
#define PC_LANES 8

PC_INLINE double exp_poly(double x)
{
    /* e^x = 2^n e^r, n = round(x / ln 2), |r| <= ln(2)/2; ln 2 split in two
     * (Cody-Waite) so r is exact; Taylor to degree 13 leaves < 5e-18. */
    union { double d; uint64_t u; } t, sc;
    x = x < -700.0 ? -700.0 : x;
    x = x > 700.0 ? 700.0 : x;
    const double shift = 0x1.8p52;
    t.d = x * 1.44269504088896338700 + shift;
    double n = t.d - shift;
    double r = x - n * 6.93147180369123816490e-01;
    r = r - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    /* the low bits of t hold n; shift them into the exponent field */
    sc.u = (t.u << 52) + ((uint64_t)1023 << 52);
    return p * sc.d;
}

double fr_exp_poly(double x) { return exp_poly(x); }

/* sum_j a_j b_j, (M) each, in a fixed order. */
PC_INLINE double dot_fixed(const double *restrict a, const double *restrict b, int M)
{
    double acc[PC_LANES] = {0};
    int j = 0;
    for (; j + PC_LANES <= M; j += PC_LANES)
        for (int q = 0; q < PC_LANES; ++q) acc[q] += a[j + q] * b[j + q];
    for (; j < M; ++j) acc[0] += a[j] * b[j];
    double s = 0.0;
    for (int q = 0; q < PC_LANES; ++q) s += acc[q];
    return s;
}

/* e (M) <- exp(-h * sum_{k in [k0, k1)} (zi_k - muT_kj)^2). */
PC_INLINE void group_kernel(const double *restrict zi, const double *restrict muT, int M, int k0, int k1, double h,
                         double *restrict e)
{
    const double *m0 = muT + (size_t)k0 * M;
    double z0 = zi[k0];
    for (int j = 0; j < M; ++j) {
        double dl = z0 - m0[j];
        e[j] = dl * dl;
    }
    for (int k = k0 + 1; k < k1; ++k) {
        const double *mk = muT + (size_t)k * M;
        double zk = zi[k];
        for (int j = 0; j < M; ++j) {
            double dl = zk - mk[j];
            e[j] += dl * dl;
        }
    }
    for (int j = 0; j < M; ++j) e[j] = exp_poly(-h * e[j]);
}

/* t_j = c_j (zk - mk_j); dmk_j += t_j; returns sum_j t_j (fixed order). */
PC_INLINE double grad_dim(const double *restrict c, double zk, const double *restrict mk, double *restrict dmk, int M)
{
    double acc[PC_LANES] = {0};
    int j = 0;
    for (; j + PC_LANES <= M; j += PC_LANES)
        for (int q = 0; q < PC_LANES; ++q) {
            double t = c[j + q] * (zk - mk[j + q]);
            acc[q] += t;
            dmk[j + q] += t;
        }
    for (; j < M; ++j) {
        double t = c[j] * (zk - mk[j]);
        acc[0] += t;
        dmk[j] += t;
    }
    double s = 0.0;
    for (int q = 0; q < PC_LANES; ++q) s += acc[q];
    return s;
}

/* Row i by the two-pass max-subtracted log-sum-exp: safe for any finite
 * input. a (G + 1, M) scratch, wl (M) the log-weights, dmuT (K, M). Returns
 * the row's PC term and adds its gradients (when scale != 0). */
static double pc_row_safe(const fr_model *m, int M, const double *muT, const double *zi, const double *wl,
                          double scale, double *a, double *dzi, double *dmuT)
{
    int G = m->spec.G;
    const int *off = m->group_off;
    double h = 0.5 / (m->s_enc * m->s_enc), s2inv = 2.0 * h;
    for (int j = 0; j < M; ++j) a[j] = wl[j];
    for (int g = 0; g < G; ++g) {
        double *ag = a + (size_t)(g + 1) * M;
        for (int j = 0; j < M; ++j) ag[j] = 0.0;
        for (int k = off[g]; k < off[g + 1]; ++k)
            for (int j = 0; j < M; ++j) {
                double dl = zi[k] - muT[(size_t)k * M + j];
                ag[j] -= dl * dl;
            }
        for (int j = 0; j < M; ++j) {
            ag[j] *= h;
            a[j] += ag[j];
            ag[j] += wl[j];
        }
    }
    double row = softmax_lse(a, M) + (G - 1) * log((double)m->spec.n_train);
    for (int g = 0; g < G; ++g) row -= softmax_lse(a + (size_t)(g + 1) * M, M);
    if (scale == 0.0) return row;
    for (int g = 0; g < G; ++g) {
        double *ag = a + (size_t)(g + 1) * M;
        for (int j = 0; j < M; ++j) ag[j] = scale * s2inv * (a[j] - ag[j]);
        for (int k = off[g]; k < off[g + 1]; ++k)
            dzi[k] -= grad_dim(ag, zi[k], muT + (size_t)k * M, dmuT + (size_t)k * M, M);
    }
    return row;
}

/* The rows [row0, row0 + nrows) of fr_pc_rows (arguments as there, mu
 * already transposed into muT). Compiled for several instruction sets and
 * picked at run time. self = 1: row i of z_all is sample i of the
 * minibatch and gets the self weight w_ii = 1; self = 0: the rows are
 * outside points and every weight stays as given (the evaluation KDE).
 * Picked at run time (the loops are identical element-wise and the sums
 * use fixed partial sums, and ISO C mode does not contract a*b+c into FMA,
 * so every version gives the same bits). */
PC_CLONES
static double pc_row_block(const fr_model *m, int M, const double *muT, const double *z_all, int row0, int nrows,
                           int self, double scale, double *w, double *wl, double *e, double *dz_rows, double *dmuT)
{
    int G = m->spec.G, K = m->spec.K;
    const int *off = m->group_off;
    double h = 0.5 / (m->s_enc * m->s_enc), s2inv = 2.0 * h;
    double n = (double)m->spec.n_train;
    double wn = (n - 1.0) / (M - 1.0), lnw = log(wn), lnn = log(n);
    double acc = 0.0;
    for (int i = row0; i < row0 + nrows; ++i) {
        const double *zi = z_all + (size_t)i * K;
        double *dzi = scale != 0.0 ? dz_rows + (size_t)(i - row0) * K : NULL;
        if (self) w[i] = 1.0, wl[i] = 0.0;
        for (int g = 0; g < G; ++g) group_kernel(zi, muT, M, off[g], off[g + 1], h, e + (size_t)(g + 1) * M);
        memcpy(e, e + M, sizeof(double) * (size_t)M);
        for (int g = 1; g < G; ++g) {
            const double *eg = e + (size_t)(g + 1) * M;
            for (int j = 0; j < M; ++j) e[j] *= eg[j];
        }
        double S = dot_fixed(w, e, M), Sg[FR_MAX_GROUPS], mn = S;
        for (int g = 0; g < G; ++g) {
            Sg[g] = dot_fixed(w, e + (size_t)(g + 1) * M, M);
            mn = Sg[g] < mn ? Sg[g] : mn;
        }
        if (!(mn >= PC_TINY)) {
            acc += pc_row_safe(m, M, muT, zi, wl, scale, e, dzi, dmuT);
            if (self) w[i] = wn, wl[i] = lnw;
            continue;
        }
        double row = log(S) + (G - 1) * lnn;
        for (int g = 0; g < G; ++g) row -= log(Sg[g]);
        acc += row;
        if (scale != 0.0) {
            /* dR/dz_ik = -sum_j (p_j - p^g_j) (z_ik - mu_jk) / s^2, dR/dmu_jk
             * the negative term; p_j = w_j e_j / S, p^g_j = w_j e^g_j / S_g */
            double cs = scale * s2inv / S;
            for (int g = 0; g < G; ++g) {
                double *c = e + (size_t)(g + 1) * M, cg = scale * s2inv / Sg[g];
                for (int j = 0; j < M; ++j) c[j] = w[j] * (cs * e[j] - cg * c[j]);
                for (int k = off[g]; k < off[g + 1]; ++k)
                    dzi[k] -= grad_dim(c, zi[k], muT + (size_t)k * M, dmuT + (size_t)k * M, M);
            }
        }
        if (self) w[i] = wn, wl[i] = lnw;
    }
    return acc;
}

fr_err fr_pc_rows(const fr_model *m, int M, const double *mu_all, const double *z_all, int row0, int nrows,
                  double scale, double *pc_sum, double *dz_rows, double *dmu_all, fr_ws *ws)
{
    *pc_sum = 0.0;
    TRY(check_rows(m, M, row0, nrows));
    if (M > ws->M_max) return FR_FAIL(FR_EINVAL, "pc: minibatch of %d exceeds the workspace (%d)", M, ws->M_max);
    int G = m->spec.G, K = m->spec.K;
    if (G == 1) return FR_OK; /* ln q(z) - ln q(z_1) == 0 identically */
    double n = (double)m->spec.n_train;
    double wn = (n - 1.0) / (M - 1.0), lnw = log(wn);
    double *e = ws->pc_a;       /* (G + 1, M): row 0 joint, row g + 1 group g */
    double *muT = ws->pc_muT;   /* (K, M) */
    double *dmuT = ws->pc_dmuT; /* (K, M) */
    double *w = ws->pc_w;       /* (M) weights w_ij of the current row */
    double *wl = ws->pc_wl;     /* (M) their logs */
    for (int j = 0; j < M; ++j) {
        for (int k = 0; k < K; ++k) muT[(size_t)k * M + j] = mu_all[(size_t)j * K + k];
        w[j] = wn;
        wl[j] = lnw;
    }
    if (scale != 0.0) memset(dmuT, 0, sizeof(double) * (size_t)K * M);
    double acc = pc_row_block(m, M, muT, z_all, row0, nrows, 1, scale, w, wl, e, dz_rows, dmuT);
    if (scale != 0.0)
        for (int j = 0; j < M; ++j)
            for (int k = 0; k < K; ++k) dmu_all[(size_t)j * K + k] += dmuT[(size_t)k * M + j];
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
    double *pts = NULL, *a = NULL, *z = NULL, *muT = NULL, *w = NULL, *wl = NULL;
    fr_err rc = FR_OK;
    TRY_GOTO(rc, FR_CALLOC(idx, n), done);
    TRY_GOTO(rc, FR_CALLOC(pts, (size_t)np * K), done);
    TRY_GOTO(rc, FR_CALLOC(a, (size_t)(G + 1) * np), done);
    TRY_GOTO(rc, FR_CALLOC(z, (size_t)n_mc * K), done);
    TRY_GOTO(rc, FR_CALLOC(muT, (size_t)K * np), done);
    TRY_GOTO(rc, FR_CALLOC(w, np), done);
    TRY_GOTO(rc, FR_CALLOC(wl, np), done);
    /* Subsample without replacement: partial Fisher-Yates keyed by position. */
    for (int i = 0; i < n; ++i) idx[i] = i;
    if (np < n)
        for (int p = 0; p < np; ++p) {
            int r = p + (int)(fr_rng_u64(seed, FR_STREAM_EVAL, 0, (uint64_t)p) % (uint64_t)(n - p));
            int t = idx[p];
            idx[p] = idx[r], idx[r] = t;
        }
    for (int p = 0; p < np; ++p) memcpy(pts + (size_t)p * K, mu + (size_t)idx[p] * K, sizeof(double) * K);

    /* The fast row kernel with equal weights 1 (a model view with
     * n_train = np makes its constant (G - 1) ln n the equal-weight one). */
    fr_model em;
    memset(&em, 0, sizeof em);
    em.spec.K = K, em.spec.G = G, em.spec.n_train = np, em.s_enc = s_enc;
    for (int g = 0; g <= G; ++g) em.group_off[g] = off[g];
    for (int j = 0; j < np; ++j) {
        for (int k = 0; k < K; ++k) muT[(size_t)k * np + j] = pts[(size_t)j * K + k];
        w[j] = 1.0, wl[j] = 0.0;
    }
    double acc = 0.0;
    for (int p = 0; p < np; ++p) {
        for (int r = 0; r < n_mc; ++r) {
            /* draws keyed by the original point id, so they do not depend on
             * which other points were subsampled */
            uint64_t base = ((uint64_t)idx[p] * (uint64_t)n_mc + (uint64_t)r) * (uint64_t)K;
            for (int k = 0; k < K; ++k)
                z[(size_t)r * K + k] =
                    pts[(size_t)p * K + k] + s_enc * fr_rng_normal(seed, FR_STREAM_EVAL, 1, base + (uint64_t)k);
        }
        acc += pc_row_block(&em, np, muT, z, 0, n_mc, 0, 0.0, w, wl, a, NULL, NULL);
    }
    *pc = acc / ((double)np * n_mc);
done:
    free(idx), free(pts), free(a), free(z), free(muT), free(w), free(wl);
    return rc;
}
