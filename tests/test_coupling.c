/* test_coupling: the held-out dynamical coupling between latent groups:
 * independent rotations in their own groups are uncoupled, a split rotation
 * or a driven group is coupled, the moments path agrees with the explicit
 * reference, and pairs never cross trials or context bins. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/coupling.h"
#include "facrnn/rng.h"
#include "testlib.h"

#define NT 30
#define NB 80
#define KK 4
#define PI 3.14159265358979323846

/* Two noisy 2-D rotations (periods 8 and 13 bins) in latents 0-1 and 2-3;
 * drive > 0 feeds tanh of the first pair into the second. Row 0 of every
 * trial is a context bin (NaN). */
static void make(double drive, uint64_t seed, double *lat /* (NT*NB, KK) */, long long *off, unsigned char *tr)
{
    double w1 = 2 * PI / 8, w2 = 2 * PI / 13;
    for (int k = 0; k < NT; ++k) {
        off[k] = (long long)k * NB;
        tr[k] = k % 3 != 0;
        double z[KK];
        for (int i = 0; i < KK; ++i) z[i] = fr_rng_normal(seed, 7, 0, (uint64_t)(k * KK + i));
        for (int t = 0; t < NB; ++t) {
            double *o = lat + ((size_t)k * NB + t) * KK;
            for (int i = 0; i < KK; ++i) o[i] = t == 0 ? NAN : z[i];
            double e[KK];
            for (int i = 0; i < KK; ++i) e[i] = 0.3 * fr_rng_normal(seed, 8, (uint32_t)k, (uint64_t)(t * KK + i));
            double n0 = 0.9 * (cos(w1) * z[0] - sin(w1) * z[1]) + e[0];
            double n1 = 0.9 * (sin(w1) * z[0] + cos(w1) * z[1]) + e[1];
            double n2 = 0.9 * (cos(w2) * z[2] - sin(w2) * z[3]) + drive * tanh(z[0]) + e[2];
            double n3 = 0.9 * (sin(w2) * z[2] + cos(w2) * z[3]) + drive * tanh(z[1] * z[0]) + e[3];
            z[0] = n0, z[1] = n1, z[2] = n2, z[3] = n3;
        }
    }
    off[NT] = (long long)NT * NB;
}

/* coupling through the moments path, standardised like the sweep does */
static double fast_lag(int quad, int lag, int G, const int *groups, const double *lat, const long long *off,
                       const unsigned char *tr, double *cg, double *pred)
{
    int P = fr_coupling_nfeat(KK, quad);
    fr_moments zm, a, b;
    CU_ASSERT_EQUAL_FATAL(fr_moments_init(&zm, KK), FR_OK);
    CU_ASSERT_EQUAL_FATAL(fr_moments_init(&a, P + KK), FR_OK);
    CU_ASSERT_EQUAL_FATAL(fr_moments_init(&b, P + KK), FR_OK);
    for (int k = 0; k < NT; ++k)
        if (tr[k]) CU_ASSERT_EQUAL(fr_moments_add(&zm, off[k + 1] - off[k], KK, lat + off[k] * KK, 0, NULL), FR_OK);
    double mean[KK], sd[KK];
    for (int i = 0; i < KK; ++i) {
        mean[i] = zm.s[i] / *zm.n;
        sd[i] = sqrt(zm.S[i * KK + i] / *zm.n - mean[i] * mean[i]);
    }
    CU_ASSERT_EQUAL(fr_coupling_pairs_add(&a, &b, KK, quad, lag, mean, sd, NT, off, tr, lat), FR_OK);
    /* every within-trial pair of non-context bins lag apart, none across trials */
    CU_ASSERT_EQUAL(*a.n + *b.n, NT * (NB - 1 - lag));
    CU_ASSERT_EQUAL(*b.n, 10 * (NB - 1 - lag));
    double c = NAN;
    CU_ASSERT_EQUAL(fr_coupling_from_moments(&a, &b, KK, quad, G, groups, cg, &c, pred), FR_OK);
    fr_moments_free(&zm), fr_moments_free(&a), fr_moments_free(&b);
    return c;
}

static double fast(int quad, int G, const int *groups, const double *lat, const long long *off, const unsigned char *tr,
                   double *cg)
{
    return fast_lag(quad, 1, G, groups, lat, off, tr, cg, NULL);
}

