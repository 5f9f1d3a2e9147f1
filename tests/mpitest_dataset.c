/* Round trip of the parallel reader at 1, 2 and 3 ranks: the union of the
 * shards, gathered on rank 0, equals a serial read of the whole file byte
 * for byte (float32, int32 and float64 data, unequal trial lengths, empty
 * shards), and the checksum does not depend on the rank count. The small
 * ground-truth parameters come with the data set on every rank. */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/dataset.h"
#include "facrnn/synth.h"
#include "testlib.h"

static int g_rank, g_size;

static void put(hid_t f, const char *name, hid_t ft, hid_t mt, int rank, const hsize_t *dims, const void *buf)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Dclose(d);
    H5Sclose(sp);
}

/* A small custom file: trials of the given lengths, N channels, data of
 * file type `ft` (values exactly representable in it), plus inputs (D = 2),
 * behaviour (P = 1), conditions and truth latents with groups [2, 1]. */
static void write_custom(const char *path, hid_t ft, int nt, const long long *len, int N)
{
    long long off[64] = {0};
    for (int k = 0; k < nt; ++k) off[k + 1] = off[k] + len[k];
    long long R = off[nt];
    double *x = calloc((size_t)(R * N), sizeof *x), *u = calloc((size_t)(R * 2), sizeof *u),
           *b = calloc((size_t)R, sizeof *b), *z = calloc((size_t)(R * 3), sizeof *z);
    for (long long r = 0; r < R; ++r) {
        for (int n = 0; n < N; ++n)
            x[r * N + n] = H5Tget_class(ft) == H5T_INTEGER ? (double)((r * 7 + n * 3) % 11)
                                                             : (double)(float)(0.37 * r - 1.3 * n + 0.01 * r * n);
        u[r * 2] = r;
        u[r * 2 + 1] = -0.5 * r;
        b[r] = 1.0 / (1.0 + r);
        for (int j = 0; j < 3; ++j) z[r * 3 + j] = r + 0.25 * j;
    }
    int cond[64];
    for (int k = 0; k < nt; ++k) cond[k] = k % 2;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dx[2] = {(hsize_t)R, (hsize_t)N}, doff = (hsize_t)nt + 1, du[2] = {(hsize_t)R, 2},
            db[2] = {(hsize_t)R, 1}, dz[2] = {(hsize_t)R, 3}, dc = (hsize_t)nt;
    put(f, "/data", ft, H5T_NATIVE_DOUBLE, 2, dx, x);
    put(f, "/trial_offsets", H5T_STD_I64LE, H5T_NATIVE_LLONG, 1, &doff, off);
    put(f, "/inputs", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, du, u);
    put(f, "/behavior", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, 2, db, b);
    put(f, "/trial_condition", H5T_STD_I32LE, H5T_NATIVE_INT, 1, &dc, cond);
    hid_t g = H5Gcreate2(f, "/truth", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    put(f, "/truth/latents", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dz, z);
    hid_t d = H5Dopen2(f, "/truth/latents", H5P_DEFAULT);
    hsize_t two = 2;
    int groups[2] = {2, 1};
    hid_t sp = H5Screate_simple(1, &two, NULL);
    hid_t a = H5Acreate2(d, "groups", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT, groups);
    H5Aclose(a);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    free(x);
    free(u);
    free(b);
    free(z);
}

/* Serial read of a whole 2-D dataset as doubles (rank 0 only). */
static double *serial_read(const char *path, const char *name, long long *rows, int *cols)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    double *buf = calloc((size_t)(dims[0] * dims[1]) + 1, sizeof *buf);
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    *rows = (long long)dims[0];
    *cols = (int)dims[1];
    return buf;
}

/* Gather every rank's shard rows (rows, cols) to rank 0 and compare with
 * the serial read of `name`, byte for byte. Returns 1 if equal (on every
 * rank, after a broadcast). */
