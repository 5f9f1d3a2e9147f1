/* fr_model_init: validation of the model spec (each invalid case gives
 * FR_EINVAL and a message naming the key), the flat layout, and the default
 * initialisation. */
#include <stdio.h>
#include <string.h>

#include "facrnn/model.h"
#include "testlib.h"

static fr_model_spec good(void)
{
    fr_model_spec s;
    memset(&s, 0, sizeof s);
    s.N = 5, s.K = 6, s.D = 2, s.L = 3, s.G = 3;
    s.group_size[0] = 3, s.group_size[1] = 2, s.group_size[2] = 1;
    s.psi[0] = 0.5, s.psi[1] = 0.25, s.psi[2] = 0.25;
    s.obs = FR_OBS_GAUSSIAN, s.beta = 2.0, s.n_train = 1000, s.batch_size = 8;
    return s;
}

/* Expect FR_EINVAL and both phrases in the message. */
static void expect_bad(const fr_model_spec *s, const char *p1, const char *p2)
{
    fr_model m;
    fr_error_clear();
    CU_ASSERT_EQUAL(fr_model_init(&m, s), FR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), p1));
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), p2));
    if (!strstr(fr_error_msg(), p1) || !strstr(fr_error_msg(), p2)) printf("\n  message: %s\n", fr_error_msg());
}

static void test_rejects(void)
{
    fr_model m;
    fr_model_spec s = good();
    CU_ASSERT_EQUAL(fr_model_init(&m, &s), FR_OK);

    s = good(), s.K = 0, s.G = 1, s.group_size[0] = 0;
    expect_bad(&s, "model.rank", "K must be >= 1, got 0");
    s = good(), s.group_size[2] = 2;
    expect_bad(&s, "model.groups", "sum to 7, but rank K = 6");
    s = good(), s.group_size[1] = 0, s.group_size[2] = 3;
    expect_bad(&s, "model.groups[1]", "size must be >= 1, got 0");
    s = good(), s.group_size[1] = -1, s.group_size[2] = 4;
    expect_bad(&s, "model.groups[1]", "got -1");
    s = good(), s.K = 2, s.G = 3, s.group_size[0] = 1, s.group_size[1] = 1, s.group_size[2] = 0;
    expect_bad(&s, "model.groups", "G = 3 groups exceed rank K = 2");
    s = good(), s.L = 0;
    expect_bad(&s, "model.lags", "got 0");
    s = good(), s.L = FR_MAX_LAGS + 1;
    expect_bad(&s, "model.lags", "got 33");
    s = good(), s.psi[1] = -0.25, s.psi[2] = 0.75;
    expect_bad(&s, "model.psi[1]", ">= 0");
    s = good(), s.psi[2] = 0.25 + 1e-6;
    expect_bad(&s, "model.psi", "must sum to 1");
    s = good(), s.psi[2] = 0.25 + 1e-12; /* inside the 1e-9 tolerance */
    CU_ASSERT_EQUAL(fr_model_init(&m, &s), FR_OK);
    s = good(), s.psi[1] = -5, s.psi_learned = 1; /* fixed psi ignored when learned */
    CU_ASSERT_EQUAL(fr_model_init(&m, &s), FR_OK);
    s = good(), s.batch_size = 1;
    expect_bad(&s, "train.batch_size", "M must be >= 2 when G = 3");
    s = good(), s.batch_size = 1, s.G = 1, s.group_size[0] = 6; /* M = 1 is fine for G = 1 */
    CU_ASSERT_EQUAL(fr_model_init(&m, &s), FR_OK);
    s = good(), s.beta = NAN;
    expect_bad(&s, "train.beta", "finite and >= 0");
    s = good(), s.beta = INFINITY;
    expect_bad(&s, "train.beta", "finite and >= 0");
    s = good(), s.beta = -1;
    expect_bad(&s, "train.beta", "got -1");
    s = good(), s.N = 0;
    expect_bad(&s, "channels N", "got 0");
    s = good(), s.D = -1;
    expect_bad(&s, "model.inputs", "got -1");
    s = good(), s.n_train = 1;
    expect_bad(&s, "n_train", "got 1");
}

static void test_layout_and_init(void)
{
    fr_model m;
    fr_model_spec s = good();
    CU_ASSERT_EQUAL_FATAL(fr_model_init(&m, &s), FR_OK);
    /* [A | B | c | d | s | E]: 30 + 30 + 5 + 6 + 5 + 10 */
    CU_ASSERT_EQUAL(m.n_params, 86u);
    CU_ASSERT_EQUAL(m.off_B, 30u);
    CU_ASSERT_EQUAL(m.off_s, 71u);
    CU_ASSERT_EQUAL(m.off_E, 76u);
    CU_ASSERT_EQUAL(m.off_psi, SIZE_MAX);
    CU_ASSERT_EQUAL(m.group_off[3], 6);
    FR_ASSERT_CLOSE(m.s_enc, pow(1000.0, -0.1), 1e-15, 0);
    double p[86], p2[86];
    fr_model_init_params(&m, p, 42);
    fr_model_init_params(&m, p2, 42);
    CU_ASSERT_EQUAL(memcmp(p, p2, sizeof p), 0);
    fr_view v = fr_model_view(&m, p);
    double aK = 1 / sqrt(6.0), aN = 1 / sqrt(5.0), mx = 0;
    for (int q = 0; q < 30; ++q) CU_ASSERT(fabs(v.A[q]) < aK && fabs(v.B[q]) < aN);
    for (int q = 0; q < 30; ++q) mx = fmax(mx, fabs(v.A[q]));
    CU_ASSERT(mx > 0.5 * aK);
    for (int n = 0; n < 5; ++n) CU_ASSERT(v.s[n] == -1.0 && fabs(v.c[n]) < aK);
    for (int k = 0; k < 6; ++k) CU_ASSERT(fabs(v.d[k]) < aN);
    for (int q = 0; q < 10; ++q) CU_ASSERT(fabs(v.E[q]) < aK && v.E[q] != 0.0);
    /* learned psi: zero logits -> uniform kernel; Poisson has no s */
    s.psi_learned = 1, s.obs = FR_OBS_POISSON, s.encoder_std = 0.25;
    CU_ASSERT_EQUAL_FATAL(fr_model_init(&m, &s), FR_OK);
    CU_ASSERT_EQUAL(m.off_s, SIZE_MAX);
    CU_ASSERT_EQUAL(m.n_params, 30u + 30 + 5 + 6 + 10 + 3);
    CU_ASSERT_EQUAL(m.s_enc, 0.25);
    fr_model_init_params(&m, p, 1);
    double psi[3];
    fr_model_psi(&m, p, psi);
    for (int l = 0; l < 3; ++l) FR_ASSERT_CLOSE(psi[l], 1.0 / 3, 1e-15, 0);
    CU_ASSERT_PTR_NULL(fr_model_view(&m, p).s);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("model_init", NULL, NULL);
    CU_add_test(s, "rejects invalid specs", test_rejects);
    CU_add_test(s, "layout and default init", test_layout_and_init);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
