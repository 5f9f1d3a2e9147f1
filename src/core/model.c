/* model: the FacRNN of docs/model.md over a local minibatch, fast path.
 * Owns the parameter layout (one flat buffer + named views), validation of
 * the model's specification (fr_model_spec), default initialisation, the
 * per-call workspace, the encoder (stage 1), the decoder/NLL/KL backward
 * pass (stage 3), the single-process chain fr_model_loss_grad, and one-step
 * prediction.
 * The batched products go through cblas_dgemm; the slow loop version of the
 * same maths lives in model_ref.c and the tests check they agree.
 *
 * Choices the published method leaves open (docs/model.md, "Choices the
 * method leaves open"):
 *  - E (input weights) is initialised U(+-1/sqrt(K)) like A, i.e. like the
 *    decoder's other weights, so inputs and latents start on the same scale.
 *  - Poisson rates are floored at FR_POISSON_RATE_FLOOR so ln(lambda) stays
 *    finite; where the floor binds, the gradient w.r.t. eta is 0 (the floor
 *    is a constant there). The softplus is evaluated in its overflow-safe form.
 *  - The ln Gamma(x + 1) constant is included in the Poisson NLL so reported
 *    NLLs are proper negative log-likelihoods.
 */
#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "facrnn/model.h"
#include "model_internal.h"
#include "facrnn/rng.h"

/* Parameter ids for the counter-based initialisation draws. Fixed forever:
 * changing them changes every seeded initialisation. */
enum { PID_A = 0, PID_B = 1, PID_C = 2, PID_D = 3, PID_S = 4, PID_E = 5, PID_PSI = 6 };

