/* Tests for analysis: Hungarian vs brute force, latent/behaviour R^2 on
 * hand-made cases, connectivity read-outs vs explicitly formed N x N. */
#include <stdlib.h>
#include <string.h>

#include "facrnn/analysis.h"
#include "facrnn/rng.h"
#include "testlib.h"

void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a, const int *lda,
             double *s, double *u, const int *ldu, double *vt, const int *ldvt, double *work, const int *lwork,
             int *info, size_t, size_t);

static double rnd(uint32_t a, uint64_t b) { return fr_rng_normal(11, FR_STREAM_SYNTH, a, b); }

/* Brute force over all injective maps of the smaller side. */
static double brute(int nr, int nc, const double *s, int i, int *used)
{
    if (i == nr) return 0;
    double best = -INFINITY;
    int free_cols = 0;
    for (int j = 0; j < nc; ++j) free_cols += !used[j];
    if (nr - i > free_cols) best = brute(nr, nc, s, i + 1, used); /* row i may stay unmatched */
    for (int j = 0; j < nc; ++j) {
        if (used[j]) continue;
        used[j] = 1;
        double v = s[i * nc + j] + brute(nr, nc, s, i + 1, used);
        used[j] = 0;
        if (v > best) best = v;
    }
    return best;
}

static void test_hungarian(void)
{
    int shapes[][2] = {{5, 5}, {3, 5}, {5, 3}, {1, 4}, {4, 1}, {6, 6}};
    for (int t = 0; t < 40; ++t) {
        int nr = shapes[t % 6][0], nc = shapes[t % 6][1];
        double s[36];
        int asg[6], used[6] = {0};
        for (int k = 0; k < nr * nc; ++k) s[k] = rnd(t, k) + (t % 3 == 0 ? (k % 2) : 0); /* some ties */
        CU_ASSERT_EQUAL_FATAL(fr_hungarian_max(nr, nc, s, asg), FR_OK);
        double tot = 0;
        int seen[6] = {0}, matched = 0;
        for (int i = 0; i < nr; ++i)
            if (asg[i] >= 0) {
                CU_ASSERT(asg[i] < nc);
                CU_ASSERT_EQUAL(seen[asg[i]]++, 0);
                tot += s[i * nc + asg[i]];
                matched++;
            }
        CU_ASSERT_EQUAL(matched, nr < nc ? nr : nc);
        FR_ASSERT_CLOSE(tot, brute(nr, nc, s, 0, used), 1e-12, 1e-12);
    }
    double bad[4] = {1, NAN, 0, 0};
    int a[2];
    CU_ASSERT_EQUAL(fr_hungarian_max(2, 2, bad, a), FR_EINVAL);
}

/* Exactly orthogonal zero-mean columns: cos/sin of distinct integer
 * frequencies over whole periods, so in-sample chance R^2 is exactly 0. */
#define NT 600
static void basis(int k, double *col)
{
    for (int t = 0; t < NT; ++t) {
        double ang = 6.283185307179586 * (double)((k / 2 + 1) * t) / NT;
        col[t] = k % 2 ? sin(ang) : cos(ang);
    }
}

static void make_truth(int K, double *zt /* (NT, K) */)
{
    double col[NT];
    for (int k = 0; k < K; ++k) {
        basis(k, col);
        for (int t = 0; t < NT; ++t) zt[t * K + k] = col[t];
    }
}

