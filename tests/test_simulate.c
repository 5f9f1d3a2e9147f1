/* test_simulate: the rollout kernel (simulate.h). The BLAS version agrees
 * with the plain-loop reference in every mode; sampled rollouts are a pure
 * function of the seed; silencing and group removal do exactly what they
 * say; the Poisson sampler has the right mean; the rollout R^2 is right on
 * hand cases. */
#include <stdlib.h>
#include <string.h>

#include "facrnn/rng.h"
#include "facrnn/simulate.h"
#include "testlib.h"

enum { TT = 40 };

/* A model with N channels, groups [2, 1], L = 2 lags, D = 2 inputs, random
 * parameters scaled up so tanh saturates and rollouts are non-trivial. */
static void make_model(fr_model *m, double **params, fr_obs obs, int N, int D, int psi_learned)
{
    fr_model_spec s;
    memset(&s, 0, sizeof s);
    s.N = N;
    s.K = 3;
    s.D = D;
    s.L = 2;
    s.G = 2;
    s.group_size[0] = 2;
    s.group_size[1] = 1;
    s.obs = obs;
    s.link = FR_LINK_SOFTPLUS;
    s.nonlin = FR_NL_TANH;
    s.psi_learned = psi_learned;
    s.psi[0] = 0.7;
    s.psi[1] = 0.3;
    s.encoder_std = 0.2;
    s.beta = 1;
    s.n_train = 100;
    s.batch_size = 8;
    CU_ASSERT_FATAL(fr_model_init(m, &s) == FR_OK);
    *params = calloc(m->n_params, sizeof(double));
    fr_model_init_params(m, *params, 7);
    fr_view v = fr_model_view(m, *params);
    for (int i = 0; i < N * 3; ++i) {
        v.A[i] *= 3.0;
        v.B[i] *= 4.0;
    }
    if (v.psi) {
        v.psi[0] = 0.4;
        v.psi[1] = -0.2;
    }
}

static void make_data(int N, int D, double *x, double *u)
{
    for (int i = 0; i < TT * N; ++i) x[i] = fr_rng_normal(3, 99, 1, (uint64_t)i);
    for (int i = 0; i < TT * D; ++i) u[i] = fr_rng_normal(3, 99, 2, (uint64_t)i);
}

static double max_abs_diff(const double *a, const double *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; ++i) d = fmax(d, fabs(a[i] - b[i]));
    return d;
}

static void check_fast_vs_ref(fr_obs obs, int psi_learned)
{
    enum { N = 7, D = 2 };
    fr_model m;
    double *p;
    make_model(&m, &p, obs, N, D, psi_learned);
    double x[TT * N], u[TT * D], a[TT * N], b[TT * N];
    make_data(N, D, x, u);
    if (obs == FR_OBS_POISSON)
        for (int i = 0; i < TT * N; ++i) x[i] = floor(fabs(x[i]) * 2);
    fr_sim_ws *ws;
    CU_ASSERT_FATAL(fr_sim_ws_create(&m, TT, &ws) == FR_OK);
    unsigned char sil[N] = {0, 0, 1, 0, 0, 0, 1};
    for (int mode = 0; mode < 2; ++mode)
        for (int use_sil = 0; use_sil < 2; ++use_sil) {
            fr_sim_opts o = {(fr_sim_mode)mode, 11, use_sil ? sil : NULL};
            CU_ASSERT_FATAL(fr_sim_trial(&m, p, &o, 5, TT, x, u, a, ws) == FR_OK);
            CU_ASSERT_FATAL(fr_sim_trial_ref(&m, p, &o, 5, TT, x, u, b) == FR_OK);
            double d = max_abs_diff(a, b, TT * N);
            CU_ASSERT(d <= 1e-12 * (obs == FR_OBS_POISSON && mode ? 10 : 1));
            /* context rows are the observed data */
            for (int n = 0; n < N; ++n) CU_ASSERT(a[N + n] == (use_sil && sil[n] ? 0.0 : x[N + n]));
            /* the rollout moved away from the data (it is not a copy) */
            CU_ASSERT(max_abs_diff(a + 2 * N, x + 2 * N, (TT - 2) * N) > 1e-3);
            if (obs == FR_OBS_POISSON && mode == FR_SIM_SAMPLED)
                for (int i = 0; i < TT * N; ++i) CU_ASSERT(a[i] >= 0 && a[i] == floor(a[i]));
        }
    fr_sim_ws_free(ws);
    free(p);
}

static void test_fast_vs_ref_gaussian(void) { check_fast_vs_ref(FR_OBS_GAUSSIAN, 0); }
static void test_fast_vs_ref_poisson(void) { check_fast_vs_ref(FR_OBS_POISSON, 0); }
static void test_fast_vs_ref_learned_psi(void) { check_fast_vs_ref(FR_OBS_GAUSSIAN, 1); }

