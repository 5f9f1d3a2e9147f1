/* test_synth_families: the `systems` generator (core/synth_families.c).
 * Every family gives finite, non-degenerate data with dynamics (or none, for
 * the noise null); /truth's partition is the one requested; a coupled
 * chain's driven system really depends on its driver (its next state is
 * predicted better with the driver's present state, and the driver is
 * untouched), while an independent combination shows no such gain; the SNR
 * key sets the per-channel SNR it promises; a seed fixes every number. */
#include <stdlib.h>
#include <string.h>

#include "facrnn/coupling.h"
#include "facrnn/synth.h"
#include "testlib.h"

static void make(fr_synth_spec *s, const char *systems, double coupling, int poisson, long long trials)
{
    char kv[128];
    CU_ASSERT_FATAL(fr_synth_spec_init(s, "systems") == FR_OK);
    snprintf(kv, sizeof kv, "systems=%s", systems);
    CU_ASSERT_FATAL(fr_synth_spec_set(s, kv) == FR_OK);
    snprintf(kv, sizeof kv, "coupling=%g", coupling);
    CU_ASSERT_FATAL(fr_synth_spec_set(s, kv) == FR_OK);
    CU_ASSERT_FATAL(fr_synth_spec_set(s, poisson ? "obs=poisson" : "obs=gaussian") == FR_OK);
    snprintf(kv, sizeof kv, "trials=%lld", trials);
    CU_ASSERT_FATAL(fr_synth_spec_set(s, kv) == FR_OK);
    CU_ASSERT_FATAL(fr_synth_spec_set(s, "N=12") == FR_OK);
}

/* Mean lag-1 autocorrelation of the latents over trials and dimensions. */
static double lag1(const fr_synth_data *d)
{
    double acc = 0;
    for (int j = 0; j < d->K; ++j) {
        double num = 0, den = 0;
        for (long long k = 0; k < d->n_trials; ++k)
            for (long long r = d->offsets[k]; r < d->offsets[k + 1]; ++r) {
                double z = d->latents[r * d->K + j];
                den += z * z;
                if (r + 1 < d->offsets[k + 1]) num += z * d->latents[(r + 1) * d->K + j];
            }
        acc += num / den;
    }
    return acc / d->K;
}

/* Held-out dynamical coupling of each true sub-system on the true latents
 * (odd trials held out): how much the other systems' present state improves
 * the prediction of a system's next state. */
static void true_coupling(const fr_synth_spec *s, const fr_synth_data *d, double *c_group, double *c_max)
{
    unsigned char *is_train = calloc((size_t)d->n_trials, 1);
    for (long long k = 0; k < d->n_trials; ++k) is_train[k] = k % 2 == 0;
    CU_ASSERT_FATAL(fr_coupling_ref(d->K, 1, 1, s->n_sys, s->sys_dim, d->n_trials, d->offsets, is_train, d->latents,
                                    c_group, c_max, NULL) == FR_OK);
    free(is_train);
}

static void test_each_family(void)
{
    static const char *fams[] = {"vdp", "rossler", "hopf", "ring", "line", "damped", "l96", "noise", "l96:6", "noise:2"};
    static const int dims[] = {2, 3, 2, 2, 1, 2, 5, 3, 6, 2};
    for (int i = 0; i < (int)(sizeof fams / sizeof fams[0]); ++i)
        for (int pois = 0; pois < 2; ++pois) {
            fr_synth_spec s;
            fr_synth_data d;
            make(&s, fams[i], 0, pois, 8);
            CU_ASSERT_FATAL(fr_synth_generate(&s, &d) == FR_OK);
            CU_ASSERT_EQUAL(d.K, dims[i]);
            CU_ASSERT_EQUAL(d.G, 1);
            CU_ASSERT_EQUAL(d.groups[0], dims[i]);
            int noise = !strncmp(fams[i], "noise", 5);
            CU_ASSERT_STRING_EQUAL(d.truth_kind, noise ? "noise" : "single");
            /* Finite data; every channel varies. */
            int finite = 1;
            for (long long r = 0; r < d.total_bins * d.N; ++r) finite &= isfinite(d.x[r]);
            CU_ASSERT(finite);
            for (int n = 0; n < d.N; ++n) {
                double m = 0, q = 0;
                for (long long r = 0; r < d.total_bins; ++r) m += d.x[r * d.N + n];
                m /= (double)d.total_bins;
                for (long long r = 0; r < d.total_bins; ++r) q += pow(d.x[r * d.N + n] - m, 2);
                CU_ASSERT(q / (double)d.total_bins > 0.1);
                int nonneg = 1;
                for (long long r = 0; r < d.total_bins; ++r) nonneg &= d.x[r * d.N + n] >= 0;
                CU_ASSERT(!pois || nonneg);
            }
            /* Latents: z-scored, and smooth in time for a dynamical
             * system, white for the noise null. */
            double ac = lag1(&d);
            int ok = noise ? fabs(ac) < 0.1 : ac > 0.7;
            CU_ASSERT(ok);
            if (!ok) printf("\n%s: lag-1 autocorrelation %.3f\n", fams[i], ac);
            /* Latent dimensions are not degenerate copies of each other. */
            for (int a = 0; a < d.K; ++a)
                for (int b = a + 1; b < d.K; ++b) {
                    double q = 0;
                    for (long long r = 0; r < d.total_bins; ++r) q += d.latents[r * d.K + a] * d.latents[r * d.K + b];
                    CU_ASSERT(fabs(q / (double)d.total_bins) < 0.99);
                }
            fr_synth_free(&d);
        }
}

