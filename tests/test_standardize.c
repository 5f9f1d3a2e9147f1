/* Tests for standardize: the sums and the transform against a direct
 * two-pass computation, apply and invert as inverses, flat channels, the
 * identity under off, and the stored-array checks. */
#include <stdlib.h>
#include <math.h>
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
    fr_std_accumulate(N, 20, x, NULL, acc);
    fr_std_accumulate(N, ROWS - 20, x + 20 * N, NULL, acc);
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
    fr_std_apply(&st, ROWS, y, NULL);
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
    fr_std_apply(&st, ROWS, y, NULL);
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

/* Missing values: the moments are over observed entries only (the values
 * at missing entries do not matter), a never-observed channel keeps mean 0
 * and std 1, and fr_std_apply puts the fill 0 at missing entries. */
static void test_masked(void)
{
    enum { R = 6, C = 3 };
    double x[R * C], acc[FR_STD_ACC_LEN(C)];
    unsigned char o[R * C];
    for (int r = 0; r < R; ++r)
        for (int j = 0; j < C; ++j) {
            o[r * C + j] = j == 2 ? 0 : (r % 2 == 0 || j == 0);
            x[r * C + j] = o[r * C + j] ? 10.0 * j + r : 1e6 * (r + 1);
        }
    memset(acc, 0, sizeof acc);
    fr_std_accumulate(C, R, x, o, acc);
    CU_ASSERT_EQUAL(acc[0], R);
    CU_ASSERT_EQUAL(acc[1], 3.0); /* observed entries with |x| > 5: channel 1 at rows 0, 2, 4 */
    fr_standardize st;
    CU_ASSERT_EQUAL_FATAL(fr_std_init(&st, FR_STD_ZSCORE, C, acc), FR_OK);
    FR_ASSERT_CLOSE(st.mean[0], 2.5, 1e-15, 0);        /* rows 0..5 */
    FR_ASSERT_CLOSE(st.mean[1], 12.0, 1e-15, 0);       /* rows 0, 2, 4 */
    FR_ASSERT_CLOSE(st.std[1], sqrt(8.0 / 3.0), 1e-14, 0);
    CU_ASSERT_EQUAL(st.mean[2], 0.0);
    CU_ASSERT_EQUAL(st.std[2], 1.0);
    CU_ASSERT_EQUAL(st.n_flat, 0);
    fr_std_apply(&st, R, x, o);
    for (int q = 0; q < R * C; ++q)
        if (!o[q]) CU_ASSERT_EQUAL(x[q], 0.0);
    FR_ASSERT_CLOSE(x[0 * C + 1], (10.0 - 12.0) / sqrt(8.0 / 3.0), 1e-14, 0);
    fr_std_free(&st);
    /* under off too, missing entries get the fill */
    x[2] = 5.0;
    CU_ASSERT_EQUAL_FATAL(fr_std_init(&st, FR_STD_OFF, C, NULL), FR_OK);
    fr_std_apply(&st, R, x, o);
    CU_ASSERT_EQUAL(x[2], 0.0);
    fr_std_free(&st);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("standardize", NULL, NULL);
    CU_add_test(s, "sums and transform", test_sums_and_transform);
    CU_add_test(s, "off and stored arrays", test_off_and_arrays);
    CU_add_test(s, "missing values (mask)", test_masked);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
