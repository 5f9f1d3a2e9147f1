/* The multi-step rollout term (train.rollout_steps): finite differences of
 * the full loss (one-step loss + the term) over every parameter entry for
 * every observation model, link, nonlinearity, fixed and learned psi, with
 * and without inputs, at teacher forcing alpha = 1, 0.5 and 0, on samples
 * whose rollout window is cut by the trial's end; the fast path against the
 * slow reference; k = 1 adds nothing; the annealing schedule. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/model.h"
#include "facrnn/multistep.h"
#include "facrnn/rng.h"
#include "testlib.h"

enum { TN = 5, TD = 2, NTR = 3, TMAX = 8, TM = 7, KSTEPS = 4 };
static const long long trial_len[NTR] = {8, 5, 4};
/* (trial, bin) of each sample: full windows, windows cut by the trial's end
 * (bins 3 and 4 of the 5-bin trial, bin 3 of the 4-bin one: J = 1 and 0). */
static const int samp_trial[TM] = {0, 0, 0, 1, 1, 2, 2};
static const long long samp_t[TM] = {2, 3, 6, 3, 4, 2, 3};

typedef struct {
    double x[NTR][TMAX * TN], u[NTR][TMAX * TD], sx[NTR][TMAX * TN], eps[TM * 8];
    const double *xp[TM], *sxp[TM * FR_MAX_LAGS], *up[TM];
    const double *tx[TM], *tu[TM];
    long long t[TM], T[TM];
    fr_batch b;
    fr_ms_batch mb;
} toy;

static void toy_make(toy *t, const fr_model *m, uint64_t seed)
{
    const fr_model_spec *s = &m->spec;
    uint64_t q = 0;
    for (int k = 0; k < NTR; ++k)
        for (int r = 0; r < TMAX; ++r) {
            for (int n = 0; n < TN; ++n) {
                double v = s->obs == FR_OBS_POISSON ? (double)(fr_rng_u64(seed, FR_STREAM_SYNTH, 1, q++) % 4)
                                                    : fr_rng_normal(seed, FR_STREAM_SYNTH, 1, q++);
                t->x[k][r * TN + n] = v;
                t->sx[k][r * TN + n] = s->nonlin == FR_NL_TANH ? tanh(v) : v;
            }
            for (int d = 0; d < TD; ++d) t->u[k][r * TD + d] = fr_rng_normal(seed, FR_STREAM_SYNTH, 3, q++);
        }
    for (int i = 0; i < TM; ++i) {
        int k = samp_trial[i];
        long long tt = samp_t[i];
        t->xp[i] = t->x[k] + tt * TN;
        t->up[i] = t->u[k] + tt * TD;
        for (int l = 1; l <= s->L; ++l) t->sxp[i * s->L + l - 1] = t->sx[k] + (tt - l) * TN;
        for (int j = 0; j < s->K; ++j) t->eps[i * s->K + j] = fr_rng_normal(seed, FR_STREAM_SYNTH, 4, q++);
        t->tx[i] = t->x[k];
        t->tu[i] = t->u[k];
        t->t[i] = tt;
        t->T[i] = trial_len[k];
    }
    t->b = (fr_batch){TM, t->xp, t->sxp, s->D > 0 ? t->up : NULL, t->eps, NULL};
    t->mb = (fr_ms_batch){TM, t->tx, s->D > 0 ? t->tu : NULL, t->t, t->T};
}

static void make_params(const fr_model *m, double *p, uint64_t seed)
{
    fr_model_init_params(m, p, seed);
    for (size_t q = 0; q < m->n_params; ++q) p[q] += 0.3 * fr_rng_normal(seed, FR_STREAM_SYNTH, 9, q);
    /* With the exp link and sigma = identity a rollout feeds e^eta back into
     * eta, which grows doubly exponentially over the steps (rates of 1e48
     * from these draws): the model's nature, not the gradient's. Smaller
     * weights keep the check in a range where differences mean something. */
    if (m->spec.obs == FR_OBS_POISSON && m->spec.link == FR_LINK_EXP && m->spec.nonlin == FR_NL_IDENTITY)
        for (size_t q = 0; q < m->n_params; ++q) p[q] *= 0.4;
}

