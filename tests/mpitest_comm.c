/* Tests for comm: with MPI_ERRORS_RETURN installed, a failing MPI call comes
 * back through CHECK_MPI as FR_EMPI with a message naming the call and its
 * location, every rank agrees on it, and communicators made from such a
 * communicator carry the same handler. Run at 1, 2 and 3 ranks. */
#include <string.h>

#include "facrnn/comm.h"
#include "testlib.h"

/* A broadcast through the project's checked-call macro. */
static fr_err checked_bcast(MPI_Comm comm, int count, int root)
{
    int x[4] = {0};
    CHECK_MPI(MPI_Bcast(x, count, MPI_INT, root, comm));
    return FR_OK;
}

static int returns_errors(MPI_Comm comm)
{
    MPI_Errhandler h;
    if (MPI_Comm_get_errhandler(comm, &h) != MPI_SUCCESS) return 0;
    int yes = h == MPI_ERRORS_RETURN;
    MPI_Errhandler_free(&h);
    return yes;
}

static void test_errors_return_installs(void)
{
    MPI_Comm c;
    CU_ASSERT_EQUAL_FATAL(MPI_Comm_dup(MPI_COMM_WORLD, &c), MPI_SUCCESS);
    CU_ASSERT_EQUAL(fr_comm_errors_return(c), FR_OK);
    CU_ASSERT(returns_errors(c));
    /* split and dup inherit the handler from their parent */
    int rank;
    MPI_Comm_rank(c, &rank);
    MPI_Comm s, d;
    CU_ASSERT_EQUAL_FATAL(MPI_Comm_split(c, rank % 2, rank, &s), MPI_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(MPI_Comm_dup(c, &d), MPI_SUCCESS);
    CU_ASSERT(returns_errors(s));
    CU_ASSERT(returns_errors(d));
    MPI_Comm_free(&d);
    MPI_Comm_free(&s);
    MPI_Comm_free(&c);
}

/* An invalid root is caught by argument checking on every rank, so the
 * error is real and local and no rank waits for another. */
static void test_invalid_root_is_reported(void)
{
    MPI_Comm c;
    CU_ASSERT_EQUAL_FATAL(MPI_Comm_dup(MPI_COMM_WORLD, &c), MPI_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(fr_comm_errors_return(c), FR_OK);
    int size;
    MPI_Comm_size(c, &size);
    CU_ASSERT_EQUAL(checked_bcast(c, 1, 0), FR_OK); /* the same call with a valid root works */
    fr_error_clear();
    fr_err rc = checked_bcast(c, 1, size + 3);
    CU_ASSERT_EQUAL(rc, FR_EMPI);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "MPI call failed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "MPI_Bcast(x, count, MPI_INT, root, comm)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_where(), "mpitest_comm.c:"));
    /* the failure is agreed across ranks with its message */
    CU_ASSERT_EQUAL(fr_error_agree(&c, rc), FR_EMPI);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "MPI_Bcast"));
    CU_ASSERT_EQUAL(fr_exit_code(FR_EMPI), FR_EXIT_RUNTIME);
    /* the communicator still works after a returned error */
    CU_ASSERT_EQUAL(checked_bcast(c, 2, 0), FR_OK);
    MPI_Comm_free(&c);
}

static void test_negative_count_is_reported(void)
{
    MPI_Comm c;
    CU_ASSERT_EQUAL_FATAL(MPI_Comm_dup(MPI_COMM_WORLD, &c), MPI_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(fr_comm_errors_return(c), FR_OK);
    fr_error_clear();
    CU_ASSERT_EQUAL(checked_bcast(c, -1, 0), FR_EMPI);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "MPI_Bcast"));
    CU_ASSERT(strlen(fr_error_msg()) > strlen("MPI call failed: ")); /* MPI's own description follows */
    MPI_Comm_free(&c);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("comm", NULL, NULL);
    CU_add_test(s, "errors_return installs and is inherited", test_errors_return_installs);
    CU_add_test(s, "invalid root is reported", test_invalid_root_is_reported);
    CU_add_test(s, "negative count is reported", test_negative_count_is_reported);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