static void test_latent_r2_cases(void)
{
    double zt[NT * 6], z[NT * 6];
    make_truth(6, zt);
    int g33[2] = {3, 3}, g222[3] = {2, 2, 2}, g6[1] = {6};
    double r2, mat[6];
    int asg[3];
    /* identical */
    CU_ASSERT_EQUAL_FATAL(fr_latent_r2(NT, 6, zt, 2, g33, 6, zt, 2, g33, mat, asg, &r2), FR_OK);
    FR_ASSERT_CLOSE(r2, 1.0, 0, 1e-8);
    CU_ASSERT(asg[0] == 0 && asg[1] == 1);
    FR_ASSERT_CLOSE(mat[1], 0.0, 0, 1e-8);
    /* groups swapped and each group affinely mixed inside: still 1 after matching */
    for (int t = 0; t < NT; ++t) {
        const double *x = zt + t * 6;
        double *y = z + t * 6;
        y[0] = 2 * x[3] - x[4] + 5;
        y[1] = x[4] + 0.5 * x[5] - 1;
        y[2] = x[3] + x[5];
        y[3] = -x[0] + 3;
        y[4] = x[1] + x[2];
        y[5] = x[2] - 2 * x[1] + 0.1 * x[0];
    }
    CU_ASSERT_EQUAL_FATAL(fr_latent_r2(NT, 6, z, 2, g33, 6, zt, 2, g33, mat, asg, &r2), FR_OK);
    FR_ASSERT_CLOSE(r2, 1.0, 0, 1e-8);
    CU_ASSERT(asg[0] == 1 && asg[1] == 0);
    /* fitted 2+2+2 on true 3+3 (z = z*): best pairs explain 2 of 3 dims each */
    CU_ASSERT_EQUAL_FATAL(fr_latent_r2(NT, 6, zt, 3, g222, 6, zt, 2, g33, mat, asg, &r2), FR_OK);
    FR_ASSERT_CLOSE(mat[0], 2.0 / 3, 0, 1e-8); /* true 0 from fitted 0 */
    FR_ASSERT_CLOSE(mat[1], 1.0 / 3, 0, 1e-8); /* true 0 from fitted 1 */
    FR_ASSERT_CLOSE(mat[2], 0.0, 0, 1e-8);
    FR_ASSERT_CLOSE(mat[5], 2.0 / 3, 0, 1e-8); /* true 1 from fitted 2 */
    CU_ASSERT(asg[0] == 0 && asg[1] == 2);
    FR_ASSERT_CLOSE(r2, 2.0 / 3, 0, 1e-8);
    /* one fitted group of 6: explains both true groups, but one-to-one
     * matching credits only one of them */
    CU_ASSERT_EQUAL_FATAL(fr_latent_r2(NT, 6, zt, 1, g6, 6, zt, 2, g33, mat, asg, &r2), FR_OK);
    FR_ASSERT_CLOSE(mat[0], 1.0, 0, 1e-8);
    FR_ASSERT_CLOSE(mat[1], 1.0, 0, 1e-8);
    CU_ASSERT((asg[0] == 0) != (asg[1] == 0));
    FR_ASSERT_CLOSE(r2, 0.5, 0, 1e-8);
    /* noise: z = z* + e with var(e) = s^2, R^2 ~ var(z*)/(var(z*)+s^2) = 0.5/(0.5+0.25) */
    for (int t = 0; t < NT; ++t)
        for (int k = 0; k < 6; ++k) z[t * 6 + k] = zt[t * 6 + k] + 0.5 * rnd(100, (uint64_t)t * 6 + k);
    CU_ASSERT_EQUAL_FATAL(fr_latent_r2(NT, 6, z, 2, g33, 6, zt, 2, g33, mat, asg, &r2), FR_OK);
    CU_ASSERT(r2 < 0.8 && r2 > 0.55);
    FR_ASSERT_CLOSE(r2, 2.0 / 3, 0.08, 0);
    /* bad groups */
    int g24[2] = {2, 4}, g15[2] = {1, 4};
    CU_ASSERT_EQUAL(fr_latent_r2(NT, 6, z, 2, g15, 6, zt, 2, g24, mat, asg, &r2), FR_EINVAL);
}

