/* Gradient checks for the model core: finite differences over every
 * parameter entry for every option combination docs/model.md allows,
 * fast vs reference paths, and the stage-wise (distributed-shaped) path
 * vs the single-process chain. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/model.h"
#include "facrnn/rng.h"
#include "testlib.h"

enum { TN = 5, TM = 8, TD = 2 };

/* A small random minibatch with its own storage. */
typedef struct {
    double x[TM][TN], sx[TM * FR_MAX_LAGS][TN], u[TM][TD], eps[TM * 16];
    const double *xp[TM], *sxp[TM * FR_MAX_LAGS], *up[TM];
    unsigned char o[TM][TN];
    const unsigned char *op[TM];
    fr_batch b;
} toy;

/* 1: toy_make marks entries missing (/mask): channel 1 in every row, row 2
 * entirely, and a scatter; their x become NaN, which the model must never
 * read. */
static int toy_masked;

static void toy_make(toy *t, const fr_model *m, uint64_t seed)
{
    const fr_model_spec *s = &m->spec;
    uint64_t q = 0;
    for (int i = 0; i < TM; ++i) {
        for (int n = 0; n < TN; ++n) {
            if (s->obs == FR_OBS_POISSON)
                t->x[i][n] = (double)(fr_rng_u64(seed, FR_STREAM_SYNTH, 1, q++) % 5);
            else
                t->x[i][n] = fr_rng_normal(seed, FR_STREAM_SYNTH, 1, q++);
        }
        for (int l = 0; l < s->L; ++l)
            for (int n = 0; n < TN; ++n) t->sx[i * s->L + l][n] = tanh(1.5 * fr_rng_normal(seed, FR_STREAM_SYNTH, 2, q++));
        for (int d = 0; d < TD; ++d) t->u[i][d] = fr_rng_normal(seed, FR_STREAM_SYNTH, 3, q++);
        for (int k = 0; k < s->K; ++k) t->eps[i * s->K + k] = fr_rng_normal(seed, FR_STREAM_SYNTH, 4, q++);
        t->xp[i] = t->x[i];
        t->up[i] = t->u[i];
    }
    for (int r = 0; r < TM * s->L; ++r) t->sxp[r] = t->sx[r];
    t->b.obs = NULL;
    if (toy_masked) {
        for (int i = 0; i < TM; ++i) {
            for (int n = 0; n < TN; ++n) {
                t->o[i][n] = !(n == 1 || i == 2 || (i * 7 + n * 3) % 5 == 0);
                if (!t->o[i][n]) t->x[i][n] = NAN;
            }
            t->op[i] = t->o[i];
        }
        t->b.obs = t->op;
    }
    t->b.m = TM;
    t->b.x = t->xp;
    t->b.sx = t->sxp;
    t->b.u = s->D > 0 ? t->up : NULL;
    t->b.eps = t->eps;
}

/* Default init, then a random perturbation so that no entry sits at a
 * special value (s = -1 everywhere, zero logits). */
static void make_params(const fr_model *m, double *p, uint64_t seed)
{
    fr_model_init_params(m, p, seed);
    for (size_t q = 0; q < m->n_params; ++q) p[q] += 0.3 * fr_rng_normal(seed, FR_STREAM_SYNTH, 9, q);
}

static double loss_only(const fr_model *m, const double *p, toy *t, fr_ws *ws, double *gscratch)
{
    fr_terms tm;
    double loss = 0;
    memset(gscratch, 0, sizeof(double) * m->n_params);
    CU_ASSERT_EQUAL_FATAL(fr_model_loss_grad(m, p, &t->b, ws, gscratch, &tm, &loss), FR_OK);
    return loss;
}

static int n_combos, n_entries;
static double worst_rel;

/* Central differences with the 5-point stencil (error O(h^4)), so a 1e-6
 * relative tolerance is meaningful in double precision. */
