/* synth: the generators of synthetic data sets with ground truth (pure
 * core: arrays in memory; io/synth_write.c writes them in the input format
 * and cmd/synth.c is the command). Every draw comes from the
 * counter-based RNG (stream FR_STREAM_SYNTH) keyed by global ids (trial,
 * step, channel, parameter index), so a data set is a pure function of the
 * generator, its settings and the seed.
 *
 * The generators, their equations, settings and defaults are documented in
 * docs/synthetic.md; keep that page in step with this file.
 */
#include "facrnn/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/rng.h"
#include "synth_internal.h"

#define PI 3.14159265358979323846

/* RNG tags (the `a` counter word): one per purpose within FR_STREAM_SYNTH. */
enum {
    TAG_LORENZ_IC = 1,
    TAG_THOMAS_IC = 2,
    TAG_A = 3,
    TAG_C = 4,
    TAG_NOISE = 5,
    TAG_Q = 7,
    TAG_COUPLING = 8,
    TAG_V = 9,
    TAG_DRIVE = 10,
    TAG_MU0 = 11,
    TAG_ENC = 12,
    TAG_E = 13,
    TAG_U = 14
};

static double nrm(const fr_synth_spec *s, uint32_t tag, uint64_t id)
{
    return fr_rng_normal(s->seed, FR_STREAM_SYNTH, tag, id);
}

/* ---- settings --------------------------------------------------------------- */

enum { APPLY_LT = 1, APPLY_FR = 2, APPLY_ENT = 4, APPLY_MR = 8, APPLY_SYS = 16, APPLY_ALL = 31 };

static unsigned kind_bit(fr_synth_kind k)
{
    switch (k) {
    case FR_SYNTH_LORENZ_THOMAS: return APPLY_LT;
    case FR_SYNTH_FACRNN: return APPLY_FR;
    case FR_SYNTH_ENTANGLED: return APPLY_ENT;
    case FR_SYNTH_SYSTEMS: return APPLY_SYS;
    default: return APPLY_MR;
    }
}

fr_err fr_synth_spec_init(fr_synth_spec *s, const char *name)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->trials = 40;
    s->bins = 100;
    s->N = 20;
    s->noise = 0.1;
    s->lags = 1;
    s->burn = 50;
    s->gain = 1.3;
    s->rate = 2.0;
    s->leak = 0.1;
    s->b = 0.208;
    s->dt = 0.1;
    s->bin_size_s = 0.02;
    s->G = 2;
    s->groups[0] = s->groups[1] = 2;
    if (!strcmp(name, "lorenz-thomas")) {
        s->kind = FR_SYNTH_LORENZ_THOMAS;
        s->trials = 20;
        s->noise = 0.1;
        s->burn = 100;
        s->bin_size_s = 0.1;
        s->groups[0] = s->groups[1] = 3;
    } else if (!strcmp(name, "facrnn")) {
        s->kind = FR_SYNTH_FACRNN;
    } else if (!strcmp(name, "entangled")) {
        s->kind = FR_SYNTH_ENTANGLED;
        s->G = 1;
        s->groups[0] = 4;
    } else if (!strcmp(name, "multiregion")) {
        s->kind = FR_SYNTH_MULTIREGION;
        s->G = 3;
        s->groups[0] = s->groups[1] = s->groups[2] = 2;
        s->N = 60;
        s->coupling = 0.1;
        s->poisson = 1;
    } else if (!strcmp(name, "systems")) {
        s->kind = FR_SYNTH_SYSTEMS;
        s->trials = 20;
        s->burn = 100;
        s->snr = 4.0;
        s->n_sys = 2;
        s->sys[0] = FR_FAM_VDP;
        s->sys[1] = FR_FAM_ROSSLER;
        s->sys_dim[0] = 2;
        s->sys_dim[1] = 3;
    } else {
        return FR_FAIL(FR_EUSAGE,
                       "unknown synthetic generator '%s' (lorenz-thomas, facrnn, entangled, multiregion, systems)", name);
    }
    return FR_OK;
}

static fr_err parse_ll(const char *key, const char *v, long long lo, long long *out)
{
    char *end;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end) return FR_FAIL(FR_EUSAGE, "--set %s=%s: expected an integer", key, v);
    if (x < lo) return FR_FAIL(FR_EUSAGE, "--set %s=%s: must be >= %lld", key, v, lo);
    *out = x;
    return FR_OK;
}

