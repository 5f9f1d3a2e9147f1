/* selftest: the whole-stack smoke check behind `facrnn selftest` (cblas Gram
 * matrices, MPI_Allreduce, ScaLAPACK pdsyevd, parallel HDF5 round trip,
 * serial LAPACK reference). See include/facrnn/selftest.h. */
#include "facrnn/selftest.h"

#include <cblas.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "facrnn/cli.h"
#include "facrnn/dist_linalg.h"
#include "facrnn/h5util.h"
#include "facrnn/rng.h"

void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t ljobz,
             size_t luplo);

/* Serial reference: eigenvalues descending, eigenvector c in column c. */
static fr_err serial_eigh(int N, const double *G /* (N, N) */, double *evals, double *evecs /* (N, N) */)
{
    double *a = NULL, *w = NULL, *work = NULL;
    int *iwork = NULL;
    int lwork = -1, liwork = -1, iwq = 0, info = 0;
    double wq = 0;
    fr_err rc = FR_CALLOC(a, (size_t)N * N);
    if (rc == FR_OK) rc = FR_CALLOC(w, N);
    if (rc != FR_OK) goto done;
    memcpy(a, G, sizeof(double) * (size_t)N * N); /* symmetric: row- = column-major */
    dsyevd_("V", "U", &N, a, &N, w, &wq, &lwork, &iwq, &liwork, &info, 1, 1);
    TRY_GOTO(rc, fr_check_lapack(info, "dsyevd workspace query", __FILE__, __LINE__), done);
    lwork = (int)wq + 1;
    liwork = iwq;
    TRY_GOTO(rc, FR_CALLOC(work, lwork), done);
    TRY_GOTO(rc, FR_CALLOC(iwork, liwork), done);
    dsyevd_("V", "U", &N, a, &N, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    TRY_GOTO(rc, fr_check_lapack(info, "dsyevd", __FILE__, __LINE__), done);
    for (int c = 0; c < N; ++c) {
        evals[c] = w[N - 1 - c];
        for (int i = 0; i < N; ++i) evecs[(size_t)i * N + c] = a[(size_t)(N - 1 - c) * N + i];
    }
done:
    free(a);
    free(w);
    free(work);
    free(iwork);
    return rc;
}

#define H5GO(call)                                                                            \
    do {                                                                                      \
        if ((rc = fr_check_h5((long long)(call), #call, __FILE__, __LINE__)) != FR_OK) goto done; \
    } while (0)

/* Write evals (N) and evecs (N, N) collectively, each rank its block of
 * rows, then read both back on every rank into the *_back buffers. */
static fr_err h5_roundtrip(MPI_Comm comm, const char *path, int N, const double *evals, const double *evecs,
                           double *evals_back, double *evecs_back)
{
    int rank, size;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    CHECK_MPI(MPI_Comm_size(comm, &size));
    fr_err rc = FR_OK;
    hid_t fapl = -1, file = -1, dxpl = -1, s1 = -1, s2 = -1, d1 = -1, d2 = -1, m1 = -1, m2 = -1;
    H5GO(fapl = H5Pcreate(H5P_FILE_ACCESS));
    H5GO(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL));
    H5GO(file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl));
    H5GO(dxpl = H5Pcreate(H5P_DATASET_XFER));
    H5GO(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
    hsize_t dim1[1] = {(hsize_t)N}, dim2[2] = {(hsize_t)N, (hsize_t)N};
    H5GO(s1 = H5Screate_simple(1, dim1, NULL));
    H5GO(s2 = H5Screate_simple(2, dim2, NULL));
    H5GO(d1 = H5Dcreate2(file, "evals", H5T_NATIVE_DOUBLE, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5GO(d2 = H5Dcreate2(file, "evecs", H5T_NATIVE_DOUBLE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    /* evals: rank 0 writes all of it, the others take part with nothing. */
    H5GO(m1 = H5Screate_simple(1, dim1, NULL));
    if (rank != 0) {
        H5GO(H5Sselect_none(s1));
        H5GO(H5Sselect_none(m1));
    }
    H5GO(H5Dwrite(d1, H5T_NATIVE_DOUBLE, m1, s1, dxpl, evals));
    /* evecs: rank r writes rows [r N / P, (r + 1) N / P). */
    hsize_t r0 = (hsize_t)((long long)N * rank / size), r1 = (hsize_t)((long long)N * (rank + 1) / size);
    hsize_t start[2] = {r0, 0}, count[2] = {r1 - r0, (hsize_t)N};
    H5GO(H5Sselect_hyperslab(s2, H5S_SELECT_SET, start, NULL, count, NULL));
    hsize_t mdim[2] = {r1 - r0 > 0 ? r1 - r0 : 1, (hsize_t)N};
    H5GO(m2 = H5Screate_simple(2, mdim, NULL));
    if (r1 == r0) {
        H5GO(H5Sselect_none(m2));
        H5GO(H5Sselect_none(s2));
    }
    H5GO(H5Dwrite(d2, H5T_NATIVE_DOUBLE, m2, s2, dxpl, evecs + (size_t)r0 * N));
    H5GO(H5Dclose(d1));
    d1 = -1;
    H5GO(H5Dclose(d2));
    d2 = -1;
    H5GO(H5Fclose(file));
    file = -1;
    /* Read back everything on every rank. */
    H5GO(file = H5Fopen(path, H5F_ACC_RDONLY, fapl));
    H5GO(d1 = H5Dopen2(file, "evals", H5P_DEFAULT));
    H5GO(d2 = H5Dopen2(file, "evecs", H5P_DEFAULT));
    H5GO(H5Dread(d1, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, dxpl, evals_back));
    H5GO(H5Dread(d2, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, dxpl, evecs_back));
done:
    if (m1 >= 0) H5Sclose(m1);
    if (m2 >= 0) H5Sclose(m2);
    if (d1 >= 0) H5Dclose(d1);
    if (d2 >= 0) H5Dclose(d2);
    if (s1 >= 0) H5Sclose(s1);
    if (s2 >= 0) H5Sclose(s2);
    if (dxpl >= 0) H5Pclose(dxpl);
    if (file >= 0) H5Fclose(file);
    if (fapl >= 0) H5Pclose(fapl);
    return rc;
}

fr_err fr_selftest_run(MPI_Comm comm, int N, long long rows_per_rank, const char *h5path, fr_selftest_report *rep)
{
    memset(rep, 0, sizeof *rep);
    if (N < 1 || rows_per_rank < 1)
        return FR_FAIL(FR_EINVAL, "selftest: need N >= 1 and rows >= 1, got N = %d, rows = %lld", N, rows_per_rank);
    int rank;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    size_t nn = (size_t)N * N;
    double *X = NULL, *G = NULL, *ev = NULL, *V = NULL, *ev2 = NULL, *V2 = NULL, *rev = NULL, *rV = NULL;
    fr_err rc = FR_CALLOC(X, (size_t)rows_per_rank * N);
    if (rc == FR_OK) rc = FR_CALLOC(G, nn);
    if (rc == FR_OK) rc = FR_CALLOC(ev, N);
    if (rc == FR_OK) rc = FR_CALLOC(V, nn);
    if (rc == FR_OK) rc = FR_CALLOC(ev2, N);
    if (rc == FR_OK) rc = FR_CALLOC(V2, nn);
    if (rc == FR_OK) rc = FR_CALLOC(rev, N);
    if (rc == FR_OK) rc = FR_CALLOC(rV, nn);
    rc = fr_error_agree(&comm, rc);
    if (rc != FR_OK) goto done;

    double t = fr_wtime();
    /* X: rows keyed by global row id, columns scaled so the spectrum is spread. */
    for (long long r = 0; r < rows_per_rank; ++r) {
        uint64_t gid = (uint64_t)(rank * rows_per_rank + r);
        for (int j = 0; j < N; ++j)
            X[(size_t)r * N + j] = (1.0 + 0.05 * j) * fr_rng_normal(2024, FR_STREAM_SYNTH, 99, gid * N + j);
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, N, (int)rows_per_rank, 1.0, X, N, 0.0, G, N);
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < i; ++j) G[(size_t)i * N + j] = G[(size_t)j * N + i];
    rep->t_blas = fr_wtime() - t;

    t = fr_wtime();
    TRY_GOTO(rc, fr_check_mpi(MPI_Allreduce(MPI_IN_PLACE, G, N * N, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce",
                              __FILE__, __LINE__), done);
    rep->t_allreduce = fr_wtime() - t;

    t = fr_wtime();
    TRY_GOTO(rc, fr_dl_eigh_replicated(comm, N, G, ev, V), done);
    rep->t_pdsyevd = fr_wtime() - t;

    t = fr_wtime();
    rc = fr_error_agree(&comm, h5_roundtrip(comm, h5path, N, ev, V, ev2, V2));
    if (rc != FR_OK) goto done;
    rep->t_hdf5 = fr_wtime() - t;
    int same = !memcmp(ev, ev2, sizeof(double) * (size_t)N) && !memcmp(V, V2, sizeof(double) * nn);
    if (!same) rc = FR_FAIL(FR_EIO, "selftest: eigenvectors read back from %s differ from those written", h5path);
    if (fr_error_agree(&comm, rc) != FR_OK) goto done;

    t = fr_wtime();
    rc = fr_error_agree(&comm, serial_eigh(N, G, rev, rV));
    if (rc != FR_OK) goto done;
    rep->t_lapack = fr_wtime() - t;
    for (int c = 0; c < N; ++c) {
        double e = fabs(ev[c] - rev[c]) / fabs(rev[0]);
        if (e > rep->eval_err) rep->eval_err = e;
        double dot = 0;
        for (int i = 0; i < N; ++i) dot += V[(size_t)i * N + c] * rV[(size_t)i * N + c];
        double sgn = dot < 0 ? -1.0 : 1.0;
        for (int i = 0; i < N; ++i) {
            double d = fabs(V[(size_t)i * N + c] - sgn * rV[(size_t)i * N + c]);
            if (d > rep->evec_err) rep->evec_err = d;
        }
    }
    if (!(rep->eval_err <= 1e-10) || !(rep->evec_err <= 1e-10))
        rc = FR_FAIL(FR_ENUMERIC, "selftest: ScaLAPACK and LAPACK disagree: eigenvalues %.3g, eigenvectors %.3g",
                     rep->eval_err, rep->evec_err);
    rc = fr_error_agree(&comm, rc);
done:
    free(X);
    free(G);
    free(ev);
    free(V);
    free(ev2);
    free(V2);
    free(rev);
    free(rV);
    return rc;
}

static int parse_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

fr_err fr_cmd_selftest(int argc, char **argv)
{
    long long N = 160, rows = 300;
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    fr_err rc = FR_OK;
    for (int i = 1; i < argc && rc == FR_OK; ++i) {
        if (!strcmp(argv[i], "--help")) {
            int rank;
            CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
            if (rank == 0)
                printf("usage: facrnn selftest [--n N] [--rows R] [--dir DIR]\n"
                       "Check MPI, BLAS, ScaLAPACK, LAPACK and parallel HDF5 together: the Gram\n"
                       "matrix of an R-rows-per-rank N-column random matrix is summed, solved with\n"
                       "pdsyevd, written and read back with parallel HDF5 in DIR (default $TMPDIR or\n"
                       "/tmp; the file is removed), and compared with serial dsyevd.\n"
                       "Defaults: N = 160, R = 300. Prints one PASS line with timings.\n");
            return FR_OK;
        } else if (!strcmp(argv[i], "--n") && i + 1 < argc) {
            if (!parse_int(argv[++i], 1, 20000, &N)) rc = FR_FAIL(FR_EUSAGE, "selftest: --n must be in [1, 20000], got '%s'", argv[i]);
        } else if (!strcmp(argv[i], "--rows") && i + 1 < argc) {
            if (!parse_int(argv[++i], 1, 100000000, &rows)) rc = FR_FAIL(FR_EUSAGE, "selftest: --rows must be in [1, 1e8], got '%s'", argv[i]);
        } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            dir = argv[++i];
        } else {
            rc = FR_FAIL(FR_EUSAGE, "selftest: unknown argument '%s' (see facrnn selftest --help)", argv[i]);
        }
    }
    if (rc != FR_OK) return rc;
    int rank, size;
    CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size));
    /* One file name for all ranks: rank 0's pid. */
    int pid = (int)getpid();
    CHECK_MPI(MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD));
    char path[4096];
    snprintf(path, sizeof path, "%s/facrnn-selftest-%d.h5", dir, pid);
    fr_selftest_report rep;
    double t0 = fr_wtime();
    rc = fr_selftest_run(MPI_COMM_WORLD, (int)N, rows, path, &rep);
    CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    if (rank == 0) remove(path);
    if (rc != FR_OK) return rc;
    if (rank == 0)
        printf("selftest PASS: %d ranks, N = %lld, %lld rows/rank; dsyrk %.3fs, Allreduce %.3fs, pdsyevd %.3fs, "
               "parallel HDF5 %.3fs, dsyevd %.3fs, total %.3fs; max eigenvalue err %.1e, eigenvector err %.1e\n",
               size, N, rows, rep.t_blas, rep.t_allreduce, rep.t_pdsyevd, rep.t_hdf5, rep.t_lapack, fr_wtime() - t0,
               rep.eval_err, rep.evec_err);
    return FR_OK;
}
