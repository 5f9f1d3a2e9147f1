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
#include <assert.h>
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
 * path loses nothing. Latents are handled transposed, (K, M), so every
 * inner loop runs over the M columns with unit stride.
 *
 * A row takes two passes over the columns j:
 *   pass 1: per group the squared distance, e^g_j = exp(-h d), the running
 *           product e_j, and the sums S_g and S;
 *   pass 2: per group c^g_j = w_j (cs e_j - cg e^g_j) (cs = scale 2h / S,
 *           cg = scale 2h / S_g), then per dimension k of the group
 *           t_jk = c^g_j (z_ik - mu_jk): dmuT_kj += t_jk, dz_ik -= sum_j t_jk.
 * Each pass exists twice with the same operations in the same order: in
 * plain C (pass1_c, pass2_c: any machine) and with AVX2 + FMA intrinsics
 * (pass1_avx2, pass2_avx2: x86-64 with both, picked at run time). Every
 * multiply-add is one fused, exactly rounded operation (fma()), and every
 * sum over j uses PC_LANES fixed partial sums (column j goes to lane
 * j mod PC_LANES for j below the last multiple of PC_LANES, later columns
 * to lane 0; lanes are added in order), so the C version with fma() and the
 * AVX2 version give the same bits (tests/test_pc.c checks). On a CPU
 * without hardware FMA, where fma() would be done in software and be slow,
 * the C version rounds products and sums separately instead ("muladd", as
 * this kernel always did before it used FMA): the same maths within
 * rounding, but not the same bits. fr_pc_kernel picks the version. */
#define PC_TINY 1e-250
#define PC_LANES 8
#if defined(__GNUC__) && defined(__x86_64__)
#define PC_AVX2 1
#include <immintrin.h>
#define PC_AVX2_FN __attribute__((target("avx2,fma")))
#else
#define PC_AVX2 0
#endif

/* a b + c: fused (one rounding) or not, as the C version in use does. */
static inline double madd(double a, double b, double c, int fused) { return fused ? fma(a, b, c) : a * b + c; }

/* e^x for x in [-700, 700]: e^x = 2^n e^r, n = round(x / ln 2),
 * |r| <= ln(2)/2 (a hair more when x / ln 2 rounds the other way); ln 2
 * split in two (Cody-Waite) so r is exact to double precision; Taylor to
 * degree 13 leaves < 5e-18. */
static inline double exp_core(double x, int fused)
{
    union { double d; uint64_t u; } t, sc;
    const double shift = 0x1.8p52;
    t.d = madd(x, 1.44269504088896338700, shift, fused);
    double n = t.d - shift;
    double r = madd(-n, 6.93147180369123816490e-01, x, fused);
    r = madd(-n, 1.90821492927058770002e-10, r, fused);
    double p = 1.0 / 6227020800.0;
    p = madd(p, r, 1.0 / 479001600.0, fused);
    p = madd(p, r, 1.0 / 39916800.0, fused);
    p = madd(p, r, 1.0 / 3628800.0, fused);
    p = madd(p, r, 1.0 / 362880.0, fused);
    p = madd(p, r, 1.0 / 40320.0, fused);
    p = madd(p, r, 1.0 / 5040.0, fused);
    p = madd(p, r, 1.0 / 720.0, fused);
    p = madd(p, r, 1.0 / 120.0, fused);
    p = madd(p, r, 1.0 / 24.0, fused);
    p = madd(p, r, 1.0 / 6.0, fused);
    p = madd(p, r, 0.5, fused);
    p = madd(p, r, 1.0, fused);
    p = madd(p, r, 1.0, fused);
    /* the low bits of t hold n; shift them into the exponent field */
    sc.u = (t.u << 52) + ((uint64_t)1023 << 52);
    return p * sc.d;
}

/* e^x for x <= 0 (the kernels' arguments): only the lower clamp can bind,
 * and it keeps the result a normal number. NaN stays NaN. */
