/* Serial tests of the data module's pure parts (shard plan, folds) and of
 * the synthetic generators (determinism, group independence, z-scoring). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/dataset.h"
#include "facrnn/synth.h"
#include "testlib.h"

/* ---- shard plan ------------------------------------------------------------ */

static void plan_invariants(long long n, const long long *off, int lags, int P)
{
    long long ft[64], ft2[64];
    CU_ASSERT_EQUAL_FATAL(fr_shard_plan(n, off, lags, P, ft), FR_OK);
    /* Contiguous cover of [0, n): every trial exactly once. */
    CU_ASSERT_EQUAL(ft[0], 0);
    CU_ASSERT_EQUAL(ft[P], n);
    for (int r = 0; r < P; ++r) CU_ASSERT(ft[r] <= ft[r + 1]);
    /* Balance: no rank exceeds the ideal share by more than one trial. */
    long long total = 0, maxs = 0;
    for (long long k = 0; k < n; ++k) {
        long long s = off[k + 1] - off[k] - lags;
        total += s;
        if (s > maxs) maxs = s;
    }
    for (int r = 0; r < P; ++r) {
        long long load = 0;
        for (long long k = ft[r]; k < ft[r + 1]; ++k) load += off[k + 1] - off[k] - lags;
        CU_ASSERT((double)load <= (double)total / P + (double)maxs);
    }
    /* Pure: same inputs, same plan. */
    CU_ASSERT_EQUAL_FATAL(fr_shard_plan(n, off, lags, P, ft2), FR_OK);
    CU_ASSERT_EQUAL(memcmp(ft, ft2, sizeof(long long) * (size_t)(P + 1)), 0);
}

static void test_shard_plan_equal(void)
{
    long long off[13];
    for (int k = 0; k <= 12; ++k) off[k] = 10LL * k;
    long long ft[5];
    CU_ASSERT_EQUAL_FATAL(fr_shard_plan(12, off, 1, 4, ft), FR_OK);
    for (int r = 0; r <= 4; ++r) CU_ASSERT_EQUAL(ft[r], 3 * r);
    CU_ASSERT_EQUAL_FATAL(fr_shard_plan(4, off, 1, 3, ft), FR_OK); /* 4/3, 8/3 -> 1, 3 */
    CU_ASSERT_EQUAL(ft[1], 1);
    CU_ASSERT_EQUAL(ft[2], 3);
    for (int P = 1; P <= 13; ++P) plan_invariants(12, off, 1, P);
}

static void test_shard_plan_unequal(void)
{
    /* One long trial and many short ones: the long one gets a rank to itself. */
    long long len[8] = {100, 5, 5, 5, 5, 5, 5, 5}, off[9] = {0};
    for (int k = 0; k < 8; ++k) off[k + 1] = off[k] + len[k];
    long long ft[3];
    CU_ASSERT_EQUAL_FATAL(fr_shard_plan(8, off, 2, 2, ft), FR_OK);
    CU_ASSERT_EQUAL(ft[1], 1);
    for (int P = 1; P <= 10; ++P) plan_invariants(8, off, 2, P);
    /* Random lengths. */
    long long off2[41] = {0};
    for (int k = 0; k < 40; ++k) off2[k + 1] = off2[k] + 3 + (long long)((k * 7919) % 37);
    for (int P = 1; P <= 12; ++P) plan_invariants(40, off2, 1, P);
}

static void test_shard_plan_more_ranks(void)
{
    long long off[3] = {0, 10, 30}, ft[6];
    CU_ASSERT_EQUAL_FATAL(fr_shard_plan(2, off, 1, 5, ft), FR_OK);
    int nonempty = 0;
    for (int r = 0; r < 5; ++r) nonempty += ft[r + 1] > ft[r];
    CU_ASSERT_EQUAL(nonempty, 2);
    CU_ASSERT_EQUAL(ft[5], 2);
    plan_invariants(2, off, 1, 5);
    CU_ASSERT_EQUAL(fr_shard_plan(2, off, 1, 0, ft), FR_EINVAL);
}

/* ---- folds ------------------------------------------------------------------ */