/* The full loss: one-step loss + weight / M * term; gradient into g. */
static double full_loss(const fr_model *m, const double *p, toy *t, const fr_ms_opts *o, fr_ws *ws, fr_ms_ws *mws,
                        double *g)
{
    fr_terms tm;
    double loss = 0, ms = 0;
    memset(g, 0, sizeof(double) * m->n_params);
    CU_ASSERT_EQUAL_FATAL(fr_model_loss_grad(m, p, &t->b, ws, g, &tm, &loss), FR_OK);
    CU_ASSERT_EQUAL_FATAL(fr_ms_loss_grad(m, p, o, &t->mb, o->weight / TM, mws, g, &ms), FR_OK);
    return loss + o->weight * ms / TM;
}

static int n_combos, n_entries;
static double worst_rel;

static void check_combo(const fr_model_spec *spec, double alpha, uint64_t seed, const char *label)
{
    fr_model m;
    CU_ASSERT_EQUAL_FATAL(fr_model_init(&m, spec), FR_OK);
    toy t;
    toy_make(&t, &m, seed);
    fr_ws *ws = NULL;
    fr_ms_ws *mws = NULL;
    CU_ASSERT_EQUAL_FATAL(fr_ws_create(&m, TM, TM, &ws), FR_OK);
    CU_ASSERT_EQUAL_FATAL(fr_ms_ws_create(&m, KSTEPS, &mws), FR_OK);
    fr_ms_opts o = {KSTEPS, 0.7, alpha};
    size_t P = m.n_params;
    double *p = calloc(P, sizeof(double)), *g = calloc(P, sizeof(double)), *gs = calloc(P, sizeof(double));
    double *gf = calloc(P, sizeof(double)), *gr = calloc(P, sizeof(double));
    make_params(&m, p, seed);

    /* fast against reference, the term alone */
    double sf = 0, sr = 0;
    CU_ASSERT_EQUAL(fr_ms_loss_grad(&m, p, &o, &t.mb, 0.3, mws, gf, &sf), FR_OK);
    CU_ASSERT_EQUAL(fr_ms_loss_grad_ref(&m, p, &o, &t.mb, 0.3, gr, &sr), FR_OK);
    CU_ASSERT(isfinite(sf) && sf > 0);
    FR_ASSERT_CLOSE(sf, sr, 1e-12, 0);
    int bad_ref = 0;
    for (size_t q = 0; q < P; ++q) bad_ref += !fr_test_close(gf[q], gr[q], 1e-11, 1e-14);
    CU_ASSERT_EQUAL(bad_ref, 0);
    if (bad_ref) fprintf(stderr, "%s: %d entries of the fast gradient differ from the reference\n", label, bad_ref);
    /* the loss alone (grad NULL) is the same number */
    double sn = 0;
    CU_ASSERT_EQUAL(fr_ms_loss_grad(&m, p, &o, &t.mb, 0.3, mws, NULL, &sn), FR_OK);
    CU_ASSERT_EQUAL(sn, sf);

    double f0 = full_loss(&m, p, &t, &o, ws, mws, g);
    CU_ASSERT(isfinite(f0));
    int bad = 0;
    for (size_t q = 0; q < P; ++q) {
        double h = 1e-3, p0 = p[q], f[4];
        const double off[4] = {h, -h, 2 * h, -2 * h};
        for (int r = 0; r < 4; ++r) {
            p[q] = p0 + off[r];
            f[r] = full_loss(&m, p, &t, &o, ws, mws, gs);
        }
        p[q] = p0;
        double fd = (8.0 * (f[0] - f[1]) - (f[2] - f[3])) / (12.0 * h);
        double den = fmax(fabs(fd), fabs(g[q]));
        if (!fr_test_close(fd, g[q], 1e-6, 1e-9)) {
            ++bad;
            fprintf(stderr, "%s: entry %zu analytic %.12g fd %.12g\n", label, q, g[q], fd);
        } else if (den > 1e-9 && fabs(fd - g[q]) / den > worst_rel) {
            worst_rel = fabs(fd - g[q]) / den;
        }
        ++n_entries;
    }
    CU_ASSERT_EQUAL(bad, 0);
    ++n_combos;
    free(p), free(g), free(gs), free(gf), free(gr);
    fr_ws_free(ws);
    fr_ms_ws_free(mws);
}

