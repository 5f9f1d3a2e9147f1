/* Tests for the partial-correlation estimators: the minibatch estimator
 * against a brute-force evaluation of the formula in docs/model.md, its
 * gradients, its behaviour on independent vs correlated groups, G = 1, and
 * numerical safety; and the evaluation estimator. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/model.h"
#include "facrnn/rng.h"
#include "testlib.h"
#include "../src/core/model_internal.h"

static fr_model make_model(int K, int G, const int *sizes, long long n_train, int M, double enc_std)
{
    fr_model_spec s;
    memset(&s, 0, sizeof s);
    s.N = 3, s.K = K, s.L = 1, s.psi[0] = 1.0, s.G = G;
    for (int g = 0; g < G; ++g) s.group_size[g] = sizes[g];
    s.beta = 1.0, s.n_train = n_train, s.batch_size = M, s.encoder_std = enc_std;
    fr_model m;
    CU_ASSERT_EQUAL_FATAL(fr_model_init(&m, &s), FR_OK);
    return m;
}

/* mu (M, K) and z = mu + s eps. corr: the second group copies the first
 * (dimension by dimension, modulo its size) plus a little noise. */
static void gen_latents(int M, int K, int split, int corr, double s_enc, uint64_t seed, double *mu, double *z)
{
    for (int j = 0; j < M; ++j)
        for (int k = 0; k < K; ++k) {
            double v = fr_rng_normal(seed, FR_STREAM_SYNTH, 1, (uint64_t)j * K + k);
            if (corr && k >= split) v = mu[j * K + (k - split) % split] + 0.1 * v;
            mu[j * K + k] = v;
            z[j * K + k] = v + s_enc * fr_rng_normal(seed, FR_STREAM_SYNTH, 2, (uint64_t)j * K + k);
        }
}

/* The formula literally: q(z_i) = (1/n) sum_j w_ij prod_k N(z_ik; mu_jk, s^2),
 * with w_ii = 1, w_ij = (n-1)/(M-1); no logs until the end. Fine for small,
 * well-scaled data (no underflow). */
static double brute_pc_sum(const fr_model *m, int M, const double *mu, const double *z, int row0, int nrows)
{
    int K = m->spec.K, G = m->spec.G;
    double n = (double)m->spec.n_train, s = m->s_enc, acc = 0;
    for (int i = row0; i < row0 + nrows; ++i) {
        double q = 0, qg[FR_MAX_GROUPS] = {0};
        for (int j = 0; j < M; ++j) {
            double w = j == i ? 1.0 : (n - 1) / (M - 1), prod = 1.0;
            for (int g = 0; g < G; ++g) {
                double pg = 1.0;
                for (int k = m->group_off[g]; k < m->group_off[g + 1]; ++k) {
                    double dl = z[i * K + k] - mu[j * K + k];
                    pg *= exp(-0.5 * dl * dl / (s * s)) / sqrt(2 * 3.14159265358979323846 * s * s);
                }
                qg[g] += w * pg / n;
                prod *= pg;
            }
            q += w * prod / n;
        }
        acc += log(q);
        for (int g = 0; g < G; ++g) acc -= log(qg[g]);
    }
    return acc;
}

