/* analysis: Hungarian matching, moment-based affine R^2 metrics (latent and
 * behaviour), and connectivity read-outs from thin factors
 * (see include/facrnn/analysis.h). Pure maths: no MPI, no files. */
#include "facrnn/analysis.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (OpenBLAS ships it; there is no LAPACKE). */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t luplo);
void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda, double *b,
             const int *ldb, int *info, size_t luplo);
void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau, double *work, const int *lwork,
             int *info);
void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda, const double *tau,
             double *work, const int *lwork, int *info);
void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a, const int *lda,
             double *s, double *u, const int *ldu, double *vt, const int *ldvt, double *work, const int *lwork,
             int *info, size_t lju, size_t ljvt);

/* ---- Hungarian ---------------------------------------------------------------
 * Shortest augmenting paths with potentials, minimising cost over n <= m. */
static fr_err hungarian_min(int n, int m, const double *cost /* (n, m) */, int *row_to_col /* (n) */)
{
    double *u = NULL, *v = NULL, *minv = NULL;
    int *p = NULL, *way = NULL, *used = NULL;
    fr_err rc = FR_CALLOC(u, n + 1);
    if (rc == FR_OK) rc = FR_CALLOC(v, m + 1);
    if (rc == FR_OK) rc = FR_CALLOC(minv, m + 1);
    if (rc == FR_OK) rc = FR_CALLOC(p, m + 1);
    if (rc == FR_OK) rc = FR_CALLOC(way, m + 1);
    if (rc == FR_OK) rc = FR_CALLOC(used, m + 1);
    if (rc != FR_OK) goto done;
    for (int i = 1; i <= n; ++i) {
        p[0] = i;
        int j0 = 0;
        for (int j = 0; j <= m; ++j) {
            minv[j] = INFINITY;
            used[j] = 0;
        }
        do {
            used[j0] = 1;
            int i0 = p[j0], j1 = 0;
            double delta = INFINITY;
            for (int j = 1; j <= m; ++j) {
                if (used[j]) continue;
                double cur = cost[(size_t)(i0 - 1) * m + (j - 1)] - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= m; ++j) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    for (int i = 0; i < n; ++i) row_to_col[i] = -1;
    for (int j = 1; j <= m; ++j)
        if (p[j]) row_to_col[p[j] - 1] = j - 1;
done:
    free(u);
    free(v);
    free(minv);
    free(p);
    free(way);
    free(used);
    return rc;
}

fr_err fr_hungarian_max(int nr, int nc, const double *score, int *assign)
{
    if (nr < 0 || nc < 0) return FR_FAIL(FR_EINVAL, "hungarian: negative size %d x %d", nr, nc);
    for (int i = 0; i < nr; ++i) assign[i] = -1;
    if (nr == 0 || nc == 0) return FR_OK;
    for (size_t k = 0; k < (size_t)nr * nc; ++k)
        if (!isfinite(score[k]))
            return FR_FAIL(FR_EINVAL, "hungarian: score (%zu, %zu) is not finite", k / (size_t)nc, k % (size_t)nc);
    int tr = nr > nc; /* the solver wants rows <= columns */
    int n = tr ? nc : nr, m = tr ? nr : nc;
    double *cost = NULL;
    int *r2c = NULL;
    fr_err rc = FR_CALLOC(cost, (size_t)n * m);
    if (rc == FR_OK) rc = FR_CALLOC(r2c, n);
    if (rc == FR_OK) {
        for (int i = 0; i < nr; ++i)
            for (int j = 0; j < nc; ++j) {
                double c = -score[(size_t)i * nc + j];
                if (tr) cost[(size_t)j * m + i] = c;
                else cost[(size_t)i * m + j] = c;
            }
        rc = hungarian_min(n, m, cost, r2c);
    }
    if (rc == FR_OK) {
        if (tr) {
            for (int j = 0; j < n; ++j)
                if (r2c[j] >= 0) assign[r2c[j]] = j;
        } else {
            memcpy(assign, r2c, sizeof(int) * (size_t)nr);
        }
    }
    free(cost);
    free(r2c);
    return rc;
}

/* ---- moments ------------------------------------------------------------------ */
fr_err fr_moments_init(fr_moments *m, int d)
{
    memset(m, 0, sizeof *m);
    if (d < 1) return FR_FAIL(FR_EINVAL, "moments: dimension must be >= 1, got %d", d);
    m->d = d;
    m->len = 1 + (size_t)d + (size_t)d * d;
    TRY(FR_CALLOC(m->buf, m->len));
    m->n = m->buf;
    m->s = m->buf + 1;
    m->S = m->buf + 1 + d;
    return FR_OK;
}

void fr_moments_free(fr_moments *m)
{
    free(m->buf);
    memset(m, 0, sizeof *m);
}

void fr_moments_clear(fr_moments *m) { memset(m->buf, 0, sizeof(double) * m->len); }

#define FR_AN_CHUNK 256

fr_err fr_moments_add(fr_moments *m, long long n, int dx, const double *x, int dy, const double *y)
{
    int d = m->d;
    if (dx < 0 || dy < 0 || dx + dy != d || (dy > 0 && !y))
        return FR_FAIL(FR_EINVAL, "moments: row parts %d + %d do not make dimension %d", dx, dy, d);
    double *buf = NULL;
    TRY(FR_CALLOC(buf, (size_t)FR_AN_CHUNK * d));
    long long r = 0;
    while (r < n) {
        int rows = 0;
        for (; r < n && rows < FR_AN_CHUNK; ++r) {
            double *o = buf + (size_t)rows * d;
            int nan = 0;
            for (int j = 0; j < dx; ++j) nan |= isnan(o[j] = x[(size_t)r * dx + j]);
            for (int j = 0; j < dy; ++j) nan |= isnan(o[dx + j] = y[(size_t)r * dy + j]);
            if (!nan) rows++;
        }
        if (!rows) continue;
        *m->n += rows;
        for (int i = 0; i < rows; ++i)
            for (int j = 0; j < d; ++j) m->s[j] += buf[(size_t)i * d + j];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, rows, 1.0, buf, d, 1.0, m->S, d);
    }
    for (int i = 0; i < d; ++i)
        for (int j = 0; j < i; ++j) m->S[(size_t)i * d + j] = m->S[(size_t)j * d + i];
    free(buf);
    return FR_OK;
}

/* Centred covariance entry between coordinates i and j of v. */
static double mcov(const fr_moments *m, int i, int j)
{
    double n = *m->n;
    return m->S[(size_t)i * m->d + j] / n - (m->s[i] / n) * (m->s[j] / n);
}

static fr_err check_idx(const fr_moments *m, int nx, const int *xi, int ny, const int *yi)
{
    if (*m->n < 1) return FR_FAIL(FR_EINVAL, "affine map: no rows in the moments");
    for (int k = 0; k < nx; ++k)
        if (xi[k] < 0 || xi[k] >= m->d) return FR_FAIL(FR_EINVAL, "affine map: predictor index %d out of range", xi[k]);
    for (int k = 0; k < ny; ++k)
        if (yi[k] < 0 || yi[k] >= m->d) return FR_FAIL(FR_EINVAL, "affine map: target index %d out of range", yi[k]);
    return FR_OK;
}

fr_err fr_affine_fit_moments(const fr_moments *m, int nx, const int *xi, int ny, const int *yi, double ridge,
                             double *W, double *b)
{
    TRY(check_idx(m, nx, xi, ny, yi));
    double n = *m->n;
    memset(W, 0, sizeof(double) * (size_t)nx * ny);
    double *C = NULL, *R = NULL;
    fr_err rc = FR_CALLOC(C, (size_t)nx * nx + 1);
    if (rc == FR_OK) rc = FR_CALLOC(R, (size_t)nx * ny + 1);
    if (rc != FR_OK) goto done;
    double tr = 0;
    for (int i = 0; i < nx; ++i) {
        for (int j = 0; j < nx; ++j) C[(size_t)i * nx + j] = mcov(m, xi[i], xi[j]);
        tr += C[(size_t)i * nx + i];
    }
    if (nx > 0 && tr > 0) {
        for (int i = 0; i < nx; ++i) C[(size_t)i * nx + i] += ridge * tr / nx;
        /* Column-major RHS (nx, ny): R[i + j nx] = Cov(x_i, y_j). */
        for (int i = 0; i < nx; ++i)
            for (int j = 0; j < ny; ++j) R[i + (size_t)j * nx] = mcov(m, xi[i], yi[j]);
        int info = 0;
        dpotrf_("U", &nx, C, &nx, &info, 1);
        if (info != 0) {
            rc = FR_FAIL(FR_ENUMERIC, "affine map: predictor covariance is singular (dpotrf info %d); use a ridge", info);
            goto done;
        }
        dpotrs_("U", &nx, &ny, C, &nx, R, &nx, &info, 1);
        TRY_GOTO(rc, fr_check_lapack(info, "dpotrs", __FILE__, __LINE__), done);
        for (int i = 0; i < nx; ++i)
            for (int j = 0; j < ny; ++j) W[(size_t)i * ny + j] = R[i + (size_t)j * nx];
    }
    /* Constant predictors (tr = 0) leave W = 0: the map is the mean. */
    for (int j = 0; j < ny; ++j) {
        double bj = m->s[yi[j]] / n;
        for (int i = 0; i < nx; ++i) bj -= W[(size_t)i * ny + j] * m->s[xi[i]] / n;
        b[j] = bj;
    }
done:
    free(C);
    free(R);
    return rc;
}

fr_err fr_affine_score_moments(const fr_moments *m, int nx, const int *xi, int ny, const int *yi, const double *W,
                               const double *b, double *r2, double *r2_mean)
{
    TRY(check_idx(m, nx, xi, ny, yi));
    double n = *m->n, sum = 0;
    for (int j = 0; j < ny; ++j) {
        /* SSE/n = Cyy - 2 w.Cxy + w^T Cxx w + (mean residual)^2, all about
         * these rows' means, so no large raw moments cancel. */
        double cyy = mcov(m, yi[j], yi[j]), sse = cyy, off = m->s[yi[j]] / n - b[j];
        for (int i = 0; i < nx; ++i) {
            double wi = W[(size_t)i * ny + j];
            off -= wi * m->s[xi[i]] / n;
            sse -= 2 * wi * mcov(m, xi[i], yi[j]);
            for (int k = 0; k < nx; ++k) sse += wi * W[(size_t)k * ny + j] * mcov(m, xi[i], xi[k]);
        }
        sse += off * off;
        double raw = m->S[(size_t)yi[j] * m->d + yi[j]] / n;
        double rj = cyy > 1e-14 * raw && cyy > 0 ? 1.0 - sse / cyy : 0.0;
        if (r2) r2[j] = rj;
        sum += rj;
    }
    *r2_mean = ny > 0 ? sum / ny : 0.0;
    return FR_OK;
}

/* ---- latent R^2 --------------------------------------------------------------- */
static fr_err check_groups(const char *what, int K, int G, const int *groups)
{
    int sum = 0;
    if (G < 1) return FR_FAIL(FR_EINVAL, "latent R2: %s has %d groups", what, G);
    for (int g = 0; g < G; ++g) {
        if (groups[g] < 1) return FR_FAIL(FR_EINVAL, "latent R2: %s group %d has size %d", what, g, groups[g]);
        sum += groups[g];
    }
    if (sum != K) return FR_FAIL(FR_EINVAL, "latent R2: %s group sizes sum to %d, not %d", what, sum, K);
    return FR_OK;
}

fr_err fr_latent_r2_from_moments(const fr_moments *m, int K_fit, int G_fit, const int *fit_groups, int K_true,
                                 int G_true, const int *true_groups, double *r2_matrix, int *assign, double *r2)
{
    TRY(check_groups("fitted", K_fit, G_fit, fit_groups));
    TRY(check_groups("true", K_true, G_true, true_groups));
    if (m->d != K_fit + K_true)
        return FR_FAIL(FR_EINVAL, "latent R2: moments have dimension %d, expected %d + %d", m->d, K_fit, K_true);
    double *mat = NULL, *wmat = NULL, *W = NULL, *b = NULL;
    int *idx = NULL, *asg = NULL;
    fr_err rc = FR_CALLOC(mat, (size_t)G_true * G_fit);
    if (rc == FR_OK) rc = FR_CALLOC(wmat, (size_t)G_true * G_fit);
    if (rc == FR_OK) rc = FR_CALLOC(W, (size_t)K_fit * K_true);
    if (rc == FR_OK) rc = FR_CALLOC(b, K_true);
    if (rc == FR_OK) rc = FR_CALLOC(idx, K_fit + K_true);
    if (rc == FR_OK) rc = FR_CALLOC(asg, G_true);
    if (rc != FR_OK) goto done;
    for (int k = 0; k < K_fit + K_true; ++k) idx[k] = k;
    for (int a = 0, ya = K_fit; a < G_true; ya += true_groups[a++]) {
        for (int bb = 0, xb = 0; bb < G_fit; xb += fit_groups[bb++]) {
            double r;
            TRY_GOTO(rc, fr_affine_fit_moments(m, fit_groups[bb], idx + xb, true_groups[a], idx + ya,
                                               FR_AN_TINY_RIDGE, W, b), done);
            TRY_GOTO(rc, fr_affine_score_moments(m, fit_groups[bb], idx + xb, true_groups[a], idx + ya, W, b,
                                                 NULL, &r), done);
            mat[(size_t)a * G_fit + bb] = r;
            wmat[(size_t)a * G_fit + bb] = true_groups[a] * r; /* weight = dims explained */
        }
    }
    TRY_GOTO(rc, fr_hungarian_max(G_true, G_fit, wmat, asg), done);
    double tot = 0;
    for (int a = 0; a < G_true; ++a)
        if (asg[a] >= 0) tot += wmat[(size_t)a * G_fit + asg[a]];
    *r2 = tot / K_true;
    if (r2_matrix) memcpy(r2_matrix, mat, sizeof(double) * (size_t)G_true * G_fit);
    if (assign) memcpy(assign, asg, sizeof(int) * (size_t)G_true);
done:
    free(mat);
    free(wmat);
    free(W);
    free(b);
    free(idx);
    free(asg);
    return rc;
}

fr_err fr_component_r2_from_moments(const fr_moments *m, int K_fit, int K_true, double *r2)
{
    int *ones = NULL;
    int K = K_fit > K_true ? K_fit : K_true;
    TRY(FR_CALLOC(ones, K > 0 ? K : 1));
    for (int k = 0; k < K; ++k) ones[k] = 1;
    fr_err rc = fr_latent_r2_from_moments(m, K_fit, K_fit, ones, K_true, K_true, ones, NULL, NULL, r2);
    free(ones);
    return rc;
}

fr_err fr_latent_r2(long long n, int K_fit, const double *z, int G_fit, const int *fit_groups, int K_true,
                    const double *zt, int G_true, const int *true_groups, double *r2_matrix, int *assign, double *r2)
{
    fr_moments m;
    TRY(fr_moments_init(&m, K_fit + K_true));
    fr_err rc = fr_moments_add(&m, n, K_fit, z, K_true, zt);
    if (rc == FR_OK)
        rc = fr_latent_r2_from_moments(&m, K_fit, G_fit, fit_groups, K_true, G_true, true_groups, r2_matrix, assign, r2);
    fr_moments_free(&m);
    return rc;
}

/* ---- behaviour ------------------------------------------------------------------ */
fr_err fr_behavior_r2_from_moments(const fr_moments *train, const fr_moments *test, int K, int P, double ridge,
                                   double *r2, double *r2_mean)
{
    if (train->d != K + P || test->d != K + P)
        return FR_FAIL(FR_EINVAL, "behaviour R2: moments have dimension %d/%d, expected %d + %d", train->d, test->d, K, P);
    double *W = NULL, *b = NULL;
    int *idx = NULL;
    fr_err rc = FR_CALLOC(W, (size_t)K * P);
    if (rc == FR_OK) rc = FR_CALLOC(b, P);
    if (rc == FR_OK) rc = FR_CALLOC(idx, K + P);
    if (rc == FR_OK) {
        for (int k = 0; k < K + P; ++k) idx[k] = k;
        rc = fr_affine_fit_moments(train, K, idx, P, idx + K, ridge, W, b);
    }
    if (rc == FR_OK) rc = fr_affine_score_moments(test, K, idx, P, idx + K, W, b, r2, r2_mean);
    free(W);
    free(b);
    free(idx);
    return rc;
}

/* ---- behaviour alignment ------------------------------------------------------------ */
void fr_align_cumulate(long long T, int L, int K, const double *mu, int P, const double *b, int position, double *C,
                       double *Y)
{
    for (long long t = L; t < T; ++t) {
        double *c = C + (size_t)(t - L) * K, *y = Y + (size_t)(t - L) * P;
        const double *m = mu + (size_t)t * K, *bt = b + (size_t)t * P;
        for (int k = 0; k < K; ++k) c[k] = m[k] + (t > L ? c[k - K] : 0.0);
        for (int a = 0; a < P; ++a)
            y[a] = position ? bt[a] - b[(size_t)L * P + a] : bt[a] + (t > L ? y[a - P] : 0.0);
    }
}

fr_err fr_behavior_align_r2_from_moments(const fr_moments *train, const fr_moments *test, int K, int G,
                                         const int *groups, int P, double ridge, double *r2_matrix, int *assign,
                                         double *r2, double *r2_all)
{
    if (train->d != K + P || test->d != K + P)
        return FR_FAIL(FR_EINVAL, "behaviour alignment R2: moments have dimension %d/%d, expected %d + %d", train->d,
                       test->d, K, P);
    double *mat = NULL, *W = NULL, *b = NULL, *r = NULL;
    int *idx = NULL, *asg = NULL;
    fr_err rc = FR_CALLOC(mat, (size_t)P * G + 1);
    if (rc == FR_OK) rc = FR_CALLOC(W, (size_t)K * P + 1);
    if (rc == FR_OK) rc = FR_CALLOC(b, P + 1);
    if (rc == FR_OK) rc = FR_CALLOC(r, P + 1);
    if (rc == FR_OK) rc = FR_CALLOC(idx, K + P);
    if (rc == FR_OK) rc = FR_CALLOC(asg, P + 1);
    if (rc != FR_OK) goto done;
    for (int k = 0; k < K + P; ++k) idx[k] = k;
    /* every column from every group: the (P, G) score matrix */
    for (int g = 0, k0 = 0; g < G; k0 += groups[g++]) {
        TRY_GOTO(rc, fr_affine_fit_moments(train, groups[g], idx + k0, P, idx + K, ridge, W, b), done);
        double mean;
        TRY_GOTO(rc, fr_affine_score_moments(test, groups[g], idx + k0, P, idx + K, W, b, r, &mean), done);
        for (int a = 0; a < P; ++a) mat[(size_t)a * G + g] = r[a];
    }
    if (P <= G) {
        TRY_GOTO(rc, fr_hungarian_max(P, G, mat, asg), done);
    } else {
        /* more columns than groups (e.g. one group): each column its best */
        for (int a = 0; a < P; ++a) {
            asg[a] = 0;
            for (int g = 1; g < G; ++g)
                if (mat[(size_t)a * G + g] > mat[(size_t)a * G + asg[a]]) asg[a] = g;
        }
    }
    double tot = 0;
    for (int a = 0; a < P; ++a) tot += asg[a] >= 0 ? mat[(size_t)a * G + asg[a]] : 0.0;
    *r2 = tot / P;
    /* all K latents for every column: FacRNN and the lrRNN compare */
    TRY_GOTO(rc, fr_affine_fit_moments(train, K, idx, P, idx + K, ridge, W, b), done);
    TRY_GOTO(rc, fr_affine_score_moments(test, K, idx, P, idx + K, W, b, NULL, r2_all), done);
    if (r2_matrix) memcpy(r2_matrix, mat, sizeof(double) * (size_t)P * G);
    if (assign) memcpy(assign, asg, sizeof(int) * (size_t)P);
done:
    free(mat);
    free(W);
    free(b);
    free(r);
    free(idx);
    free(asg);
    return rc;
}

/* ---- connectivity ----------------------------------------------------------------- */
void fr_conn_J(int N, int K, const double *A, const double *B, double *J)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, K, N, 1.0, B, N, A, K, 0.0, J, K);
}

