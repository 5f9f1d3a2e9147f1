/* standardize: per-channel z-scoring of the data, its inverse, and the sums
 * it is computed from (see standardize.h). */
#include "facrnn/standardize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void fr_std_accumulate(int N, long long rows, const double *x, const unsigned char *obs, double *acc)
{
    double *s1 = acc + 2, *s2 = acc + 2 + N, *cnt = acc + 2 + 2 * (size_t)N;
    double big = 0;
    for (long long r = 0; r < rows; ++r) {
        const double *xr = x + r * N;
        const unsigned char *o = obs ? obs + r * N : NULL;
        for (int j = 0; j < N; ++j) {
            if (o && !o[j]) continue;
            double v = xr[j];
            s1[j] += v;
            s2[j] += v * v;
            cnt[j] += 1;
            big += fabs(v) > FR_STD_SATURATE;
        }
    }
    acc[0] += (double)rows;
    acc[1] += big;
}

static fr_err alloc_arrays(fr_standardize *st, fr_std_mode mode, int N)
{
    memset(st, 0, sizeof *st);
    st->mode = mode;
    st->N = N;
    TRY(FR_CALLOC(st->mean, N > 0 ? N : 1));
    TRY(FR_CALLOC(st->std, N > 0 ? N : 1));
    for (int j = 0; j < N; ++j) st->std[j] = 1.0;
    return FR_OK;
}

fr_err fr_std_init(fr_standardize *st, fr_std_mode mode, int N, const double *acc)
{
    TRY(alloc_arrays(st, mode, N));
    if (mode == FR_STD_OFF) return FR_OK;
    if (!(acc[0] > 0)) return FR_FAIL(FR_EINVAL, "data.standardize: no training bins to compute the channel means from");
    const double *s1 = acc + 2, *s2 = acc + 2 + N, *cnt = acc + 2 + 2 * (size_t)N;
    for (int j = 0; j < N; ++j) {
        double n = cnt[j]; /* the channel's observed entries: acc[0] without missing values */
        if (!(n > 0)) continue; /* never observed on the training trials: identity (fr_fit_unobserved reports it) */
        double m = s1[j] / n;
        /* population variance; sum x^2 - n m^2 loses digits only when |m| is
         * ~1e6 times the spread, which the flat-channel test below catches */
        double var = (s2[j] - s1[j] * m) / n;
        double sd = var > 0 ? sqrt(var) : 0;
        st->mean[j] = m;
        if (!(sd > 1e-9 * fabs(m)) || sd == 0) {
            st->std[j] = 1.0;
            ++st->n_flat;
        } else {
            st->std[j] = sd;
        }
    }
    return FR_OK;
}

fr_err fr_std_from_arrays(fr_standardize *st, fr_std_mode mode, int N, const double *mean, const double *std)
{
    TRY(alloc_arrays(st, mode, N));
    if (mode == FR_STD_OFF) return FR_OK;
    for (int j = 0; j < N; ++j) {
        if (!isfinite(mean[j]) || !(std[j] > 0) || !isfinite(std[j]))
            return FR_FAIL(FR_EINVAL, "standardize: channel %d has mean %g and std %g (std must be positive)", j,
                           mean[j], std[j]);
        st->mean[j] = mean[j];
        st->std[j] = std[j];
    }
    return FR_OK;
}

void fr_std_apply(const fr_standardize *st, long long rows, double *x, const unsigned char *obs)
{
    int N = st->N;
    if (st->mode != FR_STD_OFF)
        for (long long r = 0; r < rows; ++r)
            for (int j = 0; j < N; ++j) x[r * N + j] = (x[r * N + j] - st->mean[j]) / st->std[j];
    if (obs)
        for (long long q = 0; q < rows * N; ++q)
            if (!obs[q]) x[q] = 0.0;
}

void fr_std_invert(const fr_standardize *st, long long rows, double *x)
{
    if (st->mode == FR_STD_OFF) return;
    int N = st->N;
    for (long long r = 0; r < rows; ++r)
        for (int j = 0; j < N; ++j) x[r * N + j] = x[r * N + j] * st->std[j] + st->mean[j];
}

const char *fr_std_mode_name(fr_std_mode m) { return m == FR_STD_ZSCORE ? "zscore" : "off"; }

void fr_std_free(fr_standardize *st)
{
    free(st->mean);
    free(st->std);
    st->mean = st->std = NULL;
}