static inline double exp_neg(double x, int fused) { return exp_core(x < -700.0 ? -700.0 : x, fused); }

static int pc_kernel(void);
double fr_exp_poly(double x)
{
    return exp_core(x < -700.0 ? -700.0 : x > 700.0 ? 700.0 : x, pc_kernel() != FR_PC_C_MULADD);
}

/* Sum the lanes in order. */
static inline double sum_lanes(const double *lanes)
{
    double s = 0.0;
    for (int q = 0; q < PC_LANES; ++q) s += lanes[q];
    return s;
}

/* ---- the C version: one loop over j per step, which the compiler
 * vectorises when fused is 0 (as a constant once inlined) ---- */
#if defined(__GNUC__)
#define PC_INLINE static inline __attribute__((always_inline))
#else
#define PC_INLINE static inline
#endif

/* sum_j a_j b_j, (M) each, in lanes. */
PC_INLINE double dot_lanes(const double *restrict a, const double *restrict b, int M, int fused)
{
    double acc[PC_LANES] = {0};
    int j = 0;
    for (; j + PC_LANES <= M; j += PC_LANES)
        for (int q = 0; q < PC_LANES; ++q) acc[q] = madd(a[j + q], b[j + q], acc[q], fused);
    for (; j < M; ++j) acc[0] = madd(a[j], b[j], acc[0], fused);
    return sum_lanes(acc);
}

/* e (M) <- exp(-h d_j), d_j = sum_{k in [k0, k1)} (zi_k - muT_kj)^2 summed
 * as dl^2 for k0, then one multiply-add per further dimension. */
PC_INLINE void group_kernel(const double *restrict zi, const double *restrict muT, int M, int k0, int k1, double h,
                            double *restrict e, int fused)
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
            e[j] = madd(dl, dl, e[j], fused);
        }
    }
    for (int j = 0; j < M; ++j) e[j] = exp_neg(-h * e[j], fused);
}

/* dl_j = zk - mk_j; dmk_j += c_j dl_j; returns sum_j c_j dl_j (lanes). */
PC_INLINE double grad_dim(const double *restrict c, double zk, const double *restrict mk, double *restrict dmk, int M,
                          int fused)
{
    double acc[PC_LANES] = {0};
    int j = 0;
    for (; j + PC_LANES <= M; j += PC_LANES)
        for (int q = 0; q < PC_LANES; ++q) {
            double dl = zk - mk[j + q];
            acc[q] = madd(c[j + q], dl, acc[q], fused);
            dmk[j + q] = madd(c[j + q], dl, dmk[j + q], fused);
        }
    for (; j < M; ++j) {
        double dl = zk - mk[j];
        acc[0] = madd(c[j], dl, acc[0], fused);
        dmk[j] = madd(c[j], dl, dmk[j], fused);
    }
    return sum_lanes(acc);
}

/* Pass 1 of row zi: e (G + 1, M) <- row 0 the joint kernel, row g + 1 group
 * g's; Sg (G) <- S_g; returns S. The joint kernel is e^0 e^1 ... in that
 * order. */
PC_INLINE double pass1_c(const double *zi, const double *muT, const double *w, int M, int G, const int *off, double h,
                         double *e, double *Sg, int fused)
{
    for (int g = 0; g < G; ++g) group_kernel(zi, muT, M, off[g], off[g + 1], h, e + (size_t)(g + 1) * M, fused);
    memcpy(e, e + M, sizeof(double) * (size_t)M);
    for (int g = 1; g < G; ++g) {
        const double *eg = e + (size_t)(g + 1) * M;
        for (int j = 0; j < M; ++j) e[j] *= eg[j];
    }
    for (int g = 0; g < G; ++g) Sg[g] = dot_lanes(w, e + (size_t)(g + 1) * M, M, fused);
    return dot_lanes(w, e, M, fused);
}

/* Pass 2 of row zi: dzi (K) -= dR/dz_i, dmuT (K, M) += dR/dmu; cg (G).
 * c^g_j = w_j (cs e_j - cg e^g_j), cs e_j - (cg e^g_j) as one multiply-add,
 * overwrites e's row g + 1. */
