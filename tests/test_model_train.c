/* Training the model core alone, single process: data from a known FacRNN
 * with two independent 2-D groups (block-diagonal latent recurrence J = B A,
 * each block a rotation with gain > 1, so the latents oscillate and tanh
 * bounds them), Gaussian noise. Adam on minibatches must lower the loss and
 * reach a held-out one-step R^2 close to the generating model's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/model.h"
#include "facrnn/rng.h"
#include "testlib.h"

enum { N = 12, K = 4, T = 60, NTR = 40, NTE = 10, NTRIAL = NTR + NTE, M = 64 };
static const double NOISE = 0.2, AMP = 1.5, GAIN = 1.2;

static double X[NTRIAL][T][N];  /* observations */
static double SX[NTRIAL][T][N]; /* tanh(X) */

/* true parameters in the model's flat layout */
static void make_truth(const fr_model *m, double *p)
{
    fr_view v = fr_model_view(m, p);
    double a[N][K];
    /* A = AMP * orthonormal columns (Gram-Schmidt of Gaussian draws), so
     * A^T A = AMP^2 I and B = J A^T / AMP^2 gives B A = J exactly. */
    for (int n = 0; n < N; ++n)
        for (int k = 0; k < K; ++k) a[n][k] = fr_rng_normal(77, FR_STREAM_SYNTH, 20, (uint64_t)n * K + k);
    for (int k = 0; k < K; ++k) {
        for (int k2 = 0; k2 < k; ++k2) {
            double dot = 0;
            for (int n = 0; n < N; ++n) dot += a[n][k] * a[n][k2];
            for (int n = 0; n < N; ++n) a[n][k] -= dot * a[n][k2];
        }
        double nr = 0;
        for (int n = 0; n < N; ++n) nr += a[n][k] * a[n][k];
        for (int n = 0; n < N; ++n) a[n][k] /= sqrt(nr);
    }
    double J[K][K] = {{0}};
    const double th[2] = {0.35, 0.6};
    for (int g = 0; g < 2; ++g) {
        int o = 2 * g;
        J[o][o] = GAIN * cos(th[g]), J[o][o + 1] = -GAIN * sin(th[g]);
        J[o + 1][o] = GAIN * sin(th[g]), J[o + 1][o + 1] = GAIN * cos(th[g]);
    }
    for (int n = 0; n < N; ++n)
        for (int k = 0; k < K; ++k) v.A[n * K + k] = AMP * a[n][k];
    for (int k = 0; k < K; ++k)
        for (int n = 0; n < N; ++n) {
            double acc = 0;
            for (int q = 0; q < K; ++q) acc += J[k][q] * a[n][q];
            v.B[k * N + n] = acc / AMP; /* J (AMP a)^T / AMP^2 */
        }
    for (int n = 0; n < N; ++n) v.c[n] = 0.2 * fr_rng_normal(77, FR_STREAM_SYNTH, 21, (uint64_t)n), v.s[n] = log(NOISE);
    for (int k = 0; k < K; ++k) v.d[k] = 0.0;
}

static void simulate(const fr_model *m, const double *p)
{
    fr_view v = fr_model_view(m, (double *)p);
    for (int tr = 0; tr < NTRIAL; ++tr) {
        for (int n = 0; n < N; ++n) X[tr][0][n] = fr_rng_normal(78, FR_STREAM_SYNTH, (uint32_t)tr, (uint64_t)n);
        for (int t = 1; t < T; ++t) {
            double z[K];
            for (int k = 0; k < K; ++k) {
                z[k] = v.d[k];
                for (int n = 0; n < N; ++n) z[k] += v.B[k * N + n] * tanh(X[tr][t - 1][n]);
            }
            for (int n = 0; n < N; ++n) {
                double e = v.c[n];
                for (int k = 0; k < K; ++k) e += v.A[n * K + k] * z[k];
                X[tr][t][n] = e + NOISE * fr_rng_normal(79, FR_STREAM_SYNTH, (uint32_t)tr, (uint64_t)t * N + n);
            }
        }
        for (int t = 0; t < T; ++t)
            for (int n = 0; n < N; ++n) SX[tr][t][n] = tanh(X[tr][t][n]);
    }
}

/* Samples (trial, t) with t >= L = 1, numbered globally. */
static void sample_of(int trial0, long id, int *tr, int *t)
{
    *tr = trial0 + (int)(id / (T - 1));
    *t = 1 + (int)(id % (T - 1));
}

typedef struct {
    const double *xp[NTR * T], *sxp[NTR * T];
    double eps[NTR * T * K];
    fr_batch b;
} batchbuf;

static void fill(batchbuf *bb, int trial0, const long *ids, int m)
{
    for (int i = 0; i < m; ++i) {
        int tr, t;
        sample_of(trial0, ids[i], &tr, &t);
        bb->xp[i] = X[tr][t];
        bb->sxp[i] = SX[tr][t - 1];
    }
    bb->b.m = m, bb->b.x = bb->xp, bb->b.sx = bb->sxp, bb->b.u = NULL, bb->b.eps = bb->eps;
}