static void test_independent_and_coupled(void)
{
    double *lat = malloc(sizeof(double) * NT * NB * KK);
    long long off[NT + 1];
    unsigned char tr[NT];
    int g22[] = {2, 2}, g112[] = {1, 1, 2}, g13[] = {1, 3}, g4[] = {4};
    double cg[3];
    make(0, 1, lat, off, tr);
    for (int quad = 0; quad < 2; ++quad) {
        double c = fast(quad, 2, g22, lat, off, tr, cg);
        CU_ASSERT(c < 0.05); /* the true partition: nothing to add */
        CU_ASSERT(cg[0] < 0.05 && cg[1] < 0.05);
        c = fast(quad, 3, g112, lat, off, tr, cg);
        CU_ASSERT(c > 0.5); /* a rotation split in two predicts itself */
        CU_ASSERT(cg[0] > 0.5 && cg[1] > 0.5 && cg[2] < 0.05);
        CU_ASSERT(fast(quad, 2, g13, lat, off, tr, cg) > 0.5);
        CU_ASSERT_EQUAL(fast(quad, 1, g4, lat, off, tr, cg), 0.0);
    }
    /* the second pair driven by the first: coupled in the true basis, only
     * the driven group (a drive through tanh(z0 z1) needs the products) */
    make(0.8, 2, lat, off, tr);
    double c = fast(1, 2, g22, lat, off, tr, cg);
    CU_ASSERT(c > 0.3);
    CU_ASSERT(cg[0] < 0.05 && cg[1] > 0.3);
    free(lat);
}

/* Predictability: rotations predict themselves, latents without dynamics
 * do not, at any lag; a drive stays visible a few bins ahead. */
static void test_predictability_and_lags(void)
{
    double *lat = malloc(sizeof(double) * NT * NB * KK);
    long long off[NT + 1];
    unsigned char tr[NT];
    int g22[] = {2, 2}, g4[] = {4};
    double cg[2], pred = NAN;
    make(0, 4, lat, off, tr);
    fast_lag(1, 1, 2, g22, lat, off, tr, cg, &pred);
    CU_ASSERT(pred > 0.5);
    fast_lag(1, 1, 1, g4, lat, off, tr, cg, &pred);
    CU_ASSERT(pred > 0.5);
    /* white noise: rows independent of each other */
    for (int k = 0; k < NT; ++k)
        for (int t = 1; t < NB; ++t)
            for (int i = 0; i < KK; ++i)
                lat[((size_t)k * NB + t) * KK + i] = fr_rng_normal(5, 1, (uint32_t)k, (uint64_t)(t * KK + i));
    for (int lag = 1; lag <= 3; ++lag) {
        double c = fast_lag(1, lag, 2, g22, lat, off, tr, cg, &pred);
        CU_ASSERT(pred < 0.05);
        CU_ASSERT(c < 0.05);
    }
    make(0.8, 2, lat, off, tr);
    CU_ASSERT(fast_lag(1, 3, 2, g22, lat, off, tr, cg, &pred) > 0.1);
    free(lat);
}

static void test_reference_and_errors(void)
{
    double *lat = malloc(sizeof(double) * NT * NB * KK);
    long long off[NT + 1];
    unsigned char tr[NT];
    int g22[] = {2, 2}, g13[] = {1, 3}, bad[] = {2, 3};
    make(0.5, 3, lat, off, tr);
    for (int quad = 0; quad < 2; ++quad)
        for (int p = 0; p < 2; ++p) {
            const int *g = p ? g13 : g22;
            double cf[2], cr[2], mf, mr;
            for (int lag = 1; lag <= 5; lag += 2) {
                double pf = NAN, pr = NAN;
                mf = fast_lag(quad, lag, 2, g, lat, off, tr, cf, &pf);
                CU_ASSERT_EQUAL(fr_coupling_ref(KK, quad, lag, 2, g, NT, off, tr, lat, cr, &mr, &pr), FR_OK);
                FR_ASSERT_CLOSE(mf, mr, 1e-8, 1e-10);
                FR_ASSERT_CLOSE(cf[0], cr[0], 1e-8, 1e-10);
                FR_ASSERT_CLOSE(cf[1], cr[1], 1e-8, 1e-10);
                FR_ASSERT_CLOSE(pf, pr, 1e-8, 1e-10);
            }
        }
    double c;
    CU_ASSERT_EQUAL(fr_coupling_ref(KK, 1, 1, 2, bad, NT, off, tr, lat, NULL, &c, NULL), FR_EINVAL);
    /* too few held-out pairs is an error, not a number */
    fr_moments a, b;
    int P = fr_coupling_nfeat(KK, 1);
    CU_ASSERT_EQUAL_FATAL(fr_moments_init(&a, P + KK), FR_OK);
    CU_ASSERT_EQUAL_FATAL(fr_moments_init(&b, P + KK), FR_OK);
    CU_ASSERT_EQUAL(fr_coupling_from_moments(&a, &b, KK, 1, 2, g22, NULL, &c, NULL), FR_EINVAL);
    double m0[KK] = {0}, s1[KK] = {1, 1, 1, 1};
    CU_ASSERT_EQUAL(fr_coupling_pairs_add(&a, &b, KK, 1, 0, m0, s1, NT, off, tr, lat), FR_EINVAL); /* lag 0 */
    fr_moments_free(&a), fr_moments_free(&b);
    CU_ASSERT_EQUAL(fr_coupling_nfeat(4, 1), 14);
    CU_ASSERT_EQUAL(fr_coupling_nfeat(4, 0), 4);
    free(lat);
}