/* In-place QR of a column-major (N, H) matrix; tau (H). */
static fr_err qr(int N, int H, double *a, double *tau)
{
    int info = 0, lwork = -1;
    double wq = 0, *work = NULL;
    dgeqrf_(&N, &H, a, &N, tau, &wq, &lwork, &info);
    CHECK_LAPACK(info, "dgeqrf workspace query");
    lwork = (int)wq + 1;
    TRY(FR_CALLOC(work, lwork));
    dgeqrf_(&N, &H, a, &N, tau, work, &lwork, &info);
    free(work);
    CHECK_LAPACK(info, "dgeqrf");
    return FR_OK;
}

/* Form Q (N, H) column-major in place from a QR factorisation. */
static fr_err formq(int N, int H, double *a, const double *tau)
{
    int info = 0, lwork = -1;
    double wq = 0, *work = NULL;
    dorgqr_(&N, &H, &H, a, &N, tau, &wq, &lwork, &info);
    CHECK_LAPACK(info, "dorgqr workspace query");
    lwork = (int)wq + 1;
    TRY(FR_CALLOC(work, lwork));
    dorgqr_(&N, &H, &H, a, &N, tau, work, &lwork, &info);
    free(work);
    CHECK_LAPACK(info, "dorgqr");
    return FR_OK;
}