/* Held-out one-step R^2 with z = mu, per channel, averaged uniformly. */
static double heldout_r2(const fr_model *m, const double *p, fr_ws *ws)
{
    enum { NS = NTE * (T - 1) };
    static long ids[NS];
    static double eta[NS * N];
    static batchbuf bb;
    for (long i = 0; i < NS; ++i) ids[i] = i;
    fill(&bb, NTR, ids, NS);
    CU_ASSERT_EQUAL(fr_model_predict(m, p, &bb.b, ws, NULL, eta, NULL), FR_OK);
    double r2 = 0;
    for (int n = 0; n < N; ++n) {
        double mean = 0, ss = 0, sr = 0;
        for (int i = 0; i < NS; ++i) mean += bb.xp[i][n] / NS;
        for (int i = 0; i < NS; ++i) {
            ss += (bb.xp[i][n] - mean) * (bb.xp[i][n] - mean);
            sr += (bb.xp[i][n] - eta[i * N + n]) * (bb.xp[i][n] - eta[i * N + n]);
        }
        r2 += (1 - sr / ss) / N;
    }
    return r2;
}

static void test_train(void)
{
    enum { NS = NTR * (T - 1), EPOCHS = 300, WIN = 4 };
    fr_model_spec s;
    memset(&s, 0, sizeof s);
    s.N = N, s.K = K, s.L = 1, s.psi[0] = 1, s.G = 2, s.group_size[0] = 2, s.group_size[1] = 2;
    s.obs = FR_OBS_GAUSSIAN, s.beta = 2.0, s.n_train = NS, s.batch_size = M;
    fr_model m;
    CU_ASSERT_EQUAL_FATAL(fr_model_init(&m, &s), FR_OK);
    double *truth = calloc(m.n_params, sizeof(double)), *p = calloc(m.n_params, sizeof(double));
    double *g = calloc(m.n_params, sizeof(double)), *m1 = calloc(m.n_params, sizeof(double));
    double *m2 = calloc(m.n_params, sizeof(double));
    make_truth(&m, truth);
    simulate(&m, truth);
    fr_ws *ws;
    CU_ASSERT_EQUAL_FATAL(fr_ws_create(&m, NTE * (T - 1), M, &ws), FR_OK);
    double r2_true = heldout_r2(&m, truth, ws);

    fr_model_init_params(&m, p, 5);
    fr_adam_cfg cfg = {3e-3, 0.9, 0.999, 1e-8, 0.0, 0};
    static long perm[NS];
    static batchbuf bb;
    double ep_loss[EPOCHS];
    long step = 0;
    double t0 = fr_wtime();
    for (int ep = 0; ep < EPOCHS; ++ep) {
        for (long i = 0; i < NS; ++i) perm[i] = i;
        for (long i = 0; i < NS - 1; ++i) { /* Fisher-Yates keyed by (epoch, position) */
            long r = i + (long)(fr_rng_u64(5, FR_STREAM_PERM, (uint32_t)ep, (uint64_t)i) % (uint64_t)(NS - i));
            long tmp = perm[i];
            perm[i] = perm[r], perm[r] = tmp;
        }
        double acc = 0;
        int nb = 0;
        for (long b0 = 0; b0 + M <= NS; b0 += M) {
            ++step;
            fill(&bb, 0, perm + b0, M);
            for (int i = 0; i < M; ++i)
                for (int k = 0; k < K; ++k)
                    bb.eps[i * K + k] = fr_rng_normal(5, FR_STREAM_EPS, (uint32_t)step, (uint64_t)perm[b0 + i] * K + k);
            memset(g, 0, sizeof(double) * m.n_params);
            fr_terms tm;
            double loss;
            CU_ASSERT_EQUAL_FATAL(fr_model_loss_grad(&m, p, &bb.b, ws, g, &tm, &loss), FR_OK);
            fr_adam_step(&cfg, step, m.n_params, p, g, m1, m2);
            acc += loss, ++nb;
        }
        ep_loss[ep] = acc / nb;
    }
    double secs = fr_wtime() - t0;
    double win[WIN] = {0};
    for (int ep = 0; ep < EPOCHS; ++ep) win[ep * WIN / EPOCHS] += ep_loss[ep] / (EPOCHS / WIN);
    double r2 = heldout_r2(&m, p, ws);
    printf("\n  %d epochs, %ld steps in %.2f s; window mean losses %.4f %.4f %.4f %.4f\n", EPOCHS, step, secs, win[0],
           win[1], win[2], win[3]);
    printf("  held-out R^2: fitted %.4f, generating model %.4f\n", r2, r2_true);
    for (int w = 1; w < WIN; ++w) CU_ASSERT(win[w] < win[w - 1]);
    CU_ASSERT(r2 > r2_true - 0.02);
    CU_ASSERT(r2_true > 0.5); /* the task is not trivial noise */
    free(truth), free(p), free(g), free(m1), free(m2);
    fr_ws_free(ws);
}

static void reg(void)
{
    CU_pSuite s = CU_add_suite("model_train", NULL, NULL);
    CU_add_test(s, "Adam on synthetic FacRNN data", test_train);
}

int main(int argc, char **argv) { return fr_test_main(argc, argv, reg); }
