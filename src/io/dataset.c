/* dataset: the input HDF5 contract of docs/formats.md. Owns collective
 * validation (every rank returns the same code and one-line message), the
 * pure shard plan, the parallel hyperslab read of each rank's own trials
 * (MPI-IO driver, collective transfers, one contiguous hyperslab per rank),
 * the rank-count-invariant checksum, the ground truth (read once, for the
 * read-outs) and the cross-validation folds. Nothing here knows about training.
 */
#include "facrnn/dataset.h"

#include <errno.h>
#include <limits.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "facrnn/h5util.h"
#include "facrnn/rng.h"

/* ---- small helpers --------------------------------------------------------- */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv1a(uint64_t h, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

static void close_id(hid_t *id, herr_t (*closer)(hid_t))
{
    if (*id >= 0) closer(*id);
    *id = H5I_INVALID_HID;
}

/* 1 if `name` (an absolute path, possibly nested) exists as a link. */
static int link_exists(hid_t file, const char *name)
{
    char buf[256];
    /* H5Lexists needs every intermediate group to exist. */
    for (const char *p = strchr(name + 1, '/'); p; p = strchr(p + 1, '/')) {
        size_t n = (size_t)(p - name);
        if (n >= sizeof buf) return 0;
        memcpy(buf, name, n);
        buf[n] = '\0';
        if (H5Lexists(file, buf, H5P_DEFAULT) <= 0) return 0;
    }
    return H5Lexists(file, name, H5P_DEFAULT) > 0;
}

/* Shape of a dataset: rank and up to 2 dims, and its type class. */
typedef struct {
    int rank;
    hsize_t dims[2];
    H5T_class_t cls;
} shape_info;

static fr_err dataset_shape(hid_t file, const char *name, shape_info *si)
{
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return FR_FAIL(FR_EINVAL, "%s: cannot open dataset", name);
    hid_t sp = H5Dget_space(d), ty = H5Dget_type(d);
    int r = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dims[H5S_MAX_RANK] = {0};
    if (r > 0) H5Sget_simple_extent_dims(sp, dims, NULL);
    si->rank = r;
    si->dims[0] = r > 0 ? dims[0] : 0;
    si->dims[1] = r > 1 ? dims[1] : 0;
    si->cls = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS;
    size_t tsize = ty >= 0 ? H5Tget_size(ty) : 0;
    if (ty >= 0) H5Tclose(ty);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    if (r < 0) return FR_FAIL(FR_EINVAL, "%s: cannot read its dataspace", name);
    /* A number wider than any C type can only come from a damaged file, and
     * HDF5 would allocate conversion buffers of that width per element. */
    if ((si->cls == H5T_INTEGER || si->cls == H5T_FLOAT) && (tsize == 0 || tsize > 16))
        return FR_FAIL(FR_EINVAL, "%s: numbers of %zu bytes each: expected at most 16 (is the file damaged?)", name,
                       tsize);
    return FR_OK;
}

/* A string attribute into buf; "" if absent. */
static fr_err read_string_attr(hid_t obj, const char *name, char *buf, size_t cap)
{
    char *s;
    TRY(fr_h5_attr_read_str(obj, name, "input file", &s));
    snprintf(buf, cap, "%s", s ? s : "");
    free(s);
    return FR_OK;
}

/* A numeric scalar attribute as double; *found = 0 if absent. */
static fr_err read_double_attr(hid_t obj, const char *name, double *v, int *found)
{
    *found = 0;
    if (H5Aexists(obj, name) <= 0) return FR_OK;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    fr_err rc = FR_OK;
    if (n != 1 || H5Aread(a, H5T_NATIVE_DOUBLE, v) < 0)
        rc = FR_FAIL(FR_EINVAL, "attribute %s: expected one number", name);
    else *found = 1;
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    return rc;
}

/* Read rows [row_lo, row_lo + nrows) of a 2-D dataset (ncols wide) into buf
 * (nrows, ncols) as doubles, with a collective transfer. Every rank of the
 * file's communicator must call it; nrows == 0 joins with an empty
 * selection. */
static fr_err read_rows_as(hid_t file, const char *name, long long row_lo, long long nrows, int ncols, hid_t memtype,
                           void *buf /* (nrows, ncols) of memtype */);
static fr_err read_rows(hid_t file, const char *name, long long row_lo, long long nrows, int ncols,
                        double *buf /* (nrows, ncols) */)
{
    return read_rows_as(file, name, row_lo, nrows, ncols, H5T_NATIVE_DOUBLE, buf);
}

static fr_err read_rows_as(hid_t file, const char *name, long long row_lo, long long nrows, int ncols, hid_t memtype,
                           void *buf)
{
    fr_err rc = FR_OK;
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    hid_t fs = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t mdims[2] = {(hsize_t)(nrows > 0 ? nrows : 1), (hsize_t)ncols};
    hid_t ms = H5Screate_simple(2, mdims, NULL);
    hid_t dx = H5Pcreate(H5P_DATASET_XFER);
    if (d < 0 || fs < 0 || ms < 0 || dx < 0) {
        rc = FR_FAIL(FR_EHDF5, "%s: cannot prepare the read", name);
        goto done;
    }
    if (nrows > 0) {
        hsize_t start[2] = {(hsize_t)row_lo, 0}, count[2] = {(hsize_t)nrows, (hsize_t)ncols};
        if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0) {
            rc = FR_FAIL(FR_EHDF5, "%s: cannot select rows %lld..%lld", name, row_lo, row_lo + nrows - 1);
            goto done;
        }
    } else {
        H5Sselect_none(fs);
        H5Sselect_none(ms);
    }
    H5Pset_dxpl_mpio(dx, H5FD_MPIO_COLLECTIVE);
    if (H5Dread(d, memtype, ms, fs, dx, buf) < 0)
        rc = FR_FAIL(FR_EIO, "%s: read of rows %lld..%lld failed", name, row_lo, row_lo + nrows - 1);
done:
    close_id(&dx, H5Pclose);
    close_id(&ms, H5Sclose);
    close_id(&fs, H5Sclose);
    close_id(&d, H5Dclose);
    return rc;
}

