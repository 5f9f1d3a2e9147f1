/* tool_model_bench: times one training step of the model core (fast BLAS
 * path vs the loop reference) and the PC rows kernel, single process.
 * Times are thread CPU time, the minimum over 10 blocks (robust to load on a shared machine).
 * Usage: tool_model_bench [N K M reps] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "facrnn/model.h"
#include "facrnn/rng.h"

/* CPU seconds of this thread: on a loaded machine wall time also counts
 * the time other processes held the core. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int N = argc > 1 ? atoi(argv[1]) : 154, K = argc > 2 ? atoi(argv[2]) : 6, M = argc > 3 ? atoi(argv[3]) : 128;
    int reps = argc > 4 ? atoi(argv[4]) : 200;
    fr_model_spec s;
    memset(&s, 0, sizeof s);
    s.N = N, s.K = K, s.L = 1, s.psi[0] = 1, s.G = 2, s.group_size[0] = K / 2, s.group_size[1] = K - K / 2;
    s.beta = 2, s.n_train = 100000, s.batch_size = M;
    fr_model m;
    if (fr_model_init(&m, &s) != FR_OK) {
        fprintf(stderr, "%s\n", fr_error_msg());
        return 2;
    }
    double *p = calloc(m.n_params, 8), *g = calloc(m.n_params, 8), *x = malloc(8 * (size_t)M * N);
    double *sx = malloc(8 * (size_t)M * N), *eps = malloc(8 * (size_t)M * K);
    const double **xp = malloc(sizeof(double *) * M), **sxp = malloc(sizeof(double *) * M);
    for (size_t q = 0; q < (size_t)M * N; ++q) x[q] = fr_rng_normal(1, 5, 0, q), sx[q] = tanh(fr_rng_normal(1, 5, 1, q));
    for (size_t q = 0; q < (size_t)M * K; ++q) eps[q] = fr_rng_normal(1, 5, 2, q);
    for (int i = 0; i < M; ++i) xp[i] = x + (size_t)i * N, sxp[i] = sx + (size_t)i * N;
    fr_batch b = {M, xp, sxp, NULL, eps, NULL};
    fr_model_init_params(&m, p, 3);
    fr_ws *ws;
    if (fr_ws_create(&m, M, M, &ws) != FR_OK) return 1;
    fr_terms t;
    double loss, t0, fast = 1e30;
    /* minimum over 10 blocks: robust to other load on a shared machine */
    for (int blk = 0; blk < 10; ++blk) {
        t0 = cpu_now();
        for (int r = 0; r < reps / 10 + 1; ++r) fr_model_loss_grad(&m, p, &b, ws, g, &t, &loss);
        double el = (cpu_now() - t0) / (reps / 10 + 1);
        fast = el < fast ? el : fast;
    }
    int rr = reps / 10 > 0 ? reps / 10 : 1;
    t0 = cpu_now();
    for (int r = 0; r < rr; ++r) fr_model_loss_grad_ref(&m, p, &b, g, &t, &loss);
    double ref = (cpu_now() - t0) / rr;
    double pc, *dz = calloc((size_t)M * K, 8), *dmu = calloc((size_t)M * K, 8);
    double pct = 1e30, pcr = 0;
    for (int blk = 0; blk < 10; ++blk) {
        t0 = cpu_now();
        for (int r = 0; r < reps / 10 + 1; ++r)
            fr_pc_rows(&m, M, fr_ws_mu(ws), fr_ws_z(ws), 0, M, 2.0 / M, &pc, dz, dmu, ws);
        double el = (cpu_now() - t0) / (reps / 10 + 1);
        pct = el < pct ? el : pct;
    }
    t0 = cpu_now();
    for (int r = 0; r < rr; ++r) fr_pc_rows_ref(&m, M, fr_ws_mu(ws), fr_ws_z(ws), 0, M, 2.0 / M, &pc, dz, dmu);
    pcr = (cpu_now() - t0) / rr;
    printf("N=%d K=%d M=%d: loss_grad fast %.1f us, reference %.1f us (x%.1f); pc_rows %.1f us (reference %.1f us)\n", N, K, M,
           fast * 1e6, ref * 1e6, ref / fast, pct * 1e6, pcr * 1e6);
    fr_ws_free(ws);
    MPI_Finalize();
    return 0;
}
