/* Tests for modes: the real eigenbasis recovers a hidden block structure
 * (1-D real modes, 2-D complex pairs kept whole), defective dynamics fail
 * cleanly, mode-to-group assignment (exact fit, pair-splitting fallback,
 * sizes that cannot add up), and the change of basis leaves the model
 * function (decoder mean of the encoder mean) unchanged. */
#include <stdlib.h>
#include <string.h>

#include "facrnn/modes.h"
#include "facrnn/rng.h"
#include "testlib.h"

static double rnd(uint32_t a, uint64_t b) { return fr_rng_normal(23, FR_STREAM_SYNTH, a, b); }

/* out (n, n) = X (n, n) Y (n, n), row-major. */
static void matmul(int n, const double *X, const double *Y, double *out)
{
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            double s = 0;
            for (int p = 0; p < n; ++p) s += X[i * n + p] * Y[p * n + j];
            out[i * n + j] = s;
        }
}

/* The eigenvalues of the synthetic 1 + 2 + 2 data set's fitted dynamics:
 * -0.998, 0.885 +- 0.46i, 0.704 +- 0.703i, hidden in a random basis S. */
static void test_basis_blocks(void)
{
    enum { K = 5 };
    double D[K * K] = {0};
    D[0] = -0.998;
    double blk[2][2] = {{0.885, 0.46}, {0.704, 0.703}};
    for (int b = 0; b < 2; ++b) {
        int o = 1 + 2 * b;
        D[o * K + o] = D[(o + 1) * K + o + 1] = blk[b][0];
        D[o * K + o + 1] = blk[b][1];
        D[(o + 1) * K + o] = -blk[b][1];
    }
    for (int trial = 0; trial < 5; ++trial) {
        double S[K * K], Si[K * K], tmp[K * K], F[K * K], T[K * K], Ti[K * K], M[K * K];
        for (int i = 0; i < K * K; ++i) S[i] = rnd(trial, i) + (i % (K + 1) == 0 ? 2.0 : 0.0);
        CU_ASSERT_EQUAL_FATAL(fr_modes_inverse(K, S, Si), FR_OK);
        matmul(K, S, D, tmp);
        matmul(K, tmp, Si, F); /* F = S D S^{-1} */
        int size[K], nm = 0;
        CU_ASSERT_EQUAL_FATAL(fr_modes_basis(K, F, T, size, &nm), FR_OK);
        /* |lambda|: 0.998 > 0.9974 > 0.9949 */
        CU_ASSERT_EQUAL_FATAL(nm, 3);
        CU_ASSERT_EQUAL(size[0], 1);
        CU_ASSERT_EQUAL(size[1], 2);
        CU_ASSERT_EQUAL(size[2], 2);
        CU_ASSERT_EQUAL_FATAL(fr_modes_inverse(K, T, Ti), FR_OK);
        matmul(K, T, F, tmp);
        matmul(K, tmp, Ti, M); /* T F T^{-1} */
        int blk_of[K] = {0, 1, 1, 2, 2};
        for (int i = 0; i < K; ++i)
            for (int j = 0; j < K; ++j)
                if (blk_of[i] != blk_of[j]) CU_ASSERT(fabs(M[i * K + j]) < 1e-10);
        FR_ASSERT_CLOSE(M[0], -0.998, 1e-10, 0);
        for (int b = 0; b < 2; ++b) {
            int o = 1 + 2 * b;
            double a = M[o * K + o], bb = M[o * K + o + 1], cc = M[(o + 1) * K + o], dd = M[(o + 1) * K + o + 1];
            /* a genuine rotation block: trace 2 Re(lambda), det |lambda|^2,
             * not reducible to 1-D (non-zero off-diagonal) */
            FR_ASSERT_CLOSE(a + dd, 2 * blk[b][0], 1e-10, 0);
            FR_ASSERT_CLOSE(a * dd - bb * cc, blk[b][0] * blk[b][0] + blk[b][1] * blk[b][1], 1e-10, 0);
            CU_ASSERT(fabs(bb) > 0.1 && fabs(cc) > 0.1);
        }
        /* same input, same output (every rank computes this independently) */
        double T2[K * K];
        int size2[K], nm2 = 0;
        CU_ASSERT_EQUAL_FATAL(fr_modes_basis(K, F, T2, size2, &nm2), FR_OK);
        CU_ASSERT(memcmp(T, T2, sizeof T) == 0);
    }
}

static void test_basis_fails(void)
{
    double J[4] = {1, 1, 0, 1}; /* Jordan block: one eigenvector only */
    double T[4];
    int size[2], nm;
    CU_ASSERT_EQUAL(fr_modes_basis(2, J, T, size, &nm), FR_ENUMERIC);
    double Nn[4] = {1, NAN, 0, 1};
    CU_ASSERT_EQUAL(fr_modes_basis(2, Nn, T, size, &nm), FR_ENUMERIC);
    double Z[4] = {0, 0, 0, 0};
    CU_ASSERT_EQUAL(fr_modes_inverse(2, Z, T), FR_ENUMERIC);
    /* a diagonal F: modes are the axes, ordered by |lambda| then arg */
    double Dg[9] = {0.5, 0, 0, 0, -0.9, 0, 0, 0, 0.9};
    double T3[9];
    int s3[3];
    CU_ASSERT_EQUAL_FATAL(fr_modes_basis(3, Dg, T3, s3, &nm), FR_OK);
    CU_ASSERT_EQUAL(nm, 3);
    double want[9] = {0, 0, 1, 0, 1, 0, 1, 0, 0}; /* 0.9 (arg 0), -0.9 (arg pi), 0.5 */
    for (int i = 0; i < 9; ++i) FR_ASSERT_CLOSE(T3[i], want[i], 0, 1e-14);
}

