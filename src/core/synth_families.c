/* synth_families: the `systems` generator, ground truths built from
 * dynamical families that were not used to design or tune the selection
 * rule (Van der Pol, Rossler, Hopf normal form, ring attractor, line
 * attractor, damped oscillator, Lorenz-96, and latent noise without
 * dynamics). Sub-systems are combined into a partition, optionally chained
 * so that each drives the next (one merged group), and read out through
 * random loadings with a controlled per-channel SNR. Pure core: arrays in
 * memory, every draw from the counter-based RNG keyed by global ids (tags in
 * synth_internal.h). The equations and keys are documented in
 * docs/synthetic.md; keep that page in step with this file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/rng.h"
#include "synth_internal.h"

#define PI 3.14159265358979323846

/* Integration substeps per bin (RK4 in bin time, then Euler-Maruyama noise). */
enum { SUBSTEPS = 20 };
/* Drive of a coupled chain: per bin, the driven system's first coordinate
 * moves by about coupling x DRIVE_RATE x its own scale per driver std. */
#define DRIVE_RATE 0.25

/* One row per family: the table every parser, check and printer walks. */
static const struct {
    const char *name;
    int dim, dim_min, dim_max; /* default latent dimension and its range */
    double tau;                /* natural time units per bin */
    double center, scale;      /* nominal mean and std of coordinate 0, measured (drive normalisation) */
    int drive;                 /* the coordinate a driver pushes (a forced oscillator's velocity) */
} families[FR_FAM_COUNT] = {
    [FR_FAM_VDP] = {"vdp", 2, 2, 2, 0.25, 0.0, 1.4, 1},
    [FR_FAM_ROSSLER] = {"rossler", 3, 3, 3, 0.25, 0.0, 5.0, 1},
    [FR_FAM_HOPF] = {"hopf", 2, 2, 2, 1.0, 0.0, 0.22, 0},
    [FR_FAM_RING] = {"ring", 2, 2, 2, 1.0, 0.0, 0.7, 0},
    [FR_FAM_LINE] = {"line", 1, 1, 1, 1.0, 0.0, 2.0, 0},
    [FR_FAM_DAMPED] = {"damped", 2, 2, 2, 1.0, 0.0, 0.7, 1},
    [FR_FAM_L96] = {"l96", 5, 4, 64, 0.05, 2.3, 3.5, 0},
    [FR_FAM_NOISE] = {"noise", 3, 1, 64, 1.0, 0.0, 1.0, 0},
};

const char *fr_synth_family_name(int fam)
{
    return fam >= 0 && fam < FR_FAM_COUNT ? families[fam].name : "?";
}

int fr_synth_family_find(const char *name)
{
    for (int f = 0; f < FR_FAM_COUNT; ++f)
        if (!strcmp(families[f].name, name)) return f;
    return -1;
}

const char *fr_synth_truth_kind_name(fr_synth_truth_kind k)
{
    static const char *names[] = {"independent", "coupled", "single", "noise"};
    return names[k];
}

fr_synth_truth_kind fr_synth_systems_truth(const fr_synth_spec *s, int *G, int *groups)
{
    int K = 0;
    for (int i = 0; i < s->n_sys; ++i) K += s->sys_dim[i];
    fr_synth_truth_kind kind = FR_TRUTH_INDEPENDENT;
    if (s->n_sys == 1 && s->sys[0] == FR_FAM_NOISE) kind = FR_TRUTH_NOISE;
    else if (s->n_sys == 1) kind = FR_TRUTH_SINGLE;
    else if (s->coupling > 0) kind = FR_TRUTH_COUPLED;
    if (kind == FR_TRUTH_INDEPENDENT) {
        *G = s->n_sys;
        for (int i = 0; i < s->n_sys; ++i) groups[i] = s->sys_dim[i];
    } else {
        *G = 1;
        groups[0] = K;
    }
    return kind;
}

/* ---- settings --------------------------------------------------------------- */