static fr_err parse_dbl(const char *key, const char *v, double lo, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !isfinite(x)) return FR_FAIL(FR_EUSAGE, "--set %s=%s: expected a number", key, v);
    if (x < lo) return FR_FAIL(FR_EUSAGE, "--set %s=%s: must be >= %g", key, v, lo);
    *out = x;
    return FR_OK;
}

/* "[2,2,1]", "2,2,1" or "2+2+1". */
static fr_err parse_groups(const char *v, fr_synth_spec *s)
{
    const char *p = v;
    int g = 0;
    if (*p == '[') ++p;
    while (*p && *p != ']') {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 1 || x > 1000) return FR_FAIL(FR_EUSAGE, "--set groups=%s: expected a list of sizes >= 1, e.g. [2,2,1]", v);
        if (g == FR_SYNTH_MAX_GROUPS) return FR_FAIL(FR_EUSAGE, "--set groups=%s: more than %d groups", v, FR_SYNTH_MAX_GROUPS);
        s->groups[g++] = (int)x;
        p = end;
        while (*p == ' ') ++p;
        if (*p == ',' || *p == '+') ++p;
        while (*p == ' ') ++p;
    }
    if (g == 0 || (*p == ']' && p[1]) || (v[0] == '[' && *p != ']'))
        return FR_FAIL(FR_EUSAGE, "--set groups=%s: expected a list of sizes >= 1, e.g. [2,2,1]", v);
    s->G = g;
    return FR_OK;
}

fr_err fr_synth_spec_set(fr_synth_spec *s, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) return FR_FAIL(FR_EUSAGE, "--set '%s': expected key=value", kv);
    char key[64];
    size_t kn = (size_t)(eq - kv);
    if (kn >= sizeof key) return FR_FAIL(FR_EUSAGE, "--set '%s': key too long", kv);
    memcpy(key, kv, kn);
    key[kn] = '\0';
    const char *v = eq + 1;
    static const struct {
        const char *key;
        unsigned apply;
    } keys[] = {{"trials", APPLY_ALL}, {"bins", APPLY_ALL},  {"N", APPLY_ALL},      {"noise", APPLY_ALL & ~APPLY_SYS},
                {"seed", APPLY_ALL},   {"obs", APPLY_ALL},   {"rate", APPLY_ALL},   {"burn", APPLY_ALL},
                {"bin_size", APPLY_ALL}, {"b", APPLY_LT},    {"dt", APPLY_LT},      {"leak", APPLY_LT | APPLY_SYS},
                {"groups", APPLY_FR | APPLY_ENT | APPLY_MR}, {"lags", APPLY_FR | APPLY_ENT | APPLY_MR},
                {"inputs", APPLY_FR | APPLY_ENT | APPLY_MR}, {"coupling", APPLY_FR | APPLY_MR | APPLY_SYS},
                {"gain", APPLY_FR | APPLY_ENT | APPLY_MR},   {"enc_noise", APPLY_FR | APPLY_ENT | APPLY_MR},
                {"systems", APPLY_SYS}, {"snr", APPLY_SYS}};
    int found = -1;
    for (int i = 0; i < (int)(sizeof keys / sizeof keys[0]); ++i)
        if (!strcmp(keys[i].key, key)) found = i;
    if (found < 0) return FR_FAIL(FR_EUSAGE, "unknown synth key '%s' (see the synth documentation)", key);
    if (!(keys[found].apply & kind_bit(s->kind)))
        return FR_FAIL(FR_EUSAGE, "synth key '%s' does not apply to generator %s", key, s->name);
    long long ll = 0;
    if (!strcmp(key, "trials")) { TRY(parse_ll(key, v, 1, &s->trials)); }
    else if (!strcmp(key, "bins")) { TRY(parse_ll(key, v, 2, &s->bins)); }
    else if (!strcmp(key, "N")) { TRY(parse_ll(key, v, 1, &ll)); if (ll > 100000) return FR_FAIL(FR_EUSAGE, "--set N=%s: too large", v); s->N = (int)ll; }
    else if (!strcmp(key, "noise")) { TRY(parse_dbl(key, v, 0, &s->noise)); }
    else if (!strcmp(key, "seed")) { TRY(parse_ll(key, v, 0, &ll)); s->seed = (uint64_t)ll; }
    else if (!strcmp(key, "obs")) {
        if (!strcmp(v, "gaussian")) s->poisson = 0;
        else if (!strcmp(v, "poisson")) s->poisson = 1;
        else return FR_FAIL(FR_EUSAGE, "--set obs=%s: expected gaussian or poisson", v);
    }
    else if (!strcmp(key, "rate")) { TRY(parse_dbl(key, v, 1e-6, &s->rate)); }
    else if (!strcmp(key, "burn")) { TRY(parse_ll(key, v, 0, &ll)); s->burn = (int)ll; }
    else if (!strcmp(key, "bin_size")) { TRY(parse_dbl(key, v, 0, &s->bin_size_s)); }
    else if (!strcmp(key, "b")) { TRY(parse_dbl(key, v, 0, &s->b)); }
    else if (!strcmp(key, "dt")) { TRY(parse_dbl(key, v, 1e-6, &s->dt)); }
    else if (!strcmp(key, "leak")) { TRY(parse_dbl(key, v, 0, &s->leak)); }
    else if (!strcmp(key, "groups")) { TRY(parse_groups(v, s)); }
    else if (!strcmp(key, "lags")) { TRY(parse_ll(key, v, 1, &ll)); if (ll > 64) return FR_FAIL(FR_EUSAGE, "--set lags=%s: at most 64", v); s->lags = (int)ll; }
    else if (!strcmp(key, "inputs")) { TRY(parse_ll(key, v, 0, &ll)); if (ll > 1000) return FR_FAIL(FR_EUSAGE, "--set inputs=%s: at most 1000", v); s->D = (int)ll; }
    else if (!strcmp(key, "coupling")) { TRY(parse_dbl(key, v, 0, &s->coupling)); }
    else if (!strcmp(key, "gain")) { TRY(parse_dbl(key, v, 0, &s->gain)); }
    else if (!strcmp(key, "enc_noise")) { TRY(parse_dbl(key, v, 0, &s->enc_noise)); }
    else if (!strcmp(key, "systems")) { TRY(fr_synth_parse_systems(v, s)); }
    else if (!strcmp(key, "snr")) { TRY(parse_dbl(key, v, 1e-6, &s->snr)); }
    return FR_OK;
}

