/* info: the `facrnn info FILE` subcommand. Rank 0 prints a summary of an
 * input file (shapes, types, trials and their length range, attributes,
 * ground truth) or of a results file (runs, their datasets and attributes,
 * sweep table size), walking the file with serial HDF5. With --validate,
 * every rank runs the full collective fr_dataset_open validation instead of
 * trusting the summary.
 */
#include <hdf5.h>
#include "facrnn/comm.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "facrnn/cli.h"
#include "facrnn/common.h"
#include "facrnn/dataset.h"
#include "facrnn/h5util.h"

static const char *class_name(hid_t ty)
{
    switch (H5Tget_class(ty)) {
    case H5T_FLOAT: return H5Tget_size(ty) == 4 ? "float32" : H5Tget_size(ty) == 8 ? "float64" : "float";
    case H5T_INTEGER: {
        int sgn = H5Tget_sign(ty) == H5T_SGN_NONE;
        switch (H5Tget_size(ty)) {
        case 1: return sgn ? "uint8" : "int8";
        case 2: return sgn ? "uint16" : "int16";
        case 4: return sgn ? "uint32" : "int32";
        case 8: return sgn ? "uint64" : "int64";
        default: return "integer";
        }
    }
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    default: return "other";
    }
}

static void print_shape(hid_t sp)
{
    int r = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[H5S_MAX_RANK];
    if (r <= 0) {
        printf("scalar");
        return;
    }
    H5Sget_simple_extent_dims(sp, dims, NULL);
    printf("[");
    for (int i = 0; i < r; ++i) printf("%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
    printf("]");
}

/* Print one attribute's value when it is small (scalars, short arrays,
 * strings; long strings such as a YAML config are cut). */
static herr_t print_attr(hid_t obj, const char *name, const H5A_info_t *ainfo, void *op)
{
    (void)ainfo;
    const char *indent = op;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t ty = H5Aget_type(a), sp = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    printf("%s@%s = ", indent, name);
    H5T_class_t cls = H5Tget_class(ty);
    if (cls == H5T_STRING && n == 1) {
        char buf[4096] = "", *text = NULL;
        if (fr_h5_attr_read_str(obj, name, "info", &text) == FR_OK && text) snprintf(buf, sizeof buf, "%s", text);
        free(text);
        /* Multi-line text (a config) is summarised by its first line. */
        char *nl = strchr(buf, '\n');
        if (nl) snprintf(nl, sizeof buf - (size_t)(nl - buf), " ...");
        if (strlen(buf) > 160) snprintf(buf + 157, 4, "...");
        printf("\"%s\"\n", buf);
    } else if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && n >= 1 && n <= 16) {
        double v[16];
        H5Aread(a, H5T_NATIVE_DOUBLE, v);
        if (n > 1 || H5Sget_simple_extent_ndims(sp) > 0) printf("[");
        for (hssize_t i = 0; i < n; ++i) printf("%s%.10g", i ? ", " : "", v[i]);
        if (n > 1 || H5Sget_simple_extent_ndims(sp) > 0) printf("]");
        printf("\n");
    } else {
        printf("(%s, %lld values)\n", class_name(ty), (long long)n);
    }
    H5Sclose(sp);
    H5Tclose(ty);
    H5Aclose(a);
    return 0;
}

static herr_t visit_obj(hid_t root, const char *name, const H5O_info_t *info, void *op)
{
    (void)op;
    if (!strcmp(name, ".")) return 0;
    if (info->type == H5O_TYPE_GROUP) {
        printf("  /%s/\n", name);
        hid_t g = H5Gopen2(root, name, H5P_DEFAULT);
        if (g >= 0) {
            H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, NULL, print_attr, "      ");
            H5Gclose(g);
        }
    } else if (info->type == H5O_TYPE_DATASET) {
        hid_t d = H5Dopen2(root, name, H5P_DEFAULT);
        if (d < 0) return 0;
        hid_t sp = H5Dget_space(d), ty = H5Dget_type(d);
        printf("  /%s  ", name);
        print_shape(sp);
        printf(" %s\n", class_name(ty));
        H5Aiterate2(d, H5_INDEX_NAME, H5_ITER_INC, NULL, print_attr, "      ");
        H5Tclose(ty);
        H5Sclose(sp);
        H5Dclose(d);
    }
    return 0;
}