static void test_component_r2_and_nan_rows(void)
{
    double zt[NT * 4], z[NT * 4];
    make_truth(4, zt);
    /* permuted and scaled components, two dims mixed together */
    for (int t = 0; t < NT; ++t) {
        z[t * 4 + 0] = 3 * zt[t * 4 + 2];
        z[t * 4 + 1] = -zt[t * 4 + 0] + 1;
        z[t * 4 + 2] = zt[t * 4 + 1] + zt[t * 4 + 3];
        z[t * 4 + 3] = zt[t * 4 + 1] - zt[t * 4 + 3];
    }
    fr_moments m;
    CU_ASSERT_EQUAL_FATAL(fr_moments_init(&m, 8), FR_OK);
    CU_ASSERT_EQUAL(fr_moments_add(&m, NT, 4, z, 4, zt), FR_OK);
    double r2;
    CU_ASSERT_EQUAL_FATAL(fr_component_r2_from_moments(&m, 4, 4, &r2), FR_OK);
    /* dims 2 and 0 perfect; dims 1 and 3 each half explained by one of the mixtures */
    FR_ASSERT_CLOSE(r2, (1 + 1 + 0.5 + 0.5) / 4, 0, 1e-8);
    /* Rows with NaN are skipped; moments add up like an Allreduce would. */
    fr_moments m2;
    CU_ASSERT_EQUAL_FATAL(fr_moments_init(&m2, 8), FR_OK);
    double zn[8 * 4];
    memcpy(zn, z, sizeof zn);
    zn[5] = NAN;
    CU_ASSERT_EQUAL(fr_moments_add(&m2, 8, 4, zn, 4, zt), FR_OK);
    CU_ASSERT_EQUAL(fr_moments_add(&m2, NT - 8, 4, z + 32, 4, zt + 32), FR_OK);
    CU_ASSERT_EQUAL(*m2.n, NT - 1);
    for (size_t k = 0; k < m.len; ++k) m.buf[k] = 0;
    CU_ASSERT_EQUAL(fr_moments_add(&m, NT, 4, z, 4, zt), FR_OK);
    FR_ASSERT_CLOSE(*m.n, NT, 0, 0);
    fr_moments_free(&m);
    fr_moments_free(&m2);
}

static void test_behavior_r2(void)
{
    /* y = W z + b + noise; fit on first half, score on second half, against a
     * direct residual computation with the same map. */
    int K = 3, P = 2, n = 400;
    double *z = malloc(sizeof(double) * n * K), *y = malloc(sizeof(double) * n * P);
    for (int t = 0; t < n; ++t) {
        for (int k = 0; k < K; ++k) z[t * K + k] = rnd(200 + k, t) + (k == 1 ? 4.0 : 0.0);
        y[t * P + 0] = 1.5 * z[t * K + 0] - z[t * K + 2] + 2 + 0.3 * rnd(300, t);
        y[t * P + 1] = 0.5 * z[t * K + 1] + 0.8 * rnd(301, t);
    }
    fr_moments tr, te;
    CU_ASSERT_EQUAL_FATAL(fr_moments_init(&tr, K + P), FR_OK);
    CU_ASSERT_EQUAL_FATAL(fr_moments_init(&te, K + P), FR_OK);
    fr_moments_add(&tr, n / 2, K, z, P, y);
    fr_moments_add(&te, n / 2, K, z + n / 2 * K, P, y + n / 2 * P);
    double r2[2], mean;
    CU_ASSERT_EQUAL_FATAL(fr_behavior_r2_from_moments(&tr, &te, K, P, 1e-6, r2, &mean), FR_OK);
    /* reference: refit and score explicitly */
    int idx[5] = {0, 1, 2, 3, 4};
    double W[6], b[2];
    CU_ASSERT_EQUAL_FATAL(fr_affine_fit_moments(&tr, K, idx, P, idx + K, 1e-6, W, b), FR_OK);
    CU_ASSERT(fabs(W[0 * P + 0] - 1.5) < 0.1 && fabs(W[2 * P + 0] + 1) < 0.1 && fabs(b[0] - 2) < 0.2);
    for (int j = 0; j < P; ++j) {
        double sse = 0, sst = 0, my = 0;
        for (int t = n / 2; t < n; ++t) my += y[t * P + j] / (n / 2);
        for (int t = n / 2; t < n; ++t) {
            double pred = b[j];
            for (int k = 0; k < K; ++k) pred += W[k * P + j] * z[t * K + k];
            sse += (y[t * P + j] - pred) * (y[t * P + j] - pred);
            sst += (y[t * P + j] - my) * (y[t * P + j] - my);
        }
        FR_ASSERT_CLOSE(r2[j], 1 - sse / sst, 1e-9, 1e-9);
    }
    FR_ASSERT_CLOSE(mean, (r2[0] + r2[1]) / 2, 1e-14, 0);
    CU_ASSERT(r2[0] > 0.9 && r2[1] > 0.1 && r2[1] < 0.5);
    fr_moments_free(&tr);
    fr_moments_free(&te);
    free(z);
    free(y);
}