fr_err fr_synth_spec_check(const fr_synth_spec *s)
{
    if (s->kind == FR_SYNTH_LORENZ_THOMAS) {
        if (s->N < 2) return FR_FAIL(FR_EUSAGE, "lorenz-thomas: N = %d, needs at least 2 channels", s->N);
        return FR_OK;
    }
    if (s->kind == FR_SYNTH_SYSTEMS) return fr_synth_systems_check(s);
    if (s->kind == FR_SYNTH_ENTANGLED && s->G != 1)
        return FR_FAIL(FR_EUSAGE, "entangled: groups must have one entry (the rank K), got %d", s->G);
    if (s->burn < s->lags)
        return FR_FAIL(FR_EUSAGE, "burn = %d must be >= lags = %d (the first lags steps are initial conditions)",
                       s->burn, s->lags);
    if (s->N < s->G) return FR_FAIL(FR_EUSAGE, "N = %d channels is fewer than %d groups", s->N, s->G);
    for (int g = 0; g < s->G; ++g) {
        int ng = s->N / s->G + (g < s->N % s->G);
        if (ng < s->groups[g])
            return FR_FAIL(FR_EUSAGE, "N = %d too small: group %d (size %d) gets only %d channels", s->N, g,
                           s->groups[g], ng);
    }
    return FR_OK;
}

/* ---- shared pieces ------------------------------------------------------- */

static double softplus(double x) { return x > 30 ? x : log1p(exp(x)); }
static double softplus_inv(double y) { return y > 30 ? y : log(expm1(y)); }

static double poisson_draw(const fr_synth_spec *s, double lam, uint64_t id)
{
    return fr_rng_poisson(lam, s->seed, FR_STREAM_SYNTH, TAG_NOISE, id);
}

static double observe(const fr_synth_spec *s, double eta, uint64_t id)
{
    if (s->poisson) return poisson_draw(s, softplus(eta), id);
    return eta + s->noise * nrm(s, TAG_NOISE, id);
}

