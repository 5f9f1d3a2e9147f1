/* coupling: held-out cross-group predictability of latent dynamics (see
 * include/facrnn/coupling.h). The fast path works on summed moments so a
 * team of ranks needs one Allreduce; the reference path builds the feature
 * matrices explicitly. Pure maths: no MPI, no files. */
#include "facrnn/coupling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define COUPLING_RIDGE 1e-6

int fr_coupling_nfeat(int K, int quad) { return K + (quad ? K * (K + 1) / 2 : 0); }

void fr_coupling_features(int K, int quad, const double *z, double *phi)
{
    int p = 0;
    for (int i = 0; i < K; ++i) phi[p++] = z[i];
    if (!quad) return;
    for (int i = 0; i < K; ++i)
        for (int j = i; j < K; ++j) phi[p++] = z[i] * z[j];
}

/* Features that involve only the dims [k0, k1): linear ones, then products. */
static int own_features(int K, int quad, int k0, int k1, int *idx)
{
    int n = 0, p = K;
    for (int i = k0; i < k1; ++i) idx[n++] = i;
    if (!quad) return n;
    for (int i = 0; i < K; ++i)
        for (int j = i; j < K; ++j, ++p)
            if (i >= k0 && i < k1 && j >= k0 && j < k1) idx[n++] = p;
    return n;
}

#define PAIR_CHUNK 256

/* Flush the buffered pairs of one side (features then targets) into m. */
static fr_err flush_pairs(fr_moments *m, int P, int K, int *nb, double *phi, double *tgt)
{
    fr_err rc = *nb ? fr_moments_add(m, *nb, P, phi, K, tgt) : FR_OK;
    *nb = 0;
    return rc;
}

fr_err fr_coupling_pairs_add(fr_moments *train, fr_moments *test, int K, int quad, int lag, const double *mean,
                             const double *sd, long long n_trials, const long long *off,
                             const unsigned char *is_train, const double *lat)
{
    int P = fr_coupling_nfeat(K, quad);
    if (lag < 1) return FR_FAIL(FR_EINVAL, "coupling: lag %d, must be >= 1", lag);
    if (train->d != P + K || test->d != P + K)
        return FR_FAIL(FR_EINVAL, "coupling: moments have dimension %d/%d, expected %d", train->d, test->d, P + K);
    /* pairs are buffered per side and added a chunk at a time (dsyrk) */
    double *zs = NULL, *phi[2] = {NULL, NULL}, *tgt[2] = {NULL, NULL};
    int nb[2] = {0, 0};
    fr_moments *dst[2] = {test, train};
    fr_err rc = FR_CALLOC(zs, K);
    for (int side = 0; side < 2 && rc == FR_OK; ++side) {
        rc = FR_CALLOC(phi[side], (size_t)PAIR_CHUNK * P);
        if (rc == FR_OK) rc = FR_CALLOC(tgt[side], (size_t)PAIR_CHUNK * K);
    }
    for (long long k = 0; k < n_trials && rc == FR_OK; ++k) {
        int side = is_train[k] != 0;
        for (long long r = off[k]; r + lag < off[k + 1] && rc == FR_OK; ++r) {
            const double *a = lat + r * K, *b = lat + (r + lag) * K;
            if (isnan(a[0]) || isnan(b[0])) continue;
            double *y = tgt[side] + (size_t)nb[side] * K;
            for (int i = 0; i < K; ++i) {
                zs[i] = (a[i] - mean[i]) / sd[i];
                y[i] = (b[i] - mean[i]) / sd[i];
            }
            fr_coupling_features(K, quad, zs, phi[side] + (size_t)nb[side] * P);
            if (++nb[side] == PAIR_CHUNK) rc = flush_pairs(dst[side], P, K, &nb[side], phi[side], tgt[side]);
        }
    }
    for (int side = 0; side < 2 && rc == FR_OK; ++side) rc = flush_pairs(dst[side], P, K, &nb[side], phi[side], tgt[side]);
    free(zs);
    for (int side = 0; side < 2; ++side) free(phi[side]), free(tgt[side]);
    return rc;
}

