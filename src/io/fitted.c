/* fitted: read one fitted run back from a results file and rebuild its
 * model exactly (see fitted.h). Rank 0 reads with serial HDF5 (the file is
 * small next to the data) and broadcasts the pieces. */
#include "facrnn/fitted.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/fit_input.h"
#include "facrnn/h5util.h"


/* A numeric attribute as double (NaN when absent). */
static double attr_double(hid_t obj, const char *name)
{
    double v = NAN;
    if (H5Aexists(obj, name) <= 0) return v;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return v;
    hid_t sp = H5Aget_space(a);
    if (H5Sget_simple_extent_npoints(sp) == 1 && H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) v = NAN;
    H5Sclose(sp);
    H5Aclose(a);
    return v;
}

/* A whole dataset of rank <= 2 as doubles; dims[1] = 1 for rank 1. */
static fr_err read_doubles(hid_t f, const char *path, double **buf, hsize_t dims[2])
{
    *buf = NULL;
    dims[0] = dims[1] = 0;
    hid_t d;
    H5E_BEGIN_TRY { d = H5Dopen2(f, path, H5P_DEFAULT); } H5E_END_TRY;
    if (d < 0) return FR_FAIL(FR_EINVAL, "%s: missing in the results file", path);
    hid_t sp = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(sp);
    fr_err rc = FR_OK;
    if (nd < 1 || nd > 2) rc = FR_FAIL(FR_EINVAL, "%s: expected 1 or 2 dimensions, found %d", path, nd);
    else {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        if (nd == 1) dims[1] = 1;
        rc = FR_CALLOC(*buf, dims[0] * dims[1] > 0 ? dims[0] * dims[1] : 1);
        if (rc == FR_OK && dims[0] * dims[1] > 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *buf) < 0)
            rc = FR_FAIL(FR_EIO, "%s: cannot read", path);
    }
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

typedef struct {
    int count;
    char names[1024]; /* "name1 name2 ...", cut when long */
} name_list;

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
    (void)g;
    (void)info;
    name_list *nl = op;
    size_t len = strlen(nl->names);
    if (len + strlen(name) + 2 < sizeof nl->names)
        snprintf(nl->names + len, sizeof nl->names - len, "%s%s", len ? " " : "", name);
    ++nl->count;
    return 0;
}

static void read_stored_metrics(hid_t mg, const char *prefix, fr_fit_metrics *m)
{
    char n[96];
    for (int i = 0; i < FR_N_METRICS; ++i) {
        snprintf(n, sizeof n, "%s_%s", prefix, fr_metric_defs[i].name);
        fr_metric_set(m, i, attr_double(mg, n));
    }
}

/* Parse "3+2+1" into sizes. */
static fr_err parse_groups_text(const char *s, int *G, int *groups)
{
    *G = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || *G >= FR_CFG_MAX_GROUPS)
            return FR_FAIL(FR_EINVAL, "metrics attribute groups: cannot parse '%s'", s);
        groups[(*G)++] = (int)v;
        s = *end == '+' ? end + 1 : end;
        if (*end && *end != '+') return FR_FAIL(FR_EINVAL, "metrics attribute groups: unexpected '%c'", *end);
    }
    return FR_OK;
}

