/* Tests for dist_linalg: distributed PCA against serial LAPACK dsyevd of the
 * full covariance, in both assembly paths, with empty ranks and on
 * sub-communicators. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/common.h"
#include "facrnn/dist_linalg.h"
#include "facrnn/rng.h"
#include "testlib.h"

void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t, size_t);

/* Global row r of a deterministic data set with a planted, well separated
 * leading spectrum (the first columns have much larger scales) and a
 * non-zero mean. Keyed by the global row id, never by rank. */
static double data_entry(uint64_t seed, int N, long long r, int j)
{
    double s = j < 6 ? 12.0 / (j + 1) : 1.0 + 0.3 * (j % 7);
    double mix = fr_rng_normal(seed, FR_STREAM_SYNTH, 1, (uint64_t)r);
    return 3.0 + 0.5 * j / N + s * fr_rng_normal(seed, FR_STREAM_SYNTH, 0, (uint64_t)r * N + j) + 0.2 * mix;
}

/* Slow reference: two-pass covariance and serial dsyevd, descending. */
static void reference(int N, long long n, const double *X, double *mean, double *evals, double *evecs /* (N,N) */)
{
    double *C = calloc((size_t)N * N, sizeof *C);
    for (int j = 0; j < N; ++j) {
        mean[j] = 0;
        for (long long r = 0; r < n; ++r) mean[j] += X[r * N + j];
        mean[j] /= (double)n;
    }
    for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
            double s = 0;
            for (long long r = 0; r < n; ++r) s += (X[r * N + i] - mean[i]) * (X[r * N + j] - mean[j]);
            C[(size_t)i * N + j] = s / (double)(n - 1);
        }
    double *w = calloc((size_t)N, sizeof *w);
    int lwork = -1, liwork = -1, iwq = 0, info = 0;
    double wq;
    dsyevd_("V", "U", &N, C, &N, w, &wq, &lwork, &iwq, &liwork, &info, 1, 1);
    lwork = (int)wq + 1;
    liwork = iwq;
    double *work = calloc((size_t)lwork, sizeof *work);
    int *iwork = calloc((size_t)liwork, sizeof *iwork);
    dsyevd_("V", "U", &N, C, &N, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    CU_ASSERT_EQUAL_FATAL(info, 0);
    /* Column-major output: eigenvector j is C[j*N .. j*N+N-1]. */
    for (int c = 0; c < N; ++c) {
        evals[c] = w[N - 1 - c];
        for (int i = 0; i < N; ++i) evecs[(size_t)i * N + c] = C[(size_t)(N - 1 - c) * N + i];
    }
    free(C);
    free(w);
    free(work);
    free(iwork);
}

/* Run PCA over comm on n_total rows split with `split(rank)` and compare. */
static void check_pca(MPI_Comm comm, int N, long long n_total, int want, int empty_last)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    double *X = malloc(sizeof(double) * (size_t)n_total * N);
    for (long long r = 0; r < n_total; ++r)
        for (int j = 0; j < N; ++j) X[r * N + j] = data_entry(7, N, r, j);
    /* Uneven contiguous split; optionally the last rank gets no rows. */
    int parts = empty_last && size > 1 ? size - 1 : size;
    long long lo = rank < parts ? n_total * rank / parts : n_total;
    long long hi = rank < parts ? n_total * (rank + 1) / parts : n_total;
    double *mean = calloc((size_t)N, sizeof *mean), *ev = calloc((size_t)N, sizeof *ev);
    double *V = calloc((size_t)N * (want ? want : 1), sizeof *V);
    fr_err rc = fr_dl_pca(comm, N, hi - lo, X + lo * N, want, mean, ev, V);
    CU_ASSERT_EQUAL_FATAL(rc, FR_OK);

    double *rmean = calloc((size_t)N, sizeof *rmean), *rev = calloc((size_t)N, sizeof *rev);
    double *rV = calloc((size_t)N * N, sizeof *rV);
    reference(N, n_total, X, rmean, rev, rV);
    int bad = 0;
    for (int j = 0; j < N; ++j) bad += !fr_test_close(mean[j], rmean[j], 1e-12, 0);
    /* Eigenvalues relative to the spectrum's scale (tiny ones are noise). */
    for (int j = 0; j < N; ++j) bad += !fr_test_close(ev[j], rev[j], 1e-10, 1e-10 * rev[0]);
    for (int j = 1; j < N; ++j) bad += ev[j] > ev[j - 1];
    for (int c = 0; c < want; ++c) {
        double dot = 0;
        for (int i = 0; i < N; ++i) dot += V[(size_t)i * want + c] * rV[(size_t)i * N + c];
        double sgn = dot < 0 ? -1.0 : 1.0;
        for (int i = 0; i < N; ++i)
            bad += !fr_test_close(V[(size_t)i * want + c], sgn * rV[(size_t)i * N + c], 1e-10, 1e-10);
        /* The documented sign convention: largest-magnitude entry positive. */
        int imax = 0;
        for (int i = 1; i < N; ++i)
            if (fabs(V[(size_t)i * want + c]) > fabs(V[(size_t)imax * want + c])) imax = i;
        bad += V[(size_t)imax * want + c] <= 0;
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(X);
    free(mean);
    free(ev);
    free(V);
    free(rmean);
    free(rev);
    free(rV);
}