PC_INLINE void pass2_c(const double *zi, const double *muT, const double *w, int M, int G, const int *off, double cs,
                       const double *cg, double *e, double *dzi, double *dmuT, int fused)
{
    for (int g = 0; g < G; ++g) {
        double *c = e + (size_t)(g + 1) * M, cgg = cg[g];
        for (int j = 0; j < M; ++j) c[j] = w[j] * madd(cs, e[j], -(cgg * c[j]), fused);
        for (int k = off[g]; k < off[g + 1]; ++k)
            dzi[k] -= grad_dim(c, zi[k], muT + (size_t)k * M, dmuT + (size_t)k * M, M, fused);
    }
}

#if PC_AVX2
/* The AVX2 + FMA passes: the operations of pass1_c / pass2_c on the columns
 * below Mv = M - M % PC_LANES, PC_LANES = 8 columns (two vectors, one per
 * half of the lanes) at a time; the remaining columns in scalar code that
 * adds them to lane 0 as the C version does. Per group, one sweep over j
 * whose distances, lanes and coefficients stay in registers. */

/* exp_neg on nv vectors (constant once inlined), step by step across the
 * vectors: each polynomial is a chain of 13 dependent FMAs, and
 * interleaving independent chains keeps the FMA units busy instead of
 * waiting on one chain's latency. x (nv) in, results in x. */
PC_AVX2_FN static inline __attribute__((always_inline)) void exp_neg_v(__m256d *x, int nv)
{
    static const double c[14] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                                 1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,       1.0 / 720.0,
                                 1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,          0.5,
                                 1.0,                1.0};
    const __m256d shift = _mm256_set1_pd(0x1.8p52);
    __m256d t[4], r[4], p[4];
    for (int v = 0; v < nv; ++v) {
        __m256d xv = _mm256_max_pd(_mm256_set1_pd(-700.0), x[v]); /* == x < -700 ? -700 : x, NaN kept */
        t[v] = _mm256_fmadd_pd(xv, _mm256_set1_pd(1.44269504088896338700), shift);
        __m256d n = _mm256_sub_pd(t[v], shift);
        r[v] = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93147180369123816490e-01), xv);
        r[v] = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.90821492927058770002e-10), r[v]);
        p[v] = _mm256_set1_pd(c[0]);
    }
    for (int q = 1; q < 14; ++q)
        for (int v = 0; v < nv; ++v) p[v] = _mm256_fmadd_pd(p[v], r[v], _mm256_set1_pd(c[q]));
    for (int v = 0; v < nv; ++v) {
        __m256i sc = _mm256_add_epi64(_mm256_slli_epi64(_mm256_castpd_si256(t[v]), 52),
                                      _mm256_set1_epi64x((long long)((uint64_t)1023 << 52)));
        x[v] = _mm256_mul_pd(p[v], _mm256_castsi256_pd(sc));
    }
}

/* Group g = dims [k0, k0 + nk) of pass 1 on the nv vectors (4 nv columns)
 * at column j: e^g into eg, the running product into e (the first group
 * stores e^g), lanes of S_g into gl and, for the last group,
 * of S into sl (vector v feeds lane half v % 2). Inlined with constant nk
 * (1-4; 0: the squared distances are already in eg), pos and nv, so the
 * dimensions and vectors unroll and everything stays in registers. */