static void test_matches_formula_and_gradients(void)
{
    enum { M = 10, K = 6 };
    int sizes[3] = {3, 2, 1};
    fr_model m = make_model(K, 3, sizes, 40, M, -1);
    double mu[M * K], z[M * K];
    gen_latents(M, K, 3, 0, m.s_enc, 11, mu, z);
    fr_ws *ws;
    CU_ASSERT_EQUAL_FATAL(fr_ws_create(&m, M, M, &ws), FR_OK);
    double dz[M * K] = {0}, dmu[M * K] = {0}, dzr[M * K] = {0}, dmur[M * K] = {0}, pc, pcr;
    int row0 = 2, nr = 5;
    CU_ASSERT_EQUAL(fr_pc_rows(&m, M, mu, z, row0, nr, 0.7, &pc, dz, dmu, ws), FR_OK);
    CU_ASSERT_EQUAL(fr_pc_rows_ref(&m, M, mu, z, row0, nr, 0.7, &pcr, dzr, dmur), FR_OK);
    double brute = brute_pc_sum(&m, M, mu, z, row0, nr);
    printf("\n  PC rows [2,7): fast %.15g ref %.15g brute %.15g\n", pc, pcr, brute);
    FR_ASSERT_CLOSE(pc, brute, 1e-11, 1e-13);
    FR_ASSERT_CLOSE(pc, pcr, 1e-12, 1e-14);
    for (int q = 0; q < M * K; ++q) {
        FR_ASSERT_CLOSE(dz[q], dzr[q], 1e-12, 1e-14);
        FR_ASSERT_CLOSE(dmu[q], dmur[q], 1e-12, 1e-14);
    }
    /* rows outside the block get no dz, only through dmu */
    for (int q = nr * K; q < M * K; ++q) CU_ASSERT_EQUAL(dz[q], 0.0);
    /* finite differences of the brute force formula (5-point stencil) */
    int bad = 0;
    for (int q = 0; q < M * K; ++q) {
        for (int which = 0; which < 2; ++which) {
            double *v = which ? mu : z, v0 = v[q], h = 1e-3, f[4];
            const double o[4] = {h, -h, 2 * h, -2 * h};
            for (int r = 0; r < 4; ++r) {
                v[q] = v0 + o[r];
                f[r] = 0.7 * brute_pc_sum(&m, M, mu, z, row0, nr);
            }
            v[q] = v0;
            double fd = (8 * (f[0] - f[1]) - (f[2] - f[3])) / (12 * h);
            double an = which ? dmu[q] : (q / K >= row0 && q / K < row0 + nr ? dz[q - row0 * K] : 0.0);
            bad += !fr_test_close(fd, an, 1e-6, 1e-9);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    fr_ws_free(ws);
}

/* Mean of the minibatch estimate pc_sum / M over `reps` minibatches. */
static double mean_pc(const fr_model *m, int M, int corr, int reps, fr_ws *ws)
{
    double *mu = malloc(sizeof(double) * M * 6), *z = malloc(sizeof(double) * M * 6), acc = 0;
    for (int r = 0; r < reps; ++r) {
        gen_latents(M, 6, 3, corr, m->s_enc, 1000 + (uint64_t)r, mu, z);
        double pc;
        CU_ASSERT_EQUAL(fr_pc_rows(m, M, mu, z, 0, M, 0.0, &pc, NULL, NULL, ws), FR_OK);
        acc += pc / M;
    }
    free(mu), free(z);
    return acc / reps;
}

/* Independent 3-D Gaussian groups vs strongly correlated ones. The
 * estimator is biased at finite M (see pc.c), so independent groups do not
 * give 0. With n_train = M (s_enc = M^(-1/10)) it is biased upward, about
 * 0.35-0.38 at M = 128 and 0.17 at M = 4096 as docs/model.md quotes, and the
 * bias falls as M grows. (With n_train >> M the same estimator is biased
 * downward instead; printed here for the record, not asserted.) */
static void test_independent_vs_correlated(void)
{
    int sizes[2] = {3, 3};
    const int Ms[3] = {128, 384, 1024}, reps[3] = {8, 3, 1};
    double ind[3], cor[3];
    fr_ws *ws;
    fr_model m0 = make_model(6, 2, sizes, 1024, 1024, -1);
    CU_ASSERT_EQUAL_FATAL(fr_ws_create(&m0, 1024, 1024, &ws), FR_OK);
    for (int a = 0; a < 3; ++a) {
        fr_model m = make_model(6, 2, sizes, Ms[a], Ms[a], -1);
        ind[a] = mean_pc(&m, Ms[a], 0, reps[a], ws);
        cor[a] = mean_pc(&m, Ms[a], 1, reps[a], ws);
        printf("\n  n = M = %4d: independent %.3f  correlated %.3f (s_enc %.3f)", Ms[a], ind[a], cor[a], m.s_enc);
        CU_ASSERT(cor[a] > ind[a] + 0.5);
        CU_ASSERT(isfinite(ind[a]) && isfinite(cor[a]));
    }
    CU_ASSERT(ind[0] > 0.25 && ind[0] < 0.5);
    CU_ASSERT(ind[1] < ind[0]);
    CU_ASSERT(ind[2] < ind[1]);
    CU_ASSERT(ind[2] > 0.0);
    fr_model mb = make_model(6, 2, sizes, 100000, 128, -1);
    printf("\n  n = 1e5, M = 128: independent %.3f (downward bias when n >> M)\n", mean_pc(&mb, 128, 0, 8, ws));
    fr_ws_free(ws);
}

static void test_single_group_is_zero(void)
{
    enum { M = 16, K = 4 };
    int sizes[1] = {K};
    fr_model m = make_model(K, 1, sizes, 1000, M, -1);
    double mu[M * K], z[M * K], dz[M * K] = {0}, dmu[M * K] = {0}, pc = 1;
    gen_latents(M, K, 2, 1, m.s_enc, 3, mu, z);
    fr_ws *ws;
    CU_ASSERT_EQUAL_FATAL(fr_ws_create(&m, M, M, &ws), FR_OK);
    CU_ASSERT_EQUAL(fr_pc_rows(&m, M, mu, z, 0, M, 5.0, &pc, dz, dmu, ws), FR_OK);
    CU_ASSERT_EQUAL(pc, 0.0);
    for (int q = 0; q < M * K; ++q) CU_ASSERT(dz[q] == 0.0 && dmu[q] == 0.0);
    CU_ASSERT_EQUAL(fr_pc_eval(K, 1, sizes, M, mu, m.s_enc, 10, 100, 1, &pc), FR_OK);
    CU_ASSERT_EQUAL(pc, 0.0);
    fr_ws_free(ws);
}

/* beta = 100 (scale 100 / M) with latents scaled by 1e3: every pair but
 * i = j has log-kernels around -1e6; nothing may overflow or turn NaN. */
static void test_badly_scaled(void)
{
    enum { M = 32, K = 6 };
    int sizes[3] = {2, 2, 2};
    fr_model m = make_model(K, 3, sizes, 5000, M, -1);
    double mu[M * K], z[M * K], dz[M * K] = {0}, dmu[M * K] = {0}, pc;
    gen_latents(M, K, 3, 1, m.s_enc, 5, mu, z);
    for (int q = 0; q < M * K; ++q) mu[q] *= 1e3, z[q] *= 1e3;
    fr_ws *ws;
    CU_ASSERT_EQUAL_FATAL(fr_ws_create(&m, M, M, &ws), FR_OK);
    CU_ASSERT_EQUAL(fr_pc_rows(&m, M, mu, z, 0, M, 100.0 / M, &pc, dz, dmu, ws), FR_OK);
    CU_ASSERT(isfinite(pc));
    int nonfinite = 0;
    for (int q = 0; q < M * K; ++q) nonfinite += !isfinite(dz[q]) || !isfinite(dmu[q]);
    CU_ASSERT_EQUAL(nonfinite, 0);
    double pce;
    CU_ASSERT_EQUAL(fr_pc_eval(K, 3, sizes, M, mu, m.s_enc, 4, 100, 9, &pce), FR_OK);
    CU_ASSERT(isfinite(pce));
    fr_ws_free(ws);
}

static void test_eval_estimator(void)
{
    enum { n = 600, K = 6 };
    int sizes[2] = {3, 3};
    double *mu = malloc(sizeof(double) * n * K), *z = malloc(sizeof(double) * n * K);
    double s = 0.3, pi, pc, pc2, pcs;
    gen_latents(n, K, 3, 0, s, 21, mu, z);
    CU_ASSERT_EQUAL(fr_pc_eval(K, 2, sizes, n, mu, s, 10, 400, 5, &pi), FR_OK);
    gen_latents(n, K, 3, 1, s, 21, mu, z);
    CU_ASSERT_EQUAL(fr_pc_eval(K, 2, sizes, n, mu, s, 10, 400, 5, &pc), FR_OK);
    CU_ASSERT_EQUAL(fr_pc_eval(K, 2, sizes, n, mu, s, 10, 400, 5, &pc2), FR_OK);
    CU_ASSERT_EQUAL(pc, pc2); /* deterministic in the seed */
    CU_ASSERT_EQUAL(fr_pc_eval(K, 2, sizes, n, mu, s, 10, 400, 6, &pcs), FR_OK);
    CU_ASSERT_NOT_EQUAL(pc, pcs);
    printf("\n  eval PC (400 of 600 points): independent %.3f correlated %.3f\n", pi, pc);
    CU_ASSERT(pc > pi + 0.3);
    /* bad arguments */
    int bad[2] = {3, 2};
    CU_ASSERT_EQUAL(fr_pc_eval(K, 2, bad, n, mu, s, 10, 400, 5, &pc), FR_EINVAL);
    CU_ASSERT_EQUAL(fr_pc_eval(K, 2, sizes, n, mu, 0.0, 10, 400, 5, &pc), FR_EINVAL);
    free(mu), free(z);
}

/* The kernel's polynomial exponential against libm over its range, with
 * fused multiply-adds and with separate roundings. */
static void test_exp_poly(void)
{
    const int kern[2] = {FR_PC_C_FMA, FR_PC_C_MULADD};
    for (int v = 0; v < 2; ++v) {
        CU_ASSERT_EQUAL_FATAL(fr_pc_kernel(kern[v]), kern[v]);
        double worst = 0;
        for (int q = 0; q <= 200000; ++q) {
            double x = -699.0 + 1398.0 * q / 200000.0 + 1e-7 * fr_rng_normal(1, FR_STREAM_SYNTH, 9, (uint64_t)q);
            double r = fabs(fr_exp_poly(x) / exp(x) - 1.0);
            worst = r > worst ? r : worst;
        }
        printf("\n  polynomial exp (%s): worst relative error %.3g on [-699, 699]", v ? "muladd" : "fma", worst);
        CU_ASSERT(worst < 1e-15);
        CU_ASSERT_EQUAL(fr_exp_poly(0.0), 1.0);
        CU_ASSERT(fr_exp_poly(-1e300) > 0 && fr_exp_poly(-1e300) <= exp(-699.0)); /* clamped, never 0 or NaN */
    }
    printf("\n");
    fr_pc_kernel(FR_PC_AUTO);
}

/* Fast kernel vs the reference at a size that exercises the vector loops
 * and their tails (M = 131, not a multiple of the lane count), unequal
 * groups, a block of rows; and on badly scaled latents, where rows take the
 * safe two-pass path. */
static void test_fast_matches_reference(void)
{
    enum { M = 131, K = 7 };
    int sizes[3] = {3, 1, 3};
    /* every version of the kernel this machine runs */
    const int kern[3] = {FR_PC_C_MULADD, FR_PC_C_FMA, FR_PC_AVX2};
    for (int v = 0; v < 3; ++v) {
        if (fr_pc_kernel(kern[v]) != kern[v]) {
            printf("\n  kernel version %d: not available here", kern[v]);
            continue;
        }
        printf("\n  kernel version %d:", kern[v]);
    for (int bad = 0; bad < 2; ++bad) {
        fr_model m = make_model(K, 3, sizes, 20000, M, -1);
        double *mu = malloc(sizeof(double) * M * K), *z = malloc(sizeof(double) * M * K);
        double *dz = calloc(M * K, sizeof(double)), *dmu = calloc(M * K, sizeof(double));
        double *dzr = calloc(M * K, sizeof(double)), *dmur = calloc(M * K, sizeof(double)), pc, pcr;
        gen_latents(M, K, 3, 1, m.s_enc, 17, mu, z);
        if (bad)
            for (int q = 0; q < M * K; ++q) mu[q] *= 40.0, z[q] *= 40.0;
        fr_ws *ws;
        CU_ASSERT_EQUAL_FATAL(fr_ws_create(&m, M, M, &ws), FR_OK);
        int row0 = 5, nr = 97;
        CU_ASSERT_EQUAL(fr_pc_rows(&m, M, mu, z, row0, nr, 100.0 / M, &pc, dz, dmu, ws), FR_OK);
        CU_ASSERT_EQUAL(fr_pc_rows_ref(&m, M, mu, z, row0, nr, 100.0 / M, &pcr, dzr, dmur), FR_OK);
        printf("\n  M = %d, latents x%g: fast %.15g ref %.15g", M, bad ? 40.0 : 1.0, pc, pcr);
        FR_ASSERT_CLOSE(pc, pcr, 1e-12, 1e-12);
        /* gradients are sums of terms that cancel: compare on the scale of
         * the largest entry */
        double gmax = 0;
        for (int q = 0; q < M * K; ++q) gmax = fmax(gmax, fmax(fabs(dzr[q]), fabs(dmur[q])));
        printf(" (largest gradient %.3g)", gmax);
        int off = 0;
        for (int q = 0; q < M * K; ++q) {
            off += !fr_test_close(dz[q], dzr[q], 1e-11, 1e-13 * gmax);
            off += !fr_test_close(dmu[q], dmur[q], 1e-11, 1e-13 * gmax);
        }
        CU_ASSERT_EQUAL(off, 0);
        /* scale 0: value only, gradient buffers untouched */
        double pc0;
        CU_ASSERT_EQUAL(fr_pc_rows(&m, M, mu, z, row0, nr, 0.0, &pc0, NULL, NULL, ws), FR_OK);
        CU_ASSERT_EQUAL(pc0, pc);
        fr_ws_free(ws);
        free(mu), free(z), free(dz), free(dmu), free(dzr), free(dmur);
    }
    }
    fr_pc_kernel(FR_PC_AUTO);
    printf("\n");
}

/* One PC evaluation (value, dz rows, dmu) with kernel version `kern`. */
static void pc_with(int kern, const fr_model *m, int M, const double *mu, const double *z, int row0, int nr,
                    double scale, double *pc, double *dz, double *dmu)
{
    fr_ws *ws;
    CU_ASSERT_EQUAL_FATAL(fr_ws_create(m, M, M, &ws), FR_OK);
    CU_ASSERT_EQUAL_FATAL(fr_pc_kernel(kern), kern);
    memset(dz, 0, sizeof(double) * (size_t)M * m->spec.K);
    memset(dmu, 0, sizeof(double) * (size_t)M * m->spec.K);
    CU_ASSERT_EQUAL(fr_pc_rows(m, M, mu, z, row0, nr, scale, pc, dz, dmu, ws), FR_OK);
    fr_pc_kernel(FR_PC_AUTO);
    fr_ws_free(ws);
}

/* The AVX2 version does the C version's operations with fma in the same
 * order, so the two agree bit for bit: every group size (1-4 unrolled, 5
 * and 9 by the general path), M with and without a tail of columns, rows
 * that take the safe path, and the evaluation estimator. */
static void test_versions_bitwise(void)
{
    if (fr_pc_kernel(FR_PC_AVX2) != FR_PC_AVX2) {
        printf("\n  no AVX2 + FMA on this CPU: nothing to compare\n");
        return;
    }
    fr_pc_kernel(FR_PC_AUTO);
    struct { int K, G, sizes[4], M; double stretch; } cases[] = {
        {6, 2, {3, 3}, 128, 1.0},      {7, 3, {3, 1, 3}, 131, 1.0}, {10, 3, {2, 4, 4}, 67, 1.0},
        {14, 2, {5, 9}, 45, 1.0},      {4, 4, {1, 1, 1, 1}, 9, 1.0}, {6, 2, {3, 3}, 7, 1.0},
        {6, 3, {2, 2, 2}, 32, 1000.0}, {7, 3, {3, 1, 3}, 131, 40.0},
    };
    int n_cases = (int)(sizeof cases / sizeof cases[0]), differ = 0;
    for (int c = 0; c < n_cases; ++c) {
        int K = cases[c].K, M = cases[c].M;
        fr_model m = make_model(K, cases[c].G, cases[c].sizes, 5000, M, -1);
        double *mu = malloc(sizeof(double) * M * K), *z = malloc(sizeof(double) * M * K);
        double *dz[2], *dmu[2], pc[2];
        for (int q = 0; q < M * K; ++q) {
            mu[q] = cases[c].stretch * fr_rng_normal(23, FR_STREAM_SYNTH, 3, (uint64_t)q);
            z[q] = mu[q] + cases[c].stretch * m.s_enc * fr_rng_normal(23, FR_STREAM_SYNTH, 4, (uint64_t)q);
        }
        int row0 = M > 4 ? 2 : 0, nr = M - row0 - (M > 4 ? 1 : 0);
        for (int v = 0; v < 2; ++v) {
            dz[v] = malloc(sizeof(double) * M * K), dmu[v] = malloc(sizeof(double) * M * K);
            pc_with(v ? FR_PC_AVX2 : FR_PC_C_FMA, &m, M, mu, z, row0, nr, 20.0 / M, &pc[v], dz[v], dmu[v]);
        }
        int same = memcmp(&pc[0], &pc[1], sizeof(double)) == 0 &&
                   memcmp(dz[0], dz[1], sizeof(double) * (size_t)nr * K) == 0 &&
                   memcmp(dmu[0], dmu[1], sizeof(double) * (size_t)M * K) == 0;
        double ev[2];
        for (int v = 0; v < 2; ++v) {
            CU_ASSERT_EQUAL_FATAL(fr_pc_kernel(v ? FR_PC_AVX2 : FR_PC_C_FMA), v ? FR_PC_AVX2 : FR_PC_C_FMA);
            CU_ASSERT_EQUAL(fr_pc_eval(K, cases[c].G, cases[c].sizes, M, mu, m.s_enc, 3, M, 7, &ev[v]), FR_OK);
        }
        fr_pc_kernel(FR_PC_AUTO);
        same = same && memcmp(&ev[0], &ev[1], sizeof(double)) == 0;
        printf("\n  K = %2d, G = %d, M = %3d, latents x%g: %s (PC %.17g)", K, cases[c].G, M, cases[c].stretch,
               same ? "same bits" : "DIFFERENT", pc[0]);
        differ += !same;
        for (int v = 0; v < 2; ++v) free(dz[v]), free(dmu[v]);
        free(mu), free(z);
    }
    printf("\n");
    CU_ASSERT_EQUAL(differ, 0);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("pc", NULL, NULL);
    CU_add_test(s, "matches the formula, gradients", test_matches_formula_and_gradients);
    CU_add_test(s, "independent vs correlated groups, bias falls with M", test_independent_vs_correlated);
    CU_add_test(s, "G = 1 is exactly zero", test_single_group_is_zero);
    CU_add_test(s, "beta 100 and latents x1e3 stay finite", test_badly_scaled);
    CU_add_test(s, "evaluation estimator", test_eval_estimator);
    CU_add_test(s, "polynomial exp accuracy", test_exp_poly);
    CU_add_test(s, "fast kernel = reference (vector tails, safe path)", test_fast_matches_reference);
    CU_add_test(s, "AVX2 and C versions agree bit for bit", test_versions_bitwise);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
