/* dist_linalg: BLACS grids over any communicator, block-cyclic assembly of
 * covariance matrices, and ScaLAPACK pdsyevd (see include/facrnn/dist_linalg.h).
 * Column-major storage and the block-cyclic layout never leave this file. */
#include "facrnn/dist_linalg.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int fr_dl_replicate_limit = 2000;

/* Rows centred per BLAS call: bounds the scratch to FR_DL_CHUNK * N. */
#define FR_DL_CHUNK 256

/* ---- BLACS / ScaLAPACK prototypes (Debian ships no C header) -------------
 * Fortran character arguments take a hidden length at the end. */
void Cblacs_pinfo(int *mypnum, int *nprocs);
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctxt);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb, const int *irsrc,
               const int *icsrc, const int *ictxt, const int *lld, int *info);
void pdsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *ia, const int *ja,
              const int *desca, double *w, double *z, const int *iz, const int *jz, const int *descz,
              double *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t ljobz,
              size_t luplo);

fr_err fr_dl_grid_init(MPI_Comm comm, int nb, fr_dl_grid *g)
{
    memset(g, 0, sizeof *g);
    g->blacs_comm = MPI_COMM_NULL;
    if (nb < 1) return FR_FAIL(FR_EINVAL, "dist_linalg: block size must be >= 1, got %d", nb);
    int size, me, np;
    CHECK_MPI(MPI_Comm_size(comm, &size));
    /* Near-square: the largest divisor of P not above sqrt(P) rows. */
    int nprow = 1;
    for (int r = 1; r * r <= size; ++r)
        if (size % r == 0) nprow = r;
    Cblacs_pinfo(&me, &np); /* initialises BLACS on first use */
    g->comm = comm;
    g->nb = nb;
    /* BLACS builds its grid communicators from the one it is given and
     * ignores every MPI return code, so on communicators that return errors
     * (fr_comm_errors_return) a failure inside BLACS or ScaLAPACK would go
     * unseen. It gets its own duplicate that keeps MPI's default: abort. */
    CHECK_MPI(MPI_Comm_dup(comm, &g->blacs_comm));
    CHECK_MPI(MPI_Comm_set_errhandler(g->blacs_comm, MPI_ERRORS_ARE_FATAL));
    g->sys_handle = Csys2blacs_handle(g->blacs_comm);
    g->ctxt = g->sys_handle;
    Cblacs_gridinit(&g->ctxt, "Row", nprow, size / nprow);
    Cblacs_gridinfo(g->ctxt, &g->nprow, &g->npcol, &g->myrow, &g->mycol);
    fr_err rc = FR_OK;
    int rank;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    if (g->myrow < 0 || g->mycol < 0 || g->nprow * g->npcol != size || (rank == 0 && (g->myrow || g->mycol)))
        rc = FR_FAIL(FR_EMPI, "dist_linalg: BLACS grid %d x %d does not cover the %d ranks of the communicator",
                     g->nprow, g->npcol, size);
    return fr_error_agree(&comm, rc);
}

void fr_dl_grid_free(fr_dl_grid *g)
{
    if (g->ctxt >= 0 && g->nprow > 0) Cblacs_gridexit(g->ctxt);
    Cfree_blacs_system_handle(g->sys_handle);
    if (g->blacs_comm != MPI_COMM_NULL) CHECK_MPI_FATAL(MPI_Comm_free(&g->blacs_comm));
    memset(g, 0, sizeof *g);
}

/* A block-cyclic N x N matrix on a grid: this rank's local column-major piece. */
typedef struct {
    int N, mloc, nloc, lld;
    int desc[9];
    double *a; /* (lld, nloc) column-major */
} dmat;

static int numroc(int n, int nb, int iproc, int nprocs)
{
    int zero = 0;
    return numroc_(&n, &nb, &iproc, &zero, &nprocs);
}