enum { PC_FIRST = 1, PC_LAST = 2 };
#define PC_DIMS 4
PC_AVX2_FN static inline __attribute__((always_inline)) void
pass1_block_avx2(const __m256d *zk, const double *muT, const double *w, int M, int j, int k0, int nk, int pos, int nv,
                 __m256d mh, double *eg, double *e, __m256d *gl, __m256d *sl)
{
    __m256d d[4];
    for (int v = 0; v < nv; ++v) {
        if (nk == 0) {
            d[v] = _mm256_loadu_pd(eg + j + 4 * v);
        } else {
            const double *mk = muT + (size_t)k0 * M + j + 4 * v;
            __m256d dl = _mm256_sub_pd(zk[0], _mm256_loadu_pd(mk));
            d[v] = _mm256_mul_pd(dl, dl);
            for (int kk = 1; kk < nk; ++kk) {
                mk += M;
                dl = _mm256_sub_pd(zk[kk], _mm256_loadu_pd(mk));
                d[v] = _mm256_fmadd_pd(dl, dl, d[v]);
            }
        }
        d[v] = _mm256_mul_pd(mh, d[v]);
    }
    exp_neg_v(d, nv);
    for (int v = 0; v < nv; ++v) {
        int c = j + 4 * v;
        __m256d wv = _mm256_loadu_pd(w + c), ev = d[v];
        _mm256_storeu_pd(eg + c, ev);
        gl[v % 2] = _mm256_fmadd_pd(wv, ev, gl[v % 2]);
        if (!(pos & PC_FIRST)) ev = _mm256_mul_pd(_mm256_loadu_pd(e + c), ev);
        _mm256_storeu_pd(e + c, ev);
        if (pos & PC_LAST) sl[v % 2] = _mm256_fmadd_pd(wv, ev, sl[v % 2]);
    }
}

/* Pass 1 of group g over columns [0, Mv), 16 columns at a time (8 for a
 * last odd block). accg, acce: lanes (PC_LANES). */
PC_AVX2_FN static inline __attribute__((always_inline)) void
pass1_group_avx2(const double *zi, const double *muT, const double *w, int M, int Mv, int k0, int nk, int pos, double h,
                 double *eg, double *e, double *accg, double *acce)
{
    const __m256d mh = _mm256_set1_pd(-h);
    __m256d zk[PC_DIMS];
    for (int kk = 0; kk < nk; ++kk) zk[kk] = _mm256_set1_pd(zi[k0 + kk]);
    __m256d gl[2] = {_mm256_loadu_pd(accg), _mm256_loadu_pd(accg + 4)};
    __m256d sl[2] = {_mm256_loadu_pd(acce), _mm256_loadu_pd(acce + 4)};
    int j = 0;
    for (; j + 2 * PC_LANES <= Mv; j += 2 * PC_LANES)
        pass1_block_avx2(zk, muT, w, M, j, k0, nk, pos, 4, mh, eg, e, gl, sl);
    if (j < Mv) pass1_block_avx2(zk, muT, w, M, j, k0, nk, pos, 2, mh, eg, e, gl, sl);
    _mm256_storeu_pd(accg, gl[0]);
    _mm256_storeu_pd(accg + 4, gl[1]);
    _mm256_storeu_pd(acce, sl[0]);
    _mm256_storeu_pd(acce + 4, sl[1]);
}

#define PC_P1(NK, POS) pass1_group_avx2(zi, muT, w, M, Mv, k0, NK, POS, h, eg, e, accg, acce)
#define PC_P1_POS(NK)                                                                                             \
    do {                                                                                                          \
        if (pos == PC_FIRST) PC_P1(NK, PC_FIRST);                                                                 \
        else if (pos == PC_LAST) PC_P1(NK, PC_LAST);                                                              \
        else PC_P1(NK, 0);                                                                                        \
    } while (0)
