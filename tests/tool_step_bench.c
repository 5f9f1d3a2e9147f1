/* tool_step_bench: the time of one optimiser step of a real fit, as the
 * trainer runs it (gather, PC rows, backward, reductions, Adam, and the
 * loop's own bookkeeping between steps). Loads CONFIG like `facrnn fit`
 * (with --set overrides), trains without checkpoints or a results file,
 * and times every step through the trainer's between-steps hook: thread
 * CPU time and wall time from one hook call to the next. Prints one JSON
 * object on rank 0 with the step count, the minimum, 10th percentile and
 * median of both (the minimum and low percentiles are what a quiet core
 * would see; other load on a shared machine only adds to single steps).
 * Set train.eval_every large to keep evaluation out of the percentiles.
 * Usage: mpirun -n P tool_step_bench CONFIG [--set key=value]... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "facrnn/config.h"
#include "facrnn/dataset.h"
#include "facrnn/fit_input.h"
#include "facrnn/fit_result.h"
#include "facrnn/trainer.h"

enum { MAX_SETS = 64 };

typedef struct {
    double *cpu, *wall; /* (cap) per-step times, seconds */
    long n, cap;
    double last_cpu, last_wall;
} step_clock;

static double now(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void on_step(void *ctx)
{
    step_clock *c = ctx;
    double cpu = now(CLOCK_THREAD_CPUTIME_ID), wall = now(CLOCK_MONOTONIC);
    if (c->last_wall > 0 && c->n < c->cap) {
        c->cpu[c->n] = cpu - c->last_cpu;
        c->wall[c->n] = wall - c->last_wall;
        ++c->n;
    }
    c->last_cpu = cpu, c->last_wall = wall;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q-quantile of the sorted x (n >= 1). */
static double quantile(const double *x, long n, double q) { return x[(long)(q * (double)(n - 1))]; }

static void die(const char *what)
{
    fprintf(stderr, "tool_step_bench: %s: %s\n", what, fr_error_msg());
    MPI_Abort(MPI_COMM_WORLD, 2);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (argc < 2) {
        if (rank == 0) fprintf(stderr, "usage: tool_step_bench CONFIG [--set key=value]...\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    char *sets[MAX_SETS];
    int nset = 0;
    for (int i = 2; i < argc; ++i) {
        if (strcmp(argv[i], "--set") || i + 1 >= argc || nset == MAX_SETS) {
            if (rank == 0) fprintf(stderr, "tool_step_bench: expected --set key=value, got %s\n", argv[i]);
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
        sets[nset++] = argv[++i];
    }
    static fr_config cfg;
    if (fr_config_load(MPI_COMM_WORLD, argv[1], nset, sets, 1, &cfg) != FR_OK) die("config");
    fr_dataset ds;
    memset(&ds, 0, sizeof ds);
    unsigned char *split = NULL;
    if (fr_fit_prepare(MPI_COMM_WORLD, &cfg, &ds, &split) != FR_OK) die("input");
    step_clock c = {0};
    c.cap = 10000000;
    c.cpu = malloc(sizeof(double) * (size_t)c.cap);
    c.wall = malloc(sizeof(double) * (size_t)c.cap);
    if (!c.cpu || !c.wall) die("out of memory");
    fr_fit_result res;
    memset(&res, 0, sizeof res);
    fr_trainer_set_between_steps(on_step, &c);
    if (fr_train(MPI_COMM_WORLD, &cfg, &ds, split, NULL, &res) != FR_OK) die("training");
    fr_trainer_set_between_steps(NULL, NULL);
    if (rank == 0) {
        if (c.n < 1) {
            fprintf(stderr, "tool_step_bench: fewer than two steps: nothing to time\n");
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
        qsort(c.cpu, (size_t)c.n, sizeof(double), cmp_d);
        qsort(c.wall, (size_t)c.n, sizeof(double), cmp_d);
        printf("{\"steps_timed\": %ld, \"cpu_min_us\": %.2f, \"cpu_p10_us\": %.2f, \"cpu_median_us\": %.2f, "
               "\"wall_min_us\": %.2f, \"wall_p10_us\": %.2f, \"wall_median_us\": %.2f}\n",
               c.n, 1e6 * c.cpu[0], 1e6 * quantile(c.cpu, c.n, 0.1), 1e6 * quantile(c.cpu, c.n, 0.5),
               1e6 * c.wall[0], 1e6 * quantile(c.wall, c.n, 0.1), 1e6 * quantile(c.wall, c.n, 0.5));
    }
    fr_fit_result_free(&res);
    free(split);
    fr_dataset_free(&ds);
    free(c.cpu), free(c.wall);
    MPI_Finalize();
    return 0;
}