fr_err fr_model_init(fr_model *m, const fr_model_spec *spec)
{
    memset(m, 0, sizeof(*m));
    const fr_model_spec *s = spec;
    if (s->N < 1) return FR_FAIL(FR_EINVAL, "model: number of channels N must be >= 1, got %d", s->N);
    if (s->K < 1) return FR_FAIL(FR_EINVAL, "model.rank: K must be >= 1, got %d", s->K);
    if (s->n_skip < 0 || (s->n_skip > 0 && !s->skip) || s->n_skip >= s->N)
        return FR_FAIL(FR_EINVAL, "data.heldout_channels: %d channel(s) of %d: at least one must stay for the encoder",
                       s->n_skip, s->N);
    for (int q = 0; q < s->n_skip; ++q) {
        if (s->skip[q] < 0 || s->skip[q] >= s->N)
            return FR_FAIL(FR_EINVAL, "data.heldout_channels[%d]: channel %d is out of range (the data have %d channels, "
                                      "0-based)",
                           q, s->skip[q], s->N);
        for (int r = 0; r < q; ++r)
            if (s->skip[r] == s->skip[q])
                return FR_FAIL(FR_EINVAL, "data.heldout_channels[%d]: channel %d is listed twice", q, s->skip[q]);
    }
    if (s->D < 0) return FR_FAIL(FR_EINVAL, "model.inputs: input dimension D must be >= 0, got %d", s->D);
    if (s->L < 1 || s->L > FR_MAX_LAGS)
        return FR_FAIL(FR_EINVAL, "model.lags: L must be in [1, %d], got %d", FR_MAX_LAGS, s->L);
    if (s->G < 1 || s->G > FR_MAX_GROUPS)
        return FR_FAIL(FR_EINVAL, "model.groups: number of groups G must be in [1, %d], got %d", FR_MAX_GROUPS,
                       s->G);
    if (s->G > s->K) return FR_FAIL(FR_EINVAL, "model.groups: G = %d groups exceed rank K = %d", s->G, s->K);
    int sum = 0;
    for (int g = 0; g < s->G; ++g) {
        if (s->group_size[g] < 1)
            return FR_FAIL(FR_EINVAL, "model.groups[%d]: group size must be >= 1, got %d", g, s->group_size[g]);
        sum += s->group_size[g];
    }
    if (sum != s->K)
        return FR_FAIL(FR_EINVAL, "model.groups: group sizes sum to %d, but rank K = %d", sum, s->K);
    if (s->obs != FR_OBS_GAUSSIAN && s->obs != FR_OBS_POISSON)
        return FR_FAIL(FR_EINVAL, "data.observation: unknown observation model %d", (int)s->obs);
    if (s->link != FR_LINK_SOFTPLUS && s->link != FR_LINK_EXP)
        return FR_FAIL(FR_EINVAL, "model.link: unknown link %d", (int)s->link);
    if (s->nonlin != FR_NL_TANH && s->nonlin != FR_NL_IDENTITY)
        return FR_FAIL(FR_EINVAL, "model.nonlinearity: unknown nonlinearity %d", (int)s->nonlin);
    if (!s->psi_learned) {
        double psum = 0;
        for (int l = 0; l < s->L; ++l) {
            if (!isfinite(s->psi[l]) || s->psi[l] < 0)
                return FR_FAIL(FR_EINVAL, "model.psi[%d]: weights must be finite and >= 0, got %g", l, s->psi[l]);
            psum += s->psi[l];
        }
        if (fabs(psum - 1.0) > 1e-9)
            return FR_FAIL(FR_EINVAL, "model.psi: weights must sum to 1, got %.17g", psum);
    }
    if (!isfinite(s->beta) || s->beta < 0)
        return FR_FAIL(FR_EINVAL, "train.beta: PC weight beta must be finite and >= 0, got %g", s->beta);
    if (s->n_train < 2)
        return FR_FAIL(FR_EINVAL, "model: number of training samples n_train must be >= 2, got %lld", s->n_train);
    if (s->batch_size < 1)
        return FR_FAIL(FR_EINVAL, "train.batch_size: M must be >= 1, got %d", s->batch_size);
    if (s->G > 1 && s->batch_size < 2)
        return FR_FAIL(FR_EINVAL, "train.batch_size: M must be >= 2 when G = %d > 1 (PC estimator), got %d", s->G,
                       s->batch_size);
    if (isnan(s->encoder_std) || isinf(s->encoder_std))
        return FR_FAIL(FR_EINVAL, "model.encoder_std: must be finite, got %g", s->encoder_std);

    m->spec = *s;
    m->group_off[0] = 0;
    for (int g = 0; g < s->G; ++g) m->group_off[g + 1] = m->group_off[g] + s->group_size[g];
    m->s_enc = s->encoder_std > 0 ? s->encoder_std : pow((double)s->n_train, -1.0 / (s->K + 4));

    size_t N = (size_t)s->N, K = (size_t)s->K, D = (size_t)s->D, off = 0;
    m->off_A = off, off += N * K;
    m->off_B = off, off += K * N;
    m->off_c = off, off += N;
    m->off_d = off, off += K;
    m->off_s = SIZE_MAX;
    if (s->obs == FR_OBS_GAUSSIAN) m->off_s = off, off += N;
    m->off_E = SIZE_MAX;
    if (D > 0) m->off_E = off, off += N * D;
    m->off_psi = SIZE_MAX;
    if (s->psi_learned) m->off_psi = off, off += (size_t)s->L;
    m->n_params = off;
    return FR_OK;
}

fr_view fr_model_view(const fr_model *m, double *flat)
{
    fr_view v;
    v.A = flat + m->off_A;
    v.B = flat + m->off_B;
    v.c = flat + m->off_c;
    v.d = flat + m->off_d;
    v.s = m->off_s == SIZE_MAX ? NULL : flat + m->off_s;
    v.E = m->off_E == SIZE_MAX ? NULL : flat + m->off_E;
    v.psi = m->off_psi == SIZE_MAX ? NULL : flat + m->off_psi;
    return v;
}

static void init_uniform(double *x, size_t n, double a, uint64_t seed, uint32_t pid)
{
    for (size_t i = 0; i < n; ++i) x[i] = a * (2.0 * fr_rng_uniform(seed, FR_STREAM_INIT, pid, i) - 1.0);
}