static void test_cv_split(void)
{
    enum { NT = 23, F = 5 };
    int cond[NT];
    for (int k = 0; k < NT; ++k) cond[k] = k % 3;
    unsigned char sp[F][NT], again[NT];
    int held[NT] = {0};
    for (int f = 0; f < F; ++f) {
        CU_ASSERT_EQUAL_FATAL(fr_cv_split(NT, cond, F, f, 7, sp[f]), FR_OK);
        int out = 0, out_c[3] = {0};
        for (int k = 0; k < NT; ++k)
            if (!sp[f][k]) {
                held[k]++;
                out++;
                out_c[cond[k]]++;
            }
        /* Folds balanced overall and within each condition (8, 8, 7 trials). */
        CU_ASSERT(out == NT / F || out == NT / F + 1);
        for (int c = 0; c < 3; ++c) CU_ASSERT(out_c[c] >= 1 && out_c[c] <= 2);
        CU_ASSERT_EQUAL_FATAL(fr_cv_split(NT, cond, F, f, 7, again), FR_OK);
        CU_ASSERT_EQUAL(memcmp(sp[f], again, NT), 0);
    }
    for (int k = 0; k < NT; ++k) CU_ASSERT_EQUAL(held[k], 1); /* each trial held out exactly once */
    /* A different seed gives a different assignment. */
    CU_ASSERT_EQUAL_FATAL(fr_cv_split(NT, cond, F, 0, 8, again), FR_OK);
    CU_ASSERT_NOT_EQUAL(memcmp(sp[0], again, NT), 0);
    /* Without conditions; folds == 1; bad arguments. */
    CU_ASSERT_EQUAL_FATAL(fr_cv_split(NT, NULL, F, 2, 7, again), FR_OK);
    CU_ASSERT_EQUAL_FATAL(fr_cv_split(NT, NULL, 1, 0, 7, again), FR_OK);
    for (int k = 0; k < NT; ++k) CU_ASSERT_EQUAL(again[k], 1);
    CU_ASSERT_EQUAL(fr_cv_split(NT, NULL, 5, 5, 7, again), FR_EINVAL);
    CU_ASSERT_EQUAL(fr_cv_split(3, NULL, 5, 0, 7, again), FR_EINVAL);
}

/* ---- synth ---------------------------------------------------------------- */

static fr_err gen(const char *name, const char *sets, fr_synth_data *d, fr_synth_spec *s)
{
    TRY(fr_synth_spec_init(s, name));
    char buf[512];
    snprintf(buf, sizeof buf, "%s", sets);
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) TRY(fr_synth_spec_set(s, tok));
    return fr_synth_generate(s, d);
}

static long file_bytes(const char *path, unsigned char **buf)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)n);
    if (fread(*buf, 1, (size_t)n, f) != (size_t)n) n = -1;
    fclose(f);
    return n;
}

static void test_synth_determinism(void)
{
    const char *names[4] = {"lorenz-thomas", "facrnn", "entangled", "multiregion"};
    const char *dir = fr_test_tmpdir();
    for (int g = 0; g < 4; ++g) {
        fr_synth_spec s;
        fr_synth_data d[3];
        char p[3][512];
        const char *seeds[3] = {"trials=4 bins=30 seed=3", "trials=4 bins=30 seed=3", "trials=4 bins=30 seed=4"};
        for (int i = 0; i < 3; ++i) {
            CU_ASSERT_EQUAL_FATAL(gen(names[g], seeds[i], &d[i], &s), FR_OK);
            snprintf(p[i], sizeof p[i], "%s/det_%s_%d.h5", dir, names[g], i);
            CU_ASSERT_EQUAL_FATAL(fr_synth_write(&s, &d[i], p[i]), FR_OK);
        }
        unsigned char *b0 = NULL, *b1 = NULL, *b2 = NULL;
        long n0 = file_bytes(p[0], &b0), n1 = file_bytes(p[1], &b1), n2 = file_bytes(p[2], &b2);
        CU_ASSERT(n0 > 0);
        CU_ASSERT(n0 == n1 && memcmp(b0, b1, (size_t)n0) == 0); /* same seed: same bytes */
        CU_ASSERT(n0 != n2 || memcmp(b0, b2, (size_t)n0) != 0); /* other seed: different */
        size_t nx = (size_t)d[0].total_bins * (size_t)d[0].N;
        CU_ASSERT_NOT_EQUAL(memcmp(d[0].x, d[2].x, nx * sizeof(double)), 0);
        free(b0);
        free(b1);
        free(b2);
        for (int i = 0; i < 3; ++i) fr_synth_free(&d[i]);
    }
}

static double corr(const double *z, long long R, int K, int a, int b)
{
    double ma = 0, mb = 0, saa = 0, sbb = 0, sab = 0;
    for (long long r = 0; r < R; ++r) {
        ma += z[r * K + a];
        mb += z[r * K + b];
    }
    ma /= (double)R;
    mb /= (double)R;
    for (long long r = 0; r < R; ++r) {
        double x = z[r * K + a] - ma, y = z[r * K + b] - mb;
        saa += x * x;
        sbb += y * y;
        sab += x * y;
    }
    return sab / sqrt(saa * sbb);
}

