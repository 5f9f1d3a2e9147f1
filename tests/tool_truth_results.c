/* tool_truth_results: write a results file whose only run, /runs/truth,
 * holds the TRUE parameters of a `facrnn synth facrnn` data set (/truth/A,
 * B, c, d, psi, E), in the results layout (params/..., params/flat, split
 * of all-training trials, metrics attributes K, groups, encoder_std, and the
 * root attributes config and input_checksum), so that eval and simulate can
 * be run on the generating model itself.
 *
 *   tool_truth_results DATA.h5 OUT.h5 [NOISE_STD [ENCODER_STD]]
 *
 * NOISE_STD sets the Gaussian log-std s = ln(NOISE_STD) (default 0.1; 0
 * gives s = -20); ENCODER_STD is stored as the encoder std (default 0.1).
 */
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/config.h"
#include "facrnn/dataset.h"
#include "facrnn/fit_input.h"
#include "facrnn/results.h"

/* Read a whole float dataset into buf (n values expected); 0 if absent. */
static int read_all(hid_t f, const char *name, double *buf, size_t n)
{
    if (H5Lexists(f, "truth", H5P_DEFAULT) <= 0 || H5Lexists(f, name, H5P_DEFAULT) <= 0) return 0;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    int ok = np == (hssize_t)n && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
    H5Sclose(sp);
    H5Dclose(d);
    return ok ? 1 : -1;
}

