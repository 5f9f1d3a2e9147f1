/* results: the results HDF5 contract in parallel HDF5 (see results.h).
 * Every rank makes the same metadata calls (HDF5 requires collective
 * metadata operations); small replicated datasets are written by rank 0 with
 * the other ranks selecting nothing; the latents are written collectively,
 * each rank its own contiguous rows. */
#include "facrnn/results.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "facrnn/analysis.h"
#include "facrnn/comm.h"
#include "facrnn/h5util.h"
#include "facrnn/version.h"

fr_err fr_results_check_writable(MPI_Comm comm, const char *path)
{
    int rank;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    fr_err rc = FR_OK;
    if (rank == 0) rc = fr_mkdir_parent(path);
    if (rc != FR_OK) rc = FR_FAIL(FR_EINVAL, "output.path: %s", fr_error_msg()); /* the folder could not be made */
    else if (rank == 0) {
        char tmp[FR_CFG_PATH_MAX + 16];
        snprintf(tmp, sizeof tmp, "%s.probe", path);
        FILE *f = fopen(tmp, "w");
        if (!f) rc = FR_FAIL(FR_EINVAL, "output.path: cannot write results file %s (directory missing or not writable)", path);
        else {
            fclose(f);
            unlink(tmp);
        }
    }
    return fr_error_agree(&comm, rc);
}

/* The one-line error of a failed write: what, which file, and the reason
 * HDF5 was given (`why`, from fr_h5_cause right after the failing call,
 * before later calls clear the error stack). */
static fr_err write_fail(hid_t loc, const char *what, const char *name, const char *why)
{
    char file[1024] = "";
    if (H5Fget_name(loc, file, sizeof file) < 0) file[0] = '\0';
    return FR_FAIL(FR_EIO, "cannot write %s %s to %s%s", what, name, file[0] ? file : "the results file", why);
}

/* One scalar attribute of memory/file type `ty`; a failure names the cause. */
static fr_err attr_scalar(hid_t loc, const char *name, hid_t ty, const void *v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, ty, v);
    char why[256] = "";
    if (rc < 0) snprintf(why, sizeof why, "%s", fr_h5_cause());
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc < 0 ? write_fail(loc, "attribute", name, why) : FR_OK;
}

fr_err fr_h5_attr_double(hid_t loc, const char *name, double v) { return attr_scalar(loc, name, H5T_NATIVE_DOUBLE, &v); }

fr_err fr_h5_attr_int(hid_t loc, const char *name, long long v) { return attr_scalar(loc, name, H5T_NATIVE_LLONG, &v); }

fr_err fr_h5_attr_str(hid_t loc, const char *name, const char *s)
{
    /* Variable-length UTF-8, so h5py users get str rather than bytes. */
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, &s);
    char why[256] = "";
    if (rc < 0) snprintf(why, sizeof why, "%s", fr_h5_cause());
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc < 0 ? write_fail(loc, "attribute", name, why) : FR_OK;
}

fr_err fr_h5_write_small(hid_t loc, const char *name, hid_t memtype, int rank, int ndims, const hsize_t *dims,
                         const void *data)
{
    hid_t fsp = H5Screate_simple(ndims, dims, NULL);
    hid_t ds = H5Dcreate2(loc, name, memtype, fsp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (ds < 0) {
        H5Sclose(fsp);
        return FR_FAIL(FR_EIO, "cannot create dataset %s", name);
    }
    hid_t msp = H5Screate_simple(ndims, dims, NULL);
    if (rank != 0) {
        H5Sselect_none(fsp);
        H5Sselect_none(msp);
    }
    hid_t dx = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dx, H5FD_MPIO_COLLECTIVE);
    herr_t rc = H5Dwrite(ds, memtype, msp, fsp, dx, data);
    char why[256] = "";
    if (rc < 0) snprintf(why, sizeof why, "%s", fr_h5_cause());
    H5Pclose(dx);
    H5Sclose(msp);
    H5Sclose(fsp);
    H5Dclose(ds);
    return rc < 0 ? write_fail(loc, "dataset", name, why) : FR_OK;
}

/* The file HDF5 writes: the temp file when atomic, else the target. */
static const char *file_name(const fr_results *r) { return r->atomic ? r->out.tmp : r->out.path; }