/* Lag-l autocorrelation of latent dim j within trials. */
static double autocorr(const fr_synth_data *d, int j, int lag)
{
    int K = d->K;
    double num = 0, den = 0, m = 0;
    for (long long r = 0; r < d->total_bins; ++r) m += d->latents[r * K + j];
    m /= (double)d->total_bins;
    for (long long k = 0; k < d->n_trials; ++k)
        for (long long t = d->offsets[k]; t < d->offsets[k + 1]; ++t) {
            double x = d->latents[t * K + j] - m;
            den += x * x;
            if (t + lag < d->offsets[k + 1]) num += x * (d->latents[(t + lag) * K + j] - m);
        }
    return num / den;
}

static void test_synth_facrnn_groups(void)
{
    fr_synth_spec s;
    fr_synth_data d;
    CU_ASSERT_EQUAL_FATAL(gen("facrnn", "groups=[2,2,1] N=25", &d, &s), FR_OK);
    CU_ASSERT_EQUAL(d.K, 5);
    CU_ASSERT_EQUAL(d.total_bins, 4000);
    /* Cross-group correlations small; each latent actually moves. */
    int grp[5] = {0, 0, 1, 1, 2};
    for (int a = 0; a < 5; ++a)
        for (int b = a + 1; b < 5; ++b)
            if (grp[a] != grp[b]) CU_ASSERT(fabs(corr(d.latents, d.total_bins, 5, a, b)) < 0.15);
    /* Oscillation within each group: the 2-D groups rotate with periods 8
     * and 13 bins, so the autocorrelation turns strongly negative near
     * half a period; the 1-D group flips sign every bin. */
    CU_ASSERT(autocorr(&d, 0, 4) < -0.5);
    CU_ASSERT(autocorr(&d, 0, 8) > 0.5);
    CU_ASSERT(autocorr(&d, 2, 6) < -0.3);
    CU_ASSERT(autocorr(&d, 4, 1) < -0.5);
    /* Block structure: A has no entries outside each channel's group. */
    for (int n = 0; n < d.N; ++n)
        for (int k = 0; k < 5; ++k)
            if (grp[k] != d.channel_area[n]) CU_ASSERT_EQUAL(d.A[n * 5 + k], 0.0);
    fr_synth_free(&d);

    /* Coupling makes groups interact: the latent recurrence gains cross terms. */
    CU_ASSERT_EQUAL_FATAL(gen("facrnn", "coupling=0.3 trials=10", &d, &s), FR_OK);
    int cross = 0;
    for (int k = 0; k < 2; ++k)
        for (int n = d.N / 2; n < d.N; ++n) cross += d.B[k * d.N + n] != 0.0;
    CU_ASSERT(cross > 0);
    fr_synth_free(&d);
}

/* B A (the latent recurrence up to the resting slopes) has no zero block
 * for entangled; multiregion records one area per channel block. */
static void test_synth_entangled_multiregion(void)
{
    fr_synth_spec s;
    fr_synth_data d;
    CU_ASSERT_EQUAL_FATAL(gen("entangled", "trials=5", &d, &s), FR_OK);
    CU_ASSERT_EQUAL(d.K, 4);
    CU_ASSERT_EQUAL(s.G, 1);
    int dense = 1;
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
            double m = 0;
            for (int n = 0; n < d.N; ++n) m += d.B[i * d.N + n] * d.A[n * 4 + j];
            if (i != j && fabs(m) < 1e-3) dense = 0;
        }
    CU_ASSERT(dense);
    for (int n = 0; n < d.N; ++n) CU_ASSERT_NOT_EQUAL(d.A[n * 4 + 1], 0.0); /* every channel sees every dim */
    fr_synth_free(&d);

    CU_ASSERT_EQUAL_FATAL(gen("multiregion", "trials=5", &d, &s), FR_OK);
    CU_ASSERT_EQUAL(d.N, 60);
    CU_ASSERT_EQUAL(d.K, 6);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d.channel_area);
    CU_ASSERT_EQUAL(d.channel_area[0], 0);
    CU_ASSERT_EQUAL(d.channel_area[25], 1);
    CU_ASSERT_EQUAL(d.channel_area[59], 2);
    int counts_ok = 1;
    for (long long i = 0; i < d.total_bins * d.N; ++i) counts_ok &= d.x[i] >= 0 && d.x[i] == floor(d.x[i]);
    CU_ASSERT(counts_ok);
    fr_synth_free(&d);
}