/* Any K: buffers are sized from K (there used to be a 256 cap). K = 260 in
 * two groups of independent AR(1) latents, the moments path against the
 * reference, and group 1 driven by group 0 is seen. */
static void test_large_k(void)
{
    enum { K = 260, T = 30, B = 60 };
    double *lat = malloc(sizeof(double) * T * B * K);
    long long off[T + 1];
    unsigned char tr[T];
    int groups[] = {K / 2, K / 2};
    for (int drive = 0; drive < 2; ++drive) {
        for (int k = 0; k < T; ++k) {
            off[k] = (long long)k * B;
            tr[k] = k % 3 != 0;
            for (int t = 0; t < B; ++t)
                for (int i = 0; i < K; ++i) {
                    double *o = lat + ((size_t)k * B + t) * K;
                    double e = fr_rng_normal(11, 9, (uint32_t)k, (uint64_t)t * K + (uint64_t)i);
                    double prev = t > 1 ? o[i - K] : 0;
                    double push = drive && i >= K / 2 && t > 1 ? 0.8 * o[i - K - K / 2] : 0;
                    o[i] = t == 0 ? NAN : 0.7 * prev + push + e;
                }
        }
        off[T] = (long long)T * B;
        int P = fr_coupling_nfeat(K, 0);
        CU_ASSERT_EQUAL(P, K);
        fr_moments a, b;
        CU_ASSERT_EQUAL_FATAL(fr_moments_init(&a, P + K), FR_OK);
        CU_ASSERT_EQUAL_FATAL(fr_moments_init(&b, P + K), FR_OK);
        /* standardised like the reference: training rows, population sd */
        double *mean = calloc(2 * K, sizeof(double)), *sd = mean + K, cnt = 0;
        for (int k = 0; k < T; ++k)
            for (int t = 1; t < B && tr[k]; ++t, ++cnt)
                for (int i = 0; i < K; ++i) mean[i] += lat[((size_t)k * B + t) * K + i];
        for (int i = 0; i < K; ++i) mean[i] /= cnt;
        for (int k = 0; k < T; ++k)
            for (int t = 1; t < B && tr[k]; ++t)
                for (int i = 0; i < K; ++i) {
                    double d = lat[((size_t)k * B + t) * K + i] - mean[i];
                    sd[i] += d * d;
                }
        for (int i = 0; i < K; ++i) sd[i] = sqrt(sd[i] / cnt);
        CU_ASSERT_EQUAL(fr_coupling_pairs_add(&a, &b, K, 0, 1, mean, sd, T, off, tr, lat), FR_OK);
        double cf[2], mf = NAN, cr[2], mr = NAN;
        CU_ASSERT_EQUAL(fr_coupling_from_moments(&a, &b, K, 0, 2, groups, cf, &mf, NULL), FR_OK);
        CU_ASSERT_EQUAL(fr_coupling_ref(K, 0, 1, 2, groups, T, off, tr, lat, cr, &mr, NULL), FR_OK);
        FR_ASSERT_CLOSE(cf[0], cr[0], 1e-6, 1e-8);
        FR_ASSERT_CLOSE(cf[1], cr[1], 1e-6, 1e-8);
        if (drive) {
            CU_ASSERT(cf[1] > 0.2); /* group 0 drives group 1 */
        } else {
            CU_ASSERT(mf < 0.2);
        }
        free(mean);
        fr_moments_free(&a), fr_moments_free(&b);
    }
    free(lat);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("coupling", NULL, NULL);
    CU_add_test(s, "independent and coupled groups", test_independent_and_coupled);
    CU_add_test(s, "predictability and lags", test_predictability_and_lags);
    CU_add_test(s, "moments vs reference, errors", test_reference_and_errors);
    CU_add_test(s, "large K", test_large_k);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