fr_err fr_synth_parse_systems(const char *v, fr_synth_spec *s)
{
    const char *p = v;
    int n = 0;
    if (*p == '[') ++p;
    while (*p && *p != ']') {
        char tok[32];
        size_t k = 0;
        while (*p && *p != ',' && *p != '+' && *p != ']' && *p != ' ') {
            if (k + 1 >= sizeof tok) return FR_FAIL(FR_EUSAGE, "--set systems=%s: name too long", v);
            tok[k++] = *p++;
        }
        tok[k] = '\0';
        char *colon = strchr(tok, ':');
        long dim = -1;
        if (colon) {
            char *end;
            *colon = '\0';
            dim = strtol(colon + 1, &end, 10);
            if (end == colon + 1 || *end) return FR_FAIL(FR_EUSAGE, "--set systems=%s: bad dimension in '%s:%s'", v, tok, colon + 1);
        }
        int f = fr_synth_family_find(tok);
        if (f < 0)
            return FR_FAIL(FR_EUSAGE,
                           "--set systems=%s: unknown family '%s' (vdp, rossler, hopf, ring, line, damped, l96, noise)",
                           v, tok);
        if (dim < 0) dim = families[f].dim;
        if (dim < families[f].dim_min || dim > families[f].dim_max) {
            if (families[f].dim_min == families[f].dim_max)
                return FR_FAIL(FR_EUSAGE, "--set systems=%s: %s has dimension %d, not %ld", v, tok, families[f].dim, dim);
            return FR_FAIL(FR_EUSAGE, "--set systems=%s: %s dimension %ld outside %d..%d", v, tok, dim,
                           families[f].dim_min, families[f].dim_max);
        }
        if (n == FR_SYNTH_MAX_GROUPS) return FR_FAIL(FR_EUSAGE, "--set systems=%s: more than %d systems", v, FR_SYNTH_MAX_GROUPS);
        s->sys[n] = f;
        s->sys_dim[n] = (int)dim;
        ++n;
        while (*p == ' ') ++p;
        if (*p == ',' || *p == '+') ++p;
        while (*p == ' ') ++p;
    }
    if (n == 0 || (*p == ']' && p[1]) || (v[0] == '[' && *p != ']'))
        return FR_FAIL(FR_EUSAGE, "--set systems=%s: expected a list of families, e.g. [vdp,rossler]", v);
    s->n_sys = n;
    return FR_OK;
}

fr_err fr_synth_systems_check(const fr_synth_spec *s)
{
    int K = 0;
    for (int i = 0; i < s->n_sys; ++i) {
        K += s->sys_dim[i];
        if (s->sys[i] == FR_FAM_NOISE && s->n_sys > 1)
            return FR_FAIL(FR_EUSAGE, "systems: 'noise' is a null on its own; it cannot be combined with other systems");
    }
    if (K > 256) return FR_FAIL(FR_EUSAGE, "systems: %d latents in all, at most 256", K);
    if (s->N < s->n_sys)
        return FR_FAIL(FR_EUSAGE, "systems: N = %d channels is fewer than %d systems", s->N, s->n_sys);
    return FR_OK;
}

/* ---- dynamics ------------------------------------------------------------------ */

typedef struct {
    int fam, k0, dim;
    double p[2];  /* per-system parameters (see sys_params) */
    double sigma; /* process-noise std per sqrt(bin) on the noisy coordinates */
} sys_t;

static double unif(const fr_synth_spec *s, uint32_t tag, uint64_t id)
{
    return fr_rng_uniform(s->seed, FR_STREAM_SYNTH, tag, id);
}

static double nrm(const fr_synth_spec *s, uint32_t tag, uint64_t id)
{
    return fr_rng_normal(s->seed, FR_STREAM_SYNTH, tag, id);
}

/* Parameters drawn once per system, so two copies of a family differ. */
static void sys_params(const fr_synth_spec *s, int i, sys_t *y)
{
    uint64_t id = (uint64_t)i * 16;
    double u0 = unif(s, FR_SYNTH_TAG_SYS_PARAM, id), u1 = unif(s, FR_SYNTH_TAG_SYS_PARAM, id + 1);
    y->sigma = 0;
    switch (y->fam) {
    case FR_FAM_VDP: y->p[0] = 1.0 + u0; break;                           /* mu in [1, 2] */
    case FR_FAM_ROSSLER: y->p[0] = 5.7; break;                            /* c (a = b = 0.2) */
    case FR_FAM_HOPF: y->p[0] = 2 * PI / (12 + 18 * u0); y->sigma = 0.05; break; /* omega: period 12-30 bins */
    case FR_FAM_RING: y->p[0] = 0.2; y->sigma = 0.1; break;               /* radial relaxation rate */
    case FR_FAM_LINE: y->p[0] = 0.005; y->p[1] = 0.1; break;              /* leak, pulse probability per bin */
    case FR_FAM_DAMPED:
        y->p[0] = 2 * PI / (10 + 15 * u0); /* omega: period 10-25 bins */
        y->p[1] = 0.05 + 0.15 * u1;        /* damping ratio */
        y->sigma = 0.1;
        break;
    case FR_FAM_L96: y->p[0] = 8.0; break; /* forcing F */
    default: break;
    }
}

