/* synth_write: a generated synthetic data set (core/synth.c) written in the
 * input format (docs/formats.md) with its ground truth under /truth. Serial
 * HDF5, called on one rank. */
#include "facrnn/synth.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/atomic.h"
#include "facrnn/dataset.h"
#include "facrnn/h5util.h"

/* ---- writing ------------------------------------------------------------------ */

/* Create a dataset without modification times (so equal seeds give equal
 * bytes) and write buf (memory type mt) into it. */
static fr_err write_ds(hid_t loc, const char *name, hid_t ft, hid_t mt, int rank, const hsize_t *dims,
                       const void *buf)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    hid_t d = H5Dcreate2(loc, name, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    fr_err rc = FR_OK;
    if (sp < 0 || d < 0 || H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = FR_FAIL(FR_EIO, "synth: cannot write dataset %s", name);
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    return rc;
}

static fr_err write_attr(hid_t obj, const char *name, hid_t ft, hid_t mt, hsize_t n, const void *buf)
{
    hid_t sp = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(obj, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT);
    fr_err rc = FR_OK;
    if (a < 0 || H5Awrite(a, mt, buf) < 0) rc = FR_FAIL(FR_EIO, "synth: cannot write attribute %s", name);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

static fr_err write_str_attr(hid_t obj, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    fr_err rc = write_attr(obj, name, t, t, 0, v);
    H5Tclose(t);
    return rc;
}

static fr_err write_contents(hid_t f, const fr_synth_spec *s, const fr_synth_data *o)
{
    hsize_t dx[2] = {(hsize_t)o->total_bins, (hsize_t)o->N};
    if (s->poisson) {
        int *counts = NULL;
        TRY(FR_CALLOC(counts, o->total_bins * o->N));
        for (long long i = 0; i < o->total_bins * o->N; ++i) counts[i] = (int)o->x[i];
        fr_err rc = write_ds(f, "/data", H5T_STD_I32LE, H5T_NATIVE_INT, 2, dx, counts);
        free(counts);
        TRY(rc);
    } else {
        TRY(write_ds(f, "/data", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dx, o->x));
    }
    hsize_t doff = (hsize_t)o->n_trials + 1;
    TRY(write_ds(f, "/trial_offsets", H5T_STD_I64LE, H5T_NATIVE_LLONG, 1, &doff, o->offsets));
    if (o->u) {
        hsize_t du[2] = {(hsize_t)o->total_bins, (hsize_t)o->D};
        TRY(write_ds(f, "/inputs", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, du, o->u));
    }
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_obj_track_times(gcpl, 0);
    hid_t tg = H5Gcreate2(f, "/truth", H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    if (tg < 0) return FR_FAIL(FR_EIO, "synth: cannot create group /truth");
    if (o->truth_kind) {
        fr_err krc = write_str_attr(tg, "kind", o->truth_kind);
        if (krc != FR_OK) {
            H5Gclose(tg);
            return krc;
        }
    }
    H5Gclose(tg);
    hsize_t dl[2] = {(hsize_t)o->total_bins, (hsize_t)o->K};
    TRY(write_ds(f, "/truth/latents", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dl, o->latents));
    hid_t dlat = H5Dopen2(f, "/truth/latents", H5P_DEFAULT);
    fr_err rc = write_attr(dlat, "groups", H5T_STD_I32LE, H5T_NATIVE_INT, (hsize_t)o->G, o->groups);
    H5Dclose(dlat);
    TRY(rc);
    hsize_t dA[2] = {(hsize_t)o->N, (hsize_t)o->K}, dB[2] = {(hsize_t)o->K, (hsize_t)o->N};
    hsize_t dN = (hsize_t)o->N, dK = (hsize_t)o->K, dL = (hsize_t)o->L;
    TRY(write_ds(f, "/truth/A", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dA, o->A));
    TRY(write_ds(f, "/truth/c", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &dN, o->c));
    if (o->B) TRY(write_ds(f, "/truth/B", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dB, o->B));
    if (o->d) TRY(write_ds(f, "/truth/d", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &dK, o->d));
    if (o->psi) TRY(write_ds(f, "/truth/psi", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &dL, o->psi));
    if (o->E) {
        hsize_t dE[2] = {(hsize_t)o->N, (hsize_t)o->D};
        TRY(write_ds(f, "/truth/E", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dE, o->E));
    }
    if (o->channel_area)
        TRY(write_ds(f, "/truth/channel_area", H5T_STD_I32LE, H5T_NATIVE_INT, 1, &dN, o->channel_area));

    int fv = FR_INPUT_FORMAT_VERSION;
    unsigned long long seed = (unsigned long long)s->seed;
    TRY(write_attr(f, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, 0, &fv));
    TRY(write_attr(f, "bin_size_s", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, &s->bin_size_s));
    TRY(write_attr(f, "seed", H5T_STD_U64LE, H5T_NATIVE_ULLONG, 0, &seed));
    TRY(write_str_attr(f, "observation", s->poisson ? "poisson" : "gaussian"));
    TRY(write_str_attr(f, "generator", s->name));
    char desc[2048], gs[256] = "", ss[1024] = "";
    for (int g = 0; g < o->G; ++g)
        snprintf(gs + strlen(gs), sizeof gs - strlen(gs), "%s%d", g ? "," : "", o->groups[g]);
    for (int i = 0; i < s->n_sys; ++i)
        snprintf(ss + strlen(ss), sizeof ss - strlen(ss), "%s%s:%d", i ? "," : "", fr_synth_family_name(s->sys[i]),
                 s->sys_dim[i]);
    if (s->kind == FR_SYNTH_SYSTEMS)
        snprintf(desc, sizeof desc,
                 "facrnn synth %s: seed=%llu trials=%lld bins=%lld N=%d systems=[%s] coupling=%g snr=%g obs=%s "
                 "rate=%g burn=%d leak=%g; truth %s, groups=[%s]",
                 s->name, seed, s->trials, s->bins, s->N, ss, s->coupling, s->snr,
                 s->poisson ? "poisson" : "gaussian", s->rate, s->burn, s->leak, o->truth_kind, gs);
    else if (s->kind == FR_SYNTH_LORENZ_THOMAS)
        snprintf(desc, sizeof desc,
                 "facrnn synth %s: seed=%llu trials=%lld bins=%lld N=%d noise=%g obs=%s rate=%g burn=%d b=%g dt=%g leak=%g",
                 s->name, seed, s->trials, s->bins, s->N, s->noise, s->poisson ? "poisson" : "gaussian", s->rate,
                 s->burn, s->b, s->dt, s->leak);
    else
        snprintf(desc, sizeof desc,
                 "facrnn synth %s: seed=%llu trials=%lld bins=%lld N=%d groups=[%s] noise=%g obs=%s rate=%g burn=%d "
                 "lags=%d inputs=%d coupling=%g gain=%g enc_noise=%g",
                 s->name, seed, s->trials, s->bins, s->N, gs, s->noise, s->poisson ? "poisson" : "gaussian", s->rate,
                 s->burn, s->lags, s->D, s->coupling, s->gain, s->enc_noise);
    TRY(write_str_attr(f, "description", desc));
    return FR_OK;
}

fr_err fr_synth_write(const fr_synth_spec *s, const fr_synth_data *o, const char *path)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    fr_atomic out;
    TRY(fr_atomic_begin(&out, path));
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0);
    hid_t f = H5Fcreate(out.tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
    fr_err rc = f < 0 ? FR_FAIL(FR_EIO, "synth: cannot create output file '%s'", out.tmp) : FR_OK;
    if (rc == FR_OK) rc = write_contents(f, s, o);
    if (f >= 0 && H5Fclose(f) < 0 && rc == FR_OK) rc = FR_FAIL(FR_EIO, "synth: cannot close '%s'", out.tmp);
    if (rc != FR_OK) {
        fr_atomic_abort(&out);
        return rc;
    }
    return fr_atomic_commit(&out);
}