PC_AVX2_FN static double pass1_avx2(const double *zi, const double *muT, const double *w, int M, int G,
                                    const int *off, double h, double *e, double *Sg)
{
    double lanes[FR_MAX_GROUPS + 1][PC_LANES];
    memset(lanes, 0, sizeof(lanes[0]) * (size_t)(G + 1));
    int Mv = M - M % PC_LANES;
    for (int g = 0; g < G; ++g) {
        int k0 = off[g], nk = off[g + 1] - off[g];
        int pos = (g == 0 ? PC_FIRST : 0) | (g == G - 1 ? PC_LAST : 0);
        double *eg = e + (size_t)(g + 1) * M, *accg = lanes[g + 1], *acce = lanes[0];
        switch (nk) {
        case 1: PC_P1_POS(1); break;
        case 2: PC_P1_POS(2); break;
        case 3: PC_P1_POS(3); break;
        case 4: PC_P1_POS(4); break;
        default:
            /* a larger group: its squared distances first, in the order of
             * group_kernel (dl^2, then fma per further dimension) */
            for (int j = 0; j < Mv; j += 4) {
                __m256d z0 = _mm256_set1_pd(zi[k0]), dl = _mm256_sub_pd(z0, _mm256_loadu_pd(muT + (size_t)k0 * M + j));
                __m256d d = _mm256_mul_pd(dl, dl);
                for (int k = k0 + 1; k < k0 + nk; ++k) {
                    dl = _mm256_sub_pd(_mm256_set1_pd(zi[k]), _mm256_loadu_pd(muT + (size_t)k * M + j));
                    d = _mm256_fmadd_pd(dl, dl, d);
                }
                _mm256_storeu_pd(eg + j, d);
            }
            PC_P1_POS(0);
        }
    }
    /* the tail columns as the C version does them: lane 0 */
    for (int j = Mv; j < M; ++j) {
        double ej = 1.0;
        for (int g = 0; g < G; ++g) {
            double dl = zi[off[g]] - muT[(size_t)off[g] * M + j], d = dl * dl;
            for (int k = off[g] + 1; k < off[g + 1]; ++k) {
                dl = zi[k] - muT[(size_t)k * M + j];
                d = fma(dl, dl, d);
            }
            double v = exp_neg(-h * d, 1);
            e[(size_t)(g + 1) * M + j] = v;
            lanes[g + 1][0] = fma(w[j], v, lanes[g + 1][0]);
            ej *= v;
        }
        e[j] = ej;
        lanes[0][0] = fma(w[j], ej, lanes[0][0]);
    }
    for (int g = 0; g < G; ++g) Sg[g] = sum_lanes(lanes[g + 1]);
    return sum_lanes(lanes[0]);
}
#undef PC_P1_POS
#undef PC_P1

/* Dims [k0, k0 + nk) (nk 1-4, constant once inlined) of group g in pass 2
 * over columns [0, Mv): c_j = w_j (cs e_j - cg e^g_j) with one rounding for
 * cs e_j - (cg e^g_j), then per dimension dl = z_ik - mu_jk, lanes
 * += c_j dl and dmuT_kj += c_j dl. One sweep, c and the lanes in registers. */
PC_AVX2_FN static inline __attribute__((always_inline)) void
pass2_dims_avx2(const double *zi, const double *muT, const double *w, int M, int Mv, int k0, int nk, double cs,
                double cg, const double *e, const double *eg, double *dmuT, double (*lanes)[PC_LANES])
{
    const __m256d vcs = _mm256_set1_pd(cs), vcg = _mm256_set1_pd(cg);
    __m256d zk[PC_DIMS], a0[PC_DIMS], a1[PC_DIMS];
    for (int kk = 0; kk < nk; ++kk) {
        zk[kk] = _mm256_set1_pd(zi[k0 + kk]);
        a0[kk] = a1[kk] = _mm256_setzero_pd();
    }
    for (int j = 0; j < Mv; j += PC_LANES) {
        __m256d c0 = _mm256_fmsub_pd(vcs, _mm256_loadu_pd(e + j), _mm256_mul_pd(vcg, _mm256_loadu_pd(eg + j)));
        __m256d c1 = _mm256_fmsub_pd(vcs, _mm256_loadu_pd(e + j + 4), _mm256_mul_pd(vcg, _mm256_loadu_pd(eg + j + 4)));
        c0 = _mm256_mul_pd(_mm256_loadu_pd(w + j), c0);
        c1 = _mm256_mul_pd(_mm256_loadu_pd(w + j + 4), c1);
        for (int kk = 0; kk < nk; ++kk) {
            const double *mk = muT + (size_t)(k0 + kk) * M + j;
            double *dmk = dmuT + (size_t)(k0 + kk) * M + j;
            __m256d dl0 = _mm256_sub_pd(zk[kk], _mm256_loadu_pd(mk));
            __m256d dl1 = _mm256_sub_pd(zk[kk], _mm256_loadu_pd(mk + 4));
            a0[kk] = _mm256_fmadd_pd(c0, dl0, a0[kk]);
            a1[kk] = _mm256_fmadd_pd(c1, dl1, a1[kk]);
            _mm256_storeu_pd(dmk, _mm256_fmadd_pd(c0, dl0, _mm256_loadu_pd(dmk)));
            _mm256_storeu_pd(dmk + 4, _mm256_fmadd_pd(c1, dl1, _mm256_loadu_pd(dmk + 4)));
        }
    }
    for (int kk = 0; kk < nk; ++kk) {
        _mm256_storeu_pd(lanes[kk], a0[kk]);
        _mm256_storeu_pd(lanes[kk] + 4, a1[kk]);
    }
}