/* Rank 0: read everything into r. */
static fr_err load_serial(const char *path, const char *want, fr_fitted_run *r)
{
    hid_t f;
    H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    if (f < 0) return FR_FAIL(FR_EINVAL, "%s: cannot open results file", path);
    fr_err rc = FR_OK;
    char *yaml = NULL, *sum = NULL, *groups = NULL;
    hid_t runs = -1, mg = -1;
    H5E_BEGIN_TRY { runs = H5Gopen2(f, "runs", H5P_DEFAULT); } H5E_END_TRY;
    if (runs < 0) rc = FR_FAIL(FR_EINVAL, "%s: no /runs group (not a facrnn results file?)", path);
    if (rc == FR_OK && want) {
        if (strlen(want) >= FR_RUN_ID_MAX) rc = FR_FAIL(FR_EUSAGE, "--run: id too long");
        else if (H5Lexists(runs, want, H5P_DEFAULT) <= 0)
            rc = FR_FAIL(FR_EINVAL, "%s: no run /runs/%s", path, want);
        else snprintf(r->run_id, sizeof r->run_id, "%s", want);
    } else if (rc == FR_OK) {
        name_list nl;
        memset(&nl, 0, sizeof nl);
        H5Literate(runs, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_name, &nl);
        if (nl.count == 0) rc = FR_FAIL(FR_EINVAL, "%s: /runs is empty", path);
        else if (nl.count > 1)
            rc = FR_FAIL(FR_EUSAGE, "%s holds %d runs; choose one with --run ID (%s)", path, nl.count, nl.names);
        else if (strlen(nl.names) >= FR_RUN_ID_MAX) rc = FR_FAIL(FR_EINVAL, "%s: run id too long", path);
        else memcpy(r->run_id, nl.names, strlen(nl.names) + 1);
    }
    /* the run's own config (files since runs carry one), else the root's */
    if (rc == FR_OK) {
        hid_t rg;
        H5E_BEGIN_TRY { rg = H5Gopen2(runs, r->run_id, H5P_DEFAULT); } H5E_END_TRY;
        if (rg >= 0 && H5Aexists(rg, "config") > 0) rc = fr_h5_attr_read_str(rg, "config", path, &yaml);
        if (rg >= 0) H5Gclose(rg);
    }
    if (rc == FR_OK && !yaml) rc = fr_h5_attr_read_str(f, "config", path, &yaml);
    if (rc == FR_OK && !yaml) rc = FR_FAIL(FR_EINVAL, "%s: root attribute config is missing", path);
    if (rc == FR_OK) {
        rc = fr_config_from_yaml_text(yaml, &r->cfg);
        if (rc != FR_OK) rc = FR_FAIL(rc, "%s: root attribute config: %s", path, fr_error_msg());
    }
    if (rc == FR_OK) rc = fr_h5_attr_read_str(f, "input_checksum", path, &sum);
    if (rc == FR_OK && sum) snprintf(r->input_checksum, sizeof r->input_checksum, "%s", sum);
    char where[FR_RUN_ID_MAX + 64];
    snprintf(where, sizeof where, "/runs/%s/metrics", r->run_id);
    if (rc == FR_OK) {
        H5E_BEGIN_TRY { mg = H5Gopen2(f, where, H5P_DEFAULT); } H5E_END_TRY;
        if (mg < 0) rc = FR_FAIL(FR_EINVAL, "%s: missing in the results file", where);
    }
    if (rc == FR_OK) {
        /* the run's own settings over the (possibly sweep-base) config */
        double K = attr_double(mg, "K"), beta = attr_double(mg, "beta"), seed = attr_double(mg, "seed"),
               fold = attr_double(mg, "fold");
        if (isfinite(K)) r->cfg.rank = (int)K;
        if (isfinite(beta)) r->cfg.beta = beta;
        if (isfinite(seed)) r->cfg.seed = (long long)seed;
        if (isfinite(fold)) r->cfg.fold = (int)fold;
        rc = fr_h5_attr_read_str(mg, "groups", where, &groups);
        if (rc == FR_OK && groups) {
            memset(r->cfg.groups, 0, sizeof r->cfg.groups);
            rc = parse_groups_text(groups, &r->cfg.n_groups, r->cfg.groups);
        }
        r->encoder_std = attr_double(mg, "encoder_std");
        if (rc == FR_OK && !(r->encoder_std > 0))
            rc = FR_FAIL(FR_EINVAL, "%s: attribute encoder_std is missing or not positive", where);
        read_stored_metrics(mg, "train", &r->stored_train);
        read_stored_metrics(mg, "heldout", &r->stored_heldout);
        r->stored_conn_r_W = attr_double(mg, "connectivity_r_W");
        r->stored_conn_have = isfinite(r->stored_conn_r_W);
        for (int g = 0; g < FR_MAX_GROUPS; ++g) r->stored_conn_r_groups[g] = NAN;
        if (H5Aexists(mg, "connectivity_r_groups") > 0) {
            hid_t a = H5Aopen(mg, "connectivity_r_groups", H5P_DEFAULT);
            hid_t sp = H5Aget_space(a);
            if (H5Sget_simple_extent_npoints(sp) <= FR_MAX_GROUPS)
                H5Aread(a, H5T_NATIVE_DOUBLE, r->stored_conn_r_groups);
            H5Sclose(sp);
            H5Aclose(a);
        }
    }
    char p[FR_RUN_ID_MAX + 64];
    hsize_t dims[2];
    double *tmp = NULL;
    if (rc == FR_OK) {
        snprintf(p, sizeof p, "/runs/%s/params/A", r->run_id);
        rc = read_doubles(f, p, &tmp, dims);
        r->N = (int)dims[0];
        r->K = (int)dims[1];
        free(tmp);
        tmp = NULL;
    }
    if (rc == FR_OK) {
        snprintf(p, sizeof p, "/runs/%s/params/E", r->run_id);
        if (H5Lexists(f, p, H5P_DEFAULT) > 0) {
            rc = read_doubles(f, p, &tmp, dims);
            r->D = (int)dims[1];
            free(tmp);
        }
    }
    if (rc == FR_OK) {
        snprintf(p, sizeof p, "/runs/%s/params/flat", r->run_id);
        rc = read_doubles(f, p, &r->flat, dims);
        r->n_flat = (size_t)(dims[0] * dims[1]);
    }
    if (rc == FR_OK) {
        snprintf(p, sizeof p, "/runs/%s/split", r->run_id);
        if (H5Lexists(f, p, H5P_DEFAULT) > 0) {
            rc = read_doubles(f, p, &tmp, dims);
            r->n_split = (long long)dims[0];
            if (rc == FR_OK) rc = FR_CALLOC(r->split, r->n_split ? r->n_split : 1);
            for (long long k = 0; rc == FR_OK && k < r->n_split; ++k) r->split[k] = tmp[k] != 0;
            free(tmp);
        }
    }
    if (rc == FR_OK) {
        char *mode = NULL;
        snprintf(p, sizeof p, "/runs/%s/standardize", r->run_id);
        if (H5Lexists(f, p, H5P_DEFAULT) > 0) {
            hid_t g = H5Gopen2(f, p, H5P_DEFAULT);
            rc = g < 0 ? FR_FAIL(FR_EINVAL, "%s: cannot open", p) : fr_h5_attr_read_str(g, "mode", p, &mode);
            if (g >= 0) H5Gclose(g);
            if (rc == FR_OK && mode && !strcmp(mode, "zscore")) r->std_zscore = 1;
            else if (rc == FR_OK && (!mode || strcmp(mode, "off")))
                rc = FR_FAIL(FR_EINVAL, "%s: attribute mode is '%s', expected zscore or off", p, mode ? mode : "");
            free(mode);
        }
        char q[FR_RUN_ID_MAX + 128];
        const char *names[2] = {"mean", "std"};
        double **dst[2] = {&r->std_mean, &r->std_std};
        for (int i = 0; i < 2 && rc == FR_OK && r->std_zscore; ++i) {
            snprintf(q, sizeof q, "%s/%s", p, names[i]);
            rc = read_doubles(f, q, dst[i], dims);
            if (rc == FR_OK && (int)(dims[0] * dims[1]) != r->N)
                rc = FR_FAIL(FR_EINVAL, "%s: %llu values but the run has %d channels", q,
                             (unsigned long long)(dims[0] * dims[1]), r->N);
        }
    }
    if (rc == FR_OK && r->K != r->cfg.rank)
        rc = FR_FAIL(FR_EINVAL, "/runs/%s/params/A has %d columns but the run's K is %d", r->run_id, r->K, r->cfg.rank);
    free(yaml);
    free(sum);
    free(groups);
    if (mg >= 0) H5Gclose(mg);
    if (runs >= 0) H5Gclose(runs);
    H5Fclose(f);
    return rc;
}

