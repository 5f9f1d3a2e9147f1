/* Tests for common and rng: error propagation, exit codes, Philox; the
 * phase clock of a fit. */
#include <string.h>

#include "facrnn/common.h"
#include "facrnn/fit_result.h"
#include "facrnn/rng.h"
#include "testlib.h"

static fr_err inner(int x)
{
    if (x < 0) return FR_FAIL(FR_EINVAL, "x must be >= 0, got %d", x);
    return FR_OK;
}
static fr_err outer(int x)
{
    TRY(inner(x));
    return FR_OK;
}

static void test_error_propagation(void)
{
    fr_error_clear();
    CU_ASSERT_EQUAL(outer(1), FR_OK);
    CU_ASSERT_EQUAL(outer(-3), FR_EINVAL);
    CU_ASSERT_STRING_EQUAL(fr_error_msg(), "x must be >= 0, got -3");
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_where(), "test_common.c:"));
    CU_ASSERT_EQUAL(fr_exit_code(FR_EINVAL), 2);
    CU_ASSERT_EQUAL(fr_exit_code(FR_EIO), 1);
    CU_ASSERT_EQUAL(fr_exit_code(FR_ESIGNAL), FR_EXIT_REQUEUE);
    FR_FAIL(FR_EINVAL, "two\nlines");
    CU_ASSERT_STRING_EQUAL(fr_error_msg(), "two lines");
    /* a caller may prefix the previous message with its own context */
    FR_FAIL(FR_EINVAL, "cannot create directory d: Not a directory");
    FR_FAIL(FR_EINVAL, "output.path: %s", fr_error_msg());
    CU_ASSERT_STRING_EQUAL(fr_error_msg(), "output.path: cannot create directory d: Not a directory");
}

/* Known-answer test from the Random123 distribution (Philox4x32-10, all-ones
 * counter/key pattern is exercised via the zero vector here). */
static void test_philox_known_answer(void)
{
    uint32_t o[4];
    fr_philox(0, 0, 0, 0, o);
    CU_ASSERT_EQUAL(o[0], 0x6627e8d5u);
    CU_ASSERT_EQUAL(o[1], 0xe169c58du);
    CU_ASSERT_EQUAL(o[2], 0xbc57ac4cu);
    CU_ASSERT_EQUAL(o[3], 0x9b00dbd8u);
}

static void test_normal_moments(void)
{
    double s = 0, s2 = 0;
    int n = 200000;
    for (int i = 0; i < n; ++i) {
        double z = fr_rng_normal(42, FR_STREAM_EPS, 7, (uint64_t)i);
        s += z;
        s2 += z * z;
    }
    CU_ASSERT(fabs(s / n) < 0.01);
    CU_ASSERT(fabs(s2 / n - 1.0) < 0.02);
    /* Pure function: same inputs, same draw. */
    CU_ASSERT_EQUAL(fr_rng_normal(1, 2, 3, 4), fr_rng_normal(1, 2, 3, 4));
    CU_ASSERT_NOT_EQUAL(fr_rng_normal(1, 2, 3, 4), fr_rng_normal(1, 2, 3, 5));
}

/* The phase clock: every second between start and the last switch lands in
 * exactly one phase, and an inner clock's phases move out of the outer
 * clock's current phase (times are set by hand: no sleeping). */
static void test_phase_clock(void)
{
    double t0 = fr_wtime();
    fr_phases p, q;
    fr_phases_start(&p, FR_PH_STARTUP, t0 - 10.0); /* started 10 s ago */
    fr_phases_start(&q, FR_PH_INIT, t0 - 6.0);     /* an inner clock, 6 s ago */
    q.s[FR_PH_INIT] = 1.0, q.s[FR_PH_TRAIN] = 3.0, q.s[FR_PH_EVAL] = 1.5, q.s[FR_PH_OUTPUT] = 0.5;
    fr_phases_absorb(&p, &q);
    double now = p.since, total = 0;
    CU_ASSERT(now >= t0);
    for (int i = 0; i < FR_PH_N; ++i) total += p.s[i];
    CU_ASSERT_DOUBLE_EQUAL(total, now - (t0 - 10.0), 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(p.s[FR_PH_STARTUP], now - t0 + 4.0, 1e-9); /* 10 s less the inner 6 s */
    CU_ASSERT_EQUAL(p.s[FR_PH_TRAIN], 3.0);
    CU_ASSERT_EQUAL(p.s[FR_PH_OUTPUT], 0.5);
    CU_ASSERT_EQUAL(p.cur, FR_PH_STARTUP);
    fr_phases_enter(&p, FR_PH_OUTPUT);
    CU_ASSERT_EQUAL(p.cur, FR_PH_OUTPUT);
    CU_ASSERT(p.s[FR_PH_STARTUP] >= now - t0 + 4.0);
    fr_phases_enter(&p, FR_PH_OUTPUT);
    CU_ASSERT(p.s[FR_PH_OUTPUT] >= 0.5);
    /* the process start is fixed once marked */
    double s0 = fr_process_start();
    CU_ASSERT(s0 <= fr_wtime());
    CU_ASSERT_EQUAL(fr_process_start(), s0);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("common", NULL, NULL);
    CU_add_test(s, "error propagation", test_error_propagation);
    CU_add_test(s, "philox known answer", test_philox_known_answer);
    CU_add_test(s, "normal moments", test_normal_moments);
    CU_add_test(s, "phase clock", test_phase_clock);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