fr_err fr_results_create(MPI_Comm comm, const char *path, int atomic, fr_results *r)
{
    memset(r, 0, sizeof *r);
    r->comm = comm;
    r->atomic = atomic;
    r->file = -1;
    CHECK_MPI(MPI_Comm_rank(comm, &r->rank));
    /* the same name on every rank: a pure function of the path */
    TRY(fr_atomic_begin(&r->out, path));
    const char *name = file_name(r);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    H5E_BEGIN_TRY { r->file = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl); } H5E_END_TRY;
    H5Pclose(fapl);
    fr_err rc = r->file < 0 ? FR_FAIL(FR_EIO, "output.path: cannot create results file %s", name) : FR_OK;
    rc = fr_error_agree(&comm, rc);
    if (rc != FR_OK && atomic && r->rank == 0) fr_atomic_abort(&r->out);
    return rc;
}

fr_err fr_results_root_attrs(hid_t file, const fr_config *cfg, int n_ranks, const char *input_path,
                             const char *input_checksum, const char *program)
{
    static char yaml[1 << 16];
    TRY(fr_config_to_yaml(cfg, yaml, sizeof yaml));
    TRY(fr_h5_attr_int(file, "format_version", FR_RESULTS_FORMAT_VERSION));
    TRY(fr_h5_attr_str(file, "version", FACRNN_VERSION));
    TRY(fr_h5_attr_str(file, "git_revision", FACRNN_GIT_REV));
    TRY(fr_h5_attr_int(file, "n_ranks", n_ranks));
    TRY(fr_h5_attr_str(file, "config", yaml));
    TRY(fr_h5_attr_str(file, "input_path", input_path));
    TRY(fr_h5_attr_str(file, "input_checksum", input_checksum));
    TRY(fr_h5_attr_str(file, "program", program));
    return FR_OK;
}

fr_err fr_results_write_root(fr_results *r, const fr_config *cfg, const fr_dataset *ds)
{
    int size;
    CHECK_MPI(MPI_Comm_size(r->comm, &size));
    char sum[32];
    snprintf(sum, sizeof sum, "%016llx", (unsigned long long)ds->checksum);
    return fr_results_root_attrs(r->file, cfg, size, ds->path, sum, "facrnn");
}

static fr_err write_metrics(hid_t g, const char *prefix, const fr_fit_metrics *m)
{
    char name[96];
    for (int i = 0; i < FR_N_METRICS; ++i) {
        snprintf(name, sizeof name, "%s_%s", prefix, fr_metric_defs[i].name);
        TRY(fr_h5_attr_double(g, name, fr_metric_get(m, i)));
    }
    return FR_OK;
}

fr_err fr_results_write_rows(hid_t loc, const char *name, const fr_dataset *ds, int ncols, const double *rows)
{
    hsize_t dims[2] = {(hsize_t)ds->total_bins, (hsize_t)ncols};
    hid_t fsp = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, H5T_NATIVE_DOUBLE, fsp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0) {
        H5Sclose(fsp);
        return FR_FAIL(FR_EIO, "cannot create dataset %s", name);
    }
    hsize_t start[2] = {(hsize_t)ds->row_lo, 0}, count[2] = {(hsize_t)(ds->row_hi - ds->row_lo), (hsize_t)ncols};
    hsize_t one[2] = {1, (hsize_t)ncols};
    hid_t msp = H5Screate_simple(2, count[0] ? count : one, NULL);
    if (count[0]) H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL);
    else {
        H5Sselect_none(fsp);
        H5Sselect_none(msp);
    }
    /* Independent transfer: every rank's rows are one contiguous block of
     * the file, so collective buffering only adds an exchange round (and, on
     * oversubscribed cores, waits on descheduled ranks); measured 3-5x slower
     * at 2 ranks (tests/bench/README.md). */
    hid_t dx = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dx, H5FD_MPIO_INDEPENDENT);
    static const double dummy = 0; /* a rank without rows still passes a buffer */
    herr_t rc = H5Dwrite(d, H5T_NATIVE_DOUBLE, msp, fsp, dx, rows ? rows : &dummy);
    char why[256] = "";
    if (rc < 0) snprintf(why, sizeof why, "%s", fr_h5_cause());
    H5Pclose(dx);
    H5Sclose(msp);
    H5Sclose(fsp);
    H5Dclose(d);
    return rc < 0 ? write_fail(loc, "dataset", name, why) : FR_OK;
}