/* Orthonormal columns of an (n, k) matrix, in place (modified Gram-Schmidt). */
static void orthonormalise(double *Q /* (n, k) */, int n, int k)
{
    for (int j = 0; j < k; ++j) {
        for (int i = 0; i < j; ++i) {
            double dot = 0;
            for (int r = 0; r < n; ++r) dot += Q[r * k + i] * Q[r * k + j];
            for (int r = 0; r < n; ++r) Q[r * k + j] -= dot * Q[r * k + i];
        }
        double nn = 0;
        for (int r = 0; r < n; ++r) nn += Q[r * k + j] * Q[r * k + j];
        nn = sqrt(nn);
        for (int r = 0; r < n; ++r) Q[r * k + j] /= nn > 0 ? nn : 1;
    }
}

fr_err fr_synth_alloc_common(const fr_synth_spec *s, int K, fr_synth_data *o)
{
    memset(o, 0, sizeof *o);
    o->n_trials = s->trials;
    o->total_bins = s->trials * s->bins;
    o->N = s->N;
    o->K = K;
    TRY(FR_CALLOC(o->offsets, o->n_trials + 1));
    for (long long k = 0; k <= o->n_trials; ++k) o->offsets[k] = k * s->bins;
    TRY(FR_CALLOC(o->x, o->total_bins * o->N));
    TRY(FR_CALLOC(o->latents, o->total_bins * K));
    TRY(FR_CALLOC(o->A, (size_t)o->N * K));
    TRY(FR_CALLOC(o->c, o->N));
    return FR_OK;
}

/* ---- lorenz-thomas ------------------------------------------------------------ */

static void lorenz_f(const double *v, double *f)
{
    f[0] = 10.0 * (v[1] - v[0]);
    f[1] = v[0] * (28.0 - v[2]) - v[1];
    f[2] = v[0] * v[1] - (8.0 / 3.0) * v[2];
}

static double g_thomas_b;
static void thomas_f(const double *v, double *f)
{
    f[0] = sin(v[1]) - g_thomas_b * v[0];
    f[1] = sin(v[2]) - g_thomas_b * v[1];
    f[2] = sin(v[0]) - g_thomas_b * v[2];
}

static void rk4(void (*f)(const double *, double *), double *v, double h)
{
    double k1[3], k2[3], k3[3], k4[3], t[3];
    f(v, k1);
    for (int i = 0; i < 3; ++i) t[i] = v[i] + 0.5 * h * k1[i];
    f(t, k2);
    for (int i = 0; i < 3; ++i) t[i] = v[i] + 0.5 * h * k2[i];
    f(t, k3);
    for (int i = 0; i < 3; ++i) t[i] = v[i] + h * k3[i];
    f(t, k4);
    for (int i = 0; i < 3; ++i) v[i] += h / 6.0 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
}

static fr_err gen_lorenz_thomas(const fr_synth_spec *s, fr_synth_data *o)
{
    const int K = 6, N = s->N;
    TRY(fr_synth_alloc_common(s, K, o));
    g_thomas_b = s->b;
    const long long S = s->burn + s->bins;
    for (long long k = 0; k < s->trials; ++k) {
        double L[3], T[3];
        for (int i = 0; i < 3; ++i) {
            L[i] = 10.0 * nrm(s, TAG_LORENZ_IC, (uint64_t)(k * 3 + i)) + (i == 2 ? 25.0 : 0.0);
            T[i] = 1.5 * nrm(s, TAG_THOMAS_IC, (uint64_t)(k * 3 + i));
        }
        for (long long t = 0; t < S; ++t) {
            if (t >= s->burn) {
                double *z = o->latents + (k * s->bins + t - s->burn) * K; /* (K) */
                for (int i = 0; i < 3; ++i) {
                    z[i] = L[i];
                    z[3 + i] = T[i];
                }
            }
            for (int sub = 0; sub < 10; ++sub) rk4(lorenz_f, L, s->dt / 10.0);
            rk4(thomas_f, T, s->dt);
        }
    }
    /* z-score each dimension over all recorded bins of all trials. */
    const long long R = o->total_bins;
    for (int j = 0; j < K; ++j) {
        double m = 0, v = 0;
        for (long long r = 0; r < R; ++r) m += o->latents[r * K + j];
        m /= (double)R;
        for (long long r = 0; r < R; ++r) v += pow(o->latents[r * K + j] - m, 2);
        double sd = sqrt(v / (double)R);
        for (long long r = 0; r < R; ++r) o->latents[r * K + j] = (o->latents[r * K + j] - m) / (sd > 0 ? sd : 1);
    }
    /* Block-ish loadings, rows scaled to unit signal variance. */
    TRY(FR_CALLOC(o->channel_area, N));
    for (int n = 0; n < N; ++n) {
        int g = n < N / 2 ? 0 : 1;
        o->channel_area[n] = g;
        for (int j = 0; j < K; ++j) {
            double w = nrm(s, TAG_A, (uint64_t)(n * K + j));
            o->A[n * K + j] = (j / 3 == g) ? w : s->leak * w;
        }
        double m = 0, v = 0;
        for (long long r = 0; r < R; ++r) {
            double sig = 0;
            for (int j = 0; j < K; ++j) sig += o->A[n * K + j] * o->latents[r * K + j];
            m += sig;
            v += sig * sig;
        }
        m /= (double)R;
        double sd = sqrt(fmax(v / (double)R - m * m, 0));
        for (int j = 0; j < K; ++j) o->A[n * K + j] /= sd > 0 ? sd : 1;
        o->c[n] = s->poisson ? softplus_inv(s->rate) + 0.25 * nrm(s, TAG_C, (uint64_t)n)
                             : 0.5 * nrm(s, TAG_C, (uint64_t)n);
    }
    for (long long r = 0; r < R; ++r)
        for (int n = 0; n < N; ++n) {
            double eta = o->c[n];
            for (int j = 0; j < K; ++j) eta += o->A[n * K + j] * o->latents[r * K + j];
            o->x[r * N + n] = observe(s, eta, (uint64_t)(r * N + n));
        }
    return FR_OK;
}