static fr_model_spec base_spec(void)
{
    fr_model_spec s;
    memset(&s, 0, sizeof s);
    s.N = TN;
    s.K = 3;
    s.G = 2;
    s.group_size[0] = 2;
    s.group_size[1] = 1;
    s.L = 1;
    s.psi[0] = 1.0;
    s.beta = 2.0;
    s.n_train = 50;
    s.batch_size = TM;
    s.encoder_std = 0.3;
    return s;
}

static void test_fd_all(void)
{
    static const int skip1[1] = {2};
    const char *obsname[3] = {"gaussian", "poisson-softplus", "poisson-exp"};
    const double alphas[3] = {1.0, 0.5, 0.0};
    uint64_t seed = 11;
    for (int ob = 0; ob < 3; ++ob)
        for (int nl = 0; nl < 2; ++nl)
            for (int ps = 0; ps < 2; ++ps)
                for (int in = 0; in < 2; ++in)
                    for (int a = 0; a < 3; ++a) {
                        fr_model_spec s = base_spec();
                        s.obs = ob == 0 ? FR_OBS_GAUSSIAN : FR_OBS_POISSON;
                        s.link = ob == 2 ? FR_LINK_EXP : FR_LINK_SOFTPLUS;
                        s.nonlin = nl ? FR_NL_IDENTITY : FR_NL_TANH;
                        s.L = 2;
                        if (ps) s.psi_learned = 1;
                        else s.psi[0] = 0.6, s.psi[1] = 0.4;
                        s.D = in ? TD : 0;
                        /* one combination in four reads all channels but one (co-smoothing) */
                        if ((ob + nl + ps + in + a) % 4 == 0) s.n_skip = 1, s.skip = skip1;
                        char label[160];
                        snprintf(label, sizeof label, "%s %s psi=%s D=%d alpha=%.1f skip=%d", obsname[ob],
                                 nl ? "identity" : "tanh", ps ? "learned" : "fixed", s.D, alphas[a], s.n_skip);
                        check_combo(&s, alphas[a], seed++, label);
                    }
    printf("\n  %d combinations, %d entries, worst relative |fd - analytic| %.2g\n", n_combos, n_entries,
           worst_rel);
    CU_ASSERT_EQUAL(n_combos, 72);
}

/* L = 1, K = 1, one group: the smallest model, a different code path for
 * the history (no lag beyond the first). */
static void test_fd_small(void)
{
    fr_model_spec s = base_spec();
    s.K = 1, s.G = 1, s.group_size[0] = 1;
    check_combo(&s, 0.0, 99, "gaussian K=1 L=1 alpha=0");
    s.obs = FR_OBS_POISSON;
    check_combo(&s, 0.25, 98, "poisson K=1 L=1 alpha=0.25");
}

/* k = 1 is no term: sum 0 and the gradient untouched, bit for bit. */
static void test_k1_nothing(void)
{
    fr_model_spec s = base_spec();
    fr_model m;
    CU_ASSERT_EQUAL_FATAL(fr_model_init(&m, &s), FR_OK);
    toy t;
    toy_make(&t, &m, 5);
    fr_ms_ws *mws = NULL;
    CU_ASSERT_EQUAL_FATAL(fr_ms_ws_create(&m, 1, &mws), FR_OK);
    double *p = calloc(m.n_params, sizeof(double)), *g = calloc(m.n_params, sizeof(double));
    make_params(&m, p, 5);
    for (size_t q = 0; q < m.n_params; ++q) g[q] = (double)q - 0.5;
    fr_ms_opts o = {1, 1.0, 0.0};
    double sum = -1;
    CU_ASSERT_EQUAL(fr_ms_loss_grad(&m, p, &o, &t.mb, 1.0, mws, g, &sum), FR_OK);
    CU_ASSERT_EQUAL(sum, 0.0);
    int changed = 0;
    for (size_t q = 0; q < m.n_params; ++q) changed += g[q] != (double)q - 0.5;
    CU_ASSERT_EQUAL(changed, 0);
    /* more steps than the workspace holds: refused */
    o.steps = 3;
    CU_ASSERT_EQUAL(fr_ms_loss_grad(&m, p, &o, &t.mb, 1.0, mws, g, &sum), FR_EINVAL);
    free(p), free(g);
    fr_ms_ws_free(mws);
}

