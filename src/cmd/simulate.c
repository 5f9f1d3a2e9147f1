/* simulate: the `facrnn simulate` command: generative rollouts of a fitted
 * run on the trials of a data file, with optional perturbations, written in
 * the input format. The rollout maths is in rollout.c (simulate.h).
 *
 * The rollout equations, the options (--mode, --seed, --silence,
 * --remove-group), the scores and the output file are documented in
 * docs/model.md ("Simulate a fitted run") and docs/formats.md ("Simulation
 * output").
 *
 * Trials are independent: each rank simulates its own contiguous block of
 * trials (the same shard plan as fit) and writes its rows of /data,
 * /inputs and /behavior collectively with parallel HDF5; the file is
 * written as "<out>.tmp" and published (atomic.h) only after a clean close.
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/cli.h"
#include "facrnn/fitted.h"
#include "facrnn/results.h"
#include "facrnn/simulate.h"

typedef struct {
    const char *results, *data, *out, *run;
    fr_sim_mode mode;
    uint64_t seed;
    const char *silence; /* "3,7" or NULL */
    int remove_group;    /* -1: none */
    int help;
} sim_args;

static void sim_usage(void)
{
    printf("usage: [mpirun -n P] facrnn simulate RESULTS.h5 --data FILE --out FILE [--run ID]\n"
           "       [--mode mean|sampled] [--seed S] [--silence CH,CH,...] [--remove-group G]\n\n"
           "Generative rollouts of a fitted run from the first L bins of every trial of FILE,\n"
           "fed back on their own predictions; written in the input format with the rollout\n"
           "R^2 per trial and of condition-averaged PSTHs. Channels and groups are 0-based.\n");
}

static fr_err parse_int(const char *opt, const char *v, long long lo, long long *out)
{
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || x < lo) return FR_FAIL(FR_EUSAGE, "%s %s: expected an integer >= %lld", opt, v, lo);
    *out = x;
    return FR_OK;
}

static fr_err parse_sim_args(int argc, char **argv, sim_args *a)
{
    memset(a, 0, sizeof *a);
    a->remove_group = -1;
    const char *mode = NULL, *seed = NULL, *remove = NULL;
    const fr_cli_opt opts[] = {{"--data", &a->data, NULL},       {"--out", &a->out, NULL},
                               {"--run", &a->run, NULL},         {"--mode", &mode, NULL},
                               {"--seed", &seed, NULL},          {"--silence", &a->silence, NULL},
                               {"--remove-group", &remove, NULL}};
    TRY(fr_cli_results_args(argc, argv, opts, 7, &a->results, &a->help));
    if (a->help) return FR_OK;
    long long v = 0;
    if (mode && !strcmp(mode, "mean")) a->mode = FR_SIM_MEAN;
    else if (mode && !strcmp(mode, "sampled")) a->mode = FR_SIM_SAMPLED;
    else if (mode) return FR_FAIL(FR_EUSAGE, "--mode %s: expected mean or sampled", mode);
    if (seed) {
        TRY(parse_int("--seed", seed, 0, &v));
        a->seed = (uint64_t)v;
    }
    if (remove) {
        TRY(parse_int("--remove-group", remove, 0, &v));
        a->remove_group = (int)(v > 1 << 30 ? 1 << 30 : v);
    }
    if (!a->data) return FR_FAIL(FR_EUSAGE, "simulate: missing --data FILE");
    if (!a->out) return FR_FAIL(FR_EUSAGE, "simulate: missing --out FILE");
    return FR_OK;
}

/* --silence "3,7" -> sil (N). */
static fr_err parse_silence(const char *s, int N, unsigned char *sil)
{
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0) return FR_FAIL(FR_EUSAGE, "--silence %s: expected channel numbers like 3,7", s);
        if (v >= N) return FR_FAIL(FR_EINVAL, "--silence: channel %ld is out of range (the data have %d channels, 0-based)", v, N);
        sil[v] = 1;
        if (*end == ',') p = end + 1;
        else if (*end) return FR_FAIL(FR_EUSAGE, "--silence %s: unexpected '%c'", s, *end);
        else p = end;
    }
    return FR_OK;
}