static fr_err dmat_init(const fr_dl_grid *g, int N, dmat *m)
{
    memset(m, 0, sizeof *m);
    m->N = N;
    m->mloc = numroc(N, g->nb, g->myrow, g->nprow);
    m->nloc = numroc(N, g->nb, g->mycol, g->npcol);
    m->lld = m->mloc > 1 ? m->mloc : 1;
    int zero = 0, info = 0;
    descinit_(m->desc, &N, &N, &g->nb, &g->nb, &zero, &zero, &g->ctxt, &m->lld, &info);
    CHECK_LAPACK(info, "descinit");
    return FR_CALLOC(m->a, (size_t)m->lld * (size_t)(m->nloc > 0 ? m->nloc : 1));
}

/* Global index of local index l on process p (block-cyclic, source 0). */
static int l2g(int l, int nb, int p, int nprocs) { return (l / nb) * nb * nprocs + p * nb + l % nb; }

/* pdsyevd on m (overwritten); evals ascending (N) on every rank, Z local. */
static fr_err dmat_syevd(const fr_dl_grid *g, dmat *m, double *evals, dmat *z)
{
    int one = 1, info = 0, lwork = -1, liwork = -1, iwq = 0;
    double wq = 0;
    pdsyevd_("V", "U", &m->N, m->a, &one, &one, m->desc, evals, z->a, &one, &one, z->desc, &wq, &lwork,
             &iwq, &liwork, &info, 1, 1);
    CHECK_LAPACK(info, "pdsyevd workspace query");
    /* The query under-reports on some grids (PDORMTR and PDLASRT then reject
     * LWORK on one rank and the others hang), so take the larger of the
     * query and the documented bounds evaluated with the largest local
     * sizes on the grid. */
    int N = m->N, nb = g->nb;
    long long np = numroc(N, nb, 0, g->nprow), nq = numroc(N, nb, 0, g->npcol);
    long long trilwmin = 3LL * N + (nb * (np + 1) > 3LL * nb ? nb * (np + 1) : 3LL * nb);
    long long need = (1 + 6LL * N + 2 * np * nq > trilwmin ? 1 + 6LL * N + 2 * np * nq : trilwmin) + 2LL * N;
    long long need_sort = np * (nb + nq) > N ? np * (nb + nq) : N;
    if (need_sort > need) need = need_sort;
    /* PDORMTR (back-transformation) needs more than pdsyevd asks for when
     * N is small against nb. */
    long long ormtr = (np + nq) * nb > (long long)nb * (nb - 1) / 2 ? (np + nq) * nb : (long long)nb * (nb - 1) / 2;
    need += ormtr + (long long)nb * nb + 2LL * N;
    if ((long long)wq + 1 > need) need = (long long)wq + 1;
    if (need > 2147483647LL) return FR_FAIL(FR_ENOMEM, "pdsyevd workspace of %lld doubles exceeds int range", need);
    lwork = (int)need;
    liwork = 7 * N + 8 * g->npcol + 2;
    if (iwq > liwork) liwork = iwq;
    double *work = NULL;
    int *iwork = NULL;
    fr_err rc = FR_CALLOC(work, lwork);
    if (rc == FR_OK) rc = FR_CALLOC(iwork, liwork);
    if (rc == FR_OK) {
        pdsyevd_("V", "U", &m->N, m->a, &one, &one, m->desc, evals, z->a, &one, &one, z->desc, work, &lwork,
                 iwork, &liwork, &info, 1, 1);
        rc = fr_check_lapack(info, "pdsyevd", __FILE__, __LINE__);
    }
    free(work);
    free(iwork);
    return rc;
}

/* Replicate the top `want` eigenvectors (the last columns of Z) as the
 * columns of out, descending, largest-magnitude entry positive. */