/* Explicit N x N product W = A[:, k0:k0+H] B[k0:k0+H, :]. */
static void form(int N, int K, const double *A, const double *B, int k0, int H, double *W)
{
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
            double s = 0;
            for (int k = k0; k < k0 + H; ++k) s += A[i * K + k] * B[k * N + j];
            W[i * N + j] = s;
        }
}

static double pearson_ref(int n, const double *x, const double *y)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; ++i) {
        mx += x[i] / n;
        my += y[i] / n;
    }
    for (int i = 0; i < n; ++i) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxy / sqrt(sxx * syy);
}

static void test_connectivity(void)
{
    int N = 23, K = 5, groups[2] = {2, 3};
    double A[23 * 5], B[5 * 23], A2[23 * 5], B2[5 * 23], W[23 * 23], Wc[23 * 23], W2[23 * 23];
    for (int k = 0; k < N * K; ++k) {
        A[k] = rnd(400, k) + 0.3;
        B[k] = rnd(401, k);
        A2[k] = A[k] + 0.7 * rnd(402, k);
        B2[k] = B[k] + 0.7 * rnd(403, k);
    }
    for (int g = 0, k0 = 0; g < 3; k0 += (g < 2 ? groups[g] : 0), ++g) {
        int H = g < 2 ? groups[g] : K, kk = g < 2 ? k0 : 0;
        double s[5], U[23 * 5], V[23 * 5], sref[23], work[2000];
        CU_ASSERT_EQUAL_FATAL(fr_conn_svd(N, K, A, B, kk, H, s, U, V), FR_OK);
        form(N, K, A, B, kk, H, W);
        memcpy(Wc, W, sizeof W);
        int info = 0, lwork = 2000;
        dgesvd_("N", "N", &N, &N, Wc, &N, sref, NULL, &N, NULL, &N, work, &lwork, &info, 1, 1);
        CU_ASSERT_EQUAL(info, 0);
        int bad = 0;
        for (int c = 0; c < H; ++c) bad += !fr_test_close(s[c], sref[c], 1e-11, 0);
        bad += sref[H] > 1e-12 * sref[0]; /* the rank really is H */
        /* U S V^T reproduces W; U and V orthonormal */
        for (int i = 0; i < N; ++i)
            for (int j = 0; j < N; ++j) {
                double r = 0;
                for (int c = 0; c < H; ++c) r += U[i * H + c] * s[c] * V[j * H + c];
                bad += !fr_test_close(r, W[i * N + j], 0, 1e-11 * sref[0]);
            }
        for (int a = 0; a < H; ++a)
            for (int b = 0; b < H; ++b) {
                double du = 0, dv = 0;
                for (int i = 0; i < N; ++i) {
                    du += U[i * H + a] * U[i * H + b];
                    dv += V[i * H + a] * V[i * H + b];
                }
                bad += !fr_test_close(du, a == b, 0, 1e-12) + !fr_test_close(dv, a == b, 0, 1e-12);
            }
        CU_ASSERT_EQUAL(bad, 0);
    }
    /* J = B A */
    double J[25];
    fr_conn_J(N, K, A, B, J);
    for (int a = 0; a < K; ++a)
        for (int b = 0; b < K; ++b) {
            double s = 0;
            for (int i = 0; i < N; ++i) s += B[a * N + i] * A[i * K + b];
            FR_ASSERT_CLOSE(J[a * K + b], s, 1e-12, 1e-12);
        }
    /* Pearson r of W and of matched groups vs explicit */
    double r;
    form(N, K, A, B, 0, K, W);
    form(N, K, A2, B2, 0, K, W2);
    CU_ASSERT_EQUAL_FATAL(fr_lowrank_pearson(N, K, A, K, B, N, K, A2, K, B2, N, &r), FR_OK);
    FR_ASSERT_CLOSE(r, pearson_ref(N * N, W, W2), 1e-10, 0);
    CU_ASSERT(r > 0.3 && r < 0.99);
    CU_ASSERT_EQUAL_FATAL(fr_lowrank_pearson(N, K, A, K, B, N, K, A, K, B, N, &r), FR_OK);
    FR_ASSERT_CLOSE(r, 1.0, 1e-12, 0);
    int g2[2] = {3, 2}, assign[2] = {1, -1};
    double rg[2];
    /* model 2 = the same model with its groups swapped: group 0 (size 2) of
     * model 1 is group 1 of model 2 */
    double A3[23 * 5], B3[5 * 23];
    for (int i = 0; i < N; ++i)
        for (int k = 0; k < K; ++k) A3[i * K + k] = A2[i * K + (k + 2) % K];
    for (int k = 0; k < K; ++k) memcpy(B3 + k * N, B2 + ((k + 2) % K) * N, sizeof(double) * N);
    CU_ASSERT_EQUAL_FATAL(fr_conn_pearson_groups(N, K, A, B, 2, groups, K, A3, B3, 2, g2, assign, rg), FR_OK);
    form(N, K, A, B, 0, 2, W);
    form(N, K, A2, B2, 0, 2, W2);
    FR_ASSERT_CLOSE(rg[0], pearson_ref(N * N, W, W2), 1e-10, 0);
    FR_ASSERT_CLOSE(rg[1], 0.0, 0, 0);
    CU_ASSERT_EQUAL(fr_conn_svd(N, K, A, B, 3, 3, rg, NULL, NULL), FR_EINVAL);
}