/* Read a whole small dataset as doubles or long longs (independent read,
 * every rank reads the same bytes). */
static fr_err read_small(hid_t file, const char *name, hid_t memtype, void *buf)
{
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return FR_FAIL(FR_EINVAL, "%s: cannot open dataset", name);
    herr_t e = H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Dclose(d);
    if (e < 0) return FR_FAIL(FR_EIO, "%s: read failed", name);
    return FR_OK;
}

/* ---- shard plan ------------------------------------------------------------ */

fr_err fr_shard_plan(long long n_trials, const long long *offsets, int lags, int nranks,
                     long long *first_trial)
{
    if (nranks < 1) return FR_FAIL(FR_EINVAL, "shard plan: nranks = %d must be >= 1", nranks);
    if (n_trials < 0) return FR_FAIL(FR_EINVAL, "shard plan: n_trials = %lld must be >= 0", n_trials);
    /* Samples before trial j, cum(j), computed on the fly; the boundary of
     * rank r is the trial boundary whose cumulative count is closest to the
     * ideal r * total / nranks (ties go to the earlier boundary). */
    long double total = 0;
    for (long long k = 0; k < n_trials; ++k) {
        long long s = offsets[k + 1] - offsets[k] - lags;
        total += s > 0 ? s : 0;
    }
    first_trial[0] = 0;
    long long j = 0;
    long double cum = 0; /* samples in trials [0, j) */
    for (int r = 1; r < nranks; ++r) {
        long double target = total * r / nranks;
        while (j < n_trials) {
            long long s = offsets[j + 1] - offsets[j] - lags;
            long double next = cum + (s > 0 ? s : 0);
            if (next > target) {
                /* Moving past trial j would overshoot: take it only if that
                 * lands strictly closer to the target. */
                if (next - target < target - cum) {
                    cum = next;
                    ++j;
                }
                break;
            }
            cum = next;
            ++j;
        }
        first_trial[r] = j;
    }
    first_trial[nranks] = n_trials;
    return FR_OK;
}

/* ---- validation of the metadata ------------------------------------------ */

typedef struct {
    int poisson;
    int data_is_int;
    int mask;      /* 0: no /mask; 1: integer (read as doubles); 2: boolean enum of 1 byte (read as bytes) */
} meta_extra;