static fr_err gather_top(const fr_dl_grid *g, const dmat *z, int want, double *out /* (N, want) */)
{
    int N = z->N;
    memset(out, 0, sizeof(double) * (size_t)N * (size_t)want);
    for (int lj = 0; lj < z->nloc; ++lj) {
        int j = l2g(lj, g->nb, g->mycol, g->npcol);
        if (j < N - want) continue;
        int c = N - 1 - j;
        for (int li = 0; li < z->mloc; ++li) {
            int i = l2g(li, g->nb, g->myrow, g->nprow);
            out[(size_t)i * want + c] = z->a[(size_t)li + (size_t)lj * z->lld];
        }
    }
    /* Every entry has exactly one owner, so the sum is a plain gather. */
    if ((size_t)N * (size_t)want > 0)
        CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, out, N * want, MPI_DOUBLE, MPI_SUM, g->comm));
    for (int c = 0; c < want; ++c) {
        int imax = 0;
        for (int i = 1; i < N; ++i)
            if (fabs(out[(size_t)i * want + c]) > fabs(out[(size_t)imax * want + c])) imax = i;
        if (out[(size_t)imax * want + c] < 0)
            for (int i = 0; i < N; ++i) out[(size_t)i * want + c] = -out[(size_t)i * want + c];
    }
    return FR_OK;
}

/* Copy the locally owned entries of a replicated symmetric matrix. */
static void dmat_fill_from_full(const fr_dl_grid *g, dmat *m, const double *S /* (N, N) */)
{
    for (int lj = 0; lj < m->nloc; ++lj) {
        int j = l2g(lj, g->nb, g->mycol, g->npcol);
        for (int li = 0; li < m->mloc; ++li) {
            int i = l2g(li, g->nb, g->myrow, g->nprow);
            m->a[(size_t)li + (size_t)lj * m->lld] = S[(size_t)i * m->N + j];
        }
    }
}

/* Solve an assembled matrix and hand back descending evals and top vectors. */
static fr_err solve_and_gather(const fr_dl_grid *g, dmat *m, int want, double *evals, double *evecs)
{
    dmat z;
    fr_err rc = dmat_init(g, m->N, &z);
    double *w = NULL;
    if (rc == FR_OK) rc = FR_CALLOC(w, m->N);
    if (rc == FR_OK) rc = dmat_syevd(g, m, w, &z);
    rc = fr_error_agree(&g->comm, rc);
    /* pdsyevd leaves W unset on processes that own no columns (N < nb on a
     * wide grid), so take the eigenvalues from process (0, 0), comm rank 0. */
    if (rc == FR_OK)
        rc = fr_check_mpi(MPI_Bcast(w, m->N, MPI_DOUBLE, 0, g->comm), "MPI_Bcast(eigenvalues)", __FILE__,
                          __LINE__);
    if (rc == FR_OK) {
        for (int i = 0; i < m->N; ++i) evals[i] = w[m->N - 1 - i];
        rc = gather_top(g, &z, want, evecs);
    }
    free(w);
    free(z.a);
    return rc;
}

fr_err fr_dl_eigh_replicated(MPI_Comm comm, int N, const double *S, double *evals, double *evecs)
{
    if (N < 1) return FR_FAIL(FR_EINVAL, "dist_linalg: matrix size must be >= 1, got %d", N);
    fr_dl_grid g;
    TRY(fr_dl_grid_init(comm, FR_DL_NB, &g));
    dmat m;
    fr_err rc = dmat_init(&g, N, &m);
    rc = fr_error_agree(&comm, rc);
    if (rc == FR_OK) {
        dmat_fill_from_full(&g, &m, S);
        rc = solve_and_gather(&g, &m, N, evals, evecs);
    }
    free(m.a);
    fr_dl_grid_free(&g);
    return rc;
}

/* Centre rows r0..r1-1 of X into buf ((r1 - r0), N). */
static void center_rows(int N, const double *X, long long r0, long long r1, const double *mean, double *buf)
{
    for (long long r = r0; r < r1; ++r) {
        const double *x = X + (size_t)r * N;
        double *y = buf + (size_t)(r - r0) * N;
        for (int j = 0; j < N; ++j) y[j] = x[j] - mean[j];
    }
}