/* Condition-averaged PSTH R^2 (NaN without /trial_condition). Collective. */
static fr_err psth_r2(MPI_Comm comm, const fr_dataset *ds, int L, const double *sim, const unsigned char *sil,
                      int *n_cond, double *out)
{
    *out = NAN;
    *n_cond = 0;
    if (!ds->condition) return FR_OK;
    int N = ds->N;
    long long nt = ds->n_trials, Tmax = 0;
    int *labels;
    TRY(FR_CALLOC(labels, nt));
    int C = 0;
    for (long long k = 0; k < nt; ++k) {
        long long T = ds->offsets[k + 1] - ds->offsets[k];
        if (T > Tmax) Tmax = T;
        int seen = 0;
        for (int c = 0; c < C && !seen; ++c) seen = labels[c] == ds->condition[k];
        if (!seen) labels[C++] = ds->condition[k];
    }
    size_t cells = (size_t)C * (size_t)Tmax;
    /* acc: (cells, W) sums of x, sim and counts; with missing values the
     * sums are over observed entries and their counts per channel follow
     * (W = 3N + 1), and a cell's channel never observed is left out */
    const unsigned char *mask = ds->mask;
    size_t W = 2 * (size_t)N + 1 + (mask ? (size_t)N : 0);
    double *acc = NULL, *px = NULL, *ps = NULL;
    unsigned char *pobs = NULL; /* (cells, N) with a mask: 1 where the cell's channel was observed */
    fr_err rc = FR_CALLOC(acc, cells * W);
    if (rc == FR_OK) rc = FR_CALLOC(px, cells * N);
    if (rc == FR_OK) rc = FR_CALLOC(ps, cells * N);
    if (rc == FR_OK && mask) rc = FR_CALLOC(pobs, cells * N);
    if (rc == FR_OK) {
        for (long long k = ds->trial_lo; k < ds->trial_hi; ++k) {
            int c = 0;
            while (labels[c] != ds->condition[k]) ++c;
            long long a = ds->offsets[k] - ds->row_lo, T = ds->offsets[k + 1] - ds->offsets[k];
            for (long long t = L; t < T; ++t) {
                double *cell = acc + ((size_t)c * Tmax + t) * W;
                const unsigned char *o = mask ? mask + (a + t) * N : NULL;
                for (int n = 0; n < N; ++n) {
                    if (o && !o[n]) continue;
                    cell[n] += ds->x[(a + t) * N + n];
                    cell[N + n] += sim[(a + t) * N + n];
                    if (o) cell[2 * N + 1 + n] += 1;
                }
                cell[2 * N] += 1;
            }
        }
    }
    rc = fr_error_agree(&comm, rc);
    if (rc == FR_OK)
        CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, acc, (int)(cells * W), MPI_DOUBLE, MPI_SUM, comm));
    if (rc == FR_OK) {
        long long rows = 0;
        for (size_t q = 0; q < cells; ++q) {
            const double *cell = acc + q * W;
            if (cell[2 * N] < 1) continue;
            for (int n = 0; n < N; ++n) {
                double cnt = mask ? cell[2 * N + 1 + n] : cell[2 * N];
                if (mask) pobs[rows * N + n] = cnt > 0;
                px[rows * N + n] = cnt > 0 ? cell[n] / cnt : 0.0;
                ps[rows * N + n] = cnt > 0 ? cell[N + n] / cnt : 0.0;
            }
            ++rows;
        }
        *out = fr_sim_r2(N, 0, rows, px, ps, sil, pobs);
        *n_cond = C;
    }
    free(labels);
    free(acc);
    free(px);
    free(ps);
    free(pobs);
    return rc;
}