void fr_model_init_params(const fr_model *m, double *flat, uint64_t seed)
{
    const fr_model_spec *s = &m->spec;
    fr_view v = fr_model_view(m, flat);
    size_t N = (size_t)s->N, K = (size_t)s->K, D = (size_t)s->D;
    double aK = 1.0 / sqrt((double)K), aN = 1.0 / sqrt((double)N);
    init_uniform(v.A, N * K, aK, seed, PID_A); /* fan-in of the decoder is K */
    init_uniform(v.B, K * N, aN, seed, PID_B); /* fan-in of the encoder is N */
    init_uniform(v.c, N, aK, seed, PID_C);
    init_uniform(v.d, K, aN, seed, PID_D);
    if (v.s)
        for (size_t n = 0; n < N; ++n) v.s[n] = -1.0;
    if (v.E) init_uniform(v.E, N * D, aK, seed, PID_E);
    /* Zero logits: psi starts uniform over the lags. PID_PSI is reserved. */
    if (v.psi)
        for (int l = 0; l < s->L; ++l) v.psi[l] = 0.0;
}

void fr_model_psi(const fr_model *m, const double *flat, double *psi)
{
    int L = m->spec.L;
    if (!m->spec.psi_learned) {
        for (int l = 0; l < L; ++l) psi[l] = m->spec.psi[l];
        return;
    }
    const double *lg = flat + m->off_psi; /* (L) logits */
    double mx = lg[0], sum = 0;
    for (int l = 1; l < L; ++l) mx = lg[l] > mx ? lg[l] : mx;
    for (int l = 0; l < L; ++l) sum += (psi[l] = exp(lg[l] - mx));
    for (int l = 0; l < L; ++l) psi[l] /= sum;
}

/* ---- observation model ------------------------------------------------------ */

double fr_softplus(double x)
{
    /* ln(1 + e^x) without overflow for large x or loss of digits for small. */
    return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x)));
}

double fr_model_mean(const fr_model *m, double eta)
{
    if (m->spec.obs == FR_OBS_GAUSSIAN) return eta;
    double lam = m->spec.link == FR_LINK_EXP ? exp(eta) : fr_softplus(eta);
    return lam < FR_POISSON_RATE_FLOOR ? FR_POISSON_RATE_FLOOR : lam;
}

/* ln(x!) for the counts of the data: a table for small integers (built on
 * first use; the same numbers as lgamma), lgamma otherwise. lgamma was a
 * tenth of a Poisson training step, and a third of the rollout term's. */
enum { LNFACT_N = 1024 };
static double g_lnfact[LNFACT_N];
static int g_lnfact_ready;
double fr_ln_factorial(double x)
{
    if (!g_lnfact_ready) {
        for (int q = 0; q < LNFACT_N; ++q) g_lnfact[q] = lgamma(q + 1.0);
        g_lnfact_ready = 1;
    }
    if (x >= 0 && x < LNFACT_N && x == (double)(int)x) return g_lnfact[(int)x];
    return lgamma(x + 1.0);
}

double fr_obs_nll(const fr_model *m, const double *s, int n, double x, double eta, double *deta, double *ds)
{
    if (m->spec.obs == FR_OBS_GAUSSIAN) {
        double r = x - eta, w = exp(-2.0 * s[n]);
        if (deta) *deta = -r * w;
        if (ds) *ds = 1.0 - r * r * w;
        return 0.5 * FR_LN_2PI + s[n] + 0.5 * r * r * w;
    }
    double lam, dlam; /* rate and d rate / d eta */
    if (m->spec.link == FR_LINK_EXP) {
        lam = exp(eta);
        dlam = lam;
    } else {
        /* softplus and its derivative, the sigmoid, from one exponential */
        double e = exp(-fabs(eta));
        lam = (eta > 0 ? eta : 0.0) + log1p(e);
        dlam = eta >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    }
    if (lam < FR_POISSON_RATE_FLOOR) lam = FR_POISSON_RATE_FLOOR, dlam = 0.0;
    if (deta) *deta = (1.0 - x / lam) * dlam;
    if (ds) *ds = 0.0;
    return lam - x * log(lam) + fr_ln_factorial(x);
}

/* ---- workspace -------------------------------------------------------------- */

