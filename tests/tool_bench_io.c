/* tool_bench_io: results I/O benchmark for tests/bench/run.sh.
 * Writes one run's results (a small model, and latents of `bins` x K doubles
 * split over the ranks by the shard plan) through fr_results_create /
 * write_root / write_run / close, and compares the bandwidth with a plain
 * sequential write of the same latent bytes by one process (fwrite) to the
 * same directory. Both timings end with an fsync of the file, so they
 * measure the disk rather than the page cache; the minimum over `reps`
 * repetitions is kept. Prints one JSON object on rank 0.
 * Usage: mpirun -n P tool_bench_io DIR bins K trials reps */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "facrnn/results.h"
#include "facrnn/rng.h"

static void die(const char *what)
{
    fprintf(stderr, "tool_bench_io: %s: %s\n", what, fr_error_msg());
    MPI_Abort(MPI_COMM_WORLD, 2);
}

static void fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 6) {
        if (rank == 0) fprintf(stderr, "usage: tool_bench_io DIR bins K trials reps\n");
        MPI_Finalize();
        return 2;
    }
    const char *dir = argv[1];
    long long bins = atoll(argv[2]), n_trials = atoll(argv[4]);
    int K = atoi(argv[3]), reps = atoi(argv[5]), N = 8;

    /* A data set of n_trials equal trials with only the metadata the writer reads. */
    fr_dataset ds;
    memset(&ds, 0, sizeof ds);
    snprintf(ds.path, sizeof ds.path, "bench_io_input.h5");
    ds.n_trials = n_trials;
    ds.total_bins = bins;
    ds.N = N;
    ds.offsets = calloc((size_t)n_trials + 1, sizeof *ds.offsets);        /* (n_trials + 1) */
    long long *first = calloc((size_t)size + 1, sizeof *first);            /* (size + 1) */
    unsigned char *split = calloc((size_t)n_trials, 1);                    /* (n_trials) */
    for (long long k = 0; k <= n_trials; ++k) ds.offsets[k] = bins * k / n_trials;
    for (long long k = 0; k < n_trials; ++k) split[k] = 1;
    if (fr_shard_plan(n_trials, ds.offsets, 1, size, first) != FR_OK) die("shard plan");
    ds.trial_lo = first[rank];
    ds.trial_hi = first[rank + 1];
    ds.row_lo = ds.offsets[ds.trial_lo];
    ds.row_hi = ds.offsets[ds.trial_hi];
    long long rows = ds.row_hi - ds.row_lo;

    fr_config cfg;
    fr_config_defaults(&cfg);
    cfg.rank = K;
    fr_fit_result res;
    memset(&res, 0, sizeof res);
    fr_model_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.N = N, spec.K = K, spec.L = 1, spec.psi[0] = 1, spec.G = 1, spec.group_size[0] = K;
    spec.beta = 0, spec.n_train = bins, spec.batch_size = 128;
    if (fr_model_init(&res.model, &spec) != FR_OK) die("model");
    res.params = calloc(res.model.n_params, sizeof(double)); /* (n_params) */
    fr_model_init_params(&res.model, res.params, 1);
    res.epochs_done = 1;
    res.history = calloc(FR_H_NCOL, sizeof(double));          /* (1, FR_H_NCOL) */
    res.latents = malloc((size_t)(rows ? rows : 1) * K * sizeof(double)); /* (rows, K) */
    for (long long q = 0; q < rows * K; ++q)
        res.latents[q] = fr_rng_normal(7, 0, 0, (uint64_t)(ds.row_lo * K + q));

    char path[2048], seq[2048];
    snprintf(path, sizeof path, "%s/bench_io_results.h5", dir);
    snprintf(seq, sizeof seq, "%s/bench_io_plain.bin", dir);
    double bytes = (double)bins * K * sizeof(double);
    double best_par = 1e300, best_seq = 1e300;
    for (int r = 0; r < reps; ++r) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = fr_wtime();
        fr_results out;
        if (fr_results_create(MPI_COMM_WORLD, path, 1, &out) != FR_OK) die("create");
        if (fr_results_write_root(&out, &cfg, &ds) != FR_OK) die("write_root");
        if (fr_results_write_run(&out, "bench", &cfg, &ds, split, &res, "complete") != FR_OK) die("write_run");
        if (fr_results_close(&out) != FR_OK) die("close");
        if (rank == 0) fsync_path(path);
        MPI_Barrier(MPI_COMM_WORLD);
        double dt = fr_wtime() - t0;
        if (dt < best_par) best_par = dt;
        if (rank == 0) unlink(path);

        /* The plain sequential write of the same bytes, by rank 0 alone. The
         * whole latent matrix is generated here (not timed). */
        if (rank == 0) {
            double *all = malloc((size_t)bins * K * sizeof(double)); /* (bins, K) */
            for (long long q = 0; q < bins * K; ++q) all[q] = fr_rng_normal(7, 0, 0, (uint64_t)q);
            double s0 = fr_wtime();
            FILE *f = fopen(seq, "wb");
            if (!f || fwrite(all, sizeof(double), (size_t)bins * K, f) != (size_t)bins * K) {
                fprintf(stderr, "tool_bench_io: cannot write %s\n", seq);
                MPI_Abort(MPI_COMM_WORLD, 2);
            }
            fflush(f);
            fsync(fileno(f));
            fclose(f);
            double ds_ = fr_wtime() - s0;
            if (ds_ < best_seq) best_seq = ds_;
            unlink(seq);
            free(all);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    if (rank == 0)
        printf("{\"ranks\": %d, \"bins\": %lld, \"K\": %d, \"bytes\": %.0f, \"parallel_s\": %.6f, "
               "\"sequential_s\": %.6f, \"parallel_MBps\": %.2f, \"sequential_MBps\": %.2f, \"ratio\": %.4f}\n",
               size, bins, K, bytes, best_par, best_seq, bytes / best_par / 1e6, bytes / best_seq / 1e6,
               best_seq / best_par);
    free(ds.offsets);
    free(first);
    free(split);
    free(res.params);
    free(res.history);
    free(res.latents);
    MPI_Finalize();
    return 0;
}