static fr_err write_output(MPI_Comm comm, const sim_args *a, const fr_fitted_run *run, const fr_model *m,
                           const fr_dataset *ds, const double *sim, const double *trial_r2, double rollout_r2,
                           double psth, int n_cond)
{
    fr_results out;
    TRY(fr_results_create(comm, a->out, 1, &out));
    hid_t f = out.file;
    fr_err rc = fr_results_write_rows(f, "data", ds, ds->N, sim);
    hsize_t dT[1] = {(hsize_t)ds->n_trials + 1}, dn[1] = {(hsize_t)ds->n_trials};
    if (rc == FR_OK) rc = fr_h5_write_small(f, "trial_offsets", H5T_NATIVE_LLONG, out.rank, 1, dT, ds->offsets);
    if (rc == FR_OK && ds->u && ds->D > 0) rc = fr_results_write_rows(f, "inputs", ds, ds->D, ds->u);
    if (rc == FR_OK && ds->behavior && ds->P > 0) rc = fr_results_write_rows(f, "behavior", ds, ds->P, ds->behavior);
    if (rc == FR_OK && ds->condition)
        rc = fr_h5_write_small(f, "trial_condition", H5T_NATIVE_INT, out.rank, 1, dn, ds->condition);
    if (rc == FR_OK) {
        hid_t g = H5Gcreate2(f, "simulation", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) rc = FR_FAIL(FR_EIO, "%s: cannot create /simulation", a->out);
        else {
            rc = fr_h5_write_small(g, "trial_r2", H5T_NATIVE_DOUBLE, out.rank, 1, dn, trial_r2);
            H5Gclose(g);
        }
    }
    const char *obs = m->spec.obs == FR_OBS_POISSON && a->mode == FR_SIM_SAMPLED ? "poisson" : "gaussian";
    char desc[2048];
    snprintf(desc, sizeof desc, "facrnn simulate: %s rollouts of run %s of %s on %s (seed %llu, silence %s, remove-group %d)",
             a->mode == FR_SIM_SAMPLED ? "sampled" : "mean", run->run_id, a->results, a->data,
             (unsigned long long)a->seed, a->silence ? a->silence : "none", a->remove_group);
    if (rc == FR_OK) rc = fr_h5_attr_int(f, "format_version", FR_INPUT_FORMAT_VERSION);
    if (rc == FR_OK) rc = fr_h5_attr_str(f, "observation", obs);
    if (rc == FR_OK && ds->bin_size_s > 0) rc = fr_h5_attr_double(f, "bin_size_s", ds->bin_size_s);
    if (rc == FR_OK) rc = fr_h5_attr_str(f, "description", desc);
    if (rc == FR_OK) rc = fr_h5_attr_str(f, "source_results", a->results);
    if (rc == FR_OK) rc = fr_h5_attr_str(f, "source_run", run->run_id);
    if (rc == FR_OK) rc = fr_h5_attr_str(f, "source_data", a->data);
    if (rc == FR_OK) rc = fr_h5_attr_str(f, "mode", a->mode == FR_SIM_SAMPLED ? "sampled" : "mean");
    if (rc == FR_OK) rc = fr_h5_attr_int(f, "seed", (long long)a->seed);
    if (rc == FR_OK) rc = fr_h5_attr_str(f, "silence", a->silence ? a->silence : "");
    if (rc == FR_OK) rc = fr_h5_attr_int(f, "remove_group", a->remove_group);
    if (rc == FR_OK) rc = fr_h5_attr_double(f, "rollout_r2", rollout_r2);
    if (rc == FR_OK) rc = fr_h5_attr_double(f, "psth_r2", psth);
    if (rc == FR_OK) rc = fr_h5_attr_int(f, "psth_conditions", n_cond);
    rc = fr_error_agree(&comm, rc);
    if (rc != FR_OK) {
        fr_results_abort(&out);
        return rc;
    }
    return fr_results_close(&out);
}