static void test_partitions(void)
{
    static const struct {
        const char *systems;
        int G, groups[3];
    } cases[] = {{"[vdp,line]", 2, {2, 1}},        {"[hopf,damped]", 2, {2, 2}},     {"[rossler,ring]", 2, {3, 2}},
                 {"[vdp,hopf,damped]", 3, {2, 2, 2}}, {"rossler+line+line", 3, {3, 1, 1}}};
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); ++i) {
        fr_synth_spec s;
        fr_synth_data d;
        make(&s, cases[i].systems, 0, 0, 6);
        CU_ASSERT_FATAL(fr_synth_generate(&s, &d) == FR_OK);
        CU_ASSERT_EQUAL(d.G, cases[i].G);
        int K = 0;
        for (int g = 0; g < cases[i].G; ++g) {
            CU_ASSERT_EQUAL(d.groups[g], cases[i].groups[g]);
            K += cases[i].groups[g];
        }
        CU_ASSERT_EQUAL(d.K, K);
        CU_ASSERT_STRING_EQUAL(d.truth_kind, "independent");
        /* Channels come in one contiguous block per system. */
        for (int n = 1; n < d.N; ++n) CU_ASSERT(d.channel_area[n] >= d.channel_area[n - 1]);
        CU_ASSERT_EQUAL(d.channel_area[d.N - 1], cases[i].G - 1);
        fr_synth_free(&d);
        /* Coupled: one merged group of all the latents. */
        make(&s, cases[i].systems, 0.5, 0, 6);
        CU_ASSERT_FATAL(fr_synth_generate(&s, &d) == FR_OK);
        CU_ASSERT_EQUAL(d.G, 1);
        CU_ASSERT_EQUAL(d.groups[0], K);
        CU_ASSERT_STRING_EQUAL(d.truth_kind, "coupled");
        fr_synth_free(&d);
    }
}

/* A chain driver -> driven at coupling 1.5 (the selection grid's): with coupling the driven system's next state is
 * predicted better from the driver's present; without, it is not. The
 * driver's own trajectory is the same either way (the drive is one-way). */
static void test_coupled_really_coupled(void)
{
    static const char *pairs[] = {"[vdp,hopf]", "[rossler,damped]", "[damped,line]", "[hopf,ring]", "[l96:4,vdp]",
                                  "[rossler,ring]"};
    for (int i = 0; i < (int)(sizeof pairs / sizeof pairs[0]); ++i) {
        fr_synth_spec s0, s1;
        fr_synth_data d0, d1;
        make(&s0, pairs[i], 0, 0, 40);
        make(&s1, pairs[i], 1.5, 0, 40);
        CU_ASSERT_FATAL(fr_synth_generate(&s0, &d0) == FR_OK);
        CU_ASSERT_FATAL(fr_synth_generate(&s1, &d1) == FR_OK);
        double c0[2], c1[2], m0, m1;
        true_coupling(&s0, &d0, c0, &m0);
        true_coupling(&s1, &d1, c1, &m1);
        printf("\n%s: coupling of the driven system %.3f independent, %.3f coupled; driver %.3f, %.3f", pairs[i],
               c0[1], c1[1], c0[0], c1[0]);
        CU_ASSERT(c0[1] < 0.05);
        CU_ASSERT(c1[1] > 0.15);
        CU_ASSERT(c1[1] > c0[1] + 0.15);
        /* Driver untouched, driven changed. */
        int k0 = s0.sys_dim[0], same = 1, differ = 0;
        for (long long r = 0; r < d0.total_bins; ++r) {
            for (int j = 0; j < k0; ++j) same &= d0.latents[r * d0.K + j] == d1.latents[r * d1.K + j];
            for (int j = k0; j < d0.K; ++j) differ |= fabs(d0.latents[r * d0.K + j] - d1.latents[r * d1.K + j]) > 0.1;
        }
        CU_ASSERT(same);
        CU_ASSERT(differ);
        fr_synth_free(&d0);
        fr_synth_free(&d1);
    }
}

