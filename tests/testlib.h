/* testlib: run CUnit suites under MPI. Every rank runs every test; the
 * failure counts are summed over ranks, so a failure on any rank fails the
 * test executable on all of them. Only rank 0 prints CUnit's report. */
#ifndef FACRNN_TESTLIB_H
#define FACRNN_TESTLIB_H

#include <CUnit/CUnit.h>
#include <math.h>

/* Register your suites inside `reg` (CU_add_suite / CU_add_test). Returns
 * the process exit code: 0 when no rank failed. Collective. */
int fr_test_main(int argc, char **argv, void (*reg)(void));

/* Relative closeness: |a - b| <= rtol * max(|a|, |b|) or <= atol. */
int fr_test_close(double a, double b, double rtol, double atol);
#define FR_ASSERT_CLOSE(a, b, rtol, atol) CU_ASSERT(fr_test_close((a), (b), (rtol), (atol)))

/* A fresh scratch directory for this test process (same path on every rank,
 * created by rank 0). fr_test_main removes it, with everything in it, after
 * the tests (FACRNN_TEST_KEEP=1 keeps it). Collective the first time it is
 * called. */
const char *fr_test_tmpdir(void);

#endif