fr_err fr_conn_svd(int N, int K, const double *A, const double *B, int k0, int H, double *s, double *U, double *V)
{
    if (H < 1 || k0 < 0 || k0 + H > K || H > N)
        return FR_FAIL(FR_EINVAL, "connectivity SVD: block %d..%d invalid for K = %d, N = %d", k0, k0 + H - 1, K, N);
    double *qa = NULL, *qb = NULL, *ta = NULL, *tb = NULL, *M = NULL, *um = NULL, *vt = NULL, *work = NULL;
    fr_err rc = FR_CALLOC(qa, (size_t)N * H);
    if (rc == FR_OK) rc = FR_CALLOC(qb, (size_t)N * H);
    if (rc == FR_OK) rc = FR_CALLOC(ta, H);
    if (rc == FR_OK) rc = FR_CALLOC(tb, H);
    if (rc == FR_OK) rc = FR_CALLOC(M, (size_t)H * H);
    if (rc == FR_OK) rc = FR_CALLOC(um, (size_t)H * H);
    if (rc == FR_OK) rc = FR_CALLOC(vt, (size_t)H * H);
    if (rc != FR_OK) goto done;
    /* Column-major copies: A[:, blk] and B[blk, :]^T, both (N, H). */
    for (int c = 0; c < H; ++c)
        for (int i = 0; i < N; ++i) {
            qa[i + (size_t)c * N] = A[(size_t)i * K + k0 + c];
            qb[i + (size_t)c * N] = B[(size_t)(k0 + c) * N + i];
        }
    TRY_GOTO(rc, qr(N, H, qa, ta), done);
    TRY_GOTO(rc, qr(N, H, qb, tb), done);
    /* M = R_A R_B^T (H, H), column-major; R is the upper triangle. */
    for (int r = 0; r < H; ++r)
        for (int c = 0; c < H; ++c) {
            double acc = 0;
            for (int k = (r > c ? r : c); k < H; ++k) acc += qa[r + (size_t)k * N] * qb[c + (size_t)k * N];
            M[r + (size_t)c * H] = acc;
        }
    int info = 0, lwork = -1;
    double wq = 0;
    dgesvd_("A", "A", &H, &H, M, &H, s, um, &H, vt, &H, &wq, &lwork, &info, 1, 1);
    TRY_GOTO(rc, fr_check_lapack(info, "dgesvd workspace query", __FILE__, __LINE__), done);
    lwork = (int)wq + 1;
    TRY_GOTO(rc, FR_CALLOC(work, lwork), done);
    dgesvd_("A", "A", &H, &H, M, &H, s, um, &H, vt, &H, work, &lwork, &info, 1, 1);
    TRY_GOTO(rc, fr_check_lapack(info, "dgesvd", __FILE__, __LINE__), done);
    if (U) {
        TRY_GOTO(rc, formq(N, H, qa, ta), done);
        for (int i = 0; i < N; ++i)
            for (int c = 0; c < H; ++c) {
                double acc = 0;
                for (int k = 0; k < H; ++k) acc += qa[i + (size_t)k * N] * um[k + (size_t)c * H];
                U[(size_t)i * H + c] = acc;
            }
    }
    if (V) {
        TRY_GOTO(rc, formq(N, H, qb, tb), done);
        for (int i = 0; i < N; ++i)
            for (int c = 0; c < H; ++c) {
                double acc = 0;
                for (int k = 0; k < H; ++k) acc += qb[i + (size_t)k * N] * vt[c + (size_t)k * H];
                V[(size_t)i * H + c] = acc;
            }
    }
done:
    free(qa);
    free(qb);
    free(ta);
    free(tb);
    free(M);
    free(um);
    free(vt);
    free(work);
    return rc;
}