fr_err fr_ws_create(const fr_model *m, int m_max, int M_max, fr_ws **out)
{
    *out = NULL;
    if (m_max < 1 || M_max < 1)
        return FR_FAIL(FR_EINVAL, "model workspace: m_max and M_max must be >= 1, got %d and %d", m_max, M_max);
    const fr_model_spec *s = &m->spec;
    size_t mm = (size_t)m_max, MM = (size_t)M_max, N = (size_t)s->N, K = (size_t)s->K, D = (size_t)s->D;
    size_t G = (size_t)s->G;
    fr_ws *w = NULL;
    fr_err rc = FR_OK;
    TRY(FR_CALLOC(w, 1));
    w->m_max = m_max;
    w->M_max = M_max;
    TRY_GOTO(rc, FR_CALLOC(w->H, mm * N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->mu, mm * K), fail);
    TRY_GOTO(rc, FR_CALLOC(w->z, mm * K), fail);
    TRY_GOTO(rc, FR_CALLOC(w->eta, mm * N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->deta, mm * N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->U, mm * (D > 0 ? D : 1)), fail);
    TRY_GOTO(rc, FR_CALLOC(w->dz, mm * K), fail);
    TRY_GOTO(rc, FR_CALLOC(w->dmu, mm * K), fail);
    TRY_GOTO(rc, FR_CALLOC(w->dH, mm * N), fail);
    TRY_GOTO(rc, FR_CALLOC(w->pc_a, (G + 1) * MM), fail);
    TRY_GOTO(rc, FR_CALLOC(w->kgroup, K), fail);
    TRY_GOTO(rc, FR_CALLOC(w->pc_dz, MM * K), fail);
    TRY_GOTO(rc, FR_CALLOC(w->pc_dmu, MM * K), fail);
    TRY_GOTO(rc, FR_CALLOC(w->pc_muT, K * MM), fail);
    TRY_GOTO(rc, FR_CALLOC(w->pc_dmuT, K * MM), fail);
    TRY_GOTO(rc, FR_CALLOC(w->pc_w, MM), fail);
    TRY_GOTO(rc, FR_CALLOC(w->pc_wl, MM), fail);
    TRY_GOTO(rc, FR_CALLOC(w->obs_w, 2 * N), fail);
    for (int g = 0; g < s->G; ++g)
        for (int k = m->group_off[g]; k < m->group_off[g + 1]; ++k) w->kgroup[k] = g;
    *out = w;
    return FR_OK;
fail:
    fr_ws_free(w);
    return rc;
}

void fr_ws_free(fr_ws *w)
{
    if (!w) return;
    free(w->H), free(w->mu), free(w->z), free(w->eta), free(w->deta), free(w->U);
    free(w->dz), free(w->dmu), free(w->dH), free(w->pc_a), free(w->kgroup);
    free(w->pc_dz), free(w->pc_dmu), free(w->pc_muT), free(w->pc_dmuT), free(w->pc_w), free(w->pc_wl), free(w->obs_w);
    free(w);
}

double *fr_ws_mu(fr_ws *ws) { return ws->mu; }
double *fr_ws_z(fr_ws *ws) { return ws->z; }

/* ---- stage 1: encoder ------------------------------------------------------- */

/* h = sum_l psi_l sigma(x_{t-l}) gathered into ws->H, mu = H B^T + d, and
 * z = mu + s_enc * eps (or z = mu when eps is NULL, for prediction). */
