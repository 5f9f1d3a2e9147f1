/* checkpoint: atomic versioned checkpoints (see checkpoint.h). Serial HDF5
 * on one rank: a checkpoint is small (a few flat parameter-sized buffers),
 * and one writer makes the atomic replacement (atomic.h) simple. */
#include "facrnn/checkpoint.h"

#include "facrnn/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

fr_err fr_ckpt_dir_ready(const char *dir)
{
    fr_err rc = fr_mkdir_p(dir);
    if (rc != FR_OK) return FR_FAIL(FR_EINVAL, "output.checkpoint_dir: %s", fr_error_msg());
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/.facrnn-probe", dir);
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return FR_FAIL(FR_EINVAL, "output.checkpoint_dir: cannot write in %s: %s", dir, strerror(errno));
    close(fd);
    unlink(probe);
    return FR_OK;
}

static fr_err attr_u64(hid_t loc, const char *name, uint64_t v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_NATIVE_UINT64, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_UINT64, &v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    if (rc < 0) return FR_FAIL(FR_EIO, "cannot write checkpoint attribute %s", name);
    return FR_OK;
}

static int read_attr_u64(hid_t loc, const char *name, uint64_t *v)
{
    if (H5Aexists(loc, name) <= 0) return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    herr_t rc = H5Aread(a, H5T_NATIVE_UINT64, v);
    H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

static fr_err write_1d(hid_t f, const char *name, const double *data, size_t n)
{
    hsize_t dims[1] = {n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = ds < 0 ? -1 : (n ? H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    if (rc < 0) return FR_FAIL(FR_EIO, "cannot write checkpoint dataset %s", name);
    return FR_OK;
}

static fr_err save_body(hid_t f, const fr_ckpt_tag *tag, int nscalar, const fr_ckpt_scalar *sc, int narray,
                        const fr_ckpt_array *arr)
{
    TRY(attr_u64(f, "format_version", FR_CKPT_FORMAT_VERSION));
    TRY(attr_u64(f, "layout_version", (uint64_t)tag->layout_version));
    TRY(attr_u64(f, "config_hash", tag->config_hash));
    TRY(attr_u64(f, "data_checksum", tag->data_checksum));
    double vals[FR_CKPT_MAX_ITEMS];
    for (int i = 0; i < nscalar; ++i) vals[i] = sc[i].value;
    /* Scalars as one dataset plus a names attribute would need string
     * arrays; one tiny dataset per scalar keeps h5dump output readable. */
    hid_t g = H5Gcreate2(f, "scalars", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return FR_FAIL(FR_EIO, "cannot create checkpoint group /scalars");
    fr_err rc = FR_OK;
    for (int i = 0; i < nscalar && rc == FR_OK; ++i) rc = write_1d(g, sc[i].name, &vals[i], 1);
    H5Gclose(g);
    TRY(rc);
    for (int i = 0; i < narray; ++i) TRY(write_1d(f, arr[i].name, arr[i].data, arr[i].n));
    return FR_OK;
}

fr_err fr_ckpt_save(const char *path, const fr_ckpt_tag *tag, int nscalar, const fr_ckpt_scalar *sc, int narray,
                    const fr_ckpt_array *arr)
{
    if (nscalar > FR_CKPT_MAX_ITEMS || narray > FR_CKPT_MAX_ITEMS)
        return FR_FAIL(FR_EINTERNAL, "too many checkpoint items");
    /* HDF5 builds the file in memory (core driver, no backing store) and the
     * bytes reach the disk through the atomic helper's stdio stream. A full
     * disk or any other write error is then one fwrite/fsync failure with
     * its errno, and HDF5 never holds a file it failed to flush (which it
     * would try to close again at exit). */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    hid_t f;
    H5E_BEGIN_TRY { f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl); } H5E_END_TRY;
    H5Pclose(fapl);
    if (f < 0) return FR_FAIL(FR_EIO, "cannot create checkpoint %s in memory", path);
    fr_err rc = save_body(f, tag, nscalar, sc, narray, arr);
    ssize_t n = 0;
    void *img = NULL;
    if (rc == FR_OK && (H5Fflush(f, H5F_SCOPE_LOCAL) < 0 || (n = H5Fget_file_image(f, NULL, 0)) <= 0))
        rc = FR_FAIL(FR_EIO, "cannot build checkpoint %s in memory", path);
    if (rc == FR_OK) rc = fr_calloc(&img, (size_t)n, 1);
    if (rc == FR_OK && H5Fget_file_image(f, img, (size_t)n) != n)
        rc = FR_FAIL(FR_EIO, "cannot build checkpoint %s in memory", path);
    H5Fclose(f); /* in memory: nothing to flush to a disk */
    fr_atomic a;
    if (rc == FR_OK) rc = fr_atomic_fopen(&a, path);
    if (rc == FR_OK) {
        /* a short write leaves the stream's error flag set: commit reports
         * it with errno, removes the temp file and keeps the old checkpoint */
        (void)fwrite(img, 1, (size_t)n, a.f);
        rc = fr_atomic_commit(&a);
    }
    free(img);
    return rc;
}

int fr_ckpt_exists(MPI_Comm comm, const char *path)
{
    int rank, ok = 0;
    /* returns a truth value, not an fr_err: a failing call aborts */
    CHECK_MPI_FATAL(MPI_Comm_rank(comm, &rank));
    if (rank == 0) ok = access(path, R_OK) == 0;
    CHECK_MPI_FATAL(MPI_Bcast(&ok, 1, MPI_INT, 0, comm));
    return ok;
}

static fr_err load_root(const char *path, const fr_ckpt_tag *expect, int nscalar, fr_ckpt_scalar *sc, int narray,
                        fr_ckpt_array *arr)
{
    hid_t f;
    H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    if (f < 0) return FR_FAIL(FR_EINVAL, "checkpoint %s is not a readable HDF5 file", path);
    fr_err rc = FR_OK;
    uint64_t fv = 0, lv = 0, ch = 0, dc = 0;
    if (read_attr_u64(f, "format_version", &fv) || read_attr_u64(f, "layout_version", &lv) ||
        read_attr_u64(f, "config_hash", &ch) || read_attr_u64(f, "data_checksum", &dc)) {
        rc = FR_FAIL(FR_EINVAL, "checkpoint %s lacks its version/hash attributes", path);
    } else if (fv != FR_CKPT_FORMAT_VERSION || lv != (uint64_t)expect->layout_version) {
        rc = FR_FAIL(FR_EINVAL, "checkpoint %s has format/layout version %llu/%llu, expected %d/%d", path,
                     (unsigned long long)fv, (unsigned long long)lv, FR_CKPT_FORMAT_VERSION, expect->layout_version);
    } else if (ch != expect->config_hash) {
        rc = FR_FAIL(FR_EINVAL,
                     "checkpoint %s was written for a different config (hash %016llx, this config %016llx); "
                     "rerun with --restart to start afresh, or use another output.checkpoint_dir",
                     path, (unsigned long long)ch, (unsigned long long)expect->config_hash);
    } else if (dc != expect->data_checksum) {
        rc = FR_FAIL(FR_EINVAL,
                     "checkpoint %s was written for a different data file (checksum %016llx, this data %016llx)",
                     path, (unsigned long long)dc, (unsigned long long)expect->data_checksum);
    }
    for (int i = 0; i < narray && rc == FR_OK; ++i) {
        hid_t ds;
        H5E_BEGIN_TRY { ds = H5Dopen2(f, arr[i].name, H5P_DEFAULT); } H5E_END_TRY;
        if (ds < 0) {
            rc = FR_FAIL(FR_EINVAL, "checkpoint %s: dataset %s missing", path, arr[i].name);
            break;
        }
        hid_t sp = H5Dget_space(ds);
        hssize_t n = H5Sget_simple_extent_npoints(sp);
        H5Sclose(sp);
        if (n != (hssize_t)arr[i].n)
            rc = FR_FAIL(FR_EINVAL, "checkpoint %s: dataset %s has %lld values, expected %zu", path, arr[i].name,
                         (long long)n, arr[i].n);
        else if (n && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, arr[i].data) < 0)
            rc = FR_FAIL(FR_EIO, "checkpoint %s: cannot read %s", path, arr[i].name);
        H5Dclose(ds);
    }
    for (int i = 0; i < nscalar && rc == FR_OK; ++i) {
        char name[128];
        snprintf(name, sizeof name, "scalars/%s", sc[i].name);
        hid_t ds;
        H5E_BEGIN_TRY { ds = H5Dopen2(f, name, H5P_DEFAULT); } H5E_END_TRY;
        if (ds < 0 || H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &sc[i].value) < 0)
            rc = FR_FAIL(FR_EINVAL, "checkpoint %s: scalar %s missing", path, sc[i].name);
        if (ds >= 0) H5Dclose(ds);
    }
    H5Fclose(f);
    return rc;
}

fr_err fr_ckpt_load(MPI_Comm comm, const char *path, const fr_ckpt_tag *expect, int nscalar, fr_ckpt_scalar *sc,
                    int narray, fr_ckpt_array *arr)
{
    int rank;
    CHECK_MPI(MPI_Comm_rank(comm, &rank));
    fr_err rc = FR_OK;
    if (rank == 0) rc = load_root(path, expect, nscalar, sc, narray, arr);
    /* Rank 0 alone read the file: agree on its status, then share contents. */
    TRY(fr_error_agree(&comm, rc));
    for (int i = 0; i < narray; ++i)
        if (arr[i].n) CHECK_MPI(MPI_Bcast(arr[i].data, (int)arr[i].n, MPI_DOUBLE, 0, comm));
    for (int i = 0; i < nscalar; ++i) CHECK_MPI(MPI_Bcast(&sc[i].value, 1, MPI_DOUBLE, 0, comm));
    return FR_OK;
}