/* /runs/<id>/connectivity: J = B A, singular values of W and of every W_g
 * (from the thin factors), the LINT factors U S V^T of W at rank K, and the
 * dense W_<g> (N, N) only when N <= output.connectivity_max_n. Group names
 * are 0-based: W_0 is the first group. */
static fr_err write_connectivity(fr_results *r, hid_t run, const fr_config *cfg, const fr_fit_result *res)
{
    const fr_model *m = &res->model;
    int N = m->spec.N, K = m->spec.K;
    fr_view v = fr_model_view(m, res->params);
    hid_t cg = H5Gcreate2(run, "connectivity", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (cg < 0) return FR_FAIL(FR_EIO, "cannot create connectivity group");
    double *J = NULL, *s = NULL, *U = NULL, *V = NULL, *W = NULL;
    fr_err rc = FR_CALLOC(J, (size_t)K * K);
    if (rc == FR_OK) rc = FR_CALLOC(s, K);
    if (rc == FR_OK) rc = FR_CALLOC(U, (size_t)N * K);
    if (rc == FR_OK) rc = FR_CALLOC(V, (size_t)N * K);
    if (rc == FR_OK) {
        fr_conn_J(N, K, v.A, v.B, J);
        hsize_t dJ[2] = {(hsize_t)K, (hsize_t)K};
        rc = fr_h5_write_small(cg, "J", H5T_NATIVE_DOUBLE, r->rank, 2, dJ, J);
    }
    if (rc == FR_OK && K <= N) {
        rc = fr_conn_svd(N, K, v.A, v.B, 0, K, s, U, V);
        hsize_t dK[1] = {(hsize_t)K}, dU[2] = {(hsize_t)N, (hsize_t)K};
        if (rc == FR_OK) rc = fr_h5_write_small(cg, "sv_W", H5T_NATIVE_DOUBLE, r->rank, 1, dK, s);
        if (rc == FR_OK) rc = fr_h5_write_small(cg, "lint_U", H5T_NATIVE_DOUBLE, r->rank, 2, dU, U);
        if (rc == FR_OK) rc = fr_h5_write_small(cg, "lint_S", H5T_NATIVE_DOUBLE, r->rank, 1, dK, s);
        if (rc == FR_OK) rc = fr_h5_write_small(cg, "lint_V", H5T_NATIVE_DOUBLE, r->rank, 2, dU, V);
    }
    int dense = N <= cfg->connectivity_max_n;
    if (rc == FR_OK && dense) rc = FR_CALLOC(W, (size_t)N * N);
    for (int g = 0, k0 = 0; g < m->spec.G && rc == FR_OK; k0 += m->spec.group_size[g], ++g) {
        int H = m->spec.group_size[g];
        char name[32];
        snprintf(name, sizeof name, "sv_%d", g);
        if (H <= N) {
            rc = fr_conn_svd(N, K, v.A, v.B, k0, H, s, NULL, NULL);
            hsize_t dH[1] = {(hsize_t)H};
            if (rc == FR_OK) rc = fr_h5_write_small(cg, name, H5T_NATIVE_DOUBLE, r->rank, 1, dH, s);
        }
        if (rc == FR_OK && dense) {
            /* W_g = A[:, g] B[g, :] */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, H, 1.0, v.A + k0, K, v.B + (size_t)k0 * N,
                        N, 0.0, W, N);
            snprintf(name, sizeof name, "W_%d", g);
            hsize_t dW[2] = {(hsize_t)N, (hsize_t)N};
            rc = fr_h5_write_small(cg, name, H5T_NATIVE_DOUBLE, r->rank, 2, dW, W);
        }
    }
    free(J);
    free(s);
    free(U);
    free(V);
    free(W);
    H5Gclose(cg);
    return rc;
}

/* /runs/<id>/standardize: attribute mode ("zscore" or "off"), mean and std
 * (N) of the data's scale transform (identity under off: 0 and 1). */