/* ---- FacRNN-process generators (facrnn, entangled, multiregion) ----------- */

/* Expected tanh(x) and its slope with respect to eta at eta = c (the
 * resting point), for the observation model. */
static void rest_moments(const fr_synth_spec *s, double c, double *m, double *slope)
{
    if (!s->poisson) {
        *m = tanh(c);
        *slope = 1 - tanh(c) * tanh(c);
        return;
    }
    double lam = softplus(c), p = exp(-lam), mm = 0, dm = 0;
    long kmax = (long)(lam + 12 * sqrt(lam) + 30);
    for (long k = 0; k <= kmax; ++k) {
        if (k > 0) p *= lam / (double)k;
        mm += p * tanh((double)k);
        dm += p * (tanh((double)k + 1) - tanh((double)k));
    }
    *m = mm;
    *slope = dm / (1 + exp(-c)); /* d lambda / d eta = sigmoid(c) */
}

/* Fill a 2x2 rotation by angle w times gain into J (K, K) at (r, r). */
static void put_rotation(double *J, int K, int r, double w, double gain)
{
    J[r * K + r] = gain * cos(w);
    J[r * K + r + 1] = -gain * sin(w);
    J[(r + 1) * K + r] = gain * sin(w);
    J[(r + 1) * K + r + 1] = gain * cos(w);
}