static fr_err read_meta(hid_t file, const fr_read_opts *opts, fr_dataset *ds, meta_extra *mx)
{
    shape_info si;
    /* /data */
    if (!link_exists(file, "/data")) return FR_FAIL(FR_EINVAL, "required dataset /data is missing");
    TRY(dataset_shape(file, "/data", &si));
    if (si.rank != 2)
        return FR_FAIL(FR_EINVAL, "/data: expected rank 2 [total_bins, N], found rank %d", si.rank);
    if (si.cls != H5T_FLOAT && si.cls != H5T_INTEGER)
        return FR_FAIL(FR_EINVAL, "/data: expected a float or integer type");
    if (si.dims[1] == 0) return FR_FAIL(FR_EINVAL, "/data: N = 0 channels (shape [%llu, 0])",
                                        (unsigned long long)si.dims[0]);
    if (si.dims[1] > (hsize_t)1 << 30) return FR_FAIL(FR_EINVAL, "/data: N = %llu channels is too many",
                                                      (unsigned long long)si.dims[1]);
    ds->total_bins = (long long)si.dims[0];
    ds->N = (int)si.dims[1];
    mx->data_is_int = si.cls == H5T_INTEGER;

    /* /trial_offsets */
    if (!link_exists(file, "/trial_offsets"))
        return FR_FAIL(FR_EINVAL, "required dataset /trial_offsets is missing");
    TRY(dataset_shape(file, "/trial_offsets", &si));
    if (si.rank != 1)
        return FR_FAIL(FR_EINVAL, "/trial_offsets: expected rank 1 [n_trials + 1], found rank %d", si.rank);
    if (si.cls != H5T_INTEGER) return FR_FAIL(FR_EINVAL, "/trial_offsets: expected an integer type");
    if (si.dims[0] < 2)
        return FR_FAIL(FR_EINVAL, "/trial_offsets: has %llu entries, needs at least 2 (one trial)",
                       (unsigned long long)si.dims[0]);
    if (si.dims[0] - 1 > (hsize_t)INT_MAX)
        return FR_FAIL(FR_EINVAL, "/trial_offsets: %llu trials is more than this program handles (%d)",
                       (unsigned long long)si.dims[0] - 1, INT_MAX);
    /* Offsets rise strictly from 0 to total_bins, so there cannot be more
     * trials than rows: checked before the offsets are read (a small file
     * can declare billions of entries). */
    if ((long long)(si.dims[0] - 1) > ds->total_bins)
        return FR_FAIL(FR_EINVAL, "/trial_offsets: %llu trials but /data has only %lld rows (total_bins)",
                       (unsigned long long)si.dims[0] - 1, ds->total_bins);
    ds->n_trials = (long long)si.dims[0] - 1;
    TRY(FR_CALLOC(ds->offsets, ds->n_trials + 1));
    TRY(read_small(file, "/trial_offsets", H5T_NATIVE_LLONG, ds->offsets));
    const long long *o = ds->offsets;
    if (o[0] != 0) return FR_FAIL(FR_EINVAL, "/trial_offsets: index 0 is %lld, must be 0", o[0]);
    for (long long k = 1; k <= ds->n_trials; ++k)
        if (o[k] <= o[k - 1])
            return FR_FAIL(FR_EINVAL, "/trial_offsets: not strictly increasing at index %lld (%lld after %lld)",
                           k, o[k], o[k - 1]);
    if (o[ds->n_trials] != ds->total_bins)
        return FR_FAIL(FR_EINVAL,
                       "/trial_offsets: last entry (index %lld) is %lld, must equal total_bins = %lld (rows of /data)",
                       ds->n_trials, o[ds->n_trials], ds->total_bins);
    for (long long k = 0; k < ds->n_trials; ++k)
        if (o[k + 1] - o[k] < (long long)opts->lags + 1)
            return FR_FAIL(FR_EINVAL, "/trial_offsets: trial %lld has %lld bins, fewer than lags + 1 = %d",
                           k, o[k + 1] - o[k], opts->lags + 1);

    /* Optional 2-D companions: same number of rows as /data. */
    const char *opt2[3] = {"/inputs", "/behavior", "/truth/latents"};
    int *width[3] = {&ds->D, &ds->P, &ds->truth_K};
    int want[3] = {opts->read_inputs, opts->read_behavior, opts->read_truth};
    for (int i = 0; i < 3; ++i) {
        if (!link_exists(file, opt2[i])) continue;
        TRY(dataset_shape(file, opt2[i], &si));
        if (si.rank != 2)
            return FR_FAIL(FR_EINVAL, "%s: expected rank 2 [total_bins, width], found rank %d", opt2[i], si.rank);
        if (si.cls != H5T_FLOAT && si.cls != H5T_INTEGER)
            return FR_FAIL(FR_EINVAL, "%s: expected a float or integer type", opt2[i]);
        if ((long long)si.dims[0] != ds->total_bins)
            return FR_FAIL(FR_EINVAL, "%s: has %llu rows but /data has %lld (total_bins)", opt2[i],
                           (unsigned long long)si.dims[0], ds->total_bins);
        if (want[i]) *width[i] = (int)si.dims[1];
    }
    /* /mask: missing values, same shape as /data, integer or boolean. */
    if (link_exists(file, "/mask")) {
        TRY(dataset_shape(file, "/mask", &si));
        if (si.rank != 2 || (long long)si.dims[0] != ds->total_bins || (long long)si.dims[1] != ds->N)
            return FR_FAIL(FR_EINVAL, "/mask: shape %s[%llu, %llu] does not match /data [%lld, %d] (1 = observed, 0 = missing)",
                           si.rank == 2 ? "" : "of rank != 2 ", (unsigned long long)si.dims[0],
                           (unsigned long long)si.dims[1], ds->total_bins, ds->N);
        mx->mask = si.cls == H5T_INTEGER ? 1 : 0;
        if (si.cls == H5T_ENUM) { /* numpy's bool as h5py stores it: an enum over a 1-byte integer */
            hid_t d = H5Dopen2(file, "/mask", H5P_DEFAULT), ty = d >= 0 ? H5Dget_type(d) : -1;
            if (ty >= 0 && H5Tget_size(ty) == 1) mx->mask = 2;
            if (ty >= 0) H5Tclose(ty);
            if (d >= 0) H5Dclose(d);
        }
        if (!mx->mask)
            return FR_FAIL(FR_EINVAL, "/mask: expected an integer or boolean type (1 = observed, 0 = missing)");
    }
    /* /heldout_channels: 0-based channel indices for co-smoothing. */
    if (link_exists(file, "/heldout_channels")) {
        TRY(dataset_shape(file, "/heldout_channels", &si));
        if (si.rank != 1 || si.cls != H5T_INTEGER)
            return FR_FAIL(FR_EINVAL, "/heldout_channels: expected a 1-D integer dataset of channel indices (0-based)");
        long long n = (long long)si.dims[0];
        if (n >= ds->N)
            return FR_FAIL(FR_EINVAL, "/heldout_channels: %lld channel(s) of %d: at least one must stay for the encoder",
                           n, ds->N);
        long long *v = NULL;
        TRY(FR_CALLOC(ds->heldout, n > 0 ? n : 1)); /* first: fr_dataset_free owns it, so nothing leaks */
        TRY(FR_CALLOC(v, n > 0 ? n : 1));
        fr_err rc = n > 0 ? read_small(file, "/heldout_channels", H5T_NATIVE_LLONG, v) : FR_OK;
        for (long long q = 0; q < n && rc == FR_OK; ++q) {
            if (v[q] < 0 || v[q] >= ds->N)
                rc = FR_FAIL(FR_EINVAL, "/heldout_channels[%lld]: channel %lld is out of range (the data have %d channels, "
                                        "0-based)",
                             q, v[q], ds->N);
            for (long long r = 0; r < q && rc == FR_OK; ++r)
                if (v[r] == v[q])
                    rc = FR_FAIL(FR_EINVAL, "/heldout_channels[%lld]: channel %lld is listed twice", q, v[q]);
            if (rc == FR_OK) ds->heldout[q] = (int)v[q];
        }
        free(v);
        TRY(rc);
        ds->n_heldout = (int)n;
    }
    /* Truth groups: checked whenever /truth/latents exists, read or not. */
    if (link_exists(file, "/truth/latents")) {
        TRY(dataset_shape(file, "/truth/latents", &si));
        int width_k = (int)si.dims[1];
        hid_t d = H5Dopen2(file, "/truth/latents", H5P_DEFAULT);
        if (d < 0) return FR_FAIL(FR_EINVAL, "/truth/latents: cannot open dataset");
        fr_err rc = FR_OK;
        if (H5Aexists(d, "groups") > 0) {
            hid_t a = H5Aopen(d, "groups", H5P_DEFAULT);
            hid_t sp = H5Aget_space(a);
            hssize_t n = H5Sget_simple_extent_npoints(sp);
            if (n < 1 || n > 64) {
                rc = FR_FAIL(FR_EINVAL, "/truth/latents: attribute groups has %lld entries (1..64 allowed)",
                             (long long)n);
            } else if (H5Aread(a, H5T_NATIVE_INT, ds->truth_groups) < 0) {
                rc = FR_FAIL(FR_EINVAL, "/truth/latents: cannot read attribute groups");
            } else {
                int sum = 0;
                ds->truth_G = (int)n;
                for (int g = 0; g < ds->truth_G && rc == FR_OK; ++g) {
                    if (ds->truth_groups[g] < 1)
                        rc = FR_FAIL(FR_EINVAL, "/truth/latents: attribute groups index %d is %d, must be >= 1", g,
                                     ds->truth_groups[g]);
                    sum += ds->truth_groups[g];
                }
                if (rc == FR_OK && sum != width_k)
                    rc = FR_FAIL(FR_EINVAL, "/truth/latents: attribute groups sums to %d but the width is %d", sum,
                                 width_k);
            }
            H5Sclose(sp);
            H5Aclose(a);
        } else {
            /* No attribute: one group spanning every column (documented). */
            ds->truth_G = 1;
            ds->truth_groups[0] = width_k;
        }
        H5Dclose(d);
        TRY(rc);
        if (!opts->read_truth) ds->truth_G = 0;
    }

    /* /trial_condition */
    if (link_exists(file, "/trial_condition")) {
        TRY(dataset_shape(file, "/trial_condition", &si));
        if (si.rank != 1 || (long long)si.dims[0] != ds->n_trials)
            return FR_FAIL(FR_EINVAL, "/trial_condition: expected shape [n_trials] = [%lld]", ds->n_trials);
        if (si.cls != H5T_INTEGER) return FR_FAIL(FR_EINVAL, "/trial_condition: expected an integer type");
        TRY(FR_CALLOC(ds->condition, ds->n_trials));
        TRY(read_small(file, "/trial_condition", H5T_NATIVE_INT, ds->condition));
    }

    /* /behavior's `kind`: velocities (the default) or positions; the
     * alignment metric integrates the one and differences the other. */
    if (link_exists(file, "/behavior")) {
        hid_t d = H5Dopen2(file, "/behavior", H5P_DEFAULT);
        if (d < 0) return FR_FAIL(FR_EINVAL, "/behavior: cannot open dataset");
        char kind[64];
        fr_err rc = read_string_attr(d, "kind", kind, sizeof kind);
        H5Dclose(d);
        TRY(rc);
        if (kind[0] && strcmp(kind, "velocity") && strcmp(kind, "position"))
            return FR_FAIL(FR_EINVAL, "/behavior: attribute kind = '%s': expected velocity or position", kind);
        ds->behavior_position = !strcmp(kind, "position");
    }

    /* Root attributes. */
    char obs[64];
    int found;
    double fv = 0;
    TRY(read_double_attr(file, "format_version", &fv, &found));
    if (found && fv > FR_INPUT_FORMAT_VERSION)
        return FR_FAIL(FR_EINVAL, "attribute format_version = %g is newer than this program reads (%d)", fv,
                       FR_INPUT_FORMAT_VERSION);
    TRY(read_double_attr(file, "bin_size_s", &ds->bin_size_s, &found));
    TRY(read_string_attr(file, "observation", obs, sizeof obs));
    if (obs[0] && strcmp(obs, "gaussian") && strcmp(obs, "poisson"))
        return FR_FAIL(FR_EINVAL, "attribute observation = '%s': expected gaussian or poisson", obs);
    memcpy(ds->observation, obs, strlen(obs) + 1); /* validated: "", gaussian or poisson */
    mx->poisson = opts->poisson >= 0 ? opts->poisson : !strcmp(obs, "poisson");
    return FR_OK;
}