/* At alpha = 1 every future bin is predicted from the true history: the
 * term is the mean of one-step NLLs with z = mu, which fr_model_predict
 * computes independently. */
static void test_alpha1_is_one_step(void)
{
    fr_model_spec s = base_spec();
    s.obs = FR_OBS_POISSON;
    s.L = 2, s.psi[0] = 0.5, s.psi[1] = 0.5;
    s.D = TD;
    fr_model m;
    CU_ASSERT_EQUAL_FATAL(fr_model_init(&m, &s), FR_OK);
    toy t;
    toy_make(&t, &m, 21);
    fr_ms_ws *mws = NULL;
    fr_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(fr_ms_ws_create(&m, KSTEPS, &mws), FR_OK);
    CU_ASSERT_EQUAL_FATAL(fr_ws_create(&m, 1, 1, &ws), FR_OK);
    double *p = calloc(m.n_params, sizeof(double));
    make_params(&m, p, 21);
    fr_ms_opts o = {KSTEPS, 1.0, 1.0};
    double sum = 0, want = 0;
    CU_ASSERT_EQUAL(fr_ms_loss_grad(&m, p, &o, &t.mb, 1.0, mws, NULL, &sum), FR_OK);
    for (int i = 0; i < TM; ++i) {
        int k = samp_trial[i];
        long long end = t.t[i] + KSTEPS - 1 < t.T[i] - 1 ? t.t[i] + KSTEPS - 1 : t.T[i] - 1;
        double acc = 0;
        for (long long r = t.t[i] + 1; r <= end; ++r) {
            const double *xp[1] = {t.x[k] + r * TN}, *sxp[2] = {t.sx[k] + (r - 1) * TN, t.sx[k] + (r - 2) * TN};
            const double *up[1] = {t.u[k] + r * TD};
            fr_batch b1 = {1, xp, sxp, up, NULL, NULL};
            double nll;
            CU_ASSERT_EQUAL(fr_model_predict(&m, p, &b1, ws, NULL, NULL, &nll), FR_OK);
            acc += nll;
        }
        if (end > t.t[i]) want += acc / (double)(end - t.t[i]);
    }
    FR_ASSERT_CLOSE(sum, want, 1e-12, 0);
    free(p);
    fr_ws_free(ws);
    fr_ms_ws_free(mws);
}

static void test_alpha_schedule(void)
{
    CU_ASSERT_EQUAL(fr_ms_alpha(0.5, 0.0), 1.0);
    CU_ASSERT_DOUBLE_EQUAL(fr_ms_alpha(0.5, 0.25), 0.5, 1e-15);
    CU_ASSERT_EQUAL(fr_ms_alpha(0.5, 0.5), 0.0);
    CU_ASSERT_EQUAL(fr_ms_alpha(0.5, 0.9), 0.0);
    CU_ASSERT_EQUAL(fr_ms_alpha(0.0, 0.0), 0.0);
    CU_ASSERT_DOUBLE_EQUAL(fr_ms_alpha(1.0, 0.75), 0.25, 1e-15);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("multistep", NULL, NULL);
    CU_add_test(s, "finite differences, every option", test_fd_all);
    CU_add_test(s, "finite differences, K = 1, L = 1", test_fd_small);
    CU_add_test(s, "k = 1 adds nothing", test_k1_nothing);
    CU_add_test(s, "alpha = 1 is the one-step NLL", test_alpha1_is_one_step);
    CU_add_test(s, "annealing schedule", test_alpha_schedule);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
