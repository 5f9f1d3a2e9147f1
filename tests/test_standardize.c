/* Tests for standardize: the sums and the transform against a direct
 * two-pass computation, apply and invert as inverses, flat channels, the
 * identity under off, and the stored-array checks. */
#include <stdlib.h>
#include <string.h>

#include "facrnn/standardize.h"
#include "testlib.h"

enum { ROWS = 37, N = 4 };

static void fill(double *x)
{
    for (int r = 0; r < ROWS; ++r) {
        x[r * N + 0] = 2000 + 300 * sin(0.7 * r);  /* raw-fluorescence scale */
        x[r * N + 1] = 0.1 * r - 1;
        x[r * N + 2] = 3.25;                     /* flat */
        x[r * N + 3] = (r % 3) - 7.0;
    }
}

static void test_sums_and_transform(void)
{
    double x[ROWS * N], acc[FR_STD_ACC_LEN(N)];
    fill(x);
    memset(acc, 0, sizeof acc);
    /* two chunks, as two ranks would add theirs */
    fr_std_accumulate(N, 20, x, acc);
    fr_std_accumulate(N, ROWS - 20, x + 20 * N, acc);
    CU_ASSERT_EQUAL(acc[0], ROWS);
    int big = 0;
    for (int i = 0; i < ROWS * N; ++i) big += fabs(x[i]) > FR_STD_SATURATE;
    CU_ASSERT_EQUAL(acc[1], big);
    fr_standardize st;
    CU_ASSERT_EQUAL_FATAL(fr_std_init(&st, FR_STD_ZSCORE, N, acc), FR_OK);
    for (int j = 0; j < N; ++j) {
        double m = 0, v = 0;
        for (int r = 0; r < ROWS; ++r) m += x[r * N + j];
        m /= ROWS;
        for (int r = 0; r < ROWS; ++r) v += (x[r * N + j] - m) * (x[r * N + j] - m);
        v /= ROWS;
        FR_ASSERT_CLOSE(st.mean[j], m, 1e-12, 0);
        if (j == 2) {
            CU_ASSERT_EQUAL(st.std[j], 1.0); /* flat: centred only */
        } else {
            FR_ASSERT_CLOSE(st.std[j], sqrt(v), 1e-9, 0);
        }
    }
    CU_ASSERT_EQUAL(st.n_flat, 1);
    double y[ROWS * N];
    memcpy(y, x, sizeof y);
    fr_std_apply(&st, ROWS, y);
    for (int j = 0; j < N; ++j) {
        double m = 0, v = 0;
        for (int r = 0; r < ROWS; ++r) m += y[r * N + j];
        m /= ROWS;
        for (int r = 0; r < ROWS; ++r) v += (y[r * N + j] - m) * (y[r * N + j] - m);
        FR_ASSERT_CLOSE(m, 0, 0, 1e-9);
        FR_ASSERT_CLOSE(v / ROWS, j == 2 ? 0 : 1, 1e-9, 1e-12);
    }
    fr_std_invert(&st, ROWS, y);
    for (int i = 0; i < ROWS * N; ++i) FR_ASSERT_CLOSE(y[i], x[i], 1e-13, 1e-13);
    fr_std_free(&st);
}

static void test_off_and_arrays(void)
{
    double x[ROWS * N], y[ROWS * N];
    fill(x);
    memcpy(y, x, sizeof y);
    fr_standardize st;
    CU_ASSERT_EQUAL_FATAL(fr_std_init(&st, FR_STD_OFF, N, NULL), FR_OK);
    fr_std_apply(&st, ROWS, y);
    fr_std_invert(&st, ROWS, y);
    CU_ASSERT_EQUAL(memcmp(x, y, sizeof x), 0);
    CU_ASSERT_EQUAL(st.mean[1], 0);
    CU_ASSERT_EQUAL(st.std[1], 1);
    fr_std_free(&st);
    double m[N] = {1, 2, 3, 4}, s[N] = {1, 2, 0, 4};
    CU_ASSERT_EQUAL(fr_std_from_arrays(&st, FR_STD_ZSCORE, N, m, s), FR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "channel 2"));
    fr_std_free(&st);
    s[2] = 0.5;
    CU_ASSERT_EQUAL_FATAL(fr_std_from_arrays(&st, FR_STD_ZSCORE, N, m, s), FR_OK);
    CU_ASSERT_EQUAL(st.std[2], 0.5);
    CU_ASSERT_STRING_EQUAL(fr_std_mode_name(st.mode), "zscore");
    fr_std_free(&st);
    double acc[FR_STD_ACC_LEN(N)];
    memset(acc, 0, sizeof acc);
    CU_ASSERT_EQUAL(fr_std_init(&st, FR_STD_ZSCORE, N, acc), FR_EINVAL); /* no training bins */
    fr_std_free(&st);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("standardize", NULL, NULL);
    CU_add_test(s, "sums and transform", test_sums_and_transform);
    CU_add_test(s, "off and stored arrays", test_off_and_arrays);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