static void test_synth_lorenz_thomas(void)
{
    fr_synth_spec s;
    fr_synth_data d;
    CU_ASSERT_EQUAL_FATAL(gen("lorenz-thomas", "", &d, &s), FR_OK);
    CU_ASSERT_EQUAL(d.n_trials, 20);
    CU_ASSERT_EQUAL(d.total_bins, 2000);
    CU_ASSERT_EQUAL(d.N, 20);
    CU_ASSERT_EQUAL(d.K, 6);
    CU_ASSERT_EQUAL(s.G, 2);
    CU_ASSERT_EQUAL(s.groups[0], 3);
    CU_ASSERT_EQUAL(s.groups[1], 3);
    for (int j = 0; j < 6; ++j) {
        double m = 0, v = 0;
        for (long long r = 0; r < d.total_bins; ++r) m += d.latents[r * 6 + j];
        m /= (double)d.total_bins;
        for (long long r = 0; r < d.total_bins; ++r) v += pow(d.latents[r * 6 + j] - m, 2);
        FR_ASSERT_CLOSE(m, 0.0, 0, 1e-10);
        FR_ASSERT_CLOSE(v / (double)d.total_bins, 1.0, 1e-10, 0);
    }
    /* Lorenz and Thomas are independent systems: cross correlations small. */
    for (int a = 0; a < 3; ++a)
        for (int b = 3; b < 6; ++b) CU_ASSERT(fabs(corr(d.latents, d.total_bins, 6, a, b)) < 0.25);
    /* Unit signal variance per channel, so observation noise sets the R^2 ceiling. */
    for (int n = 0; n < d.N; ++n) {
        double m = 0, v = 0;
        for (long long r = 0; r < d.total_bins; ++r) {
            double sig = 0;
            for (int j = 0; j < 6; ++j) sig += d.A[n * 6 + j] * d.latents[r * 6 + j];
            m += sig;
            v += sig * sig;
        }
        m /= (double)d.total_bins;
        FR_ASSERT_CLOSE(v / (double)d.total_bins - m * m, 1.0, 1e-8, 0);
    }
    fr_synth_free(&d);
}

static void test_synth_settings(void)
{
    fr_synth_spec s;
    CU_ASSERT_EQUAL(fr_synth_spec_init(&s, "nope"), FR_EUSAGE);
    CU_ASSERT_EQUAL_FATAL(fr_synth_spec_init(&s, "facrnn"), FR_OK);
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "colour=3"), FR_EUSAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr_error_msg(), "'colour'"));
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "b=0.2"), FR_EUSAGE); /* Thomas key on facrnn */
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "trials=0"), FR_EUSAGE);
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "groups=[2,x]"), FR_EUSAGE);
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "groups=[3,2,1]"), FR_OK);
    CU_ASSERT_EQUAL(s.G, 3);
    CU_ASSERT_EQUAL(s.groups[2], 1);
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "N=5"), FR_OK);
    CU_ASSERT_EQUAL(fr_synth_spec_check(&s), FR_EUSAGE); /* group 0 (3) gets 2 channels */
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "obs=poisson"), FR_OK);
    CU_ASSERT_EQUAL(s.poisson, 1);
}

static void test_synth_poisson_inputs(void)
{
    fr_synth_spec s;
    fr_synth_data d;
    CU_ASSERT_EQUAL_FATAL(gen("facrnn", "obs=poisson inputs=2 lags=3 trials=5", &d, &s), FR_OK);
    CU_ASSERT_EQUAL(d.D, 2);
    CU_ASSERT_PTR_NOT_NULL(d.u);
    CU_ASSERT_PTR_NOT_NULL(d.E);
    double sum = 0;
    int ok = 1;
    for (long long i = 0; i < d.total_bins * d.N; ++i) {
        ok &= d.x[i] >= 0 && d.x[i] == floor(d.x[i]);
        sum += d.x[i];
    }
    CU_ASSERT(ok);
    CU_ASSERT(sum / (double)(d.total_bins * d.N) > 0.5); /* rates near the base rate, not all zero */
    fr_synth_free(&d);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("dataset", NULL, NULL);
    CU_add_test(s, "shard plan, equal trials", test_shard_plan_equal);
    CU_add_test(s, "shard plan, unequal trials", test_shard_plan_unequal);
    CU_add_test(s, "shard plan, more ranks than trials", test_shard_plan_more_ranks);
    CU_add_test(s, "cv split", test_cv_split);
    CU_pSuite t = CU_add_suite("synth", NULL, NULL);
    CU_add_test(t, "determinism", test_synth_determinism);
    CU_add_test(t, "facrnn groups independent and oscillating", test_synth_facrnn_groups);
    CU_add_test(t, "lorenz-thomas shapes and z-scoring", test_synth_lorenz_thomas);
    CU_add_test(t, "entangled dense, multiregion areas", test_synth_entangled_multiregion);
    CU_add_test(t, "settings", test_synth_settings);
    CU_add_test(t, "poisson with inputs and lags", test_synth_poisson_inputs);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