static fr_err write_standardize(fr_results *r, hid_t run, const fr_standardize *st, int N)
{
    hid_t g = H5Gcreate2(run, "standardize", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return FR_FAIL(FR_EIO, "cannot create standardize group");
    fr_standardize id;
    memset(&id, 0, sizeof id);
    fr_err rc = st->mean ? FR_OK : fr_std_init(&id, FR_STD_OFF, N, NULL);
    const fr_standardize *w = st->mean ? st : &id;
    hsize_t dN[1] = {(hsize_t)N};
    if (rc == FR_OK) rc = fr_h5_attr_str(g, "mode", fr_std_mode_name(w->mode));
    if (rc == FR_OK) rc = fr_h5_write_small(g, "mean", H5T_NATIVE_DOUBLE, r->rank, 1, dN, w->mean);
    if (rc == FR_OK) rc = fr_h5_write_small(g, "std", H5T_NATIVE_DOUBLE, r->rank, 1, dN, w->std);
    fr_std_free(&id);
    H5Gclose(g);
    return rc;
}

fr_err fr_results_write_run(fr_results *r, const char *run_id, const fr_config *cfg, const fr_dataset *ds,
                            const unsigned char *split, const fr_fit_result *res, const char *status)
{
    const fr_model *m = &res->model;
    int N = m->spec.N, K = m->spec.K, D = m->spec.D, L = m->spec.L;
    hid_t runs;
    H5E_BEGIN_TRY { runs = H5Gopen2(r->file, "runs", H5P_DEFAULT); } H5E_END_TRY;
    if (runs < 0) runs = H5Gcreate2(r->file, "runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t run = H5Gcreate2(runs, run_id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (run < 0) {
        H5Gclose(runs);
        return FR_FAIL(FR_EIO, "cannot create group /runs/%s", run_id);
    }
    /* the run's own resolved config: a results file may hold runs of several configs */
    static char yaml[1 << 16];
    fr_err rc = fr_config_to_yaml(cfg, yaml, sizeof yaml);
    if (rc == FR_OK) rc = fr_h5_attr_str(run, "config", yaml);
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fr_config_fit_hash(cfg));
    if (rc == FR_OK) rc = fr_h5_attr_str(run, "config_hash", hash);
    /* params */
    hid_t pg = H5Gcreate2(run, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    fr_view v = fr_model_view(m, res->params);
    hsize_t dA[2] = {(hsize_t)N, (hsize_t)K}, dB[2] = {(hsize_t)K, (hsize_t)N}, dN[1] = {(hsize_t)N},
            dK[1] = {(hsize_t)K}, dE[2] = {(hsize_t)N, (hsize_t)D}, dL[1] = {(hsize_t)L};
    double psi[FR_MAX_LAGS];
    fr_model_psi(m, res->params, psi);
    if (rc == FR_OK) rc = fr_h5_write_small(pg, "A", H5T_NATIVE_DOUBLE, r->rank, 2, dA, v.A);
    if (rc == FR_OK) rc = fr_h5_write_small(pg, "B", H5T_NATIVE_DOUBLE, r->rank, 2, dB, v.B);
    if (rc == FR_OK) rc = fr_h5_write_small(pg, "c", H5T_NATIVE_DOUBLE, r->rank, 1, dN, v.c);
    if (rc == FR_OK) rc = fr_h5_write_small(pg, "d", H5T_NATIVE_DOUBLE, r->rank, 1, dK, v.d);
    if (rc == FR_OK && v.s) rc = fr_h5_write_small(pg, "s", H5T_NATIVE_DOUBLE, r->rank, 1, dN, v.s);
    if (rc == FR_OK && v.E) rc = fr_h5_write_small(pg, "E", H5T_NATIVE_DOUBLE, r->rank, 2, dE, v.E);
    if (rc == FR_OK) rc = fr_h5_write_small(pg, "psi", H5T_NATIVE_DOUBLE, r->rank, 1, dL, psi);
    if (rc == FR_OK) {
        hsize_t dF[1] = {m->n_params};
        rc = fr_h5_write_small(pg, "flat", H5T_NATIVE_DOUBLE, r->rank, 1, dF, res->params);
    }
    if (rc == FR_OK) rc = fr_h5_attr_int(pg, "layout_version", FR_LAYOUT_VERSION);
    if (rc == FR_OK && res->best_heldout_params) {
        hsize_t dF[1] = {m->n_params};
        rc = fr_h5_write_small(run, "params_best_heldout", H5T_NATIVE_DOUBLE, r->rank, 1, dF,
                               res->best_heldout_params);
    }
    H5Gclose(pg);
    /* latents, split */
    if (rc == FR_OK) rc = fr_results_write_rows(run, "latents", ds, K, res->latents);
    if (rc == FR_OK) {
        hsize_t dT[1] = {(hsize_t)ds->n_trials};
        rc = fr_h5_write_small(run, "split", H5T_NATIVE_UCHAR, r->rank, 1, dT, split);
    }
    /* history: one 1-D dataset per column */
    if (rc == FR_OK) {
        static const char *cols[FR_H_NCOL] = {"epoch", "loss", "nll", "kl", "pc", "heldout_nll"};
        hid_t hg = H5Gcreate2(run, "history", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        int E = res->epochs_done;
        double *col = malloc((size_t)(E ? E : 1) * sizeof(double));
        if (!col) rc = FR_FAIL(FR_ENOMEM, "out of memory writing history");
        for (int c = 0; c < FR_H_NCOL && rc == FR_OK; ++c) {
            for (int e = 0; e < E; ++e) col[e] = res->history[(size_t)e * FR_H_NCOL + c];
            hsize_t dH[1] = {(hsize_t)E};
            rc = fr_h5_write_small(hg, cols[c], H5T_NATIVE_DOUBLE, r->rank, 1, dH, col);
        }
        free(col);
        H5Gclose(hg);
    }
    if (rc == FR_OK && res->pca_evals) {
        hsize_t dN2[1] = {(hsize_t)N};
        rc = fr_h5_write_small(run, "pca_eigenvalues", H5T_NATIVE_DOUBLE, r->rank, 1, dN2, res->pca_evals);
    }
    if (rc == FR_OK) rc = write_standardize(r, run, &res->standardize, N);
    if (rc == FR_OK && res->n_unobserved > 0) {
        hsize_t dU[1] = {(hsize_t)res->n_unobserved};
        rc = fr_h5_write_small(run, "unobserved_channels", H5T_NATIVE_INT, r->rank, 1, dU, res->unobserved);
    }
    if (rc == FR_OK) rc = write_connectivity(r, run, cfg, res);
    /* metrics as attributes */
    if (rc == FR_OK) {
        hid_t mg = H5Gcreate2(run, "metrics", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        char groups[256];
        fr_groups_text(m->spec.G, m->spec.group_size, groups, sizeof groups);
        rc = write_metrics(mg, "train", &res->train);
        if (rc == FR_OK) rc = write_metrics(mg, "heldout", &res->heldout);
        if (rc == FR_OK) rc = fr_h5_attr_double(mg, "objective", res->objective);
        if (rc == FR_OK) rc = fr_h5_attr_int(mg, "restart_chosen", res->restart_chosen);
        if (rc == FR_OK && res->restarts_done > 0) {
            /* the training objective of every restart, to see how often restarts matter */
            hsize_t dR[1] = {(hsize_t)res->restarts_done};
            hid_t sp = H5Screate_simple(1, dR, NULL);
            hid_t a = H5Acreate2(mg, "objective_all", H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
            if (a < 0 || H5Awrite(a, H5T_NATIVE_DOUBLE, res->objective_all) < 0)
                rc = FR_FAIL(FR_EIO, "cannot write objective_all");
            if (a >= 0) H5Aclose(a);
            H5Sclose(sp);
        }
        if (rc == FR_OK) rc = fr_h5_attr_int(mg, "restarts", res->restarts_done);
        if (rc == FR_OK) rc = fr_h5_attr_int(mg, "best_epoch", res->best_epoch);
        if (rc == FR_OK) rc = fr_h5_attr_double(mg, "best_heldout_nll", res->best_heldout_nll);
        if (rc == FR_OK) rc = fr_h5_attr_int(mg, "epochs_done", res->epochs_done);
        if (rc == FR_OK) rc = fr_h5_attr_int(mg, "steps", res->steps);
        if (rc == FR_OK) rc = fr_h5_attr_double(mg, "seconds", res->seconds);
        if (rc == FR_OK) rc = fr_h5_attr_double(mg, "encoder_std", m->s_enc);
        if (rc == FR_OK) rc = fr_h5_attr_int(mg, "K", K);
        if (rc == FR_OK) rc = fr_h5_attr_str(mg, "groups", groups);
        if (rc == FR_OK) rc = fr_h5_attr_double(mg, "beta", cfg->beta);
        if (rc == FR_OK) rc = fr_h5_attr_int(mg, "seed", cfg->seed);
        if (rc == FR_OK) rc = fr_h5_attr_int(mg, "fold", cfg->fold);
        if (rc == FR_OK) rc = fr_h5_attr_int(mg, "folds", cfg->folds);
        if (rc == FR_OK) rc = fr_h5_attr_str(mg, "status", status);
        if (rc == FR_OK && res->conn_have) {
            rc = fr_h5_attr_double(mg, "connectivity_r_W", res->conn_r_W);
            hsize_t dG[1] = {(hsize_t)m->spec.G};
            hid_t sp = H5Screate_simple(1, dG, NULL);
            hid_t a = H5Acreate2(mg, "connectivity_r_groups", H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
            if (rc == FR_OK && (a < 0 || H5Awrite(a, H5T_NATIVE_DOUBLE, res->conn_r_groups) < 0))
                rc = FR_FAIL(FR_EIO, "cannot write connectivity_r_groups");
            if (a >= 0) H5Aclose(a);
            H5Sclose(sp);
        }
        H5Gclose(mg);
    }
    H5Gclose(run);
    H5Gclose(runs);
    return rc;
}

fr_err fr_results_check_merge(MPI_Comm comm, const char *path, const char *input_checksum, uint64_t config_hash,
                              char *run_id, size_t cap)
{
    int rank;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    fr_err rc = FR_OK;
    if (rank == 0 && access(path, F_OK) == 0) {
        hid_t f;
        char *sum = NULL;
        H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
        if (f < 0 || H5Lexists(f, "runs", H5P_DEFAULT) <= 0)
            rc = FR_FAIL(FR_EINVAL,
                         "output.path: %s exists and is not a facrnn results file; remove it or choose another "
                         "output.path",
                         path);
        else if (H5Lexists(f, "sweep", H5P_DEFAULT) > 0)
            rc = FR_FAIL(FR_EINVAL,
                         "output.path: %s is a sweep's results file; a fit does not add runs to it (choose another "
                         "output.path)",
                         path);
        else if (fr_h5_attr_read_str(f, "input_checksum", path, &sum) != FR_OK || !sum ||
                 strcmp(sum, input_checksum))
            rc = FR_FAIL(FR_EINVAL,
                         "output.path: %s holds runs of another data file (input_checksum %s, this data %s); a "
                         "results file holds runs of one data set: choose another output.path",
                         path, sum ? sum : "missing", input_checksum);
        char want[32], *have = NULL, where[600];
        snprintf(want, sizeof want, "%016llx", (unsigned long long)config_hash);
        snprintf(where, sizeof where, "runs/%s", run_id);
        if (rc == FR_OK && H5Lexists(f, where, H5P_DEFAULT) > 0) {
            hid_t g = H5Gopen2(f, where, H5P_DEFAULT);
            if (g >= 0 && H5Aexists(g, "config_hash") > 0) fr_h5_attr_read_str(g, "config_hash", path, &have);
            if (g >= 0) H5Gclose(g);
            if (!have || strcmp(have, want)) {
                size_t n = strlen(run_id);
                if (n + 10 >= cap) rc = FR_FAIL(FR_EINVAL, "run id %s: no room for a configuration suffix", run_id);
                else {
                    snprintf(run_id + n, cap - n, "_%.8s", want);
                    LOG_INFO("%s already holds run %.*s of another configuration; this run is %s", path, (int)n,
                             run_id, run_id);
                }
            }
            free(have);
        }
        free(sum);
        if (f >= 0) H5Fclose(f);
    }
    TRY(fr_error_agree(&comm, rc));
    CHECK_MPI(MPI_Bcast(run_id, (int)cap, MPI_CHAR, 0, comm));
    return FR_OK;
}

/* Rank 0, the temp file closed: copy every run of the existing results file
 * that the new file does not hold (another configuration's run; a run of the
 * same id is the same configuration fitted again and the new one wins). */
static fr_err keep_other_runs(const char *old_path, const char *tmp_path, int *kept)
{
    *kept = 0;
    if (access(old_path, F_OK) != 0) return FR_OK;
    hid_t src, dst, sruns = -1, druns = -1;
    H5E_BEGIN_TRY { src = H5Fopen(old_path, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    if (src < 0) return FR_FAIL(FR_EIO, "cannot reopen %s to keep its runs", old_path);
    H5E_BEGIN_TRY { dst = H5Fopen(tmp_path, H5F_ACC_RDWR, H5P_DEFAULT); } H5E_END_TRY;
    fr_err rc = dst < 0 ? FR_FAIL(FR_EIO, "cannot reopen %s%s", tmp_path, fr_h5_cause()) : FR_OK;
    if (rc == FR_OK) {
        H5E_BEGIN_TRY {
            sruns = H5Gopen2(src, "runs", H5P_DEFAULT);
            druns = H5Gopen2(dst, "runs", H5P_DEFAULT);
        } H5E_END_TRY;
        if (sruns < 0 || druns < 0) rc = FR_FAIL(FR_EIO, "%s or %s: no /runs group", old_path, tmp_path);
    }
    hsize_t n = 0;
    if (rc == FR_OK && H5Gget_num_objs(sruns, &n) < 0) rc = FR_FAIL(FR_EIO, "%s: cannot list /runs", old_path);
    for (hsize_t i = 0; i < n && rc == FR_OK; ++i) {
        char name[512];
        ssize_t len = H5Lget_name_by_idx(sruns, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        if (len < 0 || (size_t)len >= sizeof name) {
            rc = FR_FAIL(FR_EIO, "%s: cannot read run name %llu of /runs", old_path, (unsigned long long)i);
            break;
        }
        if (H5Lexists(druns, name, H5P_DEFAULT) > 0) continue;
        if (H5Ocopy(sruns, name, druns, name, H5P_DEFAULT, H5P_DEFAULT) < 0)
            rc = FR_FAIL(FR_EIO, "cannot copy /runs/%s of %s into the new results file%s", name, old_path,
                         fr_h5_cause());
        else ++*kept;
    }
    if (sruns >= 0) H5Gclose(sruns);
    if (druns >= 0) H5Gclose(druns);
    if (dst >= 0 && H5Fclose(dst) < 0 && rc == FR_OK) rc = FR_FAIL(FR_EIO, "cannot write %s%s", tmp_path, fr_h5_cause());
    H5Fclose(src);
    return rc;
}

fr_err fr_results_close(fr_results *r)
{
    fr_err rc = FR_OK;
    /* the close flushes HDF5's metadata: a full disk may first show here */
    if (r->file >= 0 && H5Fclose(r->file) < 0)
        rc = FR_FAIL(FR_EIO, "cannot write results file %s%s", file_name(r), fr_h5_cause());
    r->file = -1;
    rc = fr_error_agree(&r->comm, rc);
    if (r->atomic) {
        /* every rank has closed (the agreement above), so rank 0 publishes */
        fr_err pub = FR_OK;
        if (r->rank == 0) {
            int kept = 0;
            if (rc == FR_OK && r->keep_other_runs) pub = keep_other_runs(r->out.path, r->out.tmp, &kept);
            if (kept) LOG_INFO("results: kept %d other run(s) of %s", kept, r->out.path);
            if (rc == FR_OK && pub == FR_OK) pub = fr_atomic_commit(&r->out);
            else fr_atomic_abort(&r->out);
        }
        if (rc == FR_OK) rc = fr_error_agree(&r->comm, pub);
    }
    return rc;
}

void fr_results_abort(fr_results *r)
{
    if (r->atomic && r->rank == 0) fr_atomic_abort(&r->out); /* unlinks the temp file; the old one stays */
    if (r->file >= 0) {
        /* A write failed on some rank (independent writes, or the one rank
         * whose disk filled): the ranks' views of the file differ, and
         * HDF5's collective close then waits forever in a barrier one rank
         * never reaches, or crashes at exit closing it again. The file is
         * discarded anyway: rank 0 prints the agreed message and aborts the
         * job (exit 1); the other ranks wait here to be ended by it. */
        if (r->rank == 0) fr_fatal(FR_EIO);
        MPI_Barrier(r->comm);
        fr_fatal(FR_EIO); /* not reached */
    }
    r->file = -1;
}