static void test_sampled_seeds(void)
{
    enum { N = 5, D = 2 };
    fr_model m;
    double *p;
    make_model(&m, &p, FR_OBS_GAUSSIAN, N, D, 0);
    double x[TT * N], u[TT * D], a[TT * N], b[TT * N], c[TT * N], e[TT * N];
    make_data(N, D, x, u);
    fr_sim_ws *ws;
    CU_ASSERT_FATAL(fr_sim_ws_create(&m, TT, &ws) == FR_OK);
    fr_sim_opts o1 = {FR_SIM_SAMPLED, 1, NULL}, o2 = {FR_SIM_SAMPLED, 2, NULL};
    CU_ASSERT(fr_sim_trial(&m, p, &o1, 3, TT, x, u, a, ws) == FR_OK);
    CU_ASSERT(fr_sim_trial(&m, p, &o1, 3, TT, x, u, b, ws) == FR_OK);
    CU_ASSERT(fr_sim_trial(&m, p, &o2, 3, TT, x, u, c, ws) == FR_OK);
    CU_ASSERT(fr_sim_trial(&m, p, &o1, 4, TT, x, u, e, ws) == FR_OK); /* another trial id */
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);
    CU_ASSERT(max_abs_diff(a + 2 * N, c + 2 * N, (TT - 2) * N) > 1e-3);
    CU_ASSERT(max_abs_diff(a + 2 * N, e + 2 * N, (TT - 2) * N) > 1e-3);
    fr_sim_ws_free(ws);
    free(p);
}

static void test_remove_group_entries(void)
{
    enum { N = 6 };
    fr_model m;
    double *p;
    make_model(&m, &p, FR_OBS_GAUSSIAN, N, 0, 0);
    double *q = malloc(m.n_params * sizeof(double));
    memcpy(q, p, m.n_params * sizeof(double));
    CU_ASSERT(fr_sim_remove_group(&m, q, 0) == FR_OK);
    fr_view v = fr_model_view(&m, p), w = fr_model_view(&m, q);
    for (int n = 0; n < N; ++n)
        for (int j = 0; j < 3; ++j) CU_ASSERT(w.A[n * 3 + j] == (j < 2 ? 0.0 : v.A[n * 3 + j]));
    for (int j = 0; j < 3; ++j)
        for (int n = 0; n < N; ++n) CU_ASSERT(w.B[j * N + n] == (j < 2 ? 0.0 : v.B[j * N + n]));
    CU_ASSERT(memcmp(w.c, v.c, N * sizeof(double)) == 0);
    CU_ASSERT(fr_sim_remove_group(&m, q, 2) == FR_EINVAL);
    CU_ASSERT(fr_sim_remove_group(&m, q, -1) == FR_EINVAL);
    free(q);
    free(p);
}

/* Block-structured A, B (channels 0..2 <-> group 0, 3..5 <-> group 1):
 * removing group 0 leaves group 1's channels exactly as in the full
 * rollout, and group 0's channels sit at c (Gaussian mean mode). */
static void test_remove_group_block(void)
{
    enum { N = 6 };
    fr_model m;
    double *p;
    make_model(&m, &p, FR_OBS_GAUSSIAN, N, 0, 0);
    fr_view v = fr_model_view(&m, p);
    for (int n = 0; n < N; ++n)
        for (int j = 0; j < 3; ++j) {
            int own = (n < 3) == (j < 2);
            if (!own) v.A[n * 3 + j] = v.B[j * N + n] = 0.0;
        }
    double x[TT * N], u[1], full[TT * N], cut[TT * N];
    make_data(N, 0, x, u);
    double *q = malloc(m.n_params * sizeof(double));
    memcpy(q, p, m.n_params * sizeof(double));
    CU_ASSERT_FATAL(fr_sim_remove_group(&m, q, 0) == FR_OK);
    fr_sim_ws *ws;
    CU_ASSERT_FATAL(fr_sim_ws_create(&m, TT, &ws) == FR_OK);
    fr_sim_opts o = {FR_SIM_MEAN, 0, NULL};
    CU_ASSERT(fr_sim_trial(&m, p, &o, 0, TT, x, NULL, full, ws) == FR_OK);
    CU_ASSERT(fr_sim_trial(&m, q, &o, 0, TT, x, NULL, cut, ws) == FR_OK);
    double d_other = 0, d_own = 0, moved = 0;
    for (int t = 2; t < TT; ++t)
        for (int n = 0; n < N; ++n) {
            if (n >= 3) d_other = fmax(d_other, fabs(full[t * N + n] - cut[t * N + n]));
            else {
                d_own = fmax(d_own, fabs(cut[t * N + n] - v.c[n]));
                moved = fmax(moved, fabs(full[t * N + n] - v.c[n]));
            }
        }
    CU_ASSERT(d_other <= 1e-14);
    CU_ASSERT(d_own == 0.0);
    CU_ASSERT(moved > 1e-2); /* the group had dynamics to remove */
    fr_sim_ws_free(ws);
    free(q);
    free(p);
}