/* A string attribute of obj into buf ("" when absent). */
static void str_attr(hid_t obj, const char *name, char *buf, size_t n)
{
    char *s = NULL;
    buf[0] = 0;
    if (H5Aexists(obj, name) > 0 && fr_h5_attr_read_str(obj, name, "info", &s) == FR_OK && s) snprintf(buf, n, "%s", s);
    free(s);
}

static double num_attr(hid_t obj, const char *name)
{
    double v = NAN;
    if (H5Aexists(obj, name) <= 0) return v;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a >= 0) {
        if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) v = NAN;
        H5Aclose(a);
    }
    return v;
}

/* One line per run of a results file: id, K, groups, beta, held-out NLL
 * and R^2 (from /runs/<id>/metrics). */
static herr_t run_line(hid_t g, const char *name, const H5L_info_t *li, void *op)
{
    (void)li, (void)op;
    char where[600], groups[256];
    snprintf(where, sizeof where, "%s/metrics", name);
    hid_t m = H5Gopen2(g, where, H5P_DEFAULT);
    if (m < 0) {
        printf("  %s\n", name);
        return 0;
    }
    str_attr(m, "groups", groups, sizeof groups);
    printf("  %-28s K %-3.0f groups %-10s beta %-6g held-out nll/bin %-10.6g r2 %.4f\n", name, num_attr(m, "K"), groups,
           num_attr(m, "beta"), num_attr(m, "heldout_nll_per_bin"), num_attr(m, "heldout_r2"));
    H5Gclose(m);
    return 0;
}

/* The answer first: for a sweep, the selection, its confidence and why;
 * for a fit file, one line per run. Rank 0, serial HDF5. */
static fr_err answer_first(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return FR_FAIL(FR_EINVAL, "info: '%s' cannot be opened as HDF5 (truncated or corrupt?)", path);
    char input[1024], buf[2048];
    str_attr(f, "input_path", input, sizeof input);
    if (H5Lexists(f, "/sweep", H5P_DEFAULT) > 0 && H5Lexists(f, "/sweep/selection", H5P_DEFAULT) > 0) {
        hid_t s = H5Gopen2(f, "/sweep/selection", H5P_DEFAULT);
        printf("sweep results: %s (data %s; %.0f of %.0f runs done)\n", path, input, num_attr(f, "n_runs_done"),
               num_attr(f, "n_runs"));
        str_attr(s, "selected_groups", buf, sizeof buf);
        if (buf[0])
            printf("answer: K = %.0f, partition %s, beta %g\n", num_attr(s, "selected_K"), buf,
                   num_attr(s, "selected_beta"));
        else printf("answer: none (no run finished)\n");
        str_attr(s, "confidence", buf, sizeof buf);
        if (buf[0]) printf("confidence: %s\n", buf);
        str_attr(s, "why", buf, sizeof buf);
        printf("why: %s\n", buf);
        if (isfinite(num_attr(s, "independence")))
        {
            printf("evidence: independence %.3f +- %.3f (needs >= %g), coupling %.3f +- %.3f (needs <= %g)",
                   num_attr(s, "independence"), num_attr(s, "independence_se"), num_attr(s, "min_independence"),
                   num_attr(s, "coupling"), num_attr(s, "coupling_se"), num_attr(s, "max_coupling"));
            /* a results file written before the predictability has none */
            if (isfinite(num_attr(s, "predictability")))
                printf(", predictability %.3f +- %.3f (needs >= %g)", num_attr(s, "predictability"),
                       num_attr(s, "predictability_se"), num_attr(s, "min_predictability"));
            printf("\n");
        }
        H5Gclose(s);
    } else if (H5Lexists(f, "/runs", H5P_DEFAULT) > 0) {
        hid_t g = H5Gopen2(f, "/runs", H5P_DEFAULT);
        H5G_info_t gi;
        H5Gget_info(g, &gi);
        printf("fit results: %s (data %s; %llu run(s))\n", path, input, (unsigned long long)gi.nlinks);
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, run_line, NULL);
        H5Gclose(g);
    }
    printf("(facrnn info %s --full lists every run, dataset and attribute)\n", path);
    fflush(stdout);
    H5Fclose(f);
    return FR_OK;
}

