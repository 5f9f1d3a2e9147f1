/* modes: real eigenbasis of a latent dynamics matrix, assignment of modes
 * to groups, and the same-function change of latent basis
 * (see include/facrnn/modes.h). Pure maths: no MPI, no files.
 * K is the model rank (a handful), so plain loops and LAPACK's dense
 * drivers are all this needs. */
#include "facrnn/modes.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (OpenBLAS ships it; there is no LAPACKE). */
void dgeev_(const char *jobvl, const char *jobvr, const int *n, double *a, const int *lda, double *wr, double *wi,
            double *vl, const int *ldvl, double *vr, const int *ldvr, double *work, const int *lwork, int *info,
            size_t ljobvl, size_t ljobvr);
void dgetrf_(const int *m, const int *n, double *a, const int *lda, int *ipiv, int *info);
void dgetrs_(const char *trans, const int *n, const int *nrhs, const double *a, const int *lda, const int *ipiv,
             double *b, const int *ldb, int *info, size_t ltrans);
void dgecon_(const char *norm, const int *n, const double *a, const int *lda, const double *anorm, double *rcond,
             double *work, int *iwork, int *info, size_t lnorm);

/* Below this reciprocal condition number the eigenvector matrix is taken as
 * singular: F is (numerically) defective and has no eigenbasis. */
#define FR_MODES_MIN_RCOND 1e-12

/* Inverse of M by LU. A row-major buffer read column-major is M^T, and
 * inv(M^T) = inv(M)^T, so the row-major buffers go to LAPACK unchanged.
 * rcond (may be NULL) gets the 1-norm reciprocal condition number of M^T. */