fr_err fr_fitted_run_load(MPI_Comm comm, const char *path, const char *run_id, fr_fitted_run *r)
{
    int rank;
    memset(r, 0, sizeof *r);
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    fr_err rc = rank == 0 ? load_serial(path, run_id, r) : FR_OK;
    rc = fr_error_agree(&comm, rc);
    if (rc != FR_OK) {
        fr_fitted_run_free(r);
        return rc;
    }
    /* The struct as bytes (every rank runs the same binary), then the arrays. */
    double *flat = r->flat, *sm = r->std_mean, *ss = r->std_std;
    unsigned char *split = r->split;
    CHECK_MPI(MPI_Bcast(r, (int)sizeof *r, MPI_BYTE, 0, comm));
    if (rank != 0) {
        r->flat = r->std_mean = r->std_std = NULL;
        r->split = NULL;
        rc = FR_CALLOC(r->flat, r->n_flat ? r->n_flat : 1);
        if (rc == FR_OK) rc = FR_CALLOC(r->split, r->n_split ? r->n_split : 1);
        if (rc == FR_OK && r->std_zscore) rc = FR_CALLOC(r->std_mean, r->N);
        if (rc == FR_OK && r->std_zscore) rc = FR_CALLOC(r->std_std, r->N);
        if (rc != FR_OK) fr_fatal(rc); /* the others are already in the next broadcast */
    } else {
        r->flat = flat;
        r->split = split;
        r->std_mean = sm;
        r->std_std = ss;
    }
    CHECK_MPI(MPI_Bcast(r->flat, (int)r->n_flat, MPI_DOUBLE, 0, comm));
    if (r->n_split) CHECK_MPI(MPI_Bcast(r->split, (int)r->n_split, MPI_UNSIGNED_CHAR, 0, comm));
    if (r->std_zscore) {
        CHECK_MPI(MPI_Bcast(r->std_mean, r->N, MPI_DOUBLE, 0, comm));
        CHECK_MPI(MPI_Bcast(r->std_std, r->N, MPI_DOUBLE, 0, comm));
    }
    return FR_OK;
}