static void test_pca_small(void) { check_pca(MPI_COMM_WORLD, 37, 300, 5, 0); }
static void test_pca_empty_rank(void) { check_pca(MPI_COMM_WORLD, 37, 120, 37, 1); }
static void test_pca_200(void) { check_pca(MPI_COMM_WORLD, 200, 400, 6, 0); }
static void test_pca_500_fewer_rows_than_channels(void) { check_pca(MPI_COMM_WORLD, 500, 350, 4, 1); }

/* Force the block-cyclic assembly (no rank holds the N x N matrix). */
static void test_pca_distributed_assembly(void)
{
    int saved = fr_dl_replicate_limit;
    fr_dl_replicate_limit = 10;
    check_pca(MPI_COMM_WORLD, 200, 400, 6, 1);
    check_pca(MPI_COMM_WORLD, 37, 90, 4, 0);
    check_pca(MPI_COMM_WORLD, 130, 700, 3, 0); /* > FR_DL_CHUNK rows per rank */
    fr_dl_replicate_limit = saved;
}

/* Two teams side by side, as in a sweep. */
static void test_pca_subcommunicator(void)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm team;
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &team);
    int saved = fr_dl_replicate_limit;
    check_pca(team, 70, 150, 3, 0);
    fr_dl_replicate_limit = 5;
    check_pca(team, 70, 150, 3, 1);
    fr_dl_replicate_limit = saved;
    MPI_Comm_free(&team);
}

static void test_pca_invalid(void)
{
    double x[4] = {0}, mean[2], ev[2], v[4];
    CU_ASSERT_EQUAL(fr_dl_pca(MPI_COMM_WORLD, 2, 0, x, 1, mean, ev, v), FR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "at least 2 rows"));
    CU_ASSERT_EQUAL(fr_dl_pca(MPI_COMM_WORLD, 2, 2, x, 3, mean, ev, v), FR_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "components 3"));
}

static void test_eigh_replicated(void)
{
    int N = 90;
    double *S = malloc(sizeof(double) * N * N), *ev = malloc(sizeof(double) * N), *V = malloc(sizeof(double) * N * N);
    /* S = diag(1..N) conjugated by nothing: eigenvectors are the axes. */
    memset(S, 0, sizeof(double) * N * N);
    for (int i = 0; i < N; ++i) S[i * N + i] = i + 1;
    CU_ASSERT_EQUAL_FATAL(fr_dl_eigh_replicated(MPI_COMM_WORLD, N, S, ev, V), FR_OK);
    int bad = 0;
    for (int c = 0; c < N; ++c) {
        bad += !fr_test_close(ev[c], N - c, 1e-13, 0);
        bad += !fr_test_close(V[(N - 1 - c) * N + c], 1.0, 1e-13, 0);
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(S);
    free(ev);
    free(V);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("dist_linalg", NULL, NULL);
    CU_add_test(s, "eigh_replicated", test_eigh_replicated);
    CU_add_test(s, "pca_small", test_pca_small);
    CU_add_test(s, "pca_empty_rank", test_pca_empty_rank);
    CU_add_test(s, "pca_200", test_pca_200);
    CU_add_test(s, "pca_500_fewer_rows_than_channels", test_pca_500_fewer_rows_than_channels);
    CU_add_test(s, "pca_distributed_assembly", test_pca_distributed_assembly);
    CU_add_test(s, "pca_subcommunicator", test_pca_subcommunicator);
    CU_add_test(s, "pca_invalid", test_pca_invalid);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