/* Sum of entries and sum of products with another low-rank matrix. */
fr_err fr_lowrank_pearson(int N, int K1, const double *A1, int lda1, const double *B1, int ldb1, int K2,
                          const double *A2, int lda2, const double *B2, int ldb2, double *r)
{
    int K = K1 > K2 ? K1 : K2;
    double *ga = NULL, *gb = NULL;
    fr_err rc = FR_CALLOC(ga, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(gb, (size_t)K * K);
    if (rc != FR_OK) goto done;
    /* <W_p, W_q>_F = sum((A_p^T A_q) .* (B_p B_q^T)); sum(W_p) = (1^T A_p)(B_p 1). */
    const double *As[2] = {A1, A2}, *Bs[2] = {B1, B2};
    int Ks[2] = {K1, K2}, la[2] = {lda1, lda2}, lb[2] = {ldb1, ldb2};
    double tot[2], dotm[2][2];
    for (int p = 0; p < 2; ++p) {
        tot[p] = 0;
        for (int k = 0; k < Ks[p]; ++k) {
            double a = 0, b = 0;
            for (int i = 0; i < N; ++i) a += As[p][(size_t)i * la[p] + k];
            for (int j = 0; j < N; ++j) b += Bs[p][(size_t)k * lb[p] + j];
            tot[p] += a * b;
        }
    }
    for (int p = 0; p < 2; ++p)
        for (int q = p; q < 2; ++q) {
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Ks[p], Ks[q], N, 1.0, As[p], la[p], As[q], la[q],
                        0.0, ga, Ks[q]);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Ks[p], Ks[q], N, 1.0, Bs[p], lb[p], Bs[q], lb[q],
                        0.0, gb, Ks[q]);
            double acc = 0;
            for (size_t k = 0; k < (size_t)Ks[p] * Ks[q]; ++k) acc += ga[k] * gb[k];
            dotm[p][q] = dotm[q][p] = acc;
        }
    double nn = (double)N * N;
    double c12 = dotm[0][1] - tot[0] * tot[1] / nn;
    double v1 = dotm[0][0] - tot[0] * tot[0] / nn, v2 = dotm[1][1] - tot[1] * tot[1] / nn;
    *r = v1 > 0 && v2 > 0 ? c12 / sqrt(v1 * v2) : 0.0;
done:
    free(ga);
    free(gb);
    return rc;
}

fr_err fr_conn_pearson_groups(int N, int K1, const double *A1, const double *B1, int G1, const int *groups1, int K2,
                              const double *A2, const double *B2, int G2, const int *groups2, const int *assign,
                              double *r)
{
    for (int a = 0, k1 = 0; a < G1; k1 += groups1[a++]) {
        r[a] = 0;
        int bsel = assign[a];
        if (bsel < 0) continue;
        if (bsel >= G2) return FR_FAIL(FR_EINVAL, "connectivity r: assign[%d] = %d out of %d groups", a, bsel, G2);
        int k2 = 0;
        for (int b = 0; b < bsel; ++b) k2 += groups2[b];
        TRY(fr_lowrank_pearson(N, groups1[a], A1 + k1, K1, B1 + (size_t)k1 * N, N, groups2[bsel], A2 + k2, K2,
                               B2 + (size_t)k2 * N, N, &r[a]));
    }
    return FR_OK;
}