/* Rank-0 summary with serial HDF5. */
static fr_err summarise(const char *path, int full)
{
    if (access(path, R_OK) != 0) return FR_FAIL(FR_EINVAL, "info: cannot read '%s'", path);
    if (H5Fis_hdf5(path) <= 0) return FR_FAIL(FR_EINVAL, "info: '%s' is not an HDF5 file (or is truncated)", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return FR_FAIL(FR_EINVAL, "info: '%s' cannot be opened as HDF5 (truncated or corrupt?)", path);
    int results = H5Lexists(f, "/runs", H5P_DEFAULT) > 0 || H5Lexists(f, "/sweep", H5P_DEFAULT) > 0;
    if (results && !full) {
        H5Fclose(f);
        return answer_first(path);
    }
    printf("file: %s\nkind: %s\n", path, results ? "results" : "input");
    printf("attributes:\n");
    H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, print_attr, "  ");

    if (!results && H5Lexists(f, "/trial_offsets", H5P_DEFAULT) > 0) {
        hid_t d = H5Dopen2(f, "/trial_offsets", H5P_DEFAULT);
        hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
        hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : 0;
        long long *o = n >= 2 ? calloc((size_t)n, sizeof *o) : NULL;
        if (o && H5Dread(d, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, o) >= 0) {
            long long lo = -1, hi = 0;
            for (hssize_t k = 0; k + 1 < n; ++k) {
                long long T = o[k + 1] - o[k];
                if (lo < 0 || T < lo) lo = T;
                if (T > hi) hi = T;
            }
            printf("trials: %lld, total bins %lld, lengths %lld..%lld\n", (long long)n - 1, o[n - 1], lo, hi);
        }
        free(o);
        if (sp >= 0) H5Sclose(sp);
        if (d >= 0) H5Dclose(d);
        printf("truth: %s\n", H5Lexists(f, "/truth", H5P_DEFAULT) > 0 ? "present" : "absent");
    }
    if (results && H5Lexists(f, "/runs", H5P_DEFAULT) > 0) {
        hid_t g = H5Gopen2(f, "/runs", H5P_DEFAULT);
        H5G_info_t gi;
        if (g >= 0 && H5Gget_info(g, &gi) >= 0) printf("runs: %llu\n", (unsigned long long)gi.nlinks);
        if (g >= 0) H5Gclose(g);
    }
    if (results && H5Lexists(f, "/sweep", H5P_DEFAULT) > 0 &&
        H5Lexists(f, "/sweep/table", H5P_DEFAULT) > 0) {
        hid_t d = H5Dopen2(f, "/sweep/table", H5P_DEFAULT);
        hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
        if (sp >= 0) {
            printf("sweep table: ");
            print_shape(sp);
            printf(" rows\n");
            H5Sclose(sp);
        }
        if (d >= 0) H5Dclose(d);
    }
    printf("objects:\n");
    H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, visit_obj, NULL);
    fflush(stdout);
    H5Fclose(f);
    return FR_OK;
}

