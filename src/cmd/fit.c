/* fit: the `facrnn fit CONFIG [--set key=value ...]` command. Loads and
 * validates the config and data collectively, splits trials into folds,
 * runs the data-parallel trainer (resuming from a matching checkpoint),
 * and writes the results file atomically. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "facrnn/checkpoint.h"
#include "facrnn/cli.h"
#include "facrnn/config.h"
#include "facrnn/dataset.h"
#include "facrnn/fit_input.h"
#include "facrnn/outlock.h"
#include "facrnn/results.h"
#include "facrnn/trainer.h"

static void fit_usage(void)
{
    printf("usage: [mpirun -n P] facrnn fit CONFIG.yaml [--set key=value ...] [--restart]\n\n"
           "Fits one configuration; trials are sharded over the ranks. Reruns resume from\n"
           "the checkpoint in output.checkpoint_dir (--restart: remove it and start afresh).\n"
           "The run is added to output.path when that file holds runs of the same data;\n"
           "other configurations' runs in it are kept. Configuration keys:\n\n");
    fr_config_print_help();
}

/* Parse "CONFIG [--set k=v]..." into the config path and override list. */
fr_err fr_cli_config_args(int argc, char **argv, const char **path, int *nset, char **sets, int maxset,
                          void (*usage)(void), int *want_help)
{
    *path = NULL;
    *nset = 0;
    *want_help = 0;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            *want_help = 1;
            return FR_OK;
        } else if (!strcmp(argv[i], "--set")) {
            if (i + 1 >= argc) return FR_FAIL(FR_EUSAGE, "--set needs key=value");
            if (*nset >= maxset) return FR_FAIL(FR_EUSAGE, "too many --set options");
            sets[(*nset)++] = argv[++i];
        } else if (!strncmp(argv[i], "--set=", 6)) {
            if (*nset >= maxset) return FR_FAIL(FR_EUSAGE, "too many --set options");
            sets[(*nset)++] = argv[i] + 6;
        } else if (argv[i][0] == '-') {
            return FR_FAIL(FR_EUSAGE, "%s: unknown option '%s'", argv[0], argv[i]);
        } else if (!*path) {
            *path = argv[i];
        } else {
            return FR_FAIL(FR_EUSAGE, "%s: unexpected argument '%s'", argv[0], argv[i]);
        }
    }
    (void)usage;
    if (!*path) return FR_FAIL(FR_EUSAGE, "%s: missing CONFIG.yaml (see facrnn %s --help)", argv[0], argv[0]);
    return FR_OK;
}

static void log_metrics(const char *what, const fr_fit_metrics *m)
{
    char line[512];
    fr_metrics_text(m, line, sizeof line);
    LOG_INFO("%-8s %s", what, line);
}