static fr_err lu_inverse(int K, const double *M /* (K, K) */, double *Minv /* (K, K) */, double *rcond)
{
    double *a = NULL, *work = NULL;
    int *ipiv = NULL, *iwork = NULL;
    fr_err rc = FR_CALLOC(a, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(work, 4 * (size_t)K);
    if (rc == FR_OK) rc = FR_CALLOC(ipiv, K);
    if (rc == FR_OK) rc = FR_CALLOC(iwork, K);
    if (rc != FR_OK) goto done;
    memcpy(a, M, sizeof(double) * (size_t)K * K);
    double anorm = 0;
    for (int j = 0; j < K; ++j) { /* 1-norm: max column sum of the column-major view */
        double s = 0;
        for (int i = 0; i < K; ++i) s += fabs(a[i + (size_t)j * K]);
        if (!isfinite(s)) {
            rc = FR_FAIL(FR_ENUMERIC, "modes: matrix to invert is not finite");
            goto done;
        }
        anorm = fmax(anorm, s);
    }
    int info = 0;
    dgetrf_(&K, &K, a, &K, ipiv, &info);
    if (info > 0) {
        rc = FR_FAIL(FR_ENUMERIC, "modes: matrix is singular (dgetrf info %d)", info);
        goto done;
    }
    TRY_GOTO(rc, fr_check_lapack(info, "dgetrf", __FILE__, __LINE__), done);
    if (rcond) {
        dgecon_("1", &K, a, &K, &anorm, rcond, work, iwork, &info, 1);
        TRY_GOTO(rc, fr_check_lapack(info, "dgecon", __FILE__, __LINE__), done);
    }
    for (size_t i = 0; i < (size_t)K * K; ++i) Minv[i] = 0;
    for (int i = 0; i < K; ++i) Minv[(size_t)i * K + i] = 1;
    dgetrs_("N", &K, &K, a, &K, ipiv, Minv, &K, &info, 1);
    TRY_GOTO(rc, fr_check_lapack(info, "dgetrs", __FILE__, __LINE__), done);
done:
    free(a);
    free(work);
    free(ipiv);
    free(iwork);
    return rc;
}

fr_err fr_modes_inverse(int K, const double *M, double *Minv)
{
    if (K < 1) return FR_FAIL(FR_EINVAL, "modes: dimension must be >= 1, got %d", K);
    return lu_inverse(K, M, Minv, NULL);
}

/* One mode: a real eigenvalue or a complex-conjugate pair. */
typedef struct {
    double abs, arg; /* |lambda| and arg(lambda) in (-pi, pi]; a pair by its member with Im > 0 */
    int col;         /* first column of LAPACK's VR */
    int size;        /* 1 or 2 */
} mode;

static int mode_cmp(const void *pa, const void *pb)
{
    const mode *a = pa, *b = pb;
    if (a->abs != b->abs) return a->abs > b->abs ? -1 : 1;
    if (a->arg != b->arg) return a->arg < b->arg ? -1 : 1;
    return (a->col > b->col) - (a->col < b->col);
}

fr_err fr_modes_basis(int K, const double *F, double *T, int *mode_size, int *n_modes)
{
    if (K < 1) return FR_FAIL(FR_EINVAL, "modes: dimension must be >= 1, got %d", K);
    for (size_t i = 0; i < (size_t)K * K; ++i)
        if (!isfinite(F[i])) return FR_FAIL(FR_ENUMERIC, "modes: dynamics matrix is not finite");
    double *a = NULL, *wr = NULL, *wi = NULL, *vr = NULL, *work = NULL, *V = NULL;
    mode *md = NULL;
    int lwork = 8 * K + 16;
    fr_err rc = FR_CALLOC(a, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(wr, K);
    if (rc == FR_OK) rc = FR_CALLOC(wi, K);
    if (rc == FR_OK) rc = FR_CALLOC(vr, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(work, lwork);
    if (rc == FR_OK) rc = FR_CALLOC(V, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(md, K);
    if (rc != FR_OK) goto done;
    /* Column-major copy: a[i + j K] = F_ij. */
    for (int i = 0; i < K; ++i)
        for (int j = 0; j < K; ++j) a[i + (size_t)j * K] = F[(size_t)i * K + j];
    int info = 0, one = 1;
    double dummy = 0;
    dgeev_("N", "V", &K, a, &K, wr, wi, &dummy, &one, vr, &K, work, &lwork, &info, 1, 1);
    if (info > 0) {
        rc = FR_FAIL(FR_ENUMERIC, "modes: eigenvalue iteration did not converge (dgeev info %d)", info);
        goto done;
    }
    TRY_GOTO(rc, fr_check_lapack(info, "dgeev", __FILE__, __LINE__), done);
    /* LAPACK stores a complex pair as columns j (Re v) and j+1 (Im v) of the
     * eigenvector for wr[j] + i wi[j], wi[j] > 0. */
    int nm = 0;
    for (int j = 0; j < K; ++j) {
        mode *m = &md[nm++];
        m->col = j;
        m->size = wi[j] != 0 ? 2 : 1;
        m->abs = hypot(wr[j], wi[j]);
        m->arg = atan2(fabs(wi[j]), wr[j]); /* the Im > 0 member; -0.0 imaginary parts read as +pi */
        if (m->size == 2) ++j;
    }
    qsort(md, (size_t)nm, sizeof *md, mode_cmp);
    /* Real eigenvector matrix, row-major V (K, K), columns in mode order.
     * With F (Re v + i Im v) = (a + i b)(Re v + i Im v), the pair's columns
     * span an invariant plane on which F acts as [[a, b], [-b, a]]. */
    int col = 0;
    for (int q = 0; q < nm; ++q) {
        for (int h = 0; h < md[q].size; ++h, ++col) {
            const double *v = vr + (size_t)(md[q].col + h) * K;
            double nrm = 0, big = 0;
            for (int i = 0; i < K; ++i) {
                nrm += v[i] * v[i];
                if (fabs(v[i]) > fabs(big)) big = v[i];
            }
            if (md[q].size == 2) {
                /* dgeev makes a complex eigenvector's largest component real
                 * but leaves its sign to rounding (it differs between two
                 * runs whose matrices differ in the last bit): both columns
                 * flip with it, so the pair's sign is fixed by Re v at its
                 * largest-modulus component. */
                const double *re = vr + (size_t)md[q].col * K, *im = re + K;
                double bm = -1;
                big = 0;
                for (int i = 0; i < K; ++i) {
                    double mod = re[i] * re[i] + im[i] * im[i];
                    if (mod > bm) {
                        bm = mod;
                        big = re[i];
                    }
                }
            }
            nrm = sqrt(nrm);
            /* Unit columns make the condition number below mean something;
             * the sign fix makes a real mode's coordinate unique. */
            double sc = nrm > 0 ? 1.0 / nrm : 0;
            if (big < 0) sc = -sc;
            for (int i = 0; i < K; ++i) V[(size_t)i * K + col] = v[i] * sc;
        }
        mode_size[q] = md[q].size;
    }
    *n_modes = nm;
    /* T = V^{-1}; lu_inverse's rcond is that of V^T, the same 1-norm
     * condition as V's infinity norm: either flags a defective F. */
    double rcond = 0;
    rc = lu_inverse(K, V, T, &rcond);
    if (rc != FR_OK) goto done;
    if (!(rcond >= FR_MODES_MIN_RCOND))
        rc = FR_FAIL(FR_ENUMERIC, "modes: eigenvector matrix is singular (rcond %.3g): the dynamics are defective",
                     rcond);
done:
    free(a);
    free(wr);
    free(wi);
    free(vr);
    free(work);
    free(V);
    free(md);
    return rc;
}

/* Backtracking first fit of modes i.. into the remaining capacities rem.
 * Two groups with equal remaining capacity are interchangeable for the rest
 * of the search, so only the first of them is tried: this keeps the search
 * small when many groups have the same size. */
static int fit_modes(int i, int n, const int *size, int G, int *rem, int *grp)
{
    if (i == n) return 1;
    for (int g = 0; g < G; ++g) {
        if (rem[g] < size[i]) continue;
        int seen = 0;
        for (int h = 0; h < g && !seen; ++h) seen = rem[h] == rem[g];
        if (seen) continue;
        rem[g] -= size[i];
        grp[i] = g;
        if (fit_modes(i + 1, n, size, G, rem, grp)) return 1;
        rem[g] += size[i];
    }
    return 0;
}

fr_err fr_modes_assign(int n_modes, const int *mode_size, int G, const int *groups, int *coord_group, int *n_split)
{
    int K = 0, KG = 0, pairs = 0;
    for (int i = 0; i < n_modes; ++i) {
        if (mode_size[i] != 1 && mode_size[i] != 2)
            return FR_FAIL(FR_EINVAL, "modes: mode %d has size %d (want 1 or 2)", i, mode_size[i]);
        K += mode_size[i];
        pairs += mode_size[i] == 2;
    }
    for (int g = 0; g < G; ++g) {
        if (groups[g] < 1) return FR_FAIL(FR_EINVAL, "modes: group %d has size %d", g, groups[g]);
        KG += groups[g];
    }
    if (n_modes < 1 || G < 1 || K != KG)
        return FR_FAIL(FR_EINVAL, "modes: %d mode coordinates cannot fill groups of total size %d", K, KG);
    int *size = NULL, *grp = NULL, *rem = NULL;
    fr_err rc = FR_CALLOC(size, K);
    if (rc == FR_OK) rc = FR_CALLOC(grp, K);
    if (rc == FR_OK) rc = FR_CALLOC(rem, G);
    if (rc != FR_OK) goto done;
    /* ns = how many pairs are split, counted from the last: splitting the
     * smallest-|lambda| pairs first keeps the dominant rotations whole. */
    for (int ns = 0; ns <= pairs; ++ns) {
        int n = 0, seen_pairs = 0;
        for (int i = 0; i < n_modes; ++i) {
            int split = mode_size[i] == 2 && seen_pairs++ >= pairs - ns;
            if (split) {
                size[n++] = 1;
                size[n++] = 1;
            } else {
                size[n++] = mode_size[i];
            }
        }
        memcpy(rem, groups, sizeof(int) * (size_t)G);
        if (!fit_modes(0, n, size, G, rem, grp)) continue;
        int c = 0;
        for (int i = 0; i < n; ++i)
            for (int h = 0; h < size[i]; ++h) coord_group[c++] = grp[i];
        if (n_split) *n_split = ns;
        goto done;
    }
    /* Unreachable: with every pair split all modes are 1-D and any sizes
     * adding up to K can be filled. */
    rc = FR_FAIL(FR_EINTERNAL, "modes: no assignment of %d modes to %d groups", n_modes, G);
done:
    free(size);
    free(grp);
    free(rem);
    return rc;
}

fr_err fr_modes_change_basis(int N, int K, const double *P, const double *Pinv, const double *m, double *B,
                             double *d, double *A, double *c)
{
    double *tmp = NULL, *dm = NULL;
    fr_err rc = FR_CALLOC(tmp, (size_t)K * N > (size_t)N * K ? (size_t)K * N : (size_t)N * K);
    if (rc == FR_OK) rc = FR_CALLOC(dm, K);
    if (rc != FR_OK) goto done;
    /* c <- c + A m before A changes: A mu + c = A (mu - m) + (c + A m). */
    cblas_dgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0, A, K, m, 1, 1.0, c, 1);
    /* A <- A P^{-1} */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, K, K, 1.0, A, K, Pinv, K, 0.0, tmp, K);
    memcpy(A, tmp, sizeof(double) * (size_t)N * K);
    /* B <- P B */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, N, K, 1.0, P, K, B, N, 0.0, tmp, N);
    memcpy(B, tmp, sizeof(double) * (size_t)K * N);
    /* d <- P (d - m) */
    for (int p = 0; p < K; ++p) dm[p] = d[p] - m[p];
    cblas_dgemv(CblasRowMajor, CblasNoTrans, K, K, 1.0, P, K, dm, 1, 0.0, d, 1);
done:
    free(tmp);
    free(dm);
    return rc;
}
