/* tool_bench_kernels: the C side of the benchmark harness (tests/bench/run.sh).
 * Prints one JSON object: the BLAS build (core type, config), and for a
 * model of N channels, K latents in groups of 2 and minibatch M, the time
 * of one training step (fr_model_loss_grad), of the five DGEMM products of
 * the same shapes alone, and the FLOP rates of both (the step's nominal
 * FLOPs are those of its five products, 10 M N K).
 * Times are thread CPU time, the minimum over blocks of repetitions, so
 * other load on a shared machine inflates them as little as possible.
 * Usage: tool_bench_kernels N K M reps */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "facrnn/model.h"
#include "facrnn/rng.h"

char *openblas_get_corename(void);
char *openblas_get_config(void);

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (argc < 5) {
        fprintf(stderr, "usage: tool_bench_kernels N K M reps\n");
        return 2;
    }
    int N = atoi(argv[1]), K = atoi(argv[2]), M = atoi(argv[3]), reps = atoi(argv[4]);
    fr_model_spec s;
    memset(&s, 0, sizeof s);
    s.N = N, s.K = K, s.L = 1, s.psi[0] = 1, s.G = K / 2;
    for (int g = 0; g < s.G; ++g) s.group_size[g] = 2;
    s.group_size[s.G - 1] += K - 2 * s.G;
    s.beta = 20, s.n_train = 100000, s.batch_size = M;
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
    double loss, step = 1e30, gemm = 1e30;
    int blk = reps / 10 > 0 ? reps / 10 : 1;
    /* the same five products as a step: mu = H B^T, eta = Z A^T, dA = dEta^T Z,
     * dZ = dEta A, dB = dMu^T H */
    double *H = malloc(8 * (size_t)M * N), *E = malloc(8 * (size_t)M * N), *Z = malloc(8 * (size_t)M * K);
    double *Aw = malloc(8 * (size_t)N * K), *Bw = malloc(8 * (size_t)K * N), *D = malloc(8 * (size_t)M * K);
    memcpy(H, sx, 8 * (size_t)M * N), memcpy(E, x, 8 * (size_t)M * N);
    for (size_t q = 0; q < (size_t)N * K; ++q) Aw[q] = p[m.off_A + q], Bw[q] = p[m.off_B + q];
    memcpy(Z, eps, 8 * (size_t)M * K);
    for (int r = 0; r < 10; ++r) {
        double t0 = cpu_now();
        for (int q = 0; q < blk; ++q) fr_model_loss_grad(&m, p, &b, ws, g, &t, &loss);
        double el = (cpu_now() - t0) / blk;
        step = el < step ? el : step;
        t0 = cpu_now();
        for (int q = 0; q < blk; ++q) {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, N, 1.0, H, N, Bw, N, 0.0, D, K);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0, Z, K, Aw, K, 0.0, E, N);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M, 1.0, E, N, Z, K, 1.0, Aw, K);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N, 1.0, E, N, Aw, K, 0.0, D, K);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, M, 1.0, D, K, H, N, 1.0, Bw, N);
        }
        el = (cpu_now() - t0) / blk;
        gemm = el < gemm ? el : gemm;
    }
    double flops = 10.0 * M * (double)N * K;
    printf("{\"N\": %d, \"K\": %d, \"M\": %d, \"groups_of\": 2, \"step_s\": %.9g, \"dgemm5_s\": %.9g, "
           "\"step_gflops\": %.6g, \"dgemm_gflops\": %.6g, \"step_vs_dgemm\": %.6g, "
           "\"blas_core\": \"%s\", \"blas_config\": \"%s\"}\n",
           N, K, M, step, gemm, flops / step * 1e-9, flops / gemm * 1e-9, gemm / step, openblas_get_corename(),
           openblas_get_config());
    fr_ws_free(ws);
    MPI_Finalize();
    return 0;
}