fr_err fr_cmd_simulate(int argc, char **argv)
{
    MPI_Comm comm = MPI_COMM_WORLD;
    int rank;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    sim_args a;
    TRY(parse_sim_args(argc, argv, &a)); /* same argv everywhere: every rank agrees */
    if (a.help) {
        if (rank == 0) sim_usage();
        return FR_OK;
    }
    fr_fitted_data *fd;
    TRY(FR_CALLOC(fd, 1));
    double *params = NULL, *sim = NULL, *trial_r2 = NULL, *xs = NULL;
    unsigned char *sil = NULL;
    fr_sim_ws *ws = NULL;
    fr_err rc = fr_results_check_writable(comm, a.out);
    /* inputs are copied to the output whether or not the model uses them */
    if (rc == FR_OK) rc = fr_fitted_data_open(comm, a.results, a.run, a.data, FR_FD_ALL_INPUTS | FR_FD_NO_TRUTH, fd);
    const fr_fitted_run *run = &fd->run;
    const fr_dataset *ds = &fd->ds;
    const fr_model *m = &fd->m;
    long long Tmax = fd->Tmax, rows = ds->row_hi - ds->row_lo;
    if (rc == FR_OK) rc = FR_CALLOC(params, m->n_params);
    if (rc == FR_OK) {
        memcpy(params, run->flat, m->n_params * sizeof(double));
        if (a.remove_group >= 0) rc = fr_sim_remove_group(m, params, a.remove_group);
    }
    if (rc == FR_OK) rc = FR_CALLOC(sil, ds->N);
    if (rc == FR_OK && a.silence) rc = parse_silence(a.silence, ds->N, sil);
    if (rc == FR_OK) rc = FR_CALLOC(trial_r2, ds->n_trials ? ds->n_trials : 1);
    rc = fr_error_agree(&comm, rc);
    /* the rollouts: this rank's trials */
    double sums[2] = {0, 0}; /* sum of finite trial R^2, count */
    if (rc == FR_OK) {
        fr_err lrc = FR_CALLOC(sim, (rows ? rows : 1) * ds->N);
        /* the rollouts start from the data in the model's units (the run's
         * stored transform) and are reported in the data's units */
        const double *xm = ds->x;
        if (lrc == FR_OK && fd->st.mode != FR_STD_OFF) {
            lrc = FR_CALLOC(xs, (rows ? rows : 1) * ds->N);
            if (lrc == FR_OK) {
                memcpy(xs, ds->x, (size_t)rows * ds->N * sizeof(double));
                fr_std_apply(&fd->st, rows, xs, ds->mask);
                xm = xs;
            }
        }
        if (lrc == FR_OK) lrc = fr_sim_ws_create(m, Tmax, &ws);
        fr_sim_opts o = {a.mode, a.seed, sil};
        int D = m->spec.D;
        for (long long k = ds->trial_lo; k < ds->trial_hi && lrc == FR_OK; ++k) {
            long long r0 = ds->offsets[k] - ds->row_lo, T = ds->offsets[k + 1] - ds->offsets[k];
            lrc = fr_sim_trial(m, params, &o, k, T, xm + r0 * ds->N, D ? ds->u + r0 * ds->D : NULL, sim + r0 * ds->N, ws);
            if (lrc == FR_OK) {
                fr_std_invert(&fd->st, T, sim + r0 * ds->N);
                trial_r2[k] = fr_sim_r2(ds->N, r0 + m->spec.L, r0 + T, ds->x, sim, sil, ds->mask);
                if (isfinite(trial_r2[k])) {
                    sums[0] += trial_r2[k];
                    sums[1] += 1;
                }
            }
        }
        rc = fr_error_agree(&comm, lrc);
    }
    double rollout = NAN, psth = NAN;
    int n_cond = 0;
    if (rc == FR_OK) {
        /* every rank's entries are its own trials' (others 0): a sum gathers them */
        CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, trial_r2, (int)ds->n_trials, MPI_DOUBLE, MPI_SUM, comm));
        CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, comm));
        rollout = sums[1] > 0 ? sums[0] / sums[1] : NAN;
        rc = psth_r2(comm, ds, m->spec.L, sim, sil, &n_cond, &psth);
    }
    if (rc == FR_OK) rc = write_output(comm, &a, run, m, ds, sim, trial_r2, rollout, psth, n_cond);
    if (rc == FR_OK) {
        LOG_INFO("simulate: run %s, %s mode, %lld trials -> %s", run->run_id,
                 a.mode == FR_SIM_SAMPLED ? "sampled" : "mean", ds->n_trials, a.out);
        LOG_INFO("rollout R2 (mean over trials): %.6f", rollout);
        if (n_cond > 0) LOG_INFO("PSTH R2 (%d conditions): %.6f", n_cond, psth);
        else LOG_INFO("PSTH R2: n/a (no /trial_condition)");
    }
    fr_sim_ws_free(ws);
    free(params);
    free(sim);
    free(xs);
    free(trial_r2);
    free(sil);
    fr_fitted_data_free(fd);
    free(fd);
    return rc;
}