/* Small N: sum the full centred Gram matrix with one Allreduce. */
static fr_err assemble_replicated(const fr_dl_grid *g, int N, long long n_local, const double *X,
                                  const double *mean, double scale, dmat *m)
{
    double *G = NULL, *buf = NULL;
    fr_err rc = FR_CALLOC(G, (size_t)N * N);
    if (rc == FR_OK) rc = FR_CALLOC(buf, (size_t)FR_DL_CHUNK * N);
    rc = fr_error_agree(&g->comm, rc);
    if (rc == FR_OK) {
        for (long long r0 = 0; r0 < n_local; r0 += FR_DL_CHUNK) {
            long long r1 = r0 + FR_DL_CHUNK < n_local ? r0 + FR_DL_CHUNK : n_local;
            center_rows(N, X, r0, r1, mean, buf);
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, N, (int)(r1 - r0), 1.0, buf, N, 1.0, G, N);
        }
        for (int i = 0; i < N; ++i)
            for (int j = 0; j < i; ++j) G[(size_t)i * N + j] = G[(size_t)j * N + i];
        rc = fr_check_mpi(MPI_Allreduce(MPI_IN_PLACE, G, N * N, MPI_DOUBLE, MPI_SUM, g->comm),
                          "MPI_Allreduce(Gram)", __FILE__, __LINE__);
    }
    if (rc == FR_OK) {
        for (size_t k = 0; k < (size_t)N * N; ++k) G[k] *= scale;
        dmat_fill_from_full(g, m, G);
    }
    free(G);
    free(buf);
    return rc;
}

/* Large N: build the covariance one column panel (width nb) at a time. Every
 * rank computes its N x w contribution Xc^T Xc[:, panel]; one
 * MPI_Reduce_scatter sums it and delivers to each rank of the owning process
 * column exactly the rows it owns. Nobody ever holds more than N x nb of it. */
static fr_err assemble_distributed(const fr_dl_grid *g, int N, long long n_local, const double *X,
                                   const double *mean, double scale, dmat *m)
{
    int P;
    CHECK_MPI(MPI_Comm_size(g->comm, &P));
    int nb = g->nb;
    int *coords = NULL, *counts = NULL, *order = NULL, *pstart = NULL;
    double *panel = NULL, *packed = NULL, *recv = NULL, *buf = NULL;
    long long nbuf = n_local < FR_DL_CHUNK ? n_local : FR_DL_CHUNK;
    fr_err rc = FR_CALLOC(coords, 2 * P);
    if (rc == FR_OK) rc = FR_CALLOC(counts, P);
    if (rc == FR_OK) rc = FR_CALLOC(order, N);
    if (rc == FR_OK) rc = FR_CALLOC(pstart, g->nprow + 1);
    if (rc == FR_OK) rc = FR_CALLOC(panel, (size_t)N * nb);
    if (rc == FR_OK) rc = FR_CALLOC(packed, (size_t)N * nb);
    if (rc == FR_OK) rc = FR_CALLOC(recv, (size_t)m->lld * nb);
    if (rc == FR_OK) rc = FR_CALLOC(buf, (size_t)(nbuf > 0 ? nbuf : 1) * N);
    rc = fr_error_agree(&g->comm, rc);
    if (rc != FR_OK) goto done;
    int mine[2] = {g->myrow, g->mycol};
    TRY_GOTO(rc, fr_check_mpi(MPI_Allgather(mine, 2, MPI_INT, coords, 2, MPI_INT, g->comm), "MPI_Allgather",
                              __FILE__, __LINE__), done);
    /* Global rows grouped by owning process row, ascending inside a group. */
    for (int i = 0; i < N; ++i) pstart[(i / nb) % g->nprow + 1]++;
    for (int p = 0; p < g->nprow; ++p) pstart[p + 1] += pstart[p];
    {
        int *fill = counts; /* borrow as a cursor, reset below */
        for (int p = 0; p < g->nprow; ++p) fill[p] = pstart[p];
        for (int i = 0; i < N; ++i) order[fill[(i / nb) % g->nprow]++] = i;
    }
    int one_chunk = n_local <= FR_DL_CHUNK;
    if (one_chunk && n_local > 0) center_rows(N, X, 0, n_local, mean, buf);
    for (int c0 = 0; c0 < N; c0 += nb) {
        int w = c0 + nb < N ? nb : N - c0;
        int pc = (c0 / nb) % g->npcol;
        memset(panel, 0, sizeof(double) * (size_t)N * w);
        for (long long r0 = 0; r0 < n_local; r0 += FR_DL_CHUNK) {
            long long r1 = r0 + FR_DL_CHUNK < n_local ? r0 + FR_DL_CHUNK : n_local;
            if (!one_chunk) center_rows(N, X, r0, r1, mean, buf);
            /* panel (N, w) += buf^T (N, rows) * buf[:, c0:c0+w] (rows, w) */
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, w, (int)(r1 - r0), 1.0, buf, N, buf + c0,
                        N, 1.0, panel, w);
        }
        /* Pack in communicator-rank order the rows each owner needs. */
        size_t pos = 0;
        for (int r = 0; r < P; ++r) {
            int pr = coords[2 * r];
            counts[r] = 0;
            if (coords[2 * r + 1] != pc) continue;
            for (int k = pstart[pr]; k < pstart[pr + 1]; ++k) {
                memcpy(packed + pos, panel + (size_t)order[k] * w, sizeof(double) * (size_t)w);
                pos += (size_t)w;
            }
            counts[r] = (pstart[pr + 1] - pstart[pr]) * w;
        }
        TRY_GOTO(rc, fr_check_mpi(MPI_Reduce_scatter(packed, recv, counts, MPI_DOUBLE, MPI_SUM, g->comm),
                                  "MPI_Reduce_scatter(covariance panel)", __FILE__, __LINE__), done);
        if (g->mycol == pc) {
            int lc0 = (c0 / nb / g->npcol) * nb;
            for (int li = 0; li < m->mloc; ++li)
                for (int c = 0; c < w; ++c)
                    m->a[(size_t)li + (size_t)(lc0 + c) * m->lld] = scale * recv[(size_t)li * w + c];
        }
    }