/* Vector field of one system in its natural time (multiplied by tau by the
 * caller): v and f are the system's own coordinates. */
static void sys_field(const sys_t *y, const double *v, double *f)
{
    switch (y->fam) {
    case FR_FAM_VDP:
        f[0] = v[1];
        f[1] = y->p[0] * (1 - v[0] * v[0]) * v[1] - v[0];
        break;
    case FR_FAM_ROSSLER:
        f[0] = -v[1] - v[2];
        f[1] = v[0] + 0.2 * v[1];
        f[2] = 0.2 + v[2] * (v[0] - y->p[0]);
        break;
    case FR_FAM_HOPF: {
        double r2 = v[0] * v[0] + v[1] * v[1], lam = 0.1, w = y->p[0];
        f[0] = lam * v[0] - w * v[1] - r2 * v[0];
        f[1] = w * v[0] + lam * v[1] - r2 * v[1];
        break;
    }
    case FR_FAM_RING: {
        double r2 = v[0] * v[0] + v[1] * v[1];
        f[0] = y->p[0] * v[0] * (1 - r2);
        f[1] = y->p[0] * v[1] * (1 - r2);
        break;
    }
    case FR_FAM_LINE: f[0] = -y->p[0] * v[0]; break;
    case FR_FAM_DAMPED:
        f[0] = v[1];
        f[1] = -y->p[0] * y->p[0] * v[0] - 2 * y->p[1] * y->p[0] * v[1];
        break;
    case FR_FAM_L96: {
        int D = y->dim;
        for (int i = 0; i < D; ++i)
            f[i] = (v[(i + 1) % D] - v[(i + D - 2) % D]) * v[(i + D - 1) % D] - v[i] + y->p[0];
        break;
    }
    default:
        for (int i = 0; i < y->dim; ++i) f[i] = 0;
        break;
    }
}

/* The joint field in bin time: every system's own field, plus the drive of
 * system i by system i-1 in a coupled chain. */
static void joint_field(const sys_t *sy, int n, double coupling, const double *v, double *f)
{
    for (int i = 0; i < n; ++i) {
        const sys_t *y = sy + i;
        sys_field(y, v + y->k0, f + y->k0);
        for (int j = 0; j < y->dim; ++j) f[y->k0 + j] *= families[y->fam].tau;
        if (i > 0 && coupling > 0) {
            const sys_t *d = sy + i - 1;
            double zd = (v[d->k0] - families[d->fam].center) / families[d->fam].scale;
            f[y->k0 + families[y->fam].drive] += coupling * DRIVE_RATE * families[y->fam].scale * zd;
        }
    }
}

static void initial_state(const fr_synth_spec *s, const sys_t *y, long long trial, int K, double *v)
{
    for (int j = 0; j < y->dim; ++j) {
        double e = nrm(s, FR_SYNTH_TAG_SYS_IC, (uint64_t)(trial * K + y->k0 + j));
        switch (y->fam) {
        case FR_FAM_VDP: v[j] = 2.0 * e; break;
        case FR_FAM_ROSSLER: v[j] = j < 2 ? 3.0 * e : 0.5 * fabs(e); break;
        case FR_FAM_L96: v[j] = y->p[0] + e; break;
        case FR_FAM_HOPF: v[j] = 0.3 * e; break;
        default: v[j] = 0.5 * e; break;
        }
    }
}

/* ---- observations ---------------------------------------------------------- */

static double softplus(double x) { return x > 30 ? x : log1p(exp(x)); }
static double softplus_inv(double y) { return y > 30 ? y : log(expm1(y)); }