static void test_assign(void)
{
    int cg[30], ns = -1; /* K coordinates: the largest case below has K = 30 */
    /* the 1 + 2 + 2 data set: modes [1, 2, 2] into groups [2, 2, 1] */
    int m1[3] = {1, 2, 2}, g1[3] = {2, 2, 1};
    CU_ASSERT_EQUAL_FATAL(fr_modes_assign(3, m1, 3, g1, cg, &ns), FR_OK);
    int w1[5] = {2, 0, 0, 1, 1};
    for (int i = 0; i < 5; ++i) CU_ASSERT_EQUAL(cg[i], w1[i]);
    CU_ASSERT_EQUAL(ns, 0);
    /* first fit in group order when several work */
    int m2[3] = {2, 1, 1}, g2[2] = {2, 2};
    CU_ASSERT_EQUAL_FATAL(fr_modes_assign(3, m2, 2, g2, cg, &ns), FR_OK);
    int w2[4] = {0, 0, 1, 1};
    for (int i = 0; i < 4; ++i) CU_ASSERT_EQUAL(cg[i], w2[i]);
    /* fallback: one complex pair into two 1-D groups */
    int m3[1] = {2}, g3[2] = {1, 1};
    CU_ASSERT_EQUAL_FATAL(fr_modes_assign(1, m3, 2, g3, cg, &ns), FR_OK);
    CU_ASSERT_EQUAL(cg[0], 0);
    CU_ASSERT_EQUAL(cg[1], 1);
    CU_ASSERT_EQUAL(ns, 1);
    /* fallback splits only the last pair: [2, 2] into [1, 1, 2] */
    int m4[2] = {2, 2}, g4[3] = {1, 1, 2};
    CU_ASSERT_EQUAL_FATAL(fr_modes_assign(2, m4, 3, g4, cg, &ns), FR_OK);
    int w4[4] = {2, 2, 0, 1};
    for (int i = 0; i < 4; ++i) CU_ASSERT_EQUAL(cg[i], w4[i]);
    CU_ASSERT_EQUAL(ns, 1);
    /* impossible: sizes do not add up, or a mode that is neither 1-D nor 2-D */
    int m5[2] = {1, 2}, g5[2] = {2, 2};
    CU_ASSERT_EQUAL(fr_modes_assign(2, m5, 2, g5, cg, &ns), FR_EINVAL);
    int m6[1] = {3}, g6[1] = {3};
    CU_ASSERT_EQUAL(fr_modes_assign(1, m6, 1, g6, cg, &ns), FR_EINVAL);
    /* many equal groups stay fast (interchangeable groups are tried once) */
    int m7[20], g7[20];
    for (int i = 0; i < 20; ++i) {
        m7[i] = i < 10 ? 2 : 1;
        if (i < 15) g7[i] = 2;
    }
    CU_ASSERT_EQUAL_FATAL(fr_modes_assign(20, m7, 15, g7, cg, NULL), FR_OK);
}

/* The model function is unchanged: A' (B' h + d') + c' = A (B h + d) + c,
 * and the new latents are P (mu - m). */
static void test_change_basis(void)
{
    enum { N = 7, K = 5 };
    double B[K * N], d[K], A[N * K], c[N], P[K * K], Pi[K * K], m[K], h[N];
    for (int i = 0; i < K * N; ++i) B[i] = rnd(100, i);
    for (int i = 0; i < N * K; ++i) A[i] = rnd(101, i);
    for (int i = 0; i < K * K; ++i) P[i] = rnd(102, i) + (i % (K + 1) == 0 ? 2.0 : 0.0);
    for (int i = 0; i < K; ++i) d[i] = rnd(103, i), m[i] = rnd(104, i);
    for (int i = 0; i < N; ++i) c[i] = rnd(105, i), h[i] = rnd(106, i);
    double mu[K], eta[N], B2[K * N], d2[K], A2[N * K], c2[N], mu2[K], eta2[N];
    for (int k = 0; k < K; ++k) {
        mu[k] = d[k];
        for (int j = 0; j < N; ++j) mu[k] += B[k * N + j] * h[j];
    }
    for (int j = 0; j < N; ++j) {
        eta[j] = c[j];
        for (int k = 0; k < K; ++k) eta[j] += A[j * K + k] * mu[k];
    }
    memcpy(B2, B, sizeof B);
    memcpy(d2, d, sizeof d);
    memcpy(A2, A, sizeof A);
    memcpy(c2, c, sizeof c);
    CU_ASSERT_EQUAL_FATAL(fr_modes_inverse(K, P, Pi), FR_OK);
    CU_ASSERT_EQUAL_FATAL(fr_modes_change_basis(N, K, P, Pi, m, B2, d2, A2, c2), FR_OK);
    for (int k = 0; k < K; ++k) {
        mu2[k] = d2[k];
        for (int j = 0; j < N; ++j) mu2[k] += B2[k * N + j] * h[j];
        double want = 0;
        for (int q = 0; q < K; ++q) want += P[k * K + q] * (mu[q] - m[q]);
        FR_ASSERT_CLOSE(mu2[k], want, 1e-12, 1e-12);
    }
    for (int j = 0; j < N; ++j) {
        eta2[j] = c2[j];
        for (int k = 0; k < K; ++k) eta2[j] += A2[j * K + k] * mu2[k];
        FR_ASSERT_CLOSE(eta2[j], eta[j], 1e-12, 1e-12);
    }
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("modes", NULL, NULL);
    CU_add_test(s, "basis_blocks", test_basis_blocks);
    CU_add_test(s, "basis_fails", test_basis_fails);
    CU_add_test(s, "assign", test_assign);
    CU_add_test(s, "change_basis", test_change_basis);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