/* snr: Gaussian noise variance 1/snr against unit signal variance; Poisson
 * Var(rate) / E(rate) = snr for every channel. */
static void test_snr(void)
{
    for (int pois = 0; pois < 2; ++pois) {
        fr_synth_spec s;
        fr_synth_data d;
        make(&s, "[vdp,rossler]", 0, pois, 30);
        CU_ASSERT_FATAL(fr_synth_spec_set(&s, "snr=0.5") == FR_OK);
        CU_ASSERT_FATAL(fr_synth_generate(&s, &d) == FR_OK);
        const long long R = d.total_bins;
        for (int n = 0; n < d.N; ++n) {
            double sm = 0, sq = 0, nq = 0, lm = 0, lq = 0;
            for (long long r = 0; r < R; ++r) {
                double eta = d.c[n];
                for (int j = 0; j < d.K; ++j) eta += d.A[n * d.K + j] * d.latents[r * d.K + j];
                sm += eta - d.c[n];
                sq += pow(eta - d.c[n], 2);
                nq += pow(d.x[r * d.N + n] - eta, 2);
                double lam = eta > 30 ? eta : log1p(exp(eta));
                lm += lam;
                lq += lam * lam;
            }
            if (!pois) {
                FR_ASSERT_CLOSE(sq / (double)R - pow(sm / (double)R, 2), 1.0, 1e-9, 0);
                FR_ASSERT_CLOSE(nq / (double)R, 1 / 0.5, 0.1, 0);
            } else {
                lm /= (double)R;
                FR_ASSERT_CLOSE((lq / (double)R - lm * lm) / lm, 0.5, 1e-6, 0);
            }
        }
        fr_synth_free(&d);
    }
}

static void test_deterministic(void)
{
    fr_synth_spec s;
    fr_synth_data a, b, c;
    make(&s, "[hopf,line,damped]", 0.3, 1, 5);
    CU_ASSERT_FATAL(fr_synth_generate(&s, &a) == FR_OK);
    CU_ASSERT_FATAL(fr_synth_generate(&s, &b) == FR_OK);
    s.seed = 1;
    CU_ASSERT_FATAL(fr_synth_generate(&s, &c) == FR_OK);
    size_t nx = (size_t)(a.total_bins * a.N), nz = (size_t)(a.total_bins * a.K);
    CU_ASSERT(!memcmp(a.x, b.x, nx * sizeof(double)));
    CU_ASSERT(!memcmp(a.latents, b.latents, nz * sizeof(double)));
    CU_ASSERT(!memcmp(a.A, b.A, (size_t)(a.N * a.K) * sizeof(double)));
    CU_ASSERT(memcmp(a.latents, c.latents, nz * sizeof(double)) != 0);
    fr_synth_free(&a);
    fr_synth_free(&b);
    fr_synth_free(&c);
}

static void test_bad_settings(void)
{
    fr_synth_spec s;
    CU_ASSERT_FATAL(fr_synth_spec_init(&s, "systems") == FR_OK);
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "systems=[vdp,lorenz]"), FR_EUSAGE);
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "systems=[vdp:3]"), FR_EUSAGE);
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "systems=[l96:3]"), FR_EUSAGE);
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "systems=[]"), FR_EUSAGE);
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "noise=0.1"), FR_EUSAGE);
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "snr=0"), FR_EUSAGE);
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "systems=[noise,vdp]"), FR_OK);
    CU_ASSERT_EQUAL(fr_synth_spec_check(&s), FR_EUSAGE);
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "systems=[vdp,vdp,vdp]"), FR_OK);
    CU_ASSERT_EQUAL(fr_synth_spec_set(&s, "N=2"), FR_OK);
    CU_ASSERT_EQUAL(fr_synth_spec_check(&s), FR_EUSAGE);
}

static void reg(void)
{
    CU_pSuite su = CU_add_suite("synth_families", NULL, NULL);
    CU_add_test(su, "each family: finite, non-degenerate, its truth", test_each_family);
    CU_add_test(su, "partitions 2+1 2+2 3+2 2+2+2 3+1+1, and coupled", test_partitions);
    CU_add_test(su, "coupled chains are coupled, independent ones are not", test_coupled_really_coupled);
    CU_add_test(su, "snr sets the per-channel SNR", test_snr);
    CU_add_test(su, "deterministic for a seed", test_deterministic);
    CU_add_test(su, "bad settings", test_bad_settings);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