done:
    free(coords);
    free(counts);
    free(order);
    free(pstart);
    free(panel);
    free(packed);
    free(recv);
    free(buf);
    return rc;
}

fr_err fr_dl_pca(MPI_Comm comm, int N, long long n_local, const double *X_local, int want, double *mean,
                 double *evals, double *evecs)
{
    fr_err rc = FR_OK;
    if (N < 1) rc = FR_FAIL(FR_EINVAL, "pca: number of channels must be >= 1, got %d", N);
    else if (want < 0 || want > N)
        rc = FR_FAIL(FR_EINVAL, "pca: number of components %d is outside [0, %d]", want, N);
    else if (n_local < 0) rc = FR_FAIL(FR_EINVAL, "pca: negative local row count %lld", n_local);
    TRY(fr_error_agree(&comm, rc));

    long long n_total = 0;
    CHECK_MPI(MPI_Allreduce(&n_local, &n_total, 1, MPI_LONG_LONG, MPI_SUM, comm));
    if (n_total < 2) return FR_FAIL(FR_EINVAL, "pca: need at least 2 rows over all ranks, got %lld", n_total);
    memset(mean, 0, sizeof(double) * (size_t)N);
    for (long long r = 0; r < n_local; ++r)
        for (int j = 0; j < N; ++j) mean[j] += X_local[(size_t)r * N + j];
    CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, mean, N, MPI_DOUBLE, MPI_SUM, comm));
    for (int j = 0; j < N; ++j) mean[j] /= (double)n_total;

    fr_dl_grid g;
    TRY(fr_dl_grid_init(comm, FR_DL_NB, &g));
    dmat m;
    rc = fr_error_agree(&comm, dmat_init(&g, N, &m));
    double scale = 1.0 / (double)(n_total - 1);
    if (rc == FR_OK) {
        if (N <= fr_dl_replicate_limit) rc = assemble_replicated(&g, N, n_local, X_local, mean, scale, &m);
        else rc = assemble_distributed(&g, N, n_local, X_local, mean, scale, &m);
        rc = fr_error_agree(&comm, rc);
    }
    if (rc == FR_OK) rc = solve_and_gather(&g, &m, want, evals, evecs);
    free(m.a);
    fr_dl_grid_free(&g);
    return rc;
}