/* ---- checks on this rank's rows ------------------------------------------ */

/* Trial that holds global row `row` (offsets is (n_trials + 1)). */
static long long trial_of_row(const fr_dataset *ds, long long row)
{
    long long lo = 0, hi = ds->n_trials; /* offsets[lo] <= row < offsets[hi] */
    while (hi - lo > 1) {
        long long mid = lo + (hi - lo) / 2;
        if (ds->offsets[mid] <= row) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* Every entry finite; for /data (mask non-NULL when the file has a /mask)
 * only the observed ones: NaN marks a missing entry only where /mask is 0. */
static fr_err check_finite(const fr_dataset *ds, const char *name, const double *buf /* (rows, cols) */,
                           const unsigned char *mask /* (rows, cols) or NULL */, long long rows, int cols)
{
    for (long long i = 0; i < rows; ++i)
        for (int j = 0; j < cols; ++j) {
            double v = buf[i * cols + j];
            if (!isfinite(v) && !(mask && !mask[i * cols + j])) {
                long long row = ds->row_lo + i;
                int data = !strcmp(name, "/data");
                return FR_FAIL(FR_EINVAL, "%s: %s at row %lld (trial %lld), column %d%s", name,
                               isnan(v) ? "NaN" : "Inf", row, trial_of_row(ds, row), j,
                               !data ? ""
                               : mask ? " where /mask is 1 (observed)"
                                      : " (mark missing entries with a /mask: docs/formats.md)");
            }
        }
    return FR_OK;
}

/* /mask read as numbers: every entry 0 or 1, stored as bytes in ds->mask. */
static fr_err check_mask(const fr_dataset *ds, const double *m /* (rows, N) */, long long rows)
{
    for (long long i = 0; i < rows; ++i)
        for (int j = 0; j < ds->N; ++j) {
            double v = m[i * ds->N + j];
            if (v != 0 && v != 1) {
                long long row = ds->row_lo + i;
                return FR_FAIL(FR_EINVAL, "/mask: value %g at row %lld (trial %lld), column %d: expected 0 (missing) or 1 "
                                          "(observed)",
                               v, row, trial_of_row(ds, row), j);
            }
            ds->mask[i * ds->N + j] = (unsigned char)v;
        }
    return FR_OK;
}

static fr_err check_counts(const fr_dataset *ds, long long rows)
{
    for (long long i = 0; i < rows; ++i)
        for (int j = 0; j < ds->N; ++j) {
            double v = ds->x[i * ds->N + j];
            long long row = ds->row_lo + i;
            if (ds->mask && !ds->mask[i * ds->N + j]) continue;
            if (v < 0)
                return FR_FAIL(FR_EINVAL, "/data: negative count %g at row %lld (trial %lld), column %d (observation is poisson)",
                               v, row, trial_of_row(ds, row), j);
            if (v != floor(v))
                return FR_FAIL(FR_EINVAL, "/data: non-integer count %g at row %lld (trial %lld), column %d (observation is poisson)",
                               v, row, trial_of_row(ds, row), j);
        }
    return FR_OK;
}

/* Per-trial FNV-1a of this rank's trials, gathered to every rank in trial
 * order, then FNV-1a over those hashes followed by the offsets: the result
 * depends only on the file, not on the number of ranks. */
static fr_err compute_checksum(MPI_Comm comm, fr_dataset *ds, const long long *first_trial, int size)
{
    long long nloc = ds->trial_hi - ds->trial_lo;
    uint64_t *mine = NULL, *all = NULL;
    int *counts = NULL, *displs = NULL;
    /* Allocation failures are local: agree before the collective. */
    fr_err rc = FR_CALLOC(mine, nloc);
    if (rc == FR_OK) rc = FR_CALLOC(all, ds->n_trials);
    if (rc == FR_OK) rc = FR_CALLOC(counts, size);
    if (rc == FR_OK) rc = FR_CALLOC(displs, size);
    rc = fr_error_agree(&comm, rc);
    if (rc != FR_OK) goto done;
    for (long long k = ds->trial_lo; k < ds->trial_hi; ++k) {
        const double *rows = ds->x + (ds->offsets[k] - ds->row_lo) * ds->N;
        size_t n = (size_t)(ds->offsets[k + 1] - ds->offsets[k]) * (size_t)ds->N * sizeof(double);
        mine[k - ds->trial_lo] = fnv1a(FNV_OFFSET, rows, n);
        if (ds->mask)
            mine[k - ds->trial_lo] = fnv1a(mine[k - ds->trial_lo], ds->mask + (ds->offsets[k] - ds->row_lo) * ds->N,
                                           n / sizeof(double));
    }
    for (int r = 0; r < size; ++r) {
        counts[r] = (int)(first_trial[r + 1] - first_trial[r]);
        displs[r] = (int)first_trial[r];
    }
    rc = fr_check_mpi(MPI_Allgatherv(mine, (int)nloc, MPI_UINT64_T, all, counts, displs, MPI_UINT64_T, comm),
                      "MPI_Allgatherv(trial hashes)", __FILE__, __LINE__);
    if (rc != FR_OK) goto done;
    uint64_t h = fnv1a(FNV_OFFSET, all, (size_t)ds->n_trials * sizeof(uint64_t));
    for (long long k = 0; k <= ds->n_trials; ++k) {
        int64_t v = ds->offsets[k];
        h = fnv1a(h, &v, sizeof v);
    }
    ds->checksum = h;
done:
    free(mine);
    free(all);
    free(counts);
    free(displs);
    return rc;
}

uint64_t fr_dataset_checksum_serial(long long n_trials, const long long *offsets, int N,
                                    const double *x /* (total_bins, N) */)
{
    uint64_t h = FNV_OFFSET;
    for (long long k = 0; k < n_trials; ++k) {
        size_t n = (size_t)(offsets[k + 1] - offsets[k]) * (size_t)N * sizeof(double);
        uint64_t t = fnv1a(FNV_OFFSET, x + offsets[k] * N, n);
        h = fnv1a(h, &t, sizeof t);
    }
    for (long long k = 0; k <= n_trials; ++k) {
        int64_t v = offsets[k];
        h = fnv1a(h, &v, sizeof v);
    }
    return h;
}

/* ---- ground-truth parameters ----------------------------------------------- */

/* /truth/A, B, c, d: a few N x K numbers, read whole by every rank. */
static fr_err read_truth_params(hid_t file, fr_truth_params *tp)
{
    static const char *names[4] = {"/truth/A", "/truth/B", "/truth/c", "/truth/d"};
    double **dst[4] = {&tp->A, &tp->B, &tp->c, &tp->d};
    shape_info si[4];
    int have[4];
    for (int i = 0; i < 4; ++i) {
        have[i] = link_exists(file, names[i]);
        if (have[i]) TRY(dataset_shape(file, names[i], &si[i]));
    }
    /* N and K from whichever matrix is present; the rest must agree. */
    tp->N = have[0] ? (int)si[0].dims[0] : have[1] ? (int)si[1].dims[1] : 0;
    tp->K = have[0] ? (int)si[0].dims[1] : have[1] ? (int)si[1].dims[0] : 0;
    int expect_rank[4] = {2, 2, 1, 1};
    hsize_t expect0[4] = {(hsize_t)tp->N, (hsize_t)tp->K, (hsize_t)tp->N, (hsize_t)tp->K};
    hsize_t expect1[4] = {(hsize_t)tp->K, (hsize_t)tp->N, 0, 0};
    for (int i = 0; i < 4; ++i) {
        if (!have[i]) continue;
        if (si[i].rank != expect_rank[i] || si[i].dims[0] != expect0[i] || si[i].dims[1] != expect1[i])
            return FR_FAIL(FR_EINVAL, "%s: shape does not match N = %d, K = %d", names[i], tp->N, tp->K);
        if (si[i].cls != H5T_FLOAT && si[i].cls != H5T_INTEGER)
            return FR_FAIL(FR_EINVAL, "%s: expected a float or integer type", names[i]);
        size_t n = (size_t)si[i].dims[0] * (si[i].rank == 2 ? (size_t)si[i].dims[1] : 1);
        TRY(FR_CALLOC(*dst[i], n));
        TRY(read_small(file, names[i], H5T_NATIVE_DOUBLE, *dst[i]));
    }
    return FR_OK;
}

static void truth_params_free(fr_truth_params *tp)
{
    free(tp->A);
    free(tp->B);
    free(tp->c);
    free(tp->d);
    memset(tp, 0, sizeof *tp);
}

/* ---- open ------------------------------------------------------------------ */

/* Cheap checks by one rank before the collective open, so that a missing or
 * non-HDF5 file gives one clear line. */
static fr_err precheck_file(const char *path)
{
    if (access(path, R_OK) != 0)
        return FR_FAIL(FR_EINVAL, "input file '%s' cannot be read: %s", path, strerror(errno));
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) return FR_FAIL(FR_EINVAL, "input file '%s' is not an HDF5 file (or is truncated)", path);
    return FR_OK;
}

fr_err fr_dataset_open(MPI_Comm comm, const char *path, const fr_read_opts *opts, fr_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    snprintf(ds->path, sizeof ds->path, "%s", path);
    /* Our one-line messages replace HDF5's error stack dumps. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rank, size;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    CHECK_MPI(MPI_Comm_size(comm, &size));

    fr_err rc = FR_OK;
    if (opts->lags < 0) rc = FR_FAIL(FR_EINVAL, "lags = %d must be >= 0", opts->lags);
    else if (rank == 0) rc = precheck_file(path);
    rc = fr_error_agree(&comm, rc);
    if (rc != FR_OK) return rc;

    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), file = H5I_INVALID_HID;
    long long *first_trial = NULL;
    meta_extra mx = {0, 0, 0};
    double *mask_num = NULL; /* (rows, N) /mask as numbers, before the 0/1 check */
    if (fapl < 0 || H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0) {
        rc = FR_FAIL(FR_EHDF5, "cannot set up the MPI-IO file access for '%s'", path);
    } else {
        file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
        if (file < 0) rc = FR_FAIL(FR_EINVAL, "input file '%s' cannot be opened as HDF5 (truncated or corrupt?)", path);
    }
    rc = fr_error_agree(&comm, rc);
    if (rc != FR_OK) goto fail;

    /* Metadata: every rank reads the same small objects, so the outcome is
     * the same everywhere; agree anyway so no rank can be left behind. */
    rc = fr_error_agree(&comm, read_meta(file, opts, ds, &mx));
    if (rc != FR_OK) goto fail;
    if (opts->read_truth) {
        rc = fr_error_agree(&comm, read_truth_params(file, &ds->truth));
        if (rc != FR_OK) goto fail;
    }

    TRY_GOTO(rc, FR_CALLOC(first_trial, size + 1), fail);
    TRY_GOTO(rc, fr_shard_plan(ds->n_trials, ds->offsets, opts->lags, size, first_trial), fail);
    ds->trial_lo = first_trial[rank];
    ds->trial_hi = first_trial[rank + 1];
    ds->row_lo = ds->offsets[ds->trial_lo];
    ds->row_hi = ds->offsets[ds->trial_hi];
    long long rows = ds->row_hi - ds->row_lo;

    /* Allocation failures are local: agree before the collective reads. */
    rc = FR_CALLOC(ds->x, rows * ds->N);
    if (rc == FR_OK && ds->D) rc = FR_CALLOC(ds->u, rows * ds->D);
    if (rc == FR_OK && ds->P) rc = FR_CALLOC(ds->behavior, rows * ds->P);
    if (rc == FR_OK && ds->truth_K && opts->read_truth) rc = FR_CALLOC(ds->truth_latents, rows * ds->truth_K);
    if (rc == FR_OK && mx.mask) rc = FR_CALLOC(ds->mask, rows * ds->N > 0 ? rows * ds->N : 1);
    if (rc == FR_OK && mx.mask == 1) rc = FR_CALLOC(mask_num, rows * ds->N > 0 ? rows * ds->N : 1);
    rc = fr_error_agree(&comm, rc);
    if (rc != FR_OK) goto fail;

    /* Collective reads: every rank joins each one, empty or not. */
    rc = read_rows(file, "/data", ds->row_lo, rows, ds->N, ds->x);
    if (ds->D) {
        fr_err r2 = read_rows(file, "/inputs", ds->row_lo, rows, ds->D, ds->u);
        if (rc == FR_OK) rc = r2;
    }
    if (ds->P) {
        fr_err r2 = read_rows(file, "/behavior", ds->row_lo, rows, ds->P, ds->behavior);
        if (rc == FR_OK) rc = r2;
    }
    if (ds->truth_latents) {
        fr_err r2 = read_rows(file, "/truth/latents", ds->row_lo, rows, ds->truth_K, ds->truth_latents);
        if (rc == FR_OK) rc = r2;
    }
    if (mx.mask == 1) {
        fr_err r2 = read_rows(file, "/mask", ds->row_lo, rows, ds->N, mask_num);
        if (rc == FR_OK) rc = r2;
    } else if (mx.mask == 2) {
        /* a boolean enum converts to nothing but its own kind: read its bytes */
        hid_t d = H5Dopen2(file, "/mask", H5P_DEFAULT), ft = d >= 0 ? H5Dget_type(d) : -1;
        hid_t mt = ft >= 0 ? H5Tget_native_type(ft, H5T_DIR_ASCEND) : -1;
        fr_err r2 = mt >= 0 ? read_rows_as(file, "/mask", ds->row_lo, rows, ds->N, mt, ds->mask)
                            : FR_FAIL(FR_EHDF5, "/mask: cannot read its type");
        if (mt >= 0) H5Tclose(mt);
        if (ft >= 0) H5Tclose(ft);
        if (d >= 0) H5Dclose(d);
        if (rc == FR_OK) rc = r2;
    }
    rc = fr_error_agree(&comm, rc);
    if (rc != FR_OK) goto fail;
    if (mx.mask) {
        if (mx.mask == 2) {
            /* the bytes are the enum's values: check them like numbers */
            if (FR_CALLOC(mask_num, rows * ds->N > 0 ? rows * ds->N : 1) != FR_OK) fr_fatal(FR_ENOMEM);
            for (long long q = 0; q < rows * ds->N; ++q) mask_num[q] = (signed char)ds->mask[q];
        }
        rc = fr_error_agree(&comm, check_mask(ds, mask_num, rows));
        free(mask_num);
        mask_num = NULL;
        if (rc != FR_OK) goto fail;
    }

    /* Value checks, one data set at a time. Shards are contiguous in rank
     * order, so the lowest failing rank (whose message fr_error_agree
     * keeps) holds the first offending global row. */
    rc = fr_error_agree(&comm, check_finite(ds, "/data", ds->x, ds->mask, rows, ds->N));
    if (rc != FR_OK) goto fail;
    if (mx.poisson) {
        rc = fr_error_agree(&comm, check_counts(ds, rows));
        if (rc != FR_OK) goto fail;
    }
    if (ds->mask) /* missing entries hold 0, whatever the file had there (NaN allowed) */
        for (long long q = 0; q < rows * ds->N; ++q)
            if (!ds->mask[q]) ds->x[q] = 0.0;
    if (ds->u) {
        rc = fr_error_agree(&comm, check_finite(ds, "/inputs", ds->u, NULL, rows, ds->D));
        if (rc != FR_OK) goto fail;
    }
    if (ds->behavior) {
        rc = fr_error_agree(&comm, check_finite(ds, "/behavior", ds->behavior, NULL, rows, ds->P));
        if (rc != FR_OK) goto fail;
    }
    rc = fr_error_agree(&comm, compute_checksum(comm, ds, first_trial, size));
    if (rc != FR_OK) goto fail;

    free(first_trial);
    H5Fclose(file);
    H5Pclose(fapl);
    return FR_OK;
fail:
    free(first_trial);
    free(mask_num);
    if (file >= 0) H5Fclose(file);
    if (fapl >= 0) H5Pclose(fapl);
    fr_dataset_free(ds);
    return rc;
}

void fr_dataset_free(fr_dataset *ds)
{
    free(ds->offsets);
    free(ds->condition);
    free(ds->x);
    free(ds->u);
    free(ds->behavior);
    free(ds->truth_latents);
    free(ds->mask);
    ds->mask = NULL;
    free(ds->heldout);
    ds->heldout = NULL;
    ds->n_heldout = 0;
    truth_params_free(&ds->truth);
    ds->offsets = NULL;
    ds->condition = NULL;
    ds->x = ds->u = ds->behavior = ds->truth_latents = NULL;
}

/* ---- cross-validation folds ------------------------------------------------ */

typedef struct {
    int cond;
    uint64_t key;
    long long idx;
} fold_item;

static int fold_item_cmp(const void *pa, const void *pb)
{
    const fold_item *a = pa, *b = pb;
    if (a->cond != b->cond) return a->cond < b->cond ? -1 : 1;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

fr_err fr_cv_split(long long n_trials, const int *condition, int folds, int fold, uint64_t seed,
                   unsigned char *split /* (n_trials) */)
{
    if (folds < 1) return FR_FAIL(FR_EINVAL, "cv.folds = %d must be >= 1", folds);
    if (fold < 0 || fold >= folds) return FR_FAIL(FR_EINVAL, "cv.fold = %d must be in [0, %d)", fold, folds);
    if (folds > 1 && n_trials < folds)
        return FR_FAIL(FR_EINVAL, "cv.folds = %d exceeds the number of trials (%lld)", folds, n_trials);
    if (folds == 1) {
        memset(split, 1, (size_t)n_trials);
        return FR_OK;
    }
    /* Shuffle within each condition by sorting on a random key per trial
     * (a pure function of seed and trial id), then deal round-robin into
     * folds, continuing the count from one condition to the next so both
     * every condition and the folds overall stay balanced within one. */
    fold_item *it = NULL;
    TRY(FR_CALLOC(it, n_trials));
    for (long long k = 0; k < n_trials; ++k) {
        it[k].cond = condition ? condition[k] : 0;
        it[k].key = fr_rng_u64(seed, FR_STREAM_SPLIT, 0, (uint64_t)k);
        it[k].idx = k;
    }
    qsort(it, (size_t)n_trials, sizeof *it, fold_item_cmp);
    for (long long p = 0; p < n_trials; ++p) split[it[p].idx] = (unsigned char)(p % folds != fold);
    free(it);
    return FR_OK;
}