fr_err fr_cmd_fit(int argc, char **argv)
{
    MPI_Comm comm = MPI_COMM_WORLD;
    /* First thing: a stop signal during start-up must not kill the job; it
     * is honoured at the first training step. */
    fr_trainer_install_signals();
    fr_phases ph;
    fr_phases_start(&ph, FR_PH_STARTUP, fr_process_start());
    const char *path;
    char **sets = NULL; /* (argc): there are never more --set values than arguments */
    int nset = 0, help = 0, rank;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    TRY(FR_CALLOC(sets, argc));
    /* --restart is fit's own flag; the rest is the common CONFIG [--set] form */
    int restart = 0, nargs = 0;
    char **args = NULL;
    fr_err rc = FR_CALLOC(args, argc + 1);
    for (int i = 0; i < argc && rc == FR_OK; ++i) {
        if (!strcmp(argv[i], "--restart")) restart = 1;
        else args[nargs++] = argv[i];
    }
    if (rc == FR_OK) rc = fr_cli_config_args(nargs, args, &path, &nset, sets, argc, fit_usage, &help);
    free(args);
    if (rc == FR_OK && help) {
        if (rank == 0) fit_usage();
        free(sets);
        return FR_OK;
    }
    fr_config *cfg = NULL;
    if (rc == FR_OK) rc = FR_CALLOC(cfg, 1);
    if (rc == FR_OK) rc = fr_config_load(comm, path, nset, sets, 1, cfg);
    free(sets);
    if (rc != FR_OK) {
        free(cfg);
        return rc;
    }
    static char yaml[1 << 16];
    if (rank == 0 && fr_config_to_yaml(cfg, yaml, sizeof yaml) == FR_OK) LOG_INFO("resolved config:\n%s", yaml);

    fr_dataset ds;
    memset(&ds, 0, sizeof ds);
    unsigned char *split = NULL;
    fr_fit_result res;
    memset(&res, 0, sizeof res);
    char run_id[256], ckpt[FR_CFG_PATH_MAX + 300];
    fr_run_id(cfg, run_id, sizeof run_id);
    fr_outlock lock;
    memset(&lock, 0, sizeof lock);
    rc = fr_results_check_writable(comm, cfg->output_path);
    /* before any work: a second run on this output stops here */
    if (rc == FR_OK) rc = fr_outlock_take(comm, cfg->output_path, NULL, &lock);
    if (rc == FR_OK) rc = fr_fit_prepare(comm, cfg, &ds, &split);
    /* One fit, one data set: the transform goes in place, so the trainer
     * needs no z-scored copy of the data (a sweep keeps its copy per fold). */
    fr_standardize st;
    memset(&st, 0, sizeof st);
    if (rc == FR_OK) rc = fr_fit_standardize(comm, cfg, &ds, split, &st);
    if (rc == FR_OK && st.mode != FR_STD_OFF) {
        fr_std_apply(&st, ds.row_hi - ds.row_lo, ds.x, ds.mask);
        ds.in_model_units = &st;
        LOG_INFO("data.standardize: %s, z-scored with each channel's mean and std over the training trials",
                 cfg->standardize);
    }
    if (rc == FR_OK) {
        char sum[32];
        snprintf(sum, sizeof sum, "%016llx", (unsigned long long)ds.checksum);
        rc = fr_results_check_merge(comm, cfg->output_path, sum, fr_config_fit_hash(cfg), run_id, sizeof run_id);
    }
    if (rc == FR_OK) {
        fr_err mk = rank == 0 ? fr_ckpt_dir_ready(cfg->checkpoint_dir) : FR_OK;
        rc = fr_error_agree(&comm, mk);
        snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt.h5", cfg->checkpoint_dir, run_id);
    }
    if (rc == FR_OK && restart && rank == 0 && unlink(ckpt) == 0)
        LOG_INFO("--restart: removed the checkpoint %s; the fit starts afresh", ckpt);
    if (rc == FR_OK) {
        LOG_INFO("fit %s: data %s (%lld trials, %lld bins, N=%d), fold %d of %d", run_id, cfg->data_path,
                 ds.n_trials, ds.total_bins, ds.N, cfg->fold, cfg->folds);
        rc = fr_train(comm, cfg, &ds, split, ckpt, &res);
    }
    if (rc == FR_OK) {
        fr_phases_absorb(&ph, &res.phases);
        fr_phases_enter(&ph, FR_PH_OUTPUT);
        log_metrics("train", &res.train);
        log_metrics("held-out", &res.heldout);
        fr_results out;
        rc = fr_results_create(comm, cfg->output_path, 1, &out);
        out.keep_other_runs = 1;
        if (rc == FR_OK) {
            fr_err w = fr_results_write_root(&out, cfg, &ds);
            if (w == FR_OK) w = fr_results_write_run(&out, run_id, cfg, &ds, split, &res, "done");
            /* Metadata calls are collective and see the same state, so a
             * failure here is seen by every rank; agree anyway. */
            w = fr_error_agree(&comm, w);
            if (w == FR_OK) {
                rc = fr_results_close(&out);
            } else {
                fr_results_abort(&out); /* an existing results file stays as it was */
                rc = w;
            }
        }
        if (rc == FR_OK) {
            LOG_INFO("results: %s (run /runs/%s), %.1f s, %lld steps", cfg->output_path, run_id, res.seconds,
                     res.steps);
            fr_phases_enter(&ph, FR_PH_OUTPUT);
            fr_phases_log(&ph);
        }
    }
    fr_outlock_release(&lock);
    fr_std_free(&st);
    fr_fit_result_free(&res);
    free(split);
    fr_dataset_free(&ds);
    free(cfg);
    return rc;
}
