/* transform: the `facrnn transform RESULTS.h5 --data NEW.h5 --out LATENTS.h5
 * [--run ID]` command: a fitted run's encoder means for every bin of a data
 * file, per group, with the file's trial offsets. Sharded like eval: each
 * rank encodes its own trials and writes its rows of /latents collectively.
 * The numbers are the ones fit writes to /runs/<id>/latents (the same
 * fr_evaluate_latents), so transform on the training data reproduces them.
 * Layout: docs/formats.md, "Transform output".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/cli.h"
#include "facrnn/evaluate.h"
#include "facrnn/fitted.h"
#include "facrnn/h5util.h"
#include "facrnn/results.h"

typedef struct {
    const char *results, *data, *out, *run;
    int help;
} tr_args;

static void tr_usage(void)
{
    printf("usage: [mpirun -n P] facrnn transform RESULTS.h5 --data FILE --out LATENTS.h5 [--run ID]\n\n"
           "Writes the run's latents (encoder means, per bin and group) for every trial of FILE,\n"
           "with FILE's trial offsets; layout in docs/formats.md (\"Transform output\").\n");
}

static fr_err parse_tr_args(int argc, char **argv, tr_args *a)
{
    memset(a, 0, sizeof *a);
    const fr_cli_opt opts[] = {{"--data", &a->data, NULL}, {"--out", &a->out, NULL}, {"--run", &a->run, NULL}};
    TRY(fr_cli_results_args(argc, argv, opts, 3, &a->results, &a->help));
    if (a->help) return FR_OK;
    if (!a->data) return FR_FAIL(FR_EUSAGE, "transform: missing --data FILE");
    if (!a->out) return FR_FAIL(FR_EUSAGE, "transform: missing --out FILE");
    return FR_OK;
}

/* The output file. Collective over comm. */
static fr_err write_output(MPI_Comm comm, const tr_args *a, const fr_fitted_data *fd, const double *lat)
{
    const fr_dataset *ds = &fd->ds;
    const fr_model *m = &fd->m;
    int K = m->spec.K, G = m->spec.G;
    fr_results out;
    TRY(fr_results_create(comm, a->out, 1, &out));
    hid_t f = out.file;
    fr_err rc = fr_results_write_rows(f, "latents", ds, K, lat);
    hsize_t dT[1] = {(hsize_t)ds->n_trials + 1}, dG[1] = {(hsize_t)G}, dK[1] = {(hsize_t)K};
    long long sizes[FR_MAX_GROUPS], col_group[512];
    for (int g = 0, j = 0; g < G; ++g) {
        sizes[g] = m->spec.group_size[g];
        for (int h = 0; h < m->spec.group_size[g] && j < 512; ++h) col_group[j++] = g;
    }
    if (rc == FR_OK) rc = fr_h5_write_small(f, "trial_offsets", H5T_NATIVE_LLONG, out.rank, 1, dT, ds->offsets);
    if (rc == FR_OK) rc = fr_h5_write_small(f, "group_sizes", H5T_NATIVE_LLONG, out.rank, 1, dG, sizes);
    if (rc == FR_OK && K <= 512)
        rc = fr_h5_write_small(f, "latent_group", H5T_NATIVE_LLONG, out.rank, 1, dK, col_group);
    char sum[32];
    snprintf(sum, sizeof sum, "%016llx", (unsigned long long)ds->checksum);
    if (rc == FR_OK) rc = fr_h5_attr_str(f, "program", "facrnn transform");
    if (rc == FR_OK) rc = fr_h5_attr_str(f, "source_results", a->results);
    if (rc == FR_OK) rc = fr_h5_attr_str(f, "source_run", fd->run.run_id);
    if (rc == FR_OK) rc = fr_h5_attr_str(f, "source_data", a->data);
    if (rc == FR_OK) rc = fr_h5_attr_str(f, "source_data_checksum", sum);
    if (rc == FR_OK) rc = fr_h5_attr_int(f, "same_data", fd->same);
    if (rc == FR_OK) rc = fr_h5_attr_int(f, "lags", m->spec.L);
    if (rc == FR_OK)
        rc = fr_h5_attr_str(f, "layout",
                            "latents (total bins, K): encoder means; the bins of trial k are rows "
                            "trial_offsets[k]..trial_offsets[k+1]-1; the first `lags` rows of each trial are NaN "
                            "(context); column j belongs to group latent_group[j], groups in order of group_sizes");
    rc = fr_error_agree(&comm, rc);
    if (rc != FR_OK) {
        fr_results_abort(&out);
        return rc;
    }
    return fr_results_close(&out);
}

fr_err fr_cmd_transform(int argc, char **argv)
{
    MPI_Comm comm = MPI_COMM_WORLD;
    int rank;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    tr_args a;
    TRY(parse_tr_args(argc, argv, &a)); /* same argv everywhere: every rank agrees */
    if (a.help) {
        if (rank == 0) tr_usage();
        return FR_OK;
    }
    fr_fitted_data *fd;
    TRY(FR_CALLOC(fd, 1));
    double *lat = NULL;
    fr_err rc = fr_results_check_writable(comm, a.out);
    if (rc == FR_OK) rc = fr_fitted_data_open(comm, a.results, a.run, a.data, FR_FD_NO_TRUTH | FR_FD_MODEL_UNITS, fd);
    if (rc == FR_OK) {
        long long rows = fd->ds.row_hi - fd->ds.row_lo;
        rc = fr_error_agree(&comm, FR_CALLOC(lat, (rows ? rows : 1) * fd->m.spec.K));
    }
    if (rc == FR_OK) rc = fr_evaluate_latents(comm, &fd->m, fd->run.flat, &fd->ds, lat);
    if (rc == FR_OK) rc = write_output(comm, &a, fd, lat);
    if (rc == FR_OK)
        LOG_INFO("transform: run %s, %lld trials, %lld bins of %s -> %s (latents, K = %d)", fd->run.run_id,
                 fd->ds.n_trials, fd->ds.total_bins, a.data, a.out, fd->m.spec.K);
    free(lat);
    fr_fitted_data_free(fd);
    free(fd);
    return rc;
}