static fr_err encode(const fr_model *m, const double *params, const fr_batch *b, const double *eps, fr_ws *ws)
{
    const fr_model_spec *s = &m->spec;
    int mr = b->m, N = s->N, K = s->K, L = s->L;
    if (mr < 0 || mr > ws->m_max)
        return FR_FAIL(FR_EINVAL, "model: batch of %d rows exceeds the workspace (%d rows)", mr, ws->m_max);
    if (mr == 0) return FR_OK;
    fr_view v = fr_model_view(m, (double *)params);
    fr_model_psi(m, params, ws->psi);
    int copy = L == 1 && ws->psi[0] == 1.0; /* h = 1 * sigma(x) is sigma(x) exactly */
    for (int i = 0; i < mr; ++i) {
        double *h = ws->H + (size_t)i * N; /* (N) */
        const double *x1 = b->sx[(size_t)i * L];
        if (copy) memcpy(h, x1, sizeof(double) * (size_t)N);
        else
            for (int n = 0; n < N; ++n) h[n] = ws->psi[0] * x1[n];
        for (int l = 1; l < L; ++l) {
            const double *xl = b->sx[(size_t)i * L + l];
            for (int n = 0; n < N; ++n) h[n] += ws->psi[l] * xl[n];
        }
        for (int q = 0; q < s->n_skip; ++q) h[s->skip[q]] = 0.0; /* co-smoothing: never read */
        double *mu = ws->mu + (size_t)i * K;
        memcpy(mu, v.d, sizeof(double) * (size_t)K);
    }
    /* mu (m,K) += H (m,N) * B^T (N,K) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mr, K, N, 1.0, ws->H, N, v.B, N, 1.0, ws->mu, K);
    size_t mk = (size_t)mr * K;
    if (eps)
        for (size_t q = 0; q < mk; ++q) ws->z[q] = ws->mu[q] + m->s_enc * eps[q];
    else
        memcpy(ws->z, ws->mu, sizeof(double) * mk);
    return FR_OK;
}

fr_err fr_model_encode(const fr_model *m, const double *params, const fr_batch *b, fr_ws *ws)
{
    if (!b->eps) return FR_FAIL(FR_EINVAL, "model: batch has no noise eps for the reparameterised sample");
    return encode(m, params, b, b->eps, ws);
}

/* eta = Z A^T + c + U E^T into ws->eta (m, N). */
static void decode(const fr_model *m, const fr_view *v, const fr_batch *b, fr_ws *ws)
{
    const fr_model_spec *s = &m->spec;
    int mr = b->m, N = s->N, K = s->K, D = s->D;
    for (int i = 0; i < mr; ++i) memcpy(ws->eta + (size_t)i * N, v->c, sizeof(double) * (size_t)N);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mr, N, K, 1.0, ws->z, K, v->A, K, 1.0, ws->eta, N);
    if (D > 0) {
        for (int i = 0; i < mr; ++i) memcpy(ws->U + (size_t)i * D, b->u[i], sizeof(double) * (size_t)D);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mr, N, D, 1.0, ws->U, D, v->E, D, 1.0, ws->eta, N);
    }
}

/* ---- stage 3: decoder, NLL, KL, backward -------------------------------------- */

/* One row of the Gaussian NLL's backward pass: r = x - eta, de = inv_M
 * dNLL/deta, gs += inv_M dNLL/ds, gc += de, sq += r^2 w (the NLL's data
 * term per channel). All (N); restrict: distinct buffers. */
static void gauss_row(int N, double inv_M, const double *restrict x, const double *restrict eta,
                      const double *restrict iv, double *restrict de, double *restrict gs, double *restrict gc,
                      double *restrict sq)
{
    for (int n = 0; n < N; ++n) {
        double r = x[n] - eta[n], w = iv[n];
        de[n] = inv_M * (-r * w);
        gs[n] += inv_M * (1.0 - r * r * w);
        gc[n] += de[n];
        sq[n] += r * r * w;
    }
}

/* gauss_row over the observed entries of a row with missing values (o[n]
 * = 0): those get de = 0 and add nothing. Returns the row's NLL. */
static double gauss_row_masked(int N, double inv_M, const unsigned char *restrict o, const double *restrict x,
                               const double *restrict eta, const double *restrict s, const double *restrict iv,
                               double *restrict de, double *restrict gs, double *restrict gc)
{
    double nll = 0.0;
    for (int n = 0; n < N; ++n) {
        if (!o[n]) {
            de[n] = 0.0;
            continue;
        }
        double r = x[n] - eta[n], w = iv[n];
        de[n] = inv_M * (-r * w);
        gs[n] += inv_M * (1.0 - r * r * w);
        gc[n] += de[n];
        nll += 0.5 * FR_LN_2PI + s[n] + 0.5 * r * r * w;
    }
    return nll;
}

