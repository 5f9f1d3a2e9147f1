/* Whole-stack test: cblas Gram matrices per rank, MPI_Allreduce, ScaLAPACK
 * pdsyevd on a BLACS grid, a parallel HDF5 write/read round trip, and serial
 * LAPACK as the reference (fr_selftest_run), then an independent serial
 * re-read of the file. */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "facrnn/common.h"
#include "facrnn/selftest.h"
#include "testlib.h"

static void check(int N, long long rows)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char path[512];
    snprintf(path, sizeof path, "%s/stack-%d.h5", fr_test_tmpdir(), N);
    fr_selftest_report rep;
    fr_err rc = fr_selftest_run(MPI_COMM_WORLD, N, rows, path, &rep);
    CU_ASSERT_EQUAL_FATAL(rc, FR_OK);
    CU_ASSERT(rep.eval_err <= 1e-10);
    CU_ASSERT(rep.evec_err <= 1e-10);
    MPI_Barrier(MPI_COMM_WORLD);
    /* The file as any outside reader sees it: shapes, and sorted spectrum
     * of a positive semi-definite Gram matrix; orthonormal columns. */
    if (rank == 0) {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        CU_ASSERT_FATAL(f >= 0);
        hid_t d1 = H5Dopen2(f, "evals", H5P_DEFAULT), d2 = H5Dopen2(f, "evecs", H5P_DEFAULT);
        hid_t s2 = H5Dget_space(d2);
        hsize_t dims[2] = {0, 0};
        CU_ASSERT_EQUAL(H5Sget_simple_extent_ndims(s2), 2);
        H5Sget_simple_extent_dims(s2, dims, NULL);
        CU_ASSERT(dims[0] == (hsize_t)N && dims[1] == (hsize_t)N);
        double *ev = malloc(sizeof(double) * N), *V = malloc(sizeof(double) * N * N);
        CU_ASSERT(H5Dread(d1, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, ev) >= 0);
        CU_ASSERT(H5Dread(d2, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, V) >= 0);
        int bad = 0;
        for (int j = 0; j < N; ++j) bad += ev[j] < 0 || (j > 0 && ev[j] > ev[j - 1]);
        for (int a = 0; a < N; a += 7)
            for (int b = 0; b < N; b += 5) {
                double dot = 0;
                for (int i = 0; i < N; ++i) dot += V[i * N + a] * V[i * N + b];
                bad += !fr_test_close(dot, a == b ? 1.0 : 0.0, 0, 1e-12);
            }
        CU_ASSERT_EQUAL(bad, 0);
        free(ev);
        free(V);
        H5Sclose(s2);
        H5Dclose(d1);
        H5Dclose(d2);
        H5Fclose(f);
    }
}

static void test_stack_160(void) { check(160, 250); }
static void test_stack_n_below_block(void) { check(37, 40); }
static void test_stack_invalid(void)
{
    fr_selftest_report rep;
    CU_ASSERT_EQUAL(fr_selftest_run(MPI_COMM_WORLD, 0, 10, "unused.h5", &rep), FR_EINVAL);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("stack", NULL, NULL);
    CU_add_test(s, "stack_160", test_stack_160);
    CU_add_test(s, "stack_n_below_block", test_stack_n_below_block);
    CU_add_test(s, "stack_invalid", test_stack_invalid);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