void fr_fitted_run_free(fr_fitted_run *r)
{
    free(r->flat);
    free(r->split);
    free(r->std_mean);
    free(r->std_std);
    r->flat = r->std_mean = r->std_std = NULL;
    r->split = NULL;
}

fr_err fr_fitted_standardize(const fr_fitted_run *r, fr_standardize *st)
{
    return fr_std_from_arrays(st, r->std_zscore ? FR_STD_ZSCORE : FR_STD_OFF, r->N, r->std_mean, r->std_std);
}

void fr_fitted_read_opts(const fr_fitted_run *r, fr_read_opts *ro)
{
    fr_fit_read_opts(&r->cfg, ro);
}

int fr_fitted_same_data(const fr_fitted_run *r, const fr_dataset *ds)
{
    char sum[32];
    snprintf(sum, sizeof sum, "%016llx", (unsigned long long)ds->checksum);
    return r->input_checksum[0] && !strcmp(sum, r->input_checksum) && r->n_split == ds->n_trials;
}

fr_err fr_fitted_model(const fr_fitted_run *r, const fr_dataset *ds, long long n_train, fr_model *m)
{
    if (ds->N != r->N)
        return FR_FAIL(FR_EINVAL, "%s: /data has %d channels but run %s was fitted on %d", ds->path, ds->N, r->run_id,
                       r->N);
    int D = r->cfg.inputs ? ds->D : 0;
    if (D != r->D)
        return FR_FAIL(FR_EINVAL, "%s: /inputs has %d columns but run %s was fitted with %d inputs", ds->path, D,
                       r->run_id, r->D);
    fr_config cfg = r->cfg;
    cfg.encoder_std = r->encoder_std;
    fr_model_spec spec;
    TRY(fr_fit_model_spec(&cfg, ds, n_train, &spec));
    TRY(fr_model_init(m, &spec));
    if (m->n_params != r->n_flat)
        return FR_FAIL(FR_EINVAL, "/runs/%s/params/flat: %zu values, but the run's model needs %zu", r->run_id,
                       r->n_flat, m->n_params);
    return FR_OK;
}

fr_err fr_fitted_data_open(MPI_Comm comm, const char *results, const char *run_id, const char *data, int flags,
                           fr_fitted_data *o)
{
    memset(o, 0, sizeof *o);
    fr_err rc = fr_fitted_run_load(comm, results, run_id, &o->run);
    if (rc == FR_OK) {
        fr_read_opts ro;
        fr_fitted_read_opts(&o->run, &ro);
        if (flags & FR_FD_ALL_INPUTS) ro.read_inputs = 1;
        if (flags & FR_FD_NO_TRUTH) ro.read_truth = 0;
        rc = fr_dataset_open(comm, data, &ro, &o->ds);
    }
    if (rc == FR_OK) {
        o->same = fr_fitted_same_data(&o->run, &o->ds);
        rc = FR_CALLOC(o->split, o->ds.n_trials ? o->ds.n_trials : 1);
        for (long long k = 0; rc == FR_OK && k < o->ds.n_trials; ++k) {
            long long T = o->ds.offsets[k + 1] - o->ds.offsets[k];
            o->split[k] = o->same ? o->run.split[k] : 1;
            o->heldout_any |= !o->split[k];
            if (o->split[k]) o->n_train += T - o->run.cfg.lags;
            if (T > o->Tmax) o->Tmax = T;
        }
        /* identical inputs on every rank: the same code everywhere */
        if (rc == FR_OK) rc = fr_fitted_model(&o->run, &o->ds, o->n_train, &o->m);
        /* the run's stored transform, not one recomputed from this file */
        if (rc == FR_OK) rc = fr_fitted_standardize(&o->run, &o->st);
        if (rc == FR_OK && (flags & FR_FD_MODEL_UNITS)) fr_std_apply(&o->st, o->ds.row_hi - o->ds.row_lo, o->ds.x, o->ds.mask);
    }
    return fr_error_agree(&comm, rc);
}

void fr_fitted_data_free(fr_fitted_data *o)
{
    free(o->split);
    fr_std_free(&o->st);
    fr_dataset_free(&o->ds);
    fr_fitted_run_free(&o->run);
    memset(o, 0, sizeof *o);
}