/* Held-out SSE (per pair) of group [k0, k1) predicted from predictors xi. */
static fr_err group_sse(const fr_moments *train, const fr_moments *test, int P, int nx, const int *xi, int k0, int k1,
                        double *sse, double *sst)
{
    int ny = k1 - k0, *yi = NULL;
    double *W = NULL, *b = NULL, *r2 = NULL, r2m;
    fr_err rc = FR_CALLOC(yi, ny);
    if (rc == FR_OK) rc = FR_CALLOC(r2, ny);
    for (int j = 0; j < ny && rc == FR_OK; ++j) yi[j] = P + k0 + j;
    if (rc == FR_OK) rc = FR_CALLOC(W, (size_t)nx * ny + 1);
    if (rc == FR_OK) rc = FR_CALLOC(b, ny);
    if (rc == FR_OK) rc = fr_affine_fit_moments(train, nx, xi, ny, yi, COUPLING_RIDGE, W, b);
    if (rc == FR_OK) rc = fr_affine_score_moments(test, nx, xi, ny, yi, W, b, r2, &r2m);
    double n = *test->n, s = 0, t = 0;
    for (int j = 0; j < ny && rc == FR_OK; ++j) {
        int y = yi[j];
        double var = test->S[(size_t)y * test->d + y] / n - (test->s[y] / n) * (test->s[y] / n);
        s += fmax(var, 0) * (1 - r2[j]);
        t += fmax(var, 0);
    }
    *sse = s;
    if (sst) *sst = t;
    free(W);
    free(b);
    free(yi);
    free(r2);
    return rc;
}

static fr_err check_groups(int K, int G, const int *groups)
{
    int sum = 0;
    if (G < 1) return FR_FAIL(FR_EINVAL, "coupling: %d groups", G);
    for (int g = 0; g < G; ++g) {
        if (groups[g] < 1) return FR_FAIL(FR_EINVAL, "coupling: group %d has size %d", g, groups[g]);
        sum += groups[g];
    }
    if (sum != K) return FR_FAIL(FR_EINVAL, "coupling: group sizes sum to %d, not K = %d", sum, K);
    return FR_OK;
}

fr_err fr_coupling_from_moments(const fr_moments *train, const fr_moments *test, int K, int quad, int G,
                                const int *groups, double *c_group, double *c_max, double *pred_min)
{
    TRY(check_groups(K, G, groups));
    int P = fr_coupling_nfeat(K, quad);
    if (*train->n < P + 2 || *test->n < 2)
        return FR_FAIL(FR_EINVAL, "coupling: too few lagged pairs (%.0f training, %.0f held out) for %d "
                                  "predictors", *train->n, *test->n, P);
    int *own = NULL, *all = NULL;
    fr_err rc = FR_CALLOC(own, P);
    if (rc == FR_OK) rc = FR_CALLOC(all, P);
    for (int p = 0; p < P && rc == FR_OK; ++p) all[p] = p;
    *c_max = G == 1 ? 0 : -INFINITY;
    if (pred_min) *pred_min = INFINITY;
    int k0 = 0;
    for (int g = 0; g < G && rc == FR_OK; ++g) {
        int k1 = k0 + groups[g], no = own_features(K, quad, k0, k1, own);
        double so = 0, sa = 0, st = 0;
        rc = group_sse(train, test, P, no, own, k0, k1, &so, &st);
        /* one group: its own features are all features, no coupling */
        if (rc == FR_OK && G > 1) rc = group_sse(train, test, P, P, all, k0, k1, &sa, NULL);
        double c = G > 1 && so > 0 ? (so - sa) / so : 0;
        if (c_group) c_group[g] = c;
        if (c > *c_max) *c_max = c;
        double r2 = st > 0 ? 1 - so / st : 0;
        if (pred_min && r2 < *pred_min) *pred_min = r2;
        k0 = k1;
    }
    free(own);
    free(all);
    return rc;
}