PC_AVX2_FN static void pass2_avx2(const double *zi, const double *muT, const double *w, int M, int G,
                                  const int *off, double cs, const double *cg, double *e, double *dzi, double *dmuT)
{
    int Mv = M - M % PC_LANES;
    for (int g = 0; g < G; ++g) {
        double *eg = e + (size_t)(g + 1) * M;
        for (int k0 = off[g]; k0 < off[g + 1]; k0 += PC_DIMS) {
            int nk = off[g + 1] - k0 < PC_DIMS ? off[g + 1] - k0 : PC_DIMS;
            double lanes[PC_DIMS][PC_LANES];
            switch (nk) {
            case 1: pass2_dims_avx2(zi, muT, w, M, Mv, k0, 1, cs, cg[g], e, eg, dmuT, lanes); break;
            case 2: pass2_dims_avx2(zi, muT, w, M, Mv, k0, 2, cs, cg[g], e, eg, dmuT, lanes); break;
            case 3: pass2_dims_avx2(zi, muT, w, M, Mv, k0, 3, cs, cg[g], e, eg, dmuT, lanes); break;
            default: pass2_dims_avx2(zi, muT, w, M, Mv, k0, 4, cs, cg[g], e, eg, dmuT, lanes); break;
            }
            /* the tail columns, lane 0 */
            for (int j = Mv; j < M; ++j) {
                double c = w[j] * fma(cs, e[j], -(cg[g] * eg[j]));
                for (int kk = 0; kk < nk; ++kk) {
                    size_t q = (size_t)(k0 + kk) * M + j;
                    double dl = zi[k0 + kk] - muT[q];
                    lanes[kk][0] = fma(c, dl, lanes[kk][0]);
                    dmuT[q] = fma(c, dl, dmuT[q]);
                }
            }
            for (int kk = 0; kk < nk; ++kk) dzi[k0 + kk] -= sum_lanes(lanes[kk]);
        }
    }
}

#endif

/* The version in use: forced by fr_pc_kernel, else the fastest this CPU
 * runs (AVX2; else C with fma() where the CPU fuses in hardware; else C
 * with separate roundings). */
static int pc_forced = FR_PC_AUTO;
static int pc_avx2_ok(void)
{
#if PC_AVX2
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return have;
#else
    return 0;
#endif
}
static int pc_fma_hw(void)
{
#if PC_AVX2
    __builtin_cpu_init();
    return __builtin_cpu_supports("fma");
#elif defined(FP_FAST_FMA)
    return 1;
#else
    return 0;
#endif
}
static int pc_kernel(void)
{
    static int best = -1;
    if (pc_forced != FR_PC_AUTO) return pc_forced;
    if (best < 0) best = pc_avx2_ok() ? FR_PC_AVX2 : pc_fma_hw() ? FR_PC_C_FMA : FR_PC_C_MULADD;
    return best;
}
int fr_pc_kernel(int which)
{
    if (which == FR_PC_AVX2 && !pc_avx2_ok()) return -1;
    if (which != FR_PC_AUTO && which != FR_PC_C_MULADD && which != FR_PC_C_FMA && which != FR_PC_AVX2) return -1;
    pc_forced = which;
    return pc_kernel();
}