static fr_err gen_rnn(const fr_synth_spec *s, fr_synth_data *o)
{
    int K = 0, N = s->N, G = s->G, L = s->lags, D = s->D;
    for (int g = 0; g < G; ++g) K += s->groups[g];
    TRY(fr_synth_alloc_common(s, K, o));
    o->D = D;
    o->L = L;
    int dense = s->kind == FR_SYNTH_ENTANGLED;
    int cstart[FR_SYNTH_MAX_GROUPS + 1], kstart[FR_SYNTH_MAX_GROUPS + 1];
    cstart[0] = kstart[0] = 0;
    for (int g = 0; g < G; ++g) {
        cstart[g + 1] = cstart[g] + N / G + (g < N % G);
        kstart[g + 1] = kstart[g] + s->groups[g];
    }
    TRY(FR_CALLOC(o->B, (size_t)K * N));
    TRY(FR_CALLOC(o->d, K));
    TRY(FR_CALLOC(o->psi, L));
    TRY(FR_CALLOC(o->channel_area, N));
    for (int l = 0; l < L; ++l) o->psi[l] = 1.0 / L;

    fr_err rc = FR_OK;
    double *J = NULL, *Q = NULL, *V = NULL, *m = NULL, *slope = NULL, *xs = NULL, *mus = NULL, *h = NULL,
           *z = NULL, *R = NULL;
    const long long S = s->burn + s->bins;
    TRY_GOTO(rc, FR_CALLOC(J, (size_t)K * K), done);
    TRY_GOTO(rc, FR_CALLOC(R, (size_t)K * K), done);
    TRY_GOTO(rc, FR_CALLOC(V, (size_t)K * K), done);
    TRY_GOTO(rc, FR_CALLOC(Q, (size_t)N * K), done);
    TRY_GOTO(rc, FR_CALLOC(m, N), done);
    TRY_GOTO(rc, FR_CALLOC(slope, N), done);
    TRY_GOTO(rc, FR_CALLOC(xs, S * N), done);
    TRY_GOTO(rc, FR_CALLOC(mus, S * K), done);
    TRY_GOTO(rc, FR_CALLOC(h, N), done);
    TRY_GOTO(rc, FR_CALLOC(z, K), done);

    /* Offsets c and the resting-point moments of each channel. */
    for (int n = 0; n < N; ++n) {
        double e = nrm(s, TAG_C, (uint64_t)n);
        o->c[n] = s->poisson ? softplus_inv(s->rate * exp(0.25 * e)) : 0.1 * e;
        rest_moments(s, o->c[n], &m[n], &slope[n]);
    }
    /* J: rotations per group (or a dense rotation for entangled), plus
     * optional cross-group coupling. */
    for (int g = 0; g < G; ++g) {
        int H = s->groups[g], k0 = kstart[g];
        for (int j = 0; j + 1 < H; j += 2)
            put_rotation(R, K, k0 + j, 2 * PI / (dense ? 8.0 : 8.0 + 5.0 * g + 3.0 * (j / 2)), s->gain);
        if (H % 2) R[(k0 + H - 1) * K + k0 + H - 1] = -s->gain;
    }
    if (dense) {
        /* Each rotation pair (and a leftover flip) is driven by the pair
         * before it through a random block of scale 0.6 gain, at the same
         * frequency: a Jordan block, so no invariant complement of the
         * driven plane exists and no basis splits the latents into
         * independent groups. (A drive between different frequencies is
         * removed by the oblique eigenbasis: two independent systems.) */
        for (int i = 2; i < K; ++i)
            for (int j = (i / 2 - 1) * 2; j < (i / 2) * 2; ++j)
                R[i * K + j] = 0.6 * s->gain * nrm(s, TAG_DRIVE, (uint64_t)(i * K + j));
        /* J = V R V^T with V random orthogonal; R uses periods 8, 11, ... */
        for (int i = 0; i < K * K; ++i) V[i] = nrm(s, TAG_V, (uint64_t)i);
        orthonormalise(V, K, K);
        for (int i = 0; i < K; ++i)
            for (int j = 0; j < K; ++j) {
                double acc = 0;
                for (int a = 0; a < K; ++a)
                    for (int b = 0; b < K; ++b) acc += V[i * K + a] * R[a * K + b] * V[j * K + b];
                J[i * K + j] = acc;
            }
    } else {
        memcpy(J, R, sizeof(double) * (size_t)K * K);
        for (int g = 0; g < G; ++g)
            for (int hh = 0; hh < G; ++hh) {
                if (g == hh || s->coupling == 0) continue;
                for (int i = kstart[g]; i < kstart[g + 1]; ++i)
                    for (int j = kstart[hh]; j < kstart[hh + 1]; ++j)
                        J[i * K + j] = s->coupling * nrm(s, TAG_COUPLING, (uint64_t)(i * K + j));
            }
    }
    /* A_g = a_g Q_g on group g's channel block; B = J_{gh} Q_h^T diag(1/slope) / a_h. */
    for (int g = 0; g < G; ++g) {
        int n0 = cstart[g], ng = cstart[g + 1] - n0, H = s->groups[g], k0 = kstart[g];
        double *Qg = Q + (size_t)n0 * K; /* (ng, H) packed, reusing Q's rows */
        for (int i = 0; i < ng * H; ++i) Qg[i] = nrm(s, TAG_Q, ((uint64_t)g << 32) | (uint64_t)i);
        orthonormalise(Qg, ng, H);
        double a = sqrt((double)ng / H);
        for (int i = 0; i < ng; ++i) {
            o->channel_area[n0 + i] = g;
            for (int j = 0; j < H; ++j) o->A[(n0 + i) * K + k0 + j] = a * Qg[i * H + j];
        }
        for (int r = 0; r < K; ++r)
            for (int i = 0; i < ng; ++i) {
                double acc = 0;
                for (int j = 0; j < H; ++j) acc += J[r * K + k0 + j] * Qg[i * H + j];
                o->B[r * N + n0 + i] = acc / (a * slope[n0 + i]);
            }
    }
    for (int r = 0; r < K; ++r) {
        double acc = 0;
        for (int n = 0; n < N; ++n) acc += o->B[r * N + n] * m[n];
        o->d[r] = -acc;
    }
    if (D > 0) {
        TRY_GOTO(rc, FR_CALLOC(o->E, (size_t)N * D), done);
        TRY_GOTO(rc, FR_CALLOC(o->u, o->total_bins * D), done);
        for (int i = 0; i < N * D; ++i) o->E[i] = 0.5 / sqrt((double)D) * nrm(s, TAG_E, (uint64_t)i);
    }

    /* Simulate each trial: L initial steps from random mu, then the RNN. */
    for (long long k = 0; k < s->trials; ++k) {
        for (long long t = 0; t < S; ++t) {
            double *mu = mus + t * K; /* (K) */
            uint64_t step = (uint64_t)(k * S + t);
            if (t < L) {
                for (int j = 0; j < K; ++j) mu[j] = nrm(s, TAG_MU0, step * (uint64_t)K + (uint64_t)j);
            } else {
                for (int n = 0; n < N; ++n) {
                    double acc = 0;
                    for (int l = 1; l <= L; ++l) acc += o->psi[l - 1] * tanh(xs[(t - l) * N + n]);
                    h[n] = acc;
                }
                for (int j = 0; j < K; ++j) {
                    double acc = o->d[j];
                    for (int n = 0; n < N; ++n) acc += o->B[j * N + n] * h[n];
                    mu[j] = acc;
                }
            }
            for (int j = 0; j < K; ++j)
                z[j] = mu[j] + (s->enc_noise > 0 ? s->enc_noise * nrm(s, TAG_ENC, step * (uint64_t)K + (uint64_t)j) : 0);
            long long row = t >= s->burn ? k * s->bins + t - s->burn : -1;
            double *ut = NULL;
            if (D > 0 && row >= 0) {
                ut = o->u + row * D;
                for (int j = 0; j < D; ++j) ut[j] = nrm(s, TAG_U, step * (uint64_t)D + (uint64_t)j);
            }
            for (int n = 0; n < N; ++n) {
                double eta = o->c[n];
                for (int j = 0; j < K; ++j) eta += o->A[n * K + j] * z[j];
                if (ut)
                    for (int j = 0; j < D; ++j) eta += o->E[n * D + j] * ut[j];
                xs[t * N + n] = observe(s, eta, step * (uint64_t)N + (uint64_t)n);
            }
            if (row >= 0) {
                memcpy(o->x + row * N, xs + t * N, sizeof(double) * (size_t)N);
                memcpy(o->latents + row * K, mu, sizeof(double) * (size_t)K);
            }
        }
    }
    if (dense)
        for (int n = 0; n < N; ++n) o->channel_area[n] = 0;
done:
    free(J);
    free(R);
    free(V);
    free(Q);
    free(m);
    free(slope);
    free(xs);
    free(mus);
    free(h);
    free(z);
    return rc;
}

fr_err fr_synth_generate(const fr_synth_spec *s, fr_synth_data *o)
{
    TRY(fr_synth_spec_check(s));
    fr_err rc = s->kind == FR_SYNTH_LORENZ_THOMAS ? gen_lorenz_thomas(s, o)
                : s->kind == FR_SYNTH_SYSTEMS     ? fr_synth_gen_systems(s, o)
                                                  : gen_rnn(s, o);
    if (rc == FR_OK && s->kind != FR_SYNTH_SYSTEMS) {
        o->G = s->G;
        memcpy(o->groups, s->groups, sizeof(int) * (size_t)s->G);
    }
    if (rc != FR_OK) fr_synth_free(o);
    return rc;
}

void fr_synth_free(fr_synth_data *o)
{
    free(o->offsets);
    free(o->x);
    free(o->u);
    free(o->latents);
    free(o->A);
    free(o->B);
    free(o->c);
    free(o->d);
    free(o->E);
    free(o->psi);
    free(o->channel_area);
    memset(o, 0, sizeof *o);
}