fr_err fr_model_backward(const fr_model *m, const double *params, const fr_batch *b, fr_ws *ws, double inv_M,
                         const double *dmu_extra, const double *dz_extra, double *grad, fr_terms *terms)
{
    const fr_model_spec *s = &m->spec;
    int mr = b->m, N = s->N, K = s->K, D = s->D, L = s->L;
    if (mr < 0 || mr > ws->m_max)
        return FR_FAIL(FR_EINVAL, "model: batch of %d rows exceeds the workspace (%d rows)", mr, ws->m_max);
    terms->nll = terms->kl = 0.0;
    if (mr == 0) return FR_OK;
    fr_view v = fr_model_view(m, (double *)params);
    fr_view gv = fr_model_view(m, grad);
    decode(m, &v, b, ws);

    /* NLL and dNLL/deta, scaled by inv_M; dc += colsum dEta on the way. */
    double nll = 0.0;
    if (s->obs == FR_OBS_GAUSSIAN) {
        /* fr_obs_nll inlined with exp(-2 s_n) hoisted out of the row loop
         * (N exponentials instead of m N), and the NLL summed as
         * m (N ln(2 pi) / 2 + sum_n s_n) + 1/2 sum_n (sum_i r_in^2 w_n): per
         * channel partial sums instead of one serial chain of m N additions */
        double *iv = ws->obs_w, *sq = ws->obs_w + N, ssum = 0.0, sqsum = 0.0; /* (N) each */
        for (int n = 0; n < N; ++n) {
            iv[n] = exp(-2.0 * v.s[n]);
            sq[n] = 0.0;
            ssum += v.s[n];
        }
        if (b->obs) {
            /* missing values: each observed entry adds its own constant */
            for (int i = 0; i < mr; ++i)
                nll += gauss_row_masked(N, inv_M, b->obs[i], b->x[i], ws->eta + (size_t)i * N, v.s, iv,
                                        ws->deta + (size_t)i * N, gv.s, gv.c);
        } else {
            for (int i = 0; i < mr; ++i)
                gauss_row(N, inv_M, b->x[i], ws->eta + (size_t)i * N, iv, ws->deta + (size_t)i * N, gv.s, gv.c, sq);
            for (int n = 0; n < N; ++n) sqsum += sq[n];
            nll = mr * (0.5 * FR_LN_2PI * N + ssum) + 0.5 * sqsum;
        }
    } else {
        for (int i = 0; i < mr; ++i) {
            const double *x = b->x[i];
            const double *eta = ws->eta + (size_t)i * N;
            const unsigned char *o = b->obs ? b->obs[i] : NULL;
            double *de = ws->deta + (size_t)i * N;
            for (int n = 0; n < N; ++n) {
                double dn;
                if (o && !o[n]) { /* missing: no NLL, no gradient */
                    de[n] = 0.0;
                    continue;
                }
                nll += fr_obs_nll(m, v.s, n, x[n], eta[n], &dn, NULL);
                de[n] = inv_M * dn;
                gv.c[n] += de[n];
            }
        }
    }
    /* KL_i = 1/2 sum_k (mu^2 + s_enc^2 - 1 - 2 ln s_enc); the constant part
     * is the same for every row; the squares summed in KL_LANES partial sums. */
    double se2 = m->s_enc * m->s_enc, klc = 0.5 * K * (se2 - 1.0 - 2.0 * log(m->s_enc)), kl = 0.0;
    size_t mk = (size_t)mr * K;
    {
        enum { KL_LANES = 4 };
        double lane[KL_LANES] = {0};
        size_t q = 0;
        for (; q + KL_LANES <= mk; q += KL_LANES)
            for (int l = 0; l < KL_LANES; ++l) lane[l] += ws->mu[q + l] * ws->mu[q + l];
        for (; q < mk; ++q) lane[0] += ws->mu[q] * ws->mu[q];
        for (int l = 0; l < KL_LANES; ++l) kl += lane[l];
        kl = 0.5 * kl + mr * klc;
    }
    terms->nll = nll;
    terms->kl = kl;

    /* Decoder gradients: dA (N,K) += dEta^T Z, dE += dEta^T U (dc above). */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, mr, 1.0, ws->deta, N, ws->z, K, 1.0, gv.A, K);
    if (D > 0)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, D, mr, 1.0, ws->deta, N, ws->U, D, 1.0, gv.E, D);

    /* dZ (m,K) = dEta A (+ dz_extra); dMu = dZ + inv_M mu (+ dmu_extra). */
    if (dz_extra)
        memcpy(ws->dz, dz_extra, sizeof(double) * mk);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mr, K, N, 1.0, ws->deta, N, v.A, K, dz_extra ? 1.0 : 0.0,
                ws->dz, K);
    if (dmu_extra)
        for (size_t q = 0; q < mk; ++q) ws->dmu[q] = ws->dz[q] + inv_M * ws->mu[q] + dmu_extra[q];
    else
        for (size_t q = 0; q < mk; ++q) ws->dmu[q] = ws->dz[q] + inv_M * ws->mu[q] + 0.0; /* as before: -0 -> +0 */

    /* Encoder gradients: dB (K,N) += dMu^T H, dd += colsum dMu. */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, mr, 1.0, ws->dmu, K, ws->H, N, 1.0, gv.B, N);
    for (int i = 0; i < mr; ++i) {
        const double *dm = ws->dmu + (size_t)i * K;
        for (int k = 0; k < K; ++k) gv.d[k] += dm[k];
    }

    /* Learned psi: dH = dMu B, dpsi_l = sum_i dH_i . sigma(x_{t-l}), then
     * through the softmax: dlogit_l = psi_l (dpsi_l - sum_k psi_k dpsi_k). */
    if (gv.psi) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mr, N, K, 1.0, ws->dmu, K, v.B, N, 0.0, ws->dH, N);
        double dpsi[FR_MAX_LAGS] = {0}, dot = 0.0;
        for (int i = 0; i < mr; ++i) {
            double *dh = ws->dH + (size_t)i * N;
            for (int q = 0; q < m->spec.n_skip; ++q) dh[m->spec.skip[q]] = 0.0; /* h never held them */
            for (int l = 0; l < L; ++l) dpsi[l] += cblas_ddot(N, dh, 1, b->sx[(size_t)i * L + l], 1);
        }
        for (int l = 0; l < L; ++l) dot += ws->psi[l] * dpsi[l];
        for (int l = 0; l < L; ++l) gv.psi[l] += ws->psi[l] * (dpsi[l] - dot);
    }
    return FR_OK;
}