/* Slow reference of fr_align_cumulate: each row summed from scratch. */
static void cumulate_ref(long long T, int L, int K, const double *mu, int P, const double *b, int position,
                         double *C, double *Y)
{
    for (long long t = L; t < T; ++t) {
        for (int k = 0; k < K; ++k) {
            double c = 0;
            for (long long s = L; s <= t; ++s) c += mu[s * K + k];
            C[(t - L) * K + k] = c;
        }
        for (int a = 0; a < P; ++a) {
            double y = 0;
            if (position) y = b[t * P + a] - b[L * P + a];
            else
                for (long long s = L; s <= t; ++s) y += b[s * P + a];
            Y[(t - L) * P + a] = y;
        }
    }
}

/* Behaviour alignment: column x (0) is an exact affine function of group 2's
 * cumulative latents and column y (1) of group 1's, so the assignment swaps
 * and R^2 = 1; noise on the behaviour lowers it; with more columns than
 * groups each column takes its best group. */
static void test_behavior_align(void)
{
    enum { K = 4, P = 3, L = 2, T = 40, NTR = 10, NTRAIN = 7 };
    int groups[2] = {2, 2}, one[1] = {K};
    double mu[T * K], b[T * P], bn[T * P], C[T * K], Y[T * P], Cr[T * K], Yr[T * P], Yn[T * P];
    fr_moments tr[2], te[2]; /* [clean, noisy] */
    for (int i = 0; i < 2; ++i) {
        CU_ASSERT_EQUAL_FATAL(fr_moments_init(&tr[i], K + P), FR_OK);
        CU_ASSERT_EQUAL_FATAL(fr_moments_init(&te[i], K + P), FR_OK);
    }
    for (int k = 0; k < NTR; ++k) {
        for (int t = 0; t < T * K; ++t) mu[t] = t < L * K ? NAN : rnd(400 + k, t) + 0.3;
        for (int t = 0; t < T; ++t) {
            /* velocities whose running sums are affine in the running sums of
             * the latents: the intercept enters at the first sample bin */
            const double *m = mu + t * K;
            b[t * P + 0] = 2.0 * m[2] - 0.7 * m[3] + (t == L ? 5.0 : 0.0);
            b[t * P + 1] = -1.2 * m[0] + 0.4 * m[1] + (t == L ? -1.0 : 0.0);
            b[t * P + 2] = b[t * P + 0]; /* a third column like x (P > G case below) */
            for (int a = 0; a < P; ++a) bn[t * P + a] = b[t * P + a] + 3.0 * rnd(500 + k, t * P + a);
        }
        for (int pos = 0; pos < 2; ++pos) {
            /* the kernel against its slow reference, velocity and position */
            fr_align_cumulate(T, L, K, mu, P, b, pos, C, Y);
            cumulate_ref(T, L, K, mu, P, b, pos, Cr, Yr);
            for (int i = 0; i < (T - L) * K; ++i) FR_ASSERT_CLOSE(C[i], Cr[i], 1e-12, 1e-12);
            for (int i = 0; i < (T - L) * P; ++i) FR_ASSERT_CLOSE(Y[i], Yr[i], 1e-12, 1e-12);
        }
        fr_align_cumulate(T, L, K, mu, P, b, 0, C, Y);
        fr_align_cumulate(T, L, K, mu, P, bn, 0, Cr, Yn);
        CU_ASSERT_EQUAL(fr_moments_add(k < NTRAIN ? &tr[0] : &te[0], T - L, K, C, P, Y), FR_OK);
        CU_ASSERT_EQUAL(fr_moments_add(k < NTRAIN ? &tr[1] : &te[1], T - L, K, C, P, Yn), FR_OK);
    }
    double mat[P * 2], r2, r2_all, r2n, r2n_all, r2one, r2one_all;
    int asg[P];
    /* P = 2 <= G = 2: the first two columns, the Hungarian assignment swaps */
    fr_moments sub[2];
    for (int i = 0; i < 2; ++i) { /* moments of [C, x, y] from [C, x, y, x'] */
        CU_ASSERT_EQUAL_FATAL(fr_moments_init(&sub[i], K + 2), FR_OK);
        const fr_moments *src = i ? &te[0] : &tr[0];
        *sub[i].n = *src->n;
        for (int r = 0; r < K + 2; ++r) {
            sub[i].s[r] = src->s[r];
            for (int c = 0; c < K + 2; ++c) sub[i].S[r * (K + 2) + c] = src->S[r * (K + P) + c];
        }
    }
    CU_ASSERT_EQUAL_FATAL(fr_behavior_align_r2_from_moments(&sub[0], &sub[1], K, 2, groups, 2, 1e-6, mat, asg, &r2,
                                                            &r2_all), FR_OK);
    CU_ASSERT_EQUAL(asg[0], 1);
    CU_ASSERT_EQUAL(asg[1], 0);
    FR_ASSERT_CLOSE(mat[0 * 2 + 1], 1.0, 1e-8, 0);
    FR_ASSERT_CLOSE(mat[1 * 2 + 0], 1.0, 1e-8, 0);
    CU_ASSERT(mat[0 * 2 + 0] < 0.99 && mat[1 * 2 + 1] < 0.99);
    FR_ASSERT_CLOSE(r2, 1.0, 1e-8, 0);
    FR_ASSERT_CLOSE(r2_all, 1.0, 1e-8, 0);
    /* noise on the velocities lowers both */
    CU_ASSERT_EQUAL_FATAL(fr_behavior_align_r2_from_moments(&tr[1], &te[1], K, 2, groups, P, 1e-6, mat, asg, &r2n,
                                                            &r2n_all), FR_OK);
    CU_ASSERT(r2n < 0.99 && r2n_all < 0.99);
    /* P = 3 > G = 2: each column its best group (x and its copy share group 2) */
    CU_ASSERT_EQUAL_FATAL(fr_behavior_align_r2_from_moments(&tr[0], &te[0], K, 2, groups, P, 1e-6, mat, asg, &r2,
                                                            &r2_all), FR_OK);
    CU_ASSERT(asg[0] == 1 && asg[1] == 0 && asg[2] == 1);
    FR_ASSERT_CLOSE(r2, 1.0, 1e-8, 0);
    /* one group of every latent (an lrRNN): grouped and ungrouped agree */
    CU_ASSERT_EQUAL_FATAL(fr_behavior_align_r2_from_moments(&tr[1], &te[1], K, 1, one, P, 1e-6, mat, asg, &r2one,
                                                            &r2one_all), FR_OK);
    CU_ASSERT(asg[0] == 0 && asg[1] == 0 && asg[2] == 0);
    FR_ASSERT_CLOSE(r2one, r2one_all, 1e-14, 0);
    FR_ASSERT_CLOSE(r2one_all, r2n_all, 1e-14, 0);
    for (int i = 0; i < 2; ++i) {
        fr_moments_free(&tr[i]);
        fr_moments_free(&te[i]);
        fr_moments_free(&sub[i]);
    }
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("analysis", NULL, NULL);
    CU_add_test(s, "hungarian", test_hungarian);
    CU_add_test(s, "latent_r2_cases", test_latent_r2_cases);
    CU_add_test(s, "component_r2_and_nan_rows", test_component_r2_and_nan_rows);
    CU_add_test(s, "behavior_r2", test_behavior_r2);
    CU_add_test(s, "behavior_align", test_behavior_align);
    CU_add_test(s, "connectivity", test_connectivity);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