static void test_poisson_sampler(void)
{
    const double lams[3] = {0.3, 3.5, 900.0};
    for (int i = 0; i < 3; ++i) {
        double lam = lams[i], s = 0, ss = 0;
        int n = 20000;
        for (int k = 0; k < n; ++k) {
            double v = fr_sim_poisson(lam, 5, (uint32_t)i, (uint64_t)k);
            CU_ASSERT(v >= 0 && v == floor(v));
            s += v;
            ss += v * v;
        }
        double mean = s / n, var = ss / n - mean * mean;
        CU_ASSERT(fabs(mean - lam) < 5 * sqrt(lam / n));
        CU_ASSERT(fabs(var - lam) < 0.1 * lam + 0.05);
    }
    CU_ASSERT(fr_sim_poisson(0.0, 1, 0, 0) == 0.0);
    CU_ASSERT(fr_sim_poisson(2.0, 1, 0, 7) == fr_sim_poisson(2.0, 1, 0, 7));
}

static void test_r2(void)
{
    /* 2 channels x 4 rows; channel 1 silenced; constant channel skipped */
    double x[8] = {1, 5, 2, 5, 3, 5, 4, 5};
    double perfect[8], meanpred[8];
    memcpy(perfect, x, sizeof x);
    for (int r = 0; r < 4; ++r) {
        meanpred[2 * r] = 2.5;
        meanpred[2 * r + 1] = 0;
    }
    CU_ASSERT(fr_sim_r2(2, 0, 4, x, perfect, NULL, NULL) == 1.0);
    FR_ASSERT_CLOSE(fr_sim_r2(2, 0, 4, x, meanpred, NULL, NULL), 0.0, 0, 1e-15);
    unsigned char sil[2] = {1, 0};
    CU_ASSERT(isnan(fr_sim_r2(2, 0, 4, x, perfect, sil, NULL)));
    /* half the variance explained: predictions at half distance to the mean give 1 - 1/4 */
    double half[8];
    for (int r = 0; r < 4; ++r) {
        half[2 * r] = 2.5 + 0.5 * (x[2 * r] - 2.5);
        half[2 * r + 1] = 5;
    }
    FR_ASSERT_CLOSE(fr_sim_r2(2, 0, 4, x, half, NULL, NULL), 0.75, 1e-14, 0);
}

static void test_bad_args(void)
{
    enum { N = 5, D = 2 };
    fr_model m;
    double *p;
    make_model(&m, &p, FR_OBS_GAUSSIAN, N, D, 0);
    double x[TT * N], u[TT * D], a[TT * N];
    make_data(N, D, x, u);
    fr_sim_ws *ws;
    CU_ASSERT_FATAL(fr_sim_ws_create(&m, TT, &ws) == FR_OK);
    fr_sim_opts o = {FR_SIM_MEAN, 0, NULL};
    CU_ASSERT(fr_sim_trial(&m, p, &o, 0, 2, x, u, a, ws) == FR_EINVAL);    /* only context bins */
    CU_ASSERT(fr_sim_trial(&m, p, &o, 0, TT, x, NULL, a, ws) == FR_EINVAL); /* inputs missing */
    CU_ASSERT(fr_sim_trial_ref(&m, p, &o, 0, TT, x, NULL, a) == FR_EINVAL);
    fr_sim_ws_free(ws);
    free(p);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("simulate", NULL, NULL);
    CU_add_test(s, "BLAS rollout = reference (gaussian, mean/sampled, silence)", test_fast_vs_ref_gaussian);
    CU_add_test(s, "BLAS rollout = reference (poisson)", test_fast_vs_ref_poisson);
    CU_add_test(s, "BLAS rollout = reference (learned psi)", test_fast_vs_ref_learned_psi);
    CU_add_test(s, "sampled: same seed same, other seed or trial differs", test_sampled_seeds);
    CU_add_test(s, "remove group zeroes A[:,g], B[g,:] only", test_remove_group_entries);
    CU_add_test(s, "remove group on block-structured model", test_remove_group_block);
    CU_add_test(s, "Poisson sampler mean and variance", test_poisson_sampler);
    CU_add_test(s, "rollout R2 hand cases", test_r2);
    CU_add_test(s, "bad arguments", test_bad_args);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