static void check_combo(const fr_model_spec *spec, uint64_t seed, const char *label)
{
    fr_model m;
    CU_ASSERT_EQUAL_FATAL(fr_model_init(&m, spec), FR_OK);
    toy t;
    toy_make(&t, &m, seed);
    fr_ws *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(fr_ws_create(&m, TM, TM, &ws), FR_OK);
    size_t P = m.n_params;
    double *p = calloc(P, sizeof(double)), *g = calloc(P, sizeof(double)), *gr = calloc(P, sizeof(double));
    double *gs = calloc(P, sizeof(double)), *gst = calloc(P, sizeof(double));
    make_params(&m, p, seed);

    fr_terms tf, tr;
    double lf, lr;
    CU_ASSERT_EQUAL(fr_model_loss_grad(&m, p, &t.b, ws, g, &tf, &lf), FR_OK);
    CU_ASSERT_EQUAL(fr_model_loss_grad_ref(&m, p, &t.b, gr, &tr, &lr), FR_OK);
    CU_ASSERT(isfinite(lf));
    /* fast vs reference */
    FR_ASSERT_CLOSE(lf, lr, 1e-12, 0);
    FR_ASSERT_CLOSE(tf.pc, tr.pc, 1e-12, 1e-13);
    int bad_ref = 0;
    for (size_t q = 0; q < P; ++q) bad_ref += !fr_test_close(g[q], gr[q], 1e-12, 1e-14);
    CU_ASSERT_EQUAL(bad_ref, 0);
    if (spec->G == 1) CU_ASSERT_EQUAL(tf.pc, 0.0);

    /* finite differences on every entry */
    int bad = 0;
    for (size_t q = 0; q < P; ++q) {
        double h = 1e-3, p0 = p[q], f[4];
        const double off[4] = {h, -h, 2 * h, -2 * h};
        for (int r = 0; r < 4; ++r) {
            p[q] = p0 + off[r];
            f[r] = loss_only(&m, p, &t, ws, gs);
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

    /* Stage-wise path, shaped like two ranks: rows [0,3) and [3,8). Each
     * "rank" encodes its rows, the (M, K) mu and z are gathered, each
     * computes the PC rows of its own samples against all M, the dmu_all
     * contributions are summed, and each runs backward on its rows. */
    {
        int K = spec->K, cut[3] = {0, 3, TM};
        double mu_all[TM * 16], z_all[TM * 16], dz_all[TM * 16] = {0}, dmu_all[TM * 16] = {0}, dmu_r[2][TM * 16];
        memset(dmu_r, 0, sizeof(dmu_r));
        fr_ws *w2[2];
        fr_batch br[2];
        double pc = 0, nll = 0, kl = 0;
        for (int r = 0; r < 2; ++r) {
            CU_ASSERT_EQUAL_FATAL(fr_ws_create(&m, 5, TM, &w2[r]), FR_OK);
            br[r] = t.b;
            br[r].m = cut[r + 1] - cut[r];
            br[r].x = t.b.x + cut[r];
            br[r].sx = t.b.sx + (size_t)cut[r] * spec->L;
            br[r].u = t.b.u ? t.b.u + cut[r] : NULL;
            br[r].eps = t.b.eps + (size_t)cut[r] * K;
            br[r].obs = t.b.obs ? t.b.obs + cut[r] : NULL;
            CU_ASSERT_EQUAL(fr_model_encode(&m, p, &br[r], w2[r]), FR_OK);
            memcpy(mu_all + cut[r] * K, fr_ws_mu(w2[r]), sizeof(double) * br[r].m * K);
            memcpy(z_all + cut[r] * K, fr_ws_z(w2[r]), sizeof(double) * br[r].m * K);
        }
        for (int r = 0; r < 2; ++r) {
            double pr = 0;
            CU_ASSERT_EQUAL(fr_pc_rows(&m, TM, mu_all, z_all, cut[r], br[r].m, spec->beta / TM, &pr,
                                       dz_all + cut[r] * K, dmu_r[r], w2[r]),
                            FR_OK);
            pc += pr;
        }
        for (int q = 0; q < TM * K; ++q) dmu_all[q] = dmu_r[0][q] + dmu_r[1][q]; /* the Allreduce */
        for (int r = 0; r < 2; ++r) {
            fr_terms tt;
            CU_ASSERT_EQUAL(fr_model_backward(&m, p, &br[r], w2[r], 1.0 / TM, dmu_all + cut[r] * K,
                                              dz_all + cut[r] * K, gst, &tt),
                            FR_OK);
            nll += tt.nll, kl += tt.kl;
            fr_ws_free(w2[r]);
        }
        double ls = (nll + kl) / TM + spec->beta * pc / TM;
        FR_ASSERT_CLOSE(ls, lf, 1e-12, 0);
        FR_ASSERT_CLOSE(pc, tf.pc, 1e-12, 1e-13);
        int bad_st = 0;
        for (size_t q = 0; q < P; ++q) bad_st += !fr_test_close(gst[q], g[q], 1e-12, 1e-14);
        CU_ASSERT_EQUAL(bad_st, 0);
    }
    ++n_combos;
    free(p), free(g), free(gr), free(gs), free(gst);
    fr_ws_free(ws);
}

static fr_model_spec base_spec(void)
{
    fr_model_spec s;
    memset(&s, 0, sizeof(s));
    s.N = TN;
    s.K = 6;
    s.L = 1;
    s.psi[0] = 1.0;
    s.obs = FR_OBS_GAUSSIAN;
    s.link = FR_LINK_SOFTPLUS;
    s.nonlin = FR_NL_TANH;
    s.beta = 2.0;
    s.n_train = 50;
    s.batch_size = TM;
    return s;
}

static const int groups[5][7] = {
    /* G, sizes */
    {1, 6}, {2, 3, 3}, {3, 2, 2, 2}, {3, 3, 2, 1}, {6, 1, 1, 1, 1, 1, 1}};

static void set_groups(fr_model_spec *s, int gi)
{
    s->G = groups[gi][0];
    for (int g = 0; g < s->G; ++g) s->group_size[g] = groups[gi][1 + g];
}

/* psi variants: L = 1 fixed, L = 3 fixed, L = 1 learned, L = 3 learned */
static void set_psi(fr_model_spec *s, int v)
{
    s->L = (v == 0 || v == 2) ? 1 : 3;
    s->psi_learned = v >= 2;
    if (s->L == 1)
        s->psi[0] = 1.0;
    else
        s->psi[0] = 0.5, s->psi[1] = 0.3, s->psi[2] = 0.2;
}

/* Full cross product obs x psi x inputs x groups at beta = 2. */
static void test_grad_cross_product(void)
{
    char label[128];
    for (int obs = 0; obs < 2; ++obs)
        for (int pv = 0; pv < 4; ++pv)
            for (int D = 0; D <= TD; D += TD)
                for (int gi = 0; gi < 5; ++gi) {
                    fr_model_spec s = base_spec();
                    s.obs = obs ? FR_OBS_POISSON : FR_OBS_GAUSSIAN;
                    set_psi(&s, pv);
                    s.D = D;
                    set_groups(&s, gi);
                    snprintf(label, sizeof label, "obs%d psi%d D%d groups%d beta2", obs, pv, D, gi);
                    check_combo(&s, 100 + (uint64_t)n_combos, label);
                }
}

/* beta = 0 and 20 (and the exp link) on the richest configurations. */
static void test_grad_betas_and_links(void)
{
    char label[128];
    const double betas[3] = {0.0, 2.0, 20.0};
    for (int bi = 0; bi < 3; ++bi)
        for (int obs = 0; obs < 3; ++obs)
            for (int gi = 1; gi < 5; gi += 2) {
                fr_model_spec s = base_spec();
                s.obs = obs ? FR_OBS_POISSON : FR_OBS_GAUSSIAN;
                s.link = obs == 2 ? FR_LINK_EXP : FR_LINK_SOFTPLUS;
                set_psi(&s, 3);
                s.D = TD;
                set_groups(&s, gi);
                s.beta = betas[bi];
                snprintf(label, sizeof label, "obs%d beta%g groups%d", obs, s.beta, gi);
                check_combo(&s, 500 + (uint64_t)n_combos, label);
            }
    /* encoder_std override, identity nonlinearity flag, K = 6 all singletons at beta 20 */
    fr_model_spec s = base_spec();
    s.encoder_std = 0.2;
    s.beta = 20;
    set_groups(&s, 4);
    check_combo(&s, 999, "encoder_std 0.2 beta20 1x6");
    printf("\n  %d combinations, %d parameter entries checked, worst relative error %.2e\n", n_combos, n_entries,
           worst_rel);
}

/* Co-smoothing (data.heldout_channels): the encoder never reads the listed
 * channels; finite differences, the reference and the two-rank stage path
 * agree for learned and fixed psi, Gaussian and Poisson, and those
 * channels' columns of B get no gradient. */
static void test_grad_heldout_channels(void)
{
    static const int skip[3] = {4, 0, 2};
    for (int obs = 0; obs < 2; ++obs)
        for (int learned = 0; learned < 2; ++learned) {
            fr_model_spec s = base_spec();
            s.obs = obs ? FR_OBS_POISSON : FR_OBS_GAUSSIAN;
            set_psi(&s, learned ? 3 : 2);
            s.psi_learned = learned;
            set_groups(&s, 3);
            s.beta = 2;
            s.n_skip = 3;
            s.skip = skip;
            char label[96];
            snprintf(label, sizeof label, "heldout channels obs%d psi_learned%d", obs, learned);
            check_combo(&s, 700 + (uint64_t)obs * 2 + (uint64_t)learned, label);
            /* dB[:, skipped] = 0 exactly */
            fr_model m;
            CU_ASSERT_EQUAL_FATAL(fr_model_init(&m, &s), FR_OK);
            toy t;
            toy_make(&t, &m, 71);
            fr_ws *ws = NULL;
            CU_ASSERT_EQUAL_FATAL(fr_ws_create(&m, TM, TM, &ws), FR_OK);
            double *p = calloc(m.n_params, sizeof(double)), *g = calloc(m.n_params, sizeof(double));
            make_params(&m, p, 71);
            fr_terms tm;
            double loss;
            CU_ASSERT_EQUAL(fr_model_loss_grad(&m, p, &t.b, ws, g, &tm, &loss), FR_OK);
            fr_view gv = fr_model_view(&m, g);
            for (int k = 0; k < s.K; ++k)
                for (int q = 0; q < 3; ++q) CU_ASSERT_EQUAL(gv.B[(size_t)k * s.N + skip[q]], 0.0);
            free(p);
            free(g);
            fr_ws_free(ws);
        }
    /* bad lists are refused with the channel named */
    fr_model_spec s = base_spec();
    fr_model m;
    static const int out_of_range[1] = {99}, twice[2] = {1, 1};
    s.n_skip = 1;
    s.skip = out_of_range;
    CU_ASSERT_EQUAL(fr_model_init(&m, &s), FR_EINVAL);
    CU_ASSERT(strstr(fr_error_msg(), "channel 99 is out of range") != NULL);
    s.n_skip = 2;
    s.skip = twice;
    CU_ASSERT_EQUAL(fr_model_init(&m, &s), FR_EINVAL);
    CU_ASSERT(strstr(fr_error_msg(), "listed twice") != NULL);
}

/* Missing values (/mask): finite differences, the reference and the
 * two-rank stage path agree with masked entries for every observation
 * model (Gaussian, Poisson softplus and exp links), with fixed and learned
 * psi; and the values at masked entries change no loss, NLL or gradient
 * bit (they are NaN in the toy, and then overwritten with other values). */
static void test_grad_mask(void)
{
    toy_masked = 1;
    for (int obs = 0; obs < 3; ++obs)
        for (int learned = 0; learned < 2; ++learned) {
            fr_model_spec s = base_spec();
            s.obs = obs ? FR_OBS_POISSON : FR_OBS_GAUSSIAN;
            s.link = obs == 2 ? FR_LINK_EXP : FR_LINK_SOFTPLUS;
            set_psi(&s, learned ? 3 : 1);
            s.D = TD;
            set_groups(&s, 3);
            char label[96];
            snprintf(label, sizeof label, "mask obs%d psi_learned%d", obs, learned);
            check_combo(&s, 800 + (uint64_t)obs * 2 + (uint64_t)learned, label);

            fr_model m;
            CU_ASSERT_EQUAL_FATAL(fr_model_init(&m, &s), FR_OK);
            toy t;
            toy_make(&t, &m, 81);
            fr_ws *ws = NULL;
            CU_ASSERT_EQUAL_FATAL(fr_ws_create(&m, TM, TM, &ws), FR_OK);
            size_t P = m.n_params;
            double *p = calloc(P, sizeof(double)), *g1 = calloc(P, sizeof(double)), *g2 = calloc(P, sizeof(double));
            double *gr = calloc(P, sizeof(double)), nr1[TM], nr2[TM];
            make_params(&m, p, 81);
            fr_terms t1, t2;
            double l1, l2;
            CU_ASSERT_EQUAL(fr_model_loss_grad(&m, p, &t.b, ws, g1, &t1, &l1), FR_OK);
            CU_ASSERT_EQUAL(fr_model_predict(&m, p, &t.b, ws, NULL, NULL, nr1), FR_OK);
            CU_ASSERT(isfinite(l1));
            for (size_t q = 0; q < P; ++q) CU_ASSERT(isfinite(g1[q]));
            /* other values at the masked entries: counts for Poisson, anything for Gaussian */
            int changed = 0;
            for (int i = 0; i < TM; ++i)
                for (int n = 0; n < TN; ++n)
                    if (!t.o[i][n]) t.x[i][n] = obs ? 7.0 + i : 1e3 * (n - 2.5), ++changed;
            CU_ASSERT(changed > TM);
            CU_ASSERT_EQUAL(fr_model_loss_grad(&m, p, &t.b, ws, g2, &t2, &l2), FR_OK);
            CU_ASSERT_EQUAL(fr_model_predict(&m, p, &t.b, ws, NULL, NULL, nr2), FR_OK);
            CU_ASSERT_EQUAL(memcmp(&l1, &l2, sizeof l1), 0);
            CU_ASSERT_EQUAL(memcmp(&t1.nll, &t2.nll, sizeof t1.nll), 0);
            CU_ASSERT_EQUAL(memcmp(g1, g2, P * sizeof(double)), 0);
            CU_ASSERT_EQUAL(memcmp(nr1, nr2, sizeof nr1), 0);
            /* the NLL really is over the observed entries only: the same
             * batch with those values and no mask has a different NLL, and
             * the masked channel 1 and row 2 add nothing to dc / ds */
            fr_view gv = fr_model_view(&m, g1);
            CU_ASSERT_EQUAL(gv.c[1], 0.0);
            if (gv.s) CU_ASSERT_EQUAL(gv.s[1], 0.0);
            CU_ASSERT_EQUAL(nr1[2], 0.0);
            t.b.obs = NULL;
            fr_terms t3;
            double l3;
            CU_ASSERT_EQUAL(fr_model_loss_grad_ref(&m, p, &t.b, gr, &t3, &l3), FR_OK);
            CU_ASSERT(t3.nll != t1.nll);
            free(p), free(g1), free(g2), free(gr);
            fr_ws_free(ws);
        }
    toy_masked = 0;
}

/* Prediction uses z = mu and reports per-row NLLs consistent with the loss. */
static void test_predict(void)
{
    fr_model_spec s = base_spec();
    s.D = TD;
    set_groups(&s, 1);
    fr_model m;
    CU_ASSERT_EQUAL_FATAL(fr_model_init(&m, &s), FR_OK);
    toy t;
    toy_make(&t, &m, 7);
    double p[256], g[256] = {0}, mu[TM * 6], eta[TM * TN], nr[TM];
    make_params(&m, p, 7);
    fr_ws *ws;
    CU_ASSERT_EQUAL_FATAL(fr_ws_create(&m, TM, TM, &ws), FR_OK);
    CU_ASSERT_EQUAL(fr_model_predict(&m, p, &t.b, ws, mu, eta, nr), FR_OK);
    fr_view v = fr_model_view(&m, p);
    double nsum = 0;
    for (int i = 0; i < TM; ++i) {
        for (int n = 0; n < TN; ++n) {
            double e = v.c[n];
            for (int q = 0; q < TD; ++q) e += v.E[n * TD + q] * t.u[i][q];
            for (int k = 0; k < 6; ++k) e += v.A[n * 6 + k] * mu[i * 6 + k];
            FR_ASSERT_CLOSE(eta[i * TN + n], e, 1e-13, 1e-14);
            CU_ASSERT_EQUAL(fr_model_mean(&m, e), e);
        }
        nsum += nr[i];
    }
    /* with eps = 0 the sampled z equals mu, so the loss's NLL matches */
    memset(t.eps, 0, sizeof t.eps);
    fr_terms tm;
    double loss;
    CU_ASSERT_EQUAL(fr_model_loss_grad_ref(&m, p, &t.b, g, &tm, &loss), FR_OK);
    FR_ASSERT_CLOSE(nsum, tm.nll, 1e-13, 0);
    fr_ws_free(ws);
    /* Poisson mean: softplus and exp links, with the rate floor */
    s.obs = FR_OBS_POISSON;
    CU_ASSERT_EQUAL_FATAL(fr_model_init(&m, &s), FR_OK);
    FR_ASSERT_CLOSE(fr_model_mean(&m, 0.0), log(2.0), 1e-15, 0);
    FR_ASSERT_CLOSE(fr_model_mean(&m, 800.0), 800.0, 1e-15, 0);
    CU_ASSERT_EQUAL(fr_model_mean(&m, -100.0), FR_POISSON_RATE_FLOOR);
    s.link = FR_LINK_EXP;
    CU_ASSERT_EQUAL_FATAL(fr_model_init(&m, &s), FR_OK);
    FR_ASSERT_CLOSE(fr_model_mean(&m, 1.0), exp(1.0), 1e-15, 0);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("model_grad", NULL, NULL);
    CU_add_test(s, "finite differences, obs x psi x inputs x groups", test_grad_cross_product);
    CU_add_test(s, "finite differences, betas 0/2/20 and links", test_grad_betas_and_links);
    CU_add_test(s, "finite differences, held-out channels (co-smoothing)", test_grad_heldout_channels);
    CU_add_test(s, "finite differences with missing values (mask), bitwise invariance", test_grad_mask);
    CU_add_test(s, "predict", test_predict);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