/* Row i by the two-pass max-subtracted log-sum-exp: safe for any finite
 * input. a (G + 1, M) scratch, wl (M) the log-weights, dmuT (K, M). Returns
 * the row's PC term and adds its gradients (when scale != 0). */
static double pc_row_safe(const fr_model *m, int M, const double *muT, const double *zi, const double *wl,
                          double scale, double *a, double *dzi, double *dmuT, int fused)
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
            dzi[k] -= grad_dim(ag, zi[k], muT + (size_t)k * M, dmuT + (size_t)k * M, M, fused);
    }
    return row;
}

/* The rows [row0, row0 + nrows) of fr_pc_rows (arguments as there, mu
 * already transposed into muT; G >= 2). self = 1: row i of z_all is sample
 * i of the minibatch and gets the self weight w_ii = 1; self = 0: the rows
 * are outside points and every weight stays as given (the evaluation KDE). */
static double pc_row_block(const fr_model *m, int M, const double *muT, const double *z_all, int row0, int nrows,
                           int self, double scale, double *w, double *wl, double *e, double *dz_rows, double *dmuT)
{
    int G = m->spec.G, K = m->spec.K, kern = pc_kernel(), fused = kern != FR_PC_C_MULADD;
    const int *off = m->group_off;
    assert(G >= 2); /* G = 1 is exactly zero; the callers return before */
    double h = 0.5 / (m->s_enc * m->s_enc), s2inv = 2.0 * h;
    double n = (double)m->spec.n_train;
    double wn = (n - 1.0) / (M - 1.0), lnw = log(wn), lnn = log(n);
    double acc = 0.0;
    for (int i = row0; i < row0 + nrows; ++i) {
        const double *zi = z_all + (size_t)i * K;
        double *dzi = scale != 0.0 ? dz_rows + (size_t)(i - row0) * K : NULL;
        if (self) w[i] = 1.0, wl[i] = 0.0;
        double Sg[FR_MAX_GROUPS], S;
#if PC_AVX2
        if (kern == FR_PC_AVX2) S = pass1_avx2(zi, muT, w, M, G, off, h, e, Sg);
        else
#endif
            S = fused ? pass1_c(zi, muT, w, M, G, off, h, e, Sg, 1) : pass1_c(zi, muT, w, M, G, off, h, e, Sg, 0);
        double mn = S;
        for (int g = 0; g < G; ++g) mn = Sg[g] < mn ? Sg[g] : mn;
        if (!(mn >= PC_TINY)) {
            acc += pc_row_safe(m, M, muT, zi, wl, scale, e, dzi, dmuT, fused);
            if (self) w[i] = wn, wl[i] = lnw;
            continue;
        }
        double row = log(S) + (G - 1) * lnn;
        for (int g = 0; g < G; ++g) row -= log(Sg[g]);
        acc += row;
        if (scale != 0.0) {
            /* dR/dz_ik = -sum_j (p_j - p^g_j) (z_ik - mu_jk) / s^2, dR/dmu_jk
             * the negative term; p_j = w_j e_j / S, p^g_j = w_j e^g_j / S_g */
            double cs = scale * s2inv / S, cg[FR_MAX_GROUPS];
            for (int g = 0; g < G; ++g) cg[g] = scale * s2inv / Sg[g];
#if PC_AVX2
            if (kern == FR_PC_AVX2) pass2_avx2(zi, muT, w, M, G, off, cs, cg, e, dzi, dmuT);
            else
#endif
                if (fused) pass2_c(zi, muT, w, M, G, off, cs, cg, e, dzi, dmuT, 1);
            else pass2_c(zi, muT, w, M, G, off, cs, cg, e, dzi, dmuT, 0);
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