/* ---- reference ---------------------------------------------------------------- */
/* Solve (C + ridge) w = r for symmetric positive C (n, n) by Gaussian
 * elimination with partial pivoting; r (n, m) column-major, overwritten. */
static fr_err ref_solve(int n, double *C, int m, double *r)
{
    for (int c = 0; c < n; ++c) {
        int piv = c;
        for (int i = c + 1; i < n; ++i)
            if (fabs(C[i * n + c]) > fabs(C[piv * n + c])) piv = i;
        if (!(fabs(C[piv * n + c]) > 0)) return FR_FAIL(FR_ENUMERIC, "coupling reference: singular system");
        for (int j = 0; j < n; ++j) {
            double t = C[c * n + j];
            C[c * n + j] = C[piv * n + j];
            C[piv * n + j] = t;
        }
        for (int j = 0; j < m; ++j) {
            double t = r[c + j * n];
            r[c + j * n] = r[piv + j * n];
            r[piv + j * n] = t;
        }
        for (int i = c + 1; i < n; ++i) {
            double f = C[i * n + c] / C[c * n + c];
            for (int j = c; j < n; ++j) C[i * n + j] -= f * C[c * n + j];
            for (int j = 0; j < m; ++j) r[i + j * n] -= f * r[c + j * n];
        }
    }
    for (int c = n - 1; c >= 0; --c)
        for (int j = 0; j < m; ++j) {
            double v = r[c + j * n];
            for (int k = c + 1; k < n; ++k) v -= C[c * n + k] * r[k + j * n];
            r[c + j * n] = v / C[c * n + c];
        }
    return FR_OK;
}