static int shards_equal(const fr_dataset *ds, const char *name, const double *mine, int cols)
{
    long long rows = ds->row_hi - ds->row_lo;
    int cnt = (int)(rows * cols);
    int *counts = calloc((size_t)g_size, sizeof *counts), *displs = calloc((size_t)g_size, sizeof *displs);
    MPI_Gather(&cnt, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    double *all = NULL;
    int total = 0;
    if (g_rank == 0) {
        for (int r = 0; r < g_size; ++r) {
            displs[r] = total;
            total += counts[r];
        }
        all = calloc((size_t)total + 1, sizeof *all);
    }
    MPI_Gatherv(mine, cnt, MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    int ok = 0;
    if (g_rank == 0) {
        long long R;
        int C;
        double *ref = serial_read(ds->path, name, &R, &C);
        ok = C == cols && R * C == total && memcmp(ref, all, sizeof(double) * (size_t)total) == 0;
        if (!ok) fprintf(stderr, "  %s: gathered shards differ from the serial read\n", name);
        free(ref);
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    free(all);
    free(counts);
    free(displs);
    return ok;
}

static void check_roundtrip(const char *path, int lags, int poisson)
{
    fr_dataset ds;
    fr_read_opts o = {.lags = lags, .poisson = poisson, .read_inputs = 1, .read_behavior = 1, .read_truth = 1};
    fr_err rc = fr_dataset_open(MPI_COMM_WORLD, path, &o, &ds);
    if (rc != FR_OK) fprintf(stderr, "  open %s: %s\n", path, fr_error_msg());
    CU_ASSERT_EQUAL_FATAL(rc, FR_OK);
    /* The shard is the plan's, one contiguous block of whole trials. */
    long long *ft = calloc((size_t)g_size + 1, sizeof *ft);
    fr_shard_plan(ds.n_trials, ds.offsets, lags, g_size, ft);
    CU_ASSERT_EQUAL(ds.trial_lo, ft[g_rank]);
    CU_ASSERT_EQUAL(ds.trial_hi, ft[g_rank + 1]);
    CU_ASSERT_EQUAL(ds.row_lo, ds.offsets[ds.trial_lo]);
    CU_ASSERT_EQUAL(ds.row_hi, ds.offsets[ds.trial_hi]);
    free(ft);
    CU_ASSERT(shards_equal(&ds, "/data", ds.x, ds.N));
    if (ds.D) CU_ASSERT(shards_equal(&ds, "/inputs", ds.u, ds.D));
    if (ds.P) CU_ASSERT(shards_equal(&ds, "/behavior", ds.behavior, ds.P));
    if (ds.truth_K) CU_ASSERT(shards_equal(&ds, "/truth/latents", ds.truth_latents, ds.truth_K));
    /* Checksum: equal on every rank and to the serial reference, which
     * does not depend on the number of ranks. */
    uint64_t ref = 0;
    if (g_rank == 0) {
        long long R;
        int C;
        double *x = serial_read(path, "/data", &R, &C);
        ref = fr_dataset_checksum_serial(ds.n_trials, ds.offsets, C, x);
        free(x);
    }
    MPI_Bcast(&ref, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    CU_ASSERT_EQUAL(ds.checksum, ref);
    fr_dataset_free(&ds);
}

static void test_custom_float32(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/f32.h5", fr_test_tmpdir());
    long long len[7] = {7, 3, 12, 5, 9, 4, 20};
    if (g_rank == 0) write_custom(path, H5T_IEEE_F32LE, 7, len, 5);
    MPI_Barrier(MPI_COMM_WORLD);
    check_roundtrip(path, 2, 0);
    /* And the metadata every rank holds. */
    fr_dataset ds;
    fr_read_opts o = {.lags = 1, .poisson = -1, .read_inputs = 1, .read_behavior = 1, .read_truth = 1};
    CU_ASSERT_EQUAL_FATAL(fr_dataset_open(MPI_COMM_WORLD, path, &o, &ds), FR_OK);
    CU_ASSERT_EQUAL(ds.n_trials, 7);
    CU_ASSERT_EQUAL(ds.total_bins, 60);
    CU_ASSERT_EQUAL(ds.N, 5);
    CU_ASSERT_EQUAL(ds.D, 2);
    CU_ASSERT_EQUAL(ds.P, 1);
    CU_ASSERT_EQUAL(ds.truth_K, 3);
    CU_ASSERT_EQUAL(ds.truth_G, 2);
    CU_ASSERT_EQUAL(ds.truth_groups[1], 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ds.condition);
    CU_ASSERT_EQUAL(ds.condition[3], 1);
    CU_ASSERT_EQUAL(ds.offsets[7], 60);
    fr_dataset_free(&ds);
    /* Not reading the optional data sets leaves them out. */
    fr_read_opts o2 = {.lags = 1, .poisson = 0};
    CU_ASSERT_EQUAL_FATAL(fr_dataset_open(MPI_COMM_WORLD, path, &o2, &ds), FR_OK);
    CU_ASSERT(ds.D == 0 && ds.P == 0 && ds.truth_K == 0 && !ds.u && !ds.behavior && !ds.truth_latents);
    fr_dataset_free(&ds);
}

static void test_custom_int_counts(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/i32.h5", fr_test_tmpdir());
    long long len[2] = {5, 6}; /* two trials: at 3 ranks one shard is empty */
    if (g_rank == 0) write_custom(path, H5T_STD_I32LE, 2, len, 4);
    MPI_Barrier(MPI_COMM_WORLD);
    check_roundtrip(path, 1, 1);
}

static void test_synth_file(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/synth.h5", fr_test_tmpdir());
    fr_synth_spec s;
    fr_synth_data d;
    CU_ASSERT_EQUAL_FATAL(fr_synth_spec_init(&s, "facrnn"), FR_OK);
    CU_ASSERT_EQUAL_FATAL(fr_synth_spec_set(&s, "trials=9"), FR_OK);
    CU_ASSERT_EQUAL_FATAL(fr_synth_spec_set(&s, "inputs=2"), FR_OK);
    CU_ASSERT_EQUAL_FATAL(fr_synth_generate(&s, &d), FR_OK); /* every rank: pure */
    if (g_rank == 0) CU_ASSERT_EQUAL(fr_synth_write(&s, &d, path), FR_OK);
    MPI_Barrier(MPI_COMM_WORLD);
    check_roundtrip(path, 1, -1);
    /* The ground-truth parameters come with the data set, on every rank. */
    fr_dataset ds;
    fr_read_opts o = {.lags = 1, .poisson = -1, .read_inputs = 1, .read_behavior = 1, .read_truth = 1};
    CU_ASSERT_EQUAL_FATAL(fr_dataset_open(MPI_COMM_WORLD, path, &o, &ds), FR_OK);
    const fr_truth_params *tp = &ds.truth;
    CU_ASSERT_EQUAL(tp->N, d.N);
    CU_ASSERT_EQUAL(tp->K, d.K);
    CU_ASSERT(tp->A && tp->B && tp->c && tp->d);
    if (tp->A && tp->B && tp->c && tp->d) {
        CU_ASSERT_EQUAL(memcmp(tp->A, d.A, sizeof(double) * (size_t)(d.N * d.K)), 0);
        CU_ASSERT_EQUAL(memcmp(tp->B, d.B, sizeof(double) * (size_t)(d.N * d.K)), 0);
        CU_ASSERT_EQUAL(memcmp(tp->c, d.c, sizeof(double) * (size_t)d.N), 0);
        if (d.d) CU_ASSERT_EQUAL(memcmp(tp->d, d.d, sizeof(double) * (size_t)d.K), 0);
    }
    fr_dataset_free(&ds);
    CU_ASSERT(!ds.truth.A && !ds.truth.B && !ds.truth.c && !ds.truth.d);
    /* Without read_truth the parameters are not read. */
    o.read_truth = 0;
    CU_ASSERT_EQUAL_FATAL(fr_dataset_open(MPI_COMM_WORLD, path, &o, &ds), FR_OK);
    CU_ASSERT(!ds.truth.A && !ds.truth.B && !ds.truth.c && !ds.truth.d && !ds.truth_latents);
    fr_dataset_free(&ds);
    fr_synth_free(&d);
}

/* Ground-truth parameters of inconsistent shapes are refused when the data
 * set is opened, on every rank, with the offending dataset named. */
static void test_truth_shape_refused(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/truth_shape.h5", fr_test_tmpdir());
    long long len[3] = {6, 5, 7};
    if (g_rank == 0) {
        write_custom(path, H5T_IEEE_F64LE, 3, len, 4);
        double A[4 * 2] = {0}, B[3 * 4] = {0};
        hsize_t dA[2] = {4, 2}, dB[2] = {3, 4}; /* B should be (2, 4) */
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        put(f, "/truth/A", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dA, A);
        put(f, "/truth/B", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dB, B);
        H5Fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    fr_dataset ds;
    fr_read_opts o = {.lags = 1, .poisson = -1, .read_truth = 1};
    fr_error_clear();
    CU_ASSERT_EQUAL(fr_dataset_open(MPI_COMM_WORLD, path, &o, &ds), FR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "/truth/B: shape does not match N = 4, K = 2"));
    fr_error_clear();
}

static void test_missing_file_agrees(void)
{
    fr_dataset ds;
    fr_read_opts o = {.lags = 1, .poisson = -1};
    char path[512];
    snprintf(path, sizeof path, "%s/does-not-exist.h5", fr_test_tmpdir());
    fr_error_clear();
    CU_ASSERT_EQUAL(fr_dataset_open(MPI_COMM_WORLD, path, &o, &ds), FR_EINVAL);
    /* Every rank carries rank 0's message. */
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "cannot be read"));
}

static void reg(void)
{
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    CU_pSuite s = CU_add_suite("dataset parallel read", NULL, NULL);
    CU_add_test(s, "float32 data, unequal trials", test_custom_float32);
    CU_add_test(s, "int32 counts, empty shard", test_custom_int_counts);
    CU_add_test(s, "synthetic file and truth params", test_synth_file);
    CU_add_test(s, "truth params of the wrong shape: refused at open", test_truth_shape_refused);
    CU_add_test(s, "missing file: same error on every rank", test_missing_file_agrees);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