static void info_usage(void)
{
    printf("usage: facrnn info FILE [--full] [--validate [--lags L] [--poisson|--gaussian]]\n"
           "  (a results file: the answer first, or one line per run; an input file: its summary)\n"
           "  --full       every run, dataset and attribute of a results file\n"
           "  --validate   run the full input validation on every rank (exit 2 if invalid)\n"
           "  --lags L     history length to check trial lengths against (default 1)\n"
           "  --poisson    check /data as Poisson counts (default: the file's observation)\n"
           "  --gaussian   do not check counts\n");
}

fr_err fr_cmd_info(int argc, char **argv)
{
    MPI_Comm comm = MPI_COMM_WORLD;
    int rank;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const char *path = NULL;
    int validate = 0, full = 0;
    fr_read_opts opts = {.lags = 1, .poisson = -1, .read_inputs = 1, .read_behavior = 1, .read_truth = 1};
    fr_err rc = FR_OK;
    for (int i = 1; i < argc && rc == FR_OK; ++i) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (rank == 0) info_usage();
            return FR_OK;
        } else if (!strcmp(a, "--validate")) validate = 1;
        else if (!strcmp(a, "--full")) full = 1;
        else if (!strcmp(a, "--poisson")) opts.poisson = 1;
        else if (!strcmp(a, "--gaussian")) opts.poisson = 0;
        else if (!strcmp(a, "--lags")) {
            char *end = NULL;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
            if (i + 1 >= argc || *end || v < 0 || v > 100000) rc = FR_FAIL(FR_EUSAGE, "info: --lags needs an integer >= 0");
            else opts.lags = (int)v;
            ++i;
        } else if (a[0] == '-') rc = FR_FAIL(FR_EUSAGE, "info: unknown option '%s'", a);
        else if (path) rc = FR_FAIL(FR_EUSAGE, "info: more than one FILE given ('%s')", a);
        else path = a;
    }
    if (rc == FR_OK && !path) rc = FR_FAIL(FR_EUSAGE, "info: missing FILE");
    rc = fr_error_agree(&comm, rc);
    if (rc != FR_OK) return rc;

    if (validate) {
        fr_dataset ds;
        TRY(fr_dataset_open(comm, path, &opts, &ds));
        long long mine[2] = {ds.trial_hi - ds.trial_lo, ds.row_hi - ds.row_lo}, mx[2] = {0, 0};
        rc = fr_check_mpi(MPI_Reduce(mine, mx, 2, MPI_LONG_LONG, MPI_MAX, 0, comm), "MPI_Reduce", __FILE__, __LINE__);
        /* missing entries of /mask, summed over the shards */
        long long miss = 0, miss_all = 0;
        if (ds.mask)
            for (long long q = 0; q < (ds.row_hi - ds.row_lo) * ds.N; ++q) miss += !ds.mask[q];
        if (rc == FR_OK)
            rc = fr_check_mpi(MPI_Reduce(&miss, &miss_all, 1, MPI_LONG_LONG, MPI_SUM, 0, comm), "MPI_Reduce", __FILE__,
                              __LINE__);
        char extra[96] = "";
        if (ds.mask)
            snprintf(extra, sizeof extra, "; /mask: %lld of %lld entries missing", miss_all, ds.total_bins * ds.N);
        if (rank == 0)
            printf("valid: %s: %lld trials, %lld bins, N = %d, D = %d, P = %d, truth K = %d, lags %d, "
                   "observation %s; largest shard %lld trials / %lld rows; checksum %016llx%s\n",
                   path, ds.n_trials, ds.total_bins, ds.N, ds.D, ds.P, ds.truth_K, opts.lags,
                   ds.observation[0] ? ds.observation : "(unset)", mx[0], mx[1], (unsigned long long)ds.checksum,
                   extra);
        fflush(stdout);
        fr_dataset_free(&ds);
        return fr_error_agree(&comm, rc);
    }
    if (rank == 0) rc = summarise(path, full);
    return fr_error_agree(&comm, rc);
}