static fr_err run(int argc, char **argv)
{
    if (argc < 3) return FR_FAIL(FR_EUSAGE, "usage: tool_truth_results DATA.h5 OUT.h5 [NOISE_STD [ENCODER_STD]]");
    double noise = argc > 3 ? atof(argv[3]) : 0.1, enc = argc > 4 ? atof(argv[4]) : 0.1;
    MPI_Comm comm = MPI_COMM_WORLD;
    fr_read_opts ro = {1, -1, 1, 1, 1};
    fr_dataset ds;
    memset(&ds, 0, sizeof ds);
    TRY(fr_dataset_open(comm, argv[1], &ro, &ds));
    if (ds.truth_K <= 0 || ds.truth_G <= 0) return FR_FAIL(FR_EINVAL, "%s: no /truth/latents with groups", argv[1]);
    int N = ds.N, K = ds.truth_K;
    hid_t f = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return FR_FAIL(FR_EIO, "%s: cannot open", argv[1]);
    hid_t pd = H5Dopen2(f, "/truth/psi", H5P_DEFAULT);
    if (pd < 0) return FR_FAIL(FR_EINVAL, "%s: no /truth/psi", argv[1]);
    hid_t ps = H5Dget_space(pd);
    int L = (int)H5Sget_simple_extent_npoints(ps);
    H5Sclose(ps);
    H5Dclose(pd);

    fr_config cfg;
    fr_config_defaults(&cfg);
    snprintf(cfg.data_path, sizeof cfg.data_path, "%s", argv[1]);
    snprintf(cfg.observation, sizeof cfg.observation, "%s", ds.observation);
    cfg.rank = K;
    cfg.n_groups = ds.truth_G;
    for (int g = 0; g < ds.truth_G; ++g) cfg.groups[g] = ds.truth_groups[g];
    cfg.lags = L;
    cfg.n_psi = L;
    cfg.inputs = ds.D > 0;
    cfg.folds = 1;
    cfg.encoder_std = enc;
    snprintf(cfg.init, sizeof cfg.init, "uniform");
    snprintf(cfg.output_path, sizeof cfg.output_path, "%s", argv[2]);
    double psi[FR_MAX_LAGS];
    if (read_all(f, "/truth/psi", psi, (size_t)L) != 1) return FR_FAIL(FR_EINVAL, "/truth/psi: cannot read");
    for (int l = 0; l < L; ++l) cfg.psi[l] = psi[l];

    long long n_train = 0;
    for (long long k = 0; k < ds.n_trials; ++k) n_train += ds.offsets[k + 1] - ds.offsets[k] - L;
    fr_model_spec spec;
    fr_model m;
    TRY(fr_fit_model_spec(&cfg, &ds, n_train, &spec));
    TRY(fr_model_init(&m, &spec));
    double *flat;
    TRY(FR_CALLOC(flat, m.n_params));
    fr_view v = fr_model_view(&m, flat);
    if (read_all(f, "/truth/A", v.A, (size_t)N * K) != 1 || read_all(f, "/truth/B", v.B, (size_t)K * N) != 1 ||
        read_all(f, "/truth/c", v.c, (size_t)N) != 1 || read_all(f, "/truth/d", v.d, (size_t)K) != 1)
        return FR_FAIL(FR_EINVAL, "%s: /truth/A, B, c, d missing or of the wrong size", argv[1]);
    if (v.E && read_all(f, "/truth/E", v.E, (size_t)N * ds.D) != 1)
        return FR_FAIL(FR_EINVAL, "%s: /truth/E missing or of the wrong size", argv[1]);
    if (v.s)
        for (int n = 0; n < N; ++n) v.s[n] = noise > 0 ? log(noise) : -20.0;
    H5Fclose(f);

    fr_results r;
    TRY(fr_results_create(comm, argv[2], 1, &r));
    TRY(fr_results_write_root(&r, &cfg, &ds));
    hid_t runs = H5Gcreate2(r.file, "runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t run = H5Gcreate2(runs, "truth", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t pg = H5Gcreate2(run, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int D = spec.D;
    hsize_t dA[2] = {(hsize_t)N, (hsize_t)K}, dB[2] = {(hsize_t)K, (hsize_t)N}, dN[1] = {(hsize_t)N},
            dK[1] = {(hsize_t)K}, dE[2] = {(hsize_t)N, (hsize_t)D}, dL[1] = {(hsize_t)L}, dF[1] = {m.n_params},
            dT[1] = {(hsize_t)ds.n_trials};
    TRY(fr_h5_write_small(pg, "A", H5T_NATIVE_DOUBLE, r.rank, 2, dA, v.A));
    TRY(fr_h5_write_small(pg, "B", H5T_NATIVE_DOUBLE, r.rank, 2, dB, v.B));
    TRY(fr_h5_write_small(pg, "c", H5T_NATIVE_DOUBLE, r.rank, 1, dN, v.c));
    TRY(fr_h5_write_small(pg, "d", H5T_NATIVE_DOUBLE, r.rank, 1, dK, v.d));
    if (v.s) TRY(fr_h5_write_small(pg, "s", H5T_NATIVE_DOUBLE, r.rank, 1, dN, v.s));
    if (v.E) TRY(fr_h5_write_small(pg, "E", H5T_NATIVE_DOUBLE, r.rank, 2, dE, v.E));
    TRY(fr_h5_write_small(pg, "psi", H5T_NATIVE_DOUBLE, r.rank, 1, dL, psi));
    TRY(fr_h5_write_small(pg, "flat", H5T_NATIVE_DOUBLE, r.rank, 1, dF, flat));
    unsigned char *split;
    TRY(FR_CALLOC(split, ds.n_trials));
    memset(split, 1, (size_t)ds.n_trials);
    TRY(fr_h5_write_small(run, "split", H5T_NATIVE_UCHAR, r.rank, 1, dT, split));
    hid_t mg = H5Gcreate2(run, "metrics", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    char groups[256] = "";
    size_t len = 0;
    for (int g = 0; g < spec.G; ++g)
        len += (size_t)snprintf(groups + len, sizeof groups - len, "%s%d", g ? "+" : "", spec.group_size[g]);
    TRY(fr_h5_attr_double(mg, "encoder_std", m.s_enc));
    TRY(fr_h5_attr_int(mg, "K", K));
    TRY(fr_h5_attr_str(mg, "groups", groups));
    TRY(fr_h5_attr_double(mg, "beta", cfg.beta));
    TRY(fr_h5_attr_int(mg, "seed", cfg.seed));
    TRY(fr_h5_attr_int(mg, "fold", cfg.fold));
    TRY(fr_h5_attr_str(mg, "status", "truth"));
    H5Gclose(mg);
    H5Gclose(pg);
    H5Gclose(run);
    H5Gclose(runs);
    TRY(fr_results_close(&r));
    free(split);
    free(flat);
    fr_dataset_free(&ds);
    return FR_OK;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    fr_err rc = run(argc, argv);
    if (rc != FR_OK) fprintf(stderr, "tool_truth_results: %s\n", fr_error_msg());
    MPI_Finalize();
    return rc == FR_OK ? 0 : 1;
}
