/* core_only: a program linked against the core library alone (no MPI, no
 * HDF5, no libyaml on its link line or include path). It proves the
 * layering the build promises: the model, its gradient, the reference path,
 * Adam and a synthetic generator all work without the distributed and file
 * layers. It also checks that they give sensible numbers, so a broken core
 * fails here first. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/model.h"
#include "facrnn/rng.h"
#include "facrnn/synth.h"

enum { N = 6, M = 8, L = 2 };
static int passed, failed;

static void check(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "PASS" : "FAIL", what);
    if (ok) ++passed;
    else ++failed;
}

int main(void)
{
    fr_model_spec spec = {.N = N, .K = 4, .D = 0, .L = L, .G = 2, .group_size = {2, 2}, .obs = FR_OBS_GAUSSIAN,
                          .nonlin = FR_NL_TANH, .psi_learned = 1, .beta = 2.0, .n_train = 100, .batch_size = M};
    fr_model m;
    check(fr_model_init(&m, &spec) == FR_OK, "model spec 2+2, L = 2, learned psi is accepted");
    double x[M][N], sx[M * L][N], eps[M * 4];
    const double *xp[M], *sxp[M * L];
    for (int i = 0; i < M; ++i) {
        for (int n = 0; n < N; ++n) x[i][n] = fr_rng_normal(7, FR_STREAM_SYNTH, 1, (uint64_t)(i * N + n));
        xp[i] = x[i];
        for (int k = 0; k < 4; ++k) eps[i * 4 + k] = fr_rng_normal(7, FR_STREAM_SYNTH, 2, (uint64_t)(i * 4 + k));
    }
    for (int r = 0; r < M * L; ++r) {
        for (int n = 0; n < N; ++n) sx[r][n] = tanh(fr_rng_normal(7, FR_STREAM_SYNTH, 3, (uint64_t)(r * N + n)));
        sxp[r] = sx[r];
    }
    fr_batch b = {.m = M, .x = xp, .sx = sxp, .u = NULL, .eps = eps};
    size_t P = m.n_params;
    double *p = calloc(P, sizeof *p), *g = calloc(P, sizeof *g), *gr = calloc(P, sizeof *gr);
    double *g2 = calloc(P, sizeof *g2), *m1 = calloc(P, sizeof *m1), *m2 = calloc(P, sizeof *m2);
    fr_model_init_params(&m, p, 11);
    fr_ws *ws = NULL;
    check(fr_ws_create(&m, M, M, &ws) == FR_OK, "workspace");
    fr_terms t, tr;
    double loss = NAN, loss_ref = NAN;
    check(fr_model_loss_grad(&m, p, &b, ws, g, &t, &loss) == FR_OK && isfinite(loss), "fast loss is finite");
    check(fr_model_loss_grad_ref(&m, p, &b, gr, &tr, &loss_ref) == FR_OK, "reference loss");
    double worst = 0;
    for (size_t q = 0; q < P; ++q) worst = fmax(worst, fabs(g[q] - gr[q]) / fmax(1e-8, fabs(gr[q])));
    check(fabs(loss - loss_ref) <= 1e-12 * fabs(loss_ref) && worst <= 1e-10, "fast and reference gradients agree");
    /* One central difference on every entry (5-point stencil). */
    int bad = 0;
    for (size_t q = 0; q < P; ++q) {
        double h = 1e-3, p0 = p[q], f[4];
        const double off[4] = {h, -h, 2 * h, -2 * h};
        for (int j = 0; j < 4; ++j) {
            p[q] = p0 + off[j];
            memset(g2, 0, P * sizeof *g2);
            fr_model_loss_grad(&m, p, &b, ws, g2, &t, &f[j]);
        }
        p[q] = p0;
        double fd = (8 * (f[0] - f[1]) - (f[2] - f[3])) / (12 * h);
        bad += fabs(fd - g[q]) > 1e-6 * fmax(1.0, fabs(g[q]));
    }
    check(bad == 0, "finite differences match the gradient on every entry");
    /* Adam lowers the loss on this fixed batch. */
    fr_adam_cfg ac = {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0};
    double first = loss, last = loss;
    for (long s = 1; s <= 200; ++s) {
        memset(g, 0, P * sizeof *g);
        fr_model_loss_grad(&m, p, &b, ws, g, &t, &last);
        fr_adam_step(&ac, s, P, p, g, m1, m2);
    }
    check(last < first, "200 Adam steps lower the loss");
    /* A synthetic generator from the core, without its writer. */
    fr_synth_spec ss;
    fr_synth_data d;
    int ok = fr_synth_spec_init(&ss, "lorenz-thomas") == FR_OK && fr_synth_spec_set(&ss, "trials=4") == FR_OK &&
             fr_synth_generate(&ss, &d) == FR_OK;
    check(ok && d.n_trials == 4 && d.K == 6, "lorenz-thomas generated in memory (4 trials, K = 6)");
    if (ok) fr_synth_free(&d);
    fr_ws_free(ws);
    free(p), free(g), free(gr), free(g2), free(m1), free(m2);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