/* Var(lambda) / E(lambda) of lambda = softplus(c + g sig) over R values. */
static double poisson_snr(const double *sig, long long R, double c, double g)
{
    double m = 0, q = 0;
    for (long long r = 0; r < R; ++r) {
        double l = softplus(c + g * sig[r]);
        m += l;
        q += l * l;
    }
    m /= (double)R;
    return m > 0 ? fmax(q / (double)R - m * m, 0) / m : 0;
}

/* Gain g with poisson_snr = snr (bisection; the ratio grows with g). */
static double poisson_gain(const double *sig, long long R, double c, double snr)
{
    double lo = 0, hi = 1;
    while (poisson_snr(sig, R, c, hi) < snr && hi < 1e6) hi *= 2;
    for (int it = 0; it < 60; ++it) {
        double mid = 0.5 * (lo + hi);
        if (poisson_snr(sig, R, c, mid) < snr) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* ---- the generator --------------------------------------------------------- */

fr_err fr_synth_gen_systems(const fr_synth_spec *s, fr_synth_data *o)
{
    TRY(fr_synth_systems_check(s));
    const int n = s->n_sys, N = s->N;
    sys_t sy[FR_SYNTH_MAX_GROUPS];
    int K = 0;
    int div_sys = -1;
    for (int i = 0; i < n; ++i) {
        sy[i].fam = s->sys[i];
        sy[i].dim = s->sys_dim[i];
        sy[i].k0 = K;
        K += sy[i].dim;
        sys_params(s, i, &sy[i]);
    }
    TRY(fr_synth_alloc_common(s, K, o));
    o->truth_kind = fr_synth_truth_kind_name(fr_synth_systems_truth(s, &o->G, o->groups));
    const int is_noise = s->sys[0] == FR_FAM_NOISE;
    const long long S = s->burn + s->bins, R = o->total_bins;
    const double h = 1.0 / SUBSTEPS, sqh = sqrt(h);
    double v[256], k1[256], k2[256], k3[256], k4[256], tmp[256];

    for (long long k = 0; k < s->trials; ++k) {
        for (int i = 0; i < n; ++i) initial_state(s, &sy[i], k, K, v + sy[i].k0);
        for (long long t = 0; t < S; ++t) {
            uint64_t step = (uint64_t)(k * S + t);
            if (is_noise) {
                for (int j = 0; j < K; ++j) v[j] = nrm(s, FR_SYNTH_TAG_SYS_W, step * (uint64_t)K + (uint64_t)j);
            }
            if (t >= s->burn) memcpy(o->latents + (k * s->bins + t - s->burn) * K, v, sizeof(double) * (size_t)K);
            if (is_noise) continue;
            /* Input pulses of the line attractors, at the start of the bin. */
            for (int i = 0; i < n; ++i)
                if (sy[i].fam == FR_FAM_LINE) {
                    uint64_t id = step * (uint64_t)K + (uint64_t)sy[i].k0;
                    if (unif(s, FR_SYNTH_TAG_SYS_PULSE, 2 * id) < sy[i].p[1])
                        v[sy[i].k0] += nrm(s, FR_SYNTH_TAG_SYS_PULSE, 2 * id + 1);
                }
            for (int sub = 0; sub < SUBSTEPS; ++sub) {
                joint_field(sy, n, s->coupling, v, k1);
                for (int j = 0; j < K; ++j) tmp[j] = v[j] + 0.5 * h * k1[j];
                joint_field(sy, n, s->coupling, tmp, k2);
                for (int j = 0; j < K; ++j) tmp[j] = v[j] + 0.5 * h * k2[j];
                joint_field(sy, n, s->coupling, tmp, k3);
                for (int j = 0; j < K; ++j) tmp[j] = v[j] + h * k3[j];
                joint_field(sy, n, s->coupling, tmp, k4);
                for (int j = 0; j < K; ++j) v[j] += h / 6.0 * (k1[j] + 2 * k2[j] + 2 * k3[j] + k4[j]);
                for (int i = 0; i < n; ++i) {
                    if (sy[i].sigma == 0) continue;
                    /* Noise on every coordinate, except the damped oscillator's position. */
                    int j0 = sy[i].fam == FR_FAM_DAMPED ? 1 : 0;
                    for (int j = sy[i].k0 + j0; j < sy[i].k0 + sy[i].dim; ++j) {
                        uint64_t id = (step * SUBSTEPS + (uint64_t)sub) * (uint64_t)K + (uint64_t)j;
                        v[j] += sy[i].sigma * sqh * nrm(s, FR_SYNTH_TAG_SYS_W, id);
                    }
                }
            }
            for (int j = 0; j < K; ++j)
                if (!isfinite(v[j]) || fabs(v[j]) > 1e6) {
                    for (int i = 0; i < n; ++i)
                        if (j >= sy[i].k0 && j < sy[i].k0 + sy[i].dim) div_sys = i;
                    return FR_FAIL(FR_ENUMERIC, "synth systems: system %d (%s) diverged in trial %lld, bin %lld",
                                   div_sys, fr_synth_family_name(s->sys[div_sys]), k, t);
                }
        }
    }
    /* z-score each latent over all recorded bins of all trials. */
    for (int j = 0; j < K; ++j) {
        double m = 0, q = 0;
        for (long long r = 0; r < R; ++r) m += o->latents[r * K + j];
        m /= (double)R;
        for (long long r = 0; r < R; ++r) q += pow(o->latents[r * K + j] - m, 2);
        double sd = sqrt(q / (double)R);
        if (!(sd > 1e-12))
            return FR_FAIL(FR_ENUMERIC, "synth systems: latent %d is constant (a degenerate system)", j);
        for (long long r = 0; r < R; ++r) o->latents[r * K + j] = (o->latents[r * K + j] - m) / sd;
    }
    /* Loadings: channels in contiguous blocks, one per system (one block for
     * a single system or noise); a channel loads N(0, 1) on its own system's
     * latents and leak x N(0, 1) on the others'. */
    double *sig = NULL;
    TRY(FR_CALLOC(o->channel_area, N));
    TRY(FR_CALLOC(sig, R));
    int sys_of[256];
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < sy[i].dim; ++j) sys_of[sy[i].k0 + j] = i;
    fr_err rc = FR_OK;
    const double noise_sd = 1.0 / sqrt(s->snr);
    for (int c = 0; c < N; ++c) {
        int blk = (int)((long long)c * n / N);
        o->channel_area[c] = blk;
        for (int j = 0; j < K; ++j) {
            double w = nrm(s, FR_SYNTH_TAG_SYS_A, (uint64_t)c * (uint64_t)K + (uint64_t)j);
            o->A[c * K + j] = sys_of[j] == blk ? w : s->leak * w;
        }
        double q = 0;
        for (long long r = 0; r < R; ++r) {
            double a = 0;
            for (int j = 0; j < K; ++j) a += o->A[c * K + j] * o->latents[r * K + j];
            sig[r] = a; /* mean 0: the latents are centred */
            q += a * a;
        }
        double sd = sqrt(q / (double)R);
        if (!(sd > 0)) {
            rc = FR_FAIL(FR_ENUMERIC, "synth systems: channel %d has no signal", c);
            break;
        }
        for (long long r = 0; r < R; ++r) sig[r] /= sd;
        double e = nrm(s, FR_SYNTH_TAG_SYS_C, (uint64_t)c), g = 1.0 / sd;
        if (s->poisson) {
            o->c[c] = softplus_inv(s->rate * exp(0.25 * e));
            g *= poisson_gain(sig, R, o->c[c], s->snr);
        } else {
            o->c[c] = 0.5 * e;
        }
        for (int j = 0; j < K; ++j) o->A[c * K + j] *= g;
        for (long long r = 0; r < R; ++r) {
            double eta = o->c[c];
            for (int j = 0; j < K; ++j) eta += o->A[c * K + j] * o->latents[r * K + j];
            uint64_t id = (uint64_t)r * (uint64_t)N + (uint64_t)c;
            o->x[r * N + c] = s->poisson ? fr_rng_poisson(softplus(eta), s->seed, FR_STREAM_SYNTH, FR_SYNTH_TAG_SYS_OBS, id)
                                         : eta + noise_sd * nrm(s, FR_SYNTH_TAG_SYS_OBS, id);
        }
    }
    free(sig);
    return rc;
}