fr_err fr_model_loss_grad(const fr_model *m, const double *params, const fr_batch *b, fr_ws *ws, double *grad,
                          fr_terms *terms, double *loss)
{
    int M = b->m, K = m->spec.K;
    if (M < 1 || M > ws->M_max)
        return FR_FAIL(FR_EINVAL, "model: minibatch of %d rows outside the workspace's [1, %d]", M, ws->M_max);
    TRY(fr_model_encode(m, params, b, ws));
    size_t mk = (size_t)M * K;
    memset(ws->pc_dz, 0, sizeof(double) * mk);
    memset(ws->pc_dmu, 0, sizeof(double) * mk);
    double beta = m->spec.beta, pc = 0.0;
    TRY(fr_pc_rows(m, M, ws->mu, ws->z, 0, M, beta / M, &pc, ws->pc_dz, ws->pc_dmu, ws));
    TRY(fr_model_backward(m, params, b, ws, 1.0 / M, ws->pc_dmu, ws->pc_dz, grad, terms));
    terms->pc = pc;
    *loss = (terms->nll + terms->kl) / M + beta * pc / M;
    return FR_OK;
}

/* ---- evaluation ----------------------------------------------------------------- */

fr_err fr_model_predict(const fr_model *m, const double *params, const fr_batch *b, fr_ws *ws, double *mu,
                        double *eta, double *nll_rows)
{
    int mr = b->m, N = m->spec.N, K = m->spec.K;
    TRY(encode(m, params, b, NULL, ws));
    if (mr == 0) return FR_OK;
    fr_view v = fr_model_view(m, (double *)params);
    decode(m, &v, b, ws);
    if (mu) memcpy(mu, ws->mu, sizeof(double) * (size_t)mr * K);
    if (eta) memcpy(eta, ws->eta, sizeof(double) * (size_t)mr * N);
    if (nll_rows)
        for (int i = 0; i < mr; ++i) {
            double acc = 0.0;
            for (int n = 0; n < N; ++n)
                if (!b->obs || b->obs[i][n])
                    acc += fr_obs_nll(m, v.s, n, b->x[i][n], ws->eta[(size_t)i * N + n], NULL, NULL);
            nll_rows[i] = acc;
        }
    return FR_OK;
}

void fr_groups_text(int G, const int *sizes, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap) buf[0] = '\0';
    for (int g = 0; g < G && len < cap; ++g) len += (size_t)snprintf(buf + len, cap - len, "%s%d", g ? "+" : "", sizes[g]);
}