fr_err fr_coupling_ref(int K, int quad, int lag, int G, const int *groups, long long n_trials, const long long *off,
                       const unsigned char *is_train, const double *lat, double *c_group, double *c_max,
                       double *pred_min)
{
    TRY(check_groups(K, G, groups));
    int P = fr_coupling_nfeat(K, quad);
    long long rows = off[n_trials];
    /* standardise with training rows */
    double *mean = NULL, *sd = NULL, *z = NULL, cnt = 0;
    TRY(FR_CALLOC(mean, 3 * (size_t)K)); /* mean, sd, z: (K) each */
    sd = mean + K;
    z = sd + K;
    for (long long k = 0; k < n_trials; ++k)
        for (long long r = off[k]; r < off[k + 1] && is_train[k]; ++r)
            if (!isnan(lat[r * K])) {
                cnt += 1;
                for (int i = 0; i < K; ++i) mean[i] += lat[r * K + i];
            }
    for (int i = 0; i < K; ++i) mean[i] /= cnt;
    for (long long k = 0; k < n_trials; ++k)
        for (long long r = off[k]; r < off[k + 1] && is_train[k]; ++r)
            if (!isnan(lat[r * K]))
                for (int i = 0; i < K; ++i) sd[i] += (lat[r * K + i] - mean[i]) * (lat[r * K + i] - mean[i]);
    for (int i = 0; i < K; ++i) sd[i] = sqrt(sd[i] / cnt);
    /* pair matrices: features X (n, P), targets Y (n, K) */
    double *X = NULL, *Y = NULL;
    unsigned char *tr = NULL;
    fr_err rc = FR_CALLOC(X, (size_t)(rows ? rows : 1) * P);
    if (rc == FR_OK) rc = FR_CALLOC(Y, (size_t)(rows ? rows : 1) * K);
    if (rc == FR_OK) rc = FR_CALLOC(tr, rows ? rows : 1);
    long long np = 0;
    for (long long k = 0; k < n_trials && rc == FR_OK; ++k)
        for (long long r = off[k]; r + lag < off[k + 1]; ++r) {
            if (isnan(lat[r * K]) || isnan(lat[(r + lag) * K])) continue;
            for (int i = 0; i < K; ++i) {
                z[i] = (lat[r * K + i] - mean[i]) / sd[i];
                Y[np * K + i] = (lat[(r + lag) * K + i] - mean[i]) / sd[i];
            }
            fr_coupling_features(K, quad, z, X + np * P);
            tr[np++] = is_train[k];
        }
    int *idx = NULL;
    double *C = NULL, *rhs = NULL, *xm = NULL;
    if (rc == FR_OK) rc = FR_CALLOC(idx, P);
    if (rc == FR_OK) rc = FR_CALLOC(C, (size_t)P * P);
    if (rc == FR_OK) rc = FR_CALLOC(rhs, (size_t)P * K);
    if (rc == FR_OK) rc = FR_CALLOC(xm, P + K);
    *c_max = G == 1 ? 0 : -INFINITY;
    if (pred_min) *pred_min = INFINITY;
    int k0 = 0;
    for (int g = 0; g < G && rc == FR_OK; ++g) {
        int k1 = k0 + groups[g], ny = k1 - k0;
        double sse[2] = {0, 0}, sst = 0;
        /* held-out total sum of squares of the group's targets, about their own mean */
        for (int j = 0; j < ny; ++j) {
            double m = 0, nh = 0;
            for (long long i = 0; i < np; ++i)
                if (!tr[i]) m += Y[i * K + k0 + j], nh += 1;
            m /= nh;
            for (long long i = 0; i < np; ++i)
                if (!tr[i]) sst += (Y[i * K + k0 + j] - m) * (Y[i * K + k0 + j] - m);
        }
        for (int which = 0; which < (G > 1 ? 2 : 1) && rc == FR_OK; ++which) {
            int nx = which ? P : own_features(K, quad, k0, k1, idx);
            if (which)
                for (int p = 0; p < P; ++p) idx[p] = p;
            /* training means */
            double n = 0;
            memset(xm, 0, sizeof(double) * (size_t)(P + K));
            for (long long i = 0; i < np; ++i)
                if (tr[i]) {
                    n += 1;
                    for (int a = 0; a < nx; ++a) xm[a] += X[i * P + idx[a]];
                    for (int j = 0; j < ny; ++j) xm[P + j] += Y[i * K + k0 + j];
                }
            for (int a = 0; a < nx; ++a) xm[a] /= n;
            for (int j = 0; j < ny; ++j) xm[P + j] /= n;
            memset(C, 0, sizeof(double) * (size_t)nx * nx);
            memset(rhs, 0, sizeof(double) * (size_t)nx * ny);
            for (long long i = 0; i < np; ++i) {
                if (!tr[i]) continue;
                for (int a = 0; a < nx; ++a) {
                    double xa = X[i * P + idx[a]] - xm[a];
                    for (int b = 0; b < nx; ++b) C[a * nx + b] += xa * (X[i * P + idx[b]] - xm[b]) / n;
                    for (int j = 0; j < ny; ++j) rhs[a + j * nx] += xa * (Y[i * K + k0 + j] - xm[P + j]) / n;
                }
            }
            double t = 0;
            for (int a = 0; a < nx; ++a) t += C[a * nx + a];
            for (int a = 0; a < nx; ++a) C[a * nx + a] += COUPLING_RIDGE * t / nx;
            rc = ref_solve(nx, C, ny, rhs);
            double s = 0;
            for (long long i = 0; i < np && rc == FR_OK; ++i) {
                if (tr[i]) continue;
                for (int j = 0; j < ny; ++j) {
                    double pred = xm[P + j];
                    for (int a = 0; a < nx; ++a) pred += rhs[a + j * nx] * (X[i * P + idx[a]] - xm[a]);
                    double e = Y[i * K + k0 + j] - pred;
                    s += e * e;
                }
            }
            sse[which] = s;
        }
        double c = G > 1 && sse[0] > 0 ? (sse[0] - sse[1]) / sse[0] : 0;
        if (c_group) c_group[g] = c;
        if (c > *c_max) *c_max = c;
        double r2 = sst > 0 ? 1 - sse[0] / sst : 0;
        if (pred_min && r2 < *pred_min) *pred_min = r2;
        k0 = k1;
    }
    free(X), free(Y), free(tr), free(idx), free(C), free(rhs), free(xm), free(mean);
    return rc;
}
